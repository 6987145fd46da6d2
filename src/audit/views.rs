//! A verifier's views, recorded in transactions of their own (their request's is read-only) by one
//! writer per process. Each event needs the hash of the one before, so writers of the chain take
//! turns (`CHAIN_LOCK`); one transaction per view made 32 verifiers wait about 130 ms each for
//! their turn (BENCHMARKS.md, fix 25). The views of requests that arrive together now share one
//! turn, one statement and one commit, and each request is still answered only once its views
//! are committed.
//!
//! The writer has a connection of its own, outside the pool: the requests waiting for it hold
//! pool connections (their read-only transactions), and with the pool full it would otherwise
//! wait for them while they wait for it.

use std::collections::HashMap;

use chrono::{SubsecRound, Utc};
use serde_json::Value;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::Event;
use super::bulk;

/// Events written in one transaction at most.
const BATCH: usize = 256;

/// Where a request hands the views it must record. Cloning shares the writer.
#[derive(Clone)]
pub struct Views {
    jobs: mpsc::UnboundedSender<Job>,
}

/// One request's views, and where to say they are committed.
struct Job {
    events: Vec<Event>,
    done: oneshot::Sender<Result<(), sqlx::Error>>,
}

impl Views {
    /// Starts the writer on `pool`'s database; it ends once every `Views` is dropped.
    pub fn start(pool: &PgPool) -> Views {
        let (jobs, waiting) = mpsc::unbounded_channel();
        tokio::spawn(write_all(pool.clone(), waiting));
        Views { jobs }
    }

    /// Appends `events` to the chain, committed when this returns.
    pub async fn record(&self, events: Vec<Event>) -> Result<(), sqlx::Error> {
        if events.is_empty() {
            return Ok(());
        }
        let (done, committed) = oneshot::channel();
        self.jobs.send(Job { events, done }).map_err(|_| sqlx::Error::PoolClosed)?;
        committed.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

/// Writes the jobs waiting, as many at once as have arrived (up to `BATCH` events).
async fn write_all(pool: PgPool, mut waiting: mpsc::UnboundedReceiver<Job>) {
    let mut writer = Writer { pool, conn: None };
    while let Some(first) = waiting.recv().await {
        let mut count = first.events.len();
        let mut batch = vec![first];
        while count < BATCH
            && let Ok(job) = waiting.try_recv()
        {
            count += job.events.len();
            batch.push(job);
        }
        let events: Vec<&Event> = batch.iter().flat_map(|job| &job.events).collect();
        match writer.write(&events).await {
            Ok(()) => {
                for job in batch {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(error) if batch.len() == 1 => {
                let _ = batch.pop().map(|job| job.done.send(Err(error)));
            }
            // One request's events may be at fault: each is written alone, so the others are
            // still recorded and only the faulty one is refused.
            Err(_) => {
                for job in batch {
                    let events: Vec<&Event> = job.events.iter().collect();
                    let _ = job.done.send(writer.write(&events).await);
                }
            }
        }
    }
}

/// The writer's own connection to the pool's database, made again after a failure.
struct Writer {
    pool: PgPool,
    conn: Option<PgConnection>,
}

impl Writer {
    async fn write(&mut self, events: &[&Event]) -> Result<(), sqlx::Error> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => {
                let options = self.pool.connect_options();
                // As long as a request waits for a pool connection; then 503 (`AppError::Unavailable`).
                let made = tokio::time::timeout(crate::db::POOL_WAIT, PgConnection::connect_with(&options)).await;
                self.conn.insert(made.map_err(|_| sqlx::Error::PoolTimedOut)??)
            }
        };
        let written = write(conn, events).await;
        if written.is_err() {
            // The connection may be what failed.
            self.conn = None;
        }
        written
    }
}

/// Appends `events` in one transaction, as `super::record` would one by one.
async fn write(conn: &mut PgConnection, events: &[&Event]) -> Result<(), sqlx::Error> {
    let mut tx = conn.begin().await?;
    // What needs no lock first: every writer of the chain waits while the lock is held.
    let enrolments: Vec<Uuid> = events.iter().filter_map(|event| event.enrolment_id).collect();
    let centres: HashMap<Uuid, Uuid> = if enrolments.is_empty() {
        HashMap::new()
    } else {
        sqlx::query!("SELECT id, centre_id, assessor_id, iqa_id FROM enrolments WHERE id = ANY($1)", &enrolments)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(|row| (row.id, row.centre_id))
            .collect()
    };
    let mut end = bulk::lock_chain_end(&mut tx).await?;
    let occurred_at = Utc::now().trunc_subsecs(6);
    let mut rows = Rows::default();
    for event in events {
        let centre_id = event.enrolment_id.and_then(|id| centres.get(&id).copied()).or(event.centre_id);
        let chained = end.append(&event.at(occurred_at, centre_id));
        rows.seq.push(chained.seq);
        rows.actor_id.push(event.actor_id);
        rows.actor_role.push(event.actor_role.clone());
        rows.action.push(event.action.to_string());
        rows.subject_type.push(event.subject_type.to_string());
        rows.subject_id.push(event.subject_id);
        rows.enrolment_id.push(event.enrolment_id);
        rows.details.push(event.details.clone());
        rows.prev_hash.push(chained.prev_hash);
        rows.hash.push(chained.hash);
        rows.centre_id.push(centre_id);
        rows.details_sha256.push(chained.details_sha256);
    }
    let at = vec![occurred_at; rows.seq.len()];
    sqlx::query!(
        "INSERT INTO audit_events (seq, occurred_at, actor_id, actor_role, action, subject_type, subject_id,
                                   enrolment_id, details, prev_hash, hash, centre_id, details_sha256)
         SELECT * FROM UNNEST($1::bigint[], $2::timestamptz[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                              $7::uuid[], $8::uuid[], $9::jsonb[], $10::text[], $11::text[], $12::uuid[], $13::text[])",
        &rows.seq,
        &at,
        &rows.actor_id as &[Option<Uuid>],
        &rows.actor_role,
        &rows.action,
        &rows.subject_type,
        &rows.subject_id as &[Option<Uuid>],
        &rows.enrolment_id as &[Option<Uuid>],
        &rows.details,
        &rows.prev_hash,
        &rows.hash,
        &rows.centre_id as &[Option<Uuid>],
        &rows.details_sha256,
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The new events' columns, one array each.
#[derive(Default)]
struct Rows {
    seq: Vec<i64>,
    actor_id: Vec<Option<Uuid>>,
    actor_role: Vec<String>,
    action: Vec<String>,
    subject_type: Vec<String>,
    subject_id: Vec<Option<Uuid>>,
    enrolment_id: Vec<Option<Uuid>>,
    details: Vec<Value>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
    centre_id: Vec<Option<Uuid>>,
    details_sha256: Vec<String>,
}
