//! Each person's starting page: their own units (learner), their caseload (assessor), the
//! learners they quality-assure (IQA), the portfolios they may verify (EQA), or the centre's
//! people (admin). One person can hold several roles; each gets its section.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::{Nav, render};
use crate::AppState;
use crate::assessment::{self, EnrolmentSummary};
use crate::auth::{Actor, Role};
use crate::error::AppResult;

#[derive(Template)]
#[template(path = "web/dashboard.html")]
struct Dashboard {
    nav: Nav,
    first_name: String,
    own: Vec<EnrolmentSummary>,
    caseload: Vec<EnrolmentSummary>,
    quality_assured: Vec<EnrolmentSummary>,
    verifiable: Vec<EnrolmentSummary>,
    /// IQA samples referred back to this assessor and not yet answered.
    referred_back: Vec<crate::quality::PlanRow>,
    is_assessor: bool,
    is_iqa: bool,
    is_eqa: bool,
    is_admin: bool,
}

impl Dashboard {
    fn awaiting_total(&self) -> i64 {
        self.caseload.iter().map(|s| s.items_awaiting).sum()
    }

    /// Units on the caseload ready for the assessor's sign-off or waiting for a countersignature.
    fn sign_offs_waiting(&self) -> usize {
        self.caseload.iter().filter(|s| matches!(s.sign_off_state(), "ready" | "awaiting_countersignature")).count()
    }
}

pub async fn show(State(state): State<AppState>, nav: Nav, actor: Actor) -> AppResult<Response> {
    render(StatusCode::OK, &gather(&state, nav, &actor).await?)
}

/// The dashboard for `actor`, shared by the page and the API.
async fn gather(state: &AppState, nav: Nav, actor: &Actor) -> AppResult<Dashboard> {
    let mut conn = state.begin(actor).await?;
    let visible = crate::auth::policy::visible_enrolments(&mut conn, actor).await?;
    let all = assessment::summaries(&mut conn, &visible).await?;
    let eqa_centres = crate::auth::policy::verifier_centres(&mut conn, actor).await?;
    let enrolment_centres =
        sqlx::query!("SELECT id, centre_id, assessor_id, iqa_id FROM enrolments WHERE id = ANY($1)", &visible)
            .fetch_all(&mut *conn)
            .await?;
    let pick = |test: &dyn Fn(&EnrolmentSummary) -> bool| all.iter().filter(|s| test(s)).cloned().collect::<Vec<_>>();
    let row = |id| enrolment_centres.iter().find(|r| r.id == id);
    let dashboard = Dashboard {
        nav,
        first_name: actor.name.split_whitespace().next().unwrap_or(&actor.name).to_string(),
        own: pick(&|s| s.learner_id == actor.id),
        caseload: pick(&|s| row(s.id).is_some_and(|r| r.assessor_id == actor.id)),
        quality_assured: pick(&|s| row(s.id).is_some_and(|r| r.iqa_id == Some(actor.id))),
        verifiable: pick(&|s| row(s.id).is_some_and(|r| eqa_centres.contains(&r.centre_id))),
        referred_back: crate::quality::referred_back_to(&mut conn, actor.id).await?,
        is_assessor: actor.has_role(Role::Assessor),
        is_iqa: actor.has_role(Role::Iqa),
        is_eqa: actor.has_role(Role::Eqa),
        is_admin: actor.has_role(Role::Admin),
    };
    Ok(dashboard)
}

/// The dashboard's figures in the API: the same sections and counts as the page.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct DashboardCounts {
    pub own: Vec<EnrolmentSummary>,
    pub caseload: Vec<EnrolmentSummary>,
    pub quality_assured: Vec<EnrolmentSummary>,
    pub verifiable: Vec<EnrolmentSummary>,
    pub referred_back: Vec<crate::quality::PlanRow>,
    /// Evidence items on the caseload awaiting assessment.
    pub items_awaiting: i64,
    /// Caseload units ready for sign-off or waiting for the learner's countersignature.
    pub sign_offs_waiting: usize,
}

/// `GET /api/v1/dashboard`: what the caller's dashboard shows, from the same queries.
#[utoipa::path(get, path = "/api/v1/dashboard", responses((status = 200, description = "The dashboard's sections and counts", body = DashboardCounts)))]
pub async fn api(State(state): State<AppState>, actor: Actor) -> AppResult<axum::Json<DashboardCounts>> {
    let page = gather(&state, Nav::signed_out(), &actor).await?;
    Ok(axum::Json(DashboardCounts {
        items_awaiting: page.awaiting_total(),
        sign_offs_waiting: page.sign_offs_waiting(),
        own: page.own,
        caseload: page.caseload,
        quality_assured: page.quality_assured,
        verifiable: page.verifiable,
        referred_back: page.referred_back,
    }))
}
