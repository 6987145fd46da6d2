//! The feedback loop: the learner hears when their evidence is assessed and answered, the
//! assessor when evidence arrives or the learner replies; the conversation on an item is read by
//! whoever may see the item and written only by the learner, their assessor and IQA; and
//! notifications go out as email through a real SMTP server when one is configured.

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Browser, Cast, SmtpSink, TestApp, api_evidence, pdf};

const CONFIRMED: [(&str, &str); 4] =
    [("confirmed", "valid"), ("confirmed", "authentic"), ("confirmed", "current"), ("confirmed", "sufficient")];

/// The learner submits a call log mapped to 1.1 and 1.2 through the upload form; its page's path.
async fn submit_call_log(cast: &Cast, learner: &Browser) -> String {
    learner.page(&format!("/enrolments/{}/evidence/new", cast.enrolment)).await;
    let response = learner
        .post_multipart(
            &format!("/enrolments/{}/evidence", cast.enrolment),
            learner.upload_form("Call log", &["1.1", "1.2"], true, Some(("log.pdf", pdf()))),
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_string();
    location.split('?').next().unwrap().to_string()
}

/// The assessor judges 1.1 met and 1.2 not yet through the evidence page's form.
async fn assess(assessor: &Browser, item: &str) -> reqwest::Response {
    assessor.page(item).await;
    let mut fields = vec![
        ("outcome-1.1", "met"),
        ("feedback-1.1", "The log shows you briefed the team on the offer."),
        ("outcome-1.2", "not_yet"),
        ("feedback-1.2", "Show how you checked each agent understood the targets."),
    ];
    fields.extend(CONFIRMED);
    assessor.post_form(&format!("{item}/decisions"), &fields).await
}

fn unread_in_header(page: &str) -> Option<u32> {
    let link = page.split("href=\"/notifications\">").nth(1)?.split("</a>").next()?;
    assert!(link.starts_with("Notifications"), "the header links to the notifications: {link}");
    link.strip_prefix("Notifications (").and_then(|rest| rest.strip_suffix(')')).map(|n| n.parse().unwrap())
}

#[tokio::test]
async fn the_learner_is_told_once_when_evidence_is_assessed_and_can_clear_the_count() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let assessor = app.browser_for(&cast.assessor).await;
    let item = submit_call_log(&cast, &learner).await;

    // The assessor hears of the new evidence; the learner has nothing yet.
    assert_eq!(unread_in_header(&assessor.page("/dashboard").await), Some(1));
    let list = assessor.page("/notifications").await;
    assert!(list.contains("Lee Learner submitted evidence for assessment: Call log"), "{list}");
    assert!(list.contains(&format!("href=\"{item}\"")), "{list}");
    assert_eq!(unread_in_header(&learner.page("/dashboard").await), None);

    // One submit of decisions on two criteria is one notification, on every page's header.
    assert_eq!(assess(&assessor, &item).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(unread_in_header(&learner.page("/dashboard").await), Some(1));
    assert_eq!(unread_in_header(&learner.page(&format!("/enrolments/{}", cast.enrolment)).await), Some(1));
    let list = learner.page("/notifications").await;
    assert!(list.contains("Your evidence Call log was assessed by Ada Assessor: 1 met, 1 not yet met"), "{list}");
    assert!(list.contains("tag-submitted\">New</span>"), "the unread one is marked: {list}");
    let link = list.split("<p><a href=\"").nth(1).and_then(|rest| rest.split('"').next()).expect("a link").to_string();
    assert_eq!(link, item);
    let page = learner.page(&link).await;
    assert!(page.contains("Show how you checked each agent understood the targets."), "{page}");

    // The same submit again records nothing new, so tells nobody anything new.
    assess(&assessor, &item).await;
    let api = app.api_for(&cast.learner).await;
    let listed = api.json("/api/v1/notifications").await;
    assert_eq!(listed["unread"], 1, "{listed}");
    assert_eq!(listed["items"][0]["kind"], "decisions_recorded");
    assert_eq!(listed["items"][0]["link"], item.as_str());

    // Marking all as read brings the count to nothing, and the list keeps them, read.
    learner.page("/notifications").await;
    let response = learner.post_form("/notifications/read", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/notifications");
    let list = learner.page("/notifications").await;
    assert_eq!(unread_in_header(&list), None);
    assert!(!list.contains("tag-submitted\">New</span>") && list.contains("Call log was assessed"), "{list}");
    assert!(!list.contains("Mark all as read"), "nothing left to mark: {list}");
    let listed = api.json("/api/v1/notifications").await;
    assert_eq!(listed["unread"], 0);
    assert!(listed["items"][0]["read_at"].is_string());
    // The assessor's own notification is untouched by the learner's reading.
    assert_eq!(unread_in_header(&assessor.page("/dashboard").await), Some(1));
}

#[tokio::test]
async fn assessor_and_learner_talk_about_an_item_and_each_is_told_of_the_other_s_message() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let assessor = app.browser_for(&cast.assessor).await;
    let item = submit_call_log(&cast, &learner).await;
    assess(&assessor, &item).await;
    learner.page("/notifications").await;
    learner.post_form("/notifications/read", &[]).await;
    assessor.page("/notifications").await;
    assessor.post_form("/notifications/read", &[]).await;

    // The assessor gives overall feedback on the item, below the decisions.
    let page = assessor.page(&item).await;
    assert!(page.contains("<label for=\"body\">Overall feedback</label>"), "{page}");
    assert!(
        page.find("Record decisions").unwrap() < page.find("Feedback and replies").unwrap(),
        "the conversation follows the decisions"
    );
    let response = assessor
        .post_form(
            &format!("{item}/comments"),
            &[("body", "A good log overall. Next time add the time of each briefing.")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers()[LOCATION].to_str().unwrap().starts_with(&format!("{item}#comment-")));

    // The learner is told, reads it under the decisions, and replies.
    let dashboard = learner.page("/dashboard").await;
    assert_eq!(unread_in_header(&dashboard), Some(1));
    let list = learner.page("/notifications").await;
    assert!(list.contains("New message from Ada Assessor about Call log"), "{list}");
    let page = learner.page(&item).await;
    assert!(page.contains("A good log overall. Next time add the time of each briefing."), "{page}");
    assert!(page.contains("<strong>Ada Assessor</strong> <span class=\"muted\">Assessor"), "{page}");
    assert!(page.contains("<label for=\"body\">Your message</label>"), "{page}");
    let response = learner
        .post_form(&format!("{item}/comments"), &[("body", "Thank you. Should I resubmit with the times added?")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The assessor is told of the reply and answers it.
    assert_eq!(unread_in_header(&assessor.page("/dashboard").await), Some(1));
    assert!(assessor.page("/notifications").await.contains("New message from Lee Learner about Call log"));
    let response = assessor.post_form(&format!("{item}/comments"), &[("body", "Yes, as version 2.")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // The conversation reads in order, with who said what in which role; the API says the same.
    let page = learner.page(&item).await;
    let first = page.find("A good log overall").unwrap();
    let reply = page.find("Should I resubmit").unwrap();
    let answer = page.find("Yes, as version 2.").unwrap();
    assert!(first < reply && reply < answer, "oldest first");
    assert!(page.contains("<strong>Lee Learner</strong> <span class=\"muted\">Learner"), "{page}");
    let api = app.api_for(&cast.learner).await;
    let conversation = api.json(&format!("/api/v1{item}/comments")).await;
    let comments = conversation["items"].as_array().unwrap();
    assert_eq!(comments.len(), 3);
    assert_eq!(comments[0]["author_role"], "assessor");
    assert_eq!(comments[1]["author_role"], "learner");
    assert_eq!(comments[1]["author_id"], cast.learner.id.to_string());
    assert!(comments[2]["written_at"].is_string());
    assert_eq!(conversation["can_comment"], true);

    // Through the API too, with a notification for the assessor; each message is audited.
    let response = api.post_json(&format!("/api/v1{item}/comments"), &json!({"body": "Will do."})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["body"], "Will do.");
    assert_eq!(unread_in_header(&assessor.page("/dashboard").await), Some(2));
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'comment.added'").await, 4);
    // Messages are never edited or removed.
    let changed = sqlx::query("UPDATE evidence_comments SET body = 'changed'").execute(&app.pool).await;
    assert!(changed.is_err(), "the conversation is append-only");
}

#[tokio::test]
async fn an_empty_or_overlong_message_is_refused_with_an_error_summary_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let item = submit_call_log(&cast, &learner).await;
    let before = app.count("SELECT count(*) FROM notifications").await;

    learner.page(&item).await;
    let response = learner.post_form(&format!("{item}/comments"), &[("body", "   \n ")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("There is a problem"), "{page}");
    assert!(page.contains("<a href=\"#body\">Write your message before sending it</a>"), "{page}");
    assert!(page.contains("id=\"body-error\""), "the message is beside the field: {page}");

    let long = "I made forty calls. ".repeat(300);
    let response = learner.post_form(&format!("{item}/comments"), &[("body", &long)]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("Your message must be 5000 characters or fewer (it has 5999)"), "{page}");
    assert!(page.contains(&format!(">{long}</textarea>")), "what was typed is kept");

    let api = app.api_for(&cast.learner).await;
    let response = api.post_json(&format!("/api/v1{item}/comments"), &json!({"body": ""})).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "body");

    assert_eq!(app.count("SELECT count(*) FROM evidence_comments").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, before, "nobody is told of nothing");
}

#[tokio::test]
async fn only_people_who_see_the_item_read_its_conversation_and_a_verifier_only_reads() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let item = submit_call_log(&cast, &learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let response =
        assessor.post_json(&format!("/api/v1{item}/comments"), &json!({"body": "Well organised evidence."})).await;
    assert_eq!(response.status(), StatusCode::CREATED);

    // Another learner can neither read nor write, by page or API: the item does not exist for them.
    let other = app.add_user(eportfolio::auth::Role::Learner, "Other Learner").await;
    let stranger = app.api_for(&other).await;
    assert_eq!(stranger.get(&format!("/api/v1{item}/comments")).await.status(), StatusCode::NOT_FOUND);
    let response = stranger.post_json(&format!("/api/v1{item}/comments"), &json!({"body": "Hello"})).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let pages = app.browser_for(&other).await;
    let response = pages.post_form(&format!("{item}/comments"), &[("body", "Hello")]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The verifier reads the conversation (and the read is recorded), but cannot write in it.
    let verifier = app.api_for(&cast.verifier).await;
    let conversation = verifier.json(&format!("/api/v1{item}/comments")).await;
    assert_eq!(conversation["items"][0]["body"], "Well organised evidence.");
    assert_eq!(conversation["can_comment"], false);
    let response = verifier.post_json(&format!("/api/v1{item}/comments"), &json!({"body": "Noted"})).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let verifier_pages = app.browser_for(&cast.verifier).await;
    let page = verifier_pages.page(&item).await;
    assert!(page.contains("Well organised evidence."), "{page}");
    assert!(!page.contains(&format!("action=\"{item}/comments\"")), "no form for a verifier: {page}");
    let response = verifier_pages.post_form(&format!("{item}/comments"), &[("body", "Noted")]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM evidence_comments").await, 1);

    // The IQA may write; the learner and assessor are told, and the IQA hears the answers.
    let iqa = app.api_for(&cast.iqa).await;
    let response = iqa
        .post_json(&format!("/api/v1{item}/comments"), &json!({"body": "Please add the date of the briefing."}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let learner_api = app.api_for(&cast.learner).await;
    let listed = learner_api.json("/api/v1/notifications").await;
    assert_eq!(listed["items"][0]["subject"], "New message from Ian Quality about Call log");
    let response = learner_api.post_json(&format!("/api/v1{item}/comments"), &json!({"body": "Added."})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let listed = iqa.json("/api/v1/notifications").await;
    assert_eq!(listed["unread"], 1, "{listed}");
    assert_eq!(listed["items"][0]["subject"], "New message from Lee Learner about Call log");
    let read = iqa.post_json("/api/v1/notifications/read", &json!({})).await;
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.json::<Value>().await.unwrap()["unread"], 0);
}

/// Submits a call log through the API as the learner and has the assessor judge it through the
/// API; the item's id.
async fn submit_and_assess_by_api(app: &TestApp, cast: &Cast) -> (Uuid, reqwest::StatusCode) {
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Call log", "method": "product", "occurred_on": "2026-03-31",
                          "criteria": ["1.1"], "declaration": true});
    let created: Value = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("log.pdf", pdf())]),
        )
        .await
        .json()
        .await
        .unwrap();
    let id: Uuid = created["id"].as_str().unwrap().parse().unwrap();
    let assessor = app.api_for(&cast.assessor).await;
    let decided = assessor
        .post_json(
            &format!("/api/v1/evidence/{id}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Add the briefing notes."}),
        )
        .await;
    (id, decided.status())
}

/// A message's headers unfolded and its quoted-printable soft line breaks joined.
fn readable(message: &str) -> String {
    message.replace("\r\n ", " ").replace("=\r\n", "")
}

/// Waits (at most half a minute) until `count` notifications are recorded as emailed: the mailer
/// records it just after the mail server has accepted the message.
async fn wait_until_sent(app: &TestApp, count: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let sent =
            app.count("SELECT count(*) FROM notifications WHERE emailed_at IS NOT NULL AND email_error IS NULL").await;
        if sent == count {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{sent} of {count} notifications recorded as emailed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn addressed_to<'a>(messages: &'a [String], email: &str) -> Option<&'a String> {
    messages.iter().find(|m| m.contains(&format!("X-Envelope-To: {email}\r\n")))
}

#[tokio::test]
async fn with_smtp_configured_the_learner_gets_an_email_with_a_link_to_the_item() {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = TestApp::spawn_with(|config| {
        config.smtp_url = Some(url);
        config.mail_from = "Test Centre <assessment@centre.example>".into();
        config.public_url = Some("https://portfolio.centre.example/".into());
    })
    .await;
    let cast = app.cast().await;
    let (id, status) = submit_and_assess_by_api(&app, &cast).await;
    assert_eq!(status, StatusCode::CREATED);

    // Two emails: the assessor's about the submission and the learner's about the decision.
    let messages = sink.wait_for(2).await;
    let to_learner = readable(addressed_to(&messages, &cast.learner.email).expect("an email to the learner"));
    assert!(to_learner.contains("X-Envelope-From: assessment@centre.example\r\n"), "{to_learner}");
    assert!(
        to_learner.contains("Subject: Your evidence Call log was assessed by Ada Assessor: 1 not yet met\r\n"),
        "{to_learner}"
    );
    let to = to_learner.lines().find(|l| l.starts_with("To: ")).expect("a To header");
    assert!(to.contains("Lee Learner") && to.contains(&format!("<{}>", cast.learner.email)), "{to}");
    assert!(to_learner.contains(&format!("https://portfolio.centre.example/evidence/{id}\r\n")), "{to_learner}");
    assert!(!to_learner.contains("Add the briefing notes"), "the feedback itself stays in the application");
    let to_assessor = readable(addressed_to(&messages, &cast.assessor.email).expect("an email to the assessor"));
    assert!(to_assessor.contains("Subject: Lee Learner submitted evidence for assessment: Call log"), "{to_assessor}");

    // Each went once and is marked sent.
    wait_until_sent(&app, 2).await;
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    assert_eq!(sink.messages().len(), 2, "nothing is sent twice");
}

#[tokio::test]
async fn with_the_mail_server_down_the_decision_still_succeeds_and_the_email_follows_when_it_is_back() {
    let port = SmtpSink::free_port();
    let app = TestApp::spawn_with(|config| config.smtp_url = Some(SmtpSink::url_for(port))).await;
    let cast = app.cast().await;
    let (id, status) = submit_and_assess_by_api(&app, &cast).await;
    assert_eq!(status, StatusCode::CREATED, "the assessor's action does not wait for or depend on email");
    let api = app.api_for(&cast.learner).await;
    assert_eq!(api.json("/api/v1/notifications").await["unread"], 1);

    // The mailer tries, fails, and keeps the email pending with the reason.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let failed: Option<(i32, Option<String>)> = sqlx::query_as(
            "SELECT email_attempts, email_error FROM notifications
             WHERE recipient_id = $1 AND emailed_at IS NULL AND email_attempts > 0",
        )
        .bind(cast.learner.id)
        .fetch_optional(&app.pool)
        .await
        .unwrap();
        if let Some((_, error)) = failed {
            assert!(error.is_some_and(|e| !e.is_empty()), "the failure is recorded");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the mailer never tried to send");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Once the mail server is back, the retry delivers it.
    let sink = SmtpSink::start_on(port).await;
    let messages = sink.wait_for(2).await;
    let to_learner = readable(addressed_to(&messages, &cast.learner.email).expect("an email to the learner"));
    assert!(to_learner.contains(&format!("/evidence/{id}")), "{to_learner}");
    wait_until_sent(&app, 2).await;
}
