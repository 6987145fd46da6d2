//! 200 people at one centre using the real `eportfolio` binary at the same time, for a minute
//! (`CONCURRENCY_SECS` to change it): learners upload evidence mapped to criteria with
//! idempotency keys (and retry some), read their portfolio and progress and write comments;
//! assessors read their caseload, record decisions and comment; the IQA reads their pages. Every
//! person pauses a moment between steps, as people do. Every
//! write the server acknowledged is then found in the database exactly once, with its audit
//! event; no request failed (no 5xx, no broken connection); the audit chain still verifies.
//! Prints the throughput and latency it achieved.

#![allow(dead_code)] // the shared harness has helpers this binary does not use

#[path = "journeys/common.rs"]
mod common;

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eportfolio::auth::Role;
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use common::{Browser, TestApp, TestUser, api_at, api_evidence, pdf, vacs};

const LEARNERS: usize = 186;
const ASSESSORS: usize = 12;
/// With the IQA and the administrator who checks the audit trail afterwards: 200 people.
const PEOPLE: usize = LEARNERS + ASSESSORS + 2;

/// The real binary on a free port against the test database: its own pool, serve loop and limits.
struct Server {
    child: Child,
    base: String,
    log: std::path::PathBuf,
}

impl Server {
    async fn start(database_url: &str, data_dir: &Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = data_dir.join("server.log");
        let child = Command::new(env!("CARGO_BIN_EXE_eportfolio"))
            .env("DATABASE_URL", database_url)
            .env("EPORTFOLIO_DATA_DIR", data_dir)
            .env("RUST_LOG", "warn")
            .args(["--addr", &format!("127.0.0.1:{port}"), "serve"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("the server starts");
        let server = Server { child, base: format!("http://127.0.0.1:{port}"), log };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = reqwest::get(format!("{}/readyz", server.base)).await
                && response.status() == StatusCode::OK
            {
                return server;
            }
            assert!(Instant::now() < deadline, "{} never became ready", server.base);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What the server logged (warnings and errors), for a failure's message.
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Everything the people were told, and how long each answer took.
#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    uploads: AtomicU64,
    replays: AtomicU64,
    comments: AtomicU64,
    decisions: AtomicU64,
    server_errors: AtomicU64,
    transport_errors: AtomicU64,
    /// Answers other than the one expected, described.
    unexpected: Mutex<Vec<String>>,
    latencies: Mutex<Vec<Duration>>,
}

impl Tally {
    /// Sends `request`; answers the response if its status is `expected`, else records why not.
    async fn send(
        &self,
        what: &str,
        expected: StatusCode,
        request: reqwest::RequestBuilder,
    ) -> Option<reqwest::Response> {
        let started = Instant::now();
        let sent = request.send().await;
        self.latencies.lock().unwrap().push(started.elapsed());
        self.requests.fetch_add(1, Ordering::Relaxed);
        match sent {
            Ok(response) if response.status() == expected => Some(response),
            Ok(response) => {
                let status = response.status();
                if status.is_server_error() {
                    self.server_errors.fetch_add(1, Ordering::Relaxed);
                }
                let body = response.text().await.unwrap_or_default();
                self.unexpected.lock().unwrap().push(format!("{what}: {status} {}", &body[..body.len().min(300)]));
                None
            }
            Err(error) => {
                self.transport_errors.fetch_add(1, Ordering::Relaxed);
                let mut chain = error.to_string();
                let mut source = std::error::Error::source(&error);
                while let Some(cause) = source {
                    chain.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                let elapsed = started.elapsed().as_millis();
                self.unexpected.lock().unwrap().push(format!("{what}: {chain} (after {elapsed} ms)"));
                None
            }
        }
    }

    /// A page or API read that must answer 200 with its whole body.
    async fn read(&self, client: &Browser, what: &str, path: &str) {
        if let Some(response) = self.send(what, StatusCode::OK, client.request_raw(Method::GET, path)).await
            && let Err(error) = response.bytes().await
        {
            self.transport_errors.fetch_add(1, Ordering::Relaxed);
            self.unexpected.lock().unwrap().push(format!("{what}: body cut off: {error}"));
        }
    }
}

struct Learner {
    user: TestUser,
    client: Browser,
    enrolment: uuid::Uuid,
    /// Index of their assessor's queue.
    assessor: usize,
}

/// Items waiting for each assessor, as the learners' uploads are acknowledged.
type Queues = Arc<Vec<Mutex<VecDeque<uuid::Uuid>>>>;

async fn learner_day(learner: Learner, queues: Queues, tally: Arc<Tally>, until: Instant) {
    let evidence = format!("/api/v1/enrolments/{}/evidence", learner.enrolment);
    let mut mine: Vec<uuid::Uuid> = Vec::new();
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let key = format!("{}-{n}", learner.user.id);
        let metadata = json!({"title": format!("Outbound call log {n}"), "method": "product", "occurred_on": "2026-03-02",
                              "criteria": ["1.1", "1.2"], "declaration": true, "third_party_confirmed": true,
                              "description": "The calls I made to lapsed customers this week."});
        // Each learner's own document: the same PDF with a comment of its own after its end.
        let mut file = pdf();
        file.extend_from_slice(format!("\n% call log {key}\n").as_bytes());
        let upload = || {
            learner
                .client
                .request_raw(Method::POST, &evidence)
                .header("Idempotency-Key", &key)
                .multipart(api_evidence(metadata.clone(), vec![("call-log.pdf", file.clone())]))
        };
        if let Some(response) = tally.send("upload", StatusCode::CREATED, upload()).await
            && let Ok(item) = response.json::<Value>().await
        {
            tally.uploads.fetch_add(1, Ordering::Relaxed);
            let id: uuid::Uuid = item["id"].as_str().unwrap().parse().unwrap();
            mine.push(id);
            queues[learner.assessor].lock().unwrap().push_back(id);
            // Every third upload (the first among them) the script "lost" the answer and sends it again.
            if n % 3 == 1
                && let Some(again) = tally.send("retried upload", StatusCode::CREATED, upload()).await
            {
                if again.headers().get("idempotent-replayed").is_some_and(|v| v == "true") {
                    tally.replays.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.unexpected.lock().unwrap().push("a retried upload was not a replay".into());
                }
            }
        }
        tally.read(&learner.client, "portfolio page", &format!("/enrolments/{}", learner.enrolment)).await;
        if let Some(item) = mine.last() {
            let comment = learner
                .client
                .request_raw(Method::POST, &format!("/api/v1/evidence/{item}/comments"))
                .json(&json!({"body": format!("Call {n}: the customer asked to be called back on Friday.")}));
            if tally.send("learner comment", StatusCode::CREATED, comment).await.is_some() {
                tally.comments.fetch_add(1, Ordering::Relaxed);
            }
        }
        tally.read(&learner.client, "progress", &format!("/api/v1/enrolments/{}/progress", learner.enrolment)).await;
        think(n).await;
    }
}

/// A person reads what they got before the next click: between a quarter and three quarters of
/// a second, varying from one step to the next.
async fn think(step: usize) {
    tokio::time::sleep(Duration::from_millis(250 + (step as u64 * 137) % 500)).await;
}

async fn assessor_day(client: Browser, queue: usize, queues: Queues, tally: Arc<Tally>, until: Instant) {
    while Instant::now() < until {
        tally.read(&client, "caseload page", "/dashboard").await;
        tally.read(&client, "caseload API", "/api/v1/dashboard").await;
        let next = queues[queue].lock().unwrap().pop_front();
        let Some(item) = next else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        tally.read(&client, "evidence", &format!("/api/v1/evidence/{item}")).await;
        let decisions = [
            json!({"criterion": "1.1", "outcome": "met", "feedback": "Clear log of every call and its outcome.",
                   "confirmed": vacs()}),
            json!({"criterion": "1.2", "outcome": "not_yet",
                   "feedback": "Show how you chose which lapsed customers to call."}),
        ];
        for decision in decisions {
            let request =
                client.request_raw(Method::POST, &format!("/api/v1/evidence/{item}/decisions")).json(&decision);
            if tally.send("decision", StatusCode::CREATED, request).await.is_some() {
                tally.decisions.fetch_add(1, Ordering::Relaxed);
            }
        }
        let comment = client
            .request_raw(Method::POST, &format!("/api/v1/evidence/{item}/comments"))
            .json(&json!({"body": "Good start. Bring your call list to our next review."}));
        if tally.send("assessor comment", StatusCode::CREATED, comment).await.is_some() {
            tally.comments.fetch_add(1, Ordering::Relaxed);
        }
        think(queue).await;
    }
}

async fn iqa_day(client: Browser, enrolments: Vec<uuid::Uuid>, tally: Arc<Tally>, until: Instant) {
    let mut n = 0;
    while Instant::now() < until {
        tally.read(&client, "IQA dashboard", "/dashboard").await;
        tally.read(&client, "IQA coverage", "/iqa/coverage").await;
        tally.read(&client, "IQA plan", "/iqa/plan").await;
        tally.read(&client, "IQA portfolio", &format!("/enrolments/{}", enrolments[n % enrolments.len()])).await;
        n += 7;
        think(n).await;
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

async fn count(app: &TestApp, sql: &'static str) -> u64 {
    app.count(sql).await as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_people_for_a_minute_lose_no_write_and_see_no_error() {
    let seconds: u64 = std::env::var("CONCURRENCY_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let app = TestApp::spawn().await;
    let iqa = app.add_user(Role::Iqa, "Ian Quality").await;
    let admin = app.add_user(Role::Admin, "Ann Admin").await;
    let assessors: Vec<TestUser> = futures_util::stream::iter(0..ASSESSORS)
        .map(|i| {
            let app = &app;
            async move { app.add_user(Role::Assessor, &format!("Assessor {i}")).await }
        })
        .buffered(4)
        .collect()
        .await;
    let learners: Vec<(TestUser, uuid::Uuid, usize)> = futures_util::stream::iter(0..LEARNERS)
        .map(|i| {
            let (app, assessors, iqa) = (&app, &assessors, &iqa);
            async move {
                let learner = app.add_user(Role::Learner, &format!("Learner {i}")).await;
                let enrolment = app.enrol(&learner, &assessors[i % ASSESSORS], Some(iqa)).await;
                (learner, enrolment, i % ASSESSORS)
            }
        })
        .buffered(4)
        .collect()
        .await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&app.database_url, data.path()).await;

    // Everyone signs in for real, once, a few at a time (Argon2 is meant to be slow).
    let base = server.base.clone();
    let signed_in: Vec<Browser> = futures_util::stream::iter(
        learners.iter().map(|l| &l.0).chain(&assessors).chain([&iqa, &admin]).cloned().collect::<Vec<_>>(),
    )
    .map(|user| {
        let base = base.clone();
        async move { api_at(&base, &user).await }
    })
    .buffered(4)
    .collect()
    .await;
    assert_eq!(signed_in.len(), PEOPLE);
    let mut clients = signed_in.into_iter();

    let tally = Arc::new(Tally::default());
    let queues: Queues = Arc::new((0..ASSESSORS).map(|_| Mutex::new(VecDeque::new())).collect());
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    let enrolments: Vec<uuid::Uuid> = learners.iter().map(|l| l.1).collect();
    for (user, enrolment, assessor) in learners {
        let learner = Learner { user, client: clients.next().unwrap(), enrolment, assessor };
        tasks.spawn(learner_day(learner, queues.clone(), tally.clone(), until));
    }
    for queue in 0..ASSESSORS {
        tasks.spawn(assessor_day(clients.next().unwrap(), queue, queues.clone(), tally.clone(), until));
    }
    tasks.spawn(iqa_day(clients.next().unwrap(), enrolments, tally.clone(), until));
    let admin = clients.next().unwrap();
    while let Some(done) = tasks.join_next().await {
        done.expect("a person's task ran to its end");
    }
    let elapsed = started.elapsed();

    let mut latencies = std::mem::take(&mut *tally.latencies.lock().unwrap());
    latencies.sort();
    let requests = tally.requests.load(Ordering::Relaxed);
    println!(
        "{PEOPLE} people, {:.0} s: {requests} requests, {:.1} requests/s, p50 {} ms, p95 {} ms, p99 {} ms, max {} ms; \
         {} uploads ({} retried), {} decisions, {} comments",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50).as_millis(),
        percentile(&latencies, 0.95).as_millis(),
        percentile(&latencies, 0.99).as_millis(),
        latencies.last().unwrap().as_millis(),
        tally.uploads.load(Ordering::Relaxed),
        tally.replays.load(Ordering::Relaxed),
        tally.decisions.load(Ordering::Relaxed),
        tally.comments.load(Ordering::Relaxed),
    );

    let unexpected = tally.unexpected.lock().unwrap().clone();
    assert!(
        unexpected.is_empty(),
        "{} unexpected answers ({} server errors, {} broken connections), the first: {:#?}\nserver log:\n{}",
        unexpected.len(),
        tally.server_errors.load(Ordering::Relaxed),
        tally.transport_errors.load(Ordering::Relaxed),
        &unexpected[..unexpected.len().min(10)],
        server.log()
    );
    let uploads = tally.uploads.load(Ordering::Relaxed);
    let decisions = tally.decisions.load(Ordering::Relaxed);
    let comments = tally.comments.load(Ordering::Relaxed);
    assert!(uploads > 0 && decisions > 0 && comments > 0, "every kind of write happened");

    // Every acknowledged write is there once, with its audit event; retries added nothing.
    assert_eq!(count(&app, "SELECT count(*) FROM evidence_items").await, uploads, "evidence items");
    assert_eq!(count(&app, "SELECT count(*) FROM evidence_files").await, uploads, "files");
    assert_eq!(count(&app, "SELECT count(*) FROM evidence_criteria").await, 2 * uploads, "mappings");
    assert_eq!(count(&app, "SELECT count(*) FROM idempotency_keys").await, uploads, "idempotency keys");
    assert_eq!(count(&app, "SELECT count(*) FROM decisions").await, decisions, "decisions");
    assert_eq!(count(&app, "SELECT count(*) FROM evidence_comments").await, comments, "comments");
    assert_eq!(
        count(&app, "SELECT count(*) FROM audit_events WHERE action = 'evidence.created'").await,
        uploads,
        "audit events for uploads"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM audit_events WHERE action = 'decision.recorded'").await,
        decisions,
        "audit events for decisions"
    );
    assert_eq!(
        count(&app, "SELECT count(*) FROM audit_events WHERE action = 'comment.added'").await,
        comments,
        "audit events for comments"
    );

    // The progress the caseload reads, kept by triggers through all of that, is what a rebuild
    // from the decisions, mappings and items gives.
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("CREATE TEMP TABLE kept_awaiting AS SELECT * FROM awaiting_assessment")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("CREATE TEMP TABLE kept_judgements AS SELECT * FROM current_judgements")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("SELECT rebuild_assessment_progress()").execute(&mut *tx).await.unwrap();
    let differing: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM ((TABLE kept_awaiting EXCEPT TABLE awaiting_assessment)
                                      UNION ALL (TABLE awaiting_assessment EXCEPT TABLE kept_awaiting)) a)
              + (SELECT count(*) FROM ((TABLE kept_judgements EXCEPT TABLE current_judgements)
                                      UNION ALL (TABLE current_judgements EXCEPT TABLE kept_judgements)) j)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    let judged: i64 = sqlx::query_scalar("SELECT count(*) FROM current_judgements").fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    assert!(judged > 0, "decisions were judged");
    assert_eq!(differing, 0, "the caseload's progress tables agree with a rebuild");

    let verification = admin.json("/api/v1/audit/verify").await;
    assert_eq!(verification["intact"], true, "{verification}");
    assert!(verification["events"].as_u64().unwrap() >= uploads + decisions + comments, "{verification}");
}
