//! Events loaded in bulk (the scale generator's COPY) rather than one by one through `record`:
//! their digests and hashes are computed here exactly as `record` computes them, so a generated
//! trail verifies with `eportfolio audit verify` like any other.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{CHAIN_LOCK, GENESIS, Hashed, details_digest};

/// Where the chain ends: the next event's sequence number and the hash it must link to.
#[derive(Debug, Clone)]
pub struct ChainEnd {
    pub next_seq: i64,
    pub prev_hash: String,
}

/// Locks the chain for the rest of the caller's transaction (as `record` does for each event)
/// and reads where it ends.
pub async fn lock_chain_end(conn: &mut PgConnection) -> Result<ChainEnd, sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK).execute(&mut *conn).await?;
    let last =
        sqlx::query!("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
    Ok(match last {
        Some(row) => ChainEnd { next_seq: row.seq + 1, prev_hash: row.hash },
        None => ChainEnd { next_seq: 1, prev_hash: GENESIS.to_string() },
    })
}

/// One event to append in bulk; `occurred_at` must already be whole microseconds.
pub struct BulkEvent<'a> {
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_role: &'a str,
    pub action: &'a str,
    pub subject_type: &'a str,
    pub subject_id: Option<Uuid>,
    pub enrolment_id: Option<Uuid>,
    pub centre_id: Option<Uuid>,
    pub details: &'a Value,
}

/// The stored fields `record` would have computed for an event appended at the chain's end.
pub struct Chained {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub details_sha256: String,
}

impl ChainEnd {
    /// Appends `event` to the chain: returns its seq, link, hash and digest, and moves the end on.
    pub fn append(&mut self, event: &BulkEvent) -> Chained {
        let details_sha256 = details_digest(event.details);
        let hash = Hashed {
            prev_hash: &self.prev_hash,
            seq: self.next_seq,
            occurred_at: event.occurred_at,
            actor_id: event.actor_id,
            actor_role: event.actor_role,
            action: event.action,
            subject_type: event.subject_type,
            subject_id: event.subject_id,
            enrolment_id: event.enrolment_id,
            centre_id: event.centre_id,
            details: event.details,
            details_sha256: Some(&details_sha256),
        }
        .hash();
        let chained = Chained {
            seq: self.next_seq,
            prev_hash: std::mem::replace(&mut self.prev_hash, hash.clone()),
            hash,
            details_sha256,
        };
        self.next_seq += 1;
        chained
    }
}
