//! The tracking grid: criteria against evidence with each cell's decision, as a page, a CSV
//! download, JSON and a chart of criteria met over time; the same for everyone who may see the
//! portfolio (drafts for the learner only), nobody else, and every verifier view recorded.

use reqwest::StatusCode;
use serde_json::Value;
use uuid::Uuid;

use crate::common::{Browser, Cast, TestApp, pdf};

/// The decision form's confirmation that the evidence is valid, authentic, current and sufficient.
const CONFIRMED: [(&str, &str); 4] =
    [("confirmed", "valid"), ("confirmed", "authentic"), ("confirmed", "current"), ("confirmed", "sufficient")];

async fn upload(learner: &Browser, cast: &Cast, fields: &[(&str, &str)], files: Vec<(&str, Vec<u8>)>) -> Uuid {
    let response = learner.upload(&format!("/enrolments/{}/evidence", cast.enrolment), fields, files).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "upload of {:?}", fields[0]);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    location.trim_start_matches("/evidence/").split('?').next().unwrap().parse().unwrap()
}

async fn decide(assessor: &Browser, item: Uuid, judgements: &[(&str, &str, &str)]) {
    let path = format!("/evidence/{item}");
    assessor.page(&path).await;
    let mut fields: Vec<(String, String)> = Vec::new();
    for (criterion, outcome, feedback) in judgements {
        fields.push((format!("outcome-{criterion}"), outcome.to_string()));
        fields.push((format!("feedback-{criterion}"), feedback.to_string()));
    }
    let mut fields: Vec<(&str, &str)> = fields.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    fields.extend(CONFIRMED);
    let response = assessor.post_form(&format!("{path}/decisions"), &fields).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "decisions on {item}: {}", response.text().await.unwrap());
}

/// The learner's portfolio: two items assessed (three criteria met or not), one resubmitted after
/// "not yet" and waiting, one waiting whose title looks like a spreadsheet formula, and a draft.
struct Portfolio {
    huddle: Uuid,
    dashboard_file: String,
    figures: Uuid,
    answers_v1: Uuid,
    answers_v2: Uuid,
    formula: Uuid,
    draft: Uuid,
}

const FORMULA_TITLE: &str = "=HYPERLINK(\"http://evil.example\",\"click\")";

async fn build_portfolio(app: &TestApp, cast: &Cast) -> Portfolio {
    let learner = app.browser_for(&cast.learner).await;
    let assessor = app.browser_for(&cast.assessor).await;
    let huddle = upload(
        &learner,
        cast,
        &[
            ("title", "Team huddle log"),
            ("method", "product"),
            ("occurred_on", "2026-03-02"),
            ("criteria", "1.1"),
            ("where-1.1", "page 1"),
            ("criteria", "1.2"),
            ("declaration", "yes"),
            ("third_party_confirmed", "yes"),
        ],
        vec![("huddle.pdf", pdf())],
    )
    .await;
    let item: Value = app.api_for(&cast.learner).await.json(&format!("/api/v1/evidence/{huddle}")).await;
    let dashboard_file = item["files"][0]["id"].as_str().unwrap().to_string();
    decide(&assessor, huddle, &[("1.1", "met", ""), ("1.2", "not_yet", "Show how you set the team's targets.")]).await;

    let written = |title: &'static str, date: &'static str, criterion: &'static str| {
        vec![
            ("title", title),
            ("method", "reflective_account"),
            ("occurred_on", date),
            ("criteria", criterion),
            ("description", "Written account"),
            ("declaration", "yes"),
        ]
    };
    let figures = upload(&learner, cast, &written("Weekly sales figures", "2026-03-09", "2.1"), vec![]).await;
    decide(&assessor, figures, &[("2.1", "met", "")]).await;
    let answers_v1 = upload(&learner, cast, &written("Regulations answers", "2026-03-10", "1.7"), vec![]).await;
    decide(&assessor, answers_v1, &[("1.7", "not_yet", "Name the regulations.")]).await;
    let v1 = answers_v1.to_string();
    let mut again: Vec<(&str, &str)> = written("Regulations answers", "2026-03-16", "1.7");
    again.push(("previous_version", &v1));
    let answers_v2 = upload(&learner, cast, &again, vec![]).await;
    let formula = upload(&learner, cast, &written(FORMULA_TITLE, "2026-03-20", "3.1"), vec![]).await;
    let draft = upload(
        &learner,
        cast,
        &[
            ("title", "Coaching notes, unfinished"),
            ("method", "product"),
            ("occurred_on", "2026-03-25"),
            ("criteria", "4.1"),
            ("intent", "draft"),
        ],
        vec![],
    )
    .await;
    Portfolio { huddle, dashboard_file, figures, answers_v1, answers_v2, formula, draft }
}

fn cell_state(page: &str, item: Uuid, criterion: &str) -> String {
    let marker = format!("data-evidence=\"{item}\" data-criterion=\"{criterion}\" data-state=\"");
    let rest = page.split(&marker).nth(1).unwrap_or_else(|| panic!("no cell for {item} × {criterion}"));
    rest.split('"').next().unwrap().to_string()
}

fn parse_csv(body: &[u8]) -> (Vec<String>, Vec<Vec<String>>) {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").expect("a UTF-8 byte-order mark for spreadsheets");
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(body);
    let header = reader.headers().unwrap().iter().map(str::to_string).collect();
    let rows = reader.records().map(|r| r.unwrap().iter().map(str::to_string).collect()).collect();
    (header, rows)
}

fn csv_cell(header: &[String], rows: &[Vec<String>], column_starts: &str, criterion: &str) -> String {
    let column = header.iter().position(|h| h.starts_with(column_starts)).unwrap_or_else(|| panic!("{column_starts}"));
    let row = rows.iter().find(|r| r[1] == criterion).unwrap_or_else(|| panic!("row {criterion}"));
    row[column].clone()
}

#[tokio::test]
async fn a_learner_sees_each_criterion_against_each_item_with_its_decision() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let p = build_portfolio(&app, &cast).await;
    let learner = app.browser_for(&cast.learner).await;

    let portfolio = learner.page(&format!("/enrolments/{}", cast.enrolment)).await;
    let grid_path = format!("/enrolments/{}/tracking", cast.enrolment);
    assert!(portfolio.contains(&format!("href=\"{grid_path}\"")), "the portfolio links to the grid");

    let page = learner.page(&grid_path).await;
    assert_eq!(cell_state(&page, p.huddle, "1.1"), "met");
    assert_eq!(cell_state(&page, p.huddle, "1.2"), "not_yet");
    assert_eq!(cell_state(&page, p.huddle, "2.1"), "not_mapped");
    assert_eq!(cell_state(&page, p.figures, "2.1"), "met");
    assert_eq!(cell_state(&page, p.answers_v2, "1.7"), "awaiting");
    assert_eq!(cell_state(&page, p.formula, "3.1"), "awaiting");
    assert_eq!(cell_state(&page, p.draft, "4.1"), "draft");
    // The old version is not a column of its own; the newer one shows what it was judged.
    assert!(!page.contains(&format!("data-evidence=\"{}\"", p.answers_v1)));
    assert!(page.contains(&format!("replaces <a href=\"/evidence/{}\">version 1</a>", p.answers_v1)), "{page}");
    assert!(page.contains(&format!("<a href=\"/evidence/{}#decision-1.7\">Version 1</a>: Not yet met", p.answers_v1)));
    // Cells say their state in words and link to the decision, and to the page the learner pointed at.
    assert!(page.contains(&format!("href=\"/evidence/{}#decision-1.1\">Met</a>", p.huddle)));
    assert!(page.contains(&format!(
        "href=\"/evidence/{}/files/{}#page=1\">page 1 of huddle.pdf</a>",
        p.huddle, p.dashboard_file
    )));
    // Overall statuses come from the portfolio's progress: 1.7 waits on the new version.
    assert!(page.contains("data-criterion=\"1.1\" data-status=\"met\""));
    assert!(page.contains("data-criterion=\"1.2\" data-status=\"not_yet\""));
    assert!(page.contains("data-criterion=\"1.7\" data-status=\"submitted\""));
    assert!(page.contains("data-criterion=\"4.1\" data-status=\"not_started\""), "a draft starts nothing");
    // A real table a screen reader can walk, scrolling inside a focusable region on a phone.
    assert!(page.contains("<caption>") && page.contains("<th scope=\"row\"") && page.contains("<th scope=\"col\""));
    assert!(page.contains("role=\"region\"") && page.contains("tabindex=\"0\""));
    assert!(page.contains("Learning outcome 1:"));
    assert!(page.contains("<strong>2 of 22</strong> criteria met"));
    // The formula-like title is just text in the page.
    assert!(page.contains("=HYPERLINK(") && !page.contains("\"http://evil.example\""), "escaped in HTML");

    let print = learner.page(&format!("{grid_path}?print=1")).await;
    assert!(print.contains("print-view") && print.contains("Printed "));
    assert!(!print.contains("Printable view"), "the printable view leaves out the page's links");
    assert_eq!(cell_state(&print, p.huddle, "1.2"), "not_yet");
}

#[tokio::test]
async fn the_csv_download_has_a_column_per_item_and_neutralises_formulas() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    build_portfolio(&app, &cast).await;
    let learner = app.browser_for(&cast.learner).await;
    let response = learner.get(&format!("/enrolments/{}/tracking.csv", cast.enrolment)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment; filename=\"tracking-cc20-lee-learner-"), "{disposition}");
    let (header, rows) = parse_csv(&response.bytes().await.unwrap());

    assert_eq!(&header[..4], ["Learning outcome", "Criterion", "Criterion text", "Status"]);
    assert_eq!(header.len(), 4 + 5, "one column per item, the draft included, the old version not: {header:?}");
    assert_eq!(header[4], "Team huddle log (2026-03-02)");
    assert_eq!(header[6], "Regulations answers (2026-03-16) version 2");
    assert!(header[7].starts_with("'=HYPERLINK("), "a formula-like title is made text: {}", header[7]);
    assert!(!header.iter().any(|h| h.starts_with('=')));
    assert_eq!(rows.len(), 22, "one row per criterion of CC20");
    assert_eq!(rows[0][1], "1.1");
    assert!(rows[0][0].starts_with("1 "), "{}", rows[0][0]);
    assert_eq!(rows.iter().find(|r| r[1] == "4.6").unwrap()[0].chars().next(), Some('4'));

    assert_eq!(csv_cell(&header, &rows, "Team huddle log", "1.1"), "met");
    assert_eq!(csv_cell(&header, &rows, "Team huddle log", "1.2"), "not yet");
    assert_eq!(csv_cell(&header, &rows, "Team huddle log", "2.1"), "");
    assert_eq!(csv_cell(&header, &rows, "Weekly sales figures", "2.1"), "met");
    assert_eq!(csv_cell(&header, &rows, "Regulations answers", "1.7"), "awaiting");
    assert_eq!(csv_cell(&header, &rows, "'=HYPERLINK", "3.1"), "awaiting");
    assert_eq!(csv_cell(&header, &rows, "Coaching notes", "4.1"), "draft");
    let status = |criterion: &str| rows.iter().find(|r| r[1] == criterion).unwrap()[3].clone();
    assert_eq!(
        [status("1.1"), status("1.2"), status("1.7"), status("4.6")],
        ["Met", "Not yet met", "Awaiting assessment", "Not started"]
    );
}

#[tokio::test]
async fn the_progress_chart_steps_up_with_each_decision_that_meets_a_criterion() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let chart_path = format!("/enrolments/{}/progress.svg", cast.enrolment);
    let empty = learner.get(&chart_path).await.text().await.unwrap();
    assert_eq!(empty.matches("<circle").count(), 0);
    assert!(empty.contains("No criteria met yet out of 22."));

    build_portfolio(&app, &cast).await;
    let response = learner.get(&chart_path).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "image/svg+xml; charset=utf-8");
    let svg = response.text().await.unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.contains("role=\"img\"") && svg.contains("<title id=\"chart-title\">") && svg.contains("<desc"));
    // Three submissions: 1.1 met (1), 2.1 met (2), 1.7 not yet (still 2, no step).
    assert_eq!(svg.matches("<circle class=\"point\"").count(), 2, "{svg}");
    assert!(svg.contains(": 1 of 22 met</title>") && svg.contains(": 2 of 22 met</title>"));
    assert!(svg.contains("2 of 22 criteria met, in 2 steps"));
    assert_eq!(svg.matches(" V").count(), 2, "the step line rises twice");

    // The page holds the same chart and a table of the same points as its text alternative.
    let page = learner.page(&format!("/enrolments/{}/tracking", cast.enrolment)).await;
    assert_eq!(page.matches("<circle class=\"point\"").count(), 2);
    let table = page.split("class=\"table chart-data\"").nth(1).expect("a data table for the chart");
    let table = table.split("</table>").next().unwrap();
    let counts: Vec<&str> = table.split("</th><td>").skip(1).map(|rest| rest.split("</td>").next().unwrap()).collect();
    assert_eq!(counts, ["1", "2"]);
}

#[tokio::test]
async fn the_api_gives_the_same_grid_and_agrees_with_progress() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let p = build_portfolio(&app, &cast).await;
    let api = app.api_for(&cast.learner).await;
    let grid = api.json(&format!("/api/v1/enrolments/{}/tracking", cast.enrolment)).await;
    let progress = api.json(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await;
    assert_eq!(grid["met"], 2);
    assert_eq!(grid["met"], progress["met"]);
    let columns = grid["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 5);
    let answers = columns.iter().find(|c| c["evidence_id"] == p.answers_v2.to_string()).unwrap();
    assert_eq!(answers["version"], 2);
    assert_eq!(answers["earlier_versions"][0]["id"], p.answers_v1.to_string());
    let rows: Vec<&Value> =
        grid["outcomes"].as_array().unwrap().iter().flat_map(|o| o["criteria"].as_array().unwrap()).collect();
    assert_eq!(rows.len(), 22);
    for (row, expected) in rows.iter().zip(progress["criteria"].as_array().unwrap()) {
        assert_eq!((&row["number"], &row["status"]), (&expected["number"], &expected["status"]));
    }
    let cell = |criterion: &str, item: Uuid| {
        let row = rows.iter().find(|r| r["number"] == criterion).unwrap();
        row["cells"].as_array().unwrap().iter().find(|c| c["evidence_id"] == item.to_string()).unwrap().clone()
    };
    assert_eq!(cell("1.1", p.huddle)["state"], "met");
    assert!(cell("1.1", p.huddle)["decided_at"].is_string());
    assert_eq!(cell("1.2", p.huddle)["state"], "not_yet");
    assert_eq!(cell("1.7", p.answers_v2)["state"], "awaiting");
    assert_eq!(cell("1.7", p.answers_v2)["earlier"][0]["state"], "not_yet");
    assert_eq!(cell("3.1", p.formula)["state"], "awaiting");
    assert_eq!(cell("4.1", p.draft)["state"], "draft");
    assert_eq!(cell("4.1", p.huddle)["state"], "not_mapped");
    let points = grid["chart"]["points"].as_array().unwrap();
    assert_eq!(points.iter().map(|p| p["criteria_met"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2]);
}

#[tokio::test]
async fn another_learner_cannot_reach_the_grid_and_staff_never_see_drafts() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let p = build_portfolio(&app, &cast).await;
    let other = app.add_user(eportfolio::auth::Role::Learner, "Olive Other").await;
    app.enrol(&other, &cast.assessor, None).await;
    let intruder = app.browser_for(&other).await;
    for path in ["tracking", "tracking.csv", "progress.svg"] {
        let response = intruder.get(&format!("/enrolments/{}/{path}", cast.enrolment)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let api = app.api_for(&other).await;
    let response = api.get(&format!("/api/v1/enrolments/{}/tracking", cast.enrolment)).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()["content-type"], "application/problem+json");

    let assessor = app.browser_for(&cast.assessor).await;
    let page = assessor.page(&format!("/enrolments/{}/tracking", cast.enrolment)).await;
    assert_eq!(cell_state(&page, p.huddle, "1.1"), "met");
    assert!(!page.contains("Coaching notes, unfinished") && !page.contains(&p.draft.to_string()));
    let csv = assessor.get(&format!("/enrolments/{}/tracking.csv", cast.enrolment)).await.bytes().await.unwrap();
    let (header, _) = parse_csv(&csv);
    assert_eq!(header.len(), 4 + 4, "no draft column for the assessor: {header:?}");
}

#[tokio::test]
async fn a_verifier_reads_the_grid_and_each_view_is_audited() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let p = build_portfolio(&app, &cast).await;
    let audited = "SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_tracking_grid'";
    assert_eq!(app.count(audited).await, 0);
    let verifier = app.browser_for(&cast.verifier).await;
    let page = verifier.page(&format!("/enrolments/{}/tracking", cast.enrolment)).await;
    assert!(page.contains("This visit is recorded in the audit trail"));
    assert_eq!(cell_state(&page, p.figures, "2.1"), "met");
    assert!(!page.contains("Coaching notes, unfinished"));
    let response = verifier.get(&format!("/enrolments/{}/tracking.csv", cast.enrolment)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (header, rows) = parse_csv(&response.bytes().await.unwrap());
    assert_eq!(csv_cell(&header, &rows, "Weekly sales figures", "2.1"), "met");
    assert_eq!(app.count(audited).await, 2);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_tracking_grid' AND details->>'format' = 'csv'"
        )
        .await,
        1
    );
    let history = verifier.page(&format!("/enrolments/{}/history", cast.enrolment)).await;
    assert!(history.contains("External verifier viewed the tracking grid"));
}

/// The screen shows twenty items at a time, opening on the newest; the printable view, the CSV and
/// the API have them all; a page that is not a number is refused with a message.
#[tokio::test]
async fn the_grid_shows_twenty_items_a_page_and_the_printable_view_has_them_all() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    let mut items = Vec::new();
    for day in 1..=23 {
        let date = format!("2026-03-{day:02}");
        let title = format!("Call log {day}");
        let fields = [
            ("title", title.as_str()),
            ("method", "reflective_account"),
            ("occurred_on", date.as_str()),
            ("criteria", "1.1"),
            ("description", "Written account"),
            ("declaration", "yes"),
        ];
        items.push(upload(&learner, &cast, &fields, vec![]).await);
    }
    let grid_path = format!("/enrolments/{}/tracking", cast.enrolment);
    let shows = |page: &str, item: &Uuid| page.contains(&format!("data-evidence=\"{item}\" data-criterion=\"1.1\""));

    // Opens on the last page: the three newest, oldest on the left.
    let newest = learner.page(&grid_path).await;
    assert!(newest.contains("Items 21 to 23 of 23, oldest on the left (page 2 of 2)"), "{newest}");
    assert_eq!(items.iter().filter(|item| shows(&newest, item)).count(), 3);
    assert!(items[20..].iter().all(|item| shows(&newest, item)));
    assert!(newest.contains(&format!("href=\"{grid_path}?page=1\" rel=\"prev\">Earlier items")));
    assert!(!newest.contains("rel=\"next\""));
    assert_eq!(cell_state(&newest, items[22], "1.1"), "awaiting");
    assert!(newest.contains("23 evidence items"), "the count is of every item");

    let first = learner.page(&format!("{grid_path}?page=1")).await;
    assert!(first.contains("Items 1 to 20 of 23, oldest on the left (page 1 of 2)"));
    assert!(items[..20].iter().all(|item| shows(&first, item)));
    assert!(!shows(&first, &items[20]));
    assert!(first.contains(&format!("href=\"{grid_path}?page=2\" rel=\"next\">Later items")));
    assert!(!first.contains("rel=\"prev\""));
    // Column positions: the first page's head and every row hold twenty items and no more.
    assert_eq!(first.matches("class=\"evidence-col\"").count(), 20);
    assert_eq!(first.matches("class=\"grid-cell\"").count(), 20 * 22);

    // Beyond the last page is the last page, as in the evidence list.
    let beyond = learner.page(&format!("{grid_path}?page=9")).await;
    assert!(beyond.contains("Items 21 to 23 of 23"));

    let printed = learner.page(&format!("{grid_path}?print=1")).await;
    assert!(items.iter().all(|item| shows(&printed, item)), "the printable view has every item");
    assert!(!printed.contains("Earlier items"));

    let csv = learner.get(&format!("{grid_path}.csv")).await.bytes().await.unwrap();
    let (header, _) = parse_csv(&csv);
    assert_eq!(header.iter().filter(|h| h.starts_with("Call log")).count(), 23);
    let api: Value = learner.json(&format!("/api/v1/enrolments/{}/tracking", cast.enrolment)).await;
    assert_eq!(api["columns"].as_array().unwrap().len(), 23);

    for bad in ["0", "two", "-1"] {
        let response = learner.get(&format!("{grid_path}?page={bad}")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "page={bad}");
        let body = response.text().await.unwrap();
        assert!(body.contains("The page must be a whole number, from 1"), "{body}");
    }
}
