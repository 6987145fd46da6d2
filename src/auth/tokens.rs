//! Personal API tokens: shown once, stored only as a SHA-256.

use crate::db::changes::KeptToken;
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

const PREFIX: &str = "epf_";

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token just created: its id and the token itself, which cannot be read back later.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct NewToken {
    pub id: Uuid,
    pub label: String,
    pub token: String,
}

/// Creates a personal API token for `user_id`.
pub async fn create(conn: &mut PgConnection, user_id: Uuid, label: &str) -> anyhow::Result<NewToken> {
    let label = label.trim();
    if label.is_empty() || label.chars().count() > 100 {
        anyhow::bail!("give the token a name of 1 to 100 characters, such as the script that will use it");
    }
    let token = format!("{PREFIX}{}", hex::encode(rand::rng().random::<[u8; 32]>()));
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO api_tokens (id, user_id, token_sha256, label) VALUES ($1, $2, $3, $4)",
        id,
        user_id,
        digest(&token),
        label
    )
    .execute(&mut *conn)
    .await?;
    crate::audit::record(
        conn,
        crate::audit::Event::new(None, "token.created", "user", Some(user_id))
            .details(serde_json::json!({"token_id": id, "label": label})),
    )
    .await?;
    Ok(NewToken { id, label: label.to_string(), token })
}

/// The user a live token belongs to. Its "last used" time (shown to the minute) is written at most
/// once a minute, so a script's run of requests is not a run of writes; in between, this process
/// answers from the token it last checked (src/db/changes.rs).
pub async fn authenticate(state: &crate::AppState, token: &str) -> Result<Option<Uuid>, sqlx::Error> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let digest = digest(token);
    let kept = state
        .changes
        .token(&digest, async {
            let user_id = sqlx::query_scalar!(
                r#"WITH live AS (
                       SELECT id, user_id, last_used_at FROM api_tokens WHERE token_sha256 = $1 AND revoked_at IS NULL
                   ), used AS (
                       UPDATE api_tokens t SET last_used_at = now() FROM live
                       WHERE t.id = live.id AND (live.last_used_at IS NULL OR live.last_used_at < now() - interval '1 minute')
                   )
                   SELECT user_id AS "user_id!" FROM live"#,
                digest
            )
            .fetch_optional(&state.pool)
            .await?;
            Ok::<_, sqlx::Error>(user_id.map(|user_id| KeptToken { user_id, checked_at: std::time::Instant::now() }))
        })
        .await?;
    Ok(kept.map(|token| token.user_id))
}

/// A token as its owner sees it in their list (never the token itself).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: Uuid,
    pub label: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub async fn list(conn: &mut PgConnection, user_id: Uuid) -> Result<Vec<TokenInfo>, sqlx::Error> {
    sqlx::query_as!(
        TokenInfo,
        "SELECT id, label, created_at, last_used_at FROM api_tokens
         WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC",
        user_id
    )
    .fetch_all(conn)
    .await
}

/// Revokes one of the owner's tokens; false if they have no such live token.
pub async fn revoke(conn: &mut PgConnection, user_id: Uuid, token_id: Uuid) -> Result<bool, sqlx::Error> {
    let revoked = sqlx::query!(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
        token_id,
        user_id
    )
    .execute(conn)
    .await?;
    Ok(revoked.rows_affected() == 1)
}
