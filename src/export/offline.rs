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
