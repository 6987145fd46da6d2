//! Pages and API for unit specifications: anyone signed in downloads a unit as a unit file or an
//! IMS CASE package; administrators import either on the units page or through the API.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::transfer::{self, Format, ImportReport};
use super::{UnitSummary, list_units};
use crate::AppState;
use crate::auth::policy::{self, Access};
use crate::auth::{Actor, csrf};
use crate::error::{AppError, AppResult, FieldError};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/units", Access::Admin, units_page)
        .post("/admin/units", Access::Admin, import_form)
        .get("/units/{code}/unit-file", Access::SignedIn, unit_file_download)
        .get("/units/{code}/case", Access::SignedIn, case_download)
        .api(Access::SignedIn, utoipa_axum::routes!(unit_file_api))
        .api(Access::SignedIn, utoipa_axum::routes!(case_api))
        .api(Access::Admin, utoipa_axum::routes!(import_api))
}

async fn download(state: &AppState, actor: &Actor, code: &str, format: Format) -> AppResult<Response> {
    let mut conn = state.begin(actor).await?;
    let exported = transfer::export_unit(&mut conn, code, format).await?;
    Ok((
        [
            (header::CONTENT_TYPE, exported.content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", exported.file_name)),
        ],
        exported.text,
    )
        .into_response())
}

async fn unit_file_download(
    State(state): State<AppState>,
    actor: Actor,
    Path(code): Path<String>,
) -> AppResult<Response> {
    download(&state, &actor, &code, Format::Unit).await
}

async fn case_download(State(state): State<AppState>, actor: Actor, Path(code): Path<String>) -> AppResult<Response> {
    download(&state, &actor, &code, Format::Case).await
}

/// The unit's specification as a unit file (TOML), the format `POST /api/v1/units/import` and
/// `eportfolio unit import` read. The same unit always gives the same bytes.
#[utoipa::path(
    get,
    path = "/api/v1/units/{code}/unit-file",
    params(("code" = String, Path, description = "The unit's code, e.g. CC20")),
    responses((status = 200, description = "The unit file", content_type = "application/toml", body = String))
)]
async fn unit_file_api(state: State<AppState>, actor: Actor, code: Path<String>) -> AppResult<Response> {
    unit_file_download(state, actor, code).await
}

/// The unit's specification as an IMS CASE 1.0 CFPackage: a CFDocument, CFItems for the unit,
/// its learning outcomes and criteria (`humanCodingScheme` "1.1", `fullStatement` the wording),
/// and `isChildOf` CFAssociations. Identifiers are UUID v5 of the unit and item codes, so
/// exporting twice gives the same bytes.
#[utoipa::path(
    get,
    path = "/api/v1/units/{code}/case",
    params(("code" = String, Path, description = "The unit's code, e.g. CC20")),
    responses((status = 200, description = "The CFPackage", content_type = "application/json", body = Object))
)]
async fn case_api(state: State<AppState>, actor: Actor, code: Path<String>) -> AppResult<Response> {
    case_download(state, actor, code).await
}

/// Imports in one transaction with its audit event; a refused file leaves nothing behind.
async fn import(state: &AppState, actor: &Actor, bytes: &[u8], format: Option<Format>) -> AppResult<ImportReport> {
    policy::admin_centre(actor)?;
    let mut tx = state.begin(actor).await?;
    let report = transfer::import_unit(&mut tx, Some(actor), bytes, format).await?;
    tx.commit().await?;
    Ok(report)
}

#[derive(Deserialize)]
struct ImportQuery {
    format: Option<String>,
}

/// Imports a unit specification (administrators): the file itself is the body, a unit file
/// (TOML) or an IMS CASE 1.0 package (JSON), told apart by content unless `format` says. 201
/// when the unit is new, 200 when it was updated or already held exactly this (then nothing
/// changes). A malformed file is a 422 naming the problem, and nothing is stored.
#[utoipa::path(
    post,
    path = "/api/v1/units/import",
    params(("format" = Option<String>, Query, description = "`unit` or `case`; by default told from the content")),
    request_body(description = "The unit file or CASE package", content(("application/json"), ("application/toml"))),
    responses(
        (status = 201, description = "A new unit was imported", body = ImportReport),
        (status = 200, description = "An existing unit was updated, or was unchanged", body = ImportReport),
        (status = 409, description = "The update would remove criteria that evidence is mapped to", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 413, description = "Larger than 5 MiB", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 422, description = "Not a valid unit file or CASE package: `errors` names the problem", content_type = "application/problem+json", body = crate::error::Problem),
    )
)]
async fn import_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ImportQuery>,
    body: Bytes,
) -> AppResult<Response> {
    policy::admin_centre(&actor)?;
    let format = match query.format.as_deref().filter(|f| !f.trim().is_empty()) {
        Some(text) => Some(Format::parse(text).map_err(|m| AppError::invalid("format", m))?),
        None => None,
    };
    let report = import(&state, &actor, &body, format).await?;
    let status = if report.outcome == "added" { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(report)).into_response())
}

#[derive(Template)]
#[template(path = "catalogue/units.html")]
struct UnitsPage {
    nav: Nav,
    units: Vec<UnitSummary>,
    report: Option<ImportReport>,
    errors: Vec<FieldError>,
    /// The format chosen in the form, shown again after an error.
    chosen: String,
}

impl UnitsPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }
}

async fn page(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    report: Option<ImportReport>,
    errors: Vec<FieldError>,
    chosen: String,
) -> AppResult<Response> {
    policy::admin_centre(actor)?;
    let mut conn = state.begin(actor).await?;
    let units = list_units(&mut conn).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &UnitsPage { nav, units, report, errors, chosen })
}

async fn units_page(State(state): State<AppState>, nav: Nav, actor: Actor) -> AppResult<Response> {
    page(&state, nav, &actor, None, Vec::new(), String::new()).await
}

async fn import_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    pending: Option<axum::Extension<csrf::PendingCheck>>,
    mut multipart: Multipart,
) -> AppResult<Response> {
    policy::admin_centre(&actor)?;
    let bad_upload = |e: axum::extract::multipart::MultipartError| AppError::BadRequest(e.body_text());
    let mut file: Option<Bytes> = None;
    let mut chosen = String::new();
    let mut first = true;
    while let Some(field) = multipart.next_field().await.map_err(bad_upload)? {
        let name = field.name().unwrap_or("").to_string();
        if first && let Some(axum::Extension(csrf::PendingCheck(expected))) = &pending {
            let given = field.text().await.map_err(bad_upload)?;
            if name != csrf::FIELD || !csrf::matches(expected, &given) {
                return Err(csrf::rejection());
            }
            first = false;
            continue;
        }
        first = false;
        match name.as_str() {
            "format" => chosen = field.text().await.map_err(bad_upload)?,
            "file" => {
                let bytes = field.bytes().await.map_err(bad_upload)?;
                if bytes.len() > transfer::MAX_IMPORT_BYTES {
                    let message = format!(
                        "The file must be {} MiB or smaller: a unit specification is far smaller",
                        transfer::MAX_IMPORT_BYTES >> 20
                    );
                    return page(&state, nav, &actor, None, vec![FieldError::new("file", message)], chosen).await;
                }
                file = Some(bytes);
            }
            _ => {}
        }
    }
    let format = match chosen.trim() {
        "" | "auto" => None,
        text => match Format::parse(text) {
            Ok(format) => Some(format),
            Err(message) => {
                return page(&state, nav, &actor, None, vec![FieldError::new("format", message)], chosen).await;
            }
        },
    };
    let Some(file) = file.filter(|f| !f.is_empty()) else {
        let errors =
            vec![FieldError::new("file", "Choose a unit file (.toml) or an IMS CASE package (.json) to import")];
        return page(&state, nav, &actor, None, errors, chosen).await;
    };
    match import(&state, &actor, &file, format).await {
        Ok(report) => page(&state, nav, &actor, Some(report), Vec::new(), String::new()).await,
        Err(AppError::Invalid(errors)) => page(&state, nav, &actor, None, errors, chosen).await,
        Err(AppError::Conflict(message, _)) => {
            page(&state, nav, &actor, None, vec![FieldError::new("file", message)], chosen).await
        }
        Err(other) => Err(other),
    }
}
