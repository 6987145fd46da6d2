//! IMS CASE 1.0 (Competencies and Academic Standards Exchange) JSON: a unit as a CFPackage whose
//! CFDocument is the unit specification, with CFItems for the unit, its learning outcomes and
//! assessment criteria, tied by `isChildOf` CFAssociations (criterion → outcome → unit →
//! document). Identifiers are UUID v5 of the unit code and item code, so the same unit always
//! exports to the same bytes, and reading the package back gives the same unit.
//!
//! Reading accepts our own packages and reasonable third-party ones: a hierarchy document →
//! (unit →) outcome → criterion linked by `isChildOf`, with `humanCodingScheme` numbering.
//! Anything else is refused with a message naming the problem, before anything is stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use super::unit_file::{CriterionEntry, OutcomeEntry, SufficiencyEntry};
use super::{CriterionNumber, Unit, UnitFile};

/// The namespace of every CASE identifier we mint.
const NAMESPACE: Uuid = Uuid::from_u128(0x3c1e_9a70_5d2b_4e8f_b1a4_ca5e_0000_cc20);
/// Largest package read (bytes); a unit specification is a few tens of kilobytes.
pub const MAX_PACKAGE_BYTES: usize = 5 * 1024 * 1024;
/// Most items a package may hold (a unit has a handful of outcomes and some dozens of criteria).
const MAX_ITEMS: usize = 2_000;
/// Longest text in any field read.
const MAX_TEXT: usize = 20_000;
/// Where our own extra unit data (credits, hours, guidance, sufficiency) travels.
const EXTENSION: &str = "eportfolio";

pub const ITEM_TYPE_UNIT: &str = "Unit";
pub const ITEM_TYPE_OUTCOME: &str = "Learning Outcome";
pub const ITEM_TYPE_CRITERION: &str = "Assessment Criterion";

fn id_for(code: &str, item: &str) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{}/{item}", code.to_uppercase()).as_bytes())
}

fn uri(id: Uuid) -> String {
    format!("urn:uuid:{id}")
}

fn link(title: &str, id: Uuid) -> Value {
    json!({"title": title, "identifier": id.to_string(), "uri": uri(id)})
}

/// The CFPackage of a unit. `changed` is when the unit was last imported, so the package only
/// changes when the unit does. Keys come out sorted (serde_json's map is ordered) and arrays in
/// unit order, so two exports of the same unit are byte-identical.
pub fn package(unit: &Unit, changed: DateTime<Utc>) -> Value {
    let s = &unit.summary;
    let code = &s.code;
    let changed = changed.to_rfc3339_opts(SecondsFormat::Secs, true);
    let document_id = id_for(code, "document");
    let document = link(&s.title, document_id);
    let unit_id = id_for(code, "unit");
    let mut items = vec![json!({
        "identifier": unit_id.to_string(),
        "uri": uri(unit_id),
        "CFDocumentURI": document,
        "CFItemType": ITEM_TYPE_UNIT,
        "humanCodingScheme": code,
        "abbreviatedStatement": s.reference,
        "fullStatement": s.title,
        "notes": unit.purpose,
        "educationLevel": [s.level.to_string()],
        "language": "en",
        "lastChangeDateTime": changed,
    })];
    let mut associations = Vec::new();
    let mut associate = |child: Uuid, child_title: &str, parent: Uuid, parent_title: &str, sequence: usize| {
        let id = id_for(code, &format!("isChildOf/{child}/{parent}"));
        associations.push(json!({
            "identifier": id.to_string(),
            "uri": uri(id),
            "CFDocumentURI": document,
            "associationType": "isChildOf",
            "originNodeURI": link(child_title, child),
            "destinationNodeURI": link(parent_title, parent),
            "sequenceNumber": sequence,
            "lastChangeDateTime": changed,
        }));
    };
    associate(unit_id, &s.title, document_id, &s.title, 1);
    for outcome in &unit.outcomes {
        let outcome_id = id_for(code, &format!("LO{}", outcome.number));
        items.push(json!({
            "identifier": outcome_id.to_string(),
            "uri": uri(outcome_id),
            "CFDocumentURI": document,
            "CFItemType": ITEM_TYPE_OUTCOME,
            "humanCodingScheme": outcome.number.to_string(),
            "listEnumeration": outcome.number.to_string(),
            "fullStatement": outcome.title,
            "language": "en",
            "lastChangeDateTime": changed,
        }));
        associate(outcome_id, &outcome.title, unit_id, &s.title, outcome.number as usize);
        for (index, criterion) in outcome.criteria.iter().enumerate() {
            let criterion_id = id_for(code, &format!("AC{}", criterion.number));
            let mut item = json!({
                "identifier": criterion_id.to_string(),
                "uri": uri(criterion_id),
                "CFDocumentURI": document,
                "CFItemType": ITEM_TYPE_CRITERION,
                "humanCodingScheme": criterion.number,
                "listEnumeration": (index + 1).to_string(),
                "fullStatement": criterion.text,
                "language": "en",
                "lastChangeDateTime": changed,
            });
            if !criterion.guidance.is_empty() {
                item["notes"] = json!(criterion.guidance);
            }
            items.push(item);
            associate(criterion_id, &criterion.text, outcome_id, &outcome.title, index + 1);
        }
    }
    let item_types: Vec<Value> = [ITEM_TYPE_UNIT, ITEM_TYPE_OUTCOME, ITEM_TYPE_CRITERION]
        .iter()
        .map(|t| {
            let id = Uuid::new_v5(&NAMESPACE, format!("CFItemType/{t}").as_bytes());
            json!({"identifier": id.to_string(), "uri": uri(id), "title": t, "hierarchyCode": t,
                   "lastChangeDateTime": "2026-01-01T00:00:00Z"})
        })
        .collect();
    json!({
        "CFDocument": {
            "identifier": document_id.to_string(),
            "uri": uri(document_id),
            "creator": s.awarding_body,
            "publisher": s.awarding_body,
            "title": s.title,
            "description": unit.purpose,
            "language": "en",
            "adoptionStatus": "Adopted",
            "lastChangeDateTime": changed,
            "CFPackageURI": link(&s.title, document_id),
            "extensions": {EXTENSION: {
                "code": code,
                "reference": s.reference,
                "level": s.level,
                "credits": s.credits,
                "guided_learning_hours": s.guided_learning_hours,
                "assessment_guidance": unit.assessment_guidance,
                "sufficiency": {
                    "min_occasions": unit.sufficiency.min_occasions,
                    "real_work_outcomes": unit.sufficiency.real_work_outcomes,
                    "real_work_methods": unit.sufficiency.real_work_methods,
                },
            }},
        },
        "CFItems": items,
        "CFAssociations": associations,
        "CFDefinitions": {"CFItemTypes": item_types},
    })
}

/// The package as the bytes we serve and write: pretty-printed, keys sorted, a final newline.
pub fn package_text(unit: &Unit, changed: DateTime<Utc>) -> String {
    let mut text = serde_json::to_string_pretty(&package(unit, changed)).expect("JSON values always serialise");
    text.push('\n');
    text
}

/// One item as read: its text and where it sits.
#[derive(Debug)]
struct Item {
    identifier: String,
    coding: String,
    statement: String,
    notes: String,
    item_type: String,
    abbreviated: String,
    education_level: String,
    sequence: Option<i64>,
}

fn text_field(object: &Value, field: &str, what: &str) -> Result<String, String> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) if text.chars().count() > MAX_TEXT => {
            Err(format!("{what} has a {field} longer than {MAX_TEXT} characters"))
        }
        Some(Value::String(text)) => Ok(text.trim().to_string()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err(format!("{what}: {field} must be text")),
    }
}

fn identifier_of(link: Option<&Value>, what: &str) -> Result<String, String> {
    let link = link.ok_or_else(|| format!("{what} is missing"))?;
    let identifier = link
        .get("identifier")
        .and_then(Value::as_str)
        .or_else(|| link.get("uri").and_then(Value::as_str).map(|u| u.rsplit([':', '/']).next().unwrap_or(u)))
        .ok_or_else(|| format!("{what} has no identifier"))?;
    Ok(identifier.trim().to_lowercase())
}

/// The trailing number of a coding such as "LO2", "2", "CC20.2" or "Outcome 2".
fn outcome_number(coding: &str) -> Option<i32> {
    let digits: String =
        coding.trim().trim_end_matches('.').chars().rev().take_while(char::is_ascii_digit).collect::<String>();
    digits.chars().rev().collect::<String>().parse().ok()
}

/// The criterion number at the end of a coding such as "1.1", "AC1.1" or "CC20.1.1".
fn criterion_number(coding: &str) -> Option<CriterionNumber> {
    let coding = coding.trim().trim_end_matches('.');
    let parts: Vec<&str> = coding.rsplitn(3, '.').collect();
    if parts.len() < 2 {
        return None;
    }
    let outcome: String = parts[1].chars().rev().take_while(char::is_ascii_digit).collect::<String>();
    let outcome: String = outcome.chars().rev().collect();
    CriterionNumber::parse(&format!("{outcome}.{}", parts[0])).ok()
}

/// Reads a CFPackage into a unit file, checked like any unit file. Every problem is a message a
/// person can act on; nothing is stored by reading.
pub fn parse(source: &[u8]) -> Result<UnitFile, String> {
    if source.len() > MAX_PACKAGE_BYTES {
        return Err(format!(
            "the package is larger than the {} MiB a unit specification may be",
            MAX_PACKAGE_BYTES >> 20
        ));
    }
    let package: Value = serde_json::from_slice(source).map_err(|e| format!("the package is not valid JSON: {e}"))?;
    let document = package.get("CFDocument").filter(|d| d.is_object()).ok_or(
        "the package has no CFDocument: a CASE package is a JSON object with CFDocument, CFItems and CFAssociations",
    )?;
    let document_id =
        identifier_of(Some(document), "the CFDocument").map_err(|_| "the CFDocument has no identifier".to_string())?;
    let items_json = match package.get("CFItems") {
        Some(Value::Array(items)) => items.as_slice(),
        None => &[],
        Some(_) => return Err("CFItems must be a list".into()),
    };
    let associations_json = match package.get("CFAssociations") {
        Some(Value::Array(items)) => items.as_slice(),
        None => &[],
        Some(_) => return Err("CFAssociations must be a list".into()),
    };
    if items_json.len() > MAX_ITEMS || associations_json.len() > MAX_ITEMS * 2 {
        return Err(format!(
            "the package has {} items and {} associations, more than the {MAX_ITEMS} items a unit may have",
            items_json.len(),
            associations_json.len()
        ));
    }
    let mut items: HashMap<String, Item> = HashMap::new();
    for (index, object) in items_json.iter().enumerate() {
        let what = format!("CFItem {}", index + 1);
        if !object.is_object() {
            return Err(format!("{what} is not an object"));
        }
        let identifier = identifier_of(Some(object), &what)?;
        let what = format!("CFItem {identifier}");
        let item = Item {
            coding: text_field(object, "humanCodingScheme", &what)?,
            statement: text_field(object, "fullStatement", &what)?,
            notes: text_field(object, "notes", &what)?,
            item_type: text_field(object, "CFItemType", &what)?,
            abbreviated: text_field(object, "abbreviatedStatement", &what)?,
            education_level: object
                .get("educationLevel")
                .and_then(Value::as_array)
                .and_then(|levels| levels.first())
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            sequence: None,
            identifier: identifier.clone(),
        };
        if identifier == document_id {
            return Err(format!("CFItem {identifier} has the CFDocument's own identifier"));
        }
        if items.insert(identifier.clone(), item).is_some() {
            return Err(format!("two CFItems have the identifier {identifier}"));
        }
    }
    // Parent of each item, by isChildOf (origin is the child, destination the parent).
    let mut parent: HashMap<String, String> = HashMap::new();
    for (index, association) in associations_json.iter().enumerate() {
        let what = format!("CFAssociation {}", index + 1);
        let kind = association.get("associationType").and_then(Value::as_str).unwrap_or("");
        if kind != "isChildOf" {
            continue; // other relations (isRelatedTo, exemplar …) say nothing about the hierarchy
        }
        let child = identifier_of(association.get("originNodeURI"), &format!("{what}'s originNodeURI"))?;
        let of = identifier_of(association.get("destinationNodeURI"), &format!("{what}'s destinationNodeURI"))?;
        if of != document_id && !items.contains_key(&of) {
            return Err(format!("{what} (isChildOf) points to {of}, which is neither the CFDocument nor an item"));
        }
        let Some(item) = items.get_mut(&child) else {
            return Err(format!("{what} (isChildOf) starts from {child}, which is not an item in the package"));
        };
        item.sequence = association.get("sequenceNumber").and_then(Value::as_i64).or(item.sequence);
        if let Some(earlier) = parent.insert(child.clone(), of.clone())
            && earlier != of
        {
            return Err(format!("item {child} is a child of both {earlier} and {of}; each item needs one parent"));
        }
    }
    for start in parent.keys() {
        let mut seen = BTreeSet::new();
        let mut at = start.clone();
        while let Some(up) = parent.get(&at) {
            if !seen.insert(at.clone()) {
                return Err(format!("the isChildOf associations form a cycle through item {start}"));
            }
            at = up.clone();
        }
        if at != document_id {
            return Err(format!("item {start} is not linked to the CFDocument by isChildOf associations"));
        }
    }
    if let Some(orphan) = items.keys().filter(|id| !parent.contains_key(*id)).min() {
        let item = &items[orphan];
        let label = if item.coding.is_empty() { orphan.clone() } else { format!("{} ({orphan})", item.coding) };
        return Err(if looks_like_criterion(item) {
            format!("criterion {label} belongs to no learning outcome: give it an isChildOf association")
        } else {
            format!("item {label} is not linked to the CFDocument by an isChildOf association")
        });
    }
    let mut children: BTreeMap<String, Vec<&Item>> = BTreeMap::new();
    for (child, of) in &parent {
        children.entry(of.clone()).or_default().push(&items[child]);
    }
    for list in children.values_mut() {
        list.sort_by(|a, b| {
            (a.sequence.unwrap_or(i64::MAX), natural(&a.coding), &a.identifier).cmp(&(
                b.sequence.unwrap_or(i64::MAX),
                natural(&b.coding),
                &b.identifier,
            ))
        });
    }
    let kids = |id: &str| children.get(id).cloned().unwrap_or_default();
    let top = kids(&document_id);
    // document → unit → outcomes → criteria, or document → outcomes → criteria.
    let (unit_item, outcome_items) = match top.as_slice() {
        [] => return Err("the CFDocument has no items under it: a unit needs learning outcomes and criteria".into()),
        [only] if only.item_type.eq_ignore_ascii_case(ITEM_TYPE_UNIT) || depth(&children, &only.identifier) == 2 => {
            (Some(*only), kids(&only.identifier))
        }
        _ => (None, top),
    };
    let extension = document.get("extensions").and_then(|e| e.get(EXTENSION)).cloned().unwrap_or(Value::Null);
    let ext_text = |field: &str| extension.get(field).and_then(Value::as_str).map(str::to_string);
    let ext_int = |field: &str| extension.get(field).and_then(Value::as_i64).map(|n| n as i32);
    let code = ext_text("code")
        .or_else(|| unit_item.map(|u| u.coding.clone()).filter(|c| !c.is_empty()))
        .ok_or("the package does not give the unit's code: put it in the unit item's humanCodingScheme")?;
    let document_title = text_field(document, "title", "the CFDocument")?;
    let mut outcomes = Vec::new();
    for (index, outcome) in outcome_items.iter().enumerate() {
        let number = outcome_number(&outcome.coding).unwrap_or(index as i32 + 1);
        let label = format!("learning outcome {number}");
        let mut criteria = Vec::new();
        for (position, criterion) in kids(&outcome.identifier).iter().enumerate() {
            if !kids(&criterion.identifier).is_empty() {
                return Err(format!(
                    "item {} under {label} has items under it: a unit goes no deeper than outcome → criterion",
                    if criterion.coding.is_empty() { &criterion.identifier } else { &criterion.coding }
                ));
            }
            let number = criterion_number(&criterion.coding)
                .unwrap_or(CriterionNumber { outcome: number as u16, criterion: position as u16 + 1 });
            criteria.push(CriterionEntry {
                number,
                text: criterion.statement.clone(),
                guidance: criterion.notes.clone(),
            });
        }
        if criteria.is_empty() && looks_like_criterion(outcome) {
            return Err(format!(
                "criterion {} belongs to no learning outcome: it sits directly under the {}",
                outcome.coding,
                if unit_item.is_some() { "unit" } else { "CFDocument" }
            ));
        }
        outcomes.push(OutcomeEntry { number, title: outcome.statement.clone(), criteria });
    }
    let sufficiency = match extension.get("sufficiency") {
        Some(rules) => SufficiencyEntry {
            min_occasions: rules.get("min_occasions").and_then(Value::as_i64).unwrap_or(1) as i32,
            real_work_outcomes: rules
                .get("real_work_outcomes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_i64).map(|n| n as i32).collect())
                .unwrap_or_default(),
            real_work_methods: rules
                .get("real_work_methods")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
        },
        None => SufficiencyEntry::default(),
    };
    let file = UnitFile {
        code,
        reference: ext_text("reference").or_else(|| unit_item.map(|u| u.abbreviated.clone())).unwrap_or_default(),
        title: unit_item.map(|u| u.statement.clone()).filter(|t| !t.is_empty()).unwrap_or(document_title),
        awarding_body: text_field(document, "creator", "the CFDocument")?,
        level: ext_int("level").or_else(|| unit_item.and_then(|u| u.education_level.trim().parse().ok())).unwrap_or(0),
        credits: ext_int("credits").unwrap_or(0),
        guided_learning_hours: ext_int("guided_learning_hours").unwrap_or(0),
        purpose: match unit_item {
            Some(u) if !u.notes.is_empty() => u.notes.clone(),
            _ => text_field(document, "description", "the CFDocument")?,
        },
        assessment_guidance: ext_text("assessment_guidance").unwrap_or_default(),
        sufficiency,
        outcomes,
    };
    file.check().map_err(|e| format!("{e:#}"))
}

fn looks_like_criterion(item: &Item) -> bool {
    item.item_type.to_lowercase().contains("criteri") || criterion_number(&item.coding).is_some()
}

/// Sorts "1.2" before "1.10".
fn natural(coding: &str) -> Vec<u64> {
    coding.split(|c: char| !c.is_ascii_digit()).filter_map(|p| p.parse().ok()).collect()
}

/// How many levels of items lie under `id`.
fn depth(children: &BTreeMap<String, Vec<&Item>>, id: &str) -> usize {
    children.get(id).map(|kids| 1 + kids.iter().map(|k| depth(children, &k.identifier)).max().unwrap_or(0)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codings_give_outcome_and_criterion_numbers() {
        assert_eq!(outcome_number("LO2"), Some(2));
        assert_eq!(outcome_number("CC20.3"), Some(3));
        assert_eq!(criterion_number("1.4").map(|n| n.to_string()), Some("1.4".into()));
        assert_eq!(criterion_number("AC2.3").map(|n| n.to_string()), Some("2.3".into()));
        assert_eq!(criterion_number("CC20.4.6").map(|n| n.to_string()), Some("4.6".into()));
        assert_eq!(criterion_number("Outcome"), None);
    }

    #[test]
    fn malformed_packages_are_refused_with_the_problem_named() {
        assert!(parse(b"{not json").unwrap_err().contains("not valid JSON"));
        assert!(parse(b"{\"CFItems\": []}").unwrap_err().contains("no CFDocument"));
        let doc = r#""CFDocument": {"identifier": "d", "title": "T", "creator": "B"}"#;
        let item = |id: &str, coding: &str| {
            format!(r#"{{"identifier": "{id}", "humanCodingScheme": "{coding}", "fullStatement": "S {id}"}}"#)
        };
        let child = |a: &str, b: &str| {
            format!(
                r#"{{"identifier": "{a}-{b}", "associationType": "isChildOf",
                     "originNodeURI": {{"identifier": "{a}"}}, "destinationNodeURI": {{"identifier": "{b}"}}}}"#
            )
        };
        let package = |items: Vec<String>, links: Vec<String>| {
            format!(r#"{{{doc}, "CFItems": [{}], "CFAssociations": [{}]}}"#, items.join(","), links.join(","))
        };
        let cycle = package(
            vec![item("u", "X1"), item("o", "1"), item("c", "1.1")],
            vec![child("u", "c"), child("o", "u"), child("c", "o")],
        );
        assert!(parse(cycle.as_bytes()).unwrap_err().contains("cycle"), "{}", parse(cycle.as_bytes()).unwrap_err());
        let unknown = package(vec![item("u", "X1")], vec![child("ghost", "d")]);
        assert!(parse(unknown.as_bytes()).unwrap_err().contains("not an item in the package"));
        let stray = package(
            vec![item("u", "X1"), item("o", "1"), item("c", "1.1"), item("c2", "1.2")],
            vec![child("u", "d"), child("o", "u"), child("c", "o")],
        );
        assert!(parse(stray.as_bytes()).unwrap_err().contains("criterion 1.2 (c2) belongs to no learning outcome"));
        let good = package(
            vec![item("u", "X1"), item("o", "1"), item("c", "1.1")],
            vec![child("u", "d"), child("o", "u"), child("c", "o")],
        );
        let unit = parse(good.as_bytes()).unwrap();
        assert_eq!(unit.code, "X1");
        assert_eq!(unit.outcomes[0].criteria[0].text, "S c");
    }
}
