//! The centre's progress report as its administrator, IQA and external verifier use it: one row
//! per enrolment (criteria met, work waiting, sign-off, IQA sampling), filtered by assessor,
//! unit or sign-off state, as a page, a CSV a spreadsheet opens safely, and the API (JSON or
//! CSV). Learners at another centre never appear; assessors and learners are refused.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::common::{Browser, Cast, TestApp, api_evidence, pdf, vacs};

const CC20: [&str; 22] = [
    "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "3.4", "3.5",
    "4.1", "4.2", "4.3", "4.4", "4.5", "4.6",
];

async fn add_evidence(learner: &Browser, enrolment: uuid::Uuid, title: &str, on: &str, criteria: &[&str]) -> String {
    let metadata = json!({"title": title, "method": "product", "occurred_on": on, "criteria": criteria,
                          "declaration": true, "description": format!("{title}: what I did.")});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{enrolment}/evidence"),
            api_evidence(metadata, vec![("e.pdf", pdf())]),
        )
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
                &json!({"criterion": criterion, "outcome": "met", "feedback": "Clear, from real work.", "confirmed": vacs()}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED, "{criterion}: {}", response.text().await.unwrap());
    }
}

/// Lee's unit complete: every criterion met over two occasions, signed off and countersigned.
async fn completed(app: &TestApp, cast: &Cast) -> String {
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let first = add_evidence(&learner, cast.enrolment, "Call logs", "2026-03-02", &CC20[..8]).await;
    meet(&assessor, &first, &CC20[..8]).await;
    let second = add_evidence(&learner, cast.enrolment, "Sales plan and targets", "2026-03-09", &CC20[8..]).await;
    meet(&assessor, &second, &CC20[8..]).await;
    let signed = assessor
        .post_json(&format!("/api/v1/enrolments/{}/sign-off", cast.enrolment), &json!({"declaration": true}))
        .await;
    assert_eq!(signed.status(), StatusCode::CREATED, "{}", signed.text().await.unwrap());
    let countersigned = learner
        .post_json(&format!("/api/v1/enrolments/{}/countersign", cast.enrolment), &json!({"declaration": true}))
        .await;
    assert!(countersigned.status().is_success(), "{}", countersigned.text().await.unwrap());
    first
}

/// The CSV's records (after the byte-order mark), each a list of cells.
fn records(csv: &str) -> Vec<Vec<String>> {
    let csv = csv.strip_prefix('\u{feff}').expect("a UTF-8 byte-order mark for spreadsheets");
    assert!(csv.ends_with("\r\n"), "RFC 4180 line ends");
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(csv.as_bytes());
    reader.records().map(|r| r.unwrap().iter().map(String::from).collect()).collect()
}

fn cell<'a>(records: &'a [Vec<String>], row: &[String], column: &str) -> &'a str {
    let index = records[0].iter().position(|c| c == column).unwrap_or_else(|| panic!("a {column} column"));
    let found = records.iter().find(|r| r == &row).unwrap();
    &found[index]
}

#[tokio::test]
async fn the_centres_progress_report_lists_each_enrolment_with_its_state_and_downloads_as_safe_csv() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let call_logs = completed(&app, &cast).await;
    // Sam, on another assessor's caseload, has one item waiting; Sam's name starts with "=".
    let sam = app.add_user(eportfolio::auth::Role::Learner, "Sam Waiting").await;
    sqlx::query("UPDATE users SET name = '=HYPERLINK(\"http://x\")' WHERE id = $1")
        .bind(sam.id)
        .execute(&app.pool)
        .await
        .unwrap();
    let other_assessor = app.add_user(eportfolio::auth::Role::Assessor, "Omar Other").await;
    let sam_enrolment = app.enrol(&sam, &other_assessor, Some(&cast.iqa)).await;
    add_evidence(&app.api_for(&sam).await, sam_enrolment, "Team huddle notes", "2026-03-03", &["1.1"]).await;
    // A learner at another centre.
    let far_learner = app.add_user_elsewhere("Far College", eportfolio::auth::Role::Learner, "Fay Faraway").await;
    let far_assessor = app.add_user_elsewhere("Far College", eportfolio::auth::Role::Assessor, "Fred Far").await;
    app.enrol(&far_learner, &far_assessor, None).await;

    let admin = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let pages = app.browser_for(&admin).await;
    let page = pages.page("/reports").await;
    assert!(page.contains("Lee Learner") && page.contains("=HYPERLINK"), "both learners are listed");
    assert!(!page.contains("Fay Faraway"), "another centre's learner never appears");
    assert!(page.contains("22 of 22 (100%)"), "{page}");
    assert!(page.contains("Signed off and countersigned"));
    assert!(
        page.contains("<label for=\"assessor\">Assessor</label>")
            && page.contains("<legend>Filter enrolments</legend>")
    );
    assert!(page.contains("href=\"/reports/progress.csv\""), "a Download CSV link");
    assert!(page.contains("<th scope=\"col\">Learner</th>"));

    let response = pages.get("/reports/progress.csv").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/csv; charset=utf-8; header=present");
    assert!(response.headers()[CONTENT_DISPOSITION].to_str().unwrap().starts_with("attachment; filename=\"progress-"));
    let csv = response.text().await.unwrap();
    let rows = records(&csv);
    assert_eq!(rows.len(), 3, "a header and one row per enrolment: {csv}");
    assert_eq!(&rows[0][..4], ["enrolment_id", "learner", "learner_email", "unit_code"]);
    assert!(!csv.contains("Fay Faraway"));
    let lee = rows.iter().find(|r| r[1] == "Lee Learner").unwrap().clone();
    assert_eq!(cell(&rows, &lee, "criteria_met"), "22");
    assert_eq!(cell(&rows, &lee, "criteria_total"), "22");
    assert_eq!(cell(&rows, &lee, "percent_met"), "100");
    assert_eq!(cell(&rows, &lee, "evidence_items"), "2");
    assert_eq!(cell(&rows, &lee, "items_awaiting_assessment"), "0");
    assert_eq!(cell(&rows, &lee, "sign_off_state"), "countersigned");
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(cell(&rows, &lee, "signed_off_on"), today);
    assert_eq!(cell(&rows, &lee, "countersigned_on"), today);
    assert_eq!(cell(&rows, &lee, "assessor"), "Ada Assessor");
    assert_eq!(cell(&rows, &lee, "iqa_sampled"), "no");
    assert!(!cell(&rows, &lee, "last_activity").is_empty());
    let sam_row = rows.iter().find(|r| r[1].contains("HYPERLINK")).unwrap().clone();
    assert_eq!(sam_row[1], "'=HYPERLINK(\"http://x\")", "a formula becomes text");
    assert_eq!(cell(&rows, &sam_row, "criteria_met"), "0");
    assert_eq!(cell(&rows, &sam_row, "items_awaiting_assessment"), "1");
    assert_eq!(cell(&rows, &sam_row, "oldest_waiting_since"), today);
    assert_eq!(cell(&rows, &sam_row, "sign_off_state"), "not_signed_off");
    assert_eq!(cell(&rows, &sam_row, "signed_off_on"), "");

    // Filters: by sign-off state, by assessor, by unit; the CSV link keeps them.
    let filtered = pages.page("/reports?state=not_signed_off").await;
    assert!(filtered.contains("=HYPERLINK") && !filtered.contains("Lee Learner"), "{filtered}");
    assert!(filtered.contains("href=\"/reports/progress.csv?state=not_signed_off\""));
    let by_assessor =
        pages.get(&format!("/reports/progress.csv?assessor={}", other_assessor.id)).await.text().await.unwrap();
    assert_eq!(records(&by_assessor).len(), 2);
    assert!(!by_assessor.contains("Lee Learner"));
    let by_unit = records(&pages.get("/reports/progress.csv?unit=CC20").await.text().await.unwrap()).len();
    assert_eq!(by_unit, 3);
    let wrong = pages.get("/reports?state=finished").await;
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let wrong = wrong.text().await.unwrap();
    assert!(wrong.contains("There is a problem") && wrong.contains("href=\"#state\""), "{wrong}");

    // The IQA reads the same through the API, as JSON or CSV.
    let iqa = app.api_for(&cast.iqa).await;
    let report = iqa.json("/api/v1/reports/progress").await;
    assert_eq!(report["count"], 2);
    let lee_json = report["items"].as_array().unwrap().iter().find(|r| r["learner"] == "Lee Learner").unwrap();
    assert_eq!(lee_json["criteria_met"], 22);
    assert_eq!(lee_json["sign_off_state"], "countersigned");
    assert_eq!(lee_json["enrolment_id"], cast.enrolment.to_string());
    let countersigned = iqa.json("/api/v1/reports/progress?state=countersigned").await;
    assert_eq!(countersigned["count"], 1);
    let as_csv = iqa.get_with("/api/v1/reports/progress", &[("accept", "text/csv")]).await;
    assert_eq!(as_csv.headers()[CONTENT_TYPE], "text/csv; charset=utf-8; header=present");
    assert_eq!(records(&as_csv.text().await.unwrap()).len(), 3);
    let by_path = iqa.get("/api/v1/reports/progress.csv?state=countersigned").await.text().await.unwrap();
    assert_eq!(records(&by_path).len(), 2);
    let refused = iqa.get("/api/v1/reports/progress?state=finished").await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.headers()[CONTENT_TYPE], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "state");

    // Once the IQA has sampled one of Lee's items, the report says so.
    let planned: Value =
        iqa.post_json("/api/v1/iqa/plan", &json!({"evidence_id": call_logs})).await.json().await.unwrap();
    let recorded = iqa
        .post_json(
            &format!("/api/v1/iqa/samples/{}/record", planned["id"].as_str().unwrap()),
            &json!({"outcome": "agree", "feedback": "Sound judgements, specific feedback."}),
        )
        .await;
    assert!(recorded.status().is_success(), "{}", recorded.text().await.unwrap());
    let report = iqa.json("/api/v1/reports/progress").await;
    let sampled: Vec<(&str, bool)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["learner"].as_str().unwrap(), r["iqa_sampled"].as_bool().unwrap()))
        .collect();
    assert!(sampled.contains(&("Lee Learner", true)) && sampled.iter().filter(|(_, s)| *s).count() == 1, "{sampled:?}");
}

#[tokio::test]
async fn verifiers_read_the_report_within_their_grant_and_assessors_and_learners_are_refused() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let verifier = app.api_for(&cast.verifier).await;
    let report = verifier.json("/api/v1/reports/progress").await;
    assert_eq!(report["count"], 1);
    assert_eq!(report["items"][0]["learner"], "Lee Learner");
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_progress_report'").await,
        1,
        "the verifier's view is recorded"
    );
    let page = app.browser_for(&cast.verifier).await.page("/reports").await;
    assert!(page.contains("Lee Learner"));

    for who in [&cast.assessor, &cast.learner] {
        let api = app.api_for(who).await;
        for path in ["/api/v1/reports/progress", "/api/v1/reports/progress.csv"] {
            let response = api.get(path).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/problem+json");
        }
        let pages = app.browser_for(who).await;
        assert_eq!(pages.get("/reports").await.status(), StatusCode::FORBIDDEN);
        assert_eq!(pages.get("/reports/progress.csv").await.status(), StatusCode::FORBIDDEN);
    }
}
