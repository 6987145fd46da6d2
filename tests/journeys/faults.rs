//! Faults: the real `eportfolio` binary killed with SIGKILL in the middle of an upload, of a run
//! of decisions and of an export; its PostgreSQL stopped and started under it; its disk full; a
//! shutdown with uploads in flight. After each, nothing half-written is visible and nothing
//! that was acknowledged is lost.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use eportfolio::accounts::{self, Email};
use eportfolio::auth::Role;
use eportfolio::db::{EmbeddedPostgres, Owner};
use nix::sys::signal::Signal;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection};

use crate::common::{
    Browser, Server, TestApp, TestUser, api_at, api_evidence, browser_at, files_under, pdf, run_cli, vacs, wav,
};

/// A learner, their assessor and an enrolment in a fresh test database (the in-process server
/// `TestApp` also starts is not used: these tests need a process they can kill).
async fn centre() -> (TestApp, TestUser, TestUser, uuid::Uuid) {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    (app, cast.learner, cast.assessor, cast.enrolment)
}

fn metadata(title: &str) -> Value {
    json!({"title": title, "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.1", "1.2", "1.3"],
           "declaration": true, "third_party_confirmed": true})
}

/// A WAV recording of `seconds` of silence, sent in 64 KiB chunks no faster than `per_chunk`,
/// counting what has been sent.
fn slow_recording(seconds: u32, per_chunk: Duration, sent: Arc<AtomicU64>) -> Part {
    let header = &wav()[..44];
    let data_len = seconds * 8000 * 2;
    let mut first = header.to_vec();
    first[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    first[40..44].copy_from_slice(&data_len.to_le_bytes());
    let chunks = (data_len as usize).div_ceil(64 * 1024);
    let stream = futures_util::stream::unfold(0usize, move |index| {
        let sent = sent.clone();
        let first = first.clone();
        async move {
            if index > chunks {
                return None;
            }
            let chunk = if index == 0 { first } else { vec![0u8; 64 * 1024] };
            if index > 0 {
                tokio::time::sleep(per_chunk).await;
            }
            sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), index + 1))
        }
    });
    Part::stream(reqwest::Body::wrap_stream(stream)).file_name("long-call.wav").mime_str("audio/wav").unwrap()
}

fn slow_upload_form(title: &str, part: Part) -> Form {
    Form::new()
        .part("metadata", Part::text(metadata(title).to_string()).mime_str("application/json").unwrap())
        .part("file", part)
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn upload(api: &Browser, enrolment: uuid::Uuid, title: &str, file: (&str, Vec<u8>)) -> Value {
    let response = api
        .post_multipart(&format!("/api/v1/enrolments/{enrolment}/evidence"), api_evidence(metadata(title), vec![file]))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{title} is stored");
    response.json().await.unwrap()
}

async fn download_sha256(api: &Browser, item: &Value) -> String {
    let path =
        format!("/api/v1/evidence/{}/files/{}", item["id"].as_str().unwrap(), item["files"][0]["id"].as_str().unwrap());
    let response = api.get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    hex::encode(Sha256::digest(response.bytes().await.unwrap()))
}

#[tokio::test]
async fn a_server_killed_mid_upload_shows_nothing_half_written_and_keeps_what_was_stored() {
    let (app, learner, _, enrolment) = centre().await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&app.database_url, data.path(), &[]).await;
    let api = api_at(&server.base, &learner).await;
    let kept = upload(&api, enrolment, "Dashboard for March", ("dashboard.pdf", pdf())).await;

    // A long recording, going up slowly; the server dies when part of it is on disk.
    let sent = Arc::new(AtomicU64::new(0));
    let form = slow_upload_form("Long call", slow_recording(600, Duration::from_millis(5), sent.clone()));
    let path = format!("/api/v1/enrolments/{enrolment}/evidence");
    let in_flight = tokio::spawn(async move { api.try_post_multipart(&path, form).await.map(|r| r.status()) });
    let staging = data.path().join("files/tmp");
    wait_until("part of the upload is staged", || {
        files_under(&staging).iter().any(|f| f.metadata().map(|m| m.len() > 1024 * 1024).unwrap_or(false))
    })
    .await;
    server.kill_9().await;
    assert!(in_flight.await.unwrap().is_err(), "the cut-off upload got no answer");
    assert!(sent.load(Ordering::Relaxed) < 600 * 16000, "it was cut off before its end");

    // Restarted: the learner sees the stored item, whole, and no trace of the cut-off one.
    let server = Server::start(&app.database_url, data.path(), &[]).await;
    let api = api_at(&server.base, &learner).await;
    let portfolio = browser_at(&server.base, &learner).await.page(&format!("/enrolments/{enrolment}")).await;
    assert!(portfolio.contains("Dashboard for March") && !portfolio.contains("Long call"), "{portfolio}");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM evidence_files").await, 1);
    assert_eq!(download_sha256(&api, &kept).await, kept["files"][0]["sha256"].as_str().unwrap());
    // The partial file is debris for the sweeper, which removes it and nothing else.
    assert!(!files_under(&staging).is_empty(), "the cut-off upload left a staged part");
    let (ok, output) = run_cli(&app.database_url, data.path(), &["files", "sweep", "--grace-minutes", "0"]).await;
    assert!(ok, "{output}");
    assert!(files_under(&staging).is_empty(), "the sweep removed the partial upload: {:?}", files_under(&staging));
    assert_eq!(download_sha256(&api, &kept).await, kept["files"][0]["sha256"].as_str().unwrap());
}

#[tokio::test]
async fn a_server_killed_during_a_run_of_decisions_loses_none_it_acknowledged_and_half_writes_none() {
    let (app, learner, assessor, enrolment) = centre().await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&app.database_url, data.path(), &[]).await;
    let item = upload(&api_at(&server.base, &learner).await, enrolment, "Team huddle", ("huddle.pdf", pdf())).await;
    let evidence = item["id"].as_str().unwrap().to_string();

    // Three clients change their judgements on three criteria as fast as they can.
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut writers = Vec::new();
    for criterion in ["1.1", "1.2", "1.3"] {
        let api = api_at(&server.base, &assessor).await;
        let (evidence, acknowledged) = (evidence.clone(), acknowledged.clone());
        writers.push(tokio::spawn(async move {
            for round in 0.. {
                let outcome = if round % 2 == 0 { "met" } else { "not_yet" };
                let mut body =
                    json!({"criterion": criterion, "outcome": outcome, "feedback": format!("Round {round}.")});
                if outcome == "met" {
                    body["confirmed"] = vacs();
                }
                if round > 0 {
                    body["reason"] = json!(format!("Second thoughts, round {round}."));
                }
                let Ok(response) = api.try_post_json(&format!("/api/v1/evidence/{evidence}/decisions"), &body).await
                else {
                    return;
                };
                if response.status() != StatusCode::CREATED {
                    return;
                }
                let Ok(answer) = response.json::<Value>().await else { return };
                acknowledged.lock().unwrap().push(answer["decision"]["id"].as_str().unwrap().to_string());
            }
        }));
    }
    wait_until("some decisions are acknowledged", || acknowledged.lock().unwrap().len() >= 30).await;
    server.kill_9().await;
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();

    let server = Server::start(&app.database_url, data.path(), &[]).await;
    for id in &acknowledged {
        let found: i64 = sqlx::query_scalar("SELECT count(*) FROM decisions WHERE id = $1::uuid")
            .bind(id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert_eq!(found, 1, "acknowledged decision {id} survived");
    }
    // Each criterion has one chain: exactly one current decision, every other one superseded once.
    let heads: Vec<i64> = sqlx::query_scalar(
        "SELECT count(*) FROM decisions d WHERE NOT EXISTS (SELECT 1 FROM decisions s WHERE s.supersedes = d.id)
         GROUP BY criterion_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(heads, [1, 1, 1], "one current decision for each of the three criteria");
    // Every decision has its audit event, and the trail is intact.
    assert_eq!(
        app.count("SELECT count(*) FROM decisions").await,
        app.count("SELECT count(*) FROM audit_events WHERE action = 'decision.recorded'").await
    );
    let (ok, output) = run_cli(&app.database_url, data.path(), &["audit", "verify"]).await;
    assert!(ok, "the audit chain verifies after the crash: {output}");
    // The learner's item shows the last acknowledged judgement or a later committed one.
    let item = api_at(&server.base, &learner).await.json(&format!("/api/v1/evidence/{evidence}")).await;
    assert_eq!(item["assessment_status"], "assessed");
}

#[tokio::test]
async fn a_server_killed_mid_export_leaves_a_download_that_fails_verification_and_an_intact_record() {
    let (app, learner, _, enrolment) = centre().await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&app.database_url, data.path(), &[]).await;
    let api = api_at(&server.base, &learner).await;
    // 40 MiB of recordings, so the export is still streaming when the server dies.
    for index in 0..4u8 {
        let mut recording = wav();
        recording.extend(std::iter::repeat_n(index, 10 * 1024 * 1024));
        upload(&api, enrolment, &format!("Call {index}"), (&format!("call-{index}.wav"), recording)).await;
    }
    let events_before = app.count("SELECT count(*) FROM audit_events").await;
    let mut response = api.get(&format!("/api/v1/enrolments/{enrolment}/export")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut partial = Vec::new();
    while partial.len() < 2 * 1024 * 1024 {
        partial.extend_from_slice(&response.chunk().await.unwrap().expect("the export is still streaming"));
    }
    server.kill_9().await;
    while let Ok(Some(chunk)) = response.chunk().await {
        partial.extend_from_slice(&chunk);
    }
    let zip = data.path().join("partial.zip");
    std::fs::write(&zip, &partial).unwrap();
    let (ok, output) = run_cli(&app.database_url, data.path(), &["export", "verify", zip.to_str().unwrap()]).await;
    assert!(!ok, "a cut-off export does not verify: {output}");

    // The export's own record is whole (one event at most, the chain intact) and a new export works.
    assert!(app.count("SELECT count(*) FROM audit_events").await <= events_before + 1);
    let (ok, output) = run_cli(&app.database_url, data.path(), &["audit", "verify"]).await;
    assert!(ok, "{output}");
    let server = Server::start(&app.database_url, data.path(), &[]).await;
    let whole = api_at(&server.base, &learner).await.get(&format!("/api/v1/enrolments/{enrolment}/export")).await;
    assert_eq!(whole.status(), StatusCode::OK);
    std::fs::write(&zip, whole.bytes().await.unwrap()).unwrap();
    let (ok, output) = run_cli(&app.database_url, data.path(), &["export", "verify", zip.to_str().unwrap()]).await;
    assert!(ok, "the export after the restart verifies: {output}");
}

#[tokio::test]
async fn with_postgresql_stopped_pages_say_so_with_503_and_the_server_recovers_when_it_is_back() {
    // A cluster of this test's own, so stopping it disturbs no other test.
    let dir = tempfile::Builder::new().prefix("epf-pg-").tempdir_in("/tmp").unwrap();
    let cluster = EmbeddedPostgres::start(dir.path(), Owner::Server).expect("PostgreSQL starts");
    let mut admin = PgConnection::connect_with(&cluster.connect_options("postgres")).await.unwrap();
    sqlx::query("CREATE DATABASE eportfolio").execute(&mut admin).await.unwrap();
    admin.close().await.unwrap();
    let url = cluster.url("eportfolio");
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&url, data.path(), &[]).await;

    let pool = PgPoolOptions::new().max_connections(1).connect(&url).await.unwrap();
    let mut conn = pool.acquire().await.unwrap();
    let centre = accounts::ensure_centre(&mut conn, "Fault Centre").await.unwrap();
    let password = "correct horse battery staple 42";
    let learner_email = "lee.learner@example.org";
    accounts::add_user(
        &mut conn,
        None,
        centre,
        &Email::parse(learner_email).unwrap(),
        "Lee Learner",
        Role::Learner,
        Some(password),
    )
    .await
    .unwrap();
    accounts::add_user(
        &mut conn,
        None,
        centre,
        &Email::parse("ada@example.org").unwrap(),
        "Ada Assessor",
        Role::Assessor,
        Some(password),
    )
    .await
    .unwrap();
    let enrolment =
        accounts::enrol(&mut conn, None, None, learner_email, "CC20", "ada@example.org", None).await.unwrap();
    drop(conn);
    pool.close().await;
    let learner = TestUser { id: uuid::Uuid::nil(), email: learner_email.to_string(), password: password.to_string() };
    let pages = browser_at(&server.base, &learner).await;
    let api = api_at(&server.base, &learner).await;
    assert_eq!(pages.get("/dashboard").await.status(), StatusCode::OK);

    drop(cluster); // stops PostgreSQL
    let ready = reqwest::get(format!("{}/readyz", server.base)).await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The dashboard and who is signed in need no query while the server's listener for changes
    // is connected (src/db/changes.rs); the listener's connection ended too, and once the server
    // has noticed, it answers nothing from memory either.
    let unavailable = async |client: &crate::common::Browser, path: &str| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let answer = client.get(path).await;
            if answer.status() == StatusCode::SERVICE_UNAVAILABLE || Instant::now() > deadline {
                break answer;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let page = unavailable(&pages, "/dashboard").await;
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("The database cannot be reached just now"), "{html}");
    let problem = unavailable(&api, "/api/v1/me").await;
    assert_eq!(problem.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(problem.headers()["content-type"], "application/problem+json");
    assert_eq!(problem.headers()["retry-after"], "30");

    // PostgreSQL back: the same server, the same session, reads and writes again.
    let _cluster = EmbeddedPostgres::start(dir.path(), Owner::Server).expect("PostgreSQL starts again");
    server.wait_ready().await;
    assert_eq!(pages.get("/dashboard").await.status(), StatusCode::OK, "the session survived");
    let me = api.json("/api/v1/me").await;
    assert_eq!(me["email"], learner_email);
    upload(&api, enrolment, "After the outage", ("dashboard.pdf", pdf())).await;
}

/// A tmpfs of `megabytes` mounted on a new folder, unmounted when dropped: a disk that fills up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> SmallDisk {
        let dir = tempfile::Builder::new().prefix("epf-small-disk-").tempdir_in("/tmp").unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "a tmpfs can be mounted (the tests run as root, as the README says)");
        SmallDisk { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_the_upload_with_507_keeps_nothing_of_it_and_the_server_carries_on() {
    let (app, learner, _, enrolment) = centre().await;
    let disk = SmallDisk::mount(8);
    let server = Server::start(&app.database_url, &disk.path(), &[]).await;
    let api = api_at(&server.base, &learner).await;
    let kept = upload(&api, enrolment, "Dashboard for March", ("dashboard.pdf", pdf())).await;

    let mut recording = wav();
    recording.extend(std::iter::repeat_n(7u8, 12 * 1024 * 1024));
    let response = api
        .post_multipart(
            &format!("/api/v1/enrolments/{enrolment}/evidence"),
            api_evidence(metadata("Long call"), vec![("long-call.wav", recording)]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "The server has no room left to store files, so nothing was saved. Please tell your centre's administrator."
    );
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM evidence_files").await, 1);
    assert!(files_under(&disk.path().join("files/tmp")).is_empty(), "no staged part is left");

    // The page form says the same in its error summary.
    let pages = browser_at(&server.base, &learner).await;
    pages.page(&format!("/enrolments/{enrolment}/evidence/new")).await;
    let mut recording = wav();
    recording.extend(std::iter::repeat_n(8u8, 12 * 1024 * 1024));
    let form = pages.upload_form("Long call", &["1.1"], true, Some(("long-call.wav", recording)));
    let response = pages.post_multipart(&format!("/enrolments/{enrolment}/evidence"), form).await;
    assert_eq!(response.status(), StatusCode::INSUFFICIENT_STORAGE);
    let html = response.text().await.unwrap();
    assert!(html.contains("The server has no room left to store files, so nothing was saved."), "{html}");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);

    // Still serving: the stored file plays back and small uploads go on working.
    assert_eq!(download_sha256(&api, &kept).await, kept["files"][0]["sha256"].as_str().unwrap());
    upload(&api, enrolment, "Small note", ("note.pdf", pdf())).await;
}

#[tokio::test]
async fn on_sigterm_uploads_in_flight_finish_within_the_grace_period_and_new_connections_are_refused() {
    let (app, learner, _, enrolment) = centre().await;
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(&app.database_url, data.path(), &[("EPORTFOLIO_SHUTDOWN_GRACE", "60")]).await;
    let api = api_at(&server.base, &learner).await;

    // About 2 s of upload: 40 chunks of 64 KiB, 50 ms apart.
    let sent = Arc::new(AtomicU64::new(0));
    let form = slow_upload_form("Call in flight", slow_recording(160, Duration::from_millis(50), sent.clone()));
    let path = format!("/api/v1/enrolments/{enrolment}/evidence");
    let in_flight = tokio::spawn(async move { api.post_multipart(&path, form).await });
    wait_until("the upload is under way", || sent.load(Ordering::Relaxed) > 256 * 1024).await;
    server.signal(Signal::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(reqwest::get(format!("{}/readyz", server.base)).await.is_err(), "new connections are refused");

    let response = in_flight.await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED, "the upload in flight finished");
    let mut server = server;
    let status =
        tokio::time::timeout(Duration::from_secs(30), server.child.wait()).await.expect("the server stops").unwrap();
    assert!(status.success(), "a clean exit: {status}");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items WHERE title = 'Call in flight'").await, 1);

    // With a 1 s grace period, an upload that needs half a minute is cut off, and leaves no record.
    let server = Server::start(&app.database_url, data.path(), &[("EPORTFOLIO_SHUTDOWN_GRACE", "1")]).await;
    let api = api_at(&server.base, &learner).await;
    let sent = Arc::new(AtomicU64::new(0));
    let form = slow_upload_form("Too long", slow_recording(600, Duration::from_millis(200), sent.clone()));
    let path = format!("/api/v1/enrolments/{enrolment}/evidence");
    let in_flight = tokio::spawn(async move { api.try_post_multipart(&path, form).await.map(|r| r.status()) });
    wait_until("the upload is under way", || sent.load(Ordering::Relaxed) > 256 * 1024).await;
    server.signal(Signal::SIGTERM);
    let mut server = server;
    let status =
        tokio::time::timeout(Duration::from_secs(20), server.child.wait()).await.expect("the server stops").unwrap();
    assert!(status.success(), "{status}");
    assert!(!matches!(in_flight.await.unwrap(), Ok(StatusCode::CREATED)), "the cut-off upload was not acknowledged");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items WHERE title = 'Too long'").await, 0);
}
