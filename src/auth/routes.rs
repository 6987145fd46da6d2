//! Signing in and out: the login page, the session API and `/api/v1/me`.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use tower_sessions::Session;
use utoipa_axum::routes;

use super::{Actor, ClientAddress, begin_session, end_session, password, throttle};
use crate::AppState;
use crate::auth::policy::Access;
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    Routes::new()
        .get("/login", Access::Public, login_page)
        .post("/login", Access::Public, login_form)
        .post("/logout", Access::Public, logout_form)
        .api(Access::Public, routes!(api_login))
        .api(Access::Public, routes!(api_logout))
        .api(Access::SignedIn, routes!(me))
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    nav: Nav,
    email: String,
    next: String,
    errors: Vec<FieldError>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// Where the login page goes afterwards; the API ignores it.
    #[serde(default)]
    #[schema(required = false)]
    next: String,
}

/// Only local paths are followed after sign-in, never another site.
fn safe_next(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next.to_string()
    } else {
        "/".to_string()
    }
}

async fn login_page(nav: Nav, Query(query): Query<NextQuery>) -> AppResult<Response> {
    let next = safe_next(query.next.as_deref().unwrap_or("/"));
    render(StatusCode::OK, &LoginPage { nav, email: String::new(), next, errors: vec![] })
}

/// Checks an email and password; the same message for an unknown email and a wrong password.
/// Repeated failures are slowed down (429 with Retry-After) by `throttle`.
async fn authenticate(state: &AppState, client: &ClientAddress, credentials: &Credentials) -> AppResult<uuid::Uuid> {
    let mut missing = Vec::new();
    if credentials.email.trim().is_empty() {
        missing.push(FieldError::new("email", "Enter your email address"));
    }
    if credentials.password.is_empty() {
        missing.push(FieldError::new("password", "Enter your password"));
    }
    if !missing.is_empty() {
        return Err(AppError::Invalid(missing));
    }
    let mut conn = state.pool.acquire().await?;
    if let Some(wait) = throttle::wait_before_attempt(&mut conn, &credentials.email, &client.0).await? {
        let seconds = wait.as_secs() + 1;
        return Err(AppError::TooManyRequests {
            message: format!("Too many failed sign-in attempts. Wait {seconds} seconds, then try again."),
            retry_after_secs: seconds,
        });
    }
    let found = crate::accounts::credentials(&mut conn, &credentials.email).await?;
    // Verify against a dummy hash for unknown emails so timing does not reveal which exist.
    let (user_id, hash) = match found {
        Some((id, hash)) => (Some(id), hash),
        None => (None, state.dummy_hash.clone()),
    };
    let ok = password::verify(credentials.password.clone(), hash).await?;
    match (user_id, ok) {
        (Some(id), true) => {
            throttle::clear(&mut conn, &credentials.email, &client.0).await?;
            Ok(id)
        }
        _ => {
            throttle::record_failure(&mut conn, &credentials.email, &client.0).await?;
            Err(AppError::BadCredentials("The email address or password is not correct".into()))
        }
    }
}

async fn login_form(
    State(state): State<AppState>,
    client: ClientAddress,
    nav: Nav,
    session: Session,
    Form(form): Form<Credentials>,
) -> AppResult<Response> {
    match authenticate(&state, &client, &form).await {
        Ok(user_id) => {
            begin_session(&session, user_id).await?;
            Ok(Redirect::to(&safe_next(&form.next)).into_response())
        }
        Err(AppError::Invalid(errors)) => {
            let page = LoginPage { nav, email: form.email, next: safe_next(&form.next), errors };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(AppError::BadCredentials(message)) => {
            let errors = vec![FieldError::new("email", message)];
            let page = LoginPage { nav, email: form.email, next: safe_next(&form.next), errors };
            render(StatusCode::UNAUTHORIZED, &page)
        }
        Err(other) => Err(other),
    }
}

#[derive(Deserialize)]
struct SignOut {
    /// Also end every other session of this person ("sign out everywhere").
    everywhere: Option<String>,
}

async fn logout_form(
    State(state): State<AppState>,
    session: Session,
    actor: Option<Actor>,
    Form(form): Form<SignOut>,
) -> AppResult<Redirect> {
    if let (Some(actor), Some(_)) = (actor, form.everywhere) {
        let mut conn = state.pool.acquire().await?;
        crate::accounts::end_all_sessions(&mut conn, actor.id).await?;
    }
    end_session(&session).await?;
    Ok(Redirect::to("/login"))
}

/// Signs in with an email and password: sets the session cookie, and answers who signed in and
/// the CSRF token to send as `x-csrf-token` on writes with that cookie.
#[utoipa::path(
    post,
    path = "/api/v1/session",
    request_body = Credentials,
    responses(
        (status = 200, description = "Signed in", body = ApiSession),
        (status = 401, description = "The email address or password is not correct", body = Problem),
        (status = 422, description = "The email address or password is empty", body = Problem),
        (status = 429, description = "Too many failed attempts; wait for Retry-After seconds", body = Problem,
            headers(("retry-after" = u64, description = "Seconds to wait"))),
    )
)]
async fn api_login(
    State(state): State<AppState>,
    client: ClientAddress,
    session: Session,
    Json(credentials): Json<Credentials>,
) -> AppResult<Json<ApiSession>> {
    let user_id = authenticate(&state, &client, &credentials).await?;
    let csrf_token = begin_session(&session, user_id).await?;
    let mut conn = state.pool.acquire().await?;
    let user = crate::accounts::load_actor(&mut conn, user_id).await?.ok_or(AppError::Unauthenticated)?;
    Ok(Json(ApiSession { user, csrf_token }))
}

/// A signed-in API session: who, and the token to send as `X-CSRF-Token` on writes.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ApiSession {
    user: Actor,
    csrf_token: String,
}

/// Signs out: ends the session of the cookie sent, if any.
#[utoipa::path(delete, path = "/api/v1/session", responses((status = 204, description = "Signed out")))]
async fn api_logout(session: Session) -> AppResult<StatusCode> {
    end_session(&session).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is signed in, with their roles at each centre.
#[utoipa::path(get, path = "/api/v1/me", responses((status = 200, description = "The signed-in person", body = Actor)))]
async fn me(actor: Actor) -> Json<Actor> {
    Json(actor)
}
