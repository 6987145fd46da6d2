//! Server-side sessions for `tower-sessions`, kept in PostgreSQL so that any server process can
//! serve any request.

use async_trait::async_trait;
use sqlx::PgPool;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

#[derive(Debug, Clone)]
pub struct PgSessionStore {
    pool: PgPool,
}

impl PgSessionStore {
    pub fn new(pool: PgPool) -> Self {
        PgSessionStore { pool }
    }
}

fn backend(error: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(error.to_string())
}

/// How a session error says the database could not be reached (so pages answer 503, not 500):
/// `tower-sessions` carries a store's errors as text.
pub const UNREACHABLE: &str = "database unreachable: ";

fn database(error: sqlx::Error) -> session_store::Error {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            session_store::Error::Backend(format!("{UNREACHABLE}{error}"))
        }
        other => backend(other),
    }
}

fn expires_at(record: &Record) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(record.expiry_date.unix_timestamp(), 0).unwrap_or_default()
}

// The id is a 128-bit number JSON cannot hold, so the id and expiry are columns and only the
// session's data is a JSON document.
fn data(record: &Record) -> session_store::Result<serde_json::Value> {
    serde_json::to_value(&record.data).map_err(backend)
}

#[async_trait]
impl SessionStore for PgSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            let json = data(record)?;
            let inserted = sqlx::query!(
                "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
                record.id.to_string(),
                json,
                expires_at(record),
            )
            .execute(&self.pool)
            .await
            .map_err(database)?;
            if inserted.rows_affected() == 1 {
                return Ok(());
            }
            // Session id collision: vanishingly rare, but never share a session.
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let json = data(record)?;
        sqlx::query!(
            "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET data = $2, expires_at = $3",
            record.id.to_string(),
            json,
            expires_at(record),
        )
        .execute(&self.pool)
        .await
        .map_err(database)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        // By the key alone, with the expiry checked here: given `expires_at > now()` in the
        // statement, the planner judged that condition by statistics gathered before the newest
        // sessions existed and scanned every live session through the expiry index instead (8 ms
        // per request with 30,000 sessions, which anonymous visits to the sign-in page create).
        let row = sqlx::query!("SELECT data, expires_at FROM sessions WHERE id = $1", id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(database)?;
        let Some(row) = row.filter(|row| row.expires_at > chrono::Utc::now()) else { return Ok(None) };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_value(row.data).map_err(backend)?,
            expiry_date: time::OffsetDateTime::from_unix_timestamp(row.expires_at.timestamp()).map_err(backend)?,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        sqlx::query!("DELETE FROM sessions WHERE id = $1", id.to_string())
            .execute(&self.pool)
            .await
            .map_err(database)?;
        Ok(())
    }
}
