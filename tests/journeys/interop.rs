//! Interoperability: unit specifications out and in as our unit file and IMS CASE 1.0 JSON, and
//! evidence brought in from another e-portfolio as LEAP2A (Mahara's export, or our own).

use std::collections::HashSet;
use std::io::{Cursor, Write};

use eportfolio::auth::Role;
use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::{TestApp, TestUser, api_evidence, pdf};

const MAHARA: &str = include_str!("../fixtures/leap2a/mahara-export.xml");
const JOURNAL: &str = include_str!("../fixtures/leap2a/journal-only.xml");
const THIRD_PARTY_CASE: &str = include_str!("../fixtures/case/third-party.json");

/// A small unit of our own, with sufficiency rules, that no database has until it is imported.
const CUSTOM_UNIT: &str = r#"
code = "QX77"
reference = "Q/777/0077"
title = "Handle complaints in a contact centre"
awarding_body = "Example Awards"
level = 2
credits = 3
guided_learning_hours = 12
purpose = """
This unit is about receiving complaints \
and putting things right."""
assessment_guidance = "Evidence must come from real complaints."

[sufficiency]
min_occasions = 2
real_work_outcomes = [1]
real_work_methods = ["observation", "product"]

[[outcomes]]
number = 1
title = "Be able to receive complaints"

[[outcomes.criteria]]
number = "1.1"
text = "Listen to the customer's complaint without interrupting"
guidance = "A recorded call works well."

[[outcomes.criteria]]
number = "1.2"
text = "Summarise the complaint back to the customer"
guidance = ""

[[outcomes]]
number = 2
title = "Understand how complaints improve the service"

[[outcomes.criteria]]
number = "2.1"
text = "Explain how complaints are logged & analysed"
guidance = "A professional discussion."
"#;

/// A personal API token for `user`, for requests whose body is the file itself.
async fn token_for(app: &TestApp, user: &TestUser) -> String {
    let mut conn = app.pool.acquire().await.unwrap();
    eportfolio::auth::tokens::create(&mut conn, user.id, "interop").await.unwrap().token
}

/// Sends `body` as the whole request body with a Bearer token, as a script would.
async fn post_file(app: &TestApp, token: &str, path: &str, content_type: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn get_bytes(app: &TestApp, token: &str, path: &str) -> (StatusCode, String, Vec<u8>) {
    let response =
        reqwest::Client::new().get(format!("{}{path}", app.address)).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    let kind = response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, kind, response.bytes().await.unwrap().to_vec())
}

async fn unit_counts(app: &TestApp) -> (i64, i64, i64, i64) {
    (
        app.count("SELECT count(*) FROM units").await,
        app.count("SELECT count(*) FROM learning_outcomes").await,
        app.count("SELECT count(*) FROM criteria").await,
        app.count("SELECT count(*) FROM audit_events").await,
    )
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A ZIP with these members, compressed as Mahara compresses its exports.
fn zip_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in members {
        out.start_file(*name, options).unwrap();
        out.write_all(bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[tokio::test]
async fn anyone_signed_in_downloads_a_unit_in_both_formats_and_reimporting_either_changes_nothing() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let learner = token_for(&app, &cast.learner).await;
    let admin_token = token_for(&app, &admin).await;

    let (status, kind, unit_file) = get_bytes(&app, &learner, "/api/v1/units/CC20/unit-file").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("application/toml"), "{kind}");
    let text = String::from_utf8(unit_file.clone()).unwrap();
    assert!(text.contains("code = \"CC20\""), "{text}");
    assert!(text.contains("min_occasions = 2"), "the sufficiency rules travel: {text}");
    let (_, _, again) = get_bytes(&app, &learner, "/api/v1/units/CC20/unit-file").await;
    assert_eq!(again, unit_file, "the same unit gives the same bytes");

    let (status, kind, case) = get_bytes(&app, &learner, "/api/v1/units/CC20/case").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/json");
    let (_, _, case_again) = get_bytes(&app, &learner, "/api/v1/units/CC20/case").await;
    assert_eq!(case_again, case, "exporting twice gives byte-identical JSON");
    let package: Value = serde_json::from_slice(&case).unwrap();
    let unit = app.api_for(&cast.learner).await.json("/api/v1/units/CC20").await;
    let items = package["CFItems"].as_array().unwrap();
    assert_eq!(items.len(), 1 + 4 + 22, "the unit, its 4 outcomes and 22 criteria");
    let criterion = |code: &str| items.iter().find(|i| i["humanCodingScheme"] == code).unwrap().clone();
    let ac11 = criterion("1.1");
    assert_eq!(ac11["CFItemType"], "Assessment Criterion");
    assert_eq!(ac11["fullStatement"], unit["outcomes"][0]["criteria"][0]["text"]);
    let identifier = ac11["identifier"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(identifier).unwrap().get_version_num(), 5, "UUID v5 identifiers");
    assert_eq!(ac11["uri"], format!("urn:uuid:{identifier}"));
    let associations = package["CFAssociations"].as_array().unwrap();
    assert_eq!(associations.len(), 27, "each item is a child of one parent");
    assert!(associations.iter().all(|a| a["associationType"] == "isChildOf"));
    let parent_of = |id: &str| {
        associations.iter().find(|a| a["originNodeURI"]["identifier"] == id).unwrap()["destinationNodeURI"]["identifier"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let outcome = parent_of(identifier);
    let outcome_item = items.iter().find(|i| i["identifier"] == outcome.as_str()).unwrap();
    assert_eq!(outcome_item["CFItemType"], "Learning Outcome");
    assert_eq!(outcome_item["fullStatement"], unit["outcomes"][0]["title"]);
    let unit_item = parent_of(&outcome);
    assert_eq!(parent_of(&unit_item), package["CFDocument"]["identifier"].as_str().unwrap(), "unit → document");

    // Re-importing either export changes nothing, but the attempt is on record.
    let before = unit_counts(&app).await;
    let imported_at = app.count("SELECT extract(epoch FROM imported_at)::bigint FROM units WHERE code = 'CC20'").await;
    for (body, kind, format) in
        [(unit_file.clone(), "application/toml", "unit"), (case.clone(), "application/json", "case")]
    {
        let response = post_file(&app, &admin_token, "/api/v1/units/import", kind, body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let report: Value = response.json().await.unwrap();
        assert_eq!(report, json!({"code": "CC20", "outcome": "unchanged", "format": format}));
    }
    let after = unit_counts(&app).await;
    assert_eq!((after.0, after.1, after.2), (before.0, before.1, before.2));
    assert_eq!(after.3, before.3 + 2, "one audit event per import, nothing else");
    assert_eq!(
        app.count(
            "SELECT count(*) FROM audit_events WHERE action = 'unit.imported' AND details->>'outcome' = 'unchanged'"
        )
        .await,
        2
    );
    assert_eq!(
        app.count("SELECT extract(epoch FROM imported_at)::bigint FROM units WHERE code = 'CC20'").await,
        imported_at,
        "the stored unit is untouched"
    );
    let (_, _, case_after) = get_bytes(&app, &learner, "/api/v1/units/CC20/case").await;
    assert_eq!(case_after, case);

    // Importing is the administrators' work.
    let refused = post_file(&app, &learner, "/api/v1/units/import", "application/json", case.clone()).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // The administrators' units page links both downloads for every unit.
    let pages = app.browser_for(&admin).await;
    let page = pages.page("/admin/units").await;
    assert!(page.contains("href=\"/units/CC20/unit-file\""), "{page}");
    assert!(page.contains("href=\"/units/CC20/case\""), "{page}");
    let download = pages.get("/units/CC20/case").await;
    assert!(download.headers()["content-disposition"].to_str().unwrap().contains("CC20-case.json"));
    assert_eq!(download.bytes().await.unwrap().to_vec(), case);
}

#[tokio::test]
async fn a_unit_exported_from_one_centre_imports_into_a_fresh_database_as_the_same_unit() {
    let origin = TestApp::spawn().await;
    let admin = origin.add_user(Role::Admin, "Ada Admin").await;
    let token = token_for(&origin, &admin).await;
    let created = post_file(&origin, &token, "/api/v1/units/import", "application/toml", CUSTOM_UNIT.into()).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await.unwrap()["outcome"], "added");
    let original = origin.api_for(&admin).await.json("/api/v1/units/QX77").await;
    let (_, _, unit_file) = get_bytes(&origin, &token, "/api/v1/units/QX77/unit-file").await;
    let (_, _, case) = get_bytes(&origin, &token, "/api/v1/units/QX77/case").await;

    for (body, kind) in [(unit_file, "application/toml"), (case, "application/json")] {
        let fresh = TestApp::spawn().await;
        let admin = fresh.add_user(Role::Admin, "Ada Admin").await;
        let token = token_for(&fresh, &admin).await;
        let response = post_file(&fresh, &token, "/api/v1/units/import", kind, body.clone()).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{kind}");
        let copy = fresh.api_for(&admin).await.json("/api/v1/units/QX77").await;
        assert_eq!(copy, original, "same unit, outcomes, criteria, wording and sufficiency rules from {kind}");
        let again = post_file(&fresh, &token, "/api/v1/units/import", kind, body).await;
        assert_eq!(again.json::<Value>().await.unwrap()["outcome"], "unchanged");
    }
}

#[tokio::test]
async fn an_administrator_imports_a_third_party_case_package_and_malformed_ones_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let pages = app.browser_for(&admin).await;
    pages.page("/admin/units").await;
    let form = Form::new()
        .text("csrf_token", pages.csrf_token().unwrap())
        .text("format", "auto")
        .part("file", Part::bytes(THIRD_PARTY_CASE.as_bytes().to_vec()).file_name("csp-201.json"));
    let response = pages.post_multipart("/admin/units", form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("Unit CSP-201 imported"), "{page}");
    let unit = app.api_for(&admin).await.json("/api/v1/units/CSP-201").await;
    assert_eq!(unit["title"], "Deal with customers in a contact centre");
    assert_eq!(unit["awarding_body"], "Example Awarding Organisation");
    assert_eq!(unit["level"], 2);
    assert_eq!(unit["outcomes"][0]["title"], "Be able to greet customers and find out what they need");
    let numbers: Vec<&str> = unit["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["criteria"].as_array().unwrap().iter().map(|c| c["number"].as_str().unwrap()))
        .collect();
    assert_eq!(numbers, ["1.1", "1.2", "2.1"]);
    assert_eq!(unit["outcomes"][0]["criteria"][1]["guidance"], "Open and probing questions.");

    let token = token_for(&app, &admin).await;
    let before = unit_counts(&app).await;
    let doc = r#""CFDocument": {"identifier": "d", "title": "T", "creator": "B"}"#;
    let item = |id: &str, coding: &str| {
        format!(r#"{{"identifier": "{id}", "humanCodingScheme": "{coding}", "fullStatement": "Statement {id}"}}"#)
    };
    let child = |a: &str, b: &str| {
        format!(
            r#"{{"identifier": "{a}-{b}", "associationType": "isChildOf", "originNodeURI": {{"identifier": "{a}"}},
                "destinationNodeURI": {{"identifier": "{b}"}}}}"#
        )
    };
    let package = |items: Vec<String>, links: Vec<String>| {
        format!(r#"{{{doc}, "CFItems": [{}], "CFAssociations": [{}]}}"#, items.join(","), links.join(","))
    };
    let many: Vec<String> = (0..2001).map(|n| item(&format!("i{n}"), "1.1")).collect();
    let malformed = [
        ("{\"CFDocument\": ".to_string(), "not valid JSON"),
        (r#"{"CFItems": []}"#.to_string(), "no CFDocument"),
        (
            package(
                vec![item("u", "ZZ1"), item("o", "1"), item("c", "1.1")],
                vec![child("u", "c"), child("o", "u"), child("c", "o")],
            ),
            "cycle",
        ),
        (
            package(vec![item("u", "ZZ1")], vec![child("u", "d"), child("ghost", "u")]),
            "starts from ghost, which is not an item in the package",
        ),
        (package(vec![item("u", "ZZ1")], vec![child("u", "nowhere")]), "points to nowhere"),
        (
            package(
                vec![item("u", "ZZ1"), item("o", "1"), item("c", "1.1"), item("c2", "1.2")],
                vec![child("u", "d"), child("o", "u"), child("c", "o")],
            ),
            "criterion 1.2 (c2) belongs to no learning outcome",
        ),
        (package(many, vec![]), "more than the 2000 items"),
    ];
    for (body, problem) in malformed {
        let response = post_file(&app, &token, "/api/v1/units/import", "application/json", body.into_bytes()).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        let details: Value = response.json().await.unwrap();
        assert_eq!(details["errors"][0]["field"], "file");
        let message = details["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(problem), "expected {problem:?} in {message:?}");
    }
    let wrong_format =
        post_file(&app, &token, "/api/v1/units/import?format=xml", "application/json", THIRD_PARTY_CASE.into()).await;
    assert_eq!(wrong_format.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(unit_counts(&app).await, before, "nothing stored, nothing audited");

    // On the page the problem is in the error summary, linked to the file field.
    pages.page("/admin/units").await;
    let form = Form::new()
        .text("csrf_token", pages.csrf_token().unwrap())
        .text("format", "case")
        .part("file", Part::bytes(br#"{"CFItems": []}"#.to_vec()).file_name("broken.json"));
    let response = pages.post_multipart("/admin/units", form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("<a href=\"#file\">the package has no CFDocument"), "{page}");
    assert!(page.contains("id=\"file-error\""), "{page}");
    assert_eq!(unit_counts(&app).await, before);
}

#[tokio::test]
async fn the_command_line_exports_and_imports_units_in_both_formats() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let token = token_for(&app, &admin).await;
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eportfolio"))
            .env("DATABASE_URL", &app.database_url)
            .env("EPORTFOLIO_DATA_DIR", &app.data_dir)
            .args(args)
            .output()
            .unwrap()
    };
    let help = run(&["unit", "export", "--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--format"));

    let case_path = dir.path().join("cc20.json");
    let exported = run(&["unit", "export", "CC20", "--format", "case", "--out", case_path.to_str().unwrap()]);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    let (_, _, served) = get_bytes(&app, &token, "/api/v1/units/CC20/case").await;
    assert_eq!(std::fs::read(&case_path).unwrap(), served, "the command line writes what the API serves");
    let toml = run(&["unit", "export", "cc20"]);
    assert!(toml.status.success());
    assert!(String::from_utf8_lossy(&toml.stdout).contains("reference = \"D/503/0397\""));

    let before = unit_counts(&app).await;
    let imported = run(&["unit", "import", case_path.to_str().unwrap()]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert_eq!(String::from_utf8_lossy(&imported.stdout).trim(), "unit CC20: unchanged (IMS CASE package)");
    let after = unit_counts(&app).await;
    assert_eq!((after.0, after.1, after.2), (before.0, before.1, before.2));

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, r#"{"CFDocument": {"identifier": "d"}, "CFItems": [{"identifier": "x"}]}"#).unwrap();
    let refused = run(&["unit", "import", broken.to_str().unwrap(), "--format", "case"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("item x is not linked to the CFDocument"), "{stderr}");
    let missing = run(&["unit", "export", "NOPE"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("unit not found"));
    assert_eq!(unit_counts(&app).await.2, before.2);
}

#[tokio::test]
async fn a_learner_brings_their_leap2a_export_into_another_portfolio_with_files_and_mappings() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let api = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "March sales dashboard", "method": "product", "occurred_on": "2026-03-17",
                          "criteria": ["2.1", "2.2"], "declaration": true, "description": "Conversion by adviser"});
    let created = api
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("dashboard.pdf", pdf())]),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let (status, _, package) = get_bytes(
        &app,
        &token_for(&app, &cast.learner).await,
        &format!("/api/v1/enrolments/{}/export/leap2a", cast.enrolment),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    // Another learner's portfolio on the same unit takes the export in.
    let newcomer = app.add_user(Role::Learner, "Nia Newcomer").await;
    let enrolment = app.enrol(&newcomer, &cast.assessor, None).await;
    let token = token_for(&app, &newcomer).await;
    let path = format!("/api/v1/enrolments/{enrolment}/imports/leap2a");
    let response = post_file(&app, &token, &path, "application/zip", package.clone()).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let summary: Value = response.json().await.unwrap();
    let imported = summary["imported"].as_array().unwrap();
    assert_eq!(imported.len(), 1, "{summary}");
    assert_eq!(imported[0]["title"], "March sales dashboard");
    assert_eq!(imported[0]["criteria"], json!(["2.1", "2.2"]));
    assert_eq!(imported[0]["files"][0]["sha256"], sha256(&pdf()));
    assert_eq!(summary["source_feed"], format!("urn:uuid:{}", cast.enrolment));

    let mine = app.api_for(&newcomer).await;
    let item = mine.json(&format!("/api/v1/evidence/{}", imported[0]["id"].as_str().unwrap())).await;
    assert_eq!(item["status"], "draft");
    assert_eq!(item["description"], "Conversion by adviser");
    assert_eq!(item["occurred_on"], "2026-03-17");
    assert_eq!(item["criteria"], json!(["2.1", "2.2"]));
    assert_eq!(item["files"][0]["name"], "dashboard.pdf");
    let file = mine
        .get(&format!(
            "/api/v1/evidence/{}/files/{}",
            item["id"].as_str().unwrap(),
            item["files"][0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(sha256(&file.bytes().await.unwrap()), sha256(&pdf()), "the file arrives byte for byte");

    // Importing the same package again adds nothing.
    let items_before = app.count("SELECT count(*) FROM evidence_items").await;
    let again = post_file(&app, &token, &path, "application/zip", package).await;
    assert_eq!(again.status(), StatusCode::OK);
    let summary: Value = again.json().await.unwrap();
    assert_eq!(summary["imported"], json!([]));
    assert_eq!(summary["already_imported"], 1);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, items_before);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'evidence.imported'").await, 2);
}

#[tokio::test]
async fn a_learner_imports_a_mahara_export_from_their_portfolio_page_and_their_assessor_cannot_duplicate_it() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let package = zip_of(&[("leap2a.xml", MAHARA.as_bytes()), ("files/101-call-notes.pdf", &pdf())]);
    let pages = app.browser_for(&cast.learner).await;
    let portfolio = pages.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(portfolio.contains("Import from another e-portfolio (LEAP2A)"), "{portfolio}");
    let form_page = pages.page(&format!("/enrolments/{}/imports/leap2a", cast.enrolment)).await;
    assert!(form_page.contains("<label for=\"file\">"), "{form_page}");
    let form = Form::new()
        .text("csrf_token", pages.csrf_token().unwrap())
        .part("file", Part::bytes(package.clone()).file_name("mahara-export.zip").mime_str("application/zip").unwrap());
    let response = pages.post_multipart(&format!("/enrolments/{}/imports/leap2a", cast.enrolment), form).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("2 evidence items imported"), "{page}");
    assert!(page.contains("entries that are not evidence"), "{page}");

    let ids: Vec<String> =
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT evidence_id FROM evidence_imports ORDER BY source_entry")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect();
    assert_eq!(ids.len(), 2);
    let learner_api = app.api_for(&cast.learner).await;
    let notes = learner_api.json(&format!("/api/v1/evidence/{}", ids[0])).await;
    assert_eq!(notes["title"], "Call notes: broadband upgrade campaign");
    assert_eq!(notes["status"], "draft");
    assert_eq!(notes["method"], "product");
    assert_eq!(notes["occurred_on"], "2026-03-18");
    assert_eq!(notes["occurred_until"], "2026-03-19");
    assert_eq!(notes["criteria"], json!(["1.2"]), "only the ability whose code is one of this unit's criteria");
    assert!(notes["description"].as_str().unwrap().contains("what they used the connection for & matched"), "{notes}");
    assert_eq!(notes["files"][0]["name"], "call-notes.pdf");
    assert_eq!(notes["files"][0]["sha256"], sha256(&pdf()));
    assert!(page.contains(&format!("href=\"/evidence/{}\"", ids[0])), "the summary links each item");
    let reflection = learner_api.json(&format!("/api/v1/evidence/{}", ids[1])).await;
    assert_eq!(reflection["method"], "reflective_account");
    assert_eq!(reflection["criteria"], json!([]));
    assert!(reflection["description"].as_str().unwrap().starts_with("I ran the team huddle"), "{reflection}");

    // The assessor brings the same export: nothing is created twice.
    let assessor = token_for(&app, &cast.assessor).await;
    let response = post_file(
        &app,
        &assessor,
        &format!("/api/v1/enrolments/{}/imports/leap2a", cast.enrolment),
        "application/zip",
        package,
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["already_imported"], 2);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 2);

    // A bare leap2a.xml with no files, sent by the assessor, lands as the learner's draft.
    let response = post_file(
        &app,
        &assessor,
        &format!("/api/v1/enrolments/{}/imports/leap2a", cast.enrolment),
        "application/xml",
        JOURNAL.into(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let summary: Value = response.json().await.unwrap();
    let journal =
        learner_api.json(&format!("/api/v1/evidence/{}", summary["imported"][0]["id"].as_str().unwrap())).await;
    assert_eq!(journal["occurred_on"], "2026-03-28");
    assert_eq!(journal["description"], "Conversion was 18% on Tuesday & 11% on Friday; Friday's list was older leads.");
    let recorded: Value = sqlx::query_scalar(
        "SELECT details FROM audit_events WHERE action = 'evidence.imported' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded["source_feed"], "urn:example:journal:sam-seller");
}

#[tokio::test]
async fn hostile_or_broken_leap2a_packages_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn_with(|config| config.max_upload = 1024 * 1024).await;
    let cast = app.cast().await;
    let token = token_for(&app, &cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/imports/leap2a", cast.enrolment);
    let feed = |enclosure: &str| {
        format!(
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:leap2="http://terms.leapspecs.org/">
                 <id>urn:x</id><entry><id>urn:x:1</id><title>Call log</title><rdf:type rdf:resource="leap2:resource"/>
                 <link rel="enclosure" href="{enclosure}"/></entry></feed>"#
        )
    };
    let zeros = vec![0u8; 3 * 1024 * 1024];
    let cases: Vec<(&str, &str, Vec<u8>, StatusCode, &str)> = vec![
        (
            "traversal",
            "application/zip",
            zip_of(&[("leap2a.xml", feed("files/a.pdf").as_bytes()), ("../../evil.pdf", &pdf())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "points outside the package",
        ),
        (
            "bomb",
            "application/zip",
            zip_of(&[("leap2a.xml", feed("files/big.pdf").as_bytes()), ("files/big.pdf", &zeros)]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "more than 1 MiB",
        ),
        (
            "missing file",
            "application/zip",
            zip_of(&[("leap2a.xml", feed("files/gone.pdf").as_bytes())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "encloses the file files/gone.pdf, which is not in the package",
        ),
        (
            "no feed",
            "application/zip",
            zip_of(&[("files/a.pdf", &pdf())]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "no leap2a.xml",
        ),
        (
            "bare with files",
            "application/xml",
            feed("files/a.pdf").into_bytes(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "a bare leap2a.xml carries no files",
        ),
        (
            "malformed",
            "application/xml",
            b"<feed xmlns=\"http://www.w3.org/2005/Atom\"><entry></feed>".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not well-formed XML",
        ),
        (
            "wrong namespace",
            "application/xml",
            b"<feed xmlns=\"http://purl.org/rss/1.0/\"><id>x</id></feed>".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "not Atom's",
        ),
        (
            "refused type",
            "application/zip",
            zip_of(&[
                ("leap2a.xml", feed("files/tool.exe").as_bytes()),
                ("files/tool.exe", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00this program"),
            ]),
            StatusCode::UNPROCESSABLE_ENTITY,
            "The entry \"Call log\"",
        ),
        (
            "not a package",
            "application/octet-stream",
            b"%PDF-1.4 not a package".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "neither a ZIP package nor a leap2a.xml",
        ),
        (
            "oversize upload",
            "application/zip",
            vec![b'P'; 2 * 1024 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the 1 MiB",
        ),
    ];
    for (name, kind, body, status, problem) in cases {
        let response = post_file(&app, &token, &path, kind, body).await;
        assert_eq!(response.status(), status, "{name}");
        let details: Value = response.json().await.unwrap();
        let text = match details["errors"][0]["message"].as_str() {
            Some(message) => message.to_string(),
            None => details["detail"].as_str().unwrap_or_default().to_string(),
        };
        assert!(text.contains(problem), "{name}: expected {problem:?} in {text}");
    }
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM evidence_imports").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action LIKE 'evidence.%'").await, 0);
    let left: Vec<_> = app.stored_files();
    assert!(left.is_empty(), "no stored or unpacked files are left behind: {left:?}");

    // Only the learner and their assessor may import into the portfolio.
    let other = app.add_user(Role::Learner, "Olly Other").await;
    let package = JOURNAL.as_bytes().to_vec();
    let response = post_file(&app, &token_for(&app, &other).await, &path, "application/xml", package.clone()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = post_file(&app, &token_for(&app, &cast.iqa).await, &path, "application/xml", package).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
}

/// An element of `leap2a.xml` as Mahara's SimpleXML reads it: namespace URI and local name,
/// attributes by (namespace URI, local name), its text and its children.
#[derive(Debug, Default, Clone)]
struct Node {
    ns: String,
    name: String,
    attributes: Vec<(String, String, String)>,
    /// `xmlns` declarations on this element, as (prefix, URI); the default namespace has "".
    declarations: Vec<(String, String)>,
    text: String,
    children: Vec<Node>,
}

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";
const RDF_NS: &str = "http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const LEAP2_NS: &str = "http://terms.leapspecs.org/";
const MAHARA_NS: &str = "http://wiki.mahara.org/Developer_Area/Import%2F%2FExport/LEAP_Extensions#";

impl Node {
    fn attribute(&self, ns: &str, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, l, _)| n == ns && l == name).map(|(_, _, v)| v.as_str())
    }
    fn all<'a>(&'a self, ns: &'a str, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.ns == ns && c.name == name)
    }
    fn one(&self, ns: &str, name: &str) -> &Node {
        let found: Vec<&Node> = self.children.iter().filter(|c| c.ns == ns && c.name == name).collect();
        assert_eq!(found.len(), 1, "<{name}> once in <{}> {:?}", self.name, self.text_of(ATOM_NS, "id"));
        found[0]
    }
    fn text_of(&self, ns: &str, name: &str) -> Option<String> {
        self.all(ns, name).next().map(|n| n.text.trim().to_string())
    }
    fn links(&self, rel: &str) -> Vec<&Node> {
        self.all(ATOM_NS, "link").filter(|l| l.attribute("", "rel") == Some(rel)).collect()
    }
    fn hrefs(&self, rel: &str) -> Vec<String> {
        self.links(rel).iter().map(|l| l.attribute("", "href").unwrap().to_string()).collect()
    }
    fn rdf_type(&self) -> String {
        self.one(RDF_NS, "type").attribute(RDF_NS, "resource").unwrap_or_default().to_string()
    }
    fn id(&self) -> String {
        self.text_of(ATOM_NS, "id").unwrap_or_default()
    }
}

/// Parses the whole feed, resolving namespaces as a namespace-aware reader (libxml) does.
fn parse_feed(xml: &str) -> Node {
    use quick_xml::events::Event as X;
    use quick_xml::name::ResolveResult;
    let mut reader = quick_xml::NsReader::from_str(xml);
    reader.config_mut().expand_empty_elements = true;
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let (ns, event) = reader.read_resolved_event().expect("leap2a.xml is well-formed XML");
        let ns = match ns {
            ResolveResult::Bound(n) => String::from_utf8(n.as_ref().to_vec()).unwrap(),
            _ => String::new(),
        };
        match event {
            X::Start(e) => {
                let mut node =
                    Node { ns, name: String::from_utf8(e.local_name().as_ref().to_vec()).unwrap(), ..Node::default() };
                for a in e.attributes() {
                    let a = a.unwrap();
                    let value = a.normalized_value(quick_xml::XmlVersion::Implicit1_0).unwrap().into_owned();
                    let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
                    if key == "xmlns" || key.starts_with("xmlns:") {
                        node.declarations.push((key.trim_start_matches("xmlns").trim_start_matches(':').into(), value));
                        continue;
                    }
                    let (attr_ns, local) = reader.resolver().resolve_attribute(a.key);
                    let attr_ns = match attr_ns {
                        ResolveResult::Bound(n) => String::from_utf8(n.as_ref().to_vec()).unwrap(),
                        _ => String::new(),
                    };
                    node.attributes.push((attr_ns, String::from_utf8(local.as_ref().to_vec()).unwrap(), value));
                }
                stack.push(node);
            }
            X::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().unwrap().children.push(done);
            }
            X::Text(t) => stack.last_mut().unwrap().text.push_str(&t.xml10_content().unwrap()),
            X::GeneralRef(r) => {
                let name = r.decode().unwrap().into_owned();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&name).expect("a predefined entity").to_string(),
                };
                stack.last_mut().unwrap().text.push_str(&resolved);
            }
            X::Eof => break,
            _ => {}
        }
    }
    let mut document = stack.pop().unwrap();
    assert_eq!(document.children.len(), 1, "one root element");
    document.children.pop().unwrap()
}

/// PHP's `urldecode`, which Mahara applies to an enclosure's href before opening the file.
fn php_urldecode(href: &str) -> String {
    let bytes = href.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+' {
            out.push(b' ');
        } else if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            out.push(u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap());
            i += 2;
        } else {
            out.push(bytes[i]);
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn zip_members(package: &[u8]) -> std::collections::HashMap<String, Vec<u8>> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(Cursor::new(package.to_vec())).expect("the package is a ZIP");
    let mut members = std::collections::HashMap::new();
    for index in 0..archive.len() {
        let mut member = archive.by_index(index).unwrap();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).unwrap();
        members.insert(member.name().unwrap().to_string(), bytes);
    }
    members
}

/// Does PHP's `strtotime` take this date? Mahara passes every `updated`/`published` to it; an
/// RFC 3339 date always parses.
fn rfc3339(text: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(text).is_ok()
}

#[tokio::test]
async fn a_learners_leap2a_export_meets_every_rule_of_maharas_importer() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Monday call log", "method": "product", "occurred_on": "2026-03-02",
                          "occurred_until": "2026-03-03", "criteria": ["1.1", "1.2"], "declaration": true,
                          "third_party_confirmed": true,
                          "description": "Calls I made to new customers & what they needed."});
    let created = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("call log.pdf", pdf()), ("call.wav", crate::common::wav())]),
        )
        .await;
    let status = created.status();
    let created: Value = created.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let item = created["id"].as_str().unwrap().to_string();
    let assessor = app.api_for(&cast.assessor).await;
    let mut met = json!({"criterion": "1.1", "outcome": "met", "feedback": "Clear call log from real work."});
    met["confirmed"] = crate::common::vacs();
    for decision in [met, json!({"criterion": "1.2", "outcome": "not_yet", "feedback": "Show the script."})] {
        let response = assessor.post_json(&format!("/api/v1/evidence/{item}/decisions"), &decision).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    }
    let (status, kind, package) = get_bytes(
        &app,
        &token_for(&app, &cast.learner).await,
        &format!("/api/v1/enrolments/{}/export/leap2a", cast.enrolment),
    )
    .await;
    assert_eq!((status, kind.as_str()), (StatusCode::OK, "application/zip"));
    let members = zip_members(&package);

    // PluginImportLeap::find_file: the feed is leap.xml, leap2.xml or leap2a.xml at the top of
    // the unpacked ZIP.
    let xml = String::from_utf8(members.get("leap2a.xml").expect("leap2a.xml at the root").clone()).unwrap();
    // read_leap2a_xml_file: simplexml_load_file refuses a file that is not well-formed.
    let feed = parse_feed(&xml);
    assert_eq!((feed.ns.as_str(), feed.name.as_str()), (ATOM_NS, "feed"));
    let declared = |prefix: &str| feed.declarations.iter().find(|(p, _)| p == prefix).map(|(_, u)| u.as_str());
    // detect_leap2a_namespace runs the XPath `//leap2:version` with the document's own
    // prefixes, so the LEAP2 namespace must be bound to the prefix `leap2` on the root …
    assert_eq!(declared("leap2"), Some(LEAP2_NS));
    // … and its text must be one of $supportedleap2aversions, or the import fails.
    assert_eq!(feed.text_of(LEAP2_NS, "version").as_deref(), Some("http://www.leapspecs.org/2010-07/2A/"));
    // ensure_document_valid: Atom, RDF, LEAP2 and NS_CATEGORIES (with its trailing slash)
    // declared; registerXpathNamespaces reads rdf:type and mahara:* under those exact URIs.
    assert_eq!(declared(""), Some(ATOM_NS));
    assert_eq!(declared("rdf"), Some(RDF_NS));
    assert_eq!(declared("categories"), Some("http://wiki.leapspecs.org/2A/categories/"));
    assert_eq!(declared("mahara"), Some(MAHARA_NS));
    // Atom (RFC 4287 §4.1.1), which the importer's entry lookups assume: id, title, updated.
    assert_eq!(feed.text_of(ATOM_NS, "id"), Some(format!("urn:uuid:{}", cast.enrolment)));
    assert!(feed.text_of(ATOM_NS, "title").unwrap().contains("Lee Learner"));
    assert!(rfc3339(&feed.text_of(ATOM_NS, "updated").unwrap()));

    // LeapImportInternal::add_import_entry_request_author_data throws without <author><name>;
    // create_strategy_listing takes <author><uri> as the person entry when an entry has that id.
    let author = feed.one(ATOM_NS, "author");
    assert_eq!(author.text_of(ATOM_NS, "name").as_deref(), Some("Lee Learner"));
    let person_id = author.text_of(ATOM_NS, "uri").expect("the author names their person entry");
    let entries: Vec<&Node> = feed.all(ATOM_NS, "entry").collect();
    let by_id = |id: &str| entries.iter().copied().find(|e| e.id() == id);
    let person = by_id(&person_id).expect("the person entry is in the feed");
    assert_eq!(person.rdf_type(), "leap2:person");
    let self_category = person.all(ATOM_NS, "category").any(|c| {
        c.attribute("", "scheme") == Some("categories:person_type#") && c.attribute("", "term") == Some("Self")
    });
    assert!(self_category, "PluginImportLeap's fallback finds the person by person_type#Self");
    // LeapImportInternal::get_namefields: the profile's first and last names come from these;
    // import_namedata writes them over the account's, so both must be there.
    let persondata: Vec<(String, String)> = person
        .all(LEAP2_NS, "persondata")
        .map(|p| (p.attribute(LEAP2_NS, "field").expect("leap2:field on every persondata").to_string(), p.text.clone()))
        .collect();
    for field in [("legal_given_name", "Lee"), ("legal_family_name", "Learner"), ("full_name", "Lee Learner")] {
        assert!(persondata.contains(&(field.0.to_string(), field.1.to_string())), "{persondata:?}");
    }
    // import_persondata_id throws on field="id" without a service.
    assert!(persondata.iter().all(|(field, _)| field != "id"));
    // A non-empty person content becomes the Mahara account's introduction: it stays empty.
    assert_eq!(person.text_of(ATOM_NS, "content").as_deref(), Some(""));

    // Every entry: an id unique in the feed that get_entry_by_id's XPath can quote (no '), a
    // title, an updated date for strtotime, content whose type get_entry_content accepts (it
    // throws SystemException on any other), and an rdf:type in the CURIE form is_rdf_type
    // matches (`leap2:<type>`).
    let mut seen = HashSet::new();
    for entry in &entries {
        let id = entry.id();
        assert!(!id.is_empty() && !id.contains('\'') && seen.insert(id.clone()), "{id}");
        assert!(!entry.text_of(ATOM_NS, "title").unwrap_or_default().is_empty(), "{id} has a title");
        assert!(rfc3339(&entry.text_of(ATOM_NS, "updated").unwrap_or_default()), "{id}");
        let content = entry.one(ATOM_NS, "content");
        assert!(matches!(content.attribute("", "type"), None | Some("text" | "html" | "xhtml")), "{id}");
        assert!(entry.rdf_type().starts_with("leap2:"), "{id}");
        // is_correct_category_scheme matches `categories:<scheme>#` with the declared prefix.
        for category in entry.all(ATOM_NS, "category") {
            if let Some(scheme) = category.attribute("", "scheme") {
                assert!(scheme.starts_with("categories:") && scheme.ends_with('#'), "{id}: {scheme}");
            }
        }
        // get_leap_dates reads leap2:date only with a leap2:point.
        for date in entry.all(LEAP2_NS, "date") {
            assert!(matches!(date.attribute(LEAP2_NS, "point"), Some("start" | "end" | "target")), "{id}");
        }
    }

    // LeapImportFile::is_file: a resource with exactly one enclosure that names no entry is a
    // file; create_file opens urldecode(href) under the directory of leap2a.xml and names the
    // Mahara file after the entry's title, typed by the enclosure's type.
    let evidence = by_id(&format!("portfolio:resource/{item}")).expect("the evidence entry");
    let file_entries: Vec<&Node> =
        evidence.hrefs("related").iter().map(|id| by_id(id).expect("a file entry")).collect();
    assert_eq!(file_entries.len(), 2, "LeapImportBlog::setup_relationships attaches each related file");
    let mut enclosed = HashSet::new();
    for (file, (name, bytes, mime)) in file_entries
        .iter()
        .zip([("call log.pdf", pdf(), "application/pdf"), ("call.wav", crate::common::wav(), "audio/")])
    {
        assert_eq!(file.rdf_type(), "leap2:resource");
        assert_eq!(file.text_of(ATOM_NS, "title").as_deref(), Some(name));
        let enclosures = file.links("enclosure");
        assert_eq!(enclosures.len(), 1, "exactly one enclosure, or Mahara does not see a file");
        assert!(file.one(ATOM_NS, "content").attribute("", "src").is_none());
        let href = enclosures[0].attribute("", "href").unwrap();
        assert!(by_id(href).is_none(), "the enclosure is a path, not an entry");
        let path = php_urldecode(href);
        assert_eq!(path, href, "urldecode leaves the path as it is in the ZIP");
        assert!(path.starts_with("files/"), "{path}");
        assert_eq!(sha256(members.get(&path).expect("the enclosed file is in the ZIP")), sha256(&bytes), "{path}");
        assert!(enclosures[0].attribute("", "type").unwrap().starts_with(mime), "{name}");
        enclosed.insert(path);
    }
    // The Mahara exporter's layout: leap2a.xml and files/, nothing else, every file enclosed.
    let packaged: HashSet<String> = members.keys().filter(|m| *m != "leap2a.xml").cloned().collect();
    assert_eq!(packaged, enclosed);

    // The evidence entry has no enclosure of its own (one would make it a second copy of the
    // file in LeapImportFile, and several would be re-created by create_linked_file), so the
    // blog plugin's catch-all keeps it as a journal post with its description and dates.
    assert_eq!(evidence.rdf_type(), "leap2:resource");
    assert!(evidence.links("enclosure").is_empty());
    assert_eq!(evidence.text_of(ATOM_NS, "title").as_deref(), Some("Monday call log"));
    assert_eq!(
        evidence.text_of(ATOM_NS, "content").as_deref(),
        Some("Calls I made to new customers & what they needed.")
    );
    let dates: Vec<(Option<&str>, String)> =
        evidence.all(LEAP2_NS, "date").map(|d| (d.attribute(LEAP2_NS, "point"), d.text.clone())).collect();
    assert_eq!(dates, vec![(Some("start"), "2026-03-02".into()), (Some("end"), "2026-03-03".into())]);
    // Criteria: each an ability the evidence supports, which names the evidence back.
    let abilities: Vec<&&Node> = entries.iter().filter(|e| e.rdf_type() == "leap2:ability").collect();
    assert_eq!(abilities.len(), 22, "one ability per CC20 criterion");
    let supports = evidence.hrefs("leap2:supports");
    assert_eq!(supports.len(), 2);
    for href in &supports {
        let ability = by_id(href).expect("an ability in the feed");
        assert!(ability.hrefs("leap2:supported_by").contains(&evidence.id()));
    }
    let met_ability = abilities.iter().find(|a| a.text_of(ATOM_NS, "title").unwrap().starts_with("1.1 ")).unwrap();
    assert!(met_ability.text_of(ATOM_NS, "content").unwrap().ends_with("CC20: Met"), "the criterion's status travels");

    // LeapImportComment::get_import_strategies_for_entry: an entry with
    // mahara:artefactplugin[@mahara:type="comment"] and exactly one leap2:reflects_on becomes a
    // comment on what it reflects on; create_comment takes <author><name> as its author.
    let decisions: Vec<&&Node> = entries.iter().filter(|e| e.id().starts_with("portfolio:decision/")).collect();
    assert_eq!(decisions.len(), 2);
    for decision in decisions {
        assert_eq!(decision.rdf_type(), "leap2:entry");
        let marker = decision.one(MAHARA_NS, "artefactplugin");
        assert_eq!(marker.attribute(MAHARA_NS, "type"), Some("comment"));
        assert_eq!(marker.attribute(MAHARA_NS, "plugin"), Some("comment"));
        assert_eq!(decision.hrefs("leap2:reflects_on"), vec![evidence.id()]);
        assert_eq!(decision.one(ATOM_NS, "author").text_of(ATOM_NS, "name").as_deref(), Some("Ada Assessor"));
        assert!(rfc3339(&decision.text_of(ATOM_NS, "published").unwrap()));
    }
    assert!(xml.contains("Clear call log from real work."));

    // PluginImportLeap::get_import_strategies_for_entry: a leap2:selection with
    // categories:selection_type# Webpage becomes a Mahara page; without a mahara:view layout,
    // import_using_strategy puts get_entry_content in one text block, which for xhtml must be
    // exactly one <div xmlns="http://www.w3.org/1999/xhtml"> (else it logs an error and keeps
    // the raw markup).
    let pages: Vec<&&Node> = entries.iter().filter(|e| e.rdf_type() == "leap2:selection").collect();
    assert_eq!(pages.len(), 1);
    let page = pages[0];
    let webpage = page.all(ATOM_NS, "category").any(|c| {
        c.attribute("", "scheme") == Some("categories:selection_type#") && c.attribute("", "term") == Some("Webpage")
    });
    assert!(webpage, "the summary page is a Webpage selection");
    let content = page.one(ATOM_NS, "content");
    assert_eq!(content.attribute("", "type"), Some("xhtml"));
    assert_eq!(content.children.len(), 1);
    let div = &content.children[0];
    assert_eq!((div.ns.as_str(), div.name.as_str()), ("http://www.w3.org/1999/xhtml", "div"));
    assert_eq!(div.declarations, vec![(String::new(), "http://www.w3.org/1999/xhtml".to_string())]);
    assert!(div.attributes.is_empty(), "asXML() must start with the bare div Mahara strips");
    let table = div.one("http://www.w3.org/1999/xhtml", "table");
    let headings: Vec<String> = table
        .one("http://www.w3.org/1999/xhtml", "thead")
        .one("http://www.w3.org/1999/xhtml", "tr")
        .all("http://www.w3.org/1999/xhtml", "th")
        .map(|th| th.text.trim().to_string())
        .collect();
    assert_eq!(headings, ["Criterion", "Status", "Evidence"]);
    let rows: Vec<&Node> =
        table.one("http://www.w3.org/1999/xhtml", "tbody").all("http://www.w3.org/1999/xhtml", "tr").collect();
    assert_eq!(rows.len(), 22);
    let first: Vec<String> = rows[0].children.iter().map(|c| c.text.trim().to_string()).collect();
    assert_eq!(first[1..], ["Met".to_string(), "Monday call log".to_string()], "{first:?}");
}

#[tokio::test]
async fn a_learner_imports_a_package_written_the_way_maharas_exporter_writes_one() {
    const REAL: &str = include_str!("../fixtures/leap2a/mahara-leap2a-export.xml");
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let package = zip_of(&[
        ("leap2a.xml", REAL.as_bytes()),
        ("files/0-call-notes.pdf", &pdf()),
        ("files/1-huddle plan.pdf", &pdf()),
    ]);
    let token = token_for(&app, &cast.learner).await;
    let path = format!("/api/v1/enrolments/{}/imports/leap2a", cast.enrolment);
    let response = post_file(&app, &token, &path, "application/zip", package.clone()).await;
    let status = response.status();
    let summary: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{summary}");
    assert_eq!(summary["source_feed"], "https://mahara.example.ac.uk/export/42/1774951200");
    let imported = summary["imported"].as_array().unwrap();
    assert_eq!(imported.len(), 2, "the file and the journal post, nothing else: {summary}");
    assert_eq!(summary["skipped"], 7, "person, folder, attached file, blog, comment, résumé entry, page");

    let api = app.api_for(&cast.learner).await;
    let by_entry =
        |id: &str| imported.iter().find(|i| i["source_entry"] == id).unwrap()["id"].as_str().unwrap().to_string();
    let notes = api.json(&format!("/api/v1/evidence/{}", by_entry("portfolio:artefact12"))).await;
    assert_eq!(notes["title"], "call-notes.pdf");
    assert_eq!(notes["description"], "Notes from my outbound calls on the broadband campaign", "the summary");
    assert_eq!(notes["occurred_on"], "2026-03-20");
    assert_eq!(notes["files"][0]["name"], "call-notes.pdf", "Mahara's files/<n>- prefix is not part of the name");
    assert_eq!(notes["files"][0]["sha256"], sha256(&pdf()));

    let post = api.json(&format!("/api/v1/evidence/{}", by_entry("portfolio:artefact21"))).await;
    assert_eq!(post["title"], "Leading the Monday huddle");
    assert!(post["description"].as_str().unwrap().starts_with("I ran the team huddle"), "{post}");
    let files = post["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "the file attached with rel=related comes with the post: {post}");
    assert_eq!(files[0]["name"], "huddle plan.pdf");
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 2);

    // The same package again adds nothing.
    let again = post_file(&app, &token, &path, "application/zip", package).await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.json::<Value>().await.unwrap()["already_imported"], 2);

    // Mahara's importer urldecode()s hrefs: a package whose feed escapes the space finds it too.
    let escaped = REAL.replace("files/1-huddle plan.pdf", "files/1-huddle%20plan.pdf");
    let other = app.add_user(Role::Learner, "Priya Patel").await;
    let enrolment = app.enrol(&other, &cast.assessor, None).await;
    let response = post_file(
        &app,
        &token_for(&app, &other).await,
        &format!("/api/v1/enrolments/{enrolment}/imports/leap2a"),
        "application/zip",
        zip_of(&[
            ("leap2a.xml", escaped.as_bytes()),
            ("files/0-call-notes.pdf", &pdf()),
            ("files/1-huddle plan.pdf", &pdf()),
        ]),
    )
    .await;
    let status = response.status();
    let summary: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{summary}");
    assert_eq!(summary["imported"].as_array().unwrap().len(), 2);
}
