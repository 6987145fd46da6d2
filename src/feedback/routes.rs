//! Writing in an evidence item's conversation from its page, and the conversation API.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{Comment, MessageText};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access, Action, Viewed};
use crate::error::{AppError, AppResult};
use crate::evidence;
use crate::web::Nav;
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new()
        .post("/evidence/{id}/comments", Access::Evidence(Action::Comment), comment_form)
        .get("/api/v1/evidence/{id}/comments", Access::Evidence(Action::View), list_api)
        .post("/api/v1/evidence/{id}/comments", Access::Evidence(Action::Comment), comment_api)
}

#[derive(Debug, Deserialize)]
struct NewComment {
    #[serde(default)]
    body: String,
}

/// Checks that the caller may write here before looking at what they wrote, so that someone
/// who may not learns nothing from a validation message.
async fn write(state: &AppState, actor: &Actor, evidence_id: Uuid, body: &str) -> AppResult<Comment> {
    let mut tx = state.begin(actor).await?;
    let access =
        policy::evidence(&state.pool, &mut tx, actor, evidence_id, Action::Comment, Viewed::Evidence(evidence_id))
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

#[derive(Serialize)]
struct CommentList {
    evidence_id: Uuid,
    can_comment: bool,
    comments: Vec<Comment>,
}

async fn list_api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Json<CommentList>> {
    let mut tx = state.begin(&actor).await?;
    let access = policy::evidence(&state.pool, &mut tx, &actor, id, Action::View, Viewed::Evidence(id)).await?;
    let item = evidence::load(&mut tx, id).await?;
    if item.is_draft() && access.relation != policy::Relation::Learner {
        return Err(AppError::NotFound("evidence item"));
    }
    let conversation = super::conversation(&mut tx, &access, &item).await?;
    tx.commit().await?;
    Ok(Json(CommentList { evidence_id: id, can_comment: conversation.can_write, comments: conversation.comments }))
}

async fn comment_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(input): Json<NewComment>,
) -> AppResult<(StatusCode, Json<Comment>)> {
    Ok((StatusCode::CREATED, Json(write(&state, &actor, id, &input.body).await?)))
}
