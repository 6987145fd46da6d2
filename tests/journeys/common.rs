//! The test harness: one embedded PostgreSQL cluster per test run (started with the product's
//! own supervisor), a fresh database per test copied from a migrated template, and the real
//! application served over HTTP on a free port.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use eportfolio::accounts::{self, Email};
use eportfolio::auth::Role;
use eportfolio::config::Config;
use eportfolio::db::{self, EmbeddedPostgres, Owner};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::process::{Child, Command};
use uuid::Uuid;

const TEMPLATE: &str = "eportfolio_template";

struct Cluster {
    postgres: EmbeddedPostgres,
    _dir: tempfile::TempDir,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
static TEMPLATE_READY: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
/// Databases of tests that have finished, dropped before the next one is made: a whole run makes
/// some 160 of them, and kept they filled gigabytes of disk.
static FINISHED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Removes the clusters earlier test runs left in /tmp (a static is never dropped, so each run
/// leaves its own): those whose lock no process holds any more.
fn remove_left_over_clusters() {
    let Ok(entries) = std::fs::read_dir("/tmp") else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_name().to_string_lossy().starts_with("epf-test-") {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new().write(true).open(path.join("eportfolio.lock")) else { continue };
        if let Ok(lock) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            let _ = std::fs::remove_dir_all(&path);
            drop(lock);
        }
    }
}

fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        remove_left_over_clusters();
        // A short path: the socket path must fit in 107 bytes.
        let dir = tempfile::Builder::new().prefix("epf-test-").tempdir_in("/tmp").expect("temp dir");
        let postgres = EmbeddedPostgres::start(dir.path(), Owner::Server).expect("embedded PostgreSQL starts");
        // The cluster is stopped by its parent-death signal when the test process exits.
        Cluster { postgres, _dir: dir }
    })
}

fn options(database: &str) -> PgConnectOptions {
    cluster().postgres.connect_options(database)
}

async fn template() {
    TEMPLATE_READY
        .get_or_init(|| async {
            let mut admin = PgConnection::connect_with(&options("postgres")).await.expect("connect");
            sqlx::query("DROP DATABASE IF EXISTS eportfolio_template").execute(&mut admin).await.unwrap();
            sqlx::query("CREATE DATABASE eportfolio_template").execute(&mut admin).await.unwrap();
            let pool = PgPoolOptions::new().max_connections(2).connect_with(options(TEMPLATE)).await.unwrap();
            db::migrate(&pool).await.expect("migrations run");
            pool.close().await;
        })
        .await;
}

/// Drops the databases of the tests that have finished.
async fn drop_finished(admin: &mut PgConnection) {
    let finished = std::mem::take(&mut *FINISHED.lock().unwrap());
    for name in finished {
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
            .execute(&mut *admin)
            .await
            .unwrap_or_else(|error| panic!("drop the finished test database {name}: {error}"));
    }
}

/// A `DATABASE_URL` for a new, empty database on the test cluster.
pub async fn empty_database_url() -> String {
    let name = format!("empty_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect_with(&options("postgres")).await.expect("connect");
    drop_finished(&mut admin).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
    cluster().postgres.url(&name)
}

/// A fresh database for one test, and its URL.
pub async fn fresh_database() -> (PgPool, String) {
    template().await;
    let name = format!("test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect_with(&options("postgres")).await.expect("connect");
    drop_finished(&mut admin).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    admin.close().await.ok();
    let pool =
        PgPoolOptions::new().max_connections(8).connect_with(options(&name)).await.expect("connect to test database");
    (pool, cluster().postgres.url(&name))
}

pub struct TestApp {
    pub address: String,
    pub pool: PgPool,
    /// The test database's URL, for running the `eportfolio` binary against it.
    pub database_url: String,
    /// The settings the app runs with.
    pub config: Config,
    pub data_dir: PathBuf,
    _data: tempfile::TempDir,
    pub centre: Uuid,
    changes: eportfolio::db::changes::Changes,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(name) = self.pool.connect_options().get_database() {
            FINISHED.lock().unwrap().push(name.to_owned());
        }
    }
}

#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: Uuid,
    pub email: String,
    pub password: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let (pool, database_url) = fresh_database().await;
        let data = tempfile::tempdir().expect("data dir");
        let mut config = Config::for_data_dir(data.path().to_path_buf());
        adjust(&mut config);
        let state = eportfolio::AppState::new(pool.clone(), config.clone()).await.expect("state");
        eportfolio::notifications::spawn_mailer(&state).expect("usable mail settings");
        let changes = state.changes.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        // The product's own accept loop, with its header deadline, serving until the test ends.
        let rules = eportfolio::web::server::ConnectionRules::from_config(&config);
        tokio::spawn(eportfolio::web::server::serve(listener, eportfolio::app(state), rules, std::future::pending()));
        let mut conn = pool.acquire().await.unwrap();
        let centre = accounts::ensure_centre(&mut conn, "Test Centre").await.unwrap();
        TestApp {
            address,
            pool,
            database_url,
            config,
            data_dir: data.path().to_path_buf(),
            _data: data,
            centre,
            changes,
        }
    }

    /// Waits until the server has heard of every change committed so far, as it does itself after
    /// each request that changes something: for a test that writes to the database directly.
    pub async fn settle(&self) {
        self.changes.settle(&self.pool).await;
    }

    /// Drops everything the server keeps in memory, so that what follows is read from the database.
    #[allow(dead_code)] // used by the statement-count binary (tests/query_counts.rs), not the journeys
    pub fn forget(&self) {
        self.changes.forget_all();
    }

    /// A person with `role` at another centre (created if new).
    pub async fn add_user_elsewhere(&self, centre: &str, role: Role, name: &str) -> TestUser {
        let mut conn = self.pool.acquire().await.unwrap();
        let centre = accounts::ensure_centre(&mut conn, centre).await.unwrap();
        self.add_user_at(centre, role, name).await
    }

    pub async fn add_user(&self, role: Role, name: &str) -> TestUser {
        self.add_user_at(self.centre, role, name).await
    }

    async fn add_user_at(&self, centre: Uuid, role: Role, name: &str) -> TestUser {
        let email = format!(
            "{}.{}@example.org",
            name.to_lowercase().replace(' ', "."),
            &Uuid::new_v4().simple().to_string()[..6]
        );
        let password = format!("correct horse {}", Uuid::new_v4().simple());
        // One transaction, as the product's callers use: the audit chain's lock lasts until commit.
        let mut tx = self.pool.begin().await.unwrap();
        let id = accounts::add_user(&mut tx, None, centre, &Email::parse(&email).unwrap(), name, role, Some(&password))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        TestUser { id, email, password }
    }

    pub async fn enrol(&self, learner: &TestUser, assessor: &TestUser, iqa: Option<&TestUser>) -> Uuid {
        let mut tx = self.pool.begin().await.unwrap();
        let id = accounts::enrol(
            &mut tx,
            None,
            None,
            &learner.email,
            "CC20",
            &assessor.email,
            iqa.map(|u| u.email.as_str()),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    }

    /// Gives a verifier access to the test centre from `from_days` to `to_days` around today.
    pub async fn grant_verifier(&self, verifier: &TestUser, from_days: i64, to_days: i64) -> Uuid {
        let today = chrono::Utc::now().date_naive();
        let mut conn = self.pool.acquire().await.unwrap();
        accounts::grant_verifier_access(
            &mut conn,
            None,
            verifier.id,
            self.centre,
            today + chrono::Duration::days(from_days),
            today + chrono::Duration::days(to_days),
        )
        .await
        .unwrap()
    }

    /// A learner, an assessor, an IQA and a verifier at the centre, the learner enrolled on CC20.
    pub async fn cast(&self) -> Cast {
        let learner = self.add_user(Role::Learner, "Lee Learner").await;
        let assessor = self.add_user(Role::Assessor, "Ada Assessor").await;
        let iqa = self.add_user(Role::Iqa, "Ian Quality").await;
        let verifier = self.add_user(Role::Eqa, "Vera Verifier").await;
        let enrolment = self.enrol(&learner, &assessor, Some(&iqa)).await;
        self.grant_verifier(&verifier, -30, 30).await;
        Cast { learner, assessor, iqa, verifier, enrolment }
    }

    /// A browser-like client (cookies, no automatic redirects) signed in as `user` through the
    /// login form; like a browser, it sends the CSRF token of the last page it read with forms.
    pub async fn browser_for(&self, user: &TestUser) -> Browser {
        browser_at(&self.address, user).await
    }

    /// An API client signed in with a session cookie; it sends `X-CSRF-Token` on writes.
    pub async fn api_for(&self, user: &TestUser) -> Browser {
        api_at(&self.address, user).await
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&self.pool).await.unwrap()
    }

    /// Every file stored or being stored under the data dir.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir.join("files"))
    }
}

/// Every file under `dir`, in any subfolder.
pub fn files_under(dir: &std::path::Path) -> Vec<PathBuf> {
    fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() { walk(&path, out) } else { out.push(path) }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files
}

/// A browser-like client of the server at `base`, signed in as `user` through the login form.
pub async fn browser_at(base: &str, user: &TestUser) -> Browser {
    let browser = Browser::at(base);
    browser.page("/login").await;
    let response =
        browser.post_form("/login", &[("email", &user.email), ("password", &user.password), ("next", "/")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "sign-in as {} should redirect", user.email);
    browser.page("/dashboard").await;
    browser
}

/// An API client of the server at `base`, signed in with a session cookie as `user`.
pub async fn api_at(base: &str, user: &TestUser) -> Browser {
    let api = Browser::at(base);
    let response =
        api.post_json("/api/v1/session", &serde_json::json!({"email": user.email, "password": user.password})).await;
    assert_eq!(response.status(), StatusCode::OK, "API sign-in as {}", user.email);
    let session: Value = response.json().await.unwrap();
    *api.csrf.lock().unwrap() = Some(session["csrf_token"].as_str().expect("a CSRF token").to_string());
    api.csrf_in_header.store(true, Ordering::Relaxed);
    api
}

pub struct Cast {
    pub learner: TestUser,
    pub assessor: TestUser,
    pub iqa: TestUser,
    pub verifier: TestUser,
    pub enrolment: Uuid,
}

/// An HTTP client with its own cookie jar, that does not follow redirects.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
    /// The CSRF token last seen in a page, or given at API sign-in.
    pub csrf: Mutex<Option<String>>,
    csrf_in_header: AtomicBool,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser::at(&app.address)
    }

    /// A client of the server at `base` (`http://host:port`).
    pub fn at(base: &str) -> Browser {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            // The server closes a kept-alive connection idle for its header timeout (10 s);
            // a request sent on one just as it closes fails in transit. Browsers retry such
            // a request on a new connection; this client instead stops reusing a connection
            // well before the server would close it.
            .pool_idle_timeout(std::time::Duration::from_secs(5))
            .build()
            .unwrap();
        Browser {
            client,
            base: base.to_string(),
            token: None,
            csrf: Mutex::new(None),
            csrf_in_header: AtomicBool::new(false),
        }
    }

    pub fn with_token(app: &TestApp, token: &str) -> Browser {
        Browser::with_token_at(&app.address, token)
    }

    /// A client of the server at `base` sending `Authorization: Bearer token`.
    pub fn with_token_at(base: &str, token: &str) -> Browser {
        let mut browser = Browser::at(base);
        browser.token = Some(token.to_string());
        browser
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let writes = method != reqwest::Method::GET;
        let builder = self.client.request(method, format!("{}{}", self.base, path));
        match (&self.token, self.csrf_token()) {
            (Some(token), _) => builder.bearer_auth(token),
            (None, Some(csrf)) if writes && self.csrf_in_header.load(Ordering::Relaxed) => {
                builder.header("X-CSRF-Token", csrf)
            }
            _ => builder,
        }
    }

    /// A request with this client's cookies, token and CSRF header, to build by hand.
    pub fn request_raw(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request(method, path)
    }

    pub fn csrf_token(&self) -> Option<String> {
        self.csrf.lock().unwrap().clone()
    }

    /// Posts the upload form with exactly these fields and files, the CSRF token first.
    pub async fn upload(&self, path: &str, fields: &[(&str, &str)], files: Vec<(&str, Vec<u8>)>) -> reqwest::Response {
        let mut form = Form::new().text("csrf_token", self.csrf_token().unwrap_or_default());
        for (name, value) in fields {
            form = form.text(name.to_string(), value.to_string());
        }
        for (name, bytes) in files {
            form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
        }
        self.post_multipart(path, form).await
    }

    /// The upload form as a browser sends it: the CSRF token first, then the fields and file.
    pub fn upload_form(
        &self,
        title: &str,
        criteria: &[&str],
        declaration: bool,
        file: Option<(&str, Vec<u8>)>,
    ) -> Form {
        let form = Form::new().text("csrf_token", self.csrf_token().unwrap_or_default());
        evidence_form(form, title, criteria, declaration, file)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path).send().await.unwrap()
    }

    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut builder = self.request(reqwest::Method::GET, path);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.send().await.unwrap()
    }

    /// A page's HTML; remembers its CSRF token as the page's forms would carry it.
    pub async fn page(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        let html = response.text().await.unwrap();
        if let Some(token) = html.split("name=\"csrf_token\" value=\"").nth(1).and_then(|rest| rest.split('"').next()) {
            *self.csrf.lock().unwrap() = Some(token.to_string());
        }
        html
    }

    /// Posts a form with the page's CSRF token, as a browser would.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token().unwrap_or_default();
        let mut fields = fields.to_vec();
        fields.insert(0, ("csrf_token", &token));
        self.post_form_as_is(path, &fields).await
    }

    /// Posts exactly these fields, with no CSRF token added.
    pub async fn post_form_as_is(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.request(reqwest::Method::POST, path).form(fields).send().await.unwrap()
    }

    pub async fn post_csv(&self, path: &str, body: String) -> reqwest::Response {
        self.request(reqwest::Method::POST, path).header("content-type", "text/csv").body(body).send().await.unwrap()
    }

    pub async fn patch_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::PATCH, path).json(body).send().await.unwrap()
    }

    pub async fn request_delete(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::DELETE, path).send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path).json(body).send().await.unwrap()
    }

    /// A JSON post that may fail to get an answer (the server died, say).
    pub async fn try_post_json(&self, path: &str, body: &Value) -> reqwest::Result<reqwest::Response> {
        self.request(reqwest::Method::POST, path).json(body).send().await
    }

    /// A multipart post that may fail to get an answer.
    pub async fn try_post_multipart(&self, path: &str, form: Form) -> reqwest::Result<reqwest::Response> {
        self.request(reqwest::Method::POST, path).multipart(form).send().await
    }

    pub async fn post_multipart(&self, path: &str, form: Form) -> reqwest::Response {
        self.request(reqwest::Method::POST, path).multipart(form).send().await.unwrap()
    }

    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// The upload form's fields for one file mapped to `criteria`.
pub fn evidence_form(
    form: Form,
    title: &str,
    criteria: &[&str],
    declaration: bool,
    file: Option<(&str, Vec<u8>)>,
) -> Form {
    let mut form = form
        .text("title", title.to_string())
        .text("method", "product")
        .text("occurred_on", "2026-03-17")
        .text("description", "");
    for criterion in criteria {
        form = form.text("criteria", criterion.to_string());
    }
    if declaration {
        form = form.text("declaration", "yes").text("third_party_confirmed", "yes");
    }
    if let Some((name, bytes)) = file {
        form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
    }
    form
}

/// The API's multipart body: a `metadata` JSON part and file parts.
pub fn api_evidence(metadata: Value, files: Vec<(&str, Vec<u8>)>) -> Form {
    let mut form = Form::new().part("metadata", Part::text(metadata.to_string()).mime_str("application/json").unwrap());
    for (name, bytes) in files {
        form = form.part("file", Part::bytes(bytes).file_name(name.to_string()));
    }
    form
}

/// A small real PDF.
pub fn pdf() -> Vec<u8> {
    include_bytes!("../../demo/files/sales-dashboard-march.pdf").to_vec()
}

/// A small real WAV recording.
pub fn wav() -> Vec<u8> {
    include_bytes!("../../demo/files/sales-call-recording.wav").to_vec()
}

/// A real S3-compatible server (`s3s-fs`, installed by `scripts/test`) on a free port, storing
/// objects as files under a temporary folder; stopped when dropped.
pub struct S3Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl S3Server {
    const ACCESS_KEY: &str = "eportfolio-test";
    const SECRET_KEY: &str = "eportfolio-test-secret";

    /// Starts the server with one empty bucket.
    pub async fn start(bucket: &str) -> S3Server {
        let binary = std::env::var_os("PATH")
            .into_iter()
            .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
            .chain(std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo/bin")))
            .map(|dir| dir.join("s3s-fs"))
            .find(|path| path.is_file())
            .expect("s3s-fs is not installed: scripts/test installs it (cargo install s3s-fs --features binary)");
        let root = tempfile::tempdir().expect("object storage folder");
        std::fs::create_dir(root.path().join(bucket)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = std::process::Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", Self::ACCESS_KEY, "--secret-key", Self::SECRET_KEY])
            .arg(root.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(std::time::Instant::now() < deadline, "s3s-fs never listened on port {port}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        S3Server { endpoint: format!("http://127.0.0.1:{port}"), root, child }
    }

    /// Points `config` at `s3://bucket/prefix` on this server.
    pub fn configure(&self, config: &mut Config, bucket: &str, prefix: &str) {
        config.storage = Some(format!("s3://{bucket}/{prefix}"));
        config.aws = self.environment();
    }

    /// The AWS_* settings that reach this server.
    pub fn environment(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT", self.endpoint.as_str()),
            ("AWS_ALLOW_HTTP", "true"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// Every object stored, as files under the server's folder (its own bookkeeping files, whose
    /// names start with a dot, left out).
    pub fn objects(&self) -> Vec<PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out)
                } else if !entry.file_name().to_string_lossy().starts_with('.') {
                    out.push(path)
                }
            }
        }
        let mut files = Vec::new();
        walk(self.root.path(), &mut files);
        files
    }
}

/// An assessor's confirmation that evidence is valid, authentic, current and sufficient, as the
/// API takes it (needed with every "met").
pub fn vacs() -> Value {
    serde_json::json!(["valid", "authentic", "current", "sufficient"])
}

/// The same confirmation as the decision form's ticked boxes.
pub const VACS_FORM: [(&str, &str); 4] =
    [("confirmed", "valid"), ("confirmed", "authentic"), ("confirmed", "current"), ("confirmed", "sufficient")];

/// A real SMTP server (Python's `aiosmtpd`, installed by `scripts/test`, with the handler in
/// `tests/smtp/maildir_sink.py`) on a local port, writing each message it receives as a file in a
/// temporary folder; stopped when dropped.
pub struct SmtpSink {
    pub port: u16,
    folder: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    /// A port nothing listens on (yet).
    pub fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// The `EPORTFOLIO_SMTP_URL` for a sink on `port`.
    pub fn url_for(port: u16) -> String {
        format!("smtp://127.0.0.1:{port}")
    }

    pub async fn start() -> SmtpSink {
        Self::start_on(Self::free_port()).await
    }

    /// Starts the sink on `port` and waits until it accepts connections.
    pub async fn start_on(port: u16) -> SmtpSink {
        let folder = tempfile::tempdir().expect("mail folder");
        let handlers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp");
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "maildir_sink.Maildir"])
            .arg(folder.path())
            .env("PYTHONPATH", handlers)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 starts (scripts/test installs aiosmtpd)");
        let mut sink = SmtpSink { port, folder, child };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if let Ok(Some(status)) = sink.child.try_wait() {
                panic!(
                    "the SMTP sink exited ({status}): is aiosmtpd installed? scripts/test installs it (pip install aiosmtpd)"
                );
            }
            assert!(std::time::Instant::now() < deadline, "the SMTP sink never listened on port {port}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        sink
    }

    pub fn url(&self) -> String {
        Self::url_for(self.port)
    }

    /// Every message received so far, whole (envelope lines first), oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(self.folder.path())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".eml"))
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
            .collect();
        files.sort();
        files.into_iter().map(|(_, path)| std::fs::read_to_string(path).unwrap()).collect()
    }

    /// Waits (at most a minute) until `count` messages have arrived, and returns them all.
    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected {count} message(s), the sink has {}",
                messages.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// Runs the `eportfolio` binary against `database_url` with its files under `data_dir`, as an
/// operator would; answers whether it succeeded and everything it printed.
pub async fn run_cli(database_url: &str, data_dir: &std::path::Path, args: &[&str]) -> (bool, String) {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_eportfolio"))
        .env("DATABASE_URL", database_url)
        .env("EPORTFOLIO_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .await
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// The real binary serving on a free port against `database_url`, files under `data_dir`.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub async fn start(database_url: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_eportfolio"));
        command
            .env("DATABASE_URL", database_url)
            .env("EPORTFOLIO_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .args(["--addr", &format!("127.0.0.1:{port}"), "serve"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let server =
            Server { child: command.spawn().expect("the server starts"), base: format!("http://127.0.0.1:{port}") };
        server.wait_ready().await;
        server
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/readyz", self.base)).await
                && response.status() == StatusCode::OK
            {
                return;
            }
            assert!(Instant::now() < deadline, "{} never became ready", self.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id().expect("still running") as i32), signal).unwrap();
    }

    /// SIGKILL: no chance to finish anything.
    pub async fn kill_9(mut self) {
        self.signal(Signal::SIGKILL);
        self.child.wait().await.unwrap();
    }
}
