//! Several server processes on one database, as behind a load balancer (SPEC.md, "Scale"). Each
//! process keeps the sessions, people, unread counts, API tokens, portfolios, dashboards and
//! tracking grids it has read (src/db/changes.rs); what one process changes, another stops serving
//! from memory.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Browser, Server, TestApp, api_at, api_evidence, browser_at, pdf};

/// Asks again until `check` holds, for up to 10 s: a change reaches the other process as a
/// notification, a moment after it commits.
async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "the other process still serves what it kept from before {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn status(client: &Browser, path: &str) -> StatusCode {
    client.get(path).await.status()
}

fn unread_in_header(page: &str) -> Option<&str> {
    page.split("href=\"/notifications\">Notifications (").nth(1)?.split(')').next()
}

#[tokio::test]
async fn what_one_process_changes_another_stops_serving_from_memory() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let data = tempfile::tempdir().unwrap();
    let other = Server::start(&app.database_url, data.path(), &[]).await;

    // Signed in on the other process and read there twice (the second time from memory), then
    // signed out everywhere through this one.
    let learner_there = api_at(&other.base, &cast.learner).await;
    for _ in 0..2 {
        assert_eq!(status(&learner_there, "/api/v1/me").await, StatusCode::OK);
    }
    let learner_here = app.browser_for(&cast.learner).await;
    assert_eq!(learner_here.post_form("/logout", &[("everywhere", "yes")]).await.status(), StatusCode::SEE_OTHER);
    let there = &learner_there;
    eventually("the sign-out", || async move { status(there, "/api/v1/me").await == StatusCode::UNAUTHORIZED }).await;

    // A role given here shows there.
    let iqa_there = api_at(&other.base, &cast.iqa).await;
    let roles = |me: serde_json::Value| {
        me["roles"].as_array().unwrap().iter().map(|r| r["role"].to_string()).collect::<Vec<_>>()
    };
    assert_eq!(roles(iqa_there.json("/api/v1/me").await), ["\"iqa\""]);
    let admin = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let admin = app.browser_for(&admin).await;
    admin.page(&format!("/admin/users/{}", cast.iqa.id)).await;
    let changed = admin
        .post_form(
            &format!("/admin/users/{}", cast.iqa.id),
            &[("name", "Ian Quality"), ("email", &cast.iqa.email), ("roles", "iqa"), ("roles", "assessor")],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    let there = &iqa_there;
    eventually("the new role", || async move { roles(there.json("/api/v1/me").await).len() == 2 }).await;

    // An API token revoked here stops working there.
    let assessor_here = app.api_for(&cast.assessor).await;
    let made: serde_json::Value =
        assessor_here.post_json("/api/v1/tokens", &json!({"label": "report"})).await.json().await.unwrap();
    let script_there = Browser::with_token_at(&other.base, made["token"].as_str().unwrap());
    for _ in 0..2 {
        assert_eq!(status(&script_there, "/api/v1/me").await, StatusCode::OK);
    }
    let revoked = assessor_here.request_delete(&format!("/api/v1/tokens/{}", made["id"].as_str().unwrap())).await;
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let there = &script_there;
    eventually("the revocation", || async move { status(there, "/api/v1/me").await == StatusCode::UNAUTHORIZED }).await;

    // Evidence submitted here counts as unread in the assessor's header there, and shows in the
    // portfolio and its progress there, both read (and kept) there before.
    let assessor_there = browser_at(&other.base, &cast.assessor).await;
    assert_eq!(unread_in_header(&assessor_there.page("/dashboard").await), None);
    let portfolio = format!("/enrolments/{}", cast.enrolment);
    let progress = format!("/api/v1/enrolments/{}/progress", cast.enrolment);
    let assessor_api_there = api_at(&other.base, &cast.assessor).await;
    let submitted = |progress: serde_json::Value| {
        progress["criteria"].as_array().unwrap().iter().find(|c| c["number"] == "1.1").unwrap()["status"] == "submitted"
    };
    let grid = format!("/enrolments/{}/tracking", cast.enrolment);
    for _ in 0..2 {
        assert!(!assessor_there.page(&portfolio).await.contains("Team huddle"));
        assert!(!submitted(assessor_api_there.json(&progress).await));
        assert!(assessor_there.page("/dashboard").await.contains("0 items to assess"));
        assert!(!assessor_there.page(&grid).await.contains("Team huddle"));
    }
    let learner_here = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Team huddle", "method": "observation", "occurred_on": "2026-11-02",
                          "criteria": ["1.1"], "declaration": true});
    let uploaded = learner_here
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("huddle.pdf", pdf())]),
        )
        .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let there = &assessor_there;
    eventually(
        "the new notification",
        || async move { unread_in_header(&there.page("/dashboard").await) == Some("1") },
    )
    .await;
    let portfolio = &portfolio;
    eventually("the new item", || async move { there.page(portfolio).await.contains("Team huddle") }).await;
    let (api_there, progress) = (&assessor_api_there, &progress);
    eventually("the item's criteria", || async move { submitted(api_there.json(progress).await) }).await;
    eventually("the caseload's count", || async move { there.page("/dashboard").await.contains("1 item to assess") })
        .await;
    let grid = &grid;
    eventually("the grid's column", || async move { there.page(grid).await.contains("Team huddle") }).await;
}
