//! The verifier's pages: their current access, a centre's overview (learners, assessors, units,
//! completion, sign-off, overdue work) and their report notes. Every page runs read-only; the
//! notes form is the one write, in a transaction of its own.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;
use uuid::Uuid;

use super::{CurrentGrant, NewNote, Note};
use crate::AppState;
use crate::assessment::EnrolmentSummary;
use crate::audit::{self, Event};
use crate::auth::policy::{self, Access};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::openapi::Created;
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    Routes::new()
        .get("/verification", Access::SignedIn, landing)
        .get("/verify/centres/{id}", Access::VerifierCentre, overview_page)
        .post("/verify/centres/{id}/notes", Access::VerifierCentre, note_form)
        .get("/verify/centres/{id}/sample", Access::VerifierCentre, super::sample::sample_page)
        .api(Access::VerifierCentre, routes!(super::sample::sample_api))
        .get("/verify/centres/{id}/sample/pack", Access::VerifierCentre, super::sample::sample_pack)
        .api(Access::VerifierCentre, routes!(super::sample::sample_pack))
        .api(Access::VerifierCentre, routes!(overview_api))
        .api(Access::VerifierCentre, routes!(note_api))
}

#[derive(Template)]
#[template(path = "verification/landing.html")]
struct Landing {
    nav: Nav,
    grants: Vec<CurrentGrant>,
}

async fn landing(State(state): State<AppState>, nav: Nav, actor: Actor) -> AppResult<Response> {
    let mut conn = state.begin(&actor).await?;
    let grants = super::current_grants(&mut conn, &actor).await?;
    render(StatusCode::OK, &Landing { nav, grants })
}

/// A learner's enrolment in the overview.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OverviewRow {
    #[serde(flatten)]
    pub summary: EnrolmentSummary,
    pub signed_off: bool,
}

/// A count under a name (an assessor's caseload, a unit's learners).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Tally {
    pub name: String,
    pub learners: usize,
    pub signed_off: usize,
    pub overdue: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = CentreOverview)]
pub struct Overview {
    pub centre_id: Uuid,
    pub centre_name: String,
    pub learners: Vec<OverviewRow>,
    pub assessors: Vec<Tally>,
    pub units: Vec<Tally>,
    pub criteria_met: i64,
    pub criteria_total: i64,
    pub signed_off: usize,
    pub overdue: usize,
    pub iqa: IqaActivity,
    pub notes: Vec<Note>,
}

/// The internal quality assurers' sampling of the learners in scope, by where each sample stands.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct IqaActivity {
    pub planned: usize,
    pub overdue: usize,
    pub agreed: usize,
    pub referred_back: usize,
    pub responded: usize,
    pub closed: usize,
}

fn tally(rows: &[OverviewRow], key: impl Fn(&OverviewRow) -> String) -> Vec<Tally> {
    let mut tallies: Vec<Tally> = Vec::new();
    for row in rows {
        let name = key(row);
        let index = match tallies.iter().position(|t| t.name == name) {
            Some(index) => index,
            None => {
                tallies.push(Tally { name, learners: 0, signed_off: 0, overdue: 0 });
                tallies.len() - 1
            }
        };
        let t = &mut tallies[index];
        t.learners += 1;
        t.signed_off += usize::from(row.signed_off);
        t.overdue += usize::from(row.summary.overdue);
    }
    tallies.sort_by(|a, b| a.name.cmp(&b.name));
    tallies
}

async fn overview(state: &AppState, actor: &Actor, centre_id: Uuid) -> AppResult<Overview> {
    let mut conn = state.begin(actor).await?;
    policy::verifier_centre(&mut conn, actor, centre_id).await?;
    let centre_name = sqlx::query_scalar!("SELECT name FROM centres WHERE id = $1", centre_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound("centre"))?;
    let in_scope = policy::verifier_enrolments(&mut conn, actor).await?;
    let here =
        sqlx::query_scalar!("SELECT id FROM enrolments WHERE centre_id = $1 AND id = ANY($2)", centre_id, &in_scope)
            .fetch_all(&mut *conn)
            .await?;
    let mut learners = Vec::new();
    for summary in crate::assessment::summaries(&mut conn, &here).await? {
        let signed_off = crate::assessment::sign_off::in_force(&mut conn, summary.id).await?.is_some();
        learners.push(OverviewRow { summary, signed_off });
    }
    learners.sort_by(|a, b| a.summary.learner_name.cmp(&b.summary.learner_name));
    let notes = super::notes(&mut conn, actor.id, centre_id).await?;
    let mut iqa = IqaActivity::default();
    let quality = policy::QualityScope::Verifier { centres: vec![centre_id] };
    let plan = crate::quality::sampling::plan(&mut conn, &quality).await?;
    for row in plan.into_iter().filter(|row| here.contains(&row.enrolment_id)) {
        use crate::quality::sampling::Status;
        *match row.status {
            Status::Planned => &mut iqa.planned,
            Status::Overdue => &mut iqa.overdue,
            Status::Agreed => &mut iqa.agreed,
            Status::ReferredBack => &mut iqa.referred_back,
            Status::Responded => &mut iqa.responded,
            Status::Closed => &mut iqa.closed,
        } += 1;
    }
    conn.commit().await?;
    let mut views = state.pool.begin().await?;
    audit::record(
        &mut views,
        Event::new(Some(actor), "verifier.viewed_centre", "centre", Some(centre_id))
            .as_role(Role::Eqa)
            .centre(centre_id),
    )
    .await?;
    views.commit().await?;
    Ok(Overview {
        centre_id,
        centre_name,
        assessors: tally(&learners, |r| r.summary.assessor_name.clone()),
        units: tally(&learners, |r| format!("{} {}", r.summary.unit_code, r.summary.unit_title)),
        criteria_met: learners.iter().map(|r| r.summary.criteria_met).sum(),
        criteria_total: learners.iter().map(|r| r.summary.criteria_total).sum(),
        signed_off: learners.iter().filter(|r| r.signed_off).count(),
        overdue: learners.iter().filter(|r| r.summary.overdue).count(),
        learners,
        iqa,
        notes,
    })
}

#[derive(Template)]
#[template(path = "verification/overview.html")]
struct OverviewPage {
    nav: Nav,
    overview: Overview,
    errors: Vec<FieldError>,
    visit_on: String,
    body: String,
}

async fn overview_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let overview = overview(&state, &actor, id).await?;
    let visit_on = chrono::Utc::now().date_naive().to_string();
    render(StatusCode::OK, &OverviewPage { nav, overview, errors: vec![], visit_on, body: String::new() })
}

/// The verifier's overview of a centre within their access: learners, assessors, units,
/// completion, sign-off, IQA activity, overdue work and their own notes. The view is audited.
#[utoipa::path(
    get,
    path = "/api/v1/verify/centres/{id}",
    params(("id" = Uuid, Path, description = "The centre")),
    responses((status = 200, description = "The overview", body = Overview))
)]
async fn overview_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Json<Overview>> {
    Ok(Json(overview(&state, &actor, id).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct NoteRequest {
    #[serde(default)]
    visit_on: String,
    #[serde(default)]
    body: String,
}

/// The verifier's one write. Their request transactions are read-only, so this one action
/// begins its own, which writes only the note and its audit event.
async fn write_note(state: &AppState, actor: &Actor, centre_id: Uuid, request: &NoteRequest) -> AppResult<Uuid> {
    {
        let mut check = state.begin(actor).await?;
        policy::verifier_centre(&mut check, actor, centre_id).await?;
    }
    let note = NewNote::parse(&request.visit_on, &request.body)?;
    let mut tx = state.pool.begin().await?;
    let id = super::add_note(&mut tx, actor, centre_id, &note).await?;
    tx.commit().await?;
    Ok(id)
}

async fn note_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(request): Form<NoteRequest>,
) -> AppResult<Response> {
    match write_note(&state, &actor, id, &request).await {
        Ok(_) => Ok(Redirect::to(&format!("/verify/centres/{id}#notes")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let overview = overview(&state, &actor, id).await?;
            let page = OverviewPage { nav, overview, errors, visit_on: request.visit_on, body: request.body };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(other) => Err(other),
    }
}

/// The verifier's note from a centre visit: their only write.
#[utoipa::path(
    post,
    path = "/api/v1/verify/centres/{id}/notes",
    params(("id" = Uuid, Path, description = "The centre")),
    request_body = NoteRequest,
    responses(
        (status = 201, description = "Written", body = Created),
        (status = 422, description = "The visit date or the note is missing or not accepted", body = Problem),
    )
)]
async fn note_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(request): Json<NoteRequest>,
) -> AppResult<(StatusCode, Json<Created>)> {
    let id = write_note(&state, &actor, id, &request).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

impl OverviewRow {
    pub fn completion(&self) -> String {
        format!("{} of {}", self.summary.criteria_met, self.summary.criteria_total)
    }
}

impl Note {
    pub fn visit(&self) -> String {
        self.visit_on.format("%d %b %Y").to_string()
    }
}
