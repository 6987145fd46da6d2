//! An API client reads /api/v1/openapi.json and finds every API route the application serves,
//! each with its success and refusal answers, every schema it points to, and the ways to sign in.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{Browser, TestApp};

async fn document(app: &TestApp) -> Value {
    let response = Browser::new(app).get("/api/v1/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("application/json"), "served as JSON, not {content_type}");
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).expect("the document is valid JSON")
}

/// Every `$ref` in `value`, wherever it is.
fn refs<'a>(value: &'a Value, found: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                found.push(target);
            }
            map.values().for_each(|v| refs(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
        _ => {}
    }
}

/// The value a local reference like `#/components/schemas/Problem` points to.
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    document.pointer(pointer)
}

#[tokio::test]
async fn anyone_can_read_an_openapi_document_that_lists_every_api_route_with_its_method() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "OpenAPI 3.x, not {version}");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(document["info"]["title"].as_str().is_some_and(|t| !t.is_empty()));

    let paths = document["paths"].as_object().expect("paths");
    let routes = eportfolio::routes();
    let api: Vec<_> = routes.specs().iter().filter(|spec| spec.path.starts_with("/api/")).collect();
    assert!(api.len() >= 60, "the route table has the whole API ({} routes)", api.len());
    let mut missing = Vec::new();
    for spec in &api {
        let method = spec.method.as_str().to_ascii_lowercase();
        if paths.get(spec.path).and_then(|item| item.get(&method)).is_none() {
            missing.push(format!("{} {}", spec.method, spec.path));
        }
    }
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:#?}");

    // And nothing in the document that the router does not serve.
    let served: BTreeSet<(String, String)> =
        api.iter().map(|spec| (spec.path.to_string(), spec.method.as_str().to_ascii_lowercase())).collect();
    for (path, item) in paths {
        for method in ["get", "put", "post", "patch", "delete"] {
            if item.get(method).is_some() {
                assert!(
                    served.contains(&(path.clone(), method.to_string())),
                    "{method} {path} is documented but not served"
                );
            }
        }
    }
}

#[tokio::test]
async fn every_operation_documents_its_success_and_who_may_call_it() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let routes = eportfolio::routes();
    let mut ids = BTreeSet::new();
    for spec in routes.specs().iter().filter(|spec| spec.path.starts_with("/api/")) {
        let method = spec.method.as_str().to_ascii_lowercase();
        let operation = &document["paths"][spec.path][&method];
        let responses = operation["responses"].as_object().expect("responses");
        let name = format!("{} {}", spec.method, spec.path);
        assert!(responses.keys().any(|status| status.starts_with('2')), "{name} documents no success");
        let public =
            matches!(spec.access, eportfolio::auth::policy::Access::Public | eportfolio::auth::policy::Access::Link);
        if !public {
            assert!(responses.contains_key("401"), "{name} does not document 401");
            assert!(operation["security"].as_array().is_some_and(|s| !s.is_empty()), "{name} names no security");
        }
        if spec.path.contains('{') {
            assert!(responses.contains_key("404"), "{name} does not document 404");
        }
        for (status, response) in responses {
            if status.starts_with('4') {
                assert!(
                    response["content"].get("application/problem+json").is_some(),
                    "{name} answers {status} as problem+json, and says so"
                );
            }
        }
        let id = operation["operationId"].as_str().unwrap_or_else(|| panic!("{name} has an operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        assert!(operation["tags"].as_array().is_some_and(|t| !t.is_empty()), "{name} has a tag");
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api_token"]["scheme"], "bearer");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
}

#[tokio::test]
async fn every_reference_in_the_document_resolves() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;
    let mut found = Vec::new();
    refs(&document, &mut found);
    assert!(found.len() > 50, "the document uses shared schemas ({} references)", found.len());
    let broken: BTreeSet<&str> = found.into_iter().filter(|r| resolve(&document, r).is_none()).collect();
    assert!(broken.is_empty(), "references that resolve to nothing: {broken:#?}");
}

#[tokio::test]
async fn the_document_describes_evidence_upload_and_sign_off_as_a_client_needs_them() {
    let app = TestApp::spawn().await;
    let document = document(&app).await;

    // Signing in: the credentials' fields, the session answer, and the throttle's 429.
    let session = &document["paths"]["/api/v1/session"]["post"];
    let credentials = session["requestBody"]["content"]["application/json"]["schema"]["$ref"].as_str().unwrap();
    let credentials = resolve(&document, credentials).unwrap();
    assert!(credentials["properties"]["email"].is_object() && credentials["properties"]["password"].is_object());
    assert!(session["responses"]["429"].is_object(), "sign-in documents the throttle");
    assert!(session.get("security").is_none(), "signing in needs no credentials");

    // Evidence upload: multipart with a metadata part and files, answered 201.
    let upload = &document["paths"]["/api/v1/enrolments/{id}/evidence"]["post"];
    assert!(upload["requestBody"]["content"]["multipart/form-data"].is_object(), "upload is multipart");
    assert!(upload["responses"]["201"].is_object());
    assert!(upload["responses"]["413"].is_object(), "too large a file is documented");

    // Sign-off: 409 with what is missing, as a problem.
    let sign_off = &document["paths"]["/api/v1/enrolments/{id}/sign-off"]["post"];
    assert!(sign_off["responses"]["409"]["content"]["application/problem+json"].is_object());
    let problem = resolve(&document, "#/components/schemas/Problem").expect("a Problem schema");
    for field in ["type", "title", "status", "detail"] {
        assert!(problem["properties"][field].is_object(), "Problem has {field}");
    }

    // A file download is bytes, not JSON.
    let download = &document["paths"]["/api/v1/evidence/{id}/files/{file_id}"]["get"];
    let content = download["responses"]["200"]["content"].as_object().unwrap();
    assert!(content.values().all(|c| c["schema"]["format"] == "binary"), "files are binary: {content:?}");
    assert!(download["responses"]["206"].is_object(), "range requests are documented");

    // The document lists itself.
    assert!(document["paths"]["/api/v1/openapi.json"]["get"]["responses"]["200"].is_object());
}
