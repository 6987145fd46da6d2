//! Unit sign-off as a centre does it: the learner and assessor read the same readiness checklist
//! (every criterion met, evidence from at least two occasions, real work for outcomes 1 and 3,
//! authenticity declared, witness statements confirmed); the assessor signs off only when it
//! holds and is told exactly what is missing otherwise; the learner countersigns; the record is
//! then locked until the assessor reopens it with a reason, and signing again makes version 2.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Browser, Cast, TestApp, api_evidence, pdf};

const OUTCOME_1: [&str; 8] = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8"];
const OUTCOME_2: [&str; 3] = ["2.1", "2.2", "2.3"];
const OUTCOME_3: [&str; 5] = ["3.1", "3.2", "3.3", "3.4", "3.5"];
const OUTCOME_4: [&str; 6] = ["4.1", "4.2", "4.3", "4.4", "4.5", "4.6"];

/// The learner adds an item through the API: a product comes with a PDF, anything else is a
/// written account. Returns the item's id.
async fn add_evidence(
    learner: &Browser,
    cast: &Cast,
    title: &str,
    method: &str,
    on: &str,
    criteria: &[&str],
) -> String {
    let metadata = json!({"title": title, "method": method, "occurred_on": on, "criteria": criteria,
                          "declaration": true, "description": format!("{title}: what I did and why.")});
    let files = if method == "product" { vec![("evidence.pdf", pdf())] } else { vec![] };
    let response = learner
        .post_multipart(&format!("/api/v1/enrolments/{}/evidence", cast.enrolment), api_evidence(metadata, files))
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

/// The assessor judges every listed criterion of an item met.
async fn meet(assessor: &Browser, evidence: &str, criteria: &[&str]) {
    for criterion in criteria {
        let response = assessor
            .post_json(
                &format!("/api/v1/evidence/{evidence}/decisions"),
                &json!({"criterion": criterion, "outcome": "met", "feedback": "Clear and from real work.",
                        "confirmed": ["valid", "authentic", "current", "sufficient"]}),
            )
            .await;
        let status = response.status();
        assert_eq!(status, StatusCode::CREATED, "{criterion}: {}", response.text().await.unwrap());
    }
}

/// A portfolio in which every rule holds: call logs (outcome 1) on 2 March, a sales analysis and
/// team targets (outcomes 2 and 3) on 9 March, a reflective account (outcome 4) on 16 March.
async fn complete_portfolio(app: &TestApp, cast: &Cast) {
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let calls = add_evidence(&learner, cast, "Call log and CRM orders", "product", "2026-03-02", &OUTCOME_1).await;
    meet(&assessor, &calls, &OUTCOME_1).await;
    let both: Vec<&str> = OUTCOME_2.iter().chain(OUTCOME_3.iter()).copied().collect();
    let plan = add_evidence(&learner, cast, "Sales analysis and team targets", "product", "2026-03-09", &both).await;
    meet(&assessor, &plan, &both).await;
    let account =
        add_evidence(&learner, cast, "How I lead by example", "reflective_account", "2026-03-16", &OUTCOME_4).await;
    meet(&assessor, &account, &OUTCOME_4).await;
}

async fn readiness(app: &TestApp, cast: &Cast) -> Value {
    app.api_for(&cast.assessor).await.json(&format!("/api/v1/enrolments/{}/readiness", cast.enrolment)).await
}

fn missing(body: &Value) -> Vec<String> {
    body["missing"]
        .as_array()
        .expect("a list of what is missing")
        .iter()
        .map(|m| m.as_str().unwrap().to_string())
        .collect()
}

/// The API's sign-off attempt: its status and body.
async fn api_sign_off(app: &TestApp, cast: &Cast) -> (StatusCode, Value) {
    let response = app
        .api_for(&cast.assessor)
        .await
        .post_json(&format!("/api/v1/enrolments/{}/sign-off", cast.enrolment), &json!({"declaration": true}))
        .await;
    let status = response.status();
    if status == StatusCode::CONFLICT {
        assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    }
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_complete_portfolio_is_ready_and_the_unit_rules_come_from_the_unit_file() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let unit = app.api_for(&cast.learner).await.json("/api/v1/units/CC20").await;
    assert_eq!(unit["sufficiency"]["min_occasions"], 2);
    assert_eq!(unit["sufficiency"]["real_work_outcomes"], json!([1, 3]));
    assert_eq!(unit["sufficiency"]["real_work_methods"], json!(["observation", "product"]));

    let before = readiness(&app, &cast).await;
    assert_eq!(before["ready"], false);
    assert_eq!(missing(&before).len(), 22 + 1 + 2, "22 criteria, the occasions and two outcomes: {before}");

    complete_portfolio(&app, &cast).await;
    let after = readiness(&app, &cast).await;
    assert_eq!(after["ready"], true, "{after}");
    assert!(missing(&after).is_empty());
    let rules: Vec<&str> = after["checks"].as_array().unwrap().iter().map(|c| c["rule"].as_str().unwrap()).collect();
    assert_eq!(rules, ["criteria_met", "occasions", "real_work", "real_work", "authenticity", "witnesses_confirmed"]);

    // The learner reads the same checklist on their portfolio page.
    let learner = app.browser_for(&cast.learner).await;
    let page = learner.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(page.contains("Ready to sign off?"));
    assert!(page.contains("Evidence comes from three different occasions (2026-03-02, 2026-03-09, 2026-03-16)."));
    assert!(!page.contains("Not yet</span>"), "every check holds");
}

#[tokio::test]
async fn an_unmet_criterion_is_named_and_blocks_sign_off() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let calls = add_evidence(&learner, &cast, "Call log", "product", "2026-03-02", &OUTCOME_1).await;
    meet(&assessor, &calls, &OUTCOME_1).await;
    let rest: Vec<&str> = ["2.1", "2.2"].into_iter().chain(OUTCOME_3).chain(OUTCOME_4).collect();
    let plan = add_evidence(&learner, &cast, "Analysis and targets", "product", "2026-03-09", &rest).await;
    meet(&assessor, &plan, &rest).await;
    // 2.3 has evidence, but the assessor judged it not yet met.
    let summary = add_evidence(&learner, &cast, "Summary", "product", "2026-03-10", &["2.3"]).await;
    let response = assessor
        .post_json(
            &format!("/api/v1/evidence/{summary}/decisions"),
            &json!({"criterion": "2.3", "outcome": "not_yet", "feedback": "Add the recommendations for the plan."}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);

    let (status, problem) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(missing(&problem), ["2.3 is not yet met: the assessor judged its evidence not yet met"]);
    assert_eq!(app.count("SELECT count(*) FROM sign_offs").await, 0);
}

#[tokio::test]
async fn evidence_from_one_occasion_only_is_not_enough() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let all: Vec<&str> = OUTCOME_1.into_iter().chain(OUTCOME_2).chain(OUTCOME_3).chain(OUTCOME_4).collect();
    let day = add_evidence(&learner, &cast, "Everything from one day", "product", "2026-03-02", &all).await;
    meet(&assessor, &day, &all).await;

    let (status, problem) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        missing(&problem),
        ["Evidence comes from only one occasion (2026-03-02); the unit asks for at least two"]
    );

    // A second item on another day, even for one criterion, is a second occasion.
    let again = add_evidence(&learner, &cast, "Monitoring log", "product", "2026-03-20", &["3.3"]).await;
    meet(&assessor, &again, &["3.3"]).await;
    assert_eq!(readiness(&app, &cast).await["ready"], true);
}

#[tokio::test]
async fn outcome_1_needs_the_assessors_observation_or_a_product_of_real_work() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    // Outcome 1 only from the learner's own account of their calls.
    let account = add_evidence(&learner, &cast, "My calls", "reflective_account", "2026-03-02", &OUTCOME_1).await;
    meet(&assessor, &account, &OUTCOME_1).await;
    let rest: Vec<&str> = OUTCOME_2.into_iter().chain(OUTCOME_3).chain(OUTCOME_4).collect();
    let plan = add_evidence(&learner, &cast, "Analysis and targets", "product", "2026-03-09", &rest).await;
    meet(&assessor, &plan, &rest).await;

    let (status, problem) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        missing(&problem),
        ["Learning outcome 1 needs met evidence from the assessor's direct observation or a product of real work"]
    );

    // The assessor observes a call and records it: outcome 1 now rests on observation.
    let metadata = json!({"title": "Observed sales call", "method": "observation", "occurred_on": "2026-03-12",
        "criteria": ["1.5"], "declaration": true, "description": "Lee closed the sale after two objections.",
        "assessment_location": "Sales floor"});
    let response = assessor
        .post_multipart(
            &format!("/api/v1/enrolments/{}/assessor-records", cast.enrolment),
            api_evidence(metadata, vec![]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let observed: Value = response.json().await.unwrap();
    meet(&assessor, observed["id"].as_str().unwrap(), &["1.5"]).await;
    let ready = readiness(&app, &cast).await;
    assert_eq!(ready["ready"], true, "{ready}");
    let outcome_1 = ready["checks"].as_array().unwrap().iter().find(|c| c["outcome"] == 1).unwrap();
    assert_eq!(outcome_1["detail"], "Met by: Observed sales call.");
}

#[tokio::test]
async fn outcome_3_is_not_met_by_witness_testimony_alone_and_an_unconfirmed_statement_blocks_sign_off() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let first: Vec<&str> = OUTCOME_1.into_iter().chain(OUTCOME_2).collect();
    let calls = add_evidence(&learner, &cast, "Calls and analysis", "product", "2026-03-02", &first).await;
    meet(&assessor, &calls, &first).await;
    let account = add_evidence(&learner, &cast, "Knowledge", "reflective_account", "2026-03-16", &OUTCOME_4).await;
    meet(&assessor, &account, &OUTCOME_4).await;

    // Outcome 3 from the line manager's witness statement, through a link.
    let witness: Value = learner
        .post_json(
            &format!("/api/v1/enrolments/{}/witnesses", cast.enrolment),
            &json!({"name": "Wendy Witness", "job_role": "Sales manager", "relationship": "Line manager",
                    "email": "wendy@example.org"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let issued: Value = learner
        .post_json(
            &format!("/api/v1/enrolments/{}/witness-requests", cast.enrolment),
            &json!({"witness_id": witness["id"], "criteria": OUTCOME_3, "message": "The team targets in March"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let today = chrono::Local::now().date_naive().to_string();
    let response = Browser::new(&app)
        .post_json(
            &format!("/api/v1{}", issued["path"].as_str().unwrap()),
            &json!({"statement": "Lee agreed targets with each adviser and coached them on live calls.",
                    "criteria": OUTCOME_3, "occurred_on": today, "signature": "Wendy Witness", "declaration": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let statement: Value = response.json().await.unwrap();
    let statement_id = statement["evidence_id"].as_str().unwrap();

    let (status, problem) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let expected_unconfirmed = format!(
        "The witness statement from Wendy Witness ({today}) is not yet confirmed with the witness by the assessor"
    );
    let mut expected: Vec<String> =
        OUTCOME_3.iter().map(|c| format!("{c} is not yet met: its evidence is awaiting assessment")).collect();
    expected.push(
        "Learning outcome 3 needs met evidence from the assessor's direct observation or a product of real work".into(),
    );
    expected.push(expected_unconfirmed);
    assert_eq!(missing(&problem), expected);

    // Confirmed and judged met, the testimony meets the criteria but is not real work itself.
    let response = assessor
        .post_json(&format!("/api/v1/evidence/{statement_id}/witness-confirmation"), &json!({"confirmed": true}))
        .await;
    assert!(response.status().is_success());
    meet(&assessor, statement_id, &OUTCOME_3).await;
    assert_eq!(
        missing(&readiness(&app, &cast).await),
        ["Learning outcome 3 needs met evidence from the assessor's direct observation or a product of real work"]
    );
    let targets = add_evidence(&learner, &cast, "Team target records", "product", "2026-03-09", &["3.2"]).await;
    meet(&assessor, &targets, &["3.2"]).await;
    assert_eq!(readiness(&app, &cast).await["ready"], true);
}

#[tokio::test]
async fn a_refused_sign_off_lists_exactly_what_is_missing_on_the_page_and_in_the_api() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor_api = app.api_for(&cast.assessor).await;
    let most: Vec<&str> = OUTCOME_1.into_iter().chain(["2.1", "2.2"]).chain(OUTCOME_3).chain(OUTCOME_4).collect();
    let day = add_evidence(&learner, &cast, "One day's work", "product", "2026-03-02", &most).await;
    meet(&assessor_api, &day, &most).await;
    let expected = [
        "2.3 is not yet met: no evidence has been submitted for it",
        "Evidence comes from only one occasion (2026-03-02); the unit asks for at least two",
    ];

    let assessor = app.browser_for(&cast.assessor).await;
    let path = format!("/enrolments/{}/sign-off", cast.enrolment);
    let page = assessor.page(&path).await;
    assert!(page.contains("Sign off this unit") && page.contains("valid, authentic, current and sufficient"));
    let response = assessor.post_form(&path, &[]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    let summary = html.split("There is a problem").nth(1).expect("an error summary").split("</ul>").next().unwrap();
    assert!(summary.contains(&format!("<a href=\"#check-criteria_met\">{}</a>", expected[0])), "{summary}");
    assert!(summary.contains(&format!("<a href=\"#check-occasions\">{}</a>", expected[1])), "{summary}");
    assert!(summary.contains("<a href=\"#declaration\">"), "the unticked declaration is listed too");
    assert_eq!(summary.matches("<li>").count(), 3, "{summary}");
    assert!(html.contains("id=\"check-criteria_met\"") && html.contains("id=\"check-occasions\""));

    let (status, problem) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(missing(&problem), expected);
    assert!(problem["detail"].as_str().unwrap().contains("2 points"), "{problem}");
    assert_eq!(app.count("SELECT count(*) FROM sign_offs").await, 0);
}

#[tokio::test]
async fn sign_off_countersign_lock_reopen_with_a_reason_and_sign_off_again_as_version_2() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    complete_portfolio(&app, &cast).await;
    let path = format!("/enrolments/{}/sign-off", cast.enrolment);

    // The assessor signs off through the page; the declaration must be ticked.
    let assessor = app.browser_for(&cast.assessor).await;
    let caseload = assessor.page("/dashboard").await;
    assert!(
        caseload.contains("1 sign-off waiting") && caseload.contains("All criteria met: sign-off checklist"),
        "{caseload}"
    );
    let portfolio = assessor.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(portfolio.contains(">Sign off this unit</a>"));
    assessor.page(&path).await;
    let response = assessor.post_form(&path, &[]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("<a href=\"#declaration\">Confirm the declaration"));
    let response = assessor.post_form(&path, &[("declaration", "yes")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = assessor.page(&format!("{path}?done=signed")).await;
    assert!(page.contains("Signed off by Ada Assessor on"), "{page}");
    assert!(
        page.contains("awaiting the learner&#39;s countersignature")
            || page.contains("awaiting the learner's countersignature")
    );

    // The hash covers exactly the record signed: every current decision is in it.
    let body = app.api_for(&cast.learner).await.json(&format!("/api/v1/enrolments/{}/readiness", cast.enrolment)).await;
    assert_eq!(body["locked"], true);
    let signed = &body["sign_off"];
    let record = signed["signed_record"].as_str().unwrap();
    assert_eq!(hex::encode(Sha256::digest(record.as_bytes())), signed["sha256"].as_str().unwrap());
    let parsed: Value = serde_json::from_str(record).unwrap();
    assert_eq!(parsed["decisions"].as_array().unwrap().len(), 22);
    assert_eq!(parsed["evidence"].as_array().unwrap().len(), 3);
    assert_eq!(parsed["unit"]["code"], "CC20");
    let decision_ids: Vec<String> =
        sqlx::query_scalar("SELECT id::text FROM decisions").fetch_all(&app.pool).await.unwrap();
    for id in &decision_ids {
        assert!(record.contains(id.as_str()), "decision {id} is in the signed record");
    }

    // The record is locked from the assessor's signature on: nothing can be added or judged.
    let learner_api = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Late extra", "method": "product", "occurred_on": "2026-03-20", "criteria": ["1.1"],
                          "declaration": true});
    let response = learner_api
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata.clone(), vec![("x.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("signed off by Ada Assessor"), "{problem}");
    let some_item: String =
        sqlx::query_scalar("SELECT id::text FROM evidence_items LIMIT 1").fetch_one(&app.pool).await.unwrap();
    let response = app
        .api_for(&cast.assessor)
        .await
        .post_json(
            &format!("/api/v1/evidence/{some_item}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Changed my mind."}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 3);

    let caseload = assessor.page("/dashboard").await;
    assert!(
        caseload.contains("waiting for the learner&#39;s countersignature")
            || caseload.contains("waiting for the learner's countersignature")
    );
    assert!(caseload.contains("1 sign-off waiting"));

    // The learner countersigns through the page.
    let learner = app.browser_for(&cast.learner).await;
    let portfolio = learner.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(portfolio.contains(">Countersign the sign-off</a>"));
    let page = learner.page(&path).await;
    assert!(page.contains("I agree with my assessor"));
    assert_eq!(
        learner.post_form(&format!("/enrolments/{}/countersign", cast.enrolment), &[]).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let response =
        learner.post_form(&format!("/enrolments/{}/countersign", cast.enrolment), &[("declaration", "yes")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = learner.page(&path).await;
    assert!(page.contains("countersigned by Lee Learner on"), "{page}");
    assert!(!page.contains("/countersign\" novalidate"), "no second countersign form");
    let caseload = assessor.page("/dashboard").await;
    assert!(
        caseload.contains("Signed off and countersigned") && caseload.contains("0 sign-offs waiting"),
        "{caseload}"
    );

    // Reopening needs a reason; then the learner can add evidence again.
    assessor.page(&path).await;
    let response = assessor.post_form(&format!("/enrolments/{}/reopen", cast.enrolment), &[("reason", "  ")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("<a href=\"#reason\">Give the reason"));
    let reason = "The call log names a customer: replacing it with a redacted copy";
    let response = assessor.post_form(&format!("/enrolments/{}/reopen", cast.enrolment), &[("reason", reason)]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = learner_api
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("x.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let extra: Value = response.json().await.unwrap();
    meet(&app.api_for(&cast.assessor).await, extra["id"].as_str().unwrap(), &["1.1"]).await;

    // Signing off again makes version 2; version 1 keeps its signatures and the reason.
    let (status, body) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["sign_off"]["version"], 2);
    let history = body["history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["version"], 1);
    assert_eq!(history[1]["countersignature"]["learner_name"], "Lee Learner");
    assert_eq!(history[1]["reopening"]["reason"], reason);
    assert!(history[0]["countersignature"].is_null() && history[0]["reopening"].is_null());
    assert_ne!(history[0]["sha256"], history[1]["sha256"]);
    let page = assessor.page(&path).await;
    assert!(page.contains(reason) && page.contains("Sign-off history"));

    // The signatures are append-only, and every step is in the audit trail.
    assert!(sqlx::query("UPDATE sign_offs SET declaration_text = 'x'").execute(&app.pool).await.is_err());
    assert!(sqlx::query("DELETE FROM sign_off_countersignatures").execute(&app.pool).await.is_err());
    let actions: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_events WHERE action LIKE 'unit.%' ORDER BY seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(actions, ["unit.signed_off", "unit.countersigned", "unit.reopened", "unit.signed_off"]);
}

#[tokio::test]
async fn a_learner_cannot_sign_off_and_an_assessor_cannot_countersign() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    complete_portfolio(&app, &cast).await;
    let sign_off = format!("/api/v1/enrolments/{}/sign-off", cast.enrolment);
    let countersign = format!("/api/v1/enrolments/{}/countersign", cast.enrolment);
    let body = json!({"declaration": true});
    for who in [&cast.learner, &cast.iqa, &cast.verifier] {
        let response = app.api_for(who).await.post_json(&sign_off, &body).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{}", who.email);
    }
    let learner_page = app.browser_for(&cast.learner).await;
    learner_page.page(&format!("/enrolments/{}/sign-off", cast.enrolment)).await;
    let response =
        learner_page.post_form(&format!("/enrolments/{}/sign-off", cast.enrolment), &[("declaration", "yes")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM sign_offs").await, 0);

    let (status, _) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CREATED);
    let response = app.api_for(&cast.assessor).await.post_json(&countersign, &body).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["detail"], "Only the learner can countersign the sign-off");
    let response = app.api_for(&cast.learner).await.post_json(&countersign, &body).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM sign_off_countersignatures").await, 1);
}

#[tokio::test]
async fn a_double_submitted_sign_off_makes_one_sign_off() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    complete_portfolio(&app, &cast).await;
    let assessor = app.api_for(&cast.assessor).await;
    let path = format!("/api/v1/enrolments/{}/sign-off", cast.enrolment);
    let body = json!({"declaration": true});
    let (first, second) = tokio::join!(assessor.post_json(&path, &body), assessor.post_json(&path, &body));
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED]);
    assert_eq!(app.count("SELECT count(*) FROM sign_offs").await, 1);

    // The form sent twice: the second lands on the same sign-off.
    let page = app.browser_for(&cast.assessor).await;
    page.page(&format!("/enrolments/{}/sign-off", cast.enrolment)).await;
    let response = page.post_form(&format!("/enrolments/{}/sign-off", cast.enrolment), &[("declaration", "yes")]).await;
    assert_eq!(response.headers()["location"], format!("/enrolments/{}/sign-off?done=already", cast.enrolment));
    assert_eq!(app.count("SELECT count(*) FROM sign_offs").await, 1);
    let countersign = format!("/api/v1/enrolments/{}/countersign", cast.enrolment);
    let learner = app.api_for(&cast.learner).await;
    let (first, second) = tokio::join!(learner.post_json(&countersign, &body), learner.post_json(&countersign, &body));
    let mut statuses = [first.status(), second.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CREATED]);
    assert_eq!(app.count("SELECT count(*) FROM sign_off_countersignatures").await, 1);
}

#[tokio::test]
async fn a_signed_off_record_refuses_a_draft_being_submitted_and_a_witness_statement_arriving() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    complete_portfolio(&app, &cast).await;
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Half-written account", "method": "reflective_account", "occurred_on": "2026-03-20",
                          "criteria": ["4.1"], "draft": true, "description": "To finish"});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata.clone(), vec![]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let draft: Value = response.json().await.unwrap();
    assert_eq!(draft["status"], "draft");
    let witness: Value = learner
        .post_json(
            &format!("/api/v1/enrolments/{}/witnesses", cast.enrolment),
            &json!({"name": "Wendy Witness", "job_role": "Sales manager", "relationship": "Line manager",
                    "email": "wendy@example.org"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let issued: Value = learner
        .post_json(
            &format!("/api/v1/enrolments/{}/witness-requests", cast.enrolment),
            &json!({"witness_id": witness["id"], "criteria": ["3.5"], "message": "Coaching in March"}),
        )
        .await
        .json()
        .await
        .unwrap();

    let (status, _) = api_sign_off(&app, &cast).await;
    assert_eq!(status, StatusCode::CREATED);

    let response = learner
        .post_json(&format!("/api/v1/evidence/{}/submit", draft["id"].as_str().unwrap()), &json!({"declaration": true}))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let response = Browser::new(&app)
        .post_json(
            &format!("/api/v1{}", issued["path"].as_str().unwrap()),
            &json!({"statement": "Lee coached two advisers on live calls.", "criteria": ["3.5"],
                    "occurred_on": chrono::Local::now().date_naive().to_string(), "signature": "Wendy Witness",
                    "declaration": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let problem: Value = response.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("record is locked"), "{problem}");
    let response = learner
        .post_multipart(&format!("/api/v1/enrolments/{}/evidence", cast.enrolment), api_evidence(metadata, vec![]))
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items WHERE status = 'submitted'").await, 3);
    assert_eq!(app.count("SELECT count(*) FROM witness_requests WHERE used_at IS NULL").await, 1);
}
