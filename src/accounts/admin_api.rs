//! The administrator's person actions in the API, as on the person's page: disabling and
//! enabling an account (their sessions and tokens end at once) and issuing a one-time link to
//! set a password. Thin handlers over the same domain functions and policy as the page's forms.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Actor;
use crate::auth::password_links;
use crate::auth::policy::{self, Access};
use crate::error::{AppError, AppResult, Problem};
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new()
        .api(Access::AdminTarget, routes!(disable_api))
        .api(Access::AdminTarget, routes!(enable_api))
        .api(Access::AdminTarget, routes!(password_link_api))
}

async fn set_disabled(state: &AppState, actor: &Actor, id: Uuid, disabled: bool) -> AppResult<()> {
    let mut tx = state.begin(actor).await?;
    policy::person_at_centre(&mut tx, actor, id).await?;
    super::set_disabled(&mut tx, actor, id, disabled)
        .await
        .map_err(|error| AppError::Conflict(error.to_string(), Vec::new()))?;
    tx.commit().await?;
    Ok(())
}

/// Disables the person's account: they cannot sign in, and their sessions and tokens end now.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/disable",
    params(("id" = Uuid, Path, description = "The person")),
    responses(
        (status = 204, description = "Disabled"),
        (status = 409, description = "Administrators cannot disable their own account", body = Problem),
    )
)]
async fn disable_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<StatusCode> {
    set_disabled(&state, &actor, id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Enables a disabled account again.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/enable",
    params(("id" = Uuid, Path, description = "The person")),
    responses((status = 204, description = "Enabled"))
)]
async fn enable_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<StatusCode> {
    set_disabled(&state, &actor, id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A link to set a password, shown once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PasswordLink {
    /// The whole link to give the person; it works once.
    pub url: String,
    /// The same link's path on this server.
    pub path: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// Issues a one-time link for the person to set their password (earlier unused links stop
/// working), as the person's page does.
#[utoipa::path(
    post,
    path = "/api/v1/users/{id}/password-link",
    params(("id" = Uuid, Path, description = "The person")),
    responses((status = 201, description = "The link, shown once", body = PasswordLink))
)]
async fn password_link_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<(StatusCode, Json<PasswordLink>)> {
    let mut tx = state.begin(&actor).await?;
    policy::person_at_centre(&mut tx, &actor, id).await?;
    let token = password_links::issue(&mut tx, Some(&actor), id).await?;
    tx.commit().await?;
    let path = password_links::path(&token);
    let link = PasswordLink {
        url: format!("{}{path}", state.config.public_base()),
        path,
        expires_at: chrono::Utc::now() + chrono::Duration::days(password_links::VALID_FOR_DAYS),
    };
    Ok((StatusCode::CREATED, Json(link)))
}
