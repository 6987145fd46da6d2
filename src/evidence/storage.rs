//! Where evidence bytes live: a content-addressed folder (`blobs/ab/cd/<sha256>`). Uploads are
//! streamed into `tmp/` while their SHA-256 is computed, then renamed into place, so a file is
//! either whole at its address or not there at all. Memory use does not depend on file size.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::file_type;
use crate::error::AppError;

/// Bytes read before deciding a file's type from its content.
const SNIFF_BYTES: usize = 8192;

#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

/// A received file in `tmp/`, not yet part of any record. Dropping it removes the file.
#[derive(Debug)]
pub struct StagedFile {
    pub name: String,
    pub content_type: &'static str,
    pub size: u64,
    pub sha256: String,
    path: Option<PathBuf>,
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A source of file bytes, chunk by chunk (a multipart field, a file on disk).
pub trait ChunkSource {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<bytes::Bytes>, AppError>> + Send;
}

impl FileStore {
    pub fn new(root: PathBuf) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(root.join("blobs"))?;
        Ok(FileStore { root })
    }

    /// Removes uploads that never finished (a crash or a dropped connection a day or more ago).
    pub fn sweep_abandoned_uploads(&self) -> std::io::Result<usize> {
        let cutoff = SystemTime::now() - Duration::from_secs(24 * 3600);
        let mut removed = 0;
        for entry in std::fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            if entry.metadata()?.modified()? < cutoff {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub fn blob_path(&self, sha256: &str) -> PathBuf {
        self.root.join("blobs").join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
    }

    /// Streams one file into `tmp/`, hashing it and checking its type and size on the way. Stops
    /// reading as soon as the type is refused or the size passes `max_size`.
    pub async fn stage(
        &self,
        name: &str,
        source: &mut impl ChunkSource,
        max_size: u64,
    ) -> Result<StagedFile, AppError> {
        let path = self.root.join("tmp").join(Uuid::new_v4().to_string());
        let mut staged = StagedFile {
            name: name.to_string(),
            content_type: "",
            size: 0,
            sha256: String::new(),
            path: Some(path.clone()),
        };
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| AppError::Unexpected(e.into()))?;
        let mut hasher = Sha256::new();
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let too_large =
            || AppError::TooLarge(format!("\"{name}\" is larger than the {} limit for one file", human_size(max_size)));
        loop {
            let chunk = source.next_chunk().await?;
            let at_end = chunk.is_none();
            if let Some(chunk) = &chunk {
                staged.size += chunk.len() as u64;
                if staged.size > max_size {
                    return Err(too_large());
                }
                hasher.update(chunk);
                if staged.content_type.is_empty() && head.len() < SNIFF_BYTES {
                    head.extend_from_slice(&chunk[..chunk.len().min(SNIFF_BYTES - head.len())]);
                }
            }
            if staged.content_type.is_empty() && (head.len() >= SNIFF_BYTES || at_end) {
                staged.content_type = file_type::detect(&head, name).map_err(AppError::UnsupportedType)?;
            }
            match chunk {
                Some(chunk) => file.write_all(&chunk).await.map_err(|e| AppError::Unexpected(e.into()))?,
                None => break,
            }
        }
        file.sync_all().await.map_err(|e| AppError::Unexpected(e.into()))?;
        staged.sha256 = hex::encode(hasher.finalize());
        Ok(staged)
    }

    /// Moves a staged file to its content address (identical bytes are kept once).
    pub async fn promote(&self, mut staged: StagedFile) -> std::io::Result<()> {
        let Some(tmp) = staged.path.take() else {
            return Ok(());
        };
        let target = self.blob_path(&staged.sha256);
        if tokio::fs::try_exists(&target).await? {
            tokio::fs::remove_file(&tmp).await?;
            return Ok(());
        }
        let dir = target.parent().expect("blob paths have a parent");
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::rename(&tmp, &target).await?;
        // Make the rename itself durable.
        tokio::fs::File::open(dir).await?.sync_all().await?;
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} bytes") } else { format!("{value:.1} {}", UNITS[unit]).replace(".0 ", " ") }
}
