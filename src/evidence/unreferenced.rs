//! Removing stored files that no evidence refers to. A file reaches its content address before
//! the transaction that records it commits, so a crash or a failed commit between the two leaves
//! an object nothing points to; this finds and removes such objects (and abandoned staged
//! uploads), as an audited administrative action.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sqlx::PgPool;

use super::FileStore;
use crate::audit::{self, Event};
use crate::error::AppResult;

/// What a sweep found and did.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// Stored objects looked at.
    pub examined: usize,
    /// Objects no evidence refers to: removed, or in a dry run those that would be.
    pub unreferenced: Vec<String>,
    /// Their size when found.
    pub unreferenced_bytes: u64,
    /// Staged uploads abandoned for longer than the grace period (removed unless a dry run).
    pub abandoned_uploads: usize,
    pub dry_run: bool,
}

/// Finds objects stored more than `grace` ago that no evidence file refers to, and unless
/// `dry_run` removes them. The grace period protects uploads whose transaction is still open.
pub async fn remove_unreferenced_files(
    pool: &PgPool,
    store: &FileStore,
    grace: Duration,
    dry_run: bool,
) -> AppResult<SweepReport> {
    let cutoff = chrono::Utc::now() - chrono::Duration::from_std(grace).unwrap_or(chrono::Duration::zero());
    let objects = store.list().await?;
    let mut report = SweepReport {
        examined: objects.len(),
        unreferenced: Vec::new(),
        unreferenced_bytes: 0,
        abandoned_uploads: 0,
        dry_run,
    };
    for batch in objects.chunks(1000) {
        let hashes: Vec<String> = batch.iter().map(|o| o.sha256.clone()).collect();
        let referenced =
            sqlx::query_scalar!("SELECT DISTINCT sha256 FROM evidence_files WHERE sha256 = ANY($1)", &hashes)
                .fetch_all(pool)
                .await?;
        for object in batch {
            if object.stored_at <= cutoff && !referenced.contains(&object.sha256) {
                report.unreferenced.push(object.sha256.clone());
                report.unreferenced_bytes += object.size;
            }
        }
    }
    if dry_run {
        return Ok(report);
    }
    report.abandoned_uploads =
        store.remove_staged_older_than(grace).map_err(|e| crate::error::AppError::Unexpected(e.into()))?;
    let removed = remove_released_files(pool, store, &std::mem::take(&mut report.unreferenced)).await?;
    report.unreferenced = removed;
    if !report.unreferenced.is_empty() || report.abandoned_uploads > 0 {
        let mut tx = pool.begin().await?;
        let event = Event::new(None, "files.unreferenced_removed", "file_store", None).details(json!({
            "store": store.describe(),
            "removed": report.unreferenced,
            "bytes": report.unreferenced_bytes,
            "abandoned_uploads": report.abandoned_uploads,
        }));
        audit::record(&mut tx, event).await?;
        tx.commit().await?;
    }
    Ok(report)
}

/// Removes from the store each object in `hashes` that no evidence refers to and that has no
/// `blobs` row (the sweeper's finds, or files released under retention), returning those
/// removed. Each is claimed with a placeholder `blobs` row before removal. An upload of the same
/// bytes inserts that row before it looks at the store, so it either waits for this transaction
/// (and then stores the file afresh) or holds the row already (and then this insert waits,
/// finds the row and leaves the object alone). Nothing is removed while a backup runs.
pub async fn remove_released_files(pool: &PgPool, store: &FileStore, hashes: &[String]) -> AppResult<Vec<String>> {
    let mut removed = Vec::new();
    for sha256 in hashes {
        let mut tx = pool.begin().await?;
        // Waits while a backup copies the stored files (it holds this lock shared).
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(crate::backup::FILES_LOCK).execute(&mut *tx).await?;
        let claimed = sqlx::query!(
            "INSERT INTO blobs (sha256, size, content_type) VALUES ($1, 0, 'application/octet-stream')
             ON CONFLICT (sha256) DO NOTHING",
            sha256
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        let referenced = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM evidence_files WHERE sha256 = $1) AS "referenced!""#,
            sha256
        )
        .fetch_one(&mut *tx)
        .await?;
        if claimed && !referenced {
            store.remove(sha256).await?;
            sqlx::query!("DELETE FROM blobs WHERE sha256 = $1", sha256).execute(&mut *tx).await?;
            tx.commit().await?;
            removed.push(sha256.clone());
        }
    }
    Ok(removed)
}
