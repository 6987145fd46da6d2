//! Every route of the router, for every role, on own and other people's data: each must do what
//! its declared access rule says (`policy::Access`). The router is built only from the same
//! table, so a new route cannot escape this test; one whose request this file cannot build
//! fails it until a sample request is added below.

use eportfolio::auth::Role;
use eportfolio::auth::policy::{Access, Action};
use reqwest::StatusCode;
use reqwest::multipart::Form;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Browser, TestApp, TestUser, api_evidence, pdf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Learner,
    OtherLearner,
    Assessor,
    OtherAssessor,
    Iqa,
    Verifier,
    Admin,
    OtherCentreAdmin,
}

const EVERYONE: [Who; 9] = [
    Who::Anonymous,
    Who::Learner,
    Who::OtherLearner,
    Who::Assessor,
    Who::OtherAssessor,
    Who::Iqa,
    Who::Verifier,
    Who::Admin,
    Who::OtherCentreAdmin,
];

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Allowed,
    Denied,
    NotFound,
}

/// What each rule means for each person, for the learner `Who::Learner`'s enrolment and evidence.
fn expected(access: Access, who: Who) -> Expect {
    use Who::*;
    let allowed = match access {
        Access::Public => true,
        Access::Link => return Expect::NotFound,
        Access::SignedIn => who != Anonymous,
        Access::Owner => who == Learner,
        Access::Enrolment(Action::View) | Access::Evidence(Action::View) => {
            matches!(who, Learner | Assessor | Iqa | Verifier)
        }
        Access::Enrolment(Action::AddEvidence) | Access::Evidence(Action::AddEvidence) => who == Learner,
        Access::Enrolment(Action::Assess) | Access::Evidence(Action::Assess) => who == Assessor,
        Access::Enrolment(Action::RecordAssessment) | Access::Evidence(Action::RecordAssessment) => who == Assessor,
        Access::Enrolment(Action::ManageWitnesses) | Access::Evidence(Action::ManageWitnesses) => {
            matches!(who, Learner | Assessor)
        }
        Access::Enrolment(Action::Comment) | Access::Evidence(Action::Comment) => {
            matches!(who, Learner | Assessor | Iqa)
        }
        Access::Enrolment(Action::ImportEvidence) | Access::Evidence(Action::ImportEvidence) => {
            matches!(who, Learner | Assessor)
        }
        Access::Enrolment(Action::SignOff) | Access::Evidence(Action::SignOff) => who == Assessor,
        Access::Enrolment(Action::Countersign) | Access::Evidence(Action::Countersign) => who == Learner,
        Access::Admin => matches!(who, Admin | OtherCentreAdmin),
        Access::AdminTarget => who == Admin,
        Access::AuditCheck => matches!(who, Admin | OtherCentreAdmin | Verifier),
        Access::VerifierCentre => who == Verifier,
        Access::Iqa => who == Iqa,
        Access::IqaRecords => matches!(who, Iqa | Verifier),
        Access::IqaSample => matches!(who, Iqa | Assessor | Verifier),
        Access::IqaSampleResponse => who == Assessor,
        Access::Reports => matches!(who, Admin | OtherCentreAdmin | Iqa | Verifier),
    };
    if allowed { Expect::Allowed } else { Expect::Denied }
}

struct World {
    app: TestApp,
    people: Vec<(Who, TestUser)>,
    managed: TestUser,
    signer: TestUser,
    verifier_id: Uuid,
    enrolment: Uuid,
    evidence: Uuid,
    file: Uuid,
    witness: Uuid,
    /// An IQA sample (sampling-plan item) of the learner's evidence.
    sample: Uuid,
}

impl World {
    async fn build() -> World {
        let app = TestApp::spawn().await;
        let cast = app.cast().await;
        let other_learner = app.add_user(Role::Learner, "Other Learner").await;
        let other_assessor = app.add_user(Role::Assessor, "Other Assessor").await;
        app.enrol(&other_learner, &other_assessor, None).await;
        let admin = app.add_user(Role::Admin, "Ada Admin").await;
        let elsewhere = app.add_user_elsewhere("Other College", Role::Admin, "Other Admin").await;
        let managed = app.add_user(Role::Learner, "Pat Person").await;
        let signer = app.add_user(Role::Learner, "Sig Signer").await;
        let api = app.api_for(&cast.learner).await;
        let metadata = json!({"title": "Log", "method": "product", "occurred_on": "2026-03-31", "criteria": ["1.1"], "declaration": true});
        let created: Value = api
            .post_multipart(
                &format!("/api/v1/enrolments/{}/evidence", cast.enrolment),
                api_evidence(metadata, vec![("log.pdf", pdf())]),
            )
            .await
            .json()
            .await
            .unwrap();
        let witness: Value = api
            .post_json(
                &format!("/api/v1/enrolments/{}/witnesses", cast.enrolment),
                &json!({"name": "Wendy Witness", "job_role": "Team leader", "relationship": "Line manager",
                        "email": "wendy@example.org"}),
            )
            .await
            .json()
            .await
            .unwrap();
        // The assessor decides on the item and the IQA plans it for sampling.
        let decided = app
            .api_for(&cast.assessor)
            .await
            .post_json(
                &format!("/api/v1/evidence/{}/decisions", created["id"].as_str().unwrap()),
                &json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Say which procedure you followed."}),
            )
            .await;
        assert_eq!(decided.status(), StatusCode::CREATED);
        let planned: Value = app
            .api_for(&cast.iqa)
            .await
            .post_json("/api/v1/iqa/plan", &json!({"evidence_id": created["id"]}))
            .await
            .json()
            .await
            .unwrap();
        World {
            sample: planned["id"].as_str().unwrap().parse().unwrap(),
            witness: witness["id"].as_str().unwrap().parse().unwrap(),
            verifier_id: cast.verifier.id,
            enrolment: cast.enrolment,
            evidence: created["id"].as_str().unwrap().parse().unwrap(),
            file: created["files"][0]["id"].as_str().unwrap().parse().unwrap(),
            people: vec![
                (Who::Learner, cast.learner),
                (Who::OtherLearner, other_learner),
                (Who::Assessor, cast.assessor),
                (Who::OtherAssessor, other_assessor),
                (Who::Iqa, cast.iqa),
                (Who::Verifier, cast.verifier),
                (Who::Admin, admin),
                (Who::OtherCentreAdmin, elsewhere),
            ],
            managed,
            signer,
            app,
        }
    }

    fn user(&self, who: Who) -> &TestUser {
        &self.people.iter().find(|(w, _)| *w == who).expect("a person for each role").1
    }

    /// The path with its parameters filled: the learner's enrolment and evidence, and fresh
    /// tokens and verifier grants where the request may use them up.
    async fn fill(&self, path: &str) -> String {
        let mut filled = path
            .replace("{code}", "CC20")
            .replace("{token}", "0123456789abcdef")
            .replace("{file}", "app.css")
            .replace("{file_id}", &self.file.to_string());
        if !filled.contains("{id}") {
            return filled;
        }
        let mut conn = self.app.pool.acquire().await.unwrap();
        let id = if path.contains("/tokens/") {
            eportfolio::auth::tokens::create(&mut conn, self.user(Who::Learner).id, "matrix").await.unwrap().id
        } else if path.contains("/verifiers/") || path.contains("/verifier-grants/") {
            self.app
                .grant_verifier(
                    &TestUser { id: self.verifier_id, email: String::new(), password: String::new() },
                    0,
                    10,
                )
                .await
        } else if path.contains("/centres/{id}") {
            self.app.centre
        } else if path.contains("/iqa/samples/") {
            self.sample
        } else if path.contains("/users/") {
            self.managed.id
        } else if path.contains("enrolments/{id}") {
            self.enrolment
        } else {
            self.evidence
        };
        filled = filled.replace("{id}", &id.to_string());
        filled
    }

    /// A well-formed API request body, so that what is checked is the access rule and not the input.
    fn api_body(&self, method: &str, path: &str) -> Option<Body> {
        let today = chrono::Utc::now().date_naive();
        let body = match (method, path) {
            ("DELETE", _) => Body::Empty,
            ("POST", "/api/v1/session") => {
                Body::Json(json!({"email": self.signer.email, "password": self.signer.password}))
            }
            ("POST", "/api/v1/me/password") => Body::Json(json!({"current_password": "not it", "new_password": "x"})),
            ("POST", "/api/v1/evidence/{id}/submit") => Body::Json(json!({"declaration": true})),
            ("PATCH", "/api/v1/evidence/{id}") => Body::Json(json!({"title": "Matrix", "criteria": ["1.1"]})),
            ("POST", "/api/v1/evidence/{id}/files") => Body::Multipart(
                Form::new().part("file", reqwest::multipart::Part::bytes(pdf()).file_name("matrix.pdf")),
            ),
            ("POST", "/api/v1/tokens") => Body::Json(json!({"label": "matrix"})),
            ("POST", "/api/v1/audit/checks") => Body::Json(json!({})),
            ("POST", "/api/v1/evidence/{id}/decisions") => Body::Json(
                json!({"criterion": "1.1", "outcome": "not_yet", "feedback": "Say which procedure you followed."}),
            ),
            ("POST", "/api/v1/enrolments/{id}/evidence") => Body::Multipart(api_evidence(
                json!({"title": "Matrix", "method": "reflective_account", "occurred_on": "2026-03-31", "criteria": ["1.1"],
                       "declaration": true, "description": "Written account"}),
                vec![],
            )),
            ("POST", "/api/v1/users") => Body::Json(
                json!({"name": "New Person", "email": format!("{}@example.org", Uuid::new_v4().simple()), "role": "learner"}),
            ),
            ("PATCH", "/api/v1/users/{id}") => {
                Body::Json(json!({"name": "Pat Person", "email": self.managed.email, "roles": ["learner"]}))
            }
            ("POST", "/api/v1/admin/enrolments") => Body::Json(
                json!({"learner": self.managed.email, "unit": "CC20", "assessor": self.user(Who::Assessor).email, "iqa": ""}),
            ),
            ("POST", "/api/v1/enrolments/{id}/assignment") => Body::Json(
                json!({"assessor": self.user(Who::Assessor).email, "iqa": self.user(Who::Iqa).email, "reason": "Matrix check"}),
            ),
            ("POST", "/api/v1/enrolments/{id}/witnesses") => Body::Json(
                json!({"name": "Walt Witness", "job_role": "Quality coach", "relationship": "Colleague", "phone": "0113 496 0000"}),
            ),
            ("POST", "/api/v1/enrolments/{id}/witness-requests") => {
                Body::Json(json!({"witness_id": self.witness, "criteria": ["1.1"], "message": "The calls on Monday"}))
            }
            ("POST", "/api/v1/witness/{token}") => Body::Json(json!({
                "statement": "I saw the learner lead the huddle.", "criteria": ["1.1"],
                "occurred_on": today.to_string(), "signature": "Wendy Witness", "declaration": true})),
            ("POST", "/api/v1/evidence/{id}/witness-confirmation") => Body::Json(json!({"confirmed": true})),
            ("POST", "/api/v1/evidence/{id}/comments") => Body::Json(json!({"body": "Which call shows 1.1?"})),
            ("POST", "/api/v1/notifications/read") => Body::Json(json!({})),
            ("POST", "/api/v1/enrolments/{id}/assessor-records") => Body::Multipart(api_evidence(
                json!({"title": "Observation", "method": "observation", "occurred_on": today.to_string(),
                       "criteria": ["1.1"], "declaration": true, "description": "Led the huddle",
                       "assessment_location": "Sales floor"}),
                vec![],
            )),
            ("POST", "/api/v1/enrolments/{id}/sign-off") => Body::Json(json!({"declaration": true})),
            ("POST", "/api/v1/enrolments/{id}/countersign") => Body::Json(json!({"declaration": true})),
            ("POST", "/api/v1/enrolments/{id}/reopen") => Body::Json(json!({"reason": "Matrix check"})),
            ("POST", "/api/v1/iqa/strategy/bands") => {
                Body::Json(json!({"assessor_id": self.user(Who::Assessor).id, "band": "developing"}))
            }
            ("POST", "/api/v1/iqa/strategy/rates") => Body::Json(json!({"band": "experienced", "rate_percent": 25})),
            ("POST", "/api/v1/iqa/samples/draw") => Body::Json(json!({"seed": "matrix", "preview": true})),
            ("POST", "/api/v1/iqa/plan") => {
                Body::Json(json!({"evidence_id": self.evidence, "planned_on": today.to_string()}))
            }
            ("POST", "/api/v1/iqa/samples/{id}/record") => Body::Json(
                json!({"outcome": "refer_back", "feedback": "Thin feedback.", "actions": "Name the missing step."}),
            ),
            ("POST", "/api/v1/iqa/samples/{id}/response") => Body::Json(json!({"response": "Feedback rewritten."})),
            ("POST", "/api/v1/iqa/samples/{id}/close") => Body::Json(json!({"note": "Resolved."})),
            ("POST", "/api/v1/standardisation") => Body::Json(json!({
                "held_on": today.to_string(), "title": "Matrix meeting", "attendees": [self.user(Who::Assessor).id],
                "items": [self.evidence], "agreed_actions": "Keep feedback specific."})),
            ("POST", "/api/v1/imports/learners") => Body::Csv("email,name,unit,assessor\n".into()),
            ("POST", "/api/v1/units/import") => Body::Json(json!({"CFDocument": {"identifier": "matrix"}})),
            ("POST", "/api/v1/enrolments/{id}/imports/leap2a") => Body::Multipart(Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(
                    br#"<feed xmlns="http://www.w3.org/2005/Atom" xmlns:leap2="http://terms.leapspecs.org/"><id>urn:matrix</id><leap2:version>http://www.leapspecs.org/2010-07/2A/</leap2:version></feed>"#.to_vec(),
                )
                .file_name("leap2a.xml"),
            )),
            ("PATCH", "/api/v1/centre/settings") => Body::Json(json!({"assessment_due_working_days": 10})),
            ("POST", "/api/v1/users/{id}/disable" | "/api/v1/users/{id}/enable" | "/api/v1/users/{id}/password-link") => {
                Body::Json(json!({}))
            }
            ("PATCH", "/api/v1/centre/retention") => Body::Json(json!({"schedules": [{"record_type": "evidence_files",
                "period_count": 12, "period_unit": "weeks", "counted_from": "certification"}]})),
            ("POST", "/api/v1/users/{id}/legal-hold") | ("POST", "/api/v1/users/{id}/legal-hold/lift") => {
                Body::Json(json!({"reason": "Matrix check"}))
            }
            ("POST", "/api/v1/password/set/{token}") => Body::Json(json!({"password": "matrix correct horse battery"})),
            ("POST", "/api/v1/verify/centres/{id}/notes") => {
                Body::Json(json!({"visit_on": today.to_string(), "body": "Matrix visit"}))
            }
            ("POST", "/api/v1/verifier-grants") => Body::Json(json!({
                "verifier": self.user(Who::Verifier).email, "starts_on": today.to_string(),
                "ends_on": (today + chrono::Duration::days(5)).to_string()})),
            _ => return None,
        };
        Some(body)
    }
}

enum Body {
    Empty,
    Json(Value),
    Multipart(Form),
    Csv(String),
}

struct Clients {
    pages: Browser,
    api: Browser,
}

async fn clients_for(world: &World, who: Who) -> Clients {
    if who == Who::Anonymous {
        let pages = Browser::new(&world.app);
        pages.page("/login").await;
        return Clients { pages, api: Browser::new(&world.app) };
    }
    let user = world.user(who);
    let token = {
        let mut conn = world.app.pool.acquire().await.unwrap();
        eportfolio::auth::tokens::create(&mut conn, user.id, "matrix client").await.unwrap().token
    };
    Clients { pages: world.app.browser_for(user).await, api: Browser::with_token(&world.app, &token) }
}

#[tokio::test]
async fn every_route_enforces_its_access_rule_for_every_role() {
    let world = World::build().await;
    let routes = eportfolio::routes();
    let specs = routes.specs();
    assert!(specs.len() >= 50, "the table lists every route ({} found)", specs.len());
    let mut seen = std::collections::HashSet::new();
    for spec in specs {
        assert!(seen.insert((spec.method.clone(), spec.path)), "{} {} is declared twice", spec.method, spec.path);
    }

    let mut failures = Vec::new();
    let mut checked = 0;
    for who in EVERYONE {
        let mut clients = clients_for(&world, who).await;
        for spec in specs {
            let path = world.fill(spec.path).await;
            let method = spec.method.as_str();
            let response = if spec.path.starts_with("/api/") {
                let client = &clients.api;
                match (method, world.api_body(method, spec.path)) {
                    ("GET", _) => client.get(&path).await,
                    (_, None) => panic!("no sample request for {method} {}: add one to api_body", spec.path),
                    (_, Some(Body::Empty)) => client.request_delete(&path).await,
                    (_, Some(Body::Json(body))) if method == "PATCH" => client.patch_json(&path, &body).await,
                    (_, Some(Body::Json(body))) => client.post_json(&path, &body).await,
                    (_, Some(Body::Multipart(form))) => client.post_multipart(&path, form).await,
                    (_, Some(Body::Csv(text))) => client.post_csv(&path, text).await,
                }
            } else {
                let client = &clients.pages;
                match method {
                    "GET" => client.get(&path).await,
                    "POST"
                        if spec.path == "/enrolments/{id}/evidence"
                            || spec.path == "/enrolments/{id}/assessor-records"
                            || spec.path == "/admin/import"
                            || spec.path == "/admin/units"
                            || spec.path == "/enrolments/{id}/imports/leap2a"
                            || spec.path == "/evidence/{id}/edit" =>
                    {
                        let form = Form::new().text("csrf_token", client.csrf_token().unwrap_or_default());
                        client.post_multipart(&path, form).await
                    }
                    "POST" => client.post_form(&path, &[]).await,
                    other => panic!("no way to send {other} {} from a page", spec.path),
                }
            };
            let status = response.status();
            let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("").to_string();
            let denied = matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
                || (status == StatusCode::SEE_OTHER && location.starts_with("/login?"));
            let expect = expected(spec.access, who);
            let ok = !status.is_server_error()
                && match expect {
                    Expect::Allowed => !denied,
                    Expect::Denied => denied,
                    Expect::NotFound => status == StatusCode::NOT_FOUND,
                };
            if !ok {
                failures.push(format!(
                    "{who:?} {method} {} ({:?}): expected {expect:?}, got {status} {location}",
                    spec.path, spec.access
                ));
            }
            checked += 1;
            // Signing out (or in) changes the client's session: start afresh.
            if spec.path == "/logout" || spec.path == "/api/v1/session" {
                clients = clients_for(&world, who).await;
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} checks failed:\n{}", failures.len(), failures.join("\n"));
}
