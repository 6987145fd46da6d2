//! The tracking grid: a unit's criteria (rows, by learning outcome) against a learner's evidence
//! items (columns), each cell the item's current decision on the criterion. Shown as a page (and
//! a printable one), downloaded as CSV (also the export's tracking-grid format), as JSON, and as an
//! SVG chart of how many criteria were met over time, replayed from the decisions.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use uuid::Uuid;

use super::{CriterionStatus, Outcome};
use crate::AppState;
use crate::auth::Actor;
use crate::auth::policy::{self, Access, Action, EnrolmentAccess, Relation, Viewed};
use crate::catalogue::{self, Unit};
use crate::error::{AppError, AppResult};
use crate::evidence::{self, EvidenceItem};
use crate::web::route_table::Routes;
use crate::web::{Nav, render_sized};

pub fn router() -> Routes {
    Routes::new()
        .get("/enrolments/{id}/tracking", Access::Enrolment(Action::View), page)
        .get("/enrolments/{id}/tracking.csv", Access::Enrolment(Action::View), csv_download)
        .get("/enrolments/{id}/progress.svg", Access::Enrolment(Action::View), chart_download)
        // The same downloads in the API, for scripts (same handlers, same rule).
        .api(Access::Enrolment(Action::View), utoipa_axum::routes!(csv_download))
        .api(Access::Enrolment(Action::View), utoipa_axum::routes!(chart_download))
        .api(Access::Enrolment(Action::View), utoipa_axum::routes!(api))
}

/// What one evidence item shows for one criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CellState {
    NotMapped,
    /// Mapped in a draft the learner has not submitted (the learner alone sees drafts).
    Draft,
    Awaiting,
    NotYet,
    Met,
}

impl CellState {
    pub fn as_str(self) -> &'static str {
        match self {
            CellState::NotMapped => "not_mapped",
            CellState::Draft => "draft",
            CellState::Awaiting => "awaiting",
            CellState::NotYet => "not_yet",
            CellState::Met => "met",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CellState::NotMapped => "Not mapped",
            CellState::Draft => "Draft",
            CellState::Awaiting => "Awaiting assessment",
            CellState::NotYet => "Not yet met",
            CellState::Met => "Met",
        }
    }

    /// The word in a CSV cell: short, and blank where the item does not cover the criterion.
    pub fn csv(self) -> &'static str {
        match self {
            CellState::NotMapped => "",
            CellState::Draft => "draft",
            CellState::Awaiting => "awaiting",
            CellState::NotYet => "not yet",
            CellState::Met => "met",
        }
    }

    /// The status tag's colour class (the text says the same).
    pub fn tag(self) -> &'static str {
        match self {
            CellState::NotMapped | CellState::Draft => "not_started",
            CellState::Awaiting => "submitted",
            CellState::NotYet => "not_yet",
            CellState::Met => "met",
        }
    }

    pub fn is_mapped(self) -> bool {
        self != CellState::NotMapped
    }
}

/// An earlier version of a resubmitted item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TrackingEarlierVersion)]
pub struct EarlierVersion {
    pub id: Uuid,
    pub version: i32,
}

/// One column: the newest version the caller may see of one piece of evidence.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TrackingColumn)]
pub struct Column {
    pub evidence_id: Uuid,
    pub title: String,
    pub method: evidence::Method,
    #[schema(value_type = String)]
    pub method_label: &'static str,
    pub occurred_on: NaiveDate,
    pub occurred_until: Option<NaiveDate>,
    /// `draft` or `submitted`.
    pub status: String,
    pub version: i32,
    /// A witness statement the assessor has not confirmed yet: it cannot be assessed until then.
    pub awaiting_witness_confirmation: bool,
    /// Older versions, newest first.
    pub earlier_versions: Vec<EarlierVersion>,
}

impl Column {
    pub fn dates(&self) -> String {
        match self.occurred_until {
            Some(until) if until != self.occurred_on => format!("{} to {}", self.occurred_on, until),
            _ => self.occurred_on.to_string(),
        }
    }

    /// The CSV header: title and activity date, and the version when there were others.
    pub fn heading(&self) -> String {
        let version = if self.version > 1 { format!(" version {}", self.version) } else { String::new() };
        format!("{} ({}){version}", self.title, self.occurred_on)
    }

    pub fn is_draft(&self) -> bool {
        self.status == "draft"
    }
}

/// What an earlier version showed for the same criterion.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TrackingEarlierState)]
pub struct EarlierState {
    pub evidence_id: Uuid,
    pub version: i32,
    pub state: CellState,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TrackingCell)]
pub struct Cell {
    pub evidence_id: Uuid,
    pub state: CellState,
    pub decided_at: Option<DateTime<Utc>>,
    pub assessor_name: Option<String>,
    /// Where the item shows this criterion: a clip of a recording or a page of a PDF.
    pub file_id: Option<Uuid>,
    pub fragment: String,
    pub location: Option<String>,
    pub earlier: Vec<EarlierState>,
}

impl Cell {
    pub fn state_value(&self) -> &'static str {
        self.state.as_str()
    }
    pub fn state_label(&self) -> &'static str {
        self.state.label()
    }
    pub fn state_tag(&self) -> &'static str {
        self.state.tag()
    }
    pub fn is_mapped(&self) -> bool {
        self.state.is_mapped()
    }
    pub fn decided_text(&self) -> String {
        self.decided_at.map(|t| t.format("%d %b %Y").to_string()).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TrackingRow)]
pub struct Row {
    pub number: String,
    pub text: String,
    /// The criterion's standing overall, as `assessment::progress` works it out.
    pub status: CriterionStatus,
    pub cells: Vec<Cell>,
}

impl Row {
    pub fn status_value(&self) -> &'static str {
        self.status.as_str()
    }
    pub fn status_label(&self) -> &'static str {
        self.status.label()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = TrackingOutcome)]
pub struct OutcomeRows {
    pub number: i32,
    pub title: String,
    pub criteria: Vec<Row>,
}

/// A moment the number of criteria met changed (one assessor submission).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChartPoint {
    pub at: DateTime<Utc>,
    pub criteria_met: usize,
}

impl ChartPoint {
    pub fn date_text(&self) -> String {
        self.at.format("%d %b %Y %H:%M").to_string()
    }
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ProgressChart {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub total: usize,
    pub points: Vec<ChartPoint>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrackingGrid {
    pub enrolment_id: Uuid,
    pub unit_code: String,
    pub unit_title: String,
    pub learner_name: String,
    pub assessor_name: String,
    pub met: usize,
    pub total: usize,
    pub columns: Vec<Column>,
    pub outcomes: Vec<OutcomeRows>,
    pub chart: ProgressChart,
}

/// An enrolment's grid as kept by each server process until the portfolio changes
/// (src/db/changes.rs), with whom it may be shown to from memory.
pub struct KeptGrid {
    pub learner_id: Uuid,
    pub assessor_id: Uuid,
    pub iqa_id: Option<Uuid>,
    pub grid: TrackingGrid,
    /// The table as the page shows it (`GridTable`): first every column (the printable view), then
    /// each page of [`COLUMNS_PER_PAGE`]. Each is rendered when first asked for and then kept: a
    /// full portfolio's whole table is about a megabyte, too much to render again for each reader
    /// (BENCHMARKS.md, fix 24), or to send each time (fix 27).
    tables: Vec<OnceLock<String>>,
    /// The progress chart (`chart_svg`).
    pub chart_svg: String,
    /// The day it was read: the chart runs to the end of that day.
    pub as_of: NaiveDate,
}

/// Evidence items (columns) on one page of the grid. A screen shows a few at a time; 190 of them
/// made a 0.86 MB page (BENCHMARKS.md, fix 27). The printable view has them all.
pub const COLUMNS_PER_PAGE: usize = 20;

/// The grid's table, or the columns `shown` of it, rendered into `KeptGrid::tables`.
#[derive(Template)]
#[template(path = "assessment/tracking_table.html", whitespace = "minimize")]
struct GridTable<'a> {
    grid: &'a TrackingGrid,
    shown: Range<usize>,
}

impl GridTable<'_> {
    fn column_count(&self) -> usize {
        self.shown.len() + 2
    }

    fn columns(&self) -> &[Column] {
        &self.grid.columns[self.shown.clone()]
    }

    fn cells<'r>(&self, row: &'r Row) -> &'r [Cell] {
        &row.cells[self.shown.clone()]
    }
}

impl KeptGrid {
    pub fn new(
        learner_id: Uuid,
        assessor_id: Uuid,
        iqa_id: Option<Uuid>,
        grid: TrackingGrid,
        as_of: NaiveDate,
    ) -> Self {
        let pages = pages_of(grid.columns.len());
        KeptGrid {
            learner_id,
            assessor_id,
            iqa_id,
            chart_svg: chart_svg(&grid),
            tables: (0..=pages).map(|_| OnceLock::new()).collect(),
            grid,
            as_of,
        }
    }

    /// Its size in memory, in cells.
    pub fn cells(&self) -> usize {
        self.grid.columns.len().max(1) * self.grid.total.max(1)
    }

    /// How many pages its columns fill (one when there are none).
    pub fn pages(&self) -> usize {
        pages_of(self.grid.columns.len())
    }

    /// The columns on `page` (from 1, at most [`Self::pages`]), or every column for `None`,
    /// counted from 0.
    pub fn shown(&self, page: Option<usize>) -> Range<usize> {
        let columns = self.grid.columns.len();
        match page {
            None => 0..columns,
            Some(page) => {
                let first = (page - 1) * COLUMNS_PER_PAGE;
                first.min(columns)..(first + COLUMNS_PER_PAGE).min(columns)
            }
        }
    }

    /// The table of `page` (from 1), or of every column for `None`: rendered once, then kept.
    pub fn table(&self, page: Option<usize>) -> AppResult<&str> {
        let shown = self.shown(page);
        let kept = self.tables.get(page.unwrap_or(0)).ok_or(AppError::NotFound("page of the grid"))?;
        if let Some(table) = kept.get() {
            return Ok(table);
        }
        // Two readers arriving together may both render it; the first one kept is used.
        let table = GridTable { grid: &self.grid, shown }.render().map_err(|e| AppError::Unexpected(e.into()))?;
        Ok(kept.get_or_init(|| table))
    }
}

fn pages_of(columns: usize) -> usize {
    columns.div_ceil(COLUMNS_PER_PAGE).max(1)
}

impl std::ops::Deref for KeptGrid {
    type Target = TrackingGrid;
    fn deref(&self) -> &TrackingGrid {
        &self.grid
    }
}

impl crate::db::changes::OfDay for KeptGrid {
    fn as_of(&self) -> NaiveDate {
        self.as_of
    }
}

/// The grid for an enrolment the caller has been let into. Drafts are in it only for the learner.
/// A fixed number of queries whatever the number of items: the items and the decisions.
pub async fn tracking_grid(conn: &mut PgConnection, access: &EnrolmentAccess, unit: &Unit) -> AppResult<TrackingGrid> {
    let people = sqlx::query!(
        "SELECT en.enrolled_at, l.name AS learner_name, a.name AS assessor_name
         FROM enrolments en JOIN users l ON l.id = en.learner_id JOIN users a ON a.id = en.assessor_id
         WHERE en.id = $1",
        access.id
    )
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(AppError::NotFound("enrolment"))?;
    let with_drafts = access.relation == Relation::Learner;
    let items: Vec<EvidenceItem> = evidence::list_for_enrolment(&mut *conn, access.id)
        .await?
        .into_iter()
        .filter(|item| with_drafts || !item.is_draft())
        .collect();
    let decisions = sqlx::query!(
        "SELECT d.evidence_id, c.number, d.outcome, d.decided_at, u.name AS assessor_name
         FROM decisions d JOIN evidence_items e ON e.id = d.evidence_id
         JOIN criteria c ON c.id = d.criterion_id JOIN users u ON u.id = d.assessor_id
         WHERE e.enrolment_id = $1 ORDER BY d.seq",
        access.id
    )
    .fetch_all(&mut *conn)
    .await?;

    // Replaying the decisions in order gives each item's current judgement per criterion and the
    // number of criteria met after each assessor submission (one transaction, one timestamp).
    let mut current: HashMap<(Uuid, &str), (Outcome, DateTime<Utc>, &str)> = HashMap::new();
    let mut points: Vec<ChartPoint> = Vec::new();
    // For each criterion, how many items it is currently met by; `met` counts those above none.
    let mut met_by: HashMap<&str, usize> = HashMap::new();
    let mut met = 0;
    let mut last_met = 0;
    for (index, d) in decisions.iter().enumerate() {
        let outcome = Outcome::parse(&d.outcome).unwrap_or(Outcome::NotYet);
        let before =
            current.insert((d.evidence_id, d.number.as_str()), (outcome, d.decided_at, d.assessor_name.as_str()));
        if before.is_some_and(|(o, _, _)| o == Outcome::Met) {
            let count = met_by.entry(d.number.as_str()).or_default();
            *count -= 1;
            if *count == 0 {
                met -= 1;
            }
        }
        if outcome == Outcome::Met {
            let count = met_by.entry(d.number.as_str()).or_default();
            *count += 1;
            if *count == 1 {
                met += 1;
            }
        }
        let end_of_submission = decisions.get(index + 1).is_none_or(|next| next.decided_at != d.decided_at);
        if end_of_submission && met != last_met {
            points.push(ChartPoint { at: d.decided_at, criteria_met: met });
            last_met = met;
        }
    }
    // Progress from the same replay: the items and their current judgements.
    let mut judgements = super::Judgements::default();
    for ((item, criterion), (outcome, _, _)) in &current {
        judgements.entry(*item).or_default().insert((*criterion).to_string(), *outcome);
    }
    let progress = super::progress_of_items(access.id, unit, &items, &judgements);

    let by_id: HashMap<Uuid, &EvidenceItem> = items.iter().map(|item| (item.id, item)).collect();
    let mut newest: Vec<&EvidenceItem> =
        items.iter().filter(|item| item.next_version.is_none_or(|next| !by_id.contains_key(&next))).collect();
    newest.sort_by_key(|item| (item.occurred_on, item.created_at));
    let chains: Vec<Vec<&EvidenceItem>> = newest
        .iter()
        .map(|item| {
            let mut chain = Vec::new();
            let mut previous = item.previous_version;
            while let Some(older) = previous.and_then(|id| by_id.get(&id)) {
                chain.push(*older);
                previous = older.previous_version;
            }
            chain
        })
        .collect();

    let cell_state = |item: &EvidenceItem, criterion: &str| -> CellState {
        if !item.criteria.iter().any(|c| c == criterion) {
            CellState::NotMapped
        } else if item.is_draft() {
            CellState::Draft
        } else {
            match current.get(&(item.id, criterion)) {
                Some((Outcome::Met, _, _)) => CellState::Met,
                Some((Outcome::NotYet, _, _)) => CellState::NotYet,
                None => CellState::Awaiting,
            }
        }
    };

    let outcomes = unit
        .outcomes
        .iter()
        .map(|outcome| OutcomeRows {
            number: outcome.number,
            title: outcome.title.clone(),
            criteria: outcome
                .criteria
                .iter()
                .map(|criterion| {
                    let number = criterion.number.as_str();
                    let cells = newest
                        .iter()
                        .zip(&chains)
                        .map(|(item, chain)| {
                            let state = cell_state(item, number);
                            let decided = current.get(&(item.id, number)).filter(|_| state.is_mapped());
                            let mapping = item.mapping(number);
                            let file = mapping.and_then(|m| m.file_id.and_then(|id| item.file(&id)));
                            Cell {
                                evidence_id: item.id,
                                state,
                                decided_at: decided.map(|(_, at, _)| *at),
                                assessor_name: decided.map(|(_, _, name)| name.to_string()),
                                file_id: file.map(|f| f.id),
                                fragment: mapping.filter(|_| file.is_some()).map(|m| m.fragment()).unwrap_or_default(),
                                location: mapping
                                    .filter(|_| file.is_some())
                                    .and_then(|m| m.location_text())
                                    .zip(file)
                                    .map(|(place, f)| format!("{place} of {}", f.name)),
                                earlier: chain
                                    .iter()
                                    .map(|older| EarlierState {
                                        evidence_id: older.id,
                                        version: older.version,
                                        state: cell_state(older, number),
                                    })
                                    .filter(|earlier| earlier.state.is_mapped())
                                    .collect(),
                            }
                        })
                        .collect();
                    let status = progress
                        .criteria
                        .iter()
                        .find(|p| p.number == criterion.number)
                        .map(|p| p.status)
                        .unwrap_or(CriterionStatus::NotStarted);
                    Row { number: criterion.number.clone(), text: criterion.text.clone(), status, cells }
                })
                .collect(),
        })
        .collect();

    let columns = newest
        .iter()
        .zip(&chains)
        .map(|(item, chain)| Column {
            evidence_id: item.id,
            title: item.title.clone(),
            method: item.method,
            // The label without its explanation in brackets: column heads are narrow.
            method_label: item.method.label().split(" (").next().unwrap_or_default(),
            occurred_on: item.occurred_on,
            occurred_until: item.occurred_until,
            status: item.status.clone(),
            version: item.version,
            awaiting_witness_confirmation: item.awaits_witness_confirmation(),
            earlier_versions: chain
                .iter()
                .map(|older| EarlierVersion { id: older.id, version: older.version })
                .collect(),
        })
        .collect();

    let starts_at = points.first().map_or(people.enrolled_at, |p| p.at.min(people.enrolled_at));
    // The chart runs to the end of today, so it is the same all day (and the same through the
    // page and the API) rather than moving with each second.
    let end_of_today = Utc::now().date_naive().and_hms_opt(23, 59, 59).map_or_else(Utc::now, |t| t.and_utc());
    let ends_at = end_of_today.max(points.last().map_or(starts_at, |p| p.at));
    Ok(TrackingGrid {
        enrolment_id: access.id,
        unit_code: unit.summary.code.clone(),
        unit_title: unit.summary.title.clone(),
        learner_name: people.learner_name,
        assessor_name: people.assessor_name,
        met: progress.met,
        total: progress.total,
        columns,
        outcomes,
        chart: ProgressChart { starts_at, ends_at, total: progress.total, points },
    })
}

/// Spreadsheets run cells that start like a formula: such a cell is made text with a quote.
fn spreadsheet_safe(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{cell}") } else { cell.to_string() }
}

/// The grid as CSV: a header row (learning outcome, criterion, criterion text, status, then one
/// column per evidence item headed by its title and date) and one row per criterion.
pub fn to_csv(grid: &TrackingGrid) -> AppResult<Vec<u8>> {
    // A byte-order mark, so that spreadsheets read the text as UTF-8.
    let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let mut header = vec!["Learning outcome".to_string(), "Criterion".into(), "Criterion text".into(), "Status".into()];
    header.extend(grid.columns.iter().map(Column::heading));
    let unexpected = |e: csv::Error| AppError::Unexpected(e.into());
    writer.write_record(header.iter().map(|h| spreadsheet_safe(h))).map_err(unexpected)?;
    for outcome in &grid.outcomes {
        for row in &outcome.criteria {
            let mut record = vec![
                format!("{} {}", outcome.number, outcome.title),
                row.number.clone(),
                row.text.clone(),
                row.status.label().to_string(),
            ];
            record.extend(row.cells.iter().map(|cell| cell.state.csv().to_string()));
            writer.write_record(record.iter().map(|c| spreadsheet_safe(c))).map_err(unexpected)?;
        }
    }
    writer.into_inner().map_err(|e| AppError::Unexpected(anyhow::anyhow!("writing CSV: {e}")))
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A step chart of criteria met over time, drawn on the server (no script): x is time from
/// enrolment to today, y the number of criteria met, one marker per change.
pub fn chart_svg(grid: &TrackingGrid) -> String {
    const WIDTH: f64 = 640.0;
    const HEIGHT: f64 = 240.0;
    const LEFT: f64 = 44.0;
    const RIGHT: f64 = 16.0;
    const TOP: f64 = 16.0;
    const BOTTOM: f64 = 36.0;
    let chart = &grid.chart;
    let span = (chart.ends_at - chart.starts_at).num_seconds().max(1) as f64;
    let x = |at: DateTime<Utc>| LEFT + (at - chart.starts_at).num_seconds() as f64 / span * (WIDTH - LEFT - RIGHT);
    let total = chart.total.max(1) as f64;
    let y = |met: usize| HEIGHT - BOTTOM - met as f64 / total * (HEIGHT - TOP - BOTTOM);
    let title = format!("Criteria met over time, {}: {}", grid.unit_code, grid.learner_name);
    let desc = match chart.points.last() {
        None => format!("No criteria met yet out of {}.", chart.total),
        Some(last) => format!(
            "{} of {} criteria met, in {} step{} since {}; latest change {}.",
            grid.met,
            chart.total,
            chart.points.len(),
            if chart.points.len() == 1 { "" } else { "s" },
            chart.starts_at.format("%d %b %Y"),
            last.at.format("%d %b %Y"),
        ),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="progress-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title chart-desc"><title id="chart-title">{}</title><desc id="chart-desc">{}</desc>"#,
        xml_escape(&title),
        xml_escape(&desc)
    );
    // Axes and gridlines at none, half and all criteria.
    for met in [0, chart.total / 2, chart.total] {
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#cfd3dc" stroke-width="1"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#5a6172">{met}</text>"##,
            WIDTH - RIGHT,
            LEFT - 6.0,
            y(met) + 4.0,
            y = y(met),
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{:.1}" font-size="12" fill="#5a6172">{}</text><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="end" fill="#5a6172">{}</text>"##,
        HEIGHT - 12.0,
        chart.starts_at.format("%d %b %Y"),
        WIDTH - RIGHT,
        HEIGHT - 12.0,
        chart.ends_at.format("%d %b %Y"),
    );
    let mut path = format!("M{:.1},{:.1}", x(chart.starts_at), y(0));
    for point in &chart.points {
        let _ = write!(path, " H{:.1} V{:.1}", x(point.at), y(point.criteria_met));
    }
    let _ = write!(path, " H{:.1}", x(chart.ends_at));
    let _ = write!(svg, r##"<path d="{path}" fill="none" stroke="#24408e" stroke-width="2.5"/>"##);
    for point in &chart.points {
        let _ = write!(
            svg,
            r##"<circle class="point" cx="{:.1}" cy="{:.1}" r="4" fill="#24408e"><title>{}: {} of {} met</title></circle>"##,
            x(point.at),
            y(point.criteria_met),
            point.at.format("%d %b %Y %H:%M"),
            point.criteria_met,
            chart.total,
        );
    }
    svg.push_str("</svg>");
    svg
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    #[serde(default)]
    print: Option<String>,
    /// Which page of the columns, from 1; the last (the newest items) when absent.
    #[serde(default)]
    page: Option<String>,
}

impl PageQuery {
    /// The page asked for, at most `pages`; the last when none is asked for.
    fn page_number(&self, pages: usize) -> AppResult<usize> {
        match self.page.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            None => Ok(pages),
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|page| *page >= 1)
                .map(|page| page.min(pages))
                .ok_or_else(|| AppError::invalid("page", "The page must be a whole number, from 1")),
        }
    }
}

#[derive(Template)]
#[template(path = "assessment/tracking.html")]
struct TrackingPage<'a> {
    nav: Nav,
    grid: &'a KeptGrid,
    /// The columns shown: a page of them, or all of them when printing.
    table: &'a str,
    print: bool,
    page: usize,
    pages: usize,
    /// The items on the page, counted from 1.
    first: usize,
    last: usize,
    is_verifier: bool,
    printed_at: String,
}

impl TrackingPage<'_> {
    fn page_link(&self, page: usize) -> String {
        format!("/enrolments/{}/tracking?page={page}", self.grid.enrolment_id)
    }
}

/// The grid of enrolment `id` as `actor` may see it, and whether they see it as a verifier. From
/// memory when this process keeps it and the actor is the learner, assessor or IQA; otherwise
/// through the access policy (which records a verifier's view), then from memory or the database.
async fn load(state: &AppState, actor: &Actor, id: Uuid, format: &'static str) -> AppResult<(Arc<KeptGrid>, bool)> {
    // Drafts are in the learner's grid only.
    for drafts in [false, true] {
        if let Some(kept) = state.changes.kept_grid(id, drafts)
            && let Some(relation) = policy::direct_relation(actor, kept.learner_id, kept.assessor_id, kept.iqa_id)
            && relation.allows(Action::View)
            && (relation == Relation::Learner) == drafts
        {
            return Ok((kept, false));
        }
    }
    // Before the access check: a change to the enrolment heard from now on keeps the grid from
    // being kept.
    let since = state.changes.since_portfolio(id);
    let mut tx = state.begin(actor).await?;
    let access =
        policy::enrolment(&state.views, &mut tx, actor, id, Action::View, Viewed::TrackingGrid(format)).await?;
    let drafts = access.relation == Relation::Learner;
    let grid = state
        .changes
        .grid(since, id, drafts, async {
            let as_of = Utc::now().date_naive();
            let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
            let grid = tracking_grid(&mut tx, &access, &unit).await?;
            Ok::<_, AppError>(Some(Arc::new(KeptGrid::new(
                access.learner_id,
                access.assessor_id,
                access.iqa_id,
                grid,
                as_of,
            ))))
        })
        .await?
        .ok_or(AppError::NotFound("enrolment"))?;
    tx.commit().await?;
    Ok((grid, access.relation == Relation::Verifier))
}

async fn page(
    State(state): State<AppState>,
    nav: Nav,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> AppResult<Response> {
    let print = query.print.as_deref().is_some_and(|p| !p.is_empty() && p != "0");
    let (grid, is_verifier) = load(&state, &actor, id, if print { "print" } else { "html" }).await?;
    let pages = grid.pages();
    let page = query.page_number(pages)?;
    // The printable view has every column.
    let asked = (!print).then_some(page);
    let shown = grid.shown(asked);
    let page = TrackingPage {
        nav,
        grid: &grid,
        table: grid.table(asked)?,
        print,
        page,
        pages,
        first: shown.start + 1,
        last: shown.end,
        is_verifier,
        printed_at: Utc::now().format("%d %b %Y %H:%M UTC").to_string(),
    };
    // The page around the kept table: a few kilobytes more.
    let size = page.table.len() + grid.chart_svg.len() + TrackingPage::SIZE_HINT;
    render_sized(StatusCode::OK, &page, size)
}

/// A file name from letters, digits and dashes only.
fn file_name(grid: &TrackingGrid, extension: &str) -> String {
    let slug: String = format!("{} {}", grid.unit_code, grid.learner_name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let slug = slug.split('-').filter(|part| !part.is_empty()).collect::<Vec<_>>().join("-");
    format!("tracking-{slug}-{}.{extension}", Utc::now().format("%Y-%m-%d"))
}

/// The tracking grid as CSV, one row per criterion and one column per evidence item.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/tracking.csv",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "The grid as CSV", content_type = "text/csv", body = String,
        headers(("content-disposition" = String))))
)]
async fn csv_download(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    let (grid, _) = load(&state, &actor, id, "csv").await?;
    let body = to_csv(&grid)?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{}\"", file_name(&grid, "csv")))
        .map_err(|e| AppError::Unexpected(e.into()))?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response())
}

/// The progress chart (criteria met over time) as an SVG image.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/progress.svg",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "The chart", content_type = "image/svg+xml", body = String))
)]
async fn chart_download(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    let (grid, _) = load(&state, &actor, id, "svg").await?;
    Ok((
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        grid.chart_svg.clone(),
    )
        .into_response())
}

/// The tracking grid: criteria by evidence item, each cell's state, and progress over time.
#[utoipa::path(
    get,
    path = "/api/v1/enrolments/{id}/tracking",
    params(("id" = Uuid, Path, description = "The enrolment")),
    responses((status = 200, description = "The grid", body = TrackingGrid))
)]
async fn api(State(state): State<AppState>, actor: Actor, Path(id): Path<Uuid>) -> AppResult<Response> {
    let (kept, _) = load(&state, &actor, id, "json").await?;
    Ok(Json(&kept.grid).into_response())
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_safe;

    #[test]
    fn cells_that_spreadsheets_would_run_become_text() {
        assert_eq!(spreadsheet_safe("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(spreadsheet_safe("+1"), "'+1");
        assert_eq!(spreadsheet_safe("-1"), "'-1");
        assert_eq!(spreadsheet_safe("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(spreadsheet_safe("Call log (2026-03-17)"), "Call log (2026-03-17)");
    }
}
