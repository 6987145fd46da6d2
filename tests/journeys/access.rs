//! Who may reach what: a learner never reaches another learner's records by any URL, a
//! verifier can read but never write, and signing in is required everywhere.

use reqwest::StatusCode;
use serde_json::json;

use crate::common::{Browser, TestApp, api_evidence, pdf};

#[tokio::test]
async fn a_learner_cannot_reach_another_learners_portfolio_evidence_or_files() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let owner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Private", "method": "product", "occurred_on": "2026-03-31", "criteria": ["1.1"], "declaration": true});
    let created: serde_json::Value = owner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("p.pdf", pdf())]),
        )
        .await
        .json()
        .await
        .unwrap();
    let evidence = created["id"].as_str().unwrap();
    let file = created["files"][0]["id"].as_str().unwrap();

    let other = app.add_user(eportfolio::auth::Role::Learner, "Other Learner").await;
    app.enrol(&other, &cast.assessor, None).await;
    let intruder = app.browser_for(&other).await;
    for path in [
        format!("/enrolments/{}", cast.enrolment),
        format!("/enrolments/{}/history", cast.enrolment),
        format!("/enrolments/{}/evidence/new", cast.enrolment),
        format!("/evidence/{evidence}"),
        format!("/evidence/{evidence}/files/{file}"),
        format!("/api/v1/evidence/{evidence}"),
        format!("/api/v1/evidence/{evidence}/files/{file}"),
        format!("/api/v1/enrolments/{}/progress", cast.enrolment),
        format!("/api/v1/enrolments/{}/history", cast.enrolment),
    ] {
        assert_eq!(intruder.get(&path).await.status(), StatusCode::NOT_FOUND, "GET {path}");
    }
    let response = intruder
        .post_multipart(
            &format!("/enrolments/{}/evidence", cast.enrolment),
            intruder.upload_form("Sneaky", &["1.1"], true, Some(("x.pdf", pdf()))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let listed = intruder.json("/api/v1/enrolments").await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "only their own enrolment is listed");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
}

#[tokio::test]
async fn a_verifier_can_read_everything_but_write_nothing() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Dashboard", "method": "product", "occurred_on": "2026-03-31", "criteria": ["2.1"], "declaration": true});
    let created: serde_json::Value = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata.clone(), vec![("d.pdf", pdf())]),
        )
        .await
        .json()
        .await
        .unwrap();
    let evidence = created["id"].as_str().unwrap();
    let before = app.count("SELECT count(*) FROM audit_events WHERE action NOT LIKE 'verifier.%'").await;

    let verifier = app.api_for(&cast.verifier).await;
    assert_eq!(verifier.get(&format!("/api/v1/evidence/{evidence}")).await.status(), StatusCode::OK);
    assert_eq!(verifier.get(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await.status(), StatusCode::OK);

    let response = verifier
        .post_json(
            &format!("/api/v1/evidence/{evidence}/decisions"),
            &json!({"criterion": "2.1", "outcome": "met", "feedback": ""}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = verifier
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("d.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let pages = app.browser_for(&cast.verifier).await;
    let response = pages
        .post_form(&format!("/evidence/{evidence}/decisions"), &[("outcome-2.1", "met"), ("feedback-2.1", "")])
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("read-only"));
    assert_eq!(
        pages.get(&format!("/enrolments/{}/evidence/new", cast.enrolment)).await.status(),
        StatusCode::FORBIDDEN
    );

    assert_eq!(app.count("SELECT count(*) FROM decisions").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
    let after = app.count("SELECT count(*) FROM audit_events WHERE action NOT LIKE 'verifier.%'").await;
    assert_eq!(before, after, "nothing but the verifier's own views was recorded");
}

#[tokio::test]
async fn learners_and_iqas_cannot_record_decisions_and_assessors_cannot_upload_for_learners() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Log", "method": "product", "occurred_on": "2026-03-31", "criteria": ["1.6"], "declaration": true});
    let created: serde_json::Value = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata.clone(), vec![("l.pdf", pdf())]),
        )
        .await
        .json()
        .await
        .unwrap();
    let decisions = format!("/api/v1/evidence/{}/decisions", created["id"].as_str().unwrap());
    let judgement = json!({"criterion": "1.6", "outcome": "met", "feedback": "self-assessed"});
    assert_eq!(learner.post_json(&decisions, &judgement).await.status(), StatusCode::FORBIDDEN);
    let iqa = app.api_for(&cast.iqa).await;
    assert_eq!(iqa.post_json(&decisions, &judgement).await.status(), StatusCode::FORBIDDEN);
    let assessor = app.api_for(&cast.assessor).await;
    let response = assessor
        .post_multipart(&format!("/api/v1/enrolments/{}/evidence", cast.enrolment), api_evidence(metadata, vec![]))
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM decisions").await, 0);
}

#[tokio::test]
async fn pages_send_strangers_to_sign_in_and_the_api_answers_401() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let anonymous = Browser::new(&app);
    let response = anonymous.get(&format!("/enrolments/{}", cast.enrolment)).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?next=%2Fenrolments%2F"));
    assert_eq!(
        anonymous.get(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(anonymous.get("/api/v1/enrolments").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.get("/healthz").await.status(), StatusCode::OK);
    assert_eq!(anonymous.get("/readyz").await.status(), StatusCode::OK);
}
