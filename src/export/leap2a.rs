//! LEAP2A (`http://www.leapspecs.org/2010-07/2A/`), packaged as Mahara imports it: a ZIP with
//! `leap2a.xml` (an Atom feed) at its root and the files under `files/`, named by the enclosures
//! relative to the feed, as Mahara's importer resolves them.
//!
//! The shapes follow what Mahara's own importer (`htdocs/import/leap/lib.php` and the artefact
//! plugins' `import/leap/lib.php`) keeps, so nothing is dropped silently:
//! - the learner is the feed's `<author>`, whose `<uri>` names a `leap2:person` entry with
//!   `leap2:persondata` (Mahara's profile name);
//! - each stored file is a `leap2:resource` with exactly one enclosure (a Mahara file);
//! - each evidence item is a `leap2:resource` with its description, dates and `related` links
//!   to its files (a Mahara journal post with the files attached) and `leap2:supports` links to
//!   its criteria, which link back with `leap2:supported_by`;
//! - each criterion is a `leap2:ability` with its status (Mahara keeps it as a journal post);
//! - each decision is an entry that `leap2:reflects_on` the evidence it judged, marked as a
//!   Mahara comment so it lands as the assessor's comment on that post;
//! - a `leap2:selection` of type `Webpage` sums the portfolio up in a table of criteria, their
//!   status and evidence (Mahara makes it a page with that table in a text block).

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::PortfolioRecord;
use super::zip_stream::Entry;
use crate::error::{AppError, AppResult};

pub const ATOM: &str = "http://www.w3.org/2005/Atom";
pub const LEAP2: &str = "http://terms.leapspecs.org/";
/// With the trailing slash, as Mahara's exporter declares it (`PluginImportLeap::NS_CATEGORIES`).
pub const CATEGORIES: &str = "http://wiki.leapspecs.org/2A/categories/";
pub const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
pub const VERSION: &str = "http://www.leapspecs.org/2010-07/2A/";
/// Mahara's extension namespace (`PluginImportLeap::NS_MAHARA`), byte for byte.
pub const MAHARA: &str = "http://wiki.mahara.org/Developer_Area/Import%2F%2FExport/LEAP_Extensions#";
pub const XHTML: &str = "http://www.w3.org/1999/xhtml";

fn ability_id(record: &PortfolioRecord, criterion: &str) -> String {
    let id = record.unit.criteria().find(|c| c.number == criterion).map(|c| c.id.to_string()).unwrap_or_default();
    format!("portfolio:ability/{id}")
}

fn resource_id(evidence: uuid::Uuid) -> String {
    format!("portfolio:resource/{evidence}")
}

fn file_id(file: uuid::Uuid) -> String {
    format!("portfolio:file/{file}")
}

fn person_id(record: &PortfolioRecord) -> String {
    format!("portfolio:person/{}", record.summary.learner_id)
}

/// The learner's given and family names, split at the first space as Mahara splits an author's
/// name. `None` for a one-word name: Mahara would then blank the family name of the account.
fn given_and_family(name: &str) -> Option<(&str, &str)> {
    let (given, family) = name.trim().split_once(' ')?;
    let (given, family) = (given.trim(), family.trim());
    (!given.is_empty() && !family.is_empty()).then_some((given, family))
}

/// The feed, written element by element.
pub fn feed(record: &PortfolioRecord) -> io::Result<Vec<u8>> {
    let mut xml = Writer::new_with_indent(Vec::new(), b' ', 2);
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let updated = record.generated_at.to_rfc3339();
    let s = &record.summary;
    let names = given_and_family(&s.learner_name);
    let tag = s.unit_code.to_lowercase();
    xml.create_element("feed")
        .with_attributes([
            ("xmlns", ATOM),
            ("xmlns:rdf", RDF),
            // Mahara looks the version up as `//leap2:version`: the prefix must be `leap2`.
            ("xmlns:leap2", LEAP2),
            ("xmlns:categories", CATEGORIES),
            ("xmlns:mahara", MAHARA),
        ])
        .write_inner_content(|xml| {
            text(xml, "leap2:version", VERSION)?;
            text(xml, "id", &format!("urn:uuid:{}", s.id))?;
            text(xml, "title", &format!("{}: {} – portfolio of {}", s.unit_code, s.unit_title, s.learner_name))?;
            text(xml, "updated", &updated)?;
            xml.create_element("generator").write_text_content(BytesText::new("eportfolio"))?;
            xml.create_element("author").write_inner_content(|xml| {
                text(xml, "name", &s.learner_name)?;
                if names.is_some() {
                    text(xml, "uri", &person_id(record))?;
                }
                Ok(())
            })?;
            if let Some((given, family)) = names {
                xml.create_element("entry").write_inner_content(|xml| {
                    text(xml, "id", &person_id(record))?;
                    text(xml, "title", &s.learner_name)?;
                    text(xml, "updated", &updated)?;
                    // Empty: Mahara would make any text here the account's introduction.
                    content(xml, "")?;
                    rdf_type(xml, "leap2:person")?;
                    category(xml, "Self", Some("person_type"), None)?;
                    persondata(xml, "full_name", &s.learner_name)?;
                    persondata(xml, "legal_given_name", given)?;
                    persondata(xml, "legal_family_name", family)?;
                    Ok(())
                })?;
            }
            page(xml, record, &updated)?;
            for criterion in record.unit.criteria() {
                let supported_by: Vec<String> = record
                    .items
                    .iter()
                    .filter(|r| r.item.criteria.contains(&criterion.number))
                    .map(|r| resource_id(r.item.id))
                    .collect();
                let status = status_of(record, &criterion.number);
                xml.create_element("entry").write_inner_content(|xml| {
                    text(xml, "id", &ability_id(record, &criterion.number))?;
                    text(xml, "title", &format!("{} {}", criterion.number, criterion.text))?;
                    text(xml, "updated", &updated)?;
                    content(xml, &format!("{}\n\n{}: {}", criterion.text, s.unit_code, status))?;
                    rdf_type(xml, "leap2:ability")?;
                    category(xml, &tag, None, Some(&s.unit_code))?;
                    for href in &supported_by {
                        link(xml, "leap2:supported_by", href, &[])?;
                    }
                    Ok(())
                })?;
            }
            for r in &record.items {
                let item = &r.item;
                let item_updated = item.submitted_at.unwrap_or(item.created_at).to_rfc3339();
                let item_published = item.created_at.to_rfc3339();
                // Each file first, as Mahara's own exporter writes a file: one enclosure each.
                for f in &r.files {
                    xml.create_element("entry").write_inner_content(|xml| {
                        text(xml, "id", &file_id(f.info.id))?;
                        text(xml, "title", &f.info.name)?;
                        text(xml, "updated", &item_updated)?;
                        text(xml, "published", &item_published)?;
                        content(xml, &format!("A file of the evidence “{}”.", item.title))?;
                        rdf_type(xml, "leap2:resource")?;
                        category(xml, "Digital", Some("resource_type"), None)?;
                        category(xml, &tag, None, Some(&s.unit_code))?;
                        let length = f.info.size.to_string();
                        link(
                            xml,
                            "enclosure",
                            &f.path,
                            &[("type", &f.info.content_type), ("length", &length), ("title", &f.info.name)],
                        )?;
                        link(xml, "leap2:is_part_of", &resource_id(item.id), &[])?;
                        Ok(())
                    })?;
                }
                xml.create_element("entry").write_inner_content(|xml| {
                    text(xml, "id", &resource_id(item.id))?;
                    text(xml, "title", &item.title)?;
                    text(xml, "updated", &item_updated)?;
                    text(xml, "published", &item_published)?;
                    content(xml, &item.description)?;
                    rdf_type(xml, "leap2:resource")?;
                    let kind = if r.files.is_empty() { "Offline" } else { "Digital" };
                    category(xml, kind, Some("resource_type"), None)?;
                    category(xml, &tag, None, Some(&s.unit_code))?;
                    date(xml, "start", &item.occurred_on.to_string())?;
                    if let Some(until) = item.occurred_until {
                        date(xml, "end", &until.to_string())?;
                    }
                    for f in &r.files {
                        link(xml, "related", &file_id(f.info.id), &[])?;
                    }
                    for criterion in &item.criteria {
                        link(xml, "leap2:supports", &ability_id(record, criterion), &[])?;
                    }
                    Ok(())
                })?;
            }
            for r in &record.items {
                for d in &r.decisions {
                    for h in &d.history {
                        xml.create_element("entry").write_inner_content(|xml| {
                            text(xml, "id", &format!("portfolio:decision/{}", h.id))?;
                            text(xml, "title", &format!("{}: {} – {}", d.criterion, h.outcome_label(), r.item.title))?;
                            text(xml, "updated", &h.decided_at.to_rfc3339())?;
                            text(xml, "published", &h.decided_at.to_rfc3339())?;
                            xml.create_element("author")
                                .write_inner_content(|xml| text(xml, "name", &h.assessor_name))?;
                            let said = if h.feedback.trim().is_empty() { "" } else { "\n\n" };
                            content(
                                xml,
                                &format!("{} {}: {}{said}{}", d.criterion, d.text, h.outcome_label(), h.feedback),
                            )?;
                            rdf_type(xml, "leap2:entry")?;
                            // LeapImportComment takes an entry as a comment only with this marker
                            // and exactly one `reflects_on`.
                            xml.create_element("mahara:artefactplugin")
                                .with_attributes([("mahara:plugin", "comment"), ("mahara:type", "comment")])
                                .write_empty()?;
                            link(xml, "leap2:reflects_on", &resource_id(r.item.id), &[])?;
                            link(xml, "leap2:relation", &ability_id(record, &d.criterion), &[])?;
                            Ok(())
                        })?;
                    }
                }
            }
            Ok(())
        })?;
    Ok(xml.into_inner())
}

fn status_of<'a>(record: &'a PortfolioRecord, number: &str) -> &'a str {
    record.progress.criteria.iter().find(|p| p.number == number).map(|p| p.status_label()).unwrap_or("Not started")
}

/// The portfolio at a glance: Mahara's core imports a `Webpage` selection without its own
/// `mahara:view` layout as a page holding the entry's content in one text block
/// (PluginImportLeap::import_using_strategy), and that content must be XHTML wrapped in exactly
/// `<div xmlns="http://www.w3.org/1999/xhtml">` (get_entry_content).
fn page(xml: &mut Writer<Vec<u8>>, record: &PortfolioRecord, updated: &str) -> io::Result<()> {
    let s = &record.summary;
    xml.create_element("entry").write_inner_content(|xml| {
        text(xml, "id", &format!("portfolio:page/{}", s.id))?;
        text(xml, "title", &format!("{}: {}", s.unit_code, s.unit_title))?;
        text(xml, "updated", updated)?;
        text(
            xml,
            "summary",
            &format!(
                "{} of {} criteria met. Assessor: {}. Exported {}.",
                record.progress.met,
                record.progress.total,
                s.assessor_name,
                record.generated_at.format("%-d %B %Y")
            ),
        )?;
        xml.create_element("content").with_attribute(("type", "xhtml")).write_inner_content(|xml| {
            xml.create_element("div").with_attribute(("xmlns", XHTML)).write_inner_content(|xml| {
                xml.create_element("table").write_inner_content(|xml| {
                    text(xml, "caption", &format!("Criteria of {} and the evidence for them", s.unit_code))?;
                    xml.create_element("thead").write_inner_content(|xml| {
                        xml.create_element("tr").write_inner_content(|xml| {
                            for heading in ["Criterion", "Status", "Evidence"] {
                                xml.create_element("th")
                                    .with_attribute(("scope", "col"))
                                    .write_text_content(BytesText::new(heading))?;
                            }
                            Ok(())
                        })?;
                        Ok(())
                    })?;
                    xml.create_element("tbody").write_inner_content(|xml| {
                        for criterion in record.unit.criteria() {
                            let evidence: Vec<&str> = record
                                .items
                                .iter()
                                .filter(|r| r.item.criteria.contains(&criterion.number))
                                .map(|r| r.item.title.as_str())
                                .collect();
                            xml.create_element("tr").write_inner_content(|xml| {
                                xml.create_element("th").with_attribute(("scope", "row")).write_text_content(
                                    BytesText::new(&format!("{} {}", criterion.number, criterion.text)),
                                )?;
                                text(xml, "td", status_of(record, &criterion.number))?;
                                text(xml, "td", &evidence.join("; "))?;
                                Ok(())
                            })?;
                        }
                        Ok(())
                    })?;
                    Ok(())
                })?;
                Ok(())
            })?;
            Ok(())
        })?;
        rdf_type(xml, "leap2:selection")?;
        category(xml, "Webpage", Some("selection_type"), None)?;
        Ok(())
    })?;
    Ok(())
}

fn text(xml: &mut Writer<Vec<u8>>, name: &str, value: &str) -> io::Result<()> {
    xml.create_element(name).write_text_content(BytesText::new(value))?;
    Ok(())
}

fn content(xml: &mut Writer<Vec<u8>>, value: &str) -> io::Result<()> {
    xml.create_element("content").with_attribute(("type", "text")).write_text_content(BytesText::new(value))?;
    Ok(())
}

fn rdf_type(xml: &mut Writer<Vec<u8>>, resource: &str) -> io::Result<()> {
    xml.create_element("rdf:type").with_attribute(("rdf:resource", resource)).write_empty()?;
    Ok(())
}

/// A category: with a scheme (`categories:<scheme>#`) a LEAP2A term; without, a tag Mahara keeps.
fn category(xml: &mut Writer<Vec<u8>>, term: &str, scheme: Option<&str>, label: Option<&str>) -> io::Result<()> {
    let scheme = scheme.map(|s| format!("categories:{s}#"));
    let mut element = xml.create_element("category").with_attribute(("term", term));
    if let Some(scheme) = &scheme {
        element = element.with_attribute(("scheme", scheme.as_str()));
    }
    if let Some(label) = label {
        element = element.with_attribute(("label", label));
    }
    element.write_empty()?;
    Ok(())
}

fn date(xml: &mut Writer<Vec<u8>>, point: &str, value: &str) -> io::Result<()> {
    xml.create_element("leap2:date")
        .with_attribute(("leap2:point", point))
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn persondata(xml: &mut Writer<Vec<u8>>, field: &str, value: &str) -> io::Result<()> {
    xml.create_element("leap2:persondata")
        .with_attribute(("leap2:field", field))
        .write_text_content(BytesText::new(value))?;
    Ok(())
}

fn link(xml: &mut Writer<Vec<u8>>, rel: &str, href: &str, extra: &[(&str, &str)]) -> io::Result<()> {
    xml.create_element("link")
        .with_attributes([("rel", rel), ("href", href)])
        .with_attributes(extra.iter().copied())
        .write_empty()?;
    Ok(())
}

/// The entries of the LEAP2A package: `leap2a.xml`, then the files.
pub fn entries(record: &PortfolioRecord) -> AppResult<Vec<Entry>> {
    let feed = feed(record).map_err(|e| AppError::Unexpected(e.into()))?;
    let mut entries = vec![Entry::Bytes { path: "leap2a.xml".into(), bytes: feed }];
    entries.extend(record.files().map(|(_, f)| Entry::Stored {
        path: f.path.clone(),
        sha256: f.info.sha256.clone(),
        size: f.info.size as u64,
    }));
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_as_mahara_splits_an_author() {
        assert_eq!(given_and_family("Lee Learner"), Some(("Lee", "Learner")));
        assert_eq!(given_and_family("Ana María de la Cruz"), Some(("Ana", "María de la Cruz")));
        assert_eq!(given_and_family("Cher"), None);
    }
}
