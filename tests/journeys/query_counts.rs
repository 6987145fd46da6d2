//! Every page costs the same number of SQL statements whatever the centre's size: the same
//! pages, signed in as the same kinds of people, on a generated centre of 2 learners and on one
//! of 20 (a caseload ten times longer, a portfolio six times longer, ten times the audit trail).
//!
//! Each page is counted with nothing kept in the server's memory, as read from the database.
//! Statements are counted as sqlx reports them (one `sqlx::query` event per statement executed,
//! BEGIN and COMMIT included) inside the server's `request` span, by a subscriber installed for
//! this test's thread only: the test runtime is single-threaded, so the server it spawns runs
//! on that thread too, and other tests' servers do not count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use eportfolio::demo::scale::{self, Scale};
use reqwest::StatusCode;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use uuid::Uuid;

use crate::common::{Browser, TestApp, TestUser, api_at, browser_at};

#[derive(Clone, Default)]
struct StatementCounter(Arc<AtomicUsize>);

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let in_request = ctx.event_scope(event).is_some_and(|mut scope| scope.any(|span| span.name() == "request"));
        if event.metadata().target() == "sqlx::query" && in_request {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl StatementCounter {
    /// The statements for one GET of `path` when the server has nothing kept in memory
    /// (src/db/changes.rs): what the page costs read from the database.
    async fn cold(&self, app: &TestApp, client: &Browser, path: &str) -> usize {
        app.forget();
        self.statements_for(client, path).await
    }

    /// The statements the server ran to answer one GET of `path`, which must answer 200.
    async fn statements_for(&self, client: &Browser, path: &str) -> usize {
        let before = self.0.load(Ordering::Relaxed);
        let response = client.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.bytes().await.expect("a complete body");
        self.0.load(Ordering::Relaxed) - before
    }
}

fn generated(email: String) -> TestUser {
    TestUser { id: Uuid::nil(), email, password: scale::PASSWORD.to_string() }
}

/// The statements each page took on a generated centre of `learners`, looking at the
/// portfolio of learner `learners - 1` (the fullest there) and its evidence.
async fn statements_per_page(counter: &StatementCounter, learners: u32) -> BTreeMap<&'static str, usize> {
    let app = TestApp::spawn().await;
    let store = eportfolio::evidence::FileStore::from_config(&app.config).unwrap();
    let summary = scale::generate(&app.pool, &store, Scale { learners, seed: 7 }, true, &|_| {}).await.unwrap();
    assert_eq!(summary.learners, u64::from(learners));

    let learner_email = scale::learner_email(learners - 1);
    let enrolment: Uuid = sqlx::query_scalar(
        "SELECT e.id FROM enrolments e JOIN users u ON u.id = e.learner_id WHERE lower(u.email) = lower($1)",
    )
    .bind(&learner_email)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // The portfolio's most recently judged item that has a file and a revised judgement.
    let evidence: Uuid = sqlx::query_scalar(
        "SELECT i.id FROM evidence_items i
         WHERE i.enrolment_id = $1
           AND EXISTS (SELECT 1 FROM evidence_files f WHERE f.evidence_id = i.id)
           AND EXISTS (SELECT 1 FROM decisions d WHERE d.evidence_id = i.id AND d.supersedes IS NOT NULL)
         ORDER BY i.created_at DESC LIMIT 1",
    )
    .bind(enrolment)
    .fetch_one(&app.pool)
    .await
    .unwrap();

    let learner = browser_at(&app.address, &generated(learner_email.clone())).await;
    let learner_api = api_at(&app.address, &generated(learner_email)).await;
    let assessor = browser_at(&app.address, &generated(scale::assessor_email(0))).await;
    let verifier = browser_at(&app.address, &generated(scale::VERIFIER_EMAIL.into())).await;

    let first_trail_page = verifier.page("/audit").await;
    let older = first_trail_page
        .split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|href| href.replace("&amp;", "&"))
        .find(|href| href.starts_with("/audit?") && href.contains("before="))
        .expect("the trail has an older page");

    let mut counts = BTreeMap::new();
    counts.insert("learner portfolio", counter.cold(&app, &learner, &format!("/enrolments/{enrolment}")).await);
    counts.insert("assessor caseload", counter.cold(&app, &assessor, "/dashboard").await);
    counts.insert("tracking grid", counter.cold(&app, &assessor, &format!("/enrolments/{enrolment}/tracking")).await);
    counts.insert("evidence detail", counter.cold(&app, &assessor, &format!("/evidence/{evidence}")).await);
    counts.insert("verifier audit trail", counter.cold(&app, &verifier, "/audit").await);
    counts.insert("verifier audit trail, older page", counter.cold(&app, &verifier, &older).await);
    counts.insert(
        "API progress",
        counter.cold(&app, &learner_api, &format!("/api/v1/enrolments/{enrolment}/progress")).await,
    );
    counts
}

#[tokio::test]
async fn every_page_costs_the_same_statements_at_two_and_at_twenty_learners() {
    let counter = StatementCounter::default();
    let _counting = tracing::subscriber::set_default(tracing_subscriber::registry().with(counter.clone()));

    let small = statements_per_page(&counter, 2).await;
    let large = statements_per_page(&counter, 20).await;

    for (page, count) in &small {
        assert!(*count > 0, "{page} ran no statements: the counter is not counting");
    }
    assert_eq!(small, large, "statements per page at 2 learners (left) and at 20 learners (right)");
}

/// What every signed-in request reads (its session, the person and their roles, their unread
/// count) is read once and then kept by the server until it hears of a change (src/db/changes.rs).
#[tokio::test]
async fn a_page_reads_its_session_person_and_unread_count_again_only_after_they_change() {
    let counter = StatementCounter::default();
    let _counting = tracing::subscriber::set_default(tracing_subscriber::registry().with(counter.clone()));
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    learner.page("/accessibility").await;
    assert_eq!(counter.statements_for(&learner, "/accessibility").await, 0, "read once, not again");

    // Renamed by someone else (here, straight in the database): read again, then kept again.
    sqlx::query("UPDATE users SET name = 'Lee Renamed' WHERE id = $1")
        .bind(cast.learner.id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.settle().await;
    assert!(counter.statements_for(&learner, "/accessibility").await > 0, "the person is read again");
    assert_eq!(counter.statements_for(&learner, "/accessibility").await, 0);
    assert!(learner.page("/accessibility").await.contains("Lee Renamed"), "the page names them as they are now");

    // The portfolio and its progress likewise, until evidence is added.
    let portfolio = format!("/enrolments/{}", cast.enrolment);
    let progress = format!("/api/v1/enrolments/{}/progress", cast.enrolment);
    let api = app.api_for(&cast.learner).await;
    api.json("/api/v1/me").await; // its new session, read once
    learner.page(&portfolio).await;
    assert_eq!(counter.statements_for(&learner, &portfolio).await, 0, "the portfolio is kept");
    assert_eq!(counter.statements_for(&api, &progress).await, 0, "its progress too");
    // The assessor's dashboard (its lists and each learner's line) and the tracking grid too.
    let assessor = app.browser_for(&cast.assessor).await;
    let grid = format!("/enrolments/{}/tracking", cast.enrolment);
    assert!(assessor.page("/dashboard").await.contains("0 items to assess"));
    assert_eq!(counter.statements_for(&assessor, "/dashboard").await, 0, "the dashboard is kept");
    assert!(!assessor.page(&grid).await.contains("Team huddle"));
    assert_eq!(counter.statements_for(&assessor, &grid).await, 0, "the grid is kept");
    let metadata = serde_json::json!({"title": "Team huddle", "method": "observation", "occurred_on": "2026-11-02",
                                      "criteria": ["1.1"], "declaration": true});
    let uploaded = api
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            crate::common::api_evidence(metadata, vec![("huddle.pdf", crate::common::pdf())]),
        )
        .await;
    assert_eq!(uploaded.status(), StatusCode::CREATED);
    let item: serde_json::Value = uploaded.json().await.unwrap();
    let detail = format!("/evidence/{}", item["id"].as_str().unwrap());
    assert!(counter.statements_for(&learner, &portfolio).await > 0, "the changed portfolio is read again");
    assert!(learner.page(&portfolio).await.contains("Team huddle"), "with the new item");
    assert_eq!(counter.statements_for(&api, &progress).await, 0, "and kept again");
    assert!(counter.statements_for(&assessor, "/dashboard").await > 0, "the learner's line is read again");
    assert!(assessor.page("/dashboard").await.contains("1 item to assess"), "counting the new item");
    assert_eq!(counter.statements_for(&assessor, "/dashboard").await, 0, "and kept again");
    assert!(counter.statements_for(&assessor, &grid).await > 0, "the grid is read again");
    assert!(assessor.page(&grid).await.contains("Team huddle"), "with the new item's column");
    assert_eq!(counter.statements_for(&assessor, &grid).await, 0, "and kept again");

    // The item's page, until someone writes about it; the learner sees their own view of it.
    assert!(!assessor.page(&detail).await.contains("Please add the call log"));
    assert_eq!(counter.statements_for(&assessor, &detail).await, 0, "the item's page is kept");
    learner.page(&detail).await;
    assert_eq!(counter.statements_for(&learner, &detail).await, 0, "for the learner too");
    let written = app
        .api_for(&cast.assessor)
        .await
        .post_json(&format!("/api/v1{detail}/comments"), &serde_json::json!({"body": "Please add the call log"}))
        .await;
    assert_eq!(written.status(), StatusCode::CREATED);
    assert!(counter.statements_for(&learner, &detail).await > 0, "the item's page is read again");
    assert!(learner.page(&detail).await.contains("Please add the call log"), "with the message");
    assert_eq!(counter.statements_for(&learner, &detail).await, 0, "and kept again");
    // A message added straight in the database: no audit event says so, the conversation does.
    sqlx::query(
        "INSERT INTO evidence_comments (id, evidence_id, author_id, author_role, body)
         VALUES (gen_random_uuid(), $1, $2, 'assessor', 'Please add the call log for Tuesday')",
    )
    .bind(Uuid::parse_str(item["id"].as_str().unwrap()).unwrap())
    .bind(cast.assessor.id)
    .execute(&app.pool)
    .await
    .unwrap();
    app.settle().await;
    assert!(learner.page(&detail).await.contains("call log for Tuesday"), "with that message too");

    // Given to another assessor (here, straight in the database): the kept caseload and grid are
    // not served to the first one any more.
    let other = app.add_user(eportfolio::auth::Role::Assessor, "Omar Other").await;
    sqlx::query("UPDATE enrolments SET assessor_id = $2 WHERE id = $1")
        .bind(cast.enrolment)
        .bind(other.id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.settle().await;
    assert!(assessor.page("/dashboard").await.contains("No learners are assigned to you yet."));
    assert_eq!(assessor.get(&grid).await.status(), StatusCode::NOT_FOUND, "the grid is not theirs now");
    assert_eq!(assessor.get(&detail).await.status(), StatusCode::NOT_FOUND, "nor the item");
    let other = app.browser_for(&other).await;
    assert!(other.page(&grid).await.contains("Team huddle"), "it is the new assessor's");
}

/// A verifier's audit trail reads only its events and their neighbours once what their grants
/// cover, the actions recorded and the latest whole-chain check are kept; each is read again
/// once it changes, whoever changes it.
#[tokio::test]
async fn the_audit_trail_keeps_the_verifiers_scope_the_actions_and_the_latest_check_until_they_change() {
    let counter = StatementCounter::default();
    let _counting = tracing::subscriber::set_default(tracing_subscriber::registry().with(counter.clone()));
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let verifier = app.browser_for(&cast.verifier).await;
    let first = verifier.page("/audit").await;
    assert!(first.contains("Whole chain: not checked yet"), "{first}");
    assert!(!first.contains("<option value=\"verifier.viewed_portfolio\""));
    // The first view recorded was the first of its action, so the actions are read once more.
    verifier.page("/audit").await;
    // Counted: the events, the events either side with the chain's end, and the COMMIT. (sqlx
    // does not report the BEGIN, sent with its settings as one simple query.)
    assert_eq!(counter.statements_for(&verifier, "/audit").await, 3, "the scope, the actions and the check are kept");

    // An action recorded for the first time (the verifier's view of the portfolio) is listed.
    verifier.page(&format!("/enrolments/{}", cast.enrolment)).await;
    app.settle().await;
    let page = verifier.page("/audit").await;
    assert!(page.contains("<option value=\"verifier.viewed_portfolio\""), "the new action is in the filter");

    // A check recorded straight in the database is shown.
    sqlx::query("INSERT INTO audit_checks (checked_by, events, intact, took_ms) VALUES (NULL, 4321, true, 5)")
        .execute(&app.pool)
        .await
        .unwrap();
    app.settle().await;
    let page = verifier.page("/audit").await;
    assert!(page.contains("Intact: 4321 events"), "{page}");
    assert!(page.contains("scheduled check"), "{page}");
    assert_eq!(counter.statements_for(&verifier, "/audit").await, 3, "and kept again");

    // The grant revoked straight in the database: the trail is refused at once.
    sqlx::query("UPDATE verifier_grants SET revoked_at = now() WHERE verifier_id = $1")
        .bind(cast.verifier.id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.settle().await;
    assert_eq!(verifier.get("/audit").await.status(), StatusCode::FORBIDDEN, "their access has ended");
}
