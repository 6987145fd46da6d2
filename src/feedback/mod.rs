//! The conversation on an evidence item: the assessor's overall feedback, the learner's replies
//! and the answers to them, beside the per-criterion decisions. Append-only: a message is never
//! edited or removed. Whoever can see the item reads it; the learner, their assessor and their
//! IQA write in it; an external verifier only reads.

mod routes;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::auth::policy::{EnrolmentAccess, Relation};
use crate::error::{AppError, AppResult, FieldError};
use crate::evidence::EvidenceItem;
use crate::notifications::{self, Kind};
pub use routes::router;

/// The longest message, in characters.
pub const MAX_CHARS: usize = 5_000;

/// A message's text: not blank, at most `MAX_CHARS` characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: &str) -> Result<MessageText, FieldError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(FieldError::new("body", "Write your message before sending it"));
        }
        let length = text.chars().count();
        if length > MAX_CHARS {
            return Err(FieldError::new(
                "body",
                format!(
                    "Your message must be {MAX_CHARS} characters or fewer (it has {length}); split it or shorten it"
                ),
            ));
        }
        Ok(MessageText(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One message in the conversation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Comment {
    pub id: Uuid,
    pub author_id: Uuid,
    pub author_name: String,
    /// `learner`, `assessor` or `iqa`: the author's relation to the learner when writing.
    pub author_role: String,
    pub body: String,
    pub written_at: DateTime<Utc>,
}

impl Comment {
    pub fn role_label(&self) -> &'static str {
        match self.author_role.as_str() {
            "learner" => "Learner",
            "assessor" => "Assessor",
            _ => "Internal quality assurer",
        }
    }

    pub fn when(&self) -> String {
        self.written_at.format("%d %b %Y %H:%M").to_string()
    }
}

/// What the evidence page shows: the messages in order, whether the viewer may write, and the
/// text they typed when a message was refused.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    pub evidence_id: Uuid,
    pub comments: Vec<Comment>,
    pub can_write: bool,
    /// The viewer is the learner (the wording of the form differs).
    pub viewer_is_learner: bool,
    pub draft: String,
    /// Why the viewer's message was refused.
    pub error: Option<String>,
}

impl Conversation {
    /// Shows the form again with what was typed and why it was refused.
    pub fn refused(&mut self, draft: String, errors: &[FieldError]) {
        self.draft = draft;
        self.error = errors.iter().find(|e| e.field == "body").map(|e| e.message.clone());
    }

    /// The form's label: the first message from an assessor is their overall feedback.
    pub fn label(&self) -> &'static str {
        if self.comments.is_empty() && !self.viewer_is_learner { "Overall feedback" } else { "Your message" }
    }
}

/// Who may write: the learner and their assessor and IQA, once the item is submitted.
pub fn may_write(relation: Relation) -> bool {
    matches!(relation, Relation::Learner | Relation::Assessor | Relation::Iqa)
}

/// The item's messages, oldest first. The caller has checked that the viewer may see the item.
pub async fn comments(conn: &mut PgConnection, evidence_id: Uuid) -> AppResult<Vec<Comment>> {
    Ok(sqlx::query_as!(
        Comment,
        "SELECT c.id, c.author_id, u.name AS author_name, c.author_role, c.body, c.written_at
         FROM evidence_comments c JOIN users u ON u.id = c.author_id
         WHERE c.evidence_id = $1 ORDER BY c.seq",
        evidence_id
    )
    .fetch_all(conn)
    .await?)
}

/// One page of an item's conversation, oldest first (keyset on the comment's sequence number,
/// indexed by `evidence_comments_item`).
pub async fn comments_page(
    conn: &mut PgConnection,
    evidence_id: Uuid,
    request: &crate::web::pagination::PageRequest,
) -> AppResult<crate::web::pagination::Page<Comment>> {
    let after = request.after_number()?;
    let rows = sqlx::query!(
        "SELECT c.seq, c.id, c.author_id, u.name AS author_name, c.author_role, c.body, c.written_at
         FROM evidence_comments c JOIN users u ON u.id = c.author_id
         WHERE c.evidence_id = $1 AND ($2::bigint IS NULL OR c.seq > $2)
         ORDER BY c.seq LIMIT $3",
        evidence_id,
        after,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(
        rows.into_iter()
            .map(|r| {
                let position = crate::web::pagination::Position::number(r.seq, r.id);
                let comment = Comment {
                    id: r.id,
                    author_id: r.author_id,
                    author_name: r.author_name,
                    author_role: r.author_role,
                    body: r.body,
                    written_at: r.written_at,
                };
                (position, comment)
            })
            .collect(),
    ))
}

/// Whether the caller may write in the item's conversation (as the evidence page shows it).
pub fn may_comment(access: &EnrolmentAccess, item: &EvidenceItem) -> bool {
    may_write(access.relation) && !item.is_draft()
}

/// The conversation for the evidence page, as `relation` sees it: the item's `comments`.
pub fn conversation(relation: Relation, item: &EvidenceItem, comments: Vec<Comment>) -> Conversation {
    Conversation {
        evidence_id: item.id,
        comments,
        can_write: may_write(relation) && !item.is_draft(),
        viewer_is_learner: relation == Relation::Learner,
        draft: String::new(),
        error: None,
    }
}

/// Adds a message to the item's conversation, with its audit event and notifications, in the
/// caller's transaction. `access` must come from `policy::evidence(.., Action::Comment, ..)`.
pub async fn add_comment(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    evidence_id: Uuid,
    text: &MessageText,
) -> AppResult<Comment> {
    let item = sqlx::query!("SELECT status, title FROM evidence_items WHERE id = $1", evidence_id)
        .fetch_one(&mut *conn)
        .await?;
    if item.status == "draft" {
        // A draft is the learner's alone: there is nobody to talk to about it yet.
        return Err(AppError::Conflict("Submit this evidence before writing about it".into(), vec![]));
    }
    let role = match access.relation {
        Relation::Learner => "learner",
        Relation::Assessor => "assessor",
        Relation::Iqa => "iqa",
        Relation::Verifier => {
            return Err(AppError::Forbidden("External verifiers have read-only access to portfolios".into()));
        }
    };
    let id = Uuid::new_v4();
    let written_at = sqlx::query_scalar!(
        "INSERT INTO evidence_comments (id, evidence_id, author_id, author_role, body)
         VALUES ($1, $2, $3, $4, $5) RETURNING written_at",
        id,
        evidence_id,
        actor.id,
        role,
        text.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "comment.added", "evidence", Some(evidence_id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({"comment_id": id, "body": text.as_str()})),
    )
    .await?;
    // The learner and their assessor hear of every message; their IQA once they have taken part.
    let iqa_took_part = match access.iqa_id {
        Some(iqa) => sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM evidence_comments WHERE evidence_id = $1 AND author_id = $2) AS "took_part!""#,
            evidence_id,
            iqa
        )
        .fetch_one(&mut *conn)
        .await?
        .then_some(iqa),
        None => None,
    };
    let mut recipients = vec![access.learner_id, access.assessor_id];
    recipients.extend(iqa_took_part);
    recipients.retain(|r| *r != actor.id);
    recipients.dedup();
    let subject = format!("New message from {} about {}", actor.name, item.title);
    for recipient in recipients {
        notifications::notify(
            conn,
            recipient,
            Kind::CommentAdded,
            &subject,
            &format!("/evidence/{evidence_id}#comment-{id}"),
        )
        .await?;
    }
    Ok(Comment {
        id,
        author_id: actor.id,
        author_name: actor.name.clone(),
        author_role: role.to_string(),
        body: text.as_str().to_string(),
        written_at,
    })
}
