//! Who may do what to which learner's records. Every handler that touches an enrolment or its
//! evidence loads it through here; there is no other way in. A resource the caller may not see
//! is "not found" (its existence is not disclosed); one they may see but not change is
//! "forbidden". Every view by an external verifier is written to the audit trail.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{Actor, Role};
use crate::audit::{self, Event};
use crate::error::{AppError, AppResult};

/// What the caller wants to do with a learner's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    View,
    AddEvidence,
    Assess,
    /// Keep the learner's witness register and send witnesses links to write statements.
    ManageWitnesses,
    /// Write an observation or professional-discussion record for a caseload learner.
    RecordAssessment,
    /// Sign a unit off when its checklist holds, or reopen it with a reason (the assessor).
    SignOff,
    /// Countersign the assessor's sign-off (the learner).
    Countersign,
    /// Write in an evidence item's conversation (feedback and replies).
    Comment,
}

/// The rule a route promises to enforce; see `web::route_table`. The authorisation matrix test
/// checks every route against its rule for every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not.
    Public,
    /// Anyone holding the one-time link in the path.
    Link,
    /// Any signed-in person, about themselves or the catalogue.
    SignedIn,
    /// The signed-in owner of the thing in the path (their API token).
    Owner,
    /// The enrolment in the path, by relation to its learner (`enrolment`).
    Enrolment(Action),
    /// The evidence item in the path, by relation to its learner (`evidence`).
    Evidence(Action),
    /// A centre administrator, acting on their own centre.
    Admin,
    /// A centre administrator, on a person, enrolment or grant of their own centre in the path.
    AdminTarget,
    /// Administrators and external verifiers: checking the audit trail.
    AuditCheck,
}

/// How the caller stands to the learner: this decides what they may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Learner,
    Assessor,
    Iqa,
    Verifier,
}

impl Relation {
    pub fn role(self) -> Role {
        match self {
            Relation::Learner => Role::Learner,
            Relation::Assessor => Role::Assessor,
            Relation::Iqa => Role::Iqa,
            Relation::Verifier => Role::Eqa,
        }
    }

    fn allows(self, action: Action) -> bool {
        match action {
            Action::View => true,
            Action::AddEvidence => self == Relation::Learner,
            Action::Assess | Action::RecordAssessment => self == Relation::Assessor,
            Action::ManageWitnesses => matches!(self, Relation::Learner | Relation::Assessor),
            Action::SignOff => self == Relation::Assessor,
            Action::Countersign => self == Relation::Learner,
            Action::Comment => matches!(self, Relation::Learner | Relation::Assessor | Relation::Iqa),
        }
    }
}

/// An enrolment the caller has been allowed to act on, and in what capacity.
#[derive(Debug, Clone)]
pub struct EnrolmentAccess {
    pub id: Uuid,
    pub centre_id: Uuid,
    pub unit_id: Uuid,
    pub learner_id: Uuid,
    pub assessor_id: Uuid,
    pub iqa_id: Option<Uuid>,
    pub relation: Relation,
}

/// What a verifier looked at, for the audit trail.
#[derive(Debug, Clone, Copy)]
pub enum Viewed {
    Portfolio,
    History,
    Evidence(Uuid),
    File(Uuid, Uuid),
    /// The tracking grid, in a format: `html`, `print`, `csv`, `svg` or `json`.
    TrackingGrid(&'static str),
}

/// Loads an enrolment for `action`, or refuses. A verifier's view is recorded through `pool` in a
/// transaction of its own, since their request's own transaction is read-only.
pub async fn enrolment(
    pool: &PgPool,
    conn: &mut PgConnection,
    actor: &Actor,
    enrolment_id: Uuid,
    action: Action,
    viewed: Viewed,
) -> AppResult<EnrolmentAccess> {
    let row = sqlx::query!(
        "SELECT id, centre_id, unit_id, learner_id, assessor_id, iqa_id FROM enrolments WHERE id = $1",
        enrolment_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound("enrolment"))?;
    let relation = if row.learner_id == actor.id {
        Relation::Learner
    } else if row.assessor_id == actor.id {
        Relation::Assessor
    } else if row.iqa_id == Some(actor.id) {
        Relation::Iqa
    } else if actor.has_role(Role::Eqa) && verifier_centres(conn, actor).await?.contains(&row.centre_id) {
        Relation::Verifier
    } else {
        return Err(AppError::NotFound("enrolment"));
    };
    if !relation.allows(action) {
        return Err(AppError::Forbidden(match (relation, action) {
            (Relation::Verifier, _) => "External verifiers have read-only access to portfolios".into(),
            (Relation::Iqa, _) => "Internal quality assurers cannot change a learner's evidence or decisions".into(),
            (Relation::Learner, Action::SignOff) => "Only the learner's assessor can sign the unit off".into(),
            (Relation::Assessor, Action::Countersign) => "Only the learner can countersign the sign-off".into(),
            (Relation::Learner, Action::RecordAssessment) => {
                "Only the learner's assessor can record observations and professional discussions".into()
            }
            (Relation::Learner, _) => "Only the learner's assessor can record assessment decisions".into(),
            (Relation::Assessor, _) => "Only the learner can add evidence to their portfolio".into(),
        }));
    }
    if relation == Relation::Verifier {
        let (action, subject_type, subject_id, details) = match viewed {
            Viewed::Portfolio => ("verifier.viewed_portfolio", "enrolment", row.id, serde_json::json!({})),
            Viewed::History => ("verifier.viewed_history", "enrolment", row.id, serde_json::json!({})),
            Viewed::Evidence(id) => ("verifier.viewed_evidence", "evidence", id, serde_json::json!({})),
            Viewed::TrackingGrid(format) => {
                ("verifier.viewed_tracking_grid", "enrolment", row.id, serde_json::json!({"format": format}))
            }
            Viewed::File(evidence, file) => {
                ("verifier.opened_file", "evidence_file", file, serde_json::json!({"evidence_id": evidence}))
            }
        };
        let mut views = pool.begin().await?;
        audit::record(
            &mut views,
            Event::new(Some(actor), action, subject_type, Some(subject_id))
                .as_role(Role::Eqa)
                .enrolment(row.id)
                .details(details),
        )
        .await?;
        views.commit().await?;
    }
    Ok(EnrolmentAccess {
        id: row.id,
        centre_id: row.centre_id,
        unit_id: row.unit_id,
        learner_id: row.learner_id,
        assessor_id: row.assessor_id,
        iqa_id: row.iqa_id,
        relation,
    })
}

/// Loads the enrolment an evidence item belongs to, for `action` on that item.
pub async fn evidence(
    pool: &PgPool,
    conn: &mut PgConnection,
    actor: &Actor,
    evidence_id: Uuid,
    action: Action,
    viewed: Viewed,
) -> AppResult<EnrolmentAccess> {
    let enrolment_id = sqlx::query_scalar!("SELECT enrolment_id FROM evidence_items WHERE id = $1", evidence_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AppError::NotFound("evidence item"))?;
    enrolment(pool, conn, actor, enrolment_id, action, viewed).await.map_err(|error| match error {
        AppError::NotFound(_) => AppError::NotFound("evidence item"),
        other => other,
    })
}

/// Enrolment ids the caller may see, for lists and dashboards.
pub async fn visible_enrolments(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<Uuid>, sqlx::Error> {
    let eqa_centres = verifier_centres(conn, actor).await?;
    sqlx::query_scalar!(
        "SELECT id FROM enrolments
         WHERE learner_id = $1 OR assessor_id = $1 OR iqa_id = $1 OR centre_id = ANY($2)
         ORDER BY enrolled_at",
        actor.id,
        &eqa_centres
    )
    .fetch_all(conn)
    .await
}

/// Centres an external verifier may see today: granted by the centre for a window that includes
/// today and not revoked. Access ends by itself when the window closes.
pub async fn verifier_centres(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<Uuid>, sqlx::Error> {
    if !actor.has_role(Role::Eqa) {
        return Ok(Vec::new());
    }
    sqlx::query_scalar!(
        "SELECT DISTINCT centre_id FROM verifier_grants
         WHERE verifier_id = $1 AND revoked_at IS NULL AND current_date BETWEEN starts_on AND ends_on",
        actor.id
    )
    .fetch_all(conn)
    .await
}

/// The centre an administrator administers, or a refusal for anyone else.
pub fn admin_centre(actor: &Actor) -> AppResult<Uuid> {
    actor
        .roles
        .iter()
        .find(|r| r.role == Role::Admin)
        .map(|r| r.centre_id)
        .ok_or_else(|| AppError::Forbidden("Only the centre's administrators can do this".into()))
}

/// A person an administrator may manage: someone holding a role at the administrator's centre.
pub async fn person_at_centre(conn: &mut PgConnection, actor: &Actor, user_id: Uuid) -> AppResult<Uuid> {
    let centre = admin_centre(actor)?;
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_roles WHERE user_id = $1 AND centre_id = $2) AS "found!""#,
        user_id,
        centre
    )
    .fetch_one(conn)
    .await?;
    if found { Ok(centre) } else { Err(AppError::NotFound("person")) }
}

/// An enrolment at the administrator's centre.
pub async fn enrolment_at_centre(conn: &mut PgConnection, actor: &Actor, enrolment_id: Uuid) -> AppResult<Uuid> {
    let centre = admin_centre(actor)?;
    let found = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM enrolments WHERE id = $1 AND centre_id = $2) AS "found!""#,
        enrolment_id,
        centre
    )
    .fetch_one(conn)
    .await?;
    if found { Ok(centre) } else { Err(AppError::NotFound("enrolment")) }
}
