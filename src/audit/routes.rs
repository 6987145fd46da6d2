//! History: an enrolment's events as a page and as JSON, and the chain check.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{RecordedEvent, Verification};
use crate::AppState;
use crate::auth::policy::Access;
use crate::auth::policy::{self, Action, Viewed};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult};
use crate::web::pagination::{Page, PageQuery, PageRequest};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    Routes::new()
        .get("/enrolments/{id}/history", Access::Enrolment(Action::View), history_page)
        .api(Access::Enrolment(Action::View), routes!(history_api))
        .api(Access::AuditCheck, routes!(verify_api))
        .merge(super::trail_routes::router())
}

#[derive(Template)]
#[template(path = "audit/history.html")]
struct HistoryPage {
    nav: Nav,
    enrolment_id: Uuid,
    learner_name: String,
    events: Vec<RecordedEvent>,
}

async fn load(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<(Vec<RecordedEvent>, Uuid)> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::View, Viewed::History).await?;
    let events = super::history(&mut tx, Some(id), 500).await?;
    tx.commit().await?;
    Ok((events, access.learner_id))
}

async fn history_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let (events, learner_id) = load(&state, &actor, id).await?;
    let mut conn = state.begin(&actor).await?;
    let learner = crate::accounts::load_actor(&mut conn, learner_id).await?.ok_or(AppError::NotFound("learner"))?;
    render(StatusCode::OK, &HistoryPage { nav, enrolment_id: id, learner_name: learner.name, events })
}

/// Everything that happened to an enrolment's portfolio, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/history",
    params(("id" = Uuid, Path, description = "The enrolment"), PageQuery),
    responses(
        (status = 200, description = "One page of the portfolio's events", body = Page<RecordedEvent>),
        (status = 422, description = "The limit or cursor is not accepted", body = crate::error::Problem),
    )
)]
async fn history_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<RecordedEvent>>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    policy::enrolment(&state.views, &mut tx, &actor, id, Action::View, Viewed::History).await?;
    let page = super::history_page(&mut tx, id, &request).await?;
    tx.commit().await?;
    Ok(Json(page))
}

/// The chain check, for administrators and external verifiers.
#[utoipa::path(
    get,
    path = "/api/v1/audit/verify",
    responses((status = 200, description = "Whether every event's hash matches, and the first that does not", body = Verification))
)]
async fn verify_api(State(state): State<AppState>, actor: Actor) -> AppResult<Json<Verification>> {
    if !(actor.has_role(Role::Admin) || actor.has_role(Role::Eqa)) {
        return Err(AppError::Forbidden("Only administrators and external verifiers can check the audit trail".into()));
    }
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::verify(&mut conn).await?))
}

impl RecordedEvent {
    /// `%d %b %Y %H:%M:%S UTC`, written straight: a trail page shows fifty, and chrono parses
    /// its format string again for each.
    pub fn when(&self) -> String {
        use chrono::{Datelike, Timelike};
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let at = self.occurred_at;
        format!(
            "{:02} {} {:04} {:02}:{:02}:{:02} UTC",
            at.day(),
            MONTHS[at.month0() as usize],
            at.year(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }

    pub fn who(&self) -> String {
        self.actor_name.clone().unwrap_or_else(|| "System".into())
    }

    /// A sentence a person can read, from the event's action and details.
    pub fn summary(&self) -> String {
        let detail = |key: &str| self.details.get(key).and_then(|v| v.as_str()).unwrap_or("").to_string();
        match self.action.as_str() {
            "enrolment.created" => format!("Enrolled on {}", detail("unit")),
            "evidence.submitted" => {
                format!("Submitted evidence \u{201c}{}\u{201d}", detail("title"))
            }
            "decision.recorded" => {
                let outcome = if detail("outcome") == "met" { "met" } else { "not yet met" };
                format!("Judged criterion {} {outcome}", detail("criterion"))
            }
            "verifier.viewed_portfolio" => "External verifier viewed the portfolio".into(),
            "verifier.viewed_history" => "External verifier viewed this history".into(),
            "verifier.viewed_evidence" => "External verifier viewed an evidence item".into(),
            "verifier.opened_file" => "External verifier opened a file".into(),
            "verifier.viewed_tracking_grid" => "External verifier viewed the tracking grid".into(),
            other => other.replace(['.', '_'], " "),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_reads_as_chrono_formats_it() {
        for month in 1..=12 {
            let at =
                chrono::NaiveDate::from_ymd_opt(2026, month, 2 * month + 3).unwrap().and_hms_opt(month, 7, 59).unwrap();
            let event = RecordedEvent {
                seq: 1,
                occurred_at: at.and_utc(),
                actor_id: None,
                actor_name: None,
                actor_role: "system".into(),
                action: "test".into(),
                subject_type: "test".into(),
                subject_id: None,
                enrolment_id: None,
                details: serde_json::json!({}),
                hash: String::new(),
            };
            assert_eq!(event.when(), at.and_utc().format("%d %b %Y %H:%M:%S UTC").to_string());
        }
    }
}
