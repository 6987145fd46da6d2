//! A generated centre at scale, for load tests: `eportfolio demo --scale learners=N`. Per 10,000
//! learners it holds 200 assessors, 20 IQAs, about 1M evidence items, 3M criterion mappings,
//! 2M decisions and 10M audit events, streamed into PostgreSQL with COPY from rows made here,
//! deterministically from a seed, inside one transaction (all or nothing).
//!
//! A bulk loader writes every domain's tables directly: going through each domain's functions
//! row by row would take days at this size. The rows keep every constraint the schema has (COPY
//! checks them all), and the audit events form a valid chain (`eportfolio audit verify` passes):
//! their hashes are computed while the rows stream, by `audit::bulk`.

use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::audit::bulk::{BulkEvent, ChainEnd};
use crate::auth::password;
use crate::error::AppError;
use crate::evidence::storage::ChunkSource;
use crate::evidence::{self, FileStore};

/// Every generated account's password: hashing ten thousand Argon2 passwords would take longer
/// than loading the rest, and a load test signs in as anyone.
pub const PASSWORD: &str = "scale centre password 2026";
pub const CENTRE: &str = "Riverside Skills (generated at scale)";
/// The triggers that keep `current_judgements` and `awaiting_assessment` up to date.
const PROGRESS_TRIGGERS: [(&str, &str); 3] = [
    ("decisions", "decisions_progress"),
    ("evidence_criteria", "evidence_criteria_progress"),
    ("evidence_items", "evidence_items_progress"),
];
const DEFAULT_SEED: u64 = 2026;
/// How many items a learner at stage 0..=9 has: 10, 30, … 190 (100 on average).
const ITEMS_PER_STAGE: u32 = 20;
const MAX_ITEMS: u32 = 10 + 9 * ITEMS_PER_STAGE;
/// Rounds between an item's submission and its assessment, and between a judgement and its revision.
const LAG: u32 = 2;
/// Audit events per evidence item, all told (10M per 10k learners).
const EVENTS_PER_ITEM: usize = 10;

/// The size of the centre to generate: `learners=N[,seed=S]`.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub learners: u32,
    pub seed: u64,
}

impl Scale {
    pub fn parse(text: &str) -> Result<Scale, String> {
        let mut scale = Scale { learners: 0, seed: DEFAULT_SEED };
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or(format!("expected key=value, got {part:?}"))?;
            match key {
                "learners" => {
                    scale.learners =
                        value.parse().map_err(|_| format!("learners must be a whole number, got {value:?}"))?
                }
                "seed" => {
                    scale.seed = value.parse().map_err(|_| format!("seed must be a whole number, got {value:?}"))?
                }
                other => return Err(format!("unknown scale setting {other:?} (use learners=N and optionally seed=S)")),
            }
        }
        if !(1..=1_000_000).contains(&scale.learners) {
            return Err("learners=N is needed, with N between 1 and 1,000,000".into());
        }
        Ok(scale)
    }

    pub fn assessors(&self) -> u32 {
        (self.learners * 2).div_ceil(100).max(1)
    }

    pub fn iqas(&self) -> u32 {
        (self.learners * 2).div_ceil(1000).max(1)
    }
}

/// Sign-in names of generated accounts, so load tests and journeys can find them.
pub fn learner_email(index: u32) -> String {
    format!("learner{index:06}@learners.riverside.example")
}
pub fn assessor_email(index: u32) -> String {
    format!("assessor{index:04}@riverside.example")
}
pub fn iqa_email(index: u32) -> String {
    format!("iqa{index:03}@riverside.example")
}
pub const VERIFIER_EMAIL: &str = "verifier@awarding-body.example";
pub const ADMIN_EMAIL: &str = "admin@riverside.example";

/// What was loaded, and how long it took.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub learners: u64,
    pub assessors: u64,
    pub iqas: u64,
    pub stored_files: u64,
    pub evidence_items: u64,
    pub file_rows: u64,
    pub mappings: u64,
    pub decisions: u64,
    pub audit_events: u64,
    pub seconds: f64,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "Generated centre \u{201c}{CENTRE}\u{201d} in {:.1} s:", self.seconds)?;
        writeln!(
            f,
            "  {} learners, {} assessors, {} IQAs, 1 verifier, 1 administrator",
            self.learners, self.assessors, self.iqas
        )?;
        writeln!(
            f,
            "  {} evidence items with {} file rows over {} distinct stored files",
            self.evidence_items, self.file_rows, self.stored_files
        )?;
        writeln!(
            f,
            "  {} criterion mappings, {} decisions, {} audit events (chained)",
            self.mappings, self.decisions, self.audit_events
        )?;
        writeln!(f, "Every account's password: {PASSWORD}")?;
        writeln!(
            f,
            "  e.g. {} (190 items), {}, {}, {VERIFIER_EMAIL}, {ADMIN_EMAIL}",
            learner_email(9),
            assessor_email(0),
            iqa_email(0)
        )
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Table {
    Users,
    UserRoles,
    VerifierGrants,
    Enrolments,
    Assignments,
    EvidenceItems,
    EvidenceFiles,
    Mappings,
    Decisions,
    AuditEvents,
}

impl Table {
    const ALL: [Table; 10] = [
        Table::Users,
        Table::UserRoles,
        Table::VerifierGrants,
        Table::Enrolments,
        Table::Assignments,
        Table::EvidenceItems,
        Table::EvidenceFiles,
        Table::Mappings,
        Table::Decisions,
        Table::AuditEvents,
    ];

    fn copy_statement(self) -> &'static str {
        match self {
            Table::Users => "COPY users (id, email, name, password_hash, created_at, updated_at) FROM STDIN",
            Table::UserRoles => "COPY user_roles (user_id, centre_id, role, granted_at) FROM STDIN",
            Table::VerifierGrants => {
                "COPY verifier_grants (id, verifier_id, centre_id, starts_on, ends_on, granted_at) FROM STDIN"
            }
            Table::Enrolments => {
                "COPY enrolments (id, centre_id, learner_id, unit_id, assessor_id, iqa_id, enrolled_at) FROM STDIN"
            }
            Table::Assignments => {
                "COPY enrolment_assignments (id, enrolment_id, assessor_id, iqa_id, assigned_at, reason) FROM STDIN"
            }
            Table::EvidenceItems => {
                "COPY evidence_items (id, enrolment_id, title, description, method, occurred_on, created_by, created_at,
                 declaration_text, declared_at, declaration_sha256, status, submitted_at, kind, third_party_confirmed_at,
                 signer_role, signed_name, assessment_location) FROM STDIN"
            }
            Table::EvidenceFiles => {
                "COPY evidence_files (id, evidence_id, position, name, content_type, size, sha256) FROM STDIN"
            }
            Table::Mappings => "COPY evidence_criteria (evidence_id, criterion_id, added_by, added_at) FROM STDIN",
            Table::Decisions => {
                "COPY decisions (id, evidence_id, criterion_id, outcome, feedback, assessor_id, decided_at, supersedes,
                 confirmed_valid, confirmed_authentic, confirmed_current, confirmed_sufficient, change_reason) FROM STDIN"
            }
            Table::AuditEvents => {
                "COPY audit_events (seq, occurred_at, actor_id, actor_role, action, subject_type, subject_id,
                 enrolment_id, details, prev_hash, hash, centre_id, details_sha256) FROM STDIN"
            }
        }
    }

    fn name(self) -> &'static str {
        self.copy_statement().split_whitespace().nth(1).unwrap_or("?")
    }
}

/// A real stored file that generated file rows point at.
#[derive(Clone)]
struct StoredFile {
    name: String,
    content_type: &'static str,
    size: u64,
    sha256: String,
}

/// Everything a pass over the generated centre needs, fixed before the first pass.
#[derive(Clone)]
struct Plan {
    scale: Scale,
    centre: Uuid,
    unit: Uuid,
    criteria: Vec<(Uuid, String)>,
    files: Vec<StoredFile>,
    password_hash: String,
    chain: ChainEnd,
    /// The first generated moment; rounds of activity follow it up to about yesterday.
    start: DateTime<Utc>,
    round_seconds: i64,
}

/// Loads a generated centre of `scale` into the database. Refuses a database that already has
/// accounts unless `force`; refuses always if the generated centre is already there.
pub async fn generate(
    pool: &PgPool,
    store: &FileStore,
    scale: Scale,
    force: bool,
    progress: &(dyn Fn(&str) + Sync),
) -> anyhow::Result<Summary> {
    let began = Instant::now();
    let users: i64 = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users"#).fetch_one(pool).await?;
    if users > 0 && !force {
        anyhow::bail!(
            "the database already has {users} accounts; generate into an empty database, or pass --force to add the \
             generated centre beside them"
        );
    }
    let exists =
        sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM centres WHERE name = $1"#, CENTRE).fetch_one(pool).await?;
    if exists > 0 {
        anyhow::bail!("the generated centre \u{201c}{CENTRE}\u{201d} is already in this database");
    }
    let unit = sqlx::query!("SELECT id FROM units WHERE code = 'CC20'").fetch_one(pool).await?.id;
    let criteria = sqlx::query!("SELECT id, number FROM criteria WHERE unit_id = $1 ORDER BY position", unit)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|c| (c.id, c.number))
        .collect::<Vec<_>>();

    progress("storing the real files that generated evidence points at");
    let files = store_files(pool, store, scale).await?;
    let password_hash = password::hash(PASSWORD.to_string()).await?;

    let mut tx = pool.begin().await?;
    let chain = crate::audit::bulk::lock_chain_end(&mut tx).await?;
    let centre = crate::accounts::ensure_centre(&mut tx, CENTRE).await?;
    let rounds = i64::from(MAX_ITEMS + 2 * LAG);
    let days = 400;
    let start =
        Utc.from_utc_datetime(&(Utc::now().date_naive() - Duration::days(days + 1)).and_hms_opt(8, 0, 0).unwrap());
    let plan = Plan {
        scale,
        centre,
        unit,
        criteria,
        files,
        password_hash,
        chain,
        start,
        round_seconds: days * 86_400 / rounds,
    };
    let mut summary = Summary::default();
    // The progress tables (migration 0022) are rebuilt once after the load rather than row by
    // row by their triggers as millions of rows stream in.
    for trigger in PROGRESS_TRIGGERS {
        sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE {} DISABLE TRIGGER {}", trigger.0, trigger.1)))
            .execute(&mut *tx)
            .await?;
    }
    for table in Table::ALL {
        let table_began = Instant::now();
        let (sender, mut receiver) = mpsc::channel::<Vec<u8>>(4);
        let pass_plan = plan.clone();
        let walker = tokio::task::spawn_blocking(move || {
            let mut walk = Walk::new(&pass_plan, table, sender);
            walk.run();
            walk.finish()
        });
        let mut copy = tx.copy_in_raw(table.copy_statement()).await?;
        while let Some(chunk) = receiver.recv().await {
            copy.send(chunk).await?;
        }
        let counts = walker.await?;
        let rows = copy.finish().await?;
        summary = counts;
        progress(&format!("{:>24}: {rows:>10} rows in {:.1} s", table.name(), table_began.elapsed().as_secs_f64()));
    }
    let rebuilt = Instant::now();
    // Without statistics on the freshly loaded tables the planner joins them row by row.
    sqlx::query!("ANALYZE evidence_items, evidence_criteria, decisions").execute(&mut *tx).await?;
    sqlx::query!("SELECT rebuild_assessment_progress()").execute(&mut *tx).await?;
    for trigger in PROGRESS_TRIGGERS {
        sqlx::query(sqlx::AssertSqlSafe(format!("ALTER TABLE {} ENABLE TRIGGER {}", trigger.0, trigger.1)))
            .execute(&mut *tx)
            .await?;
    }
    progress(&format!("{:>24}: rebuilt in {:.1} s", "assessment progress", rebuilt.elapsed().as_secs_f64()));
    tx.commit().await?;
    // Vacuumed as well as analysed: a table written once by COPY has no page marked all-visible
    // until autovacuum gets to it, so until then every index-only scan reads the table too.
    progress("vacuuming and analysing the tables for the query planner");
    for table in Table::ALL.iter().map(|t| t.name()).chain(["current_judgements", "awaiting_assessment"]) {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {table}"))).execute(pool).await?;
    }
    summary.stored_files = plan.files.len() as u64;
    summary.seconds = began.elapsed().as_secs_f64();
    Ok(summary)
}

struct Bytes(Option<bytes::Bytes>);

impl ChunkSource for Bytes {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AppError> {
        Ok(self.0.take())
    }
}

/// A few hundred distinct real files put into the store through the normal storage code: the
/// demonstration's PDF, image and recording, and call logs and reflective accounts that differ.
async fn store_files(pool: &PgPool, store: &FileStore, scale: Scale) -> anyhow::Result<Vec<StoredFile>> {
    let mut sources: Vec<(String, Vec<u8>)> = vec![
        ("sales-dashboard-march.pdf".into(), include_bytes!("../../demo/files/sales-dashboard-march.pdf").to_vec()),
        ("team-briefing.png".into(), include_bytes!("../../demo/files/team-briefing.png").to_vec()),
        ("sales-call-recording.wav".into(), include_bytes!("../../demo/files/sales-call-recording.wav").to_vec()),
    ];
    let call_log = include_str!("../../demo/files/call-log-week-12.csv");
    let reflection = include_str!("../../demo/files/reflective-account.txt");
    let variants = (scale.learners * 3).clamp(4, 300);
    for n in 0..variants {
        if n % 2 == 0 {
            let mut text = call_log.to_string();
            text.push_str(&format!("# campaign week {}, team {}\n", n / 2 + 1, n % 7 + 1));
            sources.push((format!("call-log-week-{}.csv", n / 2 + 1), text.into_bytes()));
        } else {
            let text = format!("{reflection}\n\nWritten for review meeting {}.\n", n / 2 + 1);
            sources.push((format!("reflective-account-{}.txt", n / 2 + 1), text.into_bytes()));
        }
    }
    let mut files = Vec::new();
    for (name, bytes) in sources {
        let mut source = Bytes(Some(bytes::Bytes::from(bytes)));
        let staged = store.stage(&name, &mut source, u64::MAX).await?;
        let file =
            StoredFile { name, content_type: staged.content_type, size: staged.size, sha256: staged.sha256.clone() };
        sqlx::query!(
            "INSERT INTO blobs (sha256, size, content_type) VALUES ($1, $2, $3) ON CONFLICT (sha256) DO NOTHING",
            file.sha256,
            file.size as i64,
            file.content_type
        )
        .execute(pool)
        .await?;
        store.promote(staged).await?;
        files.push(file);
    }
    Ok(files)
}

/// One evidence item as generated, kept until its decisions are due.
struct Item {
    id: Uuid,
    criteria: [usize; 3],
    assessed: bool,
    /// Per mapping: 0 met, 1 not yet (stays), 2 not yet then revised to met.
    outcomes: [u8; 3],
}

enum Due {
    Assess(Item),
    Revise { item: Uuid, criterion: usize, superseded: Uuid },
}

/// One pass over the whole generated centre, writing the rows of one table as COPY text. Every
/// pass draws the same random numbers in the same order, so the passes agree on every id.
struct Walk<'a> {
    plan: &'a Plan,
    table: Table,
    rng: StdRng,
    buffer: Vec<u8>,
    sender: mpsc::Sender<Vec<u8>>,
    chain: ChainEnd,
    clock: DateTime<Utc>,
    counts: Summary,
    learners: Vec<Uuid>,
    learner_names: Vec<String>,
    assessors: Vec<Uuid>,
    assessor_names: Vec<String>,
    iqas: Vec<Uuid>,
    enrolments: Vec<Uuid>,
}

const FIRST: &[&str] = &[
    "Aisha", "Ben", "Chloe", "Daniel", "Ella", "Farah", "George", "Hannah", "Isaac", "Jade", "Kieran", "Leah",
    "Mohammed", "Niamh", "Oliver", "Priya", "Quinn", "Rhys", "Sophie", "Tariq", "Uma", "Victor", "Willow", "Yusuf",
    "Zara",
];
const LAST: &[&str] = &[
    "Ahmed", "Baker", "Campbell", "Davies", "Evans", "Fraser", "Green", "Hughes", "Iqbal", "Jones", "Khan", "Lewis",
    "Morgan", "Nowak", "Owen", "Patel", "Roberts", "Singh", "Taylor", "Walsh", "Wright", "Young",
];
/// (method, kind, signer, title) — learners' own work most often, assessors' records sometimes.
const ITEMS: &[(&str, &str, &str, &str)] = &[
    ("product", "upload", "learner", "Outbound call log and order references"),
    ("product", "upload", "learner", "Recorded sales call with a customer"),
    ("product", "upload", "learner", "Team sales dashboard and analysis"),
    ("product", "upload", "learner", "Briefing notes for the sales shift"),
    ("product", "upload", "learner", "Coaching notes from one-to-ones"),
    ("reflective_account", "upload", "learner", "Reflective account: leading the sales push"),
    ("reflective_account", "upload", "learner", "Reflective account: handling a complaint call"),
    ("questioning", "upload", "learner", "Written answers on sales regulations"),
    ("observation", "assessor_record", "assessor", "Observation of sales calls on the floor"),
    ("professional_discussion", "assessor_record", "assessor", "Professional discussion: leading the team"),
];
const FEEDBACK_MET: &[&str] = &[
    "Clear, well-organised evidence that covers the criterion fully.",
    "Good use of real work; the records match what you describe.",
    "Confirmed: your examples show this consistently across the period.",
];
const FEEDBACK_NOT_YET: &[&str] = &[
    "Add how you reported this to your manager: minutes or an email would do.",
    "Name the specific regulations and how each affects your calls.",
    "Explain the impact on the team's results, not only what you did.",
];

impl<'a> Walk<'a> {
    fn new(plan: &'a Plan, table: Table, sender: mpsc::Sender<Vec<u8>>) -> Self {
        Walk {
            plan,
            table,
            rng: StdRng::seed_from_u64(plan.scale.seed),
            buffer: Vec::with_capacity(1 << 20),
            sender,
            chain: plan.chain.clone(),
            clock: plan.start - Duration::days(30),
            counts: Summary::default(),
            learners: Vec::new(),
            learner_names: Vec::new(),
            assessors: Vec::new(),
            assessor_names: Vec::new(),
            iqas: Vec::new(),
            enrolments: Vec::new(),
        }
    }

    fn uuid(&mut self) -> Uuid {
        uuid::Builder::from_random_bytes(self.rng.random()).into_uuid()
    }

    fn name(&mut self) -> String {
        let first = FIRST[self.rng.random_range(0..FIRST.len())];
        let last = LAST[self.rng.random_range(0..LAST.len())];
        format!("{first} {last}")
    }

    /// The next moment of activity: strictly later than the last, and no earlier than `at`.
    fn tick(&mut self, at: DateTime<Utc>) -> DateTime<Utc> {
        self.clock = (self.clock + Duration::milliseconds(7)).max(at);
        self.clock
    }

    fn row(&mut self, table: Table, fields: &[&dyn std::fmt::Display]) {
        if table != self.table {
            return;
        }
        use std::io::Write;
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.buffer.push(b'\t');
            }
            let text = field.to_string();
            for byte in text.bytes() {
                match byte {
                    b'\\' => self.buffer.extend_from_slice(b"\\\\"),
                    b'\t' => self.buffer.extend_from_slice(b"\\t"),
                    b'\n' => self.buffer.extend_from_slice(b"\\n"),
                    b'\r' => self.buffer.extend_from_slice(b"\\r"),
                    other => self.buffer.push(other),
                }
            }
        }
        let _ = writeln!(self.buffer);
        if self.buffer.len() >= 1 << 20 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.buffer.is_empty() {
            let chunk = std::mem::replace(&mut self.buffer, Vec::with_capacity(1 << 20));
            // The receiver only goes away when the COPY failed; its error is reported there.
            let _ = self.sender.blocking_send(chunk);
        }
    }

    fn finish(mut self) -> Summary {
        self.flush();
        self.counts
    }

    #[allow(clippy::too_many_arguments)] // The audit row's own columns, one argument each.
    fn event(
        &mut self,
        at: DateTime<Utc>,
        actor: Option<Uuid>,
        role: &str,
        action: &str,
        subject_type: &str,
        subject: Option<Uuid>,
        enrolment: Option<Uuid>,
        details: impl FnOnce() -> serde_json::Value,
    ) {
        self.counts.audit_events += 1;
        let occurred_at = self.tick(at);
        if self.table != Table::AuditEvents {
            return;
        }
        let details = details();
        let event = BulkEvent {
            occurred_at,
            actor_id: actor,
            actor_role: role,
            action,
            subject_type,
            subject_id: subject,
            enrolment_id: enrolment,
            centre_id: Some(self.plan.centre),
            details: &details,
        };
        let chained = self.chain.append(&event);
        let optional = |id: Option<Uuid>| id.map(|u| u.to_string()).unwrap_or_else(|| "\\N".into());
        // `\N` must reach COPY unescaped, so optional ids are written around `row`'s escaping.
        let fields: [String; 13] = [
            chained.seq.to_string(),
            timestamp(occurred_at),
            optional(actor),
            role.into(),
            action.into(),
            subject_type.into(),
            optional(subject),
            optional(enrolment),
            details.to_string(),
            chained.prev_hash,
            chained.hash,
            self.plan.centre.to_string(),
            chained.details_sha256,
        ];
        self.raw_row(&fields, &[2, 6, 7]);
    }

    /// A row whose fields at `nullable` positions may be `\N` (NULL) and are written as they are.
    fn raw_row(&mut self, fields: &[String], nullable: &[usize]) {
        use std::io::Write;
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                self.buffer.push(b'\t');
            }
            if nullable.contains(&i) {
                self.buffer.extend_from_slice(field.as_bytes());
                continue;
            }
            for byte in field.bytes() {
                match byte {
                    b'\\' => self.buffer.extend_from_slice(b"\\\\"),
                    b'\t' => self.buffer.extend_from_slice(b"\\t"),
                    b'\n' => self.buffer.extend_from_slice(b"\\n"),
                    b'\r' => self.buffer.extend_from_slice(b"\\r"),
                    other => self.buffer.push(other),
                }
            }
        }
        let _ = writeln!(self.buffer);
        if self.buffer.len() >= 1 << 20 {
            self.flush();
        }
    }

    fn run(&mut self) {
        let plan = self.plan;
        let scale = plan.scale;
        let centre = plan.centre;
        let joined = plan.start - Duration::days(20);
        let joined_text = timestamp(joined);
        let hash = plan.password_hash.clone();

        let person = |walk: &mut Self, email: String, name: String, role: &'static str| {
            let id = walk.uuid();
            walk.row(Table::Users, &[&id, &email, &name, &hash, &joined_text, &joined_text]);
            walk.row(Table::UserRoles, &[&id, &centre, &role, &joined_text]);
            walk.event(
                joined,
                None,
                "system",
                "user.created",
                "user",
                Some(id),
                None,
                || json!({"email": email, "name": name, "role": role}),
            );
            (id, name)
        };
        person(self, ADMIN_EMAIL.into(), "Grace Whitfield".into(), "admin");
        let (verifier, _) = person(self, VERIFIER_EMAIL.into(), "Nathan Osei".into(), "eqa");
        for i in 0..scale.iqas() {
            let name = self.name();
            let (id, _) = person(self, iqa_email(i), name, "iqa");
            self.iqas.push(id);
        }
        for i in 0..scale.assessors() {
            let name = self.name();
            let (id, name) = person(self, assessor_email(i), name, "assessor");
            self.assessors.push(id);
            self.assessor_names.push(name);
        }
        for i in 0..scale.learners {
            let name = self.name();
            let (id, name) = person(self, learner_email(i), name, "learner");
            self.learners.push(id);
            self.learner_names.push(name);
        }
        self.counts.learners = u64::from(scale.learners);
        self.counts.assessors = u64::from(scale.assessors());
        self.counts.iqas = u64::from(scale.iqas());

        let grant = self.uuid();
        let today = Utc::now().date_naive();
        self.row(
            Table::VerifierGrants,
            &[&grant, &verifier, &centre, &(today - Duration::days(30)), &(today + Duration::days(90)), &joined_text],
        );
        self.event(joined, None, "system", "verifier_access.granted", "centre", Some(centre), None, || {
            json!({"verifier_id": verifier, "starts_on": today - Duration::days(30), "ends_on": today + Duration::days(90)})
        });

        // Learner i: assessor i mod A (50 each), IQA by assessor; stage i mod 10, so learner 9
        // has a full 190-item portfolio at any scale and early-stage learners started recently.
        for i in 0..scale.learners as usize {
            let enrolment = self.uuid();
            let assignment = self.uuid();
            let assessor = self.assessors[i % self.assessors.len()];
            let iqa = self.iqas[(i % self.assessors.len()) % self.iqas.len()];
            let learner = self.learners[i];
            let unit = plan.unit;
            self.row(Table::Enrolments, &[&enrolment, &centre, &learner, &unit, &assessor, &iqa, &joined_text]);
            self.row(Table::Assignments, &[&assignment, &enrolment, &assessor, &iqa, &joined_text, &"Enrolled"]);
            self.event(
                joined,
                None,
                "system",
                "enrolment.created",
                "enrolment",
                Some(enrolment),
                Some(enrolment),
                || json!({"unit": "CC20", "learner_id": learner, "assessor_id": assessor, "iqa_id": iqa}),
            );
            self.enrolments.push(enrolment);
        }

        let mut due: Vec<std::collections::VecDeque<(u32, Due)>> =
            (0..scale.learners).map(|_| std::collections::VecDeque::new()).collect();
        for round in 0..MAX_ITEMS + 2 * LAG {
            for (i, queue) in due.iter_mut().enumerate() {
                let slot = plan.start
                    + Duration::seconds(
                        i64::from(round) * plan.round_seconds
                            + i as i64 * plan.round_seconds / i64::from(scale.learners),
                    );
                while queue.front().is_some_and(|(at, _)| *at <= round) {
                    let (_, task) = queue.pop_front().expect("checked");
                    if let Some(next) = self.assess(i, slot, round, task) {
                        queue.push_back(next);
                    }
                }
                let items = 10 + (i as u32 % 10) * ITEMS_PER_STAGE;
                let first_round = MAX_ITEMS - items;
                if round >= first_round && round < MAX_ITEMS {
                    let item = self.submit(i, slot + Duration::seconds(60), round - first_round);
                    queue.push_back((round + LAG, Due::Assess(item)));
                }
            }
        }
    }

    /// A learner's (or their assessor's) evidence item: the item, its file, three mappings, and
    /// its created and submitted events.
    fn submit(&mut self, learner: usize, at: DateTime<Utc>, number: u32) -> Item {
        let id = self.uuid();
        let file_id = self.uuid();
        let (method, kind, signer, title) = ITEMS[self.rng.random_range(0..ITEMS.len())];
        let file = self.rng.random_range(0..self.plan.files.len());
        let has_file = self.rng.random_bool(0.9);
        let mut criteria = [0usize; 3];
        let n = self.plan.criteria.len();
        criteria[0] = self.rng.random_range(0..n);
        criteria[1] = (criteria[0] + 1 + self.rng.random_range(0..n - 2)) % n;
        criteria[2] = loop {
            let c = self.rng.random_range(0..n);
            if c != criteria[0] && c != criteria[1] {
                break c;
            }
        };
        let assessed = self.rng.random_bool(0.58);
        let mut outcomes = [0u8; 3];
        for outcome in &mut outcomes {
            let roll: f64 = self.rng.random();
            *outcome = if roll < 0.15 {
                2
            } else if roll < 0.23 {
                1
            } else {
                0
            };
        }
        let occurred_days = self.rng.random_range(1..14);

        let enrolment = self.enrolments[learner];
        let assessor_index = learner % self.assessors.len();
        let (creator, role, signed_name, location, declaration) = if signer == "assessor" {
            (
                self.assessors[assessor_index],
                "assessor",
                self.assessor_names[assessor_index].clone(),
                "Sales floor, Riverside contact centre",
                evidence::ASSESSOR_DECLARATION,
            )
        } else {
            (self.learners[learner], "learner", String::new(), "", evidence::DECLARATION)
        };
        let created = self.tick(at);
        let when = timestamp(created);
        let title = format!("{title} ({})", number + 1);
        let declaration_sha256 = hex::encode(Sha256::digest(format!("{declaration}\n{id}").as_bytes()));
        let description = format!("What this shows: my work for criteria {}.", self.criterion_list(&criteria));
        let occurred_on = (created - Duration::days(occurred_days)).date_naive();
        let third_party = if has_file && self.plan.files[file].content_type.starts_with("audio/") {
            when.clone()
        } else {
            "\\N".into()
        };
        self.counts.evidence_items += 1;
        if self.table == Table::EvidenceItems {
            let fields = [
                id.to_string(),
                enrolment.to_string(),
                title.clone(),
                description,
                method.into(),
                occurred_on.to_string(),
                creator.to_string(),
                when.clone(),
                declaration.into(),
                when.clone(),
                declaration_sha256.clone(),
                "submitted".into(),
                when.clone(),
                kind.into(),
                third_party,
                signer.into(),
                signed_name,
                location.into(),
            ];
            self.raw_row(&fields, &[14]);
        }
        if has_file {
            self.counts.file_rows += 1;
            let stored = &self.plan.files[file];
            let (name, content_type, size, sha256) =
                (stored.name.clone(), stored.content_type, stored.size, stored.sha256.clone());
            self.row(Table::EvidenceFiles, &[&file_id, &id, &0, &name, &content_type, &size, &sha256]);
        }
        for c in criteria {
            self.counts.mappings += 1;
            let criterion = self.plan.criteria[c].0;
            self.row(Table::Mappings, &[&id, &criterion, &creator, &when]);
        }
        let files: Vec<Uuid> = if has_file { vec![file_id] } else { vec![] };
        let numbers: Vec<String> = criteria.iter().map(|c| self.plan.criteria[*c].1.clone()).collect();
        self.event(
            created,
            Some(creator),
            role,
            "evidence.created",
            "evidence",
            Some(id),
            Some(enrolment),
            || json!({"title": title, "method": method, "version": 1, "previous_version": null, "files": files}),
        );
        self.event(
            created,
            Some(creator),
            role,
            "evidence.submitted",
            "evidence",
            Some(id),
            Some(enrolment),
            || json!({"title": title, "criteria": numbers, "declaration_sha256": declaration_sha256}),
        );
        Item { id, criteria, assessed, outcomes }
    }

    fn criterion_list(&self, criteria: &[usize; 3]) -> String {
        criteria.iter().map(|c| self.plan.criteria[*c].1.as_str()).collect::<Vec<_>>().join(", ")
    }

    /// The assessor's judgements on an item (or a revised one), and the verifier's and IQA's
    /// views that bring the item's audit events to ten.
    fn assess(&mut self, learner: usize, at: DateTime<Utc>, round: u32, task: Due) -> Option<(u32, Due)> {
        let enrolment = self.enrolments[learner];
        let assessor = self.assessors[learner % self.assessors.len()];
        match task {
            Due::Assess(item) => {
                let mut events = 2;
                let mut revision = None;
                if item.assessed {
                    for (n, c) in item.criteria.into_iter().enumerate() {
                        let outcome = item.outcomes[n];
                        let id = self.decision(enrolment, item.id, c, outcome == 0, assessor, at, None);
                        events += 1;
                        if outcome == 2 && revision.is_none() {
                            revision = Some((round + LAG, Due::Revise { item: item.id, criterion: c, superseded: id }));
                        }
                    }
                }
                let views = EVENTS_PER_ITEM.saturating_sub(events + usize::from(revision.is_some()));
                let verifier_actions = [
                    "verifier.viewed_evidence",
                    "verifier.viewed_portfolio",
                    "verifier.viewed_tracking_grid",
                    "verifier.viewed_history",
                ];
                for v in 0..views {
                    let action = verifier_actions[v % verifier_actions.len()];
                    let (subject_type, subject) = if action == "verifier.viewed_evidence" {
                        ("evidence", item.id)
                    } else {
                        ("enrolment", enrolment)
                    };
                    let at = at + Duration::seconds(1);
                    self.event(at, None, "eqa", action, subject_type, Some(subject), Some(enrolment), || {
                        if action == "verifier.viewed_tracking_grid" { json!({"format": "html"}) } else { json!({}) }
                    });
                }
                revision
            }
            Due::Revise { item, criterion, superseded } => {
                self.decision(enrolment, item, criterion, true, assessor, at, Some(superseded));
                None
            }
        }
    }

    #[allow(clippy::too_many_arguments)] // A decision's own columns, one argument each.
    fn decision(
        &mut self,
        enrolment: Uuid,
        item: Uuid,
        criterion: usize,
        met: bool,
        assessor: Uuid,
        at: DateTime<Utc>,
        supersedes: Option<Uuid>,
    ) -> Uuid {
        let id = self.uuid();
        let pick = self.rng.random_range(0..3);
        let feedback = if met { FEEDBACK_MET[pick] } else { FEEDBACK_NOT_YET[pick] };
        let reason = if supersedes.is_some() { "The learner added the missing detail; judgement revised." } else { "" };
        let decided = self.tick(at);
        let (criterion_id, number) = self.plan.criteria[criterion].clone();
        self.counts.decisions += 1;
        if self.table == Table::Decisions {
            let fields = [
                id.to_string(),
                item.to_string(),
                criterion_id.to_string(),
                if met { "met" } else { "not_yet" }.into(),
                feedback.into(),
                assessor.to_string(),
                timestamp(decided),
                supersedes.map(|s| s.to_string()).unwrap_or_else(|| "\\N".into()),
                met.to_string(),
                met.to_string(),
                met.to_string(),
                met.to_string(),
                reason.into(),
            ];
            self.raw_row(&fields, &[7]);
        }
        let confirmed: Vec<&str> = if met { vec!["valid", "authentic", "current", "sufficient"] } else { vec![] };
        self.event(
            decided,
            Some(assessor),
            "assessor",
            "decision.recorded",
            "evidence",
            Some(item),
            Some(enrolment),
            || {
                json!({
                    "decision_id": id,
                    "criterion": number,
                    "outcome": if met { "met" } else { "not_yet" },
                    "feedback": feedback,
                    "confirmed": confirmed,
                    "change_reason": reason,
                    "supersedes": supersedes,
                    "criterion_added_by_assessor": false,
                })
            },
        );
        id
    }
}

/// A timestamp as COPY reads it (whole microseconds, UTC).
fn timestamp(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.6f+00").to_string()
}
