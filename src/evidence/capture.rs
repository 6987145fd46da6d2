//! Capturing evidence: what a learner sends (from the form or the API), checked into a
//! `NewEvidence`, stored as a draft or submitted with a signed authenticity declaration. A
//! submitted item is never edited; a resubmission after "not yet" is a new version.

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{ASSESSOR_DECLARATION, DECLARATION, FileStore, Method, StagedFile};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::auth::policy::{EnrolmentAccess, Relation};
use crate::catalogue::{CriterionNumber, Unit};
use crate::error::{AppError, AppResult, FieldError};

/// Where in a file a criterion is shown, as the learner wrote it ("04:12-06:30", "page 3").
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
pub struct MappingInput {
    #[serde(default)]
    pub note: String,
    #[serde(default, rename = "where")]
    pub location: String,
}

/// What a learner sent, before it is checked: from the form's fields or the API's `metadata`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, utoipa::ToSchema)]
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
    pub occurred_until: String,
    #[serde(default)]
    pub criteria: Vec<String>,
    /// Per criterion number: how the item shows it, and where.
    #[serde(default)]
    pub mappings: BTreeMap<String, MappingInput>,
    #[serde(default)]
    pub declaration: bool,
    #[serde(default)]
    pub help_received: String,
    #[serde(default)]
    pub ai_use: String,
    /// For recordings: the employer permits their use and they hold no card numbers or codes.
    #[serde(default)]
    pub third_party_confirmed: bool,
    /// `upload` (files or a written record) or `reference` (a document held at work).
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub held_at: String,
    #[serde(default)]
    pub held_by: String,
    #[serde(default)]
    pub confirmed_by: String,
    /// Saved as a draft rather than submitted for assessment.
    #[serde(default)]
    pub draft: bool,
    /// The item this one resubmits after a "not yet" decision.
    #[serde(default)]
    pub previous_version: Option<Uuid>,
    /// For an assessor's observation or discussion record: where the assessment took place.
    #[serde(default)]
    pub assessment_location: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Draft,
    Submitted,
}

/// A point in a recording or a page of a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Clip { start: i32, end: i32 },
    Page(i32),
}

impl Location {
    /// "04:12-06:30", "4:12 - 6:30", "1:02:03-1:03:00", "page 3", "p3", "3".
    pub fn parse(text: &str) -> Result<Option<Location>, String> {
        let text = text.trim().to_lowercase();
        if text.is_empty() {
            return Ok(None);
        }
        let page = text.strip_prefix("page").or_else(|| text.strip_prefix('p')).unwrap_or(&text).trim();
        if let Ok(page) = page.parse::<i32>() {
            return if page >= 1 { Ok(Some(Location::Page(page))) } else { Err("Pages are numbered from 1".into()) };
        }
        let refuse = || format!("\"{}\" is not a time range like 04:12-06:30 or a page like \"page 3\"", text.trim());
        let (start, end) = text.split_once(['-', '\u{2013}']).ok_or_else(refuse)?;
        let seconds = |t: &str| -> Option<i32> {
            let parts: Vec<&str> = t.trim().split(':').collect();
            if parts.is_empty()
                || parts.len() > 3
                || parts.iter().any(|p| p.is_empty() || p.len() > 2 && parts.len() > 1)
            {
                return None;
            }
            let mut total = 0i32;
            for (index, part) in parts.iter().enumerate() {
                let value: i32 = part.parse().ok()?;
                if index > 0 && value >= 60 {
                    return None;
                }
                total = total.checked_mul(60)?.checked_add(value)?;
            }
            Some(total)
        };
        match (seconds(start), seconds(end)) {
            (Some(start), Some(end)) if end > start => Ok(Some(Location::Clip { start, end })),
            (Some(_), Some(_)) => Err("The end of a time range must be after its start".into()),
            _ => Err(refuse()),
        }
    }
}

/// A criterion the item is mapped to, with the learner's note and where in which file.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub number: CriterionNumber,
    pub criterion_id: Uuid,
    pub note: String,
    /// The location and the position of the file (among the item's files) it points into.
    pub location: Option<(Location, usize)>,
}

/// A checked evidence item, ready to store.
#[derive(Debug)]
pub struct NewEvidence {
    pub status: Status,
    pub title: String,
    pub description: String,
    pub method: Method,
    pub occurred_on: NaiveDate,
    pub occurred_until: Option<NaiveDate>,
    pub mappings: Vec<Mapping>,
    pub reference: Option<Reference>,
    pub help_received: String,
    pub ai_use: String,
    pub third_party_confirmed: bool,
    pub previous_version: Option<Uuid>,
    /// Set for an assessor's own record: where the assessment took place.
    pub assessment_location: Option<String>,
}

/// Where a document that cannot be uploaded is held at work (the evidence location sheet).
#[derive(Debug, Clone)]
pub struct Reference {
    pub held_at: String,
    pub held_by: String,
    pub confirmed_by: String,
}

fn date(field: &str, text: &str, today: NaiveDate, errors: &mut Vec<FieldError>) -> Option<NaiveDate> {
    match NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d") {
        Ok(date) if date > today => {
            errors.push(FieldError::new(field, "The date of the activity must be today or in the past"));
            None
        }
        Ok(date) => Some(date),
        Err(_) => {
            errors.push(FieldError::new(field, "The date of the activity must be a real date, like 2026-03-17"));
            None
        }
    }
}

fn limited(field: &str, text: &str, max: usize, label: &str, errors: &mut Vec<FieldError>) -> String {
    let text = text.trim().to_string();
    if text.chars().count() > max {
        errors.push(FieldError::new(field, format!("{label} must be {max} characters or fewer")));
    }
    // PostgreSQL text cannot hold NUL: refused here rather than as a failed insert (a 500).
    if text.contains('\0') {
        errors.push(FieldError::new(field, format!("{label} must not contain a NUL character (\\0)")));
    }
    text
}

impl NewEvidence {
    /// Checks every field against the unit, today's date and the files' types (in upload
    /// order), collecting every problem at once. A draft needs only a title, a method and a date.
    pub fn parse(
        raw: &RawEvidence,
        unit: &Unit,
        today: NaiveDate,
        file_types: &[&str],
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let status = if raw.draft { Status::Draft } else { Status::Submitted };
        let title = limited("title", &raw.title, 200, "Title", &mut errors);
        if title.is_empty() {
            errors.push(FieldError::new("title", "Enter a title for the evidence"));
        }
        let description = limited("description", &raw.description, 20_000, "Description", &mut errors);
        let method = Method::parse(raw.method.trim());
        if method.is_none() {
            errors.push(FieldError::new("method", "Select how the evidence was produced (the assessment method)"));
        }
        let occurred_on = if raw.occurred_on.trim().is_empty() {
            errors.push(FieldError::new("occurred_on", "Enter the date of the activity"));
            None
        } else {
            date("occurred_on", &raw.occurred_on, today, &mut errors)
        };
        let occurred_until = match raw.occurred_until.trim() {
            "" => None,
            text => date("occurred_until", text, today, &mut errors),
        };
        if let (Some(from), Some(until)) = (occurred_on, occurred_until)
            && until < from
        {
            errors.push(FieldError::new(
                "occurred_until",
                "The last day of the activity must not be before its first day",
            ));
        }

        let mut mappings: Vec<Mapping> = Vec::new();
        for number in &raw.criteria {
            let criterion = match unit.criterion(number) {
                Ok(criterion) => criterion,
                Err(message) => {
                    errors.push(FieldError::new("criteria", message));
                    continue;
                }
            };
            let parsed = CriterionNumber::parse(&criterion.number).expect("stored numbers are valid");
            if mappings.iter().any(|m| m.number == parsed) {
                continue;
            }
            let input = raw.mappings.get(&criterion.number).cloned().unwrap_or_default();
            let note = limited(&format!("note-{parsed}"), &input.note, 2_000, "A note", &mut errors);
            let location = match Location::parse(&input.location) {
                Ok(None) => None,
                Ok(Some(location)) => {
                    let found = file_types.iter().position(|t| match location {
                        Location::Clip { .. } => t.starts_with("audio/") || t.starts_with("video/"),
                        Location::Page(_) => *t == "application/pdf",
                    });
                    match found {
                        Some(index) => Some((location, index)),
                        None => {
                            let what = match location {
                                Location::Clip { .. } => "a time range needs a recording or video among the files",
                                Location::Page(_) => "a page number needs a PDF among the files",
                            };
                            errors.push(FieldError::new(format!("where-{parsed}"), format!("For {parsed}, {what}")));
                            None
                        }
                    }
                }
                Err(message) => {
                    errors.push(FieldError::new(format!("where-{parsed}"), format!("For {parsed}: {message}")));
                    None
                }
            };
            mappings.push(Mapping { number: parsed, criterion_id: criterion.id, note, location });
        }
        mappings.sort_by_key(|m| m.number);

        let reference = if raw.kind.trim() == "reference" {
            let held_at = limited("held_at", &raw.held_at, 500, "Where it is held", &mut errors);
            let held_by = limited("held_by", &raw.held_by, 200, "Who holds it", &mut errors);
            let confirmed_by = limited("confirmed_by", &raw.confirmed_by, 200, "Who confirmed it", &mut errors);
            if held_at.is_empty() {
                errors.push(FieldError::new(
                    "held_at",
                    "Say where the document is held, e.g. \"CRM, campaign folder Q1\"",
                ));
            }
            if held_by.is_empty() {
                errors.push(FieldError::new("held_by", "Say who holds the document, e.g. \"Sales team leader\""));
            }
            Some(Reference { held_at, held_by, confirmed_by })
        } else {
            None
        };
        let help_received = limited("help_received", &raw.help_received, 2_000, "Help received", &mut errors);
        let ai_use = limited("ai_use", &raw.ai_use, 2_000, "The description of AI use", &mut errors);
        let has_media = file_types.iter().any(|t| t.starts_with("audio/") || t.starts_with("video/"));

        if status == Status::Submitted {
            if raw.criteria.is_empty() {
                errors.push(FieldError::new("criteria", "Select at least one criterion this evidence covers"));
            }
            if !raw.declaration {
                errors.push(FieldError::new(
                    "declaration",
                    "Confirm the declaration that this evidence is your own work",
                ));
            }
            if has_media && !raw.third_party_confirmed {
                errors.push(FieldError::new(
                    "third_party_confirmed",
                    "Confirm that your employer permits you to use the recording and that it holds no card numbers or security codes",
                ));
            }
            if file_types.is_empty() && description.is_empty() && reference.is_none() {
                errors
                    .push(FieldError::new("file", "Choose a file to upload, or write the evidence in the description"));
            }
        }
        match (errors.is_empty(), method, occurred_on) {
            (true, Some(method), Some(occurred_on)) => Ok(NewEvidence {
                status,
                title,
                description,
                method,
                occurred_on,
                occurred_until,
                mappings,
                reference,
                help_received,
                ai_use,
                third_party_confirmed: raw.third_party_confirmed && has_media,
                previous_version: raw.previous_version,
                assessment_location: None,
            }),
            _ => Err(errors),
        }
    }
}

/// The signature's hash: the declaration and exactly what it is about (every field, every
/// file's SHA-256, every mapping), the signer and the time.
fn signature(
    declaration: &str,
    evidence_id: Uuid,
    signer: Uuid,
    at: chrono::DateTime<Utc>,
    content: &serde_json::Value,
) -> String {
    let signed = serde_json::json!({
        "declaration": declaration,
        "evidence_id": evidence_id,
        "content": content,
        "signer": signer,
        "declared_at": at,
    });
    hex::encode(Sha256::digest(signed.to_string().as_bytes()))
}

/// Stores a checked item with its staged files and mappings, in one transaction with its audit
/// event. Files are moved into place before the commit: if the commit fails they are
/// unreferenced blobs, never a record pointing at a missing file.
pub async fn create(
    conn: &mut PgConnection,
    store: &FileStore,
    actor: &Actor,
    access: &EnrolmentAccess,
    item: NewEvidence,
    files: Vec<StagedFile>,
) -> AppResult<Uuid> {
    crate::assessment::sign_off::ensure_open(conn, access.id).await?;
    let id = Uuid::new_v4();
    let version = match item.previous_version {
        Some(previous) => resubmission_of(conn, access.id, previous).await? + 1,
        None => 1,
    };
    let reference = item.reference.clone();
    let kind = match (&reference, &item.assessment_location) {
        (_, Some(_)) => "assessor_record",
        (Some(_), None) => "reference",
        (None, None) => "upload",
    };
    sqlx::query!(
        "INSERT INTO evidence_items (id, enrolment_id, title, description, method, occurred_on, occurred_until,
                                     created_by, status, kind, held_at, held_by, confirmed_by, help_received, ai_use,
                                     previous_version, version, assessment_location)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'draft', $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        id,
        access.id,
        item.title,
        item.description,
        item.method.as_str(),
        item.occurred_on,
        item.occurred_until,
        actor.id,
        kind,
        reference.as_ref().map(|r| r.held_at.as_str()).unwrap_or(""),
        reference.as_ref().map(|r| r.held_by.as_str()).unwrap_or(""),
        reference.as_ref().map(|r| r.confirmed_by.as_str()).unwrap_or(""),
        item.help_received,
        item.ai_use,
        item.previous_version,
        version,
        item.assessment_location.as_deref().unwrap_or("")
    )
    .execute(&mut *conn)
    .await?;
    let file_ids = store_files(conn, store, id, 0, files).await?;
    store_mappings(conn, actor, id, &item.mappings, &file_ids).await?;
    audit::record(
        conn,
        Event::new(Some(actor), "evidence.created", "evidence", Some(id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "title": item.title,
                "method": item.method,
                "version": version,
                "previous_version": item.previous_version,
                "files": file_ids,
            })),
    )
    .await?;
    if item.status == Status::Submitted {
        sign_and_submit(conn, actor, access, id, item.third_party_confirmed).await?;
    }
    Ok(id)
}

/// Records staged files as the item's, from `first_position` on, and moves each into the store
/// (before the commit: a failed commit leaves unreferenced blobs, never a dangling record).
/// Answers the new files' ids in order.
pub(super) async fn store_files(
    conn: &mut PgConnection,
    store: &FileStore,
    evidence_id: Uuid,
    first_position: i32,
    files: Vec<StagedFile>,
) -> AppResult<Vec<Uuid>> {
    let mut file_ids = Vec::new();
    for (offset, file) in files.into_iter().enumerate() {
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
            evidence_id,
            first_position + offset as i32,
            file.name,
            file.content_type,
            file.size as i64,
            file.sha256
        )
        .execute(&mut *conn)
        .await?;
        file_ids.push(file_id);
        store.promote(file).await?;
    }
    Ok(file_ids)
}

/// Records the item's mappings; a mapping's location points into `file_ids[index]`.
pub(super) async fn store_mappings(
    conn: &mut PgConnection,
    actor: &Actor,
    evidence_id: Uuid,
    mappings: &[Mapping],
    file_ids: &[Uuid],
) -> AppResult<()> {
    for mapping in mappings {
        let (file_id, start, end, page) = match mapping.location {
            Some((Location::Clip { start, end }, index)) => (Some(file_ids[index]), Some(start), Some(end), None),
            Some((Location::Page(page), index)) => (Some(file_ids[index]), None, None, Some(page)),
            None => (None, None, None, None),
        };
        sqlx::query!(
            "INSERT INTO evidence_criteria (evidence_id, criterion_id, added_by, note, file_id, start_seconds, end_seconds, page)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            evidence_id,
            mapping.criterion_id,
            actor.id,
            mapping.note,
            file_id,
            start,
            end,
            page
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The version number of the item being resubmitted, checking it may be: the same learner's,
/// submitted, judged "not yet" on some criterion, and not already resubmitted.
async fn resubmission_of(conn: &mut PgConnection, enrolment_id: Uuid, previous: Uuid) -> AppResult<i32> {
    let row = sqlx::query!(
        r#"SELECT e.version, e.status, e.kind,
                  EXISTS (SELECT 1 FROM evidence_items n WHERE n.previous_version = e.id) AS "replaced!",
                  EXISTS (SELECT 1 FROM decisions d WHERE d.evidence_id = e.id AND d.outcome = 'not_yet'
                          AND NOT EXISTS (SELECT 1 FROM decisions l WHERE l.evidence_id = d.evidence_id
                                          AND l.criterion_id = d.criterion_id AND l.seq > d.seq)) AS "not_yet!"
           FROM evidence_items e WHERE e.id = $1 AND e.enrolment_id = $2"#,
        previous,
        enrolment_id
    )
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| AppError::invalid("previous_version", "The evidence being resubmitted is not in this portfolio"))?;
    if row.kind == "witness_statement" || row.kind == "assessor_record" {
        return Err(AppError::invalid(
            "previous_version",
            "A witness's statement or an assessor's record is not yours to rewrite: add new evidence instead",
        ));
    }
    if row.replaced {
        return Err(AppError::Conflict(
            "This evidence has already been resubmitted; resubmit the newest version".into(),
            vec![],
        ));
    }
    if row.status != "submitted" || !row.not_yet {
        return Err(AppError::invalid("previous_version", "Only evidence judged \"not yet met\" can be resubmitted"));
    }
    Ok(row.version)
}

/// Signs the declaration over the item exactly as it stands and submits it: the learner's on
/// their own evidence, the assessor's on their observation or discussion record.
async fn sign_and_submit(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    id: Uuid,
    third_party_confirmed: bool,
) -> AppResult<()> {
    let item = super::load(conn, id).await?;
    let content = serde_json::json!({
        "title": item.title,
        "description": item.description,
        "method": item.method,
        "occurred_on": item.occurred_on,
        "occurred_until": item.occurred_until,
        "reference": item.reference,
        "help_received": item.help_received,
        "ai_use": item.ai_use,
        "criteria": item.mappings,
        "files": item.files.iter().map(|f| serde_json::json!({"name": f.name, "sha256": f.sha256, "size": f.size})).collect::<Vec<_>>(),
        "third_party_confirmed": third_party_confirmed,
        "assessment_location": item.assessment_location,
    });
    let (declaration, signer_role) = match access.relation {
        Relation::Assessor => (ASSESSOR_DECLARATION, "assessor"),
        _ => (DECLARATION, "learner"),
    };
    let at = Utc::now();
    let hash = signature(declaration, id, actor.id, at, &content);
    sqlx::query!(
        "UPDATE evidence_items SET status = 'submitted', submitted_at = $2, declaration_text = $3, declared_at = $2,
                declaration_sha256 = $4, third_party_confirmed_at = $5, signer_role = $6
         WHERE id = $1 AND status = 'draft'",
        id,
        at,
        declaration,
        hash,
        third_party_confirmed.then_some(at),
        signer_role
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "evidence.submitted", "evidence", Some(id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "title": item.title,
                "criteria": item.criteria,
                "declaration_sha256": hash,
                "third_party_confirmed": third_party_confirmed,
            })),
    )
    .await?;
    crate::notifications::evidence_submitted(conn, actor, access, id, &item.title).await?;
    Ok(())
}

/// What the learner confirms when submitting a draft.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct Submission {
    #[serde(default)]
    pub declaration: bool,
    #[serde(default)]
    pub third_party_confirmed: bool,
}

/// Submits a draft for assessment: it must be complete, and the declaration is signed now.
pub async fn submit_draft(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    id: Uuid,
    confirm: &Submission,
) -> AppResult<()> {
    crate::assessment::sign_off::ensure_open(conn, access.id).await?;
    let item = super::load(conn, id).await?;
    if item.status != "draft" {
        return Err(AppError::Conflict("This evidence has already been submitted".into(), vec![]));
    }
    let mut errors = Vec::new();
    if item.criteria.is_empty() {
        errors.push(FieldError::new("criteria", "A draft needs at least one criterion before it can be submitted"));
    }
    if item.files.is_empty() && item.description.is_empty() && item.reference.is_none() {
        errors.push(FieldError::new(
            "file",
            "A draft needs a file, a written record or a reference before it can be submitted",
        ));
    }
    if !confirm.declaration {
        errors.push(FieldError::new("declaration", "Confirm the declaration that this evidence is your own work"));
    }
    let has_media = item.files.iter().any(|f| f.is_audio() || f.is_video());
    if has_media && !confirm.third_party_confirmed {
        errors.push(FieldError::new(
            "third_party_confirmed",
            "Confirm that your employer permits you to use the recording and that it holds no card numbers or security codes",
        ));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    sign_and_submit(conn, actor, access, id, has_media).await
}

#[cfg(test)]
mod tests {
    use super::Location;

    #[test]
    fn locations_are_time_ranges_or_pages() {
        assert_eq!(Location::parse("04:12-06:30").unwrap(), Some(Location::Clip { start: 252, end: 390 }));
        assert_eq!(Location::parse(" 4:12 \u{2013} 6:30 ").unwrap(), Some(Location::Clip { start: 252, end: 390 }));
        assert_eq!(Location::parse("1:00:00-1:00:30").unwrap(), Some(Location::Clip { start: 3600, end: 3630 }));
        assert_eq!(Location::parse("page 3").unwrap(), Some(Location::Page(3)));
        assert_eq!(Location::parse("p12").unwrap(), Some(Location::Page(12)));
        assert_eq!(Location::parse("").unwrap(), None);
        assert!(Location::parse("06:30-04:12").unwrap_err().contains("after its start"));
        assert!(Location::parse("page 0").is_err());
        assert!(Location::parse("soon").unwrap_err().contains("not a time range"));
        assert!(Location::parse("4:75-5:00").is_err());
    }
}
