//! Capturing evidence as a learner at work would: drafts, recordings with the third-party
//! confirmation, a note and a place in the file for each criterion, workplace references,
//! resubmission after "not yet", and finding evidence again with filters.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Cast, TestApp, VACS_FORM, pdf, wav};

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().split('?').next().unwrap().to_string()
}

async fn item_json(app: &TestApp, cast: &Cast, path: &str) -> Value {
    let id = path.trim_start_matches("/evidence/");
    app.api_for(&cast.learner).await.json(&format!("/api/v1/evidence/{id}")).await
}

#[tokio::test]
async fn a_draft_is_the_learners_alone_until_they_sign_and_submit_it() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let upload = format!("/enrolments/{}/evidence", cast.enrolment);
    let response = learner
        .upload(
            &upload,
            &[
                ("title", "Half-finished call notes"),
                ("method", "product"),
                ("occurred_on", "2026-03-02"),
                ("intent", "draft"),
            ],
            vec![("call.wav", wav())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "a draft needs no criteria or declaration");
    let item = location(&response);
    assert!(learner.page(&item).await.contains("only you can see it"));

    let assessor = app.browser_for(&cast.assessor).await;
    assert_eq!(assessor.get(&item).await.status(), StatusCode::NOT_FOUND);
    assert!(!assessor.page(&format!("/enrolments/{}", cast.enrolment)).await.contains("Half-finished"));
    assert!(assessor.page("/dashboard").await.contains("None"), "nothing is waiting for the assessor");

    let json = item_json(&app, &cast, &item).await;
    assert_eq!(json["status"], "draft");
    assert!(json["declaration"].is_null());

    // Submitting needs criteria, the declaration and, for a recording, the third-party confirmation.
    learner.page(&item).await;
    let response = learner.post_form(&format!("{item}/submit"), &[("declaration", "yes")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("needs at least one criterion") && page.contains("employer permits"), "{page}");

    let response = learner
        .upload(
            &upload,
            &[
                ("title", "Call notes"),
                ("method", "product"),
                ("occurred_on", "2026-03-02"),
                ("criteria", "1.2"),
                ("intent", "draft"),
            ],
            vec![("call.wav", wav())],
        )
        .await;
    let item = location(&response);
    learner.page(&item).await;
    let response =
        learner.post_form(&format!("{item}/submit"), &[("declaration", "yes"), ("third_party_confirmed", "yes")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let json = item_json(&app, &cast, &item).await;
    assert_eq!(json["status"], "submitted");
    assert_eq!(json["declaration"]["sha256"].as_str().unwrap().len(), 64);
    assert!(json["third_party_confirmed_at"].is_string());
    assert!(assessor.page(&item).await.contains("Record decisions"));
    assert_eq!(
        learner.post_form(&format!("{item}/submit"), &[("declaration", "yes")]).await.status(),
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn a_criterion_can_point_to_a_clip_of_a_recording_or_a_page_of_a_pdf() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let upload = format!("/enrolments/{}/evidence", cast.enrolment);
    let mut fields = vec![
        ("title", "Call and the dashboard I built from it"),
        ("method", "product"),
        ("occurred_on", "2026-03-02"),
        ("criteria", "1.2"),
        ("note-1.2", "I ask three open questions here"),
        ("where-1.2", "00:01-00:04"),
        ("criteria", "2.1"),
        ("where-2.1", "page 2"),
        ("declaration", "yes"),
        ("third_party_confirmed", "yes"),
    ];
    let response = learner.upload(&upload, &fields, vec![("call.wav", wav()), ("dashboard.pdf", pdf())]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let item = location(&response);

    let assessor = app.browser_for(&cast.assessor).await;
    let page = assessor.page(&item).await;
    assert!(page.contains("I ask three open questions here"));
    assert!(page.contains("#t=1,4\""), "the player opens at the clip: {page}");
    assert!(page.contains("Shown at <strong>00:01\u{2013}00:04</strong> of call.wav"));
    assert!(page.contains("#page=2\">Open dashboard.pdf at page 2"));
    let json = item_json(&app, &cast, &item).await;
    let clip = &json["mappings"][0];
    assert_eq!(
        (clip["criterion"].as_str(), clip["start_seconds"].as_i64(), clip["end_seconds"].as_i64()),
        (Some("1.2"), Some(1), Some(4))
    );
    assert_eq!(clip["file_id"], json["files"][0]["id"]);
    assert_eq!(json["mappings"][1]["page"], 2);
    assert_eq!(json["mappings"][1]["file_id"], json["files"][1]["id"]);

    // A place that does not fit the files is refused, naming the criterion.
    fields[5] = ("where-1.2", "06:30-04:12");
    let response = learner.upload(&upload, &fields, vec![("call.wav", wav())]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("For 1.2: The end of a time range must be after its start"), "{page}");
    assert!(page.contains("For 2.1, a page number needs a PDF among the files"));
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 1);
}

#[tokio::test]
async fn recordings_need_the_employers_permission_and_no_card_data_confirmed() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let response = learner
        .upload(
            &format!("/enrolments/{}/evidence", cast.enrolment),
            &[
                ("title", "Call"),
                ("method", "product"),
                ("occurred_on", "2026-03-02"),
                ("criteria", "1.5"),
                ("declaration", "yes"),
            ],
            vec![("call.wav", wav())],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("no card numbers or security codes"));
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert!(app.stored_files().is_empty());
}

#[tokio::test]
async fn a_document_kept_at_work_is_recorded_as_a_reference() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let upload = format!("/enrolments/{}/evidence", cast.enrolment);
    let mut fields = vec![
        ("title", "Signed-off campaign plan"),
        ("kind", "reference"),
        ("method", "product"),
        ("occurred_on", "2026-02-10"),
        ("occurred_until", "2026-02-01"),
        ("criteria", "3.2"),
        ("declaration", "yes"),
    ];
    let response = learner.upload(&upload, &fields, vec![]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("Say where the document is held") && page.contains("Say who holds the document"));
    assert!(page.contains("must not be before its first day"));

    fields[4] = ("occurred_until", "2026-02-14");
    fields.push(("held_at", "CRM, campaign folder Q1 2026"));
    fields.push(("held_by", "Sam Okafor, sales team leader"));
    let response = learner.upload(&upload, &fields, vec![]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = app.browser_for(&cast.verifier).await.page(&location(&response)).await;
    assert!(page.contains("CRM, campaign folder Q1 2026") && page.contains("Sam Okafor, sales team leader"));
    assert!(page.contains("2026-02-10 to 2026-02-14"));
}

#[tokio::test]
async fn resubmitting_after_not_yet_makes_a_new_version_and_keeps_the_old_one() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let upload = format!("/enrolments/{}/evidence", cast.enrolment);
    let fields = [
        ("title", "Regulations answers"),
        ("method", "questioning"),
        ("occurred_on", "2026-03-02"),
        ("criteria", "1.7"),
        ("description", "Data protection matters."),
        ("declaration", "yes"),
    ];
    let first = location(&learner.upload(&upload, &fields, vec![]).await);
    let first_id = first.trim_start_matches("/evidence/").to_string();

    // Nothing to resubmit before a "not yet".
    let early = [&fields[..], &[("previous_version", first_id.as_str())]].concat();
    assert_eq!(learner.upload(&upload, &early, vec![]).await.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let assessor = app.browser_for(&cast.assessor).await;
    assessor.page(&first).await;
    let response = assessor
        .post_form(
            &format!("{first}/decisions"),
            &[("outcome-1.7", "not_yet"), ("feedback-1.7", "Name the regulations.")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let page = learner.page(&first).await;
    assert!(page.contains("Resubmit with improvements"));
    let form = learner.page(&format!("{upload}/new?resubmit={first_id}")).await;
    assert!(form.contains("value=\"Regulations answers\"") && form.contains(&format!("value=\"{first_id}\"")));
    let second = [
        ("title", "Regulations answers"),
        ("method", "questioning"),
        ("occurred_on", "2026-03-09"),
        ("criteria", "1.7"),
        ("description", "Consumer Contracts Regulations 2013, UK GDPR, PECR."),
        ("declaration", "yes"),
        ("previous_version", first_id.as_str()),
    ];
    let response = learner.upload(&upload, &second, vec![]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let newer = location(&response);
    assert_eq!(item_json(&app, &cast, &newer).await["version"], 2);
    assert!(learner.page(&first).await.contains("This version has been replaced"));
    assert!(learner.page(&newer).await.contains("See the version this replaces, with its feedback"));

    // The old version keeps its decision and takes no new ones; the new one waits.
    let response = assessor
        .post_form(
            &format!("{first}/decisions"),
            &[[("outcome-1.7", "met"), ("feedback-1.7", "")].as_slice(), &VACS_FORM].concat(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(assessor.page("/dashboard").await.contains("1 item"));
    assert_eq!(learner.upload(&upload, &second, vec![]).await.status(), StatusCode::CONFLICT, "only once per version");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 2);
}

#[tokio::test]
async fn the_evidence_list_filters_by_criterion_method_status_and_date() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let upload = format!("/enrolments/{}/evidence", cast.enrolment);
    for (title, method, date, criterion) in [
        ("Alpha log", "product", "2026-01-05", "1.1"),
        ("Bravo account", "reflective_account", "2026-02-05", "3.1"),
        ("Charlie log", "product", "2026-03-05", "3.1"),
    ] {
        let fields = [
            ("title", title),
            ("method", method),
            ("occurred_on", date),
            ("criteria", criterion),
            ("description", "Written"),
            ("declaration", "yes"),
        ];
        assert_eq!(learner.upload(&upload, &fields, vec![]).await.status(), StatusCode::SEE_OTHER);
    }
    let portfolio = format!("/enrolments/{}", cast.enrolment);
    let titles = |page: &str| {
        ["Alpha log", "Bravo account", "Charlie log"].into_iter().filter(|t| page.contains(t)).collect::<Vec<_>>()
    };
    assert_eq!(
        titles(&learner.page(&format!("{portfolio}?criterion=3.1")).await),
        vec!["Bravo account", "Charlie log"]
    );
    assert_eq!(titles(&learner.page(&format!("{portfolio}?method=product")).await), vec!["Alpha log", "Charlie log"]);
    assert_eq!(
        titles(&learner.page(&format!("{portfolio}?from=2026-02-01&to=2026-02-28")).await),
        vec!["Bravo account"]
    );
    assert_eq!(titles(&learner.page(&format!("{portfolio}?state=assessed")).await), Vec::<&str>::new());
    assert_eq!(
        titles(&learner.page(&format!("{portfolio}?state=awaiting&method=product&criterion=1.1")).await),
        vec!["Alpha log"]
    );
}
