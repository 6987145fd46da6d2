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

#[tokio::test]
async fn an_administrator_reads_one_person_and_one_enrolment_through_the_api_as_their_pages_show_them() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let pages = app.browser_for(&admin).await;
    let api = app.api_for(&admin).await;

    // One person: the page and the API show the same name, email and roles.
    let page = pages.page(&format!("/admin/users/{}", cast.learner.id)).await;
    let person = api.json(&format!("/api/v1/users/{}", cast.learner.id)).await;
    assert_eq!(person["id"], cast.learner.id.to_string());
    assert_eq!(person["email"], cast.learner.email.as_str());
    assert_eq!(person["name"], "Lee Learner");
    assert!(page.contains("Lee Learner") && page.contains(&cast.learner.email), "the page shows the same person");
    assert_eq!(person["roles"], json!(["learner"]));
    assert_eq!(person["disabled"], false);
    assert_eq!(person["is_self"], false);
    assert_eq!(person["legal_holds"], json!([]));
    assert!(person["history"].is_array());
    assert_eq!(api.json(&format!("/api/v1/users/{}", admin.id)).await["is_self"], true);
    // Disabled on the page, it reads disabled through the API.
    pages.post_form(&format!("/admin/users/{}/disable", cast.learner.id), &[]).await;
    let person = api.json(&format!("/api/v1/users/{}", cast.learner.id)).await;
    assert_eq!(person["disabled"], true);
    assert!(
        person["history"].as_array().unwrap().iter().any(|e| e["action"] == "user.disabled"),
        "the person's history carries the change: {person}"
    );

    // One enrolment: where it stands, who assesses it, and who it can go to.
    let path = format!("/api/v1/admin/enrolments/{}", cast.enrolment);
    let enrolment = api.json(&path).await;
    let page = pages.page(&format!("/admin/enrolments/{}", cast.enrolment)).await;
    assert_eq!(enrolment["enrolment"]["id"], cast.enrolment.to_string());
    assert_eq!(enrolment["enrolment"]["unit_code"], "CC20");
    let assessor_name = enrolment["assignments"][0]["assessor_name"].as_str().unwrap().to_string();
    assert!(page.contains(&assessor_name), "the page names the same assessor, {assessor_name}");
    let assessors: Vec<&str> =
        enrolment["assessors"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert!(assessors.contains(&cast.assessor.id.to_string().as_str()), "{enrolment}");
    assert!(enrolment["iqas"].as_array().unwrap().iter().any(|p| p["id"] == cast.iqa.id.to_string()));
    // Reassigned through the API, the new period heads both the API's and the page's history.
    let second = app.add_user(eportfolio::auth::Role::Assessor, "Sam Second").await;
    let response = api
        .post_json(
            &format!("/api/v1/enrolments/{}/assignment", cast.enrolment),
            &json!({"assessor": second.email, "iqa": cast.iqa.email, "reason": "Caseload balancing"}),
        )
        .await;
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let enrolment = api.json(&path).await;
    assert_eq!(enrolment["assignments"][0]["assessor_name"], "Sam Second");
    assert_eq!(enrolment["assignments"][0]["reason"], "Caseload balancing");
    assert_eq!(enrolment["assignments"].as_array().unwrap().len(), 2);
    assert!(pages.page(&format!("/admin/enrolments/{}", cast.enrolment)).await.contains("Caseload balancing"));

    // Another centre's administrator, and anyone who is not an administrator, reach neither.
    let elsewhere = app.add_user_elsewhere("Far College", eportfolio::auth::Role::Admin, "Fern Far").await;
    let far = app.api_for(&elsewhere).await;
    assert_eq!(far.get(&format!("/api/v1/users/{}", cast.learner.id)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(far.get(&path).await.status(), StatusCode::NOT_FOUND);
    let assessor = app.api_for(&cast.assessor).await;
    for refused in [format!("/api/v1/users/{}", cast.learner.id), path.clone()] {
        let status = assessor.get(&refused).await.status();
        assert!(matches!(status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{refused}: {status}");
    }
}

#[tokio::test]
async fn a_person_sets_their_password_through_a_link_by_the_api_as_on_the_page_and_the_link_then_stops_working() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let by_page = app.add_user(eportfolio::auth::Role::Learner, "Pia Page").await;
    let by_api = app.add_user(eportfolio::auth::Role::Learner, "Abe Api").await;
    let api = app.api_for(&admin).await;
    let link_for = |person: uuid::Uuid| {
        let api = &api;
        async move {
            let link = api.post_json(&format!("/api/v1/users/{person}/password-link"), &json!({})).await;
            let link: Value = link.json().await.unwrap();
            link["path"].as_str().unwrap().trim_start_matches("/password/set/").to_string()
        }
    };
    let page_token = link_for(by_page.id).await;
    let api_token = link_for(by_api.id).await;
    // A person in a browser, and a script (no cookies, no token) doing the same through the API.
    let anyone = crate::common::Browser::new(&app);
    let script = crate::common::Browser::new(&app);

    // Checking the link: the page and the API name the same person.
    assert!(anyone.page(&format!("/password/set/{page_token}")).await.contains("Pia Page"));
    let holder = script.json(&format!("/api/v1/password/set/{api_token}")).await;
    assert_eq!(holder["name"], "Abe Api");
    assert_eq!(holder["email"], by_api.email.as_str());
    let unknown = script.get("/api/v1/password/set/0123456789abcdef").await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(unknown.headers()[CONTENT_TYPE], "application/problem+json");

    // A password too weak is refused both ways, naming the field; the link still works.
    let weak = script.post_json(&format!("/api/v1/password/set/{api_token}"), &json!({"password": "short"})).await;
    assert_eq!(weak.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(weak.headers()[CONTENT_TYPE], "application/problem+json");
    let problem: Value = weak.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "password", "{problem}");
    let page = anyone.page(&format!("/password/set/{page_token}")).await;
    assert!(page.contains("Set your password"));
    let weak_page = anyone.post_form(&format!("/password/set/{page_token}"), &[("password", "short")]).await;
    assert_eq!(weak_page.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Set both ways; each person signs in with the new password.
    let new_password = "lantern orchard pebble";
    let set = script.post_json(&format!("/api/v1/password/set/{api_token}"), &json!({"password": new_password})).await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    anyone.page(&format!("/password/set/{page_token}")).await;
    let set_page = anyone.post_form(&format!("/password/set/{page_token}"), &[("password", new_password)]).await;
    assert_eq!(set_page.status(), StatusCode::SEE_OTHER);
    for person in [&by_page, &by_api] {
        let session = crate::common::Browser::new(&app)
            .post_json("/api/v1/session", &json!({"email": person.email, "password": new_password}))
            .await;
        assert_eq!(session.status(), StatusCode::OK, "{} signs in with the new password", person.email);
    }
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'user.password_set_by_link'").await, 2);

    // Used, the link stops working both ways.
    for token in [&api_token, &page_token] {
        let again = script.get(&format!("/api/v1/password/set/{token}")).await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
        let again = script
            .post_json(&format!("/api/v1/password/set/{token}"), &json!({"password": "another long one here"}))
            .await;
        assert_eq!(again.status(), StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn a_verifier_lists_the_centres_they_may_verify_through_the_api_as_on_their_landing_page() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let page = app.browser_for(&cast.verifier).await.page("/verification").await;
    let landing = app.api_for(&cast.verifier).await.json("/api/v1/verification").await;
    let grants = landing["grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1, "{landing}");
    assert_eq!(grants[0]["centre_id"], app.centre.to_string());
    assert_eq!(grants[0]["centre_name"], "Test Centre");
    assert!(page.contains("Test Centre"), "the page lists the same centre");
    assert!(page.contains(&format!("/verify/centres/{}", app.centre)));
    let overview = app.api_for(&cast.verifier).await.get(&format!("/api/v1/verify/centres/{}", app.centre)).await;
    assert_eq!(overview.status(), StatusCode::OK, "the grant's centre opens");

    // A grant that has ended is gone from both; anyone else has none.
    let past = app.add_user(eportfolio::auth::Role::Eqa, "Pat Past").await;
    app.grant_verifier(&past, -60, -1).await;
    assert_eq!(app.api_for(&past).await.json("/api/v1/verification").await["grants"], json!([]));
    assert!(!app.browser_for(&past).await.page("/verification").await.contains("Test Centre"));
    assert_eq!(app.api_for(&cast.learner).await.json("/api/v1/verification").await["grants"], json!([]));
}
