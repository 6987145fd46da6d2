//! Evidence pages and API: the upload form (files, a written record or a workplace reference;
//! draft or submitted; a note and a place in the file per criterion), the item page, submitting
//! a draft, resubmitting after "not yet", and file downloads.

use std::sync::Arc;

use askama::Template;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form, Json};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa_axum::routes;
use uuid::Uuid;

use super::capture::Submission;
use super::idempotency::Claim;
use super::{DECLARATION, EvidenceItem, Method, NewEvidence, RawEvidence, submission};
use crate::AppState;
use crate::assessment::{self, CriterionDecisions};
use crate::auth::Actor;
use crate::auth::csrf::PendingCheck;
use crate::auth::policy::{self, Access, Action, EnrolmentAccess, Relation, Viewed};
use crate::catalogue::{self, Unit};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::openapi::Binary;
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

/// Stored files run no script and may be framed only by our own pages (the PDF preview).
pub const FILE_SECURITY_POLICY: &str = "script-src 'none'; object-src 'self'; frame-ancestors 'self'";

pub fn router() -> Routes {
    Routes::new()
        .get("/enrolments/{id}/evidence/new", Access::Enrolment(Action::AddEvidence), new_page)
        .post_upload("/enrolments/{id}/evidence", Access::Enrolment(Action::AddEvidence), create_form)
        .get("/evidence/{id}", Access::Evidence(Action::View), detail_page)
        .post("/evidence/{id}/submit", Access::Evidence(Action::AddEvidence), submit_form)
        .get("/evidence/{id}/files/{file_id}", Access::Evidence(Action::View), download)
        .api_upload(Access::Enrolment(Action::AddEvidence), routes!(create_api))
        .api(Access::Evidence(Action::View), routes!(detail_api))
        .api(Access::Evidence(Action::AddEvidence), routes!(submit_api))
        .api(Access::Evidence(Action::View), routes!(download))
}

pub(super) struct MethodOption {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

/// One criterion in the evidence forms' picker, with what the learner (or assessor) gave for it.
pub(super) struct CriterionOption {
    pub number: String,
    pub text: String,
    pub guidance: String,
    pub checked: bool,
    pub note: String,
    pub location: String,
}

/// A learning outcome's criteria in the picker.
pub(super) struct OutcomeOptions {
    pub number: i32,
    pub title: String,
    pub criteria: Vec<CriterionOption>,
}

/// The criteria picker for `unit`, grouped by learning outcome, as `raw` left it.
pub(super) fn criterion_picker(unit: &Unit, raw: &RawEvidence) -> Vec<OutcomeOptions> {
    let chosen: Vec<&str> = raw.criteria.iter().map(|c| c.trim()).collect();
    unit.outcomes
        .iter()
        .map(|o| OutcomeOptions {
            number: o.number,
            title: o.title.clone(),
            criteria: o
                .criteria
                .iter()
                .map(|c| {
                    let mapping = raw.mappings.get(&c.number);
                    CriterionOption {
                        number: c.number.clone(),
                        text: c.text.clone(),
                        guidance: c.guidance.clone(),
                        checked: chosen.contains(&c.number.as_str()),
                        note: mapping.map(|m| m.note.clone()).unwrap_or_default(),
                        location: mapping.map(|m| m.location.clone()).unwrap_or_default(),
                    }
                })
                .collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "evidence/new.html")]
struct NewEvidencePage {
    nav: Nav,
    enrolment_id: Uuid,
    unit_code: String,
    unit_title: String,
    raw: RawEvidence,
    is_reference: bool,
    declaration: &'static str,
    methods: Vec<MethodOption>,
    outcomes: Vec<OutcomeOptions>,
    errors: Vec<FieldError>,
    max_upload: String,
    resubmitting: Option<String>,
}

impl NewEvidencePage {
    fn new(
        nav: Nav,
        enrolment_id: Uuid,
        unit: &Unit,
        raw: RawEvidence,
        errors: Vec<FieldError>,
        max_upload: u64,
    ) -> Self {
        NewEvidencePage {
            nav,
            enrolment_id,
            unit_code: unit.summary.code.clone(),
            unit_title: unit.summary.title.clone(),
            is_reference: raw.kind == "reference",
            declaration: DECLARATION,
            methods: Method::ALL
                .into_iter()
                .map(|m| MethodOption { value: m.as_str(), label: m.label(), selected: raw.method == m.as_str() })
                .collect(),
            outcomes: criterion_picker(unit, &raw),
            errors,
            max_upload: super::storage::human_size(max_upload),
            resubmitting: None,
            raw,
        }
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }

    fn where_error(&self, number: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field.strip_prefix("where-") == Some(number)).map(|e| e.message.as_str())
    }

    fn outcome_has_choice(&self, outcome: &OutcomeOptions) -> bool {
        outcome.criteria.iter().any(|c| c.checked)
    }
}

#[derive(Deserialize)]
struct NewQuery {
    resubmit: Option<Uuid>,
}

async fn new_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<NewQuery>,
) -> AppResult<Response> {
    let mut conn = state.begin(&actor).await?;
    let access = policy::enrolment(&state.views, &mut conn, &actor, id, Action::AddEvidence, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut conn, None, Some(access.unit_id)).await?;
    let mut raw = RawEvidence { occurred_on: chrono::Local::now().date_naive().to_string(), ..Default::default() };
    let mut resubmitting = None;
    if let Some(previous) = query.resubmit {
        let item = super::load(&mut conn, previous).await?;
        if item.enrolment_id != id {
            return Err(AppError::NotFound("evidence item"));
        }
        raw.title = item.title.clone();
        raw.method = item.method.as_str().to_string();
        raw.description = item.description.clone();
        raw.criteria = item.criteria.clone();
        for mapping in &item.mappings {
            raw.mappings.entry(mapping.criterion.clone()).or_default().note = mapping.note.clone();
        }
        raw.previous_version = Some(previous);
        resubmitting = Some(item.title);
    }
    let mut page = NewEvidencePage::new(nav, id, &unit, raw, vec![], state.config.max_upload);
    page.resubmitting = resubmitting;
    render(StatusCode::OK, &page)
}

/// Receives an upload and stores it, shared by the form and the API.
async fn receive(
    state: &AppState,
    actor: &Actor,
    enrolment_id: Uuid,
    multipart: Multipart,
    csrf: Option<&PendingCheck>,
    mut claim: Option<&mut Claim>,
) -> Result<(Uuid, bool), (AppError, RawEvidence, Option<Unit>)> {
    let fail = |error: AppError| (error, RawEvidence::default(), None);
    let (access, unit) = {
        // With a key, in the key's transaction: a request holding one connection must never wait
        // for a second, or a burst of keyed uploads takes the whole pool and none gets further.
        let mut own: Option<sqlx::Transaction<'static, sqlx::Postgres>> = None;
        let conn: &mut PgConnection = match claim.as_deref_mut() {
            Some(claim) => claim.conn(),
            None => own.insert(state.begin(actor).await.map_err(|e| fail(e.into()))?),
        };
        let access = policy::enrolment(&state.views, conn, actor, enrolment_id, Action::AddEvidence, Viewed::Portfolio)
            .await
            .map_err(fail)?;
        let unit = catalogue::find_unit(conn, None, Some(access.unit_id)).await.map_err(fail)?;
        (access, unit)
    };
    // Without a key, no connection is held while a large file streams in.
    let submission = match submission::read(multipart, &state.store, state.config.max_upload, csrf).await {
        Ok(submission) => submission,
        Err(error) => return Err((error, RawEvidence::default(), Some(unit))),
    };
    // A repeat of a request already answered creates nothing: its first answer is given again.
    if let Some(claim) = claim.as_deref_mut() {
        match claim.check(&submission) {
            Ok(Some(created)) => return Ok((created, submission.raw.draft)),
            Ok(None) => {}
            Err(error) => return Err((error, submission.raw, Some(unit))),
        }
    }
    let today = chrono::Local::now().date_naive();
    let types: Vec<&str> = submission.files.iter().map(|f| f.content_type).collect();
    let item = match NewEvidence::parse(&submission.raw, &unit, today, &types) {
        Ok(item) => item,
        Err(errors) => return Err((AppError::Invalid(errors), submission.raw, Some(unit))),
    };
    let draft = submission.raw.draft;
    let result = async {
        // With an idempotency key the item is created in the key's transaction, committed
        // with the key's row when answered (`Claim::respond`).
        if let Some(claim) = claim {
            return super::create(claim.conn(), &state.store, actor, &access, item, submission.files).await;
        }
        let mut tx = state.begin(actor).await?;
        let id = super::create(&mut tx, &state.store, actor, &access, item, submission.files).await?;
        tx.commit().await?;
        Ok::<Uuid, AppError>(id)
    }
    .await;
    result.map(|id| (id, draft)).map_err(|error| (error, submission.raw, Some(unit)))
}

async fn create_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    csrf: Option<Extension<PendingCheck>>,
    multipart: Multipart,
) -> AppResult<Response> {
    match receive(&state, &actor, id, multipart, csrf.as_deref(), None).await {
        Ok((evidence_id, true)) => Ok(Redirect::to(&format!("/evidence/{evidence_id}?saved=1")).into_response()),
        Ok((evidence_id, false)) => Ok(Redirect::to(&format!("/evidence/{evidence_id}?submitted=1")).into_response()),
        Err((error, raw, Some(unit))) => {
            let status = error.status();
            let errors = upload_errors(error)?;
            render(status, &NewEvidencePage::new(nav, id, &unit, raw, errors, state.config.max_upload))
        }
        Err((error, _, None)) => Err(error),
    }
}

/// The parts of an evidence upload (`multipart/form-data`): the item's fields as one JSON
/// `metadata` part, and its files as `file` parts, streamed to storage as they arrive.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the multipart body for the OpenAPI document; `submission` reads the parts.
pub(super) struct EvidenceUpload {
    metadata: RawEvidence,
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// Adds an evidence item to the learner's portfolio, with its files, mapped to criteria;
/// submitted for assessment (with the declaration) or kept as a draft. An `Idempotency-Key`
/// header makes a retried upload answer the first one's result instead of adding it twice.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/evidence",
    params(
        ("id" = Uuid, Path, description = "The learner's enrolment"),
        ("idempotency-key" = Option<String>, Header, description = "A value unique to this upload (e.g. a UUID); a retry with the same key and body gets the first answer"),
    ),
    request_body(content = inline(EvidenceUpload), content_type = "multipart/form-data",
        encoding(("metadata" = (content_type = "application/json")))),
    responses(
        (status = 201, description = "Added", body = EvidenceItem,
            headers(("location" = String, description = "The item's API path"))),
        (status = 409, description = "A request with this Idempotency-Key is still being processed", body = Problem),
        (status = 413, description = "A file is larger than the upload limit", body = Problem),
        (status = 415, description = "A file's content is not an accepted type", body = Problem),
        (status = 422, description = "A field is missing or not accepted, or the Idempotency-Key was used for another request", body = Problem),
    )
)]
async fn create_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    csrf: Option<Extension<PendingCheck>>,
    multipart: Multipart,
) -> AppResult<Response> {
    let path = format!("/api/v1/enrolments/{id}/evidence");
    let mut claim = Claim::from_request(&state, &actor, &headers, "POST", path).await?;
    let (evidence_id, _) =
        receive(&state, &actor, id, multipart, csrf.as_deref(), claim.as_mut()).await.map_err(|(error, _, _)| error)?;
    match claim {
        Some(claim) => claim.respond(evidence_id).await,
        None => created(&state, &actor, evidence_id).await,
    }
}

/// A failed upload as the form shows it: field errors, with a refused or interrupted file on the
/// file field. Anything else is not the learner's to fix and goes to the error page.
pub(super) fn upload_errors(error: AppError) -> AppResult<Vec<FieldError>> {
    match error {
        AppError::Invalid(errors) => Ok(errors),
        AppError::TooLarge(message)
        | AppError::UnsupportedType(message)
        | AppError::BadRequest(message)
        | AppError::Conflict(message, _) => Ok(vec![FieldError::new("file", message)]),
        other => Err(other),
    }
}

/// The API's answer to a created item: 201, the item, and its address.
pub(super) async fn created(state: &AppState, actor: &Actor, evidence_id: Uuid) -> AppResult<Response> {
    let mut conn = state.begin(actor).await?;
    let item = super::load(&mut conn, evidence_id).await?;
    let mut response = (StatusCode::CREATED, Json(item)).into_response();
    let location = HeaderValue::from_str(&format!("/api/v1/evidence/{evidence_id}")).expect("ascii");
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct EvidenceView {
    #[serde(flatten)]
    item: EvidenceItem,
    #[schema(value_type = String)]
    assessment_status: &'static str,
    assessment: Vec<CriterionDecisions>,
    /// Overall feedback and replies (`GET /api/v1/evidence/{id}/comments` in the API).
    #[serde(skip)]
    conversation: crate::feedback::Conversation,
}

impl EvidenceView {
    fn has_not_yet(&self) -> bool {
        self.assessment.iter().any(|c| c.current.as_ref().is_some_and(|d| d.outcome == assessment::Outcome::NotYet))
    }
}

/// A draft is the learner's alone until submitted.
fn visible(item: &EvidenceItem, relation: Relation) -> AppResult<()> {
    if item.is_draft() && relation != Relation::Learner {
        return Err(AppError::NotFound("evidence item"));
    }
    Ok(())
}

/// An evidence item's page as every reader but a verifier sees it, before what depends on the
/// reader: kept by each server process until the item or its portfolio changes
/// (src/db/changes.rs, migrations 0025 and 0027).
pub struct KeptDetail {
    pub learner_id: Uuid,
    pub assessor_id: Uuid,
    pub iqa_id: Option<Uuid>,
    item: EvidenceItem,
    unit: Unit,
    assessment: Vec<CriterionDecisions>,
    comments: Vec<crate::feedback::Comment>,
    /// The item's audit events (its versions' and files'), for the history panel.
    history: Vec<crate::audit::RecordedEvent>,
    /// Internal quality assurers' samples of this item (not shown to the learner).
    iqa_samples: Vec<crate::quality::PlanRow>,
    /// The day it was read: a sample's status counts days.
    pub as_of: chrono::NaiveDate,
}

impl KeptDetail {
    async fn load(conn: &mut PgConnection, access: &EnrolmentAccess, id: Uuid) -> AppResult<KeptDetail> {
        let as_of = chrono::Utc::now().date_naive();
        let item = super::load(&mut *conn, id).await?;
        let unit = catalogue::find_unit(&mut *conn, None, Some(access.unit_id)).await?;
        let assessment = assessment::decisions_for_evidence(&mut *conn, &unit, &item).await?;
        Ok(KeptDetail {
            learner_id: access.learner_id,
            assessor_id: access.assessor_id,
            iqa_id: access.iqa_id,
            comments: crate::feedback::comments(&mut *conn, id).await?,
            history: crate::audit::trail::about(&mut *conn, id, None, 200).await?,
            iqa_samples: crate::quality::samples_of_evidence(&mut *conn, id).await?,
            item,
            unit,
            assessment,
            as_of,
        })
    }

    /// Its size in memory, in rows read.
    pub fn weight(&self) -> usize {
        1 + self.unit.criteria().count()
            + self.item.files.len()
            + self.assessment.len()
            + self.comments.len()
            + self.history.len()
            + self.iqa_samples.len()
    }

    /// The item as `relation` sees it.
    fn view(&self, relation: Relation) -> EvidenceView {
        let item = self.item.clone();
        let assessment = self.assessment.clone();
        let assessment_status = if item.is_draft() {
            "draft"
        } else if item.awaits_witness_confirmation() {
            "awaiting_confirmation"
        } else if assessment.iter().any(|c| c.current.is_none()) {
            "awaiting_assessment"
        } else {
            "assessed"
        };
        let conversation = crate::feedback::conversation(relation, &item, self.comments.clone());
        EvidenceView { item, assessment_status, assessment, conversation }
    }
}

impl crate::db::changes::OfDay for KeptDetail {
    fn as_of(&self) -> chrono::NaiveDate {
        self.as_of
    }
}

/// Item `id` as `actor` may see it, with how they stand to it. From memory when this process
/// keeps it and the actor is the learner, assessor or IQA; otherwise through the access policy
/// (which records a verifier's view), then from memory or the database. A verifier's is always
/// read from the database: the view just recorded is in its history.
async fn load_view(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<(EvidenceView, Relation, Arc<KeptDetail>)> {
    if let Some(kept) = state.changes.kept_detail(id)
        && let Some(relation) = policy::direct_relation(actor, kept.learner_id, kept.assessor_id, kept.iqa_id)
        && relation.allows(Action::View)
    {
        visible(&kept.item, relation)?;
        return Ok((kept.view(relation), relation, kept));
    }
    let mut tx = state.begin(actor).await?;
    // Before the access check: a change to the portfolio heard from now on (a new assessor, say)
    // keeps what is read from being kept. (An item stays in its enrolment.)
    let enrolment = sqlx::query_scalar!("SELECT enrolment_id FROM evidence_items WHERE id = $1", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(AppError::NotFound("evidence item"))?;
    let since = state.changes.since_portfolio(enrolment);
    let access = policy::evidence(&state.views, &mut tx, actor, id, Action::View, Viewed::Evidence(id)).await?;
    let kept = if access.relation == Relation::Verifier {
        Arc::new(KeptDetail::load(&mut tx, &access, id).await?)
    } else {
        state.changes.detail(since, id, async { KeptDetail::load(&mut tx, &access, id).await.map(Arc::new) }).await?
    };
    tx.commit().await?;
    visible(&kept.item, access.relation)?;
    Ok((kept.view(access.relation), access.relation, kept))
}

#[derive(Template)]
#[template(path = "evidence/detail.html")]
struct DetailPage<'a> {
    nav: Nav,
    view: EvidenceView,
    unit_code: String,
    is_learner: bool,
    can_assess: bool,
    /// The assessor may confirm a witness statement (and assess it only after that).
    can_confirm: bool,
    banner: Option<(&'static str, &'static str)>,
    errors: Vec<FieldError>,
    declaration: &'static str,
    /// Criteria of the unit the item is not mapped to, which the assessor may add.
    unmapped: Vec<(String, String)>,
    /// What the assessor had entered in the decision form, shown again after an error.
    entered: Vec<(String, String)>,
    /// The item's audit events (its versions' and files'), for the history panel.
    history: &'a [crate::audit::RecordedEvent],
    /// Internal quality assurers' samples of this item (not shown to the learner).
    iqa_samples: &'a [crate::quality::PlanRow],
}

impl<'a> DetailPage<'a> {
    fn new(nav: Nav, view: EvidenceView, relation: Relation, kept: &'a KeptDetail, errors: Vec<FieldError>) -> Self {
        let unit = &kept.unit;
        let assessor = relation == Relation::Assessor && !view.item.is_draft() && view.item.next_version.is_none();
        let unmapped = unit
            .criteria()
            .filter(|c| !view.item.criteria.contains(&c.number))
            .map(|c| (c.number.clone(), c.text.clone()))
            .collect();
        DetailPage {
            unmapped,
            entered: Vec::new(),
            nav,
            can_assess: assessor && !view.item.awaits_witness_confirmation(),
            can_confirm: assessor && view.item.awaits_witness_confirmation(),
            is_learner: relation == Relation::Learner,
            view,
            unit_code: unit.summary.code.clone(),
            banner: None,
            errors,
            declaration: DECLARATION,
            history: &kept.history,
            iqa_samples: if relation == Relation::Learner { &[] } else { &kept.iqa_samples },
        }
    }

    fn has_media(&self) -> bool {
        self.view.item.files.iter().any(|f| f.is_audio() || f.is_video())
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }

    fn reason_error(&self, criterion: &str) -> Option<&str> {
        self.error_for(&format!("reason-{criterion}"))
    }

    /// What the assessor entered in the decision form's field `name` (empty if nothing).
    fn entered(&self, name: &str) -> &str {
        self.entered.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// Whether the assessor chose `value` for `name` (a radio, a ticked box, an option).
    fn entered_is(&self, name: &str, value: &str) -> bool {
        self.entered.iter().any(|(n, v)| n == name && v == value)
    }

    fn feedback_entered(&self, criterion: &str) -> &str {
        self.entered(&format!("feedback-{criterion}"))
    }

    fn reason_entered(&self, criterion: &str) -> &str {
        self.entered(&format!("reason-{criterion}"))
    }

    fn outcome_entered(&self, criterion: &str, outcome: &str) -> bool {
        self.entered_is(&format!("outcome-{criterion}"), outcome)
    }
}

#[derive(Deserialize)]
struct DetailQuery {
    submitted: Option<String>,
    saved: Option<String>,
    assessed: Option<String>,
}

async fn detail_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<DetailQuery>,
) -> AppResult<Response> {
    let (view, relation, kept) = load_view(&state, &actor, id).await?;
    let mut page = DetailPage::new(nav, view, relation, &kept, vec![]);
    page.banner = if query.submitted.is_some() {
        Some(("Evidence submitted", "Your assessor can now see it waiting for assessment."))
    } else if query.saved.is_some() {
        Some(("Draft saved", "Only you can see it. Submit it when it is ready."))
    } else if query.assessed.is_some() {
        Some(("Decisions recorded", "The learner can now see your feedback."))
    } else {
        None
    };
    render(StatusCode::OK, &page)
}

/// Renders the item page with errors (used by the decision and submit forms).
pub async fn detail_with_errors(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    errors: Vec<FieldError>,
) -> AppResult<Response> {
    let (view, relation, kept) = load_view(state, actor, id).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &DetailPage::new(nav, view, relation, &kept, errors))
}

/// Renders the item page with the decision form's errors, keeping what the assessor entered.
pub async fn detail_with_decision_errors(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    errors: Vec<FieldError>,
    entered: Vec<(String, String)>,
) -> AppResult<Response> {
    let (view, relation, kept) = load_view(state, actor, id).await?;
    let mut page = DetailPage::new(nav, view, relation, &kept, errors);
    page.entered = entered.into_iter().filter(|(name, _)| name != crate::auth::csrf::FIELD).collect();
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// Renders the item page with the conversation form's errors, keeping what was typed.
pub async fn detail_with_reply_errors(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    errors: Vec<FieldError>,
    draft: String,
) -> AppResult<Response> {
    let (mut view, relation, kept) = load_view(state, actor, id).await?;
    view.conversation.refused(draft, &errors);
    render(StatusCode::UNPROCESSABLE_ENTITY, &DetailPage::new(nav, view, relation, &kept, errors))
}

/// An evidence item: its record, files, mappings and the assessor's decisions per criterion.
#[utoipa::path(
    get,
    path = "/api/v1/evidence/{id}",
    params(("id" = Uuid, Path, description = "The evidence item")),
    responses((status = 200, description = "The item", body = EvidenceView))
)]
async fn detail_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Json<EvidenceView>> {
    Ok(Json(load_view(&state, &actor, id).await?.0))
}

async fn submit(state: &AppState, actor: &Actor, id: Uuid, confirm: &Submission) -> AppResult<()> {
    let mut tx = state.begin(actor).await?;
    let access = policy::evidence(&state.views, &mut tx, actor, id, Action::AddEvidence, Viewed::Evidence(id)).await?;
    super::submit_draft(&mut tx, actor, &access, id, confirm).await?;
    tx.commit().await?;
    Ok(())
}

async fn submit_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let ticked = |name: &str| fields.iter().any(|(k, v)| k == name && v == "yes");
    let confirm =
        Submission { declaration: ticked("declaration"), third_party_confirmed: ticked("third_party_confirmed") };
    match submit(&state, &actor, id, &confirm).await {
        Ok(()) => Ok(Redirect::to(&format!("/evidence/{id}?submitted=1")).into_response()),
        Err(AppError::Invalid(errors)) => detail_with_errors(&state, nav, &actor, id, errors).await,
        Err(other) => Err(other),
    }
}

/// Submits a draft for assessment, signing the learner's declaration now.
#[utoipa::path(
    post,
    path = "/api/v1/evidence/{id}/submit",
    params(("id" = Uuid, Path, description = "The draft evidence item")),
    request_body = Submission,
    responses(
        (status = 200, description = "Submitted", body = EvidenceView),
        (status = 409, description = "The item is not a draft", body = Problem),
        (status = 422, description = "The declaration (or the third-party confirmation) is missing, or the draft is incomplete", body = Problem),
    )
)]
async fn submit_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(confirm): Json<Submission>,
) -> AppResult<Json<EvidenceView>> {
    submit(&state, &actor, id, &confirm).await?;
    Ok(Json(load_view(&state, &actor, id).await?.0))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DownloadQuery {
    /// Present (any value): as an attachment, rather than shown in the page.
    download: Option<String>,
}

/// Streams a stored file with its recorded type, honouring a single-range Range request so
/// audio and video play and seek in the page. Several ranges at once get the whole file.
#[utoipa::path(
    get,
    path = "/api/v1/evidence/{id}/files/{file_id}",
    params(
        ("id" = Uuid, Path, description = "The evidence item"),
        ("file_id" = Uuid, Path, description = "One of its files"),
        DownloadQuery,
        ("range" = Option<String>, Header, description = "One byte range, e.g. bytes=0-1023"),
        ("if-none-match" = Option<String>, Header, description = "The ETag (the file's SHA-256) already held"),
    ),
    responses(
        (status = 200, description = "The file, with its recorded type", content_type = "application/octet-stream", body = inline(Binary),
            headers(("etag" = String), ("content-disposition" = String), ("accept-ranges" = String))),
        (status = 206, description = "The range asked for", content_type = "application/octet-stream", body = inline(Binary),
            headers(("content-range" = String))),
        (status = 304, description = "The copy held is current"),
        (status = 416, description = "The range is outside the file", headers(("content-range" = String))),
    )
)]
async fn download(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, file_id)): Path<(Uuid, Uuid)>,
    axum::extract::Query(query): axum::extract::Query<DownloadQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let mut tx = state.begin(&actor).await?;
    let access = policy::evidence(&state.views, &mut tx, &actor, id, Action::View, Viewed::File(id, file_id)).await?;
    visible(&super::load(&mut tx, id).await?, access.relation)?;
    let file = super::file(&mut tx, id, file_id).await?;
    tx.commit().await?;
    let size = file.size as u64;
    let etag = format!("\"{}\"", file.sha256);
    let mut response = Response::builder()
        .header(header::ETAG, &etag)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, no-cache");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag))
    {
        return Ok(response.status(StatusCode::NOT_MODIFIED).body(Body::empty()).expect("valid response"));
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(asked) => match http_range_header::parse_range_header(asked).and_then(|r| r.validate(size)) {
            Ok(ranges) if ranges.len() == 1 && size > 0 => Some(*ranges[0].start()..*ranges[0].end() + 1),
            Ok(_) => None,
            Err(_) => {
                return Ok(response
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                    .body(Body::empty())
                    .expect("valid response"));
            }
        },
    };
    let stored = state.store.read(&file.sha256, range.clone()).await?;
    if range.is_some() {
        let sent = &stored.range;
        response = response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {}-{}/{size}", sent.start, sent.end - 1));
    }
    let inline = query.download.is_none()
        && (file.is_pdf()
            || file.is_image()
            || file.is_audio()
            || file.is_video()
            || file.content_type.starts_with("text/"));
    let content_type = if file.content_type.starts_with("text/") {
        format!("{}; charset=utf-8", file.content_type)
    } else {
        file.content_type.clone()
    };
    response
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, stored.range.end - stored.range.start)
        .header(header::CONTENT_DISPOSITION, content_disposition(inline, &file.name))
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, FILE_SECURITY_POLICY)
        .header(HeaderName::from_static("x-frame-options"), "SAMEORIGIN")
        .body(Body::from_stream(stored.stream))
        .map_err(|e| AppError::Unexpected(e.into()))
}

/// `inline` or `attachment`, with an ASCII fallback name and the exact UTF-8 name (RFC 6266).
fn content_disposition(inline: bool, name: &str) -> HeaderValue {
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let encoded: String = url::form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>().replace('+', "%20");
    let kind = if inline { "inline" } else { "attachment" };
    HeaderValue::from_str(&format!("{kind}; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}
