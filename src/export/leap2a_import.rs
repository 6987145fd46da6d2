//! LEAP2A import: evidence from another e-portfolio (Mahara, or our own LEAP2A export) becomes
//! draft evidence items in a learner's portfolio. A package is a ZIP holding `leap2a.xml` (an
//! Atom feed with LEAP2A terms) and the files its entries enclose, or a bare `leap2a.xml`.
//!
//! Each `leap2:resource` or `leap2:entry` becomes one draft with its title, content, dates and
//! enclosed files (stored like any upload: typed from content, content-addressed by SHA-256);
//! `leap2:supports` links to abilities whose codes are this unit's criteria are pre-mapped. A
//! file entry that another entry links as `related` (Mahara's attachments, our own export's
//! files) arrives with that entry instead of on its own; Mahara's `files/<n>-` prefix is taken off
//! file names and hrefs are also tried `urldecode`d, as Mahara reads them; Mahara's profile,
//! résumé and comment entries are not evidence. The
//! source feed and entry are recorded, so importing the same package again adds nothing.
//! Everything is checked before anything is written (path traversal, sizes, missing files,
//! malformed XML, wrong namespaces), and the items and the audit event go in one transaction.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path as FsPath, PathBuf};

use askama::Template;
use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use futures_util::StreamExt;
use quick_xml::NsReader;
use quick_xml::events::Event as Xml;
use quick_xml::name::ResolveResult;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::leap2a::{ATOM, LEAP2, MAHARA, RDF};
use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::policy::{self, Access, Action, EnrolmentAccess, Relation, Viewed};
use crate::auth::{Actor, csrf};
use crate::catalogue::{self, CriterionNumber, Unit};
use crate::error::{AppError, AppResult, FieldError};
use crate::evidence::storage::{ChunkSource, StagedFile, human_size};
use crate::evidence::{self, Mapping, Method, NewEvidence, Status};
use crate::web::route_table::Routes;
use crate::web::{Nav, render};

/// Most entries a feed may have; a portfolio has hundreds at most.
const MAX_ENTRIES: usize = 10_000;
/// Most members a ZIP may list.
const MAX_ZIP_MEMBERS: usize = 20_000;
/// Largest `leap2a.xml` read.
const MAX_FEED_BYTES: u64 = 64 * 1024 * 1024;
/// Longest title and description kept (as for evidence typed in).
const MAX_TITLE: usize = 200;
const MAX_DESCRIPTION: usize = 20_000;
/// Files enclosed by one entry (as for one upload).
const MAX_FILES_PER_ITEM: usize = 20;

pub fn router() -> Routes {
    let import = Access::Enrolment(Action::ImportEvidence);
    Routes::new()
        .get("/enrolments/{id}/imports/leap2a", import, import_page)
        .post_upload("/enrolments/{id}/imports/leap2a", import, import_form)
        .api_upload(import, utoipa_axum::routes!(import_api))
}

/// A refusal of the package itself, shown against the form's file field.
fn refused(message: impl Into<String>) -> AppError {
    AppError::Invalid(vec![FieldError::new("file", message)])
}

/// One file an entry encloses: where it is in the package and what it is called.
#[derive(Debug, Clone)]
struct Enclosure {
    href: String,
    title: String,
}

/// One Atom entry as read.
#[derive(Debug, Default, Clone)]
struct Entry {
    id: String,
    title: String,
    content: String,
    content_type: String,
    summary: String,
    published: String,
    updated: String,
    /// `leap2:date` values with their `leap2:point` (`start`, `end` or none).
    dates: Vec<(String, String)>,
    /// LEAP2A types (`resource`, `entry`, `ability`, `selection` …), without the namespace.
    types: Vec<String>,
    enclosures: Vec<Enclosure>,
    /// `related` links: Mahara links a journal post to its attached files' entries this way,
    /// and our own export links an evidence item to its files' entries.
    related: Vec<String>,
    supports: Vec<String>,
    reflects_on: bool,
    /// Mahara's `mahara:artefactplugin` marker (`plugin`, `type`), when the entry has one.
    mahara_plugin: String,
    mahara_type: String,
}

/// A feed as read.
#[derive(Debug, Default)]
pub struct Feed {
    id: String,
    entries: Vec<Entry>,
}

/// The LEAP2A type named by an `rdf:type` value: `leap2:resource` or the full term URI.
fn leap2_type(value: &str) -> Option<String> {
    let value = value.trim();
    value
        .strip_prefix("leap2:")
        .or_else(|| value.strip_prefix(LEAP2))
        .or_else(|| value.strip_prefix("http://wiki.leapspecs.org/2A/"))
        .map(str::to_string)
}

fn is_leap2_namespace(ns: &[u8]) -> bool {
    ns == LEAP2.as_bytes()
        || ns.starts_with(b"http://terms.leapspecs.org/")
        || ns.starts_with(b"http://wiki.leapspecs.org/2A")
}

/// Where the reader is, for collecting text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    FeedId,
    Id,
    Title,
    Content,
    Summary,
    Published,
    Updated,
    Date,
}

/// Reads the feed with a streaming reader: memory grows with the text kept, not the document.
pub fn read_feed(source: impl BufRead) -> Result<Feed, String> {
    let mut reader = NsReader::from_reader(source);
    reader.config_mut().expand_empty_elements = true;
    let mut buf = Vec::new();
    let mut feed = Feed::default();
    let mut depth = 0usize;
    let mut saw_root = false;
    let mut uses_leap2 = false;
    let mut entry: Option<Entry> = None;
    let mut collecting: Option<(Field, usize)> = None;
    let mut text = String::new();
    let mut date_point = String::new();
    loop {
        let position = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event_into(&mut buf)
            .map_err(|e| format!("leap2a.xml is not well-formed XML (at byte {position}): {e}"))?;
        let ns_bytes: Option<Vec<u8>> = match ns {
            ResolveResult::Bound(n) => Some(n.as_ref().to_vec()),
            _ => None,
        };
        match event {
            Xml::Start(element) => {
                depth += 1;
                let local = String::from_utf8_lossy(element.local_name().as_ref()).into_owned();
                let in_atom = ns_bytes.as_deref() == Some(ATOM.as_bytes());
                let in_leap2 = ns_bytes.as_deref().is_some_and(is_leap2_namespace);
                let in_rdf = ns_bytes.as_deref() == Some(RDF.as_bytes());
                let in_mahara = ns_bytes.as_deref() == Some(MAHARA.as_bytes());
                uses_leap2 |= in_leap2;
                if depth == 1 {
                    saw_root = true;
                    if !(in_atom && local == "feed") {
                        let namespace = ns_bytes.as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                        return Err(if local == "feed" {
                            format!(
                                "leap2a.xml is not a LEAP2A feed: its <feed> is in the namespace \"{namespace}\", not Atom's ({ATOM})"
                            )
                        } else {
                            format!(
                                "leap2a.xml is not a LEAP2A feed: its root element is <{local}>, not an Atom <feed>"
                            )
                        });
                    }
                    continue;
                }
                // Attributes: collect what the element says, resolving their namespaces.
                let mut attributes: HashMap<String, String> = HashMap::new();
                for attribute in element.attributes().flatten() {
                    let (attr_ns, attr_local) = reader.resolver().resolve_attribute(attribute.key);
                    let key = String::from_utf8_lossy(attr_local.as_ref()).into_owned();
                    let key = match attr_ns {
                        ResolveResult::Bound(n) if n.as_ref() == RDF.as_bytes() => format!("rdf:{key}"),
                        ResolveResult::Bound(n) if is_leap2_namespace(n.as_ref()) => format!("leap2:{key}"),
                        ResolveResult::Bound(n) if n.as_ref() == MAHARA.as_bytes() => format!("mahara:{key}"),
                        _ => key,
                    };
                    let value = attribute
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| format!("leap2a.xml has an attribute that cannot be read: {e}"))?
                        .into_owned();
                    attributes.insert(key, value);
                }
                if let Some((_, at)) = collecting {
                    // Markup inside text (XHTML content): keep its words apart.
                    if depth > at
                        && matches!(local.as_str(), "p" | "div" | "br" | "li" | "tr" | "h1" | "h2" | "h3")
                        && !text.ends_with('\n')
                        && !text.is_empty()
                    {
                        text.push('\n');
                    }
                    continue;
                }
                if depth == 2 && in_atom && local == "entry" {
                    if feed.entries.len() >= MAX_ENTRIES {
                        return Err(format!("leap2a.xml has more than {MAX_ENTRIES} entries"));
                    }
                    entry = Some(Entry::default());
                    continue;
                }
                if depth == 2 && in_atom && local == "id" {
                    collecting = Some((Field::FeedId, depth));
                    text.clear();
                    continue;
                }
                let Some(current) = entry.as_mut() else { continue };
                if depth != 3 {
                    continue;
                }
                let field = match (in_atom, in_leap2, in_rdf, local.as_str()) {
                    (true, _, _, "id") => Some(Field::Id),
                    (true, _, _, "title") => Some(Field::Title),
                    (true, _, _, "content") => {
                        current.content_type = attributes.get("type").cloned().unwrap_or_default();
                        // Out-of-line content (`<content src="files/…">`) is the entry's file, as
                        // Mahara's LeapImportFile::is_file reads it.
                        if let Some(src) = attributes.get("src") {
                            current.enclosures.push(Enclosure { href: src.clone(), title: String::new() });
                        }
                        Some(Field::Content)
                    }
                    _ if in_mahara && local == "artefactplugin" => {
                        current.mahara_plugin = attributes.get("mahara:plugin").cloned().unwrap_or_default();
                        current.mahara_type = attributes.get("mahara:type").cloned().unwrap_or_default();
                        None
                    }
                    (true, _, _, "summary") => Some(Field::Summary),
                    (true, _, _, "published") => Some(Field::Published),
                    (true, _, _, "updated") => Some(Field::Updated),
                    (_, true, _, "date") => {
                        date_point = attributes.get("leap2:point").cloned().unwrap_or_default();
                        Some(Field::Date)
                    }
                    (_, _, true, "type") => {
                        if let Some(kind) = attributes.get("rdf:resource").and_then(|v| leap2_type(v)) {
                            uses_leap2 = true;
                            current.types.push(kind);
                        }
                        None
                    }
                    (true, _, _, "link") => {
                        let rel = attributes.get("rel").map(String::as_str).unwrap_or("");
                        let href = attributes.get("href").cloned().unwrap_or_default();
                        match rel.strip_prefix(LEAP2).map(|r| format!("leap2:{r}")).as_deref().unwrap_or(rel) {
                            "enclosure" => current
                                .enclosures
                                .push(Enclosure { title: attributes.get("title").cloned().unwrap_or_default(), href }),
                            "leap2:supports" | "supports" => current.supports.push(href),
                            "related" => current.related.push(href),
                            "leap2:reflects_on" | "leap2:is_reflected_on" => {
                                current.reflects_on |= rel.ends_with("reflects_on")
                            }
                            _ => {}
                        }
                        None
                    }
                    _ => None,
                };
                if let Some(field) = field {
                    collecting = Some((field, depth));
                    text.clear();
                }
            }
            Xml::End(_) => {
                if let Some((field, at)) = collecting
                    && at == depth
                {
                    collecting = None;
                    let value = std::mem::take(&mut text);
                    match (field, entry.as_mut()) {
                        (Field::FeedId, _) => feed.id = value.trim().to_string(),
                        (Field::Id, Some(e)) => e.id = value.trim().to_string(),
                        (Field::Title, Some(e)) => e.title = value,
                        (Field::Content, Some(e)) => e.content = value,
                        (Field::Summary, Some(e)) => e.summary = value,
                        (Field::Published, Some(e)) => e.published = value.trim().to_string(),
                        (Field::Updated, Some(e)) => e.updated = value.trim().to_string(),
                        (Field::Date, Some(e)) => {
                            e.dates.push((std::mem::take(&mut date_point), value.trim().to_string()))
                        }
                        _ => {}
                    }
                } else if depth == 2
                    && let Some(done) = entry.take()
                {
                    feed.entries.push(done);
                }
                depth = depth.saturating_sub(1);
            }
            Xml::Text(t) if collecting.is_some() => {
                let piece = t.xml10_content().map_err(|e| format!("leap2a.xml has text that cannot be read: {e}"))?;
                push_limited(&mut text, &piece);
            }
            Xml::CData(t) if collecting.is_some() => {
                push_limited(&mut text, &String::from_utf8_lossy(&t.into_inner()));
            }
            Xml::GeneralRef(r) if collecting.is_some() => {
                let name = r.decode().map_err(|e| format!("leap2a.xml has a reference that cannot be read: {e}"))?;
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&name)
                        .map(str::to_string)
                        .ok_or_else(|| format!("leap2a.xml uses the entity &{name}; which XML does not define"))?,
                };
                push_limited(&mut text, &resolved);
            }
            Xml::DocType(_) => {
                return Err("leap2a.xml declares a DTD, which LEAP2A feeds never need; it was not read".into());
            }
            Xml::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err("leap2a.xml is empty".into());
    }
    if !uses_leap2 {
        return Err(format!(
            "leap2a.xml is an Atom feed without LEAP2A terms (namespace {LEAP2}): it is not a LEAP2A export"
        ));
    }
    if feed.id.is_empty() {
        return Err("the feed has no <id>, so its entries cannot be told apart from another system's".into());
    }
    Ok(feed)
}

/// Appends text up to a cap well above anything kept, so a huge text node cannot exhaust memory.
fn push_limited(text: &mut String, piece: &str) {
    const CAP: usize = 4 * MAX_DESCRIPTION;
    if text.len() < CAP {
        let room = CAP - text.len();
        let mut end = piece.len().min(room);
        while !piece.is_char_boundary(end) {
            end -= 1;
        }
        // XML allows no NUL and PostgreSQL text cannot hold one (the insert failed with a 500).
        text.extend(piece[..end].chars().filter(|&c| c != '\0'));
    }
}

/// Text from escaped HTML content (`type="html"`): tags dropped, entities resolved.
fn html_to_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                let name = tag.trim_start_matches('/').split_whitespace().next().unwrap_or("").to_ascii_lowercase();
                if matches!(name.as_str(), "p" | "br" | "br/" | "div" | "li" | "tr" | "h1" | "h2" | "h3")
                    && !out.ends_with('\n')
                    && !out.is_empty()
                {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    quick_xml::escape::unescape(&out).map(|s| s.into_owned()).unwrap_or(out)
}

fn squash(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The date at the start of a LEAP2A or Atom date (`2026-03-31` or `2026-03-31T10:00:00Z`).
fn day(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.get(..10)?, "%Y-%m-%d").ok()
}

/// The criterion an ability stands for: its id names one of the unit's criteria (our own
/// export), or its title starts with a criterion code ("1.2 Establish …", "AC 1.2: …").
fn criterion_of(ability_id: &str, ability_title: Option<&str>, unit: &Unit) -> Option<String> {
    if let Some(found) = unit.criteria().find(|c| ability_id.ends_with(&c.id.to_string())) {
        return Some(found.number.clone());
    }
    let title = ability_title?.trim();
    let title = title
        .strip_prefix("AC")
        .or_else(|| title.strip_prefix("ac"))
        .or_else(|| title.strip_prefix("Criterion"))
        .unwrap_or(title)
        .trim_start();
    let code: String = title.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    let number = CriterionNumber::parse(code.trim_end_matches('.')).ok()?.to_string();
    unit.criteria().find(|c| c.number == number).map(|c| c.number.clone())
}

/// A package received into a local file, and the files taken out of it; all removed on drop.
struct Received {
    paths: Vec<PathBuf>,
}

impl Drop for Received {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Is this a ZIP (local file header) rather than XML?
fn is_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// A member name that stays inside the package: relative, no `..`, no drive or backslash.
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && !name.contains('\0')
        && !name.contains(':')
        && name.split('/').all(|part| part != "..")
}

/// The package's feed and, for a ZIP, its member names. Runs on a blocking thread.
pub fn open_package(path: &FsPath, limit: u64) -> Result<(Feed, bool), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("the upload could not be read back: {e}"))?;
    let mut head = [0u8; 4];
    let read = file.read(&mut head).map_err(|e| e.to_string())?;
    file.rewind().map_err(|e| e.to_string())?;
    if !is_zip(&head[..read]) {
        let text_start = head[..read].iter().copied().find(|b| !b.is_ascii_whitespace());
        if !matches!(text_start, Some(b'<') | Some(0xEF)) {
            return Err("the file is neither a ZIP package nor a leap2a.xml feed".into());
        }
        return Ok((read_feed(BufReader::new(file.take(MAX_FEED_BYTES)))?, false));
    }
    let mut archive =
        zip::ZipArchive::new(BufReader::new(file)).map_err(|e| format!("the ZIP package is damaged: {e}"))?;
    if archive.len() > MAX_ZIP_MEMBERS {
        return Err(format!(
            "the ZIP package lists {} members, more than the {MAX_ZIP_MEMBERS} allowed",
            archive.len()
        ));
    }
    let mut total: u64 = 0;
    let mut feed_index = None;
    for index in 0..archive.len() {
        let member = archive.by_index_raw(index).map_err(|e| format!("the ZIP package is damaged: {e}"))?;
        let name = member
            .name()
            .map_err(|e| format!("the ZIP package has a member whose name cannot be read: {e}"))?
            .to_string();
        if !safe_name(&name) {
            return Err(format!("the package holds a member named \"{name}\", which points outside the package"));
        }
        total = total.saturating_add(member.size());
        if total > limit {
            return Err(format!(
                "the package would unpack to more than {}, the largest upload allowed",
                human_size(limit)
            ));
        }
        if name == "leap2a.xml" {
            feed_index = Some(index);
        }
    }
    let index = feed_index.ok_or("the ZIP package has no leap2a.xml at its top level")?;
    let member = archive.by_index(index).map_err(|e| format!("leap2a.xml cannot be read from the package: {e}"))?;
    if member.size() > MAX_FEED_BYTES {
        return Err(format!("leap2a.xml is larger than {}", human_size(MAX_FEED_BYTES)));
    }
    Ok((read_feed(BufReader::new(member.take(MAX_FEED_BYTES)))?, true))
}

/// Copies the named members out of the ZIP into `dir`, counting the bytes actually unpacked
/// against `limit` (declared sizes can lie). Runs on a blocking thread.
fn extract(
    path: &FsPath,
    names: &[String],
    dir: &FsPath,
    limit: u64,
    received: &mut Vec<PathBuf>,
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| format!("the upload could not be read back: {e}"))?;
    let mut archive =
        zip::ZipArchive::new(BufReader::new(file)).map_err(|e| format!("the ZIP package is damaged: {e}"))?;
    let mut remaining = limit;
    for name in names {
        let mut member = archive.by_name(name).map_err(|e| format!("{name} cannot be read from the package: {e}"))?;
        let target = dir.join(format!("leap2a-{}", Uuid::new_v4()));
        received.push(target.clone());
        let mut out = std::fs::File::create(&target).map_err(|e| format!("cannot unpack {name}: {e}"))?;
        let copied = std::io::copy(&mut (&mut member).take(remaining + 1), &mut out)
            .map_err(|e| format!("{name} in the package is damaged: {e}"))?;
        if copied > remaining {
            return Err(format!("the package unpacks to more than {}, the largest upload allowed", human_size(limit)));
        }
        remaining -= copied;
    }
    Ok(())
}

/// Reads an unpacked file in chunks for the store.
struct FileChunks(tokio::fs::File);

impl ChunkSource for FileChunks {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AppError> {
        let mut buffer = vec![0u8; 256 * 1024];
        let read = self.0.read(&mut buffer).await.map_err(|e| AppError::Unexpected(e.into()))?;
        if read == 0 {
            return Ok(None);
        }
        buffer.truncate(read);
        Ok(Some(bytes::Bytes::from(buffer)))
    }
}

/// A file of an imported item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportedFile {
    pub id: Uuid,
    pub name: String,
    pub size: i64,
    pub sha256: String,
}

/// An evidence item made from one entry.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportedItem {
    /// The new evidence item (a draft in the learner's portfolio).
    pub id: Uuid,
    pub title: String,
    /// The entry's `atom:id` in the source feed.
    pub source_entry: String,
    pub files: Vec<ImportedFile>,
    /// Criteria pre-mapped from the entry's `leap2:supports` links.
    pub criteria: Vec<String>,
}

/// What an import did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImportSummary {
    /// The source feed's `atom:id`.
    pub source_feed: String,
    pub imported: Vec<ImportedItem>,
    /// Entries this portfolio already holds from an earlier import of the same feed.
    pub already_imported: usize,
    /// Entries that are not evidence (abilities, selections, people, feedback on other entries).
    pub skipped: usize,
}

/// An entry that will become an item, checked.
struct Planned {
    entry: Entry,
    item: NewEvidence,
    /// Member names in the ZIP of its files, with their names for people.
    files: Vec<(String, String)>,
}

/// Turns the feed's evidence entries into checked items for `unit`, refusing the whole package
/// if any entry encloses a file the package does not hold.
fn plan(
    feed: Feed,
    unit: &Unit,
    members: Option<&HashSet<String>>,
    today: NaiveDate,
) -> Result<(Vec<Planned>, usize), String> {
    let abilities: HashMap<String, String> = feed
        .entries
        .iter()
        .filter(|e| e.types.iter().any(|t| t == "ability"))
        .map(|e| (e.id.clone(), e.title.clone()))
        .collect();
    // A file entry is one file (LeapImportFile::is_file in Mahara: a resource with out-of-line
    // content or exactly one enclosure naming no entry). An entry that links one with `related`
    // (Mahara's attachments, our own evidence items) or encloses it by its id takes its file, and
    // the file entry is then not an item of its own.
    let ids: HashSet<String> = feed.entries.iter().map(|e| e.id.clone()).collect();
    let files_of: HashMap<String, Enclosure> = feed
        .entries
        .iter()
        .filter(|e| e.types.iter().any(|t| t == "resource") && e.enclosures.len() == 1)
        .filter(|e| !ids.contains(&e.enclosures[0].href))
        .map(|e| {
            let mut file = e.enclosures[0].clone();
            if file.title.trim().is_empty() {
                file.title = mahara_file_name(&file.href).unwrap_or_else(|| e.title.trim().to_string());
            }
            (e.id.clone(), file)
        })
        .collect();
    let linked = |e: &Entry| -> Vec<String> {
        e.related
            .iter()
            .chain(e.enclosures.iter().map(|x| &x.href))
            .filter(|href| *href != &e.id && files_of.contains_key(*href))
            .cloned()
            .collect()
    };
    let attached: HashSet<String> =
        feed.entries.iter().filter(|e| is_evidence(e) && !files_of.contains_key(&e.id)).flat_map(&linked).collect();
    let mut planned = Vec::new();
    let mut skipped = 0;
    let mut seen = HashSet::new();
    for entry in &feed.entries {
        if !is_evidence(entry) || attached.contains(&entry.id) {
            skipped += 1;
            continue;
        }
        let entry = entry.clone();
        if entry.id.is_empty() {
            return Err(format!("the entry \"{}\" has no <id>", entry.title.trim()));
        }
        if !seen.insert(entry.id.clone()) {
            return Err(format!("two entries have the id {}", entry.id));
        }
        let title = squash(&entry.title);
        let title = if title.is_empty() { format!("Imported entry {}", entry.id) } else { truncate(&title, MAX_TITLE) };
        let description = match entry.content_type.as_str() {
            "html" => html_to_text(&entry.content),
            _ => entry.content.clone(),
        };
        let description = if squash(&description).is_empty() { entry.summary.clone() } else { description };
        let description = truncate(&squash(&description), MAX_DESCRIPTION);
        let start = entry
            .dates
            .iter()
            .find(|(point, _)| point.is_empty() || point == "start")
            .and_then(|(_, d)| day(d))
            .or_else(|| day(&entry.published))
            .or_else(|| day(&entry.updated))
            .unwrap_or(today)
            .min(today);
        let until = entry
            .dates
            .iter()
            .find(|(point, _)| point == "end")
            .and_then(|(_, d)| day(d))
            .filter(|d| *d > start && *d <= today);
        let mut files = Vec::new();
        let own = entry.enclosures.iter().filter(|x| !ids.contains(&x.href)).cloned();
        let enclosures: Vec<Enclosure> = own.chain(linked(&entry).iter().map(|id| files_of[id].clone())).collect();
        for enclosure in &enclosures {
            let written = enclosure.href.trim().trim_start_matches("./").to_string();
            // Mahara's importer urldecode()s an enclosure's href before opening it under the
            // directory of leap2a.xml; its exporter writes names as they are. Try both.
            let decoded = url_decoded(&written);
            let href = match members {
                Some(m) if !m.contains(&written) && m.contains(&decoded) => decoded,
                _ => written,
            };
            let held = members.is_some_and(|m| m.contains(&href));
            if !held {
                return Err(if members.is_none() {
                    format!(
                        "the entry \"{title}\" encloses the file {href}, but a bare leap2a.xml carries no files: upload the whole ZIP package"
                    )
                } else {
                    format!("the entry \"{title}\" encloses the file {href}, which is not in the package")
                });
            }
            let name = if enclosure.title.trim().is_empty() {
                mahara_file_name(&href).unwrap_or_else(|| href.rsplit('/').next().unwrap_or(&href).to_string())
            } else {
                enclosure.title.trim().to_string()
            };
            files.push((href, name));
        }
        if files.len() > MAX_FILES_PER_ITEM {
            return Err(format!(
                "the entry \"{title}\" encloses {} files, more than the {MAX_FILES_PER_ITEM} one item may hold",
                files.len()
            ));
        }
        let mut numbers: Vec<String> = entry
            .supports
            .iter()
            .filter_map(|href| criterion_of(href, abilities.get(href).map(String::as_str), unit))
            .collect();
        numbers.sort_by_key(|n| CriterionNumber::parse(n).ok());
        numbers.dedup();
        let mappings = numbers
            .iter()
            .filter_map(|n| unit.criterion(n).ok())
            .map(|c| Mapping {
                number: CriterionNumber::parse(&c.number).expect("stored numbers are valid"),
                criterion_id: c.id,
                note: String::new(),
                location: None,
            })
            .collect();
        // A journal or blog entry is the learner's own account; anything else is a work product.
        let method = if entry.types.iter().any(|t| t == "entry") && files.is_empty() {
            Method::ReflectiveAccount
        } else {
            Method::Product
        };
        let item = NewEvidence {
            status: Status::Draft,
            title,
            description,
            method,
            occurred_on: start,
            occurred_until: until,
            mappings,
            reference: None,
            help_received: String::new(),
            ai_use: String::new(),
            third_party_confirmed: false,
            previous_version: None,
            assessment_location: None,
        };
        planned.push(Planned { entry, item, files });
    }
    Ok((planned, skipped))
}

/// Is this entry evidence? Resources and entries (journal posts, files, notes) are; abilities,
/// selections, people and comments on other entries are not, nor Mahara's résumé and profile
/// entries (`mahara:plugin` `resume`, or `internal` other than a note).
fn is_evidence(entry: &Entry) -> bool {
    let profile = match entry.mahara_plugin.as_str() {
        "resume" => true,
        "internal" => entry.mahara_type != "html",
        _ => false,
    };
    entry.types.iter().any(|t| t == "resource" || t == "entry")
        && !entry.reflects_on
        && !profile
        && entry.mahara_type != "comment"
}

/// A file's own name from a Mahara package path: Mahara's exporter writes every file as
/// `files/<n>-<name>` (PluginExportLeap::add_attachment).
fn mahara_file_name(href: &str) -> Option<String> {
    let name = href.strip_prefix("files/").filter(|rest| !rest.contains('/'))?;
    let (number, name) = name.split_once('-')?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && !name.trim().is_empty())
        .then(|| name.to_string())
}

/// `href` decoded as PHP's `urldecode` decodes it (`%XX` escapes, `+` as a space).
fn url_decoded(href: &str) -> String {
    let bytes = href.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let (high, low) = (bytes[i + 1], bytes[i + 2]);
                let hex = (high.is_ascii_hexdigit() && low.is_ascii_hexdigit())
                    .then(|| u8::from_str_radix(&format!("{}{}", high as char, low as char), 16).ok())
                    .flatten();
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Receives a request body (the package) into a local file, refusing it once past `limit`.
async fn receive(
    mut stream: impl futures_util::Stream<Item = Result<bytes::Bytes, AppError>> + Unpin,
    dir: &FsPath,
    limit: u64,
    received: &mut Received,
) -> AppResult<PathBuf> {
    tokio::fs::create_dir_all(dir).await.map_err(|e| AppError::Unexpected(e.into()))?;
    let path = dir.join(format!("leap2a-{}", Uuid::new_v4()));
    received.paths.push(path.clone());
    let mut file = tokio::fs::File::create(&path).await.map_err(|e| AppError::Unexpected(e.into()))?;
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(AppError::TooLarge(format!(
                "The package is larger than the {} limit for one upload",
                human_size(limit)
            )));
        }
        file.write_all(&chunk).await.map_err(|e| AppError::Unexpected(e.into()))?;
    }
    file.flush().await.map_err(|e| AppError::Unexpected(e.into()))?;
    if size == 0 {
        return Err(refused("Choose a LEAP2A package (.zip) or a leap2a.xml file to import"));
    }
    Ok(path)
}

/// Imports a received package into the enrolment: everything is checked and every file staged
/// before the one transaction that creates the items, records their source and the audit event.
async fn import_package(
    state: &AppState,
    actor: &Actor,
    enrolment_id: Uuid,
    package: PathBuf,
    received: &mut Received,
) -> AppResult<ImportSummary> {
    let limit = state.config.max_upload;
    let opened = {
        let package = package.clone();
        tokio::task::spawn_blocking(move || open_package(&package, limit))
            .await
            .map_err(|e| AppError::Unexpected(e.into()))?
            .map_err(refused)?
    };
    let (feed, zipped) = opened;
    let members: Option<HashSet<String>> = if zipped {
        let package = package.clone();
        let names = tokio::task::spawn_blocking(move || -> Result<HashSet<String>, String> {
            let file = std::fs::File::open(&package).map_err(|e| e.to_string())?;
            let archive = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| e.to_string())?;
            archive.file_names().map(|n| n.map(|n| n.into_owned()).map_err(|e| e.to_string())).collect()
        })
        .await
        .map_err(|e| AppError::Unexpected(e.into()))?
        .map_err(refused)?;
        Some(names)
    } else {
        None
    };
    let source_feed = feed.id.clone();
    let today = chrono::Utc::now().date_naive();
    let mut tx = state.begin(actor).await?;
    let access =
        policy::enrolment(&state.views, &mut tx, actor, enrolment_id, Action::ImportEvidence, Viewed::Portfolio)
            .await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let (planned, skipped) = plan(feed, &unit, members.as_ref(), today).map_err(refused)?;
    let entry_ids: Vec<String> = planned.iter().map(|p| p.entry.id.clone()).collect();
    let done: HashSet<String> = sqlx::query_scalar!(
        "SELECT source_entry FROM evidence_imports WHERE enrolment_id = $1 AND source_feed = $2 AND source_entry = ANY($3)",
        access.id,
        source_feed,
        &entry_ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let fresh: Vec<Planned> = planned.into_iter().filter(|p| !done.contains(&p.entry.id)).collect();
    // Unpack and stage every file first: a refused type or a lie about sizes stops the import
    // before anything is written.
    let names: Vec<String> = fresh.iter().flat_map(|p| p.files.iter().map(|(href, _)| href.clone())).collect();
    let dir = state.config.files_dir().join("tmp");
    let mut unpacked = Vec::new();
    if !names.is_empty() {
        let (package, names, dir_for) = (package.clone(), names.clone(), dir.clone());
        let (result, paths) = tokio::task::spawn_blocking(move || {
            let mut paths = Vec::new();
            let result = extract(&package, &names, &dir_for, limit, &mut paths);
            (result, paths)
        })
        .await
        .map_err(|e| AppError::Unexpected(e.into()))?;
        received.paths.extend(paths.iter().cloned());
        result.map_err(refused)?;
        unpacked = paths;
    }
    let mut unpacked = unpacked.into_iter();
    let mut staged_items: Vec<(Planned, Vec<StagedFile>)> = Vec::new();
    for planned in fresh {
        let mut staged = Vec::new();
        for (_, name) in &planned.files {
            let path = unpacked.next().expect("one unpacked file per enclosure");
            let file = tokio::fs::File::open(&path).await.map_err(|e| AppError::Unexpected(e.into()))?;
            let file = state.store.stage(name, &mut FileChunks(file), limit).await.map_err(|error| match error {
                AppError::UnsupportedType(message) | AppError::TooLarge(message) => {
                    refused(format!("The entry \"{}\": {message}", planned.item.title))
                }
                other => other,
            })?;
            staged.push(file);
        }
        staged_items.push((planned, staged));
    }
    let mut imported = Vec::new();
    for (planned, files) in staged_items {
        let title = planned.item.title.clone();
        let criteria: Vec<String> = planned.item.mappings.iter().map(|m| m.number.to_string()).collect();
        let id = evidence::create(&mut tx, &state.store, actor, &access, planned.item, files).await?;
        sqlx::query!(
            "INSERT INTO evidence_imports (evidence_id, enrolment_id, format, source_feed, source_entry, imported_by)
             VALUES ($1, $2, 'leap2a', $3, $4, $5)",
            id,
            access.id,
            source_feed,
            planned.entry.id,
            actor.id
        )
        .execute(&mut *tx)
        .await?;
        let stored = evidence::load(&mut tx, id).await?;
        imported.push(ImportedItem {
            id,
            title,
            source_entry: planned.entry.id,
            files: stored
                .files
                .iter()
                .map(|f| ImportedFile { id: f.id, name: f.name.clone(), size: f.size, sha256: f.sha256.clone() })
                .collect(),
            criteria,
        });
    }
    let summary = ImportSummary { source_feed, imported, already_imported: done.len(), skipped };
    audit::record(
        &mut tx,
        Event::new(Some(actor), "evidence.imported", "enrolment", Some(access.id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "format": "leap2a",
                "source_feed": summary.source_feed,
                "items": summary.imported.iter().map(|i| serde_json::json!({"id": i.id, "source_entry": i.source_entry})).collect::<Vec<_>>(),
                "already_imported": summary.already_imported,
                "skipped": summary.skipped,
            })),
    )
    .await?;
    tx.commit().await?;
    Ok(summary)
}

/// Checks the caller may import into this portfolio before any of the body is read.
async fn authorise(state: &AppState, actor: &Actor, id: Uuid) -> AppResult<EnrolmentAccess> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::ImportEvidence, Viewed::Portfolio).await?;
    crate::assessment::sign_off::ensure_open(&mut tx, access.id).await?;
    tx.commit().await?;
    Ok(access)
}

fn body_chunks(body: Body) -> impl futures_util::Stream<Item = Result<bytes::Bytes, AppError>> + Unpin {
    body.into_data_stream().map(|chunk| {
        chunk.map_err(|e| AppError::BadRequest(format!("The upload could not be read ({e}); nothing was saved")))
    })
}

/// Imports evidence from another e-portfolio's LEAP2A export into the learner's portfolio, as
/// drafts the learner then maps and submits: the learner on their own enrolment, or their
/// assessor. The body is the package itself (`application/zip`, or a bare `leap2a.xml` as
/// `application/xml`) or multipart with the package as the part `file`. Entries imported before
/// into this portfolio are counted in `already_imported` and not created again.
#[utoipa::path(
    post,
    path = "/api/v1/enrolments/{id}/imports/leap2a",
    params(("id" = Uuid, Path, description = "The enrolment")),
    request_body(description = "The LEAP2A package", content(("application/zip"), ("application/xml"), ("multipart/form-data"))),
    responses(
        (status = 201, description = "Items were created", body = ImportSummary),
        (status = 200, description = "Nothing new: every evidence entry was imported before", body = ImportSummary),
        (status = 409, description = "The unit is signed off: the record is locked", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 413, description = "The package (or what it unpacks to) is larger than the upload limit", content_type = "application/problem+json", body = crate::error::Problem),
        (status = 422, description = "Not a LEAP2A package, or a file it encloses is missing, unsafe or of a refused type: `errors` names the problem", content_type = "application/problem+json", body = crate::error::Problem),
    )
)]
async fn import_api(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    request: Request,
) -> AppResult<Response> {
    authorise(&state, &actor, id).await?;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let dir = state.config.files_dir().join("tmp");
    let mut received = Received { paths: Vec::new() };
    let package = if multipart {
        let mut form =
            Multipart::from_request(request, &state).await.map_err(|e| AppError::BadRequest(e.body_text()))?;
        receive_part(&mut form, &dir, state.config.max_upload, &mut received, None).await?
    } else {
        receive(body_chunks(request.into_body()), &dir, state.config.max_upload, &mut received).await?
    };
    let summary = import_package(&state, &actor, id, package, &mut received).await?;
    let status = if summary.imported.is_empty() { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(summary)).into_response())
}

/// Reads a multipart form's `file` part into a local file (the CSRF token first, when asked).
async fn receive_part(
    form: &mut Multipart,
    dir: &FsPath,
    limit: u64,
    received: &mut Received,
    pending: Option<&csrf::PendingCheck>,
) -> AppResult<PathBuf> {
    let bad = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge(e.body_text())
        } else {
            AppError::BadRequest(format!("The upload could not be read ({}); nothing was saved", e.body_text()))
        }
    };
    if let Some(csrf::PendingCheck(expected)) = pending {
        let field = form.next_field().await.map_err(bad)?.ok_or_else(csrf::rejection)?;
        if field.name() != Some(csrf::FIELD) {
            return Err(csrf::rejection());
        }
        let given = field.text().await.map_err(bad)?;
        if !csrf::matches(expected, &given) {
            return Err(csrf::rejection());
        }
    }
    while let Some(field) = form.next_field().await.map_err(bad)? {
        if field.name() != Some("file") {
            continue;
        }
        let stream = field.map(move |chunk| chunk.map_err(bad));
        return receive(Box::pin(stream), dir, limit, received).await;
    }
    Err(refused("Choose a LEAP2A package (.zip) or a leap2a.xml file to import"))
}

#[derive(Template)]
#[template(path = "imports/leap2a.html")]
struct ImportPage {
    nav: Nav,
    enrolment_id: Uuid,
    learner_name: String,
    unit_code: String,
    is_learner: bool,
    max_upload: String,
    summary: Option<ImportSummary>,
    errors: Vec<FieldError>,
}

impl ImportPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        FieldError::message_for(&self.errors, field)
    }
}

async fn page(
    state: &AppState,
    nav: Nav,
    actor: &Actor,
    id: Uuid,
    summary: Option<ImportSummary>,
    errors: Vec<FieldError>,
) -> AppResult<Response> {
    let mut tx = state.begin(actor).await?;
    let access = policy::enrolment(&state.views, &mut tx, actor, id, Action::ImportEvidence, Viewed::Portfolio).await?;
    let enrolment =
        crate::assessment::summaries(&mut tx, &[access.id]).await?.pop().ok_or(AppError::NotFound("enrolment"))?;
    tx.commit().await?;
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render(
        status,
        &ImportPage {
            nav,
            enrolment_id: access.id,
            learner_name: enrolment.learner_name,
            unit_code: enrolment.unit_code,
            is_learner: access.relation == Relation::Learner,
            max_upload: human_size(state.config.max_upload),
            summary,
            errors,
        },
    )
}

async fn import_page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> AppResult<Response> {
    page(&state, nav, &actor, id, None, Vec::new()).await
}

async fn import_form(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    pending: Option<axum::Extension<csrf::PendingCheck>>,
    mut form: Multipart,
) -> AppResult<Response> {
    authorise(&state, &actor, id).await?;
    let dir = state.config.files_dir().join("tmp");
    let mut received = Received { paths: Vec::new() };
    let pending = pending.map(|axum::Extension(p)| p);
    let result = match receive_part(&mut form, &dir, state.config.max_upload, &mut received, pending.as_ref()).await {
        Ok(package) => import_package(&state, &actor, id, package, &mut received).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(summary) => page(&state, nav, &actor, id, Some(summary), Vec::new()).await,
        Err(AppError::Invalid(errors)) => page(&state, nav, &actor, id, None, errors).await,
        Err(AppError::TooLarge(message)) => {
            page(&state, nav, &actor, id, None, vec![FieldError::new("file", message)]).await
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_must_stay_inside_the_package() {
        assert!(safe_name("files/1/call.pdf"));
        assert!(safe_name("leap2a.xml"));
        for bad in ["../x", "files/../../etc/passwd", "/etc/passwd", "C:\\x", "files\\x", ""] {
            assert!(!safe_name(bad), "{bad:?} should be refused");
        }
    }

    #[test]
    fn feeds_in_the_wrong_namespace_or_malformed_are_refused() {
        let wrong = r#"<feed xmlns="http://example.org/not-atom"><id>x</id></feed>"#;
        assert!(read_feed(wrong.as_bytes()).unwrap_err().contains("not Atom"));
        let plain_atom = r#"<feed xmlns="http://www.w3.org/2005/Atom"><id>x</id><entry><id>e</id></entry></feed>"#;
        assert!(read_feed(plain_atom.as_bytes()).unwrap_err().contains("without LEAP2A terms"));
        let broken = r#"<feed xmlns="http://www.w3.org/2005/Atom"><id>x</id><entry></feed>"#;
        assert!(read_feed(broken.as_bytes()).unwrap_err().contains("not well-formed"));
        let entity =
            r#"<!DOCTYPE feed [<!ENTITY a "aaaa">]><feed xmlns="http://www.w3.org/2005/Atom"><id>&a;</id></feed>"#;
        assert!(read_feed(entity.as_bytes()).unwrap_err().contains("DTD"));
    }

    #[test]
    fn html_content_becomes_text() {
        assert_eq!(squash(&html_to_text("<p>Called &amp; sold</p><p>Two</p>")), "Called & sold\nTwo");
    }

    #[test]
    fn hrefs_decode_as_mahara_decodes_them_and_its_file_names_lose_their_number() {
        assert_eq!(url_decoded("files/3-call%20notes+final.pdf"), "files/3-call notes final.pdf");
        assert_eq!(url_decoded("files/100%.pdf"), "files/100%.pdf");
        assert_eq!(url_decoded("files/%zz%4"), "files/%zz%4");
        assert_eq!(mahara_file_name("files/12-call notes.pdf").as_deref(), Some("call notes.pdf"));
        assert_eq!(mahara_file_name("files/2026-03-report.pdf").as_deref(), Some("03-report.pdf"));
        assert_eq!(mahara_file_name("files/abc/2-x.pdf"), None, "our own layout keeps its names");
        assert_eq!(mahara_file_name("files/report.pdf"), None);
    }
}
