//! The audit trail: every state change and every verifier view, append-only (the database
//! refuses UPDATE, DELETE and TRUNCATE) and chained: each event holds the SHA-256 of the one
//! before, so an edit anywhere breaks the chain at that event.

mod routes;
pub mod trail;
mod trail_routes;

use chrono::{DateTime, SubsecRound, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::Actor;
pub use routes::router;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
// Serialises writers of the chain: each event needs the hash of the one committed before it.
const CHAIN_LOCK: i64 = 0x6570_6f72_7466_6f6c;

/// An event about to be recorded.
pub struct Event {
    actor_id: Option<Uuid>,
    actor_role: String,
    action: &'static str,
    subject_type: &'static str,
    subject_id: Option<Uuid>,
    enrolment_id: Option<Uuid>,
    centre_id: Option<Uuid>,
    details: Value,
}

impl Event {
    /// `actor` None means the command line or the system itself.
    pub fn new(
        actor: Option<&Actor>,
        action: &'static str,
        subject_type: &'static str,
        subject_id: Option<Uuid>,
    ) -> Self {
        Event {
            actor_id: actor.map(|a| a.id),
            actor_role: actor
                .and_then(|a| a.primary_role())
                .map(|r| r.as_str().to_string())
                .unwrap_or_else(|| "system".into()),
            action,
            subject_type,
            subject_id,
            enrolment_id: None,
            centre_id: actor.and_then(|a| {
                let role = a.primary_role()?;
                a.roles.iter().find(|r| r.role == role).map(|r| r.centre_id)
            }),
            details: Value::Object(Default::default()),
        }
    }

    /// The role the actor acted in (their relation to the learner), when it differs from their first role.
    pub fn as_role(mut self, role: crate::auth::Role) -> Self {
        self.actor_role = role.as_str().to_string();
        self
    }

    /// Done by a witness through their link: they have no account, the details name them.
    pub fn as_witness(mut self) -> Self {
        self.actor_role = "witness".into();
        self
    }

    pub fn enrolment(mut self, enrolment_id: Uuid) -> Self {
        self.enrolment_id = Some(enrolment_id);
        self
    }

    /// The centre the event belongs to, when it is not the enrolment's or the actor's own
    /// (a verifier looking at a centre they were granted).
    pub fn centre(mut self, centre_id: Uuid) -> Self {
        self.centre_id = Some(centre_id);
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// A recorded event as shown in history panels and the API.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedEvent {
    pub seq: i64,
    pub occurred_at: DateTime<Utc>,
    pub actor_id: Option<Uuid>,
    pub actor_name: Option<String>,
    pub actor_role: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: Option<Uuid>,
    pub enrolment_id: Option<Uuid>,
    pub details: Value,
    pub hash: String,
}

/// Appends an event to the chain inside the caller's transaction.
pub async fn record(conn: &mut PgConnection, event: Event) -> Result<i64, sqlx::Error> {
    sqlx::query!("SELECT pg_advisory_xact_lock($1)", CHAIN_LOCK).execute(&mut *conn).await?;
    let last =
        sqlx::query!("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1").fetch_optional(&mut *conn).await?;
    let (seq, prev_hash) = match last {
        Some(row) => (row.seq + 1, row.hash),
        None => (1, GENESIS.to_string()),
    };
    let occurred_at = Utc::now().trunc_subsecs(6);
    let enrolment_centre = match event.enrolment_id {
        Some(id) => {
            sqlx::query_scalar!("SELECT centre_id FROM enrolments WHERE id = $1", id).fetch_optional(&mut *conn).await?
        }
        None => None,
    };
    let centre_id = enrolment_centre.or(event.centre_id);
    let hash = Hashed {
        prev_hash: &prev_hash,
        seq,
        occurred_at,
        actor_id: event.actor_id,
        actor_role: &event.actor_role,
        action: event.action,
        subject_type: event.subject_type,
        subject_id: event.subject_id,
        enrolment_id: event.enrolment_id,
        centre_id,
        details: &event.details,
    }
    .hash();
    sqlx::query!(
        "INSERT INTO audit_events (seq, occurred_at, actor_id, actor_role, action, subject_type, subject_id,
                                   enrolment_id, details, prev_hash, hash, centre_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        seq,
        occurred_at,
        event.actor_id,
        event.actor_role,
        event.action,
        event.subject_type,
        event.subject_id,
        event.enrolment_id,
        event.details,
        prev_hash,
        hash,
        centre_id
    )
    .execute(conn)
    .await?;
    Ok(seq)
}

/// The fields an event's hash covers, borrowed from a new event or a stored row.
struct Hashed<'a> {
    prev_hash: &'a str,
    seq: i64,
    occurred_at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    actor_role: &'a str,
    action: &'a str,
    subject_type: &'a str,
    subject_id: Option<Uuid>,
    enrolment_id: Option<Uuid>,
    centre_id: Option<Uuid>,
    details: &'a Value,
}

impl Hashed<'_> {
    fn hash(&self) -> String {
        let optional = |id: Option<Uuid>| id.map(|u| u.to_string()).unwrap_or_default();
        let mut text = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.prev_hash,
            self.seq,
            self.occurred_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
            optional(self.actor_id),
            self.actor_role,
            self.action,
            self.subject_type,
            optional(self.subject_id),
            optional(self.enrolment_id),
            canonical_json(self.details),
        );
        // Events from before centres were recorded hash as they always did.
        if let Some(centre) = self.centre_id {
            text.push_str(&format!("\ncentre:{centre}"));
        }
        hex::encode(Sha256::digest(text.as_bytes()))
    }
}

/// JSON with object keys sorted at every level, so the hash does not depend on how the
/// database hands the document back.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> =
                keys.into_iter().map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k]))).collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!("[{}]", items.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub events: i64,
    pub intact: bool,
    pub first_broken: Option<BrokenEvent>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BrokenEvent {
    pub seq: i64,
    pub reason: String,
}

/// Recomputes every event's hash in order and reports the first that does not match.
pub async fn verify(conn: &mut PgConnection) -> Result<Verification, sqlx::Error> {
    let mut rows = sqlx::query!(
        "SELECT seq, occurred_at, actor_id, actor_role, action, subject_type, subject_id, enrolment_id,
                details, prev_hash, hash, centre_id
         FROM audit_events ORDER BY seq"
    )
    .fetch(conn);
    let mut expected_prev = GENESIS.to_string();
    let mut expected_seq = 1;
    let mut events = 0;
    while let Some(row) = rows.try_next().await? {
        events += 1;
        let broken = |reason: String| Verification {
            events,
            intact: false,
            first_broken: Some(BrokenEvent { seq: row.seq, reason }),
        };
        if row.seq != expected_seq {
            return Ok(broken(format!("event {expected_seq} is missing")));
        }
        if row.prev_hash != expected_prev {
            return Ok(broken("its link to the previous event does not match".into()));
        }
        let recomputed = Hashed {
            prev_hash: &row.prev_hash,
            seq: row.seq,
            occurred_at: row.occurred_at,
            actor_id: row.actor_id,
            actor_role: &row.actor_role,
            action: &row.action,
            subject_type: &row.subject_type,
            subject_id: row.subject_id,
            enrolment_id: row.enrolment_id,
            centre_id: row.centre_id,
            details: &row.details,
        }
        .hash();
        if recomputed != row.hash {
            return Ok(broken("its contents do not match its hash (the event was changed)".into()));
        }
        expected_prev = row.hash.clone();
        expected_seq += 1;
    }
    Ok(Verification { events, intact: true, first_broken: None })
}

/// Events about one enrolment (or everything when `enrolment_id` is None), newest first.
pub async fn history(
    conn: &mut PgConnection,
    enrolment_id: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    sqlx::query_as!(
        RecordedEvent,
        "SELECT e.seq, e.occurred_at, e.actor_id, u.name AS \"actor_name?\", e.actor_role, e.action,
                e.subject_type, e.subject_id, e.enrolment_id, e.details, e.hash
         FROM audit_events e LEFT JOIN users u ON u.id = e.actor_id
         WHERE $1::uuid IS NULL OR e.enrolment_id = $1
         ORDER BY e.seq DESC LIMIT $2",
        enrolment_id,
        limit
    )
    .fetch_all(conn)
    .await
}
