//! Taking the portfolio away: the learner downloads one ZIP that opens offline (every item,
//! file, decision, message and signature, and a manifest of hashes) and checks it with
//! `eportfolio export verify`, which notices one changed byte; other learners cannot download
//! it; a verifier can, and that is audited; the LEAP2A package has what Mahara imports.

use std::io::{Cursor, Read, Write};

use quick_xml::events::Event as XmlEvent;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::{Value, json};
use sha2::Digest;

use crate::common::{Browser, Cast, TestApp, api_evidence, pdf, vacs, wav};

/// The learner's call log (a PDF and a recording) mapped to 1.1 and 1.2, judged by the
/// assessor (1.1 met, 1.2 not yet), with a message from the assessor. Returns the item's id.
async fn assessed_item(app: &TestApp, cast: &Cast) -> String {
    let learner = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Monday call log", "method": "product", "occurred_on": "2026-03-02",
                          "criteria": ["1.1", "1.2"], "declaration": true, "third_party_confirmed": true,
                          "description": "Calls I made to new customers."});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("call log.pdf", pdf()), ("call.wav", wav())]),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let item = body["id"].as_str().unwrap().to_string();
    let assessor = app.api_for(&cast.assessor).await;
    for (criterion, outcome, feedback) in
        [("1.1", "met", "Clear call log from real work."), ("1.2", "not_yet", "Show how you followed the script.")]
    {
        let mut decision = json!({"criterion": criterion, "outcome": outcome, "feedback": feedback});
        if outcome == "met" {
            decision["confirmed"] = vacs();
        }
        let response = assessor.post_json(&format!("/api/v1/evidence/{item}/decisions"), &decision).await;
        assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    }
    let response = assessor
        .post_json(&format!("/api/v1/evidence/{item}/comments"), &json!({"body": "Well organised overall."}))
        .await;
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    item
}

async fn download(client: &Browser, path: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let response = client.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

fn entry(archive: &[u8], name: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).expect("a readable ZIP");
    let mut bytes = Vec::new();
    zip.by_name(name).unwrap_or_else(|_| panic!("{name} in the ZIP")).read_to_end(&mut bytes).unwrap();
    bytes
}

/// The archive again with one byte of `name` changed.
fn with_one_byte_changed(archive: &[u8], name: &str) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).unwrap();
        let entry_name = file.name().unwrap().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        if entry_name == name {
            bytes[100] ^= 0x01;
        }
        out.start_file(entry_name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn verify(archive: &[u8]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portfolio.zip");
    std::fs::write(&path, archive).unwrap();
    // No database settings: verifying needs only the file.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_eportfolio"))
        .env_remove("DATABASE_URL")
        .args(["export", "verify"])
        .arg(&path)
        .output()
        .unwrap();
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[tokio::test]
async fn a_learner_downloads_an_offline_portfolio_that_verifies_and_shows_one_changed_byte() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    assessed_item(&app, &cast).await;
    let learner = app.browser_for(&cast.learner).await;
    let portfolio = learner.page(&format!("/enrolments/{}", cast.enrolment)).await;
    assert!(portfolio.contains(&format!("href=\"/enrolments/{}/export\"", cast.enrolment)), "{portfolio}");

    let (headers, archive) = download(&learner, &format!("/enrolments/{}/export", cast.enrolment)).await;
    assert_eq!(headers[CONTENT_TYPE], "application/zip");
    assert_eq!(headers[CONTENT_DISPOSITION], "attachment; filename=\"portfolio-lee-learner-cc20.zip\"");

    let manifest: Value = serde_json::from_slice(&entry(&archive, "manifest.json")).unwrap();
    assert_eq!(manifest["enrolment"]["learner"], "Lee Learner");
    assert_eq!(manifest["enrolment"]["unit_code"], "CC20");
    assert_eq!(
        manifest["record_sha256"].as_str().unwrap(),
        eportfolio::export::record_sha256(&manifest),
        "the record hash is the canonical manifest's"
    );
    // Every file byte for byte as uploaded, and as the manifest describes it.
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 2);
    for (name, uploaded) in [("call log.pdf", pdf()), ("call.wav", wav())] {
        let listed = files.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name} listed"));
        let bytes = entry(&archive, listed["path"].as_str().unwrap());
        assert_eq!(bytes, uploaded, "{name} is byte-identical");
        assert_eq!(listed["size"].as_u64().unwrap(), uploaded.len() as u64);
        assert_eq!(listed["sha256"].as_str().unwrap(), hex::encode(sha2::Sha256::digest(&uploaded)));
    }
    let decisions = manifest["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 2);
    let met = decisions.iter().find(|d| d["criterion"] == "1.1").unwrap();
    assert_eq!(met["outcome"], "met");
    assert_eq!(met["confirmations"]["sufficient"], true);
    let declaration = manifest["signatures"]["declarations"][0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(declaration.len(), 64);

    // The page opens from disk: relative links to the files, every item, decision and signature.
    let index = String::from_utf8(entry(&archive, "index.html")).unwrap();
    assert!(index.contains("Monday call log"));
    assert!(index.contains("Clear call log from real work."));
    assert!(index.contains("Show how you followed the script."));
    assert!(index.contains("Well organised overall."));
    assert!(index.contains(&declaration), "the declaration's hash is shown");
    let pdf_path = files.iter().find(|f| f["name"] == "call log.pdf").unwrap()["path"].as_str().unwrap().to_string();
    assert!(pdf_path.starts_with("files/") && index.contains(&format!("href=\"{pdf_path}\"")), "{pdf_path}");
    assert!(!index.contains("<script"), "no script needed");

    let (intact, stdout) = verify(&archive);
    assert!(intact, "{stdout}");
    assert!(stdout.contains("export intact: 2 files"), "{stdout}");

    let (intact, stdout) = verify(&with_one_byte_changed(&archive, &pdf_path));
    assert!(!intact, "one changed byte fails: {stdout}");
    assert!(stdout.contains(&format!("{pdf_path}: SHA-256 is")), "names the changed entry: {stdout}");

    let (intact, stdout) = verify(&with_one_byte_changed(&archive, "manifest.json"));
    assert!(!intact, "a changed manifest fails: {stdout}");
    assert!(stdout.contains("manifest.json"), "{stdout}");

    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'export.downloaded' AND actor_role = 'learner'")
            .await,
        1,
        "the download is audited"
    );
}

#[tokio::test]
async fn another_learner_cannot_download_a_portfolio_and_a_verifiers_download_is_audited() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    assessed_item(&app, &cast).await;
    let other = app.add_user(eportfolio::auth::Role::Learner, "Olive Other").await;
    let other = app.api_for(&other).await;
    for path in ["export", "export/leap2a"] {
        let response = other.get(&format!("/api/v1/enrolments/{}/{path}", cast.enrolment)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }

    let verifier = app.api_for(&cast.verifier).await;
    let (_, archive) = download(&verifier, &format!("/api/v1/enrolments/{}/export", cast.enrolment)).await;
    let manifest: Value = serde_json::from_slice(&entry(&archive, "manifest.json")).unwrap();
    assert_eq!(manifest["generated_by"], "Vera Verifier");
    assert!(verify(&archive).0);
    let recorded: (String, Value) = sqlx::query_as(
        "SELECT actor_role, details FROM audit_events WHERE action = 'export.downloaded' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(recorded.0, "eqa");
    assert_eq!(recorded.1["format"], "offline");
    assert_eq!(recorded.1["record_sha256"], manifest["record_sha256"]);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_portfolio'").await,
        1,
        "the verifier's view is recorded"
    );
}

/// One LEAP2A entry: its id, `rdf:type`, and links as (rel, href).
#[derive(Debug, Default)]
struct LeapEntry {
    id: String,
    kind: String,
    links: Vec<(String, String)>,
}

fn leap_entries(xml: &str) -> (Vec<LeapEntry>, Vec<(String, String)>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let decoder = reader.decoder();
    let mut entries = Vec::new();
    let mut namespaces = Vec::new();
    let mut current: Option<LeapEntry> = None;
    let mut in_id = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            XmlEvent::Start(e) if e.name().as_ref() == b"feed" => {
                for a in e.attributes() {
                    let a = a.unwrap();
                    namespaces.push((
                        String::from_utf8(a.key.as_ref().to_vec()).unwrap(),
                        a.decoded_and_normalized_value(quick_xml::XmlVersion::Explicit1_0, decoder)
                            .unwrap()
                            .into_owned(),
                    ));
                }
            }
            XmlEvent::Start(e) if e.name().as_ref() == b"entry" => current = Some(LeapEntry::default()),
            XmlEvent::Start(e) if e.name().as_ref() == b"id" => in_id = true,
            XmlEvent::Text(t) if in_id => {
                if let Some(entry) = current.as_mut() {
                    entry.id = t.decode().unwrap().into_owned();
                }
            }
            XmlEvent::End(e) if e.name().as_ref() == b"id" => in_id = false,
            XmlEvent::Empty(e) => {
                let attribute = |name: &[u8]| {
                    e.attributes()
                        .flatten()
                        .find(|a| a.key.as_ref() == name)
                        .map(|a| {
                            a.decoded_and_normalized_value(quick_xml::XmlVersion::Explicit1_0, decoder)
                                .unwrap()
                                .into_owned()
                        })
                        .unwrap_or_default()
                };
                if let Some(entry) = current.as_mut() {
                    match e.name().as_ref() {
                        b"rdf:type" => entry.kind = attribute(b"rdf:resource"),
                        b"link" => entry.links.push((attribute(b"rel"), attribute(b"href"))),
                        _ => {}
                    }
                }
            }
            XmlEvent::End(e) if e.name().as_ref() == b"entry" => entries.extend(current.take()),
            XmlEvent::Eof => break,
            _ => {}
        }
    }
    (entries, namespaces)
}

#[tokio::test]
async fn the_leap2a_export_has_an_ability_per_criterion_and_evidence_supporting_them() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let item = assessed_item(&app, &cast).await;
    let learner = app.api_for(&cast.learner).await;
    let (headers, archive) = download(&learner, &format!("/api/v1/enrolments/{}/export/leap2a", cast.enrolment)).await;
    assert_eq!(headers[CONTENT_TYPE], "application/zip");
    let xml = String::from_utf8(entry(&archive, "leap2a.xml")).unwrap();
    assert!(xml.contains("<leap2:version>http://www.leapspecs.org/2010-07/2A/</leap2:version>"), "{xml}");
    let (entries, namespaces) = leap_entries(&xml);
    for (prefix, uri) in [
        ("xmlns", "http://www.w3.org/2005/Atom"),
        ("xmlns:leap2", "http://terms.leapspecs.org/"),
        ("xmlns:categories", "http://wiki.leapspecs.org/2A/categories/"),
    ] {
        assert!(namespaces.contains(&(prefix.to_string(), uri.to_string())), "{prefix}: {namespaces:?}");
    }

    let abilities: Vec<&LeapEntry> = entries.iter().filter(|e| e.kind == "leap2:ability").collect();
    assert_eq!(abilities.len(), 22, "one ability per CC20 criterion");
    let resources: Vec<&LeapEntry> = entries.iter().filter(|e| e.kind == "leap2:resource").collect();
    assert_eq!(resources.len(), 3, "the evidence item and each of its two files");
    let resource = *resources.iter().find(|e| e.id == format!("portfolio:resource/{item}")).expect("the item");
    // Each file is an entry of its own with one enclosure (a Mahara file), linked as related.
    let enclosures: Vec<&String> = resource
        .links
        .iter()
        .filter(|(rel, _)| rel == "related")
        .flat_map(|(_, file)| &resources.iter().find(|e| &e.id == file).expect("a file entry").links)
        .filter(|(rel, _)| rel == "enclosure")
        .map(|(_, h)| h)
        .collect();
    assert_eq!(enclosures.len(), 2, "one enclosure per file");
    for href in enclosures {
        assert!(href.starts_with("files/"));
        assert!(!entry(&archive, href).is_empty(), "{href} is packaged");
    }
    let supports: Vec<&String> =
        resource.links.iter().filter(|(rel, _)| rel == "leap2:supports").map(|(_, h)| h).collect();
    assert_eq!(supports.len(), 2, "supports 1.1 and 1.2");
    for ability in supports {
        let target = abilities.iter().find(|a| &a.id == ability).expect("supports an ability in the feed");
        assert!(target.links.contains(&("leap2:supported_by".into(), resource.id.clone())));
    }
    let reflections: Vec<&LeapEntry> =
        entries.iter().filter(|e| e.links.contains(&("leap2:reflects_on".into(), resource.id.clone()))).collect();
    assert_eq!(reflections.len(), 2, "each decision reflects on the evidence");
    assert!(xml.contains("Clear call log from real work."));
}

#[tokio::test]
async fn a_learner_downloads_every_unit_at_once_and_the_whole_export_verifies() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    assessed_item(&app, &cast).await;
    let learner = app.api_for(&cast.learner).await;
    let (headers, archive) = download(&learner, "/api/v1/me/export").await;
    assert_eq!(headers[CONTENT_DISPOSITION], "attachment; filename=\"portfolio-lee-learner-all.zip\"");
    let manifest: Value = serde_json::from_slice(&entry(&archive, "manifest.json")).unwrap();
    let portfolios = manifest["portfolios"].as_array().unwrap();
    assert_eq!(portfolios.len(), 1);
    let folder = portfolios[0]["folder"].as_str().unwrap().to_string();
    let index = String::from_utf8(entry(&archive, "index.html")).unwrap();
    assert!(index.contains(&format!("href=\"{folder}index.html\"")), "{index}");
    let unit: Value = serde_json::from_slice(&entry(&archive, &format!("{folder}manifest.json"))).unwrap();
    assert_eq!(unit["record_sha256"], portfolios[0]["record_sha256"]);
    let pdf_path = format!("{folder}{}", unit["files"][0]["path"].as_str().unwrap());
    assert!(!entry(&archive, &pdf_path).is_empty());

    let (intact, stdout) = verify(&archive);
    assert!(intact, "{stdout}");
    assert!(stdout.contains("export intact: 2 files"), "{stdout}");
    let (intact, stdout) = verify(&with_one_byte_changed(&archive, &pdf_path));
    assert!(!intact && stdout.contains(&format!("{pdf_path}: SHA-256 is")), "{stdout}");

    // Someone with no portfolio of their own is told so.
    let assessor = app.api_for(&cast.assessor).await;
    assert_eq!(assessor.get("/api/v1/me/export").await.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_command_line_writes_the_same_export_for_someone_allowed_to_see_it_and_only_them() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    assessed_item(&app, &cast).await;
    let other = app.add_user(eportfolio::auth::Role::Learner, "Olive Other").await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("export.zip");
    let export_as = |email: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_eportfolio"))
            .env("DATABASE_URL", &app.database_url)
            .env("EPORTFOLIO_DATA_DIR", &app.data_dir)
            .args(["export", "enrolment", "--id", &cast.enrolment.to_string(), "--as", email, "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let refused = export_as(&other.email);
    assert!(!refused.status.success(), "another learner cannot export it");
    assert!(!out.exists());

    let written = export_as(&cast.assessor.email);
    assert!(written.status.success(), "{}", String::from_utf8_lossy(&written.stderr));
    let archive = std::fs::read(&out).unwrap();
    let (intact, stdout) = verify(&archive);
    assert!(intact, "{stdout}");
    let manifest: Value = serde_json::from_slice(&entry(&archive, "manifest.json")).unwrap();
    assert_eq!(manifest["generated_by"], "Ada Assessor");
    assert!(String::from_utf8_lossy(&written.stdout).contains(manifest["record_sha256"].as_str().unwrap()));
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'export.downloaded' AND actor_role = 'assessor'")
            .await,
        1
    );
}

/// The archive again with the entry `name` replaced by `bytes`.
fn with_entry_replaced(archive: &[u8], name: &str, replacement: &[u8]) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).unwrap();
        let entry_name = file.name().unwrap().to_string();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        if entry_name == name {
            bytes = replacement.to_vec();
        }
        out.start_file(entry_name, options).unwrap();
        out.write_all(&bytes).unwrap();
    }
    out.finish().unwrap().into_inner()
}

#[tokio::test]
async fn the_offline_portfolio_carries_the_iqa_records_and_verify_notices_one_altered() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let item = assessed_item(&app, &cast).await;
    // The IQA samples the item and refers it back; the assessor answers; the IQA closes it.
    let iqa = app.api_for(&cast.iqa).await;
    let planned = iqa.post_json("/api/v1/iqa/plan", &json!({"evidence_id": item})).await;
    assert!(planned.status().is_success(), "{}", planned.text().await.unwrap());
    let sample = planned.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let recorded = iqa
        .post_json(
            &format!("/api/v1/iqa/samples/{sample}/record"),
            &json!({"outcome": "refer_back", "feedback": "The not-yet feedback does not name the script step.",
                    "actions": "Name the step of the sales script that was missed."}),
        )
        .await;
    assert!(recorded.status().is_success(), "{}", recorded.text().await.unwrap());
    let assessor = app.api_for(&cast.assessor).await;
    let responded = assessor
        .post_json(
            &format!("/api/v1/iqa/samples/{sample}/response"),
            &json!({"response": "Feedback now names the objection-handling step."}),
        )
        .await;
    assert!(responded.status().is_success(), "{}", responded.text().await.unwrap());
    let closed = iqa
        .post_json(&format!("/api/v1/iqa/samples/{sample}/close"), &json!({"note": "Feedback is specific now."}))
        .await;
    assert!(closed.status().is_success(), "{}", closed.text().await.unwrap());
    let signed = iqa.json(&format!("/api/v1/iqa/samples/{sample}")).await;
    let signed_hash = signed["sha256"].as_str().expect("the sample record is signed").to_string();

    // The IQA's (and any staff member's) export carries the sample, its response and closure.
    let (_, archive) = download(&iqa, &format!("/api/v1/enrolments/{}/export", cast.enrolment)).await;
    let manifest: Value = serde_json::from_slice(&entry(&archive, "manifest.json")).unwrap();
    let samples = manifest["iqa_samples"].as_array().expect("an iqa_samples list");
    assert_eq!(samples.len(), 1, "{samples:?}");
    let listed = &samples[0];
    assert_eq!(listed["id"], sample.as_str());
    assert_eq!(listed["evidence_id"], item.as_str());
    assert_eq!(listed["iqa"], "Ian Quality");
    assert_eq!(listed["status"], "closed");
    assert_eq!(listed["outcome"], "refer_back");
    assert_eq!(listed["actions"], "Name the step of the sales script that was missed.");
    assert_eq!(listed["assessor_response"], "Feedback now names the objection-handling step.");
    assert_eq!(listed["closure_note"], "Feedback is specific now.");
    assert_eq!(listed["sha256"], signed_hash.as_str());
    let index = String::from_utf8(entry(&archive, "index.html")).unwrap();
    for shown in [
        "Internal quality assurance",
        "The not-yet feedback does not name the script step.",
        "Name the step of the sales script that was missed.",
        "Feedback now names the objection-handling step.",
        "Feedback is specific now.",
        signed_hash.as_str(),
    ] {
        assert!(index.contains(shown), "index.html shows {shown:?}");
    }
    let (intact, stdout) = verify(&archive);
    assert!(intact, "{stdout}");

    // Rewriting the IQA's feedback in the manifest, keeping everything else, is caught.
    let mut altered = manifest.clone();
    altered["iqa_samples"][0]["feedback"] = json!("Agreed, no concerns.");
    let tampered = with_entry_replaced(&archive, "manifest.json", &serde_json::to_vec_pretty(&altered).unwrap());
    let (intact, stdout) = verify(&tampered);
    assert!(!intact, "an altered IQA record fails: {stdout}");
    assert!(stdout.contains("manifest.json: the record hash is"), "{stdout}");

    // The learner's own copy leaves IQA records out, as their evidence pages do.
    let learner = app.api_for(&cast.learner).await;
    let (_, archive) = download(&learner, &format!("/api/v1/enrolments/{}/export", cast.enrolment)).await;
    let manifest: Value = serde_json::from_slice(&entry(&archive, "manifest.json")).unwrap();
    assert_eq!(manifest["iqa_samples"], json!([]));
    assert!(verify(&archive).0);
}
