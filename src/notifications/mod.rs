//! In-app notifications, and the emails that follow them. A notification is written in the
//! transaction of the event that causes it, so it exists exactly when the event does; its email
//! is sent later by `mailer`, never inside a person's request, so a slow or broken mail server
//! cannot make their action fail.

mod mailer;
mod routes;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::auth::Actor;
use crate::auth::policy::{EnrolmentAccess, Relation};
use crate::error::AppResult;
pub use mailer::spawn_mailer;
pub use routes::router;

/// The channel a server's mailer listens on; `notify` signals it, delivered on commit.
const MAIL_CHANNEL: &str = "eportfolio_mail";

/// What happened, for the list's wording and for API clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    DecisionsRecorded,
    CommentAdded,
    EvidenceSubmitted,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::DecisionsRecorded => "decisions_recorded",
            Kind::CommentAdded => "comment_added",
            Kind::EvidenceSubmitted => "evidence_submitted",
        }
    }

    fn parse(text: &str) -> Kind {
        match text {
            "decisions_recorded" => Kind::DecisionsRecorded,
            "comment_added" => Kind::CommentAdded,
            _ => Kind::EvidenceSubmitted,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::DecisionsRecorded => "Assessment",
            Kind::CommentAdded => "Message",
            Kind::EvidenceSubmitted => "Evidence",
        }
    }
}

/// One notification as its recipient sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: Uuid,
    pub kind: Kind,
    pub subject: String,
    /// A path in the application, e.g. `/evidence/{id}`.
    pub link: String,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

impl Notification {
    pub fn is_unread(&self) -> bool {
        self.read_at.is_none()
    }
    pub fn kind_label(&self) -> &'static str {
        self.kind.label()
    }
    pub fn when(&self) -> String {
        self.created_at.format("%d %b %Y %H:%M").to_string()
    }
}

/// Tells `recipient` about an event, in the caller's transaction. The email, when SMTP is
/// configured, goes after the commit.
pub async fn notify(
    conn: &mut PgConnection,
    recipient: Uuid,
    kind: Kind,
    subject: &str,
    link: &str,
) -> AppResult<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO notifications (id, recipient_id, kind, subject, link) VALUES ($1, $2, $3, $4, $5)",
        id,
        recipient,
        kind.as_str(),
        subject,
        link
    )
    .execute(&mut *conn)
    .await?;
    // Delivered to listening mailers only if and when the transaction commits.
    sqlx::query!("SELECT pg_notify($1, '')", MAIL_CHANNEL).execute(&mut *conn).await?;
    Ok(id)
}

/// The learner hears once per submit of decisions on their item, not once per criterion. Only
/// decisions recorded in this transaction count (`now()` is the transaction's start, which is
/// what a new decision's `decided_at` holds): a repeated submit that records nothing is silent.
pub async fn decisions_recorded(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    evidence_id: Uuid,
) -> AppResult<()> {
    let new = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE d.outcome = 'met') AS "met!",
                  count(*) FILTER (WHERE d.outcome = 'not_yet') AS "not_yet!",
                  (SELECT title FROM evidence_items WHERE id = $1) AS "title!"
           FROM decisions d WHERE d.evidence_id = $1 AND d.decided_at = now()"#,
        evidence_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if new.met + new.not_yet == 0 || access.learner_id == actor.id {
        return Ok(());
    }
    let mut outcome = Vec::new();
    if new.met > 0 {
        outcome.push(format!("{} met", new.met));
    }
    if new.not_yet > 0 {
        outcome.push(format!("{} not yet met", new.not_yet));
    }
    let subject = format!("Your evidence {} was assessed by {}: {}", new.title, actor.name, outcome.join(", "));
    notify(conn, access.learner_id, Kind::DecisionsRecorded, &subject, &format!("/evidence/{evidence_id}")).await?;
    Ok(())
}

/// Evidence was submitted: the learner's assessor hears of the learner's evidence, and the
/// learner of an assessor's observation or discussion record about them.
pub async fn evidence_submitted(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    evidence_id: Uuid,
    title: &str,
) -> AppResult<()> {
    let (recipient, subject) = match access.relation {
        Relation::Learner => (access.assessor_id, format!("{} submitted evidence for assessment: {title}", actor.name)),
        Relation::Assessor => {
            (access.learner_id, format!("{} recorded evidence in your portfolio: {title}", actor.name))
        }
        Relation::Iqa | Relation::Verifier => return Ok(()),
    };
    if recipient != actor.id {
        notify(conn, recipient, Kind::EvidenceSubmitted, &subject, &format!("/evidence/{evidence_id}")).await?;
    }
    Ok(())
}

/// How many unread notifications a person has: one indexed count, for the header on every page.
pub async fn unread_count(pool: &PgPool, recipient: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "count!" FROM notifications WHERE recipient_id = $1 AND read_at IS NULL"#,
        recipient
    )
    .fetch_one(pool)
    .await
}

/// A person's notifications, newest first (the latest 200).
pub async fn list(conn: &mut PgConnection, recipient: Uuid) -> AppResult<Vec<Notification>> {
    let rows = sqlx::query!(
        "SELECT id, kind, subject, link, created_at, read_at FROM notifications
         WHERE recipient_id = $1 ORDER BY created_at DESC, id LIMIT 200",
        recipient
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Notification {
            id: r.id,
            kind: Kind::parse(&r.kind),
            subject: r.subject,
            link: r.link,
            created_at: r.created_at,
            read_at: r.read_at,
        })
        .collect())
}

/// One page of the person's notifications, newest first (keyset on time and id).
pub async fn page(
    conn: &mut PgConnection,
    recipient: Uuid,
    request: &crate::web::pagination::PageRequest,
) -> AppResult<crate::web::pagination::Page<Notification>> {
    let (after_at, after_id) = request.after.map(|a| (a.at, a.id)).unzip();
    let rows = sqlx::query!(
        "SELECT id, kind, subject, link, created_at, read_at FROM notifications
         WHERE recipient_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3))
         ORDER BY created_at DESC, id DESC LIMIT $4",
        recipient,
        after_at,
        after_id,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    let items = rows
        .into_iter()
        .map(|r| Notification {
            id: r.id,
            kind: Kind::parse(&r.kind),
            subject: r.subject,
            link: r.link,
            created_at: r.created_at,
            read_at: r.read_at,
        })
        .collect();
    Ok(request.page(items, |n| crate::web::pagination::After { at: n.created_at, id: n.id }))
}

/// Marks the person's notifications read: those named, or all of them. Returns how many changed.
/// Reading is the person's own state, not a record of the portfolio: it is not audited.
pub async fn mark_read(conn: &mut PgConnection, recipient: Uuid, only: Option<&[Uuid]>) -> AppResult<u64> {
    // Nothing to change writes nothing (a verifier's transaction is read-only, and they are
    // never notified).
    let pending = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM notifications WHERE recipient_id = $1 AND read_at IS NULL
                          AND ($2::uuid[] IS NULL OR id = ANY($2))) AS "pending!""#,
        recipient,
        only as Option<&[Uuid]>
    )
    .fetch_one(&mut *conn)
    .await?;
    if !pending {
        return Ok(0);
    }
    let changed = sqlx::query!(
        "UPDATE notifications SET read_at = now()
         WHERE recipient_id = $1 AND read_at IS NULL AND ($2::uuid[] IS NULL OR id = ANY($2))",
        recipient,
        only as Option<&[Uuid]>
    )
    .execute(conn)
    .await?;
    Ok(changed.rows_affected())
}
