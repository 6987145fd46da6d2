//! Pages and API for one's own account (password, API tokens), password-set links, and the
//! centre administrator's work: people and their roles, enrolments and reassignment, the CSV
//! learner import, and external verifiers' access.

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use chrono::NaiveDate;
use serde::Deserialize;
use tower_sessions::Session;
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Assignment, Email, UserSummary, VerifierGrant};
use crate::AppState;
use crate::assessment::{self, EnrolmentSummary};
use crate::auth::policy::Access;
use crate::auth::{Actor, Role, password, password_links, policy, tokens};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::web::openapi::Created;
use crate::web::pagination::{Order, Page, PageQuery, PageRequest, Position};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    use Access::{Admin, AdminTarget, Link, Owner, SignedIn};
    Routes::new()
        .get("/account", SignedIn, account_page)
        .post("/account/password", SignedIn, change_password_form)
        .post("/account/tokens", SignedIn, create_token_form)
        .post("/account/tokens/{id}/revoke", Owner, revoke_token_form)
        .get("/password/set/{token}", Link, set_password_page)
        .post("/password/set/{token}", Link, set_password_form)
        .api(SignedIn, routes!(list_tokens_api))
        .api(SignedIn, routes!(create_token_api))
        .api(Owner, routes!(revoke_token_api))
        .api(SignedIn, routes!(change_password_api))
        .get("/admin", Admin, admin_page)
        .post("/admin/users", Admin, create_user_form)
        .get("/admin/users/{id}", AdminTarget, user_page)
        .post("/admin/users/{id}", AdminTarget, update_user_form)
        .post("/admin/users/{id}/disable", AdminTarget, disable_form)
        .post("/admin/users/{id}/enable", AdminTarget, enable_form)
        .post("/admin/users/{id}/password-link", AdminTarget, password_link_form)
        .post("/admin/enrolments", Admin, enrol_form)
        .get("/admin/enrolments/{id}", AdminTarget, enrolment_page)
        .post("/admin/enrolments/{id}", AdminTarget, reassign_form)
        .get("/admin/import", Admin, import_page)
        .post("/admin/import", Admin, import_form)
        .get("/admin/verifiers", Admin, verifiers_page)
        .post("/admin/verifiers", Admin, grant_form)
        .post("/admin/verifiers/{id}/revoke", AdminTarget, revoke_grant_form)
        .api(Admin, routes!(users_api))
        .api(Admin, routes!(create_user_api))
        .api(AdminTarget, routes!(update_user_api))
        .api(Admin, routes!(enrol_api))
        .api(AdminTarget, routes!(reassign_api))
        .merge(super::settings::router())
        .merge(super::admin_api::router())
        .api(Admin, routes!(import_api))
        .api(Admin, routes!(grants_api))
        .api(Admin, routes!(grant_api))
        .api(AdminTarget, routes!(revoke_grant_api))
}

/// A domain refusal (anyhow) as a message on the form.
fn refused(error: anyhow::Error) -> AppError {
    match error.downcast::<sqlx::Error>() {
        Ok(database) => AppError::from(database),
        Err(other) => AppError::invalid("form", other.to_string()),
    }
}

fn form_errors(error: AppError) -> AppResult<Vec<FieldError>> {
    match error {
        AppError::Invalid(errors) => Ok(errors),
        other => Err(other),
    }
}

// ---------------------------------------------------------------- one's own account

/// The one write an external verifier may make: to their own credentials (password, API
/// tokens), never to anyone's records. Only the handlers below, each acting on the caller's own
/// account, use it.
async fn own_account(state: &AppState) -> AppResult<sqlx::Transaction<'static, sqlx::Postgres>> {
    Ok(state.pool.begin().await?)
}

#[derive(Template)]
#[template(path = "accounts/account.html")]
struct AccountPage {
    nav: Nav,
    actor: Actor,
    tokens: Vec<tokens::TokenInfo>,
    new_token: Option<tokens::NewToken>,
    password_changed: bool,
    errors: Vec<FieldError>,
}

#[derive(Deserialize)]
struct AccountQuery {
    changed: Option<String>,
}

async fn account_view(
    state: &AppState,
    nav: Nav,
    actor: Actor,
    new_token: Option<tokens::NewToken>,
    password_changed: bool,
    errors: Vec<FieldError>,
) -> AppResult<Response> {
    let mut conn = state.begin(&actor).await?;
    let tokens = tokens::list(&mut conn, actor.id).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &AccountPage { nav, actor, tokens, new_token, password_changed, errors })
}

async fn account_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Query(q): Query<AccountQuery>,
) -> AppResult<Response> {
    account_view(&state, nav, actor, None, q.changed.is_some(), vec![]).await
}

#[derive(Deserialize, utoipa::ToSchema)]
struct PasswordChange {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// Changes the caller's password after checking the current one; every other session ends.
async fn change_password(state: &AppState, session: &Session, actor: &Actor, change: &PasswordChange) -> AppResult<()> {
    let mut tx = own_account(state).await?;
    let (_, hash) = super::credentials(&mut tx, &actor.email).await?.ok_or(AppError::Unauthenticated)?;
    if !password::verify(change.current_password.clone(), hash).await? {
        return Err(AppError::invalid("current_password", "Your current password is not correct"));
    }
    password::check_new(&change.new_password, &[&actor.name, &actor.email])
        .map_err(|message| AppError::invalid("new_password", message))?;
    let keep = session.id().map(|id| id.to_string());
    super::store_password(&mut tx, actor.id, &change.new_password, keep.as_deref()).await.map_err(refused)?;
    crate::audit::record(
        &mut tx,
        crate::audit::Event::new(Some(actor), "user.password_changed", "user", Some(actor.id)),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn change_password_form(
    State(state): State<AppState>,
    nav: Nav,
    session: Session,
    actor: Actor,
    Form(change): Form<PasswordChange>,
) -> AppResult<Response> {
    match change_password(&state, &session, &actor, &change).await {
        Ok(()) => Ok(Redirect::to("/account?changed=1").into_response()),
        Err(error) => account_view(&state, nav, actor, None, false, form_errors(error)?).await,
    }
}

/// Changes the caller's password after checking the current one; their other sessions end.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    request_body = PasswordChange,
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "The current password is wrong, or the new one is too weak", body = Problem),
    )
)]
async fn change_password_api(
    State(state): State<AppState>,
    session: Session,
    actor: Actor,
    Json(change): Json<PasswordChange>,
) -> AppResult<StatusCode> {
    change_password(&state, &session, &actor, &change).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
struct TokenRequest {
    #[serde(default)]
    label: String,
}

async fn create_token(state: &AppState, actor: &Actor, label: &str) -> AppResult<tokens::NewToken> {
    let mut tx = own_account(state).await?;
    let created = tokens::create(&mut tx, actor.id, label).await.map_err(|e| match refused(e) {
        AppError::Invalid(_) => AppError::invalid("label", "Give the token a name of 1 to 100 characters"),
        other => other,
    })?;
    tx.commit().await?;
    Ok(created)
}

async fn create_token_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(request): Form<TokenRequest>,
) -> AppResult<Response> {
    match create_token(&state, &actor, &request.label).await {
        Ok(created) => account_view(&state, nav, actor, Some(created), false, vec![]).await,
        Err(error) => account_view(&state, nav, actor, None, false, form_errors(error)?).await,
    }
}

async fn revoke_token(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<()> {
    let mut tx = own_account(state).await?;
    if !tokens::revoke(&mut tx, actor.id, id).await? {
        return Err(AppError::NotFound("token"));
    }
    crate::audit::record(
        &mut tx,
        crate::audit::Event::new(Some(actor), "token.revoked", "user", Some(actor.id))
            .details(serde_json::json!({"token_id": id})),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn revoke_token_form(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Redirect> {
    revoke_token(&state, &actor, id).await?;
    Ok(Redirect::to("/account"))
}

/// The caller's personal API tokens (never the tokens themselves), newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the caller's tokens", body = Page<tokens::TokenInfo>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn list_tokens_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<tokens::TokenInfo>>> {
    let request = PageRequest::try_from(&query)?;
    let mut conn = state.begin(&actor).await?;
    let tokens = tokens::list(&mut conn, actor.id).await?;
    Ok(Json(request.page_of(tokens, Order::Newest, |t| Position::time(t.created_at, t.id))))
}

/// Creates a personal API token for the caller; the token is shown this once.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    request_body = TokenRequest,
    responses(
        (status = 201, description = "Created", body = tokens::NewToken),
        (status = 422, description = "The label is empty or longer than 100 characters", body = Problem),
    )
)]
async fn create_token_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(request): Json<TokenRequest>,
) -> AppResult<(StatusCode, Json<tokens::NewToken>)> {
    Ok((StatusCode::CREATED, Json(create_token(&state, &actor, &request.label).await?)))
}

/// Revokes one of the caller's API tokens.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    params(("id" = Uuid, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked"))
)]
async fn revoke_token_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<StatusCode> {
    revoke_token(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Template)]
#[template(path = "accounts/set_password.html")]
struct SetPasswordPage {
    nav: Nav,
    token: String,
    name: String,
    email: String,
    errors: Vec<FieldError>,
}

async fn set_password_page(State(state): State<AppState>, nav: Nav, Path(token): Path<String>) -> AppResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let (_, name, email) = password_links::holder(&mut conn, &token).await?;
    render(StatusCode::OK, &SetPasswordPage { nav, token, name, email, errors: vec![] })
}

#[derive(Deserialize)]
struct NewPassword {
    #[serde(default)]
    password: String,
}

async fn set_password_form(
    State(state): State<AppState>,
    nav: Nav,
    Path(token): Path<String>,
    Form(form): Form<NewPassword>,
) -> AppResult<Response> {
    let mut tx = state.pool.begin().await?;
    match password_links::redeem(&mut tx, &token, &form.password).await {
        Ok(_) => {
            tx.commit().await?;
            Ok(Redirect::to("/login?password_set=1").into_response())
        }
        Err(AppError::Invalid(errors)) => {
            drop(tx);
            let mut conn = state.pool.acquire().await?;
            let (_, name, email) = password_links::holder(&mut conn, &token).await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &SetPasswordPage { nav, token, name, email, errors })
        }
        Err(other) => Err(other),
    }
}

// ---------------------------------------------------------------- administration

struct RoleOption {
    value: &'static str,
    label: &'static str,
    checked: bool,
}

fn role_options(held: &[String]) -> Vec<RoleOption> {
    Role::ALL
        .into_iter()
        .map(|r| RoleOption { value: r.as_str(), label: r.label(), checked: held.iter().any(|h| h == r.as_str()) })
        .collect()
}

#[derive(Template)]
#[template(path = "accounts/admin.html")]
struct AdminPage {
    nav: Nav,
    centre_name: String,
    people: Vec<UserSummary>,
    enrolments: Vec<EnrolmentSummary>,
    units: Vec<crate::catalogue::UnitSummary>,
    learners: Vec<UserSummary>,
    assessors: Vec<UserSummary>,
    iqas: Vec<UserSummary>,
    roles: Vec<RoleOption>,
    errors: Vec<FieldError>,
    created: Option<(String, String)>,
    assessment_due_working_days: i32,
}

/// The administration page showing `errors` (from the settings form).
pub(super) async fn admin_with_errors(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    errors: Vec<FieldError>,
) -> AppResult<Response> {
    admin_view(state, nav, actor, errors, None).await
}

async fn admin_view(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    errors: Vec<FieldError>,
    created: Option<(String, String)>,
) -> AppResult<Response> {
    let centre = policy::admin_centre(actor)?;
    let mut conn = state.begin(actor).await?;
    let centre_name =
        actor.roles.iter().find(|r| r.centre_id == centre).map(|r| r.centre_name.clone()).unwrap_or_default();
    let people = super::list_users(&mut conn, Some(centre)).await?;
    let ids =
        sqlx::query_scalar!("SELECT id FROM enrolments WHERE centre_id = $1", centre).fetch_all(&mut *conn).await?;
    let mut enrolments = assessment::summaries(&mut conn, &ids).await?;
    enrolments.sort_by(|a, b| a.learner_name.cmp(&b.learner_name));
    let units = crate::catalogue::list_units(&mut conn).await?;
    let settings = super::settings::load(&mut conn, centre).await?;
    let with =
        |role: &str| people.iter().filter(|p| !p.disabled && p.roles.iter().any(|r| r == role)).cloned().collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = AdminPage {
        nav,
        centre_name,
        learners: with("learner"),
        assessors: with("assessor"),
        iqas: with("iqa"),
        people,
        enrolments,
        units,
        roles: role_options(&[]),
        errors,
        created,
        assessment_due_working_days: settings.assessment_due_working_days,
    };
    render(status, &page)
}

async fn admin_page(State(state): State<AppState>, nav: Nav, actor: Actor) -> AppResult<Response> {
    admin_view(&state, nav, &actor, vec![], None).await
}

#[derive(Deserialize, serde::Serialize, utoipa::ToSchema)]
struct NewPerson {
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Creates a person with a role at the administrator's centre and a one-time password-set link.
async fn create_person(state: &AppState, actor: &Actor, person: &NewPerson) -> AppResult<(Uuid, String)> {
    let centre = policy::admin_centre(actor)?;
    let mut errors = Vec::new();
    let email = Email::parse(&person.email).map_err(|m| errors.push(FieldError::new("email", m))).ok();
    let role = person.role.parse::<Role>().map_err(|_| errors.push(FieldError::new("role", "Choose a role"))).ok();
    if person.name.trim().is_empty() {
        errors.push(FieldError::new("name", "Enter the person's full name"));
    }
    let (Some(email), Some(role), true) = (email, role, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let mut tx = state.begin(actor).await?;
    let id = super::add_user(&mut tx, Some(actor), centre, &email, &person.name, role, None).await.map_err(refused)?;
    let token = password_links::issue(&mut tx, Some(actor), id).await?;
    tx.commit().await?;
    Ok((id, password_links::path(&token)))
}

async fn create_user_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(person): Form<NewPerson>,
) -> AppResult<Response> {
    match create_person(&state, &actor, &person).await {
        Ok((_, link)) => admin_view(&state, nav, &actor, vec![], Some((person.name.trim().to_string(), link))).await,
        Err(error) => admin_view(&state, nav, &actor, form_errors(error)?, None).await,
    }
}

/// Adds a person with a role at the administrator's centre; answers a one-time link for them
/// to set their password.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    request_body = NewPerson,
    responses(
        (status = 201, description = "Added", body = NewPersonCreated),
        (status = 422, description = "A field is missing or not accepted (e.g. the email is taken)", body = Problem),
    )
)]
async fn create_user_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(person): Json<NewPerson>,
) -> AppResult<(StatusCode, Json<NewPersonCreated>)> {
    let (id, password_link) = create_person(&state, &actor, &person).await?;
    Ok((StatusCode::CREATED, Json(NewPersonCreated { id, password_link })))
}

/// A person just added, and the path of their one-time password-set link.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct NewPersonCreated {
    id: Uuid,
    password_link: String,
}

/// The people of the administrator's centre with their roles, by name, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the centre's people", body = Page<UserSummary>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn users_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<UserSummary>>> {
    let request = PageRequest::try_from(&query)?;
    let centre = policy::admin_centre(&actor)?;
    let mut conn = state.begin(&actor).await?;
    let page = super::users_page(&mut conn, centre, &request).await?;
    Ok(Json(page))
}

#[derive(Template)]
#[template(path = "accounts/user.html")]
struct UserPage {
    nav: Nav,
    person: UserSummary,
    roles: Vec<RoleOption>,
    link: Option<String>,
    errors: Vec<FieldError>,
    is_self: bool,
    /// Events about this person at the centre, for the history panel.
    history: Vec<crate::audit::RecordedEvent>,
    /// Legal holds and anonymisation (`retention`).
    retention: crate::retention::PersonRetention,
}

pub(crate) async fn user_view(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    link: Option<String>,
    errors: Vec<FieldError>,
) -> AppResult<Response> {
    let mut conn = state.begin(actor).await?;
    let centre = policy::person_at_centre(&mut conn, actor, id).await?;
    let person = super::list_users(&mut conn, Some(centre))
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or(AppError::NotFound("person"))?;
    let history = crate::audit::trail::about(&mut conn, id, Some(centre), 200).await?;
    let retention = crate::retention::person(&mut conn, centre, id).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = UserPage {
        nav,
        roles: role_options(&person.roles),
        person,
        link,
        errors,
        is_self: id == actor.id,
        history,
        retention,
    };
    render(status, &page)
}

async fn user_page(State(state): State<AppState>, nav: Nav, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    user_view(&state, nav, &actor, id, None, vec![]).await
}

/// A person's details and roles, as the form or the API send them.
#[derive(Deserialize, utoipa::ToSchema)]
struct PersonUpdate {
    name: String,
    email: String,
    roles: Vec<String>,
}

async fn update_person(state: &AppState, actor: &Actor, id: Uuid, update: &PersonUpdate) -> AppResult<()> {
    let mut tx = state.begin(actor).await?;
    let centre = policy::person_at_centre(&mut tx, actor, id).await?;
    let email = Email::parse(&update.email).map_err(|m| AppError::invalid("email", m))?;
    let roles = update
        .roles
        .iter()
        .map(|r| r.parse::<Role>().map_err(|m| AppError::invalid("roles", m)))
        .collect::<AppResult<Vec<_>>>()?;
    if id == actor.id && !roles.contains(&Role::Admin) {
        return Err(AppError::invalid("roles", "You cannot remove your own administrator role"));
    }
    super::update_user(&mut tx, actor, id, &update.name, &email).await.map_err(refused)?;
    super::set_roles(&mut tx, actor, id, centre, &roles).await.map_err(refused)?;
    tx.commit().await?;
    Ok(())
}

async fn update_user_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(fields): Form<Vec<(String, String)>>,
) -> AppResult<Response> {
    let value = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()).unwrap_or_default();
    let update = PersonUpdate {
        name: value("name"),
        email: value("email"),
        roles: fields.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.clone()).collect(),
    };
    match update_person(&state, &actor, id, &update).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/users/{id}")).into_response()),
        Err(error) => user_view(&state, nav, &actor, id, None, form_errors(error)?).await,
    }
}

/// Changes a person's name, email and roles at the administrator's centre.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{id}",
    params(("id" = Uuid, Path, description = "The person")),
    request_body = PersonUpdate,
    responses(
        (status = 204, description = "Changed"),
        (status = 422, description = "A field is not accepted", body = Problem),
    )
)]
async fn update_user_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(update): Json<PersonUpdate>,
) -> AppResult<StatusCode> {
    update_person(&state, &actor, id, &update).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_disabled(state: &AppState, actor: &Actor, id: Uuid, disabled: bool) -> AppResult<()> {
    let mut tx = state.begin(actor).await?;
    policy::person_at_centre(&mut tx, actor, id).await?;
    super::set_disabled(&mut tx, actor, id, disabled).await.map_err(refused)?;
    tx.commit().await?;
    Ok(())
}

async fn disable_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    match set_disabled(&state, &actor, id, true).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/users/{id}")).into_response()),
        Err(error) => user_view(&state, nav, &actor, id, None, form_errors(error)?).await,
    }
}

async fn enable_form(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Redirect> {
    set_disabled(&state, &actor, id, false).await?;
    Ok(Redirect::to(&format!("/admin/users/{id}")))
}

async fn password_link_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    let mut tx = state.begin(&actor).await?;
    policy::person_at_centre(&mut tx, &actor, id).await?;
    let token = password_links::issue(&mut tx, Some(&actor), id).await?;
    tx.commit().await?;
    user_view(&state, nav, &actor, id, Some(password_links::path(&token)), vec![]).await
}

#[derive(Deserialize, utoipa::ToSchema)]
struct NewEnrolment {
    #[serde(default)]
    learner: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    assessor: String,
    #[serde(default)]
    iqa: String,
}

async fn enrol(state: &AppState, actor: &Actor, request: &NewEnrolment) -> AppResult<Uuid> {
    let centre = policy::admin_centre(actor)?;
    let mut tx = state.begin(actor).await?;
    for (field, email) in [("learner", &request.learner), ("assessor", &request.assessor)] {
        let id = super::find_user_id(&mut tx, email)
            .await?
            .ok_or_else(|| AppError::invalid(field, format!("Choose the {field}")))?;
        policy::person_at_centre(&mut tx, actor, id)
            .await
            .map_err(|_| AppError::invalid(field, format!("Choose the {field}")))?;
    }
    let iqa = Some(request.iqa.trim()).filter(|e| !e.is_empty());
    let id = super::enrol(&mut tx, Some(actor), Some(centre), &request.learner, &request.unit, &request.assessor, iqa)
        .await
        .map_err(refused)?;
    tx.commit().await?;
    Ok(id)
}

async fn enrol_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(request): Form<NewEnrolment>,
) -> AppResult<Response> {
    match enrol(&state, &actor, &request).await {
        Ok(_) => Ok(Redirect::to("/admin#enrolments").into_response()),
        Err(error) => admin_view(&state, nav, &actor, form_errors(error)?, None).await,
    }
}

/// Enrols a learner of the centre on a unit with an assessor (and an IQA).
#[utoipa::path(
    post,
    path = "/api/v1/admin/enrolments",
    request_body = NewEnrolment,
    responses(
        (status = 201, description = "Enrolled", body = Created),
        (status = 422, description = "A person or the unit is not found at the centre", body = Problem),
    )
)]
async fn enrol_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(request): Json<NewEnrolment>,
) -> AppResult<(StatusCode, Json<Created>)> {
    let id = enrol(&state, &actor, &request).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

#[derive(Template)]
#[template(path = "accounts/enrolment.html")]
struct EnrolmentPage {
    nav: Nav,
    summary: EnrolmentSummary,
    history: Vec<Assignment>,
    assessors: Vec<UserSummary>,
    iqas: Vec<UserSummary>,
    errors: Vec<FieldError>,
}

async fn enrolment_view(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    errors: Vec<FieldError>,
) -> AppResult<Response> {
    let mut conn = state.begin(actor).await?;
    let centre = policy::enrolment_at_centre(&mut conn, actor, id).await?;
    let summary = assessment::summaries(&mut conn, &[id]).await?.pop().ok_or(AppError::NotFound("enrolment"))?;
    let history = super::assignments(&mut conn, id).await?;
    let people = super::list_users(&mut conn, Some(centre)).await?;
    let with =
        |role: &str| people.iter().filter(|p| !p.disabled && p.roles.iter().any(|r| r == role)).cloned().collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &EnrolmentPage { nav, summary, history, assessors: with("assessor"), iqas: with("iqa"), errors })
}

async fn enrolment_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    enrolment_view(&state, nav, &actor, id, vec![]).await
}

#[derive(Deserialize, utoipa::ToSchema)]
struct Reassignment {
    #[serde(default)]
    assessor: String,
    #[serde(default)]
    iqa: String,
    #[serde(default)]
    reason: String,
}

async fn reassign(state: &AppState, actor: &Actor, id: Uuid, request: &Reassignment) -> AppResult<()> {
    let mut tx = state.begin(actor).await?;
    policy::enrolment_at_centre(&mut tx, actor, id).await?;
    super::reassign(&mut tx, actor, id, &request.assessor, Some(&request.iqa), &request.reason)
        .await
        .map_err(refused)?;
    tx.commit().await?;
    Ok(())
}

async fn reassign_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(request): Form<Reassignment>,
) -> AppResult<Response> {
    match reassign(&state, &actor, id, &request).await {
        Ok(()) => Ok(Redirect::to(&format!("/admin/enrolments/{id}")).into_response()),
        Err(error) => enrolment_view(&state, nav, &actor, id, form_errors(error)?).await,
    }
}

/// Gives an enrolment a new assessor (and IQA), with the reason; the history keeps each period.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/assignment",
    params(("id" = Uuid, Path, description = "The enrolment")),
    request_body = Reassignment,
    responses(
        (status = 204, description = "Reassigned"),
        (status = 422, description = "A person is not found at the centre, or the reason is missing", body = Problem),
    )
)]
async fn reassign_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(request): Json<Reassignment>,
) -> AppResult<StatusCode> {
    reassign(&state, &actor, id, &request).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Template)]
#[template(path = "accounts/import.html")]
struct ImportPage {
    nav: Nav,
    report: Option<super::import::ImportReport>,
    errors: Vec<FieldError>,
}

/// Imports a CSV in one transaction: all rows or none.
async fn import(state: &AppState, actor: &Actor, csv: &[u8]) -> AppResult<super::import::ImportReport> {
    let centre = policy::admin_centre(actor)?;
    let mut tx = state.begin(actor).await?;
    let report = super::import::import_learners(&mut tx, actor, centre, csv).await.map_err(refused)?;
    if report.applied {
        tx.commit().await?;
    }
    Ok(report)
}

async fn import_page(nav: Nav, actor: Actor) -> AppResult<Response> {
    policy::admin_centre(&actor)?;
    render(StatusCode::OK, &ImportPage { nav, report: None, errors: vec![] })
}

const MAX_IMPORT: usize = 2 * 1024 * 1024;

async fn import_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    csrf: Option<axum::Extension<crate::auth::csrf::PendingCheck>>,
    mut multipart: Multipart,
) -> AppResult<Response> {
    policy::admin_centre(&actor)?;
    let bad_upload = |e: axum::extract::multipart::MultipartError| AppError::BadRequest(e.body_text());
    let mut csv = None;
    let mut first = true;
    while let Some(field) = multipart.next_field().await.map_err(bad_upload)? {
        let name = field.name().unwrap_or("").to_string();
        if first && let Some(axum::Extension(crate::auth::csrf::PendingCheck(expected))) = &csrf {
            let given = field.text().await.map_err(bad_upload)?;
            if name != crate::auth::csrf::FIELD || !crate::auth::csrf::matches(expected, &given) {
                return Err(crate::auth::csrf::rejection());
            }
            first = false;
            continue;
        }
        first = false;
        if name == "file" {
            let bytes = field.bytes().await.map_err(bad_upload)?;
            if bytes.len() > MAX_IMPORT {
                return Err(AppError::TooLarge("The CSV file must be 2 MiB or smaller".into()));
            }
            csv = Some(bytes);
        }
    }
    let Some(csv) = csv.filter(|c| !c.is_empty()) else {
        let errors = vec![FieldError::new("file", "Choose a CSV file to import")];
        return render(StatusCode::UNPROCESSABLE_ENTITY, &ImportPage { nav, report: None, errors });
    };
    let report = import(&state, &actor, &csv).await?;
    let status = if report.applied { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &ImportPage { nav, report: Some(report), errors: vec![] })
}

/// Imports learners and their enrolments from CSV, all rows or none: 201 when applied, 422 with
/// each row's problems when not.
#[utoipa::path(
    post,
    path = "/api/v1/imports/learners",
    request_body(content = String, content_type = "text/csv", description = "The CSV file (at most 2 MiB)"),
    responses(
        (status = 201, description = "Every row imported", body = super::import::ImportReport),
        (status = 422, description = "Nothing imported: each row's problems", body = super::import::ImportReport, content_type = "application/json"),
        (status = 413, description = "The file is larger than 2 MiB", body = Problem),
    )
)]
async fn import_api(State(state): State<AppState>, actor: Actor, body: axum::body::Bytes) -> AppResult<Response> {
    if body.len() > MAX_IMPORT {
        return Err(AppError::TooLarge("The CSV file must be 2 MiB or smaller".into()));
    }
    let report = import(&state, &actor, &body).await?;
    let status = if report.applied { StatusCode::CREATED } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok((status, Json(report)).into_response())
}

#[derive(Template)]
#[template(path = "accounts/verifiers.html")]
struct VerifiersPage {
    nav: Nav,
    grants: Vec<VerifierGrant>,
    errors: Vec<FieldError>,
}

async fn verifiers_view(state: &AppState, nav: Nav, actor: &Actor, errors: Vec<FieldError>) -> AppResult<Response> {
    let centre = policy::admin_centre(actor)?;
    let mut conn = state.begin(actor).await?;
    let grants = super::verifier_grants(&mut conn, centre).await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(status, &VerifiersPage { nav, grants, errors })
}

async fn verifiers_page(State(state): State<AppState>, nav: Nav, actor: Actor) -> AppResult<Response> {
    verifiers_view(&state, nav, &actor, vec![]).await
}

#[derive(Deserialize, utoipa::ToSchema)]
struct GrantRequest {
    #[serde(default)]
    verifier: String,
    #[serde(default)]
    starts_on: String,
    #[serde(default)]
    ends_on: String,
    /// `centre` (the default), `units` or `learners`; see `verification::GrantScope`.
    #[serde(default)]
    scope: String,
    #[serde(default)]
    units: String,
    #[serde(default)]
    learners: String,
}

async fn grant(state: &AppState, actor: &Actor, request: &GrantRequest) -> AppResult<Uuid> {
    let centre = policy::admin_centre(actor)?;
    let date = |field: &str, text: &str| {
        NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
            .map_err(|_| FieldError::new(field, "Enter a real date, like 2026-12-01"))
    };
    let mut errors = Vec::new();
    let starts = date("starts_on", &request.starts_on).map_err(|e| errors.push(e)).ok();
    let ends = date("ends_on", &request.ends_on).map_err(|e| errors.push(e)).ok();
    let mut tx = state.begin(actor).await?;
    let verifier = super::find_user_id(&mut tx, &request.verifier).await?;
    if verifier.is_none() {
        errors.push(FieldError::new("verifier", "No external verifier has that email address"));
    }
    let scope =
        crate::verification::GrantScope::parse(&mut tx, centre, &request.scope, &request.units, &request.learners)
            .await
            .map_err(|e| errors.push(e))
            .ok();
    let (Some(starts), Some(ends), Some(verifier), Some(scope), true) =
        (starts, ends, verifier, scope, errors.is_empty())
    else {
        return Err(AppError::Invalid(errors));
    };
    let id =
        super::grant_verifier_access(&mut tx, Some(actor), verifier, centre, starts, ends).await.map_err(refused)?;
    crate::verification::set_grant_scope(&mut tx, Some(actor), id, &scope).await?;
    tx.commit().await?;
    Ok(id)
}

async fn grant_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(request): Form<GrantRequest>,
) -> AppResult<Response> {
    match grant(&state, &actor, &request).await {
        Ok(_) => Ok(Redirect::to("/admin/verifiers").into_response()),
        Err(error) => verifiers_view(&state, nav, &actor, form_errors(error)?).await,
    }
}

/// Gives an external verifier access to the centre (or some of its units or learners) for a
/// period.
#[utoipa::path(
    post,
    path = "/api/v1/verifier-grants",
    request_body = GrantRequest,
    responses(
        (status = 201, description = "Granted", body = Created),
        (status = 422, description = "A field is not accepted", body = Problem),
    )
)]
async fn grant_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(request): Json<GrantRequest>,
) -> AppResult<(StatusCode, Json<Created>)> {
    let id = grant(&state, &actor, &request).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// External verifiers' access to the centre, current and past, latest ending first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/verifier-grants",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the centre's verifier grants", body = Page<VerifierGrant>),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn grants_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<VerifierGrant>>> {
    let request = PageRequest::try_from(&query)?;
    let centre = policy::admin_centre(&actor)?;
    let mut conn = state.begin(&actor).await?;
    let grants = super::verifier_grants(&mut conn, centre).await?;
    Ok(Json(request.page_of(grants, Order::Newest, |g| Position::new(g.ends_on.to_string(), g.id))))
}

async fn revoke_grant(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<()> {
    let centre = policy::admin_centre(actor)?;
    let mut tx = state.begin(actor).await?;
    super::revoke_verifier_access(&mut tx, actor, id, centre)
        .await
        .map_err(|_| AppError::NotFound("verifier access"))?;
    tx.commit().await?;
    Ok(())
}

async fn revoke_grant_form(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Redirect> {
    revoke_grant(&state, &actor, id).await?;
    Ok(Redirect::to("/admin/verifiers"))
}

/// Ends an external verifier's access now.
#[utoipa::path(
    delete,
    path = "/api/v1/verifier-grants/{id}",
    params(("id" = Uuid, Path, description = "The grant")),
    responses((status = 204, description = "Revoked"))
)]
async fn revoke_grant_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<StatusCode> {
    revoke_grant(&state, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
