//! Hostile input, sent as an attacker would over real HTTP: script in every text a person can
//! enter, SQL metacharacters, awkward file names, malformed and oversized JSON and form fields.
//! Each is either stored exactly and shown escaped, or refused with a precise 4xx; never a 5xx,
//! never markup from the input in a page.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{TestApp, api_evidence, pdf};

const SCRIPT: &str = "<script>alert('xss')</script><img src=x onerror=alert(1)>\"'&";
const SQL: &str = "Robert'); DROP TABLE evidence_items; -- \\ % _ $1";

fn assert_escaped(page: &str, what: &str) {
    assert!(!page.contains("<script>alert"), "{what}: raw script in the page");
    assert!(!page.contains("<img src=x"), "{what}: raw markup in the page");
    // askama writes `<` as `&#60;`: the reader sees the text, the browser runs nothing.
    assert!(
        page.contains("&#60;script&#62;alert(") || page.contains("&lt;script&gt;alert("),
        "{what}: the text is shown, escaped"
    );
}

async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn script_and_sql_in_every_text_field_are_stored_exactly_and_shown_escaped() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({
        "title": format!("{SCRIPT} {SQL}"), "description": SCRIPT, "method": "product", "occurred_on": "2026-03-02",
        "criteria": ["1.1"], "mappings": {"1.1": {"note": SCRIPT, "where": "page 2"}},
        "declaration": true, "third_party_confirmed": true, "help_received": SCRIPT, "ai_use": SQL,
    });
    let created = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![(SCRIPT, pdf())]),
        )
        .await;
    let status = created.status();
    let item: Value = created.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{item}");
    let id = item["id"].as_str().unwrap().to_string();
    assert_eq!(item["title"], format!("{SCRIPT} {SQL}"), "stored exactly as sent");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1, "the table is still there");

    let assessor = app.api_for(&cast.assessor).await;
    let decided = assessor
        .post_json(
            &format!("/api/v1/evidence/{id}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": SCRIPT}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::CREATED);
    let commented = learner.post_json(&format!("/api/v1/evidence/{id}/comments"), &json!({"body": SCRIPT})).await;
    assert_eq!(commented.status(), StatusCode::CREATED);
    let witness = learner
        .post_json(
            &format!("/api/v1/enrolments/{}/witnesses", cast.enrolment),
            &json!({"name": SCRIPT, "job_role": SQL, "relationship": SCRIPT, "phone": "0113 496 0001"}),
        )
        .await;
    let status = witness.status();
    assert!(status.is_success(), "{status}: {}", witness.text().await.unwrap());

    // Every page that shows these texts shows them escaped, to each person who reads them.
    for (who, user) in [("learner", &cast.learner), ("assessor", &cast.assessor), ("verifier", &cast.verifier)] {
        let pages = app.browser_for(user).await;
        for path in [
            format!("/evidence/{id}"),
            format!("/enrolments/{}", cast.enrolment),
            format!("/enrolments/{}/history", cast.enrolment),
        ] {
            let response = pages.get(&path).await;
            if response.status() == StatusCode::OK {
                assert_escaped(&response.text().await.unwrap(), &format!("{who} {path}"));
            }
        }
    }
    let pages = app.browser_for(&cast.learner).await;
    assert_escaped(&pages.page(&format!("/enrolments/{}/witnesses", cast.enrolment)).await, "witness register");
    assert_escaped(&pages.page("/notifications").await, "notifications");
    // The file's name is shown escaped and served with a safe download name.
    let file_id = item["files"][0]["id"].as_str().unwrap();
    let download = learner.get(&format!("/api/v1/evidence/{id}/files/{file_id}")).await;
    assert_eq!(download.status(), StatusCode::OK);
    let disposition = download.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(!disposition.contains('\n') && !disposition.contains("<script>"), "{disposition}");
}

#[tokio::test]
async fn awkward_file_names_are_kept_as_names_and_never_become_paths() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let long = format!("{}.pdf", "a".repeat(10_000));
    for name in [
        "../../../../etc/passwd.pdf",
        "..\\..\\boot.ini.pdf",
        "report\u{0}\u{7}\r\nX-Injected: 1.pdf",
        "Zoë’s résumé 📞 日本.pdf",
        long.as_str(),
    ] {
        let metadata = json!({"title": "Named oddly", "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.1"],
                              "declaration": true, "third_party_confirmed": true});
        let response = learner
            .post_multipart(
                &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
                api_evidence(metadata, vec![(name, pdf())]),
            )
            .await;
        let status = response.status();
        assert!(
            [StatusCode::CREATED, StatusCode::BAD_REQUEST, StatusCode::UNPROCESSABLE_ENTITY].contains(&status),
            "{name:.40}: {status}"
        );
        if status != StatusCode::CREATED {
            // Refused (a line break cannot even be sent in a multipart header): with a reason.
            let problem: Value = response.json().await.unwrap();
            assert!(problem["detail"].as_str().is_some_and(|m| !m.is_empty()), "a precise reason: {problem}");
            continue;
        }
        let item: Value = response.json().await.unwrap();
        let stored = item["files"][0]["name"].as_str().unwrap();
        assert!(
            !stored.contains('\0') && !stored.contains('\n') && !stored.contains('\r'),
            "control characters removed: {stored:?}"
        );
        assert!(stored.chars().count() <= 255, "the name is bounded");
        let path = format!(
            "/api/v1/evidence/{}/files/{}",
            item["id"].as_str().unwrap(),
            item["files"][0]["id"].as_str().unwrap()
        );
        let download = learner.get(&path).await;
        assert_eq!(download.status(), StatusCode::OK);
        assert!(download.headers().get("x-injected").is_none(), "no header injection through the name");
    }
    // Stored files live only at content addresses inside the store.
    for file in app.stored_files() {
        assert!(file.starts_with(app.data_dir.join("files")), "{}", file.display());
        assert!(!file.to_string_lossy().contains("passwd") && !file.to_string_lossy().contains("boot.ini"));
    }
    assert!(!std::path::Path::new("/etc/passwd.pdf").exists());
}

#[tokio::test]
async fn malformed_json_gets_a_precise_4xx_problem_never_a_5xx() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let evidence = {
        let metadata = json!({"title": "Call", "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.1"],
                              "declaration": true, "third_party_confirmed": true});
        let created = learner
            .post_multipart(
                &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
                api_evidence(metadata, vec![("a.pdf", pdf())]),
            )
            .await;
        let item: Value = created.json().await.unwrap();
        item["id"].as_str().unwrap().to_string()
    };
    let comments = format!("/api/v1/evidence/{evidence}/comments");
    let client = reqwest::Client::new();
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let bodies: Vec<(String, &str)> = vec![
        (r#"{"body": 12}"#.into(), "a number for a text"),
        (r#"{"body": ["a"]}"#.into(), "a list for a text"),
        (r#"{"body": null}"#.into(), "null"),
        (r#"{"body": "ok", "body": 1e400}"#.into(), "a huge number"),
        (r#"{"body": "unterminated"#.into(), "cut off"),
        (deep, "deep nesting"),
        ("\u{feff}\u{0}".into(), "not JSON at all"),
        (format!(r#"{{"body": "{}"}}"#, "x".repeat(3 * 1024 * 1024)), "3 MiB of text"),
    ];
    for (body, what) in bodies {
        let response = learner
            .request_raw(reqwest::Method::POST, &comments)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{what}: {status}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{what}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()), "{what}: {problem}");
    }
    // The server is unharmed, and nothing was written.
    assert_eq!(app.count("SELECT count(*) FROM evidence_comments").await, 0);
    let ok = client.get(format!("{}/readyz", app.address)).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    let response = learner.post_json(&comments, &json!({"body": "A proper comment."})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    problem(learner.post_json(&comments, &json!({"body": ""})).await, StatusCode::UNPROCESSABLE_ENTITY).await;
}

#[tokio::test]
async fn oversized_form_fields_are_refused_precisely_and_keep_nothing() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    learner.page(&format!("/enrolments/{}/evidence/new", cast.enrolment)).await;
    let title = "T".repeat(5 * 1024 * 1024);
    let form = learner.upload_form(&title, &["1.1"], true, Some(("a.pdf", pdf())));
    let response = learner.post_multipart(&format!("/enrolments/{}/evidence", cast.enrolment), form).await;
    let status = response.status();
    assert!(status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::UNPROCESSABLE_ENTITY, "{status}");
    let page = response.text().await.unwrap();
    assert!(page.contains("There is a problem") || page.contains("Too large"), "a page that says what is wrong");
    assert!(page.len() < 1024 * 1024, "the oversized value is not echoed back whole");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert!(app.stored_files().is_empty(), "no file kept: {:?}", app.stored_files());

    // A sign-in form with a megabyte password is refused, not hashed.
    let visitor = crate::common::Browser::new(&app);
    visitor.page("/login").await;
    let password = "p".repeat(1024 * 1024);
    let response = visitor.post_form("/login", &[("email", &cast.learner.email), ("password", &password)]).await;
    assert!(response.status().is_client_error(), "{}", response.status());
}
