//! The administrator's person and enrolment pages in the API: one person's details, roles,
//! legal holds and recent history (`/admin/users/{id}`), disabling and enabling an account
//! (their sessions and tokens end at once), issuing a one-time link to set a password, and one
//! enrolment's assignment history with the people it can be reassigned to
//! (`/admin/enrolments/{id}`); and the person's own use of that link
//! (`/password/set/{token}`). Thin handlers over the same domain functions and policy as the
//! pages.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;
use uuid::Uuid;

use super::UserSummary;
use crate::AppState;
use crate::assessment::{self, EnrolmentSummary};
use crate::audit::RecordedEvent;
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
        .api(Access::AdminTarget, routes!(person_api))
        .api(Access::AdminTarget, routes!(enrolment_api))
        .api(Access::Link, routes!(password_set_link_api))
        .api(Access::Link, routes!(password_set_api))
}

/// One person as their administration page shows them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct PersonView {
    #[serde(flatten)]
    person: UserSummary,
    /// Whether this is the administrator themselves (who cannot disable themselves or drop
    /// their own administrator role).
    is_self: bool,
    /// Legal holds on the person at the centre, current first.
    legal_holds: Vec<crate::retention::LegalHold>,
    /// When retention anonymised the account, if it has.
    anonymised_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The latest 200 events about the person at the centre, newest first (the whole trail is
    /// `GET /api/v1/audit?subject=`).
    history: Vec<RecordedEvent>,
}

/// One person of the administrator's centre: details, roles, holds and recent history, as on
/// `/admin/users/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}",
    params(("id" = Uuid, Path, description = "The person")),
    responses((status = 200, description = "The person", body = PersonView))
)]
async fn person_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Json<PersonView>> {
    let mut conn = state.begin(&actor).await?;
    let centre = policy::person_at_centre(&mut conn, &actor, id).await?;
    let person = super::list_users(&mut conn, Some(centre))
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(AppError::NotFound("person"))?;
    let history = crate::audit::trail::about(&mut conn, id, Some(centre), 200).await?;
    let retention = crate::retention::person(&mut conn, centre, id).await?;
    Ok(Json(PersonView {
        person,
        is_self: id == actor.id,
        legal_holds: retention.holds,
        anonymised_at: retention.anonymised_at,
        history,
    }))
}

/// One period of an enrolment with its assessor and IQA.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AssignmentView {
    assessor_name: String,
    iqa_name: Option<String>,
    assigned_at: chrono::DateTime<chrono::Utc>,
    assigned_by: Option<String>,
    reason: String,
}

/// One enrolment as its administration page shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EnrolmentAdminView {
    enrolment: EnrolmentSummary,
    /// Who assessed and quality-assured it when, newest first.
    assignments: Vec<AssignmentView>,
    /// The centre's assessors and IQAs (accounts enabled) it can be reassigned to, by name,
    /// for `POST /api/v1/enrolments/{id}/assignment`.
    assessors: Vec<UserSummary>,
    iqas: Vec<UserSummary>,
}

/// One enrolment of the administrator's centre: where it stands, its assignment history and
/// who it can be reassigned to, as on `/admin/enrolments/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/admin/enrolments/{id}",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "The enrolment", body = EnrolmentAdminView))
)]
async fn enrolment_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Json<EnrolmentAdminView>> {
    let mut conn = state.begin(&actor).await?;
    let centre = policy::enrolment_at_centre(&mut conn, &actor, id).await?;
    let enrolment = assessment::summaries(&mut conn, &[id]).await?.pop().ok_or(AppError::NotFound("enrolment"))?;
    let assignments = super::assignments(&mut conn, id)
        .await?
        .into_iter()
        .map(|a| AssignmentView {
            assessor_name: a.assessor_name,
            iqa_name: a.iqa_name,
            assigned_at: a.assigned_at,
            assigned_by: a.assigned_by,
            reason: a.reason,
        })
        .collect();
    let people = super::list_users(&mut conn, Some(centre)).await?;
    let with = |role: &str| -> Vec<UserSummary> {
        people.iter().filter(|p| !p.disabled && p.roles.iter().any(|r| r == role)).cloned().collect()
    };
    Ok(Json(EnrolmentAdminView { enrolment, assignments, assessors: with("assessor"), iqas: with("iqa") }))
}

/// Whom a live password-set link is for.
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LinkHolder {
    name: String,
    email: String,
}

/// Checks a one-time password-set link before using it: whom it is for. No account needed.
#[utoipa::path(
    get,
    path = "/api/v1/password/set/{token}",
    params(("token" = String, Path, description = "The token from the link")),
    responses(
        (status = 200, description = "The link works: the person it is for", body = LinkHolder),
        (status = 409, description = "The link has been used or has expired", body = Problem),
    )
)]
async fn password_set_link_api(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> AppResult<Json<LinkHolder>> {
    let mut conn = state.pool.acquire().await?;
    let (_, name, email) = password_links::holder(&mut conn, &token).await?;
    Ok(Json(LinkHolder { name, email }))
}

/// The new password, as the page's form sends it.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct NewPassword {
    #[serde(default)]
    password: String,
}

/// Sets the person's password through a one-time link, which then stops working; every session
/// of the person ends. No account needed; sign in afterwards with `POST /api/v1/session`.
#[utoipa::path(
    post,
    path = "/api/v1/password/set/{token}",
    params(("token" = String, Path, description = "The token from the link")),
    request_body = NewPassword,
    responses(
        (status = 204, description = "The password is set"),
        (status = 409, description = "The link has been used or has expired", body = Problem),
        (status = 422, description = "The password is too short, too common or like the person's name or email", body = Problem),
    )
)]
async fn password_set_api(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Json(body): Json<NewPassword>,
) -> AppResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    password_links::redeem(&mut tx, &token, &body.password).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
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
