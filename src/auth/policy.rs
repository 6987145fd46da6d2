//! Who may do what to which learner's records. Every handler that touches an enrolment or its
//! evidence loads it through here; there is no other way in. A resource the caller may not see
//! is "not found" (its existence is not disclosed); one they may see but not change is
//! "forbidden". Every view by an external verifier is written to the audit trail.

use sqlx::PgConnection;
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
    /// Import evidence from another e-portfolio (LEAP2A) as drafts: the learner or their assessor.
    ImportEvidence,
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
    /// Internal quality assurance by an internal quality assurer of the caller's centre: the
    /// sampling strategy, draws, the plan, sample records and standardisation (`iqa`,
    /// `iqa_sample` with `SampleAction::Record`).
    Iqa,
    /// Reading IQA records: internal quality assurers (their own) and external verifiers (of
    /// centres they may see, read-only and audited) (`iqa_records`).
    IqaRecords,
    /// One IQA sample in the path: its IQA, the assessor sampled and the centre's verifiers.
    IqaSample,
    /// The sampled assessor's response to an IQA sample referred back to them.
    IqaSampleResponse,
    /// A centre administrator, acting on their own centre.
    Admin,
    /// A centre administrator, on a person, enrolment or grant of their own centre in the path.
    AdminTarget,
    /// Administrators and external verifiers: checking the audit trail.
    AuditCheck,
    /// An external verifier with current access to the centre in the path (`verifier_centre`).
    VerifierCentre,
    /// Centre-wide progress reports: a centre's administrators and internal quality assurers,
    /// and external verifiers (read-only, audited) within their grants (`report_scope`).
    Reports,
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

    pub fn allows(self, action: Action) -> bool {
        match action {
            Action::View => true,
            Action::AddEvidence => self == Relation::Learner,
            Action::Assess | Action::RecordAssessment => self == Relation::Assessor,
            Action::ManageWitnesses => matches!(self, Relation::Learner | Relation::Assessor),
            Action::SignOff => self == Relation::Assessor,
            Action::Countersign => self == Relation::Learner,
            Action::Comment => matches!(self, Relation::Learner | Relation::Assessor | Relation::Iqa),
            Action::ImportEvidence => matches!(self, Relation::Learner | Relation::Assessor),
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

/// How `actor` stands to an enrolment with these people as its learner, assessor or IQA; `None`
/// for anyone else (a verifier's cover is another lookup).
pub fn direct_relation(actor: &Actor, learner_id: Uuid, assessor_id: Uuid, iqa_id: Option<Uuid>) -> Option<Relation> {
    if learner_id == actor.id {
        Some(Relation::Learner)
    } else if assessor_id == actor.id {
        Some(Relation::Assessor)
    } else if iqa_id == Some(actor.id) {
        Some(Relation::Iqa)
    } else {
        None
    }
}

/// Loads an enrolment for `action`, or refuses. A verifier's view is recorded through `views` in a
/// transaction of its own, since their request's own transaction is read-only.
pub async fn enrolment(
    views: &audit::Views,
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
    let relation = match direct_relation(actor, row.learner_id, row.assessor_id, row.iqa_id) {
        Some(relation) => relation,
        None if verifier_covers(conn, actor, row.id).await? => Relation::Verifier,
        None => return Err(AppError::NotFound("enrolment")),
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
        views
            .record(vec![
                Event::new(Some(actor), action, subject_type, Some(subject_id))
                    .as_role(Role::Eqa)
                    .enrolment(row.id)
                    .details(details),
            ])
            .await?;
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
    views: &audit::Views,
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
    enrolment(views, conn, actor, enrolment_id, action, viewed).await.map_err(|error| match error {
        AppError::NotFound(_) => AppError::NotFound("evidence item"),
        other => other,
    })
}

/// Enrolment ids the caller may see, for lists and dashboards.
pub async fn visible_enrolments(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<Uuid>, sqlx::Error> {
    let in_scope = verifier_enrolments(conn, actor).await?;
    sqlx::query_scalar!(
        "SELECT id FROM enrolments
         WHERE learner_id = $1 OR assessor_id = $1 OR iqa_id = $1 OR id = ANY($2)
         ORDER BY enrolled_at",
        actor.id,
        &in_scope
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

/// Enrolments an external verifier may see today: those their current grants cover, whether a
/// grant is for the whole centre, chosen units, or chosen learners (the `verifier_access` view).
pub async fn verifier_enrolments(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<Uuid>, sqlx::Error> {
    if !actor.has_role(Role::Eqa) {
        return Ok(Vec::new());
    }
    sqlx::query_scalar!(
        r#"SELECT DISTINCT enrolment_id AS "id!" FROM verifier_access WHERE verifier_id = $1"#,
        actor.id
    )
    .fetch_all(conn)
    .await
}

/// Whether a current grant lets the external verifier see this one enrolment (one row looked
/// up, however many learners the grant covers).
pub async fn verifier_covers(conn: &mut PgConnection, actor: &Actor, enrolment_id: Uuid) -> Result<bool, sqlx::Error> {
    if !actor.has_role(Role::Eqa) {
        return Ok(false);
    }
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM verifier_access WHERE verifier_id = $1 AND enrolment_id = $2) AS "covered!""#,
        actor.id,
        enrolment_id
    )
    .fetch_one(conn)
    .await
}

/// The enrolments a verifier's grants cover one by one (chosen units or learners), outside the
/// centres they may see whole: those centres' events are in the audit scope by centre already.
async fn verifier_enrolments_outside(
    conn: &mut PgConnection,
    actor: &Actor,
    whole_centres: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT DISTINCT enrolment_id AS "id!" FROM verifier_access
           WHERE verifier_id = $1 AND NOT (centre_id = ANY($2))"#,
        actor.id,
        whole_centres
    )
    .fetch_all(conn)
    .await
}

/// Centres where a current grant gives the verifier the whole centre (every learner, and the
/// centre's own events in the audit trail).
pub async fn verifier_whole_centres(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<Uuid>, sqlx::Error> {
    if !actor.has_role(Role::Eqa) {
        return Ok(Vec::new());
    }
    sqlx::query_scalar!(
        "SELECT DISTINCT centre_id FROM verifier_grants
         WHERE verifier_id = $1 AND revoked_at IS NULL AND current_date BETWEEN starts_on AND ends_on
           AND scope = 'centre'",
        actor.id
    )
    .fetch_all(conn)
    .await
}

/// A centre the external verifier has current access to (in any scope), or "not found".
pub async fn verifier_centre(conn: &mut PgConnection, actor: &Actor, centre_id: Uuid) -> AppResult<()> {
    if verifier_centres(conn, actor).await?.contains(&centre_id) { Ok(()) } else { Err(AppError::NotFound("centre")) }
}

/// What an external verifier's current grants cover, as the audit trail needs it: the centres
/// granted whole, the enrolments granted outside them, and every centre granted in any scope
/// (where their readings of the trail are recorded). Kept by each process with the verifier's
/// dashboard lists, and dropped with them (src/db/changes.rs).
#[derive(Debug, Default)]
pub struct VerifierScope {
    pub whole_centres: Vec<Uuid>,
    pub enrolments_outside: Vec<Uuid>,
    pub centres: Vec<Uuid>,
    /// Grants start and end by the day.
    pub as_of: chrono::NaiveDate,
}

impl crate::db::changes::OfDay for VerifierScope {
    fn as_of(&self) -> chrono::NaiveDate {
        self.as_of
    }
}

/// What `actor`'s current verifier grants cover (nothing for anyone else).
pub async fn verifier_scope(
    changes: &crate::db::changes::Changes,
    conn: &mut PgConnection,
    actor: &Actor,
) -> Result<std::sync::Arc<VerifierScope>, sqlx::Error> {
    if !actor.has_role(Role::Eqa) {
        return Ok(Default::default());
    }
    changes
        .verifier_scope(actor.id, async {
            let as_of = chrono::Utc::now().date_naive();
            let whole_centres = verifier_whole_centres(conn, actor).await?;
            let enrolments_outside = verifier_enrolments_outside(conn, actor, &whole_centres).await?;
            let centres = verifier_centres(conn, actor).await?;
            Ok(std::sync::Arc::new(VerifierScope { whole_centres, enrolments_outside, centres, as_of }))
        })
        .await
}

/// The part of the audit trail the caller may read: an administrator their centre's events, an
/// external verifier the events of what their current grants cover.
pub async fn audit_scope(
    changes: &crate::db::changes::Changes,
    conn: &mut PgConnection,
    actor: &Actor,
) -> AppResult<crate::audit::trail::Scope> {
    let mut scope = crate::audit::trail::Scope::default();
    if let Ok(centre) = admin_centre(actor) {
        scope.centres.push(centre);
    }
    if actor.has_role(Role::Eqa) {
        let granted = verifier_scope(changes, conn, actor).await?;
        scope.centres.extend(&granted.whole_centres);
        scope.enrolments.clone_from(&granted.enrolments_outside);
        scope.verifier_centres.clone_from(&granted.centres);
    }
    if scope.centres.is_empty() && scope.enrolments.is_empty() {
        return Err(AppError::Forbidden(if actor.has_role(Role::Eqa) {
            "Your access to the centre's records has ended or not yet begun".into()
        } else {
            "Only administrators and external verifiers can read the audit trail".into()
        }));
    }
    Ok(scope)
}

/// The enrolments a progress report covers for the caller: an administrator's and an internal
/// quality assurer's whole centres, and what an external verifier's current grants cover (their
/// view recorded, as for portfolios). Anyone else is refused.
pub async fn report_scope(
    views: &audit::Views,
    conn: &mut PgConnection,
    actor: &Actor,
) -> AppResult<crate::reports::ReportScope> {
    let mut scope = crate::reports::ReportScope::default();
    for held in &actor.roles {
        if matches!(held.role, Role::Admin | Role::Iqa) && !scope.centres.contains(&held.centre_id) {
            scope.centres.push(held.centre_id);
        }
    }
    let mut verifier_centres = Vec::new();
    if actor.has_role(Role::Eqa) {
        verifier_centres = verifier_whole_centres(conn, actor).await?;
        scope.enrolments = verifier_enrolments(conn, actor).await?;
    }
    if scope.centres.is_empty() && verifier_centres.is_empty() && scope.enrolments.is_empty() {
        return Err(AppError::Forbidden(if actor.has_role(Role::Eqa) {
            "Your access to the centre's records has ended or not yet begun".into()
        } else {
            "Only the centre's administrators, internal quality assurers and external verifiers can see progress reports"
                .into()
        }));
    }
    if !verifier_centres.is_empty() || !scope.enrolments.is_empty() {
        views
            .record(vec![
                Event::new(Some(actor), "verifier.viewed_progress_report", "report", None)
                    .as_role(Role::Eqa)
                    .details(serde_json::json!({"centres": verifier_centres, "enrolments": scope.enrolments.len()})),
            ])
            .await?;
    }
    scope.centres.extend(verifier_centres.into_iter().filter(|c| !scope.centres.contains(c)).collect::<Vec<_>>());
    Ok(scope)
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

/// For a subject-access request by an administrator: the person (someone at the
/// administrator's centre) and their enrolments there as a learner, each as the learner sees it
/// (drafts included), since the request is for everything the centre holds about them.
pub async fn subject_access(
    conn: &mut PgConnection,
    actor: &Actor,
    person_id: Uuid,
) -> AppResult<(Uuid, Vec<EnrolmentAccess>)> {
    let centre = person_at_centre(conn, actor, person_id).await?;
    let rows = sqlx::query!(
        "SELECT id, centre_id, unit_id, learner_id, assessor_id, iqa_id FROM enrolments
         WHERE learner_id = $1 AND centre_id = $2 ORDER BY enrolled_at",
        person_id,
        centre
    )
    .fetch_all(conn)
    .await?;
    let enrolments = rows
        .into_iter()
        .map(|row| EnrolmentAccess {
            id: row.id,
            centre_id: row.centre_id,
            unit_id: row.unit_id,
            learner_id: row.learner_id,
            assessor_id: row.assessor_id,
            iqa_id: row.iqa_id,
            relation: Relation::Learner,
        })
        .collect();
    Ok((centre, enrolments))
}

/// Centres where the caller is an internal quality assurer, or a refusal.
pub fn iqa_centres(actor: &Actor) -> AppResult<Vec<Uuid>> {
    let centres: Vec<Uuid> = actor.roles.iter().filter(|r| r.role == Role::Iqa).map(|r| r.centre_id).collect();
    if centres.is_empty() {
        return Err(AppError::Forbidden("Only internal quality assurers can do this".into()));
    }
    Ok(centres)
}

/// The caller as an internal quality assurer writing IQA records at their (first) centre.
pub fn iqa(actor: &Actor) -> AppResult<QualityScope> {
    let centres = iqa_centres(actor)?;
    Ok(QualityScope::Iqa { iqa_id: actor.id, centre_id: centres[0] })
}

/// Whose IQA records a reader sees: an IQA their own, a verifier those of the centres they may
/// see today.
#[derive(Debug, Clone)]
pub enum QualityScope {
    Iqa { iqa_id: Uuid, centre_id: Uuid },
    Verifier { centres: Vec<Uuid> },
}

impl QualityScope {
    /// The IQA whose records these are; none for a verifier (every IQA of their centres).
    pub fn iqa_id(&self) -> Option<Uuid> {
        match self {
            QualityScope::Iqa { iqa_id, .. } => Some(*iqa_id),
            QualityScope::Verifier { .. } => None,
        }
    }

    pub fn centres(&self) -> Vec<Uuid> {
        match self {
            QualityScope::Iqa { centre_id, .. } => vec![*centre_id],
            QualityScope::Verifier { centres } => centres.clone(),
        }
    }

    pub fn is_iqa(&self) -> bool {
        matches!(self, QualityScope::Iqa { .. })
    }
}

/// The IQA records the caller may read, or a refusal. A verifier's view (`viewed` names the
/// page) is recorded through `views` in a transaction of its own, as for portfolios.
pub async fn iqa_records(
    views: &audit::Views,
    conn: &mut PgConnection,
    actor: &Actor,
    viewed: &'static str,
) -> AppResult<QualityScope> {
    if let Ok(scope) = iqa(actor) {
        return Ok(scope);
    }
    // The centre-wide IQA lists are for grants covering the whole centre; a verifier given
    // chosen units or learners sees those learners' samples one by one (`iqa_sample`).
    let centres = verifier_whole_centres(conn, actor).await?;
    if centres.is_empty() {
        return Err(AppError::Forbidden(
            "Only internal quality assurers and the centre's external verifiers can see IQA records".into(),
        ));
    }
    views
        .record(vec![
            Event::new(Some(actor), "verifier.viewed_iqa_records", "iqa_records", None)
                .as_role(Role::Eqa)
                .details(serde_json::json!({"page": viewed, "centres": centres})),
        ])
        .await?;
    Ok(QualityScope::Verifier { centres })
}

/// What the caller wants to do with one IQA sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleAction {
    View,
    /// Record the outcome, or close it (its IQA).
    Record,
    /// Respond to a referral (the assessor sampled).
    Respond,
}

/// How the caller stands to an IQA sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleRelation {
    Iqa,
    Assessor,
    Verifier,
}

/// A sample (sampling-plan item) the caller has been allowed to act on.
#[derive(Debug, Clone)]
pub struct SampleAccess {
    pub id: Uuid,
    pub centre_id: Uuid,
    pub enrolment_id: Uuid,
    pub evidence_id: Uuid,
    pub iqa_id: Uuid,
    pub assessor_id: Uuid,
    pub relation: SampleRelation,
}

/// Loads a sampling-plan item for `action`, or refuses. Someone unrelated to it gets "not found".
pub async fn iqa_sample(
    views: &audit::Views,
    conn: &mut PgConnection,
    actor: &Actor,
    id: Uuid,
    action: SampleAction,
) -> AppResult<SampleAccess> {
    let row = sqlx::query!(
        "SELECT id, centre_id, enrolment_id, evidence_id, iqa_id, assessor_id FROM iqa_plan_items WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound("IQA sample"))?;
    let relation = if row.iqa_id == actor.id {
        SampleRelation::Iqa
    } else if row.assessor_id == actor.id {
        SampleRelation::Assessor
    } else if verifier_covers(conn, actor, row.enrolment_id).await? {
        SampleRelation::Verifier
    } else {
        return Err(AppError::NotFound("IQA sample"));
    };
    let allowed = match action {
        SampleAction::View => true,
        SampleAction::Record => relation == SampleRelation::Iqa,
        SampleAction::Respond => relation == SampleRelation::Assessor,
    };
    if !allowed {
        return Err(AppError::Forbidden(match relation {
            SampleRelation::Verifier => "External verifiers have read-only access to IQA records".into(),
            SampleRelation::Assessor => "Only the internal quality assurer can record or close this sample".into(),
            SampleRelation::Iqa => "Only the assessor sampled can respond to a referral".into(),
        }));
    }
    if relation == SampleRelation::Verifier {
        views
            .record(vec![
                Event::new(Some(actor), "verifier.viewed_iqa_sample", "iqa_sample", Some(row.id))
                    .as_role(Role::Eqa)
                    .enrolment(row.enrolment_id),
            ])
            .await?;
    }
    Ok(SampleAccess {
        id: row.id,
        centre_id: row.centre_id,
        enrolment_id: row.enrolment_id,
        evidence_id: row.evidence_id,
        iqa_id: row.iqa_id,
        assessor_id: row.assessor_id,
        relation,
    })
}
