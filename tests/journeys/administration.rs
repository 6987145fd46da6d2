//! A centre administrator's work: adding people and roles, disabling accounts, enrolling and
//! moving learners with the history kept, importing learners from CSV (all rows or none), and
//! giving external verifiers access. Each administrator manages only their own centre.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Browser, TestApp, TestUser};
use eportfolio::auth::Role;

async fn admin(app: &TestApp) -> (TestUser, Browser) {
    let admin = app.add_user(Role::Admin, "Ada Admin").await;
    let browser = app.browser_for(&admin).await;
    (admin, browser)
}

fn link_in(page: &str) -> String {
    page.split("<code class=\"token\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("a link on the page")
        .to_string()
}

#[tokio::test]
async fn an_administrator_adds_a_person_who_sets_a_password_and_signs_in() {
    let app = TestApp::spawn().await;
    let (_, admin) = admin(&app).await;
    admin.page("/admin").await;
    let response = admin.post_form("/admin/users", &[("name", ""), ("email", "not-an-email"), ("role", "")]).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(
        page.contains("There is a problem")
            && page.contains("is not an email address")
            && page.contains("Choose a role")
    );

    let response = admin
        .post_form("/admin/users", &[("name", "Priya Patel"), ("email", "priya@example.org"), ("role", "assessor")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    assert!(page.contains("Priya Patel has been added"));
    let link = link_in(&page);
    let newcomer = Browser::new(&app);
    newcomer.page(&link).await;
    assert_eq!(
        newcomer.post_form(&link, &[("password", "copper kettle rain window")]).await.status(),
        StatusCode::SEE_OTHER
    );
    let priya = TestUser {
        id: uuid::Uuid::nil(),
        email: "priya@example.org".into(),
        password: "copper kettle rain window".into(),
    };
    let browser = app.browser_for(&priya).await;
    assert!(browser.page("/dashboard").await.contains("Your caseload"));

    let response = admin
        .post_form("/admin/users", &[("name", "Again"), ("email", "PRIYA@example.org"), ("role", "learner")])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("already exists"));
}

#[tokio::test]
async fn an_administrator_changes_roles_and_disabling_ends_every_session() {
    let app = TestApp::spawn().await;
    let (_, admin) = admin(&app).await;
    let person = app.add_user(Role::Learner, "Sam Swap").await;
    let theirs = app.browser_for(&person).await;
    let page = admin.page(&format!("/admin/users/{}", person.id)).await;
    assert!(page.contains("value=\"learner\" checked"));
    let response = admin
        .post_form(
            &format!("/admin/users/{}", person.id),
            &[("name", "Sam Swap"), ("email", &person.email), ("roles", "learner"), ("roles", "assessor")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(admin.page(&format!("/admin/users/{}", person.id)).await.contains("value=\"assessor\" checked"));
    let granted = app
        .count("SELECT count(*) FROM audit_events WHERE action = 'user.role_granted' AND details->>'role' = 'assessor'")
        .await;
    assert_eq!(granted, 1, "the role change is audited");

    assert_eq!(
        admin.post_form(&format!("/admin/users/{}/disable", person.id), &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(theirs.get("/dashboard").await.status(), StatusCode::SEE_OTHER, "their session ended");
    let again = Browser::new(&app);
    again.page("/login").await;
    let response =
        again.post_form("/login", &[("email", &person.email), ("password", &person.password), ("next", "/")]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin.post_form(&format!("/admin/users/{}/enable", person.id), &[]).await.status(),
        StatusCode::SEE_OTHER
    );
    app.browser_for(&person).await;
}

#[tokio::test]
async fn an_administrator_enrols_and_moves_a_learner_keeping_the_history() {
    let app = TestApp::spawn().await;
    let (_, admin) = admin(&app).await;
    let learner = app.add_user(Role::Learner, "Lou Learner").await;
    let first = app.add_user(Role::Assessor, "First Assessor").await;
    let second = app.add_user(Role::Assessor, "Second Assessor").await;
    admin.page("/admin").await;
    let response = admin
        .post_form(
            "/admin/enrolments",
            &[("learner", &learner.email), ("unit", "CC20"), ("assessor", &first.email), ("iqa", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let enrolment: uuid::Uuid = sqlx::query_scalar("SELECT id FROM enrolments").fetch_one(&app.pool).await.unwrap();

    let page = admin.page(&format!("/admin/enrolments/{enrolment}")).await;
    assert!(page.contains("First Assessor"));
    let response = admin
        .post_form(
            &format!("/admin/enrolments/{enrolment}"),
            &[("assessor", &second.email), ("iqa", ""), ("reason", "")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("give a reason"));
    let response = admin
        .post_form(
            &format!("/admin/enrolments/{enrolment}"),
            &[("assessor", &second.email), ("iqa", ""), ("reason", "First assessor on leave")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = admin.page(&format!("/admin/enrolments/{enrolment}")).await;
    assert!(page.contains("First assessor on leave") && page.contains("Enrolled"), "both periods are listed");

    let portfolio = format!("/api/v1/enrolments/{enrolment}/progress");
    assert_eq!(app.api_for(&second).await.get(&portfolio).await.status(), StatusCode::OK);
    assert_eq!(
        app.api_for(&first).await.get(&portfolio).await.status(),
        StatusCode::NOT_FOUND,
        "the old assessor no longer sees the learner"
    );
}

#[tokio::test]
async fn a_csv_import_enrols_every_row_or_none_with_a_report_per_row() {
    let app = TestApp::spawn().await;
    let (admin_user, _) = admin(&app).await;
    let assessor = app.add_user(Role::Assessor, "Imp Assessor").await;
    let api = app.api_for(&admin_user).await;
    let bad = format!(
        "Student ID,First Name,Last Name,Email Address,Unit Code,Assessor Email\n\
         S001,Ann,Lee,ann@example.org,CC20,{a}\n\
         S002,Bob,Ray,bob-at-example.org,CC20,{a}\n\
         S003,Cy,Dee,cy@example.org,XX99,{a}\n",
        a = assessor.email
    );
    let response = api.post_csv("/api/v1/imports/learners", bad.clone()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["applied"], false);
    let problems: Vec<(u64, usize)> = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["problems"].as_array().unwrap().len()))
        .collect();
    assert_eq!(problems, vec![(2, 0), (3, 1), (4, 1)], "{report}");
    assert_eq!(app.count("SELECT count(*) FROM enrolments").await, 0, "nothing half-imported");
    assert_eq!(app.count("SELECT count(*) FROM users WHERE email = 'ann@example.org'").await, 0);

    let good = bad.replace("bob-at-example.org", "bob@example.org").replace("XX99", "CC20");
    let response = api.post_csv("/api/v1/imports/learners", good).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["applied"], true);
    assert_eq!(report["enrolments"], 3);
    assert!(report["rows"][0]["password_link"].as_str().unwrap().starts_with("/password/set/"));
    assert_eq!(app.count("SELECT count(*) FROM enrolments").await, 3);
    assert_eq!(app.count("SELECT count(*) FROM users WHERE external_ref = 'S002'").await, 1);

    // The same page in the browser shows the report.
    let browser = app.browser_for(&admin_user).await;
    browser.page("/admin/import").await;
    let form = reqwest::multipart::Form::new()
        .text("csrf_token", browser.csrf_token().unwrap())
        .part("file", reqwest::multipart::Part::bytes(bad.into_bytes()).file_name("learners.csv"));
    let response = browser.post_multipart("/admin/import", form).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("Nothing was imported"), "{page}");
}

#[tokio::test]
async fn administrators_manage_only_their_own_centre_and_others_not_at_all() {
    let app = TestApp::spawn().await;
    let (_, admin) = admin(&app).await;
    let outsider = app.add_user_elsewhere("Other College", Role::Learner, "Out Sider").await;
    assert_eq!(admin.get(&format!("/admin/users/{}", outsider.id)).await.status(), StatusCode::NOT_FOUND);
    let response = admin.post_form(&format!("/admin/users/{}/disable", outsider.id), &[]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(!admin.page("/admin").await.contains("Out Sider"));

    let cast = app.cast().await;
    let learner = app.browser_for(&cast.learner).await;
    assert_eq!(learner.get("/admin").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.api_for(&cast.assessor).await.get("/api/v1/users").await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn an_administrator_gives_and_revokes_verifier_access() {
    let app = TestApp::spawn().await;
    let (admin_user, _) = admin(&app).await;
    let learner = app.add_user(Role::Learner, "Vee Learner").await;
    let assessor = app.add_user(Role::Assessor, "Vee Assessor").await;
    let enrolment = app.enrol(&learner, &assessor, None).await;
    let verifier = app.add_user(Role::Eqa, "Eve Verifier").await;
    let api = app.api_for(&admin_user).await;
    let today = chrono::Utc::now().date_naive();
    let response = api
        .post_json("/api/v1/verifier-grants", &json!({"verifier": verifier.email, "starts_on": today.to_string(), "ends_on": (today - chrono::Duration::days(1)).to_string()}))
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response = api
        .post_json("/api/v1/verifier-grants", &json!({"verifier": verifier.email, "starts_on": today.to_string(), "ends_on": (today + chrono::Duration::days(30)).to_string()}))
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let grant = response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let eve = app.api_for(&verifier).await;
    assert_eq!(eve.get(&format!("/api/v1/enrolments/{enrolment}/progress")).await.status(), StatusCode::OK);
    assert_eq!(api.request_delete(&format!("/api/v1/verifier-grants/{grant}")).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(eve.get(&format!("/api/v1/enrolments/{enrolment}/progress")).await.status(), StatusCode::NOT_FOUND);
    let audited = app.count("SELECT count(*) FROM audit_events WHERE action LIKE 'verifier_access.%'").await;
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn an_administrator_finds_the_units_page_from_the_administration_page() {
    let app = TestApp::spawn().await;
    let (_, admin) = admin(&app).await;
    let page = admin.page("/admin").await;
    let href = page
        .split("<a href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once("\">"))
        .find(|(_, text)| text.starts_with("Units: import and export"))
        .map(|(href, _)| href.to_string())
        .expect("a link to the units page on /admin");
    assert_eq!(href, "/admin/units");
    let units = admin.page(&href).await;
    assert!(units.contains("<h1>Units</h1>"), "{units}");
    assert!(units.contains("CC20"), "the units page lists the centre's units");
}
