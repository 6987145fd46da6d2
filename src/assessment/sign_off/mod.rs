//! Unit sign-off: when the readiness checklist holds, the assessor signs the unit off (their
//! declaration over a SHA-256 of exactly the record signed), the learner countersigns that
//! signature, and the enrolment's record is locked. Changing it afterwards takes the assessor
//! reopening the unit with a reason; the next sign-off is a new version and every earlier version
//! keeps its signatures.

mod routes;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::sufficiency::{self, Readiness};
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::auth::policy::EnrolmentAccess;
use crate::catalogue::Unit;
use crate::error::{AppError, AppResult, FieldError};
pub use routes::router;

/// What the assessor declares when signing a unit off.
pub const ASSESSOR_DECLARATION: &str = "I confirm that I have assessed this learner's evidence for \
this unit; that it is valid, authentic, current and sufficient; that every assessment criterion is \
met; and that the learner is competent in this unit.";

/// What the learner declares when countersigning.
pub const LEARNER_DECLARATION: &str = "I confirm that the evidence in this portfolio is my own work \
and I agree with my assessor's decision that I have completed this unit.";

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Countersignature {
    pub learner_id: Uuid,
    pub learner_name: String,
    pub signed_at: DateTime<Utc>,
    pub declaration: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Reopening {
    pub reopened_by: Uuid,
    pub reopened_by_name: String,
    pub reopened_at: DateTime<Utc>,
    pub reason: String,
}

/// One version of a unit's sign-off with what happened to it since.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SignOff {
    pub id: Uuid,
    pub version: i32,
    pub assessor_id: Uuid,
    pub assessor_name: String,
    pub signed_at: DateTime<Utc>,
    pub declaration: String,
    /// SHA-256 of `signed_record`.
    pub sha256: String,
    /// The exact text the assessor signed (JSON).
    pub signed_record: String,
    pub countersignature: Option<Countersignature>,
    pub reopening: Option<Reopening>,
}

impl SignOff {
    pub fn signed_on(&self) -> String {
        self.signed_at.format("%d %b %Y %H:%M").to_string()
    }

    /// Signed off and not reopened: the record is locked.
    pub fn is_in_force(&self) -> bool {
        self.reopening.is_none()
    }
}

/// Every sign-off of an enrolment, newest version first.
pub async fn history(conn: &mut PgConnection, enrolment_id: Uuid) -> AppResult<Vec<SignOff>> {
    let rows = sqlx::query!(
        r#"SELECT s.id, s.version, s.assessor_id, a.name AS assessor_name, s.signed_at, s.declaration_text,
                  s.sha256, s.signed_record,
                  c.learner_id AS "learner_id?", l.name AS "learner_name?", c.signed_at AS "countersigned_at?",
                  c.declaration_text AS "countersign_declaration?", c.sha256 AS "countersign_sha256?",
                  r.reopened_by AS "reopened_by?", rb.name AS "reopened_by_name?", r.reopened_at AS "reopened_at?",
                  r.reason AS "reason?"
           FROM sign_offs s JOIN users a ON a.id = s.assessor_id
           LEFT JOIN sign_off_countersignatures c ON c.sign_off_id = s.id
           LEFT JOIN users l ON l.id = c.learner_id
           LEFT JOIN sign_off_reopenings r ON r.sign_off_id = s.id
           LEFT JOIN users rb ON rb.id = r.reopened_by
           WHERE s.enrolment_id = $1 ORDER BY s.version DESC"#,
        enrolment_id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SignOff {
            id: r.id,
            version: r.version,
            assessor_id: r.assessor_id,
            assessor_name: r.assessor_name,
            signed_at: r.signed_at,
            declaration: r.declaration_text,
            sha256: r.sha256,
            signed_record: r.signed_record,
            countersignature: match (r.learner_id, r.countersigned_at, r.countersign_sha256) {
                (Some(learner_id), Some(signed_at), Some(sha256)) => Some(Countersignature {
                    learner_id,
                    learner_name: r.learner_name.unwrap_or_default(),
                    signed_at,
                    declaration: r.countersign_declaration.unwrap_or_default(),
                    sha256,
                }),
                _ => None,
            },
            reopening: match (r.reopened_by, r.reopened_at, r.reason) {
                (Some(reopened_by), Some(reopened_at), Some(reason)) => Some(Reopening {
                    reopened_by,
                    reopened_by_name: r.reopened_by_name.unwrap_or_default(),
                    reopened_at,
                    reason,
                }),
                _ => None,
            },
        })
        .collect())
}

/// The sign-off in force (signed and not reopened), if any.
pub async fn in_force(conn: &mut PgConnection, enrolment_id: Uuid) -> AppResult<Option<SignOff>> {
    Ok(history(conn, enrolment_id).await?.into_iter().next().filter(SignOff::is_in_force))
}

/// Refuses any change to a signed-off enrolment's record: evidence, submissions, confirmations
/// and decisions. Call it inside the change's transaction: it holds a share lock on the
/// enrolment until commit, so a sign-off cannot slip in between the check and the change.
pub async fn ensure_open(conn: &mut PgConnection, enrolment_id: Uuid) -> AppResult<()> {
    sqlx::query!("SELECT id FROM enrolments WHERE id = $1 FOR SHARE", enrolment_id).fetch_optional(&mut *conn).await?;
    match in_force(conn, enrolment_id).await? {
        None => Ok(()),
        Some(signed) => Err(AppError::Conflict(
            format!(
                "This unit was signed off by {} on {} (version {}), so its record is locked. The assessor \
                 can reopen it, giving a reason, if something must change.",
                signed.assessor_name,
                signed.signed_on(),
                signed.version
            ),
            vec![],
        )),
    }
}

/// What a sign-off request did.
pub enum Signed {
    New(Uuid),
    /// The unit was already signed off (a double submit): nothing new was recorded.
    Already(Uuid),
}

/// The assessor's sign-off, in the caller's transaction with its audit event. Refused with
/// every missing point when the checklist does not hold.
pub async fn sign_off_unit(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    unit: &Unit,
    declared: bool,
) -> AppResult<Signed> {
    // One sign-off at a time per enrolment, and no evidence or decision between the checks and
    // the signature (they hold a share lock on the same row).
    sqlx::query!("SELECT id FROM enrolments WHERE id = $1 FOR UPDATE", access.id).fetch_one(&mut *conn).await?;
    let history = history(conn, access.id).await?;
    if let Some(current) = history.first().filter(|s| s.is_in_force()) {
        return Ok(Signed::Already(current.id));
    }
    let readiness = sufficiency::readiness(conn, access.id, unit).await?;
    if !readiness.ready {
        let missing = readiness.missing();
        return Err(AppError::Conflict(
            format!(
                "This unit cannot be signed off yet: {} point{} of the checklist {} not met.",
                missing.len(),
                if missing.len() == 1 { "" } else { "s" },
                if missing.len() == 1 { "is" } else { "are" }
            ),
            missing,
        ));
    }
    if !declared {
        return Err(AppError::Invalid(vec![FieldError::new(
            "declaration",
            "Confirm the declaration that the evidence is valid, authentic, current and sufficient",
        )]));
    }
    let version = history.first().map(|s| s.version + 1).unwrap_or(1);
    let id = Uuid::new_v4();
    let signed_at = Utc::now().trunc_subsecs(6);
    let record = signed_record(conn, access, unit, id, version, actor.id, signed_at, &readiness).await?;
    let sha256 = hex::encode(Sha256::digest(record.as_bytes()));
    sqlx::query!(
        "INSERT INTO sign_offs (id, enrolment_id, version, assessor_id, signed_at, declaration_text, signed_record, sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        access.id,
        version,
        actor.id,
        signed_at,
        ASSESSOR_DECLARATION,
        record,
        sha256
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "unit.signed_off", "enrolment", Some(access.id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "sign_off_id": id,
                "version": version,
                "unit": unit.summary.code,
                "sha256": sha256,
            })),
    )
    .await?;
    Ok(Signed::New(id))
}

/// The exact text the assessor signs: the unit, every current decision with its id, every
/// submitted item with its declaration's hash, and the checklist as it stood.
#[allow(clippy::too_many_arguments)] // every part of what is signed, named
async fn signed_record(
    conn: &mut PgConnection,
    access: &EnrolmentAccess,
    unit: &Unit,
    id: Uuid,
    version: i32,
    assessor: Uuid,
    signed_at: DateTime<Utc>,
    readiness: &Readiness,
) -> AppResult<String> {
    let mut decisions = sqlx::query!(
        r#"SELECT DISTINCT ON (d.evidence_id, d.criterion_id) d.id, d.evidence_id, c.number, d.outcome, c.position
           FROM decisions d JOIN evidence_items e ON e.id = d.evidence_id JOIN criteria c ON c.id = d.criterion_id
           WHERE e.enrolment_id = $1 AND e.status = 'submitted'
           ORDER BY d.evidence_id, d.criterion_id, d.seq DESC"#,
        access.id
    )
    .fetch_all(&mut *conn)
    .await?;
    decisions.sort_by_key(|d| (d.position, d.evidence_id));
    let evidence = sqlx::query!(
        "SELECT id, version, declaration_sha256 FROM evidence_items
         WHERE enrolment_id = $1 AND status = 'submitted' ORDER BY id",
        access.id
    )
    .fetch_all(&mut *conn)
    .await?;
    let record = serde_json::json!({
        "sign_off_id": id,
        "version": version,
        "enrolment_id": access.id,
        "learner_id": access.learner_id,
        "unit": {"id": unit.summary.id, "code": unit.summary.code, "reference": unit.summary.reference},
        "assessor_id": assessor,
        "signed_at": signed_at,
        "declaration": ASSESSOR_DECLARATION,
        "decisions": decisions.iter().map(|d| serde_json::json!({
            "id": d.id, "evidence_id": d.evidence_id, "criterion": d.number, "outcome": d.outcome,
        })).collect::<Vec<_>>(),
        "evidence": evidence.iter().map(|e| serde_json::json!({
            "id": e.id, "version": e.version, "declaration_sha256": e.declaration_sha256,
        })).collect::<Vec<_>>(),
        "readiness": readiness.checks.iter().map(|c| serde_json::json!({
            "rule": c.rule, "outcome": c.outcome, "holds": c.holds, "detail": c.detail,
        })).collect::<Vec<_>>(),
    });
    Ok(record.to_string())
}

/// What a countersign request did.
pub enum Countersigned {
    New,
    Already,
}

/// The learner's countersignature over the sign-off in force.
pub async fn countersign(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    declared: bool,
) -> AppResult<Countersigned> {
    sqlx::query!("SELECT id FROM enrolments WHERE id = $1 FOR UPDATE", access.id).fetch_one(&mut *conn).await?;
    let Some(signed) = in_force(conn, access.id).await? else {
        return Err(AppError::Conflict(
            "There is nothing to countersign: your assessor has not signed this unit off".into(),
            vec![],
        ));
    };
    if signed.countersignature.is_some() {
        return Ok(Countersigned::Already);
    }
    if !declared {
        return Err(AppError::invalid(
            "declaration",
            "Confirm the declaration that the evidence is your own work and you agree with the decision",
        ));
    }
    let signed_at = Utc::now().trunc_subsecs(6);
    let record = serde_json::json!({
        "sign_off_id": signed.id,
        "sign_off_sha256": signed.sha256,
        "learner_id": actor.id,
        "signed_at": signed_at,
        "declaration": LEARNER_DECLARATION,
    })
    .to_string();
    let sha256 = hex::encode(Sha256::digest(record.as_bytes()));
    sqlx::query!(
        "INSERT INTO sign_off_countersignatures (sign_off_id, learner_id, signed_at, declaration_text, signed_record, sha256)
         VALUES ($1, $2, $3, $4, $5, $6)",
        signed.id,
        actor.id,
        signed_at,
        LEARNER_DECLARATION,
        record,
        sha256
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "unit.countersigned", "enrolment", Some(access.id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "sign_off_id": signed.id,
                "version": signed.version,
                "sign_off_sha256": signed.sha256,
                "sha256": sha256,
            })),
    )
    .await?;
    Ok(Countersigned::New)
}

/// The assessor reopens a signed-off unit, with a reason, so its record can change again.
pub async fn reopen(conn: &mut PgConnection, actor: &Actor, access: &EnrolmentAccess, reason: &str) -> AppResult<()> {
    let reason = reason.trim();
    sqlx::query!("SELECT id FROM enrolments WHERE id = $1 FOR UPDATE", access.id).fetch_one(&mut *conn).await?;
    let Some(signed) = in_force(conn, access.id).await? else {
        return Err(AppError::Conflict("This unit is not signed off, so there is nothing to reopen".into(), vec![]));
    };
    if reason.is_empty() {
        return Err(AppError::invalid("reason", "Give the reason for reopening the unit: it is kept in the record"));
    }
    if reason.chars().count() > 2000 {
        return Err(AppError::invalid("reason", "The reason must be 2,000 characters or fewer"));
    }
    sqlx::query!(
        "INSERT INTO sign_off_reopenings (sign_off_id, reopened_by, reason) VALUES ($1, $2, $3)",
        signed.id,
        actor.id,
        reason
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "unit.reopened", "enrolment", Some(access.id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "sign_off_id": signed.id,
                "version": signed.version,
                "reason": reason,
                "was_countersigned": signed.countersignature.is_some(),
            })),
    )
    .await?;
    Ok(())
}
