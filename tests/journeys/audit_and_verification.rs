//! The audit trail as administrators and external verifiers read it (the chain check, filters,
//! pages by sequence number), verifiers' access by date window and scope, their centre overview,
//! their report notes as their only write, and history panels on evidence and people.

use eportfolio::auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Cast, TestApp, api_evidence, pdf};

/// A submitted evidence item in the cast's learner's portfolio.
async fn submit_evidence(app: &TestApp, cast: &Cast, title: &str) -> Uuid {
    let api = app.api_for(&cast.learner).await;
    let metadata = json!({"title": title, "method": "product", "occurred_on": "2026-03-31",
                          "criteria": ["1.1"], "declaration": true});
    let response = api
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata, vec![("log.pdf", pdf())]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().parse().unwrap()
}

/// Every table's contents but the audit trail's and the session store's, to show nothing changed.
async fn snapshot(app: &TestApp) -> Vec<(String, String)> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables
         WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
           AND table_name NOT IN ('audit_events', 'sessions', '_sqlx_migrations')
         ORDER BY table_name",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut contents = Vec::new();
    for table in tables {
        let sql = format!("SELECT coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '') FROM \"{table}\" t");
        let digest: String = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&app.pool).await.unwrap();
        contents.push((table, digest));
    }
    contents
}

fn changed(before: &[(String, String)], after: &[(String, String)]) -> Vec<String> {
    before.iter().zip(after).filter(|(b, a)| b != a).map(|(b, _)| b.0.clone()).collect()
}

#[tokio::test]
async fn tampering_with_an_event_is_reported_at_that_event_by_the_page_the_api_and_the_command_line() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    submit_evidence(&app, &cast, "Call log").await;
    let admin_pages = app.browser_for(&admin).await;

    let page = admin_pages.page("/audit").await;
    assert!(page.contains("Whole chain: not checked yet"), "{page}");
    assert!(page.contains("This page: <span class=\"tag tag-met\">Intact</span>"), "{page}");
    assert!(page.contains("Check again"));
    // The administrator asks for the whole chain to be checked; the check is recorded.
    let events = app.count("SELECT count(*) FROM audit_events").await;
    let checked = admin_pages.post_form("/audit/check", &[]).await;
    assert_eq!(checked.status(), StatusCode::SEE_OTHER);
    let page = admin_pages.page("/audit?checked=1").await;
    assert!(page.contains(&format!("Intact: {events} events, last #{events}")), "{page}");
    assert!(page.contains("at the request of Ada Admin, just now"), "{page}");
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'audit.chain_checked'").await, 1);

    // Someone with database access rewrites the enrolment event behind the application's back.
    let target = enrolment_created_seq(&app).await;
    behind_the_applications_back(
        &app,
        "UPDATE audit_events SET details = '{\"unit\": \"XX99\"}' WHERE seq = $1",
        target,
    )
    .await;
    // The application itself still cannot change an event.
    let refused =
        sqlx::query("UPDATE audit_events SET details = '{}' WHERE seq = $1").bind(target).execute(&app.pool).await;
    assert!(refused.is_err(), "the trigger is back on");

    // The page checks the events it shows at once; the recorded whole-chain check is older.
    let page = admin_pages.page("/audit").await;
    assert!(
        page.contains(&format!("This page: <span class=\"tag tag-not_yet\">Broken</span> Broken at event #{target}: its contents do not match its hash")),
        "{page}"
    );
    assert!(page.contains(&format!("Intact: {events} events")), "the last whole-chain check is still shown: {page}");
    admin_pages.post_form("/audit/check", &[]).await;
    let page = admin_pages.page("/audit").await;
    assert!(
        page.contains(&format!(
            "Whole chain: <span class=\"tag tag-not_yet\">Broken</span> Broken at event #{target}: its contents"
        )),
        "{page}"
    );

    let verifier_pages = app.browser_for(&cast.verifier).await;
    let page = verifier_pages.page("/audit").await;
    assert!(
        page.contains(&format!("This page: <span class=\"tag tag-not_yet\">Broken</span> Broken at event #{target}")),
        "{page}"
    );

    let api = app.api_for(&admin).await;
    let check = api.json("/api/v1/audit/verify").await;
    assert_eq!(check["intact"], false);
    assert_eq!(check["first_broken"]["seq"], target);
    let trail = api.json("/api/v1/audit").await;
    assert_eq!(trail["shown_broken"]["seq"], target, "{trail}");
    assert_eq!(trail["whole_chain"]["intact"], false, "{trail}");
    let recorded = api.post_json("/api/v1/audit/checks", &serde_json::json!({})).await;
    assert_eq!(recorded.status(), StatusCode::CREATED);
    let recorded: serde_json::Value = recorded.json().await.unwrap();
    assert_eq!(recorded["first_broken"]["seq"], target, "{recorded}");
    assert_eq!(recorded["checked_by"], admin.id.to_string());

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_eportfolio"))
        .env("DATABASE_URL", &app.database_url)
        .env("EPORTFOLIO_DATA_DIR", &app.data_dir)
        .args(["audit", "verify"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "a broken chain fails the command: {stdout}");
    assert!(stdout.contains(&format!("BROKEN at event {target}:")), "{stdout}");
}

#[tokio::test]
async fn the_trail_filters_by_who_what_when_and_learner_and_pages_by_sequence_number() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let other_learner = app.add_user(Role::Learner, "Other Learner").await;
    let other_enrolment = app.enrol(&other_learner, &cast.assessor, None).await;

    // The verifier reads the learner's history 55 times: each view is recorded.
    let verifier = app.api_for(&cast.verifier).await;
    for _ in 0..55 {
        verifier.json(&format!("/api/v1/enrolments/{}/history", cast.enrolment)).await;
    }
    verifier.json(&format!("/api/v1/enrolments/{other_enrolment}/history")).await;

    let api = app.api_for(&admin).await;
    let filter = format!("what=verifier.viewed_history&learner={}", cast.enrolment);
    let first = api.json(&format!("/api/v1/audit?{filter}")).await;
    let first_page = first["events"].as_array().unwrap();
    assert_eq!(first_page.len(), 50, "fifty a page");
    let next = first["next"].as_i64().expect("a cursor to the older events");
    let second = api.json(&format!("/api/v1/audit?{filter}&before={next}")).await;
    let second_page = second["events"].as_array().unwrap();
    assert_eq!(second_page.len(), 5);
    assert!(second["next"].is_null(), "the last page has no cursor");
    let seqs: Vec<i64> = first_page.iter().chain(second_page).map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "newest first, no event twice: {seqs:?}");
    assert!(first_page.iter().chain(second_page).all(|e| e["action"] == "verifier.viewed_history"
        && e["enrolment_id"] == cast.enrolment.to_string()
        && e["actor_id"] == cast.verifier.id.to_string()));

    // Who: the verifier's events are views; the administrator has done nothing yet.
    let by_verifier = api.json(&format!("/api/v1/audit?who={}&what=verifier.", cast.verifier.id)).await;
    assert_eq!(by_verifier["events"].as_array().unwrap().len(), 50);
    let by_admin = api.json(&format!("/api/v1/audit?who={}", admin.id)).await;
    assert!(by_admin["events"].as_array().unwrap().is_empty());
    // When: nothing before today, everything from today.
    let today = chrono::Utc::now().date_naive();
    let yesterday = today - chrono::Duration::days(1);
    let none = api.json(&format!("/api/v1/audit?{filter}&to={yesterday}")).await;
    assert!(none["events"].as_array().unwrap().is_empty());
    let all = api.json(&format!("/api/v1/audit?{filter}&from={today}&to={today}")).await;
    assert_eq!(all["events"].as_array().unwrap().len(), 50);
    // The other learner's one view.
    let other = api.json(&format!("/api/v1/audit?what=verifier.viewed_history&learner={other_enrolment}")).await;
    assert_eq!(other["events"].as_array().unwrap().len(), 1);

    // Who and which learner by part of a name or email, as people type them: the same events
    // as by id. A `%` is a character like any other, not "anything".
    let by_name = api.json("/api/v1/audit?who=vera%20VERI&what=verifier.").await;
    assert_eq!(by_name["events"], by_verifier["events"]);
    let by_learner_name = api.json("/api/v1/audit?what=verifier.viewed_history&learner=other%20learn").await;
    assert_eq!(by_learner_name["events"], other["events"]);
    for (field, text, message) in
        [("who", "Nobody%20Here", "No one you can see"), ("who", "%25", "No one"), ("learner", "Vera", "No learner")]
    {
        let response = api.get(&format!("/api/v1/audit?{field}={text}")).await;
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{field}={text}");
        let problem = response.text().await.unwrap();
        assert!(problem.contains(message) && problem.contains(field), "{problem}");
    }

    // More people match than can be shown: the reader is asked for more of the name.
    sqlx::query(
        "WITH made AS (
             INSERT INTO users (id, email, name, password_hash)
             SELECT gen_random_uuid(), 'many' || n || '@example.org', 'Many Match ' || n, '!' FROM generate_series(1, 21) n
             RETURNING id)
         INSERT INTO user_roles (user_id, centre_id, role)
         SELECT made.id, r.centre_id, 'assessor' FROM made, user_roles r WHERE r.user_id = $1 AND r.role = 'admin'",
    )
    .bind(admin.id)
    .execute(&app.pool)
    .await
    .unwrap();
    let response = api.get("/api/v1/audit?who=many%20match").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("More than 20 people match"));
    assert_eq!(api.get("/api/v1/audit?who=many%20match%2021").await.status(), StatusCode::OK);

    // Bad filters are refused with the field named.
    let response = api.get("/api/v1/audit?from=yesterday").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("from"));

    // The page: the same filters, an "Older events" link by sequence number, never an offset.
    let pages = app.browser_for(&admin).await;
    let page = pages.page(&format!("/audit?{filter}")).await;
    assert!(page.contains(&format!("before={next}")), "{page}");
    assert!(page.contains("Older events") && !page.contains("offset"));
    let page = pages.page(&format!("/audit?{filter}&before={next}")).await;
    assert_eq!(page.matches("<code>verifier.viewed_history</code>").count(), 5);
    assert!(!page.contains("Older events"));
    let page = pages.page("/audit?who=vera").await;
    assert!(page.contains(&format!("Showing Vera Verifier ({})", cast.verifier.email)), "{page}");
    assert!(page.contains(r#"name="who" type="search" value="vera""#), "{page}");
    let response = pages.get("/audit?learner=nobody").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("href=\"#learner\""));
    let response = pages.get("/audit?to=31/12/2026").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("href=\"#to\""));

    // A verifier's reading of the trail is itself recorded.
    let before = app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_audit_trail'").await;
    verifier.json("/api/v1/audit").await;
    let after = app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_audit_trail'").await;
    assert_eq!(after, before + 1);

    // Another centre's administrator sees none of this centre's events.
    let elsewhere = app.add_user_elsewhere("Other College", Role::Admin, "Other Admin").await;
    let theirs = app.api_for(&elsewhere).await.json("/api/v1/audit?what=verifier.").await;
    assert!(theirs["events"].as_array().unwrap().is_empty(), "{theirs}");
}

#[tokio::test]
async fn verifier_access_follows_its_dates_its_scope_and_revocation() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let other_learner = app.add_user(Role::Learner, "Olive Other").await;
    let other_enrolment = app.enrol(&other_learner, &cast.assessor, None).await;
    let centre = app.centre;

    // Access that ended yesterday, or begins tomorrow, shows nothing.
    for (from, to) in [(-10, -1), (1, 10)] {
        let late = app.add_user(Role::Eqa, "Lou Late").await;
        app.grant_verifier(&late, from, to).await;
        let pages = app.browser_for(&late).await;
        assert_eq!(pages.get(&format!("/enrolments/{}", cast.enrolment)).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(pages.get(&format!("/verify/centres/{centre}")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(pages.get("/audit").await.status(), StatusCode::FORBIDDEN);
        let api = app.api_for(&late).await;
        assert_eq!(api.get(&format!("/api/v1/verify/centres/{centre}")).await.status(), StatusCode::NOT_FOUND);
        assert_eq!(api.get("/api/v1/audit").await.status(), StatusCode::FORBIDDEN);
        let landing = pages.page("/verification").await;
        assert!(landing.contains("no current access"), "{landing}");
    }

    // The administrator's grant for chosen learners: a unit code that does not exist is refused.
    let scoped = app.add_user(Role::Eqa, "Sam Scoped").await;
    let admin_pages = app.browser_for(&admin).await;
    admin_pages.page("/admin/verifiers").await;
    let today = chrono::Utc::now().date_naive().to_string();
    let response = admin_pages
        .post_form(
            "/admin/verifiers",
            &[
                ("verifier", &scoped.email),
                ("starts_on", &today),
                ("ends_on", &today),
                ("scope", "units"),
                ("units", "XX99"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("There is no unit with the code XX99"));
    admin_pages.page("/admin/verifiers").await;
    let response = admin_pages
        .post_form(
            "/admin/verifiers",
            &[
                ("verifier", &scoped.email),
                ("starts_on", &today),
                ("ends_on", &today),
                ("scope", "learners"),
                ("learners", &cast.learner.email),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let list = admin_pages.page("/admin/verifiers").await;
    assert!(list.contains("Chosen learners"), "{list}");

    let pages = app.browser_for(&scoped).await;
    assert_eq!(pages.get(&format!("/enrolments/{}", cast.enrolment)).await.status(), StatusCode::OK);
    assert_eq!(pages.get(&format!("/enrolments/{other_enrolment}")).await.status(), StatusCode::NOT_FOUND);
    let dashboard = pages.page("/dashboard").await;
    assert!(!dashboard.contains("Olive Other"), "{dashboard}");
    let overview = pages.page(&format!("/verify/centres/{centre}")).await;
    assert!(!overview.contains("Olive Other") && overview.contains("Ada Assessor"), "{overview}");
    let api = app.api_for(&scoped).await;
    let overview = api.json(&format!("/api/v1/verify/centres/{centre}")).await;
    let learners = overview["learners"].as_array().unwrap();
    assert_eq!(learners.len(), 1);
    assert_eq!(learners[0]["id"], cast.enrolment.to_string());
    let trail = api.json("/api/v1/audit").await;
    let events = trail["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(
        events.iter().all(|e| e["enrolment_id"] == cast.enrolment.to_string()),
        "only the chosen learner's events: {trail}"
    );
    // Another learner's enrolment is answered as one that does not exist.
    let response = api.get(&format!("/api/v1/audit?learner={other_enrolment}")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem = response.json::<Value>().await.unwrap();
    assert!(problem.get("events").is_none() && problem.to_string().contains("No learner you can see"), "{problem}");
    let response = api.get(&format!("/api/v1/audit?learner={}", uuid::Uuid::new_v4())).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // A grant for units covers every learner on them, through the API as well.
    let by_unit = app.add_user(Role::Eqa, "Una Unit").await;
    let admin_api = app.api_for(&admin).await;
    let response = admin_api
        .post_json(
            "/api/v1/verifier-grants",
            &json!({"verifier": by_unit.email, "starts_on": today, "ends_on": today, "scope": "units", "units": "CC20"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let grant: Value = response.json().await.unwrap();
    let unit_api = app.api_for(&by_unit).await;
    let overview = unit_api.json(&format!("/api/v1/verify/centres/{centre}")).await;
    assert_eq!(overview["learners"].as_array().unwrap().len(), 2);

    // Revoked access ends at once.
    let response =
        admin_api.request_delete(&format!("/api/v1/verifier-grants/{}", grant["id"].as_str().unwrap())).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(unit_api.get(&format!("/api/v1/verify/centres/{centre}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(unit_api.get(&format!("/api/v1/enrolments/{}", cast.enrolment)).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(unit_api.get("/api/v1/audit").await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_verifier_only_reads_and_their_report_notes_are_their_only_write() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let evidence = submit_evidence(&app, &cast, "Call log").await;
    let centre = app.centre;
    let pages = app.browser_for(&cast.verifier).await;
    let api = app.api_for(&cast.verifier).await;

    let before = snapshot(&app).await;
    let events_before = app.count("SELECT count(*) FROM audit_events").await;
    for path in [
        "/dashboard".to_string(),
        "/verification".to_string(),
        format!("/verify/centres/{centre}"),
        format!("/enrolments/{}", cast.enrolment),
        format!("/enrolments/{}/history", cast.enrolment),
        format!("/evidence/{evidence}"),
        "/audit".to_string(),
    ] {
        let response = pages.get(&path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    }
    for path in [
        format!("/api/v1/verify/centres/{centre}"),
        "/api/v1/audit".to_string(),
        format!("/api/v1/evidence/{evidence}"),
    ] {
        api.json(&path).await;
    }
    let landing = pages.page("/verification").await;
    assert!(landing.contains(&format!("/verify/centres/{centre}")), "{landing}");
    // Attempts to change the learner's records are refused.
    let response = api
        .post_json(
            &format!("/api/v1/evidence/{evidence}/decisions"),
            &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Redo it"}),
        )
        .await;
    assert!(matches!(response.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", response.status());
    let response = api.post_json(&format!("/api/v1/evidence/{evidence}/comments"), &json!({"body": "Hello"})).await;
    assert!(matches!(response.status(), StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}", response.status());
    assert_eq!(changed(&before, &snapshot(&app).await), Vec::<String>::new(), "the verifier changed nothing");
    let views = app.count("SELECT count(*) FROM audit_events WHERE actor_role = 'eqa'").await;
    assert!(app.count("SELECT count(*) FROM audit_events").await > events_before && views >= 8, "views are recorded");
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_centre'").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.viewed_audit_trail'").await, 2);

    // Even a bug could not write for them: their request transaction refuses writes in the database.
    let state = eportfolio::AppState::new(app.pool.clone(), app.config.clone()).await.unwrap();
    let actor = {
        let mut conn = app.pool.acquire().await.unwrap();
        eportfolio::accounts::load_actor(&mut conn, cast.verifier.id).await.unwrap().unwrap()
    };
    let mut tx = state.begin(&actor).await.unwrap();
    let error = sqlx::query("INSERT INTO verifier_notes (id, verifier_id, centre_id, visit_on, body) VALUES ($1, $2, $3, current_date, 'x')")
        .bind(Uuid::new_v4())
        .bind(cast.verifier.id)
        .bind(centre)
        .execute(&mut *tx)
        .await
        .unwrap_err();
    assert_eq!(error.as_database_error().and_then(|e| e.code()).as_deref(), Some("25006"), "{error}");
    drop(tx);

    // The report note: refused when empty, then written, audited, and nothing else changes.
    pages.page(&format!("/verify/centres/{centre}")).await;
    let response =
        pages.post_form(&format!("/verify/centres/{centre}/notes"), &[("visit_on", "2026-12-01"), ("body", " ")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("href=\"#body\""));
    let before = snapshot(&app).await;
    pages.page(&format!("/verify/centres/{centre}")).await;
    let response = pages
        .post_form(
            &format!("/verify/centres/{centre}/notes"),
            &[("visit_on", "2026-12-01"), ("body", "Sampled the call logs; assessor feedback is specific.")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(changed(&before, &snapshot(&app).await), vec!["verifier_notes".to_string()]);
    let overview = pages.page(&format!("/verify/centres/{centre}")).await;
    assert!(overview.contains("Sampled the call logs") && overview.contains("Visit on 01 Dec 2026"), "{overview}");
    let response = api
        .post_json(
            &format!("/api/v1/verify/centres/{centre}/notes"),
            &json!({"visit_on": "2026-12-02", "body": "Second day."}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.note_written'").await, 2);
    assert_eq!(app.count("SELECT count(*) FROM verifier_notes").await, 2);

    // Notes are their own: another verifier at the centre does not see them.
    let colleague = app.add_user(Role::Eqa, "Col League").await;
    app.grant_verifier(&colleague, 0, 5).await;
    let overview = app.browser_for(&colleague).await.page(&format!("/verify/centres/{centre}")).await;
    assert!(!overview.contains("Sampled the call logs"));
    // And nobody else may write one.
    let assessor = app.api_for(&cast.assessor).await;
    let response = assessor
        .post_json(
            &format!("/api/v1/verify/centres/{centre}/notes"),
            &json!({"visit_on": "2026-12-02", "body": "Mine"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn evidence_and_people_show_their_history() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let evidence = submit_evidence(&app, &cast, "Call log").await;

    // The verifier opens the item; the learner sees that in the item's history.
    let verifier = app.browser_for(&cast.verifier).await;
    assert_eq!(verifier.get(&format!("/evidence/{evidence}")).await.status(), StatusCode::OK);
    let learner = app.browser_for(&cast.learner).await;
    let page = learner.page(&format!("/evidence/{evidence}")).await;
    let panel = &page[page.find("<details class=\"history-panel\">").expect("a history panel")..];
    assert!(panel.contains("Submitted evidence \u{201c}Call log\u{201d}"), "{panel}");
    assert!(panel.contains("External verifier viewed an evidence item"), "{panel}");

    // The administrator changes a person's name; the person's page shows it.
    let admin_pages = app.browser_for(&admin).await;
    admin_pages.page(&format!("/admin/users/{}", cast.learner.id)).await;
    let response = admin_pages
        .post_form(
            &format!("/admin/users/{}", cast.learner.id),
            &[("name", "Lee Learner-Smith"), ("email", &cast.learner.email), ("roles", "learner")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = admin_pages.page(&format!("/admin/users/{}", cast.learner.id)).await;
    let panel = &page[page.find("<details class=\"history-panel\">").expect("a history panel")..];
    assert!(panel.contains("user created") && panel.contains("user updated"), "{panel}");
    assert!(panel.contains("Ada Admin"), "{panel}");
}

#[tokio::test]
async fn a_verifier_draws_their_own_sample_reproducibly_and_widens_it() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let centre = app.centre;
    let assessor = app.api_for(&cast.assessor).await;
    for title in ["Call log", "Huddle notes", "Rota", "Complaint reply"] {
        let evidence = submit_evidence(&app, &cast, title).await;
        let response = assessor
            .post_json(
                &format!("/api/v1/evidence/{evidence}/decisions"),
                &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Say which procedure you followed."}),
            )
            .await;
        assert!(response.status().is_success(), "{}", response.status());
    }

    let api = app.api_for(&cast.verifier).await;
    let first = api.json(&format!("/api/v1/verify/centres/{centre}/sample?seed=visit-1")).await;
    let again = api.json(&format!("/api/v1/verify/centres/{centre}/sample?seed=visit-1")).await;
    assert_eq!(first["population"], 4);
    assert_eq!(first["strata"], again["strata"], "the same seed gives the same sample");
    let drawn = |sample: &Value| -> usize {
        sample["strata"].as_array().unwrap().iter().map(|s| s["drawn"].as_array().unwrap().len()).sum()
    };
    assert!(drawn(&first) >= 1);
    let wide = api.json(&format!("/api/v1/verify/centres/{centre}/sample?seed=visit-1&widen=100")).await;
    assert_eq!(drawn(&wide), 4, "widened to every item");
    assert_eq!(app.count("SELECT count(*) FROM audit_events WHERE action = 'verifier.drew_sample'").await, 3);
    let response = api.get(&format!("/api/v1/verify/centres/{centre}/sample?widen=lots")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let pages = app.browser_for(&cast.verifier).await;
    let page = pages.page(&format!("/verify/centres/{centre}/sample?seed=visit-1&widen=100")).await;
    assert_eq!(page.matches("href=\"/evidence/").count(), 4, "{page}");
    let overview = pages.page(&format!("/verify/centres/{centre}")).await;
    assert!(overview.contains("Internal quality assurance") && overview.contains("Draw your sample"));

    // A verifier given other learners only draws from nothing here.
    let other = app.add_user(Role::Learner, "Olive Other").await;
    app.enrol(&other, &cast.assessor, None).await;
    let scoped = app.add_user(Role::Eqa, "Sam Scoped").await;
    let grant = app.grant_verifier(&scoped, 0, 3).await;
    let mut conn = app.pool.acquire().await.unwrap();
    let enrolment: Uuid = sqlx::query_scalar("SELECT id FROM enrolments WHERE learner_id = $1")
        .bind(other.id)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    eportfolio::verification::set_grant_scope(
        &mut conn,
        None,
        grant,
        &eportfolio::verification::GrantScope::Learners(vec![enrolment]),
    )
    .await
    .unwrap();
    let sample = app.api_for(&scoped).await.json(&format!("/api/v1/verify/centres/{centre}/sample?seed=visit-1")).await;
    assert_eq!(sample["population"], 0, "{sample}");
}

#[tokio::test]
async fn a_verifier_downloads_their_sample_as_a_pack_of_offline_portfolios_that_verifies() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let second = app.add_user(Role::Learner, "Second Learner").await;
    let second_enrolment = app.enrol(&second, &cast.assessor, Some(&cast.iqa)).await;
    let second_cast = Cast {
        learner: second,
        assessor: cast.assessor.clone(),
        iqa: cast.iqa.clone(),
        verifier: cast.verifier.clone(),
        enrolment: second_enrolment,
    };
    let assessor = app.api_for(&cast.assessor).await;
    for (who, title) in [(&cast, "Call log"), (&second_cast, "Huddle notes")] {
        let evidence = submit_evidence(&app, who, title).await;
        let response = assessor
            .post_json(
                &format!("/api/v1/evidence/{evidence}/decisions"),
                &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Say which procedure you followed."}),
            )
            .await;
        assert!(response.status().is_success());
    }
    let centre = app.centre;
    let verifier = app.browser_for(&cast.verifier).await;
    let page = verifier.page(&format!("/verify/centres/{centre}/sample?seed=visit-9&widen=100")).await;
    let link = format!("/verify/centres/{centre}/sample/pack?seed=visit-9&amp;widen=100");
    assert!(page.contains(&link), "the sample page offers the pack: {page}");

    let response = verifier.get(&link.replace("&amp;", "&")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/zip");
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("sample-pack-visit-9.zip"));
    let bytes = response.bytes().await.unwrap().to_vec();
    let intact = eportfolio::export::verify::verify(std::io::Cursor::new(&bytes)).expect("the pack verifies");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(&bytes)).unwrap();
    let mut manifest = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("manifest.json").unwrap(), &mut manifest).unwrap();
    let manifest: Value = serde_json::from_str(&manifest).unwrap();
    assert_eq!(manifest["format"], "eportfolio verifier sample pack 1");
    assert_eq!(manifest["seed"], "visit-9");
    assert_eq!(manifest["portfolios"].as_array().unwrap().len(), 2, "both sampled portfolios: {manifest}");
    assert!(intact.files >= 2, "{intact:?}");
    let mut index = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("index.html").unwrap(), &mut index).unwrap();
    assert!(index.contains("Verifier sample pack: Test Centre (seed visit-9)"));
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'export.downloaded' AND actor_role = 'eqa'").await,
        2,
        "each portfolio's download is recorded"
    );

    // A learner cannot have it.
    let learner = app.browser_for(&cast.learner).await;
    let refused = learner.get(&format!("/verify/centres/{centre}/sample/pack?seed=visit-9")).await;
    assert!(refused.status() == StatusCode::FORBIDDEN || refused.status() == StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_page_names_an_overwritten_hash_and_leaves_events_it_does_not_show_to_the_whole_chain_check() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    submit_evidence(&app, &cast, "Call log").await;
    let api = app.api_for(&admin).await;

    // Someone overwrites an event's hash: the event no longer matches it, and the next event no
    // longer links to it.
    let target = enrolment_created_seq(&app).await;
    behind_the_applications_back(&app, "UPDATE audit_events SET hash = repeat('a', 64) WHERE seq = $1", target).await;

    let everything = api.json("/api/v1/audit").await;
    let shown = &everything["shown_broken"];
    assert!(shown["seq"] == target || shown["seq"] == target + 1, "{everything}");

    // Filtered to decisions only, the page does not show that event or its neighbours, so its
    // own check finds nothing; the whole-chain check does.
    let decisions = api.json("/api/v1/audit?what=evidence.submitted").await;
    let seqs = shown_seqs(&decisions);
    assert!(!seqs.is_empty() && seqs.iter().all(|s| (s - target).abs() > 1), "{seqs:?} {target}");
    assert!(decisions["shown_broken"].is_null(), "{decisions}");
    let check: serde_json::Value =
        api.post_json("/api/v1/audit/checks", &serde_json::json!({})).await.json().await.unwrap();
    assert_eq!(check["intact"], false);
    assert_eq!(check["first_broken"]["seq"], target, "the rewritten event's own hash no longer matches: {check}");
}

/// Events recorded before events had a centre (NULL) belong to their enrolment's centre: its
/// administrator and verifier read them, another centre's administrator does not.
#[tokio::test]
async fn events_from_before_centres_were_recorded_are_read_through_their_enrolments_centre() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let elsewhere = app.add_user_elsewhere("Elsewhere College", Role::Admin, "Olga Other").await;
    let target = enrolment_created_seq(&app).await;
    behind_the_applications_back(&app, "UPDATE audit_events SET centre_id = NULL WHERE seq = $1", target).await;
    let enrolments = "/api/v1/audit?what=enrolment.created";
    assert_eq!(shown_seqs(&app.api_for(&admin).await.json(enrolments).await), vec![target]);
    assert_eq!(shown_seqs(&app.api_for(&cast.verifier).await.json(enrolments).await), vec![target]);
    assert_eq!(shown_seqs(&app.api_for(&elsewhere).await.json(enrolments).await), Vec::<i64>::new());
    let mine = format!("/api/v1/audit?learner={}", cast.enrolment);
    assert!(shown_seqs(&app.api_for(&admin).await.json(&mine).await).contains(&target));
}

/// The link from a shown event to the next one is checked even when the next event is not
/// shown (here, filtered out): relinked, the page names it; removed, the page says it is missing.
#[tokio::test]
async fn a_shown_events_next_event_is_checked_though_the_page_does_not_show_it() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    submit_evidence(&app, &cast, "Call log").await;
    let api = app.api_for(&admin).await;
    let target = enrolment_created_seq(&app).await;
    let enrolments = "/api/v1/audit?what=enrolment.created";
    let page = api.json(enrolments).await;
    assert_eq!(shown_seqs(&page), vec![target], "{page}");
    assert!(page["shown_broken"].is_null(), "{page}");

    behind_the_applications_back(
        &app,
        "UPDATE audit_events SET prev_hash = repeat('b', 64) WHERE seq = $1 + 1",
        target,
    )
    .await;
    let page = api.json(enrolments).await;
    assert_eq!(shown_seqs(&page), vec![target], "the relinked event is not shown: {page}");
    assert_eq!(page["shown_broken"]["seq"], target + 1, "{page}");
    assert_eq!(page["shown_broken"]["reason"], "its link to the previous event does not match", "{page}");

    behind_the_applications_back(&app, "DELETE FROM audit_events WHERE seq = $1 + 1", target).await;
    let page = api.json(enrolments).await;
    assert_eq!(page["shown_broken"]["seq"], target + 2, "{page}");
    assert_eq!(page["shown_broken"]["reason"], format!("event {} is missing", target + 1), "{page}");
}

#[tokio::test]
async fn the_server_checks_the_whole_chain_on_its_schedule_and_the_trail_shows_when() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let schedule = tokio::spawn(eportfolio::audit::checks::on_schedule(
        app.pool.clone(),
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(3600),
    ));
    let mut recorded = 0;
    for _ in 0..100 {
        recorded = app.count("SELECT count(*) FROM audit_checks WHERE checked_by IS NULL").await;
        if recorded > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    schedule.abort();
    assert_eq!(recorded, 1, "the first check runs at once");
    let page = app.browser_for(&admin).await.page("/audit").await;
    assert!(
        page.contains("by the server&#39;s scheduled check") || page.contains("by the server's scheduled check"),
        "{page}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM audit_events WHERE action = 'audit.chain_checked'").await,
        0,
        "the server's own checks are not events"
    );
}

/// The sequence number of the test centre's one `enrolment.created` event.
async fn enrolment_created_seq(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT seq FROM audit_events WHERE action = 'enrolment.created'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// The sequence numbers of the events a page of the trail API shows, in its order.
fn shown_seqs(page: &serde_json::Value) -> Vec<i64> {
    page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()).collect()
}

/// Changes one event as someone with direct database access could: with the append-only
/// triggers off for the moment of the change.
async fn behind_the_applications_back(app: &TestApp, sql: &'static str, seq: i64) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE audit_events DISABLE TRIGGER ALL").execute(&mut *tx).await.unwrap();
    sqlx::query(sql).bind(seq).execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE audit_events ENABLE TRIGGER ALL").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

/// Verifiers' views arriving together are recorded together (`audit::Views`): every one of them,
/// each answered only once its view is committed, and the chain still verifies.
#[tokio::test]
async fn views_arriving_together_are_each_recorded_and_the_chain_stays_intact() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let evidence = submit_evidence(&app, &cast, "Call log").await;
    let verifier = app.browser_for(&cast.verifier).await;
    let views = |action: &'static str| {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM audit_events WHERE action = $1")
            .bind(action)
            .fetch_one(&app.pool)
    };
    let portfolios = views("verifier.viewed_portfolio").await.unwrap();
    let items = views("verifier.viewed_evidence").await.unwrap();
    let trails = views("verifier.viewed_audit_trail").await.unwrap();

    let pages = [format!("/enrolments/{}", cast.enrolment), format!("/evidence/{evidence}"), "/audit".to_string()];
    let answers = futures_util::future::join_all((0..30).map(|i| {
        let (verifier, path) = (&verifier, &pages[i % 3]);
        async move { verifier.get(path).await.status() }
    }))
    .await;
    assert!(answers.iter().all(|status| *status == StatusCode::OK), "{answers:?}");
    assert_eq!(views("verifier.viewed_portfolio").await.unwrap(), portfolios + 10);
    assert_eq!(views("verifier.viewed_evidence").await.unwrap(), items + 10);
    assert_eq!(views("verifier.viewed_audit_trail").await.unwrap(), trails + 10);
    let mut conn = app.pool.acquire().await.unwrap();
    let verified = eportfolio::audit::verify(&mut conn).await.unwrap();
    assert!(verified.intact, "{:?}", verified.first_broken);
    // Each view names its enrolment's centre, as one recorded alone does.
    let centreless = app
        .count("SELECT count(*) FROM audit_events WHERE action LIKE 'verifier.viewed_%' AND centre_id IS NULL")
        .await;
    assert_eq!(centreless, 0);
}
