//! IQA pages (sampling plan and draws, strategy, one sample, CAMERA coverage, standardisation)
//! and the same records under /api/v1. Verifiers read them; only the IQA writes.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::{Duration, NaiveDate, Utc};
use serde::Deserialize;
use utoipa_axum::routes;
use uuid::Uuid;

use super::sampling::{
    self, Coverage, Draw, Meeting, MeetingInput, PlanRow, PopulationItem, RatePercent, ReviewedDecision, RiskBand,
    SampleInput, StaffMember, Strategy,
};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access, QualityScope, SampleAction, SampleRelation};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::openapi::Created;
use crate::web::pagination::{Page, PageQuery, PageRequest};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    use Access::{Iqa, IqaRecords, IqaSample, IqaSampleResponse};
    Routes::new()
        .get("/iqa/plan", IqaRecords, plan_page)
        .post("/iqa/plan", Iqa, add_to_plan_form)
        .post("/iqa/samples/draw", Iqa, draw_form)
        .get("/iqa/strategy", IqaRecords, strategy_page)
        .post("/iqa/strategy/bands", Iqa, band_form)
        .post("/iqa/strategy/rates", Iqa, rate_form)
        .get("/iqa/samples/{id}", IqaSample, sample_page)
        .post("/iqa/samples/{id}/record", Iqa, record_form)
        .post("/iqa/samples/{id}/response", IqaSampleResponse, response_form)
        .post("/iqa/samples/{id}/close", Iqa, close_form)
        .get("/iqa/coverage", IqaRecords, coverage_page)
        .get("/standardisation", IqaRecords, standardisation_page)
        .post("/standardisation", Iqa, standardisation_form)
        .api(IqaRecords, routes!(strategy_api))
        .api(Iqa, routes!(band_api))
        .api(Iqa, routes!(rate_api))
        .api(Iqa, routes!(draw_api))
        .api(IqaRecords, routes!(draws_api))
        .api(IqaRecords, routes!(plan_api))
        .api(Iqa, routes!(add_to_plan_api))
        .api(IqaSample, routes!(sample_api))
        .api(Iqa, routes!(record_api))
        .api(IqaSampleResponse, routes!(response_api))
        .api(Iqa, routes!(close_api))
        .api(IqaRecords, routes!(coverage_api))
        .api(IqaRecords, routes!(standardisation_api))
        .api(Iqa, routes!(record_meeting_api))
}

/// The centre an IQA writes records for.
fn iqa_centre(actor: &Actor) -> AppResult<Uuid> {
    policy::iqa(actor)?.centres().into_iter().next().ok_or(AppError::NotFound("centre"))
}

use crate::web::form_field as field;

/// A planned date as typed; blank means two weeks from today.
fn parse_planned_on(text: Option<&str>) -> Result<NaiveDate, FieldError> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(Utc::now().date_naive() + Duration::days(14)),
        Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map_err(|_| FieldError::new("planned_on", "Enter the planned date, for example 2026-03-31")),
    }
}

fn parse_uuid(field: &str, text: &str, message: &str) -> Result<Uuid, AppError> {
    text.trim().parse().map_err(|_| AppError::invalid(field, message))
}

#[derive(Debug, Default, Deserialize)]
struct Done {
    #[serde(default)]
    done: String,
}

fn notice_for(done: &str) -> Option<&'static str> {
    Some(match done {
        "drawn" => "The sample is drawn and its items are in your plan. The seed is recorded below.",
        "planned" => "The item is added to your sampling plan.",
        "band" => "The assessor's risk band is saved.",
        "rate" => "The sampling rate is saved.",
        "recorded" => "Your sample record is signed and saved.",
        "responded" => "Your response is sent to the internal quality assurer.",
        "closed" => "The sample is closed.",
        "meeting" => "The standardisation meeting is recorded.",
        _ => return None,
    })
}

// ---------- the sampling plan and draws ----------

#[derive(Template)]
#[template(path = "quality/plan.html")]
struct PlanPage {
    nav: Nav,
    is_iqa: bool,
    rows: Vec<PlanRow>,
    draws: Vec<Draw>,
    population: Vec<PopulationItem>,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    seed: String,
}

impl PlanPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, name)
    }
}

async fn show_plan(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    status: StatusCode,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    seed: String,
) -> AppResult<Response> {
    let mut tx = state.begin(actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, actor, "plan").await?;
    let rows = sampling::plan(&mut tx, &scope).await?;
    let draws = sampling::draws(&mut tx, &scope).await?;
    let population = if scope.is_iqa() { sampling::population(&mut tx, &scope).await? } else { Vec::new() };
    tx.commit().await?;
    render(status, &PlanPage { nav, is_iqa: scope.is_iqa(), rows, draws, population, errors, notice, seed })
}

async fn plan_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Query(done): Query<Done>,
) -> AppResult<Response> {
    show_plan(&state, nav, &actor, StatusCode::OK, Vec::new(), notice_for(&done.done), String::new()).await
}

async fn draw(
    state: &AppState,
    actor: &Actor,
    seed: Option<&str>,
    planned_on: Option<&str>,
    preview: bool,
) -> AppResult<Draw> {
    let scope = policy::iqa(actor)?;
    let mut errors = Vec::new();
    let seed = sampling::parse_seed(seed).map_err(|e| errors.push(e)).ok();
    let planned_on = parse_planned_on(planned_on).map_err(|e| errors.push(e)).ok();
    let (Some(seed), Some(planned_on), true) = (seed, planned_on, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let mut tx = state.begin(actor).await?;
    let drawn = sampling::draw(&mut tx, actor, &scope, seed, planned_on, preview).await?;
    tx.commit().await?;
    Ok(drawn)
}

async fn draw_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match draw(&state, &actor, Some(field(&fields, "seed")), Some(field(&fields, "planned_on")), false).await {
        Ok(_) => Ok(Redirect::to("/iqa/plan?done=drawn").into_response()),
        Err(AppError::Invalid(errors)) => {
            let seed = field(&fields, "seed").to_string();
            show_plan(&state, nav, &actor, StatusCode::UNPROCESSABLE_ENTITY, errors, None, seed).await
        }
        Err(other) => Err(other),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct DrawRequest {
    /// The seed to draw with (a new one when absent), so anyone can repeat the draw.
    seed: Option<String>,
    /// YYYY-MM-DD; today when absent.
    planned_on: Option<String>,
    /// Only show what would be drawn; record nothing.
    #[serde(default)]
    preview: bool,
}

/// Draws a stratified sample of the IQA's population by the sampling strategy, reproducibly
/// from the seed; `preview` shows it without recording it.
#[utoipa::path(
    post,
    path = "/api/v1/iqa/samples/draw",
    request_body = DrawRequest,
    responses(
        (status = 201, description = "Drawn and added to the plan", body = Draw),
        (status = 200, description = "The preview: nothing recorded", body = Draw),
        (status = 422, description = "The seed or date is not accepted", body = Problem),
    )
)]
async fn draw_api(State(state): State<AppState>, actor: Actor, Json(body): Json<DrawRequest>) -> AppResult<Response> {
    let drawn = draw(&state, &actor, body.seed.as_deref(), body.planned_on.as_deref(), body.preview).await?;
    let status = if body.preview { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(drawn)).into_response())
}

/// Every recorded draw with its seed, population and strata, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/iqa/draws",
    params(PageQuery),
    responses((status = 200, description = "One page of the draws", body = Page<Draw>), (status = 422, description = "The limit or cursor is not accepted", body = Problem))
)]
async fn draws_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<Draw>>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, &actor, "draws").await?;
    let page = sampling::draws_page(&mut tx, &scope, &request).await?;
    tx.commit().await?;
    Ok(Json(page))
}

async fn add_to_plan(state: &AppState, actor: &Actor, evidence: &str, planned_on: Option<&str>) -> AppResult<Uuid> {
    let scope = policy::iqa(actor)?;
    let evidence_id = parse_uuid("evidence_id", evidence, "Choose the evidence to sample")?;
    let planned_on = parse_planned_on(planned_on).map_err(|e| AppError::Invalid(vec![e]))?;
    let mut tx = state.begin(actor).await?;
    let id = sampling::add_to_plan(&mut tx, actor, &scope, evidence_id, planned_on).await?;
    tx.commit().await?;
    Ok(id)
}

async fn add_to_plan_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match add_to_plan(&state, &actor, field(&fields, "evidence_id"), Some(field(&fields, "planned_on"))).await {
        Ok(_) => Ok(Redirect::to("/iqa/plan?done=planned").into_response()),
        Err(AppError::Invalid(errors)) => {
            show_plan(&state, nav, &actor, StatusCode::UNPROCESSABLE_ENTITY, errors, None, String::new()).await
        }
        Err(other) => Err(other),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct PlanRequest {
    #[serde(default)]
    evidence_id: String,
    planned_on: Option<String>,
}

/// Adds one assessed evidence item to the sampling plan.
#[utoipa::path(
    post,
    path = "/api/v1/iqa/plan",
    request_body = PlanRequest,
    responses(
        (status = 201, description = "Planned", body = Created),
        (status = 409, description = "Already in the plan, or the IQA's own decision", body = Problem),
        (status = 422, description = "The evidence or date is not accepted", body = Problem),
    )
)]
async fn add_to_plan_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<PlanRequest>,
) -> AppResult<Response> {
    let id = add_to_plan(&state, &actor, &body.evidence_id, body.planned_on.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(Created { id })).into_response())
}

/// The sampling plan: assessor × learner × unit × method × stage × date, with each sample's record.
/// By planned date (then assessor and learner), a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/iqa/plan",
    params(PageQuery),
    responses((status = 200, description = "One page of the plan", body = Page<PlanRow>), (status = 422, description = "The limit or cursor is not accepted", body = Problem))
)]
async fn plan_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<PlanRow>>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, &actor, "plan").await?;
    let page = sampling::plan_page(&mut tx, &scope, &request).await?;
    tx.commit().await?;
    Ok(Json(page))
}

// ---------- the sampling strategy ----------

#[derive(Template)]
#[template(path = "quality/strategy.html")]
struct StrategyPage {
    nav: Nav,
    is_iqa: bool,
    strategies: Vec<Strategy>,
    bands: [RiskBand; 3],
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
}

impl StrategyPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, name)
    }
}

async fn strategies(state: &AppState, actor: &Actor, viewed: &'static str) -> AppResult<(QualityScope, Vec<Strategy>)> {
    let mut tx = state.begin(actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, actor, viewed).await?;
    let mut all = Vec::new();
    for centre in scope.centres() {
        all.push(sampling::strategy(&mut tx, centre).await?);
    }
    tx.commit().await?;
    Ok((scope, all))
}

async fn show_strategy(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    status: StatusCode,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
) -> AppResult<Response> {
    let (scope, strategies) = strategies(state, actor, "strategy").await?;
    render(status, &StrategyPage { nav, is_iqa: scope.is_iqa(), strategies, bands: RiskBand::ALL, errors, notice })
}

async fn strategy_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Query(done): Query<Done>,
) -> AppResult<Response> {
    show_strategy(&state, nav, &actor, StatusCode::OK, Vec::new(), notice_for(&done.done)).await
}

/// The sampling strategy: each assessor's band and rate, by centre then name, a page at a
/// time, with each centre's band rates on every page.
#[utoipa::path(
    get,
    path = "/api/v1/iqa/strategy",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the assessors' bands, and the rates of each centre in scope", body = sampling::StrategyPage),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn strategy_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<sampling::StrategyPage>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, &actor, "strategy").await?;
    let page = sampling::strategy_page(&mut tx, &scope.centres(), &request).await?;
    tx.commit().await?;
    Ok(Json(page))
}

async fn set_band(state: &AppState, actor: &Actor, assessor: &str, band: &str) -> AppResult<()> {
    let centre_id = iqa_centre(actor)?;
    let assessor_id = parse_uuid("assessor_id", assessor, "Choose an assessor of your centre")?;
    let band = RiskBand::parse(band).map_err(|m| AppError::invalid("band", m))?;
    let mut tx = state.begin(actor).await?;
    sampling::set_band(&mut tx, actor, centre_id, assessor_id, band).await?;
    tx.commit().await?;
    Ok(())
}

async fn set_rate(state: &AppState, actor: &Actor, band: &str, rate: &str) -> AppResult<()> {
    let centre_id = iqa_centre(actor)?;
    let mut errors = Vec::new();
    let band = RiskBand::parse(band).map_err(|m| errors.push(FieldError::new("band", m))).ok();
    let rate = RatePercent::parse(rate).map_err(|m| errors.push(FieldError::new("rate_percent", m))).ok();
    let (Some(band), Some(rate)) = (band, rate) else { return Err(AppError::Invalid(errors)) };
    let mut tx = state.begin(actor).await?;
    sampling::set_rate(&mut tx, actor, centre_id, band, rate).await?;
    tx.commit().await?;
    Ok(())
}

async fn band_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match set_band(&state, &actor, field(&fields, "assessor_id"), field(&fields, "band")).await {
        Ok(()) => Ok(Redirect::to("/iqa/strategy?done=band").into_response()),
        Err(AppError::Invalid(errors)) => {
            show_strategy(&state, nav, &actor, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
        Err(other) => Err(other),
    }
}

async fn rate_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match set_rate(&state, &actor, field(&fields, "band"), field(&fields, "rate_percent")).await {
        Ok(()) => Ok(Redirect::to("/iqa/strategy?done=rate").into_response()),
        Err(AppError::Invalid(errors)) => {
            show_strategy(&state, nav, &actor, StatusCode::UNPROCESSABLE_ENTITY, errors, None).await
        }
        Err(other) => Err(other),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct BandRequest {
    #[serde(default)]
    assessor_id: String,
    #[serde(default)]
    band: String,
}

/// Puts an assessor of the centre in a risk band.
#[utoipa::path(
    post,
    path = "/api/v1/iqa/strategy/bands",
    request_body = BandRequest,
    responses(
        (status = 204, description = "Set"),
        (status = 422, description = "The assessor or band is not accepted", body = Problem),
    )
)]
async fn band_api(State(state): State<AppState>, actor: Actor, Json(body): Json<BandRequest>) -> AppResult<StatusCode> {
    set_band(&state, &actor, &body.assessor_id, &body.band).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct RateRequest {
    #[serde(default)]
    band: String,
    /// A whole number from 1 to 100 (or the same as a string).
    #[serde(default)]
    #[schema(value_type = i32)]
    rate_percent: serde_json::Value,
}

/// Sets a risk band's sampling rate.
#[utoipa::path(
    post,
    path = "/api/v1/iqa/strategy/rates",
    request_body = RateRequest,
    responses(
        (status = 204, description = "Set"),
        (status = 422, description = "The band or rate is not accepted", body = Problem),
    )
)]
async fn rate_api(State(state): State<AppState>, actor: Actor, Json(body): Json<RateRequest>) -> AppResult<StatusCode> {
    let rate = match &body.rate_percent {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    set_rate(&state, &actor, &body.band, &rate).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- one sample ----------

#[derive(Template)]
#[template(path = "quality/sample.html")]
struct SamplePage {
    nav: Nav,
    row: PlanRow,
    decisions: Vec<ReviewedDecision>,
    is_iqa: bool,
    is_assessor: bool,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    input: SampleInput,
    response: String,
    note: String,
}

impl SamplePage {
    fn error_for(&self, name: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, name)
    }
}

#[derive(Default)]
/// What the sample page shows after one of its forms: errors, a notice and what was typed.
struct Typed {
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    input: Option<SampleInput>,
    response: String,
    note: String,
}

async fn show_sample(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    status: StatusCode,
    typed: Typed,
) -> AppResult<Response> {
    let mut tx = state.begin(actor).await?;
    let access = policy::iqa_sample(&state.views, &mut tx, actor, id, SampleAction::View).await?;
    let row = sampling::sample(&mut tx, &access).await?;
    let decisions = sampling::decisions(&mut tx, access.evidence_id).await?;
    tx.commit().await?;
    let page = SamplePage {
        nav,
        row,
        decisions,
        is_iqa: access.relation == SampleRelation::Iqa,
        is_assessor: access.relation == SampleRelation::Assessor,
        errors: typed.errors,
        notice: typed.notice,
        input: typed.input.unwrap_or(SampleInput {
            outcome: String::new(),
            feedback: String::new(),
            actions: String::new(),
        }),
        response: typed.response,
        note: typed.note,
    };
    render(status, &page)
}

async fn sample_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(done): Query<Done>,
) -> AppResult<Response> {
    show_sample(&state, nav, &actor, id, StatusCode::OK, Typed { notice: notice_for(&done.done), ..Typed::default() })
        .await
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct SampleJson {
    #[serde(flatten)]
    row: PlanRow,
    decisions: Vec<ReviewedDecision>,
}

/// One sample with its record and the assessor's decisions it reviews.
#[utoipa::path(
    get,
    path = "/api/v1/iqa/samples/{id}",
    params(("id" = Uuid, Path, description = "The sample")),
    responses((status = 200, description = "The sample", body = SampleJson))
)]
async fn sample_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Json<SampleJson>> {
    let mut tx = state.begin(&actor).await?;
    let access = policy::iqa_sample(&state.views, &mut tx, &actor, id, SampleAction::View).await?;
    let row = sampling::sample(&mut tx, &access).await?;
    let decisions = sampling::decisions(&mut tx, access.evidence_id).await?;
    tx.commit().await?;
    Ok(Json(SampleJson { row, decisions }))
}

/// Which of a sample's three writes.
#[derive(Clone, Copy)]
enum SampleWrite {
    Record,
    Respond,
    Close,
}

async fn write_sample(
    state: &AppState,
    actor: &Actor,
    id: Uuid,
    write: SampleWrite,
    input: SampleInput,
    text: &str,
) -> AppResult<()> {
    let mut tx = state.begin(actor).await?;
    let action = if matches!(write, SampleWrite::Respond) { SampleAction::Respond } else { SampleAction::Record };
    let access = policy::iqa_sample(&state.views, &mut tx, actor, id, action).await?;
    match write {
        SampleWrite::Record => {
            sampling::record_sample(&mut tx, actor, &access, input).await?;
        }
        SampleWrite::Respond => sampling::respond(&mut tx, actor, &access, text).await?,
        SampleWrite::Close => sampling::close(&mut tx, actor, &access, text).await?,
    }
    tx.commit().await?;
    Ok(())
}

async fn sample_form(
    state: AppState,
    nav: Nav,
    actor: Actor,
    id: Uuid,
    write: SampleWrite,
    fields: Vec<(String, String)>,
) -> AppResult<Response> {
    let input = SampleInput {
        outcome: field(&fields, "outcome").to_string(),
        feedback: field(&fields, "feedback").to_string(),
        actions: field(&fields, "actions").to_string(),
    };
    let text = match write {
        SampleWrite::Respond => field(&fields, "response"),
        _ => field(&fields, "note"),
    }
    .to_string();
    let typed_input = SampleInput {
        outcome: input.outcome.clone(),
        feedback: input.feedback.clone(),
        actions: input.actions.clone(),
    };
    let done = match write {
        SampleWrite::Record => "recorded",
        SampleWrite::Respond => "responded",
        SampleWrite::Close => "closed",
    };
    match write_sample(&state, &actor, id, write, input, &text).await {
        Ok(()) => Ok(Redirect::to(&format!("/iqa/samples/{id}?done={done}")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let typed = match write {
                SampleWrite::Record => Typed { input: Some(typed_input), ..Typed::default() },
                SampleWrite::Respond => Typed { response: text, ..Typed::default() },
                SampleWrite::Close => Typed { note: text, ..Typed::default() },
            };
            show_sample(&state, nav, &actor, id, StatusCode::UNPROCESSABLE_ENTITY, Typed { errors, ..typed }).await
        }
        Err(other) => Err(other),
    }
}

async fn record_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    sample_form(state, nav, actor, id, SampleWrite::Record, fields).await
}

async fn response_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    sample_form(state, nav, actor, id, SampleWrite::Respond, fields).await
}

async fn close_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    sample_form(state, nav, actor, id, SampleWrite::Close, fields).await
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct SampleText {
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    feedback: String,
    #[serde(default)]
    actions: String,
    #[serde(default)]
    response: String,
    #[serde(default)]
    note: String,
}

async fn sample_write_api(
    state: AppState,
    actor: Actor,
    id: Uuid,
    write: SampleWrite,
    body: SampleText,
) -> AppResult<Response> {
    let text = if matches!(write, SampleWrite::Respond) { body.response.clone() } else { body.note.clone() };
    let input = SampleInput { outcome: body.outcome, feedback: body.feedback, actions: body.actions };
    write_sample(&state, &actor, id, write, input, &text).await?;
    let mut tx = state.begin(&actor).await?;
    let access = policy::iqa_sample(&state.views, &mut tx, &actor, id, SampleAction::View).await?;
    let row = sampling::sample(&mut tx, &access).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row)).into_response())
}

/// The IQA records the sample: `agree` or `refer_back`, feedback and actions; signed.
#[utoipa::path(
    post,
    path = "/api/v1/iqa/samples/{id}/record",
    params(("id" = Uuid, Path, description = "The sample")),
    request_body = SampleText,
    responses(
        (status = 201, description = "Recorded", body = PlanRow),
        (status = 409, description = "Already recorded", body = Problem),
        (status = 422, description = "A field is missing or not accepted", body = Problem),
    )
)]
async fn record_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<SampleText>,
) -> AppResult<Response> {
    sample_write_api(state, actor, id, SampleWrite::Record, body).await
}

/// The sampled assessor responds to a referral (`response`).
#[utoipa::path(
    post,
    path = "/api/v1/iqa/samples/{id}/response",
    params(("id" = Uuid, Path, description = "The sample")),
    request_body = SampleText,
    responses(
        (status = 201, description = "Responded", body = PlanRow),
        (status = 409, description = "Not referred back, or already responded", body = Problem),
        (status = 422, description = "A field is missing or not accepted", body = Problem),
    )
)]
async fn response_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<SampleText>,
) -> AppResult<Response> {
    sample_write_api(state, actor, id, SampleWrite::Respond, body).await
}

/// The IQA closes the sample (`note`) once any referral is answered.
#[utoipa::path(
    post,
    path = "/api/v1/iqa/samples/{id}/close",
    params(("id" = Uuid, Path, description = "The sample")),
    request_body = SampleText,
    responses(
        (status = 201, description = "Closed", body = PlanRow),
        (status = 409, description = "Not recorded, not yet responded to, or already closed", body = Problem),
        (status = 422, description = "A field is missing or not accepted", body = Problem),
    )
)]
async fn close_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<SampleText>,
) -> AppResult<Response> {
    sample_write_api(state, actor, id, SampleWrite::Close, body).await
}

// ---------- CAMERA coverage ----------

#[derive(Template)]
#[template(path = "quality/coverage.html")]
struct CoveragePage {
    nav: Nav,
    coverage: Coverage,
}

async fn coverage_for(state: &AppState, actor: &Actor) -> AppResult<Coverage> {
    let mut tx = state.begin(actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, actor, "coverage").await?;
    let population = sampling::population(&mut tx, &scope).await?;
    let plan = sampling::plan(&mut tx, &scope).await?;
    tx.commit().await?;
    Ok(sampling::coverage(&population, &plan))
}

async fn coverage_page(State(state): State<AppState>, nav: Nav, actor: Actor) -> AppResult<Response> {
    let coverage = coverage_for(&state, &actor).await?;
    render(StatusCode::OK, &CoveragePage { nav, coverage })
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct CoverageQuery {
    /// Only this CAMERA table: `candidates`, `assessors`, `methods`, `elements`, `records`,
    /// `locations` or `time`; every table, one after another, when absent.
    dimension: Option<String>,
}

/// Coverage of the population by the samples against CAMERA (candidates, assessors, methods,
/// elements, records, assessment locations) and time: the tables' rows a page at a time (table
/// by table, by label), with the totals and each table's size and gaps on every page.
#[utoipa::path(
    get,
    path = "/api/v1/iqa/coverage",
    params(CoverageQuery, PageQuery),
    responses(
        (status = 200, description = "One page of the coverage rows", body = sampling::CoveragePage),
        (status = 422, description = "The dimension, limit or cursor is not accepted", body = Problem),
    )
)]
async fn coverage_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(only): Query<CoverageQuery>,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<sampling::CoveragePage>> {
    let request = PageRequest::try_from(&query)?;
    let dimension = match only.dimension.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(key) => Some(*sampling::COVERAGE_DIMENSIONS.iter().find(|d| **d == key).ok_or_else(|| {
            AppError::invalid(
                "dimension",
                "dimension must be one of candidates, assessors, methods, elements, records, locations or time",
            )
        })?),
    };
    Ok(Json(coverage_for(&state, &actor).await?.page(dimension, &request)))
}

// ---------- standardisation ----------

#[derive(Template)]
#[template(path = "quality/standardisation.html")]
struct StandardisationPage {
    nav: Nav,
    is_iqa: bool,
    meetings: Vec<Meeting>,
    staff: Vec<StaffMember>,
    items: Vec<PopulationItem>,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    held_on: String,
    title: String,
    agreed_actions: String,
}

impl StandardisationPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, name)
    }
}

async fn show_standardisation(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    status: StatusCode,
    errors: Vec<FieldError>,
    notice: Option<&'static str>,
    typed: (String, String, String),
) -> AppResult<Response> {
    let mut tx = state.begin(actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, actor, "standardisation").await?;
    let meetings = sampling::meetings(&mut tx, &scope.centres()).await?;
    let (staff, items) = match &scope {
        QualityScope::Iqa { centre_id, .. } => {
            (sampling::centre_staff(&mut tx, *centre_id).await?, sampling::population(&mut tx, &scope).await?)
        }
        QualityScope::Verifier { .. } => (Vec::new(), Vec::new()),
    };
    tx.commit().await?;
    let (held_on, title, agreed_actions) = typed;
    let page = StandardisationPage {
        nav,
        is_iqa: scope.is_iqa(),
        meetings,
        staff,
        items,
        errors,
        notice,
        held_on,
        title,
        agreed_actions,
    };
    render(status, &page)
}

async fn standardisation_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Query(done): Query<Done>,
) -> AppResult<Response> {
    let today = Utc::now().date_naive().to_string();
    show_standardisation(
        &state,
        nav,
        &actor,
        StatusCode::OK,
        Vec::new(),
        notice_for(&done.done),
        (today, String::new(), String::new()),
    )
    .await
}

async fn record_meeting(state: &AppState, actor: &Actor, input: MeetingInput) -> AppResult<Uuid> {
    let centre_id = iqa_centre(actor)?;
    let mut tx = state.begin(actor).await?;
    let id = sampling::record_meeting(&mut tx, actor, centre_id, input).await?;
    tx.commit().await?;
    Ok(id)
}

async fn standardisation_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let ids = |name: &str| fields.iter().filter(|(k, _)| k == name).filter_map(|(_, v)| v.parse().ok()).collect();
    let input = MeetingInput {
        held_on: field(&fields, "held_on").to_string(),
        title: field(&fields, "title").to_string(),
        attendees: ids("attendees"),
        items: ids("items"),
        agreed_actions: field(&fields, "agreed_actions").to_string(),
    };
    let typed = (input.held_on.clone(), input.title.clone(), input.agreed_actions.clone());
    match record_meeting(&state, &actor, input).await {
        Ok(_) => Ok(Redirect::to("/standardisation?done=meeting").into_response()),
        Err(AppError::Invalid(errors)) => {
            show_standardisation(&state, nav, &actor, StatusCode::UNPROCESSABLE_ENTITY, errors, None, typed).await
        }
        Err(other) => Err(other),
    }
}

/// Standardisation meetings: who attended, the items looked at and the actions agreed.
/// The latest held first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/standardisation",
    params(PageQuery),
    responses((status = 200, description = "One page of the meetings", body = Page<Meeting>), (status = 422, description = "The limit or cursor is not accepted", body = Problem))
)]
async fn standardisation_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<Meeting>>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    let scope = policy::iqa_records(&state.views, &mut tx, &actor, "standardisation").await?;
    let page = sampling::meetings_page(&mut tx, &scope.centres(), &request).await?;
    tx.commit().await?;
    Ok(Json(page))
}

/// Records a standardisation meeting.
#[utoipa::path(
    post,
    path = "/api/v1/standardisation",
    request_body = MeetingInput,
    responses(
        (status = 201, description = "Recorded", body = Created),
        (status = 422, description = "A field is missing or not accepted", body = Problem),
    )
)]
async fn record_meeting_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<MeetingInput>,
) -> AppResult<Response> {
    let id = record_meeting(&state, &actor, body).await?;
    Ok((StatusCode::CREATED, Json(Created { id })).into_response())
}
