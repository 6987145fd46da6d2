//! The progress report's page (`/reports`: totals, the first rows, filters and the CSV link),
//! its CSV download and the API (JSON, or CSV when asked for with `Accept: text/csv` or the
//! `.csv` path).

use askama::Template;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    Filter, ProgressRow, RawFilter, ReportScope, SignOffState, csv_header, filter_choices, progress, progress_count,
    progress_page,
};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::pagination::{PageQuery, PageRequest};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

/// Rows shown on the page; the CSV and the API carry every row.
const PAGE_ROWS: usize = 200;
/// CSV lines buffered between the database and the client.
const CSV_LINES_IN_FLIGHT: usize = 64;

pub fn router() -> Routes {
    Routes::new()
        .get("/reports", Access::Reports, page)
        .get("/reports/progress.csv", Access::Reports, csv_download)
        .api(Access::Reports, routes!(api))
        .api(Access::Reports, routes!(csv_api))
}

struct Totals {
    enrolments: usize,
    states: Vec<(&'static str, usize)>,
    awaiting: i64,
    sampled: usize,
    average_percent: i64,
}

#[derive(Template)]
#[template(path = "reports/progress.html")]
struct ProgressPage {
    nav: Nav,
    raw: RawFilter,
    errors: Vec<FieldError>,
    assessors: Vec<(Uuid, String)>,
    units: Vec<(String, String)>,
    states: Vec<(&'static str, &'static str)>,
    rows: Vec<ProgressRow>,
    totals: Totals,
    csv_link: String,
}

impl ProgressPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }

    fn more_rows(&self) -> bool {
        self.totals.enrolments > self.rows.len()
    }
}

/// The filters as a query string, for the CSV link.
fn query_string(raw: &RawFilter) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [("assessor", &raw.assessor), ("unit", &raw.unit), ("state", &raw.state)] {
        if !value.trim().is_empty() {
            query.append_pair(name, value.trim());
        }
    }
    query.finish()
}

async fn page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Query(raw): Query<RawFilter>,
) -> AppResult<Response> {
    let mut tx = state.begin(&actor).await?;
    let scope = policy::report_scope(&state.views, &mut tx, &actor).await?;
    let (assessors, units) = filter_choices(&mut tx, &scope).await?;
    let (filter, errors) = match Filter::parse(&raw) {
        Ok(filter) => (Some(filter), Vec::new()),
        Err(errors) => (None, errors),
    };
    let mut rows = Vec::new();
    let mut totals = Totals { enrolments: 0, states: Vec::new(), awaiting: 0, sampled: 0, average_percent: 0 };
    let mut counts = [0usize; 4];
    let mut percent_sum = 0i64;
    if let Some(filter) = &filter {
        let mut stream = progress(&mut tx, &scope, filter);
        while let Some(row) = stream.next().await {
            let row = row?;
            totals.enrolments += 1;
            totals.awaiting += row.items_awaiting_assessment;
            totals.sampled += usize::from(row.iqa_sampled);
            percent_sum += row.percent_met;
            if let Some(i) = SignOffState::ALL.iter().position(|s| *s == row.sign_off_state) {
                counts[i] += 1;
            }
            if rows.len() < PAGE_ROWS {
                rows.push(row);
            }
        }
    }
    tx.commit().await?;
    if totals.enrolments > 0 {
        totals.average_percent = percent_sum / totals.enrolments as i64;
    }
    totals.states = SignOffState::ALL.iter().zip(counts).map(|(s, n)| (s.label(), n)).collect();
    let query = query_string(&raw);
    let csv_link =
        if query.is_empty() { "/reports/progress.csv".into() } else { format!("/reports/progress.csv?{query}") };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = ProgressPage {
        nav,
        raw,
        errors,
        assessors,
        units,
        states: SignOffState::ALL.iter().map(|s| (s.as_str(), s.label())).collect(),
        rows,
        totals,
        csv_link,
    };
    render(status, &page)
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv")))
}

/// The report as JSON: how many enrolments, and one row for each.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ProgressReport {
    /// How many enrolments the filter matches, on every page.
    count: i64,
    /// One page of the rows, by learner and unit.
    items: Vec<ProgressRow>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// Every enrolment the caller may report on (administrators and IQAs: their centres; external
/// verifiers: what their grants cover), filtered; as CSV when `Accept: text/csv` asks for it.
#[utoipa::path(
    get,
    path = "/api/v1/reports/progress",
    params(RawFilter, PageQuery),
    responses(
        (status = 200, description = "One row per enrolment, by learner (the CSV of `/api/v1/reports/progress.csv` when `Accept: text/csv`)",
         body = ProgressReport),
        (status = 422, description = "A filter is not one of the choices, or the limit or cursor is not accepted", body = Problem),
    )
)]
async fn api(
    State(state): State<AppState>,
    actor: Actor,
    headers: HeaderMap,
    Query(raw): Query<RawFilter>,
    Query(query): Query<PageQuery>,
) -> AppResult<Response> {
    if wants_csv(&headers) {
        return csv_response(state, actor, raw).await;
    }
    let filter = Filter::parse(&raw).map_err(AppError::Invalid)?;
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    let scope = policy::report_scope(&state.views, &mut tx, &actor).await?;
    let count = progress_count(&mut tx, &scope, &filter).await?;
    let page = progress_page(&mut tx, &scope, &filter, &request).await?;
    tx.commit().await?;
    Ok(Json(ProgressReport { count, items: page.items, next_cursor: page.next_cursor }).into_response())
}

async fn csv_download(
    State(state): State<AppState>,
    actor: Actor,
    Query(raw): Query<RawFilter>,
) -> AppResult<Response> {
    csv_response(state, actor, raw).await
}

/// The report as CSV (RFC 4180, UTF-8 with a byte-order mark, a header row; cells a spreadsheet
/// would run as formulas start with an apostrophe), written while the rows are read.
#[utoipa::path(
    get,
    path = "/api/v1/reports/progress.csv",
    params(RawFilter),
    responses(
        (status = 200, description = "One row per enrolment, by learner", body = String, content_type = "text/csv"),
        (status = 422, description = "A filter is not one of the choices", body = Problem),
    )
)]
async fn csv_api(State(state): State<AppState>, actor: Actor, Query(raw): Query<RawFilter>) -> AppResult<Response> {
    csv_response(state, actor, raw).await
}

/// The CSV, written line by line while the query's rows arrive: the authorisation and the
/// filters are checked first, so a refusal is a proper error and not a broken download.
async fn csv_response(state: AppState, actor: Actor, raw: RawFilter) -> AppResult<Response> {
    let filter = Filter::parse(&raw).map_err(AppError::Invalid)?;
    let scope: ReportScope = {
        let mut tx = state.begin(&actor).await?;
        let scope = policy::report_scope(&state.views, &mut tx, &actor).await?;
        tx.commit().await?;
        scope
    };
    let header_line = csv_header()?;
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(CSV_LINES_IN_FLIGHT);
    tokio::spawn(async move {
        let result = async {
            let mut tx = state.begin(&actor).await?;
            let mut rows = progress(&mut tx, &scope, &filter);
            while let Some(row) = rows.next().await {
                let line = row?.csv_line()?;
                // A client that went away ends the query: there is no one to send the rest to.
                if sender.send(Ok(Bytes::from(line))).await.is_err() {
                    return Ok(());
                }
            }
            drop(rows);
            tx.commit().await?;
            Ok::<(), AppError>(())
        }
        .await;
        if let Err(error) = result {
            tracing::warn!(error = %error, "the progress report's CSV stopped part way");
            // Abort the body so the client sees an incomplete download, not a short report.
            let _ = sender.send(Err(std::io::Error::other("the report could not be completed"))).await;
        }
    });
    let lines = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(Bytes::from(header_line)) }).chain(
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|line| (line, receiver))
        }),
    );
    let today = chrono::Utc::now().date_naive();
    let disposition = format!("attachment; filename=\"progress-{today}.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8; header=present")),
            (header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("ascii")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Body::from_stream(lines),
    )
        .into_response())
}
