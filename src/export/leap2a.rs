//! LEAP2A (`http://www.leapspecs.org/2010-07/2A/`), packaged as Mahara imports it: a ZIP with
//! `leap2a.xml` (an Atom feed) and the files under `files/`. Each criterion is a `leap2:ability`,
//! each evidence item a `leap2:resource` with one enclosure per file and `leap2:supports` links
//! to its criteria (which link back with `leap2:supported_by`), and each decision an entry that
//! `leap2:reflects_on` the evidence it judged.

use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::PortfolioRecord;
use super::zip_stream::Entry;
use crate::error::{AppError, AppResult};

pub const ATOM: &str = "http://www.w3.org/2005/Atom";
pub const LEAP2: &str = "http://terms.leapspecs.org/";
pub const CATEGORIES: &str = "http://wiki.leapspecs.org/2A/categories";
pub const RDF: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
pub const VERSION: &str = "http://www.leapspecs.org/2010-07/2A/";

fn ability_id(record: &PortfolioRecord, criterion: &str) -> String {
    let id = record.unit.criteria().find(|c| c.number == criterion).map(|c| c.id.to_string()).unwrap_or_default();
    format!("portfolio:ability/{id}")
}

fn resource_id(evidence: uuid::Uuid) -> String {
    format!("portfolio:resource/{evidence}")
}

/// The feed, written element by element.
pub fn feed(record: &PortfolioRecord) -> io::Result<Vec<u8>> {
    let mut xml = Writer::new_with_indent(Vec::new(), b' ', 2);
    xml.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let updated = record.generated_at.to_rfc3339();
    let s = &record.summary;
    xml.create_element("feed")
        .with_attributes([
            ("xmlns", ATOM),
            ("xmlns:rdf", RDF),
            ("xmlns:leap2", LEAP2),
            ("xmlns:categories", CATEGORIES),
        ])
        .write_inner_content(|xml| {
            text(xml, "leap2:version", VERSION)?;
            text(xml, "id", &format!("urn:uuid:{}", s.id))?;
            text(xml, "title", &format!("{}: {} – portfolio of {}", s.unit_code, s.unit_title, s.learner_name))?;
            xml.create_element("author").write_inner_content(|xml| text(xml, "name", &s.learner_name))?;
            text(xml, "updated", &updated)?;
            for criterion in record.unit.criteria() {
                let supported_by: Vec<String> = record
                    .items
                    .iter()
                    .filter(|r| r.item.criteria.contains(&criterion.number))
                    .map(|r| resource_id(r.item.id))
                    .collect();
                xml.create_element("entry").write_inner_content(|xml| {
                    text(xml, "id", &ability_id(record, &criterion.number))?;
                    text(xml, "title", &format!("{} {}", criterion.number, criterion.text))?;
                    text(xml, "updated", &updated)?;
                    content(xml, &criterion.text)?;
                    rdf_type(xml, "leap2:ability")?;
                    for href in &supported_by {
                        link(xml, "leap2:supported_by", href, &[])?;
                    }
                    Ok(())
                })?;
            }
            for r in &record.items {
                let item = &r.item;
                xml.create_element("entry").write_inner_content(|xml| {
                    text(xml, "id", &resource_id(item.id))?;
                    text(xml, "title", &item.title)?;
                    text(xml, "updated", &item.submitted_at.unwrap_or(item.created_at).to_rfc3339())?;
                    text(xml, "published", &item.created_at.to_rfc3339())?;
                    content(xml, &item.description)?;
                    rdf_type(xml, "leap2:resource")?;
                    let kind = if r.files.is_empty() { "Offline" } else { "Digital" };
                    xml.create_element("category")
                        .with_attributes([("term", kind), ("scheme", "categories:resource_type#")])
                        .write_empty()?;
                    text(xml, "leap2:date", &item.occurred_on.to_string())?;
                    for f in &r.files {
                        let length = f.info.size.to_string();
                        link(
                            xml,
                            "enclosure",
                            &f.path,
                            &[("type", &f.info.content_type), ("length", &length), ("title", &f.info.name)],
                        )?;
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
                            xml.create_element("author")
                                .write_inner_content(|xml| text(xml, "name", &h.assessor_name))?;
                            content(xml, &h.feedback)?;
                            rdf_type(xml, "leap2:entry")?;
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
