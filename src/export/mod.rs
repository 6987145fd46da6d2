//! Portfolio exports a learner can take away and a verifier can keep: an offline ZIP (an
//! `index.html` that opens from disk, every file, and a `manifest.json` with each file's SHA-256
//! and the record's own hash, checked offline by `eportfolio export verify`) and LEAP2A for
//! Mahara. Both are built from the same gathered record and streamed, so memory stays flat
//! however large the files are.

pub mod leap2a;
pub mod leap2a_import;
pub mod offline;
mod routes;
pub mod subject_access;
pub use routes::bundle_download;
pub mod verify;
mod zip_stream;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::assessment::sign_off::{self, SignOff};
use crate::assessment::{self, CriterionDecisions, EnrolmentSummary, Progress};
use crate::audit::Event;
use crate::audit::{self, RecordedEvent};
use crate::auth::policy::{self, Action, EnrolmentAccess, Relation, Viewed};
use crate::auth::{Actor, Role};
use crate::catalogue::{self, Unit};
use crate::error::{AppError, AppResult};
use crate::evidence::{self, EvidenceItem, FileInfo, FileStore};
use crate::feedback::{self, Comment};

pub use routes::router;

/// How many audit events of the enrolment an export carries (a portfolio has far fewer).
const AUDIT_EVENTS_LIMIT: i64 = 100_000;

/// A file of an evidence item and where it sits in the export.
#[derive(Debug, Clone, Serialize)]
pub struct ExportedFile {
    #[serde(flatten)]
    pub info: FileInfo,
    /// The path inside the ZIP, relative to `index.html`.
    pub path: String,
}

/// One evidence item with everything said and decided about it.
#[derive(Debug, Clone)]
pub struct ItemRecord {
    pub item: EvidenceItem,
    pub files: Vec<ExportedFile>,
    pub decisions: Vec<CriterionDecisions>,
    pub comments: Vec<Comment>,
    /// Internal quality assurers' samples of the item (plan, record, response, closure). Like
    /// the evidence page, staff's and verifiers' exports carry them; the learner's does not.
    pub iqa_samples: Vec<crate::quality::PlanRow>,
}

/// An enrolment's whole record as one exports it.
#[derive(Debug, Clone)]
pub struct PortfolioRecord {
    pub summary: EnrolmentSummary,
    pub unit: Unit,
    pub progress: Progress,
    pub items: Vec<ItemRecord>,
    pub sign_offs: Vec<SignOff>,
    /// The enrolment's audit events, oldest first.
    pub events: Vec<RecordedEvent>,
    pub generated_at: DateTime<Utc>,
    pub generated_by: String,
}

impl PortfolioRecord {
    pub fn files(&self) -> impl Iterator<Item = (&ItemRecord, &ExportedFile)> {
        self.items.iter().flat_map(|item| item.files.iter().map(move |file| (item, file)))
    }

    /// `portfolio-<learner>-<unit>` in letters, digits and hyphens, for file names.
    pub fn file_stem(&self, prefix: &str) -> String {
        let slug = |text: &str| {
            let mut slug = String::new();
            for c in text.chars() {
                if c.is_ascii_alphanumeric() {
                    slug.push(c.to_ascii_lowercase());
                } else if !slug.ends_with('-') && !slug.is_empty() {
                    slug.push('-');
                }
            }
            slug.trim_end_matches('-').to_string()
        };
        format!("{prefix}-{}-{}", slug(&self.summary.learner_name), slug(&self.summary.unit_code))
    }
}

/// Where a file goes inside an export: `files/<file id>/<its name, made safe for any disk>`.
pub fn file_path(file: &FileInfo) -> String {
    let mut name: String = file
        .name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' })
        .collect();
    name = name.trim_start_matches('.').to_string();
    if name.is_empty() {
        name = "file".into();
    }
    format!("files/{}/{}", file.id, name)
}

/// Gathers the record of the enrolment `access` names. Drafts are the learner's alone, so only
/// the learner's own export carries them.
pub async fn gather(
    conn: &mut PgConnection,
    access: &EnrolmentAccess,
    generated_by: &str,
) -> AppResult<PortfolioRecord> {
    let unit = catalogue::find_unit(conn, None, Some(access.unit_id)).await?;
    let summary = assessment::summaries(conn, &[access.id]).await?.pop().ok_or(AppError::NotFound("enrolment"))?;
    let progress = assessment::progress(conn, access.id, &unit).await?;
    let mut items = Vec::new();
    let mut listed = evidence::list_for_enrolment(conn, access.id).await?;
    // Oldest first: a portfolio reads in the order it was built.
    listed.reverse();
    for item in listed {
        if item.is_draft() && access.relation != Relation::Learner {
            continue;
        }
        let decisions = assessment::decisions_for_evidence(conn, &unit, &item).await?;
        let comments = feedback::comments(conn, item.id).await?;
        let files = item.files.iter().map(|f| ExportedFile { info: f.clone(), path: file_path(f) }).collect();
        let iqa_samples = if access.relation == Relation::Learner {
            Vec::new()
        } else {
            crate::quality::samples_of_evidence(conn, item.id).await?
        };
        items.push(ItemRecord { item, files, decisions, comments, iqa_samples });
    }
    let sign_offs = sign_off::history(conn, access.id).await?;
    let mut events = audit::history(conn, Some(access.id), AUDIT_EVENTS_LIMIT).await?;
    events.reverse();
    Ok(PortfolioRecord {
        summary,
        unit,
        progress,
        items,
        sign_offs,
        events,
        generated_at: Utc::now(),
        generated_by: generated_by.to_string(),
    })
}

/// Records the download in a transaction of its own: a verifier's request transaction is
/// read-only, and a download changes nothing else.
pub(crate) async fn record_download(
    pool: &sqlx::PgPool,
    actor: &Actor,
    relation: Relation,
    record: &PortfolioRecord,
    format: &str,
    record_sha256: Option<&str>,
) -> AppResult<()> {
    let mut event = Event::new(Some(actor), "export.downloaded", "enrolment", Some(record.summary.id))
        .enrolment(record.summary.id)
        .details(json!({"format": format, "files": record.files().count(), "record_sha256": record_sha256}));
    event = match relation {
        Relation::Learner => event.as_role(Role::Learner),
        Relation::Assessor => event.as_role(Role::Assessor),
        Relation::Iqa => event.as_role(Role::Iqa),
        Relation::Verifier => event.as_role(Role::Eqa),
    };
    let mut tx = pool.begin().await?;
    audit::record(&mut tx, event).await?;
    tx.commit().await?;
    Ok(())
}

/// The offline export of an enrolment written to `path`, for `actor` (the command line's
/// `export enrolment --as`): the same policy, record, audit event and archive as a download.
/// Returns the record hash.
pub async fn export_to_file(
    pool: &sqlx::PgPool,
    store: &FileStore,
    actor: &Actor,
    enrolment_id: Uuid,
    path: std::path::PathBuf,
) -> AppResult<String> {
    let mut tx = pool.begin().await?;
    let access = policy::enrolment(
        &crate::audit::Views::start(pool),
        &mut tx,
        actor,
        enrolment_id,
        Action::View,
        Viewed::Portfolio,
    )
    .await?;
    let record = gather(&mut tx, &access, &actor.name).await?;
    tx.commit().await?;
    let (entries, record_sha256) = offline::entries(&record)?;
    record_download(pool, actor, access.relation, &record, "offline", Some(&record_sha256)).await?;
    zip_stream::to_file(store.clone(), entries, record.generated_at, path)
        .await
        .map_err(|e| AppError::Unexpected(anyhow::Error::new(e).context("the export could not be written")))?;
    Ok(record_sha256)
}

/// The manifest of an offline export, without its own hash: the enrolment, every file with its
/// SHA-256, every item, decision, message and signature, the audit events, and the SHA-256 of
/// `index.html`. `record_sha256` is added by `seal`.
pub fn manifest(record: &PortfolioRecord, index_sha256: &str) -> Value {
    let s = &record.summary;
    let files: Vec<Value> = record
        .files()
        .map(|(item, f)| {
            json!({"path": f.path, "name": f.info.name, "content_type": f.info.content_type, "size": f.info.size,
                   "sha256": f.info.sha256, "evidence_id": item.item.id, "file_id": f.info.id})
        })
        .collect();
    let items: Vec<Value> = record
        .items
        .iter()
        .map(|r| {
            let i = &r.item;
            json!({"id": i.id, "title": i.title, "status": i.status, "kind": i.kind, "method": i.method.as_str(),
                   "description": i.description, "occurred_on": i.occurred_on, "occurred_until": i.occurred_until,
                   "submitted_at": i.submitted_at, "version": i.version, "previous_version": i.previous_version,
                   "help_received": i.help_received, "ai_use": i.ai_use, "reference": i.reference,
                   "assessment_location": i.assessment_location, "mappings": i.mappings,
                   "files": r.files.iter().map(|f| &f.path).collect::<Vec<_>>()})
        })
        .collect();
    let decisions: Vec<Value> = record
        .items
        .iter()
        .flat_map(|r| r.decisions.iter().map(move |d| (r, d)))
        .flat_map(|(r, d)| d.history.iter().map(move |info| (r, d, info)))
        .map(|(r, d, info)| {
            json!({"id": info.id, "evidence_id": r.item.id, "criterion": d.criterion, "outcome": info.outcome.as_str(),
                   "feedback": info.feedback, "assessor_id": info.assessor_id, "assessor": info.assessor_name,
                   "decided_at": info.decided_at, "supersedes": info.supersedes, "change_reason": info.change_reason,
                   "confirmations": info.confirmed})
        })
        .collect();
    let messages: Vec<Value> = record
        .items
        .iter()
        .flat_map(|r| r.comments.iter().map(move |c| (r, c)))
        .map(|(r, c)| {
            json!({"id": c.id, "evidence_id": r.item.id, "author": c.author_name, "author_role": c.author_role,
                   "body": c.body, "written_at": c.written_at})
        })
        .collect();
    let declarations: Vec<Value> = record
        .items
        .iter()
        .filter_map(|r| r.item.declaration.as_ref().map(|d| (r, d)))
        .map(|(r, d)| {
            json!({"evidence_id": r.item.id, "signer_role": d.signer_role, "text": d.text,
                   "declared_at": d.declared_at, "sha256": d.sha256})
        })
        .collect();
    let witnesses: Vec<Value> = record
        .items
        .iter()
        .filter_map(|r| r.item.witness.as_ref().map(|w| (r, w)))
        .map(|(r, w)| json!({"evidence_id": r.item.id, "witness": w, "confirmation": r.item.witness_confirmation}))
        .collect();
    let iqa_samples: Vec<Value> = record
        .items
        .iter()
        .flat_map(|r| r.iqa_samples.iter())
        .map(|p| {
            json!({"id": p.id, "evidence_id": p.evidence_id, "iqa": p.iqa_name, "assessor_id": p.assessor_id,
                   "assessor": p.assessor_name, "method": p.method, "stage": p.stage, "planned_on": p.planned_on,
                   "draw_seed": p.draw_seed, "status": p.status, "outcome": p.outcome, "feedback": p.feedback,
                   "actions": p.actions, "recorded_at": p.recorded_at, "sha256": p.sha256,
                   "assessor_response": p.response, "responded_at": p.responded_at,
                   "closure_note": p.closure_note, "closed_at": p.closed_at})
        })
        .collect();
    let events: Vec<Value> = record
        .events
        .iter()
        .map(|e| {
            json!({"seq": e.seq, "occurred_at": e.occurred_at, "actor": e.actor_name, "actor_role": e.actor_role,
                   "action": e.action, "subject_type": e.subject_type, "subject_id": e.subject_id,
                   "details": e.details, "hash": e.hash})
        })
        .collect();
    json!({
        "format": "eportfolio offline export 1",
        "generated_at": record.generated_at,
        "generated_by": record.generated_by,
        "enrolment": {"id": s.id, "learner_id": s.learner_id, "learner": s.learner_name, "unit_code": s.unit_code,
                      "unit_title": s.unit_title, "assessor": s.assessor_name, "iqa": s.iqa_name,
                      "criteria_met": record.progress.met, "criteria_total": record.progress.total},
        "index_html": {"path": "index.html", "sha256": index_sha256},
        "files": files,
        "evidence": items,
        "decisions": decisions,
        "feedback": messages,
        "signatures": {
            "declarations": declarations,
            "witness_statements": witnesses,
            "sign_offs": record.sign_offs,
        },
        "iqa_samples": iqa_samples,
        "audit_events": events,
    })
}

/// Adds `record_sha256`: the SHA-256 (lower-case hex) of the manifest without that member, as
/// canonical JSON.
pub fn seal(mut manifest: Value) -> Value {
    let hash = record_sha256(&manifest);
    if let Value::Object(map) = &mut manifest {
        map.insert("record_sha256".into(), Value::String(hash));
    }
    manifest
}

/// The record hash of a manifest: `record_sha256` removed, then canonical JSON
/// (`crate::canonical`), then SHA-256.
pub fn record_sha256(manifest: &Value) -> String {
    let mut without = manifest.clone();
    if let Value::Object(map) = &mut without {
        map.remove("record_sha256");
    }
    crate::canonical::sha256_hex(&without)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_hash_ignores_key_order_and_its_own_field() {
        let a = seal(json!({"b": [1, {"y": "é", "x": null}], "a": "text"}));
        let b: Value = serde_json::from_str(r#"{"record_sha256":"x","a":"text","b":[1,{"x":null,"y":"é"}]}"#).unwrap();
        assert_eq!(a["record_sha256"].as_str().unwrap(), record_sha256(&b));
        let c: Value = serde_json::from_str(r#"{"a":"text!","b":[1,{"x":null,"y":"é"}]}"#).unwrap();
        assert_ne!(a["record_sha256"].as_str().unwrap(), record_sha256(&c));
    }

    #[test]
    fn file_paths_are_safe_on_any_disk() {
        let file = FileInfo {
            id: Uuid::nil(),
            name: "../my report (final).pdf".into(),
            content_type: "application/pdf".into(),
            size: 1,
            sha256: String::new(),
        };
        assert_eq!(file_path(&file), format!("files/{}/_my_report__final_.pdf", Uuid::nil()));
    }
}
