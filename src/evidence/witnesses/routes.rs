//! Witness pages and API: the learner's register and the "ask for a statement" form (learner or
//! assessor), the public page a witness opens from their link, and the assessor's confirmation.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{
    IssuedLink, NewRequest, NewWitness, OpenRequest, RawRequest, RawStatement, RawWitness, RequestSummary, Witness,
};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access, Action, EnrolmentAccess, Viewed};
use crate::catalogue;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::pagination::{Page, PageQuery, PageRequest};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    use Access::{Enrolment, Evidence, Link};
    Routes::new()
        .get("/enrolments/{id}/witnesses", Enrolment(Action::View), witnesses_page)
        .post("/enrolments/{id}/witnesses", Enrolment(Action::ManageWitnesses), add_witness_form)
        .post("/enrolments/{id}/witness-requests", Enrolment(Action::ManageWitnesses), request_form)
        .get("/witness/{token}", Link, statement_page)
        .post("/witness/{token}", Link, statement_form)
        .post("/evidence/{id}/witness-confirmation", Evidence(Action::Assess), confirm_form)
        .api(Enrolment(Action::View), routes!(witnesses_api))
        .api(Enrolment(Action::View), routes!(requests_list_api))
        .api(Enrolment(Action::ManageWitnesses), routes!(add_witness_api))
        .api(Enrolment(Action::ManageWitnesses), routes!(request_api))
        .api(Link, routes!(statement_api))
        .api(Link, routes!(sign_api))
        .api(Evidence(Action::Assess), routes!(confirm_api))
}

/// The full address of a link, for copying into an email or a text message.
fn link_url(state: &AppState, headers: &HeaderMap, path: &str) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = if state.config.behind_tls { "https" } else { "http" };
    format!("{scheme}://{host}{path}")
}

fn ticked(value: &str) -> bool {
    matches!(value, "yes" | "on" | "true")
}

use crate::web::form_field as field;

fn all(fields: &[(String, String)], name: &str) -> Vec<String> {
    fields.iter().filter(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.clone()).collect()
}

struct CriterionChoice {
    number: String,
    text: String,
    checked: bool,
}

struct OutcomeChoice {
    number: i32,
    title: String,
    criteria: Vec<CriterionChoice>,
}

#[derive(Template)]
#[template(path = "evidence/witnesses.html")]
struct WitnessesPage {
    nav: Nav,
    enrolment_id: Uuid,
    learner_name: String,
    unit_code: String,
    unit_title: String,
    can_manage: bool,
    witnesses: Vec<Witness>,
    requests: Vec<RequestSummary>,
    outcomes: Vec<OutcomeChoice>,
    witness: RawWitness,
    request: RawRequest,
    errors: Vec<FieldError>,
    issued: Option<(IssuedLink, String)>,
    added: bool,
}

impl WitnessesPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }
}

/// What the page shows after one of its forms.
#[derive(Default)]
struct Outcome {
    witness: RawWitness,
    request: RawRequest,
    errors: Vec<FieldError>,
    issued: Option<(IssuedLink, String)>,
    added: bool,
}

async fn show(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    status: StatusCode,
    outcome: Outcome,
) -> AppResult<Response> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::View, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let (learner_name, _) = super::learner_identity(&mut tx, access.learner_id).await?;
    let witnesses = super::register(&mut tx, access.learner_id).await?;
    let requests = super::requests(&mut tx, id).await?;
    tx.commit().await?;
    let chosen: Vec<String> = outcome.request.criteria.iter().map(|c| c.trim().to_string()).collect();
    let page = WitnessesPage {
        nav,
        enrolment_id: id,
        learner_name,
        unit_code: unit.summary.code.clone(),
        unit_title: unit.summary.title.clone(),
        can_manage: matches!(access.relation, policy::Relation::Learner | policy::Relation::Assessor),
        witnesses,
        requests,
        outcomes: unit
            .outcomes
            .iter()
            .map(|o| OutcomeChoice {
                number: o.number,
                title: o.title.clone(),
                criteria: o
                    .criteria
                    .iter()
                    .map(|c| CriterionChoice {
                        number: c.number.clone(),
                        text: c.text.clone(),
                        checked: chosen.contains(&c.number),
                    })
                    .collect(),
            })
            .collect(),
        witness: outcome.witness,
        request: outcome.request,
        errors: outcome.errors,
        issued: outcome.issued,
        added: outcome.added,
    };
    render(status, &page)
}

#[derive(Deserialize)]
struct AddedQuery {
    added: Option<String>,
}

async fn witnesses_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    axum::extract::Query(query): axum::extract::Query<AddedQuery>,
) -> AppResult<Response> {
    let outcome = Outcome { added: query.added.is_some(), ..Default::default() };
    show(&state, nav, &actor, id, StatusCode::OK, outcome).await
}

async fn add_witness(state: &AppState, actor: &Actor, id: Uuid, raw: &RawWitness) -> AppResult<Witness> {
    let mut tx = state.begin(actor).await?;
    let access =
        policy::enrolment(&state.views, &mut tx, actor, id, Action::ManageWitnesses, Viewed::Portfolio).await?;
    let (name, email) = super::learner_identity(&mut tx, access.learner_id).await?;
    let witness = NewWitness::parse(raw, &name, &email).map_err(AppError::Invalid)?;
    let witness_id = super::add(&mut tx, actor, &access, witness).await?;
    let added = super::register(&mut tx, access.learner_id).await?.into_iter().find(|w| w.id == witness_id);
    tx.commit().await?;
    added.ok_or(AppError::NotFound("witness"))
}

fn witness_from_form(fields: &[(String, String)]) -> RawWitness {
    RawWitness {
        name: field(fields, "name").to_string(),
        job_role: field(fields, "job_role").to_string(),
        relationship: field(fields, "relationship").to_string(),
        email: field(fields, "email").to_string(),
        phone: field(fields, "phone").to_string(),
        is_expert: ticked(field(fields, "is_expert")),
        competence: field(fields, "competence").to_string(),
    }
}

async fn add_witness_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let raw = witness_from_form(&fields);
    match add_witness(&state, &actor, id, &raw).await {
        Ok(_) => Ok(Redirect::to(&format!("/enrolments/{id}/witnesses?added=1")).into_response()),
        Err(AppError::Invalid(errors)) => {
            let outcome = Outcome { witness: raw, errors, ..Default::default() };
            show(&state, nav, &actor, id, StatusCode::UNPROCESSABLE_ENTITY, outcome).await
        }
        Err(other) => Err(other),
    }
}

/// Adds a witness to the learner's register (name, job role, relationship, contact; an expert
/// witness's competence).
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/witnesses",
    params(("id" = Uuid, Path, description = "The learner's enrolment")),
    request_body = RawWitness,
    responses(
        (status = 201, description = "Added", body = Witness),
        (status = 422, description = "A field is missing or not accepted", body = Problem),
    )
)]
async fn add_witness_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(raw): Json<RawWitness>,
) -> AppResult<(StatusCode, Json<Witness>)> {
    Ok((StatusCode::CREATED, Json(add_witness(&state, &actor, id, &raw).await?)))
}

async fn request_link(state: &AppState, actor: &Actor, id: Uuid, raw: &RawRequest) -> AppResult<IssuedLink> {
    let mut tx = state.begin(actor).await?;
    let access =
        policy::enrolment(&state.views, &mut tx, actor, id, Action::ManageWitnesses, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let register = super::register(&mut tx, access.learner_id).await?;
    let request = NewRequest::parse(raw, &unit, &register).map_err(AppError::Invalid)?;
    let issued = super::request_statement(&mut tx, actor, &access, request).await?;
    tx.commit().await?;
    Ok(issued)
}

async fn request_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let raw = RawRequest {
        witness_id: field(&fields, "witness_id").to_string(),
        criteria: all(&fields, "criteria"),
        message: field(&fields, "message").to_string(),
    };
    match request_link(&state, &actor, id, &raw).await {
        // The link is shown on this response only: it is not stored and cannot be shown again.
        Ok(issued) => {
            let url = link_url(&state, &headers, &issued.path);
            let outcome = Outcome { issued: Some((issued, url)), ..Default::default() };
            show(&state, nav, &actor, id, StatusCode::CREATED, outcome).await
        }
        Err(AppError::Invalid(errors)) => {
            let outcome = Outcome { request: raw, errors, ..Default::default() };
            show(&state, nav, &actor, id, StatusCode::UNPROCESSABLE_ENTITY, outcome).await
        }
        Err(other) => Err(other),
    }
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct IssuedView {
    #[serde(flatten)]
    link: IssuedLink,
    url: String,
}

/// Asks a witness from the register for a statement against criteria: issues a single-use,
/// expiring link (shown this once) to send them.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/witness-requests",
    params(("id" = Uuid, Path, description = "The learner's enrolment")),
    request_body = RawRequest,
    responses(
        (status = 201, description = "The link to send the witness", body = IssuedView),
        (status = 422, description = "The witness or a criterion is not accepted", body = Problem),
    )
)]
async fn request_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(raw): Json<RawRequest>,
) -> AppResult<(StatusCode, Json<IssuedView>)> {
    let link = request_link(&state, &actor, id, &raw).await?;
    let url = link_url(&state, &headers, &link.path);
    Ok((StatusCode::CREATED, Json(IssuedView { link, url })))
}

/// The learner's witness register, by name, a page at a time (the statements asked for are
/// `GET /api/v1/enrolments/{id}/witness-requests`).
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/witnesses",
    params(("id" = Uuid, Path, description = "The learner's enrolment"), PageQuery),
    responses(
        (status = 200, description = "One page of the register", body = Page<Witness>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn witnesses_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<Witness>>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, &actor, id, Action::View, Viewed::Portfolio).await?;
    let page = super::register_page(&mut tx, access.learner_id, &request).await?;
    tx.commit().await?;
    Ok(Json(page))
}

/// The statements asked for on this enrolment, newest first, a page at a time: each link's
/// witness, criteria, expiry and state (`waiting`, `signed` or `expired`).
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/witness-requests",
    params(("id" = Uuid, Path, description = "The learner's enrolment"), PageQuery),
    responses(
        (status = 200, description = "One page of the requests", body = Page<RequestSummary>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn requests_list_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<RequestSummary>>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    policy::enrolment(&state.views, &mut tx, &actor, id, Action::View, Viewed::Portfolio).await?;
    let page = super::requests_page(&mut tx, id, &request).await?;
    tx.commit().await?;
    Ok(Json(page))
}

// ---------------------------------------------------------------- the witness's own page

#[derive(Template)]
#[template(path = "evidence/witness_statement.html")]
struct StatementPage {
    nav: Nav,
    token: String,
    request: OpenRequest,
    raw: RawStatement,
    errors: Vec<FieldError>,
}

impl StatementPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }

    fn is_ticked(&self, number: &str) -> bool {
        self.raw.criteria.iter().any(|c| c.trim() == number)
    }
}

#[derive(Template)]
#[template(path = "evidence/witness_signed.html")]
struct SignedPage {
    nav: Nav,
    learner_name: String,
    witness_name: String,
}

async fn open_request(state: &AppState, token: &str, viewer: Option<&Actor>) -> AppResult<OpenRequest> {
    let mut tx = state.pool.begin().await?;
    let request = super::open(&mut tx, token, viewer).await?;
    tx.commit().await?;
    Ok(request)
}

async fn statement_page(
    State(state): State<AppState>,
    nav: Nav,
    viewer: Option<Actor>,
    Path(token): Path<String>,
) -> AppResult<Response> {
    let request = open_request(&state, &token, viewer.as_ref()).await?;
    let raw = RawStatement {
        occurred_on: chrono::Local::now().date_naive().to_string(),
        criteria: request.criteria.iter().map(|c| c.number.clone()).collect(),
        ..Default::default()
    };
    render(StatusCode::OK, &StatementPage { nav, token, request, raw, errors: vec![] })
}

async fn sign(
    state: &AppState,
    token: &str,
    viewer: Option<&Actor>,
    raw: &RawStatement,
) -> AppResult<(Uuid, OpenRequest)> {
    let mut tx = state.pool.begin().await?;
    let signed = super::sign_statement(&mut tx, token, viewer, raw, chrono::Local::now().date_naive()).await?;
    tx.commit().await?;
    Ok(signed)
}

async fn statement_form(
    State(state): State<AppState>,
    nav: Nav,
    viewer: Option<Actor>,
    Path(token): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let raw = RawStatement {
        statement: field(&fields, "statement").to_string(),
        criteria: all(&fields, "criteria"),
        occurred_on: field(&fields, "occurred_on").to_string(),
        signature: field(&fields, "signature").to_string(),
        declaration: ticked(field(&fields, "declaration")),
    };
    match sign(&state, &token, viewer.as_ref(), &raw).await {
        Ok((_, request)) => render(
            StatusCode::CREATED,
            &SignedPage { nav, learner_name: request.learner_name, witness_name: request.witness_name },
        ),
        Err(AppError::Invalid(errors)) => {
            let request = open_request(&state, &token, viewer.as_ref()).await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &StatementPage { nav, token, request, raw, errors })
        }
        Err(other) => Err(other),
    }
}

/// What a witness's link asks of them: the learner, the unit and the criteria. No account needed.
#[utoipa::path(
    get,
    path = "/api/v1/witness/{token}",
    params(("token" = String, Path, description = "The token from the witness's link")),
    responses(
        (status = 200, description = "The request", body = OpenRequest),
        (status = 410, description = "The link has been used or has expired", body = Problem),
    )
)]
async fn statement_api(
    State(state): State<AppState>,
    viewer: Option<Actor>,
    Path(token): Path<String>,
) -> AppResult<Json<OpenRequest>> {
    Ok(Json(open_request(&state, &token, viewer.as_ref()).await?))
}

/// The witness writes and signs their statement; it becomes witness-testimony evidence
/// awaiting the assessor's confirmation. The link then stops working.
#[utoipa::path(
    post,
    path = "/api/v1/witness/{token}",
    params(("token" = String, Path, description = "The token from the witness's link")),
    request_body = RawStatement,
    responses(
        (status = 201, description = "Signed", body = SignedStatement),
        (status = 410, description = "The link has been used or has expired", body = Problem),
        (status = 422, description = "The statement, a criterion, the date, the signature or the declaration is missing or not accepted", body = Problem),
    )
)]
async fn sign_api(
    State(state): State<AppState>,
    viewer: Option<Actor>,
    Path(token): Path<String>,
    Json(raw): Json<RawStatement>,
) -> AppResult<(StatusCode, Json<SignedStatement>)> {
    let (evidence_id, _) = sign(&state, &token, viewer.as_ref(), &raw).await?;
    Ok((StatusCode::CREATED, Json(SignedStatement { evidence_id, status: "awaiting_confirmation" })))
}

/// A statement just signed: the evidence item it became, awaiting the assessor's confirmation.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct SignedStatement {
    evidence_id: Uuid,
    /// Always `awaiting_confirmation`.
    #[schema(value_type = String)]
    status: &'static str,
}

// ---------------------------------------------------------------- the assessor's confirmation

async fn confirm(state: &AppState, actor: &Actor, id: Uuid, checked: bool) -> AppResult<EnrolmentAccess> {
    let mut tx = state.begin(actor).await?;
    let access = policy::evidence(&state.views, &mut tx, actor, id, Action::Assess, Viewed::Evidence(id)).await?;
    super::confirm(&mut tx, actor, &access, id, checked).await?;
    tx.commit().await?;
    Ok(access)
}

async fn confirm_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    match confirm(&state, &actor, id, ticked(field(&fields, "confirmed"))).await {
        Ok(_) => Ok(Redirect::to(&format!("/evidence/{id}")).into_response()),
        Err(AppError::Invalid(errors)) => crate::evidence::detail_with_errors(&state, nav, &actor, id, errors).await,
        Err(other) => Err(other),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Confirmation {
    #[serde(default)]
    confirmed: bool,
}

/// The assessor confirms (or withdraws confirmation of) a witness's signed statement.
#[utoipa::path(
    post,
    path = "/api/v1/evidence/{id}/witness-confirmation",
    params(("id" = Uuid, Path, description = "The witness-testimony evidence item")),
    request_body = Confirmation,
    responses(
        (status = 200, description = "The item with its confirmation", body = crate::evidence::EvidenceItem),
        (status = 409, description = "Not a signed witness statement, or already confirmed", body = Problem),
    )
)]
async fn confirm_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<Confirmation>,
) -> AppResult<Json<crate::evidence::EvidenceItem>> {
    confirm(&state, &actor, id, body.confirmed).await?;
    let mut conn = state.begin(&actor).await?;
    Ok(Json(crate::evidence::load(&mut conn, id).await?))
}
