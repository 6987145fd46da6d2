//! The subject-access export: for one person at the administrator's centre, everything the
//! centre holds about them as one ZIP, streamed like the other exports. At the top a readable
//! `index.html` and the same as JSON (`subject.json`: account, roles, enrolments, legal holds,
//! API tokens, comments written, notifications, decisions made, witness register and requests;
//! `audit_events.json`: every event where they are the actor or the subject, or about their
//! portfolios); under `portfolios/` each of their enrolments' offline export, built by the same
//! code as the learner's own take-away. The download is audited: who exported whom, when.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sqlx::PgConnection;
use uuid::Uuid;

use super::zip_stream::{self, Entry};
use super::{PortfolioRecord, gather, offline};
use crate::AppState;
use crate::audit::{self, Event, RecordedEvent};
use crate::auth::policy::{self, Access};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult};
use crate::web::route_table::Routes;

/// How many audit events an export carries at most (a person has far fewer).
const AUDIT_EVENTS_LIMIT: i64 = 200_000;

pub fn router() -> Routes {
    Routes::new()
        .get("/admin/users/{id}/subject-access-export", Access::AdminTarget, download)
        .api(Access::AdminTarget, utoipa_axum::routes!(download_api))
}

/// The person's account as the centre holds it.
#[derive(Debug, Serialize)]
struct Account {
    id: Uuid,
    name: String,
    email: String,
    external_ref: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    disabled_at: Option<DateTime<Utc>>,
    anonymised_at: Option<DateTime<Utc>>,
}

/// Everything about the person apart from their portfolios.
#[derive(Debug, Serialize)]
struct Subject {
    account: Account,
    roles: Value,
    enrolments: Value,
    legal_holds: Value,
    api_tokens: Value,
    comments_written: Value,
    notifications: Value,
    decisions_made: Value,
    witness_register: Value,
    witness_requests: Value,
}

fn rows<T: Serialize>(rows: Vec<T>) -> Value {
    serde_json::to_value(rows).unwrap_or(Value::Array(Vec::new()))
}

async fn subject(conn: &mut PgConnection, centre: Uuid, person: Uuid) -> AppResult<Subject> {
    let account = sqlx::query_as!(
        Account,
        "SELECT id, name, email, external_ref, created_at, updated_at, disabled_at, anonymised_at FROM users WHERE id = $1",
        person
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound("person"))?;
    #[derive(Serialize)]
    struct RoleRow {
        centre: String,
        role: String,
        granted_at: DateTime<Utc>,
    }
    let roles = sqlx::query_as!(
        RoleRow,
        "SELECT c.name AS centre, r.role, r.granted_at FROM user_roles r JOIN centres c ON c.id = r.centre_id
         WHERE r.user_id = $1 AND r.centre_id = $2 ORDER BY r.role",
        person,
        centre
    )
    .fetch_all(&mut *conn)
    .await?;
    #[derive(Serialize)]
    struct EnrolmentRow {
        id: Uuid,
        as_role: String,
        unit_code: String,
        unit_title: String,
        enrolled_at: DateTime<Utc>,
    }
    // As a learner, and (staff) the enrolments they assess or quality-assure: ids and units only,
    // since those portfolios are other people's.
    let enrolments = sqlx::query_as!(
        EnrolmentRow,
        r#"SELECT e.id, CASE WHEN e.learner_id = $1 THEN 'learner' WHEN e.assessor_id = $1 THEN 'assessor' ELSE 'iqa' END AS "as_role!",
                  n.code AS unit_code, n.title AS unit_title, e.enrolled_at
           FROM enrolments e JOIN units n ON n.id = e.unit_id
           WHERE e.centre_id = $2 AND (e.learner_id = $1 OR e.assessor_id = $1 OR e.iqa_id = $1)
           ORDER BY e.enrolled_at"#,
        person,
        centre
    )
    .fetch_all(&mut *conn)
    .await?;
    let legal_holds = crate::retention::holds(conn, centre, person).await?;
    #[derive(Serialize)]
    struct TokenRow {
        label: String,
        created_at: DateTime<Utc>,
        last_used_at: Option<DateTime<Utc>>,
        revoked_at: Option<DateTime<Utc>>,
    }
    let api_tokens = sqlx::query_as!(
        TokenRow,
        "SELECT label, created_at, last_used_at, revoked_at FROM api_tokens WHERE user_id = $1 ORDER BY created_at",
        person
    )
    .fetch_all(&mut *conn)
    .await?;
    #[derive(Serialize)]
    struct CommentRow {
        id: Uuid,
        evidence_id: Uuid,
        author_role: String,
        body: String,
        written_at: DateTime<Utc>,
    }
    let comments = sqlx::query_as!(
        CommentRow,
        "SELECT c.id, c.evidence_id, c.author_role, c.body, c.written_at
         FROM evidence_comments c JOIN evidence_items i ON i.id = c.evidence_id JOIN enrolments e ON e.id = i.enrolment_id
         WHERE c.author_id = $1 AND e.centre_id = $2 ORDER BY c.seq",
        person,
        centre
    )
    .fetch_all(&mut *conn)
    .await?;
    #[derive(Serialize)]
    struct NotificationRow {
        kind: String,
        subject: String,
        link: String,
        created_at: DateTime<Utc>,
        read_at: Option<DateTime<Utc>>,
        emailed_at: Option<DateTime<Utc>>,
    }
    let notifications = sqlx::query_as!(
        NotificationRow,
        "SELECT kind, subject, link, created_at, read_at, emailed_at FROM notifications
         WHERE recipient_id = $1 ORDER BY created_at",
        person
    )
    .fetch_all(&mut *conn)
    .await?;
    #[derive(Serialize)]
    struct DecisionRow {
        id: Uuid,
        evidence_id: Uuid,
        criterion: String,
        outcome: String,
        feedback: String,
        decided_at: DateTime<Utc>,
        supersedes: Option<Uuid>,
    }
    let decisions = sqlx::query_as!(
        DecisionRow,
        "SELECT d.id, d.evidence_id, c.number AS criterion, d.outcome, d.feedback, d.decided_at, d.supersedes
         FROM decisions d JOIN criteria c ON c.id = d.criterion_id JOIN evidence_items i ON i.id = d.evidence_id
              JOIN enrolments e ON e.id = i.enrolment_id
         WHERE d.assessor_id = $1 AND e.centre_id = $2 ORDER BY d.seq",
        person,
        centre
    )
    .fetch_all(&mut *conn)
    .await?;
    #[derive(Serialize)]
    struct WitnessRow {
        id: Uuid,
        name: String,
        job_role: String,
        relationship: String,
        email: String,
        phone: String,
        is_expert: bool,
        competence: String,
        added_at: DateTime<Utc>,
    }
    let witnesses = sqlx::query_as!(
        WitnessRow,
        "SELECT id, name, job_role, relationship, email, phone, is_expert, competence, added_at
         FROM witnesses WHERE learner_id = $1 ORDER BY added_at",
        person
    )
    .fetch_all(&mut *conn)
    .await?;
    #[derive(Serialize)]
    struct RequestRow {
        id: Uuid,
        enrolment_id: Uuid,
        witness_id: Uuid,
        message: String,
        requested_at: DateTime<Utc>,
        expires_at: DateTime<Utc>,
        used_at: Option<DateTime<Utc>>,
        statement_evidence_id: Option<Uuid>,
    }
    let requests = sqlx::query_as!(
        RequestRow,
        "SELECT r.id, r.enrolment_id, r.witness_id, r.message, r.requested_at, r.expires_at, r.used_at,
                r.evidence_id AS statement_evidence_id
         FROM witness_requests r JOIN enrolments e ON e.id = r.enrolment_id
         WHERE e.learner_id = $1 AND e.centre_id = $2 ORDER BY r.requested_at",
        person,
        centre
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Subject {
        account,
        roles: rows(roles),
        enrolments: rows(enrolments),
        legal_holds: rows(legal_holds),
        api_tokens: rows(api_tokens),
        comments_written: rows(comments),
        notifications: rows(notifications),
        decisions_made: rows(decisions),
        witness_register: rows(witnesses),
        witness_requests: rows(requests),
    })
}

/// Every event at the centre where the person is the actor or the subject, or about one of
/// their enrolments as a learner, oldest first.
async fn events(conn: &mut PgConnection, centre: Uuid, person: Uuid) -> AppResult<Vec<RecordedEvent>> {
    Ok(sqlx::query_as!(
        RecordedEvent,
        r#"SELECT a.seq, a.occurred_at, a.actor_id, u.name AS "actor_name?", a.actor_role, a.action,
                  a.subject_type, a.subject_id, a.enrolment_id, a.details, a.hash
           FROM audit_events a LEFT JOIN users u ON u.id = a.actor_id
           WHERE (a.centre_id = $2 OR a.centre_id IS NULL)
             AND (a.actor_id = $1 OR a.subject_id = $1
                  OR a.enrolment_id IN (SELECT id FROM enrolments WHERE learner_id = $1 AND centre_id = $2))
           ORDER BY a.seq LIMIT $3"#,
        person,
        centre,
        AUDIT_EVENTS_LIMIT
    )
    .fetch_all(conn)
    .await?)
}

/// One section of the readable index: a heading and its records as pretty JSON.
struct Section {
    title: &'static str,
    count: usize,
    json: String,
}

#[derive(Template)]
#[template(path = "retention/subject_access.html")]
struct SubjectIndex<'a> {
    name: &'a str,
    generated_on: String,
    generated_by: &'a str,
    portfolios: Vec<(String, String)>,
    sections: Vec<Section>,
    events: &'a [RecordedEvent],
}

/// The archive's entries for `person`, gathered for `actor` (an administrator of their centre).
async fn entries(state: &AppState, actor: &Actor, person: Uuid) -> AppResult<(Vec<Entry>, String, Value)> {
    let mut tx = state.begin(actor).await?;
    let (centre, enrolments) = policy::subject_access(&mut tx, actor, person).await?;
    let subject = subject(&mut tx, centre, person).await?;
    let events = events(&mut tx, centre, person).await?;
    let mut records: Vec<PortfolioRecord> = Vec::new();
    for access in &enrolments {
        records.push(gather(&mut tx, access, &actor.name).await?);
    }
    tx.commit().await?;

    let generated_at = Utc::now();
    let subject_json = serde_json::to_value(&subject).map_err(|e| AppError::Unexpected(e.into()))?;
    let events_json = serde_json::to_vec_pretty(&events).map_err(|e| AppError::Unexpected(e.into()))?;
    let mut entries = Vec::new();
    let mut portfolios = Vec::new();
    if !records.is_empty() {
        let title = format!("Portfolios of {}", subject.account.name);
        let bundle = offline::Bundle {
            title: &title,
            format: "eportfolio learner export 1",
            about: json!({"learner": subject.account.name}),
        };
        let (nested, _) = offline::bundle_entries(&bundle, &records)?;
        for record in &records {
            let folder = format!(
                "portfolios/{}-{}/",
                record.summary.unit_code.to_lowercase(),
                &record.summary.id.simple().to_string()[..8]
            );
            portfolios.push((
                format!("{folder}index.html"),
                format!("{}: {}", record.summary.unit_code, record.summary.unit_title),
            ));
        }
        entries.extend(nested.into_iter().map(|entry| match entry {
            Entry::Bytes { path, bytes } => Entry::Bytes { path: format!("portfolios/{path}"), bytes },
            Entry::Stored { path, sha256, size } => Entry::Stored { path: format!("portfolios/{path}"), sha256, size },
        }));
    }
    let section = |title: &'static str, value: &Value| Section {
        title,
        count: value.as_array().map_or(1, Vec::len),
        json: serde_json::to_string_pretty(value).unwrap_or_default(),
    };
    let sections = vec![
        section("Account", &subject_json["account"]),
        section("Roles at this centre", &subject_json["roles"]),
        section("Enrolments", &subject_json["enrolments"]),
        section("Legal holds", &subject_json["legal_holds"]),
        section("API tokens", &subject_json["api_tokens"]),
        section("Comments written", &subject_json["comments_written"]),
        section("Notifications", &subject_json["notifications"]),
        section("Assessment decisions made", &subject_json["decisions_made"]),
        section("Witness register", &subject_json["witness_register"]),
        section("Witness requests", &subject_json["witness_requests"]),
    ];
    let index = SubjectIndex {
        name: &subject.account.name,
        generated_on: generated_at.format("%d %B %Y %H:%M UTC").to_string(),
        generated_by: &actor.name,
        portfolios,
        sections,
        events: &events,
    }
    .render()
    .map_err(|e| AppError::Unexpected(e.into()))?;
    let mut top = vec![
        Entry::Bytes { path: "index.html".into(), bytes: index.into_bytes() },
        Entry::Bytes {
            path: "subject.json".into(),
            bytes: serde_json::to_vec_pretty(&subject_json).map_err(|e| AppError::Unexpected(e.into()))?,
        },
        Entry::Bytes { path: "audit_events.json".into(), bytes: events_json },
    ];
    top.extend(entries);
    let files = top.iter().filter(|e| matches!(e, Entry::Stored { .. })).count();
    let summary = json!({
        "enrolments": records.len(), "audit_events": events.len(), "files": files,
        "generated_at": generated_at,
    });
    let stem = format!("subject-access-{}", &person.simple().to_string()[..8]);
    // Who exported whom, when: in a transaction of its own, like every export download.
    let mut audit_tx = state.pool.begin().await?;
    audit::record(
        &mut audit_tx,
        Event::new(Some(actor), "subject_access.exported", "user", Some(person))
            .as_role(Role::Admin)
            .centre(centre)
            .details(summary.clone()),
    )
    .await?;
    audit_tx.commit().await?;
    Ok((top, stem, summary))
}

async fn download(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    let (entries, stem, _) = entries(&state, &actor, id).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{stem}.zip\"")),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        zip_stream::body(state.store.clone(), entries, Utc::now()),
    )
        .into_response())
}

/// Everything the centre holds about one person, as a ZIP: `index.html`, `subject.json`,
/// `audit_events.json` and their portfolios' offline exports under `portfolios/`. Audited.
#[utoipa::path(
    get,
    path = "/api/v1/users/{id}/subject-access-export",
    params(("id" = Uuid, Path, description = "The person, at the administrator's centre")),
    responses((status = 200, description = "The ZIP, written while it downloads", content_type = "application/zip", body = Vec<u8>))
)]
async fn download_api(state: State<AppState>, actor: Actor, id: Path<Uuid>) -> AppResult<Response> {
    download(state, actor, id).await
}
