//! The HTML side's shared pieces: the layout's navigation, rendering, error pages, static
//! files, health checks and the home page that sends each person to their dashboard.

pub mod assets;
pub mod dashboard;
pub mod limits;
pub mod openapi;
pub mod pagination;
pub mod route_table;
pub mod server;

use crate::auth::policy::Access;
use route_table::Routes;

use askama::Template;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use tower_sessions::Session;

use crate::AppState;
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, Problem};

pub fn router() -> Routes {
    Routes::new()
        .get("/", Access::Public, home)
        .get("/dashboard", Access::SignedIn, dashboard::show)
        .api(Access::SignedIn, utoipa_axum::routes!(dashboard::api))
        .get("/healthz", Access::Public, healthz)
        .get("/readyz", Access::Public, readyz)
        .get("/accessibility", Access::Public, accessibility)
        .merge(assets::router())
        .merge(openapi::router())
}

/// What the layout needs: the signed-in person, and the session's CSRF token for forms.
/// Every HTML handler takes it as an extractor.
pub struct Nav {
    pub user: Option<NavUser>,
    pub csrf: String,
}

pub struct NavUser {
    pub name: String,
    pub roles: String,
    /// Unread notifications, shown beside the link to them.
    pub unread: i64,
    /// The sections this person's roles open, in the header's order.
    pub sections: Vec<NavLink>,
}

/// One link of the header's navigation; `current` when the page shown is in that section.
pub struct NavLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// The header's sections for someone with `roles`, the page at `path` marked current. Each role
/// adds the places its work happens, so nobody has to go through the dashboard to reach them.
fn sections(roles: &[Role], path: &str) -> Vec<NavLink> {
    let mut links: Vec<(&'static str, &'static str)> = vec![("/dashboard", "Dashboard")];
    if roles.contains(&Role::Iqa) {
        links.extend([
            ("/iqa/plan", "Sampling plan"),
            ("/iqa/coverage", "Coverage"),
            ("/standardisation", "Standardisation"),
        ]);
    }
    if roles.contains(&Role::Eqa) {
        links.push(("/verification", "Verification"));
    }
    if roles.contains(&Role::Admin) {
        links.push(("/admin", "Administration"));
    }
    // The audit trail is read by administrators and external verifiers (policy::audit_scope).
    if roles.iter().any(|r| matches!(r, Role::Admin | Role::Eqa)) {
        links.push(("/audit", "Audit trail"));
    }
    // Progress reports: a centre's administrators and IQAs, and verifiers (policy::report_scope).
    if roles.iter().any(|r| matches!(r, Role::Admin | Role::Iqa | Role::Eqa)) {
        links.push(("/reports", "Reports"));
    }
    links.extend([("/notifications", "Notifications"), ("/account", "Your account")]);
    // A section is current on the pages under it; samples and the strategy belong to the plan.
    let section_of = |href: &str| match href {
        "/iqa/plan" => {
            path.starts_with("/iqa/plan") || path.starts_with("/iqa/samples") || path.starts_with("/iqa/strategy")
        }
        "/verification" => path.starts_with("/verification") || path.starts_with("/verify/"),
        "/dashboard" => path == "/dashboard" || path == "/",
        _ => path == href || path.starts_with(&format!("{href}/")),
    };
    links.into_iter().map(|(href, label)| NavLink { href, label, current: section_of(href) }).collect()
}

impl Nav {
    /// The stylesheet's fingerprinted path, for the layout.
    pub fn stylesheet(&self) -> &'static str {
        assets::STYLESHEET.path()
    }

    /// The upload enhancement script's fingerprinted path.
    pub fn upload_script(&self) -> &'static str {
        assets::UPLOAD_SCRIPT.path()
    }

    /// For pages rendered outside a session (error pages): no user, no forms.
    pub fn signed_out() -> Self {
        Nav { user: None, csrf: String::new() }
    }
}

impl FromRequestParts<AppState> for Nav {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let actor = <Actor as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, message)| AppError::Unexpected(anyhow::anyhow!(message)))?;
        let csrf = crate::auth::csrf::token(&session).await?;
        let unread = match &actor {
            Some(actor) => {
                state.changes.unread(actor.id, crate::notifications::unread_count(&state.pool, actor.id)).await?
            }
            None => 0,
        };
        let path = parts.uri.path();
        let user = actor.map(|actor| {
            let held: Vec<Role> = actor.roles.iter().map(|r| r.role).collect();
            let mut roles: Vec<&str> = held.iter().map(|r| r.label()).collect();
            roles.dedup();
            NavUser { name: actor.name.clone(), roles: roles.join(", "), unread, sections: sections(&held, path) }
        });
        Ok(Nav { user, csrf })
    }
}

/// The value of a submitted form's field `name` (the first, if sent several times), or "".
pub fn form_field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

pub fn render<T: Template>(status: StatusCode, page: &T) -> AppResult<Response> {
    render_sized(status, page, T::SIZE_HINT)
}

/// `render` into a buffer of `capacity` bytes, for a page much longer than its template: the
/// buffer is not copied over and over as it grows.
pub fn render_sized(status: StatusCode, page: &impl Template, capacity: usize) -> AppResult<Response> {
    let mut html = String::with_capacity(capacity);
    page.render_into(&mut html).map_err(|e| AppError::Unexpected(e.into()))?;
    Ok((status, Html(html)).into_response())
}

#[derive(Template)]
#[template(path = "web/error.html")]
struct ErrorPage<'a> {
    nav: Nav,
    problem: &'a Problem,
}

/// Turns problem+json errors from HTML routes into pages; a missing sign-in becomes a redirect
/// to the login page that comes back afterwards.
pub async fn html_errors(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let wanted = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let response = next.run(request).await;
    if path.starts_with("/api/") {
        return openapi::rejections_as_problems(response).await;
    }
    let Some(problem) = response.extensions().get::<Problem>().cloned() else {
        return response;
    };
    if problem.status == StatusCode::UNAUTHORIZED.as_u16() {
        let target =
            format!("/login?next={}", url::form_urlencoded::byte_serialize(wanted.as_bytes()).collect::<String>());
        return Redirect::to(&target).into_response();
    }
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let page = ErrorPage { nav: Nav::signed_out(), problem: &problem };
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let mut page = match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, problem.detail.clone()).into_response(),
    };
    if let Some(value) = retry_after {
        page.headers_mut().insert(header::RETRY_AFTER, value);
    }
    page
}

async fn home(actor: Option<Actor>) -> Redirect {
    match actor {
        Some(_) => Redirect::to("/dashboard"),
        None => Redirect::to("/login"),
    }
}

#[derive(Template)]
#[template(path = "web/accessibility.html")]
struct AccessibilityPage {
    nav: Nav,
}

async fn accessibility(nav: Nav) -> AppResult<Response> {
    render(StatusCode::OK, &AccessibilityPage { nav })
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => "ready".into_response(),
        Err(error) => {
            tracing::warn!(%error, "not ready: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
