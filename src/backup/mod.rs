//! Backups. `eportfolio backup DIR` writes one consistent copy of everything: the database as
//! `pg_dump` sees one snapshot, and every stored file that snapshot refers to, each checked
//! against its SHA-256 on the way. `eportfolio restore DIR` checks the whole backup first, then
//! loads the files and the database into an empty database and store.
//!
//! Consistency: the dump and the list of files come from the same exported snapshot, and while
//! a backup runs no stored file can be removed (removals take [`FILES_LOCK`] exclusively, a
//! backup holds it shared), so every file the dump refers to is still there to be copied.
//! Files are content-addressed and never change, so copying them while uploads go on is safe.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail, ensure};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::AppError;
use crate::evidence::FileStore;
use crate::evidence::storage::ChunkSource;

/// The advisory lock that keeps stored files in place during a backup: shared by backups,
/// taken exclusively by anything that removes stored files.
pub const FILES_LOCK: i64 = 0x4550_4642_4b50; // "EPFBKP"

const FORMAT: &str = "eportfolio-backup";
const VERSION: u32 = 1;
const DUMP: &str = "database.dump";
const MANIFEST: &str = "manifest.json";

/// `manifest.json`: what the backup holds, to check it before restoring.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The `eportfolio` version that wrote it.
    pub written_by: String,
    /// The newest migration in the dumped database.
    pub schema_version: i64,
    pub database: DumpEntry,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DumpEntry {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    pub bytes: u64,
}

impl Manifest {
    pub fn file_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.bytes).sum()
    }
}

/// Where a stored file goes in the backup: `objects/ab/cd/<sha256>`.
fn object_path(dir: &Path, sha256: &str) -> PathBuf {
    dir.join("objects").join(&sha256[0..2]).join(&sha256[2..4]).join(sha256)
}

/// A PostgreSQL client program (`pg_dump`, `pg_restore`): on `PATH`, else the newest
/// `/usr/lib/postgresql/*/bin`.
fn client_program(name: &str) -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    if let Some(found) = on_path.iter().map(|dir| dir.join(name)).find(|p| p.is_file()) {
        return Ok(found);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let program = entry.path().join("bin").join(name);
            program.is_file().then_some((version, program))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, program)| program).with_context(|| {
        format!("{name} is not installed (it comes with PostgreSQL's client: apt-get install -y postgresql-client)")
    })
}

async fn schema_version(conn: &mut sqlx::PgConnection) -> anyhow::Result<i64> {
    // Not a checked query: `_sqlx_migrations` is sqlx's own table, not part of our schema.
    Ok(sqlx::query_scalar::<_, i64>("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
        .fetch_one(conn)
        .await?)
}

/// Writes a backup of the database at `database_url` (reached through `pool` too) and of the
/// files in `store` into `dir`, which must not exist yet or be empty.
pub async fn backup(pool: &PgPool, database_url: &str, store: &FileStore, dir: &Path) -> anyhow::Result<Manifest> {
    if dir.exists() {
        ensure!(
            std::fs::read_dir(dir)?.next().is_none(),
            "{} is not empty: a backup goes into a new or empty folder",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir.join("objects")).with_context(|| format!("cannot create {}", dir.display()))?;
    let pg_dump = client_program("pg_dump")?;

    // A connection of its own (never returned to the pool with the lock or snapshot on it).
    let mut conn = pool.acquire().await?.detach();
    sqlx::query("SELECT pg_advisory_lock_shared($1)").bind(FILES_LOCK).execute(&mut conn).await?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").execute(&mut conn).await?;
    let snapshot = sqlx::query_scalar!(r#"SELECT pg_export_snapshot() AS "id!""#).fetch_one(&mut conn).await?;
    let schema_version = schema_version(&mut conn).await?;
    let mut dump = tokio::process::Command::new(&pg_dump)
        .args(["--format=custom", "--no-owner", "--no-privileges", "--snapshot", &snapshot, "--file"])
        .arg(dir.join(DUMP))
        .arg("--dbname")
        .arg(database_url)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", pg_dump.display()))?;

    let stored = sqlx::query!("SELECT sha256, size FROM blobs ORDER BY sha256").fetch_all(&mut conn).await?;
    let mut files = Vec::with_capacity(stored.len());
    for blob in stored {
        let bytes = copy_out(store, &blob.sha256, &object_path(dir, &blob.sha256)).await?;
        files.push(FileEntry { sha256: blob.sha256, bytes });
    }

    let mut errors = String::new();
    if let Some(mut stderr) = dump.stderr.take() {
        stderr.read_to_string(&mut errors).await?;
    }
    let status = dump.wait().await?;
    ensure!(status.success(), "pg_dump failed ({status}): {}", errors.trim());
    sqlx::query("COMMIT").execute(&mut conn).await?;
    sqlx::query("SELECT pg_advisory_unlock_shared($1)").bind(FILES_LOCK).execute(&mut conn).await?;
    conn.close().await?;

    let (bytes, sha256) = hash_file(&dir.join(DUMP)).await?;
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        created_at: chrono::Utc::now(),
        written_by: format!("eportfolio {}", env!("CARGO_PKG_VERSION")),
        schema_version,
        database: DumpEntry { file: DUMP.into(), bytes, sha256 },
        files,
    };
    let mut out = tokio::fs::File::create(dir.join(MANIFEST)).await?;
    out.write_all(&serde_json::to_vec_pretty(&manifest)?).await?;
    out.sync_all().await?;
    Ok(manifest)
}

/// Copies one stored file into the backup, checking its bytes against its address.
async fn copy_out(store: &FileStore, sha256: &str, path: &Path) -> anyhow::Result<u64> {
    std::fs::create_dir_all(path.parent().expect("object paths have a parent"))?;
    let mut stored =
        store.read(sha256, None).await.map_err(|e| anyhow::anyhow!("cannot read stored file {sha256}: {e}"))?;
    let mut out = tokio::fs::File::create(path).await?;
    let mut hasher = Sha256::new();
    let mut bytes = 0u64;
    while let Some(chunk) = stored.stream.next().await {
        let chunk = chunk.with_context(|| format!("cannot read stored file {sha256}"))?;
        hasher.update(&chunk);
        bytes += chunk.len() as u64;
        out.write_all(&chunk).await?;
    }
    out.sync_all().await?;
    let found = hex::encode(hasher.finalize());
    ensure!(found == sha256, "the stored file {sha256} is damaged: its bytes hash to {found}");
    Ok(bytes)
}

async fn hash_file(path: &Path) -> anyhow::Result<(u64, String)> {
    let mut file = tokio::fs::File::open(path).await.with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut bytes = 0u64;
    loop {
        let read = file.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        bytes += read as u64;
    }
    Ok((bytes, hex::encode(hasher.finalize())))
}

/// Reads and checks a backup: the manifest, the dump's hash and every file's hash and size.
/// Nothing is restored from a backup that fails any check.
pub async fn check(dir: &Path) -> anyhow::Result<Manifest> {
    let text = std::fs::read(dir.join(MANIFEST))
        .with_context(|| format!("{} is not a backup: it has no {MANIFEST}", dir.display()))?;
    let manifest: Manifest =
        serde_json::from_slice(&text).with_context(|| format!("{MANIFEST} in {} cannot be read", dir.display()))?;
    ensure!(
        manifest.format == FORMAT && manifest.version == VERSION,
        "{} is a {} version {} backup; this eportfolio reads {FORMAT} version {VERSION}",
        dir.display(),
        manifest.format,
        manifest.version
    );
    let (bytes, sha256) = hash_file(&dir.join(&manifest.database.file)).await?;
    ensure!(
        bytes == manifest.database.bytes && sha256 == manifest.database.sha256,
        "the backup is damaged: {} does not match its manifest",
        manifest.database.file
    );
    for file in &manifest.files {
        ensure!(
            file.sha256.len() == 64 && file.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
            "the manifest names an invalid file {:?}",
            file.sha256
        );
        let path = object_path(dir, &file.sha256);
        let (bytes, sha256) = hash_file(&path).await?;
        ensure!(
            bytes == file.bytes && sha256 == file.sha256,
            "the backup is damaged: objects/{}/{}/{} does not match its SHA-256",
            &file.sha256[0..2],
            &file.sha256[2..4],
            file.sha256
        );
    }
    Ok(manifest)
}

/// A file in the backup, read chunk by chunk into the store.
struct BackupFile(tokio::fs::File);

impl ChunkSource for BackupFile {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AppError> {
        let mut buffer = vec![0u8; 1024 * 1024];
        let read = self.0.read(&mut buffer).await.map_err(|e| AppError::Unexpected(e.into()))?;
        buffer.truncate(read);
        Ok((read > 0).then(|| buffer.into()))
    }
}

/// Restores the backup in `dir` into the empty database at `database_url` and into `store`:
/// checks everything first, loads the files, then the database in one transaction.
pub async fn restore(pool: &PgPool, database_url: &str, store: &FileStore, dir: &Path) -> anyhow::Result<Manifest> {
    let manifest = check(dir).await?;
    let tables = sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"#
    )
    .fetch_one(pool)
    .await?;
    if tables > 0 {
        bail!(
            "restore needs an empty database, and this one has {tables} tables: create a new database (or use a new data dir) and restore into that"
        );
    }
    let pg_restore = client_program("pg_restore")?;
    // Files first: a database restored without them would refer to files that are not there.
    for file in &manifest.files {
        let mut source = BackupFile(tokio::fs::File::open(object_path(dir, &file.sha256)).await?);
        store
            .restore(&file.sha256, &mut source)
            .await
            .map_err(|e| anyhow::anyhow!("cannot store {}: {e:#}", file.sha256))?;
    }
    let output = tokio::process::Command::new(&pg_restore)
        .args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--dbname"])
        .arg(database_url)
        .arg(dir.join(&manifest.database.file))
        .output()
        .await
        .with_context(|| format!("cannot run {}", pg_restore.display()))?;
    ensure!(
        output.status.success(),
        "pg_restore failed ({}); the database is left as it was: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(manifest)
}
