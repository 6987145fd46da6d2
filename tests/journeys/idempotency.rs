//! A learner's upload script on a bad connection: it sends each item with an `Idempotency-Key`,
//! and sending it again (the answer was lost, the script retried) gives back the first answer
//! without a second item; the same key on a different request is refused (422), a repeat while
//! the first is still uploading is told to wait (409), two at once still make one item, and a
//! key is the sender's own and lasts a day.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser, api_evidence, pdf};

fn metadata(title: &str) -> Value {
    json!({"title": title, "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.1"],
           "declaration": true, "description": "Calls I made to new customers."})
}

/// A client with a personal API token for `user`, as a script would use.
async fn script_for(app: &TestApp, user: &TestUser) -> (reqwest::Client, String) {
    let mut conn = app.pool.acquire().await.unwrap();
    let token = eportfolio::auth::tokens::create(&mut conn, user.id, "upload script").await.unwrap().token;
    (reqwest::Client::new(), token)
}

async fn send(
    app: &TestApp,
    (client, token): &(reqwest::Client, String),
    path: &str,
    key: Option<&str>,
    form: reqwest::multipart::Form,
) -> reqwest::Response {
    let mut request = client.post(format!("{}{path}", app.address)).bearer_auth(token).multipart(form);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    request.send().await.unwrap()
}

async fn items(app: &TestApp) -> i64 {
    app.count("SELECT count(*) FROM evidence_items").await
}

#[tokio::test]
async fn a_retried_upload_with_the_same_key_answers_again_without_a_second_item() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let script = script_for(&app, &cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);
    let key = "\"2f1d6c5e-upload-monday-calls\"";

    let first =
        send(&app, &script, &path, Some(key), api_evidence(metadata("Monday calls"), vec![("log.pdf", pdf())])).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none(), "the first answer is not a replay");
    let location = first.headers()[LOCATION].to_str().unwrap().to_string();
    let first_body = first.bytes().await.unwrap();
    let created: Value = serde_json::from_slice(&first_body).unwrap();
    assert_eq!(location, format!("/api/v1/evidence/{}", created["id"].as_str().unwrap()));
    assert_eq!(created["files"][0]["name"], "log.pdf");

    // The retry builds its multipart body afresh (a new boundary), as a client library does.
    let again =
        send(&app, &script, &path, Some(key), api_evidence(metadata("Monday calls"), vec![("log.pdf", pdf())])).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()[LOCATION].to_str().unwrap(), location);
    assert_eq!(again.headers()[CONTENT_TYPE], "application/json");
    assert_eq!(again.bytes().await.unwrap(), first_body, "the same body, byte for byte");
    assert_eq!(items(&app).await, 1, "nothing was created the second time");
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'evidence.created'").await, 1);

    // The same key for something else is refused, and creates nothing.
    let different = send(&app, &script, &path, Some(key), api_evidence(metadata("Tuesday calls"), vec![])).await;
    assert_eq!(different.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(different.headers()[CONTENT_TYPE], "application/problem+json");
    let problem: Value = different.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("different request"), "{problem}");
    // A different file under the same key is a different request too.
    let other_file = send(
        &app,
        &script,
        &path,
        Some(key),
        api_evidence(metadata("Monday calls"), vec![("log.pdf", b"hello".to_vec())]),
    )
    .await;
    assert_eq!(other_file.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(items(&app).await, 1);

    // Without a key, the same request is a new item, as before.
    let unkeyed = send(&app, &script, &path, None, api_evidence(metadata("Monday calls"), vec![])).await;
    assert_eq!(unkeyed.status(), StatusCode::CREATED);
    assert_eq!(items(&app).await, 2);
}

#[tokio::test]
async fn unusable_keys_are_refused_with_a_precise_problem_and_keys_are_each_persons_own() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let script = script_for(&app, &cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);
    for (key, says) in [("", "empty"), ("\"\"", "empty"), (&"k".repeat(256) as &str, "at most 255")] {
        let response = send(&app, &script, &path, Some(key), api_evidence(metadata("Calls"), vec![])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{key:?}");
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(says), "{problem}");
    }
    assert_eq!(items(&app).await, 0);
    let longest = "k".repeat(255);
    let response = send(&app, &script, &path, Some(&longest), api_evidence(metadata("Calls"), vec![])).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Another learner's same key is theirs: it creates their own item, no replay of this one.
    let other = app.add_user(eportfolio::auth::Role::Learner, "Olive Other").await;
    let other_enrolment = app.enrol(&other, &cast.assessor, None).await;
    let other_script = script_for(&app, &other).await;
    let theirs = send(
        &app,
        &other_script,
        &format!("/api/v1/enrolments/{other_enrolment}/evidence"),
        Some(&longest),
        api_evidence(metadata("Calls"), vec![]),
    )
    .await;
    assert_eq!(theirs.status(), StatusCode::CREATED);
    assert!(theirs.headers().get("idempotent-replayed").is_none());
    assert_eq!(items(&app).await, 2);

    // A day later the key has expired: the same request creates a new item.
    sqlx::query("UPDATE idempotency_keys SET expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    let later = send(&app, &script, &path, Some(&longest), api_evidence(metadata("Calls"), vec![])).await;
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(later.headers().get("idempotent-replayed").is_none());
    assert_eq!(items(&app).await, 3);
    assert_eq!(
        app.count("SELECT count(*) FROM idempotency_keys WHERE expires_at <= now()").await,
        0,
        "expired keys are removed when a new one is written"
    );
}

/// A multipart body sent in two halves: the metadata and the start of a file, then (when
/// `rest` is sent) the end of the file. The request stays in flight in between.
fn stalled_upload(boundary: &str) -> (reqwest::Body, tokio::sync::oneshot::Sender<()>) {
    let file = pdf();
    let (head, tail) = file.split_at(file.len() / 2);
    let mut first = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"log.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n",
        metadata("Slow upload")
    )
    .into_bytes();
    first.extend_from_slice(head);
    let mut second = tail.to_vec();
    second.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let chunks = futures_util::stream::unfold(
        (0, Some(released), first, second),
        |(step, released, first, second)| async move {
            match step {
                0 => Some((Ok::<Vec<u8>, std::io::Error>(first), (1, released, Vec::new(), second))),
                1 => {
                    let _ = released?.await;
                    Some((Ok(second), (2, None, Vec::new(), Vec::new())))
                }
                _ => None,
            }
        },
    );
    (reqwest::Body::wrap_stream(chunks), release)
}

#[tokio::test]
async fn a_repeat_while_the_first_is_still_uploading_is_told_to_wait_and_then_gets_the_answer() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let script = script_for(&app, &cast.learner).await;
    let url = format!("{}/api/v1/enrolments/{}/evidence", app.address, cast.enrolment);
    let boundary = "eportfolio-test-boundary-7c1";
    let (body, release) = stalled_upload(boundary);
    let first = tokio::spawn({
        let (client, token) = script.clone();
        let url = url.clone();
        async move {
            client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "slow-1")
                .header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    });
    // Wait until the first request holds its key.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while app
        .count(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
                 AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        .await
        == 0
    {
        assert!(std::time::Instant::now() < deadline, "the first request never claimed its key");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let path = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);
    let waiting =
        send(&app, &script, &path, Some("slow-1"), api_evidence(metadata("Slow upload"), vec![("log.pdf", pdf())]))
            .await;
    assert_eq!(waiting.status(), StatusCode::CONFLICT);
    assert_eq!(waiting.headers()[CONTENT_TYPE], "application/problem+json");
    let problem: Value = waiting.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("still being processed"), "{problem}");
    assert_eq!(items(&app).await, 0, "nothing is created before the first upload completes");

    release.send(()).unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first_body: Value = first.json().await.unwrap();
    let retry =
        send(&app, &script, &path, Some("slow-1"), api_evidence(metadata("Slow upload"), vec![("log.pdf", pdf())]))
            .await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.json::<Value>().await.unwrap(), first_body);
    assert_eq!(items(&app).await, 1);
}

#[tokio::test]
async fn two_uploads_at_once_with_the_same_key_make_exactly_one_item() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let script = script_for(&app, &cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);
    // A few megabytes, so that the two uploads overlap.
    let mut big = pdf();
    big.resize(big.len() + 4 * 1024 * 1024, b' ');
    let form = || api_evidence(metadata("Quarter's call logs"), vec![("calls.pdf", big.clone())]);
    let (a, b) = tokio::join!(
        send(&app, &script, &path, Some("together"), form()),
        send(&app, &script, &path, Some("together"), form())
    );
    let statuses = [a.status(), b.status()];
    assert!(statuses.iter().all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT), "{statuses:?}");
    assert!(statuses.contains(&StatusCode::CREATED), "{statuses:?}");
    assert_eq!(items(&app).await, 1, "exactly one item ({statuses:?})");
    assert_eq!(app.count("SELECT count(*) FROM idempotency_keys").await, 1);
}

#[tokio::test]
async fn an_assessors_record_sent_twice_with_a_key_is_recorded_once() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let script = script_for(&app, &cast.assessor).await;
    let path = format!("/api/v1/enrolments/{}/assessor-records", cast.enrolment);
    let record = || {
        api_evidence(
            json!({"title": "Observation of the team huddle", "method": "observation",
                   "occurred_on": chrono::Utc::now().date_naive().to_string(), "criteria": ["1.1"],
                   "declaration": true, "description": "Led the huddle and set targets.",
                   "assessment_location": "Sales floor, Leeds"}),
            vec![],
        )
    };
    let first = send(&app, &script, &path, Some("obs-1"), record()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = send(&app, &script, &path, Some("obs-1"), record()).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(items(&app).await, 1);
}
