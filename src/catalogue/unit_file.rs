//! The unit file format (TOML): what a unit file must hold, checked before anything is stored.

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use super::CriterionNumber;

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UnitFile {
    pub code: String,
    pub reference: String,
    pub title: String,
    pub awarding_body: String,
    pub level: i32,
    pub credits: i32,
    pub guided_learning_hours: i32,
    pub purpose: String,
    pub assessment_guidance: String,
    /// What a portfolio needs besides every criterion met before the unit can be signed off.
    #[serde(default)]
    pub sufficiency: SufficiencyEntry,
    pub outcomes: Vec<OutcomeEntry>,
}

/// The unit's sufficiency rules. Without the table: evidence from one occasion is enough and no
/// outcome asks for a particular kind of evidence.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SufficiencyEntry {
    /// Evidence must come from at least this many different occasions (activity dates).
    #[serde(default = "one")]
    pub min_occasions: i32,
    /// Learning outcomes that need evidence of real work by one of `real_work_methods`.
    #[serde(default)]
    pub real_work_outcomes: Vec<i32>,
    /// The assessment methods that count as real work for those outcomes.
    #[serde(default)]
    pub real_work_methods: Vec<String>,
}

fn one() -> i32 {
    1
}

impl Default for SufficiencyEntry {
    fn default() -> Self {
        SufficiencyEntry { min_occasions: 1, real_work_outcomes: Vec::new(), real_work_methods: Vec::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeEntry {
    pub number: i32,
    pub title: String,
    pub criteria: Vec<CriterionEntry>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionEntry {
    #[serde(deserialize_with = "criterion_number", serialize_with = "criterion_text")]
    pub number: CriterionNumber,
    pub text: String,
    pub guidance: String,
}

fn trim_in_place(text: &mut String) {
    if text.trim().len() != text.len() {
        *text = text.trim().to_string();
    }
}

fn criterion_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<CriterionNumber, D::Error> {
    let text = String::deserialize(d)?;
    CriterionNumber::parse(&text).map_err(serde::de::Error::custom)
}

fn criterion_text<S: serde::Serializer>(number: &CriterionNumber, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&number.to_string())
}

impl UnitFile {
    /// Parses and checks a unit file: a code, numbered outcomes 1..n, criteria numbered under
    /// their outcome without gaps or repeats, and no empty wording.
    pub fn parse(source: &str) -> anyhow::Result<Self> {
        let file: UnitFile = toml::from_str(source).context("not a valid unit file")?;
        file.check()
    }

    /// The same checks for a unit read from another format (an IMS CASE package). Its wording is
    /// kept without surrounding white space, as the CASE reader keeps it, so a unit reads the same
    /// from either format.
    pub fn check(self) -> anyhow::Result<Self> {
        let mut file = self;
        for text in [
            &mut file.reference,
            &mut file.title,
            &mut file.awarding_body,
            &mut file.purpose,
            &mut file.assessment_guidance,
        ] {
            trim_in_place(text);
        }
        for outcome in &mut file.outcomes {
            trim_in_place(&mut outcome.title);
            for criterion in &mut outcome.criteria {
                trim_in_place(&mut criterion.text);
                trim_in_place(&mut criterion.guidance);
            }
        }
        let code_ok = !file.code.is_empty()
            && file.code.len() <= 20
            && file.code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !code_ok {
            bail!("unit code {:?} must be 1-20 letters, digits, '-' or '_'", file.code);
        }
        if file.title.trim().is_empty() {
            bail!("unit {} has no title", file.code);
        }
        if file.outcomes.is_empty() {
            bail!("unit {} has no learning outcomes", file.code);
        }
        for (index, outcome) in file.outcomes.iter().enumerate() {
            if outcome.number != index as i32 + 1 {
                bail!("unit {}: learning outcome {} should be numbered {}", file.code, outcome.number, index + 1);
            }
            if outcome.criteria.is_empty() {
                bail!("unit {}: learning outcome {} has no criteria", file.code, outcome.number);
            }
            for (index, criterion) in outcome.criteria.iter().enumerate() {
                let expected = CriterionNumber { outcome: outcome.number as u16, criterion: index as u16 + 1 };
                if criterion.number != expected {
                    bail!("unit {}: criterion {} should be numbered {expected}", file.code, criterion.number);
                }
                if criterion.text.trim().is_empty() {
                    bail!("unit {}: criterion {} has no wording", file.code, criterion.number);
                }
            }
        }
        let rules = &file.sufficiency;
        if !(1..=50).contains(&rules.min_occasions) {
            bail!("unit {}: min_occasions must be between 1 and 50", file.code);
        }
        for number in &rules.real_work_outcomes {
            if !file.outcomes.iter().any(|o| o.number == *number) {
                bail!("unit {}: real_work_outcomes names learning outcome {number}, which it does not have", file.code);
            }
        }
        for method in &rules.real_work_methods {
            if crate::evidence::Method::parse(method).is_none() {
                bail!("unit {}: real_work_methods has {method:?}, which is not an assessment method", file.code);
            }
        }
        if !rules.real_work_outcomes.is_empty() && rules.real_work_methods.is_empty() {
            bail!("unit {}: real_work_outcomes needs real_work_methods to say what counts as real work", file.code);
        }
        // PostgreSQL text cannot hold NUL: refused here with the place, not as a failed insert.
        let texts = [&file.reference, &file.title, &file.awarding_body, &file.purpose, &file.assessment_guidance];
        if texts.iter().any(|t| t.contains('\0')) {
            bail!("unit {}: the unit's details contain a NUL character (\\0)", file.code);
        }
        for outcome in &file.outcomes {
            if outcome.title.contains('\0') {
                bail!(
                    "unit {}: the title of learning outcome {} contains a NUL character (\\0)",
                    file.code,
                    outcome.number
                );
            }
            for criterion in &outcome.criteria {
                if criterion.text.contains('\0') || criterion.guidance.contains('\0') {
                    bail!("unit {}: criterion {} contains a NUL character (\\0)", file.code, criterion.number);
                }
            }
        }
        Ok(file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_cc20_has_four_outcomes_and_22_criteria() {
        let file = UnitFile::parse(include_str!("../../units/cc20.toml")).unwrap();
        assert_eq!(file.reference, "D/503/0397");
        assert_eq!(file.outcomes.len(), 4);
        let counts: Vec<usize> = file.outcomes.iter().map(|o| o.criteria.len()).collect();
        assert_eq!(counts, vec![8, 3, 5, 6]);
        assert!(file.outcomes.iter().flat_map(|o| &o.criteria).all(|c| !c.guidance.trim().is_empty()));
        assert_eq!(file.sufficiency.min_occasions, 2);
        assert_eq!(file.sufficiency.real_work_outcomes, vec![1, 3]);
    }

    #[test]
    fn sufficiency_rules_must_name_real_outcomes_and_methods() {
        let base = r#"
            code = "X1"
            reference = ""
            title = "T"
            awarding_body = "B"
            level = 1
            credits = 1
            guided_learning_hours = 1
            purpose = ""
            assessment_guidance = ""
            [[outcomes]]
            number = 1
            title = "O"
            [[outcomes.criteria]]
            number = "1.1"
            text = "t"
            guidance = "g"
        "#;
        assert_eq!(UnitFile::parse(base).unwrap().sufficiency.min_occasions, 1);
        let with = |rules: &str| format!("{base}\n{rules}");
        let error =
            UnitFile::parse(&with("[sufficiency]\nreal_work_outcomes = [2]\nreal_work_methods = [\"product\"]"))
                .unwrap_err()
                .to_string();
        assert!(error.contains("learning outcome 2"), "{error}");
        let error =
            UnitFile::parse(&with("[sufficiency]\nreal_work_outcomes = [1]\nreal_work_methods = [\"guesswork\"]"))
                .unwrap_err()
                .to_string();
        assert!(error.contains("not an assessment method"), "{error}");
    }

    #[test]
    fn misnumbered_criteria_are_refused() {
        let source = r#"
            code = "X1"
            reference = ""
            title = "T"
            awarding_body = "B"
            level = 1
            credits = 1
            guided_learning_hours = 1
            purpose = ""
            assessment_guidance = ""
            [[outcomes]]
            number = 1
            title = "O"
            [[outcomes.criteria]]
            number = "1.2"
            text = "t"
            guidance = "g"
        "#;
        let error = UnitFile::parse(source).unwrap_err().to_string();
        assert!(error.contains("should be numbered 1.1"), "{error}");
    }
}
