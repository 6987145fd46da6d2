//! eportfolio: evidence, assessment, internal quality assurance and external verification for
//! vocational qualifications. `app` builds the web application; `serve` runs it.

pub mod accounts;
pub mod assessment;
pub mod audit;
pub mod auth;
pub mod backup;
pub mod canonical;
pub mod catalogue;
pub mod config;
pub mod db;
pub mod demo;
pub mod error;
pub mod evidence;
pub mod export;
pub mod feedback;
pub mod notifications;
pub mod quality;
pub mod reports;
pub mod retention;
pub mod verification;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, Request, header};
use sqlx::PgPool;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use config::Config;
use evidence::FileStore;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub config: Arc<Config>,
    pub store: FileStore,
    /// Verified against when an email is unknown, so failed sign-ins take the same time.
    pub dummy_hash: String,
    /// The sessions, people, tokens and portfolios this process keeps, dropped as it hears they
    /// change (src/db/changes.rs).
    pub changes: db::changes::Changes,
    /// Records verifiers' views, those of requests arriving together in one transaction.
    pub views: audit::Views,
}

impl AppState {
    /// The transaction a request by `actor` works in. An external verifier's is read-only, so
    /// that even a bug cannot write on their behalf.
    pub async fn begin(&self, actor: &auth::Actor) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin_with(if actor.is_verifier_only() { "BEGIN READ ONLY" } else { "BEGIN" }).await
    }

    /// As `begin`, for reading the audit trail (`audit::trail::page`): without parallel workers,
    /// set in the same round trip as the `BEGIN`.
    pub async fn begin_trail(
        &self,
        actor: &auth::Actor,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool
            .begin_with(if actor.is_verifier_only() {
                "BEGIN READ ONLY; SET LOCAL max_parallel_workers_per_gather = 0"
            } else {
                "BEGIN; SET LOCAL max_parallel_workers_per_gather = 0"
            })
            .await
    }

    pub async fn new(pool: PgPool, config: Config) -> anyhow::Result<Self> {
        let store = FileStore::from_config(&config)?;
        let dummy_hash = auth::password::hash(auth::password::generate()).await?;
        let changes = db::changes::Changes::new();
        changes.listen(&pool);
        let views = audit::Views::start(&pool);
        Ok(AppState { pool, config: Arc::new(config), store, dummy_hash, changes, views })
    }
}

/// No inline script, no framing by other sites. Stored files (served with their own policy,
/// `evidence::FILE_SECURITY_POLICY`) may be framed by our own pages for PDF previews.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; media-src 'self'; \
    object-src 'none'; frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'";

/// Every route of the application with the access rule it enforces.
pub fn routes() -> web::route_table::Routes {
    web::router()
        .merge(auth::router())
        .merge(accounts::router())
        .merge(catalogue::router())
        .merge(evidence::router())
        .merge(assessment::router())
        .merge(assessment::tracking::router())
        .merge(assessment::sign_off::router())
        .merge(audit::router())
        .merge(verification::router())
        .merge(feedback::router())
        .merge(notifications::router())
        .merge(quality::router())
        .merge(export::router())
        .merge(retention::router())
        .merge(export::subject_access::router())
        .merge(export::leap2a_import::router())
        .merge(reports::router())
}

/// The whole web application: pages, API, sessions, security headers and request tracing.
pub fn app(state: AppState) -> Router {
    let secure = state.config.behind_tls;
    let sessions =
        SessionManagerLayer::new(auth::session_store::PgSessionStore::new(state.pool.clone(), state.changes.clone()))
            // The __Host- prefix binds a Secure cookie to this host and path `/`.
            .with_name(if secure { "__Host-eportfolio_session" } else { "eportfolio_session" })
            .with_http_only(true)
            .with_same_site(SameSite::Lax)
            .with_secure(secure)
            .with_expiry(Expiry::OnInactivity(time::Duration::seconds(auth::IDLE_TIMEOUT_SECS)));
    let pacing = web::limits::BodyPacing::from_config(&state.config);
    let hsts = secure.then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        )
    });
    routes()
        .into_router()
        .fallback(|| async { error::AppError::NotFound("page") })
        .layer(axum::middleware::from_fn(auth::csrf::protect))
        .layer(axum::middleware::from_fn_with_state(pacing, web::limits::pace_request_bodies))
        .layer(axum::middleware::from_fn(web::html_errors))
        .layer(sessions)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("DENY"),
        ))
        .layer(tower::util::option_layer(hsts))
        .layer(axum::middleware::from_fn_with_state(state.clone(), settle_changes))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), actor = tracing::field::Empty)
        }))
        .with_state(state)
}

/// A request that changes something reads from the database, not from what this process keeps,
/// and is answered once this process has heard of every change committed by then, its own
/// included (src/db/changes.rs): the page it leads to shows the change.
async fn settle_changes(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    if request.method().is_safe() {
        return next.run(request).await;
    }
    let response = db::changes::fresh_scope(next.run(request)).await;
    state.changes.settle(&state.pool).await;
    response
}

/// Opens the database (embedded unless `DATABASE_URL`), migrates, optionally loads the
/// demonstration centre, and serves until SIGINT or SIGTERM; then stops the embedded cluster.
pub async fn serve(config: Config, with_demo: bool) -> anyhow::Result<()> {
    let database = db::Database::open(&config, db::Owner::Server).await?;
    let result = serve_on(&database, config, with_demo).await;
    database.close().await;
    result
}

async fn serve_on(database: &db::Database, config: Config, with_demo: bool) -> anyhow::Result<()> {
    db::migrate(&database.pool).await?;
    let state = AppState::new(database.pool.clone(), config.clone()).await?;
    let swept = state.store.remove_staged_older_than(std::time::Duration::from_secs(24 * 3600))?;
    if swept > 0 {
        tracing::info!(swept, "removed abandoned partial uploads");
    }
    if with_demo {
        let logins = demo::load_if_empty(&state.pool, &state.store, &config.data_dir).await?;
        demo::print_logins(&logins);
    }
    let listener = tokio::net::TcpListener::bind(config.addr).await?;
    let address = listener.local_addr()?;
    println!("eportfolio is listening on http://{address}/  (Ctrl-C stops it)");
    let cleanup = tokio::spawn(expire_sessions(state.pool.clone()));
    let chain_checks = (config.chain_check_minutes > 0).then(|| {
        tokio::spawn(audit::checks::on_schedule(
            state.pool.clone(),
            std::time::Duration::from_secs(60),
            std::time::Duration::from_secs(config.chain_check_minutes * 60),
        ))
    });
    let trim = tokio::spawn(return_freed_memory());
    let mailer = notifications::spawn_mailer(&state)?;
    // On a signal the listener closes; requests in flight get the grace period, then are cut off.
    let rules = web::server::ConnectionRules::from_config(&config);
    if web::server::serve(listener, app(state), rules, shutdown_signal()).await == web::server::Stopped::CutOff {
        tracing::warn!(
            grace_secs = rules.shutdown_grace.as_secs(),
            "requests still in flight after the grace period were cut off"
        );
    }
    cleanup.abort();
    if let Some(chain_checks) = chain_checks {
        chain_checks.abort();
    }
    trim.abort();
    if let Some(mailer) = mailer {
        mailer.abort();
    }
    tracing::info!("server stopped");
    Ok(())
}

/// Allocations of 128 KiB and more get their own mappings, returned to the system when freed.
/// glibc otherwise raises that threshold to the largest block freed so far: after a burst of
/// sign-ins, each hashing a password in 19 MiB, those blocks came from the heap and the idle
/// server kept ~75 MiB of them (BENCHMARKS.md, fix 10). Call before any thread starts.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's parameters; called at start-up, before any
    // other thread allocates.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Hands memory freed after a burst of large pages back to the system. glibc's allocator keeps
/// freed memory in each worker thread's arena for reuse, so after a load the idle server stayed
/// at hundreds of MiB (BENCHMARKS.md); `malloc_trim` returns the unused tops of every arena.
async fn return_freed_memory() {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        every.tick().await;
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: malloc_trim only releases free memory the allocator holds; it takes no
        // pointers and is safe to call from any thread at any time.
        unsafe {
            nix::libc::malloc_trim(0);
        }
    }
}

async fn expire_sessions(pool: PgPool) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        every.tick().await;
        if let Err(error) = sqlx::query!("DELETE FROM sessions WHERE expires_at < now()").execute(&pool).await {
            tracing::warn!(%error, "could not remove expired sessions");
        }
    }
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
