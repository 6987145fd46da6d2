//! The audit trail page and API: an administrator's centre, or what a verifier's grants cover,
//! filtered by who, what, when and learner, newest first, fifty a page by sequence number, with
//! the chain check at the top. A verifier's reading of it is itself recorded.

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;
use uuid::Uuid;

use super::checks::{self, ChainCheck};
use super::trail::{self, Filter, Learner, Person};
use super::{BrokenEvent, Event, RecordedEvent, Verification};
use crate::AppState;
use crate::auth::policy::{self, Access};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    Routes::new()
        .get("/audit", Access::AuditCheck, trail_page)
        .post("/audit/check", Access::AuditCheck, check_form)
        .api(Access::AuditCheck, routes!(trail_api))
        .api(Access::AuditCheck, routes!(check_api))
}

/// The filters as typed: every field may be empty.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrailQuery {
    /// Who did it: a person's id.
    #[serde(default)]
    #[param(required = false)]
    who: String,
    /// What: an action (`decision.recorded`), or the start of one ending in a dot (`evidence.`).
    #[serde(default)]
    #[param(required = false)]
    what: String,
    /// On or after this day (YYYY-MM-DD).
    #[serde(default)]
    #[param(required = false)]
    from: String,
    /// On or before this day (YYYY-MM-DD).
    #[serde(default)]
    #[param(required = false)]
    to: String,
    /// Which learner: an enrolment's id.
    #[serde(default)]
    #[param(required = false)]
    learner: String,
    /// Events older than this sequence number: the previous page's `next`.
    #[serde(default)]
    #[param(required = false)]
    before: String,
    /// Set by the page after "Check the whole chain now"; ignored otherwise.
    #[serde(default)]
    #[param(required = false)]
    checked: String,
}

impl TrailQuery {
    fn parse(&self) -> Result<Filter, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut id = |field: &str, text: &str, message: &str| match text.trim() {
            "" => None,
            text => text.parse::<Uuid>().map_err(|_| errors.push(FieldError::new(field, message))).ok(),
        };
        let actor = id("who", &self.who, "Choose a person from the list");
        let enrolment = id("learner", &self.learner, "Choose a learner from the list");
        let mut date = |field: &str, text: &str| match text.trim() {
            "" => None,
            text => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| errors.push(FieldError::new(field, "Enter a real date, like 2026-12-01")))
                .ok(),
        };
        let from = date("from", &self.from);
        let to = date("to", &self.to);
        if let (Some(from), Some(to)) = (from, to)
            && to < from
        {
            errors.push(FieldError::new("to", "The end date must be the same as or after the start date"));
        }
        let before = match self.before.trim() {
            "" => None,
            text => {
                text.parse::<i64>().map_err(|_| errors.push(FieldError::new("before", "Not a page of the trail"))).ok()
            }
        };
        let action = Some(self.what.trim().to_string()).filter(|a| !a.is_empty());
        if errors.is_empty() { Ok(Filter { actor, action, from, to, enrolment, before }) } else { Err(errors) }
    }

    /// The query string for the next page: the same filters, older events.
    fn next_page(&self, before: i64) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("who", &self.who)
            .append_pair("what", &self.what)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("learner", &self.learner)
            .append_pair("before", &before.to_string())
            .finish()
    }

    /// The same filters from the newest event, for "Check again".
    fn first_page(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("who", &self.who)
            .append_pair("what", &self.what)
            .append_pair("from", &self.from)
            .append_pair("to", &self.to)
            .append_pair("learner", &self.learner)
            .finish()
    }
}

/// Records a verifier's reading of the trail, against the learner they filtered by or each
/// centre their access covers, in a transaction of its own (theirs is read-only).
async fn record_verifier_view(
    state: &AppState,
    actor: &Actor,
    scope: &trail::Scope,
    filter: &Filter,
    query: &TrailQuery,
) -> AppResult<()> {
    if !actor.has_role(Role::Eqa) || actor.has_role(Role::Admin) {
        return Ok(());
    }
    let details = serde_json::json!({
        "who": query.who, "what": query.what, "from": query.from, "to": query.to, "before": query.before,
    });
    let mut tx = state.pool.begin().await?;
    let event = || {
        Event::new(Some(actor), "verifier.viewed_audit_trail", "audit_trail", None)
            .as_role(Role::Eqa)
            .details(details.clone())
    };
    match filter.enrolment.filter(|id| scope.enrolments.contains(id)) {
        Some(enrolment) => {
            super::record(&mut tx, event().enrolment(enrolment)).await?;
        }
        None => {
            for centre in policy::verifier_centres(&mut tx, actor).await? {
                super::record(&mut tx, event().centre(centre)).await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

#[derive(Template)]
#[template(path = "audit/trail.html")]
struct TrailPage {
    nav: Nav,
    errors: Vec<FieldError>,
    query: TrailQuery,
    people: Vec<Person>,
    actions: Vec<String>,
    learners: Vec<Learner>,
    events: Vec<RecordedEvent>,
    next: Option<String>,
    check_again: String,
    /// The events shown, checked against their hashes and neighbours: the first break, if any.
    shown_broken: Option<BrokenEvent>,
    /// The latest whole-chain check, if one has run.
    whole_chain: Option<ChainCheck>,
    /// Just asked for (`?checked=1` after the button).
    just_checked: bool,
}

async fn trail_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Query(query): Query<TrailQuery>,
) -> AppResult<Response> {
    let mut conn = state.begin(&actor).await?;
    let scope = policy::audit_scope(&mut conn, &actor).await?;
    let whole_chain = checks::latest(&mut conn).await?;
    let (people, actions, learners) = trail::choices(&mut conn, &scope).await?;
    let (status, errors, events, next, shown_broken) = match query.parse() {
        Ok(filter) => {
            let page = trail::page(&mut conn, &scope, &filter).await?;
            let shown: Vec<i64> = page.events.iter().map(|e| e.seq).collect();
            let shown_broken = super::check_shown(&mut conn, &shown).await?;
            conn.commit().await?;
            record_verifier_view(&state, &actor, &scope, &filter, &query).await?;
            (StatusCode::OK, vec![], page.events, page.next.map(|seq| query.next_page(seq)), shown_broken)
        }
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, vec![], None, None),
    };
    let check_again = query.first_page();
    let just_checked = query.checked == "1";
    render(
        status,
        &TrailPage {
            nav,
            errors,
            query,
            people,
            actions,
            learners,
            events,
            next,
            check_again,
            shown_broken,
            whole_chain,
            just_checked,
        },
    )
}

/// Whoever may read some of the trail may have the whole chain checked.
async fn may_check(state: &AppState, actor: &Actor) -> AppResult<()> {
    let mut conn = state.pool.acquire().await?;
    policy::audit_scope(&mut conn, actor).await.map(|_| ())
}

/// "Check the whole chain now": reads every event, records the result, and shows the trail.
async fn check_form(State(state): State<AppState>, actor: Actor) -> AppResult<Response> {
    may_check(&state, &actor).await?;
    checks::run(&state.pool, Some(&actor)).await?;
    Ok(Redirect::to("/audit?checked=1").into_response())
}

/// Checks the whole chain now (every event's hash, in order) and records the check; the trail
/// page and `GET /api/v1/audit` show the latest.
#[utoipa::path(
    post,
    path = "/api/v1/audit/checks",
    responses(
        (status = 201, description = "The check, recorded: whether every event's hash matches, and the first that does not", body = ChainCheck),
        (status = 403, description = "Only administrators and external verifiers with current access can have the chain checked", body = Problem),
    )
)]
async fn check_api(State(state): State<AppState>, actor: Actor) -> AppResult<(StatusCode, Json<ChainCheck>)> {
    may_check(&state, &actor).await?;
    Ok((StatusCode::CREATED, Json(checks::run(&state.pool, Some(&actor)).await?)))
}

#[derive(Serialize, utoipa::ToSchema)]
struct TrailResponse {
    events: Vec<RecordedEvent>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    next: Option<i64>,
    /// The events of this page checked against their hashes and their neighbours' links: the
    /// first that fails, or absent when all hold.
    shown_broken: Option<BrokenEvent>,
    /// The latest whole-chain check (scheduled, or asked for with `POST /api/v1/audit/checks`);
    /// absent before the first.
    whole_chain: Option<ChainCheck>,
}

/// The audit trail the caller may see, newest first, fifty events a page.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    params(TrailQuery),
    responses(
        (status = 200, description = "One page of events", body = TrailResponse),
        (status = 422, description = "A filter is not a person, learner or date", body = Problem),
    )
)]
async fn trail_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<TrailQuery>,
) -> AppResult<Json<TrailResponse>> {
    let filter = query.parse().map_err(AppError::Invalid)?;
    let mut conn = state.begin(&actor).await?;
    let scope = policy::audit_scope(&mut conn, &actor).await?;
    let page = trail::page(&mut conn, &scope, &filter).await?;
    let shown: Vec<i64> = page.events.iter().map(|e| e.seq).collect();
    let shown_broken = super::check_shown(&mut conn, &shown).await?;
    let whole_chain = checks::latest(&mut conn).await?;
    conn.commit().await?;
    record_verifier_view(&state, &actor, &scope, &filter, &query).await?;
    Ok(Json(TrailResponse { events: page.events, next: page.next, shown_broken, whole_chain }))
}

impl BrokenEvent {
    /// A break as one line for the top of the page.
    pub fn line(&self) -> String {
        format!("Broken at event #{}: {}", self.seq, self.reason)
    }
}

impl Verification {
    /// The check as one line for the top of the page.
    pub fn line(&self) -> String {
        match &self.first_broken {
            None if self.events == 0 => "Intact: no events yet".into(),
            None => format!("Intact: {} events, last #{}", self.events, self.events),
            Some(broken) => format!("Broken at event #{}: {}", broken.seq, broken.reason),
        }
    }
}
