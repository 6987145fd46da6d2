//! Where evidence files are kept: S3-compatible object storage (a real `s3s-fs` server) or the
//! data dir's folder, each file once per content, read back whole or by range; and the sweep
//! that removes stored files no evidence refers to.

use std::time::Duration;

use eportfolio::error::AppError;
use eportfolio::evidence::storage::ChunkSource;
use eportfolio::evidence::{FileStore, remove_unreferenced_files};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{S3Server, TestApp, api_evidence, pdf, wav};

/// A recording of about 9 MiB: larger than one part, so it goes up as a multipart upload.
fn long_recording() -> Vec<u8> {
    let mut bytes = wav();
    bytes.extend((0..9 * 1024 * 1024u32).map(|i| (i * 31 % 251) as u8));
    bytes
}

struct Once(Option<bytes::Bytes>);

impl ChunkSource for Once {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AppError> {
        Ok(self.0.take())
    }
}

/// Stores bytes at their content address without recording any evidence, as a crash between
/// the two would leave them.
async fn store_without_record(store: &FileStore, name: &str, bytes: Vec<u8>) -> String {
    let staged = store.stage(name, &mut Once(Some(bytes.into())), u64::MAX).await.unwrap();
    let sha256 = staged.sha256.clone();
    store.promote(staged).await.unwrap();
    sha256
}

async fn upload(api: &crate::common::Browser, enrolment: uuid::Uuid, title: &str, file: (&str, Vec<u8>)) -> Value {
    let metadata = json!({"title": title, "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.4"],
                          "declaration": true, "third_party_confirmed": true});
    let response = api
        .post_multipart(&format!("/api/v1/enrolments/{enrolment}/evidence"), api_evidence(metadata, vec![file]))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

#[tokio::test]
async fn evidence_goes_to_s3_compatible_storage_once_per_content_and_plays_back_by_range() {
    let s3 = S3Server::start("evidence").await;
    let app = TestApp::spawn_with(|config| s3.configure(config, "evidence", "centre-a")).await;
    let cast = app.cast().await;
    let api = app.api_for(&cast.learner).await;
    let recording = long_recording();

    let created = upload(&api, cast.enrolment, "Call with a broadband customer", ("call.wav", recording.clone())).await;
    let file = &created["files"][0];
    let sha256 = file["sha256"].as_str().unwrap().to_string();
    assert_eq!(file["size"], recording.len() as u64);
    let objects = s3.objects();
    assert_eq!(objects.len(), 1, "one object in the bucket: {objects:?}");
    let object = objects[0].to_string_lossy().to_string();
    assert!(object.contains("evidence/centre-a/blobs/") && object.ends_with(&sha256), "stored at {object}");
    assert_eq!(std::fs::read(&objects[0]).unwrap(), recording, "the object holds exactly the bytes sent");
    assert!(app.stored_files().is_empty(), "nothing kept on local disk: {:?}", app.stored_files());

    let path = format!("/api/v1/evidence/{}/files/{}", created["id"].as_str().unwrap(), file["id"].as_str().unwrap());
    let whole = api.get(&path).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.headers()["content-type"], "audio/wav");
    assert_eq!(whole.bytes().await.unwrap().as_ref(), recording.as_slice());

    let part = api.get_with(&path, &[("range", "bytes=5000000-5000999")]).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.headers()["content-range"], format!("bytes 5000000-5000999/{}", recording.len()).as_str());
    assert_eq!(part.bytes().await.unwrap().as_ref(), &recording[5_000_000..5_001_000]);
    let tail = api.get_with(&path, &[("range", "bytes=-10")]).await;
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &recording[recording.len() - 10..]);
    let beyond = api.get_with(&path, &[("range", &format!("bytes={}-", recording.len() + 5))]).await;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(beyond.headers()["content-range"], format!("bytes */{}", recording.len()).as_str());
    let unchanged = api.get_with(&path, &[("if-none-match", &format!("\"{sha256}\""))]).await;
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);

    // The same bytes again, in another item: stored once.
    let again = upload(&api, cast.enrolment, "The same call, for 2.1", ("call-again.wav", recording.clone())).await;
    assert_eq!(again["files"][0]["sha256"], sha256.as_str());
    assert_eq!(s3.objects().len(), 1);

    // An object left by a crash between storing and recording is swept; the others stay.
    let store = FileStore::from_config(&app.config).unwrap();
    let orphan = store_without_record(&store, "orphan.pdf", [pdf(), b"orphan".to_vec()].concat()).await;
    assert_eq!(s3.objects().len(), 2);
    let report = remove_unreferenced_files(&app.pool, &store, Duration::ZERO, false).await.unwrap();
    assert_eq!(report.examined, 2);
    assert_eq!(report.unreferenced, vec![orphan]);
    assert_eq!(s3.objects().len(), 1);
    assert_eq!(api.get(&path).await.bytes().await.unwrap().as_ref(), recording.as_slice());
}

#[tokio::test]
async fn files_sweep_removes_only_files_no_evidence_refers_to_and_is_audited() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let api = app.api_for(&cast.learner).await;
    let kept = upload(&api, cast.enrolment, "March dashboard", ("dashboard.pdf", pdf())).await;
    let store = FileStore::from_config(&app.config).unwrap();
    let orphan = store_without_record(&store, "orphan.pdf", [pdf(), b"left by a crash".to_vec()].concat()).await;
    std::fs::write(app.data_dir.join("files/tmp/abandoned-upload"), b"half a file").unwrap();
    assert_eq!(app.stored_files().len(), 3);

    let sweep = |dry_run: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_eportfolio"));
        command.env("DATABASE_URL", &app.database_url).env("EPORTFOLIO_DATA_DIR", &app.data_dir).args([
            "files",
            "sweep",
            "--grace-minutes",
            "0",
        ]);
        if dry_run {
            command.arg("--dry-run");
        }
        let output = command.output().unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };
    let preview = sweep(true);
    assert!(preview.contains("would remove 1 unreferenced") && preview.contains(&orphan), "{preview}");
    assert_eq!(app.stored_files().len(), 3, "a dry run removes nothing");
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'files.unreferenced_removed'").await, 0);

    let done = sweep(false);
    assert!(done.contains("removed 1 unreferenced") && done.contains("and 1 abandoned uploads"), "{done}");
    let left = app.stored_files();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with(kept["files"][0]["sha256"].as_str().unwrap()));
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'files.unreferenced_removed'").await, 1);
    let path =
        format!("/api/v1/evidence/{}/files/{}", kept["id"].as_str().unwrap(), kept["files"][0]["id"].as_str().unwrap());
    assert_eq!(api.get(&path).await.bytes().await.unwrap().as_ref(), pdf().as_slice());
    assert!(sweep(false).contains("removed 0 unreferenced"), "a second sweep finds nothing");
}

#[tokio::test]
async fn an_unreachable_object_store_fails_the_upload_and_leaves_no_record_or_staged_file() {
    let s3 = S3Server::start("evidence").await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = TestApp::spawn_with(|config| {
        s3.configure(config, "evidence", "centre-a");
        for (key, value) in config.aws.iter_mut() {
            if key == "AWS_ENDPOINT" {
                *value = format!("http://127.0.0.1:{closed}");
            }
        }
    })
    .await;
    let cast = app.cast().await;
    let api = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Call", "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.4"],
                          "declaration": true, "third_party_confirmed": true});
    let response = api
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("call.wav", wav())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(response.headers()["retry-after"], "30", "the client is told when to try again");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "The file store cannot be reached just now, so nothing was saved. Please try again in a few minutes."
    );
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM blobs").await, 0);
    assert!(app.stored_files().is_empty(), "no staged file is left: {:?}", app.stored_files());
}
