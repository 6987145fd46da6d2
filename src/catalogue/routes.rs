//! Catalogue API: which units exist and what they ask for.

use axum::Json;
use axum::extract::{Path, State};

use super::{Unit, UnitSummary};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::Access;
use crate::error::AppResult;
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new()
        .get("/api/v1/units", Access::SignedIn, list)
        .get("/api/v1/units/{code}", Access::SignedIn, show)
        .merge(super::transfer_routes::router())
}

async fn list(State(state): State<AppState>, actor: Actor) -> AppResult<Json<Vec<UnitSummary>>> {
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::list_units(&mut conn).await?))
}

async fn show(State(state): State<AppState>, actor: Actor, Path(code): Path<String>) -> AppResult<Json<Unit>> {
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::find_unit(&mut conn, Some(&code), None).await?))
}
