//! The audit trail as people read it: filtered, newest first, a page at a time by sequence number
//! (keyset, never OFFSET), limited to what the reader may see.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{RecordedEvent, Seal, StoredEvent};

/// Events on one page of the trail.
pub const PAGE_SIZE: i64 = 50;

/// What a reader may see: every event of `centres`, and the events of `enrolments` (learners a
/// verifier's grants name one by one, outside those centres).
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub centres: Vec<Uuid>,
    pub enrolments: Vec<Uuid>,
    /// Where an external verifier's reading is recorded: each centre their current grants are
    /// for, in any scope. None for an administrator.
    pub verifier_centres: Vec<Uuid>,
}

/// The filters of the trail page and API, parsed.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Who did it: any of these people.
    pub actors: Option<Vec<Uuid>>,
    /// What: an action, or the start of one (`evidence.` for every evidence event).
    pub action: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Which learner: any of these enrolments.
    pub enrolments: Option<Vec<Uuid>>,
    /// Events older than this sequence number (the next page's cursor).
    pub before: Option<i64>,
}

/// One page of events, and the cursor for the next when there is one.
pub struct Page {
    pub events: Vec<RecordedEvent>,
    /// What `super::check_shown` needs of each event shown.
    pub seals: Vec<Seal>,
    pub next: Option<i64>,
}

/// One page of the trail for `scope` and `filter`. Its caller's transaction runs without
/// parallel workers (`AppState::begin_trail`): for a centre's whole trail the planner expects
/// thousands of rows to pass the filters and starts two workers for the newest 51, which costs
/// 7 ms of the 12 the statement then takes (BENCHMARKS.md, fix 13).
pub async fn page(conn: &mut PgConnection, scope: &Scope, filter: &Filter) -> crate::error::AppResult<Page> {
    // The actor's name and the enrolment's centre are looked up by key for the rows found, not
    // joined: with the joins, planning took 0.3 ms of the 0.4 the first page costs (fix 28).
    // The whole stored row, so that the shown events' hashes are checked from it (fix 30).
    // An event's own centre is compared as it is, so that a centre with few events is found
    // through `audit_events_centre`; only events from before centres were recorded (NULL) fall
    // back to their enrolment's. As one COALESCE, no index served it, and a new centre's empty
    // trail read the whole chain to find nothing: 0.5 s at 1,000 learners (fix 32).
    let mut rows = sqlx::query!(
        r#"SELECT e.seq, e.occurred_at, e.actor_id,
                  (SELECT u.name FROM users u WHERE u.id = e.actor_id) AS "actor_name?", e.actor_role, e.action,
                  e.subject_type, e.subject_id, e.enrolment_id, e.details, e.prev_hash, e.hash, e.centre_id,
                  e.details_sha256, e.redacted_at
           FROM audit_events e
           WHERE (e.centre_id = ANY($1)
                  OR (e.centre_id IS NULL AND (SELECT en.centre_id FROM enrolments en WHERE en.id = e.enrolment_id) = ANY($1))
                  OR e.enrolment_id = ANY($2))
             AND ($3::uuid[] IS NULL OR e.actor_id = ANY($3))
             AND ($4::text IS NULL OR e.action = $4 OR (right($4, 1) = '.' AND starts_with(e.action, $4)))
             AND ($5::date IS NULL OR e.occurred_at >= $5::date::timestamp AT TIME ZONE 'UTC')
             AND ($6::date IS NULL OR e.occurred_at < ($6::date + 1)::timestamp AT TIME ZONE 'UTC')
             AND ($7::uuid[] IS NULL OR e.enrolment_id = ANY($7))
             AND ($8::bigint IS NULL OR e.seq < $8)
           ORDER BY e.seq DESC
           LIMIT $9"#,
        &scope.centres,
        &scope.enrolments,
        filter.actors.as_deref(),
        filter.action,
        filter.from,
        filter.to,
        filter.enrolments.as_deref(),
        filter.before,
        PAGE_SIZE + 1
    )
    .fetch_all(conn)
    .await?;
    let next = if rows.len() as i64 > PAGE_SIZE {
        rows.truncate(PAGE_SIZE as usize);
        rows.last().map(|e| e.seq)
    } else {
        None
    };
    let (seals, events) = rows
        .into_iter()
        .map(|r| {
            StoredEvent {
                seq: r.seq,
                occurred_at: r.occurred_at,
                actor_id: r.actor_id,
                actor_role: r.actor_role,
                action: r.action,
                subject_type: r.subject_type,
                subject_id: r.subject_id,
                enrolment_id: r.enrolment_id,
                details: r.details,
                prev_hash: r.prev_hash,
                hash: r.hash,
                centre_id: r.centre_id,
                details_sha256: r.details_sha256,
                redacted_at: r.redacted_at,
            }
            .sealed(r.actor_name)
        })
        .unzip();
    Ok(Page { events, seals, next })
}

/// A person a "who" filter matched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
    pub email: String,
}

/// A learner's enrolment a "learner" filter matched.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Learner {
    pub enrolment_id: Uuid,
    pub name: String,
    pub email: String,
    pub unit: String,
}

/// At most this many people or learners for one name typed in a filter; more asks for more of it.
pub const MOST_MATCHES: i64 = 20;

/// `%text%` for ILIKE, with the text's own `%`, `_` and `\` matched literally.
fn containing(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// The people in scope whose name or email contains `text` (or whose id it is), up to one more
/// than [`MOST_MATCHES`]: the people who act at the reader's centres (staff and the verifiers
/// granted them) and the people of the enrolments in scope.
pub async fn people_matching(conn: &mut PgConnection, scope: &Scope, text: &str) -> Result<Vec<Person>, sqlx::Error> {
    let id = text.parse::<Uuid>().ok();
    sqlx::query_as!(
        Person,
        r#"SELECT u.id AS "id!", u.name AS "name!", u.email AS "email!" FROM users u
           WHERE (u.id = $3 OR ($3 IS NULL AND (u.name ILIKE $4 OR u.email ILIKE $4)))
             AND u.id IN (
               SELECT r.user_id FROM user_roles r WHERE r.centre_id = ANY($1)
               UNION SELECT g.verifier_id FROM verifier_grants g WHERE g.centre_id = ANY($1)
               UNION SELECT x.id FROM enrolments en
                     CROSS JOIN LATERAL (VALUES (en.learner_id), (en.assessor_id), (en.iqa_id)) x(id)
                     WHERE en.id = ANY($2) AND x.id IS NOT NULL)
           ORDER BY u.name, u.id
           LIMIT $5"#,
        &scope.centres,
        &scope.enrolments,
        id,
        containing(text),
        MOST_MATCHES + 1
    )
    .fetch_all(conn)
    .await
}

/// The enrolments in scope whose learner's name or email contains `text` (or whose id it is), up
/// to one more than [`MOST_MATCHES`].
pub async fn learners_matching(
    conn: &mut PgConnection,
    scope: &Scope,
    text: &str,
) -> Result<Vec<Learner>, sqlx::Error> {
    let id = text.parse::<Uuid>().ok();
    sqlx::query_as!(
        Learner,
        r#"SELECT en.id AS enrolment_id, u.name, u.email, un.code AS unit FROM enrolments en
           JOIN users u ON u.id = en.learner_id JOIN units un ON un.id = en.unit_id
           WHERE (en.centre_id = ANY($1) OR en.id = ANY($2))
             AND (en.id = $3 OR ($3 IS NULL AND (u.name ILIKE $4 OR u.email ILIKE $4)))
           ORDER BY u.name, un.code, en.id
           LIMIT $5"#,
        &scope.centres,
        &scope.enrolments,
        id,
        containing(text),
        MOST_MATCHES + 1
    )
    .fetch_all(conn)
    .await
}

/// The actions recorded, as `actions` reads them, kept by each process until a new one is
/// recorded (migration 0029).
pub async fn actions_kept(
    changes: &crate::db::changes::Changes,
    conn: &mut PgConnection,
) -> Result<std::sync::Arc<Vec<String>>, sqlx::Error> {
    changes.trail_actions(async { actions(conn).await.map(std::sync::Arc::new) }).await
}

/// The actions recorded, for the "what" filter (skipping through `audit_events_action_seq` one value
/// at a time, so it costs the same at ten events or ten million).
pub async fn actions(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar!(
        r#"WITH RECURSIVE a(action) AS (
               SELECT min(action) FROM audit_events
               UNION ALL
               SELECT (SELECT min(e.action) FROM audit_events e WHERE e.action > a.action) FROM a WHERE a.action IS NOT NULL)
           SELECT action AS "action!" FROM a WHERE action IS NOT NULL ORDER BY action"#
    )
    .fetch_all(conn)
    .await
}

/// Events about one thing (an evidence item and its files, or a person), newest first; with
/// `centre`, only that centre's events (and those recorded before events had a centre).
pub async fn about(
    conn: &mut PgConnection,
    subject_id: Uuid,
    centre: Option<Uuid>,
    limit: i64,
) -> Result<Vec<RecordedEvent>, sqlx::Error> {
    sqlx::query_as!(
        RecordedEvent,
        // Each name looked up by key for the few events found: joined, the planner expected
        // about 180 events and hashed every user to name them (15 of 18 ms at 10,000 learners,
        // BENCHMARKS.md, fix 17).
        r#"SELECT e.seq, e.occurred_at, e.actor_id,
                  (SELECT u.name FROM users u WHERE u.id = e.actor_id) AS "actor_name?", e.actor_role, e.action,
                  e.subject_type, e.subject_id, e.enrolment_id, e.details, e.hash
           FROM audit_events e
           WHERE (e.subject_id = $1 OR (e.details ? 'evidence_id' AND e.details->>'evidence_id' = $1::text))
             AND ($2::uuid IS NULL OR e.centre_id IS NULL OR e.centre_id = $2)
           ORDER BY e.seq DESC LIMIT $3"#,
        subject_id,
        centre,
        limit
    )
    .fetch_all(conn)
    .await
}
