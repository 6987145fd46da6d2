//! The verifier's own sample: drawn from the centre's assessed evidence within their access,
//! stratified and seeded exactly as the IQA's (`quality::draw_from`), and widened at will with a
//! minimum rate. Drawing writes nothing but the audit event of the view.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::policy::{self, QualityScope};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, FieldError, Problem};
use crate::quality::Stratum;
use crate::web::openapi::Binary;
use crate::web::{Nav, render};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SampleQuery {
    /// The seed to draw with; a new one when empty.
    #[serde(default)]
    #[param(required = false)]
    seed: String,
    /// A minimum sampling rate in percent, to widen the centre's rates.
    #[serde(default)]
    #[param(required = false)]
    widen: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VerifierSample {
    pub centre_id: Uuid,
    pub seed: String,
    pub widen: Option<i32>,
    pub population: usize,
    pub strata: Vec<Stratum>,
}

impl VerifierSample {
    pub fn drawn(&self) -> usize {
        self.strata.iter().map(|s| s.drawn.len()).sum()
    }
}

async fn draw(state: &AppState, actor: &Actor, centre_id: Uuid, query: &SampleQuery) -> AppResult<VerifierSample> {
    let seed = crate::quality::sampling::parse_seed(Some(&query.seed)).map_err(|e| AppError::Invalid(vec![e]))?;
    let widen = match query.widen.trim() {
        "" => None,
        text => Some(
            text.trim_end_matches('%')
                .parse::<i32>()
                .ok()
                .filter(|rate| (1..=100).contains(rate))
                .ok_or_else(|| AppError::Invalid(vec![FieldError::new("widen", "Enter a rate from 1 to 100")]))?,
        ),
    };
    let mut conn = state.begin(actor).await?;
    policy::verifier_centre(&mut conn, actor, centre_id).await?;
    let in_scope = policy::verifier_enrolments(&mut conn, actor).await?;
    let population: Vec<_> =
        crate::quality::population(&mut conn, &QualityScope::Verifier { centres: vec![centre_id] })
            .await?
            .into_iter()
            .filter(|item| in_scope.contains(&item.enrolment_id))
            .collect();
    let strategy = crate::quality::sampling::strategy(&mut conn, centre_id).await?;
    conn.commit().await?;
    let mut strata = crate::quality::draw_from(&seed, &population, &strategy);
    if let Some(rate) = widen {
        for stratum in &mut strata {
            let take = (rate as usize * stratum.size).div_ceil(100).clamp(1, stratum.size);
            if take > stratum.drawn.len() {
                stratum.drawn = stratum
                    .members
                    .iter()
                    .take(take)
                    .filter_map(|id| population.iter().find(|item| item.evidence_id == *id))
                    .cloned()
                    .collect();
                stratum.rate_percent = rate;
            }
        }
    }
    let mut views = state.pool.begin().await?;
    audit::record(
        &mut views,
        Event::new(Some(actor), "verifier.drew_sample", "centre", Some(centre_id))
            .as_role(Role::Eqa)
            .centre(centre_id)
            .details(serde_json::json!({"seed": seed, "widen": widen, "population": population.len()})),
    )
    .await?;
    views.commit().await?;
    Ok(VerifierSample { centre_id, seed, widen, population: population.len(), strata })
}

#[derive(Template)]
#[template(path = "verification/sample.html")]
struct SamplePage {
    nav: Nav,
    errors: Vec<FieldError>,
    seed: String,
    widen: String,
    centre_id: Uuid,
    sample: Option<VerifierSample>,
}

pub async fn sample_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<SampleQuery>,
) -> AppResult<Response> {
    match draw(&state, &actor, id, &query).await {
        Ok(sample) => {
            let page = SamplePage {
                nav,
                errors: vec![],
                seed: sample.seed.clone(),
                widen: query.widen,
                centre_id: id,
                sample: Some(sample),
            };
            render(StatusCode::OK, &page)
        }
        Err(AppError::Invalid(errors)) => {
            let page = SamplePage { nav, errors, seed: query.seed, widen: query.widen, centre_id: id, sample: None };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(other) => Err(other),
    }
}

/// The sampled portfolios, each as an offline export with its hash manifest, in one ZIP.
#[utoipa::path(
    get,
    path = "/api/v1/verify/centres/{id}/sample/pack",
    params(("id" = Uuid, Path, description = "The centre"), SampleQuery),
    responses(
        (status = 200, description = "The sample pack", content_type = "application/zip", body = inline(Binary),
            headers(("content-disposition" = String))),
        (status = 409, description = "The sample holds no portfolios", body = Problem),
        (status = 422, description = "The seed or rate is not accepted", body = Problem),
    )
)]
pub async fn sample_pack(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<SampleQuery>,
) -> AppResult<Response> {
    let sample = draw(&state, &actor, id, &query).await?;
    let mut enrolments: Vec<Uuid> =
        sample.strata.iter().flat_map(|s| s.drawn.iter().map(|item| item.enrolment_id)).collect();
    enrolments.sort();
    enrolments.dedup();
    let centre = sqlx::query_scalar!("SELECT name FROM centres WHERE id = $1", id)
        .fetch_one(&state.pool)
        .await
        .map_err(AppError::from)?;
    let title = format!("Verifier sample pack: {centre} (seed {})", sample.seed);
    let bundle = crate::export::offline::Bundle {
        title: &title,
        format: "eportfolio verifier sample pack 1",
        about: serde_json::json!({"centre": centre, "centre_id": id, "seed": sample.seed, "widen": sample.widen,
                                  "population": sample.population, "drawn": sample.drawn()}),
    };
    let stem: String =
        sample.seed.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).take(40).collect();
    crate::export::bundle_download(&state, &actor, &bundle, &format!("sample-pack-{stem}"), &enrolments).await
}

/// The verifier's own sample of the centre's assessed evidence, stratified and seeded as the
/// IQA's, widened to at least `widen` percent. The view is audited.
#[utoipa::path(
    get,
    path = "/api/v1/verify/centres/{id}/sample",
    params(("id" = Uuid, Path, description = "The centre"), SampleQuery),
    responses(
        (status = 200, description = "The sample", body = VerifierSample),
        (status = 422, description = "The seed or rate is not accepted", body = Problem),
    )
)]
pub async fn sample_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<SampleQuery>,
) -> AppResult<Json<VerifierSample>> {
    Ok(Json(draw(&state, &actor, id, &query).await?))
}
