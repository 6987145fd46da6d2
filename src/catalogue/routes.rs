//! Catalogue API: which units exist and what they ask for.

use axum::Json;
use axum::extract::{Path, Query, State};
use utoipa_axum::routes;

use super::{Unit, UnitSummary};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::Access;
use crate::error::AppResult;
use crate::web::pagination::{Order, Page, PageQuery, PageRequest, Position};
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new()
        .api(Access::SignedIn, routes!(list))
        .api(Access::SignedIn, routes!(show))
        .merge(super::transfer_routes::router())
}

/// The units in the catalogue, by code, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/units",
    params(PageQuery),
    responses(
        (status = 200, description = "One page of the units", body = Page<UnitSummary>),
        (status = 422, description = "The limit or cursor is not accepted", body = crate::error::Problem),
    )
)]
async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> AppResult<Json<Page<UnitSummary>>> {
    let request = PageRequest::try_from(&query)?;
    let mut conn = state.begin(&actor).await?;
    let units = super::list_units(&mut conn).await?;
    Ok(Json(request.page_of(units, Order::Oldest, |u| Position::new(u.code.clone(), u.id))))
}

/// One unit with its learning outcomes, assessment criteria and sufficiency rules.
#[utoipa::path(
    get,
    path = "/api/v1/units/{code}",
    params(("code" = String, Path, description = "The unit's code, e.g. CC20")),
    responses((status = 200, description = "The unit", body = Unit))
)]
async fn show(State(state): State<AppState>, actor: Actor, Path(code): Path<String>) -> AppResult<Json<Unit>> {
    let mut conn = state.begin(&actor).await?;
    Ok(Json(super::find_unit(&mut conn, Some(&code), None).await?))
}
