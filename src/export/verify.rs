//! Checking an offline export with nothing but the file: the manifest's own hash, then each
//! listed file's size and SHA-256 (read in chunks), then that nothing unlisted was slipped in.

use std::collections::BTreeSet;
use std::io::{Read, Seek};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::record_sha256;

/// What an intact export holds.
#[derive(Debug)]
pub struct Intact {
    pub record_sha256: String,
    pub files: usize,
}

/// Checks an export; the error names the first thing that does not match.
pub fn verify(reader: impl Read + Seek) -> Result<Intact, String> {
    let mut zip = zip::ZipArchive::new(reader).map_err(|e| format!("not a readable ZIP archive: {e}"))?;
    let manifest: Value = {
        let entry = zip.by_name("manifest.json").map_err(|_| "manifest.json is missing".to_string())?;
        serde_json::from_reader(entry).map_err(|e| format!("manifest.json is not valid JSON: {e}"))?
    };
    let stated = manifest["record_sha256"].as_str().ok_or("manifest.json has no record_sha256")?.to_string();
    let computed = record_sha256(&manifest);
    if stated != computed {
        return Err(format!("manifest.json: the record hash is {computed}, the manifest states {stated}"));
    }
    let mut listed = BTreeSet::from(["manifest.json".to_string()]);
    let mut expected: Vec<(String, Option<u64>, String)> = Vec::new();
    let index = &manifest["index_html"];
    if let (Some(path), Some(sha256)) = (index["path"].as_str(), index["sha256"].as_str()) {
        expected.push((path.to_string(), None, sha256.to_string()));
    }
    for file in manifest["files"].as_array().ok_or("manifest.json lists no files array")? {
        let path = file["path"].as_str().ok_or("a file in manifest.json has no path")?;
        let sha256 = file["sha256"].as_str().ok_or_else(|| format!("{path}: no sha256 in manifest.json"))?;
        expected.push((path.to_string(), file["size"].as_u64(), sha256.to_string()));
    }
    for (path, size, sha256) in &expected {
        listed.insert(path.clone());
        let mut entry = zip.by_name(path).map_err(|_| format!("{path}: listed in manifest.json but missing"))?;
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
        if let Some(size) = size
            && read != *size
        {
            return Err(format!("{path}: {read} bytes, the manifest states {size}"));
        }
        let actual = hex::encode(hasher.finalize());
        if actual != *sha256 {
            return Err(format!("{path}: SHA-256 is {actual}, the manifest states {sha256}"));
        }
    }
    for name in zip.file_names() {
        let name = name.map_err(|e| format!("an entry's name is unreadable: {e}"))?;
        if !listed.contains(name.as_ref()) && !name.ends_with('/') {
            return Err(format!("{name}: in the archive but not listed in manifest.json"));
        }
    }
    Ok(Intact { record_sha256: stated, files: expected.len().saturating_sub(1) })
}
