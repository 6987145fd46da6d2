//! Centre-wide progress for reporting: one row per enrolment (learner, unit, assessor, criteria
//! met, work waiting, sign-off, IQA sampling, last activity) for a centre's administrators and
//! internal quality assurers, and read-only for external verifiers within their grants. Read
//! in one query; the CSV is written row by row as the database returns them, so a centre of
//! ten thousand learners downloads in flat memory.

mod routes;

use chrono::{DateTime, NaiveDate, Utc};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::{AppError, AppResult, FieldError};
use crate::web::pagination::{Page, PageRequest, Position};

pub use routes::router;

/// Whose enrolments a report covers: whole centres (administrators, IQAs, verifiers with a
/// centre-wide grant) and single enrolments (verifiers granted chosen units or learners).
#[derive(Debug, Clone, Default)]
pub struct ReportScope {
    pub centres: Vec<Uuid>,
    pub enrolments: Vec<Uuid>,
}

/// Where an enrolment's sign-off stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignOffState {
    NotSignedOff,
    /// Signed off by the assessor, waiting for the learner's countersignature.
    SignedOff,
    Countersigned,
    /// Signed off once, then reopened by the assessor.
    Reopened,
}

impl SignOffState {
    pub const ALL: [SignOffState; 4] =
        [SignOffState::NotSignedOff, SignOffState::SignedOff, SignOffState::Countersigned, SignOffState::Reopened];

    pub fn as_str(self) -> &'static str {
        match self {
            SignOffState::NotSignedOff => "not_signed_off",
            SignOffState::SignedOff => "signed_off",
            SignOffState::Countersigned => "countersigned",
            SignOffState::Reopened => "reopened",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            SignOffState::NotSignedOff => "Not signed off",
            SignOffState::SignedOff => "Signed off, awaiting countersignature",
            SignOffState::Countersigned => "Signed off and countersigned",
            SignOffState::Reopened => "Reopened",
        }
    }

    pub fn parse(text: &str) -> Option<SignOffState> {
        SignOffState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// The report's filters, parsed from the query string (`assessor`, `unit`, `state`); empty
/// values mean "any".
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub assessor: Option<Uuid>,
    pub unit: Option<String>,
    pub state: Option<SignOffState>,
}

/// The filters as sent, kept for showing the form again.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawFilter {
    /// Only this assessor's learners (the assessor's id).
    #[serde(default)]
    pub assessor: String,
    /// Only this unit (its code, e.g. CC20).
    #[serde(default)]
    pub unit: String,
    /// Only this sign-off state: `not_signed_off`, `signed_off`, `countersigned` or `reopened`.
    #[serde(default)]
    pub state: String,
}

impl Filter {
    pub fn parse(raw: &RawFilter) -> Result<Filter, Vec<FieldError>> {
        let mut errors = Vec::new();
        let assessor = match raw.assessor.trim() {
            "" => None,
            text => text
                .parse()
                .map_err(|_| errors.push(FieldError::new("assessor", "Choose an assessor from the list")))
                .ok(),
        };
        let unit = match raw.unit.trim() {
            "" => None,
            code if code.len() <= 50 && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/') => {
                Some(code.to_string())
            }
            _ => {
                errors.push(FieldError::new("unit", "Choose a unit from the list"));
                None
            }
        };
        let state = match raw.state.trim() {
            "" => None,
            text => {
                let state = SignOffState::parse(text);
                if state.is_none() {
                    errors.push(FieldError::new(
                        "state",
                        "Choose a sign-off state: not_signed_off, signed_off, countersigned or reopened",
                    ));
                }
                state
            }
        };
        if errors.is_empty() { Ok(Filter { assessor, unit, state }) } else { Err(errors) }
    }
}

/// One enrolment's progress.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProgressRow {
    pub enrolment_id: Uuid,
    pub learner_id: Uuid,
    pub learner: String,
    pub learner_email: String,
    pub unit_code: String,
    pub unit_title: String,
    pub assessor_id: Uuid,
    pub assessor: String,
    pub iqa: Option<String>,
    pub enrolled_on: NaiveDate,
    pub criteria_met: i64,
    pub criteria_total: i64,
    pub percent_met: i64,
    pub evidence_items: i64,
    pub items_awaiting_assessment: i64,
    pub oldest_waiting_since: Option<DateTime<Utc>>,
    pub sign_off_state: SignOffState,
    pub signed_off_at: Option<DateTime<Utc>>,
    pub countersigned_at: Option<DateTime<Utc>>,
    pub iqa_sampled: bool,
    pub last_activity: Option<DateTime<Utc>>,
}

impl ProgressRow {
    pub fn state_label(&self) -> &'static str {
        self.sign_off_state.label()
    }

    pub fn date(at: &Option<DateTime<Utc>>) -> String {
        at.map(|at| at.format("%Y-%m-%d").to_string()).unwrap_or_default()
    }

    pub fn oldest_waiting_text(&self) -> String {
        Self::date(&self.oldest_waiting_since)
    }

    pub fn signed_off_text(&self) -> String {
        Self::date(&self.signed_off_at)
    }

    pub fn countersigned_text(&self) -> String {
        Self::date(&self.countersigned_at)
    }

    pub fn last_activity_text(&self) -> String {
        Self::date(&self.last_activity)
    }

    /// The CSV columns, in the header's order.
    pub const CSV_HEADER: [&'static str; 20] = [
        "enrolment_id",
        "learner",
        "learner_email",
        "unit_code",
        "unit_title",
        "assessor",
        "iqa",
        "enrolled_on",
        "criteria_met",
        "criteria_total",
        "percent_met",
        "evidence_items",
        "items_awaiting_assessment",
        "oldest_waiting_since",
        "sign_off_state",
        "signed_off_on",
        "countersigned_on",
        "iqa_sampled",
        "last_activity",
        "learner_id",
    ];

    fn csv_cells(&self) -> [String; 20] {
        [
            self.enrolment_id.to_string(),
            self.learner.clone(),
            self.learner_email.clone(),
            self.unit_code.clone(),
            self.unit_title.clone(),
            self.assessor.clone(),
            self.iqa.clone().unwrap_or_default(),
            self.enrolled_on.to_string(),
            self.criteria_met.to_string(),
            self.criteria_total.to_string(),
            self.percent_met.to_string(),
            self.evidence_items.to_string(),
            self.items_awaiting_assessment.to_string(),
            Self::date(&self.oldest_waiting_since),
            self.sign_off_state.as_str().to_string(),
            Self::date(&self.signed_off_at),
            Self::date(&self.countersigned_at),
            if self.iqa_sampled { "yes" } else { "no" }.to_string(),
            self.last_activity.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)).unwrap_or_default(),
            self.learner_id.to_string(),
        ]
    }
}

/// A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or a tab or carriage
/// return before one) becomes text with a leading apostrophe.
pub fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_string() }
}

/// One CSV record (RFC 4180: comma-separated, CRLF-terminated, quoted where needed).
pub fn csv_line(cells: &[String]) -> AppResult<Vec<u8>> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    writer
        .write_record(cells.iter().map(|c| spreadsheet_safe(c)))
        .and_then(|_| writer.flush().map_err(csv::Error::from))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    writer.into_inner().map_err(|e| AppError::Unexpected(anyhow::anyhow!("{e}")))
}

/// The header line, after a UTF-8 byte-order mark so spreadsheets read names with accents.
pub fn csv_header() -> AppResult<Vec<u8>> {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(csv_line(&ProgressRow::CSV_HEADER.map(String::from))?);
    Ok(bytes)
}

impl ProgressRow {
    pub fn csv_line(&self) -> AppResult<Vec<u8>> {
        csv_line(&self.csv_cells())
    }
}

/// Every enrolment in `scope` matching `filter`, by learner name, as the database returns them
/// (the CSV writes each out as it arrives; the page collects them).
pub fn progress<'c>(
    conn: &'c mut PgConnection,
    scope: &ReportScope,
    filter: &Filter,
) -> impl Stream<Item = AppResult<ProgressRow>> + Send + use<'c> {
    progress_rows(conn, scope, filter, None, None)
}

/// How many enrolments in `scope` match `filter`: the report's count, on every page.
pub async fn progress_count(conn: &mut PgConnection, scope: &ReportScope, filter: &Filter) -> AppResult<i64> {
    // The sign-off state as `progress_rows` works it out, from the latest sign-off alone.
    Ok(sqlx::query_scalar!(
        r#"WITH scoped AS (
               SELECT en.id FROM enrolments en JOIN units u ON u.id = en.unit_id
               WHERE (en.centre_id = ANY($1) OR en.id = ANY($2))
                 AND ($3::uuid IS NULL OR en.assessor_id = $3)
                 AND ($4::text IS NULL OR u.code = $4)),
           latest_sign_off AS (
               SELECT DISTINCT ON (s.enrolment_id) s.enrolment_id, r.reopened_at, cs.signed_at AS countersigned_at
               FROM sign_offs s
               LEFT JOIN sign_off_reopenings r ON r.sign_off_id = s.id
               LEFT JOIN sign_off_countersignatures cs ON cs.sign_off_id = s.id
               WHERE $5::text IS NOT NULL AND s.enrolment_id IN (SELECT id FROM scoped)
               ORDER BY s.enrolment_id, s.version DESC)
           SELECT count(*) AS "count!" FROM scoped en LEFT JOIN latest_sign_off so ON so.enrolment_id = en.id
           WHERE $5::text IS NULL
              OR $5 = CASE WHEN so.enrolment_id IS NULL THEN 'not_signed_off'
                           WHEN so.reopened_at IS NOT NULL THEN 'reopened'
                           WHEN so.countersigned_at IS NOT NULL THEN 'countersigned'
                           ELSE 'signed_off' END"#,
        &scope.centres,
        &scope.enrolments,
        filter.assessor,
        filter.unit.as_deref(),
        filter.state.map(|s| s.as_str())
    )
    .fetch_one(conn)
    .await?)
}

/// One page of the report, by learner name, then unit. Keyset on (learner's name, unit code,
/// enrolment): without a sign-off state filter only the page's enrolments are worked out.
pub async fn progress_page(
    conn: &mut PgConnection,
    scope: &ReportScope,
    filter: &Filter,
    request: &PageRequest,
) -> AppResult<Page<ProgressRow>> {
    let after = request.after_parts(2)?.map(|(parts, id)| (parts[0].clone(), parts[1].clone(), id));
    let rows: Vec<ProgressRow> = progress_rows(conn, scope, filter, after, Some(request.fetch())).try_collect().await?;
    Ok(request.keyed_page(
        rows.into_iter().map(|r| (Position::parts(&[&r.learner, &r.unit_code], r.enrolment_id), r)).collect(),
    ))
}

fn progress_rows<'c>(
    conn: &'c mut PgConnection,
    scope: &ReportScope,
    filter: &Filter,
    after: Option<(String, String, Uuid)>,
    limit: Option<i64>,
) -> impl Stream<Item = AppResult<ProgressRow>> + Send + use<'c> {
    let state = filter.state.map(|s| s.as_str());
    let (after_learner, after_unit, after_id) = match after {
        None => (None, None, None),
        Some((learner, unit, id)) => (Some(learner), Some(unit), Some(id)),
    };
    let rows = sqlx::query!(
        r#"WITH scoped AS (
               SELECT en.* FROM enrolments en JOIN units u ON u.id = en.unit_id JOIN users sl ON sl.id = en.learner_id
               WHERE (en.centre_id = ANY($1) OR en.id = ANY($2))
                 AND ($3::uuid IS NULL OR en.assessor_id = $3)
                 AND ($4::text IS NULL OR u.code = $4)
                 AND ($6::text IS NULL OR (sl.name, u.code, en.id) > ($6, $7, $8))
               ORDER BY sl.name, u.code, en.id
               -- A page without a state filter is the first rows here; with one, the state
               -- (worked out below) decides which rows make the page.
               LIMIT CASE WHEN $5::text IS NULL THEN $9::bigint END),
           current AS (
               SELECT DISTINCT ON (d.evidence_id, d.criterion_id) d.evidence_id, d.criterion_id, d.outcome
               FROM decisions d JOIN evidence_items e ON e.id = d.evidence_id
               WHERE e.enrolment_id IN (SELECT id FROM scoped)
               ORDER BY d.evidence_id, d.criterion_id, d.seq DESC),
           met AS (
               SELECT e.enrolment_id, count(DISTINCT cur.criterion_id) AS met
               FROM current cur JOIN evidence_items e ON e.id = cur.evidence_id
               WHERE cur.outcome = 'met' GROUP BY e.enrolment_id),
           items AS (
               SELECT e.enrolment_id, count(*) AS items FROM evidence_items e
               WHERE e.enrolment_id IN (SELECT id FROM scoped) AND e.status = 'submitted'
               GROUP BY e.enrolment_id),
           waiting AS (
               SELECT e.enrolment_id, count(*) AS waiting, min(e.created_at) AS oldest
               FROM evidence_items e
               WHERE e.enrolment_id IN (SELECT id FROM scoped) AND e.status = 'submitted'
                 AND NOT EXISTS (SELECT 1 FROM evidence_items n WHERE n.previous_version = e.id)
                 AND EXISTS (
                   SELECT 1 FROM evidence_criteria m
                   LEFT JOIN current cur ON cur.evidence_id = m.evidence_id AND cur.criterion_id = m.criterion_id
                   WHERE m.evidence_id = e.id AND cur.outcome IS NULL)
               GROUP BY e.enrolment_id),
           totals AS (SELECT c.unit_id, count(*) AS total FROM criteria c GROUP BY c.unit_id),
           latest_sign_off AS (
               SELECT DISTINCT ON (s.enrolment_id) s.enrolment_id, s.signed_at, r.reopened_at, cs.signed_at AS countersigned_at
               FROM sign_offs s
               LEFT JOIN sign_off_reopenings r ON r.sign_off_id = s.id
               LEFT JOIN sign_off_countersignatures cs ON cs.sign_off_id = s.id
               WHERE s.enrolment_id IN (SELECT id FROM scoped)
               ORDER BY s.enrolment_id, s.version DESC),
           sampled AS (
               SELECT DISTINCT p.enrolment_id FROM iqa_plan_items p
               JOIN iqa_samples smp ON smp.plan_item_id = p.id
               WHERE p.enrolment_id IN (SELECT id FROM scoped)),
           activity AS (
               SELECT ev.enrolment_id, max(ev.occurred_at) AS last_activity FROM audit_events ev
               WHERE ev.enrolment_id IN (SELECT id FROM scoped) AND ev.action NOT LIKE 'verifier.%'
               GROUP BY ev.enrolment_id),
           report AS (
               SELECT en.id, en.learner_id, l.name AS learner_name, l.email AS learner_email, u.code AS unit_code,
                      u.title AS unit_title, en.assessor_id, a.name AS assessor_name, q.name AS iqa_name,
                      en.enrolled_at, COALESCE(t.total, 0) AS criteria_total, COALESCE(m.met, 0) AS criteria_met,
                      COALESCE(i.items, 0) AS items, COALESCE(w.waiting, 0) AS waiting, w.oldest,
                      CASE WHEN so.enrolment_id IS NULL THEN 'not_signed_off'
                           WHEN so.reopened_at IS NOT NULL THEN 'reopened'
                           WHEN so.countersigned_at IS NOT NULL THEN 'countersigned'
                           ELSE 'signed_off' END AS sign_off_state,
                      so.signed_at, so.countersigned_at, (sm.enrolment_id IS NOT NULL) AS sampled,
                      act.last_activity
               FROM scoped en
               JOIN users l ON l.id = en.learner_id
               JOIN units u ON u.id = en.unit_id
               JOIN users a ON a.id = en.assessor_id
               LEFT JOIN users q ON q.id = en.iqa_id
               LEFT JOIN totals t ON t.unit_id = en.unit_id
               LEFT JOIN met m ON m.enrolment_id = en.id
               LEFT JOIN items i ON i.enrolment_id = en.id
               LEFT JOIN waiting w ON w.enrolment_id = en.id
               LEFT JOIN latest_sign_off so ON so.enrolment_id = en.id
               LEFT JOIN sampled sm ON sm.enrolment_id = en.id
               LEFT JOIN activity act ON act.enrolment_id = en.id)
           SELECT id AS "id!", learner_id AS "learner_id!", learner_name AS "learner_name!",
                  learner_email AS "learner_email!", unit_code AS "unit_code!", unit_title AS "unit_title!",
                  assessor_id AS "assessor_id!", assessor_name AS "assessor_name!", iqa_name AS "iqa_name?",
                  enrolled_at AS "enrolled_at!", criteria_total AS "criteria_total!", criteria_met AS "criteria_met!",
                  items AS "items!", waiting AS "waiting!", oldest AS "oldest?", sign_off_state AS "sign_off_state!",
                  signed_at AS "signed_at?", countersigned_at AS "countersigned_at?", sampled AS "sampled!",
                  last_activity AS "last_activity?"
           FROM report
           WHERE ($5::text IS NULL OR sign_off_state = $5)
             AND ($6::text IS NULL OR (learner_name, unit_code, id) > ($6, $7, $8))
           ORDER BY learner_name, unit_code, id
           LIMIT $9"#,
        &scope.centres,
        &scope.enrolments,
        filter.assessor,
        filter.unit.as_deref(),
        state,
        after_learner,
        after_unit,
        after_id,
        limit
    )
    .fetch(conn);
    rows.map(|row| {
        let row = row?;
        let total = row.criteria_total;
        let met = row.criteria_met;
        let state = SignOffState::parse(&row.sign_off_state).unwrap_or(SignOffState::NotSignedOff);
        Ok(ProgressRow {
            enrolment_id: row.id,
            learner_id: row.learner_id,
            learner: row.learner_name,
            learner_email: row.learner_email,
            unit_code: row.unit_code,
            unit_title: row.unit_title,
            assessor_id: row.assessor_id,
            assessor: row.assessor_name,
            iqa: row.iqa_name,
            enrolled_on: row.enrolled_at.date_naive(),
            criteria_met: met,
            criteria_total: total,
            percent_met: if total > 0 { met * 100 / total } else { 0 },
            evidence_items: row.items,
            items_awaiting_assessment: row.waiting,
            oldest_waiting_since: row.oldest,
            sign_off_state: state,
            signed_off_at: row.signed_at,
            countersigned_at: row.countersigned_at,
            iqa_sampled: row.sampled,
            last_activity: row.last_activity,
        })
    })
}

/// The assessors and units in scope, for the filter form's lists.
pub async fn filter_choices(
    conn: &mut PgConnection,
    scope: &ReportScope,
) -> AppResult<(Vec<(Uuid, String)>, Vec<(String, String)>)> {
    let assessors = sqlx::query!(
        r#"SELECT DISTINCT a.id, a.name FROM enrolments en JOIN users a ON a.id = en.assessor_id
           WHERE en.centre_id = ANY($1) OR en.id = ANY($2) ORDER BY a.name, a.id"#,
        &scope.centres,
        &scope.enrolments
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.id, r.name))
    .collect();
    let units = sqlx::query!(
        r#"SELECT DISTINCT u.code, u.title FROM enrolments en JOIN units u ON u.id = en.unit_id
           WHERE en.centre_id = ANY($1) OR en.id = ANY($2) ORDER BY u.code"#,
        &scope.centres,
        &scope.enrolments
    )
    .fetch_all(&mut *conn)
    .await?
    .into_iter()
    .map(|r| (r.code, r.title))
    .collect();
    Ok((assessors, units))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_run_become_text() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+44 113"), "'+44 113");
        assert_eq!(spreadsheet_safe("-1"), "'-1");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("Amira Khan"), "Amira Khan");
        let line = csv_line(&["a,b".into(), "say \"hi\"".into(), "=1+1".into()]).unwrap();
        assert_eq!(String::from_utf8(line).unwrap(), "\"a,b\",\"say \"\"hi\"\"\",'=1+1\r\n");
    }

    #[test]
    fn filters_are_checked_once() {
        let raw = RawFilter { assessor: "nobody".into(), unit: "CC20".into(), state: "done".into() };
        let errors = Filter::parse(&raw).unwrap_err();
        assert_eq!(errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["assessor", "state"]);
        let parsed = Filter::parse(&RawFilter { state: "countersigned".into(), ..Default::default() }).unwrap();
        assert_eq!(parsed.state, Some(SignOffState::Countersigned));
        assert!(parsed.assessor.is_none() && parsed.unit.is_none());
    }
}
