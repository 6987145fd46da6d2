//! Slows repeated failed sign-ins. Failures are counted in PostgreSQL (so every server process
//! sees them) over a sliding window, for one account from one address, for one account from
//! anywhere, and for one address across accounts. Past a free allowance each further failure
//! doubles the wait, capped at a few minutes: guessing becomes useless, but an attacker can never
//! lock a real person out for long, and a correct password from the person's own address
//! clears that address's count.

use std::time::Duration;

use chrono::Utc;
use sqlx::PgConnection;

/// Failures older than this do not count.
const WINDOW_MINUTES: i64 = 15;

struct Limit {
    free: i64,
    longest_wait_secs: i64,
}

const SAME_ACCOUNT_AND_ADDRESS: Limit = Limit { free: 5, longest_wait_secs: 300 };
const SAME_ACCOUNT: Limit = Limit { free: 30, longest_wait_secs: 300 };
const SAME_ADDRESS: Limit = Limit { free: 50, longest_wait_secs: 900 };

fn wait_after(failures: i64, limit: &Limit) -> i64 {
    if failures < limit.free {
        return 0;
    }
    let doublings = (failures - limit.free + 1).min(20) as u32;
    2i64.saturating_pow(doublings).min(limit.longest_wait_secs)
}

/// How long the caller must wait before another attempt, if at all.
pub async fn wait_before_attempt(
    conn: &mut PgConnection,
    account: &str,
    client: &str,
) -> Result<Option<Duration>, sqlx::Error> {
    let account = account.trim().to_lowercase();
    let row = sqlx::query!(
        r#"SELECT
             count(*) FILTER (WHERE account = $1 AND client = $2) AS "pair!",
             max(failed_at) FILTER (WHERE account = $1 AND client = $2) AS pair_last,
             count(*) FILTER (WHERE account = $1) AS "account!",
             max(failed_at) FILTER (WHERE account = $1) AS account_last,
             count(*) FILTER (WHERE client = $2) AS "client!",
             max(failed_at) FILTER (WHERE client = $2) AS client_last
           FROM sign_in_failures
           WHERE (account = $1 OR client = $2) AND failed_at > now() - make_interval(mins => $3::int)"#,
        account,
        client,
        WINDOW_MINUTES as i32
    )
    .fetch_one(conn)
    .await?;
    let now = Utc::now();
    let remaining = [
        (row.pair, row.pair_last, &SAME_ACCOUNT_AND_ADDRESS),
        (row.account, row.account_last, &SAME_ACCOUNT),
        (row.client, row.client_last, &SAME_ADDRESS),
    ]
    .into_iter()
    .filter_map(|(failures, last, limit)| {
        let until = last? + chrono::Duration::seconds(wait_after(failures, limit));
        (until > now).then(|| (until - now).num_milliseconds())
    })
    .max();
    Ok(remaining.map(|ms| Duration::from_millis(ms as u64)))
}

pub async fn record_failure(conn: &mut PgConnection, account: &str, client: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "INSERT INTO sign_in_failures (account, client) VALUES ($1, $2)",
        account.trim().to_lowercase(),
        client
    )
    .execute(&mut *conn)
    .await?;
    // Keep the table small: old failures no longer count.
    sqlx::query!("DELETE FROM sign_in_failures WHERE failed_at < now() - interval '1 day'").execute(conn).await?;
    Ok(())
}

/// A successful sign-in clears the failures of that account from that address.
pub async fn clear(conn: &mut PgConnection, account: &str, client: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "DELETE FROM sign_in_failures WHERE account = $1 AND client = $2",
        account.trim().to_lowercase(),
        client
    )
    .execute(conn)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{SAME_ACCOUNT_AND_ADDRESS, wait_after};

    #[test]
    fn waits_double_after_the_free_attempts_and_stay_short() {
        let waits: Vec<i64> = (3..=14).map(|n| wait_after(n, &SAME_ACCOUNT_AND_ADDRESS)).collect();
        assert_eq!(waits, vec![0, 0, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
    }
}
