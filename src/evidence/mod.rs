//! Evidence items: what a learner did, how it was assessed (method), when, the files that show
//! it, the criteria it covers, and the learner's authenticity declaration.

mod file_type;
mod routes;
pub mod storage;
mod submission;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::auth::policy::EnrolmentAccess;
use crate::catalogue::{CriterionNumber, Unit};
use crate::error::{AppResult, FieldError};
pub use routes::{detail_with_errors, router};
pub use storage::{FileStore, StagedFile};

/// The learner's authenticity declaration, signed with every item.
pub const DECLARATION: &str = "I confirm that this evidence is my own work, that it shows what I \
did on the date(s) given, that I have said where I had help, and that my employer permits me to \
use it. It contains no customer card numbers or security codes.";

/// How the evidence was produced, in the awarding bodies' vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Observation,
    WitnessTestimony,
    ProfessionalDiscussion,
    Questioning,
    Product,
    ReflectiveAccount,
    Rpl,
    Simulation,
}

impl Method {
    pub const ALL: [Method; 8] = [
        Method::Product,
        Method::Observation,
        Method::WitnessTestimony,
        Method::ProfessionalDiscussion,
        Method::Questioning,
        Method::ReflectiveAccount,
        Method::Rpl,
        Method::Simulation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Observation => "observation",
            Method::WitnessTestimony => "witness_testimony",
            Method::ProfessionalDiscussion => "professional_discussion",
            Method::Questioning => "questioning",
            Method::Product => "product",
            Method::ReflectiveAccount => "reflective_account",
            Method::Rpl => "rpl",
            Method::Simulation => "simulation",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Method::Observation => "Direct observation",
            Method::WitnessTestimony => "Witness testimony",
            Method::ProfessionalDiscussion => "Professional discussion",
            Method::Questioning => "Questioning (oral or written)",
            Method::Product => "Product (work you produced: call logs, reports, spreadsheets)",
            Method::ReflectiveAccount => "Reflective account",
            Method::Rpl => "Recognition of prior learning",
            Method::Simulation => "Simulation",
        }
    }

    pub fn parse(text: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == text)
    }
}

/// What a learner sent, before it is checked: from a form or from the API's `metadata` part.
#[derive(Debug, Default, Deserialize)]
pub struct RawEvidence {
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub occurred_on: String,
    #[serde(default)]
    pub criteria: Vec<String>,
    #[serde(default)]
    pub declaration: bool,
}

/// A checked evidence item, ready to store.
#[derive(Debug)]
pub struct NewEvidence {
    pub title: String,
    pub description: String,
    pub method: Method,
    pub occurred_on: NaiveDate,
    pub criteria: Vec<(CriterionNumber, Uuid)>,
}

impl NewEvidence {
    /// Checks every field against the unit and today's date, collecting every problem at once.
    pub fn parse(raw: &RawEvidence, unit: &Unit, today: NaiveDate, file_count: usize) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let title = raw.title.trim().to_string();
        if title.is_empty() {
            errors.push(FieldError::new("title", "Enter a title for the evidence"));
        } else if title.chars().count() > 200 {
            errors.push(FieldError::new("title", "Title must be 200 characters or fewer"));
        }
        let description = raw.description.trim().to_string();
        if description.chars().count() > 20_000 {
            errors.push(FieldError::new("description", "Description must be 20,000 characters or fewer"));
        }
        let method = Method::parse(raw.method.trim());
        if method.is_none() {
            errors.push(FieldError::new("method", "Select how the evidence was produced (the assessment method)"));
        }
        let occurred_on = match NaiveDate::parse_from_str(raw.occurred_on.trim(), "%Y-%m-%d") {
            Ok(date) if date > today => {
                errors.push(FieldError::new("occurred_on", "The date of the activity must be today or in the past"));
                None
            }
            Ok(date) => Some(date),
            Err(_) if raw.occurred_on.trim().is_empty() => {
                errors.push(FieldError::new("occurred_on", "Enter the date of the activity"));
                None
            }
            Err(_) => {
                errors.push(FieldError::new(
                    "occurred_on",
                    "The date of the activity must be a real date, like 2026-03-17",
                ));
                None
            }
        };
        let mut criteria = Vec::new();
        for number in &raw.criteria {
            match unit.criterion(number) {
                Ok(criterion) => {
                    let parsed = CriterionNumber::parse(&criterion.number).expect("stored numbers are valid");
                    if !criteria.iter().any(|(n, _)| *n == parsed) {
                        criteria.push((parsed, criterion.id));
                    }
                }
                Err(message) => errors.push(FieldError::new("criteria", message)),
            }
        }
        if raw.criteria.is_empty() {
            errors.push(FieldError::new("criteria", "Select at least one criterion this evidence covers"));
        }
        criteria.sort();
        if !raw.declaration {
            errors.push(FieldError::new("declaration", "Confirm the declaration that this evidence is your own work"));
        }
        if file_count == 0 && description.is_empty() {
            errors.push(FieldError::new("file", "Choose a file to upload, or write the evidence in the description"));
        }
        match (errors.is_empty(), method, occurred_on) {
            (true, Some(method), Some(occurred_on)) => {
                Ok(NewEvidence { title, description, method, occurred_on, criteria })
            }
            _ => Err(errors),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FileInfo {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub sha256: String,
}

impl FileInfo {
    pub fn is_image(&self) -> bool {
        self.content_type.starts_with("image/") && self.content_type != "image/heic"
    }
    pub fn is_audio(&self) -> bool {
        self.content_type.starts_with("audio/")
    }
    pub fn is_video(&self) -> bool {
        self.content_type.starts_with("video/")
    }
    pub fn is_pdf(&self) -> bool {
        self.content_type == "application/pdf"
    }
    pub fn size_text(&self) -> String {
        storage::human_size(self.size as u64)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Declaration {
    pub text: String,
    pub declared_at: DateTime<Utc>,
    pub sha256: String,
}

/// One evidence item as stored.
#[derive(Debug, Clone, Serialize)]
pub struct EvidenceItem {
    pub id: Uuid,
    pub enrolment_id: Uuid,
    pub title: String,
    pub description: String,
    pub method: Method,
    pub occurred_on: NaiveDate,
    pub created_at: DateTime<Utc>,
    pub created_by: Uuid,
    pub created_by_name: String,
    pub declaration: Declaration,
    pub files: Vec<FileInfo>,
    /// Criterion numbers the item is mapped to, in unit order.
    pub criteria: Vec<String>,
}

impl EvidenceItem {
    pub fn method_label(&self) -> &'static str {
        self.method.label()
    }
}

/// Stores a checked item with its staged files, mappings and the declaration, in one
/// transaction with its audit event. Files are moved into place before the commit: if the
/// commit fails they are unreferenced blobs, never a record pointing at a missing file.
pub async fn create(
    conn: &mut PgConnection,
    store: &FileStore,
    actor: &Actor,
    access: &EnrolmentAccess,
    item: NewEvidence,
    files: Vec<StagedFile>,
) -> AppResult<Uuid> {
    let id = Uuid::new_v4();
    let declared_at = Utc::now();
    let signed = serde_json::json!({
        "declaration": DECLARATION,
        "evidence_id": id,
        "title": item.title,
        "description": item.description,
        "method": item.method,
        "occurred_on": item.occurred_on,
        "criteria": item.criteria.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
        "files": files.iter().map(|f| serde_json::json!({"name": f.name, "sha256": f.sha256, "size": f.size})).collect::<Vec<_>>(),
        "signer": actor.id,
        "declared_at": declared_at,
    });
    let declaration_sha256 = hex::encode(Sha256::digest(signed.to_string().as_bytes()));
    sqlx::query!(
        "INSERT INTO evidence_items (id, enrolment_id, title, description, method, occurred_on, created_by,
                                     declaration_text, declared_at, declaration_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id,
        access.id,
        item.title,
        item.description,
        item.method.as_str(),
        item.occurred_on,
        actor.id,
        DECLARATION,
        declared_at,
        declaration_sha256
    )
    .execute(&mut *conn)
    .await?;
    let mut file_ids = Vec::new();
    for (position, file) in files.into_iter().enumerate() {
        let file_id = Uuid::new_v4();
        sqlx::query!(
            "INSERT INTO blobs (sha256, size, content_type) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
            file.sha256,
            file.size as i64,
            file.content_type
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "INSERT INTO evidence_files (id, evidence_id, position, name, content_type, size, sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            file_id,
            id,
            position as i32,
            file.name,
            file.content_type,
            file.size as i64,
            file.sha256
        )
        .execute(&mut *conn)
        .await?;
        file_ids.push(serde_json::json!({"id": file_id, "name": file.name, "sha256": file.sha256, "size": file.size}));
        store.promote(file).await.map_err(|e| crate::error::AppError::Unexpected(e.into()))?;
    }
    for (_, criterion_id) in &item.criteria {
        sqlx::query!(
            "INSERT INTO evidence_criteria (evidence_id, criterion_id, added_by) VALUES ($1, $2, $3)",
            id,
            criterion_id,
            actor.id
        )
        .execute(&mut *conn)
        .await?;
    }
    audit::record(
        conn,
        Event::new(Some(actor), "evidence.submitted", "evidence", Some(id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "title": item.title,
                "method": item.method,
                "occurred_on": item.occurred_on,
                "criteria": item.criteria.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>(),
                "files": file_ids,
                "declaration_sha256": declaration_sha256,
            })),
    )
    .await?;
    Ok(id)
}

/// Every evidence item of an enrolment, newest first, with files and mapped criteria.
pub async fn list_for_enrolment(conn: &mut PgConnection, enrolment_id: Uuid) -> AppResult<Vec<EvidenceItem>> {
    let ids = sqlx::query_scalar!(
        "SELECT id FROM evidence_items WHERE enrolment_id = $1 ORDER BY created_at DESC",
        enrolment_id
    )
    .fetch_all(&mut *conn)
    .await?;
    load_many(conn, &ids).await
}

pub async fn load(conn: &mut PgConnection, id: Uuid) -> AppResult<EvidenceItem> {
    load_many(conn, &[id]).await?.pop().ok_or(crate::error::AppError::NotFound("evidence item"))
}

async fn load_many(conn: &mut PgConnection, ids: &[Uuid]) -> AppResult<Vec<EvidenceItem>> {
    let items = sqlx::query!(
        "SELECT e.id, e.enrolment_id, e.title, e.description, e.method, e.occurred_on, e.created_at,
                e.created_by, u.name AS created_by_name, e.declaration_text, e.declared_at, e.declaration_sha256
         FROM evidence_items e JOIN users u ON u.id = e.created_by
         WHERE e.id = ANY($1) ORDER BY e.created_at DESC",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let files = sqlx::query_as!(
        FileInfoRow,
        "SELECT evidence_id, id, name, content_type, size, sha256 FROM evidence_files
         WHERE evidence_id = ANY($1) ORDER BY position",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    let mappings = sqlx::query!(
        "SELECT m.evidence_id, c.number FROM evidence_criteria m JOIN criteria c ON c.id = m.criterion_id
         WHERE m.evidence_id = ANY($1) ORDER BY c.position",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(items
        .into_iter()
        .map(|row| EvidenceItem {
            files: files
                .iter()
                .filter(|f| f.evidence_id == row.id)
                .map(|f| FileInfo {
                    id: f.id,
                    name: f.name.clone(),
                    content_type: f.content_type.clone(),
                    size: f.size,
                    sha256: f.sha256.clone(),
                })
                .collect(),
            criteria: mappings.iter().filter(|m| m.evidence_id == row.id).map(|m| m.number.clone()).collect(),
            id: row.id,
            enrolment_id: row.enrolment_id,
            title: row.title,
            description: row.description,
            method: Method::parse(&row.method).unwrap_or(Method::Product),
            occurred_on: row.occurred_on,
            created_at: row.created_at,
            created_by: row.created_by,
            created_by_name: row.created_by_name,
            declaration: Declaration {
                text: row.declaration_text,
                declared_at: row.declared_at,
                sha256: row.declaration_sha256,
            },
        })
        .collect())
}

struct FileInfoRow {
    evidence_id: Uuid,
    id: Uuid,
    name: String,
    content_type: String,
    size: i64,
    sha256: String,
}

/// A stored file of an item, for download.
pub async fn file(conn: &mut PgConnection, evidence_id: Uuid, file_id: Uuid) -> AppResult<FileInfo> {
    sqlx::query_as!(
        FileInfo,
        "SELECT id, name, content_type, size, sha256 FROM evidence_files WHERE id = $1 AND evidence_id = $2",
        file_id,
        evidence_id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(crate::error::AppError::NotFound("file"))
}

/// Adds a criterion to an item's mapping (an assessor may add criteria the learner missed).
pub async fn ensure_mapped(
    conn: &mut PgConnection,
    evidence_id: Uuid,
    criterion_id: Uuid,
    by: Uuid,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "INSERT INTO evidence_criteria (evidence_id, criterion_id, added_by) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        evidence_id,
        criterion_id,
        by
    )
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() == 1)
}
