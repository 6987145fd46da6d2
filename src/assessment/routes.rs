//! The portfolio page (criteria by learning outcome, evidence list), recording decisions, and
//! the enrolment and progress API.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{DecisionInput, EnrolmentSummary, Progress, record_decisions};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::Access;
use crate::auth::policy::{self, Action, Relation, Viewed};
use crate::catalogue;
use crate::error::{AppError, AppResult, Problem};
use crate::evidence::{self, EvidenceItem};
use crate::web::pagination::{Order, Page, PageQuery, PageRequest, Position};
use crate::web::route_table::Routes;
use crate::web::{Nav, render_sized};

pub fn router() -> Routes {
    Routes::new()
        .get("/enrolments/{id}", Access::Enrolment(Action::View), portfolio_page)
        .post("/evidence/{id}/decisions", Access::Evidence(Action::Assess), decide_form)
        .api(Access::SignedIn, routes!(list_api))
        .api(Access::Enrolment(Action::View), routes!(progress_api))
        .api(Access::Evidence(Action::Assess), routes!(decide_api))
}

struct EvidenceRow<'a> {
    item: &'a EvidenceItem,
    /// `draft`, `confirming` (a witness statement the assessor has not confirmed), `awaiting`,
    /// `assessed` or `replaced` (a newer version exists).
    state: &'static str,
}

impl EvidenceRow<'_> {
    fn state_label(&self) -> &'static str {
        match self.state {
            "draft" => "Draft",
            "confirming" => "Awaiting assessor confirmation",
            "awaiting" => "Awaiting assessment",
            "replaced" => "Replaced by a newer version",
            _ => "Assessed",
        }
    }

    fn state_tag(&self) -> &'static str {
        match self.state {
            "draft" | "replaced" => "not_started",
            "awaiting" | "confirming" => "submitted",
            _ => "met",
        }
    }
}

/// The evidence list's filters, from the query string.
#[derive(Debug, Default, Deserialize)]
struct EvidenceFilter {
    #[serde(default)]
    criterion: String,
    #[serde(default)]
    method: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Which page of the matching items, from 1.
    #[serde(default)]
    page: String,
}

/// Items on one page of the portfolio's evidence list.
const EVIDENCE_PER_PAGE: usize = 25;

impl EvidenceFilter {
    /// The page asked for: 1 unless given.
    fn page_number(&self) -> AppResult<usize> {
        if self.page.is_empty() {
            return Ok(1);
        }
        self.page
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|page| *page >= 1)
            .ok_or_else(|| AppError::invalid("page", "The page must be a whole number, from 1"))
    }

    /// The link to `page` of the list with these filters.
    fn link(&self, enrolment: &Uuid, page: usize) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("criterion", &self.criterion),
            ("method", &self.method),
            ("state", &self.state),
            ("from", &self.from),
            ("to", &self.to),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        query.append_pair("page", &page.to_string());
        format!("/enrolments/{enrolment}?{}#evidence", query.finish())
    }

    fn is_empty(&self) -> bool {
        self.criterion.is_empty()
            && self.method.is_empty()
            && self.state.is_empty()
            && self.from.is_empty()
            && self.to.is_empty()
    }

    fn keeps(&self, row: &EvidenceRow) -> bool {
        let date = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
        let last_day = row.item.occurred_until.unwrap_or(row.item.occurred_on);
        (self.criterion.is_empty() || row.item.criteria.contains(&self.criterion))
            && (self.method.is_empty() || row.item.method.as_str() == self.method)
            && (self.state.is_empty() || row.state == self.state)
            && date(&self.from).is_none_or(|from| last_day >= from)
            && date(&self.to).is_none_or(|to| row.item.occurred_on <= to)
    }
}

struct Choice {
    value: &'static str,
    label: &'static str,
}

#[derive(Template)]
#[template(path = "assessment/portfolio.html")]
struct PortfolioPage<'a> {
    nav: Nav,
    summary: &'a EnrolmentSummary,
    progress: &'a Progress,
    /// The page shown of the items the filters keep.
    evidence: Vec<EvidenceRow<'a>>,
    evidence_total: usize,
    /// How many items the filters keep, and which of them are shown: `page` of `pages`, from
    /// item `first` (counted from 1).
    matched: usize,
    page: usize,
    pages: usize,
    first: usize,
    /// The learner's unsubmitted items (only the learner is shown drafts).
    drafts: Vec<&'a EvidenceItem>,
    filter: EvidenceFilter,
    methods: Vec<Choice>,
    states: Vec<Choice>,
    is_learner: bool,
    is_verifier: bool,
    /// The learner's assessor: records observations and discussions.
    is_assessor: bool,
    percent: usize,
    /// The sign-off checklist, and the sign-off in force (the record is locked while it is).
    readiness: &'a super::sufficiency::Readiness,
    signed: Option<&'a super::sign_off::SignOff>,
}

impl PortfolioPage<'_> {
    /// Whether the reader has a sign-off step to take now.
    fn sign_off_prompt(&self) -> bool {
        match &self.signed {
            None => self.is_assessor && self.readiness.ready,
            Some(signed) => self.is_learner && signed.countersignature.is_none(),
        }
    }

    fn sign_off_link(&self) -> &'static str {
        match (&self.signed, self.sign_off_prompt()) {
            (None, true) => "Sign off this unit",
            (Some(_), true) => "Countersign the sign-off",
            _ => "Sign-off and its history",
        }
    }

    /// The last item shown, counted from 1.
    fn last(&self) -> usize {
        self.first + self.evidence.len() - 1
    }

    fn page_link(&self, page: usize) -> String {
        self.filter.link(&self.summary.id, page)
    }

    fn count(&self, status: &str) -> usize {
        self.progress.criteria.iter().filter(|c| c.status.as_str() == status).count()
    }
}

async fn portfolio_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(filter): Query<EvidenceFilter>,
) -> AppResult<Response> {
    let (relation, view) = super::portfolio_for(&state, &actor, id, Action::View, Viewed::Portfolio).await?;
    let is_learner = relation == Relation::Learner;
    let judged = &view.judged;
    let mut rows = Vec::new();
    for item in &view.items {
        // Drafts are the learner's alone.
        if item.is_draft() && !is_learner {
            continue;
        }
        let unjudged = item.criteria.iter().any(|c| !judged.get(&item.id).is_some_and(|done| done.contains_key(c)));
        let state = if item.is_draft() {
            "draft"
        } else if item.next_version.is_some() {
            "replaced"
        } else if item.awaits_witness_confirmation() {
            "confirming"
        } else if unjudged {
            "awaiting"
        } else {
            "assessed"
        };
        rows.push(EvidenceRow { state, item });
    }
    let evidence_total = rows.len();
    let drafts = rows.iter().filter(|row| row.item.is_draft()).map(|row| row.item).collect();
    rows.retain(|row| filter.keeps(row));
    let matched = rows.len();
    let pages = matched.div_ceil(EVIDENCE_PER_PAGE).max(1);
    // Past the last page (the list got shorter since the link was made): the last page.
    let page = filter.page_number()?.min(pages);
    let first = (page - 1) * EVIDENCE_PER_PAGE;
    let rows: Vec<EvidenceRow> = rows.into_iter().skip(first).take(EVIDENCE_PER_PAGE).collect();
    let progress = &view.progress;
    let percent = (progress.met * 100).checked_div(progress.total).unwrap_or(0);
    // Sized for the page at once: it grows by half a kilobyte an item.
    let capacity = 24 * 1024 + 512 * rows.len();
    let page = PortfolioPage {
        nav,
        summary: &view.summary,
        progress,
        evidence: rows,
        evidence_total,
        matched,
        page,
        pages,
        first: first + 1,
        drafts,
        filter,
        methods: evidence::Method::ALL.into_iter().map(|m| Choice { value: m.as_str(), label: m.label() }).collect(),
        states: [
            ("confirming", "Awaiting assessor confirmation"),
            ("awaiting", "Awaiting assessment"),
            ("assessed", "Assessed"),
            ("replaced", "Replaced"),
            ("draft", "Draft"),
        ]
        .into_iter()
        .filter(|(value, _)| is_learner || *value != "draft")
        .map(|(value, label)| Choice { value, label })
        .collect(),
        is_learner,
        is_verifier: relation == Relation::Verifier,
        is_assessor: relation == Relation::Assessor,
        percent,
        readiness: &view.readiness,
        signed: view.signed.as_ref(),
    };
    render_sized(StatusCode::OK, &page, capacity)
}

/// Form fields `outcome-1.3=met|not_yet` and `feedback-1.3=...`, one pair per criterion.
fn decisions_from_form(fields: &[(String, String)]) -> Vec<DecisionInput> {
    let value = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.trim().to_string());
    let confirmed: Vec<String> =
        fields.iter().filter(|(n, v)| n == "confirmed" && !v.is_empty()).map(|(_, v)| v.clone()).collect();
    let mut inputs: Vec<DecisionInput> = fields
        .iter()
        .filter_map(|(name, outcome)| {
            let criterion = name.strip_prefix("outcome-").filter(|c| *c != "added")?;
            if outcome.is_empty() {
                return None;
            }
            Some(DecisionInput {
                criterion: criterion.to_string(),
                outcome: outcome.clone(),
                feedback: value(&format!("feedback-{criterion}")).unwrap_or_default(),
                confirmed: confirmed.clone(),
                reason: value(&format!("reason-{criterion}")).unwrap_or_default(),
            })
        })
        .collect();
    // A criterion the learner did not map, added by the assessor with its decision.
    if let (Some(criterion), Some(outcome)) = (value("add_criterion"), value("outcome-added"))
        && !criterion.is_empty()
        && !outcome.is_empty()
        && !inputs.iter().any(|i| i.criterion == criterion)
    {
        inputs.push(DecisionInput {
            criterion,
            outcome,
            feedback: value("feedback-added").unwrap_or_default(),
            confirmed: confirmed.clone(),
            reason: String::new(),
        });
    }
    inputs
}

async fn decide(state: &AppState, actor: &Actor, evidence_id: Uuid, inputs: &[DecisionInput]) -> AppResult<Vec<Uuid>> {
    let mut tx = state.begin(actor).await?;
    let access =
        policy::evidence(&state.views, &mut tx, actor, evidence_id, Action::Assess, Viewed::Evidence(evidence_id))
            .await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let ids = record_decisions(&mut tx, actor, &access, &unit, evidence_id, inputs).await?;
    crate::notifications::decisions_recorded(&mut tx, actor, &access, evidence_id).await?;
    tx.commit().await?;
    Ok(ids)
}

async fn decide_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let inputs = decisions_from_form(&fields);
    match decide(&state, &actor, id, &inputs).await {
        Ok(_) => Ok(Redirect::to(&format!("/evidence/{id}?assessed=1")).into_response()),
        Err(AppError::Invalid(errors)) => {
            evidence::detail_with_decision_errors(&state, nav, &actor, id, errors, fields).await
        }
        Err(other) => Err(other),
    }
}

/// The assessor's judgement on one criterion for an evidence item: `met` (with all four VACS
/// confirmations) or `not_yet`, with feedback. A changed judgement supersedes the current one
/// and needs a reason.
#[utoipa::path(
    post,
    path = "/api/v1/evidence/{id}/decisions",
    params(("id" = Uuid, Path, description = "The evidence item")),
    request_body = DecisionInput,
    responses(
        (status = 201, description = "Recorded", body = RecordedDecision),
        (status = 409, description = "The item is not awaiting assessment (a draft, or replaced by a newer version)", body = Problem),
        (status = 422, description = "The criterion, outcome, confirmations or reason are not accepted", body = Problem),
    )
)]
async fn decide_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(input): Json<DecisionInput>,
) -> AppResult<(StatusCode, Json<RecordedDecision>)> {
    let ids = decide(&state, &actor, id, std::slice::from_ref(&input)).await?;
    let mut conn = state.begin(&actor).await?;
    let item = evidence::load(&mut conn, id).await?;
    let unit_id =
        policy::evidence(&state.views, &mut conn, &actor, id, Action::View, Viewed::Evidence(id)).await?.unit_id;
    let unit = catalogue::find_unit(&mut conn, None, Some(unit_id)).await?;
    let decisions = super::decisions_for_evidence(&mut conn, &unit, &item).await?;
    let decision = decisions.iter().flat_map(|c| c.history.iter()).find(|d| Some(&d.id) == ids.first());
    Ok((
        StatusCode::CREATED,
        Json(RecordedDecision {
            decision: decision.cloned(),
            criterion: input.criterion.trim().to_string(),
            evidence_id: id,
        }),
    ))
}

/// A judgement just recorded.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct RecordedDecision {
    decision: Option<super::DecisionInfo>,
    criterion: String,
    evidence_id: Uuid,
}

/// The enrolments the caller may see: their own, their caseload's, those they quality-assure
/// or verify, with where each stands; by learner and unit, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the enrolments", body = Page<EnrolmentSummary>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn list_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<EnrolmentSummary>>> {
    let request = PageRequest::try_from(&query)?;
    let mut conn = state.begin(&actor).await?;
    let ids = policy::visible_enrolments(&mut conn, &actor).await?;
    let summaries = super::summaries(&mut conn, &ids).await?;
    Ok(Json(request.page_of(summaries, Order::Oldest, |e| {
        Position::name(&format!("{}\u{1}{}", e.learner_name, e.unit_code), e.id)
    })))
}

/// Each criterion's status in the learner's portfolio (`not_started`, `submitted`, `not_yet`,
/// `met`), and by learning outcome.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/progress",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "The progress", body = Progress))
)]
async fn progress_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Json<Progress>> {
    // The same portfolio the page shows, kept in memory until it changes.
    let (_, view) = super::portfolio_for(&state, &actor, id, Action::View, Viewed::Portfolio).await?;
    Ok(Json(view.progress.clone()))
}
