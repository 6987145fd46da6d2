//! Writing in an evidence item's conversation from its page, and the conversation API.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use utoipa_axum::routes;
use uuid::Uuid;

use super::{Comment, MessageText};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access, Action, Viewed};
use crate::error::{AppError, AppResult, Problem};
use crate::evidence;
use crate::web::Nav;
use crate::web::pagination::{PageQuery, PageRequest};
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new()
        .post("/evidence/{id}/comments", Access::Evidence(Action::Comment), comment_form)
        .api(Access::Evidence(Action::View), routes!(list_api))
        .api(Access::Evidence(Action::Comment), routes!(comment_api))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct NewComment {
    #[serde(default)]
    body: String,
}

/// Checks that the caller may write here before looking at what they wrote, so that someone
/// who may not learns nothing from a validation message.
async fn write(state: &AppState, actor: &Actor, evidence_id: Uuid, body: &str) -> AppResult<Comment> {
    let mut tx = state.begin(actor).await?;
    let access =
        policy::evidence(&state.views, &mut tx, actor, evidence_id, Action::Comment, Viewed::Evidence(evidence_id))
            .await?;
    let text = MessageText::parse(body).map_err(|error| AppError::Invalid(vec![error]))?;
    let comment = super::add_comment(&mut tx, actor, &access, evidence_id, &text).await?;
    tx.commit().await?;
    Ok(comment)
}

async fn comment_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Form(input): Form<NewComment>,
) -> AppResult<Response> {
    match write(&state, &actor, id, &input.body).await {
        Ok(comment) => Ok(Redirect::to(&format!("/evidence/{id}#comment-{}", comment.id)).into_response()),
        Err(AppError::Invalid(errors)) => {
            evidence::detail_with_reply_errors(&state, nav, &actor, id, errors, input.body).await
        }
        Err(other) => Err(other),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct CommentList {
    evidence_id: Uuid,
    can_comment: bool,
    /// One page of the messages, oldest first.
    items: Vec<Comment>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// The conversation about an evidence item, oldest first and a page at a time, and whether the
/// caller may write in it.
#[utoipa::path(
    get,
    path = "/api/v1/evidence/{id}/comments",
    params(("id" = Uuid, Path, description = "The evidence item"), PageQuery),
    responses(
        (status = 200, description = "One page of the conversation", body = CommentList),
        (status = 422, description = "The limit or cursor is not accepted", body = Problem),
    )
)]
async fn list_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<CommentList>> {
    let request = PageRequest::try_from(&query)?;
    let mut tx = state.begin(&actor).await?;
    let access = policy::evidence(&state.views, &mut tx, &actor, id, Action::View, Viewed::Evidence(id)).await?;
    let item = evidence::load(&mut tx, id).await?;
    if item.is_draft() && access.relation != policy::Relation::Learner {
        return Err(AppError::NotFound("evidence item"));
    }
    let can_comment = super::may_comment(&access, &item);
    let page = super::comments_page(&mut tx, id, &request).await?;
    tx.commit().await?;
    Ok(Json(CommentList { evidence_id: id, can_comment, items: page.items, next_cursor: page.next_cursor }))
}

/// Writes a message in an evidence item's conversation (learner, assessor or IQA).
#[utoipa::path(
    post,
    path = "/api/v1/evidence/{id}/comments",
    params(("id" = Uuid, Path, description = "The evidence item")),
    request_body = NewComment,
    responses(
        (status = 201, description = "Written", body = Comment),
        (status = 409, description = "The evidence is still a draft", body = Problem),
        (status = 422, description = "The message is empty or too long", body = Problem),
    )
)]
async fn comment_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(input): Json<NewComment>,
) -> AppResult<(StatusCode, Json<Comment>)> {
    Ok((StatusCode::CREATED, Json(write(&state, &actor, id, &input.body).await?)))
}
