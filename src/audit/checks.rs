//! Whole-chain checks, recorded. Reading every event is O(events): millions at a large centre,
//! far too slow for each view of the trail. So the server checks the whole chain on a schedule
//! (and whenever an administrator or verifier asks), records each result, and the trail page
//! shows the latest one beside its own check of the events it shows (`super::check_shown`).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::{BrokenEvent, Event, Verification};
use crate::auth::Actor;

/// A whole-chain check as it was run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChainCheck {
    pub checked_at: DateTime<Utc>,
    /// Who asked for it; absent for the server's scheduled check.
    pub checked_by: Option<Uuid>,
    pub checked_by_name: Option<String>,
    pub events: i64,
    pub intact: bool,
    pub first_broken: Option<BrokenEvent>,
    /// How long reading and re-hashing the chain took.
    pub took_ms: i64,
}

impl ChainCheck {
    pub fn verification(&self) -> Verification {
        Verification { events: self.events, intact: self.intact, first_broken: self.first_broken.clone() }
    }

    /// When and by whom, for the trail page.
    pub fn when_and_who(&self) -> String {
        let when = self.checked_at.format("%d %b %Y %H:%M UTC");
        match &self.checked_by_name {
            Some(name) => format!("checked {when} at the request of {name}"),
            None if self.checked_by.is_some() => format!("checked {when} at a person's request"),
            None => format!("checked {when} by the server's scheduled check"),
        }
    }
}

/// Checks the whole chain now and records the result; a person's request is itself audited.
pub async fn run(pool: &PgPool, by: Option<&Actor>) -> Result<ChainCheck, sqlx::Error> {
    let started = Instant::now();
    let verification = {
        let mut conn = pool.acquire().await?;
        super::verify(&mut conn).await?
    };
    let took_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let mut tx = pool.begin().await?;
    let checked_at = sqlx::query_scalar!(
        "INSERT INTO audit_checks (checked_by, events, intact, first_broken_seq, reason, took_ms)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING checked_at",
        by.map(|a| a.id),
        verification.events,
        verification.intact,
        verification.first_broken.as_ref().map(|b| b.seq),
        verification.first_broken.as_ref().map(|b| b.reason.clone()),
        took_ms
    )
    .fetch_one(&mut *tx)
    .await?;
    if let Some(actor) = by {
        let event = Event::new(Some(actor), "audit.chain_checked", "audit_trail", None).details(serde_json::json!({
            "events": verification.events,
            "intact": verification.intact,
            "first_broken": verification.first_broken.as_ref().map(|b| b.seq),
        }));
        super::record(&mut tx, event).await?;
    }
    tx.commit().await?;
    Ok(ChainCheck {
        checked_at,
        checked_by: by.map(|a| a.id),
        checked_by_name: by.map(|a| a.name.clone()),
        events: verification.events,
        intact: verification.intact,
        first_broken: verification.first_broken,
        took_ms,
    })
}

/// The latest check, as `latest` reads it, kept by each process until another check is
/// recorded (migration 0029).
pub async fn latest_kept(
    changes: &crate::db::changes::Changes,
    conn: &mut PgConnection,
) -> Result<std::sync::Arc<Option<ChainCheck>>, sqlx::Error> {
    changes.latest_check(async { latest(conn).await.map(std::sync::Arc::new) }).await
}

/// The most recent whole-chain check, if one has run.
pub async fn latest(conn: &mut PgConnection) -> Result<Option<ChainCheck>, sqlx::Error> {
    let row = sqlx::query!(
        r#"SELECT c.checked_at, c.checked_by, u.name AS "checked_by_name?", c.events, c.intact,
                  c.first_broken_seq, c.reason, c.took_ms
           FROM audit_checks c LEFT JOIN users u ON u.id = c.checked_by
           ORDER BY c.checked_at DESC, c.id DESC LIMIT 1"#
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| ChainCheck {
        checked_at: r.checked_at,
        checked_by: r.checked_by,
        checked_by_name: r.checked_by_name,
        events: r.events,
        intact: r.intact,
        first_broken: r.first_broken_seq.map(|seq| BrokenEvent { seq, reason: r.reason.unwrap_or_default() }),
        took_ms: r.took_ms,
    }))
}

/// The server's scheduled check: `first_after` the start (so a restart is not slowed by it),
/// then every `every`.
pub async fn on_schedule(pool: PgPool, first_after: Duration, every: Duration) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + first_after, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        match run(&pool, None).await {
            Ok(check) if check.intact => {
                tracing::info!(events = check.events, took_ms = check.took_ms, "audit trail intact")
            }
            Ok(check) => tracing::error!(
                events = check.events,
                first_broken = check.first_broken.as_ref().map(|b| b.seq),
                "audit trail BROKEN"
            ),
            Err(error) => tracing::warn!(%error, "could not check the audit trail"),
        }
    }
}
