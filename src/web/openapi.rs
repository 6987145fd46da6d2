//! The OpenAPI document of `/api/v1`, generated from the code: each API handler's
//! `#[utoipa::path]` gives its parameters, bodies and own answers; the route table adds what its
//! access rule answers (sign-in, refusal, not found) and collects the operations; `document`
//! completes them with the API's description, security schemes, tags and the problem schema.

use std::sync::Arc;

use axum::Extension;
use axum::http::Method;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::content::Content;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::server::Server;
use utoipa::openapi::tag::Tag;
use utoipa::openapi::{Info, OpenApi, OpenApiVersion, Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::policy::Access;
use crate::error::{FieldError, Problem};
use crate::web::route_table::Routes;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Names of the two ways to authenticate, as the document's security schemes call them.
const SESSION: &str = "session_cookie";
const TOKEN: &str = "api_token";

/// The API's domains, as the document's tags: the first path segment after `/api/v1/` names
/// the domain an operation belongs to.
const TAGS: &[(&str, &str, &[&str])] = &[
    ("session", "Signing in and out, and who is signed in", &["session", "me", "dashboard"]),
    (
        "accounts",
        "People, API tokens, enrolments, imports, verifier grants and centre settings",
        &["tokens", "users", "admin", "imports", "verifier-grants", "centre", "password"],
    ),
    ("catalogue", "Units, learning outcomes and assessment criteria", &["units"]),
    ("enrolments", "A learner's enrolments: progress, tracking, readiness, sign-off and exports", &["enrolments"]),
    ("evidence", "Evidence items, their files, decisions, comments and witness confirmation", &["evidence"]),
    ("witnesses", "Witness statements through a single-use link", &["witness"]),
    ("notifications", "What has happened that the caller should know about", &["notifications"]),
    (
        "iqa",
        "Internal quality assurance: strategy, draws, plan, samples, coverage, standardisation",
        &["iqa", "standardisation"],
    ),
    ("verification", "External verifiers' centre overviews, samples and notes", &["verify", "verification"]),
    ("audit", "The tamper-evident audit trail and its check", &["audit"]),
    ("reports", "Centre-wide progress for reporting, and the caller's dashboard", &["reports", "dashboard"]),
    ("openapi", "This document", &["openapi.json"]),
];

/// What a POST that creates one thing answers (201).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Created {
    pub id: uuid::Uuid,
}

/// The bytes of a downloaded file or archive, for `body = inline(Binary)` in annotations.
pub struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// The finished document, serialised once when the router is assembled.
#[derive(Clone)]
pub struct ApiDocument(Arc<String>);

pub fn router() -> Routes {
    Routes::new().api(Access::Public, utoipa_axum::routes!(openapi_json))
}

/// The OpenAPI 3.1 document describing every `/api/v1` operation.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
async fn openapi_json(Extension(document): Extension<ApiDocument>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document.0.as_str().to_owned()).into_response()
}

/// An API request that axum's extractors refused (a malformed path, query or JSON body answers
/// plain text) answers the same status as RFC 9457 problem details, as the document says.
pub async fn rejections_as_problems(response: axum::response::Response) -> axum::response::Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() && plain && response.extensions().get::<Problem>().is_none()) {
        return response;
    }
    let detail = match axum::body::to_bytes(response.into_body(), 64 * 1024).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => String::new(),
    };
    let error = match status {
        axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => crate::error::AppError::UnsupportedType(detail),
        axum::http::StatusCode::UNPROCESSABLE_ENTITY => crate::error::AppError::invalid("body", detail),
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => crate::error::AppError::TooLarge(detail),
        _ => crate::error::AppError::BadRequest(detail),
    };
    let mut answer = error.into_response();
    *answer.status_mut() = status;
    answer
}

/// Completes the operations the route table collected into the published document.
pub fn document(mut openapi: OpenApi) -> ApiDocument {
    openapi.openapi = OpenApiVersion::Version31;
    let mut info = Info::new("eportfolio API", env!("CARGO_PKG_VERSION"));
    info.description = Some(
        "Evidence, assessment, internal quality assurance and external verification for vocational \
         qualifications. Sign in with `POST /api/v1/session` (a session cookie; send the `x-csrf-token` \
         header from `GET /api/v1/me` with writes) or send a personal API token as \
         `Authorization: Bearer`. Lists answer a page at a time: `{\"items\": [...], \"next_cursor\"}`; pass \
         `next_cursor` back as `?cursor=` for the next page. Errors are RFC 9457 problem details."
            .into(),
    );
    openapi.info = info;
    openapi.servers = Some(vec![Server::new("/")]);
    let components = openapi.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        SESSION.into(),
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            "eportfolio_session",
            "The session cookie set by POST /api/v1/session (named __Host-eportfolio_session behind TLS)",
        ))),
    );
    components.security_schemes.insert(
        TOKEN.into(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some("A personal API token (POST /api/v1/tokens, or eportfolio token create)"))
                .build(),
        ),
    );
    let mut schemas = vec![(Problem::name().into_owned(), Problem::schema())];
    <Problem as ToSchema>::schemas(&mut schemas);
    schemas.push((FieldError::name().into_owned(), FieldError::schema()));
    components.schemas.extend(schemas);
    openapi.tags = Some(
        TAGS.iter()
            .map(|(name, description, _)| {
                let mut tag = Tag::new(*name);
                tag.description = Some((*description).into());
                tag
            })
            .collect(),
    );
    for item in openapi.paths.paths.values_mut() {
        for operation in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            errors_as_problems(operation);
        }
    }
    let json = serde_json::to_string(&openapi).expect("an OpenAPI document serialises");
    ApiDocument(Arc::new(json))
}

/// What the access rule of a route answers besides its handler, added to its operation: the
/// security it needs, 401 without it, 403 when the rule (or the CSRF check on a write with a
/// session cookie) can refuse, 404 for a thing in the path that is not there or not visible,
/// 400 for a malformed path, query or body, 415/422 for a body that is not the JSON described.
/// Also gives each operation a unique id and its domain's tag.
pub fn document_access(operation: &mut Operation, access: Access, path: &str, method: &Method, upload: bool) {
    let public = matches!(access, Access::Public | Access::Link);
    let write = !matches!(*method, Method::GET | Method::HEAD);
    let has_path_parameter = path.contains('{');
    let has_query =
        operation.parameters.iter().flatten().any(|parameter| matches!(parameter.parameter_in, ParameterIn::Query));
    if !public {
        operation.security = Some(vec![
            SecurityRequirement::new(SESSION, Vec::<String>::new()),
            SecurityRequirement::new(TOKEN, Vec::<String>::new()),
        ]);
        add_problem(operation, "401", "Not signed in, or the token is unknown, revoked or expired");
    }
    if !matches!(access, Access::Public | Access::Link | Access::SignedIn) || (write && access != Access::Public) {
        add_problem(
            operation,
            "403",
            "The caller may not do this (or a write with a session cookie lacks its CSRF token)",
        );
    }
    if has_path_parameter {
        add_problem(operation, "404", "Nothing the caller may see is at this path");
    }
    if has_path_parameter || has_query || operation.request_body.is_some() {
        add_problem(operation, "400", "A malformed path, query or body");
    }
    if operation.request_body.as_ref().is_some_and(|body| body.content.contains_key("application/json")) {
        add_problem(operation, "415", "The body is not sent as application/json");
        add_problem(operation, "422", "The body does not have the fields described, or their values are not accepted");
    }
    // Every operation reads the database (the session at least), and uploads write to the store.
    add_problem(
        operation,
        "503",
        "The database or the file store cannot be reached just now; nothing was saved (see Retry-After)",
    );
    if upload {
        add_problem(operation, "507", "The server has no room left to store files; nothing was saved");
    }
    operation.operation_id = Some(operation_id(method, path));
    let segment = path.trim_start_matches("/api/v1/").split('/').next().unwrap_or("");
    if let Some((tag, _, _)) = TAGS.iter().find(|(_, _, segments)| segments.contains(&segment)) {
        operation.tags = Some(vec![(*tag).to_string()]);
    }
}

/// `get_enrolments_id_progress` for GET /api/v1/enrolments/{id}/progress: unique, as the
/// method and path are.
fn operation_id(method: &Method, path: &str) -> String {
    let words: Vec<String> = path
        .trim_start_matches("/api/v1/")
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    format!("{}_{}", method.as_str().to_ascii_lowercase(), words.join("_"))
}

fn problem_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(PROBLEM_JSON, Content::new(Some(Ref::from_schema_name("Problem"))))
        .build()
        .into()
}

fn add_problem(operation: &mut Operation, status: &str, description: &str) {
    operation.responses.responses.entry(status.to_string()).or_insert_with(|| problem_response(description));
}

/// Error answers a handler documented with `body = Problem` are problem+json, whatever media
/// type the annotation defaulted to.
fn errors_as_problems(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        if !(status.starts_with('4') || status.starts_with('5')) {
            continue;
        }
        if let RefOr::T(response) = response {
            if let Some(content) = response.content.shift_remove("application/json") {
                response.content.insert(PROBLEM_JSON.into(), content);
            }
            if response.content.is_empty() {
                response.content.insert(PROBLEM_JSON.into(), Content::new(Some(Ref::from_schema_name("Problem"))));
            }
        }
    }
}
