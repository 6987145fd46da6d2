//! The offline portfolio: `index.html` (one self-contained page, opened from disk, linking to
//! `files/...`), every file, and `manifest.json`.

use askama::Template;
use sha2::{Digest, Sha256};

use super::zip_stream::Entry;
use super::{PortfolioRecord, manifest, seal};
use crate::error::{AppError, AppResult};

#[derive(Template)]
#[template(path = "export/index.html")]
struct OfflineIndex<'a> {
    record: &'a PortfolioRecord,
}

impl OfflineIndex<'_> {
    fn generated_on(&self) -> String {
        self.record.generated_at.format("%d %B %Y %H:%M UTC").to_string()
    }
}

/// The entries of an offline export and its record hash: `index.html`, `manifest.json`, then
/// every file (the files last, so a reader that stops early still has the record).
pub fn entries(record: &PortfolioRecord) -> AppResult<(Vec<Entry>, String)> {
    let index = OfflineIndex { record }.render().map_err(|e| AppError::Unexpected(e.into()))?.into_bytes();
    let sealed = seal(manifest(record, &hex::encode(Sha256::digest(&index))));
    let record_sha256 = sealed["record_sha256"].as_str().unwrap_or_default().to_string();
    let manifest = serde_json::to_vec_pretty(&sealed).map_err(|e| AppError::Unexpected(e.into()))?;
    let mut entries = vec![
        Entry::Bytes { path: "index.html".into(), bytes: index },
        Entry::Bytes { path: "manifest.json".into(), bytes: manifest },
    ];
    entries.extend(record.files().map(|(_, f)| Entry::Stored {
        path: f.path.clone(),
        sha256: f.info.sha256.clone(),
        size: f.info.size as u64,
    }));
    Ok((entries, record_sha256))
}

/// One enrolment's part of a learner's whole export.
pub struct Part {
    /// The folder, ending in `/`: `cc20-1a2b3c4d/`.
    pub folder: String,
    pub unit: String,
    pub record_sha256: String,
}

#[derive(Template)]
#[template(path = "export/learner_index.html")]
struct BundleIndex<'a> {
    title: &'a str,
    generated_on: String,
    parts: &'a [Part],
}

/// What a bundle of several portfolios is: a learner's whole portfolio, or a verifier's sample pack.
pub struct Bundle<'a> {
    /// The top page's heading: "Portfolio of Amira Khan", "Sample pack: Northgate (seed …)".
    pub title: &'a str,
    /// `format` in the top manifest.
    pub format: &'a str,
    /// Further fields for the top manifest (the learner, the centre and seed, ...).
    pub about: serde_json::Value,
}

/// A learner's whole portfolio: each enrolment's offline export in a folder of its own (with its
/// own `index.html` and `manifest.json`), and at the top an `index.html` listing them and a
/// `manifest.json` listing each folder's record hash and the SHA-256 of its manifest.
pub fn learner_entries(learner: &str, records: &[PortfolioRecord]) -> AppResult<(Vec<Entry>, String)> {
    let title = format!("Portfolio of {learner}");
    let bundle =
        Bundle { title: &title, format: "eportfolio learner export 1", about: serde_json::json!({"learner": learner}) };
    bundle_entries(&bundle, records)
}

/// Several enrolments' offline exports, each in a folder of its own, with a top page and a top
/// manifest listing each folder's record hash and the SHA-256 of its manifest.
pub fn bundle_entries(bundle: &Bundle, records: &[PortfolioRecord]) -> AppResult<(Vec<Entry>, String)> {
    let mut parts = Vec::new();
    let mut nested = Vec::new();
    let mut listed = Vec::new();
    for record in records {
        let folder =
            format!("{}-{}/", record.summary.unit_code.to_lowercase(), &record.summary.id.simple().to_string()[..8]);
        let (entries, record_sha256) = entries(record)?;
        for entry in entries {
            nested.push(match entry {
                Entry::Bytes { path, bytes } => {
                    if path == "manifest.json" {
                        listed.push(serde_json::json!({
                            "folder": folder, "enrolment_id": record.summary.id, "unit_code": record.summary.unit_code,
                            "record_sha256": record_sha256, "manifest_sha256": hex::encode(Sha256::digest(&bytes)),
                        }));
                    }
                    Entry::Bytes { path: format!("{folder}{path}"), bytes }
                }
                Entry::Stored { path, sha256, size } => Entry::Stored { path: format!("{folder}{path}"), sha256, size },
            });
        }
        parts.push(Part {
            folder,
            unit: format!("{}: {}", record.summary.unit_code, record.summary.unit_title),
            record_sha256,
        });
    }
    let generated_at = records.first().map(|r| r.generated_at).unwrap_or_else(chrono::Utc::now);
    let index = BundleIndex {
        title: bundle.title,
        generated_on: generated_at.format("%d %B %Y %H:%M UTC").to_string(),
        parts: &parts,
    }
    .render()
    .map_err(|e| AppError::Unexpected(e.into()))?
    .into_bytes();
    let mut top = serde_json::json!({
        "format": bundle.format,
        "generated_at": generated_at,
        "index_html": {"path": "index.html", "sha256": hex::encode(Sha256::digest(&index))},
        "files": [],
        "portfolios": listed,
    });
    if let (Some(top), Some(about)) = (top.as_object_mut(), bundle.about.as_object()) {
        top.extend(about.clone());
    }
    let sealed = seal(top);
    let record_sha256 = sealed["record_sha256"].as_str().unwrap_or_default().to_string();
    let manifest = serde_json::to_vec_pretty(&sealed).map_err(|e| AppError::Unexpected(e.into()))?;
    let mut all = vec![
        Entry::Bytes { path: "index.html".into(), bytes: index },
        Entry::Bytes { path: "manifest.json".into(), bytes: manifest },
    ];
    all.extend(nested);
    Ok((all, record_sha256))
}
