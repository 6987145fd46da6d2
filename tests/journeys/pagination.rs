//! A client walks a long list a page at a time with `limit` and `cursor`: every item once, none
//! missed, while new items arrive; a limit outside 1..=200 or a cursor it was not given is a
//! 422 problem naming the parameter.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use eportfolio::auth::Role;

use crate::common::{Browser, TestApp, TestUser, api_evidence, pdf};

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

/// Walks `path` a page of `limit` at a time to its end: every item's id in the order the pages
/// gave them, and how many pages there were. Every page holds `limit` items but the last.
async fn walk(client: &Browser, path: &str, limit: usize, id: &str) -> (Vec<String>, usize) {
    let join = if path.contains('?') { '&' } else { '?' };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            None => format!("{path}{join}limit={limit}"),
            Some(c) => format!("{path}{join}limit={limit}&cursor={c}"),
        };
        let page = client.json(&url).await;
        pages += 1;
        let items = page["items"].as_array().unwrap_or_else(|| panic!("{url}: {page}"));
        seen.extend(items.iter().map(|item| item[id].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "{url}: a page before the last is full");
                cursor = Some(next.to_string());
            }
            None => break,
        }
        assert!(pages < 1000, "{path} never ends");
    }
    (seen, pages)
}

fn no_repeats(path: &str, ids: &[String]) -> BTreeSet<String> {
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "{path}: no item appears twice");
    unique
}

#[tokio::test]
async fn an_assessor_walks_a_conversation_of_120_messages_in_order_and_an_admin_60_people_while_one_is_added() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let item = call_log(&learner, cast.enrolment).await;
    for n in 0..120 {
        comment(&assessor, &item, n).await;
    }

    // The conversation: oldest first, 50 + 50 + 20, every message once and in the order written.
    let path = format!("/api/v1/evidence/{item}/comments");
    let (ids, pages) = walk(&assessor, &path, 50, "id").await;
    assert_eq!(pages, 3, "50 + 50 + 20");
    let unique = no_repeats(&path, &ids);
    let whole = assessor.json(&format!("{path}?limit=200")).await;
    assert_eq!(whole["can_comment"], true, "the summary fields stay on every page");
    let all: Vec<String> =
        whole["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, all, "the pages in turn are the conversation in order");
    assert_eq!(unique.len(), 120);
    let bodies: Vec<&str> = whole["items"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
    assert_eq!(bodies.first(), Some(&"Point 0"));
    assert_eq!(bodies.last(), Some(&"Point 119"));

    // The portfolio's history, newest first: at least the 120 comments and the upload.
    let history = format!("/api/v1/enrolments/{}/history", cast.enrolment);
    let first = assessor.json(&format!("{history}?limit=7")).await;
    let (seqs, _) = {
        let mut seqs = Vec::new();
        let mut page = first.clone();
        let mut pages = 1;
        loop {
            seqs.extend(page["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(c) => page = assessor.json(&format!("{history}?limit=7&cursor={c}")).await,
                None => break,
            }
            pages += 1;
        }
        (seqs, pages)
    };
    assert!(seqs.len() >= 121, "{}", seqs.len());
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first, none repeated");

    // 60 people and the administrator: walked 25 at a time while someone new joins.
    let admin_user = app.add_user(Role::Admin, "Ada Admin").await;
    for n in 0..60 {
        app.add_user(Role::Learner, &format!("Learner {n:02}")).await;
    }
    let admin = app.api_for(&admin_user).await;
    let everyone: BTreeSet<String> = admin.json("/api/v1/users?limit=200").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(everyone.len(), 65, "60 learners, the cast of four and the administrator");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut newcomer = None;
    loop {
        let url = match &cursor {
            None => "/api/v1/users?limit=25".to_string(),
            Some(c) => format!("/api/v1/users?limit=25&cursor={c}"),
        };
        let page = admin.json(&url).await;
        pages += 1;
        let names: Vec<String> =
            page["items"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_lowercase()).collect();
        assert!(names.windows(2).all(|w| w[0] <= w[1]), "by name: {names:?}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()));
        if pages == 1 {
            // Someone whose name sorts after the first page joins while the admin reads.
            newcomer = Some(app.add_user(Role::Learner, "Zoe Newcomer").await.id.to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let unique = no_repeats("/api/v1/users", &seen);
    assert_eq!(pages, 3, "25 + 25 + 16");
    assert!(everyone.is_subset(&unique), "nobody there at the start is missed");
    assert!(unique.contains(newcomer.as_ref().unwrap()), "the newcomer, after the page read, is on a later page");
    assert_eq!(unique.len(), 66);
}

#[tokio::test]
async fn every_paged_list_answers_items_and_next_cursor_and_refuses_a_bad_limit_or_cursor() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin_user = app.add_user(Role::Admin, "Ada Admin").await;
    let learner = app.api_for(&cast.learner).await;
    let item = call_log(&learner, cast.enrolment).await;
    let lists: Vec<(TestUser, String)> = vec![
        (cast.learner.clone(), "/api/v1/enrolments".into()),
        (cast.learner.clone(), "/api/v1/units".into()),
        (cast.learner.clone(), "/api/v1/tokens".into()),
        (cast.learner.clone(), format!("/api/v1/evidence/{item}/comments")),
        (cast.learner.clone(), format!("/api/v1/enrolments/{}/history", cast.enrolment)),
        (admin_user.clone(), "/api/v1/users".into()),
        (admin_user.clone(), "/api/v1/verifier-grants".into()),
        (admin_user.clone(), "/api/v1/centre/purge-runs".into()),
        (cast.iqa.clone(), "/api/v1/iqa/draws".into()),
        (cast.iqa.clone(), "/api/v1/iqa/plan".into()),
        (cast.iqa.clone(), "/api/v1/standardisation".into()),
        (cast.iqa.clone(), "/api/v1/reports/progress".into()),
    ];
    for (user, path) in &lists {
        let client = app.api_for(user).await;
        let page = client.json(&format!("{path}?limit=1")).await;
        assert!(page["items"].is_array(), "{path}: {page}");
        assert!(page["items"].as_array().unwrap().len() <= 1, "{path}: {page}");
        assert!(page.get("next_cursor").is_some(), "{path}: {page}");
        for (query, field) in [("limit=0", "limit"), ("limit=201", "limit"), ("cursor=not-a-cursor", "cursor")] {
            let response = client.get(&format!("{path}?{query}")).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}?{query}");
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["errors"][0]["field"], field, "{path}?{query}: {problem}");
        }
    }
    // The lists with more than one item go on to a second page, and the two pages differ.
    for (user, path, id) in [
        (&cast.learner, "/api/v1/units".to_string(), "id"),
        (&cast.learner, format!("/api/v1/enrolments/{}/history", cast.enrolment), "seq"),
    ] {
        let client = app.api_for(user).await;
        let first = client.json(&format!("{path}?limit=1")).await;
        let cursor = first["next_cursor"].as_str().unwrap_or_else(|| panic!("{path}: {first}"));
        let second = client.json(&format!("{path}?limit=1&cursor={cursor}")).await;
        assert_ne!(first["items"][0][id], second["items"][0][id], "{path}");
    }
}
