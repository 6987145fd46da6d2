//! A client walks a long list a page at a time with `limit` and `cursor`: every item once, none
//! missed, while new items arrive; a limit outside 1..=200 or a cursor it was not given is a
//! 422 problem naming the parameter.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use eportfolio::auth::Role;

use crate::common::{Browser, TestApp, TestUser, api_evidence, pdf};

/// The learner uploads a call log through the API; the item's id.
async fn call_log(learner: &Browser, enrolment: uuid::Uuid) -> String {
    let metadata = json!({"title": "Call log", "method": "product", "occurred_on": "2026-03-17",
        "criteria": ["1.1"], "declaration": true});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{enrolment}/evidence"),
            api_evidence(metadata, vec![("log.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string()
}

async fn comment(assessor: &Browser, item: &str, n: usize) {
    let response =
        assessor.post_json(&format!("/api/v1/evidence/{item}/comments"), &json!({"body": format!("Point {n}")})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn a_learner_walks_120_notifications_in_pages_of_50_with_none_repeated_or_missed_while_more_arrive() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let item = call_log(&learner, cast.enrolment).await;
    for n in 0..120 {
        comment(&assessor, &item, n).await;
    }
    let everything: BTreeSet<String> = {
        let all = learner.json("/api/v1/notifications?limit=200").await;
        assert_eq!(all["next_cursor"], Value::Null, "200 holds them all");
        all["items"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(everything.len(), 120);

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/api/v1/notifications?limit=50".to_string(),
            Some(c) => format!("/api/v1/notifications?limit=50&cursor={c}"),
        };
        let page = learner.json(&path).await;
        pages += 1;
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 50);
        seen.extend(items.iter().map(|n| n["id"].as_str().unwrap().to_string()));
        assert_eq!(page["unread"], if pages == 1 { 120 } else { 121 }, "the unread count covers every page");
        if pages == 1 {
            // A new message arrives while the learner reads: it is newer than every page still
            // to come, so it shifts nothing.
            comment(&assessor, &item, 999).await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3, "50 + 50 + 20");
    let unique: BTreeSet<String> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no notification appears twice");
    assert_eq!(unique, everything, "every notification there was at the start, and no other");

    // Newest first: the new one heads a fresh first page.
    let first = learner.json("/api/v1/notifications?limit=1").await;
    assert!(!everything.contains(first["items"][0]["id"].as_str().unwrap()));
    assert!(first["next_cursor"].is_string());
}

#[tokio::test]
async fn a_limit_outside_1_to_200_or_a_cursor_the_api_did_not_give_is_refused_with_422() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("limit=-5", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=MTIzfG5vdC1hLXV1aWQ", "cursor"),
    ] {
        let response = learner.get(&format!("/api/v1/notifications?{query}")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{query}");
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    // A well-formed cursor past the end is simply an empty last page.
    let page = learner.json("/api/v1/notifications?limit=200").await;
    assert_eq!(page["items"], json!([]));
    assert_eq!(page["next_cursor"], Value::Null);
    assert_eq!(learner.get("/api/v1/notifications?limit=200").await.status(), StatusCode::OK);
}

/// Walks `path` a page of `limit` at a time to its end: every item's id in the order the pages
/// gave them, and how many pages there were. Every page holds `limit` items but the last.
async fn walk(client: &Browser, path: &str, limit: usize, id: &str) -> (Vec<String>, usize) {
    let join = if path.contains('?') { '&' } else { '?' };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            None => format!("{path}{join}limit={limit}"),
            Some(c) => format!("{path}{join}limit={limit}&cursor={c}"),
        };
        let page = client.json(&url).await;
        pages += 1;
        let items = page["items"].as_array().unwrap_or_else(|| panic!("{url}: {page}"));
        seen.extend(items.iter().map(|item| item[id].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "{url}: a page before the last is full");
                cursor = Some(next.to_string());
            }
            None => break,
        }
        assert!(pages < 1000, "{path} never ends");
    }
    (seen, pages)
}

fn no_repeats(path: &str, ids: &[String]) -> BTreeSet<String> {
    let unique: BTreeSet<String> = ids.iter().cloned().collect();
    assert_eq!(unique.len(), ids.len(), "{path}: no item appears twice");
    unique
}

#[tokio::test]
async fn an_assessor_walks_a_conversation_of_120_messages_in_order_and_an_admin_60_people_while_one_is_added() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let item = call_log(&learner, cast.enrolment).await;
    for n in 0..120 {
        comment(&assessor, &item, n).await;
    }

    // The conversation: oldest first, 50 + 50 + 20, every message once and in the order written.
    let path = format!("/api/v1/evidence/{item}/comments");
    let (ids, pages) = walk(&assessor, &path, 50, "id").await;
    assert_eq!(pages, 3, "50 + 50 + 20");
    let unique = no_repeats(&path, &ids);
    let whole = assessor.json(&format!("{path}?limit=200")).await;
    assert_eq!(whole["can_comment"], true, "the summary fields stay on every page");
    let all: Vec<String> =
        whole["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, all, "the pages in turn are the conversation in order");
    assert_eq!(unique.len(), 120);
    let bodies: Vec<&str> = whole["items"].as_array().unwrap().iter().map(|c| c["body"].as_str().unwrap()).collect();
    assert_eq!(bodies.first(), Some(&"Point 0"));
    assert_eq!(bodies.last(), Some(&"Point 119"));

    // The portfolio's history, newest first: at least the 120 comments and the upload.
    let history = format!("/api/v1/enrolments/{}/history", cast.enrolment);
    let first = assessor.json(&format!("{history}?limit=7")).await;
    let (seqs, _) = {
        let mut seqs = Vec::new();
        let mut page = first.clone();
        let mut pages = 1;
        loop {
            seqs.extend(page["items"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()));
            match page["next_cursor"].as_str() {
                Some(c) => page = assessor.json(&format!("{history}?limit=7&cursor={c}")).await,
                None => break,
            }
            pages += 1;
        }
        (seqs, pages)
    };
    assert!(seqs.len() >= 121, "{}", seqs.len());
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first, none repeated");

    // 60 people and the administrator: walked 25 at a time while someone new joins.
    let admin_user = app.add_user(Role::Admin, "Ada Admin").await;
    for n in 0..60 {
        app.add_user(Role::Learner, &format!("Learner {n:02}")).await;
    }
    let admin = app.api_for(&admin_user).await;
    let everyone: BTreeSet<String> = admin.json("/api/v1/users?limit=200").await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(everyone.len(), 65, "60 learners, the cast of four and the administrator");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut newcomer = None;
    loop {
        let url = match &cursor {
            None => "/api/v1/users?limit=25".to_string(),
            Some(c) => format!("/api/v1/users?limit=25&cursor={c}"),
        };
        let page = admin.json(&url).await;
        pages += 1;
        let names: Vec<String> =
            page["items"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap().to_lowercase()).collect();
        assert!(names.windows(2).all(|w| w[0] <= w[1]), "by name: {names:?}");
        seen.extend(page["items"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().to_string()));
        if pages == 1 {
            // Someone whose name sorts after the first page joins while the admin reads.
            newcomer = Some(app.add_user(Role::Learner, "Zoe Newcomer").await.id.to_string());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    let unique = no_repeats("/api/v1/users", &seen);
    assert_eq!(pages, 3, "25 + 25 + 16");
    assert!(everyone.is_subset(&unique), "nobody there at the start is missed");
    assert!(unique.contains(newcomer.as_ref().unwrap()), "the newcomer, after the page read, is on a later page");
    assert_eq!(unique.len(), 66);
}

#[tokio::test]
async fn every_paged_list_answers_items_and_next_cursor_and_refuses_a_bad_limit_or_cursor() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin_user = app.add_user(Role::Admin, "Ada Admin").await;
    let learner = app.api_for(&cast.learner).await;
    let item = call_log(&learner, cast.enrolment).await;
    let lists: Vec<(TestUser, String)> = vec![
        (cast.learner.clone(), "/api/v1/enrolments".into()),
        (cast.learner.clone(), "/api/v1/units".into()),
        (cast.learner.clone(), "/api/v1/tokens".into()),
        (cast.learner.clone(), format!("/api/v1/evidence/{item}/comments")),
        (cast.learner.clone(), format!("/api/v1/enrolments/{}/history", cast.enrolment)),
        (admin_user.clone(), "/api/v1/users".into()),
        (admin_user.clone(), "/api/v1/verifier-grants".into()),
        (admin_user.clone(), "/api/v1/centre/purge-runs".into()),
        (cast.iqa.clone(), "/api/v1/iqa/draws".into()),
        (cast.iqa.clone(), "/api/v1/iqa/plan".into()),
        (cast.iqa.clone(), "/api/v1/standardisation".into()),
        (cast.iqa.clone(), "/api/v1/reports/progress".into()),
        (cast.learner.clone(), format!("/api/v1/enrolments/{}/witnesses", cast.enrolment)),
        (cast.learner.clone(), format!("/api/v1/enrolments/{}/witness-requests", cast.enrolment)),
        (admin_user.clone(), "/api/v1/centre/legal-holds".into()),
        (admin_user.clone(), format!("/api/v1/users/{}/legal-hold", cast.learner.id)),
        (cast.iqa.clone(), "/api/v1/iqa/strategy".into()),
        (cast.iqa.clone(), "/api/v1/iqa/coverage".into()),
    ];
    for (user, path) in &lists {
        let client = app.api_for(user).await;
        let page = client.json(&format!("{path}?limit=1")).await;
        assert!(page["items"].is_array(), "{path}: {page}");
        assert!(page["items"].as_array().unwrap().len() <= 1, "{path}: {page}");
        assert!(page.get("next_cursor").is_some(), "{path}: {page}");
        for (query, field) in [("limit=0", "limit"), ("limit=201", "limit"), ("cursor=not-a-cursor", "cursor")] {
            let response = client.get(&format!("{path}?{query}")).await;
            assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{path}?{query}");
            let problem: Value = response.json().await.unwrap();
            assert_eq!(problem["errors"][0]["field"], field, "{path}?{query}: {problem}");
        }
    }
    // The lists with more than one item go on to a second page, and the two pages differ.
    for (user, path, id) in [
        (&cast.learner, "/api/v1/units".to_string(), "id"),
        (&cast.learner, format!("/api/v1/enrolments/{}/history", cast.enrolment), "seq"),
    ] {
        let client = app.api_for(user).await;
        let first = client.json(&format!("{path}?limit=1")).await;
        let cursor = first["next_cursor"].as_str().unwrap_or_else(|| panic!("{path}: {first}"));
        let second = client.json(&format!("{path}?limit=1&cursor={cursor}")).await;
        assert_ne!(first["items"][0][id], second["items"][0][id], "{path}");
    }
}

/// Walks `path` a page of `limit` at a time, running `meanwhile` once the first page is read (a
/// row added while the client reads); every page must carry the `summary` fields. Each item's
/// `key` in the order the pages gave them, and how many pages there were.
async fn walk_while(
    client: &Browser,
    path: &str,
    limit: usize,
    summary: &[&str],
    key: impl Fn(&Value) -> String,
    meanwhile: impl AsyncFnOnce(),
) -> (Vec<String>, usize) {
    let join = if path.contains('?') { '&' } else { '?' };
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut meanwhile = Some(meanwhile);
    loop {
        let url = match &cursor {
            None => format!("{path}{join}limit={limit}"),
            Some(c) => format!("{path}{join}limit={limit}&cursor={c}"),
        };
        let page = client.json(&url).await;
        pages += 1;
        for field in summary {
            assert!(page.get(*field).is_some(), "{url}: every page carries {field}: {page}");
        }
        let items = page["items"].as_array().unwrap_or_else(|| panic!("{url}: {page}"));
        assert!(items.len() <= limit, "{url}: at most {limit}");
        seen.extend(items.iter().map(&key));
        if let Some(add) = meanwhile.take() {
            add().await;
        }
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(items.len(), limit, "{url}: a page before the last is full");
                cursor = Some(next.to_string());
            }
            None => break,
        }
        assert!(pages < 1000, "{path} never ends");
    }
    (seen, pages)
}

/// Every item's key in one page of 200 (each list here holds fewer).
async fn whole(client: &Browser, path: &str, key: impl Fn(&Value) -> String) -> BTreeSet<String> {
    let join = if path.contains('?') { '&' } else { '?' };
    let page = client.json(&format!("{path}{join}limit=200")).await;
    assert_eq!(page["next_cursor"], Value::Null, "{path}: 200 holds the whole list");
    page["items"].as_array().unwrap().iter().map(key).collect()
}

/// The walk saw every item there was before it started, once each, and nothing that was never
/// in the list; `added` (the row added meanwhile) was seen or not, as `expect_added` says.
fn walked(
    path: &str,
    seen: &[String],
    before: &BTreeSet<String>,
    after: &BTreeSet<String>,
    added: &str,
    expect_added: bool,
) {
    let unique = no_repeats(path, seen);
    let missed: Vec<&String> = before.difference(&unique).collect();
    assert!(missed.is_empty(), "{path}: nothing there at the start is missed: {missed:?}");
    let unknown: Vec<&String> = unique.difference(after).collect();
    assert!(unknown.is_empty(), "{path}: nothing outside the list: {unknown:?}");
    assert!(after.contains(added), "{path}: the row added meanwhile is in the list");
    assert_eq!(unique.contains(added), expect_added, "{path}: the row added meanwhile, seen: {expect_added}");
}

fn id_of(item: &Value) -> String {
    item["id"].as_str().unwrap_or_else(|| panic!("no id: {item}")).to_string()
}

async fn add_witness(learner: &Browser, enrolment: uuid::Uuid, name: &str) -> String {
    let response = learner
        .post_json(
            &format!("/api/v1/enrolments/{enrolment}/witnesses"),
            &json!({"name": name, "job_role": "Team leader", "relationship": "Line manager",
                    "email": format!("{}@example.org", name.to_lowercase().replace(' ', "."))}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    id_of(&response.json::<Value>().await.unwrap())
}

async fn ask_witness(learner: &Browser, enrolment: uuid::Uuid, witness: &str) {
    let response = learner
        .post_json(
            &format!("/api/v1/enrolments/{enrolment}/witness-requests"),
            &json!({"witness_id": witness, "criteria": ["1.1"], "message": "The Monday huddle"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn a_learner_walks_their_witness_register_and_the_statements_asked_for_in_pages_while_more_are_added() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let mut witnesses = Vec::new();
    for name in ["Gail Green", "Ann Abbot", "Fay Ford", "Cy Cole", "Eve East", "Bo Brown", "Di Dunn"] {
        witnesses.push(add_witness(&learner, cast.enrolment, name).await);
    }

    // The register, by name, two at a time, while the learner adds a witness who sorts last.
    let register = format!("/api/v1/enrolments/{}/witnesses", cast.enrolment);
    let before = whole(&learner, &register, id_of).await;
    assert_eq!(before.len(), 7);
    let added = std::cell::RefCell::new(String::new());
    let (seen, pages) = walk_while(&learner, &register, 2, &[], id_of, async || {
        *added.borrow_mut() = add_witness(&learner, cast.enrolment, "Zak Zane").await;
    })
    .await;
    let after = whole(&learner, &register, id_of).await;
    walked(&register, &seen, &before, &after, &added.borrow(), true);
    assert_eq!(pages, 4, "2 + 2 + 2 + 2");
    let names: Vec<String> = learner.json(&format!("{register}?limit=200")).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("Ann Abbot"));
    assert_eq!(names.last().map(String::as_str), Some("Zak Zane"));
    assert!(names.windows(2).all(|w| w[0] <= w[1]), "by name: {names:?}");

    // The statements asked for, newest first: one asked for meanwhile is newer than every page
    // still to come, so it shifts nothing and is not among them.
    for witness in &witnesses[..5] {
        ask_witness(&learner, cast.enrolment, witness).await;
    }
    let requests = format!("/api/v1/enrolments/{}/witness-requests", cast.enrolment);
    let before = whole(&learner, &requests, id_of).await;
    assert_eq!(before.len(), 5);
    let (seen, pages) = walk_while(&learner, &requests, 2, &[], id_of, async || {
        ask_witness(&learner, cast.enrolment, &witnesses[6]).await
    })
    .await;
    let after = whole(&learner, &requests, id_of).await;
    assert_eq!(after.len(), 6);
    let newest = after.difference(&before).next().unwrap().clone();
    walked(&requests, &seen, &before, &after, &newest, false);
    assert_eq!(pages, 3, "2 + 2 + 1");
    let first = learner.json(&format!("{requests}?limit=1")).await;
    assert_eq!(first["items"][0]["id"], newest.as_str(), "newest first");
    assert_eq!(first["items"][0]["state"], "waiting");

    // The assessor and the IQA read the same pages; another learner does not.
    for who in [&cast.assessor, &cast.iqa] {
        let client = app.api_for(who).await;
        assert_eq!(whole(&client, &register, id_of).await, after_register(&learner, &register).await);
    }
    let other = app.add_user(Role::Learner, "Olu Other").await;
    let response = app.api_for(&other).await.get(&format!("{requests}?limit=1")).await;
    assert!(response.status() == StatusCode::NOT_FOUND || response.status() == StatusCode::FORBIDDEN);
}

async fn after_register(learner: &Browser, register: &str) -> BTreeSet<String> {
    whole(learner, register, id_of).await
}

async fn place_hold(admin: &Browser, learner: uuid::Uuid, reason: &str) -> String {
    let response = admin.post_json(&format!("/api/v1/users/{learner}/legal-hold"), &json!({"reason": reason})).await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    id_of(&response.json::<Value>().await.unwrap())
}

async fn lift_hold(admin: &Browser, learner: uuid::Uuid) {
    let response = admin
        .post_json(&format!("/api/v1/users/{learner}/legal-hold/lift"), &json!({"reason": "Appeal decided"}))
        .await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());
}

#[tokio::test]
async fn an_administrator_walks_legal_holds_and_purge_runs_in_pages_while_more_are_added() {
    let app = TestApp::spawn().await;
    let admin_user = app.add_user(Role::Admin, "Ada Admin").await;
    let admin = app.api_for(&admin_user).await;
    let mut held = Vec::new();
    for name in ["Hal Hughes", "Bea Bell", "Gus Gray", "Cal Cox", "Fin Fox"] {
        let learner = app.add_user(Role::Learner, name).await;
        place_hold(&admin, learner.id, "Appeal against the assessment decision").await;
        held.push(learner);
    }
    let late = app.add_user(Role::Learner, "Zara Zeal").await;

    // The holds in force at the centre, by learner, while one more is placed.
    let path = "/api/v1/centre/legal-holds";
    let before = whole(&admin, path, id_of).await;
    assert_eq!(before.len(), 5);
    let added = std::cell::RefCell::new(String::new());
    let (seen, pages) = walk_while(&admin, path, 2, &[], id_of, async || {
        *added.borrow_mut() = place_hold(&admin, late.id, "A claim is expected").await;
    })
    .await;
    let after = whole(&admin, path, id_of).await;
    walked(path, &seen, &before, &after, &added.borrow(), true);
    assert_eq!(pages, 3);
    let page = admin.json(&format!("{path}?limit=200")).await;
    let names: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|h| h["learner_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Bea Bell", "Cal Cox", "Fin Fox", "Gus Gray", "Hal Hughes", "Zara Zeal"]);
    assert!(page["items"].as_array().unwrap().iter().all(|h| h["lifted_at"].is_null()), "only holds in force");
    assert_eq!(admin.json("/api/v1/centre/retention").await["legal_holds_in_force"], 6);

    // One learner's holds, newest first: lifted and placed again twice, then once more while the
    // administrator reads (newer than every page still to come).
    let hal = held[0].id;
    for _ in 0..2 {
        lift_hold(&admin, hal).await;
        place_hold(&admin, hal, "A second appeal").await;
    }
    let path = format!("/api/v1/users/{hal}/legal-hold");
    let before = whole(&admin, &path, id_of).await;
    assert_eq!(before.len(), 3);
    let current = admin.json(&format!("{path}?limit=1")).await;
    assert!(current["items"][0]["lifted_at"].is_null(), "the hold in force heads the list: {current}");
    let (seen, pages) = walk_while(&admin, &path, 1, &[], id_of, async || {
        lift_hold(&admin, hal).await;
        place_hold(&admin, hal, "A third appeal").await;
    })
    .await;
    let after = whole(&admin, &path, id_of).await;
    let newest = after.difference(&before).next().unwrap().clone();
    walked(&path, &seen, &before, &after, &newest, false);
    assert_eq!(pages, 3);
    assert_eq!(seen[0], id_of(&current["items"][0]));

    // Purge runs (what `eportfolio purge --apply` records), newest first, while an older one
    // turns up (a run restored from a backup): it sorts after the pages read and is reached.
    for day in 1..=5 {
        sqlx::query(
            "INSERT INTO purge_runs (id, ran_at, as_of, summary)
             VALUES ($1, now() - make_interval(days => $2), current_date - $2, '{\"centres\": []}')",
        )
        .bind(uuid::Uuid::new_v4())
        .bind(day)
        .execute(&app.pool)
        .await
        .unwrap();
    }
    let path = "/api/v1/centre/purge-runs";
    let before = whole(&admin, path, id_of).await;
    assert_eq!(before.len(), 5);
    let older = uuid::Uuid::new_v4();
    let (seen, pages) = walk_while(&admin, path, 2, &[], id_of, async || {
        sqlx::query(
            "INSERT INTO purge_runs (id, ran_at, as_of, summary) VALUES ($1, now() - interval '400 days', current_date - 400, '{}')",
        )
        .bind(older)
        .execute(&app.pool)
        .await
        .unwrap();
    })
    .await;
    let after = whole(&admin, path, id_of).await;
    walked(path, &seen, &before, &after, &older.to_string(), true);
    assert_eq!(pages, 3);
    assert_eq!(seen.last(), Some(&older.to_string()), "the oldest run comes last");
}

/// The learner uploads an item and the assessor decides on it: assessed evidence the IQA's
/// population holds.
async fn assessed(learner: &Browser, assessor: &Browser, enrolment: uuid::Uuid, title: &str) -> String {
    let metadata = json!({"title": title, "method": "product", "occurred_on": "2026-03-17",
        "criteria": ["1.1"], "declaration": true});
    let response = learner
        .post_multipart(
            &format!("/api/v1/enrolments/{enrolment}/evidence"),
            api_evidence(metadata, vec![("log.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED, "{}", response.text().await.unwrap());
    let item = id_of(&response.json::<Value>().await.unwrap());
    let decided = assessor
        .post_json(
            &format!("/api/v1/evidence/{item}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Say which procedure you followed."}),
        )
        .await;
    assert_eq!(decided.status(), StatusCode::CREATED, "{}", decided.text().await.unwrap());
    item
}

fn in_days(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days)).to_string()
}

#[tokio::test]
async fn an_iqa_walks_the_strategy_coverage_plan_draws_and_meetings_in_pages_while_records_are_added() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let assessor = app.api_for(&cast.assessor).await;
    let iqa = app.api_for(&cast.iqa).await;

    // The strategy: the centre's assessors by name, two at a time, while one more joins.
    for name in ["Bob Baker", "Cat Carter", "Dee Dixon", "Eli Evans"] {
        app.add_user(Role::Assessor, name).await;
    }
    let path = "/api/v1/iqa/strategy";
    let assessor_key =
        |a: &Value| format!("{}/{}", a["centre_id"].as_str().unwrap(), a["assessor_id"].as_str().unwrap());
    let before = whole(&iqa, path, assessor_key).await;
    assert_eq!(before.len(), 5, "Ada and four more");
    let added = std::cell::RefCell::new(String::new());
    let (seen, pages) = walk_while(&iqa, path, 2, &["centres"], assessor_key, async || {
        let zoe = app.add_user(Role::Assessor, "Zoe Young").await;
        let centre = iqa.json("/api/v1/iqa/strategy?limit=1").await["centres"][0]["centre_id"].clone();
        *added.borrow_mut() = format!("{}/{}", centre.as_str().unwrap(), zoe.id);
    })
    .await;
    let after = whole(&iqa, path, assessor_key).await;
    walked(path, &seen, &before, &after, &added.borrow(), true);
    assert_eq!(pages, 3);
    let first = iqa.json(&format!("{path}?limit=1")).await;
    assert_eq!(first["centres"][0]["rates"].as_array().unwrap().len(), 3, "each band's rate on every page");
    assert_eq!(first["items"][0]["name"], "Ada Assessor");
    assert_eq!(first["items"][0]["band"], "new");

    // Five assessed items; the coverage rows three at a time while a sixth is assessed.
    let mut items = Vec::new();
    for n in 0..5 {
        items.push(assessed(&learner, &assessor, cast.enrolment, &format!("Call log {n}")).await);
    }
    let path = "/api/v1/iqa/coverage";
    let row_key = |r: &Value| format!("{}|{}", r["dimension"].as_str().unwrap(), r["label"].as_str().unwrap());
    let before = whole(&iqa, path, row_key).await;
    let sixth = std::cell::RefCell::new(String::new());
    let (seen, _) = walk_while(&iqa, path, 3, &["population", "sampled", "dimensions"], row_key, async || {
        *sixth.borrow_mut() = assessed(&learner, &assessor, cast.enrolment, "Call log 5").await;
    })
    .await;
    let after = whole(&iqa, path, row_key).await;
    let new_record =
        after.iter().find(|k| k.starts_with("records|") && k.contains(sixth.borrow().as_str())).unwrap().clone();
    walked(path, &seen, &before, &after, &new_record, true);
    let records = iqa.json(&format!("{path}?dimension=records&limit=200")).await;
    assert_eq!(records["population"], 6);
    assert_eq!(records["items"].as_array().unwrap().len(), 6, "one row per assessed item");
    assert!(records["items"].as_array().unwrap().iter().all(|r| r["dimension"] == "records"));
    let dimensions = records["dimensions"].as_array().unwrap();
    assert_eq!(dimensions.len(), 7, "every CAMERA table and time, on every page");
    assert_eq!(dimensions.iter().find(|d| d["key"] == "records").unwrap()["rows"], 6);
    assert_eq!(dimensions.iter().find(|d| d["key"] == "records").unwrap()["gaps"], 6, "nothing sampled yet");
    let refused = iqa.get(&format!("{path}?dimension=vibes")).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.json::<Value>().await.unwrap()["errors"][0]["field"], "dimension");
    items.push(sixth.borrow().clone());

    // The plan by date: five items planned on different days, walked two at a time while the
    // sixth is planned after them all.
    for (n, item) in items[..5].iter().enumerate() {
        let planned =
            iqa.post_json("/api/v1/iqa/plan", &json!({"evidence_id": item, "planned_on": in_days(5 - n as i64)})).await;
        assert_eq!(planned.status(), StatusCode::CREATED);
    }
    let path = "/api/v1/iqa/plan";
    let before = whole(&iqa, path, id_of).await;
    assert_eq!(before.len(), 5);
    let late = std::cell::RefCell::new(String::new());
    let (seen, pages) = walk_while(&iqa, path, 2, &[], id_of, async || {
        let planned =
            iqa.post_json("/api/v1/iqa/plan", &json!({"evidence_id": items[5], "planned_on": in_days(30)})).await;
        assert_eq!(planned.status(), StatusCode::CREATED);
        *late.borrow_mut() = id_of(&planned.json::<Value>().await.unwrap());
    })
    .await;
    let after = whole(&iqa, path, id_of).await;
    walked(path, &seen, &before, &after, &late.borrow(), true);
    assert_eq!(pages, 3);
    assert_eq!(seen.last(), Some(&*late.borrow()), "planned last, listed last");
    let dates: Vec<String> = iqa.json(&format!("{path}?limit=200")).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["planned_on"].as_str().unwrap().to_string())
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "by planned date: {dates:?}");

    // Draws, newest first, one at a time, while another is drawn (newer: not among the pages).
    for seed in ["north-1", "north-2", "north-3"] {
        let drawn = iqa.post_json("/api/v1/iqa/samples/draw", &json!({"seed": seed})).await;
        assert_eq!(drawn.status(), StatusCode::CREATED);
    }
    let path = "/api/v1/iqa/draws";
    let before = whole(&iqa, path, id_of).await;
    assert_eq!(before.len(), 3);
    let (seen, pages) = walk_while(&iqa, path, 1, &[], id_of, async || {
        let drawn = iqa.post_json("/api/v1/iqa/samples/draw", &json!({"seed": "north-4"})).await;
        assert_eq!(drawn.status(), StatusCode::CREATED);
    })
    .await;
    let after = whole(&iqa, path, id_of).await;
    let newest = after.difference(&before).next().unwrap().clone();
    walked(path, &seen, &before, &after, &newest, false);
    assert_eq!(pages, 3);
    let seeds: Vec<&str> = vec!["north-3", "north-2", "north-1"];
    let walked_seeds: Vec<String> = {
        let all = iqa.json(&format!("{path}?limit=200")).await;
        all["items"].as_array().unwrap().iter().skip(1).map(|d| d["seed"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(walked_seeds, seeds, "newest first");

    // Standardisation meetings, the latest held first, while one held long ago is recorded.
    let meeting = |held_on: String, title: &str| {
        json!({"held_on": held_on, "title": title, "attendees": [cast.assessor.id, cast.iqa.id],
               "items": [items[0]], "agreed_actions": "Quote the procedure in feedback."})
    };
    for n in 1..=3 {
        let recorded =
            iqa.post_json("/api/v1/standardisation", &meeting(in_days(-7 * n), &format!("Meeting {n}"))).await;
        assert_eq!(recorded.status(), StatusCode::CREATED, "{}", recorded.text().await.unwrap());
    }
    let path = "/api/v1/standardisation";
    let before = whole(&iqa, path, id_of).await;
    assert_eq!(before.len(), 3);
    let old = std::cell::RefCell::new(String::new());
    let (seen, pages) = walk_while(&iqa, path, 1, &[], id_of, async || {
        let recorded = iqa.post_json("/api/v1/standardisation", &meeting(in_days(-300), "Last year's")).await;
        assert_eq!(recorded.status(), StatusCode::CREATED);
        *old.borrow_mut() = id_of(&recorded.json::<Value>().await.unwrap());
    })
    .await;
    let after = whole(&iqa, path, id_of).await;
    walked(path, &seen, &before, &after, &old.borrow(), true);
    assert_eq!(pages, 4);
    assert_eq!(seen.last(), Some(&*old.borrow()), "held longest ago, listed last");

    // A cursor from one list means nothing to another with a different order.
    let strategy_cursor = iqa.json("/api/v1/iqa/strategy?limit=1").await["next_cursor"].as_str().unwrap().to_string();
    for other in ["/api/v1/iqa/plan", "/api/v1/standardisation", "/api/v1/iqa/draws"] {
        let response = iqa.get(&format!("{other}?cursor={strategy_cursor}")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{other}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{other}");
        assert_eq!(response.json::<Value>().await.unwrap()["errors"][0]["field"], "cursor", "{other}");
    }
}

#[tokio::test]
async fn an_administrator_walks_the_progress_report_in_pages_with_and_without_a_filter_while_a_learner_is_enrolled() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin_user = app.add_user(Role::Admin, "Ada Admin").await;
    let admin = app.api_for(&admin_user).await;
    for name in ["Mo Moss", "Bex Bird", "Kit King", "Dot Dale", "Ike Ives"] {
        let learner = app.add_user(Role::Learner, name).await;
        app.enrol(&learner, &cast.assessor, Some(&cast.iqa)).await;
    }
    let late = app.add_user(Role::Learner, "Zeb Zorn").await;
    let enrolment = |r: &Value| r["enrolment_id"].as_str().unwrap().to_string();
    let added = std::cell::RefCell::new(String::new());
    for path in ["/api/v1/reports/progress", "/api/v1/reports/progress?state=not_signed_off"] {
        let before = whole(&admin, path, enrolment).await;
        let count = admin.json(path).await["count"].as_i64().unwrap();
        assert_eq!(before.len() as i64, count, "{path}: count is the whole report");
        let (seen, _) = walk_while(&admin, path, 2, &["count"], enrolment, async || {
            if added.borrow().is_empty() {
                // Enrolled once, on the first walk; the second walks past it.
                *added.borrow_mut() = app.enrol(&late, &cast.assessor, Some(&cast.iqa)).await.to_string();
            }
        })
        .await;
        let after = whole(&admin, path, enrolment).await;
        let newcomer = after.difference(&before).next().cloned();
        match newcomer {
            Some(newcomer) => walked(path, &seen, &before, &after, &newcomer, true),
            None => {
                assert_eq!(no_repeats(path, &seen), after, "{path}: every row once");
            }
        }
        let join = if path.contains('?') { '&' } else { '?' };
        let learners: Vec<String> = admin.json(&format!("{path}{join}limit=200")).await["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["learner"].as_str().unwrap().to_string())
            .collect();
        assert!(learners.windows(2).all(|w| w[0] <= w[1]), "{path}: by learner: {learners:?}");
        assert_eq!(learners.last().map(String::as_str), Some("Zeb Zorn"), "{path}");
    }
    assert_eq!(admin.json("/api/v1/reports/progress").await["count"], 7, "Lee, five more and Zeb");
    assert_eq!(admin.json("/api/v1/reports/progress?state=signed_off").await["count"], 0);
}

/// The ids of the items listed on a portfolio page, in order.
fn listed_items(page: &str) -> Vec<String> {
    let table = page.split("<tbody>").nth(1).and_then(|rest| rest.split("</tbody>").next()).unwrap_or_default();
    table.split("href=\"/evidence/").skip(1).map(|rest| rest[..36].to_string()).collect()
}

#[tokio::test]
async fn a_long_portfolio_lists_its_evidence_25_at_a_time_newest_first_keeping_the_filters() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.api_for(&cast.learner).await;
    let mut uploaded = Vec::new();
    for _ in 0..27 {
        uploaded.push(call_log(&learner, cast.enrolment).await);
    }
    uploaded.reverse(); // newest first, as the list shows them
    let pages = app.browser_for(&cast.assessor).await;
    let portfolio = format!("/enrolments/{}", cast.enrolment);

    let first = pages.page(&portfolio).await;
    assert_eq!(listed_items(&first), uploaded[..25], "the newest 25");
    assert!(first.contains("Evidence <span class=\"count\">27</span>"), "the heading counts them all");
    assert!(first.contains("Items 1 to 25 of 27, newest first (page 1 of 2)."));
    assert!(!first.contains("rel=\"prev\""));
    let older = first.split("href=\"").skip(1).find_map(|rest| {
        let (href, tail) = rest.split_once('"')?;
        tail.starts_with(" rel=\"next\"").then(|| href.replace("&#38;", "&"))
    });
    let older = older.expect("a link to the older items");
    let second = pages.page(&older).await;
    assert_eq!(listed_items(&second), uploaded[25..], "then the oldest 2");
    assert!(second.contains("Items 26 to 27 of 27, newest first (page 2 of 2).") && second.contains("rel=\"prev\""));

    // The filters are kept from page to page; past the end is the last page.
    let filtered = pages.page(&format!("{portfolio}?criterion=1.1&state=awaiting")).await;
    assert!(filtered.contains("Evidence <span class=\"count\">27 of 27</span>"), "{filtered}");
    assert!(filtered.contains("?criterion=1.1&#38;state=awaiting&#38;page=2#evidence\" rel=\"next\""), "{filtered}");
    assert_eq!(listed_items(&pages.page(&format!("{portfolio}?page=9")).await), uploaded[25..]);
    let response = pages.get(&format!("{portfolio}?page=0")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("The page must be a whole number, from 1"));
}
