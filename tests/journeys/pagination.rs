//! A client walks a long list a page at a time with `limit` and `cursor`: every item once, none
//! missed, while new items arrive; a limit outside 1..=200 or a cursor it was not given is a
//! 422 problem naming the parameter.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Browser, TestApp, api_evidence, pdf};

/// The learner uploads a call log through the API; the item's id.
async fn call_log(learner: &Browser, enrolment: uuid::Uuid) -> String {
    let metadata = json!({"title": "Call log", "method": "product", "occurred_on": "2026-03-17",
        "criteria": ["1.1"], "declaration": true});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{enrolment}/evidence"),
            api_evidence(metadata, vec![("log.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

async fn comment(assessor: &Browser, item: &str, n: usize) {
    let response =
        assessor.post_json(&format!("/api/v1/evidence/{item}/comments"), &json!({"body": format!("Point {n}")})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_learner_walks_120_notifications_in_pages_of_50_with_none_repeated_or_missed_while_more_arrive() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let item = call_log(&learner, cast.enrolment).await;
    for n in 0..120 {
        comment(&assessor, &item, n).await;
    }
    let everything: BTreeSet<String> = {
        let all = learner.json("/api/v1/notifications?limit=200").await;
        assert_eq!(all["next_cursor"], Value::Null, "200 holds them all");
        all["items"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(everything.len(), 120);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/api/v1/notifications?limit=50".to_string(),
            Some(c) => format!("/api/v1/notifications?limit=50&cursor={c}"),
        };
        let page = learner.json(&path).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 50);
        seen.extend(items.iter().map(|n| n["id"].as_str().unwrap().to_string()));
        assert_eq!(page["unread"], if pages == 1 { 120 } else { 121 }, "the unread count covers every page");
        if pages == 1 {
            // A new message arrives while the learner reads: it is newer than every page still
            // to come, so it shifts nothing.
            comment(&assessor, &item, 999).await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "50 + 50 + 20");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no notification appears twice");
    assert_eq!(unique, everything, "every notification there was at the start, and no other");

    // Newest first: the new one heads a fresh first page.
    let first = learner.json("/api/v1/notifications?limit=1").await;
    assert!(!everything.contains(first["items"][0]["id"].as_str().unwrap()));
    assert!(first["next_cursor"].is_string());
}

#[tokio::test]
async fn a_limit_outside_1_to_200_or_a_cursor_the_api_did_not_give_is_refused_with_422() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=MTIzfG5vdC1hLXV1aWQ", "cursor"),
    ] {
        let response = learner.get(&format!("/api/v1/notifications?{query}")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{query}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    // A well-formed cursor past the end is simply an empty last page.
    let page = learner.json("/api/v1/notifications?limit=200").await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(learner.get("/api/v1/notifications?limit=200").await.status(), StatusCode::OK);
}
