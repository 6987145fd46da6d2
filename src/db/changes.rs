//! What a server process keeps in memory of the rows every request reads, and how it hears that
//! one changed.
//!
//! Each signed-in request reads its session, the person with their roles, their unread count (in
//! every page's header) or its API token. Reading them from PostgreSQL took two to four round trips
//! per request, which capped a page at a few thousand requests a second whatever it did
//! (BENCHMARKS.md, fix 18); a portfolio took a dozen statements more. So each process keeps what
//! it has read, including each portfolio, tracking grid, dashboard line and evidence page as its
//! pages show them, and each person's dashboard lists; triggers on the tables they are made of
//! (migrations 0024 to 0029) send `NOTIFY eportfolio_changes, 'kind:key'` when a row changes.
//! The notification goes out when the change commits, whoever made it (any server process, a
//! command, psql), and every process's listener then drops what it kept under that key.
//!
//! PostgreSQL stays the only record: nothing kept here is needed by another process, and losing
//! it loses nothing. These rules keep what is served from memory right:
//! - Nothing is served from memory unless the listener is listening. When its connection is lost,
//!   everything kept is dropped, and kept again only once it listens again.
//! - A value read from the database is kept only if no change to its key was heard while it was
//!   being read (a generation counter per stripe of keys), so a change that lands during a read
//!   cannot be covered by the older value.
//! - A request that changes something (any method but GET, HEAD, OPTIONS and TRACE) reads from
//!   the database, never from memory, so it acts on the session, the person and the roles as they
//!   are now. Before it is answered, this process waits until it has heard every change committed
//!   up to then (`settle`), so the page the request leads to shows its own change.
//! - Another process hears of a change as soon as the notification reaches it, about a millisecond
//!   later. Until then it can still serve a read from before the change. As a second safeguard,
//!   an entry is also dropped after `MAX_AGE`.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use moka::sync::Cache;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::assessment::tracking::KeptGrid;
use crate::assessment::{EnrolmentSummary, PortfolioView};
use crate::audit::checks::ChainCheck;
use crate::auth::Actor;
use crate::auth::policy::VerifierScope;
use crate::evidence::routes::KeptDetail;
use crate::web::dashboard::DashboardLists;

/// The channel the triggers of migration 0024 notify.
pub const CHANNEL: &str = "eportfolio_changes";
/// Stripes of keys, each with its own generation: a change heard for one key refuses to keep only
/// the values read meanwhile for keys of its stripe.
const STRIPES: usize = 64;
/// How long an entry is kept at most, heard of or not.
const MAX_AGE: Duration = Duration::from_secs(300);
/// Entries kept per kind: the sessions, people and tokens of a centre's busiest hour.
const CAPACITY: u64 = 10_000;
/// Evidence items kept, over all the portfolios kept (about a kilobyte each in memory).
const PORTFOLIO_ITEMS: u64 = 20_000;
/// Tracking-grid cells kept, over all the grids kept (a cell is a few hundred bytes in memory; a
/// full CC20 portfolio's grid has about 4,000).
const GRID_CELLS: u64 = 50_000;
/// Rows kept over all the evidence items' pages kept (their files, decisions, messages, events).
const DETAIL_ROWS: u64 = 50_000;
/// How often what has expired is dropped, busy or idle (the allocator then returns the memory,
/// `return_freed_memory` in lib.rs).
const HOUSEKEEPING: Duration = Duration::from_secs(30);
/// How long `settle` waits to hear its own notification before it drops everything instead.
const SETTLE_WAIT: Duration = Duration::from_secs(2);
/// Pause before listening again after the database could not be reached.
const RETRY: Duration = Duration::from_secs(1);

tokio::task_local! {
    /// Set while a request that changes something runs: it reads from the database.
    static FRESH: ();
}

/// Whether the running request must read from the database (it changes something).
pub fn fresh() -> bool {
    FRESH.try_with(|_| ()).is_ok()
}

/// Runs `request` as one that reads from the database, not from memory.
pub async fn fresh_scope<F: Future>(request: F) -> F::Output {
    FRESH.scope((), request).await
}

/// A session as stored: its data and when it expires.
#[derive(Clone)]
pub struct KeptSession {
    pub data: serde_json::Value,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// An API token as last checked: whose it is, and when this process last asked the database
/// (which then records its use, at most once a minute).
#[derive(Clone, Copy)]
pub struct KeptToken {
    pub user_id: Uuid,
    pub checked_at: std::time::Instant,
}

/// A value that holds for the day it was read (it counts working days, or ends with today): one
/// kept from an earlier day is read again.
pub trait OfDay {
    fn as_of(&self) -> chrono::NaiveDate;
}

impl<T: OfDay> OfDay for Arc<T> {
    fn as_of(&self) -> chrono::NaiveDate {
        (**self).as_of()
    }
}

/// An enrolment's summary line, as read on `as_of`.
#[derive(Clone)]
pub struct KeptSummary {
    pub summary: EnrolmentSummary,
    pub as_of: chrono::NaiveDate,
}

impl OfDay for KeptSummary {
    fn as_of(&self) -> chrono::NaiveDate {
        self.as_of
    }
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

/// Where a read began: what it reads is kept only if no change to its key was heard since. Taken
/// before the access check of a read that checks access first, so that a change to who may see
/// the enrolment, heard meanwhile, is not covered by what is read after.
#[derive(Clone, Copy)]
pub struct Since {
    stripe: usize,
    generation: u64,
    live: bool,
}

/// What one process keeps, by kind. Cloning shares it.
#[derive(Clone)]
pub struct Changes {
    inner: Arc<Inner>,
}

struct Inner {
    /// Whether the listener is listening: only then is anything served from memory.
    live: AtomicBool,
    generations: [AtomicU64; STRIPES],
    hasher: std::hash::RandomState,
    sessions: Cache<String, KeptSession>,
    users: Cache<Uuid, Actor>,
    unread: Cache<Uuid, i64>,
    tokens: Cache<String, KeptToken>,
    portfolios: Cache<Uuid, Arc<PortfolioView>>,
    /// Summary lines by enrolment, dropped with the enrolment's portfolio.
    summaries: Cache<Uuid, KeptSummary>,
    /// Tracking grids by enrolment, with drafts (the learner's) or without, dropped with the
    /// enrolment's portfolio.
    grids: Cache<(Uuid, bool), Arc<KeptGrid>>,
    /// What each person's dashboard lists, by person.
    dashboards: Cache<Uuid, Arc<DashboardLists>>,
    /// Evidence items' pages by item, with where the read of its portfolio began: one kept from
    /// before a change to its portfolio since heard is not used.
    details: Cache<Uuid, (Since, Arc<KeptDetail>)>,
    /// What each external verifier's grants cover, by person, dropped with their dashboard lists.
    verifier_scopes: Cache<Uuid, Arc<VerifierScope>>,
    /// The actions recorded in the audit trail (`audit:actions`), under the key `actions`.
    trail_actions: Cache<String, Arc<Vec<String>>>,
    /// The latest whole-chain check (`audit:checks`), under the key `checks`.
    chain_checks: Cache<String, Arc<Option<ChainCheck>>>,
    /// `settle` calls waiting to hear their own notification, by its payload.
    waiting: Mutex<HashMap<String, oneshot::Sender<()>>>,
    next_settle: AtomicU64,
    /// Names this process in its `settle` notifications.
    process: Uuid,
}

/// One kind of thing kept, and the kind's name in notifications.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Session,
    User,
    Unread,
    Token,
    Portfolio,
    Dashboard,
    Evidence,
    Audit,
}

impl Kind {
    fn parse(name: &str) -> Option<Kind> {
        match name {
            "session" => Some(Kind::Session),
            "user" => Some(Kind::User),
            "unread" => Some(Kind::Unread),
            "token" => Some(Kind::Token),
            "portfolio" => Some(Kind::Portfolio),
            "dashboard" => Some(Kind::Dashboard),
            "evidence" => Some(Kind::Evidence),
            "audit" => Some(Kind::Audit),
            _ => None,
        }
    }
}

fn cache<K, V>() -> Cache<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder().max_capacity(CAPACITY).time_to_live(MAX_AGE).build()
}

impl Changes {
    /// Nothing kept, and nothing served from memory until `listen` runs.
    pub fn new() -> Changes {
        Changes {
            inner: Arc::new(Inner {
                live: AtomicBool::new(false),
                generations: std::array::from_fn(|_| AtomicU64::new(0)),
                hasher: std::hash::RandomState::new(),
                sessions: cache(),
                users: cache(),
                unread: cache(),
                tokens: cache(),
                portfolios: Cache::builder()
                    .max_capacity(PORTFOLIO_ITEMS)
                    .weigher(|_, view: &Arc<PortfolioView>| u32::try_from(view.items.len() + 1).unwrap_or(u32::MAX))
                    .time_to_live(MAX_AGE)
                    .build(),
                summaries: cache(),
                grids: Cache::builder()
                    .max_capacity(GRID_CELLS)
                    .weigher(|_, kept: &Arc<KeptGrid>| u32::try_from(kept.cells() + 1).unwrap_or(u32::MAX))
                    .time_to_live(MAX_AGE)
                    .build(),
                dashboards: cache(),
                details: Cache::builder()
                    .max_capacity(DETAIL_ROWS)
                    .weigher(|_, (_, kept): &(Since, Arc<KeptDetail>)| u32::try_from(kept.weight()).unwrap_or(u32::MAX))
                    .time_to_live(MAX_AGE)
                    .build(),
                verifier_scopes: cache(),
                trail_actions: cache(),
                chain_checks: cache(),
                waiting: Mutex::new(HashMap::new()),
                next_settle: AtomicU64::new(0),
                process: Uuid::new_v4(),
            }),
        }
    }

    /// Starts the listener on `pool`'s database (one of its connections); it ends when the pool
    /// is closed.
    pub fn listen(&self, pool: &PgPool) {
        tokio::spawn(listen(Arc::downgrade(&self.inner), pool.clone()));
        tokio::spawn(housekeeping(Arc::downgrade(&self.inner)));
    }

    /// Whether a read may be answered from memory now.
    fn usable(&self) -> bool {
        self.inner.live.load(Ordering::SeqCst) && !fresh()
    }

    /// Where a read of `kind`'s `key` begins now.
    fn since(&self, kind: Kind, key: &str) -> Since {
        let stripe = self.inner.stripe_of(kind, key);
        Since {
            stripe,
            generation: self.inner.generations[stripe].load(Ordering::SeqCst),
            live: self.inner.live.load(Ordering::SeqCst),
        }
    }

    /// Where a read of enrolment `id`'s portfolio, grid or summary begins now.
    pub fn since_portfolio(&self, id: Uuid) -> Since {
        self.since(Kind::Portfolio, &id.to_string())
    }

    /// `key`'s value of `kind`: from memory when that is allowed and it is there, otherwise by
    /// `load`, whose value is then kept (`None` is not kept).
    async fn through<K, V, E, F>(&self, kind: Kind, cache: &Cache<K, V>, key: K, load: F) -> Result<Option<V>, E>
    where
        K: Hash + Eq + Send + Sync + ToString + Clone + 'static,
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<Option<V>, E>>,
    {
        let since = self.since(kind, &key.to_string());
        self.through_since(since, cache, key, load).await
    }

    /// As `through`, for a value `load` always finds.
    async fn through_found<K, V, E, F>(&self, kind: Kind, cache: &Cache<K, V>, key: K, load: F) -> Result<V, E>
    where
        K: Hash + Eq + Send + Sync + ToString + Clone + 'static,
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<V, E>>,
    {
        let value = self.through(kind, cache, key, async { load.await.map(Some) }).await?;
        Ok(value.expect("`through` returns what `load` read"))
    }

    /// As `through`, for a read that began at `since`.
    async fn through_since<K, V, E, F>(
        &self,
        since: Since,
        cache: &Cache<K, V>,
        key: K,
        load: F,
    ) -> Result<Option<V>, E>
    where
        K: Hash + Eq + Send + Sync + Clone + 'static,
        V: Clone + Send + Sync + 'static,
        F: Future<Output = Result<Option<V>, E>>,
    {
        if self.usable()
            && let Some(value) = cache.get(&key)
        {
            return Ok(Some(value));
        }
        let value = load.await?;
        if let Some(value) = &value {
            self.keep(&since, cache, key, value.clone());
        }
        Ok(value)
    }

    /// Keeps `value`, read since `since`, unless a change was heard meanwhile.
    fn keep<K, V>(&self, since: &Since, cache: &Cache<K, V>, key: K, value: V)
    where
        K: Hash + Eq + Send + Sync + Clone + 'static,
        V: Clone + Send + Sync + 'static,
    {
        if !since.live {
            return;
        }
        cache.insert(key.clone(), value);
        // A change heard since the read began (or a lost connection) may be newer than the value
        // read: keep nothing then. The listener counts before it drops, so a change heard after
        // this check has dropped what was just kept.
        if !self.inner.unchanged(since) || !self.inner.live.load(Ordering::SeqCst) {
            cache.invalidate(&key);
        }
    }

    /// What is kept of `key`, if reads may be answered from memory now and it was read today.
    fn kept<K, V>(&self, cache: &Cache<K, V>, key: &K) -> Option<V>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: OfDay + Clone + Send + Sync + 'static,
    {
        if !self.usable() {
            return None;
        }
        cache.get(key).filter(|kept| kept.as_of() == today())
    }

    /// Drops `key` if what is kept of it was read on an earlier day.
    fn drop_if_old<K, V>(cache: &Cache<K, V>, key: &K)
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: OfDay + Clone + Send + Sync + 'static,
    {
        if cache.get(key).is_some_and(|kept| kept.as_of() != today()) {
            cache.invalidate(key);
        }
    }

    pub async fn session<E, F>(&self, id: &str, load: F) -> Result<Option<KeptSession>, E>
    where
        F: Future<Output = Result<Option<KeptSession>, E>>,
    {
        self.through(Kind::Session, &self.inner.sessions, id.to_string(), load).await
    }

    /// Keeps a session this process has just changed: its own notification of the change only
    /// drops it again. (A new session is not kept until it comes back: most are made by one
    /// look at the sign-in page.)
    pub fn wrote_session(&self, id: &str, session: KeptSession) {
        if self.inner.live.load(Ordering::SeqCst) {
            self.inner.sessions.insert(id.to_string(), session);
        }
    }

    pub fn removed_session(&self, id: &str) {
        self.inner.sessions.invalidate(id);
    }

    pub async fn user<E, F>(&self, id: Uuid, load: F) -> Result<Option<Actor>, E>
    where
        F: Future<Output = Result<Option<Actor>, E>>,
    {
        self.through(Kind::User, &self.inner.users, id, load).await
    }

    pub async fn unread<E, F>(&self, recipient: Uuid, load: F) -> Result<i64, E>
    where
        F: Future<Output = Result<i64, E>>,
    {
        self.through_found(Kind::Unread, &self.inner.unread, recipient, load).await
    }

    /// A token kept is used for a minute after it was checked, then checked again (which is when
    /// the database records that it is in use).
    pub async fn token<E, F>(&self, digest: &str, load: F) -> Result<Option<KeptToken>, E>
    where
        F: Future<Output = Result<Option<KeptToken>, E>>,
    {
        if self.usable()
            && let Some(token) = self.inner.tokens.get(digest)
            && token.checked_at.elapsed() >= Duration::from_secs(60)
        {
            self.inner.tokens.invalidate(digest);
        }
        self.through(Kind::Token, &self.inner.tokens, digest.to_string(), load).await
    }

    /// An enrolment's portfolio as its pages show it, read since `since`.
    pub async fn portfolio<E, F>(&self, since: Since, enrolment: Uuid, load: F) -> Result<Option<Arc<PortfolioView>>, E>
    where
        F: Future<Output = Result<Option<Arc<PortfolioView>>, E>>,
    {
        Self::drop_if_old(&self.inner.portfolios, &enrolment);
        self.through_since(since, &self.inner.portfolios, enrolment, load).await
    }

    /// The portfolio kept of `enrolment`, if reads may be answered from memory now.
    pub fn kept_portfolio(&self, enrolment: Uuid) -> Option<Arc<PortfolioView>> {
        self.kept(&self.inner.portfolios, &enrolment)
    }

    /// An enrolment's tracking grid, with drafts or without, read since `since`.
    pub async fn grid<E, F>(
        &self,
        since: Since,
        enrolment: Uuid,
        drafts: bool,
        load: F,
    ) -> Result<Option<Arc<KeptGrid>>, E>
    where
        F: Future<Output = Result<Option<Arc<KeptGrid>>, E>>,
    {
        Self::drop_if_old(&self.inner.grids, &(enrolment, drafts));
        self.through_since(since, &self.inner.grids, (enrolment, drafts), load).await
    }

    /// The grid kept of `enrolment`, with drafts or without, if reads may be answered from memory.
    pub fn kept_grid(&self, enrolment: Uuid, drafts: bool) -> Option<Arc<KeptGrid>> {
        self.kept(&self.inner.grids, &(enrolment, drafts))
    }

    /// What `person`'s dashboard lists.
    pub async fn dashboard<E, F>(&self, person: Uuid, load: F) -> Result<Arc<DashboardLists>, E>
    where
        F: Future<Output = Result<Arc<DashboardLists>, E>>,
    {
        Self::drop_if_old(&self.inner.dashboards, &person);
        self.through_found(Kind::Dashboard, &self.inner.dashboards, person, load).await
    }

    /// What external verifier `person`'s current grants cover.
    pub async fn verifier_scope<E, F>(&self, person: Uuid, load: F) -> Result<Arc<VerifierScope>, E>
    where
        F: Future<Output = Result<Arc<VerifierScope>, E>>,
    {
        Self::drop_if_old(&self.inner.verifier_scopes, &person);
        self.through_found(Kind::Dashboard, &self.inner.verifier_scopes, person, load).await
    }

    /// The actions recorded in the audit trail, in order.
    pub async fn trail_actions<E, F>(&self, load: F) -> Result<Arc<Vec<String>>, E>
    where
        F: Future<Output = Result<Arc<Vec<String>>, E>>,
    {
        self.through_found(Kind::Audit, &self.inner.trail_actions, "actions".to_string(), load).await
    }

    /// The latest whole-chain check of the audit trail, if one has run.
    pub async fn latest_check<E, F>(&self, load: F) -> Result<Arc<Option<ChainCheck>>, E>
    where
        F: Future<Output = Result<Arc<Option<ChainCheck>>, E>>,
    {
        self.through_found(Kind::Audit, &self.inner.chain_checks, "checks".to_string(), load).await
    }

    /// The page kept of evidence item `id`, if reads may be answered from memory now, it was read
    /// today and its portfolio has not changed since.
    pub fn kept_detail(&self, id: Uuid) -> Option<Arc<KeptDetail>> {
        if !self.usable() {
            return None;
        }
        let (since, kept) = self.inner.details.get(&id)?;
        (kept.as_of == today() && self.inner.unchanged(&since)).then_some(kept)
    }

    /// Evidence item `id`'s page, read by `load` (its portfolio's read began at `since`) and kept.
    pub async fn detail<E, F>(&self, since: Since, id: Uuid, load: F) -> Result<Arc<KeptDetail>, E>
    where
        F: Future<Output = Result<Arc<KeptDetail>, E>>,
    {
        if let Some(kept) = self.kept_detail(id) {
            return Ok(kept);
        }
        let own = self.since(Kind::Evidence, &id.to_string());
        let kept = load.await?;
        // Kept if nothing about the item was heard meanwhile; used while its portfolio is as then.
        self.keep(&own, &self.inner.details, id, (since, kept.clone()));
        Ok(kept)
    }

    /// The summary lines of enrolments `ids`, in no particular order: those kept, and the others
    /// by one call of `load`, then kept.
    pub async fn summaries<E, F, L>(&self, ids: &[Uuid], load: L) -> Result<Vec<EnrolmentSummary>, E>
    where
        L: FnOnce(Vec<Uuid>) -> F,
        F: Future<Output = Result<Vec<EnrolmentSummary>, E>>,
    {
        let mut found = Vec::with_capacity(ids.len());
        let mut missing = Vec::new();
        for id in ids {
            match self.kept(&self.inner.summaries, id) {
                Some(kept) => found.push(kept.summary),
                None => missing.push(*id),
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let since: HashMap<Uuid, Since> = missing.iter().map(|id| (*id, self.since_portfolio(*id))).collect();
        let as_of = today();
        let loaded = load(missing).await?;
        for summary in &loaded {
            if let Some(since) = since.get(&summary.id) {
                self.keep(since, &self.inner.summaries, summary.id, KeptSummary { summary: summary.clone(), as_of });
            }
        }
        found.extend(loaded);
        Ok(found)
    }

    /// Drops everything kept: what is asked for next is read from the database.
    pub fn forget_all(&self) {
        self.inner.forget_all();
    }

    /// Waits until this process has heard every change committed before the call, so that what it
    /// serves from memory afterwards is at least as new. If that cannot be confirmed, everything
    /// kept is dropped instead.
    pub async fn settle(&self, pool: &PgPool) {
        if !self.inner.live.load(Ordering::SeqCst) {
            return;
        }
        let payload =
            format!("settle:{}:{}", self.inner.process, self.inner.next_settle.fetch_add(1, Ordering::SeqCst));
        let (heard, hear) = oneshot::channel();
        self.inner.waiting.lock().expect("settle waiters").insert(payload.clone(), heard);
        // Notifications reach listeners in the order their transactions committed: hearing this
        // one means having heard every one committed before it.
        let sent = sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, payload).execute(pool).await;
        let confirmed = sent.is_ok() && tokio::time::timeout(SETTLE_WAIT, hear).await.is_ok_and(|r| r.is_ok());
        if !confirmed {
            self.inner.waiting.lock().expect("settle waiters").remove(&payload);
            self.inner.forget_all();
            tracing::warn!("could not confirm hearing of recent changes; dropped what was kept");
        }
    }
}

impl Default for Changes {
    fn default() -> Self {
        Changes::new()
    }
}

impl Inner {
    /// The generation counter of `key`'s stripe.
    fn stripe(&self, kind: Kind, key: &str) -> &AtomicU64 {
        &self.generations[self.stripe_of(kind, key)]
    }

    fn stripe_of(&self, kind: Kind, key: &str) -> usize {
        (self.hasher.hash_one((kind as u8, key)) % STRIPES as u64) as usize
    }

    /// Whether no change to the key a read began at `since` has been heard since.
    fn unchanged(&self, since: &Since) -> bool {
        self.generations[since.stripe].load(Ordering::SeqCst) == since.generation
    }

    fn bump_all(&self) {
        for generation in &self.generations {
            generation.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn forget_all(&self) {
        self.bump_all();
        self.sessions.invalidate_all();
        self.users.invalidate_all();
        self.unread.invalidate_all();
        self.tokens.invalidate_all();
        self.portfolios.invalidate_all();
        self.summaries.invalidate_all();
        self.grids.invalidate_all();
        self.dashboards.invalidate_all();
        self.details.invalidate_all();
        self.verifier_scopes.invalidate_all();
        self.trail_actions.invalidate_all();
        self.chain_checks.invalidate_all();
    }

    fn forget(&self, kind: Kind, key: &str) {
        if key == "*" {
            self.bump_all();
            match kind {
                Kind::Session => self.sessions.invalidate_all(),
                Kind::User => {
                    self.users.invalidate_all();
                    self.chain_checks.invalidate_all();
                }
                Kind::Unread => self.unread.invalidate_all(),
                Kind::Token => self.tokens.invalidate_all(),
                Kind::Portfolio => {
                    self.portfolios.invalidate_all();
                    self.summaries.invalidate_all();
                    self.grids.invalidate_all();
                }
                Kind::Dashboard => {
                    self.dashboards.invalidate_all();
                    self.verifier_scopes.invalidate_all();
                }
                Kind::Evidence => self.details.invalidate_all(),
                Kind::Audit => {
                    self.trail_actions.invalidate_all();
                    self.chain_checks.invalidate_all();
                }
            }
            return;
        }
        // Count first: a read that began before this change then keeps nothing (`through`).
        self.stripe(kind, key).fetch_add(1, Ordering::SeqCst);
        match kind {
            Kind::Session => self.sessions.invalidate(key),
            Kind::Token => self.tokens.invalidate(key),
            Kind::Audit => match key {
                "actions" => self.trail_actions.invalidate(key),
                "checks" => self.chain_checks.invalidate(key),
                _ => {}
            },
            Kind::User | Kind::Unread | Kind::Portfolio | Kind::Dashboard | Kind::Evidence => {
                let Ok(id) = key.parse::<Uuid>() else { return };
                match kind {
                    Kind::User => {
                        self.users.invalidate(&id);
                        // The latest check names who ran it.
                        self.chain_checks.invalidate_all();
                    }
                    Kind::Unread => self.unread.invalidate(&id),
                    Kind::Dashboard => {
                        self.dashboards.invalidate(&id);
                        self.verifier_scopes.invalidate(&id);
                    }
                    // A change to a portfolio leaves its items' pages to be dropped when next
                    // asked for (`kept_detail`).
                    Kind::Evidence => self.details.invalidate(&id),
                    _ => {
                        self.portfolios.invalidate(&id);
                        self.summaries.invalidate(&id);
                        self.grids.invalidate(&(id, false));
                        self.grids.invalidate(&(id, true));
                    }
                }
            }
        }
    }

    fn heard(&self, payload: &str) {
        let Some((kind, key)) = payload.split_once(':') else { return };
        if kind == "settle" {
            if let Some(waiter) = self.waiting.lock().expect("settle waiters").remove(payload) {
                let _ = waiter.send(());
            }
            return;
        }
        match Kind::parse(kind) {
            Some(kind) => self.forget(kind, key),
            None => tracing::warn!(payload, "unknown change notification"),
        }
    }

    fn stop_serving(&self) {
        self.live.store(false, Ordering::SeqCst);
        self.forget_all();
    }
}

/// Drops what has expired now and then, so an idle server keeps nothing for long.
async fn housekeeping(changes: Weak<Inner>) {
    let mut every = tokio::time::interval(HOUSEKEEPING);
    loop {
        every.tick().await;
        let Some(inner) = changes.upgrade() else { return };
        inner.sessions.run_pending_tasks();
        inner.users.run_pending_tasks();
        inner.unread.run_pending_tasks();
        inner.tokens.run_pending_tasks();
        inner.portfolios.run_pending_tasks();
        inner.summaries.run_pending_tasks();
        inner.grids.run_pending_tasks();
        inner.dashboards.run_pending_tasks();
        inner.details.run_pending_tasks();
        inner.verifier_scopes.run_pending_tasks();
        inner.trail_actions.run_pending_tasks();
        inner.chain_checks.run_pending_tasks();
    }
}

/// Listens for changes until the pool closes, listening again whenever the connection is lost.
async fn listen(changes: Weak<Inner>, pool: PgPool) {
    loop {
        let mut listener = match subscribe(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                let Some(inner) = changes.upgrade() else { return };
                inner.stop_serving();
                drop(inner);
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(%error, "cannot listen for changes; serving everything from the database");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        match changes.upgrade() {
            // Dropped before listening, so anything read meanwhile is read again.
            Some(inner) => {
                inner.forget_all();
                inner.live.store(true, Ordering::SeqCst);
            }
            None => return,
        }
        loop {
            // Ends with the pool (an error) or, at the next notification, once nothing uses
            // `changes` any more.
            let next = listener.try_recv().await;
            let Some(inner) = changes.upgrade() else { return };
            match next {
                Ok(Some(notification)) => inner.heard(notification.payload()),
                Ok(None) => {
                    // The connection was lost (and made again): what changed meanwhile is unknown.
                    tracing::warn!("lost the change listener's connection; dropped what was kept");
                    inner.forget_all();
                }
                Err(error) => {
                    inner.stop_serving();
                    if pool.is_closed() {
                        return;
                    }
                    tracing::warn!(%error, "change listener failed; serving everything from the database");
                    break;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

async fn subscribe(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}
