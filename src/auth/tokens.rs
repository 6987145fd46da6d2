//! Personal API tokens: shown once, stored only as a SHA-256.

use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

const PREFIX: &str = "epf_";

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token for `user_id` and returns it; it cannot be read back later.
pub async fn create(conn: &mut PgConnection, user_id: Uuid, label: &str) -> anyhow::Result<String> {
    let token = format!("{PREFIX}{}", hex::encode(rand::rng().random::<[u8; 32]>()));
    sqlx::query!(
        "INSERT INTO api_tokens (id, user_id, token_sha256, label) VALUES ($1, $2, $3, $4)",
        Uuid::new_v4(),
        user_id,
        digest(&token),
        label
    )
    .execute(conn)
    .await?;
    Ok(token)
}

/// The user a live token belongs to.
pub async fn authenticate(pool: &PgPool, token: &str) -> Result<Option<Uuid>, sqlx::Error> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    sqlx::query_scalar!(
        "UPDATE api_tokens SET last_used_at = now()
         WHERE token_sha256 = $1 AND revoked_at IS NULL
         RETURNING user_id",
        digest(token)
    )
    .fetch_optional(pool)
    .await
}
