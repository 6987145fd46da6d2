//! The IQA's records and the sample generator. A draw is reproducible by anyone: within each
//! stratum (assessor × unit × method × assessment location × interim/summative) items are
//! ordered by SHA-256 of `seed:evidence-id` (lowercase hex, hyphenated id) and the first
//! `max(1, ceil(rate × size / 100))` are taken; the seed, the rates and the population are kept.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::policy::{QualityScope, SampleAccess};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, FieldError};
use crate::web::pagination::{Order, Page, PageRequest, Position, bad_cursor};

/// How much an assessor's decisions are sampled: new or unqualified assessors near all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskBand {
    New,
    Developing,
    Experienced,
}

impl RiskBand {
    pub const ALL: [RiskBand; 3] = [RiskBand::New, RiskBand::Developing, RiskBand::Experienced];

    pub fn as_str(self) -> &'static str {
        match self {
            RiskBand::New => "new",
            RiskBand::Developing => "developing",
            RiskBand::Experienced => "experienced",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RiskBand::New => "New or unqualified",
            RiskBand::Developing => "Developing",
            RiskBand::Experienced => "Experienced",
        }
    }

    /// The rate used until the centre sets its own.
    pub fn default_rate(self) -> i32 {
        match self {
            RiskBand::New => 100,
            RiskBand::Developing => 50,
            RiskBand::Experienced => 20,
        }
    }

    pub fn parse(text: &str) -> Result<RiskBand, String> {
        RiskBand::ALL
            .into_iter()
            .find(|b| b.as_str() == text.trim())
            .ok_or_else(|| "Choose the risk band: new, developing or experienced".to_string())
    }
}

/// Interim: the unit is not signed off yet; summative: it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SampleStage)]
pub enum Stage {
    Interim,
    Summative,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Interim => "interim",
            Stage::Summative => "summative",
        }
    }

    fn from_db(text: &str) -> Stage {
        if text == "summative" { Stage::Summative } else { Stage::Interim }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SampleOutcome {
    Agree,
    ReferBack,
}

impl SampleOutcome {
    pub fn parse(text: &str) -> Result<SampleOutcome, String> {
        match text.trim() {
            "agree" => Ok(SampleOutcome::Agree),
            "refer_back" => Ok(SampleOutcome::ReferBack),
            _ => Err("Choose whether you agree with the assessment or refer it back".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SampleOutcome::Agree => "agree",
            SampleOutcome::ReferBack => "refer_back",
        }
    }
}

/// A sampling rate in percent, 1 to 100.
#[derive(Debug, Clone, Copy)]
pub struct RatePercent(i32);

impl RatePercent {
    pub fn parse(text: &str) -> Result<RatePercent, String> {
        match text.trim().trim_end_matches('%').trim().parse::<i32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(RatePercent(n)),
            _ => Err("Enter the sampling rate as a whole number of percent from 1 to 100".into()),
        }
    }
}

/// Text a person must write (feedback, a response, a note): trimmed, not empty.
fn required(field: &str, text: &str, message: &str) -> Result<String, FieldError> {
    let text = text.trim();
    if text.is_empty() { Err(FieldError::new(field, message)) } else { Ok(text.to_string()) }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AssessorBand {
    pub assessor_id: Uuid,
    pub name: String,
    pub band: RiskBand,
    pub rate_percent: i32,
    pub set_by: Option<String>,
    pub set_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BandRate {
    pub band: RiskBand,
    #[schema(value_type = String)]
    pub label: &'static str,
    pub rate_percent: i32,
    pub set_by: Option<String>,
    pub set_at: Option<DateTime<Utc>>,
}

/// A centre's sampling strategy.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = SamplingStrategy)]
pub struct Strategy {
    pub centre_id: Uuid,
    pub rates: Vec<BandRate>,
    pub assessors: Vec<AssessorBand>,
}

impl Strategy {
    pub fn rate_for(&self, band: RiskBand) -> i32 {
        self.rates.iter().find(|r| r.band == band).map_or(band.default_rate(), |r| r.rate_percent)
    }

    pub fn band_of(&self, assessor_id: Uuid) -> RiskBand {
        self.assessors.iter().find(|a| a.assessor_id == assessor_id).map_or(RiskBand::New, |a| a.band)
    }
}

/// Each risk band's rate at a centre (the default until an IQA sets one).
async fn band_rates(conn: &mut PgConnection, centre_id: Uuid) -> AppResult<Vec<BandRate>> {
    let rates = sqlx::query!(
        r#"SELECT DISTINCT ON (r.band) r.band, r.rate_percent, u.name AS set_by, r.set_at
           FROM iqa_band_rates r JOIN users u ON u.id = r.set_by
           WHERE r.centre_id = $1 ORDER BY r.band, r.seq DESC"#,
        centre_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let rates = RiskBand::ALL
        .into_iter()
        .map(|band| {
            let set = rates.iter().find(|r| r.band == band.as_str());
            BandRate {
                band,
                label: band.label(),
                rate_percent: set.map_or(band.default_rate(), |r| r.rate_percent),
                set_by: set.map(|r| r.set_by.clone()),
                set_at: set.map(|r| r.set_at),
            }
        })
        .collect::<Vec<_>>();
    Ok(rates)
}

fn rate_in(rates: &[BandRate], band: RiskBand) -> i32 {
    rates.iter().find(|r| r.band == band).map_or(band.default_rate(), |r| r.rate_percent)
}

pub async fn strategy(conn: &mut PgConnection, centre_id: Uuid) -> AppResult<Strategy> {
    let rates = band_rates(conn, centre_id).await?;
    let assessors = sqlx::query!(
        r#"SELECT u.id, u.name, b.band AS "band?", s.name AS "set_by?", b.set_at AS "set_at?"
           FROM users u
           JOIN user_roles ur ON ur.user_id = u.id AND ur.centre_id = $1 AND ur.role = 'assessor'
           LEFT JOIN LATERAL (SELECT band, set_by, set_at FROM iqa_assessor_bands
                              WHERE centre_id = $1 AND assessor_id = u.id ORDER BY seq DESC LIMIT 1) b ON true
           LEFT JOIN users s ON s.id = b.set_by
           WHERE u.disabled_at IS NULL
           ORDER BY u.name, u.id"#,
        centre_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let rate_of = |band: RiskBand| rate_in(&rates, band);
    let assessors = assessors
        .into_iter()
        .map(|a| {
            let band = a.band.as_deref().and_then(|b| RiskBand::parse(b).ok()).unwrap_or(RiskBand::New);
            AssessorBand {
                assessor_id: a.id,
                name: a.name,
                band,
                rate_percent: rate_of(band),
                set_by: a.set_by,
                set_at: a.set_at,
            }
        })
        .collect();
    Ok(Strategy { centre_id, rates, assessors })
}

/// One assessor's band at one of the centres in scope.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CentreAssessorBand {
    pub centre_id: Uuid,
    #[serde(flatten)]
    pub assessor: AssessorBand,
}

/// A centre's band rates: the summary every page of the strategy carries.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CentreRates {
    pub centre_id: Uuid,
    pub rates: Vec<BandRate>,
}

/// One page of the sampling strategy: assessors with their band, by centre then name, and each
/// centre's rates on every page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = SamplingStrategyPage)]
pub struct StrategyPage {
    pub items: Vec<CentreAssessorBand>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
    pub centres: Vec<CentreRates>,
}

/// The strategy of `centres` a page of assessors at a time. Keyset on (centre, name, id).
pub async fn strategy_page(
    conn: &mut PgConnection,
    centres: &[Uuid],
    request: &PageRequest,
) -> AppResult<StrategyPage> {
    let mut rates = Vec::new();
    for &centre_id in centres {
        rates.push(CentreRates { centre_id, rates: band_rates(conn, centre_id).await? });
    }
    let after = request.after_parts(2)?;
    let (after_centre, after_name, after_id) = match &after {
        None => (None, None, None),
        Some((parts, id)) => {
            let centre: Uuid = parts[0].parse().map_err(|_| bad_cursor())?;
            (Some(centre), Some(parts[1].clone()), Some(*id))
        }
    };
    let rows = sqlx::query!(
        r#"SELECT ur.centre_id, u.id, u.name, b.band AS "band?", s.name AS "set_by?", b.set_at AS "set_at?"
           FROM user_roles ur
           JOIN users u ON u.id = ur.user_id
           LEFT JOIN LATERAL (SELECT band, set_by, set_at FROM iqa_assessor_bands
                              WHERE centre_id = ur.centre_id AND assessor_id = u.id ORDER BY seq DESC LIMIT 1) b ON true
           LEFT JOIN users s ON s.id = b.set_by
           WHERE ur.centre_id = ANY($1) AND ur.role = 'assessor' AND u.disabled_at IS NULL
             AND ($2::uuid IS NULL OR (ur.centre_id, u.name, u.id) > ($2, $3, $4))
           ORDER BY ur.centre_id, u.name, u.id LIMIT $5"#,
        centres,
        after_centre,
        after_name,
        after_id,
        request.fetch()
    )
    .fetch_all(&mut *conn)
    .await?;
    let page = request.keyed_page(
        rows.into_iter()
            .map(|a| {
                let band = a.band.as_deref().and_then(|b| RiskBand::parse(b).ok()).unwrap_or(RiskBand::New);
                let centre_rates = rates.iter().find(|r| r.centre_id == a.centre_id).map_or(&[][..], |r| &r.rates[..]);
                let position = Position::parts(&[&a.centre_id.to_string(), &a.name], a.id);
                let assessor = AssessorBand {
                    assessor_id: a.id,
                    name: a.name,
                    band,
                    rate_percent: rate_in(centre_rates, band),
                    set_by: a.set_by,
                    set_at: a.set_at,
                };
                (position, CentreAssessorBand { centre_id: a.centre_id, assessor })
            })
            .collect(),
    );
    Ok(StrategyPage { items: page.items, next_cursor: page.next_cursor, centres: rates })
}

/// Puts an assessor of the centre in a risk band (a new row; the newest wins).
pub async fn set_band(
    conn: &mut PgConnection,
    actor: &Actor,
    centre_id: Uuid,
    assessor_id: Uuid,
    band: RiskBand,
) -> AppResult<()> {
    let assessor = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_roles WHERE user_id = $1 AND centre_id = $2 AND role = 'assessor') AS "found!""#,
        assessor_id,
        centre_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !assessor {
        return Err(AppError::invalid("assessor_id", "Choose an assessor of your centre"));
    }
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO iqa_assessor_bands (id, centre_id, assessor_id, band, set_by) VALUES ($1, $2, $3, $4, $5)",
        id,
        centre_id,
        assessor_id,
        band.as_str(),
        actor.id
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.assessor_band_set", "user", Some(assessor_id))
            .as_role(Role::Iqa)
            .details(serde_json::json!({"centre_id": centre_id, "band": band.as_str()})),
    )
    .await?;
    Ok(())
}

/// Sets the sampling rate of a risk band at the centre.
pub async fn set_rate(
    conn: &mut PgConnection,
    actor: &Actor,
    centre_id: Uuid,
    band: RiskBand,
    rate: RatePercent,
) -> AppResult<()> {
    sqlx::query!(
        "INSERT INTO iqa_band_rates (id, centre_id, band, rate_percent, set_by) VALUES ($1, $2, $3, $4, $5)",
        Uuid::new_v4(),
        centre_id,
        band.as_str(),
        rate.0,
        actor.id
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.sampling_rate_set", "centre", Some(centre_id))
            .as_role(Role::Iqa)
            .details(serde_json::json!({"band": band.as_str(), "rate_percent": rate.0})),
    )
    .await?;
    Ok(())
}

/// One assessed evidence item an IQA may sample.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PopulationItem {
    pub evidence_id: Uuid,
    pub title: String,
    pub enrolment_id: Uuid,
    pub centre_id: Uuid,
    pub learner_id: Uuid,
    pub learner_name: String,
    pub assessor_id: Uuid,
    pub assessor_name: String,
    pub unit_id: Uuid,
    pub unit_code: String,
    pub method: String,
    /// The evidence's assessment location, or "workplace" when none was given.
    pub location: String,
    pub stage: Stage,
    pub assessed_at: DateTime<Utc>,
    /// Criteria (elements) decided on this item.
    pub criteria: Vec<String>,
}

impl PopulationItem {
    /// The stratum's key: every assessor, unit, method, location and stage is represented.
    pub fn stratum(&self) -> (String, String, String, String, Stage, Uuid) {
        (
            self.assessor_name.clone(),
            self.unit_code.clone(),
            self.method.clone(),
            self.location.to_lowercase(),
            self.stage,
            self.assessor_id,
        )
    }
}

/// Assessed, submitted evidence in scope. For an IQA: enrolments they quality-assure, never one
/// they assess nor an item they made a decision on. For a verifier: every such item at their
/// centres.
pub async fn population(conn: &mut PgConnection, scope: &QualityScope) -> AppResult<Vec<PopulationItem>> {
    let iqa = scope.iqa_id();
    let rows = sqlx::query!(
        r#"SELECT e.id, e.title, e.method, e.assessment_location, en.id AS enrolment_id, en.centre_id,
                  en.learner_id, l.name AS learner_name, en.assessor_id, a.name AS assessor_name,
                  u.id AS unit_id, u.code AS unit_code,
                  MAX(d.decided_at) AS "assessed_at!",
                  array_agg(DISTINCT c.number) AS "criteria!"
           FROM evidence_items e
           JOIN enrolments en ON en.id = e.enrolment_id
           JOIN users l ON l.id = en.learner_id
           JOIN users a ON a.id = en.assessor_id
           JOIN units u ON u.id = en.unit_id
           JOIN decisions d ON d.evidence_id = e.id
           JOIN criteria c ON c.id = d.criterion_id
           WHERE e.status = 'submitted' AND en.centre_id = ANY($2)
             AND ($1::uuid IS NULL OR (en.iqa_id = $1 AND en.assessor_id <> $1
                  AND NOT EXISTS (SELECT 1 FROM decisions own WHERE own.evidence_id = e.id AND own.assessor_id = $1)))
           GROUP BY e.id, en.id, l.name, a.name, u.id
           ORDER BY e.id"#,
        iqa,
        &scope.centres()
    )
    .fetch_all(&mut *conn)
    .await?;
    let mut summative = HashMap::new();
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let stage = match summative.get(&row.enrolment_id) {
            Some(stage) => *stage,
            None => {
                let signed = crate::assessment::sign_off::in_force(conn, row.enrolment_id).await?.is_some();
                let stage = if signed { Stage::Summative } else { Stage::Interim };
                summative.insert(row.enrolment_id, stage);
                stage
            }
        };
        let mut criteria = row.criteria;
        criteria.sort_by_key(|c| c.split('.').map(|p| p.parse::<u32>().unwrap_or(u32::MAX)).collect::<Vec<_>>());
        let location = row.assessment_location.trim();
        items.push(PopulationItem {
            evidence_id: row.id,
            title: row.title,
            enrolment_id: row.enrolment_id,
            centre_id: row.centre_id,
            learner_id: row.learner_id,
            learner_name: row.learner_name,
            assessor_id: row.assessor_id,
            assessor_name: row.assessor_name,
            unit_id: row.unit_id,
            unit_code: row.unit_code,
            method: row.method,
            location: if location.is_empty() { "workplace".into() } else { location.to_string() },
            stage,
            assessed_at: row.assessed_at,
            criteria,
        });
    }
    Ok(items)
}

/// One stratum of a draw: its size, the rate applied and the items drawn.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Stratum {
    pub assessor_name: String,
    pub band: RiskBand,
    pub unit_code: String,
    pub method: String,
    pub location: String,
    pub stage: Stage,
    pub size: usize,
    pub rate_percent: i32,
    /// Every item of the stratum in rank order, so the draw can be checked.
    pub members: Vec<Uuid>,
    pub drawn: Vec<PopulationItem>,
}

/// The rank of an item in a draw: SHA-256 of `seed:id`, so anyone can re-derive the order.
pub fn rank(seed: &str, id: Uuid) -> String {
    hex::encode(Sha256::digest(format!("{seed}:{}", id.hyphenated()).as_bytes()))
}

/// Draws the stratified sample from `population` with `seed` under `strategy`: a pure function.
pub fn draw_from(seed: &str, population: &[PopulationItem], strategy: &Strategy) -> Vec<Stratum> {
    let mut strata: BTreeMap<_, Vec<&PopulationItem>> = BTreeMap::new();
    for item in population {
        strata.entry(item.stratum()).or_default().push(item);
    }
    strata
        .into_values()
        .map(|mut items| {
            items.sort_by_cached_key(|item| rank(seed, item.evidence_id));
            let first = items[0];
            let band = strategy.band_of(first.assessor_id);
            let rate = strategy.rate_for(band);
            let size = items.len();
            let take = (rate as usize * size).div_ceil(100).clamp(1, size);
            Stratum {
                assessor_name: first.assessor_name.clone(),
                band,
                unit_code: first.unit_code.clone(),
                method: first.method.clone(),
                location: first.location.clone(),
                stage: first.stage,
                size,
                rate_percent: rate,
                members: items.iter().map(|i| i.evidence_id).collect(),
                drawn: items.into_iter().take(take).cloned().collect(),
            }
        })
        .collect()
}

/// A seed a person typed, or a fresh random one.
pub fn parse_seed(text: Option<&str>) -> Result<String, FieldError> {
    match text.map(str::trim).filter(|s| !s.is_empty()) {
        Some(seed) if seed.chars().count() > 100 => Err(FieldError::new("seed", "Keep the seed to 100 characters")),
        Some(seed) => Ok(seed.to_string()),
        None => Ok(format!("{:016x}", rand::random::<u64>())),
    }
}

/// A draw as recorded.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Draw {
    pub id: Option<Uuid>,
    pub seed: String,
    pub drawn_at: DateTime<Utc>,
    pub parameters: serde_json::Value,
    pub population_size: usize,
    pub population: Vec<Uuid>,
    pub drawn: Vec<Uuid>,
    pub strata: Vec<Stratum>,
}

fn parameters(strategy: &Strategy, population: &[PopulationItem]) -> serde_json::Value {
    let bands: BTreeMap<String, &str> =
        population.iter().map(|i| (i.assessor_id.to_string(), strategy.band_of(i.assessor_id).as_str())).collect();
    let rates: BTreeMap<&str, i32> = strategy.rates.iter().map(|r| (r.band.as_str(), r.rate_percent)).collect();
    serde_json::json!({
        "method": "per stratum (assessor, unit, method, location, stage): order by sha256(seed + ':' + evidence id), take max(1, ceil(rate * size / 100))",
        "rates_percent": rates,
        "assessor_bands": bands,
    })
}

/// Draws a sample for the IQA. Unless `preview`, records the draw (seed, parameters and
/// population) and adds each drawn item not already awaiting a sample to the plan for `planned_on`.
pub async fn draw(
    conn: &mut PgConnection,
    actor: &Actor,
    scope: &QualityScope,
    seed: String,
    planned_on: NaiveDate,
    preview: bool,
) -> AppResult<Draw> {
    let QualityScope::Iqa { centre_id, .. } = scope else {
        return Err(AppError::Forbidden("Only internal quality assurers can draw samples".into()));
    };
    let population = population(conn, scope).await?;
    let strategy = strategy(conn, *centre_id).await?;
    let strata = draw_from(&seed, &population, &strategy);
    let drawn: Vec<Uuid> = strata.iter().flat_map(|s| s.drawn.iter().map(|i| i.evidence_id)).collect();
    let parameters = parameters(&strategy, &population);
    let ids: Vec<Uuid> = population.iter().map(|i| i.evidence_id).collect();
    let mut result = Draw {
        id: None,
        seed: seed.clone(),
        drawn_at: Utc::now(),
        parameters: parameters.clone(),
        population_size: population.len(),
        population: population.iter().map(|i| i.evidence_id).collect(),
        drawn: drawn.clone(),
        strata,
    };
    if preview {
        return Ok(result);
    }
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO iqa_draws (id, iqa_id, centre_id, seed, parameters, population, drawn, drawn_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        id,
        actor.id,
        centre_id,
        seed,
        parameters,
        &ids,
        &drawn,
        result.drawn_at
    )
    .execute(&mut *conn)
    .await?;
    let mut planned = 0;
    for item in result.strata.iter().flat_map(|s| s.drawn.iter()) {
        let waiting = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM iqa_plan_items p WHERE p.iqa_id = $1 AND p.evidence_id = $2
                   AND NOT EXISTS (SELECT 1 FROM iqa_samples s WHERE s.plan_item_id = p.id)) AS "waiting!""#,
            actor.id,
            item.evidence_id
        )
        .fetch_one(&mut *conn)
        .await?;
        if !waiting {
            insert_plan_item(conn, actor.id, item, planned_on, Some(id)).await?;
            planned += 1;
        }
    }
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.sample_drawn", "iqa_draw", Some(id))
            .as_role(Role::Iqa)
            .details(serde_json::json!({"seed": seed, "population": ids.len(), "drawn": drawn, "planned": planned})),
    )
    .await?;
    result.id = Some(id);
    Ok(result)
}

async fn insert_plan_item(
    conn: &mut PgConnection,
    iqa_id: Uuid,
    item: &PopulationItem,
    planned_on: NaiveDate,
    draw_id: Option<Uuid>,
) -> Result<Uuid, sqlx::Error> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO iqa_plan_items (id, iqa_id, centre_id, enrolment_id, evidence_id, assessor_id, unit_id, method,
             stage, planned_on, draw_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        id,
        iqa_id,
        item.centre_id,
        item.enrolment_id,
        item.evidence_id,
        item.assessor_id,
        item.unit_id,
        item.method,
        item.stage.as_str(),
        planned_on,
        draw_id
    )
    .execute(conn)
    .await?;
    Ok(id)
}

/// Recorded draws in scope, newest first.
pub async fn draws(conn: &mut PgConnection, scope: &QualityScope) -> AppResult<Vec<Draw>> {
    let rows = sqlx::query!(
        "SELECT id, seed, parameters, population, drawn, drawn_at FROM iqa_draws
         WHERE centre_id = ANY($2) AND ($1::uuid IS NULL OR iqa_id = $1) ORDER BY drawn_at DESC",
        scope.iqa_id(),
        &scope.centres()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Draw {
            id: Some(r.id),
            seed: r.seed,
            drawn_at: r.drawn_at,
            parameters: r.parameters,
            population_size: r.population.len(),
            population: r.population,
            drawn: r.drawn,
            strata: Vec::new(),
        })
        .collect())
}

/// One page of the recorded draws in scope, newest first. Keyset on (drawn_at, id).
pub async fn draws_page(conn: &mut PgConnection, scope: &QualityScope, request: &PageRequest) -> AppResult<Page<Draw>> {
    let (after_at, after_id) = request.after_time()?.map(|a| (a.at, a.id)).unzip();
    let rows = sqlx::query!(
        "SELECT id, seed, parameters, population, drawn, drawn_at FROM iqa_draws
         WHERE centre_id = ANY($2) AND ($1::uuid IS NULL OR iqa_id = $1)
           AND ($3::timestamptz IS NULL OR (drawn_at, id) < ($3, $4))
         ORDER BY drawn_at DESC, id DESC LIMIT $5",
        scope.iqa_id(),
        &scope.centres(),
        after_at,
        after_id,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(
        rows.into_iter()
            .map(|r| {
                let draw = Draw {
                    id: Some(r.id),
                    seed: r.seed,
                    drawn_at: r.drawn_at,
                    parameters: r.parameters,
                    population_size: r.population.len(),
                    population: r.population,
                    drawn: r.drawn,
                    strata: Vec::new(),
                };
                (Position::time(r.drawn_at, r.id), draw)
            })
            .collect(),
    ))
}

/// Adds an item of the IQA's population to their plan by hand.
pub async fn add_to_plan(
    conn: &mut PgConnection,
    actor: &Actor,
    scope: &QualityScope,
    evidence_id: Uuid,
    planned_on: NaiveDate,
) -> AppResult<Uuid> {
    let population = population(conn, scope).await?;
    let item = population.iter().find(|i| i.evidence_id == evidence_id).ok_or_else(|| {
        AppError::invalid(
            "evidence_id",
            "Choose assessed evidence of a learner you quality-assure (never your own assessment decisions)",
        )
    })?;
    let id = insert_plan_item(conn, actor.id, item, planned_on, None).await?;
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.plan_item_added", "iqa_sample", Some(id))
            .as_role(Role::Iqa)
            .enrolment(item.enrolment_id)
            .details(serde_json::json!({"evidence_id": evidence_id, "planned_on": planned_on})),
    )
    .await?;
    Ok(id)
}

/// Where a plan item stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = SampleStatus)]
pub enum Status {
    Planned,
    Overdue,
    Agreed,
    ReferredBack,
    Responded,
    Closed,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Planned => "Planned",
            Status::Overdue => "Overdue",
            Status::Agreed => "Sampled: agreed",
            Status::ReferredBack => "Referred back: awaiting the assessor",
            Status::Responded => "Assessor responded: awaiting closure",
            Status::Closed => "Closed",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Planned => "planned",
            Status::Overdue => "overdue",
            Status::Agreed => "agreed",
            Status::ReferredBack => "referred_back",
            Status::Responded => "responded",
            Status::Closed => "closed",
        }
    }
}

/// A sampling-plan item with its sample record, response and closure, if any.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PlanRow {
    pub id: Uuid,
    pub iqa_name: String,
    pub evidence_id: Uuid,
    pub evidence_title: String,
    pub enrolment_id: Uuid,
    pub learner_name: String,
    pub assessor_id: Uuid,
    pub assessor_name: String,
    pub unit_code: String,
    pub method: String,
    pub stage: Stage,
    pub planned_on: NaiveDate,
    pub draw_seed: Option<String>,
    pub status: Status,
    pub outcome: Option<String>,
    pub feedback: Option<String>,
    pub actions: Option<String>,
    pub recorded_at: Option<DateTime<Utc>>,
    pub sha256: Option<String>,
    pub response: Option<String>,
    pub responded_at: Option<DateTime<Utc>>,
    pub closure_note: Option<String>,
    pub closed_at: Option<DateTime<Utc>>,
}

impl PlanRow {
    pub fn status_label(&self) -> &'static str {
        self.status.label()
    }

    pub fn is_recorded(&self) -> bool {
        self.outcome.is_some()
    }
}

/// Where a page of the plan starts: after this (planned date, assessor, learner, item).
type PlanAfter = (NaiveDate, String, String, Uuid);

/// Plan items: the IQA's own (`iqa`), those of `centres` (a verifier), those sampling an
/// assessor's decisions (`assessor`), or one (`only`). The caller passes just one of them;
/// `after` and `limit` cut a page of the plan's order.
#[allow(clippy::too_many_arguments)]
async fn plan_rows(
    conn: &mut PgConnection,
    iqa: Option<Uuid>,
    centres: &[Uuid],
    assessor: Option<Uuid>,
    only: Option<Uuid>,
    evidence: Option<Uuid>,
    after: Option<PlanAfter>,
    limit: i64,
) -> AppResult<Vec<PlanRow>> {
    let (after_on, after_assessor, after_learner, after_id) = match after {
        None => (None, None, None, None),
        Some((on, assessor, learner, id)) => (Some(on), Some(assessor), Some(learner), Some(id)),
    };
    // Twelve tables: left to reorder them, the planner spends 13-29 ms on a statement that runs in
    // under one. They are written in the order to join them (the plan items first, then one row
    // of each of the others), so the planner is told to keep it (BENCHMARKS.md, fix 6).
    let rows = crate::db::with_planner_setting(conn, "join_collapse_limit", "1", async |conn| {
        Ok(sqlx::query!(
            r#"SELECT p.id, i.name AS iqa_name, p.evidence_id, e.title, p.enrolment_id, l.name AS learner_name,
                  p.assessor_id, a.name AS assessor_name, u.code AS unit_code, p.method, p.stage, p.planned_on,
                  dr.seed AS "seed?", s.outcome AS "outcome?", s.feedback AS "feedback?", s.actions AS "actions?",
                  s.recorded_at AS "recorded_at?", s.sha256 AS "sha256?", r.response AS "response?",
                  r.responded_at AS "responded_at?", c.note AS "note?", c.closed_at AS "closed_at?"
           FROM iqa_plan_items p
           JOIN users i ON i.id = p.iqa_id
           JOIN evidence_items e ON e.id = p.evidence_id
           JOIN enrolments en ON en.id = p.enrolment_id
           JOIN users l ON l.id = en.learner_id
           JOIN users a ON a.id = p.assessor_id
           JOIN units u ON u.id = p.unit_id
           LEFT JOIN iqa_draws dr ON dr.id = p.draw_id
           LEFT JOIN iqa_samples s ON s.plan_item_id = p.id
           LEFT JOIN iqa_sample_responses r ON r.sample_id = s.id
           LEFT JOIN iqa_sample_closures c ON c.sample_id = s.id
           WHERE (p.iqa_id = $1 OR p.centre_id = ANY($2) OR p.assessor_id = $3 OR p.id = $4 OR p.evidence_id = $5)
             AND ($6::date IS NULL OR (p.planned_on, a.name, l.name, p.id) > ($6, $7, $8, $9))
           ORDER BY p.planned_on, a.name, l.name, p.id LIMIT $10"#,
            iqa,
            centres,
            assessor,
            only,
            evidence,
            after_on,
            after_assessor,
            after_learner,
            after_id,
            limit
        )
        .fetch_all(conn)
        .await?)
    })
    .await?;
    let today = Utc::now().date_naive();
    Ok(rows
        .into_iter()
        .map(|r| {
            let status = match (r.outcome.as_deref(), &r.response, &r.note) {
                (_, _, Some(_)) => Status::Closed,
                (Some("agree"), _, _) => Status::Agreed,
                (Some(_), Some(_), _) => Status::Responded,
                (Some(_), None, _) => Status::ReferredBack,
                (None, ..) if r.planned_on < today => Status::Overdue,
                (None, ..) => Status::Planned,
            };
            PlanRow {
                id: r.id,
                iqa_name: r.iqa_name,
                evidence_id: r.evidence_id,
                evidence_title: r.title,
                enrolment_id: r.enrolment_id,
                learner_name: r.learner_name,
                assessor_id: r.assessor_id,
                assessor_name: r.assessor_name,
                unit_code: r.unit_code,
                method: r.method,
                stage: Stage::from_db(&r.stage),
                planned_on: r.planned_on,
                draw_seed: r.seed,
                status,
                outcome: r.outcome,
                feedback: r.feedback,
                actions: r.actions,
                recorded_at: r.recorded_at,
                sha256: r.sha256,
                response: r.response,
                responded_at: r.responded_at,
                closure_note: r.note,
                closed_at: r.closed_at,
            }
        })
        .collect())
}

pub async fn plan(conn: &mut PgConnection, scope: &QualityScope) -> AppResult<Vec<PlanRow>> {
    match scope {
        QualityScope::Iqa { iqa_id, .. } => plan_rows(conn, Some(*iqa_id), &[], None, None, None, None, i64::MAX).await,
        QualityScope::Verifier { centres } => plan_rows(conn, None, centres, None, None, None, None, i64::MAX).await,
    }
}

/// One page of the plan in scope, by planned date, then assessor and learner. Keyset on all
/// four (date, assessor's name, learner's name, item).
pub async fn plan_page(
    conn: &mut PgConnection,
    scope: &QualityScope,
    request: &PageRequest,
) -> AppResult<Page<PlanRow>> {
    let after = match request.after_parts(3)? {
        None => None,
        Some((parts, id)) => {
            let on: NaiveDate = parts[0].parse().map_err(|_| bad_cursor())?;
            Some((on, parts[1].clone(), parts[2].clone(), id))
        }
    };
    let rows = match scope {
        QualityScope::Iqa { iqa_id, .. } => {
            plan_rows(conn, Some(*iqa_id), &[], None, None, None, after, request.fetch()).await?
        }
        QualityScope::Verifier { centres } => {
            plan_rows(conn, None, centres, None, None, None, after, request.fetch()).await?
        }
    };
    Ok(request.keyed_page(
        rows.into_iter()
            .map(|r| {
                let on = r.planned_on.to_string();
                (Position::parts(&[&on, &r.assessor_name, &r.learner_name], r.id), r)
            })
            .collect(),
    ))
}

/// Every IQA plan item and sample record on one evidence item, for its page (staff and verifiers).
pub async fn samples_of_evidence(conn: &mut PgConnection, evidence_id: Uuid) -> AppResult<Vec<PlanRow>> {
    plan_rows(conn, None, &[], None, None, Some(evidence_id), None, i64::MAX).await
}

/// Samples referred back to an assessor and not yet answered, for their dashboard.
pub async fn referred_back_to(conn: &mut PgConnection, assessor_id: Uuid) -> AppResult<Vec<PlanRow>> {
    let rows = plan_rows(conn, None, &[], Some(assessor_id), None, None, None, i64::MAX).await?;
    Ok(rows.into_iter().filter(|r| r.status == Status::ReferredBack).collect())
}

pub async fn sample(conn: &mut PgConnection, access: &SampleAccess) -> AppResult<PlanRow> {
    plan_rows(conn, None, &[], None, Some(access.id), None, None, i64::MAX)
        .await?
        .into_iter()
        .find(|r| r.id == access.id)
        .ok_or(AppError::NotFound("IQA sample"))
}

/// The current decisions on the sampled item, as the IQA reviews them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewedDecision {
    pub id: Uuid,
    pub criterion: String,
    pub outcome: String,
    pub feedback: String,
    pub assessor_name: String,
    pub decided_at: DateTime<Utc>,
}

pub async fn decisions(conn: &mut PgConnection, evidence_id: Uuid) -> AppResult<Vec<ReviewedDecision>> {
    let mut rows = sqlx::query_as!(
        ReviewedDecision,
        r#"SELECT DISTINCT ON (d.criterion_id) d.id, c.number AS criterion, d.outcome, d.feedback,
                  u.name AS assessor_name, d.decided_at
           FROM decisions d JOIN criteria c ON c.id = d.criterion_id JOIN users u ON u.id = d.assessor_id
           WHERE d.evidence_id = $1 ORDER BY d.criterion_id, d.seq DESC"#,
        evidence_id
    )
    .fetch_all(conn)
    .await?;
    rows.sort_by_key(|d| d.criterion.split('.').map(|p| p.parse::<u32>().unwrap_or(u32::MAX)).collect::<Vec<_>>());
    Ok(rows)
}

/// The IQA's outcome for a sample, as typed.
pub struct SampleInput {
    pub outcome: String,
    pub feedback: String,
    pub actions: String,
}

/// Records and signs the IQA's outcome for a plan item: the SHA-256 covers the record text,
/// which names the item, every current decision reviewed, the outcome, feedback and actions.
pub async fn record_sample(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &SampleAccess,
    input: SampleInput,
) -> AppResult<Uuid> {
    if access.assessor_id == actor.id {
        return Err(AppError::Forbidden("An internal quality assurer cannot sample their own decisions".into()));
    }
    let mut errors = Vec::new();
    let outcome = SampleOutcome::parse(&input.outcome).map_err(|m| errors.push(FieldError::new("outcome", m))).ok();
    let feedback =
        required("feedback", &input.feedback, "Write your feedback to the assessor").map_err(|e| errors.push(e)).ok();
    let actions = input.actions.trim().to_string();
    if outcome == Some(SampleOutcome::ReferBack) && actions.is_empty() {
        errors.push(FieldError::new("actions", "Say what the assessor must do when you refer a sample back"));
    }
    let (Some(outcome), Some(feedback), true) = (outcome, feedback, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    sqlx::query!("SELECT id FROM iqa_plan_items WHERE id = $1 FOR UPDATE", access.id).fetch_one(&mut *conn).await?;
    let done = sqlx::query_scalar!("SELECT id FROM iqa_samples WHERE plan_item_id = $1", access.id)
        .fetch_optional(&mut *conn)
        .await?;
    if done.is_some() {
        return Err(AppError::Conflict("This sample has already been recorded".into(), Vec::new()));
    }
    let reviewed = decisions(conn, access.evidence_id).await?;
    let recorded_at = Utc::now();
    let record = serde_json::json!({
        "sample": access.id,
        "evidence_id": access.evidence_id,
        "enrolment_id": access.enrolment_id,
        "assessor_id": access.assessor_id,
        "iqa": {"id": actor.id, "name": actor.name, "role": "iqa"},
        "decisions_reviewed": reviewed.iter().map(|d| serde_json::json!({"id": d.id, "criterion": d.criterion, "outcome": d.outcome})).collect::<Vec<_>>(),
        "outcome": outcome.as_str(),
        "feedback": feedback,
        "actions": actions,
        "recorded_at": recorded_at.to_rfc3339(),
    })
    .to_string();
    let sha256 = hex::encode(Sha256::digest(record.as_bytes()));
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO iqa_samples (id, plan_item_id, iqa_id, outcome, feedback, actions, signed_record, sha256, recorded_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        id,
        access.id,
        actor.id,
        outcome.as_str(),
        feedback,
        actions,
        record,
        sha256,
        recorded_at
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.sample_recorded", "iqa_sample", Some(access.id))
            .as_role(Role::Iqa)
            .enrolment(access.enrolment_id)
            .details(serde_json::json!({"outcome": outcome.as_str(), "sha256": sha256})),
    )
    .await?;
    Ok(id)
}

async fn recorded(conn: &mut PgConnection, plan_item: Uuid) -> AppResult<(Uuid, String)> {
    sqlx::query!("SELECT id, outcome FROM iqa_samples WHERE plan_item_id = $1 FOR UPDATE", plan_item)
        .fetch_optional(conn)
        .await?
        .map(|r| (r.id, r.outcome))
        .ok_or_else(|| AppError::Conflict("This sample has not been recorded yet".into(), Vec::new()))
}

/// The sampled assessor's response to a referral.
pub async fn respond(conn: &mut PgConnection, actor: &Actor, access: &SampleAccess, response: &str) -> AppResult<()> {
    let response = required("response", response, "Say what you have done about the actions")
        .map_err(|e| AppError::Invalid(vec![e]))?;
    let (sample_id, outcome) = recorded(conn, access.id).await?;
    if outcome != SampleOutcome::ReferBack.as_str() {
        return Err(AppError::Conflict(
            "The IQA agreed with this assessment: there is nothing to respond to".into(),
            Vec::new(),
        ));
    }
    let inserted = sqlx::query!(
        "INSERT INTO iqa_sample_responses (sample_id, assessor_id, response) VALUES ($1, $2, $3)
         ON CONFLICT (sample_id) DO NOTHING",
        sample_id,
        actor.id,
        response
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict("You have already responded to this sample".into(), Vec::new()));
    }
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.sample_responded", "iqa_sample", Some(access.id))
            .as_role(Role::Assessor)
            .enrolment(access.enrolment_id),
    )
    .await?;
    Ok(())
}

/// The IQA closes a sample: an agreed one at any time, a referred-back one once the assessor responded.
pub async fn close(conn: &mut PgConnection, actor: &Actor, access: &SampleAccess, note: &str) -> AppResult<()> {
    let note = required("note", note, "Write a closing note").map_err(|e| AppError::Invalid(vec![e]))?;
    let (sample_id, outcome) = recorded(conn, access.id).await?;
    if outcome == SampleOutcome::ReferBack.as_str() {
        let answered = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM iqa_sample_responses WHERE sample_id = $1) AS "answered!""#,
            sample_id
        )
        .fetch_one(&mut *conn)
        .await?;
        if !answered {
            return Err(AppError::Conflict("The assessor has not responded to the referral yet".into(), Vec::new()));
        }
    }
    let inserted = sqlx::query!(
        "INSERT INTO iqa_sample_closures (sample_id, iqa_id, note) VALUES ($1, $2, $3) ON CONFLICT (sample_id) DO NOTHING",
        sample_id,
        actor.id,
        note
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict("This sample is already closed".into(), Vec::new()));
    }
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.sample_closed", "iqa_sample", Some(access.id))
            .as_role(Role::Iqa)
            .enrolment(access.enrolment_id),
    )
    .await?;
    Ok(())
}

/// One row of a CAMERA table: how much of it is in the population, planned and sampled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoverageRow {
    pub label: String,
    pub total: usize,
    pub planned: usize,
    pub sampled: usize,
}

impl CoverageRow {
    pub fn is_gap(&self) -> bool {
        self.sampled == 0
    }

    pub fn percent(&self) -> usize {
        (self.sampled * 100).checked_div(self.total).unwrap_or(0)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = CoverageDimension)]
pub struct Dimension {
    #[schema(value_type = String)]
    pub key: &'static str,
    #[schema(value_type = String)]
    pub name: &'static str,
    pub rows: Vec<CoverageRow>,
}

impl Dimension {
    pub fn gaps(&self) -> usize {
        self.rows.iter().filter(|r| r.is_gap()).count()
    }
}

/// Coverage against CAMERA (Candidates, Assessors, Methods, Elements, Records, Assessment
/// locations) plus time: of the assessed items in scope, how many are planned and sampled.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Coverage {
    pub population: usize,
    pub sampled: usize,
    pub dimensions: Vec<Dimension>,
}

pub fn coverage(population: &[PopulationItem], plan: &[PlanRow]) -> Coverage {
    let planned: BTreeSet<Uuid> = plan.iter().map(|r| r.evidence_id).collect();
    let sampled: BTreeSet<Uuid> = plan.iter().filter(|r| r.is_recorded()).map(|r| r.evidence_id).collect();
    let tally = |key: &'static str, name: &'static str, labels: &dyn Fn(&PopulationItem) -> Vec<String>| {
        let mut rows: BTreeMap<String, CoverageRow> = BTreeMap::new();
        for item in population {
            for label in labels(item) {
                let row = rows.entry(label.clone()).or_insert(CoverageRow { label, total: 0, planned: 0, sampled: 0 });
                row.total += 1;
                row.planned += usize::from(planned.contains(&item.evidence_id));
                row.sampled += usize::from(sampled.contains(&item.evidence_id));
            }
        }
        Dimension { key, name, rows: rows.into_values().collect() }
    };
    let dimensions = vec![
        tally("candidates", "Candidates (learners)", &|i| vec![i.learner_name.clone()]),
        tally("assessors", "Assessors", &|i| vec![i.assessor_name.clone()]),
        tally("methods", "Methods", &|i| vec![i.method.replace('_', " ")]),
        tally("elements", "Elements (criteria)", &|i| {
            i.criteria.iter().map(|c| format!("{} {c}", i.unit_code)).collect()
        }),
        tally("records", "Records (evidence items)", &|i| {
            vec![format!("{} ({}, {})", i.title, i.learner_name, i.evidence_id)]
        }),
        tally("locations", "Assessment locations", &|i| vec![i.location.clone()]),
        tally("time", "Time (month assessed)", &|i| vec![i.assessed_at.format("%Y-%m").to_string()]),
    ];
    Coverage {
        population: population.len(),
        sampled: population.iter().filter(|i| sampled.contains(&i.evidence_id)).count(),
        dimensions,
    }
}

/// The CAMERA tables' keys, in the order coverage lists them.
pub const COVERAGE_DIMENSIONS: [&str; 7] =
    ["candidates", "assessors", "methods", "elements", "records", "locations", "time"];

/// One row of one CAMERA table, as the paged coverage lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CoverageItem {
    /// The table: `candidates`, `assessors`, `methods`, `elements`, `records`, `locations` or `time`.
    #[schema(value_type = String)]
    pub dimension: &'static str,
    pub label: String,
    pub total: usize,
    pub planned: usize,
    pub sampled: usize,
    /// Sampled as a whole percentage of the total.
    pub percent: usize,
}

/// One CAMERA table's size and gaps (rows nothing is sampled from), on every page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DimensionSummary {
    #[schema(value_type = String)]
    pub key: &'static str,
    #[schema(value_type = String)]
    pub name: &'static str,
    pub rows: usize,
    pub gaps: usize,
}

/// One page of coverage: the rows of the CAMERA tables (one table with `dimension`), table by
/// table, by label; the totals and each table's size and gaps on every page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CoveragePage {
    pub population: usize,
    pub sampled: usize,
    pub dimensions: Vec<DimensionSummary>,
    pub items: Vec<CoverageItem>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl Coverage {
    /// A page of the rows of every table, or of the one named `only`. The coverage is worked out
    /// from the whole population (its totals need every item), so the page is cut from it.
    pub fn page(self, only: Option<&str>, request: &PageRequest) -> CoveragePage {
        let dimensions = self
            .dimensions
            .iter()
            .map(|d| DimensionSummary { key: d.key, name: d.name, rows: d.rows.len(), gaps: d.gaps() })
            .collect();
        let rows: Vec<(usize, CoverageItem)> = self
            .dimensions
            .into_iter()
            .enumerate()
            .filter(|(_, d)| only.is_none_or(|key| d.key == key))
            .flat_map(|(n, d)| {
                let key = d.key;
                d.rows.into_iter().map(move |r| {
                    let percent = r.percent();
                    let item = CoverageItem {
                        dimension: key,
                        label: r.label,
                        total: r.total,
                        planned: r.planned,
                        sampled: r.sampled,
                        percent,
                    };
                    (n, item)
                })
            })
            .collect();
        let page = request
            .page_of(rows, Order::Oldest, |(n, item)| Position::parts(&[&n.to_string(), &item.label], Uuid::nil()));
        CoveragePage {
            population: self.population,
            sampled: self.sampled,
            dimensions,
            items: page.items.into_iter().map(|(_, item)| item).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// Someone who can attend a standardisation meeting: the centre's assessors and IQAs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StaffMember {
    pub id: Uuid,
    pub name: String,
    pub roles: String,
}

pub async fn centre_staff(conn: &mut PgConnection, centre_id: Uuid) -> AppResult<Vec<StaffMember>> {
    Ok(sqlx::query_as!(
        StaffMember,
        r#"SELECT u.id, u.name, string_agg(ur.role, ', ' ORDER BY ur.role) AS "roles!"
           FROM users u JOIN user_roles ur ON ur.user_id = u.id
           WHERE ur.centre_id = $1 AND ur.role IN ('assessor', 'iqa') AND u.disabled_at IS NULL
           GROUP BY u.id ORDER BY u.name, u.id"#,
        centre_id
    )
    .fetch_all(conn)
    .await?)
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = StandardisationItem)]
pub struct MeetingItem {
    pub evidence_id: Uuid,
    pub title: String,
    pub learner_name: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = StandardisationMeeting)]
pub struct Meeting {
    pub id: Uuid,
    pub held_on: NaiveDate,
    pub title: String,
    pub agreed_actions: String,
    pub recorded_by: String,
    pub recorded_at: DateTime<Utc>,
    pub attendees: Vec<String>,
    pub items: Vec<MeetingItem>,
}

/// Every meeting of `centres`, the latest held first.
pub async fn meetings(conn: &mut PgConnection, centres: &[Uuid]) -> AppResult<Vec<Meeting>> {
    meetings_after(conn, centres, None, i64::MAX).await
}

/// One page of the meetings of `centres`, the latest held first. Keyset on (held on, recorded
/// at, id).
pub async fn meetings_page(
    conn: &mut PgConnection,
    centres: &[Uuid],
    request: &PageRequest,
) -> AppResult<Page<Meeting>> {
    let after = match request.after_parts(2)? {
        None => None,
        Some((parts, id)) => {
            let held_on: NaiveDate = parts[0].parse().map_err(|_| bad_cursor())?;
            let micros: i64 = parts[1].parse().map_err(|_| bad_cursor())?;
            let recorded_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad_cursor)?;
            Some((held_on, recorded_at, id))
        }
    };
    let rows = meetings_after(conn, centres, after, request.fetch()).await?;
    Ok(request.keyed_page(
        rows.into_iter()
            .map(|m| {
                let held_on = m.held_on.to_string();
                let micros = m.recorded_at.timestamp_micros().to_string();
                (Position::parts(&[&held_on, &micros], m.id), m)
            })
            .collect(),
    ))
}

async fn meetings_after(
    conn: &mut PgConnection,
    centres: &[Uuid],
    after: Option<(NaiveDate, DateTime<Utc>, Uuid)>,
    limit: i64,
) -> AppResult<Vec<Meeting>> {
    let (after_on, after_at, after_id) = match after {
        None => (None, None, None),
        Some((on, at, id)) => (Some(on), Some(at), Some(id)),
    };
    let rows = sqlx::query!(
        r#"SELECT m.id, m.held_on, m.title, m.agreed_actions, u.name AS recorded_by, m.recorded_at,
                  COALESCE((SELECT array_agg(a.name ORDER BY a.name) FROM standardisation_attendees sa
                            JOIN users a ON a.id = sa.user_id WHERE sa.meeting_id = m.id), '{}') AS "attendees!"
           FROM standardisation_meetings m JOIN users u ON u.id = m.recorded_by
           WHERE m.centre_id = ANY($1)
             AND ($2::date IS NULL OR (m.held_on, m.recorded_at, m.id) < ($2, $3, $4))
           ORDER BY m.held_on DESC, m.recorded_at DESC, m.id DESC LIMIT $5"#,
        centres,
        after_on,
        after_at,
        after_id,
        limit
    )
    .fetch_all(&mut *conn)
    .await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let items = sqlx::query!(
        "SELECT si.meeting_id, e.id, e.title, l.name AS learner_name
         FROM standardisation_items si JOIN evidence_items e ON e.id = si.evidence_id
         JOIN enrolments en ON en.id = e.enrolment_id JOIN users l ON l.id = en.learner_id
         WHERE si.meeting_id = ANY($1) ORDER BY e.title, e.id",
        &ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Meeting {
            items: items
                .iter()
                .filter(|i| i.meeting_id == r.id)
                .map(|i| MeetingItem {
                    evidence_id: i.id,
                    title: i.title.clone(),
                    learner_name: i.learner_name.clone(),
                })
                .collect(),
            id: r.id,
            held_on: r.held_on,
            title: r.title,
            agreed_actions: r.agreed_actions,
            recorded_by: r.recorded_by,
            recorded_at: r.recorded_at,
            attendees: r.attendees,
        })
        .collect())
}

/// A standardisation meeting as typed.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[schema(as = StandardisationMeetingInput)]
pub struct MeetingInput {
    #[serde(default)]
    pub held_on: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub attendees: Vec<Uuid>,
    #[serde(default)]
    pub items: Vec<Uuid>,
    #[serde(default)]
    pub agreed_actions: String,
}

pub async fn record_meeting(
    conn: &mut PgConnection,
    actor: &Actor,
    centre_id: Uuid,
    input: MeetingInput,
) -> AppResult<Uuid> {
    let mut errors = Vec::new();
    let held_on = NaiveDate::parse_from_str(input.held_on.trim(), "%Y-%m-%d")
        .map_err(|_| errors.push(FieldError::new("held_on", "Enter the date of the meeting, for example 2026-03-31")))
        .ok();
    if held_on.is_some_and(|d| d > Utc::now().date_naive()) {
        errors.push(FieldError::new("held_on", "The meeting date cannot be in the future"));
    }
    let title = required("title", &input.title, "Enter what the meeting was about").map_err(|e| errors.push(e)).ok();
    let actions =
        required("agreed_actions", &input.agreed_actions, "Write the actions agreed").map_err(|e| errors.push(e)).ok();
    let staff = centre_staff(conn, centre_id).await?;
    if input.attendees.is_empty() {
        errors.push(FieldError::new("attendees", "Choose who attended"));
    } else if input.attendees.iter().any(|a| !staff.iter().any(|s| s.id == *a)) {
        errors.push(FieldError::new("attendees", "Choose attendees from the centre's assessors and IQAs"));
    }
    let known = sqlx::query_scalar!(
        r#"SELECT COUNT(DISTINCT e.id) AS "n!" FROM evidence_items e JOIN enrolments en ON en.id = e.enrolment_id
           WHERE e.id = ANY($1) AND en.centre_id = $2"#,
        &input.items,
        centre_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let items: BTreeSet<Uuid> = input.items.iter().copied().collect();
    if known as usize != items.len() {
        errors.push(FieldError::new("items", "Choose evidence items of your centre"));
    }
    let (Some(held_on), Some(title), Some(actions), true) = (held_on, title, actions, errors.is_empty()) else {
        return Err(AppError::Invalid(errors));
    };
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO standardisation_meetings (id, centre_id, held_on, title, agreed_actions, recorded_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        centre_id,
        held_on,
        title,
        actions,
        actor.id
    )
    .execute(&mut *conn)
    .await?;
    let attendees: BTreeSet<Uuid> = input.attendees.iter().copied().collect();
    for attendee in &attendees {
        sqlx::query!("INSERT INTO standardisation_attendees (meeting_id, user_id) VALUES ($1, $2)", id, attendee)
            .execute(&mut *conn)
            .await?;
    }
    for item in &items {
        sqlx::query!("INSERT INTO standardisation_items (meeting_id, evidence_id) VALUES ($1, $2)", id, item)
            .execute(&mut *conn)
            .await?;
    }
    audit::record(
        conn,
        Event::new(Some(actor), "iqa.standardisation_recorded", "standardisation_meeting", Some(id))
            .as_role(Role::Iqa)
            .details(serde_json::json!({"held_on": held_on, "attendees": attendees, "items": items})),
    )
    .await?;
    Ok(id)
}
