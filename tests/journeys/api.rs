//! The same journey through the JSON API: session and token sign-in, units, enrolments,
//! progress, evidence upload and download, decisions, and problem+json errors.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Browser, TestApp, api_evidence, pdf, vacs};

fn status_of(progress: &Value, number: &str) -> String {
    progress["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["number"] == number)
        .map(|c| c["status"].as_str().unwrap().to_string())
        .expect("criterion present")
}

async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body
}

#[tokio::test]
async fn the_journey_works_through_the_api() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;

    let me = learner.json("/api/v1/me").await;
    assert_eq!(me["email"], cast.learner.email.as_str());
    assert_eq!(me["roles"][0]["role"], "learner");

    let units = learner.json("/api/v1/units").await;
    let codes: Vec<&str> = units["items"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
    assert_eq!(codes, vec!["CC20", "MDSO4"]);
    let cc20 = learner.json("/api/v1/units/cc20").await;
    assert_eq!(cc20["reference"], "D/503/0397");
    let numbers: Vec<&str> = cc20["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["criteria"].as_array().unwrap().iter().map(|c| c["number"].as_str().unwrap()))
        .collect();
    assert_eq!(numbers.len(), 22);
    assert_eq!(numbers.first(), Some(&"1.1"));
    assert_eq!(numbers.last(), Some(&"4.6"));

    let enrolments = learner.json("/api/v1/enrolments").await;
    assert_eq!(enrolments["items"].as_array().unwrap().len(), 1);
    assert_eq!(enrolments["items"][0]["id"], cast.enrolment.to_string());
    let progress_path = format!("/api/v1/enrolments/{}/progress", cast.enrolment);
    let progress = learner.json(&progress_path).await;
    assert_eq!(progress["criteria"].as_array().unwrap().len(), 22);
    assert_eq!(status_of(&progress, "2.1"), "not_started");

    let report = pdf();
    let metadata = json!({"title": "March sales dashboard", "method": "product", "occurred_on": "2026-03-31",
                          "criteria": ["2.1", "2.2"], "declaration": true});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("dashboard.pdf", report.clone())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let evidence_id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["files"][0]["name"], "dashboard.pdf");
    assert_eq!(created["files"][0]["size"], report.len());
    assert_eq!(created["files"][0]["sha256"], hex::encode(Sha256::digest(&report)));
    assert_eq!(created["files"][0]["content_type"], "application/pdf");
    assert_eq!(status_of(&learner.json(&progress_path).await, "2.1"), "submitted");

    let item = learner.json(&format!("/api/v1/evidence/{evidence_id}")).await;
    assert_eq!(item["status"], "submitted");
    assert_eq!(item["assessment_status"], "awaiting_assessment");
    assert_eq!(item["criteria"], json!(["2.1", "2.2"]));
    let file_id = item["files"][0]["id"].as_str().unwrap();
    let download = learner.get(&format!("/api/v1/evidence/{evidence_id}/files/{file_id}")).await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()[CONTENT_TYPE], "application/pdf");
    assert_eq!(download.bytes().await.unwrap().to_vec(), report);

    // The assessor uses a personal API token.
    let token = {
        let mut conn = app.pool.acquire().await.unwrap();
        eportfolio::auth::tokens::create(&mut conn, cast.assessor.id, "test").await.unwrap().token
    };
    let assessor = Browser::with_token(&app, &token);
    let response = assessor
        .post_json(
            &format!("/api/v1/evidence/{evidence_id}/decisions"),
            &json!({"criterion": "2.1", "outcome": "met", "feedback": "Right sources.", "confirmed": vacs()}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let decision: Value = response.json().await.unwrap();
    assert_eq!(decision["decision"]["outcome"], "met");
    let response = assessor
        .post_json(
            &format!("/api/v1/evidence/{evidence_id}/decisions"),
            &json!({"criterion": "2.2", "outcome": "not_yet", "feedback": "Compare agents, not only totals."}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let progress = learner.json(&progress_path).await;
    assert_eq!(status_of(&progress, "2.1"), "met");
    assert_eq!(status_of(&progress, "2.2"), "not_yet");
    assert_eq!(progress["met"], 1);
    let item = learner.json(&format!("/api/v1/evidence/{evidence_id}")).await;
    assert_eq!(item["assessment_status"], "assessed");
    assert_eq!(item["assessment"][1]["current"]["feedback"], "Compare agents, not only totals.");

    // Changing a judgement needs a reason and adds a decision; the earlier one stays in the history.
    let change = json!({"criterion": "2.2", "outcome": "met", "feedback": "Resubmitted analysis covers it.",
                        "confirmed": vacs()});
    let refused = assessor.post_json(&format!("/api/v1/evidence/{evidence_id}/decisions"), &change).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "reason-2.2", "{problem}");
    let mut change = change;
    change["reason"] = json!("The learner's later call shows the comparison I asked for.");
    let response = assessor.post_json(&format!("/api/v1/evidence/{evidence_id}/decisions"), &change).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let item = learner.json(&format!("/api/v1/evidence/{evidence_id}")).await;
    assert_eq!(item["assessment"][1]["history"].as_array().unwrap().len(), 2);
    assert_eq!(item["assessment"][1]["current"]["outcome"], "met");
    assert_eq!(
        item["assessment"][1]["current"]["change_reason"],
        "The learner's later call shows the comparison I asked for."
    );
    assert_eq!(item["assessment"][1]["current"]["confirmed"]["sufficient"], true);
    assert_eq!(item["assessment"][1]["history"][1]["change_reason"], "");
    assert_eq!(app.count("SELECT count(*) FROM decisions").await, 3);
}

#[tokio::test]
async fn api_errors_are_problem_details_naming_the_field() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/evidence", cast.enrolment);

    let metadata = json!({"title": "Call", "method": "product", "occurred_on": "2026-03-31", "criteria": ["1.1"], "declaration": false});
    let body = problem(
        learner.post_multipart(&path, api_evidence(metadata, vec![("a.pdf", pdf())])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "declaration");

    let metadata = json!({"title": "Call", "method": "product", "occurred_on": "2026-03-31", "criteria": ["7.1"], "declaration": true});
    let body = problem(
        learner.post_multipart(&path, api_evidence(metadata, vec![("a.pdf", pdf())])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "criteria");
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("no criterion 7.1"));

    let metadata = json!({"title": "Call", "method": "telepathy", "occurred_on": "31/03/2026", "criteria": [], "declaration": true});
    let body = problem(
        learner.post_multipart(&path, api_evidence(metadata, vec![("a.pdf", pdf())])).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["method", "occurred_on", "criteria"]);

    let metadata = json!({"title": 42});
    let body =
        problem(learner.post_multipart(&path, api_evidence(metadata, vec![])).await, StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    assert_eq!(body["errors"][0]["field"], "metadata");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);

    let anonymous = Browser::new(&app);
    problem(anonymous.get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    let response = anonymous
        .post_json("/api/v1/session", &json!({"email": cast.learner.email, "password": "wrong password"}))
        .await;
    let body = problem(response, StatusCode::UNAUTHORIZED).await;
    assert_eq!(body["detail"], "The email address or password is not correct");
    problem(Browser::with_token(&app, "epf_not_a_real_token").get("/api/v1/me").await, StatusCode::UNAUTHORIZED).await;
    problem(learner.get("/api/v1/units/NOPE").await, StatusCode::NOT_FOUND).await;
}
