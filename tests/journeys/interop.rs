//! Interoperability: unit specifications out and in as our unit file and IMS CASE 1.0 JSON, and
//! evidence brought in from another e-portfolio as LEAP2A (Mahara's export, or our own).

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
