//! Assessment: assessors' decisions per criterion per evidence item (append-only), the progress
//! they add up to, and the summaries dashboards show.

mod routes;
pub mod sign_off;
pub mod sufficiency;
pub mod tracking;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::auth::policy::EnrolmentAccess;
use crate::catalogue::Unit;
use crate::error::{AppError, AppResult, FieldError};
use crate::evidence::EvidenceItem;
pub use routes::router;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DecisionOutcome)]
pub enum Outcome {
    Met,
    NotYet,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Met => "met",
            Outcome::NotYet => "not_yet",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        match text {
            "met" => Some(Outcome::Met),
            "not_yet" => Some(Outcome::NotYet),
            _ => None,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Met => "Met",
            Outcome::NotYet => "Not yet met",
        }
    }
}

/// A criterion's standing in a learner's portfolio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CriterionStatus {
    NotStarted,
    Submitted,
    NotYet,
    Met,
}

impl CriterionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CriterionStatus::NotStarted => "not_started",
            CriterionStatus::Submitted => "submitted",
            CriterionStatus::NotYet => "not_yet",
            CriterionStatus::Met => "met",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CriterionStatus::NotStarted => "Not started",
            CriterionStatus::Submitted => "Awaiting assessment",
            CriterionStatus::NotYet => "Not yet met",
            CriterionStatus::Met => "Met",
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DecisionInfo {
    pub id: Uuid,
    pub outcome: Outcome,
    pub feedback: String,
    pub assessor_id: Uuid,
    pub assessor_name: String,
    pub decided_at: DateTime<Utc>,
    pub supersedes: Option<Uuid>,
    /// What the assessor confirmed of the evidence with this judgement.
    pub confirmed: Confirmations,
    /// Why an earlier judgement was changed (empty for a first judgement).
    pub change_reason: String,
}

/// The assessor's confirmation that the evidence is valid, authentic, current and sufficient
/// (the awarding bodies' VACS), given with every "met" judgement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Confirmations {
    pub valid: bool,
    pub authentic: bool,
    pub current: bool,
    pub sufficient: bool,
}

impl Confirmations {
    pub const NAMES: [&'static str; 4] = ["valid", "authentic", "current", "sufficient"];

    /// From the names ticked (`["valid", "authentic", ...]`); an unknown name is refused.
    pub fn parse(names: &[String]) -> Result<Self, String> {
        let mut confirmed = Confirmations::default();
        for name in names {
            match name.trim() {
                "valid" => confirmed.valid = true,
                "authentic" => confirmed.authentic = true,
                "current" => confirmed.current = true,
                "sufficient" => confirmed.sufficient = true,
                other => return Err(format!("\"{other}\" is not one of valid, authentic, current, sufficient")),
            }
        }
        Ok(confirmed)
    }

    fn missing(&self) -> Vec<&'static str> {
        let given = [self.valid, self.authentic, self.current, self.sufficient];
        Self::NAMES.iter().zip(given).filter(|(_, given)| !given).map(|(name, _)| *name).collect()
    }

    pub fn all(&self) -> bool {
        self.missing().is_empty()
    }
}

impl DecisionInfo {
    pub fn outcome_label(&self) -> &'static str {
        self.outcome.label()
    }
    pub fn outcome_value(&self) -> &'static str {
        self.outcome.as_str()
    }
}

/// A criterion an item is mapped to, with its current decision and all earlier ones.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CriterionDecisions {
    pub criterion: String,
    pub text: String,
    pub current: Option<DecisionInfo>,
    /// Every decision, newest first (the first is the current one).
    pub history: Vec<DecisionInfo>,
}

/// The current judgement of each criterion of each item, by item and criterion number.
pub type Judgements = std::collections::HashMap<Uuid, std::collections::HashMap<String, Outcome>>;

/// The current judgements of `items`, for a whole portfolio in one query (kept by the database,
/// migration 0022: the portfolio page's states, progress and checklist need only these, not each
/// item's full history).
pub async fn current_judgements(conn: &mut PgConnection, items: &[Uuid]) -> AppResult<Judgements> {
    let rows = sqlx::query!(
        "SELECT j.evidence_id, c.number, j.outcome FROM current_judgements j JOIN criteria c ON c.id = j.criterion_id
         WHERE j.evidence_id = ANY($1)",
        items
    )
    .fetch_all(conn)
    .await?;
    let mut judgements = Judgements::default();
    for row in rows {
        if let Some(outcome) = Outcome::parse(&row.outcome) {
            judgements.entry(row.evidence_id).or_default().insert(row.number, outcome);
        }
    }
    Ok(judgements)
}

pub async fn decisions_for_evidence(
    conn: &mut PgConnection,
    unit: &Unit,
    item: &EvidenceItem,
) -> AppResult<Vec<CriterionDecisions>> {
    let rows = sqlx::query!(
        "SELECT d.id, c.number, d.outcome, d.feedback, d.assessor_id, u.name AS assessor_name, d.decided_at, d.supersedes,
                d.confirmed_valid, d.confirmed_authentic, d.confirmed_current, d.confirmed_sufficient, d.change_reason
         FROM decisions d JOIN criteria c ON c.id = d.criterion_id JOIN users u ON u.id = d.assessor_id
         WHERE d.evidence_id = $1 ORDER BY d.seq DESC",
        item.id
    )
    .fetch_all(conn)
    .await?;
    Ok(unit
        .criteria()
        .filter(|c| item.criteria.contains(&c.number))
        .map(|c| {
            let history: Vec<DecisionInfo> = rows
                .iter()
                .filter(|r| r.number == c.number)
                .map(|r| DecisionInfo {
                    id: r.id,
                    outcome: Outcome::parse(&r.outcome).unwrap_or(Outcome::NotYet),
                    feedback: r.feedback.clone(),
                    assessor_id: r.assessor_id,
                    assessor_name: r.assessor_name.clone(),
                    decided_at: r.decided_at,
                    supersedes: r.supersedes,
                    confirmed: Confirmations {
                        valid: r.confirmed_valid,
                        authentic: r.confirmed_authentic,
                        current: r.confirmed_current,
                        sufficient: r.confirmed_sufficient,
                    },
                    change_reason: r.change_reason.clone(),
                })
                .collect();
            CriterionDecisions {
                criterion: c.number.clone(),
                text: c.text.clone(),
                current: history.first().cloned(),
                history,
            }
        })
        .collect())
}

/// One judgement an assessor is making.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct DecisionInput {
    pub criterion: String,
    pub outcome: String,
    #[serde(default)]
    pub feedback: String,
    /// What the assessor confirms of the evidence: all of "valid", "authentic", "current" and
    /// "sufficient" are needed for "met".
    #[serde(default)]
    pub confirmed: Vec<String>,
    /// Why an earlier judgement on this criterion is being changed; needed when it is.
    #[serde(default)]
    pub reason: String,
}

/// Records decisions on an item in one transaction. Decisions never change: each supersedes the
/// criterion's current one. A criterion the learner did not map is added to the item's mapping.
pub async fn record_decisions(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    unit: &Unit,
    evidence_id: Uuid,
    inputs: &[DecisionInput],
) -> AppResult<Vec<Uuid>> {
    sign_off::ensure_open(conn, access.id).await?;
    let mut errors = Vec::new();
    let mut checked = Vec::new();
    if inputs.is_empty() {
        errors.push(FieldError::new("outcome", "Choose met or not yet for at least one criterion"));
    }
    for input in inputs {
        let field = |name: &str| format!("{name}-{}", input.criterion.trim());
        let criterion = match unit.criterion(&input.criterion) {
            Ok(criterion) => criterion,
            Err(message) => {
                errors.push(FieldError::new("criterion", message));
                continue;
            }
        };
        let Some(outcome) = Outcome::parse(input.outcome.trim()) else {
            errors.push(FieldError::new(field("outcome"), format!("Choose met or not yet for {}", criterion.number)));
            continue;
        };
        let feedback = input.feedback.trim().to_string();
        if outcome == Outcome::NotYet && feedback.is_empty() {
            errors.push(FieldError::new(
                field("feedback"),
                format!("Give feedback for {}: say what is missing so the learner can act on it", criterion.number),
            ));
        }
        if feedback.chars().count() > 10_000 {
            errors.push(FieldError::new(field("feedback"), "Feedback must be 10,000 characters or fewer"));
        }
        let confirmed = match Confirmations::parse(&input.confirmed) {
            Ok(confirmed) => confirmed,
            Err(message) => {
                errors.push(FieldError::new("confirmed", message));
                Confirmations::default()
            }
        };
        if outcome == Outcome::Met && !confirmed.all() && !errors.iter().any(|e| e.field == "confirmed") {
            errors.push(FieldError::new(
                "confirmed",
                format!(
                    "To record {} as met, confirm that the evidence is valid, authentic, current and sufficient \
                     (not yet confirmed: {})",
                    criterion.number,
                    confirmed.missing().join(", ")
                ),
            ));
        }
        let reason = input.reason.trim().to_string();
        if reason.chars().count() > 2_000 {
            errors.push(FieldError::new(field("reason"), "A reason must be 2,000 characters or fewer"));
        }
        checked.push((criterion, outcome, feedback, confirmed, reason));
    }
    if !errors.is_empty() {
        return Err(AppError::Invalid(errors));
    }
    // One assessor action at a time per item: a double submit waits and then supersedes.
    let item = sqlx::query!(
        r#"SELECT status, EXISTS (SELECT 1 FROM evidence_items n WHERE n.previous_version = e.id) AS "replaced!",
                  (kind = 'witness_statement' AND witness_confirmed_at IS NULL) AS "unconfirmed!"
           FROM evidence_items e WHERE id = $1 FOR UPDATE"#,
        evidence_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if item.status != "submitted" {
        return Err(AppError::NotFound("evidence item"));
    }
    if item.unconfirmed {
        return Err(AppError::Conflict(
            "Confirm this witness statement with the witness before assessing it".into(),
            vec![],
        ));
    }
    if item.replaced {
        return Err(AppError::Conflict(
            "The learner has resubmitted this evidence; assess the newest version".into(),
            vec![],
        ));
    }
    let mut ids = Vec::new();
    let mut changes_without_reason = Vec::new();
    let mut to_record = Vec::new();
    for (criterion, outcome, feedback, confirmed, reason) in checked {
        let current = sqlx::query!(
            "SELECT id, outcome, feedback FROM decisions WHERE evidence_id = $1 AND criterion_id = $2 ORDER BY seq DESC LIMIT 1",
            evidence_id,
            criterion.id
        )
        .fetch_optional(&mut *conn)
        .await?;
        if let Some(current) = &current {
            if current.outcome == outcome.as_str() && current.feedback == feedback {
                // The same judgement again (a double submit): nothing new to record.
                ids.push(current.id);
                continue;
            }
            if reason.is_empty() {
                let was = Outcome::parse(&current.outcome).map(Outcome::label).unwrap_or("");
                changes_without_reason.push(FieldError::new(
                    format!("reason-{}", criterion.number),
                    format!(
                        "Give a reason for changing your earlier judgement on {} (it was: {was}); both stay in the history",
                        criterion.number
                    ),
                ));
            }
        }
        to_record.push((criterion, outcome, feedback, confirmed, reason, current.map(|c| c.id)));
    }
    if !changes_without_reason.is_empty() {
        return Err(AppError::Invalid(changes_without_reason));
    }
    for (criterion, outcome, feedback, confirmed, reason, supersedes) in to_record {
        let mapped_now = crate::evidence::ensure_mapped(conn, evidence_id, criterion.id, actor.id).await?;
        let id = Uuid::new_v4();
        sqlx::query!(
            "INSERT INTO decisions (id, evidence_id, criterion_id, outcome, feedback, assessor_id, supersedes,
                                    confirmed_valid, confirmed_authentic, confirmed_current, confirmed_sufficient,
                                    change_reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            id,
            evidence_id,
            criterion.id,
            outcome.as_str(),
            feedback,
            actor.id,
            supersedes,
            confirmed.valid,
            confirmed.authentic,
            confirmed.current,
            confirmed.sufficient,
            reason
        )
        .execute(&mut *conn)
        .await?;
        audit::record(
            conn,
            Event::new(Some(actor), "decision.recorded", "evidence", Some(evidence_id))
                .as_role(access.relation.role())
                .enrolment(access.id)
                .details(serde_json::json!({
                    "decision_id": id,
                    "criterion": criterion.number,
                    "outcome": outcome,
                    "feedback": feedback,
                    "confirmed": confirmed,
                    "change_reason": reason,
                    "supersedes": supersedes,
                    "criterion_added_by_assessor": mapped_now,
                })),
        )
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CriterionProgress {
    pub number: String,
    pub text: String,
    pub guidance: String,
    pub status: CriterionStatus,
    pub evidence_count: i64,
}

impl CriterionProgress {
    pub fn status_value(&self) -> &'static str {
        self.status.as_str()
    }
    pub fn status_label(&self) -> &'static str {
        self.status.label()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OutcomeProgress {
    pub number: i32,
    pub title: String,
    pub criteria: Vec<CriterionProgress>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Progress {
    pub enrolment_id: Uuid,
    pub unit: String,
    pub met: usize,
    pub total: usize,
    pub criteria: Vec<CriterionProgress>,
    pub outcomes: Vec<OutcomeProgress>,
}

/// Each criterion's status: met if any item's current decision says so; otherwise awaiting
/// assessment if an item mapped to it has no decision yet; otherwise not yet met if judged so;
/// otherwise not started.
pub async fn progress(conn: &mut PgConnection, enrolment_id: Uuid, unit: &Unit) -> AppResult<Progress> {
    // Each mapping of a submitted item, with its current judgement (kept by the database,
    // migration 0022: no pass over every decision of the portfolio).
    let rows = sqlx::query!(
        r#"SELECT c.number, j.outcome AS "outcome?", count(*) AS "mappings!"
           FROM evidence_items e
           JOIN evidence_criteria m ON m.evidence_id = e.id
           JOIN criteria c ON c.id = m.criterion_id
           LEFT JOIN current_judgements j ON j.evidence_id = m.evidence_id AND j.criterion_id = m.criterion_id
           WHERE e.enrolment_id = $1 AND e.status = 'submitted'
           GROUP BY c.number, j.outcome"#,
        enrolment_id
    )
    .fetch_all(conn)
    .await?;
    let mapped = rows.iter().map(|r| (r.number.as_str(), r.outcome.as_deref().and_then(Outcome::parse), r.mappings));
    Ok(progress_of(enrolment_id, unit, mapped))
}

/// A whole portfolio read once: its items, their current judgements and the progress they make
/// (the portfolio page's item states and the sign-off checklist come from these too).
pub async fn load_portfolio(
    conn: &mut PgConnection,
    enrolment_id: Uuid,
    unit: &Unit,
) -> AppResult<(Vec<crate::evidence::EvidenceItem>, Judgements, Progress)> {
    let items = crate::evidence::list_for_enrolment(&mut *conn, enrolment_id).await?;
    let judgements = current_judgements(conn, &items.iter().map(|i| i.id).collect::<Vec<_>>()).await?;
    let progress = progress_of_items(enrolment_id, unit, &items, &judgements);
    Ok((items, judgements, progress))
}

/// One enrolment's portfolio as its pages show it, whoever reads it: kept by each server process
/// until it hears the portfolio changed (src/db/changes.rs, migration 0025).
pub struct PortfolioView {
    pub learner_id: Uuid,
    pub assessor_id: Uuid,
    pub iqa_id: Option<Uuid>,
    pub unit: Unit,
    pub signed: Option<sign_off::SignOff>,
    pub summary: EnrolmentSummary,
    pub items: Vec<EvidenceItem>,
    pub judged: Judgements,
    pub progress: Progress,
    pub readiness: sufficiency::Readiness,
    /// The day it was read: the summary counts working days up to then.
    pub as_of: chrono::NaiveDate,
}

impl PortfolioView {
    pub async fn load(conn: &mut PgConnection, access: &EnrolmentAccess) -> AppResult<PortfolioView> {
        let as_of = Utc::now().date_naive();
        let id = access.id;
        let unit = crate::catalogue::find_unit(&mut *conn, None, Some(access.unit_id)).await?;
        let signed = sign_off::in_force(&mut *conn, id).await?;
        let summary = summaries(&mut *conn, &[id]).await?.pop().ok_or(AppError::NotFound("enrolment"))?;
        let (items, judged, progress) = load_portfolio(&mut *conn, id, &unit).await?;
        let readiness = sufficiency::readiness_of(&mut *conn, id, &unit, &progress, &items, &judged).await?;
        Ok(PortfolioView {
            learner_id: access.learner_id,
            assessor_id: access.assessor_id,
            iqa_id: access.iqa_id,
            unit,
            signed,
            summary,
            items,
            judged,
            progress,
            readiness,
            as_of,
        })
    }

    /// How `actor` stands to this portfolio as its learner, assessor or IQA, as the access policy
    /// decides it from the enrolment alone (`policy::enrolment`); `None` for anyone else.
    pub fn relation_of(&self, actor: &Actor) -> Option<crate::auth::policy::Relation> {
        crate::auth::policy::direct_relation(actor, self.learner_id, self.assessor_id, self.iqa_id)
    }
}

impl crate::db::changes::OfDay for PortfolioView {
    fn as_of(&self) -> chrono::NaiveDate {
        self.as_of
    }
}

/// `actor`'s view of enrolment `id` for `action`. From memory when this process keeps the
/// portfolio and the actor is its learner, assessor or IQA (the policy needs only the enrolment
/// then); otherwise through the access policy (which records a verifier's view), then from
/// memory or the database.
pub async fn portfolio_for(
    state: &crate::AppState,
    actor: &Actor,
    id: Uuid,
    action: crate::auth::policy::Action,
    viewed: crate::auth::policy::Viewed,
) -> AppResult<(crate::auth::policy::Relation, std::sync::Arc<PortfolioView>)> {
    if let Some(view) = state.changes.kept_portfolio(id)
        && let Some(relation) = view.relation_of(actor)
        && relation.allows(action)
    {
        return Ok((relation, view));
    }
    // Before the access check: a change to the enrolment heard from now on keeps the view from
    // being kept (src/db/changes.rs).
    let since = state.changes.since_portfolio(id);
    let mut tx = state.begin(actor).await?;
    let access = crate::auth::policy::enrolment(&state.views, &mut tx, actor, id, action, viewed).await?;
    let view = state
        .changes
        .portfolio(since, id, async {
            PortfolioView::load(&mut tx, &access).await.map(|view| Some(std::sync::Arc::new(view)))
        })
        .await?
        .ok_or(AppError::NotFound("enrolment"))?;
    tx.commit().await?;
    Ok((access.relation, view))
}

/// Progress from a portfolio already loaded: its items and their current judgements.
pub fn progress_of_items(
    enrolment_id: Uuid,
    unit: &Unit,
    items: &[crate::evidence::EvidenceItem],
    judgements: &Judgements,
) -> Progress {
    let mapped = items.iter().filter(|item| item.status == "submitted").flat_map(|item| {
        let judged = judgements.get(&item.id);
        item.criteria.iter().map(move |c| (c.as_str(), judged.and_then(|j| j.get(c)).copied(), 1))
    });
    progress_of(enrolment_id, unit, mapped)
}

/// Progress from the mappings of the portfolio's submitted items: (criterion number, current
/// judgement if any, how many mappings have that pair).
fn progress_of<'a>(
    enrolment_id: Uuid,
    unit: &Unit,
    mapped: impl IntoIterator<Item = (&'a str, Option<Outcome>, i64)>,
) -> Progress {
    #[derive(Default)]
    struct Tally {
        evidence_count: i64,
        met: bool,
        awaiting: bool,
        not_yet: bool,
    }
    let mut tallies: std::collections::HashMap<&str, Tally> = Default::default();
    for (criterion, outcome, mappings) in mapped {
        let tally = tallies.entry(criterion).or_default();
        tally.evidence_count += mappings;
        match outcome {
            Some(Outcome::Met) => tally.met = true,
            Some(Outcome::NotYet) => tally.not_yet = true,
            None => tally.awaiting = true,
        }
    }
    let criteria: Vec<CriterionProgress> = unit
        .criteria()
        .map(|c| {
            let row = tallies.get(c.number.as_str());
            let status = match row {
                Some(r) if r.met => CriterionStatus::Met,
                Some(r) if r.awaiting => CriterionStatus::Submitted,
                Some(r) if r.not_yet => CriterionStatus::NotYet,
                _ => CriterionStatus::NotStarted,
            };
            CriterionProgress {
                number: c.number.clone(),
                text: c.text.clone(),
                guidance: c.guidance.clone(),
                status,
                evidence_count: row.map(|r| r.evidence_count).unwrap_or(0),
            }
        })
        .collect();
    let outcomes = unit
        .outcomes
        .iter()
        .map(|o| OutcomeProgress {
            number: o.number,
            title: o.title.clone(),
            criteria: criteria.iter().filter(|p| o.criteria.iter().any(|c| c.number == p.number)).cloned().collect(),
        })
        .collect();
    Progress {
        enrolment_id,
        unit: unit.summary.code.clone(),
        met: criteria.iter().filter(|c| c.status == CriterionStatus::Met).count(),
        total: criteria.len(),
        criteria,
        outcomes,
    }
}

/// One line of a dashboard: a learner on a unit and where they stand.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EnrolmentSummary {
    pub id: Uuid,
    pub learner_id: Uuid,
    pub learner_name: String,
    pub learner_email: String,
    pub unit_code: String,
    pub unit_title: String,
    pub assessor_name: String,
    pub iqa_name: Option<String>,
    pub criteria_total: i64,
    pub criteria_met: i64,
    pub items_awaiting: i64,
    pub oldest_awaiting: Option<DateTime<Utc>>,
    /// Working days (Monday to Friday, bank holidays not counted out) the oldest item has waited.
    pub working_days_waiting: i64,
    /// The centre's turnaround: evidence waiting longer is overdue.
    pub due_working_days: i32,
    pub overdue: bool,
    /// A sign-off is in force (signed and not reopened).
    pub signed_off: bool,
    /// The learner has countersigned the sign-off in force.
    pub countersigned: bool,
    pub last_activity: Option<DateTime<Utc>>,
}

impl EnrolmentSummary {
    /// Where the unit's sign-off stands: `complete`, `awaiting_countersignature`, `ready` (every
    /// criterion met: the assessor can check the checklist and sign off) or `open`.
    pub fn sign_off_state(&self) -> &'static str {
        match (self.signed_off, self.countersigned) {
            (true, true) => "complete",
            (true, false) => "awaiting_countersignature",
            _ if self.criteria_total > 0 && self.criteria_met == self.criteria_total => "ready",
            _ => "open",
        }
    }

    pub fn waiting_since(&self) -> String {
        self.oldest_awaiting.map(|t| t.format("%d %b %Y").to_string()).unwrap_or_default()
    }
    pub fn last_activity_text(&self) -> String {
        self.last_activity.map(|t| t.format("%d %b %Y").to_string()).unwrap_or_else(|| "None yet".into())
    }
}

/// The summaries of enrolments `ids`, in the dashboards' order (the oldest waiting item first,
/// then by learner): those this process keeps, and the others read in one statement, then kept
/// until their portfolio changes (src/db/changes.rs).
pub async fn kept_summaries(state: &crate::AppState, actor: &Actor, ids: &[Uuid]) -> AppResult<Vec<EnrolmentSummary>> {
    let mut found = state
        .changes
        .summaries(ids, |missing| async move {
            let mut tx = state.begin(actor).await?;
            let read = summaries(&mut tx, &missing).await?;
            tx.commit().await?;
            Ok::<_, AppError>(read)
        })
        .await?;
    // As `summaries` orders them (names compare byte by byte there too: the cluster has no locale).
    found.sort_by(|a, b| {
        (a.oldest_awaiting.is_none(), a.oldest_awaiting, &a.learner_name, &a.unit_code, a.id).cmp(&(
            b.oldest_awaiting.is_none(),
            b.oldest_awaiting,
            &b.learner_name,
            &b.unit_code,
            b.id,
        ))
    });
    Ok(found)
}

/// Summaries for the given enrolments, those with the oldest work waiting first.
pub async fn summaries(conn: &mut PgConnection, ids: &[Uuid]) -> AppResult<Vec<EnrolmentSummary>> {
    // Planned afresh for each call this statement takes 4-13 ms to plan and 1 ms to run:
    // PostgreSQL keeps choosing a custom plan for the `ANY($1)` list. The generic plan, made once
    // per connection with its prepared statement, serves one enrolment and a caseload of fifty
    // alike (BENCHMARKS.md, fix 6).
    crate::db::with_planner_setting(conn, "plan_cache_mode", "force_generic_plan", async |conn| {
    Ok(sqlx::query_as!(
        EnrolmentSummary,
        r#"WITH latest_sign_off AS (
               SELECT DISTINCT ON (s.enrolment_id) s.enrolment_id,
                      (r.sign_off_id IS NULL) AS in_force, (cs.sign_off_id IS NOT NULL) AS countersigned
               FROM sign_offs s
               LEFT JOIN sign_off_reopenings r ON r.sign_off_id = s.id
               LEFT JOIN sign_off_countersignatures cs ON cs.sign_off_id = s.id
               WHERE s.enrolment_id = ANY($1)
               ORDER BY s.enrolment_id, s.version DESC)
           SELECT en.id, en.learner_id, l.name AS learner_name, l.email AS learner_email, u.code AS unit_code,
                  u.title AS unit_title, a.name AS assessor_name, q.name AS "iqa_name?",
                  (SELECT count(*) FROM criteria c WHERE c.unit_id = en.unit_id) AS "criteria_total!",
                  -- One probe per criterion of the unit (22 for CC20), not a pass over every
                  -- met judgement of the portfolio (about 300 for a full one).
                  (SELECT count(*) FROM criteria c WHERE c.unit_id = en.unit_id
                     AND EXISTS (SELECT 1 FROM current_judgements j
                                 WHERE j.enrolment_id = en.id AND j.criterion_id = c.id AND j.outcome = 'met'))
                    AS "criteria_met!",
                  w.n AS "items_awaiting!",
                  w.oldest AS "oldest_awaiting?",
                  wd.days AS "working_days_waiting!",
                  c.assessment_due_working_days AS due_working_days,
                  (wd.days > c.assessment_due_working_days) AS "overdue!",
                  COALESCE(so.in_force, false) AS "signed_off!",
                  COALESCE(so.in_force AND so.countersigned, false) AS "countersigned!",
                  (SELECT ev.occurred_at FROM audit_events ev WHERE ev.enrolment_id = en.id
                     AND ev.action NOT LIKE 'verifier.%' ORDER BY ev.seq DESC LIMIT 1) AS last_activity
           FROM enrolments en
           JOIN centres c ON c.id = en.centre_id
           -- Kept up to date by the database as items, mappings and decisions change (migration 0022).
           CROSS JOIN LATERAL (SELECT count(*) AS n, min(aw.created_at) AS oldest FROM awaiting_assessment aw
                               WHERE aw.enrolment_id = en.id) w
           LEFT JOIN latest_sign_off so ON so.enrolment_id = en.id
           -- Working days (Monday to Friday) since the oldest waiting item arrived: five a whole
           -- week, then the weekdays of the days left over.
           CROSS JOIN LATERAL (SELECT greatest(current_date - w.oldest::date, 0) AS span) sp
           CROSS JOIN LATERAL (
               SELECT COALESCE(sp.span / 7 * 5 + (
                   SELECT count(*) FROM generate_series(w.oldest::date + 1 + sp.span / 7 * 7, current_date, interval '1 day') g(day)
                   WHERE extract(isodow FROM g.day) < 6), 0) AS days) wd
           JOIN users l ON l.id = en.learner_id
           JOIN units u ON u.id = en.unit_id
           JOIN users a ON a.id = en.assessor_id
           LEFT JOIN users q ON q.id = en.iqa_id
           WHERE en.id = ANY($1)
           ORDER BY w.oldest ASC NULLS LAST, l.name"#,
        ids
    )
    .fetch_all(conn)
    .await?)
    })
    .await
}
