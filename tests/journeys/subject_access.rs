//! A subject-access request as a centre answers it: the administrator downloads, from the
//! learner's page or the API, one ZIP with everything held about the learner (account, roles,
//! enrolments, their portfolio with its files, what they wrote, their notifications and every
//! audit event about them) and nothing about another learner; the download is audited. Only the
//! learner's own centre's administrators can make one.

use std::io::{Cursor, Read};

use eportfolio::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Browser, TestApp, api_evidence, pdf};

async fn submit(api: &Browser, enrolment: uuid::Uuid, title: &str) -> String {
    let metadata = json!({"title": title, "method": "product", "occurred_on": "2026-03-02", "criteria": ["1.1"],
                          "declaration": true, "description": format!("{title}, from my own calls.")});
    let response = api
        .post_multipart(
            &format!("/api/v1/enrolments/{enrolment}/evidence"),
            api_evidence(metadata, vec![("log.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().unwrap().to_string()
}

/// Every member of the ZIP with its bytes.
fn unzip(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut zip = zip::ZipArchive::new(Cursor::new(archive)).expect("a readable ZIP");
    (0..zip.len())
        .map(|i| {
            let mut member = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            member.read_to_end(&mut bytes).unwrap();
            (member.name().unwrap().to_string(), bytes)
        })
        .collect()
}

fn member<'a>(members: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    &members.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} in the ZIP")).1
}

#[tokio::test]
async fn an_administrator_exports_everything_about_a_learner_and_nothing_about_another() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let other = app.add_user(Role::Learner, "Olive Otherlearner").await;
    let other_enrolment = app.enrol(&other, &cast.assessor, None).await;

    let learner = app.api_for(&cast.learner).await;
    let evidence = submit(&learner, cast.enrolment, "Outbound campaign call log").await;
    let said = learner
        .post_json(&format!("/api/v1/evidence/{evidence}/comments"), &json!({"body": "The calls on the 2nd show 1.1."}))
        .await;
    assert_eq!(said.status(), StatusCode::CREATED);
    let decided = app
        .api_for(&cast.assessor)
        .await
        .post_json(
            &format!("/api/v1/evidence/{evidence}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Say which script you followed."}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::CREATED);
    let others = app.api_for(&other).await;
    submit(&others, other_enrolment, "Olive's complaint escalation log").await;

    // The button is on the learner's page.
    let pages = app.browser_for(&admin).await;
    let page = pages.page(&format!("/admin/users/{}", cast.learner.id)).await;
    assert!(page.contains(&format!("href=\"/admin/users/{}/subject-access-export\"", cast.learner.id)), "{page}");

    let response = pages.get(&format!("/admin/users/{}/subject-access-export", cast.learner.id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"subject-access-")
    );
    let archive = response.bytes().await.unwrap();
    let members = unzip(&archive);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    for expected in
        ["index.html", "subject.json", "audit_events.json", "portfolios/index.html", "portfolios/manifest.json"]
    {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    let folder = format!("portfolios/cc20-{}/", &cast.enrolment.simple().to_string()[..8]);
    assert!(names.contains(&format!("{folder}index.html").as_str()), "{names:?}");
    assert!(names.contains(&format!("{folder}manifest.json").as_str()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with(&format!("{folder}files/")) && n.ends_with("log.pdf")),
        "the file itself: {names:?}"
    );
    let file = members.iter().find(|(n, _)| n.starts_with(&format!("{folder}files/"))).unwrap();
    assert_eq!(file.1, pdf());

    let subject: Value = serde_json::from_slice(member(&members, "subject.json")).unwrap();
    assert_eq!(subject["account"]["email"], cast.learner.email.as_str());
    assert_eq!(subject["account"]["name"], "Lee Learner");
    assert_eq!(subject["roles"][0]["role"], "learner");
    assert_eq!(subject["enrolments"][0]["id"], cast.enrolment.to_string());
    assert_eq!(subject["comments_written"][0]["body"], "The calls on the 2nd show 1.1.");
    assert!(subject["notifications"].as_array().is_some_and(|n| !n.is_empty()), "told of the decision: {subject}");

    let events: Value = serde_json::from_slice(member(&members, "audit_events.json")).unwrap();
    let events = events.as_array().unwrap();
    assert!(events.iter().any(|e| e["action"] == "enrolment.created"), "about the learner's enrolment");
    assert!(events.iter().any(|e| e["actor_id"] == cast.learner.id.to_string()), "done by the learner");
    assert!(events.iter().any(|e| e["subject_id"] == cast.learner.id.to_string()), "about the learner");
    assert!(events.iter().all(|e| e["enrolment_id"] != other_enrolment.to_string()), "none about the other learner");

    let index = String::from_utf8(member(&members, "index.html").to_vec()).unwrap();
    assert!(index.contains("Subject-access export: Lee Learner"), "{index}");
    assert!(index.contains(&format!("href=\"{folder}index.html\"")), "{index}");
    // Nothing anywhere in the archive about the other learner.
    for (name, bytes) in &members {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains("Olive"), "{name} mentions the other learner");
        assert!(!text.contains(&other.email), "{name} holds the other learner's email");
        assert!(!text.contains(&other_enrolment.to_string()), "{name} names the other learner's enrolment");
    }

    // The portfolio inside verifies like any offline export.
    let mut portfolio = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in members.iter().filter(|(n, _)| n.starts_with(&folder)) {
        portfolio
            .start_file(
                name.trim_start_matches(&folder),
                zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored),
            )
            .unwrap();
        std::io::Write::write_all(&mut portfolio, bytes).unwrap();
    }
    let rebuilt = portfolio.finish().unwrap().into_inner();
    assert!(eportfolio::export::verify::verify(Cursor::new(rebuilt)).is_ok(), "the nested portfolio is intact");

    // Audited: who exported whom.
    let (actor, subject_id): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "SELECT actor_id, subject_id FROM audit_events WHERE action = 'subject_access.exported' ORDER BY seq DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((actor, subject_id), (admin.id, cast.learner.id));

    // The API gives the same; only this centre's administrators may ask.
    let api = app.api_for(&admin).await;
    let response = api.get(&format!("/api/v1/users/{}/subject-access-export", cast.learner.id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let members = unzip(&response.bytes().await.unwrap());
    assert!(members.iter().any(|(n, _)| n == "audit_events.json"));
    let elsewhere = app.add_user_elsewhere("Other College", Role::Admin, "Eli Elsewhere").await;
    let refused =
        app.api_for(&elsewhere).await.get(&format!("/api/v1/users/{}/subject-access-export", cast.learner.id)).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let refused = learner.get(&format!("/api/v1/users/{}/subject-access-export", cast.learner.id)).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'subject_access.exported'").await, 2);
}

#[tokio::test]
async fn a_staff_members_export_holds_the_decisions_they_made() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let evidence = submit(&app.api_for(&cast.learner).await, cast.enrolment, "Call log").await;
    let decided = app
        .api_for(&cast.assessor)
        .await
        .post_json(
            &format!("/api/v1/evidence/{evidence}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Name the script you followed."}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::CREATED);

    let response =
        app.api_for(&admin).await.get(&format!("/api/v1/users/{}/subject-access-export", cast.assessor.id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let members = unzip(&response.bytes().await.unwrap());
    assert!(!members.iter().any(|(n, _)| n.starts_with("portfolios/")), "an assessor has no portfolio of their own");
    let subject: Value = serde_json::from_slice(member(&members, "subject.json")).unwrap();
    assert_eq!(subject["decisions_made"][0]["feedback"], "Name the script you followed.");
    assert_eq!(subject["decisions_made"][0]["criterion"], "1.1");
    assert_eq!(subject["enrolments"][0]["as_role"], "assessor");
    let events: Value = serde_json::from_slice(member(&members, "audit_events.json")).unwrap();
    assert!(events.as_array().unwrap().iter().any(|e| e["actor_id"] == cast.assessor.id.to_string()));
}
