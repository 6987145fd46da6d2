//! Witness testimony and assessors' own records, as the people at a centre use them: a learner
//! keeps a witness register and sends a witness a single-use link; the witness (no account)
//! writes and signs a statement; the assessor confirms it before assessing it. Assessors record
//! observations and professional discussions, with a recording, for their own learners only.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::common::{Browser, Cast, TestApp, api_evidence, vacs, wav};

fn today() -> String {
    chrono::Local::now().date_naive().to_string()
}

/// The witness link shown once on the page after asking for a statement.
fn link_in(html: &str) -> String {
    let start = html.find("/witness/").expect("the page shows the witness link");
    html[start..start + "/witness/".len() + 64].to_string()
}

/// The learner adds Sam Okafor to their register through the page; returns his id.
async fn add_sam(app: &TestApp, cast: &Cast, learner: &Browser) -> String {
    let page = format!("/enrolments/{}/witnesses", cast.enrolment);
    learner.page(&page).await;
    let response = learner
        .post_form(
            &page,
            &[
                ("name", "Sam Okafor"),
                ("job_role", "Sales team leader"),
                ("relationship", "Line manager"),
                ("email", "sam.okafor@example.org"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let register =
        app.api_for(&cast.learner).await.json(&format!("/api/v1/enrolments/{}/witnesses", cast.enrolment)).await;
    register["items"][0]["id"].as_str().unwrap().to_string()
}

/// A link for Sam about `criteria`, created through the API by `who`.
async fn ask(app: &TestApp, cast: &Cast, who: &Browser, witness: &str, criteria: &[&str]) -> String {
    let response = who
        .post_json(
            &format!("/api/v1/enrolments/{}/witness-requests", cast.enrolment),
            &json!({"witness_id": witness, "criteria": criteria, "message": "The upsell calls on Monday"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let issued: Value = response.json().await.unwrap();
    assert!(issued["url"].as_str().unwrap().starts_with(&app.address), "{issued}");
    issued["path"].as_str().unwrap().to_string()
}

fn statement(signature: &str) -> Value {
    json!({"statement": "Lee led the huddle and coached two advisers on closing.", "criteria": ["1.2"],
           "occurred_on": today(), "signature": signature, "declaration": true})
}

#[tokio::test]
async fn a_witness_writes_and_signs_a_statement_through_a_single_use_link_and_the_assessor_confirms_it() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let sam = add_sam(&app, &cast, &learner).await;
    let page = learner.page(&format!("/enrolments/{}/witnesses", cast.enrolment)).await;
    assert!(page.contains("Sam Okafor") && page.contains("Sales team leader") && page.contains("Line manager"));

    // Asking for a statement shows the link once; only its hash is stored.
    let response = learner
        .post_form(
            &format!("/enrolments/{}/witness-requests", cast.enrolment),
            &[("witness_id", &sam), ("criteria", "1.2"), ("criteria", "1.3"), ("message", "The huddle on Monday")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let html = response.text().await.unwrap();
    assert!(html.contains("It is shown only now"), "{html}");
    let link = link_in(&html);
    let token = link.trim_start_matches("/witness/");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM witness_requests WHERE token_sha256 = $1")
        .bind(token)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the token itself is never stored");
    assert!(!learner.page(&format!("/enrolments/{}/witnesses", cast.enrolment)).await.contains(token));

    // The witness, with no account, sees whose statement it is and the criteria's wording.
    let witness = Browser::new(&app);
    let form = witness.page(&link).await;
    assert!(form.contains("Lee Learner") && form.contains("Sam Okafor") && form.contains("CC20"));
    assert!(form.contains("The huddle on Monday"));
    assert!(form.contains("<strong>1.2</strong>") && form.contains("<strong>1.3</strong>"));
    assert!(!form.contains("<strong>1.4</strong>"), "only the criteria asked about");
    assert!(form.contains("I am not"));
    let response = witness
        .post_form(
            &link,
            &[
                ("criteria", "1.2"),
                ("occurred_on", &today()),
                ("statement", "Lee ran the morning huddle and set each adviser a sales target."),
                ("signature", "sam  okafor"),
                ("declaration", "yes"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert!(response.text().await.unwrap().contains("Thank you, Sam Okafor"));

    // The link worked once.
    assert_eq!(witness.get(&link).await.status(), StatusCode::GONE);
    let again = witness.post_form(&link, &[("statement", "Another"), ("criteria", "1.2")]).await;
    assert_eq!(again.status(), StatusCode::GONE);
    assert!(again.text().await.unwrap().contains("already been used"));
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);

    // Until the assessor confirms it, it cannot be assessed and meets nothing.
    let api = app.api_for(&cast.learner).await;
    let progress = api.json(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await;
    assert_eq!(progress["criteria"][1]["number"], "1.2");
    assert_eq!(progress["criteria"][1]["status"], "submitted");
    let evidence_id: String =
        sqlx::query_scalar("SELECT id::text FROM evidence_items").fetch_one(&app.pool).await.unwrap();
    let item_path = format!("/evidence/{evidence_id}");
    let assessor = app.browser_for(&cast.assessor).await;
    let page = assessor.page(&item_path).await;
    assert!(page.contains("Written and signed by Sam Okafor (Sales team leader)"), "{page}");
    assert!(page.contains("Awaiting assessor confirmation") && page.contains("Confirm the statement"));
    assert!(!page.contains("Record decisions"));
    let assessor_api = app.api_for(&cast.assessor).await;
    let early = assessor_api
        .post_json(
            &format!("/api/v1/evidence/{evidence_id}/decisions"),
            &json!({"criterion": "1.2", "outcome": "met", "feedback": "", "confirmed": vacs()}),
        )
        .await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    assert!(learner.page(&format!("/enrolments/{}", cast.enrolment)).await.contains("Awaiting assessor confirmation"));

    // The assessor confirms (with the tick), then assesses.
    let unticked = assessor.post_form(&format!("{item_path}/witness-confirmation"), &[]).await;
    assert_eq!(unticked.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(unticked.text().await.unwrap().contains("There is a problem"));
    let response = assessor.post_form(&format!("{item_path}/witness-confirmation"), &[("confirmed", "yes")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = assessor.page(&item_path).await;
    assert!(page.contains("Confirmed by Ada Assessor") && page.contains("Record decisions"));
    assert_eq!(
        assessor.post_form(&format!("{item_path}/witness-confirmation"), &[("confirmed", "yes")]).await.status(),
        StatusCode::CONFLICT,
        "confirmed once"
    );
    let decided = assessor_api
        .post_json(
            &format!("/api/v1/evidence/{evidence_id}/decisions"),
            &json!({"criterion": "1.2", "outcome": "met", "feedback": "Clear account from the line manager.", "confirmed": vacs()}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::CREATED);
    let progress = api.json(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await;
    assert_eq!(progress["criteria"][1]["status"], "met");

    // The record: the witness signed exactly this, the assessor confirmed it, all audited.
    let item = api.json(&format!("/api/v1/evidence/{evidence_id}")).await;
    assert_eq!(item["method"], "witness_testimony");
    assert_eq!(item["criteria"], json!(["1.2"]));
    assert_eq!(item["declaration"]["signer_role"], "witness");
    assert_eq!(item["declaration"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(item["witness"]["name"], "Sam Okafor");
    assert_eq!(item["witness"]["signed_name"], "sam  okafor");
    assert_eq!(item["witness_confirmation"]["confirmed_by"], cast.assessor.id.to_string());
    let actions: Vec<(String, String)> =
        sqlx::query_as("SELECT action, actor_role FROM audit_events WHERE action LIKE 'witness.%' ORDER BY seq")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    let expected = [
        ("witness.added", "learner"),
        ("witness.statement_requested", "learner"),
        ("witness.statement_signed", "witness"),
        ("witness.statement_confirmed", "assessor"),
    ];
    assert_eq!(actions, expected.map(|(a, r)| (a.to_string(), r.to_string())));
    let mut conn = app.pool.acquire().await.unwrap();
    assert!(eportfolio::audit::verify(&mut conn).await.unwrap().intact);
}

#[tokio::test]
async fn an_expired_or_used_witness_link_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let sam = add_sam(&app, &cast, &learner).await;
    let api = app.api_for(&cast.learner).await;
    // A browser for the pages, and a client without a session for the API.
    let witness = Browser::new(&app);
    let client = Browser::new(&app);

    let expired = ask(&app, &cast, &api, &sam, &["1.2"]).await;
    sqlx::query("UPDATE witness_requests SET expires_at = now() - interval '1 day'").execute(&app.pool).await.unwrap();
    let response = witness.get(&expired).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert!(response.text().await.unwrap().contains("This link expired"));
    let api_path = format!("/api/v1{expired}");
    let response = client.post_json(&api_path, &statement("Sam Okafor")).await;
    assert_eq!(response.status(), StatusCode::GONE);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM witness_requests WHERE used_at IS NOT NULL").await, 0);
    let requests = api.json(&format!("/api/v1/enrolments/{}/witness-requests", cast.enrolment)).await;
    assert_eq!(requests["items"][0]["state"], "expired");

    let unknown = format!("/witness/{}", "ab".repeat(32));
    assert_eq!(witness.get(&unknown).await.status(), StatusCode::NOT_FOUND);

    let link = ask(&app, &cast, &api, &sam, &["1.2"]).await;
    let api_path = format!("/api/v1{link}");
    let shown = client.json(&api_path).await;
    assert_eq!(shown["learner_name"], "Lee Learner");
    assert_eq!(shown["criteria"][0]["number"], "1.2");
    assert!(!shown["criteria"][0]["text"].as_str().unwrap().is_empty());
    let first = client.post_json(&api_path, &statement("Sam Okafor")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = client.post_json(&api_path, &statement("Sam Okafor")).await;
    assert_eq!(second.status(), StatusCode::GONE);
    assert_eq!(client.get(&api_path).await.status(), StatusCode::GONE);
    assert_eq!(witness.get(&link).await.status(), StatusCode::GONE);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
}

#[tokio::test]
async fn a_learner_cannot_sign_a_statement_as_their_own_witness() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let page = format!("/enrolments/{}/witnesses", cast.enrolment);
    learner.page(&page).await;

    // Not in the register under their own name or email.
    let response = learner
        .post_form(
            &page,
            &[("name", "lee learner"), ("job_role", "Adviser"), ("relationship", "Myself"), ("phone", "0113 496 0001")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("A witness must be someone other than the learner"));
    let response = learner
        .post_form(
            &page,
            &[
                ("name", "L. Learner"),
                ("job_role", "Adviser"),
                ("relationship", "Friend"),
                ("email", &cast.learner.email),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("SELECT count(*) FROM witnesses").await, 0);

    // Nor through the link while signed in, nor by signing with a name other than the witness's.
    let sam = add_sam(&app, &cast, &learner).await;
    let api = app.api_for(&cast.learner).await;
    let link = ask(&app, &cast, &api, &sam, &["1.2"]).await;
    let response = learner.get(&link).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("never by the learner"));
    let response = api.post_json(&format!("/api/v1{link}"), &statement("Sam Okafor")).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let anonymous = Browser::new(&app);
    let response = anonymous.post_json(&format!("/api/v1{link}"), &statement("Lee Learner")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "signature");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM witness_requests WHERE used_at IS NULL").await,
        1,
        "the link still works"
    );
}

#[tokio::test]
async fn an_empty_statement_without_criteria_or_signature_is_refused_with_every_problem() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let sam = add_sam(&app, &cast, &learner).await;
    let assessor_api = app.api_for(&cast.assessor).await;
    // The assessor can ask for a statement too.
    let link = ask(&app, &cast, &assessor_api, &sam, &["1.2", "2.1"]).await;

    let witness = Browser::new(&app);
    witness.page(&link).await;
    let response = witness.post_form(&link, &[("statement", "  "), ("occurred_on", &today())]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("There is a problem"));
    for message in [
        "Write what you saw the learner do",
        "Tick at least one criterion your statement shows",
        "Type your full name to sign the statement",
        "Confirm that this is a true account",
    ] {
        assert!(page.contains(message), "{message}: {page}");
    }

    let response = Browser::new(&app)
        .post_json(
            &format!("/api/v1{link}"),
            &json!({"statement": "", "criteria": ["4.6"], "occurred_on": "2999-01-01"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["statement", "criteria", "occurred_on", "signature", "declaration"], "{problem}");
    assert!(problem["errors"][1]["message"].as_str().unwrap().contains("4.6 is not one of the criteria"));
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM witness_requests WHERE used_at IS NULL").await, 1);

    // Asking needs a witness from the register and criteria.
    let response = assessor_api
        .post_json(&format!("/api/v1/enrolments/{}/witness-requests", cast.enrolment), &json!({"criteria": []}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "witness_id");
    assert_eq!(problem["errors"][1]["field"], "criteria");
    // An expert witness needs their competence; a witness needs a way to be contacted.
    let response = assessor_api
        .post_json(
            &format!("/api/v1/enrolments/{}/witnesses", cast.enrolment),
            &json!({"name": "Dr Pat Coach", "job_role": "Sales coach", "relationship": "Coach", "is_expert": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "competence"]);
    let iqa = app.api_for(&cast.iqa).await;
    let register = iqa.json(&format!("/api/v1/enrolments/{}/witnesses", cast.enrolment)).await;
    assert_eq!(register["items"].as_array().unwrap().len(), 1, "the IQA reads the register");
    let response = iqa
        .post_json(
            &format!("/api/v1/enrolments/{}/witnesses", cast.enrolment),
            &json!({"name": "Ivy", "job_role": "Adviser", "relationship": "Colleague", "phone": "01134960002"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_assessor_records_an_observation_with_a_recording_for_a_caseload_learner_only() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let assessor = app.browser_for(&cast.assessor).await;
    let portfolio = assessor.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(portfolio.contains("Record an observation") && portfolio.contains("Record a professional discussion"));
    let new = format!("/enrolments/{}/assessor-records/new?method=observation", cast.enrolment);
    assert!(assessor.page(&new).await.contains("Record an observation"));
    let upload = format!("/enrolments/{}/assessor-records", cast.enrolment);
    let mut fields = vec![
        ("method", "observation"),
        ("title", "Observation of the morning huddle"),
        ("occurred_on", "2026-03-16"),
        ("assessment_location", "Sales floor, Leeds contact centre"),
        ("description", "Lee briefed the team on the offer and set targets."),
        ("criteria", "1.1"),
        ("where-1.1", "00:01-00:03"),
        ("declaration", "yes"),
        ("third_party_confirmed", "yes"),
    ];

    // Invalid input: every problem at once, nothing stored.
    let response = assessor
        .upload(
            &upload,
            &[("method", "product"), ("title", "Huddle"), ("occurred_on", "2026-03-16")],
            vec![("call.wav", wav())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    for message in [
        "Choose whether this is an observation or a professional discussion",
        "Write what you observed or discussed",
        "Say where the assessment took place",
        "Confirm your declaration as the assessor",
        "everyone recorded agreed",
        "Select at least one criterion",
    ] {
        assert!(page.contains(message), "{message}: {page}");
    }
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);

    let response = assessor.upload(&upload, &fields, vec![("huddle.wav", wav())]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let item_path = response.headers()["location"].to_str().unwrap().to_string();
    let page = assessor.page(&item_path).await;
    assert!(page.contains("Ada Assessor (assessor)") && page.contains("Sales floor, Leeds contact centre"));
    assert!(page.contains("Assessor&#x27;s declaration") || page.contains("Assessor's declaration"), "{page}");

    // The learner sees it in their portfolio, signed by the assessor.
    let learner = app.browser_for(&cast.learner).await;
    assert!(
        learner.page(&format!("/enrolments/{}", cast.enrolment)).await.contains("Observation of the morning huddle")
    );
    let id = item_path.trim_start_matches("/evidence/");
    let item = app.api_for(&cast.learner).await.json(&format!("/api/v1/evidence/{id}")).await;
    assert_eq!(item["method"], "observation");
    assert_eq!(item["kind"], "assessor_record");
    assert_eq!(item["created_by"], cast.assessor.id.to_string());
    assert_eq!(item["declaration"]["signer_role"], "assessor");
    assert_eq!(item["assessment_location"], "Sales floor, Leeds contact centre");
    assert_eq!(item["files"][0]["name"], "huddle.wav");
    assert_eq!(item["mappings"][0]["start_seconds"], 1);

    // Judged "not yet", it stays the assessor's record: the learner cannot rewrite it as a new version.
    let judged = app
        .api_for(&cast.assessor)
        .await
        .post_json(
            &format!("/api/v1/evidence/{id}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Brief the targets more clearly next time."}),
        )
        .await;
    assert_eq!(judged.status(), StatusCode::CREATED);
    assert!(!learner.page(&item_path).await.contains("Resubmit with improvements"));
    let rewrite = json!({"title": "My version", "method": "observation", "occurred_on": "2026-03-16",
        "criteria": ["1.1"], "declaration": true, "description": "Rewritten", "previous_version": id});
    let response = app
        .api_for(&cast.learner)
        .await
        .post_multipart(&format!("/api/v1/enrolments/{}/evidence", cast.enrolment), api_evidence(rewrite, vec![]))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);

    // Nobody else records for this learner: not the learner, not another assessor.
    let other = app.add_user(eportfolio::auth::Role::Assessor, "Olu Other").await;
    let other = app.browser_for(&other).await;
    assert_eq!(other.get(&new).await.status(), StatusCode::NOT_FOUND);
    fields[1] = ("title", "Not mine to record");
    assert_eq!(other.upload(&upload, &fields, vec![]).await.status(), StatusCode::NOT_FOUND);
    learner.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert_eq!(learner.upload(&upload, &fields, vec![]).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
}

#[tokio::test]
async fn an_assessor_records_a_professional_discussion_through_the_api() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let api = app.api_for(&cast.assessor).await;
    let path = format!("/api/v1/enrolments/{}/assessor-records", cast.enrolment);
    let metadata = json!({"title": "Discussion of the sales plan", "method": "professional_discussion",
        "occurred_on": "2026-03-18", "criteria": ["2.1", "2.2"], "declaration": true,
        "description": "Lee explained how the plan sets targets.", "assessment_location": "Remote, video call"});
    let response = api.post_multipart(&path, api_evidence(metadata.clone(), vec![])).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let item: Value = response.json().await.unwrap();
    assert_eq!(item["method"], "professional_discussion");
    assert_eq!(item["criteria"], json!(["2.1", "2.2"]));
    assert_eq!(item["declaration"]["signer_role"], "assessor");
    assert!(item["declaration"]["text"].as_str().unwrap().contains("accurate record of the assessment"));

    let mut wrong = metadata.clone();
    wrong["method"] = json!("product");
    wrong["declaration"] = json!(false);
    let response = api.post_multipart(&path, api_evidence(wrong, vec![])).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["method", "declaration"]);
    let learner = app.api_for(&cast.learner).await;
    assert_eq!(learner.post_multipart(&path, api_evidence(metadata, vec![])).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
}
