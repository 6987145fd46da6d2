//! People and their places: centres, user accounts, roles per centre, and enrolments of
//! learners on units with their assessor and IQA.

mod admin_api;
pub mod import;
mod routes;
pub mod settings;

pub use routes::router;
pub(crate) use routes::user_view;

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::audit::{self, Event};
use crate::auth::{Actor, CentreRole, Role, password};

/// The centre used when a deployment has only one and none is named.
pub const DEFAULT_CENTRE: &str = "Default centre";

/// An email address, trimmed and checked for the shape `local@domain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let valid = text.len() <= 254
            && text.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
            })
            && !text.chars().any(|c| c.is_whitespace() || c.is_control());
        if valid { Ok(Email(text.to_string())) } else { Err(format!("\"{text}\" is not an email address")) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserSummary {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
    pub disabled: bool,
}

pub async fn load_actor(conn: &mut PgConnection, user_id: Uuid) -> Result<Option<Actor>, sqlx::Error> {
    // One statement (it runs on every signed-in request): the user, with a row per role.
    let rows = sqlx::query!(
        r#"SELECT u.id, u.email, u.name, r.centre_id AS "centre_id?", c.name AS "centre_name?", r.role AS "role?"
           FROM users u
           LEFT JOIN user_roles r ON r.user_id = u.id
           LEFT JOIN centres c ON c.id = r.centre_id
           WHERE u.id = $1 AND u.disabled_at IS NULL
           ORDER BY c.name, r.role"#,
        user_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let Some(first) = rows.first() else { return Ok(None) };
    let (id, email, name) = (first.id, first.email.clone(), first.name.clone());
    let roles = rows
        .into_iter()
        .filter_map(|r| {
            Some(CentreRole { centre_id: r.centre_id?, centre_name: r.centre_name?, role: r.role?.parse().ok()? })
        })
        .collect();
    Ok(Some(Actor { id, email, name, roles }))
}

/// The user id and password hash for a sign-in attempt.
pub async fn credentials(conn: &mut PgConnection, email: &str) -> Result<Option<(Uuid, String)>, sqlx::Error> {
    Ok(sqlx::query!(
        "SELECT id, password_hash FROM users WHERE lower(email) = lower($1) AND disabled_at IS NULL",
        email.trim()
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.id, r.password_hash)))
}

pub async fn find_user_id(conn: &mut PgConnection, email: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar!("SELECT id FROM users WHERE lower(email) = lower($1)", email.trim()).fetch_optional(conn).await
}

/// The centre with this name, created if new.
pub async fn ensure_centre(conn: &mut PgConnection, name: &str) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar!(
        "INSERT INTO centres (id, name) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        Uuid::new_v4(),
        name
    )
    .fetch_one(conn)
    .await
}

/// Creates an account with one role at `centre_id`. `by` is the administrator (None: the
/// command line). Without a password the account cannot sign in until a password-set link is used.
pub async fn add_user(
    conn: &mut PgConnection,
    by: Option<&Actor>,
    centre_id: Uuid,
    email: &Email,
    name: &str,
    role: Role,
    password: Option<&str>,
) -> anyhow::Result<Uuid> {
    let name = name.trim();
    if name.is_empty() {
        anyhow::bail!("a name is required");
    }
    if name.chars().count() > 200 {
        anyhow::bail!("a name must be 200 characters or fewer");
    }
    if find_user_id(conn, email.as_str()).await?.is_some() {
        anyhow::bail!("a user with email {} already exists", email.as_str());
    }
    let hash = match password {
        Some(password) => {
            password::check_new(password, &[name, email.as_str()]).map_err(anyhow::Error::msg)?;
            password::hash(password.to_string()).await?
        }
        // A hash of a random secret nobody holds: no password works until one is set.
        None => password::hash(password::generate()).await?,
    };
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)",
        id,
        email.as_str(),
        name,
        hash
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(by, "user.created", "user", Some(id))
            .details(serde_json::json!({"email": email.as_str(), "name": name})),
    )
    .await?;
    grant_role(conn, by, id, centre_id, role).await?;
    Ok(id)
}

/// Gives a person a role at a centre (nothing happens if they hold it already).
pub async fn grant_role(
    conn: &mut PgConnection,
    by: Option<&Actor>,
    user_id: Uuid,
    centre_id: Uuid,
    role: Role,
) -> Result<bool, sqlx::Error> {
    let granted = sqlx::query!(
        "INSERT INTO user_roles (user_id, centre_id, role) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        user_id,
        centre_id,
        role.as_str()
    )
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if granted {
        audit::record(
            conn,
            Event::new(by, "user.role_granted", "user", Some(user_id))
                .details(serde_json::json!({"role": role, "centre_id": centre_id})),
        )
        .await?;
    }
    Ok(granted)
}

/// Sets a password after checking it against the rules (the command line's reset).
pub async fn set_password(conn: &mut PgConnection, user_id: Uuid, password: &str) -> anyhow::Result<()> {
    let user = sqlx::query!("SELECT name, email FROM users WHERE id = $1", user_id).fetch_one(&mut *conn).await?;
    password::check_new(password, &[&user.name, &user.email]).map_err(anyhow::Error::msg)?;
    store_password(conn, user_id, password, None).await?;
    audit::record(conn, Event::new(None, "user.password_reset", "user", Some(user_id))).await?;
    Ok(())
}

/// Stores a new password hash and ends every session of the person except `keep` (the session
/// that changed it, if any).
pub async fn store_password(
    conn: &mut PgConnection,
    user_id: Uuid,
    password: &str,
    keep: Option<&str>,
) -> anyhow::Result<()> {
    let hash = password::hash(password.to_string()).await?;
    sqlx::query!("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1", user_id, hash)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "DELETE FROM sessions WHERE data->>'user_id' = $1 AND id IS DISTINCT FROM $2",
        user_id.to_string(),
        keep
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Everyone (`centre` None, for the command line) or the people holding a role at one centre,
/// with their roles there.
pub async fn list_users(conn: &mut PgConnection, centre: Option<Uuid>) -> Result<Vec<UserSummary>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.email, u.name, u.disabled_at IS NOT NULL AS "disabled!",
                  coalesce(array_agg(r.role ORDER BY r.role) FILTER (WHERE r.role IS NOT NULL), '{}') AS "roles!"
           FROM users u LEFT JOIN user_roles r ON r.user_id = u.id AND ($1::uuid IS NULL OR r.centre_id = $1)
           WHERE $1::uuid IS NULL OR EXISTS (SELECT 1 FROM user_roles x WHERE x.user_id = u.id AND x.centre_id = $1)
           GROUP BY u.id ORDER BY lower(u.name), lower(u.email)"#,
        centre
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| UserSummary { id: r.id, email: r.email, name: r.name, roles: r.roles, disabled: r.disabled })
        .collect())
}

/// One page of the people holding a role at a centre, with their roles there, by name (keyset on
/// `lower(name)` and id, indexed by `users_by_name`).
pub async fn users_page(
    conn: &mut PgConnection,
    centre: Uuid,
    request: &crate::web::pagination::PageRequest,
) -> Result<crate::web::pagination::Page<UserSummary>, sqlx::Error> {
    let (after_name, after_id) = request.position().map(|p| (p.key, p.id)).unzip();
    let rows = sqlx::query!(
        r#"SELECT u.id, u.email, u.name, lower(u.name) AS "sort_name!", u.disabled_at IS NOT NULL AS "disabled!",
                  coalesce(array_agg(r.role ORDER BY r.role) FILTER (WHERE r.role IS NOT NULL), '{}') AS "roles!"
           FROM users u JOIN user_roles r ON r.user_id = u.id AND r.centre_id = $1
           WHERE $2::text IS NULL OR (lower(u.name), u.id) > ($2, $3)
           GROUP BY u.id ORDER BY lower(u.name), u.id LIMIT $4"#,
        centre,
        after_name,
        after_id,
        request.fetch()
    )
    .fetch_all(conn)
    .await?;
    Ok(request.keyed_page(
        rows.into_iter()
            .map(|r| {
                let position = crate::web::pagination::Position::new(r.sort_name, r.id);
                (position, UserSummary { id: r.id, email: r.email, name: r.name, roles: r.roles, disabled: r.disabled })
            })
            .collect(),
    ))
}

/// Enrols a learner on a unit with an assessor (and optionally an IQA), checking each person
/// holds that role at the centre.
pub async fn enrol(
    conn: &mut PgConnection,
    by: Option<&Actor>,
    centre: Option<Uuid>,
    learner: &str,
    unit_code: &str,
    assessor: &str,
    iqa: Option<&str>,
) -> anyhow::Result<Uuid> {
    let unit = crate::catalogue::find_unit(conn, Some(unit_code), None)
        .await
        .map_err(|_| anyhow::anyhow!("no unit with code {unit_code:?}; `eportfolio unit import FILE` adds one"))?;
    // Without a named centre (the command line), the one the learner and assessor share.
    let centre_id = match centre {
        Some(centre) => centre,
        None => {
            let learner_id = person_with_role(conn, learner, Role::Learner).await?;
            let assessor_id = person_with_role(conn, assessor, Role::Assessor).await?;
            sqlx::query_scalar!(
                "SELECT r.centre_id FROM user_roles r JOIN user_roles l ON l.centre_id = r.centre_id
                 WHERE r.user_id = $1 AND r.role = 'assessor' AND l.user_id = $2 AND l.role = 'learner'
                 ORDER BY r.centre_id LIMIT 1",
                assessor_id,
                learner_id
            )
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| anyhow::anyhow!("{assessor} is not an assessor at {learner}'s centre"))?
        }
    };
    let learner_id = person_with_role_at(conn, learner, Role::Learner, centre_id).await?;
    let assessor_id = person_with_role_at(conn, assessor, Role::Assessor, centre_id).await?;
    if assessor_id == learner_id {
        anyhow::bail!("a learner cannot be their own assessor");
    }
    let iqa_id = match iqa.map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => {
            let id = person_with_role_at(conn, email, Role::Iqa, centre_id).await?;
            if id == assessor_id {
                anyhow::bail!("the IQA must not be the learner's assessor: an IQA never samples their own decisions");
            }
            Some(id)
        }
        None => None,
    };
    let id = Uuid::new_v4();
    let inserted = sqlx::query!(
        "INSERT INTO enrolments (id, centre_id, learner_id, unit_id, assessor_id, iqa_id)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (learner_id, unit_id) DO NOTHING",
        id,
        centre_id,
        learner_id,
        unit.summary.id,
        assessor_id,
        iqa_id
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 0 {
        anyhow::bail!("{learner} is already enrolled on {}", unit.summary.code);
    }
    sqlx::query!(
        "INSERT INTO enrolment_assignments (id, enrolment_id, assessor_id, iqa_id, assigned_by, reason)
         VALUES ($1, $2, $3, $4, $5, 'Enrolled')",
        Uuid::new_v4(),
        id,
        assessor_id,
        iqa_id,
        by.map(|a| a.id)
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(by, "enrolment.created", "enrolment", Some(id))
            .enrolment(id)
            .details(serde_json::json!({"unit": unit.summary.code, "learner_id": learner_id,
                                        "assessor_id": assessor_id, "iqa_id": iqa_id})),
    )
    .await?;
    Ok(id)
}

async fn person_with_role(conn: &mut PgConnection, email: &str, role: Role) -> anyhow::Result<Uuid> {
    let id = find_user_id(conn, email).await?.ok_or_else(|| anyhow::anyhow!("no user with email {email}"))?;
    let has = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_roles WHERE user_id = $1 AND role = $2) AS "has!""#,
        id,
        role.as_str()
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has {
        anyhow::bail!("{email} does not have the {role} role");
    }
    Ok(id)
}

/// Ends every session of a person (sign out everywhere).
pub async fn end_all_sessions(conn: &mut PgConnection, user_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("DELETE FROM sessions WHERE data->>'user_id' = $1", user_id.to_string()).execute(conn).await?;
    Ok(())
}

/// Changes a person's name and email.
pub async fn update_user(
    conn: &mut PgConnection,
    by: &Actor,
    user_id: Uuid,
    name: &str,
    email: &Email,
) -> anyhow::Result<()> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        anyhow::bail!("a name of 1 to 200 characters is required");
    }
    if let Some(other) = find_user_id(conn, email.as_str()).await?
        && other != user_id
    {
        anyhow::bail!("another person already uses the email {}", email.as_str());
    }
    let before = sqlx::query!("SELECT name, email FROM users WHERE id = $1", user_id).fetch_one(&mut *conn).await?;
    sqlx::query!(
        "UPDATE users SET name = $2, email = $3, updated_at = now() WHERE id = $1",
        user_id,
        name,
        email.as_str()
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(by), "user.updated", "user", Some(user_id)).details(serde_json::json!({
            "name": {"from": before.name, "to": name},
            "email": {"from": before.email, "to": email.as_str()},
        })),
    )
    .await?;
    Ok(())
}

/// Sets exactly which roles a person holds at a centre, recording each grant and removal.
pub async fn set_roles(
    conn: &mut PgConnection,
    by: &Actor,
    user_id: Uuid,
    centre_id: Uuid,
    roles: &[Role],
) -> anyhow::Result<()> {
    for role in Role::ALL {
        if roles.contains(&role) {
            grant_role(conn, Some(by), user_id, centre_id, role).await?;
        } else {
            let removed = sqlx::query!(
                "DELETE FROM user_roles WHERE user_id = $1 AND centre_id = $2 AND role = $3",
                user_id,
                centre_id,
                role.as_str()
            )
            .execute(&mut *conn)
            .await?
            .rows_affected();
            if removed == 1 {
                audit::record(
                    conn,
                    Event::new(Some(by), "user.role_removed", "user", Some(user_id))
                        .details(serde_json::json!({"role": role, "centre_id": centre_id})),
                )
                .await?;
            }
        }
    }
    Ok(())
}

/// Disables (every session ends, sign-in refused) or re-enables an account.
pub async fn set_disabled(conn: &mut PgConnection, by: &Actor, user_id: Uuid, disabled: bool) -> anyhow::Result<()> {
    if disabled && by.id == user_id {
        anyhow::bail!("you cannot disable your own account");
    }
    sqlx::query!(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END, updated_at = now() WHERE id = $1",
        user_id,
        disabled
    )
    .execute(&mut *conn)
    .await?;
    if disabled {
        sqlx::query!("DELETE FROM sessions WHERE data->>'user_id' = $1", user_id.to_string())
            .execute(&mut *conn)
            .await?;
        sqlx::query!("UPDATE api_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL", user_id)
            .execute(&mut *conn)
            .await?;
    }
    let action = if disabled { "user.disabled" } else { "user.enabled" };
    audit::record(conn, Event::new(Some(by), action, "user", Some(user_id))).await?;
    Ok(())
}

/// One period of an enrolment with an assessor and IQA.
#[derive(Debug, Clone, Serialize)]
pub struct Assignment {
    pub assessor_name: String,
    pub iqa_name: Option<String>,
    pub assigned_at: chrono::DateTime<chrono::Utc>,
    pub assigned_by: Option<String>,
    pub reason: String,
}

pub async fn assignments(conn: &mut PgConnection, enrolment_id: Uuid) -> Result<Vec<Assignment>, sqlx::Error> {
    sqlx::query_as!(
        Assignment,
        r#"SELECT a.name AS assessor_name, q.name AS "iqa_name?", x.assigned_at, b.name AS "assigned_by?", x.reason
           FROM enrolment_assignments x JOIN users a ON a.id = x.assessor_id
           LEFT JOIN users q ON q.id = x.iqa_id LEFT JOIN users b ON b.id = x.assigned_by
           WHERE x.enrolment_id = $1 ORDER BY x.assigned_at DESC"#,
        enrolment_id
    )
    .fetch_all(conn)
    .await
}

/// Moves a learner to another assessor (and IQA). The earlier assignment stays in the history.
pub async fn reassign(
    conn: &mut PgConnection,
    by: &Actor,
    enrolment_id: Uuid,
    assessor: &str,
    iqa: Option<&str>,
    reason: &str,
) -> anyhow::Result<()> {
    let reason = reason.trim();
    if reason.is_empty() {
        anyhow::bail!("give a reason for the change; it is kept with the learner's record");
    }
    let enrolment = sqlx::query!("SELECT centre_id, learner_id FROM enrolments WHERE id = $1 FOR UPDATE", enrolment_id)
        .fetch_one(&mut *conn)
        .await?;
    let assessor_id = person_with_role_at(conn, assessor, Role::Assessor, enrolment.centre_id).await?;
    if assessor_id == enrolment.learner_id {
        anyhow::bail!("a learner cannot be their own assessor");
    }
    let iqa_id = match iqa.map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => {
            let id = person_with_role_at(conn, email, Role::Iqa, enrolment.centre_id).await?;
            if id == assessor_id {
                anyhow::bail!("the IQA must not be the learner's assessor: an IQA never samples their own decisions");
            }
            Some(id)
        }
        None => None,
    };
    sqlx::query!(
        "UPDATE enrolments SET assessor_id = $2, iqa_id = $3 WHERE id = $1",
        enrolment_id,
        assessor_id,
        iqa_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO enrolment_assignments (id, enrolment_id, assessor_id, iqa_id, assigned_by, reason)
         VALUES ($1, $2, $3, $4, $5, $6)",
        Uuid::new_v4(),
        enrolment_id,
        assessor_id,
        iqa_id,
        by.id,
        reason
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(Some(by), "enrolment.reassigned", "enrolment", Some(enrolment_id))
            .enrolment(enrolment_id)
            .details(serde_json::json!({"assessor_id": assessor_id, "iqa_id": iqa_id, "reason": reason})),
    )
    .await?;
    Ok(())
}

async fn person_with_role_at(
    conn: &mut PgConnection,
    email: &str,
    role: Role,
    centre_id: Uuid,
) -> anyhow::Result<Uuid> {
    let id = find_user_id(conn, email).await?.ok_or_else(|| anyhow::anyhow!("no user with email {}", email.trim()))?;
    let has = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_roles r JOIN users u ON u.id = r.user_id
                          WHERE r.user_id = $1 AND r.role = $2 AND r.centre_id = $3 AND u.disabled_at IS NULL) AS "has!""#,
        id,
        role.as_str(),
        centre_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !has {
        anyhow::bail!("{} is not an active {} at this centre", email.trim(), role.label().to_lowercase());
    }
    Ok(id)
}

/// A verifier's access to a centre, for the administrator's list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerifierGrant {
    pub id: Uuid,
    pub verifier_name: String,
    pub verifier_email: String,
    pub starts_on: chrono::NaiveDate,
    pub ends_on: chrono::NaiveDate,
    pub revoked: bool,
    pub current: bool,
    /// `centre`, `units` or `learners`.
    pub scope: String,
}

pub async fn verifier_grants(conn: &mut PgConnection, centre_id: Uuid) -> Result<Vec<VerifierGrant>, sqlx::Error> {
    sqlx::query_as!(
        VerifierGrant,
        r#"SELECT g.id, u.name AS verifier_name, u.email AS verifier_email, g.starts_on, g.ends_on,
                  g.revoked_at IS NOT NULL AS "revoked!",
                  (g.revoked_at IS NULL AND current_date BETWEEN g.starts_on AND g.ends_on) AS "current!",
                  g.scope
           FROM verifier_grants g JOIN users u ON u.id = g.verifier_id
           WHERE g.centre_id = $1 ORDER BY g.ends_on DESC"#,
        centre_id
    )
    .fetch_all(conn)
    .await
}

/// Lets an external verifier see a centre's portfolios from `starts_on` to `ends_on` inclusive.
pub async fn grant_verifier_access(
    conn: &mut PgConnection,
    by: Option<&Actor>,
    verifier_id: Uuid,
    centre_id: Uuid,
    starts_on: chrono::NaiveDate,
    ends_on: chrono::NaiveDate,
) -> anyhow::Result<Uuid> {
    if ends_on < starts_on {
        anyhow::bail!("the access must end on or after the day it starts");
    }
    let is_verifier = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM user_roles WHERE user_id = $1 AND role = 'eqa') AS "is!""#,
        verifier_id
    )
    .fetch_one(&mut *conn)
    .await?;
    if !is_verifier {
        anyhow::bail!("only an external verifier (role eqa) can be given verifier access");
    }
    let id = Uuid::new_v4();
    sqlx::query!(
        "INSERT INTO verifier_grants (id, verifier_id, centre_id, starts_on, ends_on, granted_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        verifier_id,
        centre_id,
        starts_on,
        ends_on,
        by.map(|a| a.id)
    )
    .execute(&mut *conn)
    .await?;
    audit::record(
        conn,
        Event::new(by, "verifier_access.granted", "user", Some(verifier_id)).details(
            serde_json::json!({"grant_id": id, "centre_id": centre_id, "starts_on": starts_on, "ends_on": ends_on}),
        ),
    )
    .await?;
    Ok(id)
}

/// Ends a verifier's access at once.
pub async fn revoke_verifier_access(
    conn: &mut PgConnection,
    by: &Actor,
    grant_id: Uuid,
    centre_id: Uuid,
) -> anyhow::Result<()> {
    let verifier = sqlx::query_scalar!(
        "UPDATE verifier_grants SET revoked_at = now() WHERE id = $1 AND centre_id = $2 AND revoked_at IS NULL
         RETURNING verifier_id",
        grant_id,
        centre_id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| anyhow::anyhow!("no such access to revoke"))?;
    audit::record(
        conn,
        Event::new(Some(by), "verifier_access.revoked", "user", Some(verifier))
            .details(serde_json::json!({"grant_id": grant_id})),
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Email;

    #[test]
    fn emails_are_checked() {
        assert_eq!(Email::parse(" a.b@example.org ").unwrap().as_str(), "a.b@example.org");
        for bad in ["", "a", "a@b", "@b.org", "a b@c.org", "a@.org"] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
    }
}
