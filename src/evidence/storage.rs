//! Where evidence bytes live: an object store (`object_store`), a folder under the data dir by
//! default or S3-compatible storage, with each file at its content address
//! (`blobs/ab/cd/<sha256>`). Uploads are first streamed to a local staging folder while their
//! SHA-256 is computed and their type and size checked; only a complete file is then moved to its
//! address (a rename in the folder store, a multipart upload that becomes visible only when
//! complete in S3), so a file is either whole at its address or not there at all. Memory use does
//! not depend on file size.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures_util::stream::{BoxStream, StreamExt};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use uuid::Uuid;

use super::file_type;
use crate::config::Config;
use crate::error::AppError;

/// Bytes read before deciding a file's type from its content.
const SNIFF_BYTES: usize = 8192;
/// Files up to this size go to S3 in one request; larger ones as a multipart upload of parts
/// this size (S3's parts must be 5 MiB or more, but for the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once in a multipart upload: bounds memory at about 4 x PART_SIZE.
const PARTS_IN_FLIGHT: usize = 4;

/// Where stored files go.
#[derive(Debug, Clone)]
enum Backend {
    /// A folder on this machine; `LocalFileSystem` lays objects out as files under it.
    Folder(PathBuf),
    /// S3-compatible object storage (`s3://bucket/prefix`).
    S3(String),
}

#[derive(Debug, Clone)]
pub struct FileStore {
    objects: Arc<dyn ObjectStore>,
    backend: Backend,
    /// Local folder where uploads are received before they are complete.
    staging: PathBuf,
}

/// A received file in the staging folder, not yet part of any record. Dropping it removes the file.
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

/// A stored file read back, whole or in part.
pub struct StoredBytes {
    /// The byte range returned (all of the file unless a range was asked for).
    pub range: Range<u64>,
    pub stream: BoxStream<'static, Result<bytes::Bytes, object_store::Error>>,
}

/// A stored object at a content address.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub sha256: String,
    pub stored_at: chrono::DateTime<chrono::Utc>,
    pub size: u64,
}

/// The store did not answer or refused: a 503 that says nothing was saved; the cause is logged.
fn unavailable(error: impl Into<anyhow::Error>) -> AppError {
    let error = error.into();
    tracing::error!(error = %format!("{error:#}"), "file storage failed");
    AppError::StoreUnavailable
}

/// A failed write to the staging or blob folder: a full disk (or quota) is a 507 that says so;
/// anything else is unexpected.
fn disk(error: std::io::Error) -> AppError {
    const EDQUOT: i32 = 122;
    if error.kind() == std::io::ErrorKind::StorageFull || error.raw_os_error() == Some(EDQUOT) {
        tracing::error!(%error, "the upload folder is full");
        AppError::StorageFull
    } else {
        AppError::Unexpected(anyhow::Error::new(error).context("cannot write to the file store's folder"))
    }
}

impl FileStore {
    /// The store `config` names: `EPORTFOLIO_STORAGE` (`s3://bucket/prefix` with the `AWS_*`
    /// settings), or else the folder `files/` in the data dir.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let staging = config.files_dir().join("tmp");
        std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        match config.storage.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => Self::folder(config.files_dir()),
            Some(url) => {
                let rest = url.strip_prefix("s3://").with_context(|| {
                    format!("EPORTFOLIO_STORAGE must be s3://bucket/prefix (or unset for the data dir), not {url:?}")
                })?;
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                anyhow::ensure!(!bucket.is_empty(), "EPORTFOLIO_STORAGE {url:?} names no bucket");
                // Fail an upload within a minute when the store is unreachable, rather than
                // retrying for minutes while the learner waits (the default retry timeout is three minutes).
                let mut builder = AmazonS3Builder::new()
                    .with_bucket_name(bucket)
                    .with_client_options(ClientOptions::new().with_connect_timeout(Duration::from_secs(5)))
                    .with_retry(RetryConfig {
                        backoff: BackoffConfig::default(),
                        max_retries: 3,
                        retry_timeout: Duration::from_secs(30),
                    });
                for (key, value) in &config.aws {
                    if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                        builder = builder.with_config(key, value);
                    }
                }
                let s3 = builder.build().with_context(|| format!("cannot use object storage {url}"))?;
                let prefix = prefix.trim_matches('/');
                let objects: Arc<dyn ObjectStore> =
                    if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
                Ok(FileStore { objects, backend: Backend::S3(url.to_string()), staging })
            }
        }
    }

    /// A store in a local folder (staging in its `tmp/`).
    pub fn folder(root: PathBuf) -> anyhow::Result<Self> {
        let staging = root.join("tmp");
        std::fs::create_dir_all(&staging).with_context(|| format!("cannot create {}", staging.display()))?;
        std::fs::create_dir_all(root.join("blobs"))?;
        let objects = Arc::new(LocalFileSystem::new_with_prefix(&root)?);
        Ok(FileStore { objects, backend: Backend::Folder(root), staging })
    }

    /// For people: where files are kept.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Folder(root) => root.display().to_string(),
            Backend::S3(url) => url.clone(),
        }
    }

    /// Removes staged uploads older than `age`: ones that never finished (a crash or a dropped
    /// connection). No upload in progress is older than the age callers give.
    pub fn remove_staged_older_than(&self, age: Duration) -> std::io::Result<usize> {
        let cutoff = SystemTime::now() - age;
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.staging)? {
            let entry = entry?;
            if entry.metadata()?.modified()? <= cutoff {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    fn address(sha256: &str) -> ObjectPath {
        ObjectPath::from(format!("blobs/{}/{}/{sha256}", &sha256[0..2], &sha256[2..4]))
    }

    /// Streams one file into the staging folder, hashing it and checking its type and size on
    /// the way. Stops reading as soon as the type is refused or the size passes `max_size`.
    pub async fn stage(
        &self,
        name: &str,
        source: &mut impl ChunkSource,
        max_size: u64,
    ) -> Result<StagedFile, AppError> {
        self.stage_checked(name, source, max_size, true).await
    }

    /// Puts back a file restored from a backup at its address: its type was checked when it was
    /// first uploaded, so only its bytes are checked against `sha256` here.
    pub async fn restore(&self, sha256: &str, source: &mut impl ChunkSource) -> Result<(), AppError> {
        let staged = self.stage_checked(sha256, source, u64::MAX, false).await?;
        if staged.sha256 != sha256 {
            return Err(AppError::Unexpected(anyhow::anyhow!("the file for {sha256} hashes to {}", staged.sha256)));
        }
        self.promote(staged).await
    }

    async fn stage_checked(
        &self,
        name: &str,
        source: &mut impl ChunkSource,
        max_size: u64,
        check_type: bool,
    ) -> Result<StagedFile, AppError> {
        let path = self.staging.join(Uuid::new_v4().to_string());
        let mut staged = StagedFile {
            name: name.to_string(),
            content_type: "",
            size: 0,
            sha256: String::new(),
            path: Some(path.clone()),
        };
        let mut file = tokio::fs::File::create(&path).await.map_err(disk)?;
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
            if check_type && staged.content_type.is_empty() && (head.len() >= SNIFF_BYTES || at_end) {
                staged.content_type = file_type::detect(&head, name).map_err(AppError::UnsupportedType)?;
            }
            match chunk {
                Some(chunk) => file.write_all(&chunk).await.map_err(disk)?,
                None => break,
            }
        }
        file.sync_all().await.map_err(disk)?;
        staged.sha256 = hex::encode(hasher.finalize());
        Ok(staged)
    }

    /// Moves a staged file to its content address (identical bytes are kept once).
    pub async fn promote(&self, mut staged: StagedFile) -> Result<(), AppError> {
        let Some(tmp) = staged.path.clone() else {
            return Ok(());
        };
        let address = Self::address(&staged.sha256);
        match self.objects.head(&address).await {
            Ok(_) => return Ok(()), // already stored; dropping `staged` removes the copy
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(unavailable(error)),
        }
        match &self.backend {
            Backend::Folder(root) => {
                let target = root.join(address.as_ref());
                let dir = target.parent().expect("blob paths have a parent");
                let moved = async {
                    tokio::fs::create_dir_all(dir).await?;
                    tokio::fs::rename(&tmp, &target).await?;
                    // Make the rename itself durable.
                    tokio::fs::File::open(dir).await?.sync_all().await
                };
                moved.await.map_err(disk)?;
                staged.path = None;
            }
            Backend::S3(_) => self.upload(&tmp, staged.size, &address).await?,
        }
        Ok(())
    }

    /// Copies a staged file to object storage in parts, so memory stays flat for any size.
    async fn upload(&self, tmp: &Path, size: u64, address: &ObjectPath) -> Result<(), AppError> {
        let mut file = tokio::fs::File::open(tmp).await.map_err(|e| AppError::Unexpected(e.into()))?;
        if size <= PART_SIZE as u64 {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes).await.map_err(|e| AppError::Unexpected(e.into()))?;
            self.objects.put(address, PutPayload::from(bytes)).await.map_err(unavailable)?;
            return Ok(());
        }
        let upload = self.objects.put_multipart(address).await.map_err(unavailable)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        let mut buffer = vec![0u8; 1024 * 1024];
        let copied = async {
            loop {
                let read = file.read(&mut buffer).await.map_err(|e| AppError::Unexpected(e.into()))?;
                if read == 0 {
                    return Ok(());
                }
                writer.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(unavailable)?;
                writer.write(&buffer[..read]);
            }
        }
        .await;
        match copied {
            Ok(()) => writer.finish().await.map(|_| ()).map_err(unavailable),
            Err(error) => {
                let _ = writer.abort().await;
                Err(error)
            }
        }
    }

    /// Reads a stored file, or the bytes of `range` of it.
    pub async fn read(&self, sha256: &str, range: Option<Range<u64>>) -> Result<StoredBytes, AppError> {
        let options = GetOptions { range: range.map(GetRange::Bounded), ..GetOptions::default() };
        let result = self.objects.get_opts(&Self::address(sha256), options).await.map_err(|error| match error {
            object_store::Error::NotFound { .. } => {
                AppError::Unexpected(anyhow::anyhow!("stored file {sha256} is missing from {}", self.describe()))
            }
            other => unavailable(other),
        })?;
        Ok(StoredBytes { range: result.range.clone(), stream: result.into_stream() })
    }

    /// Every stored object, with when it was stored.
    pub async fn list(&self) -> Result<Vec<StoredObject>, AppError> {
        let mut listing = self.objects.list(Some(&ObjectPath::from("blobs")));
        let mut objects = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(unavailable)?;
            if let Some(name) = meta.location.filename()
                && name.len() == 64
                && name.bytes().all(|b| b.is_ascii_hexdigit())
            {
                objects.push(StoredObject { sha256: name.to_string(), stored_at: meta.last_modified, size: meta.size });
            }
        }
        Ok(objects)
    }

    pub async fn remove(&self, sha256: &str) -> Result<(), AppError> {
        match self.objects.delete(&Self::address(sha256)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(unavailable(error)),
        }
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
