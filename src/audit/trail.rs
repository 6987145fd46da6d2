//! The audit trail as people read it: filtered, newest first, a page at a time by sequence number
//! (keyset, never OFFSET), limited to what the reader may see.

use chrono::NaiveDate;
use sqlx::PgConnection;
use uuid::Uuid;

use super::RecordedEvent;

/// Events on one page of the trail.
pub const PAGE_SIZE: i64 = 50;

/// What a reader may see: every event of `centres`, and the events of `enrolments`.
#[derive(Debug, Clone, Default)]
pub struct Scope {
    pub centres: Vec<Uuid>,
    pub enrolments: Vec<Uuid>,
}

/// The filters of the trail page and API, parsed.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Who did it.
    pub actor: Option<Uuid>,
    /// What: an action, or the start of one (`evidence.` for every evidence event).
    pub action: Option<String>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Which learner's enrolment.
    pub enrolment: Option<Uuid>,
    /// Events older than this sequence number (the next page's cursor).
    pub before: Option<i64>,
}

/// One page of events, and the cursor for the next when there is one.
pub struct Page {
    pub events: Vec<RecordedEvent>,
    pub next: Option<i64>,
}

pub async fn page(conn: &mut PgConnection, scope: &Scope, filter: &Filter) -> Result<Page, sqlx::Error> {
    let mut events = sqlx::query_as!(
        RecordedEvent,
        r#"SELECT e.seq, e.occurred_at, e.actor_id, u.name AS "actor_name?", e.actor_role, e.action,
                  e.subject_type, e.subject_id, e.enrolment_id, e.details, e.hash
           FROM audit_events e
           LEFT JOIN users u ON u.id = e.actor_id
           LEFT JOIN enrolments en ON en.id = e.enrolment_id
           WHERE (COALESCE(e.centre_id, en.centre_id) = ANY($1) OR e.enrolment_id = ANY($2))
             AND ($3::uuid IS NULL OR e.actor_id = $3)
             AND ($4::text IS NULL OR e.action = $4 OR (right($4, 1) = '.' AND starts_with(e.action, $4)))
             AND ($5::date IS NULL OR e.occurred_at >= $5::date::timestamp AT TIME ZONE 'UTC')
             AND ($6::date IS NULL OR e.occurred_at < ($6::date + 1)::timestamp AT TIME ZONE 'UTC')
             AND ($7::uuid IS NULL OR e.enrolment_id = $7)
             AND ($8::bigint IS NULL OR e.seq < $8)
           ORDER BY e.seq DESC
           LIMIT $9"#,
        &scope.centres,
        &scope.enrolments,
        filter.actor,
        filter.action,
        filter.from,
        filter.to,
        filter.enrolment,
        filter.before,
        PAGE_SIZE + 1
    )
    .fetch_all(conn)
    .await?;
    let next = if events.len() as i64 > PAGE_SIZE {
        events.truncate(PAGE_SIZE as usize);
        events.last().map(|e| e.seq)
    } else {
        None
    };
    Ok(Page { events, next })
}

/// A person the reader can pick in the "who" filter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Person {
    pub id: Uuid,
    pub name: String,
}

/// A learner's enrolment the reader can pick in the "learner" filter.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Learner {
    pub enrolment_id: Uuid,
    pub name: String,
    pub unit: String,
}

/// The choices for the filters: the people who act at the reader's centres (staff and the
/// verifiers granted them; a learner's own actions are found through the learner filter), the
/// actions recorded, and the learners in scope. None of them reads the events themselves, so
/// the page costs the same at ten events or ten million.
pub async fn choices(
    conn: &mut PgConnection,
    scope: &Scope,
) -> Result<(Vec<Person>, Vec<String>, Vec<Learner>), sqlx::Error> {
    let people = sqlx::query_as!(
        Person,
        r#"SELECT u.id AS "id!", u.name AS "name!" FROM users u WHERE u.id IN (
               SELECT r.user_id FROM user_roles r WHERE r.centre_id = ANY($1) AND r.role <> 'learner'
               UNION SELECT g.verifier_id FROM verifier_grants g WHERE g.centre_id = ANY($1)
               UNION SELECT x.id FROM enrolments en
                     CROSS JOIN LATERAL (VALUES (en.learner_id), (en.assessor_id), (en.iqa_id)) x(id)
                     WHERE en.id = ANY($2) AND x.id IS NOT NULL)
           ORDER BY u.name, u.id"#,
        &scope.centres,
        &scope.enrolments
    )
    .fetch_all(&mut *conn)
    .await?;
    // The distinct actions, by skipping through `audit_events_action` one value at a time.
    let actions = sqlx::query_scalar!(
        r#"WITH RECURSIVE a(action) AS (
               SELECT min(action) FROM audit_events
               UNION ALL
               SELECT (SELECT min(e.action) FROM audit_events e WHERE e.action > a.action) FROM a WHERE a.action IS NOT NULL)
           SELECT action AS "action!" FROM a WHERE action IS NOT NULL ORDER BY action"#
    )
    .fetch_all(&mut *conn)
    .await?;
    let learners = sqlx::query_as!(
        Learner,
        r#"SELECT en.id AS enrolment_id, u.name, un.code AS unit FROM enrolments en
           JOIN users u ON u.id = en.learner_id JOIN units un ON un.id = en.unit_id
           WHERE en.centre_id = ANY($1) OR en.id = ANY($2)
           ORDER BY u.name, un.code"#,
        &scope.centres,
        &scope.enrolments
    )
    .fetch_all(conn)
    .await?;
    Ok((people, actions, learners))
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
        r#"SELECT e.seq, e.occurred_at, e.actor_id, u.name AS "actor_name?", e.actor_role, e.action,
                  e.subject_type, e.subject_id, e.enrolment_id, e.details, e.hash
           FROM audit_events e LEFT JOIN users u ON u.id = e.actor_id
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
