//! Sufficiency: whether a portfolio holds enough to sign the unit off. Every unit needs every
//! criterion met, an authenticity declaration on every item relied on and every witness statement
//! confirmed; the unit file adds its own rules (evidence from enough different occasions, real
//! work for the outcomes about doing the job). Learner and assessor see the same checklist.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::CriterionStatus;
use crate::catalogue::Unit;
use crate::error::AppResult;
use crate::evidence::{EvidenceItem, Method};

/// One rule of the checklist and whether the portfolio meets it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = SufficiencyCheck)]
pub struct Check {
    /// `criteria_met`, `occasions`, `real_work`, `authenticity` or `witnesses_confirmed`.
    #[schema(value_type = String)]
    pub rule: &'static str,
    /// For `real_work`: the learning outcome it is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub outcome: Option<i32>,
    pub title: String,
    pub holds: bool,
    /// What the portfolio shows for this rule, in a sentence.
    pub detail: String,
    /// Each thing still missing, as a sentence the learner or assessor can act on.
    pub missing: Vec<String>,
}

impl Check {
    /// The element id of this check on the page, for error summaries to link to.
    pub fn anchor(&self) -> String {
        match self.outcome {
            Some(number) => format!("check-{}-{number}", self.rule),
            None => format!("check-{}", self.rule),
        }
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub enrolment_id: Uuid,
    pub unit: String,
    /// Every check holds: the assessor may sign the unit off.
    pub ready: bool,
    pub checks: Vec<Check>,
}

impl Readiness {
    /// Everything still missing, check by check.
    pub fn missing(&self) -> Vec<String> {
        self.checks.iter().flat_map(|c| c.missing.iter().cloned()).collect()
    }
}

/// "two", for the small numbers people read in sentences.
fn words(n: usize) -> String {
    const WORDS: [&str; 11] = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
    WORDS.get(n).map(|w| w.to_string()).unwrap_or_else(|| n.to_string())
}

fn method_phrase(method: &str) -> String {
    match Method::parse(method) {
        Some(Method::Observation) => "the assessor's direct observation".into(),
        Some(Method::Product) => "a product of real work".into(),
        Some(other) => other.label().to_lowercase(),
        None => method.to_string(),
    }
}

fn either(phrases: &[String]) -> String {
    match phrases {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The checklist for one enrolment on `unit`, as the portfolio stands now.
pub async fn readiness(conn: &mut PgConnection, enrolment_id: Uuid, unit: &Unit) -> AppResult<Readiness> {
    let (items, judgements, progress) = super::load_portfolio(conn, enrolment_id, unit).await?;
    readiness_of(conn, enrolment_id, unit, &progress, &items, &judgements).await
}

/// The checklist, from the portfolio already loaded (its items, their current judgements and the
/// progress they make).
pub async fn readiness_of(
    conn: &mut PgConnection,
    enrolment_id: Uuid,
    unit: &Unit,
    progress: &super::Progress,
    items: &[EvidenceItem],
    judgements: &super::Judgements,
) -> AppResult<Readiness> {
    // Items relied on: submitted, with at least one criterion whose current judgement is "met",
    // each with the learning outcomes of those criteria.
    let outcome_of = |criterion: &str| {
        unit.outcomes.iter().find(|o| o.criteria.iter().any(|c| c.number == criterion)).map(|o| o.number)
    };
    let mut relied_on: Vec<(&EvidenceItem, BTreeSet<i32>)> = items
        .iter()
        .filter(|item| item.status == "submitted")
        .filter_map(|item| {
            let met: BTreeSet<i32> = judgements
                .get(&item.id)?
                .iter()
                .filter(|(_, outcome)| **outcome == super::Outcome::Met)
                .filter_map(|(criterion, _)| outcome_of(criterion))
                .collect();
            (!met.is_empty()).then_some((item, met))
        })
        .collect();
    relied_on.sort_by_key(|(item, _)| (item.occurred_on, item.created_at));
    let unconfirmed_statements = sqlx::query!(
        r#"SELECT w.name AS witness_name, e.occurred_on
           FROM evidence_items e JOIN witnesses w ON w.id = e.witness_id
           WHERE e.enrolment_id = $1 AND e.kind = 'witness_statement' AND e.status = 'submitted'
             AND e.witness_confirmed_at IS NULL
           ORDER BY e.created_at"#,
        enrolment_id
    )
    .fetch_all(&mut *conn)
    .await?;

    let mut checks = Vec::new();

    let unmet: Vec<String> = progress
        .criteria
        .iter()
        .filter(|c| c.status != CriterionStatus::Met)
        .map(|c| match c.status {
            CriterionStatus::Submitted => format!("{} is not yet met: its evidence is awaiting assessment", c.number),
            CriterionStatus::NotYet => {
                format!("{} is not yet met: the assessor judged its evidence not yet met", c.number)
            }
            _ => format!("{} is not yet met: no evidence has been submitted for it", c.number),
        })
        .collect();
    checks.push(Check {
        rule: "criteria_met",
        outcome: None,
        title: "Every assessment criterion is met".into(),
        holds: unmet.is_empty(),
        detail: format!("{} of {} criteria met.", progress.met, progress.total),
        missing: unmet,
    });

    let wanted = unit.sufficiency.min_occasions.max(1) as usize;
    let occasions: BTreeSet<NaiveDate> = relied_on.iter().map(|(item, _)| item.occurred_on).collect();
    let dates = occasions.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ");
    let occasions_detail = match occasions.len() {
        0 => "No assessed evidence yet.".to_string(),
        1 => format!("Evidence comes from one occasion ({dates})."),
        n => format!("Evidence comes from {} different occasions ({dates}).", words(n)),
    };
    let occasions_missing = match occasions.len() {
        n if n >= wanted => Vec::new(),
        0 => vec![format!(
            "No met evidence yet; the unit asks for evidence from at least {} occasion{}",
            words(wanted),
            if wanted == 1 { "" } else { "s" }
        )],
        1 => vec![format!(
            "Evidence comes from only one occasion ({dates}); the unit asks for at least {}",
            words(wanted)
        )],
        n => vec![format!(
            "Evidence comes from only {} occasions ({dates}); the unit asks for at least {}",
            words(n),
            words(wanted)
        )],
    };
    checks.push(Check {
        rule: "occasions",
        outcome: None,
        title: if wanted == 1 {
            "Evidence of the learner's work".into()
        } else {
            format!("Evidence from at least {} different occasions", words(wanted))
        },
        holds: occasions_missing.is_empty(),
        detail: occasions_detail,
        missing: occasions_missing,
    });

    let phrases: Vec<String> = unit.sufficiency.real_work_methods.iter().map(|m| method_phrase(m)).collect();
    for number in &unit.sufficiency.real_work_outcomes {
        let title = unit.outcomes.iter().find(|o| o.number == *number).map(|o| o.title.as_str()).unwrap_or("");
        let backing: Vec<&str> = relied_on
            .iter()
            .filter(|(item, met)| {
                met.contains(number) && unit.sufficiency.real_work_methods.iter().any(|m| m == item.method.as_str())
            })
            .map(|(item, _)| item.title.as_str())
            .collect();
        let holds = !backing.is_empty();
        checks.push(Check {
            rule: "real_work",
            outcome: Some(*number),
            title: format!("Learning outcome {number} ({title}) rests on {}", either(&phrases)),
            holds,
            detail: if holds {
                format!("Met by: {}.", backing.join("; "))
            } else {
                format!("No met criterion of learning outcome {number} comes from {} yet.", either(&phrases))
            },
            missing: if holds {
                Vec::new()
            } else {
                vec![format!("Learning outcome {number} needs met evidence from {}", either(&phrases))]
            },
        });
    }

    let mut unsigned = Vec::new();
    for (item, _) in &relied_on {
        // Recordings need the learner's confirmation that the employer permits their use.
        let unconfirmed_media = item.declaration.as_ref().is_some_and(|d| d.signer_role == "learner")
            && item.third_party_confirmed_at.is_none()
            && item.files.iter().any(|f| f.content_type.starts_with("audio/") || f.content_type.starts_with("video/"));
        if item.declaration.is_none() {
            unsigned.push(format!("\u{201c}{}\u{201d} has no signed authenticity declaration", item.title));
        } else if unconfirmed_media {
            unsigned.push(format!(
                "\u{201c}{}\u{201d} holds recordings whose use the learner has not confirmed the employer permits",
                item.title
            ));
        }
    }
    checks.push(Check {
        rule: "authenticity",
        outcome: None,
        title: "Authenticity is declared on every item relied on".into(),
        holds: unsigned.is_empty(),
        detail: format!(
            "{} of {} item{} relied on {} signed.",
            relied_on.len() - unsigned.len(),
            relied_on.len(),
            if relied_on.len() == 1 { "" } else { "s" },
            if relied_on.len() - unsigned.len() == 1 { "is" } else { "are" }
        ),
        missing: unsigned,
    });

    let unconfirmed: Vec<String> = unconfirmed_statements
        .iter()
        .map(|s| {
            format!(
                "The witness statement from {} ({}) is not yet confirmed with the witness by the assessor",
                s.witness_name, s.occurred_on
            )
        })
        .collect();
    checks.push(Check {
        rule: "witnesses_confirmed",
        outcome: None,
        title: "Every witness statement is confirmed".into(),
        holds: unconfirmed.is_empty(),
        detail: if unconfirmed.is_empty() {
            "No witness statement is waiting for confirmation.".into()
        } else {
            format!(
                "{} witness statement{} waiting for confirmation.",
                unconfirmed.len(),
                if unconfirmed.len() == 1 { "" } else { "s" }
            )
        },
        missing: unconfirmed,
    });

    Ok(Readiness { enrolment_id, unit: unit.summary.code.clone(), ready: checks.iter().all(|c| c.holds), checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_read_naturally() {
        assert_eq!(words(2), "two");
        assert_eq!(words(12), "12");
        assert_eq!(either(&["a".into()]), "a");
        assert_eq!(either(&["a".into(), "b".into(), "c".into()]), "a, b or c");
        assert_eq!(method_phrase("observation"), "the assessor's direct observation");
    }
}
