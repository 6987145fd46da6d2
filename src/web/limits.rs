//! Slow request bodies: a body that stops arriving (idle for `body_idle_timeout_secs`), or that
//! arrives slower on average than `min_upload_rate` once `upload_rate_grace_secs` have passed, is
//! cut off and the request answered 408, so a dribbling client cannot hold a connection (and a
//! half-written staged file) for ever, while a learner on a slow phone line still gets a large
//! video through. Only the time the server spends waiting for the client counts against it, never
//! time the server itself spends (on the database, say) before reading on.
//!
//! tower-http's `RequestBodyTimeoutLayer` gives the idle timeout alone; the minimum rate needs the
//! byte count, so both live in the one body wrapper here.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::config::Config;
use crate::error::AppError;

/// How long, and how slowly, a request body may arrive.
#[derive(Debug, Clone, Copy)]
pub struct BodyPacing {
    idle: Duration,
    /// Bytes per second; 0 for no minimum.
    min_rate: u64,
    grace: Duration,
}

impl BodyPacing {
    pub fn from_config(config: &Config) -> Self {
        BodyPacing {
            idle: Duration::from_secs(config.body_idle_timeout_secs.max(1)),
            min_rate: config.min_upload_rate,
            grace: Duration::from_secs(config.upload_rate_grace_secs),
        }
    }

    /// The waiting time a body that has delivered `received` bytes has earned: the grace period,
    /// or longer once it has sent more than the minimum rate asks of that time.
    fn waiting_allowed(&self, received: u64) -> Duration {
        if self.min_rate == 0 {
            return Duration::MAX;
        }
        self.grace.max(Duration::from_secs_f64(received as f64 / self.min_rate as f64))
    }
}

/// Why a body was cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutOff {
    /// Nothing arrived for the idle timeout.
    Stalled(Duration),
    /// It averaged below the minimum rate (bytes per second) after the grace period.
    TooSlow(u64),
}

impl std::fmt::Display for CutOff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutOff::Stalled(idle) => write!(
                f,
                "Nothing more of the request arrived for {} seconds, so it was stopped and nothing was saved. \
                 Please check your connection and try again.",
                idle.as_secs()
            ),
            CutOff::TooSlow(rate) => write!(
                f,
                "The upload arrived slower than {} per second on average, so it was stopped and nothing was saved. \
                 Please try again on a better connection.",
                human_rate(*rate)
            ),
        }
    }
}

impl std::error::Error for CutOff {}

fn human_rate(bytes_per_sec: u64) -> String {
    if bytes_per_sec >= 1024 && bytes_per_sec.is_multiple_of(1024) {
        format!("{} KiB", bytes_per_sec / 1024)
    } else {
        format!("{bytes_per_sec} bytes")
    }
}

/// Middleware: paces every request body, and answers 408 (problem details, or the error page
/// for a form) when the handler failed because its body was cut off, whatever the handler made
/// of the broken body. The connection closes after it, since the body was never read to its end.
pub async fn pace_request_bodies(State(pacing): State<BodyPacing>, request: Request, next: Next) -> Response {
    let cut_off = Arc::new(OnceLock::new());
    let request = request.map(|body| Body::new(PacedBody::new(body, pacing, cut_off.clone())));
    let response = next.run(request).await;
    match cut_off.get() {
        Some(reason) => {
            tracing::info!(%reason, "request body cut off");
            AppError::RequestTimeout(reason.to_string()).into_response()
        }
        None => response,
    }
}

/// A request body that errors with `CutOff` when its client stalls or dribbles.
pub struct PacedBody {
    inner: Body,
    pacing: BodyPacing,
    received: u64,
    /// Time spent waiting for the client in earlier waits.
    waited: Duration,
    /// Since when the server has been waiting for the client now, if it is.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    cut_off: Arc<OnceLock<CutOff>>,
}

impl PacedBody {
    pub fn new(inner: Body, pacing: BodyPacing, cut_off: Arc<OnceLock<CutOff>>) -> Self {
        PacedBody { inner, pacing, received: 0, waited: Duration::ZERO, waiting_since: None, timer: None, cut_off }
    }

    fn stop_waiting(&mut self) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
    }
}

impl HttpBody for PacedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Some(reason) = this.cut_off.get() {
            return Poll::Ready(Some(Err(Box::new(*reason))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stop_waiting();
                if let Some(Ok(data)) = &frame
                    && let Some(data) = data.data_ref()
                {
                    this.received += data.len() as u64;
                }
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                if this.waiting_since.is_none() {
                    // A new wait: its deadline is the sooner of the idle timeout and what is left
                    // of the waiting the bytes so far have earned.
                    let now = Instant::now();
                    this.waiting_since = Some(now);
                    let left = this.pacing.waiting_allowed(this.received).saturating_sub(this.waited);
                    let deadline = now + this.pacing.idle.min(left);
                    match &mut this.timer {
                        Some(timer) => timer.as_mut().reset(deadline),
                        None => this.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
                    }
                }
                let timer = this.timer.as_mut().expect("set when waiting started");
                ready!(timer.as_mut().poll(cx));
                let waited_now = this.waiting_since.map_or(Duration::ZERO, |since| since.elapsed());
                let reason = if waited_now >= this.pacing.idle {
                    CutOff::Stalled(this.pacing.idle)
                } else {
                    CutOff::TooSlow(this.pacing.min_rate)
                };
                let _ = this.cut_off.set(reason);
                Poll::Ready(Some(Err(Box::new(reason))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pacing(min_rate: u64) -> BodyPacing {
        BodyPacing { idle: Duration::from_secs(30), min_rate, grace: Duration::from_secs(60) }
    }

    #[test]
    fn a_body_earns_waiting_time_beyond_the_grace_period_only_by_sending_at_the_minimum_rate() {
        assert_eq!(pacing(1024).waiting_allowed(0), Duration::from_secs(60));
        assert_eq!(pacing(1024).waiting_allowed(1024 * 60), Duration::from_secs(60));
        assert_eq!(pacing(1024).waiting_allowed(1024 * 90), Duration::from_secs(90));
        assert_eq!(pacing(0).waiting_allowed(0), Duration::MAX);
    }

    #[test]
    fn the_messages_say_what_happened_and_that_nothing_was_saved() {
        assert!(CutOff::Stalled(Duration::from_secs(30)).to_string().contains("for 30 seconds"));
        let slow = CutOff::TooSlow(1024).to_string();
        assert!(slow.contains("1 KiB per second") && slow.contains("nothing was saved"), "{slow}");
    }
}
