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
use sqlx::PgConnection;
use utoipa_axum::routes;

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
    /// Who did it: part of a person's name or email, or their id.
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
    /// Which learner: part of the learner's name or email, or an enrolment's id.
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
    /// The filters, with the name typed for "who" and for "learner" looked up among the people
    /// and learners the reader may see; with what they matched, to show beside the fields.
    async fn resolve(
        &self,
        conn: &mut PgConnection,
        scope: &trail::Scope,
    ) -> AppResult<Result<Resolved, Vec<FieldError>>> {
        let (mut filter, mut errors) = match self.parse() {
            Ok(filter) => (filter, Vec::new()),
            Err(errors) => (Filter::default(), errors),
        };
        let mut resolved = Resolved::default();
        let (who, learner) = (self.who.trim(), self.learner.trim());
        if !who.is_empty() {
            resolved.people = trail::people_matching(conn, scope, who).await?;
            match unmatched("who", who, resolved.people.len(), "No one you can see in the trail", "people") {
                Some(error) => errors.push(error),
                None => filter.actors = Some(resolved.people.iter().map(|p| p.id).collect()),
            }
        }
        if !learner.is_empty() {
            resolved.learners = trail::learners_matching(conn, scope, learner).await?;
            match unmatched("learner", learner, resolved.learners.len(), "No learner you can see", "learners") {
                Some(error) => errors.push(error),
                None => filter.enrolments = Some(resolved.learners.iter().map(|l| l.enrolment_id).collect()),
            }
        }
        if !errors.is_empty() {
            return Ok(Err(errors));
        }
        resolved.filter = filter;
        Ok(Ok(resolved))
    }

    /// The filters that need no lookup: what, the dates and the page.
    fn parse(&self) -> Result<Filter, Vec<FieldError>> {
        let mut errors = Vec::new();
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
        if errors.is_empty() {
            Ok(Filter { actors: None, action, from, to, enrolments: None, before })
        } else {
            Err(errors)
        }
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

/// The refusal for a name typed in a filter when it matched no one, or more than can be shown.
fn unmatched(field: &str, text: &str, found: usize, nobody: &str, plural: &str) -> Option<FieldError> {
    match found as i64 {
        0 => Some(FieldError::new(field, format!("{nobody} matches “{text}”"))),
        n if n > trail::MOST_MATCHES => Some(FieldError::new(
            field,
            format!(
                "More than {} {plural} match “{text}”: type more of their name, or their email",
                trail::MOST_MATCHES
            ),
        )),
        _ => None,
    }
}

/// The filters as looked up: the people and learners the names typed matched.
#[derive(Default)]
struct Resolved {
    filter: Filter,
    people: Vec<Person>,
    learners: Vec<Learner>,
}

/// Records a verifier's reading of the trail, against the learners they filtered by or each
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
        "who": query.who, "what": query.what, "from": query.from, "to": query.to, "learner": query.learner,
        "before": query.before,
    });
    let event = || {
        Event::new(Some(actor), "verifier.viewed_audit_trail", "audit_trail", None)
            .as_role(Role::Eqa)
            .details(details.clone())
    };
    // The learners filtered by were looked up within the reader's scope.
    let events = match &filter.enrolments {
        Some(enrolments) => enrolments.iter().map(|enrolment| event().enrolment(*enrolment)).collect(),
        None => scope.verifier_centres.iter().map(|centre| event().centre(*centre)).collect(),
    };
    state.views.record(events).await?;
    Ok(())
}

#[derive(Template)]
#[template(path = "audit/trail.html")]
struct TrailPage {
    nav: Nav,
    errors: Vec<FieldError>,
    query: TrailQuery,
    /// Who the "who" and "learner" filters matched.
    people: Vec<Person>,
    learners: Vec<Learner>,
    actions: std::sync::Arc<Vec<String>>,
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

impl TrailPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }

    /// Whom the "who" filter matched, for the hint beside it.
    fn people_shown(&self) -> String {
        self.people.iter().map(|p| format!("{} ({})", p.name, p.email)).collect::<Vec<_>>().join(", ")
    }

    /// Which learners the "learner" filter matched.
    fn learners_shown(&self) -> String {
        self.learners.iter().map(|l| format!("{} ({}, {})", l.name, l.email, l.unit)).collect::<Vec<_>>().join(", ")
    }
}

async fn trail_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Query(query): Query<TrailQuery>,
) -> AppResult<Response> {
    let mut conn = state.begin_trail(&actor).await?;
    let scope = policy::audit_scope(&state.changes, &mut conn, &actor).await?;
    let whole_chain = Option::clone(&*checks::latest_kept(&state.changes, &mut conn).await?);
    let actions = trail::actions_kept(&state.changes, &mut conn).await?;
    let (status, errors, events, next, shown_broken, people, learners) = match query.resolve(&mut conn, &scope).await? {
        Ok(Resolved { filter, people, learners }) => {
            let page = trail::page(&mut conn, &scope, &filter).await?;
            let shown_broken = super::check_shown(&mut conn, &page.seals).await?;
            conn.commit().await?;
            record_verifier_view(&state, &actor, &scope, &filter, &query).await?;
            let next = page.next.map(|seq| query.next_page(seq));
            (StatusCode::OK, vec![], page.events, next, shown_broken, people, learners)
        }
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, vec![], None, None, vec![], vec![]),
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
    policy::audit_scope(&state.changes, &mut conn, actor).await.map(|_| ())
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
        (status = 422, description = "A filter matches no one, or too many, or is not a date", body = Problem),
    )
)]
async fn trail_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<TrailQuery>,
) -> AppResult<Json<TrailResponse>> {
    let mut conn = state.begin_trail(&actor).await?;
    let scope = policy::audit_scope(&state.changes, &mut conn, &actor).await?;
    let filter = query.resolve(&mut conn, &scope).await?.map_err(AppError::Invalid)?.filter;
    let page = trail::page(&mut conn, &scope, &filter).await?;
    let shown_broken = super::check_shown(&mut conn, &page.seals).await?;
    let whole_chain = Option::clone(&*checks::latest_kept(&state.changes, &mut conn).await?);
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
