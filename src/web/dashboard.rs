//! Each person's starting page: their own units (learner), their caseload (assessor), the
//! learners they quality-assure (IQA), the portfolios they may verify (EQA), or the centre's
//! people (admin). One person can hold several roles; each gets its section.

use std::collections::HashSet;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use uuid::Uuid;

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

/// Whom and what a person's dashboard lists, whatever stands in each line: kept by each server
/// process until it hears that enrolments, grants, roles or IQA samples changed (migration 0026).
/// The lines' summaries are kept by enrolment (`assessment::kept_summaries`).
pub struct DashboardLists {
    /// The enrolments the person may see (`policy::visible_enrolments`).
    visible: Vec<Uuid>,
    /// Of those, the ones they assess, quality-assure, and may verify.
    caseload: HashSet<Uuid>,
    quality_assured: HashSet<Uuid>,
    verifiable: HashSet<Uuid>,
    /// IQA samples referred back to the person as assessor and not yet answered.
    referred_back: Vec<crate::quality::PlanRow>,
    /// The day it was read: a verifier's grants run by the day.
    as_of: chrono::NaiveDate,
}

impl crate::db::changes::OfDay for DashboardLists {
    fn as_of(&self) -> chrono::NaiveDate {
        self.as_of
    }
}

impl DashboardLists {
    async fn load(state: &AppState, actor: &Actor) -> AppResult<DashboardLists> {
        let as_of = chrono::Utc::now().date_naive();
        let mut conn = state.begin(actor).await?;
        let visible = crate::auth::policy::visible_enrolments(&mut conn, actor).await?;
        let eqa_centres = crate::auth::policy::verifier_centres(&mut conn, actor).await?;
        let rows =
            sqlx::query!("SELECT id, centre_id, assessor_id, iqa_id FROM enrolments WHERE id = ANY($1)", &visible)
                .fetch_all(&mut *conn)
                .await?;
        let referred_back = crate::quality::referred_back_to(&mut conn, actor.id).await?;
        conn.commit().await?;
        let of = |test: &dyn Fn(&_) -> bool| rows.iter().filter(|r| test(r)).map(|r| r.id).collect::<HashSet<_>>();
        Ok(DashboardLists {
            caseload: of(&|r| r.assessor_id == actor.id),
            quality_assured: of(&|r| r.iqa_id == Some(actor.id)),
            verifiable: of(&|r| eqa_centres.contains(&r.centre_id)),
            visible,
            referred_back,
            as_of,
        })
    }
}

/// The dashboard for `actor`, shared by the page and the API.
async fn gather(state: &AppState, nav: Nav, actor: &Actor) -> AppResult<Dashboard> {
    let lists =
        state.changes.dashboard(actor.id, async { DashboardLists::load(state, actor).await.map(Arc::new) }).await?;
    let all = assessment::kept_summaries(state, actor, &lists.visible).await?;
    let pick = |test: &dyn Fn(&EnrolmentSummary) -> bool| all.iter().filter(|s| test(s)).cloned().collect::<Vec<_>>();
    let dashboard = Dashboard {
        nav,
        first_name: actor.name.split_whitespace().next().unwrap_or(&actor.name).to_string(),
        own: pick(&|s| s.learner_id == actor.id),
        caseload: pick(&|s| lists.caseload.contains(&s.id)),
        quality_assured: pick(&|s| lists.quality_assured.contains(&s.id)),
        verifiable: pick(&|s| lists.verifiable.contains(&s.id)),
        referred_back: lists.referred_back.clone(),
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
