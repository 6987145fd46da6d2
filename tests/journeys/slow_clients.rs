//! Slow clients over raw TCP: a client dribbling its request headers (or sending nothing) is
//! disconnected after the header timeout; an upload whose body stalls, or trickles in below the
//! minimum rate, is answered 408 and leaves no staged file and no evidence; a slow but steady
//! upload above that rate is stored; and 50 stalled connections do not keep anyone else waiting.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Browser, TestApp, files_under, pdf, wav};

const BOUNDARY: &str = "slow-client-boundary-5e2";

fn host_port(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

/// How long until the server closes `stream` (reading and discarding whatever it sends),
/// at most `limit`; `None` if it is still open then.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(limit.saturating_sub(started.elapsed()), stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

/// Everything the server sends until it closes the connection (at most `limit`).
async fn read_until_closed(stream: &mut tokio::net::tcp::OwnedReadHalf, limit: Duration) -> String {
    let mut received = Vec::new();
    let reading = async {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..n]);
        }
    };
    let _ = tokio::time::timeout(limit, reading).await;
    String::from_utf8_lossy(&received).into_owned()
}

/// The start of an evidence upload by a script with a personal token: the request head (with a
/// `Content-Length` for a whole PDF) and the multipart body up to the middle of the file.
async fn upload_head_and_half(
    app: &TestApp,
    learner_id: uuid::Uuid,
    enrolment: uuid::Uuid,
    title: &str,
) -> (Vec<u8>, Vec<u8>) {
    let mut conn = app.pool.acquire().await.unwrap();
    let token = eportfolio::auth::tokens::create(&mut conn, learner_id, "upload script").await.unwrap().token;
    let metadata = json!({"title": title, "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.1"],
                          "declaration": true, "third_party_confirmed": true});
    let file = pdf();
    let (half, rest) = file.split_at(file.len() / 2);
    let mut body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"metadata\"\r\nContent-Type: application/json\r\n\r\n{metadata}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"call-log.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(half);
    let whole = body.len() + rest.len() + format!("\r\n--{BOUNDARY}--\r\n").len();
    let head = format!(
        "POST /api/v1/enrolments/{enrolment}/evidence HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary={BOUNDARY}\r\nContent-Length: {whole}\r\nAccept: application/json\r\n\r\n",
        host_port(app)
    );
    (head.into_bytes(), body)
}

async fn evidence_titled(app: &TestApp, title: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM evidence_items WHERE title = $1")
        .bind(title)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

fn staged_files(app: &TestApp) -> Vec<std::path::PathBuf> {
    files_under(&app.data_dir.join("files").join("tmp"))
}

#[tokio::test]
async fn a_client_that_dribbles_its_headers_or_sends_nothing_is_disconnected_after_the_header_timeout() {
    let app = TestApp::spawn_with(|config| config.header_timeout_secs = 1).await;

    let mut dribbler = TcpStream::connect(host_port(&app)).await.unwrap();
    dribbler.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Still-Typ").await.unwrap();
    let closed = closed_within(&mut dribbler, Duration::from_secs(10)).await.expect("the server hangs up");
    assert!(closed >= Duration::from_millis(900), "not before the timeout: {closed:?}");

    let mut silent = TcpStream::connect(host_port(&app)).await.unwrap();
    let closed = closed_within(&mut silent, Duration::from_secs(10)).await.expect("the server hangs up on silence");
    assert!(closed >= Duration::from_millis(900), "{closed:?}");

    // A client that sends its request in good time is answered on the same kind of connection.
    let mut prompt = TcpStream::connect(host_port(&app)).await.unwrap();
    prompt.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").await.unwrap();
    let (mut reading, _writing) = prompt.into_split();
    let answer = read_until_closed(&mut reading, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn an_upload_whose_body_stalls_is_answered_408_and_leaves_no_staged_file_and_no_evidence() {
    let app = TestApp::spawn_with(|config| config.body_idle_timeout_secs = 1).await;
    let cast = app.cast().await;
    let (head, half) = upload_head_and_half(&app, cast.learner.id, cast.enrolment, "Stalled call log").await;

    let stream = TcpStream::connect(host_port(&app)).await.unwrap();
    let (mut reading, mut writing) = stream.into_split();
    writing.write_all(&head).await.unwrap();
    writing.write_all(&half).await.unwrap();
    // Half the file is on the server's disk now; then nothing more comes.
    let started = Instant::now();
    let answer = read_until_closed(&mut reading, Duration::from_secs(15)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the idle timeout: {:?}", started.elapsed());
    assert!(answer.to_ascii_lowercase().contains("content-type: application/problem+json"), "{answer}");
    let problem: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(problem["status"], 408);
    assert_eq!(problem["title"], "Request timed out");
    assert!(
        problem["detail"].as_str().unwrap().contains("Nothing more of the request arrived for 1 seconds"),
        "{problem}"
    );
    assert!(problem["detail"].as_str().unwrap().contains("nothing was saved"), "{problem}");
    drop(writing);

    assert_eq!(evidence_titled(&app, "Stalled call log").await, 0, "no evidence item");
    assert_eq!(staged_files(&app), Vec::<std::path::PathBuf>::new(), "the partial upload is removed");
    assert_eq!(app.stored_files(), Vec::<std::path::PathBuf>::new(), "nothing reached the store");
}

#[tokio::test]
async fn an_upload_trickling_below_the_minimum_rate_is_cut_off_after_the_grace_period() {
    // Idle timeout far away: only the average rate can stop this one.
    let app = TestApp::spawn_with(|config| {
        config.body_idle_timeout_secs = 30;
        config.min_upload_rate = 4096;
        config.upload_rate_grace_secs = 1;
    })
    .await;
    let cast = app.cast().await;
    let (head, half) = upload_head_and_half(&app, cast.learner.id, cast.enrolment, "Trickled call log").await;

    let stream = TcpStream::connect(host_port(&app)).await.unwrap();
    let (mut reading, mut writing) = stream.into_split();
    writing.write_all(&head).await.unwrap();
    // 100 bytes every 100 ms: 1 000 bytes a second, a quarter of the minimum.
    let trickle = tokio::spawn(async move {
        for chunk in half.chunks(100) {
            if writing.write_all(chunk).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        writing
    });
    let started = Instant::now();
    let answer = read_until_closed(&mut reading, Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "cut off well before the idle timeout: {:?}",
        started.elapsed()
    );
    assert!(answer.contains("slower than 4 KiB per second on average"), "{answer}");
    trickle.abort();

    assert_eq!(evidence_titled(&app, "Trickled call log").await, 0);
    assert_eq!(staged_files(&app), Vec::<std::path::PathBuf>::new(), "the partial upload is removed");
}

#[tokio::test]
async fn a_slow_but_steady_upload_above_the_minimum_rate_is_stored_whole() {
    let app = TestApp::spawn_with(|config| {
        config.body_idle_timeout_secs = 2;
        config.min_upload_rate = 4096;
        config.upload_rate_grace_secs = 1;
    })
    .await;
    let cast = app.cast().await;
    let api = app.api_for(&cast.learner).await;
    // A 64 KiB recording in 4 KiB pieces every 200 ms: 20 KiB/s for about 3 s, like a poor phone
    // line, past the grace period and each pause shorter than the idle timeout.
    let mut recording = wav()[..44].to_vec();
    let data_len: u32 = 64 * 1024;
    recording[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    recording[40..44].copy_from_slice(&data_len.to_le_bytes());
    recording.extend(std::iter::repeat_n(0u8, data_len as usize));
    let expected_sha256 = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&recording));
    let pieces: Vec<Bytes> = recording.chunks(4096).map(Bytes::copy_from_slice).collect();
    let stream = futures_util::stream::unfold(pieces.into_iter(), |mut pieces| async move {
        let piece = pieces.next()?;
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((Ok::<Bytes, std::io::Error>(piece), pieces))
    });
    let file = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(stream))
        .file_name("customer-call.wav")
        .mime_str("audio/wav")
        .unwrap();
    let metadata = json!({"title": "Call on a slow line", "method": "product", "occurred_on": "2026-03-02",
                          "criteria": ["1.4"], "declaration": true, "third_party_confirmed": true});
    let form = reqwest::multipart::Form::new()
        .part("metadata", reqwest::multipart::Part::text(metadata.to_string()).mime_str("application/json").unwrap())
        .part("file", file);
    let started = Instant::now();
    let response = api.post_multipart(&format!("/api/v1/enrolments/{}/evidence", cast.enrolment), form).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(started.elapsed() >= Duration::from_secs(2), "it really was slow: {:?}", started.elapsed());
    let item: Value = response.json().await.unwrap();
    assert_eq!(item["files"][0]["sha256"], expected_sha256.as_str());
    assert_eq!(item["files"][0]["size"], recording.len());
    assert_eq!(evidence_titled(&app, "Call on a slow line").await, 1);
    assert_eq!(staged_files(&app), Vec::<std::path::PathBuf>::new());
}

#[tokio::test]
async fn while_a_slow_loris_holds_50_stalled_connections_other_people_are_still_served() {
    let app = TestApp::spawn_with(|config| config.header_timeout_secs = 8).await;
    let cast = app.cast().await;
    let mut stalled = Vec::new();
    for n in 0..50 {
        let mut stream = TcpStream::connect(host_port(&app)).await.unwrap();
        stream
            .write_all(format!("GET /dashboard HTTP/1.1\r\nHost: localhost\r\nX-Loris-{n}: ").as_bytes())
            .await
            .unwrap();
        stalled.push(stream);
    }

    let started = Instant::now();
    let learner = app.browser_for(&cast.learner).await;
    let portfolio = learner.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(portfolio.contains("Lead direct sales activities"), "the portfolio page is served");
    let health = Browser::new(&app).get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    let served_after = started.elapsed();
    assert!(
        closed_within(&mut stalled[49], Duration::from_millis(10)).await.is_none(),
        "served while the loris still held its connections ({served_after:?})"
    );

    // And the loris gets nothing for its trouble: every stalled connection is closed.
    for stream in &mut stalled {
        assert!(closed_within(stream, Duration::from_secs(15)).await.is_some(), "a stalled connection was closed");
    }
    assert_eq!(learner.get("/api/v1/me").await.headers()[CONTENT_TYPE], "application/json");
}
