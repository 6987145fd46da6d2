//! Finishing drafts as a learner would: a draft saved from the upload form or imported from
//! another e-portfolio is opened, mapped to criteria, given more files (or fewer), saved again
//! and submitted under the same rules as a new upload, and stays the learner's alone until then.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Cast, TestApp, pdf, wav};

const JOURNAL: &str = include_str!("../fixtures/leap2a/journal-only.xml");

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

async fn item_json(app: &TestApp, cast: &Cast, id: &str) -> Value {
    app.api_for(&cast.learner).await.json(&format!("/api/v1/evidence/{id}")).await
}

async fn audit_count(app: &TestApp, action: &str, id: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1 AND subject_id::text = $2")
        .bind(action)
        .bind(id)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The learner saves a draft from the upload form (a PDF, no criteria) and answers its id.
async fn save_draft(app: &TestApp, cast: &Cast) -> String {
    let learner = app.browser_for(&cast.learner).await;
    learner.page(&format!("/enrolments/{}/evidence/new", cast.enrolment)).await;
    let response = learner
        .upload(
            &format!("/enrolments/{}/evidence", cast.enrolment),
            &[
                ("title", "Team huddle notes"),
                ("method", "product"),
                ("occurred_on", "2026-03-02"),
                ("description", "Notes from Monday's huddle"),
                ("help_received", "None"),
                ("intent", "draft"),
            ],
            vec![("huddle.pdf", pdf())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    location(&response).trim_start_matches("/evidence/").split('?').next().unwrap().to_string()
}

#[tokio::test]
async fn a_learner_finishes_a_saved_draft_with_criteria_and_a_recording_and_the_assessor_sees_it_only_once_submitted() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let id = save_draft(&app, &cast).await;
    let learner = app.browser_for(&cast.learner).await;
    let assessor = app.browser_for(&cast.assessor).await;

    // The portfolio lists the draft in its own section, and its page says what to do next.
    let portfolio = learner.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(portfolio.contains("Drafts (1)"), "{portfolio}");
    assert!(portfolio.contains(&format!("href=\"/evidence/{id}/edit\"")));
    let page = learner.page(&format!("/evidence/{id}")).await;
    assert!(page.contains("Draft — not yet submitted") && page.contains("Edit and submit"), "{page}");
    assert!(!assessor.page(&format!("/enrolments/{}", cast.enrolment)).await.contains("Team huddle notes"));
    assert_eq!(assessor.get(&format!("/evidence/{id}")).await.status(), StatusCode::NOT_FOUND);

    // The form holds what the draft holds.
    let form = learner.page(&format!("/evidence/{id}/edit")).await;
    assert!(form.contains("value=\"Team huddle notes\""), "{form}");
    assert!(form.contains("Notes from Monday&#39;s huddle") || form.contains("Notes from Monday's huddle"));
    assert!(form.contains("<option value=\"product\" selected>"));
    assert!(form.contains("value=\"2026-03-02\""));
    assert!(form.contains("Remove huddle.pdf"));

    // Saved again with criteria, notes, places in the files and a recording added.
    let response = learner
        .upload(
            &format!("/evidence/{id}/edit"),
            &[
                ("title", "Team huddle: notes and the call I played"),
                ("method", "product"),
                ("occurred_on", "2026-03-02"),
                ("description", "Notes from Monday's huddle"),
                ("criteria", "1.1"),
                ("note-1.1", "I set the day's targets"),
                ("where-1.1", "page 1"),
                ("criteria", "1.2"),
                ("where-1.2", "00:01-00:03"),
                ("intent", "draft"),
            ],
            vec![("call.wav", wav())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/evidence/{id}?saved=1"));
    let item = item_json(&app, &cast, &id).await;
    assert_eq!(item["status"], "draft");
    assert_eq!(item["title"], "Team huddle: notes and the call I played");
    assert_eq!(item["criteria"], json!(["1.1", "1.2"]));
    let names: Vec<&str> = item["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["huddle.pdf", "call.wav"]);
    assert_eq!(item["mappings"][0]["note"], "I set the day's targets");
    assert_eq!(item["mappings"][0]["page"], 1);
    assert_eq!(item["mappings"][0]["file_id"], item["files"][0]["id"]);
    assert_eq!(item["mappings"][1]["file_id"], item["files"][1]["id"], "the clip points into the recording");
    assert_eq!(audit_count(&app, "evidence.draft_updated", &id).await, 1);
    assert_eq!(assessor.get(&format!("/evidence/{id}")).await.status(), StatusCode::NOT_FOUND, "still a draft");
    let form = learner.page(&format!("/evidence/{id}/edit")).await;
    assert!(
        form.contains("value=\"I set the day&#39;s targets\"") || form.contains("value=\"I set the day's targets\"")
    );
    assert!(form.contains("value=\"page 1\"") && form.contains("00:01\u{2013}00:03"), "{form}");

    // Submitting with a recording needs the third-party confirmation, as a new upload does.
    let submit = |confirm: bool| {
        let mut fields = vec![
            ("title", "Team huddle: notes and the call I played"),
            ("method", "product"),
            ("occurred_on", "2026-03-02"),
            ("criteria", "1.1"),
            ("where-1.1", "page 1"),
            ("criteria", "1.2"),
            ("where-1.2", "00:01-00:03"),
            ("declaration", "yes"),
            ("intent", "submit"),
        ];
        if confirm {
            fields.push(("third_party_confirmed", "yes"));
        }
        fields
    };
    let response = learner.upload(&format!("/evidence/{id}/edit"), &submit(false), vec![]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("href=\"#third_party_confirmed\""));
    assert_eq!(item_json(&app, &cast, &id).await["status"], "draft");

    learner.page(&format!("/evidence/{id}/edit")).await;
    let response = learner.upload(&format!("/evidence/{id}/edit"), &submit(true), vec![]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), format!("/evidence/{id}?submitted=1"));
    let item = item_json(&app, &cast, &id).await;
    assert_eq!(item["status"], "submitted");
    assert_eq!(item["declaration"]["sha256"].as_str().unwrap().len(), 64);
    assert!(item["third_party_confirmed_at"].is_string());
    assert_eq!(audit_count(&app, "evidence.submitted", &id).await, 1);
    assert!(assessor.page(&format!("/evidence/{id}")).await.contains("Record decisions"));
    assert!(!learner.page(&format!("/enrolments/{}", cast.enrolment)).await.contains("Drafts ("));

    // A submitted item is never edited.
    assert_eq!(learner.get(&format!("/evidence/{id}/edit")).await.status(), StatusCode::CONFLICT);
    let response = learner.upload(&format!("/evidence/{id}/edit"), &submit(true), vec![]).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let api = app.api_for(&cast.learner).await;
    let response = api.patch_json(&format!("/api/v1/evidence/{id}"), &json!({"title": "Changed after"})).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    assert_eq!(item_json(&app, &cast, &id).await["title"], "Team huddle: notes and the call I played");
}

#[tokio::test]
async fn a_refused_edit_keeps_what_the_learner_entered_links_each_error_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let id = save_draft(&app, &cast).await;
    let learner = app.browser_for(&cast.learner).await;
    learner.page(&format!("/evidence/{id}/edit")).await;
    let before = item_json(&app, &cast, &id).await;
    let file = before["files"][0]["id"].as_str().unwrap().to_string();

    let response = learner
        .upload(
            &format!("/evidence/{id}/edit"),
            &[
                ("title", "Huddle, rewritten"),
                ("method", "product"),
                ("occurred_on", "2026-03-02"),
                ("description", "What I typed just now"),
                ("criteria", "2.1"),
                ("note-2.1", "My note on 2.1"),
                ("where-2.1", "soon"),
                ("remove_file", &file),
                ("intent", "submit"),
            ],
            vec![],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("There is a problem"), "{page}");
    assert!(page.contains("href=\"#declaration\""), "the declaration is needed to submit: {page}");
    assert!(page.contains("href=\"#where-2.1\""), "the place in the file is refused: {page}");
    assert!(page.contains("value=\"Huddle, rewritten\"") && page.contains("What I typed just now"));
    assert!(page.contains("value=\"My note on 2.1\"") && page.contains("value=\"soon\""));
    assert!(
        page.contains(&format!("id=\"remove-{file}\" name=\"remove_file\" type=\"checkbox\" value=\"{file}\" checked"))
    );

    // Nothing was written: the draft, its file and its history are as they were.
    let after = item_json(&app, &cast, &id).await;
    assert_eq!(after["title"], "Team huddle notes");
    assert_eq!(after["files"], before["files"]);
    assert_eq!(after["criteria"], json!([]));
    assert_eq!(audit_count(&app, "evidence.draft_updated", &id).await, 0);

    // A date in the future is refused through the API too, field by field.
    let api = app.api_for(&cast.learner).await;
    let response = api.patch_json(&format!("/api/v1/evidence/{id}"), &json!({"occurred_on": "2999-01-01"})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = response.json().await.unwrap();
    assert!(problem.to_string().contains("occurred_on"), "{problem}");
    assert_eq!(item_json(&app, &cast, &id).await["occurred_on"], "2026-03-02");
}

#[tokio::test]
async fn an_imported_unmapped_draft_is_mapped_given_a_file_and_submitted_through_the_api() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let token = eportfolio::auth::tokens::create(&mut conn, cast.learner.id, "drafts").await.unwrap().token;
    drop(conn);
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/enrolments/{}/imports/leap2a", app.address, cast.enrolment))
        .bearer_auth(&token)
        .header("content-type", "application/xml")
        .body(JOURNAL)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let summary: Value = response.json().await.unwrap();
    let id = summary["imported"][0]["id"].as_str().unwrap().to_string();
    let api = app.api_for(&cast.learner).await;
    let path = format!("/api/v1/evidence/{id}");
    let draft = api.json(&path).await;
    assert_eq!((draft["status"].as_str(), draft["criteria"].clone()), (Some("draft"), json!([])));

    // Unmapped, it cannot be submitted.
    let response = api.post_json(&format!("{path}/submit"), &json!({"declaration": true})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Only the fields sent change.
    let response = api
        .patch_json(
            &path,
            &json!({"criteria": ["1.4", "1.1"], "mappings": {"1.4": {"note": "The figures I compared"}},
                    "method": "reflective_account"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let item: Value = response.json().await.unwrap();
    assert_eq!(item["criteria"], json!(["1.1", "1.4"]));
    assert_eq!(item["mappings"][1]["note"], "The figures I compared");
    assert_eq!(item["method"], "reflective_account");
    assert_eq!(item["title"], "What I learned from the sales figures");
    assert_eq!(item["occurred_on"], "2026-03-28");
    assert_eq!(item["status"], "draft");

    // A file is added, then (the wrong one) removed.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(pdf()).file_name("figures.pdf"))
        .part("file", reqwest::multipart::Part::bytes(wav()).file_name("wrong-call.wav"));
    let response = api.post_multipart(&format!("{path}/files"), form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let item: Value = response.json().await.unwrap();
    assert_eq!(item["files"].as_array().unwrap().len(), 2);
    assert_eq!(item["criteria"], json!(["1.1", "1.4"]), "adding files keeps the mappings");
    let wrong = item["files"][1]["id"].clone();
    let response = api.patch_json(&path, &json!({"remove_files": [wrong]})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let item: Value = response.json().await.unwrap();
    let names: Vec<&str> = item["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["figures.pdf"]);
    let response = api.patch_json(&path, &json!({"titel": "typo"})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "an unknown field is refused, not ignored");

    let assessor = app.api_for(&cast.assessor).await;
    assert_eq!(assessor.get(&path).await.status(), StatusCode::NOT_FOUND);
    let response = api.post_json(&format!("{path}/submit"), &json!({"declaration": true})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let submitted = assessor.json(&path).await;
    assert_eq!(submitted["status"], "submitted");
    assert_eq!(submitted["criteria"], json!(["1.1", "1.4"]));
    assert_eq!(api.patch_json(&path, &json!({"title": "Later"})).await.status(), StatusCode::CONFLICT);
    let form =
        reqwest::multipart::Form::new().part("file", reqwest::multipart::Part::bytes(pdf()).file_name("late.pdf"));
    assert_eq!(api.post_multipart(&format!("{path}/files"), form).await.status(), StatusCode::CONFLICT);
    assert_eq!(assessor.json(&path).await["files"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn nobody_but_the_learner_opens_or_changes_their_draft() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let id = save_draft(&app, &cast).await;
    let other = app.add_user(eportfolio::auth::Role::Learner, "Olly Other").await;
    app.enrol(&other, &cast.assessor, None).await;

    for user in [&other, &cast.assessor, &cast.iqa, &cast.verifier] {
        let browser = app.browser_for(user).await;
        let status = browser.get(&format!("/evidence/{id}/edit")).await.status();
        assert!(matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{status}");
        browser.page("/dashboard").await;
        let response = browser
            .upload(
                &format!("/evidence/{id}/edit"),
                &[("title", "Not mine"), ("method", "product"), ("occurred_on", "2026-03-02"), ("intent", "draft")],
                vec![],
            )
            .await;
        assert!(matches!(response.status(), StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{}", response.status());
        let api = app.api_for(user).await;
        let status = api.patch_json(&format!("/api/v1/evidence/{id}"), &json!({"title": "Not mine"})).await.status();
        assert!(matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{status}");
        let form = reqwest::multipart::Form::new()
            .part("file", reqwest::multipart::Part::bytes(pdf()).file_name("not-mine.pdf"));
        let status = api.post_multipart(&format!("/api/v1/evidence/{id}/files"), form).await.status();
        assert!(matches!(status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN), "{status}");
    }
    let item = item_json(&app, &cast, &id).await;
    assert_eq!(item["title"], "Team huddle notes");
    assert_eq!(item["files"].as_array().unwrap().len(), 1);
    assert_eq!(audit_count(&app, "evidence.draft_updated", &id).await, 0);
}
