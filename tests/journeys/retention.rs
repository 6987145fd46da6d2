//! Retention as a centre runs it: the administrator reads the schedules (SPEC's defaults) and
//! cannot shorten the 3-year minimums; `eportfolio purge` lists what is due and why without
//! changing anything; `--apply` removes the files and anonymises a certified learner past the
//! period, redacts their audit events and records what it did, while a learner under legal hold
//! is left alone; the audit chain still verifies; a second apply does nothing. Time moves with
//! `--as-of`, the operator's own preview option.

use eportfolio::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{Browser, Cast, TestApp, TestUser, api_evidence, pdf, wav};

const OUTCOME_1: [&str; 8] = ["1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8"];
const OUTCOMES_2_AND_3: [&str; 8] = ["2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "3.4", "3.5"];
const OUTCOME_4: [&str; 6] = ["4.1", "4.2", "4.3", "4.4", "4.5", "4.6"];

async fn add_evidence(
    learner: &Browser,
    enrolment: uuid::Uuid,
    title: &str,
    method: &str,
    on: &str,
    criteria: &[&str],
    files: Vec<(&str, Vec<u8>)>,
) -> String {
    let metadata = json!({"title": title, "method": method, "occurred_on": on, "criteria": criteria,
                          "declaration": true, "third_party_confirmed": true,
                          "description": format!("{title}: what I did and why.")});
    let response = learner
        .post_multipart(&format!("/api/v1/enrolments/{enrolment}/evidence"), api_evidence(metadata, files))
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["id"].as_str().unwrap().to_string()
}

async fn meet(assessor: &Browser, evidence: &str, criteria: &[&str]) {
    for criterion in criteria {
        let response = assessor
            .post_json(
                &format!("/api/v1/evidence/{evidence}/decisions"),
                &json!({"criterion": criterion, "outcome": "met", "feedback": "Clear and from real work.",
                        "confirmed": ["valid", "authentic", "current", "sufficient"]}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{criterion}");
    }
}

/// The learner builds a complete portfolio (a call log with its recording, a sales analysis, a
/// reflective account), the assessor signs the unit off and the learner countersigns: certified today.
async fn certify(app: &TestApp, cast: &Cast) {
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let calls = add_evidence(
        &learner,
        cast.enrolment,
        "Call log and recorded call",
        "product",
        "2026-03-02",
        &OUTCOME_1,
        vec![("call-log.pdf", pdf()), ("call.wav", wav())],
    )
    .await;
    meet(&assessor, &calls, &OUTCOME_1).await;
    let plan = add_evidence(
        &learner,
        cast.enrolment,
        "Sales analysis and team targets",
        "product",
        "2026-03-09",
        &OUTCOMES_2_AND_3,
        vec![("analysis.pdf", pdf())],
    )
    .await;
    meet(&assessor, &plan, &OUTCOMES_2_AND_3).await;
    let account = add_evidence(
        &learner,
        cast.enrolment,
        "How I lead by example",
        "reflective_account",
        "2026-03-16",
        &OUTCOME_4,
        vec![],
    )
    .await;
    meet(&assessor, &account, &OUTCOME_4).await;
    let signed = assessor
        .post_json(&format!("/api/v1/enrolments/{}/sign-off", cast.enrolment), &json!({"declaration": true}))
        .await;
    assert!(signed.status().is_success(), "{}", signed.text().await.unwrap());
    let countersigned = learner
        .post_json(&format!("/api/v1/enrolments/{}/countersign", cast.enrolment), &json!({"declaration": true}))
        .await;
    assert!(countersigned.status().is_success(), "{}", countersigned.text().await.unwrap());
}

/// Runs the `eportfolio` binary against the test database and file store.
fn eportfolio(app: &TestApp, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_eportfolio"))
        .env("DATABASE_URL", &app.database_url)
        .env("EPORTFOLIO_DATA_DIR", &app.data_dir)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr);
    (output.status.success(), format!("{stdout}{stderr}"))
}

fn schedule<'a>(settings: &'a Value, record_type: &str) -> &'a Value {
    settings["schedules"].as_array().unwrap().iter().find(|s| s["record_type"] == record_type).expect(record_type)
}

#[tokio::test]
async fn an_administrator_sees_the_defaults_and_cannot_shorten_the_three_year_minimums() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let pages = app.browser_for(&admin).await;

    let page = pages.page("/admin/retention").await;
    assert!(page.contains("12 weeks after certification"), "{page}");
    assert!(page.contains("6 weeks after certification"), "call recordings are kept for less: {page}");
    assert!(page.contains("3 years after certification"), "{page}");
    assert!(page.contains("<legend>Audit events</legend>"), "each record type is its own fieldset: {page}");

    let api = app.api_for(&admin).await;
    let settings = api.json("/api/v1/centre/retention").await;
    assert_eq!(schedule(&settings, "evidence_files")["period"], json!({"count": 12, "unit": "weeks"}));
    assert_eq!(schedule(&settings, "call_recordings")["period"], json!({"count": 6, "unit": "weeks"}));
    for record_type in ["assessment_records", "iqa_records", "audit_events", "accounts"] {
        assert_eq!(schedule(&settings, record_type)["period"], json!({"count": 3, "unit": "years"}), "{record_type}");
        assert_eq!(schedule(&settings, record_type)["counted_from"], "certification");
        assert_eq!(schedule(&settings, record_type)["is_default"], true);
    }

    // The form: 2 years of assessment records is refused, naming the field; nothing is saved.
    let mut fields: Vec<(String, String)> = Vec::new();
    for s in settings["schedules"].as_array().unwrap() {
        let key = s["record_type"].as_str().unwrap();
        let count = if key == "assessment_records" { "2".to_string() } else { s["period"]["count"].to_string() };
        fields.push((format!("{key}_count"), count));
        fields.push((format!("{key}_unit"), s["period"]["unit"].as_str().unwrap().to_string()));
        fields.push((format!("{key}_from"), s["counted_from"].as_str().unwrap().to_string()));
    }
    let form: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = pages.post_form("/admin/retention", &form).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("There is a problem"), "{page}");
    assert!(
        page.contains("<a href=\"#assessment_records_count\">Assessment records must be kept for at least 3 years"),
        "the summary links to the field: {page}"
    );
    assert!(page.contains("2 years is too short"), "{page}");
    assert!(page.contains("id=\"assessment_records_count\" name=\"assessment_records_count\" type=\"number\" min=\"1\" max=\"5200\" inputmode=\"numeric\" class=\"short\" value=\"2\""), "what was entered stays: {page}");

    // The API: 150 weeks of audit events is under 3 years too.
    let response = api
        .patch_json(
            "/api/v1/centre/retention",
            &json!({"schedules": [{"record_type": "audit_events", "period_count": 150, "period_unit": "weeks",
                                   "counted_from": "certification"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "audit_events_count", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains("at least 3 years"), "{problem}");
    assert_eq!(app.count("SELECT count(*) FROM retention_schedules").await, 0, "nothing was saved");

    // A longer evidence-file period and 4 years of IQA records are fine, and audited.
    let response = api
        .patch_json(
            "/api/v1/centre/retention",
            &json!({"schedules": [
                {"record_type": "evidence_files", "period_count": 6, "period_unit": "months", "counted_from": "certification"},
                {"record_type": "iqa_records", "period_count": "4", "period_unit": "years", "counted_from": "leaving"}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let settings: Value = response.json().await.unwrap();
    assert_eq!(schedule(&settings, "evidence_files")["period"], json!({"count": 6, "unit": "months"}));
    assert_eq!(schedule(&settings, "evidence_files")["is_default"], false);
    assert_eq!(schedule(&settings, "evidence_files")["set_by"], "Ada Admin");
    assert_eq!(schedule(&settings, "iqa_records")["counted_from"], "leaving");
    assert_eq!(schedule(&settings, "call_recordings")["is_default"], true, "left out, left alone");
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'retention.schedule_changed'").await, 2);
    let page = pages.page("/admin/retention").await;
    assert!(page.contains("6 months after certification"), "{page}");
}

#[tokio::test]
async fn purge_removes_a_certified_learners_files_and_identity_once_due_but_never_a_held_learners() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    certify(&app, &cast).await;
    let certified_on = chrono::Utc::now().date_naive().to_string();

    // Hal left without completing (the centre disabled his account) and is under a legal hold;
    // his evidence file has the same bytes as one of Lee's.
    let held: TestUser = app.add_user(Role::Learner, "Hal Held").await;
    let held_enrolment = app.enrol(&held, &cast.assessor, None).await;
    let held_item = add_evidence(
        &app.api_for(&held).await,
        held_enrolment,
        "Complaint call notes",
        "product",
        "2026-03-02",
        &["1.1"],
        vec![("notes.pdf", pdf())],
    )
    .await;
    // Sam is still working on the unit: nothing of theirs ever falls due.
    let active = app.add_user(Role::Learner, "Sam Studying").await;
    let active_enrolment = app.enrol(&active, &cast.assessor, None).await;
    add_evidence(
        &app.api_for(&active).await,
        active_enrolment,
        "Team huddle notes",
        "product",
        "2026-03-03",
        &["1.2"],
        vec![("huddle.pdf", pdf())],
    )
    .await;

    let admin_pages = app.browser_for(&admin).await;
    let refused = admin_pages.post_form(&format!("/admin/users/{}/legal-hold", held.id), &[("hold_reason", " ")]).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = refused.text().await.unwrap();
    assert!(page.contains("<a href=\"#hold_reason\">Enter the reason for the legal hold"), "{page}");
    let placed = admin_pages
        .post_form(
            &format!("/admin/users/{}/legal-hold", held.id),
            &[("hold_reason", "Appeal against the assessment decision")],
        )
        .await;
    assert_eq!(placed.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        admin_pages.post_form(&format!("/admin/users/{}/disable", held.id), &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    let page = admin_pages.page(&format!("/admin/users/{}", held.id)).await;
    assert!(page.contains("Under legal hold"), "{page}");
    assert!(page.contains("Appeal against the assessment decision"), "{page}");
    let holds = app.api_for(&admin).await.json(&format!("/api/v1/users/{}/legal-hold", held.id)).await;
    assert_eq!(holds["items"][0]["reason"], "Appeal against the assessment decision");
    assert!(holds["items"][0]["lifted_at"].is_null());

    let files_before = app.count("SELECT count(*) FROM evidence_files").await;
    let events_before = app.count("SELECT count(*) FROM audit_events").await;
    let stored_before = app.stored_files().len();
    assert_eq!(files_before, 5, "Lee's 3, Hal's 1 and Sam's 1");
    assert_eq!(stored_before, 2, "a PDF (stored once) and a WAV");

    // Today nothing is due: the shortest period is 6 weeks.
    let (ok, out) = eportfolio(&app, &["purge"]);
    assert!(ok, "{out}");
    assert!(out.contains("Nothing is due"), "{out}");

    // In 2031 everything of Lee's is due. The dry run lists it, with the reason, and changes nothing.
    let (ok, out) = eportfolio(&app, &["purge", "--as-of", "2031-01-01"]);
    assert!(ok, "{out}");
    assert!(out.contains("dry run: nothing changed"), "{out}");
    assert!(out.contains("Test Centre"), "{out}");
    assert!(out.contains("Evidence files: 2 due (1 learner)"), "{out}");
    assert!(out.contains("Call recordings: 1 due (1 learner)"), "{out}");
    assert!(out.contains("call.wav (audio/wav"), "{out}");
    assert!(
        out.contains(&format!("Lee Learner, CC20 [{}]: Call recordings 6 weeks after certification", cast.learner.id)),
        "{out}"
    );
    assert!(out.contains(&format!("certification on {certified_on}")), "{out}");
    assert!(out.contains("Learner accounts: 1 due"), "{out}");
    assert!(out.contains("Audit events:"), "{out}");
    assert!(out.contains("Under legal hold, not purged: Hal Held"), "{out}");
    assert!(!out.contains("Sam Studying"), "an ongoing enrolment is never due: {out}");
    assert_eq!(app.count("SELECT count(*) FROM evidence_files").await, files_before);
    assert_eq!(app.count("SELECT count(*) FROM audit_events").await, events_before);
    assert_eq!(app.count("SELECT count(*) FROM users WHERE anonymised_at IS NOT NULL").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM purge_runs").await, 0);
    assert_eq!(app.stored_files().len(), stored_before);

    // Applied: Lee's files go (the evidence items stay, with the files' SHA-256 kept), the WAV
    // leaves the store, the PDF stays because Hal's held evidence has the same bytes.
    let lee_session = app.browser_for(&cast.learner).await;
    let (ok, out) = eportfolio(&app, &["purge", "--apply", "--as-of", "2031-01-01"]);
    assert!(ok, "{out}");
    assert!(out.contains("(applied)"), "{out}");
    assert!(out.contains("Stored files removed: 1."), "{out}");
    let lee_files: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM evidence_files f JOIN evidence_items i ON i.id = f.evidence_id WHERE i.enrolment_id = $1",
    )
    .bind(cast.enrolment)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(lee_files, 0);
    assert_eq!(app.count("SELECT count(*) FROM evidence_files").await, 2, "Hal's and Sam's stay");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 5, "every evidence record stays");
    let removed: Vec<(String, String, String)> =
        sqlx::query_as("SELECT name, record_type, sha256 FROM retention_removed_files ORDER BY name")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(removed.len(), 3);
    assert_eq!((removed[2].0.as_str(), removed[2].1.as_str()), ("call.wav", "call_recordings"));
    assert_eq!(removed[2].2, hex::encode(Sha256::digest(wav())), "the SHA-256 is kept");
    assert_eq!(app.stored_files().len(), 1, "the WAV is gone, the shared PDF is not");

    // Lee's account is anonymised: the name and email are gone, the session ended, sign-in refused.
    let (name, email): (String, String) = sqlx::query_as("SELECT name, email FROM users WHERE id = $1")
        .bind(cast.learner.id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(name.starts_with("Former learner"), "{name}");
    assert!(!email.contains("lee.learner"), "{email}");
    assert_eq!(lee_session.get("/dashboard").await.status(), StatusCode::SEE_OTHER, "the session has ended");
    let browser = Browser::new(&app);
    browser.page("/login").await;
    let sign_in = browser
        .post_form("/login", &[("email", &cast.learner.email), ("password", &cast.learner.password), ("next", "/")])
        .await;
    assert_ne!(sign_in.status(), StatusCode::SEE_OTHER, "an anonymised account cannot sign in");
    let page = admin_pages.page(&format!("/admin/users/{}", cast.learner.id)).await;
    assert!(page.contains("This account was anonymised"), "{page}");

    // The assessor still sees the record, without the files.
    let items =
        app.api_for(&cast.assessor).await.json(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await;
    assert!(items["criteria"].as_array().is_some_and(|c| c.len() == 22), "{items}");

    // Every step is in the audit trail; the learner's own events are redacted; the chain verifies.
    for action in [
        "retention.files_removed",
        "retention.account_anonymised",
        "retention.audit_redacted",
        "retention.purge_completed",
    ] {
        let found: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE action = $1")
            .bind(action)
            .fetch_one(&app.pool)
            .await
            .unwrap();
        assert!(found >= 1, "{action} recorded");
    }
    let redacted: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE enrolment_id = $1 AND redacted_at IS NOT NULL AND details ? 'redacted'",
    )
    .bind(cast.enrolment)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(redacted > 10, "the portfolio's events are redacted ({redacted})");
    let unredacted_personal: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE enrolment_id = $1 AND redacted_at IS NULL AND action NOT LIKE 'retention.%'",
    )
    .bind(cast.enrolment)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(unredacted_personal, 0);
    let (ok, out) = eportfolio(&app, &["audit", "verify"]);
    assert!(ok && out.contains("audit trail intact"), "{out}");
    let check = app.api_for(&admin).await.json("/api/v1/audit/verify").await;
    assert_eq!(check["intact"], true, "{check}");
    // Redaction is the one change the database allows, and only once.
    let again =
        sqlx::query("UPDATE audit_events SET details = '{\"redacted\": \"again\"}' WHERE redacted_at IS NOT NULL")
            .execute(&app.pool)
            .await;
    assert!(again.is_err(), "a redacted event cannot be changed again");

    // Hal, under hold, is untouched.
    let hal: (String, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT name, anonymised_at FROM users WHERE id = $1")
            .bind(held.id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(hal, ("Hal Held".to_string(), None));
    let hal_item = app.api_for(&cast.assessor).await.json(&format!("/api/v1/evidence/{held_item}")).await;
    assert_eq!(hal_item["files"].as_array().map(Vec::len), Some(1), "{hal_item}");

    // A second apply finds nothing to do and writes nothing.
    let events_after = app.count("SELECT count(*) FROM audit_events").await;
    let (ok, out) = eportfolio(&app, &["purge", "--apply", "--as-of", "2031-01-01"]);
    assert!(ok, "{out}");
    assert!(out.contains("Nothing is due"), "{out}");
    assert!(out.contains("Under legal hold, not purged: Hal Held"), "{out}");
    assert_eq!(app.count("SELECT count(*) FROM audit_events").await, events_after);
    assert_eq!(app.count("SELECT count(*) FROM purge_runs").await, 1);

    // The administrator sees the run.
    let runs = app.api_for(&admin).await.json("/api/v1/centre/purge-runs").await;
    assert_eq!(runs["items"].as_array().map(Vec::len), Some(1), "{runs}");
    assert_eq!(runs["items"][0]["counts"]["evidence_files"], 2, "{runs}");
    assert_eq!(runs["items"][0]["counts"]["call_recordings"], 1, "{runs}");
    assert_eq!(runs["items"][0]["as_of"], "2031-01-01");
    let page = admin_pages.page("/admin/retention").await;
    assert!(page.contains("Evidence files: 2"), "{page}");
    assert!(page.contains("Hal Held"), "the hold is listed: {page}");

    // Once the hold is lifted (with a reason), Hal's records are due like anyone's.
    let lifted = app
        .api_for(&admin)
        .await
        .post_json(&format!("/api/v1/users/{}/legal-hold/lift", held.id), &json!({"reason": "Appeal decided"}))
        .await;
    assert_eq!(lifted.status(), StatusCode::OK);
    let (ok, out) = eportfolio(&app, &["purge", "--as-of", "2031-01-01"]);
    assert!(ok, "{out}");
    assert!(out.contains("Hal Held, CC20"), "{out}");
    assert!(out.contains("leaving without completing on"), "{out}");
    let lifted_twice = app
        .api_for(&admin)
        .await
        .post_json(&format!("/api/v1/users/{}/legal-hold/lift", held.id), &json!({"reason": "Again"}))
        .await;
    assert_eq!(lifted_twice.status(), StatusCode::CONFLICT);
}

#[test]
fn the_purge_command_explains_itself() {
    let output =
        std::process::Command::new(env!("CARGO_BIN_EXE_eportfolio")).args(["purge", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(help.contains("--apply") && help.contains("--as-of"), "{help}");
    assert!(help.contains("legal hold"), "{help}");
}
