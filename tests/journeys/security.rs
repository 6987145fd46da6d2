//! The security baseline: CSRF, sessions (fresh id, idle and absolute expiry, ending on password
//! change), throttled sign-in, personal API tokens, password-set links, headers, and verifier
//! access that is time-boxed and read-only down to the database.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, RETRY_AFTER, SET_COOKIE};
use serde_json::{Value, json};

use crate::common::{Browser, TestApp, api_evidence, pdf};

#[tokio::test]
async fn state_changing_requests_without_the_sessions_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;

    // A form posted without the token (as from another site) changes nothing.
    let response = learner.post_form_as_is("/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("did not come from this site"));
    assert_eq!(learner.get("/dashboard").await.status(), StatusCode::OK, "still signed in");

    // An upload whose first part is not the session's token is refused before any file is read.
    let forged = reqwest::multipart::Form::new().text("csrf_token", "0".repeat(64));
    let form = crate::common::evidence_form(forged, "Forged", &["1.1"], true, Some(("x.pdf", pdf())));
    let response = learner.post_multipart(&format!("/enrolments/{}/evidence", cast.enrolment), form).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let no_token =
        crate::common::evidence_form(reqwest::multipart::Form::new(), "Forged", &["1.1"], true, Some(("x.pdf", pdf())));
    let response = learner.post_multipart(&format!("/enrolments/{}/evidence", cast.enrolment), no_token).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM evidence_items").await, 0);
    assert!(app.stored_files().is_empty());

    // Another session's token does not work here.
    let other = app.browser_for(&cast.assessor).await;
    *learner.csrf.lock().unwrap() = other.csrf_token();
    assert_eq!(learner.post_form("/logout", &[]).await.status(), StatusCode::FORBIDDEN);

    // The API with a session cookie needs X-CSRF-Token; with a Bearer token it does not.
    let api = app.api_for(&cast.learner).await;
    let metadata = json!({"title": "Log", "method": "product", "occurred_on": "2026-03-31", "criteria": ["1.6"], "declaration": true});
    *api.csrf.lock().unwrap() = Some("wrong".into());
    let response = api
        .post_multipart(
            &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
            api_evidence(metadata.clone(), vec![]),
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let token = {
        let mut conn = app.pool.acquire().await.unwrap();
        eportfolio::auth::tokens::create(&mut conn, cast.learner.id, "script").await.unwrap().token
    };
    let script = Browser::with_token(&app, &token);
    let metadata = json!({"title": "Log", "method": "product", "occurred_on": "2026-03-31", "criteria": ["1.6"], "declaration": true, "description": "Written record"});
    let response = script
        .post_multipart(&format!("/api/v1/enrolments/{}/evidence", cast.enrolment), api_evidence(metadata, vec![]))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("eportfolio_session="))
        .map(|c| c.split(';').next().unwrap().to_string())
}

#[tokio::test]
async fn signing_in_starts_a_new_session_which_expires_when_idle_or_too_old() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let browser = Browser::new(&app);
    let before = session_cookie(&browser.get("/login").await).expect("the login page starts a session for its form");
    let login = browser.page("/login").await;
    assert!(login.contains("csrf_token"));
    let response = browser
        .post_form("/login", &[("email", &cast.learner.email), ("password", &cast.learner.password), ("next", "/")])
        .await;
    let after = session_cookie(&response).expect("a new session cookie on sign-in");
    assert_ne!(before, after, "the session id changes on sign-in");
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    assert_eq!(browser.get("/dashboard").await.status(), StatusCode::OK);

    // Idle too long: the stored session has expired.
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    app.settle().await;
    assert_eq!(browser.get("/dashboard").await.status(), StatusCode::SEE_OTHER);

    // Signed in too long ago, however active since.
    let browser = app.browser_for(&cast.learner).await;
    sqlx::query("UPDATE sessions SET data = jsonb_set(data, '{signed_in_at}', to_jsonb(extract(epoch from now())::bigint - 13 * 3600))")
        .execute(&app.pool)
        .await
        .unwrap();
    app.settle().await;
    assert_eq!(browser.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn changing_a_password_ends_the_other_sessions_and_checks_the_rules() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let here = app.browser_for(&cast.learner).await;
    let elsewhere = app.browser_for(&cast.learner).await;
    here.page("/account").await;

    let response = here
        .post_form(
            "/account/password",
            &[("current_password", "not it at all"), ("new_password", "violet tractor spoon harbour")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("Your current password is not correct"));
    let response = here
        .post_form(
            "/account/password",
            &[("current_password", &cast.learner.password), ("new_password", "password123")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("harder to guess"));

    let response = here
        .post_form(
            "/account/password",
            &[("current_password", &cast.learner.password), ("new_password", "violet tractor spoon harbour")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(here.get("/dashboard").await.status(), StatusCode::OK, "this session stays");
    assert_eq!(elsewhere.get("/dashboard").await.status(), StatusCode::SEE_OTHER, "the other session has ended");
    let fresh = Browser::new(&app);
    fresh.page("/login").await;
    let response = fresh
        .post_form(
            "/login",
            &[("email", &cast.learner.email), ("password", "violet tractor spoon harbour"), ("next", "/")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn signing_out_everywhere_ends_every_session_of_the_person() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let here = app.browser_for(&cast.learner).await;
    let elsewhere = app.browser_for(&cast.learner).await;
    let someone_else = app.browser_for(&cast.assessor).await;
    here.page("/account").await;
    assert_eq!(here.post_form("/logout", &[("everywhere", "yes")]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(here.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(elsewhere.get("/dashboard").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(someone_else.get("/dashboard").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_slowed_with_429_and_retry_after() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let browser = Browser::new(&app);
    browser.page("/login").await;
    for attempt in 1..=5 {
        let response = browser
            .post_form("/login", &[("email", &cast.learner.email), ("password", "wrong guess"), ("next", "/")])
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {attempt}");
    }
    let response = browser
        .post_form("/login", &[("email", &cast.learner.email), ("password", &cast.learner.password), ("next", "/")])
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "even the right password waits");
    let wait: u64 = response.headers()[RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&wait), "a short wait, not a lock-out: {wait}");
    assert!(response.text().await.unwrap().contains("Too many failed sign-in attempts"));

    let api = Browser::new(&app);
    let response = api.post_json("/api/v1/session", &json!({"email": cast.learner.email, "password": "wrong"})).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(RETRY_AFTER));
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["status"], 429);

    // Other people are not held up, and when the wait is over the right password works.
    assert_eq!(app.api_for(&cast.assessor).await.get("/api/v1/me").await.status(), StatusCode::OK);
    sqlx::query("UPDATE sign_in_failures SET failed_at = failed_at - interval '20 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    let response = browser
        .post_form("/login", &[("email", &cast.learner.email), ("password", &cast.learner.password), ("next", "/")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn owners_list_and_revoke_their_api_tokens_which_are_stored_hashed() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let api = app.api_for(&cast.assessor).await;
    let response = api.post_json("/api/v1/tokens", &json!({"label": "nightly report"})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = response.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(Browser::with_token(&app, &token).get("/api/v1/me").await.status(), StatusCode::OK);
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens WHERE token_sha256 = $1 OR label = $1")
        .bind(&token)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "the token itself is not stored");
    let listed = api.json("/api/v1/tokens").await;
    assert_eq!(listed["items"][0]["label"], "nightly report");
    assert!(listed["items"][0].get("token").is_none());

    // "Last used" is written on first use and then at most once a minute, so a script's run of
    // requests is not a run of writes.
    let last_used = async || -> Option<chrono::DateTime<chrono::Utc>> {
        sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE id = $1::uuid")
            .bind(&id)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let first = last_used().await.expect("the first use is recorded");
    assert_eq!(Browser::with_token(&app, &token).get("/api/v1/me").await.status(), StatusCode::OK);
    assert_eq!(last_used().await, Some(first), "a second use within the minute writes nothing");
    sqlx::query("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes' WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    app.settle().await;
    assert_eq!(Browser::with_token(&app, &token).get("/api/v1/me").await.status(), StatusCode::OK);
    assert!(last_used().await.unwrap() > first, "a use more than a minute after the last one is recorded");

    let stranger = app.api_for(&cast.learner).await;
    let response = stranger.request_delete(&format!("/api/v1/tokens/{id}")).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.request_delete(&format!("/api/v1/tokens/{id}")).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(Browser::with_token(&app, &token).get("/api/v1/me").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(api.post_json("/api/v1/tokens", &json!({"label": ""})).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_password_set_link_works_once_and_expires() {
    let app = TestApp::spawn().await;
    let admin = app.add_user(eportfolio::auth::Role::Admin, "Ada Admin").await;
    let api = app.api_for(&admin).await;
    let response = api
        .post_json("/api/v1/users", &json!({"name": "Nia New", "email": "nia@example.org", "role": "learner"}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let link = response.json::<Value>().await.unwrap()["password_link"].as_str().unwrap().to_string();
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM password_links WHERE token_sha256 = $1")
        .bind(link.rsplit('/').next().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 0, "links are stored hashed");

    let browser = Browser::new(&app);
    assert!(browser.page(&link).await.contains("Nia New"));
    let response = browser.post_form(&link, &[("password", "nia12345")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = browser.post_form(&link, &[("password", "amber lantern quietly folds")]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(browser.get(&link).await.status(), StatusCode::CONFLICT, "used once");
    let nia = crate::common::TestUser {
        id: uuid::Uuid::nil(),
        email: "nia@example.org".into(),
        password: "amber lantern quietly folds".into(),
    };
    app.browser_for(&nia).await;

    let response = api
        .post_json("/api/v1/users", &json!({"name": "Old Link", "email": "old@example.org", "role": "learner"}))
        .await;
    let link = response.json::<Value>().await.unwrap()["password_link"].as_str().unwrap().to_string();
    sqlx::query("UPDATE password_links SET expires_at = now() - interval '1 minute'").execute(&app.pool).await.unwrap();
    let response = browser.get(&link).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(response.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn pages_send_security_headers_and_hsts_behind_tls() {
    let app = TestApp::spawn().await;
    let response = Browser::new(&app).get("/login").await;
    let csp = response.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().to_string();
    assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    assert_eq!(response.headers()["referrer-policy"], "same-origin");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert!(!response.headers().contains_key("strict-transport-security"));

    let secure = TestApp::spawn_with(|config| config.behind_tls = true).await;
    let response = Browser::new(&secure).get("/login").await;
    assert!(response.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
    let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-eportfolio_session=") && cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn a_verifiers_access_ends_with_its_window_and_their_transactions_are_read_only() {
    let app = TestApp::spawn().await;
    let cast = app.cast().await;
    let late = app.add_user(eportfolio::auth::Role::Eqa, "Late Verifier").await;
    app.grant_verifier(&late, -60, -1).await;
    let future = app.add_user(eportfolio::auth::Role::Eqa, "Future Verifier").await;
    app.grant_verifier(&future, 5, 30).await;
    for verifier in [&late, &future] {
        let browser = app.api_for(verifier).await;
        assert_eq!(browser.json("/api/v1/enrolments").await["items"].as_array().unwrap().len(), 0);
        assert_eq!(
            browser.get(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await.status(),
            StatusCode::NOT_FOUND
        );
    }
    let current = app.api_for(&cast.verifier).await;
    assert_eq!(current.get(&format!("/api/v1/enrolments/{}/progress", cast.enrolment)).await.status(), StatusCode::OK);

    // Even if a handler tried, the database refuses a write in a verifier's transaction.
    let state =
        eportfolio::AppState::new(app.pool.clone(), eportfolio::config::Config::for_data_dir(app.data_dir.clone()))
            .await
            .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let actor = eportfolio::accounts::load_actor(&mut conn, cast.verifier.id).await.unwrap().unwrap();
    let mut tx = state.begin(&actor).await.unwrap();
    let write =
        sqlx::query("UPDATE users SET name = 'changed' WHERE id = $1").bind(cast.learner.id).execute(&mut *tx).await;
    assert!(write.unwrap_err().to_string().contains("read-only transaction"));
}

#[tokio::test]
async fn static_assets_are_fingerprinted_and_cached_for_a_year() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let page = browser.page("/login").await;
    let start = page.find("href=\"/static/app.").expect("the layout links the fingerprinted stylesheet") + 6;
    let path = &page[start..start + page[start..].find('"').unwrap()];
    assert!(path.len() > "/static/app..css".len(), "{path}");
    let css = browser.get(path).await;
    assert_eq!(css.status(), StatusCode::OK);
    assert_eq!(css.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    assert!(css.text().await.unwrap().contains(":root"));
    let plain = browser.get("/static/app.css").await;
    assert_eq!(plain.headers()["cache-control"], "public, no-cache");
    assert_eq!(browser.get("/static/app.000000000000.css").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(browser.get("/static/passwd").await.status(), StatusCode::NOT_FOUND);
}
