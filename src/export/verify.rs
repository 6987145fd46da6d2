//! Checking an offline export with nothing but the file: the manifest's own hash, then each
//! listed file's size and SHA-256 (read in chunks), then that nothing unlisted was slipped in.
//! A learner's whole export holds one such export per folder, each checked the same way, and a
//! top manifest naming each folder's record hash and manifest SHA-256. IQA records are part of
//! the hashed manifest, and each must belong to the portfolio's evidence.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use serde_json::Value;
use sha2::{Digest, Sha256};
use zip::ZipArchive;

use super::record_sha256;

/// What an intact export holds.
#[derive(Debug)]
pub struct Intact {
    pub record_sha256: String,
    /// Files listed, across every portfolio of the archive (the pages and manifests not counted).
    pub files: usize,
}

/// Checks an export; the error names the first thing that does not match.
pub fn verify(reader: impl Read + Seek) -> Result<Intact, String> {
    let mut zip = ZipArchive::new(reader).map_err(|e| format!("not a readable ZIP archive: {e}"))?;
    let mut listed = BTreeSet::new();
    let (manifest, files) = verify_folder(&mut zip, "", &mut listed)?;
    let mut total = files;
    if let Some(portfolios) = manifest["portfolios"].as_array() {
        for portfolio in portfolios {
            let folder = portfolio["folder"].as_str().ok_or("a portfolio in manifest.json has no folder")?;
            let path = format!("{folder}manifest.json");
            let (hash, _) = hash_entry(&mut zip, &path)?;
            if Some(hash.as_str()) != portfolio["manifest_sha256"].as_str() {
                return Err(format!(
                    "{path}: SHA-256 is {hash}, manifest.json states {}",
                    portfolio["manifest_sha256"]
                ));
            }
            let (inner, files) = verify_folder(&mut zip, folder, &mut listed)?;
            if inner["record_sha256"] != portfolio["record_sha256"] {
                return Err(format!("{path}: its record hash is not the one manifest.json states"));
            }
            total += files;
        }
    }
    for name in zip.file_names() {
        let name = name.map_err(|e| format!("an entry's name is unreadable: {e}"))?;
        if !listed.contains(name.as_ref()) && !name.ends_with('/') {
            return Err(format!("{name}: in the archive but not listed in a manifest"));
        }
    }
    let record_sha256 = manifest["record_sha256"].as_str().unwrap_or_default().to_string();
    Ok(Intact { record_sha256, files: total })
}

/// Checks `folder/manifest.json` and everything it lists; returns it and how many files it lists.
fn verify_folder<R: Read + Seek>(
    zip: &mut ZipArchive<R>,
    folder: &str,
    listed: &mut BTreeSet<String>,
) -> Result<(Value, usize), String> {
    let manifest_path = format!("{folder}manifest.json");
    let manifest: Value = {
        let entry = zip.by_name(&manifest_path).map_err(|_| format!("{manifest_path} is missing"))?;
        serde_json::from_reader(entry).map_err(|e| format!("{manifest_path} is not valid JSON: {e}"))?
    };
    let stated = manifest["record_sha256"].as_str().ok_or_else(|| format!("{manifest_path} has no record_sha256"))?;
    let computed = record_sha256(&manifest);
    if stated != computed {
        return Err(format!("{manifest_path}: the record hash is {computed}, the manifest states {stated}"));
    }
    listed.insert(manifest_path.clone());
    check_iqa_samples(&manifest, &manifest_path)?;
    let mut expected: Vec<(String, Option<u64>, String)> = Vec::new();
    let index = &manifest["index_html"];
    if let (Some(path), Some(sha256)) = (index["path"].as_str(), index["sha256"].as_str()) {
        expected.push((format!("{folder}{path}"), None, sha256.to_string()));
    }
    let files = manifest["files"].as_array().ok_or_else(|| format!("{manifest_path} has no files array"))?;
    for file in files {
        let path = file["path"].as_str().ok_or_else(|| format!("a file in {manifest_path} has no path"))?;
        let sha256 = file["sha256"].as_str().ok_or_else(|| format!("{folder}{path}: no sha256 in {manifest_path}"))?;
        expected.push((format!("{folder}{path}"), file["size"].as_u64(), sha256.to_string()));
    }
    for (path, size, sha256) in &expected {
        listed.insert(path.clone());
        let (actual, read) = hash_entry(zip, path)?;
        if let Some(size) = size
            && read != *size
        {
            return Err(format!("{path}: {read} bytes, {manifest_path} states {size}"));
        }
        if actual != *sha256 {
            return Err(format!("{path}: SHA-256 is {actual}, {manifest_path} states {sha256}"));
        }
    }
    let count = files.len();
    Ok((manifest, count))
}

/// The IQA records are covered by the record hash; beyond that each must be about an evidence
/// item of this portfolio and, once recorded, carry the SHA-256 of what the IQA signed.
fn check_iqa_samples(manifest: &Value, manifest_path: &str) -> Result<(), String> {
    let Some(samples) = manifest["iqa_samples"].as_array() else { return Ok(()) };
    let items: BTreeSet<&str> =
        manifest["evidence"].as_array().into_iter().flatten().filter_map(|i| i["id"].as_str()).collect();
    for sample in samples {
        let id = sample["id"].as_str().unwrap_or("?");
        let evidence = sample["evidence_id"].as_str().unwrap_or_default();
        if !items.contains(evidence) {
            return Err(format!(
                "{manifest_path}: IQA sample {id} is about evidence {evidence:?}, not in this portfolio"
            ));
        }
        let hash = sample["sha256"].as_str();
        let well_formed = hash.is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !sample["recorded_at"].is_null() && !well_formed {
            return Err(format!(
                "{manifest_path}: IQA sample {id} is recorded but its signed SHA-256 is missing or malformed"
            ));
        }
    }
    Ok(())
}

/// The SHA-256 and length of an entry, read in chunks.
fn hash_entry<R: Read + Seek>(zip: &mut ZipArchive<R>, path: &str) -> Result<(String, u64), String> {
    let mut entry = zip.by_name(path).map_err(|_| format!("{path}: listed in a manifest but missing"))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut read = 0u64;
    loop {
        let n = entry.read(&mut buffer).map_err(|e| format!("{path}: could not be read: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        read += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), read))
}
