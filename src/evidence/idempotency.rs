//! Idempotency keys on evidence creation, after the IETF draft "The Idempotency-Key HTTP Header
//! Field": a client that lost the answer to an upload sends it again with the same key and gets
//! the first answer back (marked `Idempotent-Replayed: true`) instead of a second item.
//!
//! A key belongs to the person who sent it and lasts 24 hours. While a request with a key is in
//! flight it holds a transaction-scoped advisory lock on the key, so a second request with the
//! same key is answered 409 at once; the key's row (the request's fingerprint and the answer) is
//! written in that same transaction, with the evidence, so a crash leaves neither and a retry
//! after one starts afresh. The fingerprint covers the method, the path and the parsed request
//! (every field, each file's name, size and SHA-256 computed while it streamed), not the raw
//! multipart bytes, whose boundary a client library chooses anew on every retry.

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::submission::Submission;
use crate::AppState;
use crate::auth::Actor;
use crate::error::{AppError, AppResult, FieldError};

/// The request header carrying the key.
pub const HEADER: &str = "idempotency-key";
/// The response header marking an answer as a replay of the first one.
pub const REPLAYED: &str = "idempotent-replayed";
/// The longest key accepted, in bytes.
pub const MAX_KEY_LENGTH: usize = 255;

/// A key as the client sent it: 1 to 255 printable ASCII characters. The draft defines the
/// header as a Structured Field string (`"…"`); a bare token is taken as well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// The request's key, if it sent one; a refusal naming the problem if it is not usable.
    pub fn from_headers(headers: &HeaderMap) -> AppResult<Option<Key>> {
        let mut values = headers.get_all(HEADER).iter();
        let Some(value) = values.next() else { return Ok(None) };
        if values.next().is_some() {
            return Err(AppError::BadRequest("Send one Idempotency-Key header, not several".into()));
        }
        let text = value
            .to_str()
            .map_err(|_| AppError::BadRequest("The Idempotency-Key header must be printable ASCII text".into()))?;
        Key::parse(text).map(Some)
    }

    pub fn parse(text: &str) -> AppResult<Key> {
        let text = text.trim();
        let key = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
        if key.is_empty() {
            return Err(AppError::BadRequest(
                "The Idempotency-Key header is empty: send a value unique to this request, such as a UUID".into(),
            ));
        }
        if key.len() > MAX_KEY_LENGTH {
            return Err(AppError::BadRequest(format!(
                "The Idempotency-Key header is {} characters long; at most {MAX_KEY_LENGTH} are accepted",
                key.len()
            )));
        }
        if !key.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(AppError::BadRequest("The Idempotency-Key header must be printable ASCII text".into()));
        }
        Ok(Key(key.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The first answer given for a key.
struct Stored {
    fingerprint: String,
    evidence_id: Uuid,
    status: i16,
    body: String,
    location: Option<String>,
}

/// A key held for the length of one request: the transaction the evidence is created in, the
/// lock on the key, and what the key answered before (if it did).
pub struct Claim {
    tx: Transaction<'static, Postgres>,
    user_id: Uuid,
    key: Key,
    method: &'static str,
    path: String,
    fingerprint: Option<String>,
    stored: Option<Stored>,
}

impl Claim {
    /// Claims the request's key, if it sent one: 409 while another request with the key is in
    /// flight. `path` is the request's path, part of the fingerprint.
    pub async fn from_request(
        state: &AppState,
        actor: &Actor,
        headers: &HeaderMap,
        method: &'static str,
        path: String,
    ) -> AppResult<Option<Claim>> {
        let Some(key) = Key::from_headers(headers)? else { return Ok(None) };
        let mut tx = state.begin(actor).await?;
        let lock_name = format!("idempotency:{}:{}", actor.id, key.as_str());
        let locked =
            sqlx::query_scalar!(r#"SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0)) AS "locked!""#, lock_name)
                .fetch_one(&mut *tx)
                .await?;
        if !locked {
            return Err(AppError::Conflict(
                "A request with this Idempotency-Key is still being processed: wait for its answer, then retry".into(),
                vec![],
            ));
        }
        let stored = sqlx::query!(
            "SELECT fingerprint, evidence_id, status, body, location FROM idempotency_keys
             WHERE user_id = $1 AND key = $2 AND expires_at > now()",
            actor.id,
            key.as_str()
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| Stored {
            fingerprint: row.fingerprint,
            evidence_id: row.evidence_id,
            status: row.status,
            body: row.body,
            location: row.location,
        });
        Ok(Some(Claim { tx, user_id: actor.id, key, method, path, fingerprint: None, stored }))
    }

    /// Compares the received request with the key's first one: the evidence it created if it
    /// is the same request (to be answered again, not created again), `None` if the key is new,
    /// 422 if the key was used for a different request.
    pub fn check(&mut self, submission: &Submission) -> AppResult<Option<Uuid>> {
        let fingerprint = fingerprint(self.method, &self.path, submission);
        let answer = match &self.stored {
            None => None,
            Some(stored) if stored.fingerprint == fingerprint => Some(stored.evidence_id),
            Some(_) => {
                return Err(AppError::Invalid(vec![FieldError::new(
                    "Idempotency-Key",
                    "This Idempotency-Key was already used for a different request: use a new key for a new item",
                )]));
            }
        };
        self.fingerprint = Some(fingerprint);
        Ok(answer)
    }

    /// The transaction to create the evidence in.
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// The answer: the stored one again for a repeat; otherwise 201 with the item created in
    /// this claim's transaction, stored under the key and committed with it.
    pub async fn respond(mut self, evidence_id: Uuid) -> AppResult<Response> {
        if let Some(stored) = self.stored.take() {
            let status = StatusCode::from_u16(stored.status as u16).unwrap_or(StatusCode::CREATED);
            return Ok(answer(status, stored.body, stored.location.as_deref(), true));
        }
        let fingerprint = self.fingerprint.take().ok_or_else(|| {
            AppError::Unexpected(anyhow::anyhow!("an idempotent request was answered before it was checked"))
        })?;
        let item = super::load(&mut self.tx, evidence_id).await?;
        let body = serde_json::to_string(&item).map_err(|e| AppError::Unexpected(e.into()))?;
        let location = format!("/api/v1/evidence/{evidence_id}");
        // Expired keys go when a new one is written: no sweeper is needed to keep the table small.
        sqlx::query!("DELETE FROM idempotency_keys WHERE expires_at <= now()").execute(&mut *self.tx).await?;
        sqlx::query!(
            "INSERT INTO idempotency_keys (user_id, key, fingerprint, method, path, status, body, location, evidence_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            self.user_id,
            self.key.as_str(),
            fingerprint,
            self.method,
            self.path,
            StatusCode::CREATED.as_u16() as i16,
            body,
            location,
            evidence_id
        )
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(answer(StatusCode::CREATED, body, Some(&location), false))
    }
}

fn answer(status: StatusCode, body: String, location: Option<&str>, replayed: bool) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(location) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(HeaderName::from_static(REPLAYED), HeaderValue::from_static("true"));
    }
    response
}

/// SHA-256 over the method, the path, every field received and each file's name, size and
/// SHA-256 (computed while the file streamed to the store).
fn fingerprint(method: &str, path: &str, submission: &Submission) -> String {
    let files: Vec<serde_json::Value> = submission
        .files
        .iter()
        .map(|f| serde_json::json!({"name": f.name, "size": f.size, "sha256": f.sha256}))
        .collect();
    let request = serde_json::json!({"method": method, "path": path, "fields": submission.raw, "files": files});
    hex::encode(Sha256::digest(request.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::Key;

    #[test]
    fn keys_are_one_to_255_printable_characters() {
        assert_eq!(Key::parse("\"8e03978e-40d5-43e8-bc93-6894a57f9324\"").unwrap().as_str().len(), 36);
        assert_eq!(Key::parse("upload-17").unwrap().as_str(), "upload-17");
        assert!(Key::parse("").unwrap_err().to_string().contains("empty"));
        assert!(Key::parse("\"\"").unwrap_err().to_string().contains("empty"));
        assert!(Key::parse(&"k".repeat(256)).unwrap_err().to_string().contains("256 characters"));
        assert!(Key::parse(&"k".repeat(255)).is_ok());
    }
}
