//! Who is asking: passwords, sessions, API tokens, and the policy that decides what they may do.

pub mod csrf;
pub mod password;
pub mod password_links;
pub mod policy;
mod routes;
pub mod session_store;
pub mod throttle;
pub mod tokens;

use std::fmt;
use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::Serialize;
use tower_sessions::Session;
use uuid::Uuid;

use crate::AppState;
use crate::error::AppError;
pub use routes::router;

/// Session key holding the signed-in user's id.
const USER_KEY: &str = "user_id";
/// Session key holding when the person signed in (Unix seconds).
const SIGNED_IN_KEY: &str = "signed_in_at";
/// A session ends after this long without a request...
pub const IDLE_TIMEOUT_SECS: i64 = 60 * 60;
/// ...and in any case this long after signing in.
pub const ABSOLUTE_TIMEOUT_SECS: i64 = 12 * 60 * 60;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Learner,
    Assessor,
    Iqa,
    Eqa,
    Admin,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Learner, Role::Assessor, Role::Iqa, Role::Eqa, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Learner => "learner",
            Role::Assessor => "assessor",
            Role::Iqa => "iqa",
            Role::Eqa => "eqa",
            Role::Admin => "admin",
        }
    }

    /// How the role is named to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Learner => "Learner",
            Role::Assessor => "Assessor",
            Role::Iqa => "Internal quality assurer",
            Role::Eqa => "External verifier",
            Role::Admin => "Centre administrator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: use learner, assessor, iqa, eqa or admin"))
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CentreRole {
    pub centre_id: Uuid,
    pub centre_name: String,
    pub role: Role,
}

/// The authenticated person behind a request.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Actor {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub roles: Vec<CentreRole>,
}

impl Actor {
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.iter().any(|r| r.role == role)
    }

    /// Someone whose only role is external verifier: their requests run read-only.
    pub fn is_verifier_only(&self) -> bool {
        !self.roles.is_empty() && self.roles.iter().all(|r| r.role == Role::Eqa)
    }

    /// The role to name in records when no relation to a particular learner applies.
    pub fn primary_role(&self) -> Option<Role> {
        Role::ALL.into_iter().find(|role| self.has_role(*role))
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(actor) = parts.extensions.get::<Actor>() {
            return Ok(actor.clone());
        }
        let user_id = if let Some(header) = parts.headers.get(AUTHORIZATION) {
            let token = header
                .to_str()
                .ok()
                .and_then(|h| h.strip_prefix("Bearer "))
                .ok_or_else(|| AppError::BadCredentials("Authorization must be `Bearer <token>`".into()))?;
            tokens::authenticate(state, token.trim())
                .await?
                .ok_or_else(|| AppError::BadCredentials("The API token is not valid or has been revoked".into()))?
        } else {
            let session = Session::from_request_parts(parts, state)
                .await
                .map_err(|(_, message)| AppError::Unexpected(anyhow::anyhow!(message)))?;
            let user_id: Option<Uuid> = session.get(USER_KEY).await.map_err(AppError::from)?;
            let signed_in_at: Option<i64> = session.get(SIGNED_IN_KEY).await.map_err(AppError::from)?;
            let expired = signed_in_at.is_none_or(|t| chrono::Utc::now().timestamp() - t > ABSOLUTE_TIMEOUT_SECS);
            if user_id.is_some() && expired {
                end_session(&session).await?;
                return Err(AppError::Unauthenticated);
            }
            user_id.ok_or(AppError::Unauthenticated)?
        };
        let actor = state
            .changes
            .user(user_id, async {
                let mut conn = state.pool.acquire().await?;
                crate::accounts::load_actor(&mut conn, user_id).await
            })
            .await?
            .ok_or(AppError::Unauthenticated)?;
        tracing::Span::current().record("actor", tracing::field::display(actor.id));
        parts.extensions.insert(actor.clone());
        Ok(actor)
    }
}

/// The address a request came from: the connection's peer, or when configured as behind a
/// reverse proxy, the address that proxy appended to `X-Forwarded-For`.
#[derive(Debug, Clone)]
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.config.behind_proxy
            && let Some(forwarded) = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
            && let Some(last) = forwarded.rsplit(',').next().map(str::trim).filter(|a| !a.is_empty())
        {
            return Ok(ClientAddress(last.to_string()));
        }
        let peer =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        Ok(ClientAddress(peer.unwrap_or_else(|| "unknown".into())))
    }
}

/// Starts a signed-in session under a fresh session id (no fixation).
pub async fn begin_session(session: &Session, user_id: Uuid) -> Result<String, AppError> {
    session.cycle_id().await.map_err(AppError::from)?;
    session.insert(USER_KEY, user_id).await.map_err(AppError::from)?;
    session.insert(SIGNED_IN_KEY, chrono::Utc::now().timestamp()).await.map_err(AppError::from)?;
    csrf::renew(session).await
}

pub async fn end_session(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(AppError::from)
}

impl axum::extract::OptionalFromRequestParts<AppState> for Actor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        match <Actor as FromRequestParts<AppState>>::from_request_parts(parts, state).await {
            Ok(actor) => Ok(Some(actor)),
            Err(AppError::Unauthenticated | AppError::BadCredentials(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}
