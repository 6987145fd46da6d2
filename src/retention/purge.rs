//! `eportfolio purge`: finds what each centre's retention schedules say is due on a day (today,
//! or `--as-of` to preview the future) and, with `--apply`, does it. A learner under a legal hold
//! is never touched.
//!
//! What "due" means: each enrolment ends at certification (the learner's countersignature of the
//! sign-off in force) or, for a learner who never completed, when the centre disabled their
//! account; a schedule counts its period from that end (or from leaving only). Evidence files and
//! call recordings (audio, by the type detected from their content on upload) are due per
//! enrolment. Everything about the person (assessment and IQA records, audit events, the account)
//! is due only once it is due for every one of their enrolments.
//!
//! What purging does:
//! - files: the `evidence_files` row moves to `retention_removed_files` (name, type, size and
//!   SHA-256 kept, with the mappings that pointed into it), the evidence item stays; once no
//!   evidence refers to the bytes, the stored object is removed through the file store, claimed
//!   as the unreferenced-files sweeper does so that a concurrent upload of the same bytes is safe.
//! - assessment and IQA records are signed and append-only, and other signatures cover them, so
//!   they are kept but de-identified: the learner's account is anonymised (the records name the
//!   learner only through it).
//! - accounts: name and email replaced, password replaced by an unknown one, disabled, sessions,
//!   tokens, password links and notifications removed. The row stays for the records' references.
//! - audit events: never deleted, which would break the chain. Since migration 0014 each event's
//!   hash covers the SHA-256 of its details rather than the details, so the details can be
//!   replaced by a redaction note and the chain still verifies (`audit::redact`). Events recorded
//!   before then cannot be redacted without breaking the chain and are kept whole; the purge
//!   reports them. The purge's own events (`retention.*`) carry ids and hashes only and are kept.
//!
//! Each learner's changes and the audit events saying exactly what was done commit together; a
//! final event summarises the run. Nothing due means nothing written, so a second `--apply`
//! does nothing.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{CountedFrom, RecordType, Schedule, schedules};
use crate::audit::{self, Event};
use crate::error::AppResult;
use crate::evidence::FileStore;
use crate::web::pagination::{Page, PageRequest, Position};

/// Whether a file is a call recording: audio, by the type decided from its content on upload
/// (`evidence::detect_type`). Video is evidence of an observation, kept as an evidence file.
pub fn is_call_recording(content_type: &str) -> bool {
    content_type.starts_with("audio/")
}

/// One thing that is due, and why.
#[derive(Debug, Clone, Serialize)]
pub struct DueItem {
    pub record_type: RecordType,
    pub learner_id: Uuid,
    pub learner_name: String,
    /// For files: the enrolment they belong to.
    pub enrolment_id: Option<Uuid>,
    pub unit_code: Option<String>,
    /// Why: the schedule, the day it counted from and the day it fell due.
    pub reason: String,
    pub due_on: NaiveDate,
    /// How many records: files, events, decisions...
    pub count: i64,
    /// What exactly: file names with their SHA-256, or event numbers.
    pub items: Vec<String>,
}

/// One centre's part of the run.
#[derive(Debug, Clone, Serialize)]
pub struct CentrePlan {
    pub centre_id: Uuid,
    pub centre_name: String,
    pub due: Vec<DueItem>,
    /// Learners with enrolments here who are under a legal hold, and so left alone.
    pub held: Vec<String>,
}

/// What a run found, and (applied) did.
#[derive(Debug, Clone, Serialize)]
pub struct PurgeReport {
    pub as_of: NaiveDate,
    pub applied: bool,
    pub run_id: Option<Uuid>,
    pub centres: Vec<CentrePlan>,
    /// Events about due learners recorded before redaction was possible, kept whole.
    pub unredactable_events: i64,
    /// Stored objects removed once nothing referred to them.
    pub objects_removed: usize,
}

impl PurgeReport {
    pub fn is_empty(&self) -> bool {
        self.centres.iter().all(|c| c.due.is_empty())
    }
}

struct EnrolmentEnd {
    id: Uuid,
    centre_id: Uuid,
    centre_name: String,
    learner_id: Uuid,
    learner_name: String,
    unit_code: String,
    certified_at: Option<DateTime<Utc>>,
    left_at: Option<DateTime<Utc>>,
    anonymised: bool,
    held: bool,
}

impl EnrolmentEnd {
    /// The day `schedule` counts from for this enrolment, if it has come.
    fn start(&self, counted_from: CountedFrom) -> Option<(NaiveDate, &'static str)> {
        match counted_from {
            CountedFrom::Certification => match (self.certified_at, self.left_at) {
                (Some(at), _) => Some((at.date_naive(), "certification")),
                (None, Some(at)) => Some((at.date_naive(), "leaving without completing")),
                (None, None) => None,
            },
            CountedFrom::Leaving => self.left_at.map(|at| (at.date_naive(), "leaving")),
        }
    }

    /// When records of this schedule fall due for this enrolment, and the reason in words.
    fn due(&self, schedule: &Schedule) -> Option<(NaiveDate, String)> {
        let (start, event) = self.start(schedule.counted_from)?;
        let due_on = schedule.period.after(start);
        Some((due_on, format!("{} {}: {event} on {start}, due on {due_on}", schedule.label(), schedule.describe())))
    }
}

async fn enrolment_ends(conn: &mut PgConnection) -> AppResult<Vec<EnrolmentEnd>> {
    let rows = sqlx::query!(
        r#"SELECT e.id, e.centre_id, c.name AS centre_name, e.learner_id, u.name AS learner_name, n.code AS unit_code,
                  u.disabled_at, u.anonymised_at,
                  (SELECT cs.signed_at FROM sign_offs s JOIN sign_off_countersignatures cs ON cs.sign_off_id = s.id
                   WHERE s.enrolment_id = e.id
                     AND NOT EXISTS (SELECT 1 FROM sign_off_reopenings r WHERE r.sign_off_id = s.id)
                   ORDER BY s.version DESC LIMIT 1) AS "certified_at?",
                  EXISTS (SELECT 1 FROM legal_holds h WHERE h.learner_id = e.learner_id AND h.lifted_at IS NULL)
                      AS "held!"
           FROM enrolments e JOIN centres c ON c.id = e.centre_id JOIN users u ON u.id = e.learner_id
                JOIN units n ON n.id = e.unit_id
           ORDER BY c.name, u.name, n.code"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| EnrolmentEnd {
            id: r.id,
            centre_id: r.centre_id,
            centre_name: r.centre_name,
            learner_id: r.learner_id,
            learner_name: r.learner_name,
            unit_code: r.unit_code,
            certified_at: r.certified_at,
            left_at: r.disabled_at,
            anonymised: r.anonymised_at.is_some(),
            held: r.held,
        })
        .collect())
}

struct FileRow {
    name: String,
    size: i64,
    sha256: String,
    content_type: String,
}

async fn enrolment_files(conn: &mut PgConnection, enrolment_id: Uuid) -> AppResult<Vec<FileRow>> {
    Ok(sqlx::query_as!(
        FileRow,
        "SELECT f.name, f.size, f.sha256, f.content_type
         FROM evidence_files f JOIN evidence_items i ON i.id = f.evidence_id
         WHERE i.enrolment_id = $1 ORDER BY i.created_at, f.position",
        enrolment_id
    )
    .fetch_all(conn)
    .await?)
}

/// Events about a learner that can still be redacted: their portfolios' events, events about
/// them and events they caused, except the purge's own.
async fn redactable_events(conn: &mut PgConnection, learner_id: Uuid, enrolments: &[Uuid]) -> AppResult<Vec<i64>> {
    Ok(sqlx::query_scalar!(
        "SELECT seq FROM audit_events
         WHERE (enrolment_id = ANY($2) OR subject_id = $1 OR actor_id = $1)
           AND redacted_at IS NULL AND details_sha256 IS NOT NULL AND action NOT LIKE 'retention.%'
         ORDER BY seq",
        learner_id,
        enrolments
    )
    .fetch_all(conn)
    .await?)
}

async fn unredactable_events(conn: &mut PgConnection, learner_id: Uuid, enrolments: &[Uuid]) -> AppResult<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM audit_events
           WHERE (enrolment_id = ANY($2) OR subject_id = $1 OR actor_id = $1) AND details_sha256 IS NULL"#,
        learner_id,
        enrolments
    )
    .fetch_one(conn)
    .await?)
}

/// Assessment or IQA records about the learner's enrolments, for the report.
async fn record_counts(conn: &mut PgConnection, enrolments: &[Uuid]) -> AppResult<(i64, i64)> {
    let row = sqlx::query!(
        r#"SELECT
             (SELECT count(*) FROM decisions d JOIN evidence_items i ON i.id = d.evidence_id WHERE i.enrolment_id = ANY($1))
             + (SELECT count(*) FROM sign_offs WHERE enrolment_id = ANY($1)) AS "assessment!",
             (SELECT count(*) FROM iqa_plan_items p WHERE p.enrolment_id = ANY($1))
                 AS "iqa!""#,
        enrolments
    )
    .fetch_one(conn)
    .await?;
    Ok((row.assessment, row.iqa))
}

/// What is due on `as_of`, without changing anything.
pub async fn plan(conn: &mut PgConnection, as_of: NaiveDate) -> AppResult<PurgeReport> {
    let ends = enrolment_ends(conn).await?;
    let mut centre_schedules: HashMap<Uuid, Vec<Schedule>> = HashMap::new();
    for end in &ends {
        if let std::collections::hash_map::Entry::Vacant(slot) = centre_schedules.entry(end.centre_id) {
            slot.insert(schedules(conn, end.centre_id).await?);
        }
    }
    let schedule = |centre: Uuid, record_type: RecordType| {
        centre_schedules[&centre].iter().find(|s| s.record_type == record_type).cloned().expect("every type")
    };
    let mut centres: Vec<CentrePlan> = Vec::new();
    let centre_index = |centres: &mut Vec<CentrePlan>, end: &EnrolmentEnd| -> usize {
        match centres.iter().position(|c| c.centre_id == end.centre_id) {
            Some(i) => i,
            None => {
                centres.push(CentrePlan {
                    centre_id: end.centre_id,
                    centre_name: end.centre_name.clone(),
                    due: Vec::new(),
                    held: Vec::new(),
                });
                centres.len() - 1
            }
        }
    };
    let mut unredactable = 0;
    // Files, per enrolment.
    for end in &ends {
        let at = centre_index(&mut centres, end);
        if end.held {
            if !centres[at].held.contains(&end.learner_name) {
                centres[at].held.push(end.learner_name.clone());
            }
            continue;
        }
        let files = enrolment_files(conn, end.id).await?;
        for record_type in [RecordType::EvidenceFiles, RecordType::CallRecordings] {
            let Some((due_on, reason)) = end.due(&schedule(end.centre_id, record_type)) else { continue };
            if due_on > as_of {
                continue;
            }
            let chosen: Vec<&FileRow> = files
                .iter()
                .filter(|f| is_call_recording(&f.content_type) == (record_type == RecordType::CallRecordings))
                .collect();
            if chosen.is_empty() {
                continue;
            }
            centres[at].due.push(DueItem {
                record_type,
                learner_id: end.learner_id,
                learner_name: end.learner_name.clone(),
                enrolment_id: Some(end.id),
                unit_code: Some(end.unit_code.clone()),
                reason,
                due_on,
                count: chosen.len() as i64,
                items: chosen
                    .iter()
                    .map(|f| {
                        format!(
                            "{} ({}, {}, SHA-256 {})",
                            f.name,
                            f.content_type,
                            crate::evidence::storage::human_size(f.size.max(0) as u64),
                            f.sha256
                        )
                    })
                    .collect(),
            });
        }
    }
    // Everything about the person, once due for every one of their enrolments.
    let mut learners: Vec<Uuid> = ends.iter().filter(|e| !e.held).map(|e| e.learner_id).collect();
    learners.sort();
    learners.dedup();
    for learner in learners {
        let theirs: Vec<&EnrolmentEnd> = ends.iter().filter(|e| e.learner_id == learner).collect();
        let ids: Vec<Uuid> = theirs.iter().map(|e| e.id).collect();
        let due_for_all = |record_type: RecordType| -> Option<(NaiveDate, String, &EnrolmentEnd)> {
            let mut latest: Option<(NaiveDate, String, &EnrolmentEnd)> = None;
            for end in &theirs {
                let (due_on, reason) = end.due(&schedule(end.centre_id, record_type))?;
                if latest.as_ref().is_none_or(|(d, ..)| due_on > *d) {
                    latest = Some((due_on, reason, end));
                }
            }
            latest.filter(|(d, ..)| *d <= as_of)
        };
        let first = theirs[0];
        if !first.anonymised {
            let (assessment, iqa) = record_counts(conn, &ids).await?;
            for (record_type, count) in
                [(RecordType::AssessmentRecords, assessment), (RecordType::IqaRecords, iqa), (RecordType::Accounts, 1)]
            {
                if count == 0 {
                    continue;
                }
                if let Some((due_on, reason, end)) = due_for_all(record_type) {
                    let at = centre_index(&mut centres, end);
                    let what = if record_type == RecordType::Accounts {
                        "the account is anonymised".to_string()
                    } else {
                        format!("{count} records kept, de-identified by anonymising the account")
                    };
                    centres[at].due.push(DueItem {
                        record_type,
                        learner_id: learner,
                        learner_name: first.learner_name.clone(),
                        enrolment_id: None,
                        unit_code: None,
                        reason,
                        due_on,
                        count,
                        items: vec![what],
                    });
                }
            }
        }
        if let Some((due_on, reason, end)) = due_for_all(RecordType::AuditEvents) {
            let seqs = redactable_events(conn, learner, &ids).await?;
            unredactable += unredactable_events(conn, learner, &ids).await?;
            if !seqs.is_empty() {
                let at = centre_index(&mut centres, end);
                centres[at].due.push(DueItem {
                    record_type: RecordType::AuditEvents,
                    learner_id: learner,
                    learner_name: first.learner_name.clone(),
                    enrolment_id: None,
                    unit_code: None,
                    reason,
                    due_on,
                    count: seqs.len() as i64,
                    items: vec![format!(
                        "events {}",
                        seqs.iter().map(|s| format!("#{s}")).collect::<Vec<_>>().join(", ")
                    )],
                });
            }
        }
    }
    Ok(PurgeReport {
        as_of,
        applied: false,
        run_id: None,
        centres,
        unredactable_events: unredactable,
        objects_removed: 0,
    })
}

/// Does what `plan` finds due on `as_of`: one transaction per learner holding their changes and
/// the audit events describing them, then a summary event; then removes the stored objects
/// nothing refers to any more.
pub async fn apply(pool: &PgPool, store: &FileStore, as_of: NaiveDate) -> AppResult<PurgeReport> {
    let mut report = {
        let mut conn = pool.acquire().await?;
        plan(&mut conn, as_of).await?
    };
    report.applied = true;
    if report.is_empty() {
        return Ok(report);
    }
    let run_id = Uuid::new_v4();
    sqlx::query!("INSERT INTO purge_runs (id, as_of, summary) VALUES ($1, $2, '{}')", run_id, as_of)
        .execute(pool)
        .await?;
    report.run_id = Some(run_id);
    let note = format!("Redacted under retention on {}", Utc::now().date_naive());
    let mut released = Vec::new();
    let mut learners: Vec<Uuid> = report.centres.iter().flat_map(|c| c.due.iter().map(|d| d.learner_id)).collect();
    learners.sort();
    learners.dedup();
    for learner in learners {
        let due: Vec<&DueItem> =
            report.centres.iter().flat_map(|c| c.due.iter()).filter(|d| d.learner_id == learner).collect();
        let mut tx = pool.begin().await?;
        // A hold placed since the plan was made still wins.
        let held = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM legal_holds WHERE learner_id = $1 AND lifted_at IS NULL) AS "held!""#,
            learner
        )
        .fetch_one(&mut *tx)
        .await?;
        if held {
            continue;
        }
        for item in
            due.iter().filter(|d| matches!(d.record_type, RecordType::EvidenceFiles | RecordType::CallRecordings))
        {
            let enrolment = item.enrolment_id.expect("files belong to an enrolment");
            released.extend(remove_files(&mut tx, run_id, enrolment, item).await?);
        }
        if let Some(item) = due.iter().find(|d| d.record_type == RecordType::AuditEvents) {
            let enrolments = sqlx::query_scalar!("SELECT id FROM enrolments WHERE learner_id = $1", learner)
                .fetch_all(&mut *tx)
                .await?;
            let seqs = redactable_events(&mut tx, learner, &enrolments).await?;
            let redacted = audit::redact(&mut tx, &seqs, &note).await?;
            if !redacted.is_empty() {
                audit::record(
                    &mut tx,
                    Event::new(None, "retention.audit_redacted", "user", Some(learner)).details(json!({
                        "purge_run_id": run_id, "record_type": "audit_events", "reason": item.reason,
                        "events": redacted,
                    })),
                )
                .await?;
            }
        }
        let because: Vec<&DueItem> = due
            .iter()
            .copied()
            .filter(|d| {
                matches!(d.record_type, RecordType::AssessmentRecords | RecordType::IqaRecords | RecordType::Accounts)
            })
            .collect();
        if !because.is_empty() {
            anonymise_account(&mut tx, run_id, learner, &because).await?;
        }
        tx.commit().await?;
    }
    report.objects_removed = crate::evidence::remove_released_files(pool, store, &released).await?.len();
    let summary = summary(&report);
    let mut tx = pool.begin().await?;
    sqlx::query!("UPDATE purge_runs SET summary = $2 WHERE id = $1", run_id, summary).execute(&mut *tx).await?;
    audit::record(
        &mut tx,
        Event::new(None, "retention.purge_completed", "purge_run", Some(run_id)).details(summary.clone()),
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Moves the enrolment's due files of `item`'s type to `retention_removed_files`, unhooks the
/// mappings that pointed into them, and records it. Returns the SHA-256s no evidence uses any more.
async fn remove_files(
    conn: &mut PgConnection,
    run_id: Uuid,
    enrolment_id: Uuid,
    item: &DueItem,
) -> AppResult<Vec<String>> {
    let recordings = item.record_type == RecordType::CallRecordings;
    let files = sqlx::query!(
        "SELECT f.id, f.evidence_id, f.position, f.name, f.content_type, f.size, f.sha256
         FROM evidence_files f JOIN evidence_items i ON i.id = f.evidence_id
         WHERE i.enrolment_id = $1 AND (f.content_type LIKE 'audio/%') = $2
         ORDER BY i.created_at, f.position FOR UPDATE OF f",
        enrolment_id,
        recordings
    )
    .fetch_all(&mut *conn)
    .await?;
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let mut removed = Vec::new();
    for file in &files {
        sqlx::query!(
            "INSERT INTO retention_removed_files
                 (file_id, evidence_id, position, name, content_type, size, sha256, record_type, mappings, removed_at, purge_run_id)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8,
                    coalesce((SELECT jsonb_agg(jsonb_build_object('criterion_id', m.criterion_id, 'start_seconds', m.start_seconds,
                                                                  'end_seconds', m.end_seconds, 'page', m.page))
                              FROM evidence_criteria m WHERE m.file_id = $1), '[]'),
                    now(), $9",
            file.id,
            file.evidence_id,
            file.position,
            file.name,
            file.content_type,
            file.size,
            file.sha256,
            item.record_type.as_str(),
            run_id
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!(
            "UPDATE evidence_criteria SET file_id = NULL, start_seconds = NULL, end_seconds = NULL, page = NULL
             WHERE file_id = $1",
            file.id
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query!("DELETE FROM evidence_files WHERE id = $1", file.id).execute(&mut *conn).await?;
        removed.push(
            json!({"file_id": file.id, "evidence_id": file.evidence_id, "sha256": file.sha256, "size": file.size}),
        );
    }
    let hashes: Vec<String> = files.iter().map(|f| f.sha256.clone()).collect();
    let released = sqlx::query_scalar!(
        "DELETE FROM blobs b WHERE b.sha256 = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM evidence_files f WHERE f.sha256 = b.sha256)
         RETURNING b.sha256",
        &hashes
    )
    .fetch_all(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(None, "retention.files_removed", "enrolment", Some(enrolment_id)).enrolment(enrolment_id).details(
            json!({"purge_run_id": run_id, "record_type": item.record_type.as_str(), "reason": item.reason, "files": removed}),
        ),
    )
    .await?;
    Ok(released)
}

/// Replaces the learner's name and email, makes sign-in impossible, and removes their sessions,
/// tokens, password links and notifications.
async fn anonymise_account(
    conn: &mut PgConnection,
    run_id: Uuid,
    learner: Uuid,
    because: &[&DueItem],
) -> AppResult<()> {
    let unusable = crate::auth::password::hash(crate::auth::password::generate())
        .await
        .map_err(crate::error::AppError::Unexpected)?;
    let short = &learner.simple().to_string()[..8];
    let anonymised = sqlx::query!(
        "UPDATE users SET name = $2, email = $3, password_hash = $4, external_ref = NULL,
                disabled_at = coalesce(disabled_at, now()), anonymised_at = now(), updated_at = now()
         WHERE id = $1 AND anonymised_at IS NULL",
        learner,
        format!("Former learner {short}"),
        format!("anonymised-{}@invalid", learner.simple()),
        unusable
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if anonymised == 0 {
        return Ok(());
    }
    sqlx::query!("DELETE FROM sessions WHERE data->>'user_id' = $1", learner.to_string()).execute(&mut *conn).await?;
    let tokens =
        sqlx::query!("DELETE FROM api_tokens WHERE user_id = $1", learner).execute(&mut *conn).await?.rows_affected();
    sqlx::query!("DELETE FROM password_links WHERE user_id = $1", learner).execute(&mut *conn).await?;
    let notifications = sqlx::query!("DELETE FROM notifications WHERE recipient_id = $1", learner)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    audit::record(
        conn,
        Event::new(None, "retention.account_anonymised", "user", Some(learner)).details(json!({
            "purge_run_id": run_id,
            "because": because.iter().map(|d| json!({"record_type": d.record_type.as_str(), "reason": d.reason})).collect::<Vec<_>>(),
            "tokens_removed": tokens,
            "notifications_removed": notifications,
        })),
    )
    .await?;
    Ok(())
}

/// Counts per centre and record type, for the run's row and its audit event.
fn summary(report: &PurgeReport) -> serde_json::Value {
    json!({
        "as_of": report.as_of,
        "objects_removed": report.objects_removed,
        "centres": report.centres.iter().filter(|c| !c.due.is_empty()).map(|c| {
            let mut counts = serde_json::Map::new();
            for item in &c.due {
                let entry = counts.entry(item.record_type.as_str()).or_insert(json!(0));
                *entry = json!(entry.as_i64().unwrap_or(0) + item.count);
            }
            json!({"centre_id": c.centre_id, "counts": counts,
                   "learners": c.due.iter().map(|d| d.learner_id).collect::<std::collections::BTreeSet<_>>()})
        }).collect::<Vec<_>>(),
    })
}

/// A past run as the administrator sees it: when, the day it applied, and this centre's counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PurgeRun {
    pub id: Uuid,
    pub ran_at: DateTime<Utc>,
    pub as_of: NaiveDate,
    /// Records purged at the centre, per record type.
    #[schema(value_type = Object)]
    pub counts: serde_json::Value,
}

impl PurgeRun {
    pub fn ran_on(&self) -> String {
        self.ran_at.format("%d %B %Y %H:%M UTC").to_string()
    }

    pub fn counts_text(&self) -> String {
        match self.counts.as_object() {
            Some(map) if !map.is_empty() => map
                .iter()
                .map(|(k, v)| {
                    let label = RecordType::parse(k).map(|t| t.label()).unwrap_or("records");
                    format!("{label}: {v}")
                })
                .collect::<Vec<_>>()
                .join("; "),
            _ => "nothing at this centre".into(),
        }
    }
}

/// The latest runs, newest first, with what each did at `centre_id`.
/// One page of the purge runs, newest first, with this centre's counts. Keyset on (ran_at, id).
pub async fn runs_page(conn: &mut PgConnection, centre_id: Uuid, request: &PageRequest) -> AppResult<Page<PurgeRun>> {
    let (after_at, after_id) = request.after_time()?.map(|a| (a.at, a.id)).unzip();
    let rows = sqlx::query!(
        "SELECT id, ran_at, as_of, summary FROM purge_runs
         WHERE $1::timestamptz IS NULL OR (ran_at, id) < ($1, $2)
         ORDER BY ran_at DESC, id DESC LIMIT $3",
        after_at,
        after_id,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(
        rows.into_iter()
            .map(|r| {
                let run = PurgeRun {
                    id: r.id,
                    ran_at: r.ran_at,
                    as_of: r.as_of,
                    counts: centre_counts(&r.summary, centre_id),
                };
                (Position::time(run.ran_at, run.id), run)
            })
            .collect(),
    ))
}

/// A run's counts at one centre, from its summary.
fn centre_counts(summary: &serde_json::Value, centre_id: Uuid) -> serde_json::Value {
    summary["centres"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["centre_id"].as_str() == Some(&centre_id.to_string())))
        .map(|c| c["counts"].clone())
        .unwrap_or_else(|| json!({}))
}

pub async fn recent_runs(conn: &mut PgConnection, centre_id: Uuid, limit: i64) -> AppResult<Vec<PurgeRun>> {
    let rows = sqlx::query!("SELECT id, ran_at, as_of, summary FROM purge_runs ORDER BY ran_at DESC LIMIT $1", limit)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| PurgeRun { id: r.id, ran_at: r.ran_at, as_of: r.as_of, counts: centre_counts(&r.summary, centre_id) })
        .collect())
}

impl PurgeReport {
    /// The report as the command line prints it: per centre, per record type, who and what, and why.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mode = if self.applied { "applied" } else { "dry run: nothing changed; run with --apply to do it" };
        out.push_str(&format!("Retention purge as of {} ({mode})\n", self.as_of));
        if self.is_empty() {
            out.push_str("Nothing is due.\n");
        }
        for centre in &self.centres {
            if centre.due.is_empty() && centre.held.is_empty() {
                continue;
            }
            out.push_str(&format!("\n{}\n", centre.centre_name));
            for record_type in RecordType::ALL {
                let due: Vec<&DueItem> = centre.due.iter().filter(|d| d.record_type == record_type).collect();
                if due.is_empty() {
                    continue;
                }
                let total: i64 = due.iter().map(|d| d.count).sum();
                let verb = if self.applied { "purged" } else { "due" };
                let learners = due.iter().map(|d| d.learner_id).collect::<std::collections::BTreeSet<_>>().len();
                let plural = if learners == 1 { "" } else { "s" };
                out.push_str(&format!("  {}: {total} {verb} ({learners} learner{plural})\n", record_type.label()));
                for item in due {
                    let unit = item.unit_code.as_deref().map(|u| format!(", {u}")).unwrap_or_default();
                    out.push_str(&format!("    {}{unit} [{}]: {}\n", item.learner_name, item.learner_id, item.reason));
                    for what in &item.items {
                        out.push_str(&format!("      {what}\n"));
                    }
                }
            }
            if !centre.held.is_empty() {
                out.push_str(&format!("  Under legal hold, not purged: {}\n", centre.held.join(", ")));
            }
        }
        if self.unredactable_events > 0 {
            out.push_str(&format!(
                "\n{} audit events about these learners were recorded before redaction was possible and are kept whole.\n",
                self.unredactable_events
            ));
        }
        if self.applied && !self.is_empty() {
            out.push_str(&format!(
                "\nStored files removed: {}. Recorded in the audit trail (purge run {}).\n",
                self.objects_removed,
                self.run_id.map(|id| id.to_string()).unwrap_or_default()
            ));
        }
        out
    }
}
