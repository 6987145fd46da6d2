//! Sends notification emails after the events that caused them have committed. Each server runs
//! one mailer; several servers share the work through the database alone: a mailer claims
//! pending rows with `FOR UPDATE SKIP LOCKED`, so no email goes twice, and a failure is written
//! back with a later time to try again. Nothing is kept in memory that another server needs.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;

use crate::AppState;

/// How often pending emails are looked for when nothing wakes the mailer (a notification
/// written by another server, or a retry coming due).
const POLL: Duration = Duration::from_secs(3);
/// Emails claimed per transaction.
const BATCH: i64 = 20;
/// How long one SMTP exchange may take before it counts as a failure.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

/// Starts the mailer when SMTP is configured; refuses a configuration that cannot work.
pub fn spawn_mailer(state: &AppState) -> anyhow::Result<Option<JoinHandle<()>>> {
    let Some(url) = &state.config.smtp_url else {
        return Ok(None);
    };
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| anyhow::anyhow!("EPORTFOLIO_SMTP_URL is not a usable SMTP address: {e}"))?
        .timeout(Some(SMTP_TIMEOUT))
        .build();
    let from: Mailbox = state
        .config
        .mail_from
        .parse()
        .map_err(|e| anyhow::anyhow!("EPORTFOLIO_MAIL_FROM is not an email address: {e}"))?;
    let mailer = Mailer { transport, from, base: state.config.public_base() };
    Ok(Some(tokio::spawn(run(state.pool.clone(), mailer))))
}

struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    base: String,
}

async fn run(pool: PgPool, mailer: Mailer) {
    let mut listener = match PgListener::connect_with(&pool).await {
        Ok(mut listener) => match listener.listen(super::MAIL_CHANNEL).await {
            Ok(()) => Some(listener),
            Err(error) => {
                tracing::warn!(%error, "mailer cannot listen for new notifications; polling only");
                None
            }
        },
        Err(error) => {
            tracing::warn!(%error, "mailer cannot listen for new notifications; polling only");
            None
        }
    };
    loop {
        match send_due(&pool, &mailer).await {
            // A full batch: there may be more waiting.
            Ok(claimed) if claimed == BATCH as usize => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "mailer could not read pending notifications"),
        }
        match listener.as_mut() {
            Some(listener) => {
                tokio::select! {
                    woken = listener.recv() => {
                        if let Err(error) = woken {
                            tracing::warn!(%error, "mailer lost its notification channel");
                            tokio::time::sleep(POLL).await;
                        }
                    }
                    () = tokio::time::sleep(POLL) => {}
                }
            }
            None => tokio::time::sleep(POLL).await,
        }
    }
}

/// Claims the emails that are due, sends each, and records what happened, in one transaction
/// that holds the claimed rows so that no other mailer takes them meanwhile. Returns how many
/// were claimed.
async fn send_due(pool: &PgPool, mailer: &Mailer) -> Result<usize, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Notifications from before a mail server was configured (or that failed for two days) stay
    // in the app only: an email about a week-old event would mislead more than it helps.
    let due = sqlx::query!(
        "SELECT n.id, n.subject, n.link, n.email_attempts, u.email, u.name
         FROM notifications n JOIN users u ON u.id = n.recipient_id
         WHERE n.emailed_at IS NULL AND n.email_due_at <= now() AND n.created_at > now() - interval '2 days'
           AND u.disabled_at IS NULL
         ORDER BY n.email_due_at LIMIT $1
         FOR UPDATE OF n SKIP LOCKED",
        BATCH
    )
    .fetch_all(&mut *tx)
    .await?;
    for row in &due {
        match mailer.send(&row.name, &row.email, &row.subject, &row.link).await {
            Ok(()) => {
                sqlx::query!(
                    "UPDATE notifications SET emailed_at = now(), email_attempts = email_attempts + 1, email_error = NULL
                     WHERE id = $1",
                    row.id
                )
                .execute(&mut *tx)
                .await?;
            }
            Err(error) => {
                // 5 s, 20 s, 45 s, ... then at most hourly.
                let attempts = row.email_attempts + 1;
                let delay = (5 * attempts * attempts).min(3600) as f64;
                tracing::warn!(notification = %row.id, attempts, %error, "notification email not sent; will retry");
                sqlx::query!(
                    "UPDATE notifications SET email_attempts = $2, email_error = $3,
                            email_due_at = now() + make_interval(secs => $4)
                     WHERE id = $1",
                    row.id,
                    attempts,
                    error.to_string(),
                    delay
                )
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(due.len())
}

impl Mailer {
    async fn send(&self, name: &str, email: &str, subject: &str, link: &str) -> anyhow::Result<()> {
        let to = Mailbox::new(Some(name.to_string()), email.parse()?);
        let body = format!(
            "Hello {name},\n\n{subject}.\n\nOpen it in eportfolio:\n{base}{link}\n\n\
             All your notifications:\n{base}/notifications\n\n\
             You receive this because you have an account on eportfolio.\n\
             The details stay in the application, not in this email.\n",
            base = self.base
        );
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        self.transport.send(message).await?;
        Ok(())
    }
}
