//! The audit trail: every state change and every verifier view, append-only (the database
//! refuses UPDATE, DELETE and TRUNCATE) and chained: each event holds the SHA-256 of the one
//! before, so an edit anywhere breaks the chain at that event.

pub mod bulk;
pub mod checks;
mod routes;
pub mod trail;
mod trail_routes;
mod views;

use chrono::{DateTime, SubsecRound, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::Actor;
pub use routes::router;
pub use views::Views;

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

    /// The event as appended to the chain at `occurred_at`, in `centre_id`.
    fn at(&self, occurred_at: DateTime<Utc>, centre_id: Option<Uuid>) -> bulk::BulkEvent<'_> {
        bulk::BulkEvent {
            occurred_at,
            actor_id: self.actor_id,
            actor_role: &self.actor_role,
            action: self.action,
            subject_type: self.subject_type,
            subject_id: self.subject_id,
            enrolment_id: self.enrolment_id,
            centre_id,
            details: &self.details,
        }
    }
}

/// A recorded event as shown in history panels and the API.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    // What needs no lock first: every writer of the chain waits while the lock is held.
    let enrolment_centre = match event.enrolment_id {
        Some(id) => {
            sqlx::query_scalar!("SELECT centre_id FROM enrolments WHERE id = $1", id).fetch_optional(&mut *conn).await?
        }
        None => None,
    };
    let centre_id = enrolment_centre.or(event.centre_id);
    let mut end = bulk::lock_chain_end(&mut *conn).await?;
    let occurred_at = Utc::now().trunc_subsecs(6);
    let bulk::Chained { seq, prev_hash, hash, details_sha256 } = end.append(&event.at(occurred_at, centre_id));
    sqlx::query!(
        "INSERT INTO audit_events (seq, occurred_at, actor_id, actor_role, action, subject_type, subject_id,
                                   enrolment_id, details, prev_hash, hash, centre_id, details_sha256)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
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
        centre_id,
        details_sha256
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
    /// Set for events recorded since details became redactable: the hash covers this digest of
    /// the details instead of the details themselves.
    details_sha256: Option<&'a str>,
}

impl Hashed<'_> {
    fn hash(&self) -> String {
        use std::io::Write;
        let mut text = Vec::with_capacity(512);
        let optional = |text: &mut Vec<u8>, id: Option<Uuid>| match id {
            Some(id) => writeln!(text, "{id}"),
            None => writeln!(text),
        };
        // Writing into a Vec cannot fail.
        let _ = write!(text, "{}\n{}\n", self.prev_hash, self.seq);
        write_timestamp(&mut text, self.occurred_at);
        text.push(b'\n');
        let _ = optional(&mut text, self.actor_id);
        let _ = write!(text, "{}\n{}\n{}\n", self.actor_role, self.action, self.subject_type);
        let _ = optional(&mut text, self.subject_id);
        let _ = optional(&mut text, self.enrolment_id);
        match self.details_sha256 {
            Some(digest) => {
                let _ = write!(text, "details-sha256:{digest}");
            }
            None => crate::canonical::write(self.details, &mut text),
        }
        // Events from before centres were recorded hash as they always did.
        if let Some(centre) = self.centre_id {
            let _ = write!(text, "\ncentre:{centre}");
        }
        hex::encode(Sha256::digest(&text))
    }
}

/// `occurred_at` as the hash has it, `%Y-%m-%dT%H:%M:%S%.6fZ`, written straight rather than
/// through chrono's format string (which is parsed again each time).
fn write_timestamp(text: &mut Vec<u8>, at: DateTime<Utc>) {
    use chrono::{Datelike, Timelike};
    use std::io::Write;
    let _ = write!(
        text,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.nanosecond() % 1_000_000_000 / 1_000
    );
}

/// The SHA-256 of an event's details as canonical JSON.
fn details_digest(details: &Value) -> String {
    crate::canonical::sha256_hex(details)
}

/// The result of checking the whole chain.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Verification {
    pub events: i64,
    pub intact: bool,
    pub first_broken: Option<BrokenEvent>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BrokenEvent {
    pub seq: i64,
    pub reason: String,
}

/// An event as stored, with every field its hash covers, read back for a check.
struct StoredEvent {
    seq: i64,
    occurred_at: DateTime<Utc>,
    actor_id: Option<Uuid>,
    actor_role: String,
    action: String,
    subject_type: String,
    subject_id: Option<Uuid>,
    enrolment_id: Option<Uuid>,
    details: Value,
    prev_hash: String,
    hash: String,
    centre_id: Option<Uuid>,
    details_sha256: Option<String>,
    redacted_at: Option<DateTime<Utc>>,
}

const CHANGED: &str = "its contents do not match its hash (the event was changed)";
const RELINKED: &str = "its link to the previous event does not match";

impl StoredEvent {
    /// Whether the event's own contents still give its hash.
    fn matches_its_hash(&self) -> bool {
        // A redacted event's details were replaced on purpose (retention); its digest still
        // stands for what they were. Any other event's details must match their digest.
        if let Some(digest) = &self.details_sha256
            && self.redacted_at.is_none()
            && details_digest(&self.details) != *digest
        {
            return false;
        }
        let recomputed = Hashed {
            prev_hash: &self.prev_hash,
            seq: self.seq,
            occurred_at: self.occurred_at,
            actor_id: self.actor_id,
            actor_role: &self.actor_role,
            action: &self.action,
            subject_type: &self.subject_type,
            subject_id: self.subject_id,
            enrolment_id: self.enrolment_id,
            centre_id: self.centre_id,
            details: &self.details,
            details_sha256: self.details_sha256.as_deref(),
        }
        .hash();
        recomputed == self.hash
    }
}

/// Recomputes every event's hash in order and reports the first that does not match.
pub async fn verify(conn: &mut PgConnection) -> Result<Verification, sqlx::Error> {
    let mut rows = sqlx::query_as!(
        StoredEvent,
        "SELECT seq, occurred_at, actor_id, actor_role, action, subject_type, subject_id, enrolment_id,
                details, prev_hash, hash, centre_id, details_sha256, redacted_at
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
            return Ok(broken(RELINKED.into()));
        }
        if !row.matches_its_hash() {
            return Ok(broken(CHANGED.into()));
        }
        expected_prev = row.hash;
        expected_seq += 1;
    }
    Ok(Verification { events, intact: true, first_broken: None })
}

/// A shown event as its check needs it: its links either side, and whether its contents still
/// give its hash (worked out from the row the page read, so its details are parsed once).
pub struct Seal {
    pub seq: i64,
    pub prev_hash: String,
    pub hash: String,
    pub matches_its_hash: bool,
}

impl StoredEvent {
    /// The event's seal, then the event as pages show it, named `actor_name`.
    fn sealed(self, actor_name: Option<String>) -> (Seal, RecordedEvent) {
        let matches_its_hash = self.matches_its_hash();
        let seal = Seal { seq: self.seq, prev_hash: self.prev_hash, hash: self.hash.clone(), matches_its_hash };
        let event = RecordedEvent {
            seq: self.seq,
            occurred_at: self.occurred_at,
            actor_id: self.actor_id,
            actor_name,
            actor_role: self.actor_role,
            action: self.action,
            subject_type: self.subject_type,
            subject_id: self.subject_id,
            enrolment_id: self.enrolment_id,
            details: self.details,
            hash: self.hash,
        };
        (seal, event)
    }
}

/// Checks the events a page shows without reading the whole chain: each one's contents against
/// its hash, and its links to the events either side. A change to a shown event, or one that
/// rewrote a shown event's hash to match, is found at the event the whole-chain check would name.
/// A change elsewhere is left to the whole-chain check.
pub async fn check_shown(conn: &mut PgConnection, shown: &[Seal]) -> Result<Option<BrokenEvent>, sqlx::Error> {
    if shown.is_empty() {
        return Ok(None);
    }
    // The links of the events either side that are not shown, and of the chain's last event, in
    // one statement: where the chain ends.
    let shown_seqs: std::collections::HashSet<i64> = shown.iter().map(|s| s.seq).collect();
    let wanted: Vec<i64> =
        shown.iter().flat_map(|s| [s.seq - 1, s.seq + 1]).filter(|seq| !shown_seqs.contains(seq)).collect();
    // The chain's end as the newest event, not `max(seq)`: planning the aggregate cost more than
    // the rest of the statement (fix 31).
    let neighbours = sqlx::query!(
        "SELECT seq, prev_hash, hash FROM audit_events
         WHERE seq = ANY(array_append($1, (SELECT l.seq FROM audit_events l ORDER BY l.seq DESC LIMIT 1)))
         ORDER BY seq",
        &wanted
    )
    .fetch_all(&mut *conn)
    .await?;
    let last = neighbours.last().map_or(0, |row| row.seq);
    // Each event's (prev_hash, hash) by sequence number.
    let mut links: std::collections::HashMap<i64, (&str, &str)> =
        neighbours.iter().map(|r| (r.seq, (r.prev_hash.as_str(), r.hash.as_str()))).collect();
    links.extend(shown.iter().map(|s| (s.seq, (s.prev_hash.as_str(), s.hash.as_str()))));
    let mut problems = Vec::new();
    for event in shown {
        let seq = event.seq;
        match seq {
            1 if event.prev_hash != GENESIS => problems.push((seq, RELINKED.to_string())),
            1 => {}
            _ => match links.get(&(seq - 1)) {
                None => problems.push((seq, format!("event {} is missing", seq - 1))),
                Some((_, before)) if *before != event.prev_hash => problems.push((seq, RELINKED.into())),
                Some(_) => {}
            },
        }
        if !event.matches_its_hash {
            problems.push((seq, CHANGED.into()));
        }
        if seq < last {
            match links.get(&(seq + 1)) {
                None => problems.push((seq + 2, format!("event {} is missing", seq + 1))),
                Some((after, _)) if *after != event.hash => problems.push((seq + 1, RELINKED.into())),
                Some(_) => {}
            }
        }
    }
    Ok(problems.into_iter().min_by_key(|(seq, _)| *seq).map(|(seq, reason)| BrokenEvent { seq, reason }))
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

/// One page of an enrolment's events, newest first (keyset on the event's sequence number,
/// indexed by `audit_events_enrolment`).
pub async fn history_page(
    conn: &mut PgConnection,
    enrolment_id: Uuid,
    request: &crate::web::pagination::PageRequest,
) -> crate::error::AppResult<crate::web::pagination::Page<RecordedEvent>> {
    let before = request.after_number()?;
    let events = sqlx::query_as!(
        RecordedEvent,
        "SELECT e.seq, e.occurred_at, e.actor_id, u.name AS \"actor_name?\", e.actor_role, e.action,
                e.subject_type, e.subject_id, e.enrolment_id, e.details, e.hash
         FROM audit_events e LEFT JOIN users u ON u.id = e.actor_id
         WHERE e.enrolment_id = $1 AND ($2::bigint IS NULL OR e.seq < $2)
         ORDER BY e.seq DESC LIMIT $3",
        enrolment_id,
        before,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(
        events.into_iter().map(|e| (crate::web::pagination::Position::number(e.seq, Uuid::nil()), e)).collect(),
    ))
}

/// Replaces the details of the events `seqs` with `{"redacted": note}`, inside the caller's
/// transaction, and returns the events actually redacted. The chain still verifies: each event's
/// hash covers its details' SHA-256, which stays. Events already redacted, and events from before
/// details were digested (which would break the chain if changed), are left as they are; the
/// database refuses any other change to an event.
pub async fn redact(conn: &mut PgConnection, seqs: &[i64], note: &str) -> Result<Vec<i64>, sqlx::Error> {
    sqlx::query_scalar!(
        "UPDATE audit_events SET details = jsonb_build_object('redacted', $2::text), redacted_at = now()
         WHERE seq = ANY($1) AND redacted_at IS NULL AND details_sha256 IS NOT NULL
         RETURNING seq",
        seqs,
        note
    )
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event as the hash covers it, with every optional field set or not.
    fn hashed<'a>(details: &'a Value, digest: Option<&'a str>, ids: bool) -> Hashed<'a> {
        let id = |n: u128| ids.then(|| Uuid::from_u128(n));
        Hashed {
            prev_hash: GENESIS,
            seq: 42,
            occurred_at: DateTime::from_timestamp(1_764_660_000, 123_456_000).unwrap(),
            actor_id: id(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            actor_role: "assessor",
            action: "assessment.judged",
            subject_type: "criterion",
            subject_id: id(2),
            enrolment_id: id(3),
            centre_id: id(4),
            details,
            details_sha256: digest,
        }
    }

    /// Hashes recorded by earlier versions must still check: these are what the first versions
    /// of the chain computed for the same fields.
    #[test]
    fn an_events_hash_is_what_the_chain_has_always_recorded() {
        let details = serde_json::json!({"outcome": "met", "criterion": "1.1", "notes": ["a\"b", 2.5, null]});
        let digest = details_digest(&details);
        for (event, expected) in [
            (hashed(&details, None, true), "a9ef8972ada5d65bd78b9222f9baa526ada5ea6350f77cc58b01cdf788aa4769"),
            (hashed(&details, None, false), "d5c8494a50c1c8264d6e1add1698bed0848dd232d58f5c7e7741dc28c5a35ab1"),
            (hashed(&details, Some(&digest), true), "7d68ff588372f5662e8c190917311ab98f06398bccbd7b68a5e567369a98981b"),
        ] {
            assert_eq!(event.hash(), expected);
        }
        assert_eq!(digest, "4e3fac2e303cf4952607c3fb52945dfe03c92c5dd84049d9cc285a8726537abf");
    }

    #[test]
    fn the_timestamp_is_written_as_chrono_formats_it() {
        for (secs, nanos) in
            [(0, 0), (1_764_660_000, 123_456_789), (253_402_300_799, 999_999_999), (-62_135_596_800, 1_000)]
        {
            let at = DateTime::from_timestamp(secs, nanos).unwrap();
            let mut text = Vec::new();
            write_timestamp(&mut text, at);
            assert_eq!(String::from_utf8(text).unwrap(), at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
        }
    }
}
