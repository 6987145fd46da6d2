//! Completing a draft: the learner who owns it changes what it says, maps it to criteria, adds
//! or removes files, and saves it again or submits it under the same rules as a new upload.
//! Drafts saved from the upload form and drafts imported from another e-portfolio (LEAP2A) are
//! finished here. A draft stays the learner's alone; once submitted it is never edited.

use std::collections::BTreeMap;

use askama::Template;
use axum::Extension;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use sqlx::PgConnection;
use utoipa_axum::routes;
use uuid::Uuid;

use super::capture::{self, MappingInput, store_files, store_mappings};
use super::routes::{MethodOption, OutcomeOptions, criterion_picker, upload_errors};
use super::{DECLARATION, EvidenceItem, FileInfo, FileStore, Method, NewEvidence, RawEvidence, StagedFile, Status};
use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::auth::csrf::PendingCheck;
use crate::auth::policy::{self, Access, Action, EnrolmentAccess, Viewed};
use crate::catalogue::{self, Unit};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

/// At most this many files in one item, as on upload.
const MAX_FILES: usize = 20;

pub fn router() -> Routes {
    Routes::new()
        .get("/evidence/{id}/edit", Access::Evidence(Action::AddEvidence), edit_page)
        .post_upload("/evidence/{id}/edit", Access::Evidence(Action::AddEvidence), edit_form)
        .api(Access::Evidence(Action::AddEvidence), routes!(update_api))
        .api_upload(Access::Evidence(Action::AddEvidence), routes!(add_files_api))
}

/// What the learner changes in a draft: its fields, files to add, and files of the draft to
/// remove.
pub struct DraftChanges {
    pub fields: Fields,
    pub files: Vec<StagedFile>,
    pub remove_files: Vec<Uuid>,
}

/// The draft's fields: every one as the form sends them, or (the API) only those that change.
pub enum Fields {
    Entered(RawEvidence),
    Changed(DraftUpdate),
}

/// The draft as the form and the parser take it: what a learner would have typed to make it.
pub fn raw_from(item: &EvidenceItem) -> RawEvidence {
    let mut raw = RawEvidence {
        title: item.title.clone(),
        description: item.description.clone(),
        method: item.method.as_str().to_string(),
        occurred_on: item.occurred_on.to_string(),
        occurred_until: item.occurred_until.map(|d| d.to_string()).unwrap_or_default(),
        criteria: item.criteria.clone(),
        help_received: item.help_received.clone(),
        ai_use: item.ai_use.clone(),
        kind: if item.reference.is_some() { "reference" } else { "upload" }.to_string(),
        draft: true,
        ..Default::default()
    };
    if let Some(reference) = &item.reference {
        raw.held_at = reference.held_at.clone();
        raw.held_by = reference.held_by.clone();
        raw.confirmed_by = reference.confirmed_by.clone();
    }
    for mapping in &item.mappings {
        let entry = raw.mappings.entry(mapping.criterion.clone()).or_default();
        entry.note = mapping.note.clone();
        entry.location = mapping.location_text().unwrap_or_default();
    }
    raw
}

/// Saves the learner's changes to their draft in the caller's transaction, with its audit event
/// (`evidence.draft_updated`); with `raw.draft` unset it then signs and submits it, checked as a
/// new submission is. Any refusal leaves the draft exactly as it was (the caller rolls back).
pub async fn update_draft(
    conn: &mut PgConnection,
    store: &FileStore,
    actor: &Actor,
    access: &EnrolmentAccess,
    unit: &Unit,
    id: Uuid,
    changes: DraftChanges,
) -> AppResult<Status> {
    crate::assessment::sign_off::ensure_open(conn, access.id).await?;
    // Two tabs saving at once take turns; the second sees what the first left.
    let row = sqlx::query!(
        "SELECT status, kind FROM evidence_items WHERE id = $1 AND enrolment_id = $2 FOR UPDATE",
        id,
        access.id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound("evidence item"))?;
    if row.status != "draft" {
        return Err(AppError::Conflict(
            "This evidence has been submitted, so it can no longer be edited. Add new evidence instead, or \
             resubmit it if your assessor judges it not yet met."
                .into(),
            vec![],
        ));
    }
    if row.kind != "upload" && row.kind != "reference" {
        return Err(AppError::Conflict("Only your own uploads and references can be edited as drafts".into(), vec![]));
    }
    let item = super::load(conn, id).await?;
    let mut remove_files = changes.remove_files;
    let raw = match changes.fields {
        Fields::Entered(raw) => raw,
        Fields::Changed(update) => {
            let (raw, more) = update.apply(raw_from(&item));
            remove_files.extend(more);
            raw
        }
    };
    if let Some(unknown) = remove_files.iter().find(|f| item.file(f).is_none()) {
        return Err(AppError::invalid("remove_file", format!("{unknown} is not one of this draft's files")));
    }
    let kept: Vec<&FileInfo> = item.files.iter().filter(|f| !remove_files.contains(&f.id)).collect();
    if kept.len() + changes.files.len() > MAX_FILES {
        return Err(AppError::invalid("file", format!("An evidence item can hold at most {MAX_FILES} files")));
    }
    // Locations point into the files in this order: those kept, then those added.
    let types: Vec<&str> =
        kept.iter().map(|f| f.content_type.as_str()).chain(changes.files.iter().map(|f| f.content_type)).collect();
    let today = chrono::Local::now().date_naive();
    let parsed = NewEvidence::parse(&raw, unit, today, &types).map_err(AppError::Invalid)?;
    let reference = parsed.reference.as_ref();
    sqlx::query!(
        "UPDATE evidence_items SET title = $2, description = $3, method = $4, occurred_on = $5, occurred_until = $6,
                kind = $7, held_at = $8, held_by = $9, confirmed_by = $10, help_received = $11, ai_use = $12
         WHERE id = $1",
        id,
        parsed.title,
        parsed.description,
        parsed.method.as_str(),
        parsed.occurred_on,
        parsed.occurred_until,
        if reference.is_some() { "reference" } else { "upload" },
        reference.map(|r| r.held_at.as_str()).unwrap_or(""),
        reference.map(|r| r.held_by.as_str()).unwrap_or(""),
        reference.map(|r| r.confirmed_by.as_str()).unwrap_or(""),
        parsed.help_received,
        parsed.ai_use
    )
    .execute(&mut *conn)
    .await?;
    // The mappings are written again as the learner left them; they may have pointed into a
    // removed file.
    sqlx::query!("DELETE FROM evidence_criteria WHERE evidence_id = $1", id).execute(&mut *conn).await?;
    sqlx::query!("DELETE FROM evidence_files WHERE evidence_id = $1 AND id = ANY($2)", id, &remove_files)
        .execute(&mut *conn)
        .await?;
    let next_position = sqlx::query_scalar!(
        r#"SELECT COALESCE(MAX(position) + 1, 0) AS "next!" FROM evidence_files WHERE evidence_id = $1"#,
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let added = store_files(conn, store, id, next_position, changes.files).await?;
    let file_ids: Vec<Uuid> = kept.iter().map(|f| f.id).chain(added.iter().copied()).collect();
    store_mappings(conn, actor, id, &parsed.mappings, &file_ids).await?;
    audit::record(
        conn,
        Event::new(Some(actor), "evidence.draft_updated", "evidence", Some(id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "title": parsed.title,
                "method": parsed.method,
                "criteria": parsed.mappings.iter().map(|m| m.number.to_string()).collect::<Vec<_>>(),
                "files_added": added,
                "files_removed": remove_files,
            })),
    )
    .await?;
    if parsed.status == Status::Submitted {
        let confirm =
            capture::Submission { declaration: raw.declaration, third_party_confirmed: raw.third_party_confirmed };
        super::submit_draft(conn, actor, access, id, &confirm).await?;
    }
    Ok(parsed.status)
}

#[derive(Template)]
#[template(path = "evidence/edit.html")]
struct EditDraftPage {
    nav: Nav,
    id: Uuid,
    /// The title as saved (the heading), whatever the form now holds.
    saved_title: String,
    unit_code: String,
    unit_title: String,
    raw: RawEvidence,
    is_reference: bool,
    declaration: &'static str,
    methods: Vec<MethodOption>,
    outcomes: Vec<OutcomeOptions>,
    files: Vec<FileInfo>,
    removing: Vec<Uuid>,
    errors: Vec<FieldError>,
    max_upload: String,
}

impl EditDraftPage {
    fn new(
        nav: Nav,
        item: EvidenceItem,
        unit: &Unit,
        raw: RawEvidence,
        removing: Vec<Uuid>,
        errors: Vec<FieldError>,
        max_upload: u64,
    ) -> Self {
        EditDraftPage {
            nav,
            id: item.id,
            saved_title: item.title,
            unit_code: unit.summary.code.clone(),
            unit_title: unit.summary.title.clone(),
            is_reference: raw.kind == "reference",
            declaration: DECLARATION,
            methods: Method::ALL
                .into_iter()
                .map(|m| MethodOption { value: m.as_str(), label: m.label(), selected: raw.method == m.as_str() })
                .collect(),
            outcomes: criterion_picker(unit, &raw),
            files: item.files,
            removing,
            errors,
            max_upload: super::storage::human_size(max_upload),
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

    fn removing(&self, file: &Uuid) -> bool {
        self.removing.contains(file)
    }
}

/// The learner's draft with the unit it belongs to, refusing anyone else, and a submitted item.
async fn owned_draft(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<(EnrolmentAccess, Unit, EvidenceItem)> {
    let mut tx = state.begin(actor).await?;
    let access = policy::evidence(&state.views, &mut tx, actor, id, Action::AddEvidence, Viewed::Evidence(id)).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let item = super::load(&mut tx, id).await?;
    tx.commit().await?;
    if !item.is_draft() {
        return Err(AppError::Conflict(
            "This evidence has been submitted, so it can no longer be edited.".into(),
            vec![],
        ));
    }
    Ok((access, unit, item))
}

/// Saves the changes in one transaction: all of them, or (on any refusal) none.
async fn save(state: &AppState, actor: &Actor, id: Uuid, unit: &Unit, changes: DraftChanges) -> AppResult<Status> {
    let mut tx = state.begin(actor).await?;
    let access = policy::evidence(&state.views, &mut tx, actor, id, Action::AddEvidence, Viewed::Evidence(id)).await?;
    let status = update_draft(&mut tx, &state.store, actor, &access, unit, id, changes).await?;
    tx.commit().await?;
    Ok(status)
}

async fn edit_page(State(state): State<AppState>, nav: Nav, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    let (_, unit, item) = owned_draft(&state, &actor, id).await?;
    let raw = raw_from(&item);
    render(StatusCode::OK, &EditDraftPage::new(nav, item, &unit, raw, vec![], vec![], state.config.max_upload))
}

async fn edit_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    csrf: Option<Extension<PendingCheck>>,
    multipart: Multipart,
) -> AppResult<Response> {
    // Refused before a large file streams in; no connection is held while it does.
    let (_, unit, item) = owned_draft(&state, &actor, id).await?;
    let (raw, removing, result) =
        match super::submission::read(multipart, &state.store, state.config.max_upload, csrf.as_deref()).await {
            Ok(received) => {
                let (raw, removing) = (received.raw.clone(), received.remove_files.clone());
                let changes = DraftChanges {
                    fields: Fields::Entered(received.raw),
                    files: received.files,
                    remove_files: received.remove_files,
                };
                (raw, removing, save(&state, &actor, id, &unit, changes).await)
            }
            Err(error) => (raw_from(&item), vec![], Err(error)),
        };
    match result {
        Ok(Status::Draft) => Ok(Redirect::to(&format!("/evidence/{id}?saved=1")).into_response()),
        Ok(Status::Submitted) => Ok(Redirect::to(&format!("/evidence/{id}?submitted=1")).into_response()),
        Err(error) => {
            let status = error.status();
            let errors = upload_errors(error)?;
            // The draft as it now stands (unchanged), with what the learner entered.
            let (_, unit, item) = owned_draft(&state, &actor, id).await?;
            render(status, &EditDraftPage::new(nav, item, &unit, raw, removing, errors, state.config.max_upload))
        }
    }
}

/// Changes to a draft. Only the fields given change; `criteria` replaces the mapped criteria,
/// and `mappings` (per criterion number: `note`, and `where`, a time range like 04:12-06:30 or
/// a page like "page 3") replaces the notes of the criteria it names. Submit the draft with
/// `POST /api/v1/evidence/{id}/submit`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftUpdate {
    pub title: Option<String>,
    pub description: Option<String>,
    pub method: Option<Method>,
    /// YYYY-MM-DD
    pub occurred_on: Option<String>,
    /// YYYY-MM-DD, or "" for a single day.
    pub occurred_until: Option<String>,
    /// Criterion numbers, e.g. ["1.1", "2.3"].
    pub criteria: Option<Vec<String>>,
    pub mappings: Option<BTreeMap<String, MappingInput>>,
    pub help_received: Option<String>,
    pub ai_use: Option<String>,
    /// `upload` (files or a written record) or `reference` (a document held at work).
    pub kind: Option<String>,
    pub held_at: Option<String>,
    pub held_by: Option<String>,
    pub confirmed_by: Option<String>,
    /// Ids of the draft's files to remove.
    pub remove_files: Option<Vec<Uuid>>,
}

impl DraftUpdate {
    /// The draft's fields with these changes over them, and the files to remove.
    fn apply(self, mut raw: RawEvidence) -> (RawEvidence, Vec<Uuid>) {
        let text = |given: Option<String>, field: &mut String| {
            if let Some(value) = given {
                *field = value;
            }
        };
        text(self.title, &mut raw.title);
        text(self.description, &mut raw.description);
        text(self.method.map(|m| m.as_str().to_string()), &mut raw.method);
        text(self.occurred_on, &mut raw.occurred_on);
        text(self.occurred_until, &mut raw.occurred_until);
        text(self.help_received, &mut raw.help_received);
        text(self.ai_use, &mut raw.ai_use);
        text(self.kind, &mut raw.kind);
        text(self.held_at, &mut raw.held_at);
        text(self.held_by, &mut raw.held_by);
        text(self.confirmed_by, &mut raw.confirmed_by);
        if let Some(criteria) = self.criteria {
            raw.criteria = criteria;
        }
        for (number, mapping) in self.mappings.unwrap_or_default() {
            raw.mappings.insert(number.trim().to_string(), mapping);
        }
        raw.draft = true;
        (raw, self.remove_files.unwrap_or_default())
    }
}

/// Changes the learner's draft (what it says, its criteria and their notes, files to remove);
/// it stays a draft, checked as a draft is. Only the owner learner may, and only while it is a
/// draft.
#[utoipa::path(
    patch,
    path = "/api/v1/evidence/{id}",
    params(("id" = Uuid, Path, description = "The learner's draft")),
    request_body = DraftUpdate,
    responses(
        (status = 200, description = "Saved; the draft as it now stands", body = EvidenceItem),
        (status = 409, description = "The item has been submitted (or the unit signed off): it can no longer be edited", body = Problem),
        (status = 422, description = "A field is not accepted (each named), or a file to remove is not the draft's", body = Problem),
    )
)]
async fn update_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(update): Json<DraftUpdate>,
) -> AppResult<Json<EvidenceItem>> {
    let (_, unit, _) = owned_draft(&state, &actor, id).await?;
    save(
        &state,
        &actor,
        id,
        &unit,
        DraftChanges { fields: Fields::Changed(update), files: vec![], remove_files: vec![] },
    )
    .await?;
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::load(&mut conn, id).await?))
}

/// Files to add to a draft (`multipart/form-data`, one `file` part each).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // Describes the multipart body for the OpenAPI document; `submission` reads the parts.
struct DraftFiles {
    #[schema(value_type = Vec<String>, format = Binary)]
    file: Vec<Vec<u8>>,
}

/// Adds files to the learner's draft, streamed to storage as they arrive and typed from their
/// content. The draft's other fields stay as they are.
#[utoipa::path(
    post,
    path = "/api/v1/evidence/{id}/files",
    params(("id" = Uuid, Path, description = "The learner's draft")),
    request_body(content = inline(DraftFiles), content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Added; the draft with all its files", body = EvidenceItem),
        (status = 409, description = "The item has been submitted (or the unit signed off): it can no longer be edited", body = Problem),
        (status = 413, description = "A file is larger than the upload limit", body = Problem),
        (status = 415, description = "A file's content is not an accepted type", body = Problem),
        (status = 422, description = "No file was sent, or the draft would hold too many", body = Problem),
    )
)]
async fn add_files_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    csrf: Option<Extension<PendingCheck>>,
    multipart: Multipart,
) -> AppResult<Json<EvidenceItem>> {
    let (_, unit, _) = owned_draft(&state, &actor, id).await?;
    let received = super::submission::read(multipart, &state.store, state.config.max_upload, csrf.as_deref()).await?;
    if received.files.is_empty() {
        return Err(AppError::invalid("file", "Send at least one file part named \"file\""));
    }
    let changes =
        DraftChanges { fields: Fields::Changed(DraftUpdate::default()), files: received.files, remove_files: vec![] };
    save(&state, &actor, id, &unit, changes).await?;
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::load(&mut conn, id).await?))
}
