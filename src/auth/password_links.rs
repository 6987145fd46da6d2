//! One-time password-set links issued by an administrator (new accounts, forgotten passwords):
//! random, single use, expiring, and stored only as a SHA-256.

use chrono::{Duration, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::Actor;
use crate::audit::{self, Event};
use crate::error::{AppError, AppResult, FieldError};

/// How long a link works.
pub const VALID_FOR_DAYS: i64 = 7;

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The path a link's token is used at.
pub fn path(token: &str) -> String {
    format!("/password/set/{token}")
}

/// Issues a link for `user_id` and returns its token (shown once). Earlier unused links for the
/// same person stop working.
pub async fn issue(conn: &mut PgConnection, by: Option<&Actor>, user_id: Uuid) -> Result<String, sqlx::Error> {
    let token = hex::encode(rand::rng().random::<[u8; 32]>());
    sqlx::query!("UPDATE password_links SET used_at = now() WHERE user_id = $1 AND used_at IS NULL", user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO password_links (token_sha256, user_id, created_by, expires_at) VALUES ($1, $2, $3, $4)",
        digest(&token),
        user_id,
        by.map(|a| a.id),
        Utc::now() + Duration::days(VALID_FOR_DAYS)
    )
    .execute(&mut *conn)
    .await?;
    audit::record(conn, Event::new(by, "user.password_link_issued", "user", Some(user_id))).await?;
    Ok(token)
}

/// The person a live link is for (name and email), or why it cannot be used.
pub async fn holder(conn: &mut PgConnection, token: &str) -> AppResult<(Uuid, String, String)> {
    let row = sqlx::query!(
        r#"SELECT l.user_id, l.expires_at, l.used_at, u.name, u.email FROM password_links l
           JOIN users u ON u.id = l.user_id WHERE l.token_sha256 = $1 AND u.disabled_at IS NULL"#,
        digest(token)
    )
    .fetch_optional(conn)
    .await?
    .ok_or(AppError::NotFound("password link"))?;
    if row.used_at.is_some() {
        return Err(AppError::Conflict(
            "This link has already been used. Ask your centre for a new one.".into(),
            vec![],
        ));
    }
    if row.expires_at < Utc::now() {
        return Err(AppError::Conflict("This link has expired. Ask your centre for a new one.".into(), vec![]));
    }
    Ok((row.user_id, row.name, row.email))
}

/// Sets the password through a link, which then stops working; every session of the person ends.
pub async fn redeem(conn: &mut PgConnection, token: &str, password: &str) -> AppResult<Uuid> {
    let (user_id, name, email) = holder(conn, token).await?;
    super::password::check_new(password, &[&name, &email])
        .map_err(|m| AppError::Invalid(vec![FieldError::new("password", m)]))?;
    let used = sqlx::query!(
        "UPDATE password_links SET used_at = now() WHERE token_sha256 = $1 AND used_at IS NULL",
        digest(token)
    )
    .execute(&mut *conn)
    .await?;
    if used.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "This link has already been used. Ask your centre for a new one.".into(),
            vec![],
        ));
    }
    crate::accounts::store_password(conn, user_id, password, None).await?;
    audit::record(conn, Event::new(None, "user.password_set_by_link", "user", Some(user_id))).await?;
    Ok(user_id)
}
