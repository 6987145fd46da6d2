//! Unit specifications as an administrator imports them: our TOML unit file and IMS CASE JSON,
//! read by `catalogue::transfer::read` (which the command line, the API and the units page all
//! use). Whatever the bytes, reading answers the unit or a message; a unit it accepts exports in
//! either format and reads back as the same unit.

use chrono::{TimeZone, Utc};
use eportfolio::catalogue::transfer::{self, Format};
use eportfolio::catalogue::{Criterion, Outcome, Sufficiency, Unit, UnitFile, UnitSummary, case, export};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{Input, corpus, corpus_named, fail, fuzz, is_precise, mutated, parser_runner};

/// The unit as the catalogue would hold it after storing `file` (identifiers are made up: the
/// exports do not depend on them).
fn unit_of(file: &UnitFile) -> Unit {
    Unit {
        summary: UnitSummary {
            id: Uuid::new_v4(),
            code: file.code.clone(),
            reference: file.reference.clone(),
            title: file.title.clone(),
            awarding_body: file.awarding_body.clone(),
            level: file.level,
            credits: file.credits,
            guided_learning_hours: file.guided_learning_hours,
        },
        purpose: file.purpose.clone(),
        assessment_guidance: file.assessment_guidance.clone(),
        sufficiency: Sufficiency {
            min_occasions: file.sufficiency.min_occasions,
            real_work_outcomes: file.sufficiency.real_work_outcomes.clone(),
            real_work_methods: file.sufficiency.real_work_methods.clone(),
        },
        outcomes: file
            .outcomes
            .iter()
            .map(|o| Outcome {
                number: o.number,
                title: o.title.clone(),
                criteria: o
                    .criteria
                    .iter()
                    .map(|c| Criterion {
                        id: Uuid::new_v4(),
                        number: c.number.to_string(),
                        text: c.text.clone(),
                        guidance: c.guidance.clone(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// The property: a message, or a unit that survives export and re-import in both formats.
fn reads_cleanly(bytes: &[u8], format: Option<Format>) -> Result<(), TestCaseError> {
    let (file, _) = match transfer::read(bytes, format) {
        Err(message) => {
            prop_assert!(is_precise(&message), "an unhelpful refusal: {message:?}");
            return Ok(());
        }
        Ok(read) => read,
    };
    let text = export::unit_file_text(&file).map_err(fail)?;
    let (again, detected) = transfer::read(text.as_bytes(), None)
        .map_err(|m| fail(format!("our own unit file export is refused: {m}\n{text}")))?;
    prop_assert_eq!(detected, Format::Unit);
    prop_assert_eq!(&again, &file, "the unit file export reads back as the same unit");

    let changed = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
    let package = case::package_text(&unit_of(&file), changed);
    let (from_case, detected) = transfer::read(package.as_bytes(), None)
        .map_err(|m| fail(format!("our own CASE export is refused: {m}\n{package}")))?;
    prop_assert_eq!(detected, Format::Case);
    prop_assert_eq!(&from_case, &file, "the CASE export reads back as the same unit");
    Ok(())
}

fn format() -> impl Strategy<Value = Option<Format>> {
    prop_oneof![3 => Just(None), 1 => Just(Some(Format::Unit)), 1 => Just(Some(Format::Case))]
}

fn every_seed() -> Vec<Vec<u8>> {
    let mut seeds = corpus("unit_file");
    seeds.extend(corpus("case"));
    seeds
}

#[test]
fn every_seed_in_the_corpus_is_a_unit_that_round_trips_or_is_refused_as_its_name_says() {
    let mut seeds = corpus_named("unit_file");
    seeds.extend(corpus_named("case"));
    for (name, seed) in seeds {
        if name.starts_with("refused-") {
            let refused = transfer::read(&seed, None).expect_err(&name);
            assert!(is_precise(&refused), "{name}: {refused}");
            continue;
        }
        transfer::read(&seed, None).unwrap_or_else(|m| panic!("{name} is refused: {m}"));
        reads_cleanly(&seed, None).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

/// Found by the fuzzer: a NUL in a learning outcome's title was accepted, then the insert
/// failed and the import answered 500.
#[test]
fn a_unit_with_a_nul_character_is_refused_naming_where() {
    let seed = corpus_named("unit_file").into_iter().find(|(n, _)| n == "refused-nul-in-outcome-title.toml").unwrap();
    let refused = transfer::read(&seed.1, None).unwrap_err();
    assert_eq!(refused, "unit QX77: the title of learning outcome 1 contains a NUL character (\\0)");
}

#[test]
fn a_mutated_unit_file_or_case_package_is_read_or_refused_with_a_message() {
    let strategy = (mutated(every_seed(), 6), format());
    fuzz(parser_runner("unit_files", 800), strategy, |(Input(bytes), format)| reads_cleanly(&bytes, format));
}

/// JSON that a CASE reader should refuse politely: wrong types, numbers past any integer type,
/// very long text, nesting past the parser's depth limit.
fn hostile_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        Just(json!(1.0e308)),
        ".{0,40}".prop_map(Value::String),
        (1usize..12_000).prop_map(|n| Value::String("x".repeat(n))),
        Just(json!([])),
        Just(json!({})),
        Just(json!({"identifier": "", "uri": ""})),
        Just(json!({"identifier": 7})),
        (1usize..200).prop_map(|depth| (0..depth).fold(json!("deep"), |inner, _| json!([inner]))),
    ]
}

/// Walks into `value` by `path` (one `Index` per level) and replaces what it reaches.
fn replace_at(value: &mut Value, path: &[Index], with: Value) {
    let Some((step, rest)) = path.split_first() else {
        *value = with;
        return;
    };
    let child = match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(step.index(map.len())).cloned().expect("a key");
            map.get_mut(&key)
        }
        Value::Array(items) if !items.is_empty() => {
            let at = step.index(items.len());
            items.get_mut(at)
        }
        _ => None,
    };
    match child {
        Some(child) => replace_at(child, rest, with),
        None => *value = with,
    }
}

#[test]
fn a_case_package_with_wrong_types_huge_numbers_or_deep_nesting_is_refused_with_a_message() {
    let packages: Vec<Value> =
        corpus("case").iter().map(|seed| serde_json::from_slice(seed).expect("a JSON seed")).collect();
    let edit = (prop::collection::vec(any::<Index>(), 0..6), hostile_json());
    let strategy = (any::<Index>(), prop::collection::vec(edit, 1..5));
    fuzz(parser_runner("case_structure", 300), strategy, |(seed, edits)| {
        let mut package = seed.get(&packages).clone();
        for (path, with) in edits {
            replace_at(&mut package, &path, with);
        }
        // Written by hand for deep nesting: serde_json's writer has no depth limit, its reader does.
        let text = serde_json::to_string(&package).map_err(fail)?;
        reads_cleanly(text.as_bytes(), Some(Format::Case))?;
        reads_cleanly(text.as_bytes(), None)
    });
}

#[test]
fn the_bundled_units_read_from_the_catalogue_round_trip_too() {
    // The seeds are exports of these; a bundled unit that stopped round-tripping would show here
    // first, before any mutation.
    for source in [include_str!("../../units/cc20.toml"), include_str!("../../units/pearson-manage-direct-sales.toml")]
    {
        let file = UnitFile::parse(source).expect("a bundled unit");
        assert!(file.outcomes.len() >= 4, "{} has its learning outcomes", file.code);
        reads_cleanly(source.as_bytes(), Some(Format::Unit)).unwrap();
    }
}
