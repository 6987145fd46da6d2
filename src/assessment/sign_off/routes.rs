//! The sign-off page (checklist, the assessor's sign-off and reopen forms, the learner's
//! countersign form, every version's signatures) and the readiness and sign-off API.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Countersigned, SignOff, Signed};
use crate::AppState;
use crate::assessment::EnrolmentSummary;
use crate::assessment::sufficiency::{self, Readiness};
use crate::auth::Actor;
use crate::auth::policy::{self, Access, Action, Relation, Viewed};
use crate::catalogue;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    use Access::Enrolment;
    Routes::new()
        .get("/enrolments/{id}/sign-off", Enrolment(Action::View), page)
        .post("/enrolments/{id}/sign-off", Enrolment(Action::SignOff), sign_off_form)
        .post("/enrolments/{id}/countersign", Enrolment(Action::Countersign), countersign_form)
        .post("/enrolments/{id}/reopen", Enrolment(Action::SignOff), reopen_form)
        .api(Enrolment(Action::View), routes!(readiness_api))
        .api(Enrolment(Action::SignOff), routes!(sign_off_api))
        .api(Enrolment(Action::Countersign), routes!(countersign_api))
        .api(Enrolment(Action::SignOff), routes!(reopen_api))
}

#[derive(Template)]
#[template(path = "assessment/sign_off.html")]
struct SignOffPage {
    nav: Nav,
    summary: EnrolmentSummary,
    readiness: Readiness,
    /// The sign-off in force, if any.
    signed: Option<SignOff>,
    history: Vec<SignOff>,
    is_learner: bool,
    is_assessor: bool,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    reason: String,
    assessor_declaration: &'static str,
    learner_declaration: &'static str,
}

impl SignOffPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }
}

/// What the page shows after one of its forms.
#[derive(Default)]
struct Shown {
    errors: Vec<FieldError>,
    /// A sign-off was refused: list every missing point of the checklist in the error summary.
    refused: bool,
    notice: Option<&'static str>,
    reason: String,
}

async fn show(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    status: StatusCode,
    shown: Shown,
) -> AppResult<Response> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::View, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let readiness = sufficiency::readiness(&mut tx, id, &unit).await?;
    let history = super::history(&mut tx, id).await?;
    let summary = crate::assessment::summaries(&mut tx, &[id]).await?.pop().ok_or(AppError::NotFound("enrolment"))?;
    tx.commit().await?;
    let mut errors = Vec::new();
    if shown.refused {
        for check in readiness.checks.iter().filter(|c| !c.holds) {
            errors.extend(check.missing.iter().map(|m| FieldError::new(check.anchor(), m.clone())));
        }
    }
    errors.extend(shown.errors);
    let page = SignOffPage {
        nav,
        summary,
        readiness,
        signed: history.first().filter(|s| s.is_in_force()).cloned(),
        history,
        is_learner: access.relation == Relation::Learner,
        is_assessor: access.relation == Relation::Assessor,
        errors,
        notice: shown.notice,
        reason: shown.reason,
        assessor_declaration: super::ASSESSOR_DECLARATION,
        learner_declaration: super::LEARNER_DECLARATION,
    };
    render(status, &page)
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
}

async fn page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(done): Query<Done>,
) -> AppResult<Response> {
    let notice = match done.done.as_str() {
        "signed" => Some("The unit is signed off. The learner can now countersign it."),
        "already" => Some("The unit was already signed off: nothing new was recorded."),
        "countersigned" => Some("You have countersigned the sign-off. The unit is complete."),
        "reopened" => Some("The unit is reopened. Its record can change, and signing off again makes a new version."),
        _ => None,
    };
    show(&state, nav, &actor, id, StatusCode::OK, Shown { notice, ..Shown::default() }).await
}

fn ticked(fields: &[(String, String)], name: &str) -> bool {
    fields.iter().any(|(k, v)| k == name && matches!(v.as_str(), "yes" | "on" | "true"))
}

async fn sign_off(state: &AppState, actor: &Actor, id: Uuid, declared: bool) -> AppResult<Signed> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::SignOff, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let signed = super::sign_off_unit(&mut tx, actor, &access, &unit, declared).await?;
    tx.commit().await?;
    Ok(signed)
}

async fn sign_off_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let declared = ticked(&fields, "declaration");
    match sign_off(&state, &actor, id, declared).await {
        Ok(Signed::New(_)) => Ok(Redirect::to(&format!("/enrolments/{id}/sign-off?done=signed")).into_response()),
        Ok(Signed::Already(_)) => Ok(Redirect::to(&format!("/enrolments/{id}/sign-off?done=already")).into_response()),
        Err(AppError::Conflict(_, missing)) if !missing.is_empty() => {
            let errors = if declared {
                Vec::new()
            } else {
                vec![FieldError::new("declaration", "Confirm the declaration once the checklist holds")]
            };
            show(&state, nav, &actor, id, StatusCode::CONFLICT, Shown { refused: true, errors, ..Shown::default() })
                .await
        }
        Err(AppError::Invalid(errors)) => {
            show(&state, nav, &actor, id, StatusCode::UNPROCESSABLE_ENTITY, Shown { errors, ..Shown::default() }).await
        }
        Err(other) => Err(other),
    }
}

async fn countersign(state: &AppState, actor: &Actor, id: Uuid, declared: bool) -> AppResult<Countersigned> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::Countersign, Viewed::Portfolio).await?;
    let done = super::countersign(&mut tx, actor, &access, declared).await?;
    tx.commit().await?;
    Ok(done)
}

async fn countersign_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match countersign(&state, &actor, id, ticked(&fields, "declaration")).await {
        Ok(_) => Ok(Redirect::to(&format!("/enrolments/{id}/sign-off?done=countersigned")).into_response()),
        Err(AppError::Invalid(errors)) => {
            show(&state, nav, &actor, id, StatusCode::UNPROCESSABLE_ENTITY, Shown { errors, ..Shown::default() }).await
        }
        Err(other) => Err(other),
    }
}

async fn reopen(state: &AppState, actor: &Actor, id: Uuid, reason: &str) -> AppResult<()> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::SignOff, Viewed::Portfolio).await?;
    super::reopen(&mut tx, actor, &access, reason).await?;
    tx.commit().await?;
    Ok(())
}

async fn reopen_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let reason = crate::web::form_field(&fields, "reason");
    match reopen(&state, &actor, id, reason).await {
        Ok(()) => Ok(Redirect::to(&format!("/enrolments/{id}/sign-off?done=reopened")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let shown = Shown { errors, reason: reason.to_string(), ..Shown::default() };
            show(&state, nav, &actor, id, StatusCode::UNPROCESSABLE_ENTITY, shown).await
        }
        Err(other) => Err(other),
    }
}

/// The checklist, the sign-off in force and every version, for the API.
/// Where a unit's sign-off stands: the checklist, what is missing, the sign-off in force and
/// every version's signatures.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SignOffState {
    enrolment_id: Uuid,
    unit: String,
    /// Every check holds: the assessor may sign the unit off.
    ready: bool,
    checks: Vec<sufficiency::Check>,
    missing: Vec<String>,
    /// A sign-off is in force: the record is locked.
    locked: bool,
    sign_off: Option<SignOff>,
    history: Vec<SignOff>,
}

async fn sign_off_json(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<SignOffState> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::View, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let readiness = sufficiency::readiness(&mut tx, id, &unit).await?;
    let history = super::history(&mut tx, id).await?;
    tx.commit().await?;
    let current = history.first().filter(|s| s.is_in_force()).cloned();
    Ok(SignOffState {
        enrolment_id: id,
        missing: readiness.missing(),
        unit: readiness.unit,
        ready: readiness.ready,
        checks: readiness.checks,
        locked: current.is_some(),
        sign_off: current,
        history,
    })
}

/// The sign-off checklist (criteria met, occasions, real work, authenticity, witnesses
/// confirmed) and the sign-off's versions.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/readiness",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "Where the sign-off stands", body = SignOffState))
)]
async fn readiness_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Json<SignOffState>> {
    Ok(Json(sign_off_json(&state, &actor, id).await?))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct DeclarationInput {
    #[serde(default)]
    declaration: bool,
}

/// The assessor signs the unit off with their declaration: every check must hold.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/sign-off",
    params(("id" = Uuid, Path, description = "The enrolment")),
    request_body = DeclarationInput,
    responses(
        (status = 201, description = "Signed off", body = SignOffState),
        (status = 200, description = "Already signed off: the sign-off in force", body = SignOffState),
        (status = 409, description = "Not ready: `missing` lists what is still needed", body = Problem),
        (status = 422, description = "The declaration is not confirmed", body = Problem),
    )
)]
async fn sign_off_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(input): Json<DeclarationInput>,
) -> AppResult<(StatusCode, Json<SignOffState>)> {
    let status = match sign_off(&state, &actor, id, input.declaration).await? {
        Signed::New(_) => StatusCode::CREATED,
        Signed::Already(_) => StatusCode::OK,
    };
    Ok((status, Json(sign_off_json(&state, &actor, id).await?)))
}

/// The learner countersigns the sign-off in force with their declaration.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/countersign",
    params(("id" = Uuid, Path, description = "The enrolment")),
    request_body = DeclarationInput,
    responses(
        (status = 201, description = "Countersigned", body = SignOffState),
        (status = 200, description = "Already countersigned", body = SignOffState),
        (status = 409, description = "The unit is not signed off", body = Problem),
        (status = 422, description = "The declaration is not confirmed", body = Problem),
    )
)]
async fn countersign_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(input): Json<DeclarationInput>,
) -> AppResult<(StatusCode, Json<SignOffState>)> {
    let status = match countersign(&state, &actor, id, input.declaration).await? {
        Countersigned::New => StatusCode::CREATED,
        Countersigned::Already => StatusCode::OK,
    };
    Ok((status, Json(sign_off_json(&state, &actor, id).await?)))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct ReopenInput {
    #[serde(default)]
    reason: String,
}

/// The assessor reopens a signed-off unit, with the reason; the old sign-off keeps its
/// signatures.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/reopen",
    params(("id" = Uuid, Path, description = "The enrolment")),
    request_body = ReopenInput,
    responses(
        (status = 200, description = "Reopened", body = SignOffState),
        (status = 409, description = "The unit is not signed off", body = Problem),
        (status = 422, description = "The reason is missing or too long", body = Problem),
    )
)]
async fn reopen_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(input): Json<ReopenInput>,
) -> AppResult<Json<SignOffState>> {
    reopen(&state, &actor, id, &input.reason).await?;
    Ok(Json(sign_off_json(&state, &actor, id).await?))
}
