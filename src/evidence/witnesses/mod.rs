//! Witness testimony: the learner's witness register, requests sent to a witness as an
//! expiring single-use link (only its SHA-256 is stored), the statement the witness writes and
//! signs through it (an evidence item; the witness has no account), and the assessor's
//! confirmation, without which the statement cannot be assessed.

mod routes;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Method, WITNESS_DECLARATION};
use crate::accounts::Email;
use crate::audit::{self, Event};
use crate::auth::Actor;
use crate::auth::policy::EnrolmentAccess;
use crate::catalogue::Unit;
use crate::error::{AppError, AppResult, FieldError};
use crate::web::pagination::{After, Page, PageRequest, Position};
pub use routes::router;

/// How long a witness link works.
pub const VALID_FOR_DAYS: i64 = 14;

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The path a witness opens their link at.
pub fn path(token: &str) -> String {
    format!("/witness/{token}")
}

/// Names compared as people write them: case and spacing do not matter.
fn same_name(a: &str, b: &str) -> bool {
    let normal = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    normal(a) == normal(b)
}

fn limited(field: &str, text: &str, max: usize, label: &str, errors: &mut Vec<FieldError>) -> String {
    let text = text.trim().to_string();
    if text.chars().count() > max {
        errors.push(FieldError::new(field, format!("{label} must be {max} characters or fewer")));
    }
    text
}

/// A witness as the register shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Witness {
    pub id: Uuid,
    pub name: String,
    pub job_role: String,
    pub relationship: String,
    pub email: String,
    pub phone: String,
    pub is_expert: bool,
    pub competence: String,
    pub added_at: DateTime<Utc>,
    pub added_by_name: String,
}

/// A witness as sent from the form or the API, before it is checked.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawWitness {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub job_role: String,
    #[serde(default)]
    pub relationship: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub is_expert: bool,
    #[serde(default)]
    pub competence: String,
}

/// A checked witness, ready to add to the register.
#[derive(Debug)]
pub struct NewWitness {
    name: String,
    job_role: String,
    relationship: String,
    email: Option<Email>,
    phone: String,
    is_expert: bool,
    competence: String,
}

impl NewWitness {
    /// Someone who saw the learner at work and can be contacted to check the statement; never
    /// the learner themselves.
    pub fn parse(raw: &RawWitness, learner_name: &str, learner_email: &str) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = limited("name", &raw.name, 200, "The name", &mut errors);
        let job_role = limited("job_role", &raw.job_role, 200, "The job role", &mut errors);
        let relationship = limited("relationship", &raw.relationship, 200, "The relationship", &mut errors);
        let phone = limited("phone", &raw.phone, 40, "The phone number", &mut errors);
        let competence = limited("competence", &raw.competence, 2_000, "The competence", &mut errors);
        if name.is_empty() {
            errors.push(FieldError::new("name", "Enter the witness's full name"));
        } else if same_name(&name, learner_name) {
            errors.push(FieldError::new("name", "A witness must be someone other than the learner"));
        }
        if job_role.is_empty() {
            errors.push(FieldError::new("job_role", "Enter the witness's job role, e.g. \"Sales team leader\""));
        }
        if relationship.is_empty() {
            errors
                .push(FieldError::new("relationship", "Say how the witness knows the learner, e.g. \"Line manager\""));
        }
        let email = match raw.email.trim() {
            "" => None,
            text => match Email::parse(text) {
                Ok(email) if email.as_str().eq_ignore_ascii_case(learner_email) => {
                    errors.push(FieldError::new("email", "A witness must be someone other than the learner"));
                    None
                }
                Ok(email) => Some(email),
                Err(message) => {
                    errors.push(FieldError::new("email", message));
                    None
                }
            },
        };
        if raw.email.trim().is_empty() && phone.is_empty() {
            errors.push(FieldError::new(
                "email",
                "Enter an email address or a phone number so the assessor can check the statement",
            ));
        }
        if !phone.is_empty() && !phone.chars().all(|c| c.is_ascii_digit() || " +()-".contains(c)) {
            errors.push(FieldError::new("phone", "Enter a phone number using digits, spaces and + ( ) - only"));
        }
        if raw.is_expert && competence.is_empty() {
            errors.push(FieldError::new(
                "competence",
                "For an expert witness, say what makes them competent to judge, e.g. \"Holds the D32 award; 8 years as a sales coach\"",
            ));
        }
        if errors.is_empty() {
            Ok(NewWitness { name, job_role, relationship, email, phone, is_expert: raw.is_expert, competence })
        } else {
            Err(errors)
        }
    }
}

/// The learner's register, by name.
pub async fn register(conn: &mut PgConnection, learner_id: Uuid) -> AppResult<Vec<Witness>> {
    Ok(sqlx::query_as!(
        Witness,
        "SELECT w.id, w.name, w.job_role, w.relationship, w.email, w.phone, w.is_expert, w.competence, w.added_at,
                u.name AS added_by_name
         FROM witnesses w JOIN users u ON u.id = w.added_by WHERE w.learner_id = $1 ORDER BY w.name, w.added_at",
        learner_id
    )
    .fetch_all(conn)
    .await?)
}

/// One page of the learner's register, by name. Keyset on (name, id).
pub async fn register_page(
    conn: &mut PgConnection,
    learner_id: Uuid,
    request: &PageRequest,
) -> AppResult<Page<Witness>> {
    let (after_name, after_id) = request.position().map(|p| (p.key, p.id)).unzip();
    let rows = sqlx::query_as!(
        Witness,
        "SELECT w.id, w.name, w.job_role, w.relationship, w.email, w.phone, w.is_expert, w.competence, w.added_at,
                u.name AS added_by_name
         FROM witnesses w JOIN users u ON u.id = w.added_by
         WHERE w.learner_id = $1 AND ($2::text IS NULL OR (w.name, w.id) > ($2, $3))
         ORDER BY w.name, w.id LIMIT $4",
        learner_id,
        after_name,
        after_id,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(rows.into_iter().map(|w| (Position::new(w.name.clone(), w.id), w)).collect()))
}

/// The learner's name and email, to keep them out of their own register.
pub async fn learner_identity(conn: &mut PgConnection, learner_id: Uuid) -> AppResult<(String, String)> {
    let row = sqlx::query!("SELECT name, email FROM users WHERE id = $1", learner_id).fetch_one(conn).await?;
    Ok((row.name, row.email))
}

/// Adds a witness to the learner's register.
pub async fn add(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    witness: NewWitness,
) -> AppResult<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO witnesses (id, learner_id, name, job_role, relationship, email, phone, is_expert, competence, added_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        id,
        access.learner_id,
        witness.name,
        witness.job_role,
        witness.relationship,
        witness.email.as_ref().map(|e| e.as_str()).unwrap_or(""),
        witness.phone,
        witness.is_expert,
        witness.competence,
        actor.id
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "witness.added", "witness", Some(id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "name": witness.name,
                "job_role": witness.job_role,
                "relationship": witness.relationship,
                "is_expert": witness.is_expert,
            })),
    )
    .await?;
    Ok(id)
}

/// A request for a statement, as sent from the form or the API.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawRequest {
    #[serde(default)]
    pub witness_id: String,
    #[serde(default)]
    pub criteria: Vec<String>,
    #[serde(default)]
    pub message: String,
}

/// A checked request: a witness from the learner's register and criteria of the unit.
#[derive(Debug)]
pub struct NewRequest {
    witness_id: Uuid,
    witness_name: String,
    criteria: Vec<(String, Uuid)>,
    message: String,
}

impl NewRequest {
    pub fn parse(raw: &RawRequest, unit: &Unit, register: &[Witness]) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let witness = raw.witness_id.trim().parse::<Uuid>().ok().and_then(|id| register.iter().find(|w| w.id == id));
        if witness.is_none() {
            errors.push(FieldError::new("witness_id", "Choose a witness from the register"));
        }
        let mut criteria: Vec<(String, Uuid, i32)> = Vec::new();
        for number in &raw.criteria {
            match unit.criterion(number) {
                Ok(c) if !criteria.iter().any(|(n, _, _)| *n == c.number) => {
                    let position = unit.criteria().position(|x| x.id == c.id).unwrap_or(0) as i32;
                    criteria.push((c.number.clone(), c.id, position));
                }
                Ok(_) => {}
                Err(message) => errors.push(FieldError::new("criteria", message)),
            }
        }
        if raw.criteria.is_empty() {
            errors.push(FieldError::new("criteria", "Choose at least one criterion the witness can speak about"));
        }
        criteria.sort_by_key(|(_, _, position)| *position);
        let message = limited("message", &raw.message, 2_000, "The message", &mut errors);
        match witness {
            Some(witness) if errors.is_empty() => Ok(NewRequest {
                witness_id: witness.id,
                witness_name: witness.name.clone(),
                criteria: criteria.into_iter().map(|(n, id, _)| (n, id)).collect(),
                message,
            }),
            _ => Err(errors),
        }
    }
}

/// A link just issued: the token is shown once and never stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedLink {
    pub id: Uuid,
    pub witness_id: Uuid,
    pub witness_name: String,
    pub path: String,
    pub expires_at: DateTime<Utc>,
    pub criteria: Vec<String>,
}

/// Issues a single-use link for the witness to write a statement against the criteria.
pub async fn request_statement(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    request: NewRequest,
) -> AppResult<IssuedLink> {
    let id = Uuid::new_v4();
    let token = hex::encode(rand::rng().random::<[u8; 32]>());
    let expires_at = Utc::now() + Duration::days(VALID_FOR_DAYS);
    sqlx::query!(
        "INSERT INTO witness_requests (id, enrolment_id, witness_id, message, token_sha256, requested_by, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        id,
        access.id,
        request.witness_id,
        request.message,
        digest(&token),
        actor.id,
        expires_at
    )
    .execute(&mut *conn)
    .await?;
    for (_, criterion_id) in &request.criteria {
        sqlx::query!(
            "INSERT INTO witness_request_criteria (request_id, criterion_id) VALUES ($1, $2)",
            id,
            criterion_id
        )
        .execute(&mut *conn)
        .await?;
    }
    let criteria: Vec<String> = request.criteria.iter().map(|(n, _)| n.clone()).collect();
    audit::record(
        conn,
        Event::new(Some(actor), "witness.statement_requested", "witness_request", Some(id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({
                "witness_id": request.witness_id,
                "criteria": criteria,
                "expires_at": expires_at,
            })),
    )
    .await?;
    Ok(IssuedLink {
        id,
        witness_id: request.witness_id,
        witness_name: request.witness_name,
        path: path(&token),
        expires_at,
        criteria,
    })
}

/// A request as the witnesses page lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RequestSummary {
    pub id: Uuid,
    pub witness_id: Uuid,
    pub witness_name: String,
    pub criteria: Vec<String>,
    pub requested_at: DateTime<Utc>,
    pub requested_by_name: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub evidence_id: Option<Uuid>,
    /// `waiting`, `signed` or `expired`.
    #[schema(value_type = String)]
    pub state: &'static str,
}

impl RequestSummary {
    pub fn state_label(&self) -> &'static str {
        match self.state {
            "signed" => "Statement signed",
            "expired" => "Link expired",
            _ => "Waiting for the witness",
        }
    }
}

/// Every request of an enrolment, newest first.
pub async fn requests(conn: &mut PgConnection, enrolment_id: Uuid) -> AppResult<Vec<RequestSummary>> {
    requests_after(conn, enrolment_id, None, i64::MAX).await
}

/// One page of the statements asked for on an enrolment, newest first. Keyset on
/// (requested_at, id).
pub async fn requests_page(
    conn: &mut PgConnection,
    enrolment_id: Uuid,
    request: &PageRequest,
) -> AppResult<Page<RequestSummary>> {
    let after = request.after_time()?;
    let rows = requests_after(conn, enrolment_id, after, request.fetch()).await?;
    Ok(request.keyed_page(rows.into_iter().map(|r| (Position::time(r.requested_at, r.id), r)).collect()))
}

async fn requests_after(
    conn: &mut PgConnection,
    enrolment_id: Uuid,
    after: Option<After>,
    limit: i64,
) -> AppResult<Vec<RequestSummary>> {
    let (after_at, after_id) = after.map(|a| (a.at, a.id)).unzip();
    let rows = sqlx::query!(
        r#"SELECT r.id, r.witness_id, w.name AS witness_name, r.requested_at, u.name AS requested_by_name,
                  r.expires_at, r.used_at, r.evidence_id,
                  coalesce(array_agg(c.number ORDER BY c.position) FILTER (WHERE c.number IS NOT NULL), '{}') AS "criteria!"
           FROM witness_requests r
           JOIN witnesses w ON w.id = r.witness_id
           JOIN users u ON u.id = r.requested_by
           LEFT JOIN witness_request_criteria rc ON rc.request_id = r.id
           LEFT JOIN criteria c ON c.id = rc.criterion_id
           WHERE r.enrolment_id = $1 AND ($2::timestamptz IS NULL OR (r.requested_at, r.id) < ($2, $3))
           GROUP BY r.id, w.name, u.name
           ORDER BY r.requested_at DESC, r.id DESC LIMIT $4"#,
        enrolment_id,
        after_at,
        after_id,
        limit
    )
    .fetch_all(conn)
    .await?;
    let now = Utc::now();
    Ok(rows
        .into_iter()
        .map(|r| RequestSummary {
            state: match (r.used_at, r.expires_at < now) {
                (Some(_), _) => "signed",
                (None, true) => "expired",
                (None, false) => "waiting",
            },
            id: r.id,
            witness_id: r.witness_id,
            witness_name: r.witness_name,
            criteria: r.criteria,
            requested_at: r.requested_at,
            requested_by_name: r.requested_by_name,
            expires_at: r.expires_at,
            used_at: r.used_at,
            evidence_id: r.evidence_id,
        })
        .collect())
}

/// A criterion the witness is asked about, with its wording.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AskedCriterion {
    pub number: String,
    pub text: String,
    #[serde(skip)]
    id: Uuid,
}

/// What a live link shows the witness.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OpenRequest {
    pub id: Uuid,
    #[serde(skip)]
    enrolment_id: Uuid,
    #[serde(skip)]
    requested_by: Uuid,
    pub learner_name: String,
    pub unit_code: String,
    pub unit_title: String,
    pub witness_id: Uuid,
    pub witness_name: String,
    pub witness_job_role: String,
    pub message: String,
    pub requested_by_name: String,
    pub expires_at: DateTime<Utc>,
    pub criteria: Vec<AskedCriterion>,
    #[schema(value_type = String)]
    pub declaration: &'static str,
}

/// The request behind a live link, locked for the rest of the transaction so that it can be
/// used once only. An unknown token is "not found"; a used or expired one is "gone". A learner
/// signed in cannot open a link to their own statement.
pub async fn open(conn: &mut PgConnection, token: &str, viewer: Option<&Actor>) -> AppResult<OpenRequest> {
    let row = sqlx::query!(
        r#"SELECT r.id, r.enrolment_id, r.requested_by, r.message, r.expires_at, r.used_at, e.learner_id,
                  l.name AS learner_name, un.code AS unit_code, un.title AS unit_title, w.id AS witness_id,
                  w.name AS witness_name, w.job_role AS witness_job_role, rb.name AS requested_by_name
           FROM witness_requests r
           JOIN enrolments e ON e.id = r.enrolment_id
           JOIN users l ON l.id = e.learner_id
           JOIN units un ON un.id = e.unit_id
           JOIN witnesses w ON w.id = r.witness_id
           JOIN users rb ON rb.id = r.requested_by
           WHERE r.token_sha256 = $1
           FOR UPDATE OF r"#,
        digest(token)
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound("witness link"))?;
    if row.used_at.is_some() {
        return Err(AppError::Gone(format!(
            "This link has already been used: {} signed a statement with it. A link works once only.",
            row.witness_name
        )));
    }
    if row.expires_at < Utc::now() {
        return Err(AppError::Gone(format!(
            "This link expired on {}. Ask {} for a new one.",
            row.expires_at.format("%d %B %Y"),
            row.requested_by_name
        )));
    }
    if viewer.is_some_and(|v| v.id == row.learner_id) {
        return Err(AppError::Forbidden(
            "A witness statement must be written and signed by the witness, never by the learner. Send this link to your witness.".into(),
        ));
    }
    let criteria = sqlx::query!(
        "SELECT c.id, c.number, c.text FROM witness_request_criteria rc JOIN criteria c ON c.id = rc.criterion_id
         WHERE rc.request_id = $1 ORDER BY c.position",
        row.id
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|c| AskedCriterion { number: c.number, text: c.text, id: c.id })
    .collect();
    Ok(OpenRequest {
        id: row.id,
        enrolment_id: row.enrolment_id,
        requested_by: row.requested_by,
        learner_name: row.learner_name,
        unit_code: row.unit_code,
        unit_title: row.unit_title,
        witness_id: row.witness_id,
        witness_name: row.witness_name,
        witness_job_role: row.witness_job_role,
        message: row.message,
        requested_by_name: row.requested_by_name,
        expires_at: row.expires_at,
        criteria,
        declaration: WITNESS_DECLARATION,
    })
}

/// What the witness sent, before it is checked.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct RawStatement {
    #[serde(default)]
    pub statement: String,
    #[serde(default)]
    pub criteria: Vec<String>,
    #[serde(default)]
    pub occurred_on: String,
    /// The witness's full name, typed as their signature.
    #[serde(default)]
    pub signature: String,
    #[serde(default)]
    pub declaration: bool,
}

/// A checked statement, ready to sign.
#[derive(Debug)]
pub struct Statement {
    text: String,
    criteria: Vec<(String, Uuid)>,
    occurred_on: NaiveDate,
    signed_name: String,
}

impl Statement {
    pub fn parse(raw: &RawStatement, request: &OpenRequest, today: NaiveDate) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let text = limited("statement", &raw.statement, 20_000, "The statement", &mut errors);
        if text.is_empty() {
            errors.push(FieldError::new("statement", "Write what you saw the learner do"));
        }
        let mut criteria = Vec::new();
        for number in &raw.criteria {
            match request.criteria.iter().find(|c| c.number == number.trim()) {
                Some(c) if !criteria.iter().any(|(n, _)| n == &c.number) => criteria.push((c.number.clone(), c.id)),
                Some(_) => {}
                None => errors.push(FieldError::new(
                    "criteria",
                    format!("{} is not one of the criteria you were asked about", number.trim()),
                )),
            }
        }
        if raw.criteria.is_empty() {
            errors.push(FieldError::new("criteria", "Tick at least one criterion your statement shows"));
        }
        criteria.sort_by_key(|(n, _)| request.criteria.iter().position(|c| &c.number == n));
        let occurred_on = match NaiveDate::parse_from_str(raw.occurred_on.trim(), "%Y-%m-%d") {
            Ok(date) if date > today => {
                errors.push(FieldError::new("occurred_on", "The date you saw this must be today or in the past"));
                None
            }
            Ok(date) => Some(date),
            Err(_) if raw.occurred_on.trim().is_empty() => {
                errors.push(FieldError::new("occurred_on", "Enter the date you saw the learner do this"));
                None
            }
            Err(_) => {
                errors.push(FieldError::new("occurred_on", "The date must be a real date, like 2026-03-17"));
                None
            }
        };
        let signed_name = limited("signature", &raw.signature, 200, "Your name", &mut errors);
        if signed_name.is_empty() {
            errors.push(FieldError::new("signature", "Type your full name to sign the statement"));
        } else if !same_name(&signed_name, &request.witness_name) {
            errors.push(FieldError::new(
                "signature",
                format!(
                    "Type your full name as the learner's register has it ({}). If that is not you, do not sign.",
                    request.witness_name
                ),
            ));
        }
        if !raw.declaration {
            errors.push(FieldError::new(
                "declaration",
                "Confirm that this is a true account of what you saw and that you are not the learner",
            ));
        }
        match occurred_on {
            Some(occurred_on) if errors.is_empty() => Ok(Statement { text, criteria, occurred_on, signed_name }),
            _ => Err(errors),
        }
    }
}

/// The witness's signature: their declaration and exactly what they signed.
fn signature_hash(evidence_id: Uuid, request: &OpenRequest, statement: &Statement, at: DateTime<Utc>) -> String {
    let signed = serde_json::json!({
        "declaration": WITNESS_DECLARATION,
        "evidence_id": evidence_id,
        "witness_id": request.witness_id,
        "signed_name": statement.signed_name,
        "statement": statement.text,
        "criteria": statement.criteria.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        "occurred_on": statement.occurred_on,
        "signed_at": at,
    });
    hex::encode(Sha256::digest(signed.to_string().as_bytes()))
}

/// Stores the witness's signed statement as a submitted evidence item of the learner's and uses
/// the link up, in one transaction with its audit event. The item is recorded as added by the
/// person who asked for it; the witness is its signer.
pub async fn sign_statement(
    conn: &mut PgConnection,
    token: &str,
    viewer: Option<&Actor>,
    raw: &RawStatement,
    today: NaiveDate,
) -> AppResult<(Uuid, OpenRequest)> {
    let request = open(conn, token, viewer).await?;
    crate::assessment::sign_off::ensure_open(conn, request.enrolment_id).await?;
    let statement = Statement::parse(raw, &request, today).map_err(AppError::Invalid)?;
    let id = Uuid::new_v4();
    let at = Utc::now();
    let hash = signature_hash(id, &request, &statement, at);
    sqlx::query!(
        "INSERT INTO evidence_items (id, enrolment_id, title, description, method, occurred_on, created_by, status,
                                     submitted_at, kind, declaration_text, declared_at, declaration_sha256,
                                     signer_role, witness_id, signed_name)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'submitted', $8, 'witness_statement', $9, $8, $10, 'witness', $11, $12)",
        id,
        request.enrolment_id,
        format!("Witness testimony from {} ({})", request.witness_name, request.witness_job_role),
        statement.text,
        Method::WitnessTestimony.as_str(),
        statement.occurred_on,
        request.requested_by,
        at,
        WITNESS_DECLARATION,
        hash,
        request.witness_id,
        statement.signed_name
    )
    .execute(&mut *conn)
    .await?;
    for (_, criterion_id) in &statement.criteria {
        sqlx::query!(
            "INSERT INTO evidence_criteria (evidence_id, criterion_id, added_by) VALUES ($1, $2, $3)",
            id,
            criterion_id,
            request.requested_by
        )
        .execute(&mut *conn)
        .await?;
    }
    let used = sqlx::query!(
        "UPDATE witness_requests SET used_at = $2, evidence_id = $3 WHERE id = $1 AND used_at IS NULL",
        request.id,
        at,
        id
    )
    .execute(&mut *conn)
    .await?;
    if used.rows_affected() != 1 {
        return Err(AppError::Gone("This link has already been used. A link works once only.".into()));
    }
    audit::record(
        conn,
        Event::new(None, "witness.statement_signed", "evidence", Some(id))
            .as_witness()
            .enrolment(request.enrolment_id)
            .details(serde_json::json!({
                "witness_id": request.witness_id,
                "witness_name": request.witness_name,
                "signed_name": statement.signed_name,
                "request_id": request.id,
                "criteria": statement.criteria.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                "signature_sha256": hash,
            })),
    )
    .await?;
    Ok((id, request))
}

/// The assessor's confirmation that the witness wrote the statement (checked with them).
pub async fn confirm(
    conn: &mut PgConnection,
    actor: &Actor,
    access: &EnrolmentAccess,
    evidence_id: Uuid,
    checked: bool,
) -> AppResult<()> {
    crate::assessment::sign_off::ensure_open(conn, access.id).await?;
    let item = sqlx::query!(
        "SELECT kind, witness_id, witness_confirmed_at FROM evidence_items WHERE id = $1 FOR UPDATE",
        evidence_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if item.kind != "witness_statement" {
        return Err(AppError::Conflict("Only statements signed by a witness need confirming".into(), vec![]));
    }
    if item.witness_confirmed_at.is_some() {
        return Err(AppError::Conflict("This witness statement has already been confirmed".into(), vec![]));
    }
    if !checked {
        return Err(AppError::invalid(
            "confirmed",
            "Confirm that you have checked with the witness that they wrote and signed this statement",
        ));
    }
    sqlx::query!(
        "UPDATE evidence_items SET witness_confirmed_by = $2, witness_confirmed_at = now() WHERE id = $1",
        evidence_id,
        actor.id
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "witness.statement_confirmed", "evidence", Some(evidence_id))
            .as_role(access.relation.role())
            .enrolment(access.id)
            .details(serde_json::json!({"witness_id": item.witness_id})),
    )
    .await?;
    Ok(())
}
