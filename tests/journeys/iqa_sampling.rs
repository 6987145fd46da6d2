//! Internal quality assurance as a centre's IQA does it: set the sampling strategy, draw a
//! stratified sample anyone can re-derive from its seed, record samples (agree, or refer back
//! with actions), see the assessor respond and close the sample, check CAMERA coverage and
//! record standardisation meetings. Learners and assessors cannot reach IQA records; verifiers
//! read them and never write.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Browser, Cast, TestApp, TestUser, api_evidence, pdf};

fn today() -> String {
    chrono::Utc::now().date_naive().to_string()
}

/// The learner submits an item by `method` and the enrolment's assessor decides on criterion
/// 1.1; returns the item's id.
async fn assessed_item(
    app: &TestApp,
    learner: &TestUser,
    assessor: &TestUser,
    enrolment: uuid::Uuid,
    method: &str,
) -> String {
    let api = app.api_for(learner).await;
    let files = if method == "product" { vec![("work.pdf", pdf())] } else { vec![] };
    let created = api
        .post_multipart(
            &format!("/api/v1/enrolments/{enrolment}/evidence"),
            api_evidence(
                json!({"title": format!("{method} evidence"), "method": method, "occurred_on": today(),
                       "criteria": ["1.1"], "declaration": true, "description": "What I did on the sales floor"}),
                files,
            ),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text().await.unwrap());
    let id = created.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    decide(app, assessor, &id).await;
    id
}

async fn decide(app: &TestApp, assessor: &TestUser, evidence: &str) {
    let decided = app
        .api_for(assessor)
        .await
        .post_json(
            &format!("/api/v1/evidence/{evidence}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Say which procedure you followed."}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::CREATED, "{}", decided.text().await.unwrap());
}

async fn draw(iqa: &Browser, seed: &str, preview: bool) -> Value {
    let response = iqa.post_json("/api/v1/iqa/samples/draw", &json!({"seed": seed, "preview": preview})).await;
    assert!(response.status().is_success(), "draw: {}", response.status());
    response.json().await.unwrap()
}

fn drawn(draw: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        draw["drawn"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    ids.sort();
    ids
}

/// A second learner of the same assessor and IQA.
async fn another_learner(app: &TestApp, cast: &Cast, name: &str) -> (TestUser, uuid::Uuid) {
    let learner = app.add_user(eportfolio::auth::Role::Learner, name).await;
    let enrolment = app.enrol(&learner, &cast.assessor, Some(&cast.iqa)).await;
    (learner, enrolment)
}

#[tokio::test]
async fn the_same_seed_gives_the_same_sample_and_every_stratum_is_represented() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let (other, other_enrolment) = another_learner(&app, &cast, "Olu Other").await;
    let mut reflective = Vec::new();
    for _ in 0..12 {
        reflective.push(assessed_item(&app, &cast.learner, &cast.assessor, cast.enrolment, "reflective_account").await);
    }
    let product = assessed_item(&app, &other, &cast.assessor, other_enrolment, "product").await;
    // A second assessor with one item: their stratum must be represented too.
    let second = app.add_user(eportfolio::auth::Role::Assessor, "Sol Second").await;
    let third_learner = app.add_user(eportfolio::auth::Role::Learner, "Tam Third").await;
    let third_enrolment = app.enrol(&third_learner, &second, Some(&cast.iqa)).await;
    let lone = assessed_item(&app, &third_learner, &second, third_enrolment, "reflective_account").await;

    let iqa = app.api_for(&cast.iqa).await;
    // Ada is developing: half her decisions are sampled.
    let set = iqa
        .post_json("/api/v1/iqa/strategy/bands", &json!({"assessor_id": cast.assessor.id, "band": "developing"}))
        .await;
    assert_eq!(set.status(), StatusCode::NO_CONTENT);
    let strategy = iqa.json("/api/v1/iqa/strategy").await;
    let ada = strategy["items"].as_array().unwrap().iter().find(|a| a["name"] == "Ada Assessor").unwrap();
    assert_eq!(ada["band"], "developing");
    assert_eq!(ada["rate_percent"], 50);
    assert_eq!(ada["set_by"], "Ian Quality");

    let first = draw(&iqa, "north-2026", true).await;
    let again = draw(&iqa, "north-2026", true).await;
    assert_eq!(first["population_size"], 14);
    assert_eq!(drawn(&first), drawn(&again), "the same seed gives the same sample");
    let strata = first["strata"].as_array().unwrap();
    assert_eq!(strata.len(), 3, "one stratum per assessor × unit × method × location × stage: {strata:?}");
    let big = strata.iter().find(|s| s["size"] == 12).expect("the reflective-account stratum");
    assert_eq!(big["drawn"].as_array().unwrap().len(), 6, "50% of 12");
    assert_eq!(big["location"], "workplace");
    assert_eq!(big["stage"], "interim");
    let ids = drawn(&first);
    assert!(ids.contains(&product), "Ada's single product is drawn (at least one per stratum)");
    assert!(ids.contains(&lone), "Sol's only item is drawn (every assessor is represented)");
    assert_eq!(ids.iter().filter(|id| reflective.contains(id)).count(), 6);

    // Anyone can re-derive it: in each stratum, order by SHA-256 of "seed:id" and take the first k.
    for stratum in strata {
        let mut members: Vec<String> =
            stratum["members"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
        members.sort_by_key(|id| hex::encode(Sha256::digest(format!("north-2026:{id}").as_bytes())));
        let taken: Vec<String> = stratum["drawn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["evidence_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(taken, members[..taken.len()].to_vec(), "the stratum's draw re-derives from the seed");
    }

    // Another seed draws a different half of the twelve (checked over three seeds, so that a
    // chance coincidence of one pair cannot pass or fail the test).
    let mut differs = false;
    for seed in ["south-2026", "east-2026", "west-2026"] {
        differs |= drawn(&draw(&iqa, seed, true).await) != ids;
    }
    assert!(differs, "another seed gives another sample");

    // Recording the draw keeps the seed and population, and plans the same items.
    let recorded = draw(&iqa, "north-2026", false).await;
    assert_eq!(drawn(&recorded), ids);
    let draws = iqa.json("/api/v1/iqa/draws").await;
    assert_eq!(draws["items"][0]["seed"], "north-2026");
    assert_eq!(draws["items"][0]["population"].as_array().unwrap().len(), 14);
    let plan = iqa.json("/api/v1/iqa/plan").await;
    assert_eq!(plan["items"].as_array().unwrap().len(), 8);
    assert!(
        plan["items"].as_array().unwrap().iter().all(|r| r["status"] == "planned" && r["draw_seed"] == "north-2026")
    );
    assert_eq!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'iqa.sample_drawn'").await, 1);
    // Drawing again does not plan items already waiting for a sample.
    draw(&iqa, "north-2026", false).await;
    assert_eq!(iqa.json("/api/v1/iqa/plan").await["items"].as_array().unwrap().len(), 8);

    // The plan page lists them with their status and the seed.
    let page = app.browser_for(&cast.iqa).await.page("/iqa/plan").await;
    assert!(page.contains("north-2026") && page.contains("Planned") && page.contains("Olu Other"), "{page}");
}

#[tokio::test]
async fn an_iqa_never_draws_their_own_decisions() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    // Ian is also an assessor, and assessed Lee's first item before the enrolment moved to Ada.
    sqlx::query("INSERT INTO user_roles (user_id, centre_id, role) SELECT user_id, centre_id, 'assessor' FROM user_roles WHERE user_id = $1")
        .bind(cast.iqa.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let admin = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let admin_api = app.api_for(&admin).await;
    let assign =
        |assessor: &str, iqa: &str| json!({"assessor": assessor, "iqa": iqa, "reason": "Cover while Ada was away"});
    let moved = admin_api
        .post_json(&format!("/api/v1/enrolments/{}/assignment", cast.enrolment), &assign(&cast.iqa.email, ""))
        .await;
    assert!(moved.status().is_success(), "{}", moved.text().await.unwrap());
    let own = assessed_item(&app, &cast.learner, &cast.iqa, cast.enrolment, "reflective_account").await;
    let back = admin_api
        .post_json(
            &format!("/api/v1/enrolments/{}/assignment", cast.enrolment),
            &assign(&cast.assessor.email, &cast.iqa.email),
        )
        .await;
    assert!(back.status().is_success(), "{}", back.text().await.unwrap());
    let theirs = assessed_item(&app, &cast.learner, &cast.assessor, cast.enrolment, "reflective_account").await;

    let iqa = app.api_for(&cast.iqa).await;
    let sample = draw(&iqa, "own-check", true).await;
    assert_eq!(drawn(&sample), vec![theirs.clone()], "only Ada's decisions are in Ian's population");
    let by_hand = iqa.post_json("/api/v1/iqa/plan", &json!({"evidence_id": own, "planned_on": today()})).await;
    assert_eq!(by_hand.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = by_hand.json().await.unwrap();
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("never your own"), "{problem}");
    let coverage = iqa.json("/api/v1/iqa/coverage").await;
    assert_eq!(coverage["population"], 1);
}

/// Ian plans one of Lee's assessed items by hand; returns the sample's id.
async fn planned_sample(app: &TestApp, cast: &Cast, iqa: &Browser, method: &str) -> (String, String) {
    let evidence = assessed_item(app, &cast.learner, &cast.assessor, cast.enrolment, method).await;
    let response = iqa.post_json("/api/v1/iqa/plan", &json!({"evidence_id": evidence, "planned_on": today()})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    (response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string(), evidence)
}

#[tokio::test]
async fn a_sample_referred_back_is_answered_by_the_assessor_and_closed_by_the_iqa() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let iqa_api = app.api_for(&cast.iqa).await;
    let (referred, _) = planned_sample(&app, &cast, &iqa_api, "reflective_account").await;
    let (agreed, agreed_evidence) = planned_sample(&app, &cast, &iqa_api, "product").await;

    // Through the API: referring back needs actions.
    let record = format!("/api/v1/iqa/samples/{referred}/record");
    let missing =
        iqa_api.post_json(&record, &json!({"outcome": "refer_back", "feedback": "The feedback is thin."})).await;
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = missing.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "actions");
    let done = iqa_api
        .post_json(
            &record,
            &json!({"outcome": "refer_back", "feedback": "The feedback is thin.",
                    "actions": "Tell Lee which procedure step 1.1 still lacks."}),
        )
        .await;
    assert_eq!(done.status(), StatusCode::CREATED);
    let row: Value = done.json().await.unwrap();
    assert_eq!(row["status"], "referred_back");
    let again = iqa_api.post_json(&record, &json!({"outcome": "agree", "feedback": "Fine."})).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "a signed record is never rewritten");
    // The signature is the SHA-256 of exactly the record signed.
    let (text, hash): (String, String) =
        sqlx::query_as("SELECT signed_record, sha256 FROM iqa_samples WHERE plan_item_id = $1::uuid")
            .bind(&referred)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(hex::encode(Sha256::digest(text.as_bytes())), hash);
    assert!(text.contains("Tell Lee which procedure") && text.contains("\"criterion\":\"1.1\""), "{text}");
    assert_eq!(row["sha256"], hash);

    // The IQA cannot close it before the assessor responds.
    let early = iqa_api.post_json(&format!("/api/v1/iqa/samples/{referred}/close"), &json!({"note": "Done"})).await;
    assert_eq!(early.status(), StatusCode::CONFLICT);

    // Ada sees the referral on her dashboard and answers it through the page.
    let ada = app.browser_for(&cast.assessor).await;
    let dashboard = ada.page("/dashboard").await;
    assert!(
        dashboard.contains("Referred back by your IQA") && dashboard.contains(&format!("/iqa/samples/{referred}")),
        "{dashboard}"
    );
    let page = ada.page(&format!("/iqa/samples/{referred}")).await;
    assert!(page.contains("Tell Lee which procedure") && page.contains("Respond to the referral"), "{page}");
    let empty = ada.post_form(&format!("/iqa/samples/{referred}/response"), &[("response", " ")]).await;
    assert_eq!(empty.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(empty.text().await.unwrap().contains("href=\"#response\""));
    let answered = ada
        .post_form(
            &format!("/iqa/samples/{referred}/response"),
            &[("response", "I added the missing procedure step to my feedback.")],
        )
        .await;
    assert_eq!(answered.status(), StatusCode::SEE_OTHER);
    assert!(
        !ada.page("/dashboard").await.contains(&format!("/iqa/samples/{referred}")),
        "answered referrals leave the dashboard"
    );
    // Ada cannot record or close samples; Ian cannot answer for her.
    let by_ada = app
        .api_for(&cast.assessor)
        .await
        .post_json(&record, &json!({"outcome": "agree", "feedback": "Mine is fine"}))
        .await;
    assert_eq!(by_ada.status(), StatusCode::FORBIDDEN);
    let by_ian =
        iqa_api.post_json(&format!("/api/v1/iqa/samples/{referred}/response"), &json!({"response": "x"})).await;
    assert_eq!(by_ian.status(), StatusCode::FORBIDDEN);

    // Ian closes it through the page.
    let ian = app.browser_for(&cast.iqa).await;
    let page = ian.page(&format!("/iqa/samples/{referred}")).await;
    assert!(page.contains("I added the missing procedure step") && page.contains("Close the sample"), "{page}");
    let closed =
        ian.post_form(&format!("/iqa/samples/{referred}/close"), &[("note", "Feedback now names the step.")]).await;
    assert_eq!(closed.status(), StatusCode::SEE_OTHER);
    let sample = iqa_api.json(&format!("/api/v1/iqa/samples/{referred}")).await;
    assert_eq!(sample["status"], "closed");
    assert_eq!(sample["response"], "I added the missing procedure step to my feedback.");

    // The item's page shows the sample record to staff and the verifier, not to the learner.
    let item = format!("/evidence/{}", sample["evidence_id"].as_str().unwrap());
    for who in [&cast.assessor, &cast.verifier] {
        let page = app.browser_for(who).await.page(&item).await;
        assert!(page.contains("Internal quality assurance") && page.contains("Feedback now names the step."), "{page}");
        assert!(page.contains(&format!("/iqa/samples/{referred}")));
    }
    let learner_page = app.browser_for(&cast.learner).await.page(&item).await;
    assert!(!learner_page.contains("Feedback now names the step."));

    // Agreeing through the page: the form shows the evidence link and the decisions sampled.
    let page = ian.page(&format!("/iqa/samples/{agreed}")).await;
    assert!(page.contains(&format!("/evidence/{agreed_evidence}")) && page.contains("Say which procedure"), "{page}");
    let blank =
        ian.post_form(&format!("/iqa/samples/{agreed}/record"), &[("outcome", "refer_back"), ("feedback", "")]).await;
    assert_eq!(blank.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = blank.text().await.unwrap();
    assert!(html.contains("href=\"#feedback\"") && html.contains("href=\"#actions\""), "{html}");
    let agree = ian
        .post_form(
            &format!("/iqa/samples/{agreed}/record"),
            &[("outcome", "agree"), ("feedback", "Sound judgement."), ("actions", "")],
        )
        .await;
    assert_eq!(agree.status(), StatusCode::SEE_OTHER);
    assert!(ian.page(&format!("/iqa/samples/{agreed}")).await.contains("Sampled: agreed"));
    for action in ["iqa.sample_recorded", "iqa.sample_responded", "iqa.sample_closed"] {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE action = $1")
            .bind(action)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert!(n >= 1, "{action} is audited");
    }
}

#[tokio::test]
async fn the_coverage_matrix_counts_what_has_and_has_not_been_sampled() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let iqa = app.api_for(&cast.iqa).await;
    let (sampled, _) = planned_sample(&app, &cast, &iqa, "product").await;
    assessed_item(&app, &cast.learner, &cast.assessor, cast.enrolment, "reflective_account").await;
    let (other, other_enrolment) = another_learner(&app, &cast, "Olu Other").await;
    assessed_item(&app, &other, &cast.assessor, other_enrolment, "reflective_account").await;
    let recorded = iqa
        .post_json(&format!("/api/v1/iqa/samples/{sampled}/record"), &json!({"outcome": "agree", "feedback": "Sound."}))
        .await;
    assert_eq!(recorded.status(), StatusCode::CREATED);

    let coverage = iqa.json("/api/v1/iqa/coverage").await;
    assert_eq!(coverage["population"], 3);
    assert_eq!(coverage["sampled"], 1);
    let rows = iqa.json("/api/v1/iqa/coverage?limit=200").await["items"].clone();
    let dimension =
        |key: &str| Value::Array(rows.as_array().unwrap().iter().filter(|r| r["dimension"] == key).cloned().collect());
    let row = |key: &str, label: &str| {
        dimension(key).as_array().unwrap().iter().find(|r| r["label"] == label).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(row("candidates", "Lee Learner")["total"], 2);
    assert_eq!(row("candidates", "Lee Learner")["sampled"], 1);
    assert_eq!(row("candidates", "Olu Other")["sampled"], 0);
    assert_eq!(row("assessors", "Ada Assessor")["total"], 3);
    assert_eq!(row("methods", "product")["sampled"], 1);
    assert_eq!(row("methods", "reflective account")["sampled"], 0);
    assert_eq!(row("elements", "CC20 1.1")["total"], 3);
    assert_eq!(row("locations", "workplace")["total"], 3);
    assert_eq!(dimension("records").as_array().unwrap().len(), 3);
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    assert_eq!(row("time", &month)["sampled"], 1);

    let page = app.browser_for(&cast.iqa).await.page("/iqa/coverage").await;
    assert!(
        page.contains("Olu Other")
            && page.contains("Not sampled")
            && page.contains("Of 3 assessed evidence items, 1 has been sampled"),
        "{page}"
    );
}

#[tokio::test]
async fn learners_and_assessors_cannot_reach_iqa_records_and_verifiers_only_read_them() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let iqa = app.api_for(&cast.iqa).await;
    let (sample, evidence) = planned_sample(&app, &cast, &iqa, "reflective_account").await;

    let learner = app.browser_for(&cast.learner).await;
    for path in ["/iqa/plan", "/iqa/coverage", "/iqa/strategy", "/standardisation", "/api/v1/iqa/plan"] {
        assert_eq!(learner.get(path).await.status(), StatusCode::FORBIDDEN, "learner {path}");
    }
    assert_eq!(learner.get(&format!("/iqa/samples/{sample}")).await.status(), StatusCode::NOT_FOUND);
    let assessor = app.browser_for(&cast.assessor).await;
    for path in ["/iqa/plan", "/iqa/coverage", "/standardisation"] {
        assert_eq!(assessor.get(path).await.status(), StatusCode::FORBIDDEN, "assessor {path}");
    }
    let drawn = app.api_for(&cast.assessor).await.post_json("/api/v1/iqa/samples/draw", &json!({})).await;
    assert_eq!(drawn.status(), StatusCode::FORBIDDEN);

    // Ian records a standardisation meeting; the form needs attendees and agreed actions.
    let ian = app.browser_for(&cast.iqa).await;
    ian.page("/standardisation").await;
    let incomplete = ian.post_form("/standardisation", &[("held_on", &today()), ("title", "Feedback quality")]).await;
    assert_eq!(incomplete.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = incomplete.text().await.unwrap();
    assert!(html.contains("href=\"#attendees\"") && html.contains("href=\"#agreed_actions\""), "{html}");
    let assessor_id = cast.assessor.id.to_string();
    let iqa_id = cast.iqa.id.to_string();
    let recorded = ian
        .post_form(
            "/standardisation",
            &[
                ("held_on", &today()),
                ("title", "Feedback quality"),
                ("attendees", &assessor_id),
                ("attendees", &iqa_id),
                ("items", &evidence),
                ("agreed_actions", "Feedback names the criterion and the missing step."),
            ],
        )
        .await;
    assert_eq!(recorded.status(), StatusCode::SEE_OTHER);

    // Vera reads the plan, the sample, coverage and the meeting; every view is audited; she writes nothing.
    let vera = app.browser_for(&cast.verifier).await;
    let plan = vera.page("/iqa/plan").await;
    assert!(plan.contains("read-only") && plan.contains("reflective_account evidence"), "{plan}");
    assert!(!plan.contains("Draw the sample"));
    assert_eq!(vera.get(&format!("/iqa/samples/{sample}")).await.status(), StatusCode::OK);
    let meetings = vera.page("/standardisation").await;
    assert!(meetings.contains("Feedback names the criterion") && meetings.contains("Ada Assessor"), "{meetings}");
    assert_eq!(vera.get("/iqa/coverage").await.status(), StatusCode::OK);
    let vera_api = app.api_for(&cast.verifier).await;
    assert_eq!(vera_api.json("/api/v1/standardisation").await["items"].as_array().unwrap().len(), 1);
    for (path, body) in [
        ("/api/v1/iqa/samples/draw".to_string(), json!({"seed": "x"})),
        (format!("/api/v1/iqa/samples/{sample}/record"), json!({"outcome": "agree", "feedback": "Fine"})),
        ("/api/v1/standardisation".to_string(), json!({"held_on": today(), "title": "x", "agreed_actions": "x"})),
    ] {
        assert_eq!(vera_api.post_json(&path, &body).await.status(), StatusCode::FORBIDDEN, "verifier {path}");
    }
    assert!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'verifier.viewed_iqa_records'").await >= 3);
    assert!(app.count("SELECT COUNT(*) FROM audit_events WHERE action = 'verifier.viewed_iqa_sample'").await >= 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM iqa_samples").await, 0);
}
