//! Bulk enrolment from a college's student-records CSV export. Every line is checked before
//! anything is written, so a file is imported whole or comes back saying what to fix on each line.

use std::collections::HashMap;

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Email;
use crate::audit::{self, Event};
use crate::auth::{Actor, Role, password_links};
use crate::error::AppError;

/// The most learner lines one file may hold; a larger export is split into several files.
pub const MAX_ROWS: usize = 5_000;
/// The longest name `add_user` accepts.
const MAX_NAME_CHARS: usize = 200;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = LearnerImportReport)]
pub struct ImportReport {
    pub applied: bool,
    pub rows: Vec<RowReport>,
    /// Accounts actually created (0 unless `applied`).
    pub created_accounts: usize,
    /// Enrolments actually made (0 unless `applied`).
    pub enrolments: usize,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = LearnerImportRow)]
pub struct RowReport {
    /// Line number in the file (the header is line 1).
    pub line: usize,
    pub email: String,
    pub name: String,
    pub unit: String,
    /// Empty when the line is fine; otherwise sentences an administrator can act on.
    pub problems: Vec<String>,
    /// A new learner account was (or would be) created for this line.
    pub created_account: bool,
    /// When applied and the account is new: where the learner sets their password (shown once).
    pub password_link: Option<String>,
}

impl ImportReport {
    /// A file refused as a whole, with its problems reported against line 1.
    fn refused(problems: Vec<String>) -> Self {
        let row = RowReport {
            line: 1,
            email: String::new(),
            name: String::new(),
            unit: String::new(),
            problems,
            created_account: false,
            password_link: None,
        };
        ImportReport { applied: false, rows: vec![row], created_accounts: 0, enrolments: 0 }
    }
}

/// Checks every row first; if any row has a problem nothing is written and `applied` is false.
/// Otherwise creates missing learner accounts (no password; a one-time password-set link each via
/// crate::auth::password_links::issue), gives existing people the learner role at the centre if
/// they lack it (accounts::grant_role), and enrols each row (accounts::enrol). The caller runs this in
/// one transaction and commits only when `applied` is true.
pub async fn import_learners(
    conn: &mut PgConnection,
    by: &Actor,
    centre_id: Uuid,
    csv: &[u8],
) -> anyhow::Result<ImportReport> {
    let rows = match read_rows(csv) {
        Ok(rows) => rows,
        Err(problems) => return Ok(ImportReport::refused(problems)),
    };
    let mut checker = Checker::new(centre_id);
    let mut reports = Vec::with_capacity(rows.len());
    for row in &rows {
        reports.push(checker.check(conn, row).await?);
    }
    if reports.iter().any(|r| !r.problems.is_empty()) {
        return Ok(ImportReport { applied: false, rows: reports, created_accounts: 0, enrolments: 0 });
    }

    let mut created_accounts = 0;
    for (row, report) in rows.iter().zip(reports.iter_mut()) {
        let email = Email::parse(&row.email).map_err(anyhow::Error::msg)?;
        if report.created_account {
            let id = super::add_user(conn, Some(by), centre_id, &email, &row.name, Role::Learner, None)
                .await
                .map_err(at_line(row.line))?;
            if let Some(learner_ref) = &row.learner_ref {
                sqlx::query!("UPDATE users SET external_ref = $2 WHERE id = $1", id, learner_ref)
                    .execute(&mut *conn)
                    .await?;
            }
            let token = password_links::issue(conn, Some(by), id).await?;
            report.password_link = Some(password_links::path(&token));
            created_accounts += 1;
        } else if let Some(Some(person)) = checker.people.get(&email.as_str().to_lowercase()) {
            super::grant_role(conn, Some(by), person.id, centre_id, Role::Learner).await?;
        }
        super::enrol(conn, Some(by), Some(centre_id), email.as_str(), &row.unit, &row.assessor, row.iqa.as_deref())
            .await
            .map_err(at_line(row.line))?;
    }
    let enrolments = rows.len();
    audit::record(
        conn,
        Event::new(Some(by), "learners.imported", "centre", Some(centre_id)).details(serde_json::json!({
            "lines": rows.len(), "accounts_created": created_accounts, "enrolments": enrolments
        })),
    )
    .await?;
    Ok(ImportReport { applied: true, rows: reports, created_accounts, enrolments })
}

/// Names the line in a failure the checks did not foresee (such as a concurrent change); database
/// errors are left as they are so the caller can still tell them apart.
fn at_line(line: usize) -> impl FnOnce(anyhow::Error) -> anyhow::Error {
    move |error| if error.is::<sqlx::Error>() { error } else { anyhow::anyhow!("Line {line}: {error}") }
}

/// One learner-on-a-unit line of the file, fields trimmed, with any problem found in reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub line: usize,
    pub email: String,
    pub name: String,
    pub unit: String,
    pub assessor: String,
    pub iqa: Option<String>,
    pub learner_ref: Option<String>,
    pub problems: Vec<String>,
}

// Headers are compared by their letters and digits only, lower-cased, so "First Name",
// "first_name" and "FirstName" are the same column.
const EMAIL: &[&str] = &["email", "emailaddress", "learneremail", "studentemail"];
const FULL_NAME: &[&str] = &["name", "fullname", "learnername", "studentname"];
const FIRST_NAME: &[&str] = &["firstname", "forename", "forenames", "givenname"];
const LAST_NAME: &[&str] = &["lastname", "surname", "familyname"];
const UNIT: &[&str] = &["unit", "unitcode"];
const ASSESSOR: &[&str] = &["assessor", "assessoremail"];
const IQA: &[&str] = &["iqa", "iqaemail"];
/// In order of preference: exports often carry both the college's own number and the national ULN.
const LEARNER_REF: &[&str] = &["learnerref", "learnerreference", "studentid", "studentref", "studentnumber", "uln"];

/// Where each field is in the file's columns.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Columns {
    width: usize,
    email: usize,
    full_name: Option<usize>,
    first_name: Option<usize>,
    last_name: Option<usize>,
    unit: usize,
    assessor: usize,
    iqa: Option<usize>,
    learner_ref: Option<usize>,
}

fn header_key(header: &str) -> String {
    header.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect()
}

/// Finds the columns from the header line, or says which are missing or ambiguous.
fn map_headers(headers: &[String]) -> Result<Columns, Vec<String>> {
    let keys: Vec<String> = headers.iter().map(|h| header_key(h)).collect();
    let mut problems = Vec::new();
    let mut one_of = |names: &[&str], label: &str| -> Option<usize> {
        let found: Vec<usize> = (0..keys.len()).filter(|&i| names.contains(&keys[i].as_str())).collect();
        if found.len() > 1 {
            let quoted: Vec<String> = found.iter().map(|&i| format!("\"{}\"", headers[i].trim())).collect();
            problems
                .push(format!("The columns {} all look like the {label}; keep only one of them.", quoted.join(", ")));
        }
        found.first().copied()
    };
    let email = one_of(EMAIL, "learner's email");
    let full_name = one_of(FULL_NAME, "learner's name");
    let first_name = one_of(FIRST_NAME, "learner's first name");
    let last_name = one_of(LAST_NAME, "learner's last name");
    let unit = one_of(UNIT, "unit code");
    let assessor = one_of(ASSESSOR, "assessor's email");
    let iqa = one_of(IQA, "IQA's email");
    let learner_ref = LEARNER_REF.iter().find_map(|name| keys.iter().position(|k| k == name));

    let has_name = full_name.is_some() || (first_name.is_some() && last_name.is_some());
    let missing: Vec<&str> = [
        (email.is_some(), "email"),
        (has_name, "name (or first name and last name)"),
        (unit.is_some(), "unit code"),
        (assessor.is_some(), "assessor email"),
    ]
    .into_iter()
    .filter_map(|(present, label)| (!present).then_some(label))
    .collect();
    if !missing.is_empty() {
        let found: Vec<&str> = headers.iter().map(|h| h.trim()).filter(|h| !h.is_empty()).collect();
        problems.push(format!(
            "The first line has no column for {}. It names: {}. Expected headers such as: Email, First name, \
             Last name, Unit code, Assessor email, IQA email, Learner ref.",
            missing.join(", "),
            if found.is_empty() { "nothing".to_string() } else { found.join(", ") }
        ));
    }
    match (email, unit, assessor) {
        (Some(email), Some(unit), Some(assessor)) if problems.is_empty() => Ok(Columns {
            width: headers.len(),
            email,
            full_name,
            first_name,
            last_name,
            unit,
            assessor,
            iqa,
            learner_ref,
        }),
        _ => Err(problems),
    }
}

impl Columns {
    fn row(&self, line: usize, fields: &[String], mut problems: Vec<String>) -> Row {
        let field = |i: usize| fields.get(i).map(|f| f.trim().to_string()).unwrap_or_default();
        let optional = |i: Option<usize>| i.map(field).filter(|f| !f.is_empty());
        let name = match optional(self.full_name) {
            Some(name) => name,
            None => [optional(self.first_name), optional(self.last_name)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        };
        if fields.len() > self.width && fields[self.width..].iter().any(|f| !f.trim().is_empty()) {
            problems.push(format!(
                "This line has {} values but the first line names {} columns; a value may contain a comma \
                 without quotes around it.",
                fields.len(),
                self.width
            ));
        }
        Row {
            line,
            email: field(self.email),
            name,
            unit: field(self.unit),
            assessor: field(self.assessor),
            iqa: optional(self.iqa),
            learner_ref: optional(self.learner_ref),
            problems,
        }
    }
}

const NOT_UTF8: &str = "is not UTF-8 text; in Excel use Save As \u{2192} \"CSV UTF-8 (Comma delimited)\" and import \
                        the new file.";

/// The file's learner lines, or the reasons it cannot be read at all (reported against line 1).
pub fn read_rows(csv: &[u8]) -> Result<Vec<Row>, Vec<String>> {
    let csv = csv.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(csv);
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter(csv)).from_reader(csv);
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => return Err(vec!["The file has no learners.".into()]),
        Some(Err(error)) => return Err(vec![format!("The file cannot be read as CSV ({error}).")]),
        Some(Ok(header)) => header,
    };
    let Some(headers) =
        header.iter().map(|h| std::str::from_utf8(h).ok().map(str::to_string)).collect::<Option<Vec<_>>>()
    else {
        return Err(vec![format!("The first line {NOT_UTF8}")]);
    };
    let columns = map_headers(&headers)?;

    let mut rows = Vec::new();
    let mut lines = LineNumbers { text: csv, counted_to: 0, line: 1 };
    for record in records {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                // The reader cannot resynchronise after a broken record, so the rest is not checked.
                let line = lines.at(error.position());
                rows.push(Row {
                    problems: vec![format!("The file cannot be read as CSV from this line on ({error}).")],
                    ..columns.row(line, &[], Vec::new())
                });
                break;
            }
        };
        if record.iter().all(|f| f.trim_ascii().is_empty()) {
            continue;
        }
        if rows.len() == MAX_ROWS {
            return Err(vec![
                "The file has more than 5,000 learners; split it into files of at most 5,000 lines and import each."
                    .into(),
            ]);
        }
        let line = lines.at(record.position());
        let mut problems = Vec::new();
        if record.iter().any(|f| std::str::from_utf8(f).is_err()) {
            problems.push(format!("This line {NOT_UTF8}"));
        }
        let fields: Vec<String> = record.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        rows.push(columns.row(line, &fields, problems));
    }
    if rows.is_empty() {
        return Err(vec!["The file has no learners.".into()]);
    }
    Ok(rows)
}

/// Counts lines up to where each record starts. The csv crate's own line count is thrown off by
/// blank lines and CRLF endings, which spreadsheet exports are full of. A line ends at LF, CRLF
/// or a lone CR (Excel for Mac's "Macintosh" CSV), as the CSV reader ends records.
struct LineNumbers<'a> {
    text: &'a [u8],
    counted_to: usize,
    line: usize,
}

impl LineNumbers<'_> {
    fn at(&mut self, position: Option<&csv::Position>) -> usize {
        let Some(position) = position else { return self.line };
        // The reported byte follows the previous record's terminator, before any blank lines.
        let mut start = usize::try_from(position.byte()).unwrap_or(usize::MAX).min(self.text.len());
        while start < self.text.len() && matches!(self.text[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > self.counted_to {
            let text = self.text;
            self.line += (self.counted_to..start)
                .filter(|&i| text[i] == b'\n' || (text[i] == b'\r' && text.get(i + 1) != Some(&b'\n')))
                .count();
            self.counted_to = start;
        }
        self.line
    }
}

/// Commas unless the header line has more semicolons or tabs (spreadsheets set to some locales).
fn delimiter(csv: &[u8]) -> u8 {
    let first_line = csv.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |d: u8| first_line.iter().filter(|&&b| b == d).count();
    let mut best = b',';
    for candidate in [b';', b'\t'] {
        if count(candidate) > count(best) {
            best = candidate;
        }
    }
    best
}

/// A person as the import needs to know them.
#[derive(Debug, Clone)]
struct Person {
    id: Uuid,
    disabled: bool,
    external_ref: Option<String>,
    /// Roles held at the importing centre.
    roles_here: Vec<String>,
}

/// The first line a learner appears on, to keep later lines for them consistent.
struct FirstMention {
    line: usize,
    name: String,
    learner_ref: Option<String>,
}

/// Checks rows against the database and against earlier rows, remembering what it looked up.
struct Checker {
    centre_id: Uuid,
    /// By lower-cased email; None when nobody has that email.
    people: HashMap<String, Option<Person>>,
    /// By upper-cased code; None when no unit has that code.
    units: HashMap<String, Option<(Uuid, String)>>,
    listed: HashMap<(String, String), usize>,
    learners: HashMap<String, FirstMention>,
    refs: HashMap<String, (String, usize)>,
}

impl Checker {
    fn new(centre_id: Uuid) -> Self {
        Checker {
            centre_id,
            people: HashMap::new(),
            units: HashMap::new(),
            listed: HashMap::new(),
            learners: HashMap::new(),
            refs: HashMap::new(),
        }
    }

    async fn person(&mut self, conn: &mut PgConnection, email: &Email) -> anyhow::Result<Option<Person>> {
        let key = email.as_str().to_lowercase();
        if let Some(known) = self.people.get(&key) {
            return Ok(known.clone());
        }
        let person = sqlx::query!(
            r#"SELECT u.id, u.disabled_at IS NOT NULL AS "disabled!", u.external_ref,
                      coalesce(array_agg(r.role) FILTER (WHERE r.role IS NOT NULL), '{}') AS "roles_here!"
               FROM users u LEFT JOIN user_roles r ON r.user_id = u.id AND r.centre_id = $2
               WHERE lower(u.email) = lower($1) GROUP BY u.id"#,
            email.as_str(),
            self.centre_id
        )
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| Person {
            id: r.id,
            disabled: r.disabled,
            external_ref: r.external_ref,
            roles_here: r.roles_here,
        });
        self.people.insert(key, person.clone());
        Ok(person)
    }

    /// The unit's id and its code as catalogued.
    async fn unit(&mut self, conn: &mut PgConnection, code: &str) -> anyhow::Result<Option<(Uuid, String)>> {
        let key = code.to_uppercase();
        if let Some(known) = self.units.get(&key) {
            return Ok(known.clone());
        }
        let unit = match crate::catalogue::find_unit(conn, Some(code), None).await {
            Ok(unit) => Some((unit.summary.id, unit.summary.code)),
            Err(AppError::NotFound(_)) => None,
            Err(error) => return Err(error.into()),
        };
        self.units.insert(key, unit.clone());
        Ok(unit)
    }

    /// Why `email` cannot be the assessor (or IQA) of learners at this centre, if it cannot.
    async fn staff_problem(
        &mut self,
        conn: &mut PgConnection,
        email: &str,
        role: Role,
        label: &str,
    ) -> anyhow::Result<Option<String>> {
        if email.is_empty() {
            return Ok(Some(format!("The {label}'s email address is missing.")));
        }
        let Ok(parsed) = Email::parse(email) else {
            return Ok(Some(format!("\"{email}\" is not a valid email address for the {label}.")));
        };
        let problem = match self.person(conn, &parsed).await? {
            None => format!("There is no account with the email {email}; add the {label} before importing."),
            Some(person) if person.disabled => format!("The {label} {email} has a disabled account."),
            Some(person) if !person.roles_here.iter().any(|r| r == role.as_str()) => {
                format!("{email} is not an {label} at this centre; give them the {label} role first.")
            }
            Some(_) => return Ok(None),
        };
        Ok(Some(problem))
    }

    async fn check(&mut self, conn: &mut PgConnection, row: &Row) -> anyhow::Result<RowReport> {
        let mut problems = row.problems.clone();

        let learner = if row.email.is_empty() {
            problems.push("The learner's email address is missing.".into());
            None
        } else {
            match Email::parse(&row.email) {
                Ok(email) => Some(email),
                Err(_) => {
                    problems.push(format!("\"{}\" is not a valid email address for the learner.", row.email));
                    None
                }
            }
        };
        let learner_key = learner.as_ref().map(|e| e.as_str().to_lowercase());

        if row.name.is_empty() {
            problems.push("The learner's name is missing.".into());
        } else if row.name.chars().count() > MAX_NAME_CHARS {
            problems.push(format!("The learner's name is longer than {MAX_NAME_CHARS} characters."));
        }

        let unit = if row.unit.is_empty() {
            problems.push("The unit code is missing.".into());
            None
        } else {
            let unit = self.unit(conn, &row.unit).await?;
            if unit.is_none() {
                problems.push(format!(
                    "There is no unit with code \"{}\"; check the code or import the unit first.",
                    row.unit
                ));
            }
            unit
        };

        let assessor_key = row.assessor.to_lowercase();
        problems.extend(self.staff_problem(conn, &row.assessor, Role::Assessor, "assessor").await?);
        if let Some(iqa) = &row.iqa {
            problems.extend(self.staff_problem(conn, iqa, Role::Iqa, "IQA").await?);
            if iqa.to_lowercase() == assessor_key {
                problems.push(
                    "The IQA must be someone other than the assessor: an IQA never samples their own decisions.".into(),
                );
            }
        }

        let mut created_account = false;
        if let (Some(learner), Some(key)) = (&learner, &learner_key) {
            if *key == assessor_key {
                problems.push("A learner cannot be their own assessor.".into());
            }
            if row.iqa.as_ref().is_some_and(|iqa| iqa.to_lowercase() == *key) {
                problems.push("A learner cannot be their own IQA.".into());
            }

            match self.person(conn, learner).await? {
                Some(person) => {
                    if person.disabled {
                        problems.push(format!(
                            "The account for {} is disabled; re-enable it or remove this line.",
                            row.email
                        ));
                    }
                    if let (Some(given), Some(held)) = (&row.learner_ref, &person.external_ref)
                        && given != held
                    {
                        problems.push(format!(
                            "{} already has the learner ref {held}, not {given}; check the learner ref.",
                            row.email
                        ));
                    }
                    if let Some((unit_id, code)) = &unit {
                        let enrolled = sqlx::query_scalar!(
                            r#"SELECT EXISTS (SELECT 1 FROM enrolments WHERE learner_id = $1 AND unit_id = $2)
                               AS "enrolled!""#,
                            person.id,
                            unit_id
                        )
                        .fetch_one(&mut *conn)
                        .await?;
                        if enrolled {
                            problems.push(format!("{} is already enrolled on {code}; remove this line.", row.email));
                        }
                    }
                }
                None => {
                    if let Some(given) = &row.learner_ref {
                        let holder = sqlx::query_scalar!("SELECT email FROM users WHERE external_ref = $1", given)
                            .fetch_optional(&mut *conn)
                            .await?;
                        if let Some(holder) = holder {
                            problems.push(format!("The learner ref {given} already belongs to {holder}."));
                        }
                    }
                    created_account = !self.learners.contains_key(key);
                }
            }

            let unit_key = unit.as_ref().map_or_else(|| row.unit.to_uppercase(), |(_, code)| code.to_uppercase());
            match self.listed.get(&(key.clone(), unit_key.clone())) {
                Some(line) => problems.push(format!(
                    "This learner is already listed for unit {} on line {line}; remove one of the two lines.",
                    row.unit
                )),
                None => {
                    self.listed.insert((key.clone(), unit_key), row.line);
                }
            }

            match self.learners.get(key) {
                Some(first) => {
                    // Only the first line's name is used for a new account, so later lines must agree.
                    if self.people.get(key).is_some_and(Option::is_none) && first.name != row.name {
                        problems.push(format!(
                            "The name differs from line {} (\"{}\") for the same email; use one spelling.",
                            first.line, first.name
                        ));
                    }
                    if let (Some(given), Some(earlier)) = (&row.learner_ref, &first.learner_ref)
                        && given != earlier
                    {
                        problems.push(format!(
                            "The learner ref differs from line {} ({earlier}) for the same email.",
                            first.line
                        ));
                    }
                }
                None => {
                    let first =
                        FirstMention { line: row.line, name: row.name.clone(), learner_ref: row.learner_ref.clone() };
                    self.learners.insert(key.clone(), first);
                }
            }

            if let Some(given) = &row.learner_ref {
                match self.refs.get(given) {
                    Some((other, line)) if other != key => problems.push(format!(
                        "The learner ref {given} is also given for {other} on line {line}; each learner needs their own."
                    )),
                    Some(_) => {}
                    None => {
                        self.refs.insert(given.clone(), (key.clone(), row.line));
                    }
                }
            }
        }

        Ok(RowReport {
            line: row.line,
            email: row.email.clone(),
            name: row.name.clone(),
            unit: row.unit.clone(),
            problems,
            created_account,
            password_link: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(line: &str) -> Vec<String> {
        line.split(',').map(str::to_string).collect()
    }

    fn rows(csv: &str) -> Vec<Row> {
        read_rows(csv.as_bytes()).expect("the file should be readable")
    }

    fn refusal(csv: &[u8]) -> String {
        read_rows(csv).expect_err("the file should be refused").join(" ")
    }

    #[test]
    fn headers_are_found_whatever_their_case_order_and_spelling() {
        let columns =
            map_headers(&headers("Student ID, Unit Code ,ASSESSOR_EMAIL,email_address,First Name,Surname,IQA Email"))
                .unwrap();
        assert_eq!(
            columns,
            Columns {
                width: 7,
                email: 3,
                full_name: None,
                first_name: Some(4),
                last_name: Some(5),
                unit: 1,
                assessor: 2,
                iqa: Some(6),
                learner_ref: Some(0),
            }
        );
        let columns = map_headers(&headers("Full Name,E-mail,unit,Assessor,Notes")).unwrap();
        assert_eq!((columns.full_name, columns.email, columns.iqa, columns.learner_ref), (Some(0), 1, None, None));
    }

    #[test]
    fn the_college_number_is_preferred_to_the_uln() {
        let columns = map_headers(&headers("ULN,Email,Name,Unit,Assessor,Learner Ref")).unwrap();
        assert_eq!(columns.learner_ref, Some(5));
    }

    #[test]
    fn missing_columns_are_named() {
        let problems = map_headers(&headers("Email,First name,Unit,Course")).unwrap_err();
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].contains("no column for name (or first name and last name), assessor email"),
            "{problems:?}"
        );
        assert!(problems[0].contains("It names: Email, First name, Unit, Course"), "{problems:?}");
    }

    #[test]
    fn two_columns_for_the_same_field_are_refused() {
        let problems = map_headers(&headers("Email,Email Address,Name,Unit,Assessor")).unwrap_err();
        assert!(problems[0].contains("\"Email\", \"Email Address\""), "{problems:?}");
    }

    #[test]
    fn rows_are_read_with_their_line_numbers_and_blank_lines_skipped() {
        let rows = rows(
            "\u{feff}Email,First Name,Last Name,Unit,Assessor,IQA,ULN\r\n\
             ann@example.org, Ann ,Lee,cc20,sam@example.org,,\r\n\
             \r\n\
             ,,,,,,\r\n\
             \"bo@example.org\",\"Bo, Jr\",,CC20,sam@example.org,iqa@example.org,123\r\n",
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            Row {
                line: 2,
                email: "ann@example.org".into(),
                name: "Ann Lee".into(),
                unit: "cc20".into(),
                assessor: "sam@example.org".into(),
                iqa: None,
                learner_ref: None,
                problems: vec![],
            }
        );
        assert_eq!(rows[1].line, 5);
        assert_eq!(rows[1].name, "Bo, Jr");
        assert_eq!(rows[1].iqa.as_deref(), Some("iqa@example.org"));
        assert_eq!(rows[1].learner_ref.as_deref(), Some("123"));
    }

    #[test]
    fn line_numbers_count_blank_lines_and_line_breaks_inside_quotes() {
        let rows = rows(
            "Email,Name,Unit,Assessor\n\n\na@x.org,\"Ann\nLee\",CC20,s@x.org\nb@x.org,Bo,CC20,s@x.org\n\n  \nc@x.org,Cy,CC20,s@x.org",
        );
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [4, 6, 9]);
    }

    #[test]
    fn line_numbers_count_lone_carriage_returns_as_excel_for_mac_writes_them() {
        let rows = rows(
            "Email,Name,Unit,Assessor\ra@x.org,Ann,CC20,s@x.org\r\rb@x.org,Bo,CC20,s@x.org\r\nc@x.org,Cy,CC20,s@x.org",
        );
        assert_eq!(rows.iter().map(|r| r.line).collect::<Vec<_>>(), [2, 4, 5]);
    }

    #[test]
    fn a_full_name_column_wins_but_first_and_last_fill_a_blank_one() {
        let rows = rows(
            "Name,First name,Last name,Email,Unit,Assessor\nAnn Lee,A,L,a@x.org,CC20,s@x.org\n,Bo,Li,b@x.org,CC20,s@x.org\n",
        );
        assert_eq!(rows[0].name, "Ann Lee");
        assert_eq!(rows[1].name, "Bo Li");
    }

    #[test]
    fn semicolon_separated_files_are_read() {
        let rows = rows("Email;Name;Unit;Assessor\na@x.org;Ann, Lee;CC20;s@x.org\n");
        assert_eq!((rows[0].name.as_str(), rows[0].unit.as_str()), ("Ann, Lee", "CC20"));
    }

    #[test]
    fn empty_files_and_header_only_files_have_no_learners() {
        for csv in ["", "\n\n", "Email,Name,Unit,Assessor\n", "Email,Name,Unit,Assessor\n,,,\n"] {
            assert_eq!(refusal(csv.as_bytes()), "The file has no learners.", "{csv:?}");
        }
    }

    #[test]
    fn lines_that_are_not_utf8_are_reported_on_their_line() {
        let rows =
            read_rows(b"Email,Name,Unit,Assessor\nzo@x.org,Zo\xeb Li,CC20,s@x.org\nann@x.org,Ann,CC20,s@x.org\n")
                .unwrap();
        assert_eq!(rows[0].line, 2);
        assert!(rows[0].problems[0].contains("not UTF-8"), "{:?}", rows[0].problems);
        assert!(rows[1].problems.is_empty());
        assert!(refusal(b"Email,Pr\xe9nom,Unit,Assessor\n").contains("not UTF-8"));
    }

    #[test]
    fn extra_values_on_a_line_are_reported() {
        let rows = rows("Email,Name,Unit,Assessor\na@x.org,Lee, Ann,CC20,s@x.org\nb@x.org,Bo,CC20,s@x.org,,\n");
        assert!(rows[0].problems[0].contains("5 values but the first line names 4 columns"), "{:?}", rows[0].problems);
        assert!(rows[1].problems.is_empty(), "trailing empty values are harmless");
    }

    #[test]
    fn more_than_five_thousand_learners_are_refused() {
        let mut csv = String::from("Email,Name,Unit,Assessor\n");
        for i in 0..MAX_ROWS {
            csv.push_str(&format!("l{i}@x.org,L {i},CC20,s@x.org\n"));
        }
        assert_eq!(rows(&csv).len(), MAX_ROWS);
        csv.push_str("one@more.org,One More,CC20,s@x.org\n");
        assert!(refusal(csv.as_bytes()).contains("more than 5,000 learners"));
    }
}
