//! The walking-skeleton journey through the pages: learner uploads, assessor judges, learner
//! sees feedback, verifier reads the portfolio and its history.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, LOCATION, X_CONTENT_TYPE_OPTIONS};

use crate::common::{TestApp, VACS_FORM, wav};

fn location(response: &reqwest::Response) -> String {
    response.headers().get(LOCATION).expect("a redirect").to_str().unwrap().to_string()
}

#[tokio::test]
async fn learner_uploads_assessor_judges_learner_sees_feedback_and_verifier_reads_history() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let portfolio = format!("/enrolments/{}", cast.enrolment);

    // The learner sees CC20's criteria grouped by learning outcome, all not started.
    let learner = app.browser_for(&cast.learner).await;
    let dashboard = learner.page("/dashboard").await;
    assert!(dashboard.contains("CC20: Lead direct sales activities in a contact centre team"), "{dashboard}");
    let page = learner.page(&portfolio).await;
    for outcome in 1..=4 {
        assert!(page.contains(&format!("Learning outcome {outcome}:")), "outcome {outcome} missing");
    }
    assert_eq!(page.matches("tag-not_started").count(), 22);
    assert!(page.contains("Establish customer wishes and needs"));

    // They upload a call recording mapped to 1.2 and 1.3.
    let form = learner.page(&format!("{portfolio}/evidence/new")).await;
    assert!(form.contains("name=\"declaration\""));
    let recording = wav();
    let response = learner
        .post_multipart(
            &format!("{portfolio}/evidence"),
            learner.upload_form("Recorded sales call", &["1.2", "1.3"], true, Some(("call 1.wav", recording.clone()))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let item_url = location(&response);
    assert!(item_url.starts_with("/evidence/"), "{item_url}");
    let item_page = learner.page(&item_url).await;
    assert!(item_page.contains("Evidence submitted"));
    let page = learner.page(&portfolio).await;
    assert_eq!(
        page.matches("tag-submitted\">Awaiting assessment").count(),
        3,
        "two criteria and the item await assessment"
    );

    // The assessor sees it waiting and opens it; the recording plays in the page.
    let assessor = app.browser_for(&cast.assessor).await;
    let dashboard = assessor.page("/dashboard").await;
    assert!(dashboard.contains("Lee Learner") && dashboard.contains("1 item"), "{dashboard}");
    let item_path = item_url.split('?').next().unwrap().to_string();
    let review = assessor.page(&item_path).await;
    assert!(review.contains("<audio controls"), "{review}");
    let file_path =
        review.split("src=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("audio source").to_string();
    let download = assessor.get(&file_path).await;
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()[CONTENT_TYPE], "audio/wav");
    assert_eq!(download.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert!(download.headers()[CONTENT_DISPOSITION].to_str().unwrap().starts_with("inline; filename=\"call 1.wav\""));
    assert_eq!(download.bytes().await.unwrap().to_vec(), recording);
    let partial = assessor.get_with(&file_path, &[("Range", "bytes=0-99")]).await;
    assert_eq!(partial.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(partial.bytes().await.unwrap().to_vec(), recording[..100].to_vec());

    // One submit records a decision per criterion.
    let response = assessor
        .post_form(
            &format!("{item_path}/decisions"),
            &[
                ("outcome-1.2", "met"),
                ("feedback-1.2", "You asked open questions and summarised the needs."),
                ("outcome-1.3", "not_yet"),
                ("feedback-1.3", "Link each option you offer to a need the customer stated."),
                VACS_FORM[0],
                VACS_FORM[1],
                VACS_FORM[2],
                VACS_FORM[3],
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The learner sees the feedback and the new statuses.
    let item_page = learner.page(&item_path).await;
    assert!(item_page.contains("Link each option you offer to a need the customer stated."));
    assert!(item_page.contains("tag-not_yet\">Not yet met"));
    let page = learner.page(&portfolio).await;
    assert_eq!(page.matches("tag-met\">Met").count(), 1);
    assert_eq!(page.matches("tag-not_yet\">Not yet met").count(), 1);

    // The verifier reads the portfolio and its history; their visits are recorded.
    let verifier = app.browser_for(&cast.verifier).await;
    assert!(verifier.page("/dashboard").await.contains("Lee Learner"));
    let page = verifier.page(&portfolio).await;
    assert!(page.contains("Read-only view"));
    assert!(!page.contains("Add evidence"));
    let review = verifier.page(&item_path).await;
    assert!(!review.contains("Record decisions"), "a verifier gets no decision form");
    let history = verifier.page(&format!("{portfolio}/history")).await;
    assert!(history.contains("Submitted evidence"));
    assert!(history.contains("Judged criterion 1.3 not yet met"));
    let views = app.count("SELECT count(*) FROM audit_events WHERE action LIKE 'verifier.%'").await;
    assert_eq!(views, 3, "portfolio, evidence and history views are audited");
    let mut conn = app.pool.acquire().await.unwrap();
    assert!(eportfolio::audit::verify(&mut conn).await.unwrap().intact);
}

#[tokio::test]
async fn missing_declaration_and_unknown_criterion_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let response = learner
        .post_multipart(
            &format!("/enrolments/{}/evidence", cast.enrolment),
            learner.upload_form("Call", &["1.2", "9.9"], false, Some(("call.wav", wav()))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("There is a problem"));
    assert!(page.contains("href=\"#declaration\">Confirm the declaration"), "{page}");
    assert!(page.contains("unit CC20 has no criterion 9.9"));
    assert!(page.contains("value=\"Call\""), "what was typed is kept");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM blobs").await, 0);
    assert!(app.stored_files().is_empty(), "no file left behind: {:?}", app.stored_files());
}

#[tokio::test]
async fn oversize_upload_is_refused_with_413_and_nothing_is_stored() {
    let app = TestApp::spawn_with(|config| config.max_upload = 64 * 1024).await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let mut big = wav();
    big.resize(200 * 1024, 0);
    let response = learner
        .post_multipart(
            &format!("/enrolments/{}/evidence", cast.enrolment),
            learner.upload_form("Long call", &["1.2"], true, Some(("long.wav", big))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let page = response.text().await.unwrap();
    assert!(page.contains("larger than the 64 KiB limit"), "{page}");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert!(app.stored_files().is_empty(), "no partial file left: {:?}", app.stored_files());
}

#[tokio::test]
async fn a_file_that_is_not_on_the_allow_list_is_refused_whatever_its_name() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let program = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00".repeat(64);
    let response = learner
        .post_multipart(
            &format!("/enrolments/{}/evidence", cast.enrolment),
            learner.upload_form("Report", &["2.1"], true, Some(("report.pdf", program))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(response.text().await.unwrap().contains("is not a file type we accept"));
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert!(app.stored_files().is_empty());
}

#[tokio::test]
async fn a_wrong_password_is_refused_without_saying_which_part_was_wrong() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let browser = crate::common::Browser::new(&app);
    browser.page("/login").await;
    let response = browser
        .post_form("/login", &[("email", &cast.learner.email), ("password", "not the password"), ("next", "/")])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let page = response.text().await.unwrap();
    assert!(page.contains("The email address or password is not correct"));
    let response = browser
        .post_form("/login", &[("email", "nobody@example.org"), ("password", "whatever it is"), ("next", "/")])
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("The email address or password is not correct"));
    // Still signed out.
    let response = browser.get("/dashboard").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fdashboard");
}

#[tokio::test]
async fn signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    assert_eq!(learner.get("/dashboard").await.status(), StatusCode::OK);
    let response = learner.post_form("/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(learner.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
}
