//! The same inputs sent to the running server as a script or a browser would: mutated multipart
//! evidence uploads, LEAP2A packages, unit files and learner CSVs. Each answer is a success or a
//! 4xx problem (never a 5xx), and a refused request leaves nothing behind: no rows, no stored
//! file, nothing in the staging folder.

use eportfolio::accounts::{self, Email};
use eportfolio::auth::Role;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{TestApp, TestUser, files_under};
use crate::support::{Input, corpus, corpus_named, fuzz, http_runner, is_precise, mutated};

/// Requests per target in a bounded run.
const CASES: u32 = 48;
/// The boundary the multipart seeds are written with.
const BOUNDARY: &str = "fuzz-boundary-7MA4YWxk";

/// The server, and a personal API token for `user`: a script's request carries no CSRF token.
struct Client {
    address: String,
    token: String,
    http: reqwest::Client,
}

impl Client {
    async fn new(app: &TestApp, user: &TestUser) -> Client {
        let mut conn = app.pool.acquire().await.unwrap();
        let token = eportfolio::auth::tokens::create(&mut conn, user.id, "fuzz").await.unwrap().token;
        Client { address: app.address.clone(), token, http: reqwest::Client::new() }
    }

    /// The status, type and body of the answer to `body` posted as it is.
    async fn post(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        let response = self
            .http
            .post(format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("the server answers");
        let status = response.status();
        let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        Answer { status, kind, body: response.text().await.expect("a readable answer") }
    }

    async fn get(&self, path: &str) -> Vec<u8> {
        let response = self.http.get(format!("{}{path}", self.address)).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.bytes().await.unwrap().to_vec()
    }
}

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    kind: String,
    body: String,
}

impl Answer {
    /// A success with JSON, or a 4xx problem+json whose detail says what is wrong. `report` is
    /// the one documented exception: the learner import answers its per-row report as JSON.
    fn is_clean(&self, report: bool) -> Result<bool, TestCaseError> {
        let Answer { status, kind, body } = self;
        prop_assert!(!status.is_server_error(), "{status}: {body}");
        prop_assert!(status.is_success() || status.is_client_error(), "{status}: {body}");
        let json: Value =
            serde_json::from_str(body).map_err(|e| TestCaseError::fail(format!("{status} {e}: {body}")))?;
        if status.is_success() {
            prop_assert!(kind.starts_with("application/json"), "{status} as {kind}");
            return Ok(true);
        }
        if report && *status == StatusCode::UNPROCESSABLE_ENTITY && kind.starts_with("application/json") {
            prop_assert_eq!(&json["applied"], &Value::Bool(false), "{}", body);
            let problems =
                json["rows"].as_array().into_iter().flatten().flat_map(|r| r["problems"].as_array()).flatten();
            prop_assert!(problems.count() > 0, "a refused import names a problem: {body}");
            return Ok(false);
        }
        prop_assert_eq!(kind.as_str(), "application/problem+json", "{} {}", status, body);
        prop_assert_eq!(json["status"].as_u64(), Some(u64::from(status.as_u16())), "{}", body);
        prop_assert!(json["detail"].as_str().is_some_and(is_precise), "a problem says what is wrong: {body}");
        Ok(false)
    }
}

/// What a request could leave behind: rows in these tables and files in the store.
struct Debris<'a> {
    app: &'a TestApp,
    tables: &'static [&'static str],
}

#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    rows: Vec<(&'static str, i64)>,
    files: usize,
}

impl Debris<'_> {
    async fn snapshot(&self) -> Snapshot {
        let mut rows = Vec::new();
        for table in self.tables {
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                .fetch_one(&self.app.pool)
                .await
                .unwrap();
            rows.push((*table, count));
        }
        Snapshot { rows, files: self.app.stored_files().len() }
    }

    /// After any answer the staging folder is empty; after a refusal nothing else changed.
    async fn check(&self, before: &Snapshot, accepted: bool, answer: &Answer) -> Result<(), TestCaseError> {
        let staging = files_under(&self.app.config.files_dir().join("tmp"));
        prop_assert!(staging.is_empty(), "left in staging after {}: {staging:?}", answer.status);
        if !accepted {
            let after = self.snapshot().await;
            prop_assert_eq!(before, &after, "a refused request ({}) changed something: {}", answer.status, answer.body);
        }
        Ok(())
    }
}

/// Runs `check` for each case of `strategy` on this test's runtime.
fn fuzz_over_http<S: Strategy, F: std::future::Future<Output = Result<(), TestCaseError>>>(
    target: &'static str,
    strategy: S,
    check: impl Fn(S::Value) -> F,
) where
    S::Value: std::fmt::Debug,
{
    let runtime = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| fuzz(http_runner(target, CASES), strategy, |input| runtime.block_on(check(input))));
}

/// A multipart body's type: usually right, sometimes without or with the wrong boundary.
fn multipart_type() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => Just(format!("multipart/form-data; boundary={BOUNDARY}")),
        1 => select(vec![
            "multipart/form-data".to_string(),
            "multipart/form-data; boundary=".to_string(),
            "multipart/form-data; boundary=other".to_string(),
            format!("multipart/mixed; boundary={BOUNDARY}"),
            "application/json".to_string(),
        ]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutated_evidence_upload_is_stored_whole_or_refused_leaving_nothing_behind() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = Client::new(&app, &cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);
    let debris = Debris {
        app: &app,
        tables: &["evidence_items", "evidence_files", "evidence_criteria", "blobs", "audit_events"],
    };
    for (name, seed) in corpus_named("multipart") {
        let answer = learner.post(&path, &format!("multipart/form-data; boundary={BOUNDARY}"), seed).await;
        let expected =
            if name.starts_with("refused-") { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::CREATED };
        assert_eq!(answer.status, expected, "{name}: {}", answer.body);
    }
    fuzz_over_http(
        "http_evidence_upload",
        (mutated(corpus("multipart"), 5), multipart_type()),
        |(Input(body), kind)| {
            let (learner, path, debris) = (&learner, &path, &debris);
            async move {
                let before = debris.snapshot().await;
                let answer = learner.post(path, &kind, body).await;
                let accepted = answer.is_clean(false)?;
                debris.check(&before, accepted, &answer).await
            }
        },
    );
}

/// A package sent as the body itself or as the `file` part of a form.
fn leap2a_request(package: Vec<u8>, as_form: bool) -> (String, Vec<u8>) {
    let kind = if package.starts_with(b"PK") { "application/zip" } else { "application/xml" };
    if !as_form {
        return (kind.to_string(), package);
    }
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"leap2a-export.zip\"\r\n\
         Content-Type: {kind}\r\n\r\n"
    )
    .into_bytes();
    body.extend(package);
    body.extend(format!("\r\n--{BOUNDARY}--\r\n").into_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutated_leap2a_package_is_imported_whole_or_refused_leaving_nothing_behind() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = Client::new(&app, &cast.learner).await;
    // Our own export is a seed too: a learner moving between two centres that both run this.
    let (_, upload) = corpus_named("multipart").into_iter().find(|(name, _)| name == "upload-with-files.body").unwrap();
    let evidence = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);
    let made = learner.post(&evidence, &format!("multipart/form-data; boundary={BOUNDARY}"), upload).await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let mut seeds = corpus("leap2a");
    seeds.push(learner.get(&format!("/api/v1/enrolments/{}/export/leap2a", cast.enrolment)).await);
    for seed in &seeds {
        let (kind, body) = leap2a_request(seed.clone(), false);
        let answer = learner.post(&format!("/api/v1/enrolments/{}/imports/leap2a", cast.enrolment), &kind, body).await;
        answer.is_clean(false).unwrap_or_else(|e| panic!("a seed as it is: {e}"));
    }

    let path = format!("/api/v1/enrolments/{}/imports/leap2a", cast.enrolment);
    let debris = Debris {
        app: &app,
        tables: &["evidence_items", "evidence_files", "evidence_imports", "blobs", "audit_events"],
    };
    fuzz_over_http("http_leap2a_import", (mutated(seeds, 5), any::<bool>()), |(Input(package), as_form)| {
        let (learner, path, debris) = (&learner, &path, &debris);
        async move {
            let (kind, body) = leap2a_request(package, as_form);
            let before = debris.snapshot().await;
            let answer = learner.post(path, &kind, body).await;
            let accepted = answer.is_clean(false)?;
            debris.check(&before, accepted, &answer).await
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutated_unit_file_or_case_package_is_imported_or_refused_leaving_the_catalogue_as_it_was() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let admin = Client::new(&app, &admin).await;
    let mut seeds = corpus("unit_file");
    seeds.extend(corpus("case"));
    let debris = Debris { app: &app, tables: &["units", "learning_outcomes", "criteria", "audit_events"] };
    for seed in &seeds {
        let kind = if seed.starts_with(b"{") { "application/json" } else { "application/toml" };
        let answer = admin.post("/api/v1/units/import", kind, seed.clone()).await;
        answer.is_clean(false).unwrap_or_else(|e| panic!("a seed as it is: {e}"));
    }
    let format = select(vec!["", "?format=unit", "?format=case", "?format=xml"]);
    fuzz_over_http("http_unit_import", (mutated(seeds, 5), format), |(Input(body), format)| {
        let (admin, debris) = (&admin, &debris);
        async move {
            let kind = if body.trim_ascii_start().starts_with(b"{") { "application/json" } else { "application/toml" };
            let before = debris.snapshot().await;
            let answer = admin.post(&format!("/api/v1/units/import{format}"), kind, body).await;
            let accepted = answer.is_clean(false)?;
            debris.check(&before, accepted, &answer).await
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mutated_learner_csv_enrols_every_row_or_none() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let admin = Client::new(&app, &admin).await;
    // The assessor and IQA the seeds name.
    let mut conn = app.pool.acquire().await.unwrap();
    for (email, name, role) in [
        ("fuzz.assessor@example.org", "Fuzz Assessor", Role::Assessor),
        ("fuzz.iqa@example.org", "Fuzz Iqa", Role::Iqa),
    ] {
        let password = format!("correct horse {}", Uuid::new_v4());
        accounts::add_user(&mut conn, None, app.centre, &Email::parse(email).unwrap(), name, role, Some(&password))
            .await
            .unwrap();
    }
    drop(conn);
    let debris = Debris {
        app: &app,
        tables: &["users", "user_roles", "enrolments", "enrolment_assignments", "password_links", "audit_events"],
    };
    fuzz_over_http("http_learner_import", mutated(corpus("learner_csv"), 5), |Input(csv)| {
        let (admin, debris) = (&admin, &debris);
        async move {
            let before = debris.snapshot().await;
            let answer = admin.post("/api/v1/imports/learners", "text/csv", csv).await;
            let accepted = answer.is_clean(true)?;
            debris.check(&before, accepted, &answer).await
        }
    });
}
