//! Downloading exports. The page link and the API give the same archive; each download is
//! recorded in the audit trail (a verifier's also as a view, by the policy).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;
use uuid::Uuid;

use super::{PortfolioRecord, gather, leap2a, offline, record_download, zip_stream};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access, Action, Relation, Viewed};
use crate::error::{AppError, AppResult, Problem};
use crate::web::openapi::Binary;
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new()
        .get("/enrolments/{id}/export", Access::Enrolment(Action::View), offline_zip)
        .api(Access::Enrolment(Action::View), routes!(offline_zip))
        .get("/enrolments/{id}/export/leap2a", Access::Enrolment(Action::View), leap2a_zip)
        .api(Access::Enrolment(Action::View), routes!(leap2a_zip))
        .get("/me/export", Access::SignedIn, learner_zip)
        .api(Access::SignedIn, routes!(learner_zip))
}

/// Loads the record the caller may see, in one read.
async fn record_for(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<(PortfolioRecord, Relation)> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::View, Viewed::Portfolio).await?;
    let record = gather(&mut tx, &access, &actor.name).await?;
    tx.commit().await?;
    Ok((record, access.relation))
}

fn attachment(state: &AppState, record: &PortfolioRecord, name: String, entries: Vec<zip_stream::Entry>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.zip\"")),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        zip_stream::body(state.store.clone(), entries, record.generated_at),
    )
        .into_response()
}

/// The portfolio as one ZIP that opens offline: `index.html`, every file, and `manifest.json`
/// with each file's SHA-256 and the record's hash. The download is audited.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/export",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "The offline export", content_type = "application/zip", body = inline(Binary),
        headers(("content-disposition" = String, description = "attachment; filename=\"….zip\""))))
)]
async fn offline_zip(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    let (record, relation) = record_for(&state, &actor, id).await?;
    let (entries, record_sha256) = offline::entries(&record)?;
    record_download(&state.pool, &actor, relation, &record, "offline", Some(&record_sha256)).await?;
    Ok(attachment(&state, &record, record.file_stem("portfolio"), entries))
}

/// The portfolio as a LEAP2A package (Atom), as Mahara imports it. The download is audited.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/export/leap2a",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "The LEAP2A package", content_type = "application/zip", body = inline(Binary),
        headers(("content-disposition" = String, description = "attachment; filename=\"….zip\""))))
)]
async fn leap2a_zip(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    let (record, relation) = record_for(&state, &actor, id).await?;
    let entries = leap2a::entries(&record)?;
    record_download(&state.pool, &actor, relation, &record, "leap2a", None).await?;
    Ok(attachment(&state, &record, record.file_stem("leap2a"), entries))
}

/// The chosen enrolments' offline exports in one ZIP (a verifier's sample pack): each loaded
/// through the policy like a single export (so a verifier's view of each is recorded), each
/// download audited per enrolment.
pub async fn bundle_download(
    state: &AppState,
    actor: &Actor,
    bundle: &offline::Bundle<'_>,
    file_stem: &str,
    enrolments: &[Uuid],
) -> AppResult<Response> {
    let mut tx = state.begin(actor).await?;
    let mut records = Vec::new();
    let mut relations = Vec::new();
    for id in enrolments {
        let access = policy::enrolment(&state.views, &mut tx, actor, *id, Action::View, Viewed::Portfolio).await?;
        records.push(gather(&mut tx, &access, &actor.name).await?);
        relations.push(access.relation);
    }
    tx.commit().await?;
    if records.is_empty() {
        return Err(AppError::Conflict("There are no portfolios to put in the pack".into(), Vec::new()));
    }
    let (entries, record_sha256) = offline::bundle_entries(bundle, &records)?;
    for (record, relation) in records.iter().zip(relations) {
        record_download(&state.pool, actor, relation, record, bundle.format, Some(&record_sha256)).await?;
    }
    Ok(attachment(state, &records[0], file_stem.to_string(), entries))
}

/// Every unit the caller is enrolled on as a learner, in one ZIP. Each enrolment is loaded
/// through the policy like a single export, and each download is audited per enrolment.
#[utoipa::path(
    get,
    path = "/api/v1/me/export",
    responses(
        (status = 200, description = "Every unit's offline export, each in its own folder", content_type = "application/zip",
            body = inline(Binary), headers(("content-disposition" = String, description = "attachment; filename=\"….zip\""))),
        (status = 409, description = "The caller has no portfolio of their own", body = Problem),
    )
)]
async fn learner_zip(State(state): State<AppState>, actor: Actor) -> AppResult<Response> {
    let mut tx = state.begin(&actor).await?;
    let mut records = Vec::new();
    for id in policy::visible_enrolments(&mut tx, &actor).await? {
        let access = policy::enrolment(&state.views, &mut tx, &actor, id, Action::View, Viewed::Portfolio).await?;
        if access.relation == Relation::Learner {
            records.push(gather(&mut tx, &access, &actor.name).await?);
        }
    }
    tx.commit().await?;
    if records.is_empty() {
        return Err(AppError::Conflict(
            "You are not enrolled on any unit as a learner, so there is no portfolio of yours to export".into(),
            Vec::new(),
        ));
    }
    let (entries, record_sha256) = offline::learner_entries(&actor.name, &records)?;
    for record in &records {
        record_download(&state.pool, &actor, Relation::Learner, record, "offline_all", Some(&record_sha256)).await?;
    }
    let name = records[0].file_stem("portfolio");
    let name = name.rsplit_once('-').map(|(stem, _)| format!("{stem}-all")).unwrap_or(name);
    Ok(attachment(&state, &records[0], name, entries))
}
