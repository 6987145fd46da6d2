//! The notifications page and API: a person's own notifications, newest first, and marking
//! them read.

use askama::Template;
use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use uuid::Uuid;

use super::Notification;
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::Access;
use crate::error::{AppResult, Problem};
use crate::web::pagination::{PageQuery, PageRequest};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    Routes::new()
        .get("/notifications", Access::SignedIn, page)
        .post("/notifications/read", Access::SignedIn, read_form)
        .api(Access::SignedIn, routes!(list_api))
        .api(Access::SignedIn, routes!(read_api))
}

#[derive(Template)]
#[template(path = "notifications/list.html")]
struct NotificationsPage {
    nav: Nav,
    notifications: Vec<Notification>,
    unread: usize,
}

async fn page(State(state): State<AppState>, nav: Nav, actor: Actor) -> AppResult<Response> {
    let mut conn = state.begin(&actor).await?;
    let notifications = super::list(&mut conn, actor.id).await?;
    conn.commit().await?;
    let unread = notifications.iter().filter(|n| n.is_unread()).count();
    render(StatusCode::OK, &NotificationsPage { nav, notifications, unread })
}

async fn read_form(State(state): State<AppState>, actor: Actor) -> AppResult<Response> {
    let mut tx = state.begin(&actor).await?;
    super::mark_read(&mut tx, actor.id, None).await?;
    tx.commit().await?;
    Ok(Redirect::to("/notifications").into_response())
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct NotificationList {
    /// How many of the caller's notifications are unread, on every page.
    unread: i64,
    items: Vec<Notification>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The caller's own notifications, newest first, a page at a time, and how many are unread.
#[utoipa::path(
    get,
    path = "/api/v1/notifications",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the caller's notifications", body = NotificationList),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn list_api(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<NotificationList>> {
    let request = PageRequest::try_from(&query)?;
    let mut conn = state.begin(&actor).await?;
    let page = super::page(&mut conn, actor.id, &request).await?;
    conn.commit().await?;
    let unread = super::unread_count(&state.pool, actor.id).await?;
    Ok(Json(NotificationList { unread, items: page.items, next_cursor: page.next_cursor }))
}

/// `{}` marks everything read; `{"ids": [...]}` only those.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
struct ReadRequest {
    #[serde(default)]
    #[schema(required = false)]
    ids: Option<Vec<Uuid>>,
}

/// How many notifications were marked read, and how many stay unread.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ReadResult {
    marked_read: u64,
    unread: i64,
}

/// Marks the caller's notifications read: all of them, or those in `ids`.
#[utoipa::path(
    post,
    path = "/api/v1/notifications/read",
    request_body = ReadRequest,
    responses((status = 200, description = "Marked read", body = ReadResult))
)]
async fn read_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(request): Json<ReadRequest>,
) -> AppResult<Json<ReadResult>> {
    let mut tx = state.begin(&actor).await?;
    let marked = super::mark_read(&mut tx, actor.id, request.ids.as_deref()).await?;
    tx.commit().await?;
    let unread = super::unread_count(&state.pool, actor.id).await?;
    Ok(Json(ReadResult { marked_read: marked, unread }))
}
