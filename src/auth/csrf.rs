//! Cross-site request forgery protection for every state-changing request made with the session
//! cookie: the session holds a random token that forms send as `csrf_token` and scripts as the
//! `X-CSRF-Token` header. Requests authenticated with a Bearer token carry no ambient authority
//! and need none. A multipart upload must send the token as its first part, so that it is
//! checked before any file is read.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use tower_sessions::Session;

use crate::error::AppError;

const KEY: &str = "csrf";
pub const FIELD: &str = "csrf_token";
pub const HEADER: &str = "x-csrf-token";
/// Largest urlencoded form body read to find the token (the decision form is the largest).
const MAX_FORM: usize = 4 * 1024 * 1024;

/// The token a multipart handler must find in the body's first part.
#[derive(Debug, Clone)]
pub struct PendingCheck(pub String);

/// This session's token, created on first use.
pub async fn token(session: &Session) -> Result<String, AppError> {
    if let Some(token) = session.get::<String>(KEY).await.map_err(AppError::from)? {
        return Ok(token);
    }
    renew(session).await
}

/// A fresh token (on sign-in, so a token seen before cannot be replayed).
pub async fn renew(session: &Session) -> Result<String, AppError> {
    let token = hex::encode(rand::rng().random::<[u8; 32]>());
    session.insert(KEY, &token).await.map_err(AppError::from)?;
    Ok(token)
}

pub fn matches(expected: &str, given: &str) -> bool {
    // Constant time for equal lengths: the comparison reveals nothing about the token.
    expected.len() == given.len() && expected.bytes().zip(given.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The refusal for a missing or wrong token.
pub fn rejection() -> AppError {
    AppError::Forbidden(
        "This form has expired or did not come from this site. Go back, reload the page and try again.".into(),
    )
}

fn refused() -> Response {
    rejection().into_response()
}

pub async fn protect(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let bearer = request.headers().contains_key(header::AUTHORIZATION);
    // Signing in through the API starts the session; a JSON body cannot be sent cross-site
    // without a CORS preflight, which this server never grants.
    let api_sign_in = request.uri().path() == "/api/v1/session" && request.method() == Method::POST;
    if safe || bearer || api_sign_in {
        return next.run(request).await;
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return refused();
    };
    let expected = match session.get::<String>(KEY).await {
        Ok(Some(token)) => token,
        // An API request without a session carries no ambient authority to abuse. A page form
        // without one is refused, so nobody can be signed in to someone else's account.
        Ok(None) if request.uri().path().starts_with("/api/") => return next.run(request).await,
        _ => return refused(),
    };
    if let Some(given) = request.headers().get(HEADER).and_then(|v| v.to_str().ok()) {
        return if matches(&expected, given) { next.run(request).await } else { refused() };
    }
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let mut request = request;
        request.extensions_mut().insert(PendingCheck(expected));
        return next.run(request).await;
    }
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let (parts, body) = request.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return AppError::TooLarge("The form is too large".into()).into_response();
        };
        let given = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == FIELD).map(|(_, v)| v.into_owned());
        return match given {
            Some(given) if matches(&expected, &given) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
            _ => refused(),
        };
    }
    refused()
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn tokens_match_only_exactly() {
        assert!(matches("abc123", "abc123"));
        assert!(!matches("abc123", "abc124"));
        assert!(!matches("abc123", "abc12"));
        assert!(!matches("abc123", ""));
    }
}
