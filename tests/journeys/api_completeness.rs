//! What a person can do in the pages, a script can do through `/api/v1` with the same rule:
//! each journey here does one thing both ways and compares. The page-to-API table is in
//! docs/api.md.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::common::{TestApp, api_evidence, pdf};

#[tokio::test]
async fn an_administrator_disables_enables_and_sends_password_links_through_the_api_as_on_the_page() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let by_page = app.add_user(eportfolio::auth::Role::Learner, "Pia Page").await;
    let by_api = app.add_user(eportfolio::auth::Role::Learner, "Abe Api").await;
    let pages = app.browser_for(&admin).await;
    let api = app.api_for(&admin).await;

    pages.page(&format!("/admin/users/{}", by_page.id)).await;
    let response = pages.post_form(&format!("/admin/users/{}/disable", by_page.id), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = api.post_json(&format!("/api/v1/users/{}/disable", by_api.id), &json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for person in [&by_page, &by_api] {
        let disabled: bool = sqlx::query_scalar("SELECT disabled_at IS NOT NULL FROM users WHERE id = $1")
            .bind(person.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert!(disabled, "{} is disabled", person.email);
        let session = crate::common::Browser::new(&app)
            .post_json("/api/v1/session", &json!({"email": person.email, "password": person.password}))
            .await;
        assert_ne!(session.status(), StatusCode::OK, "a disabled account cannot sign in");
    }
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'user.disabled'").await, 2);
    // An administrator cannot disable themselves, either way.
    let own = api.post_json(&format!("/api/v1/users/{}/disable", admin.id), &json!({})).await;
    assert_eq!(own.status(), StatusCode::CONFLICT);
    assert_eq!(own.headers()[CONTENT_TYPE], "application/problem+json");

    let response = api.post_json(&format!("/api/v1/users/{}/enable", by_api.id), &json!({})).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    pages.page(&format!("/admin/users/{}", by_page.id)).await;
    let response = pages.post_form(&format!("/admin/users/{}/enable", by_page.id), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    for person in [&by_page, &by_api] {
        app.api_for(person).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'user.enabled'").await, 2);

    // A password link: the page shows it once, the API answers it once; each works.
    pages.page(&format!("/admin/users/{}", by_page.id)).await;
    let page = pages.post_form(&format!("/admin/users/{}/password-link", by_page.id), &[]).await.text().await.unwrap();
    let page_link = page.split("/password/set/").nth(1).map(|rest| rest[..64].to_string()).expect("a link on the page");
    let response = api.post_json(&format!("/api/v1/users/{}/password-link", by_api.id), &json!({})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let link: Value = response.json().await.unwrap();
    let path = link["path"].as_str().unwrap();
    assert!(path.starts_with("/password/set/") && path.len() == "/password/set/".len() + 64, "{link}");
    assert!(link["url"].as_str().unwrap().ends_with(path));
    assert!(link["expires_at"].is_string());
    let anyone = crate::common::Browser::new(&app);
    assert!(anyone.page(path).await.contains("password"));
    assert!(anyone.page(&format!("/password/set/{page_link}")).await.contains("password"));

    // Another centre's administrator reaches neither person.
    let elsewhere = app.add_user_elsewhere("Far College", eportfolio::auth::Role::Admin, "Fern Far").await;
    let far = app.api_for(&elsewhere).await;
    for action in ["disable", "enable", "password-link"] {
        let response = far.post_json(&format!("/api/v1/users/{}/{action}", by_api.id), &json!({})).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{action}");
    }
}

#[tokio::test]
async fn the_tracking_csv_the_progress_chart_and_the_dashboard_counts_are_the_same_through_the_api() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Monday call log", "method": "product", "occurred_on": "2026-03-02",
                          "criteria": ["1.1", "1.2"], "declaration": true});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("log.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let pages = app.browser_for(&cast.assessor).await;
    let api = app.api_for(&cast.assessor).await;
    for (page_path, api_path, media) in [
        (
            format!("/enrolments/{}/tracking.csv", cast.enrolment),
            format!("/api/v1/enrolments/{}/tracking.csv", cast.enrolment),
            "text/csv",
        ),
        (
            format!("/enrolments/{}/progress.svg", cast.enrolment),
            format!("/api/v1/enrolments/{}/progress.svg", cast.enrolment),
            "image/svg+xml",
        ),
    ] {
        let from_page = pages.get(&page_path).await;
        let from_api = api.get(&api_path).await;
        assert_eq!(from_page.status(), StatusCode::OK);
        assert_eq!(from_api.status(), StatusCode::OK);
        assert!(from_api.headers()[CONTENT_TYPE].to_str().unwrap().starts_with(media), "{api_path}");
        assert_eq!(from_page.bytes().await.unwrap(), from_api.bytes().await.unwrap(), "{api_path} is the page's");
    }
    let other = app.add_user(eportfolio::auth::Role::Learner, "Olive Other").await;
    let other = app.api_for(&other).await;
    let refused = other.get(&format!("/api/v1/enrolments/{}/tracking.csv", cast.enrolment)).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);

    // The dashboard's caseload and counts.
    let dashboard = api.json("/api/v1/dashboard").await;
    assert_eq!(dashboard["items_awaiting"], 1);
    assert_eq!(dashboard["caseload"].as_array().unwrap().len(), 1);
    assert_eq!(dashboard["caseload"][0]["id"], cast.enrolment.to_string());
    assert_eq!(dashboard["own"], json!([]));
    let page = pages.page("/dashboard").await;
    assert!(page.contains("Lee Learner"), "the page lists the same learner");
    let learners = learner.json("/api/v1/dashboard").await;
    assert_eq!(learners["own"][0]["id"], cast.enrolment.to_string());
    assert_eq!(learners["caseload"], json!([]));
}
