//! Evidence items: what a learner did, how it was assessed (method), when, the files that show
//! it, the criteria it covers, and the learner's authenticity declaration.

mod assessor_records;
mod capture;
mod drafts;
mod file_type;
pub mod idempotency;
pub mod routes;
pub mod storage;
mod submission;
mod unreferenced;
pub mod witnesses;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::AppResult;
pub use assessor_records::parse_record as parse_assessor_record;
pub use capture::{Location, Mapping, NewEvidence, RawEvidence, Status, create, submit_draft};
pub use file_type::detect as detect_type;
pub use routes::{detail_with_decision_errors, detail_with_errors, detail_with_reply_errors};
pub use storage::{FileStore, StagedFile};
pub use unreferenced::{SweepReport, remove_released_files, remove_unreferenced_files};

/// The learner's authenticity declaration, signed with every item.
pub const DECLARATION: &str = "I confirm that this evidence is my own work, that it shows what I \
did on the date(s) given, that I have said where I had help, and that my employer permits me to \
use it. It contains no customer card numbers or security codes.";

/// Every evidence page and API route: items, uploads, witnesses and assessors' records.
pub fn router() -> crate::web::route_table::Routes {
    routes::router().merge(drafts::router()).merge(witnesses::router()).merge(assessor_records::router())
}

/// What a witness declares when signing a statement.
pub const WITNESS_DECLARATION: &str = "This is a true account of what I saw the learner do. I am not \
the learner, and I wrote this statement myself.";

/// What an assessor declares when signing an observation or professional-discussion record.
pub const ASSESSOR_DECLARATION: &str = "I confirm that this is an accurate record of the assessment I \
carried out with the learner, on the date(s) and at the place given.";

/// How the evidence was produced, in the awarding bodies' vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = EvidenceMethod)]
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Declaration {
    pub text: String,
    pub declared_at: DateTime<Utc>,
    pub sha256: String,
    /// `learner`, `witness` or `assessor`.
    pub signer_role: String,
}

/// The witness who wrote and signed a statement (they have no account: the register is the signer).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WitnessSigner {
    pub witness_id: Uuid,
    pub name: String,
    pub job_role: String,
    pub relationship: String,
    pub is_expert: bool,
    pub competence: String,
    /// The full name the witness typed as their signature.
    pub signed_name: String,
}

/// The assessor's confirmation that a witness statement is genuine.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WitnessConfirmation {
    pub confirmed_by: Uuid,
    pub confirmed_by_name: String,
    pub confirmed_at: DateTime<Utc>,
}

/// Where a document held at work can be found (evidence of kind "reference").
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReferenceView {
    pub held_at: String,
    pub held_by: String,
    pub confirmed_by: String,
}

/// A criterion an item is mapped to: the learner's note, and where in which file it is shown.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MappingView {
    pub criterion: String,
    pub note: String,
    pub file_id: Option<Uuid>,
    pub start_seconds: Option<i32>,
    pub end_seconds: Option<i32>,
    pub page: Option<i32>,
}

impl MappingView {
    /// "04:12–06:30" or "page 3", for people.
    pub fn location_text(&self) -> Option<String> {
        let clock = |s: i32| {
            if s >= 3600 {
                format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            } else {
                format!("{:02}:{:02}", s / 60, s % 60)
            }
        };
        match (self.start_seconds, self.end_seconds, self.page) {
            (Some(start), Some(end), _) => Some(format!("{}\u{2013}{}", clock(start), clock(end))),
            (_, _, Some(page)) => Some(format!("page {page}")),
            _ => None,
        }
    }

    /// The media fragment or PDF page to open the file at.
    pub fn fragment(&self) -> String {
        match (self.start_seconds, self.end_seconds, self.page) {
            (Some(start), Some(end), _) => format!("#t={start},{end}"),
            (_, _, Some(page)) => format!("#page={page}"),
            _ => String::new(),
        }
    }
}

/// One evidence item as stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EvidenceItem {
    pub id: Uuid,
    pub enrolment_id: Uuid,
    /// `draft` (the learner's only) or `submitted`.
    pub status: String,
    pub title: String,
    pub description: String,
    pub method: Method,
    pub occurred_on: NaiveDate,
    pub occurred_until: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub created_by: Uuid,
    pub created_by_name: String,
    /// `upload`, `reference`, `witness_statement` or `assessor_record`.
    pub kind: String,
    pub reference: Option<ReferenceView>,
    /// For a witness statement: who wrote and signed it.
    pub witness: Option<WitnessSigner>,
    pub witness_confirmation: Option<WitnessConfirmation>,
    /// For an assessor's record: where the assessment took place.
    pub assessment_location: String,
    pub help_received: String,
    pub ai_use: String,
    pub third_party_confirmed_at: Option<DateTime<Utc>>,
    pub declaration: Option<Declaration>,
    pub version: i32,
    pub previous_version: Option<Uuid>,
    pub next_version: Option<Uuid>,
    pub files: Vec<FileInfo>,
    /// Criterion numbers the item is mapped to, in unit order.
    pub criteria: Vec<String>,
    pub mappings: Vec<MappingView>,
}

impl EvidenceItem {
    pub fn method_label(&self) -> &'static str {
        self.method.label()
    }

    pub fn is_draft(&self) -> bool {
        self.status == "draft"
    }

    pub fn is_assessor_record(&self) -> bool {
        self.kind == "assessor_record"
    }

    /// A witness statement the assessor has not yet confirmed: it cannot be assessed yet.
    pub fn awaits_witness_confirmation(&self) -> bool {
        self.witness.is_some() && self.witness_confirmation.is_none()
    }

    pub fn dates(&self) -> String {
        match self.occurred_until {
            Some(until) if until != self.occurred_on => format!("{} to {}", self.occurred_on, until),
            _ => self.occurred_on.to_string(),
        }
    }

    pub fn mapping(&self, criterion: &str) -> Option<&MappingView> {
        self.mappings.iter().find(|m| m.criterion == criterion)
    }

    pub fn file(&self, id: &Uuid) -> Option<&FileInfo> {
        self.files.iter().find(|f| f.id == *id)
    }
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

/// `(item, value)` pairs grouped by item, each group in the pairs' order.
fn by_item<T>(pairs: impl IntoIterator<Item = (Uuid, T)>) -> std::collections::HashMap<Uuid, Vec<T>> {
    let mut grouped: std::collections::HashMap<Uuid, Vec<T>> = Default::default();
    for (item, value) in pairs {
        grouped.entry(item).or_default().push(value);
    }
    grouped
}

async fn load_many(conn: &mut PgConnection, ids: &[Uuid]) -> AppResult<Vec<EvidenceItem>> {
    let items = sqlx::query!(
        r#"SELECT e.id, e.enrolment_id, e.status, e.title, e.description, e.method, e.occurred_on, e.occurred_until,
                  e.created_at, e.submitted_at, e.created_by, u.name AS created_by_name, e.kind, e.held_at, e.held_by,
                  e.confirmed_by, e.help_received, e.ai_use, e.third_party_confirmed_at, e.declaration_text,
                  e.declared_at, e.declaration_sha256, e.version, e.previous_version,
                  (SELECT n.id FROM evidence_items n WHERE n.previous_version = e.id) AS "next_version?",
                  e.signer_role, e.signed_name, e.assessment_location, e.witness_id,
                  w.name AS "witness_name?", w.job_role AS "witness_job_role?",
                  w.relationship AS "witness_relationship?", w.is_expert AS "witness_is_expert?",
                  w.competence AS "witness_competence?", e.witness_confirmed_by, e.witness_confirmed_at,
                  cu.name AS "confirmed_by_name?"
           FROM evidence_items e JOIN users u ON u.id = e.created_by
           LEFT JOIN witnesses w ON w.id = e.witness_id
           LEFT JOIN users cu ON cu.id = e.witness_confirmed_by
           WHERE e.id = ANY($1) ORDER BY e.created_at DESC"#,
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
        "SELECT m.evidence_id, c.number, m.note, m.file_id, m.start_seconds, m.end_seconds, m.page
         FROM evidence_criteria m JOIN criteria c ON c.id = m.criterion_id
         WHERE m.evidence_id = ANY($1) ORDER BY c.position",
        ids
    )
    .fetch_all(&mut *conn)
    .await?;
    // Each item's files and mappings, in the statements' order (moved, not searched per item).
    let mut files = by_item(files.into_iter().map(|f| {
        let file = FileInfo { id: f.id, name: f.name, content_type: f.content_type, size: f.size, sha256: f.sha256 };
        (f.evidence_id, file)
    }));
    let mut mappings = by_item(mappings.into_iter().map(|m| {
        let mapping = MappingView {
            criterion: m.number,
            note: m.note,
            file_id: m.file_id,
            start_seconds: m.start_seconds,
            end_seconds: m.end_seconds,
            page: m.page,
        };
        (m.evidence_id, mapping)
    }));
    Ok(items
        .into_iter()
        .map(|row| {
            let declaration = match (row.declaration_text, row.declared_at, row.declaration_sha256) {
                (Some(text), Some(declared_at), Some(sha256)) => {
                    Some(Declaration { text, declared_at, sha256, signer_role: row.signer_role.clone() })
                }
                _ => None,
            };
            let mapped = mappings.remove(&row.id).unwrap_or_default();
            EvidenceItem {
                files: files.remove(&row.id).unwrap_or_default(),
                criteria: mapped.iter().map(|m| m.criterion.clone()).collect(),
                mappings: mapped,
                reference: (row.kind == "reference").then(|| ReferenceView {
                    held_at: row.held_at.clone(),
                    held_by: row.held_by.clone(),
                    confirmed_by: row.confirmed_by.clone(),
                }),
                witness: match (row.witness_id, row.witness_name) {
                    (Some(witness_id), Some(name)) => Some(WitnessSigner {
                        witness_id,
                        name,
                        job_role: row.witness_job_role.unwrap_or_default(),
                        relationship: row.witness_relationship.unwrap_or_default(),
                        is_expert: row.witness_is_expert.unwrap_or(false),
                        competence: row.witness_competence.unwrap_or_default(),
                        signed_name: row.signed_name.clone(),
                    }),
                    _ => None,
                },
                witness_confirmation: match (row.witness_confirmed_by, row.witness_confirmed_at) {
                    (Some(confirmed_by), Some(confirmed_at)) => Some(WitnessConfirmation {
                        confirmed_by,
                        confirmed_by_name: row.confirmed_by_name.unwrap_or_default(),
                        confirmed_at,
                    }),
                    _ => None,
                },
                kind: row.kind,
                assessment_location: row.assessment_location,
                id: row.id,
                enrolment_id: row.enrolment_id,
                status: row.status,
                title: row.title,
                description: row.description,
                method: Method::parse(&row.method).unwrap_or(Method::Product),
                occurred_on: row.occurred_on,
                occurred_until: row.occurred_until,
                created_at: row.created_at,
                submitted_at: row.submitted_at,
                created_by: row.created_by,
                created_by_name: row.created_by_name,
                help_received: row.help_received,
                ai_use: row.ai_use,
                third_party_confirmed_at: row.third_party_confirmed_at,
                declaration,
                version: row.version,
                previous_version: row.previous_version,
                next_version: row.next_version,
            }
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
