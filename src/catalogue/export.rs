//! A unit written back out in our own unit-file format (TOML), exactly what `UnitFile::parse`
//! reads: exported and imported into another database it gives the same unit, criteria, wording
//! and sufficiency rules; imported into the same database it changes nothing.

use super::unit_file::{CriterionEntry, OutcomeEntry, SufficiencyEntry};
use super::{CriterionNumber, Unit, UnitFile};

impl From<&Unit> for UnitFile {
    fn from(unit: &Unit) -> Self {
        let s = &unit.summary;
        UnitFile {
            code: s.code.clone(),
            reference: s.reference.clone(),
            title: s.title.clone(),
            awarding_body: s.awarding_body.clone(),
            level: s.level,
            credits: s.credits,
            guided_learning_hours: s.guided_learning_hours,
            purpose: unit.purpose.clone(),
            assessment_guidance: unit.assessment_guidance.clone(),
            sufficiency: SufficiencyEntry {
                min_occasions: unit.sufficiency.min_occasions,
                real_work_outcomes: unit.sufficiency.real_work_outcomes.clone(),
                real_work_methods: unit.sufficiency.real_work_methods.clone(),
            },
            outcomes: unit
                .outcomes
                .iter()
                .map(|o| OutcomeEntry {
                    number: o.number,
                    title: o.title.clone(),
                    criteria: o
                        .criteria
                        .iter()
                        .map(|c| CriterionEntry {
                            number: CriterionNumber::parse(&c.number)
                                .unwrap_or(CriterionNumber { outcome: o.number as u16, criterion: 0 }),
                            text: c.text.clone(),
                            guidance: c.guidance.clone(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// The unit file's text: a comment naming where it came from, then the TOML.
pub fn unit_file_text(file: &UnitFile) -> anyhow::Result<String> {
    let body = toml::to_string(file)?;
    // A TOML comment may hold no control character (a NUL or CR in a title made the file unreadable).
    let title: String = file.title.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    Ok(format!(
        "# Unit {}: {title}\n# Exported by eportfolio; import with `eportfolio unit import FILE`.\n\n{body}",
        file.code
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_unit_survives_a_round_trip_through_its_export() {
        let original = UnitFile::parse(include_str!("../../units/cc20.toml")).unwrap();
        let text = unit_file_text(&original).unwrap();
        assert_eq!(UnitFile::parse(&text).unwrap(), original);
        assert_eq!(unit_file_text(&UnitFile::parse(&text).unwrap()).unwrap(), text, "the export is stable");
    }
}
