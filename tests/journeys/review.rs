//! The assessor's review: validity, authenticity, currency and sufficiency confirmed with every
//! "met", a reason for every changed judgement, criteria the learner missed added with a
//! decision, one consistent chain of decisions whatever the tabs and double submits, and a
//! caseload that shows what is overdue by the centre's own turnaround.

use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Browser, Cast, TestApp, VACS_FORM, api_evidence, pdf, vacs};

async fn submitted_item(app: &TestApp, cast: &Cast, criteria: &[&str]) -> Uuid {
    let metadata = json!({"title": "Weekly sales report", "method": "product", "occurred_on": "2026-03-02",
                          "criteria": criteria, "declaration": true});
    let created: Value = app
        .api_for(&cast.learner)
        .await
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("report.pdf", pdf())]),
        )
        .await
        .json()
        .await
        .unwrap();
    created["id"].as_str().unwrap().parse().unwrap()
}

async fn decide(assessor: &Browser, item: Uuid, fields: &[(&str, &str)]) -> reqwest::Response {
    assessor.page(&format!("/evidence/{item}")).await;
    assessor.post_form(&format!("/evidence/{item}/decisions"), fields).await
}

#[tokio::test]
async fn an_assessor_confirms_vacs_with_met_gives_a_reason_for_a_change_and_adds_a_missed_criterion() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let item = submitted_item(&app, &cast, &["2.1"]).await;
    let assessor = app.browser_for(&cast.assessor).await;
    let form = assessor.page(&format!("/evidence/{item}")).await;
    assert!(form.contains("Your confirmation of the evidence") && form.contains("A criterion the learner did not map"));
    assert!(form.contains("<option value=\"2.2\">"), "unmapped criteria are offered");
    assert!(!form.contains("<option value=\"2.1\">"), "mapped ones are not");

    // "Met" without the four confirmations is refused, naming what is missing; nothing is stored.
    let unconfirmed = decide(
        &assessor,
        item,
        &[("outcome-2.1", "met"), ("feedback-2.1", "Right sources."), VACS_FORM[0], VACS_FORM[1]],
    )
    .await;
    assert_eq!(unconfirmed.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = unconfirmed.text().await.unwrap();
    assert!(page.contains("There is a problem") && page.contains("href=\"#confirmed\""), "{page}");
    assert!(page.contains("not yet confirmed: current, sufficient"));
    assert!(
        page.contains("value=\"met\" checked") && page.contains(">Right sources.</textarea>"),
        "what was entered stays"
    );
    assert!(page.contains("value=\"valid\" checked") && !page.contains("value=\"current\" checked"));
    assert_eq!(app.count("SELECT count(*) FROM decisions").await, 0);

    // Confirmed, with 2.2 added by the assessor: two decisions, and the item now maps 2.2.
    let fields = [
        &[
            ("outcome-2.1", "met"),
            ("feedback-2.1", "Right sources."),
            ("add_criterion", "2.2"),
            ("outcome-added", "not_yet"),
            ("feedback-added", "The report also compares agents: say what the comparison shows."),
        ][..],
        &VACS_FORM,
    ]
    .concat();
    assert_eq!(decide(&assessor, item, &fields).await.status(), StatusCode::SEE_OTHER);
    let learner = app.api_for(&cast.learner).await;
    let view = learner.json(&format!("/api/v1/evidence/{item}")).await;
    assert_eq!(view["criteria"], json!(["2.1", "2.2"]));
    assert_eq!(
        view["assessment"][0]["current"]["confirmed"],
        json!({"valid": true, "authentic": true, "current": true, "sufficient": true})
    );
    assert_eq!(view["assessment"][1]["current"]["outcome"], "not_yet");
    let event = sqlx::query_scalar::<_, Value>(
        "SELECT details FROM audit_events WHERE action = 'decision.recorded' AND details->>'criterion' = '2.2'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(event["criterion_added_by_assessor"], true);

    // Changing 2.1 needs a reason; given one, the new judgement supersedes and both are shown.
    let change = [("outcome-2.1", "not_yet"), ("feedback-2.1", "Name the data sources you used.")];
    let refused = decide(&assessor, item, &change).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Give a reason for changing your earlier judgement on 2.1 (it was: Met)"), "{page}");
    assert!(page.contains("href=\"#reason-2.1\"") && page.contains("id=\"reason-2.1\""));
    assert_eq!(app.count("SELECT count(*) FROM decisions").await, 2);
    let with_reason = [&change[..], &[("reason-2.1", "IQA sampling found the sources were not named.")]].concat();
    assert_eq!(decide(&assessor, item, &with_reason).await.status(), StatusCode::SEE_OTHER);
    let page = learner.page(&format!("/evidence/{item}")).await;
    assert!(
        page.contains(
            "Changed from the earlier judgement because:</span> IQA sampling found the sources were not named."
        )
    );
    assert!(page.contains("Earlier decisions (1)"));
    assert_eq!(app.count("SELECT count(*) FROM decisions").await, 3);

    // The API refuses an unknown confirmation by name.
    let api = app.api_for(&cast.assessor).await;
    let wrong = api
        .post_json(
            &format!("/api/v1/evidence/{item}/decisions"),
            &json!({"criterion": "2.2", "outcome": "met", "feedback": "", "confirmed": ["valid", "relevant"], "reason": "x"}),
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = wrong.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "confirmed");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("\"relevant\""));
}

#[tokio::test]
async fn two_tabs_and_double_submits_leave_one_consistent_chain_of_decisions() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let item = submitted_item(&app, &cast, &["3.1"]).await;
    let api = app.api_for(&cast.assessor).await;
    let path = format!("/api/v1/evidence/{item}/decisions");
    let first =
        json!({"criterion": "3.1", "outcome": "not_yet", "feedback": "Show the team briefing.", "confirmed": vacs()});
    assert_eq!(api.post_json(&path, &first).await.status(), StatusCode::CREATED);

    // The same submit twice at once: one decision.
    let again = json!({"criterion": "3.1", "outcome": "met", "feedback": "Briefing notes added.", "confirmed": vacs(),
                       "reason": "The learner sent the briefing notes."});
    let (a, b) = tokio::join!(api.post_json(&path, &again), api.post_json(&path, &again));
    assert_eq!((a.status(), b.status()), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(app.count("SELECT count(*) FROM decisions").await, 2);

    // Eight different judgements from several tabs at once: all recorded, one after another.
    let tabs: Vec<Value> = (0..8)
        .map(|i| {
            json!({"criterion": "3.1", "outcome": if i % 2 == 0 { "not_yet" } else { "met" },
                   "feedback": format!("Judgement from tab {i}"), "confirmed": vacs(), "reason": format!("Tab {i}")})
        })
        .collect();
    let responses = futures_util::future::join_all(tabs.iter().map(|body| api.post_json(&path, body))).await;
    assert!(responses.iter().all(|r| r.status() == StatusCode::CREATED));
    let chain = sqlx::query_as::<_, (Uuid, Option<Uuid>, String)>(
        "SELECT id, supersedes, feedback FROM decisions WHERE evidence_id = $1 ORDER BY seq",
    )
    .bind(item)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(chain.len(), 10);
    assert_eq!(chain[0].1, None);
    for pair in chain.windows(2) {
        assert_eq!(pair[1].1, Some(pair[0].0), "each decision supersedes the one before it");
    }
    let current = app.api_for(&cast.learner).await.json(&format!("/api/v1/evidence/{item}")).await;
    assert_eq!(current["assessment"][0]["current"]["feedback"], chain[9].2.as_str(), "the last recorded is current");
    assert_eq!(current["assessment"][0]["history"].as_array().unwrap().len(), 10);
}

#[tokio::test]
async fn the_caseload_shows_evidence_overdue_by_the_centres_own_turnaround() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let item = submitted_item(&app, &cast, &["1.1"]).await;
    // The item arrived three weeks ago: 15 working days.
    sqlx::query("UPDATE evidence_items SET created_at = now() - interval '21 days' WHERE id = $1")
        .bind(item)
        .execute(&app.pool)
        .await
        .unwrap();
    let assessor = app.browser_for(&cast.assessor).await;
    let caseload = assessor.page("/dashboard").await;
    assert!(caseload.contains("Overdue") && caseload.contains("15 working days (turnaround 10)"), "{caseload}");

    // The administrator gives the centre a longer turnaround: it is no longer overdue.
    let admin_user = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let admin = app.browser_for(&admin_user).await;
    assert!(admin.page("/admin").await.contains("value=\"10\""));
    let refused = admin.post_form("/admin/settings", &[("assessment_due_working_days", "0")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("whole number from 1 to 60"));
    admin.page("/admin").await;
    let saved = admin.post_form("/admin/settings", &[("assessment_due_working_days", "20")]).await;
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    let caseload = assessor.page("/dashboard").await;
    assert!(!caseload.contains("Overdue"), "{caseload}");
    let summaries = app.api_for(&cast.assessor).await.json("/api/v1/enrolments").await;
    assert_eq!(summaries["items"][0]["working_days_waiting"], 15);
    assert_eq!(summaries["items"][0]["overdue"], false);

    // And through the API, audited.
    let api = app.api_for(&admin_user).await;
    let changed = api.patch_json("/api/v1/centre/settings", &json!({"assessment_due_working_days": 5})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(api.json("/api/v1/centre/settings").await["assessment_due_working_days"], 5);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'centre.settings_changed'").await, 2);
    assert_eq!(app.api_for(&cast.assessor).await.json("/api/v1/enrolments").await["items"][0]["overdue"], true);
}
