//! The notifications page and API: a person's own notifications, newest first, and marking
//! them read.

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::Notification;
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::Access;
use crate::error::AppResult;
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

pub fn router() -> Routes {
    Routes::new()
        .get("/notifications", Access::SignedIn, page)
        .post("/notifications/read", Access::SignedIn, read_form)
        .get("/api/v1/notifications", Access::SignedIn, list_api)
        .post("/api/v1/notifications/read", Access::SignedIn, read_api)
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

#[derive(serde::Serialize)]
struct NotificationList {
    unread: usize,
    notifications: Vec<Notification>,
}

async fn list_api(State(state): State<AppState>, actor: Actor) -> AppResult<Json<NotificationList>> {
    let mut conn = state.begin(&actor).await?;
    let notifications = super::list(&mut conn, actor.id).await?;
    conn.commit().await?;
    Ok(Json(NotificationList { unread: notifications.iter().filter(|n| n.is_unread()).count(), notifications }))
}

/// `{}` marks everything read; `{"ids": [...]}` only those.
#[derive(Debug, Default, Deserialize)]
struct ReadRequest {
    #[serde(default)]
    ids: Option<Vec<Uuid>>,
}

async fn read_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(request): Json<ReadRequest>,
) -> AppResult<Json<serde_json::Value>> {
    let mut tx = state.begin(&actor).await?;
    let marked = super::mark_read(&mut tx, actor.id, request.ids.as_deref()).await?;
    tx.commit().await?;
    let unread = super::unread_count(&state.pool, actor.id).await?;
    Ok(Json(serde_json::json!({"marked_read": marked, "unread": unread})))
}
