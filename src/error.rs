//! One error type for every handler. It renders as RFC 9457 problem details; on the HTML side
//! `web::html_errors` turns the same error into a page.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// A problem with one input field, shown next to that field and in the error summary.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError { field: field.into(), message: message.into() }
    }

    /// The message for `field` among `errors`, for showing beside that field.
    pub fn message_for<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
        errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("you need to sign in")]
    Unauthenticated,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    BadCredentials(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("the request has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String, Vec<String>),
    /// A link that worked once and no longer does (used or expired).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    TooLarge(String),
    /// The request (its body) stopped arriving, or came too slowly; nothing of it was kept.
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    UnsupportedType(String),
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// The file store (folder or S3) did not answer or refused; nothing was saved.
    #[error("the file store is temporarily unavailable")]
    StoreUnavailable,
    /// The disk holding uploads is full (ENOSPC or a quota); nothing was saved.
    #[error("there is no room to store the file")]
    StorageFull,
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials(_) => StatusCode::UNAUTHORIZED,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Conflict(..) => StatusCode::CONFLICT,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            AppError::UnsupportedType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::Unavailable | AppError::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            AppError::StorageFull => StatusCode::INSUFFICIENT_STORAGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => AppError::Unavailable,
            other => AppError::Unexpected(other.into()),
        }
    }
}

impl From<tower_sessions::session::Error> for AppError {
    fn from(error: tower_sessions::session::Error) -> Self {
        match &error {
            tower_sessions::session::Error::Store(tower_sessions::session_store::Error::Backend(message))
                if message.starts_with(crate::auth::session_store::UNREACHABLE) =>
            {
                AppError::Unavailable
            }
            _ => AppError::Unexpected(error.into()),
        }
    }
}

/// What an error page needs; attached to every error response for `web::html_errors`.
/// RFC 9457 problem details, with the fields a form or a sign-off needs.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    #[schema(value_type = String, example = "about:blank")]
    pub kind: &'static str,
    #[schema(value_type = String)]
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// The fields with a problem (422).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<FieldError>,
    /// What is still missing (409 on sign-off).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub missing: Vec<String>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            AppError::Unexpected(error) => {
                tracing::error!(error = format!("{error:#}"), "request failed");
                "The server could not complete the request. It has been logged.".to_string()
            }
            AppError::Unavailable => {
                "The database cannot be reached just now. Please try again in a minute.".to_string()
            }
            AppError::StoreUnavailable => "The file store cannot be reached just now, so nothing was saved. \
                                           Please try again in a few minutes."
                .to_string(),
            AppError::StorageFull => "The server has no room left to store files, so nothing was saved. \
                                      Please tell your centre's administrator."
                .to_string(),
            other => other.to_string(),
        };
        let retry_after = match &self {
            AppError::TooManyRequests { retry_after_secs, .. } => Some(*retry_after_secs),
            AppError::Unavailable | AppError::StoreUnavailable => Some(30),
            _ => None,
        };
        let (errors, missing) = match self {
            AppError::Invalid(errors) => (errors, Vec::new()),
            AppError::Conflict(_, missing) => (Vec::new(), missing),
            _ => (Vec::new(), Vec::new()),
        };
        let problem = Problem {
            kind: "about:blank",
            title: AppError::title_for(status),
            status: status.as_u16(),
            detail,
            errors,
            missing,
        };
        let mut response = (status, Json(&problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response.extensions_mut().insert(problem);
        response
    }
}

impl AppError {
    fn title_for(status: StatusCode) -> &'static str {
        // Titles depend only on the kind of problem, as RFC 9457 asks.
        match status {
            StatusCode::UNAUTHORIZED => "Sign in required",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::UNPROCESSABLE_ENTITY => "There is a problem with what you sent",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::GONE => "No longer available",
            StatusCode::PAYLOAD_TOO_LARGE => "Too large",
            StatusCode::REQUEST_TIMEOUT => "Request timed out",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "File type not accepted",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
            StatusCode::INSUFFICIENT_STORAGE => "No room to store the file",
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::TOO_MANY_REQUESTS => "Too many attempts",
            _ => "Something went wrong",
        }
    }
}

pub type AppResult<T> = Result<T, AppError>;
