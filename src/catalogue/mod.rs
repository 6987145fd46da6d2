//! The qualification catalogue: units, learning outcomes and assessment criteria, loaded from
//! unit files (TOML, see `units/`). Identifiers derive from the unit code and numbers, so the
//! same file imported twice changes nothing.

pub mod case;
pub mod export;
mod routes;
pub mod transfer;
mod transfer_routes;
mod unit_file;

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
pub use routes::router;
pub use unit_file::UnitFile;

/// Units that ship with the binary and load on every migrate.
const BUNDLED: &[(&str, &str)] = &[
    ("units/cc20.toml", include_str!("../../units/cc20.toml")),
    ("units/pearson-manage-direct-sales.toml", include_str!("../../units/pearson-manage-direct-sales.toml")),
];

/// An assessment criterion number such as `1.4`: learning outcome, then criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CriterionNumber {
    pub outcome: u16,
    pub criterion: u16,
}

impl CriterionNumber {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (outcome, criterion) =
            text.split_once('.').ok_or_else(|| format!("\"{text}\" is not a criterion number; write it like 1.4"))?;
        let part = |s: &str| s.parse::<u16>().ok().filter(|n| *n > 0);
        match (part(outcome), part(criterion)) {
            (Some(outcome), Some(criterion)) => Ok(CriterionNumber { outcome, criterion }),
            _ => Err(format!("\"{text}\" is not a criterion number; write it like 1.4")),
        }
    }
}

impl fmt::Display for CriterionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.outcome, self.criterion)
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UnitSummary {
    pub id: Uuid,
    pub code: String,
    pub reference: String,
    pub title: String,
    pub awarding_body: String,
    pub level: i32,
    pub credits: i32,
    pub guided_learning_hours: i32,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Unit {
    #[serde(flatten)]
    pub summary: UnitSummary,
    pub purpose: String,
    pub assessment_guidance: String,
    pub sufficiency: Sufficiency,
    pub outcomes: Vec<Outcome>,
}

/// A unit's sufficiency rules, as its unit file states them (see `assessment::sufficiency`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Sufficiency {
    /// Evidence must come from at least this many different occasions (activity dates).
    pub min_occasions: i32,
    /// Learning outcomes that need met evidence by one of `real_work_methods`.
    pub real_work_outcomes: Vec<i32>,
    /// Assessment methods (API values) that count as real work: the assessor observing, or a
    /// product of the learner's real work.
    pub real_work_methods: Vec<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Outcome {
    pub number: i32,
    pub title: String,
    pub criteria: Vec<Criterion>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Criterion {
    pub id: Uuid,
    pub number: String,
    pub text: String,
    pub guidance: String,
}

impl Unit {
    pub fn criteria(&self) -> impl Iterator<Item = &Criterion> {
        self.outcomes.iter().flat_map(|o| o.criteria.iter())
    }

    /// The criterion with this number, or a message a learner can act on.
    pub fn criterion(&self, number: &str) -> Result<&Criterion, String> {
        let parsed = CriterionNumber::parse(number)?.to_string();
        self.criteria()
            .find(|c| c.number == parsed)
            .ok_or_else(|| format!("unit {} has no criterion {parsed}", self.summary.code))
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    Added,
    Updated,
    Unchanged,
}

/// Imports (or re-imports) a unit file. Criteria already used by evidence cannot disappear.
pub async fn import(conn: &mut PgConnection, source: &str) -> anyhow::Result<(String, ImportOutcome)> {
    let file = UnitFile::parse(source)?;
    let sha256 = hex::encode(Sha256::digest(source.as_bytes()));
    Ok(store(conn, file, &sha256).await?)
}

/// Stores a checked unit, whatever format it came in. When the database already holds exactly
/// this unit (the same source, or the same content from an export of it) nothing is written.
pub async fn store(conn: &mut PgConnection, file: UnitFile, sha256: &str) -> AppResult<(String, ImportOutcome)> {
    let unit_id = unit_id(&file.code);
    let existing = sqlx::query_scalar!("SELECT source_sha256 FROM units WHERE id = $1", unit_id)
        .fetch_optional(&mut *conn)
        .await?;
    if existing.as_deref() == Some(sha256) {
        return Ok((file.code, ImportOutcome::Unchanged));
    }
    if existing.is_some() && UnitFile::from(&find_unit(conn, None, Some(unit_id)).await?) == file {
        return Ok((file.code, ImportOutcome::Unchanged));
    }
    sqlx::query!(
        r#"INSERT INTO units (id, code, reference, title, awarding_body, level, credits,
                              guided_learning_hours, purpose, assessment_guidance, source_sha256,
                              min_occasions, real_work_outcomes, real_work_methods)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
           ON CONFLICT (id) DO UPDATE SET reference = $3, title = $4, awarding_body = $5, level = $6,
               credits = $7, guided_learning_hours = $8, purpose = $9, assessment_guidance = $10,
               source_sha256 = $11, imported_at = now(), min_occasions = $12, real_work_outcomes = $13,
               real_work_methods = $14"#,
        unit_id,
        file.code,
        file.reference,
        file.title,
        file.awarding_body,
        file.level,
        file.credits,
        file.guided_learning_hours,
        file.purpose,
        file.assessment_guidance,
        sha256,
        file.sufficiency.min_occasions,
        &file.sufficiency.real_work_outcomes,
        &file.sufficiency.real_work_methods,
    )
    .execute(&mut *conn)
    .await?;
    let mut position = 0;
    let mut kept = Vec::new();
    for outcome in &file.outcomes {
        let outcome_id = Uuid::new_v5(&unit_id, format!("LO{}", outcome.number).as_bytes());
        sqlx::query!(
            r#"INSERT INTO learning_outcomes (id, unit_id, number, title) VALUES ($1, $2, $3, $4)
               ON CONFLICT (id) DO UPDATE SET title = $4"#,
            outcome_id,
            unit_id,
            outcome.number,
            outcome.title,
        )
        .execute(&mut *conn)
        .await?;
        for criterion in &outcome.criteria {
            position += 1;
            let criterion_id = Uuid::new_v5(&unit_id, format!("AC{}", criterion.number).as_bytes());
            kept.push(criterion_id);
            sqlx::query!(
                r#"INSERT INTO criteria (id, unit_id, outcome_id, number, position, text, guidance)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (id) DO UPDATE SET outcome_id = $3, position = $5, text = $6, guidance = $7"#,
                criterion_id,
                unit_id,
                outcome_id,
                criterion.number.to_string(),
                position,
                criterion.text,
                criterion.guidance,
            )
            .execute(&mut *conn)
            .await?;
        }
    }
    let dropped = sqlx::query_scalar!(
        r#"SELECT c.number FROM criteria c
           WHERE c.unit_id = $1 AND NOT (c.id = ANY($2))
             AND EXISTS (SELECT 1 FROM evidence_criteria m WHERE m.criterion_id = c.id)"#,
        unit_id,
        &kept,
    )
    .fetch_all(&mut *conn)
    .await?;
    if !dropped.is_empty() {
        return Err(AppError::Conflict(
            format!("unit {} would lose criteria that evidence is mapped to: {}", file.code, dropped.join(", ")),
            dropped,
        ));
    }
    sqlx::query!("DELETE FROM criteria WHERE unit_id = $1 AND NOT (id = ANY($2))", unit_id, &kept)
        .execute(&mut *conn)
        .await?;
    let outcome = if existing.is_some() { ImportOutcome::Updated } else { ImportOutcome::Added };
    Ok((file.code, outcome))
}

/// Loads the units that ship with the binary.
pub async fn import_bundled(pool: &PgPool) -> anyhow::Result<()> {
    for (name, source) in BUNDLED {
        let mut tx = pool.begin().await?;
        let (code, outcome) =
            import(&mut tx, source).await.map_err(|e| e.context(format!("bundled unit file {name}")))?;
        tx.commit().await?;
        if outcome != ImportOutcome::Unchanged {
            tracing::info!(%code, ?outcome, "unit loaded");
        }
    }
    Ok(())
}

fn unit_id(code: &str) -> Uuid {
    const NAMESPACE: Uuid = Uuid::from_u128(0x6c0f_54d4_8b1e_4f0a_9a55_3c2e_7d10_cc20);
    Uuid::new_v5(&NAMESPACE, code.to_uppercase().as_bytes())
}

pub async fn list_units(conn: &mut PgConnection) -> AppResult<Vec<UnitSummary>> {
    Ok(sqlx::query_as!(
        UnitSummary,
        "SELECT id, code, reference, title, awarding_body, level, credits, guided_learning_hours
         FROM units ORDER BY code"
    )
    .fetch_all(conn)
    .await?)
}

/// A unit with its outcomes and criteria, by code (case-insensitive) or id.
pub async fn find_unit(conn: &mut PgConnection, code: Option<&str>, id: Option<Uuid>) -> AppResult<Unit> {
    let row = sqlx::query!(
        "SELECT id, code, reference, title, awarding_body, level, credits, guided_learning_hours,
                purpose, assessment_guidance, min_occasions, real_work_outcomes, real_work_methods
         FROM units WHERE upper(code) = upper($1) OR id = $2",
        code,
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound("unit"))?;
    let outcomes =
        sqlx::query!("SELECT number, title FROM learning_outcomes WHERE unit_id = $1 ORDER BY number", row.id)
            .fetch_all(&mut *conn)
            .await?;
    let criteria = sqlx::query!(
        "SELECT c.id, c.number, c.text, c.guidance, o.number AS outcome
         FROM criteria c JOIN learning_outcomes o ON o.id = c.outcome_id
         WHERE c.unit_id = $1 ORDER BY c.position",
        row.id
    )
    .fetch_all(&mut *conn)
    .await?;
    let outcomes = outcomes
        .into_iter()
        .map(|o| Outcome {
            number: o.number,
            criteria: criteria
                .iter()
                .filter(|c| c.outcome == o.number)
                .map(|c| Criterion {
                    id: c.id,
                    number: c.number.clone(),
                    text: c.text.clone(),
                    guidance: c.guidance.clone(),
                })
                .collect(),
            title: o.title,
        })
        .collect();
    Ok(Unit {
        summary: UnitSummary {
            id: row.id,
            code: row.code,
            reference: row.reference,
            title: row.title,
            awarding_body: row.awarding_body,
            level: row.level,
            credits: row.credits,
            guided_learning_hours: row.guided_learning_hours,
        },
        purpose: row.purpose,
        assessment_guidance: row.assessment_guidance,
        sufficiency: Sufficiency {
            min_occasions: row.min_occasions,
            real_work_outcomes: row.real_work_outcomes,
            real_work_methods: row.real_work_methods,
        },
        outcomes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_numbers_parse_and_reject() {
        assert_eq!(CriterionNumber::parse(" 1.4 ").unwrap().to_string(), "1.4");
        assert_eq!(CriterionNumber::parse("4.6").unwrap(), CriterionNumber { outcome: 4, criterion: 6 });
        for bad in ["", "1", "1.", ".2", "a.b", "0.1", "1.0", "1.2.3"] {
            assert!(CriterionNumber::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
