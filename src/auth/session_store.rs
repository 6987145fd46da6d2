//! Server-side sessions for `tower-sessions`, kept in PostgreSQL so that any server process can
//! serve any request.

use async_trait::async_trait;
use sqlx::PgPool;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};

use crate::db::changes::{Changes, KeptSession};

/// Sessions in PostgreSQL, and those this process has read or written kept in memory until it
/// hears they changed (src/db/changes.rs).
#[derive(Clone)]
pub struct PgSessionStore {
    pool: PgPool,
    changes: Changes,
}

impl std::fmt::Debug for PgSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PgSessionStore")
    }
}

impl PgSessionStore {
    pub fn new(pool: PgPool, changes: Changes) -> Self {
        PgSessionStore { pool, changes }
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
        let id = record.id.to_string();
        sqlx::query!(
            "INSERT INTO sessions (id, data, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET data = $2, expires_at = $3",
            id,
            json,
            expires_at(record),
        )
        .execute(&self.pool)
        .await
        .map_err(database)?;
        self.changes.wrote_session(&id, KeptSession { data: json, expires_at: expires_at(record) });
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        // By the key alone, with the expiry checked here: given `expires_at > now()` in the
        // statement, the planner judged that condition by statistics gathered before the newest
        // sessions existed and scanned every live session through the expiry index instead (8 ms
        // per request with 30,000 sessions, which anonymous visits to the sign-in page create).
        let key = id.to_string();
        let kept = self
            .changes
            .session(&key, async {
                let row = sqlx::query!("SELECT data, expires_at FROM sessions WHERE id = $1", key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(database)?;
                Ok::<_, session_store::Error>(row.map(|row| KeptSession { data: row.data, expires_at: row.expires_at }))
            })
            .await?;
        let Some(row) = kept.filter(|row| row.expires_at > chrono::Utc::now()) else { return Ok(None) };
        Ok(Some(Record {
            id: *id,
            data: serde_json::from_value(row.data).map_err(backend)?,
            expiry_date: time::OffsetDateTime::from_unix_timestamp(row.expires_at.timestamp()).map_err(backend)?,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let key = id.to_string();
        sqlx::query!("DELETE FROM sessions WHERE id = $1", key).execute(&self.pool).await.map_err(database)?;
        self.changes.removed_session(&key);
        Ok(())
    }
}
