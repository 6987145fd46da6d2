//! The administrator's retention page and API: the centre's schedules, the learners under a
//! legal hold, and the latest purge runs; placing and lifting holds from a person's page.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::purge::{self, PurgeRun};
use super::{CountedFrom, HoldReason, LegalHold, PeriodUnit, RecordType, Schedule, ScheduleInput};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::pagination::{Page, PageQuery, PageRequest};
use crate::web::route_table::Routes;
use crate::web::{Nav, form_field, render};

pub fn router() -> Routes {
    use Access::{Admin, AdminTarget};
    Routes::new()
        .get("/admin/retention", Admin, retention_page)
        .post("/admin/retention", Admin, retention_form)
        .post("/admin/users/{id}/legal-hold", AdminTarget, place_hold_form)
        .post("/admin/users/{id}/legal-hold/lift", AdminTarget, lift_hold_form)
        .api(Admin, utoipa_axum::routes!(show_api))
        .api(Admin, utoipa_axum::routes!(update_api))
        .api(Admin, utoipa_axum::routes!(purge_runs_api))
        .api(Admin, utoipa_axum::routes!(holds_in_force_api))
        .api(AdminTarget, utoipa_axum::routes!(holds_api))
        .api(AdminTarget, utoipa_axum::routes!(place_hold_api))
        .api(AdminTarget, utoipa_axum::routes!(lift_hold_api))
}

/// A centre's retention: every record type's schedule and how many learners are under a legal
/// hold (`GET /api/v1/centre/legal-holds` lists them a page at a time).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RetentionSettings {
    pub centre_id: Uuid,
    pub schedules: Vec<Schedule>,
    pub legal_holds_in_force: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HeldLearner {
    pub learner_name: String,
    #[serde(flatten)]
    pub hold: LegalHold,
}

/// Schedules to change; record types left out keep theirs.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RetentionUpdate {
    pub schedules: Vec<ScheduleInput>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct HoldRequest {
    /// Why the learner's records must be kept (a claim, an appeal, an investigation): 1 to 2000 characters.
    #[serde(default)]
    pub reason: String,
}

async fn settings(state: &AppState, actor: &Actor, centre: Uuid) -> AppResult<RetentionSettings> {
    let mut conn = state.begin(actor).await?;
    let schedules = super::schedules(&mut conn, centre).await?;
    let legal_holds_in_force = super::holds_in_force(&mut conn, centre).await?;
    Ok(RetentionSettings { centre_id: centre, schedules, legal_holds_in_force })
}

/// One record type's row on the form: its values as shown (saved, or as just entered).
struct ScheduleRow {
    schedule: Schedule,
    count: String,
    unit: String,
    from: String,
}

impl ScheduleRow {
    fn key(&self) -> &'static str {
        self.schedule.key()
    }
}

struct UnitOption {
    value: &'static str,
}

struct FromOption {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "retention/schedules.html")]
struct RetentionPage {
    nav: Nav,
    rows: Vec<ScheduleRow>,
    holds: Vec<HeldLearner>,
    runs: Vec<PurgeRun>,
    units: Vec<UnitOption>,
    froms: Vec<FromOption>,
    saved: bool,
    errors: Vec<FieldError>,
}

impl RetentionPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }
}

async fn retention_view(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    entered: Option<&[(String, String)]>,
    saved: bool,
    errors: Vec<FieldError>,
) -> AppResult<Response> {
    let centre = policy::admin_centre(actor)?;
    let current = settings(state, actor, centre).await?;
    let (runs, holds) = {
        let mut conn = state.begin(actor).await?;
        let holds = super::current_holds(&mut conn, centre)
            .await?
            .into_iter()
            .map(|(learner_name, hold)| HeldLearner { learner_name, hold })
            .collect();
        (purge::recent_runs(&mut conn, centre, 10).await?, holds)
    };
    let rows = current
        .schedules
        .into_iter()
        .map(|schedule| {
            let key = schedule.key();
            let value = |suffix: &str, saved: String| match entered {
                Some(fields) => form_field(fields, &format!("{key}_{suffix}")).to_string(),
                None => saved,
            };
            ScheduleRow {
                count: value("count", schedule.period.count.to_string()),
                unit: value("unit", schedule.period.unit.as_str().to_string()),
                from: value("from", schedule.counted_from.as_str().to_string()),
                schedule,
            }
        })
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(
        status,
        &RetentionPage {
            nav,
            rows,
            holds,
            runs,
            units: PeriodUnit::ALL.into_iter().map(|u| UnitOption { value: u.as_str() }).collect(),
            froms: CountedFrom::ALL.into_iter().map(|c| FromOption { value: c.as_str(), label: c.label() }).collect(),
            saved,
            errors,
        },
    )
}

#[derive(Deserialize)]
struct SavedQuery {
    saved: Option<String>,
}

async fn retention_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    axum::extract::Query(query): axum::extract::Query<SavedQuery>,
) -> AppResult<Response> {
    retention_view(&state, nav, &actor, None, query.saved.is_some(), vec![]).await
}

async fn update(state: &AppState, actor: &Actor, inputs: &[ScheduleInput]) -> AppResult<RetentionSettings> {
    let centre = policy::admin_centre(actor)?;
    let mut tx = state.begin(actor).await?;
    super::set_schedules(&mut tx, actor, centre, inputs).await?;
    tx.commit().await?;
    settings(state, actor, centre).await
}

async fn retention_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let inputs: Vec<ScheduleInput> = RecordType::ALL
        .into_iter()
        .map(|t| {
            let key = t.as_str();
            ScheduleInput {
                record_type: key.to_string(),
                period_count: serde_json::Value::String(form_field(&fields, &format!("{key}_count")).to_string()),
                period_unit: form_field(&fields, &format!("{key}_unit")).to_string(),
                counted_from: form_field(&fields, &format!("{key}_from")).to_string(),
            }
        })
        .collect();
    match update(&state, &actor, &inputs).await {
        Ok(_) => Ok(Redirect::to("/admin/retention?saved=1").into_response()),
        Err(AppError::Invalid(errors)) => retention_view(&state, nav, &actor, Some(&fields), false, errors).await,
        Err(other) => Err(other),
    }
}

/// The centre's retention schedules and legal holds.
#[utoipa::path(
    get,
    path = "/api/v1/centre/retention",
    responses((status = 200, description = "Every record type's schedule (the default until changed) and how many learners are under a legal hold", body = RetentionSettings))
)]
async fn show_api(State(state): State<AppState>, actor: Actor) -> AppResult<Json<RetentionSettings>> {
    let centre = policy::admin_centre(&actor)?;
    Ok(Json(settings(&state, &actor, centre).await?))
}

/// Changes some of the centre's retention schedules (all or none); each change is audited.
/// Assessment, IQA and audit records cannot be kept for less than 3 years.
#[utoipa::path(
    patch,
    path = "/api/v1/centre/retention",
    request_body = RetentionUpdate,
    responses(
        (status = 200, description = "The schedules as they now are", body = RetentionSettings),
        (status = 422, description = "A schedule is not valid or shorter than the minimum; `errors` names each field", body = Problem, content_type = "application/problem+json")
    )
)]
async fn update_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<RetentionUpdate>,
) -> AppResult<Json<RetentionSettings>> {
    Ok(Json(update(&state, &actor, &input.schedules).await?))
}

/// The purge runs, newest first, a page at a time, with what each did at the caller's centre.
#[utoipa::path(
    get,
    path = "/api/v1/centre/purge-runs",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the runs of `eportfolio purge --apply` that changed something", body = Page<PurgeRun>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn purge_runs_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<PurgeRun>>> {
    let request = PageRequest::try_from(&query)?;
    let centre = policy::admin_centre(&actor)?;
    let mut conn = state.begin(&actor).await?;
    Ok(Json(purge::runs_page(&mut conn, centre, &request).await?))
}

/// The learners under a legal hold at the caller's centre, by name, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/centre/legal-holds",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the holds in force, each with the learner's name", body = Page<HeldLearner>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn holds_in_force_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<HeldLearner>>> {
    let request = PageRequest::try_from(&query)?;
    let centre = policy::admin_centre(&actor)?;
    let mut conn = state.begin(&actor).await?;
    let page = super::holds_in_force_page(&mut conn, centre, &request).await?;
    Ok(Json(Page {
        items: page.items.into_iter().map(|(learner_name, hold)| HeldLearner { learner_name, hold }).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// The learner in the path, if they are a learner at the administrator's centre.
async fn learner_at_centre(conn: &mut sqlx::PgConnection, actor: &Actor, id: Uuid) -> AppResult<Uuid> {
    let centre = policy::person_at_centre(conn, actor, id).await?;
    let learner = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_roles WHERE user_id = $1 AND centre_id = $2 AND role = 'learner') AS "found!""#,
        id,
        centre
    )
    .fetch_one(&mut *conn)
    .await?;
    if !learner {
        return Err(AppError::Conflict(
            "Legal holds keep a learner's records from being purged: this person is not a learner here".into(),
            Vec::new(),
        ));
    }
    Ok(centre)
}

async fn place(state: &AppState, actor: &Actor, id: Uuid, reason: &str, field: &str) -> AppResult<LegalHold> {
    let mut tx = state.begin(actor).await?;
    let centre = learner_at_centre(&mut tx, actor, id).await?;
    let reason = HoldReason::parse(reason, field)?;
    let hold = super::place_hold(&mut tx, actor, centre, id, &reason).await?;
    tx.commit().await?;
    Ok(hold)
}

async fn lift(state: &AppState, actor: &Actor, id: Uuid, reason: &str, field: &str) -> AppResult<LegalHold> {
    let mut tx = state.begin(actor).await?;
    let centre = learner_at_centre(&mut tx, actor, id).await?;
    let reason = HoldReason::parse(reason, field)?;
    let hold = super::lift_hold(&mut tx, actor, centre, id, &reason).await?;
    tx.commit().await?;
    Ok(hold)
}

async fn place_hold_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match place(&state, &actor, id, form_field(&fields, "hold_reason"), "hold_reason").await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/users/{id}#retention")).into_response()),
        Err(AppError::Invalid(errors)) => crate::accounts::user_view(&state, nav, &actor, id, None, errors).await,
        Err(other) => Err(other),
    }
}

async fn lift_hold_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match lift(&state, &actor, id, form_field(&fields, "lift_reason"), "lift_reason").await {
        Ok(_) => Ok(Redirect::to(&format!("/admin/users/{id}#retention")).into_response()),
        Err(AppError::Invalid(errors)) => crate::accounts::user_view(&state, nav, &actor, id, None, errors).await,
        Err(other) => Err(other),
    }
}

/// Every legal hold on the learner at the caller's centre, newest first (the one in force
/// first), a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/legal-hold",
    params(("id" = Uuid, Path, description = "The learner"), PageQuery),
    responses(
        (status = 200, description = "One page of the holds, newest first", body = Page<LegalHold>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn holds_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<LegalHold>>> {
    let request = PageRequest::try_from(&query)?;
    let mut conn = state.begin(&actor).await?;
    let centre = policy::person_at_centre(&mut conn, &actor, id).await?;
    Ok(Json(super::holds_page(&mut conn, centre, id, &request).await?))
}

/// Places a legal hold on the learner: nothing about them is purged until it is lifted. Audited.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/legal-hold",
    params(("id" = Uuid, Path, description = "The learner")),
    request_body = HoldRequest,
    responses(
        (status = 201, description = "The hold placed", body = LegalHold),
        (status = 409, description = "Already under a hold, or not a learner", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason given", body = Problem, content_type = "application/problem+json")
    )
)]
async fn place_hold_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(request): Json<HoldRequest>,
) -> AppResult<(StatusCode, Json<LegalHold>)> {
    Ok((StatusCode::CREATED, Json(place(&state, &actor, id, &request.reason, "reason").await?)))
}

/// Lifts the learner's legal hold, with a reason. Audited.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/legal-hold/lift",
    params(("id" = Uuid, Path, description = "The learner")),
    request_body = HoldRequest,
    responses(
        (status = 200, description = "The hold, now lifted", body = LegalHold),
        (status = 409, description = "Not under a hold, or not a learner", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason given", body = Problem, content_type = "application/problem+json")
    )
)]
async fn lift_hold_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(request): Json<HoldRequest>,
) -> AppResult<Json<LegalHold>> {
    Ok(Json(lift(&state, &actor, id, &request.reason, "reason").await?))
}
