//! External verification (EQA): what a verifier's grant covers (the whole centre, chosen units
//! or chosen learners), their overview of a centre, and their report notes from a visit, the
//! only thing a verifier writes.

mod landing_api;
mod routes;
mod sample;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::{Actor, Role};
use crate::error::{AppError, AppResult, FieldError};

/// The verification pages and their API.
pub fn router() -> crate::web::route_table::Routes {
    routes::router().merge(landing_api::router())
}

/// What a grant covers, parsed from the administrator's form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantScope {
    Centre,
    Units(Vec<Uuid>),
    Learners(Vec<Uuid>),
}

impl GrantScope {
    /// From the form's choice and lists: unit codes, or learners' email addresses (each
    /// learner's enrolments at the centre), separated by commas, spaces or new lines.
    pub async fn parse(
        conn: &mut PgConnection,
        centre_id: Uuid,
        scope: &str,
        units: &str,
        learners: &str,
    ) -> Result<GrantScope, FieldError> {
        let list = |text: &str| {
            text.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        match scope.trim() {
            "" | "centre" => Ok(GrantScope::Centre),
            "units" => {
                let codes = list(units);
                if codes.is_empty() {
                    return Err(FieldError::new("units", "Enter the codes of the units the verifier may see"));
                }
                let found = sqlx::query!("SELECT id, code FROM units WHERE code = ANY($1)", &codes)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|_| FieldError::new("units", "The units could not be looked up"))?;
                if let Some(missing) = codes.iter().find(|c| !found.iter().any(|f| &f.code == *c)) {
                    return Err(FieldError::new("units", format!("There is no unit with the code {missing}")));
                }
                Ok(GrantScope::Units(found.into_iter().map(|f| f.id).collect()))
            }
            "learners" => {
                let emails: Vec<String> = list(learners).into_iter().map(|e| e.to_lowercase()).collect();
                if emails.is_empty() {
                    return Err(FieldError::new("learners", "Enter the email addresses of the learners"));
                }
                let found = sqlx::query!(
                    "SELECT e.id, lower(u.email) AS \"email!\" FROM enrolments e JOIN users u ON u.id = e.learner_id
                     WHERE e.centre_id = $1 AND lower(u.email) = ANY($2)",
                    centre_id,
                    &emails
                )
                .fetch_all(&mut *conn)
                .await
                .map_err(|_| FieldError::new("learners", "The learners could not be looked up"))?;
                if let Some(missing) = emails.iter().find(|e| !found.iter().any(|f| &f.email == *e)) {
                    return Err(FieldError::new(
                        "learners",
                        format!("{missing} is not a learner enrolled at this centre"),
                    ));
                }
                Ok(GrantScope::Learners(found.into_iter().map(|f| f.id).collect()))
            }
            _ => Err(FieldError::new("scope", "Choose what the verifier may see")),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            GrantScope::Centre => "centre",
            GrantScope::Units(_) => "units",
            GrantScope::Learners(_) => "learners",
        }
    }
}

/// Narrows a new grant to its scope, recorded in the caller's transaction.
pub async fn set_grant_scope(
    conn: &mut PgConnection,
    by: Option<&Actor>,
    grant_id: Uuid,
    scope: &GrantScope,
) -> Result<(), sqlx::Error> {
    if *scope == GrantScope::Centre {
        // The default: the grant event already says the whole centre.
        return Ok(());
    }
    sqlx::query!("UPDATE verifier_grants SET scope = $2 WHERE id = $1", grant_id, scope.as_str())
        .execute(&mut *conn)
        .await?;
    let (units, enrolments): (&[Uuid], &[Uuid]) = match scope {
        GrantScope::Centre => (&[], &[]),
        GrantScope::Units(ids) => (ids, &[]),
        GrantScope::Learners(ids) => (&[], ids),
    };
    sqlx::query!(
        "INSERT INTO verifier_grant_units (grant_id, unit_id) SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
        grant_id,
        units
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO verifier_grant_enrolments (grant_id, enrolment_id) SELECT $1, unnest($2::uuid[])
         ON CONFLICT DO NOTHING",
        grant_id,
        enrolments
    )
    .execute(&mut *conn)
    .await?;
    let verifier = sqlx::query_scalar!("SELECT verifier_id FROM verifier_grants WHERE id = $1", grant_id)
        .fetch_one(&mut *conn)
        .await?;
    audit::record(
        conn,
        Event::new(by, "verifier_access.scoped", "user", Some(verifier)).details(serde_json::json!({
            "grant_id": grant_id, "scope": scope.as_str(), "units": units, "enrolments": enrolments,
        })),
    )
    .await?;
    Ok(())
}

/// A verifier's current access, for their landing page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CurrentGrant {
    pub centre_id: Uuid,
    pub centre_name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub scope: String,
}

pub async fn current_grants(conn: &mut PgConnection, actor: &Actor) -> Result<Vec<CurrentGrant>, sqlx::Error> {
    sqlx::query_as!(
        CurrentGrant,
        "SELECT g.centre_id, c.name AS centre_name, g.starts_on, g.ends_on, g.scope
         FROM verifier_grants g JOIN centres c ON c.id = g.centre_id
         WHERE g.verifier_id = $1 AND g.revoked_at IS NULL AND current_date BETWEEN g.starts_on AND g.ends_on
         ORDER BY c.name, g.ends_on",
        actor.id
    )
    .fetch_all(conn)
    .await
}

/// A note from a centre visit, the verifier's own.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = VerifierNote)]
pub struct Note {
    pub id: Uuid,
    pub visit_on: NaiveDate,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

pub async fn notes(conn: &mut PgConnection, verifier_id: Uuid, centre_id: Uuid) -> Result<Vec<Note>, sqlx::Error> {
    sqlx::query_as!(
        Note,
        "SELECT id, visit_on, body, created_at FROM verifier_notes
         WHERE verifier_id = $1 AND centre_id = $2 ORDER BY visit_on DESC, created_at DESC",
        verifier_id,
        centre_id
    )
    .fetch_all(conn)
    .await
}

/// A note as typed.
pub struct NewNote {
    pub visit_on: NaiveDate,
    pub body: String,
}

impl NewNote {
    pub fn parse(visit_on: &str, body: &str) -> AppResult<NewNote> {
        let mut errors = Vec::new();
        let visit_on = NaiveDate::parse_from_str(visit_on.trim(), "%Y-%m-%d")
            .map_err(|_| errors.push(FieldError::new("visit_on", "Enter the date of the visit, like 2026-12-01")))
            .ok();
        let body = body.trim().to_string();
        if body.is_empty() {
            errors.push(FieldError::new("body", "Write the note"));
        } else if body.chars().count() > 20_000 {
            errors.push(FieldError::new("body", "The note must be 20,000 characters or fewer"));
        }
        match visit_on {
            Some(visit_on) if errors.is_empty() => Ok(NewNote { visit_on, body }),
            _ => Err(AppError::Invalid(errors)),
        }
    }
}

/// Writes the verifier's note and its audit event in one transaction.
pub async fn add_note(conn: &mut PgConnection, actor: &Actor, centre_id: Uuid, note: &NewNote) -> AppResult<Uuid> {
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO verifier_notes (id, verifier_id, centre_id, visit_on, body) VALUES ($1, $2, $3, $4, $5)",
        id,
        actor.id,
        centre_id,
        note.visit_on,
        note.body
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(actor), "verifier.note_written", "verifier_note", Some(id))
            .as_role(Role::Eqa)
            .centre(centre_id)
            .details(serde_json::json!({"visit_on": note.visit_on, "length": note.body.chars().count()})),
    )
    .await?;
    Ok(id)
}
