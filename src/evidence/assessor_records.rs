//! Observation and professional-discussion records: written by the assessor for a learner on
//! their caseload (what was observed or discussed, where, the criteria covered, optionally a
//! recording), signed with the assessor's declaration, and stored as the learner's evidence.

use askama::Template;
use axum::Extension;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa_axum::routes;
use uuid::Uuid;

use super::idempotency::Claim;
use super::routes::{EvidenceUpload, OutcomeOptions, created, criterion_picker, upload_errors};
use super::{ASSESSOR_DECLARATION, Method, NewEvidence, RawEvidence, submission};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::csrf::PendingCheck;
use crate::auth::policy::{self, Access, Action, Viewed};
use crate::catalogue::{self, Unit};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    let record = Access::Enrolment(Action::RecordAssessment);
    Routes::new()
        .get("/enrolments/{id}/assessor-records/new", record, new_page)
        .post_upload("/enrolments/{id}/assessor-records", record, create_form)
        .api_upload(record, routes!(create_api))
}

/// Checks an assessor's record: observation or professional discussion, what happened, where,
/// the criteria, the assessor's declaration and, for a recording, that those recorded agreed.
pub fn parse_record(
    raw: &RawEvidence,
    unit: &Unit,
    today: NaiveDate,
    file_types: &[&str],
) -> Result<NewEvidence, Vec<FieldError>> {
    let mut errors = Vec::new();
    if !matches!(Method::parse(raw.method.trim()), Some(Method::Observation | Method::ProfessionalDiscussion)) {
        errors.push(FieldError::new("method", "Choose whether this is an observation or a professional discussion"));
    }
    if raw.description.trim().is_empty() {
        errors.push(FieldError::new(
            "description",
            "Write what you observed or discussed, and how it shows each criterion",
        ));
    }
    let location = raw.assessment_location.trim().to_string();
    if location.is_empty() {
        errors.push(FieldError::new(
            "assessment_location",
            "Say where the assessment took place, e.g. \"Sales floor, Leeds contact centre\"",
        ));
    } else if location.chars().count() > 500 {
        errors.push(FieldError::new("assessment_location", "The place must be 500 characters or fewer"));
    }
    if !raw.declaration {
        errors.push(FieldError::new("declaration", "Confirm your declaration as the assessor to sign the record"));
    }
    let has_media = file_types.iter().any(|t| t.starts_with("audio/") || t.starts_with("video/"));
    if has_media && !raw.third_party_confirmed {
        errors.push(FieldError::new(
            "third_party_confirmed",
            "Confirm that everyone recorded agreed to the recording and that it holds no card numbers or security codes",
        ));
    }
    // The remaining checks (title, dates, criteria, places in the files) are an item's usual
    // ones; the learner's declaration and recording confirmation are replaced by the above.
    let as_item = RawEvidence {
        draft: false,
        kind: "upload".into(),
        previous_version: None,
        declaration: true,
        third_party_confirmed: true,
        held_at: String::new(),
        held_by: String::new(),
        confirmed_by: String::new(),
        ..raw.clone()
    };
    match NewEvidence::parse(&as_item, unit, today, file_types) {
        Ok(mut item) if errors.is_empty() => {
            item.assessment_location = Some(location);
            item.third_party_confirmed = has_media;
            Ok(item)
        }
        Ok(_) => Err(errors),
        Err(more) => {
            errors.extend(more.into_iter().filter(|e| e.field != "method" && e.field != "file"));
            Err(errors)
        }
    }
}

#[derive(Template)]
#[template(path = "evidence/assessor_record.html")]
struct RecordPage {
    nav: Nav,
    enrolment_id: Uuid,
    learner_name: String,
    unit_code: String,
    unit_title: String,
    raw: RawEvidence,
    is_discussion: bool,
    outcomes: Vec<OutcomeOptions>,
    declaration: &'static str,
    errors: Vec<FieldError>,
}

impl RecordPage {
    fn new(
        nav: Nav,
        enrolment_id: Uuid,
        learner_name: String,
        unit: &Unit,
        raw: RawEvidence,
        errors: Vec<FieldError>,
    ) -> Self {
        RecordPage {
            nav,
            enrolment_id,
            learner_name,
            unit_code: unit.summary.code.clone(),
            unit_title: unit.summary.title.clone(),
            is_discussion: raw.method == Method::ProfessionalDiscussion.as_str(),
            outcomes: criterion_picker(unit, &raw),
            declaration: ASSESSOR_DECLARATION,
            errors,
            raw,
        }
    }

    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }

    fn where_error(&self, number: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field.strip_prefix("where-") == Some(number)).map(|e| e.message.as_str())
    }
}

#[derive(Deserialize)]
struct NewQuery {
    method: Option<String>,
}

async fn learner_name(conn: &mut sqlx::PgConnection, learner_id: Uuid) -> AppResult<String> {
    Ok(super::witnesses::learner_identity(conn, learner_id).await?.0)
}

async fn new_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<NewQuery>,
) -> AppResult<Response> {
    let mut tx = state.begin(&actor).await?;
    let access =
        policy::enrolment(&state.views, &mut tx, &actor, id, Action::RecordAssessment, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let name = learner_name(&mut tx, access.learner_id).await?;
    tx.commit().await?;
    let method = match query.method.as_deref() {
        Some("professional_discussion") => Method::ProfessionalDiscussion,
        _ => Method::Observation,
    };
    let raw = RawEvidence {
        method: method.as_str().into(),
        occurred_on: chrono::Local::now().date_naive().to_string(),
        ..Default::default()
    };
    render(StatusCode::OK, &RecordPage::new(nav, id, name, &unit, raw, vec![]))
}

/// Receives the record with its recording (streamed to the store) and stores it, signed.
async fn receive(
    state: &AppState,
    actor: &Actor,
    enrolment_id: Uuid,
    multipart: Multipart,
    csrf: Option<&PendingCheck>,
    mut claim: Option<&mut Claim>,
) -> Result<Uuid, (AppError, RawEvidence, Option<(Unit, String)>)> {
    let fail = |error: AppError| (error, RawEvidence::default(), None);
    let (access, unit, name) = {
        // With a key, in the key's transaction: a request holding one connection must never wait
        // for a second, or a burst of keyed uploads takes the whole pool and none gets further.
        let mut own: Option<sqlx::Transaction<'static, sqlx::Postgres>> = None;
        let conn: &mut sqlx::PgConnection = match claim.as_deref_mut() {
            Some(claim) => claim.conn(),
            None => own.insert(state.begin(actor).await.map_err(|e| fail(e.into()))?),
        };
        let access =
            policy::enrolment(&state.views, conn, actor, enrolment_id, Action::RecordAssessment, Viewed::Portfolio)
                .await
                .map_err(fail)?;
        let unit = catalogue::find_unit(conn, None, Some(access.unit_id)).await.map_err(fail)?;
        let name = learner_name(conn, access.learner_id).await.map_err(fail)?;
        (access, unit, name)
    };
    // Without a key, no connection is held while a recording streams in.
    let context = Some((unit, name));
    let submission = match submission::read(multipart, &state.store, state.config.max_upload, csrf).await {
        Ok(submission) => submission,
        Err(error) => return Err((error, RawEvidence::default(), context)),
    };
    // A repeat of a request already answered creates nothing: its first answer is given again.
    if let Some(claim) = claim.as_deref_mut() {
        match claim.check(&submission) {
            Ok(Some(created)) => return Ok(created),
            Ok(None) => {}
            Err(error) => return Err((error, submission.raw, context)),
        }
    }
    let today = chrono::Local::now().date_naive();
    let types: Vec<&str> = submission.files.iter().map(|f| f.content_type).collect();
    let unit = &context.as_ref().expect("just set").0;
    let item = match parse_record(&submission.raw, unit, today, &types) {
        Ok(item) => item,
        Err(errors) => return Err((AppError::Invalid(errors), submission.raw, context)),
    };
    let result = async {
        if let Some(claim) = claim {
            return super::create(claim.conn(), &state.store, actor, &access, item, submission.files).await;
        }
        let mut tx = state.begin(actor).await?;
        let id = super::create(&mut tx, &state.store, actor, &access, item, submission.files).await?;
        tx.commit().await?;
        Ok::<Uuid, AppError>(id)
    }
    .await;
    result.map_err(|error| (error, submission.raw, context))
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
        Ok(evidence_id) => Ok(Redirect::to(&format!("/evidence/{evidence_id}")).into_response()),
        Err((error, raw, Some((unit, name)))) => {
            let status = error.status();
            let errors = upload_errors(error)?;
            render(status, &RecordPage::new(nav, id, name, &unit, raw, errors))
        }
        Err((error, _, None)) => Err(error),
    }
}

/// The assessor records an observation or professional discussion for a learner on their
/// caseload (the `metadata` part's `method`, `assessment_location` and criteria, optionally a
/// recording), signed with the assessor's declaration. `Idempotency-Key` as for evidence.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/assessor-records",
    params(
        ("id" = Uuid, Path, description = "The learner's enrolment"),
        ("idempotency-key" = Option<String>, Header, description = "A value unique to this record; a retry with the same key and body gets the first answer"),
    ),
    request_body(content = inline(EvidenceUpload), content_type = "multipart/form-data",
        encoding(("metadata" = (content_type = "application/json")))),
    responses(
        (status = 201, description = "Recorded", body = super::EvidenceItem,
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
    let path = format!("/api/v1/enrolments/{id}/assessor-records");
    let mut claim = Claim::from_request(&state, &actor, &headers, "POST", path).await?;
    let evidence_id =
        receive(&state, &actor, id, multipart, csrf.as_deref(), claim.as_mut()).await.map_err(|(error, _, _)| error)?;
    match claim {
        Some(claim) => claim.respond(evidence_id).await,
        None => created(&state, &actor, evidence_id).await,
    }
}
