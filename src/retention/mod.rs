//! How long a centre keeps each kind of record, legal holds that stop anything about a learner
//! being purged, and the purge that applies the schedules (`purge`). The minimums SPEC.md sets
//! (assessment, IQA and audit records: at least 3 years after achievement) cannot be shortened.

pub mod purge;
mod routes;

use chrono::{DateTime, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, FieldError};
use crate::web::pagination::{Page, PageRequest, Position};
pub use routes::router;

/// The kinds of record a centre keeps on its own schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordType {
    /// Evidence files other than call recordings: documents, images, video.
    EvidenceFiles,
    /// Audio evidence (call recordings): they hold customers' personal data.
    CallRecordings,
    /// Decisions, feedback, sign-offs and assessors' records about a learner.
    AssessmentRecords,
    /// IQA samples and their records about a learner's assessment.
    IqaRecords,
    /// Audit events about a learner and their portfolio.
    AuditEvents,
    /// The learner's account: name, email, sign-in.
    Accounts,
}

impl RecordType {
    pub const ALL: [RecordType; 6] = [
        RecordType::EvidenceFiles,
        RecordType::CallRecordings,
        RecordType::AssessmentRecords,
        RecordType::IqaRecords,
        RecordType::AuditEvents,
        RecordType::Accounts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::EvidenceFiles => "evidence_files",
            RecordType::CallRecordings => "call_recordings",
            RecordType::AssessmentRecords => "assessment_records",
            RecordType::IqaRecords => "iqa_records",
            RecordType::AuditEvents => "audit_events",
            RecordType::Accounts => "accounts",
        }
    }

    pub fn parse(text: &str) -> Option<RecordType> {
        RecordType::ALL.into_iter().find(|t| t.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            RecordType::EvidenceFiles => "Evidence files",
            RecordType::CallRecordings => "Call recordings",
            RecordType::AssessmentRecords => "Assessment records",
            RecordType::IqaRecords => "IQA records",
            RecordType::AuditEvents => "Audit events",
            RecordType::Accounts => "Learner accounts",
        }
    }

    /// What purging does to records of this type once they are due.
    pub fn purge_effect(self) -> &'static str {
        match self {
            RecordType::EvidenceFiles => {
                "The files are deleted; each evidence item stays, noting the file's name, size and SHA-256."
            }
            RecordType::CallRecordings => {
                "Audio files are deleted; each evidence item stays, noting the file's name, size and SHA-256."
            }
            RecordType::AssessmentRecords | RecordType::IqaRecords => {
                "The records stay (their signatures cover them) but are de-identified: the learner's account is anonymised."
            }
            RecordType::AuditEvents => {
                "The events stay in the chain; their details are redacted. The chain still verifies."
            }
            RecordType::Accounts => {
                "Name and email are replaced, sign-in is disabled, sessions and tokens are removed."
            }
        }
    }

    /// The built-in schedule, from SPEC.md: assessment, IQA and audit records 3 years after
    /// achievement; evidence files 12 weeks after certification; call recordings, which hold
    /// customers' data, 6 weeks; accounts 3 years after the learner's last enrolment ends.
    pub fn default_schedule(self) -> (Period, CountedFrom) {
        let period = match self {
            RecordType::EvidenceFiles => Period { count: 12, unit: PeriodUnit::Weeks },
            RecordType::CallRecordings => Period { count: 6, unit: PeriodUnit::Weeks },
            _ => Period { count: 3, unit: PeriodUnit::Years },
        };
        (period, CountedFrom::Certification)
    }

    /// The shortest period allowed: 3 years for the records awarding bodies and the regulator ask for.
    pub fn minimum(self) -> Option<Period> {
        match self {
            RecordType::AssessmentRecords | RecordType::IqaRecords | RecordType::AuditEvents => {
                Some(Period { count: 3, unit: PeriodUnit::Years })
            }
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PeriodUnit {
    Weeks,
    Months,
    Years,
}

impl PeriodUnit {
    pub const ALL: [PeriodUnit; 3] = [PeriodUnit::Weeks, PeriodUnit::Months, PeriodUnit::Years];

    pub fn as_str(self) -> &'static str {
        match self {
            PeriodUnit::Weeks => "weeks",
            PeriodUnit::Months => "months",
            PeriodUnit::Years => "years",
        }
    }

    pub fn parse(text: &str) -> Option<PeriodUnit> {
        PeriodUnit::ALL.into_iter().find(|u| u.as_str() == text)
    }
}

/// A retention period: a whole number of weeks, months or years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Period {
    pub count: i32,
    pub unit: PeriodUnit,
}

impl Period {
    /// The day the period ends, counted from `start`.
    pub fn after(self, start: NaiveDate) -> NaiveDate {
        let count = self.count.max(0) as u32;
        let end = match self.unit {
            PeriodUnit::Weeks => start.checked_add_days(chrono::Days::new(u64::from(count) * 7)),
            PeriodUnit::Months => start.checked_add_months(Months::new(count)),
            PeriodUnit::Years => start.checked_add_months(Months::new(count.saturating_mul(12))),
        };
        end.unwrap_or(NaiveDate::MAX)
    }

    /// Whether this period is at least as long as `other` from any start.
    fn at_least(self, other: Period) -> bool {
        // Weeks never line up with months exactly: compare the shortest the one can be with the
        // longest the other can be.
        let shortest_days = |p: Period| match p.unit {
            PeriodUnit::Weeks => i64::from(p.count) * 7,
            PeriodUnit::Months => i64::from(p.count) * 28 + i64::from(p.count) / 12 * 29,
            PeriodUnit::Years => i64::from(p.count) * 365,
        };
        let longest_days = |p: Period| match p.unit {
            PeriodUnit::Weeks => i64::from(p.count) * 7,
            PeriodUnit::Months => i64::from(p.count) * 31,
            PeriodUnit::Years => i64::from(p.count) * 366,
        };
        match (self.unit, other.unit) {
            (PeriodUnit::Weeks, PeriodUnit::Weeks) => self.count >= other.count,
            (PeriodUnit::Weeks, _) | (_, PeriodUnit::Weeks) => shortest_days(self) >= longest_days(other),
            _ => self.months() >= other.months(),
        }
    }

    fn months(self) -> i64 {
        match self.unit {
            PeriodUnit::Years => i64::from(self.count) * 12,
            _ => i64::from(self.count),
        }
    }

    pub fn text(self) -> String {
        let unit = self.unit.as_str();
        if self.count == 1 { format!("1 {}", unit.trim_end_matches('s')) } else { format!("{} {unit}", self.count) }
    }
}

/// The event a retention period counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CountedFrom {
    /// Certification: the learner's countersignature of the sign-off in force; for a learner
    /// who left without completing, the day the centre disabled their account.
    Certification,
    /// Leaving: the day the centre disabled the learner's account, completed or not.
    Leaving,
}

impl CountedFrom {
    pub const ALL: [CountedFrom; 2] = [CountedFrom::Certification, CountedFrom::Leaving];

    pub fn as_str(self) -> &'static str {
        match self {
            CountedFrom::Certification => "certification",
            CountedFrom::Leaving => "leaving",
        }
    }

    pub fn parse(text: &str) -> Option<CountedFrom> {
        CountedFrom::ALL.into_iter().find(|c| c.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            CountedFrom::Certification => "after certification (or leaving, for learners who did not complete)",
            CountedFrom::Leaving => "after the learner leaves (their account is disabled)",
        }
    }
}

/// One record type's schedule at a centre.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Schedule {
    pub record_type: RecordType,
    pub period: Period,
    pub counted_from: CountedFrom,
    /// True while the centre has not changed the built-in default.
    pub is_default: bool,
    /// The shortest period allowed, if there is one.
    pub minimum: Option<Period>,
    pub set_by: Option<String>,
    pub set_at: Option<DateTime<Utc>>,
    /// What purging does once these records are due.
    pub purge_effect: &'static str,
}

impl Schedule {
    pub fn label(&self) -> &'static str {
        self.record_type.label()
    }

    pub fn key(&self) -> &'static str {
        self.record_type.as_str()
    }

    pub fn describe(&self) -> String {
        format!("{} {}", self.period.text(), self.counted_from.label())
    }
}

/// Every record type's schedule at `centre_id`: the centre's own, or the default.
pub async fn schedules(conn: &mut PgConnection, centre_id: Uuid) -> AppResult<Vec<Schedule>> {
    let rows = sqlx::query!(
        r#"SELECT s.record_type, s.period_count, s.period_unit, s.counted_from, u.name AS "set_by?", s.set_at
           FROM retention_schedules s LEFT JOIN users u ON u.id = s.set_by WHERE s.centre_id = $1"#,
        centre_id
    )
    .fetch_all(conn)
    .await?;
    Ok(RecordType::ALL
        .into_iter()
        .map(|record_type| {
            let own = rows.iter().find(|r| r.record_type == record_type.as_str());
            let (default_period, default_from) = record_type.default_schedule();
            let period = own
                .and_then(|r| PeriodUnit::parse(&r.period_unit).map(|unit| Period { count: r.period_count, unit }))
                .unwrap_or(default_period);
            let counted_from = own.and_then(|r| CountedFrom::parse(&r.counted_from)).unwrap_or(default_from);
            Schedule {
                record_type,
                period,
                counted_from,
                is_default: own.is_none(),
                minimum: record_type.minimum(),
                set_by: own.and_then(|r| r.set_by.clone()),
                set_at: own.map(|r| r.set_at),
                purge_effect: record_type.purge_effect(),
            }
        })
        .collect())
}

/// A schedule change as sent by the form or the API, before it is checked.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct ScheduleInput {
    /// `evidence_files`, `call_recordings`, `assessment_records`, `iqa_records`, `audit_events` or `accounts`.
    pub record_type: String,
    /// A whole number from 1 to 5200.
    #[schema(value_type = i32)]
    pub period_count: serde_json::Value,
    /// `weeks`, `months` or `years`.
    pub period_unit: String,
    /// `certification` or `leaving`.
    pub counted_from: String,
}

/// A schedule that has been checked: a known record type, a period no shorter than its minimum.
#[derive(Debug, Clone, Copy)]
pub struct ValidSchedule {
    record_type: RecordType,
    period: Period,
    counted_from: CountedFrom,
}

impl ValidSchedule {
    /// Checks one input; field errors are named `<record type>_count`, `_unit` and `_from`, as on the form.
    pub fn parse(input: &ScheduleInput) -> Result<ValidSchedule, Vec<FieldError>> {
        let Some(record_type) = RecordType::parse(input.record_type.trim()) else {
            return Err(vec![FieldError::new(
                "record_type",
                format!(
                    "\"{}\" is not a record type: use evidence_files, call_recordings, assessment_records, \
                     iqa_records, audit_events or accounts",
                    input.record_type
                ),
            )]);
        };
        let key = record_type.as_str();
        let label = record_type.label();
        let mut errors = Vec::new();
        let count = match &input.period_count {
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        let count = match count {
            Some(c) if (1..=5200).contains(&c) => Some(c as i32),
            _ => {
                errors.push(FieldError::new(
                    format!("{key}_count"),
                    format!("Enter how long to keep {} as a whole number from 1 to 5200", label.to_lowercase()),
                ));
                None
            }
        };
        let unit = PeriodUnit::parse(input.period_unit.trim());
        if unit.is_none() {
            errors.push(FieldError::new(
                format!("{key}_unit"),
                format!("Choose weeks, months or years for {}", label.to_lowercase()),
            ));
        }
        let counted_from = CountedFrom::parse(input.counted_from.trim());
        if counted_from.is_none() {
            errors.push(FieldError::new(
                format!("{key}_from"),
                format!("Choose when the period for {} starts: certification or leaving", label.to_lowercase()),
            ));
        }
        let (Some(count), Some(unit), Some(counted_from)) = (count, unit, counted_from) else {
            return Err(errors);
        };
        let period = Period { count, unit };
        if let Some(minimum) = record_type.minimum()
            && !period.at_least(minimum)
        {
            return Err(vec![FieldError::new(
                format!("{key}_count"),
                format!(
                    "{label} must be kept for at least {} after achievement (awarding bodies and the regulator \
                     require it): {} is too short",
                    minimum.text(),
                    period.text()
                ),
            )]);
        }
        Ok(ValidSchedule { record_type, period, counted_from })
    }
}

/// Sets the centre's schedules (all or none), each change audited in the caller's transaction.
pub async fn set_schedules(
    conn: &mut PgConnection,
    actor: &Actor,
    centre_id: Uuid,
    inputs: &[ScheduleInput],
) -> AppResult<Vec<Schedule>> {
    let mut valid = Vec::new();
    let mut errors = Vec::new();
    for input in inputs {
        match ValidSchedule::parse(input) {
            Ok(schedule) => valid.push(schedule),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    if inputs.is_empty() {
        errors.push(FieldError::new("schedules", "Send at least one schedule to change"));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    let before = schedules(conn, centre_id).await?;
    for schedule in valid {
        let old = before.iter().find(|s| s.record_type == schedule.record_type);
        if old.is_some_and(|o| o.period == schedule.period && o.counted_from == schedule.counted_from) {
            continue;
        }
        sqlx::query!(
            "INSERT INTO retention_schedules (centre_id, record_type, period_count, period_unit, counted_from, set_by)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (centre_id, record_type) DO UPDATE
             SET period_count = $3, period_unit = $4, counted_from = $5, set_by = $6, set_at = now()",
            centre_id,
            schedule.record_type.as_str(),
            schedule.period.count,
            schedule.period.unit.as_str(),
            schedule.counted_from.as_str(),
            actor.id
        )
        .execute(&mut *conn)
        .await?;
        audit::record(
            conn,
            Event::new(Some(actor), "retention.schedule_changed", "centre", Some(centre_id))
                .as_role(Role::Admin)
                .centre(centre_id)
                .details(serde_json::json!({
                    "record_type": schedule.record_type.as_str(),
                    "from": old.map(|o| serde_json::json!({"period": o.period.text(), "counted_from": o.counted_from.as_str()})),
                    "to": {"period": schedule.period.text(), "counted_from": schedule.counted_from.as_str()},
                })),
        )
        .await?;
    }
    schedules(conn, centre_id).await
}

/// A legal hold on a learner at a centre.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LegalHold {
    pub id: Uuid,
    pub learner_id: Uuid,
    pub reason: String,
    pub placed_by: Option<String>,
    pub placed_at: DateTime<Utc>,
    pub lifted_by: Option<String>,
    pub lifted_at: Option<DateTime<Utc>>,
    pub lift_reason: Option<String>,
}

impl LegalHold {
    pub fn placed_on(&self) -> String {
        self.placed_at.format("%d %B %Y").to_string()
    }

    pub fn lifted_on(&self) -> String {
        self.lifted_at.map(|t| t.format("%d %B %Y").to_string()).unwrap_or_default()
    }
}

/// A hold's reason: 1 to 2000 characters after trimming.
pub struct HoldReason(String);

impl HoldReason {
    pub fn parse(text: &str, field: &str) -> Result<HoldReason, AppError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AppError::invalid(
                field,
                "Enter the reason for the legal hold (a claim, an appeal, an investigation)",
            ));
        }
        if text.chars().count() > 2000 {
            return Err(AppError::invalid(field, "Keep the reason to 2000 characters or fewer"));
        }
        Ok(HoldReason(text.to_string()))
    }
}

/// Every hold on the person at the centre, current first.
pub async fn holds(conn: &mut PgConnection, centre_id: Uuid, learner_id: Uuid) -> AppResult<Vec<LegalHold>> {
    Ok(sqlx::query_as!(
        LegalHold,
        r#"SELECT h.id, h.learner_id, h.reason, p.name AS "placed_by?", h.placed_at, l.name AS "lifted_by?",
                  h.lifted_at, h.lift_reason
           FROM legal_holds h LEFT JOIN users p ON p.id = h.placed_by LEFT JOIN users l ON l.id = h.lifted_by
           WHERE h.centre_id = $1 AND h.learner_id = $2
           ORDER BY h.lifted_at IS NULL DESC, h.placed_at DESC"#,
        centre_id,
        learner_id
    )
    .fetch_all(conn)
    .await?)
}

/// One page of the holds on a learner at a centre, newest first (the one in force, if any,
/// heads the list: a hold is placed only when none is in force). Keyset on (placed_at, id).
pub async fn holds_page(
    conn: &mut PgConnection,
    centre_id: Uuid,
    learner_id: Uuid,
    request: &PageRequest,
) -> AppResult<Page<LegalHold>> {
    let (after_at, after_id) = request.after_time()?.map(|a| (a.at, a.id)).unzip();
    let rows = sqlx::query_as!(
        LegalHold,
        r#"SELECT h.id, h.learner_id, h.reason, p.name AS "placed_by?", h.placed_at, l.name AS "lifted_by?",
                  h.lifted_at, h.lift_reason
           FROM legal_holds h LEFT JOIN users p ON p.id = h.placed_by LEFT JOIN users l ON l.id = h.lifted_by
           WHERE h.centre_id = $1 AND h.learner_id = $2
             AND ($3::timestamptz IS NULL OR (h.placed_at, h.id) < ($3, $4))
           ORDER BY h.placed_at DESC, h.id DESC LIMIT $5"#,
        centre_id,
        learner_id,
        after_at,
        after_id,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(rows.into_iter().map(|h| (Position::time(h.placed_at, h.id), h)).collect()))
}

/// One page of the holds in force at a centre with each learner's name, by name (case-blind),
/// for the API. Keyset on (lower(name), hold id).
pub async fn holds_in_force_page(
    conn: &mut PgConnection,
    centre_id: Uuid,
    request: &PageRequest,
) -> AppResult<Page<(String, LegalHold)>> {
    let (after_name, after_id) = request.position().map(|p| (p.key, p.id)).unzip();
    let rows = sqlx::query!(
        r#"SELECT h.id, h.learner_id, x.name AS learner_name, lower(x.name) AS "sort_name!", h.reason,
                  p.name AS "placed_by?", h.placed_at
           FROM legal_holds h JOIN users x ON x.id = h.learner_id LEFT JOIN users p ON p.id = h.placed_by
           WHERE h.centre_id = $1 AND h.lifted_at IS NULL
             AND ($2::text IS NULL OR (lower(x.name), h.id) > ($2, $3))
           ORDER BY lower(x.name), h.id LIMIT $4"#,
        centre_id,
        after_name,
        after_id,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(
        rows.into_iter()
            .map(|r| {
                let hold = LegalHold {
                    id: r.id,
                    learner_id: r.learner_id,
                    reason: r.reason,
                    placed_by: r.placed_by,
                    placed_at: r.placed_at,
                    lifted_by: None,
                    lifted_at: None,
                    lift_reason: None,
                };
                (Position::new(r.sort_name, r.id), (r.learner_name, hold))
            })
            .collect(),
    ))
}

/// How many learners are under a hold at a centre.
pub async fn holds_in_force(conn: &mut PgConnection, centre_id: Uuid) -> AppResult<i64> {
    Ok(sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM legal_holds WHERE centre_id = $1 AND lifted_at IS NULL"#,
        centre_id
    )
    .fetch_one(conn)
    .await?)
}

/// The current holds at a centre, for the retention page.
pub async fn current_holds(conn: &mut PgConnection, centre_id: Uuid) -> AppResult<Vec<(String, LegalHold)>> {
    let rows = sqlx::query!(
        r#"SELECT h.id, h.learner_id, x.name AS learner_name, h.reason, p.name AS "placed_by?", h.placed_at
           FROM legal_holds h JOIN users x ON x.id = h.learner_id LEFT JOIN users p ON p.id = h.placed_by
           WHERE h.centre_id = $1 AND h.lifted_at IS NULL ORDER BY h.placed_at"#,
        centre_id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.learner_name,
                LegalHold {
                    id: r.id,
                    learner_id: r.learner_id,
                    reason: r.reason,
                    placed_by: r.placed_by,
                    placed_at: r.placed_at,
                    lifted_by: None,
                    lifted_at: None,
                    lift_reason: None,
                },
            )
        })
        .collect())
}

/// Places a hold; refused if one is already in force. Audited in the caller's transaction.
pub async fn place_hold(
    conn: &mut PgConnection,
    actor: &Actor,
    centre_id: Uuid,
    learner_id: Uuid,
    reason: &HoldReason,
) -> AppResult<LegalHold> {
    let id = Uuid::new_v4();
    let placed = sqlx::query!(
        "INSERT INTO legal_holds (id, learner_id, centre_id, reason, placed_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (learner_id, centre_id) WHERE lifted_at IS NULL DO NOTHING",
        id,
        learner_id,
        centre_id,
        reason.0,
        actor.id
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if placed == 0 {
        return Err(AppError::Conflict(
            "This person is already under a legal hold: lift it before placing another".into(),
            Vec::new(),
        ));
    }
    audit::record(
        conn,
        Event::new(Some(actor), "retention.hold_placed", "user", Some(learner_id))
            .as_role(Role::Admin)
            .centre(centre_id)
            .details(serde_json::json!({"hold_id": id, "reason": reason.0})),
    )
    .await?;
    holds(conn, centre_id, learner_id).await?.into_iter().find(|h| h.id == id).ok_or(AppError::NotFound("legal hold"))
}

/// Lifts the hold in force, with a reason. Audited in the caller's transaction.
pub async fn lift_hold(
    conn: &mut PgConnection,
    actor: &Actor,
    centre_id: Uuid,
    learner_id: Uuid,
    reason: &HoldReason,
) -> AppResult<LegalHold> {
    let lifted = sqlx::query_scalar!(
        "UPDATE legal_holds SET lifted_at = now(), lifted_by = $3, lift_reason = $4
         WHERE learner_id = $1 AND centre_id = $2 AND lifted_at IS NULL RETURNING id",
        learner_id,
        centre_id,
        actor.id,
        reason.0
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| AppError::Conflict("This person is not under a legal hold".into(), Vec::new()))?;
    audit::record(
        conn,
        Event::new(Some(actor), "retention.hold_lifted", "user", Some(learner_id))
            .as_role(Role::Admin)
            .centre(centre_id)
            .details(serde_json::json!({"hold_id": lifted, "reason": reason.0})),
    )
    .await?;
    holds(conn, centre_id, learner_id)
        .await?
        .into_iter()
        .find(|h| h.id == lifted)
        .ok_or(AppError::NotFound("legal hold"))
}

/// What the administrator's person page shows about retention: holds, anonymisation.
#[derive(Debug, Clone, Default)]
pub struct PersonRetention {
    pub holds: Vec<LegalHold>,
    pub anonymised_at: Option<DateTime<Utc>>,
}

impl PersonRetention {
    pub fn current_hold(&self) -> Option<&LegalHold> {
        self.holds.iter().find(|h| h.lifted_at.is_none())
    }

    pub fn past_holds(&self) -> Vec<&LegalHold> {
        self.holds.iter().filter(|h| h.lifted_at.is_some()).collect()
    }

    pub fn anonymised_on(&self) -> Option<String> {
        self.anonymised_at.map(|t| t.format("%d %B %Y").to_string())
    }
}

pub async fn person(conn: &mut PgConnection, centre_id: Uuid, person_id: Uuid) -> AppResult<PersonRetention> {
    let anonymised_at = sqlx::query_scalar!("SELECT anonymised_at FROM users WHERE id = $1", person_id)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    Ok(PersonRetention { holds: holds(conn, centre_id, person_id).await?, anonymised_at })
}
