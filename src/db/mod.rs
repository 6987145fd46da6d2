//! The database: a pool on `DATABASE_URL` or on the embedded cluster, and the schema migrations
//! embedded in the binary.

pub mod changes;
pub mod embedded;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

use crate::config::Config;
pub use embedded::{EmbeddedPostgres, Owner};

/// An open database: the pool, and the embedded cluster behind it when there is one.
pub struct Database {
    pub pool: PgPool,
    /// How PostgreSQL's own tools (`pg_dump`, `pg_restore`) reach the same database.
    pub url: String,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts (or joins) the embedded cluster in the data dir.
    pub async fn open(config: &Config, owner: Owner) -> anyhow::Result<Self> {
        match &config.database_url {
            Some(url) => {
                let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid PostgreSQL URL")?;
                Ok(Database { pool: pool(options).await?, url: url.clone(), embedded: None })
            }
            None => {
                let data_dir = config.data_dir.clone();
                let cluster = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(&data_dir, owner)).await??;
                create_database_if_missing(&cluster).await?;
                let options = cluster.connect_options(embedded::NAME);
                let url = cluster.url(embedded::NAME);
                Ok(Database { pool: pool(options).await?, url, embedded: Some(cluster) })
            }
        }
    }

    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(mut self) {
        // Requests cut off at the end of a shutdown's grace period may still hold connections:
        // wait for them briefly, not forever (PostgreSQL rolls back what they had not committed).
        let _ = tokio::time::timeout(Duration::from_secs(5), self.pool.close()).await;
        if let Some(mut cluster) = self.embedded.take() {
            let _ = tokio::task::spawn_blocking(move || cluster.stop()).await;
        }
    }
}

/// Sized for a centre's 200 people at once (tests/concurrency.rs): every write waits its turn on
/// the audit chain's lock while holding its connection, so the pool needs room beyond the writers
/// for the reads (sessions, pages) to go on; and under a burst a request waits in line for a
/// connection rather than failing. PostgreSQL reached and refusing still fails at once (503).
const POOL_CONNECTIONS: u32 = 32;
pub(crate) const POOL_WAIT: Duration = Duration::from_secs(15);
/// A connection left idle this long after a burst is closed: each keeps buffers as large as the
/// biggest result it carried, and its PostgreSQL backend its caches (BENCHMARKS.md, fix 10).
const POOL_IDLE: Duration = Duration::from_secs(60);

async fn pool(options: PgConnectOptions) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(POOL_CONNECTIONS)
        .acquire_timeout(POOL_WAIT)
        .idle_timeout(POOL_IDLE)
        .connect_with(options)
        .await
        .context("cannot connect to PostgreSQL")
}

async fn create_database_if_missing(cluster: &EmbeddedPostgres) -> anyhow::Result<()> {
    let mut conn = sqlx::PgConnection::connect_with(&cluster.connect_options("postgres")).await?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(embedded::NAME)
        .fetch_one(&mut conn)
        .await?;
    if !exists {
        sqlx::query("CREATE DATABASE eportfolio").execute(&mut conn).await?;
    }
    conn.close().await?;
    Ok(())
}

/// Brings the schema up to date and loads the units that ship with the binary.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    sqlx::migrate!("./migrations").run(pool).await.context("database migration failed")?;
    crate::catalogue::import_bundled(pool).await?;
    Ok(())
}

/// Runs `statement` with one planner setting changed, and resets it to the connection's default
/// afterwards whatever the statement's outcome (a failed transaction undoes it anyway). For the few
/// statements whose planning costs more than their running: see BENCHMARKS.md, fix 6.
pub async fn with_planner_setting<T>(
    conn: &mut sqlx::PgConnection,
    name: &'static str,
    value: &'static str,
    statement: impl AsyncFnOnce(&mut sqlx::PgConnection) -> crate::error::AppResult<T>,
) -> crate::error::AppResult<T> {
    sqlx::query("SELECT set_config($1, $2, false)").bind(name).bind(value).execute(&mut *conn).await?;
    let result = statement(&mut *conn).await;
    let reset = sqlx::query(sqlx::AssertSqlSafe(format!("RESET {name}"))).execute(&mut *conn).await;
    // The statement's own error comes first: after it, in a transaction, the reset fails too.
    let value = result?;
    reset?;
    Ok(value)
}
