//! A centre's own settings, set by its administrator: for now, how many working days evidence
//! may wait for assessment before assessors' caseloads show it as overdue.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::policy::{self, Access};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, Problem};
use crate::web::Nav;
use crate::web::route_table::Routes;

pub fn router() -> Routes {
    Routes::new()
        .post("/admin/settings", Access::Admin, update_form)
        .api(Access::Admin, utoipa_axum::routes!(show_api))
        .api(Access::Admin, utoipa_axum::routes!(update_api))
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CentreSettings {
    pub centre_id: Uuid,
    pub assessment_due_working_days: i32,
}

/// Working days a learner's evidence may wait for assessment: 1 to 60.
#[derive(Debug, Clone, Copy)]
pub struct DueWorkingDays(i32);

impl DueWorkingDays {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().parse::<i32>() {
            Ok(days) if (1..=60).contains(&days) => Ok(DueWorkingDays(days)),
            _ => Err("Enter the number of working days as a whole number from 1 to 60".into()),
        }
    }
}

pub async fn load(conn: &mut PgConnection, centre_id: Uuid) -> AppResult<CentreSettings> {
    sqlx::query_as!(
        CentreSettings,
        "SELECT id AS centre_id, assessment_due_working_days FROM centres WHERE id = $1",
        centre_id
    )
    .fetch_optional(conn)
    .await?
    .ok_or(AppError::NotFound("centre"))
}

pub async fn set_due_working_days(
    conn: &mut PgConnection,
    actor: &Actor,
    centre_id: Uuid,
    days: DueWorkingDays,
) -> AppResult<CentreSettings> {
    let before = load(conn, centre_id).await?;
    sqlx::query!("UPDATE centres SET assessment_due_working_days = $2 WHERE id = $1", centre_id, days.0)
        .execute(&mut *conn)
        .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "centre.settings_changed", "centre", Some(centre_id)).as_role(Role::Admin).details(
            serde_json::json!({"assessment_due_working_days": {"from": before.assessment_due_working_days, "to": days.0}}),
        ),
    )
    .await?;
    load(conn, centre_id).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
struct SettingsInput {
    /// A whole number from 1 to 60 (or the same as a string).
    #[serde(default)]
    #[schema(value_type = i32, minimum = 1, maximum = 60)]
    assessment_due_working_days: serde_json::Value,
}

async fn update(state: &AppState, actor: &Actor, days: &str) -> AppResult<CentreSettings> {
    let centre = policy::admin_centre(actor)?;
    let days = DueWorkingDays::parse(days).map_err(|m| AppError::invalid("assessment_due_working_days", m))?;
    let mut tx = state.begin(actor).await?;
    let settings = set_due_working_days(&mut tx, actor, centre, days).await?;
    tx.commit().await?;
    Ok(settings)
}

async fn update_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Form(input): Form<std::collections::HashMap<String, String>>,
) -> AppResult<Response> {
    let days = input.get("assessment_due_working_days").map(String::as_str).unwrap_or("");
    match update(&state, &actor, days).await {
        Ok(_) => Ok(Redirect::to("/admin?settings=saved#settings").into_response()),
        Err(AppError::Invalid(errors)) => super::routes::admin_with_errors(&state, nav, &actor, errors).await,
        Err(other) => Err(other),
    }
}

/// The administrator's centre's settings.
#[utoipa::path(get, path = "/api/v1/centre/settings", responses((status = 200, description = "The settings", body = CentreSettings)))]
async fn show_api(State(state): State<AppState>, actor: Actor) -> AppResult<Json<CentreSettings>> {
    let centre = policy::admin_centre(&actor)?;
    let mut conn = state.begin(&actor).await?;
    Ok(Json(load(&mut conn, centre).await?))
}

/// Changes the centre's settings: how many working days evidence may wait for assessment.
#[utoipa::path(
    patch,
    path = "/api/v1/centre/settings",
    request_body = SettingsInput,
    responses(
        (status = 200, description = "Changed", body = CentreSettings),
        (status = 422, description = "Not a whole number from 1 to 60", body = Problem),
    )
)]
async fn update_api(
    State(state): State<AppState>,
    actor: Actor,
    Json(input): Json<SettingsInput>,
) -> AppResult<Json<CentreSettings>> {
    let days = match &input.assessment_due_working_days {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => String::new(),
    };
    Ok(Json(update(&state, &actor, &days).await?))
}
