//! Catalogue API: which units exist and what they ask for.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::{Unit, UnitSummary};
use crate::AppState;
use crate::auth::Actor;
use crate::error::AppResult;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/units", get(list)).route("/api/v1/units/{code}", get(show))
}

async fn list(State(state): State<AppState>, actor: Actor) -> AppResult<Json<Vec<UnitSummary>>> {
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::list_units(&mut conn).await?))
}

async fn show(State(state): State<AppState>, actor: Actor, Path(code): Path<String>) -> AppResult<Json<Unit>> {
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::find_unit(&mut conn, Some(&code), None).await?))
}
