//! The verifier's landing page in the API: the centres their current grants let them see, with
//! what each grant covers and when it ends. Each centre's overview is
//! `GET /api/v1/verify/centres/{id}`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa_axum::routes;

use super::CurrentGrant;
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::Access;
use crate::error::AppResult;
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new().api(Access::SignedIn, routes!(landing_api))
}

/// The caller's current verifier access (none for anyone who is not a verifier).
#[derive(Debug, Serialize, utoipa::ToSchema)]
struct VerifierLanding {
    /// By centre name; each centre's overview is `GET /api/v1/verify/centres/{centre_id}`.
    grants: Vec<CurrentGrant>,
}

/// The centres the caller may verify today, as the `/verification` page lists them.
#[utoipa::path(
    get,
    path = "/api/v1/verification",
    responses((status = 200, description = "The caller's current grants", body = VerifierLanding))
)]
async fn landing_api(State(state): State<AppState>, actor: Actor) -> AppResult<Json<VerifierLanding>> {
    let mut conn = state.begin(&actor).await?;
    let grants = super::current_grants(&mut conn, &actor).await?;
    Ok(Json(VerifierLanding { grants }))
}
