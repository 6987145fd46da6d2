//! The demonstration centre: an administrator, two assessors, an IQA, an external verifier and
//! six learners on CC20 at different stages, with real small files. Everything is created
//! through the same functions the pages use, so the demo's records and audit trail are real.

pub mod scale;

use std::path::Path;

use chrono::{Duration, NaiveDate, Utc};
use sqlx::PgPool;

use crate::accounts::{self, Email};
use crate::assessment::{self, DecisionInput};
use crate::auth::policy::{self, Action, Viewed};
use crate::auth::{Role, password};
use crate::catalogue;
use crate::error::AppError;
use crate::evidence::storage::ChunkSource;
use crate::evidence::{self, FileStore, Method, NewEvidence, RawEvidence, witnesses};

const CENTRE: &str = "Northgate Training (demo)";
const LOGINS_FILE: &str = "demo-logins.txt";

/// A demonstration account's sign-in details.
pub struct Login {
    pub role: Role,
    pub name: String,
    pub email: String,
    pub password: String,
}

struct DemoFile {
    name: &'static str,
    bytes: &'static [u8],
}

const CALL_LOG: DemoFile =
    DemoFile { name: "call-log-week-12.csv", bytes: include_bytes!("../../demo/files/call-log-week-12.csv") };
const DASHBOARD: DemoFile =
    DemoFile { name: "sales-dashboard-march.pdf", bytes: include_bytes!("../../demo/files/sales-dashboard-march.pdf") };
const BRIEFING: DemoFile =
    DemoFile { name: "team-briefing.png", bytes: include_bytes!("../../demo/files/team-briefing.png") };
const RECORDING: DemoFile =
    DemoFile { name: "sales-call-recording.wav", bytes: include_bytes!("../../demo/files/sales-call-recording.wav") };
const REFLECTION: DemoFile =
    DemoFile { name: "reflective-account.txt", bytes: include_bytes!("../../demo/files/reflective-account.txt") };
/// A witness's account, written through their link (the demo types it in for them).
const WITNESS_STATEMENT: &str = include_str!("../../demo/files/witness-statement.txt");

struct Bytes(Option<bytes::Bytes>);

impl ChunkSource for Bytes {
    async fn next_chunk(&mut self) -> Result<Option<bytes::Bytes>, AppError> {
        Ok(self.0.take())
    }
}

/// Loads the demonstration centre if the database has no users yet, and returns the logins
/// (read back from the data dir when the demo was loaded earlier).
pub async fn load_if_empty(pool: &PgPool, store: &FileStore, data_dir: &Path) -> anyhow::Result<Vec<Login>> {
    let users: i64 = sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM users"#).fetch_one(pool).await?;
    let saved = data_dir.join(LOGINS_FILE);
    if users > 0 {
        return Ok(read_logins(&saved));
    }
    let logins = load(pool, store).await?;
    write_logins(&saved, &logins)?;
    Ok(logins)
}

pub fn print_logins(logins: &[Login]) {
    if logins.is_empty() {
        println!("The database already has users; no demonstration data was loaded.");
        return;
    }
    println!("Demonstration centre \u{201c}{CENTRE}\u{201d}: sign in with any of these");
    for login in logins {
        println!("  {:<10} {:<38} {}   ({})", login.role.as_str(), login.email, login.password, login.name);
    }
}

fn write_logins(path: &Path, logins: &[Login]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o600).open(path)?;
    for login in logins {
        writeln!(file, "{}\t{}\t{}\t{}", login.role.as_str(), login.email, login.password, login.name)?;
    }
    Ok(())
}

fn read_logins(path: &Path) -> Vec<Login> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            Some(Login {
                role: parts.next()?.parse().ok()?,
                email: parts.next()?.to_string(),
                password: parts.next()?.to_string(),
                name: parts.next()?.to_string(),
            })
        })
        .collect()
}

const PEOPLE: &[(Role, &str, &str)] = &[
    (Role::Admin, "Priya Shah", "admin@northgate.example"),
    (Role::Assessor, "Marcus Bell", "marcus.bell@northgate.example"),
    (Role::Assessor, "Helen Carter", "helen.carter@northgate.example"),
    (Role::Iqa, "Aisha Rahman", "aisha.rahman@northgate.example"),
    (Role::Eqa, "David Okoro", "david.okoro@ocr-verifier.example"),
    (Role::Learner, "Jordan Ellis", "jordan.ellis@learner.example"),
    (Role::Learner, "Sam Patel", "sam.patel@learner.example"),
    (Role::Learner, "Chloe Morgan", "chloe.morgan@learner.example"),
    (Role::Learner, "Ryan Hughes", "ryan.hughes@learner.example"),
    (Role::Learner, "Amira Khan", "amira.khan@learner.example"),
    (Role::Learner, "Tom Walsh", "tom.walsh@learner.example"),
];

/// Where the demo writes: the database, the file store, and the writer of verifiers' views the
/// access checks take (the demo records none).
struct Demo<'a> {
    pool: &'a PgPool,
    store: &'a FileStore,
    views: crate::audit::Views,
}

async fn load(pool: &PgPool, store: &FileStore) -> anyhow::Result<Vec<Login>> {
    let mut tx = pool.begin().await?;
    let centre = accounts::ensure_centre(&mut tx, CENTRE).await?;
    let mut logins = Vec::new();
    for (role, name, email) in PEOPLE {
        let password = password::generate();
        accounts::add_user(
            &mut tx,
            None,
            centre,
            &Email::parse(email).map_err(anyhow::Error::msg)?,
            name,
            *role,
            Some(&password),
        )
        .await?;
        logins.push(Login { role: *role, name: name.to_string(), email: email.to_string(), password });
    }
    let verifier = accounts::find_user_id(&mut tx, PEOPLE[4].2).await?.expect("verifier created");
    let today = Utc::now().date_naive();
    accounts::grant_verifier_access(
        &mut tx,
        None,
        verifier,
        centre,
        today - Duration::days(7),
        today + Duration::days(90),
    )
    .await?;
    let learners: Vec<&str> = PEOPLE.iter().filter(|p| p.0 == Role::Learner).map(|p| p.2).collect();
    let mut enrolments = Vec::new();
    for (index, learner) in learners.iter().enumerate() {
        let assessor = if index % 2 == 0 { PEOPLE[1].2 } else { PEOPLE[2].2 };
        enrolments.push(accounts::enrol(&mut tx, None, None, learner, "CC20", assessor, Some(PEOPLE[3].2)).await?);
    }
    tx.commit().await?;
    let demo = &Demo { pool, store, views: crate::audit::Views::start(pool) };

    let weeks_ago = |n: i64| today - Duration::weeks(n);
    let all: Vec<&str> = [
        "1.1", "1.2", "1.3", "1.4", "1.5", "1.6", "1.7", "1.8", "2.1", "2.2", "2.3", "3.1", "3.2", "3.3", "3.4", "3.5",
        "4.1", "4.2", "4.3", "4.4", "4.5", "4.6",
    ]
    .to_vec();

    // Jordan Ellis: well on the way; the reflective account waits for assessment.
    let jordan = enrolments[0];
    let item = add(
        demo,
        jordan,
        "Outbound sales calls, week 12",
        Method::Product,
        weeks_ago(6),
        &["1.1", "1.2", "1.6", "1.8"],
        &[&CALL_LOG],
        "Call log from my outbound campaign, with order references for each sale.",
    )
    .await?;
    judge(
        demo,
        item,
        &[
            ("1.1", true, "Clear preparation notes and call targets set against the campaign brief."),
            ("1.2", true, "Needs are recorded for every call."),
            ("1.6", true, "Every confirmed order has a reference."),
            ("1.8", true, "Payment authorisations logged correctly."),
        ],
    )
    .await?;
    let item = add(
        demo,
        jordan,
        "Recorded sales call with a broadband customer",
        Method::Product,
        weeks_ago(5),
        &["1.3", "1.4", "1.5", "1.7"],
        &[&RECORDING],
        "Recording of a call where I matched a package to the customer's needs and closed the sale.",
    )
    .await?;
    judge(
        demo,
        item,
        &[
            ("1.3", true, "Options clearly linked to what the customer said."),
            ("1.4", true, "Good mirroring of the customer's pace."),
            ("1.5", true, "Sale closed with explicit agreement."),
            ("1.7", true, "Recording disclosure and cooling-off rights stated."),
        ],
    )
    .await?;
    let item = add(
        demo,
        jordan,
        "March sales dashboard and analysis",
        Method::Product,
        weeks_ago(3),
        &["2.1", "2.2", "2.3"],
        &[&DASHBOARD, &BRIEFING],
        "The dashboard I produced for the team meeting, with my analysis of conversion rates.",
    )
    .await?;
    judge(
        demo,
        item,
        &[
            ("2.1", true, "Data identified from the right sources."),
            ("2.2", true, "Analysis of conversion by agent is sound."),
            ("2.3", false, "Add how you reported this to your manager: minutes or an email would do."),
        ],
    )
    .await?;
    add(
        demo,
        jordan,
        "Reflective account: leading the spring sales push",
        Method::ReflectiveAccount,
        weeks_ago(1),
        &["3.1", "3.2", "3.3", "3.4", "3.5"],
        &[&REFLECTION],
        "",
    )
    .await?;
    witness_statement(demo, jordan, weeks_ago(1)).await?;

    // Sam Patel: first item submitted, waiting.
    add(
        demo,
        enrolments[1],
        "Call log from my first week on sales",
        Method::Product,
        weeks_ago(2),
        &["1.1", "1.2", "1.6"],
        &[&CALL_LOG],
        "My call log for the week, showing preparation and orders recorded.",
    )
    .await?;

    // Chloe Morgan: told "not yet", then resubmitted.
    let item = add(demo, enrolments[2], "Notes on sales regulations", Method::Questioning, weeks_ago(4), &["1.7", "4.4"], &[], "My written answers on the rules that apply to telephone sales: distance selling, data protection and payment card rules.").await?;
    judge_as(demo, item, PEOPLE[1].2, &[("1.7", false, "Name the specific regulations (e.g. Consumer Contracts Regulations 2013) and how each affects your calls."), ("4.4", false, "Explain the impact on sales activity, not only the rules.")]).await?;
    add(demo, enrolments[2], "Revised answers on sales regulations", Method::Questioning, weeks_ago(1), &["1.7", "4.4"], &[], "Revised answers naming the Consumer Contracts Regulations 2013, UK GDPR, PECR and PCI DSS, and how each changes what I say and record on a call.").await?;

    // Ryan Hughes: just enrolled, nothing yet.

    // Amira Khan: every criterion met, ready for sign-off.
    let amira = enrolments[4];
    let item = record(
        demo,
        amira,
        "Observation of sales calls and team leadership",
        Method::Observation,
        weeks_ago(8),
        &all[..11],
        &[&CALL_LOG, &RECORDING],
        "Observed Amira across two shifts on the sales floor: call preparation, needs questioning, \
         presenting options, closing and recording orders, with the call recording and her call log.",
    )
    .await?;
    judge_as(
        demo,
        item,
        PEOPLE[1].2,
        &all[..11].iter().map(|c| (*c, true, "Observed and confirmed.")).collect::<Vec<_>>(),
    )
    .await?;
    let item = record(
        demo,
        amira,
        "Professional discussion: leading the team and understanding sales",
        Method::ProfessionalDiscussion,
        weeks_ago(2),
        &all[11..],
        &[&DASHBOARD],
        "We discussed how Amira leads the team's sales activity and the rules that apply to it, \
         using the dashboard she built.",
    )
    .await?;
    judge_as(
        demo,
        item,
        PEOPLE[1].2,
        &all[11..].iter().map(|c| (*c, true, "Confirmed in discussion with good examples.")).collect::<Vec<_>>(),
    )
    .await?;
    // Outcome 3 (leading the team) also needs real work, not only discussion: her team dashboard.
    let item = add(
        demo,
        amira,
        "Team sales dashboard and coaching notes, March",
        Method::Product,
        weeks_ago(3),
        &all[11..16],
        &[&DASHBOARD],
        "The dashboard I keep for my team, with the targets I set each agent, the coaching notes from \
         our one-to-ones and the actions we agreed when the team fell behind in week 10.",
    )
    .await?;
    judge_as(
        demo,
        item,
        PEOPLE[1].2,
        &all[11..16]
            .iter()
            .map(|c| (*c, true, "Real team records that show you leading the sales activity."))
            .collect::<Vec<_>>(),
    )
    .await?;

    // Tom Walsh: started, one criterion met, one item waiting.
    let item = add(
        demo,
        enrolments[5],
        "Preparing for an inbound sales shift",
        Method::Product,
        weeks_ago(3),
        &["1.1"],
        &[&BRIEFING],
        "The briefing I prepared before my shift.",
    )
    .await?;
    judge_as(demo, item, PEOPLE[2].2, &[("1.1", true, "Thorough preparation.")]).await?;
    add(
        demo,
        enrolments[5],
        "Customer needs call notes",
        Method::Product,
        weeks_ago(1),
        &["1.2", "1.3"],
        &[&CALL_LOG],
        "Notes from calls where I established what customers wanted.",
    )
    .await?;

    Ok(logins)
}

#[allow(clippy::too_many_arguments)] // One line per demo item reads better than a builder here.
async fn add(
    demo: &Demo<'_>,
    enrolment_id: uuid::Uuid,
    title: &str,
    method: Method,
    occurred_on: NaiveDate,
    criteria: &[&str],
    files: &[&DemoFile],
    description: &str,
) -> anyhow::Result<uuid::Uuid> {
    let mut tx = demo.pool.begin().await?;
    let learner_id = sqlx::query_scalar!("SELECT learner_id FROM enrolments WHERE id = $1", enrolment_id)
        .fetch_one(&mut *tx)
        .await?;
    let actor = accounts::load_actor(&mut tx, learner_id).await?.expect("demo learner exists");
    let access =
        policy::enrolment(&demo.views, &mut tx, &actor, enrolment_id, Action::AddEvidence, Viewed::Portfolio).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let raw = RawEvidence {
        title: title.into(),
        description: description.into(),
        method: method.as_str().into(),
        occurred_on: occurred_on.to_string(),
        criteria: criteria.iter().map(|c| c.to_string()).collect(),
        declaration: true,
        third_party_confirmed: true,
        ..Default::default()
    };
    let types: Vec<&str> = files
        .iter()
        .map(|f| crate::evidence::detect_type(f.bytes, f.name))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let item = NewEvidence::parse(&raw, &unit, Utc::now().date_naive(), &types)
        .map_err(|errors| anyhow::anyhow!("demo item {title:?} invalid: {errors:?}"))?;
    let mut staged = Vec::new();
    for file in files {
        let mut source = Bytes(Some(bytes::Bytes::from_static(file.bytes)));
        staged.push(demo.store.stage(file.name, &mut source, u64::MAX).await?);
    }
    let id = evidence::create(&mut tx, demo.store, &actor, &access, item, staged).await?;
    tx.commit().await?;
    Ok(id)
}

/// An assessor's signed observation or professional-discussion record for a learner.
#[allow(clippy::too_many_arguments)] // One line per demo item reads better than a builder here.
async fn record(
    demo: &Demo<'_>,
    enrolment_id: uuid::Uuid,
    title: &str,
    method: Method,
    occurred_on: NaiveDate,
    criteria: &[&str],
    files: &[&DemoFile],
    description: &str,
) -> anyhow::Result<uuid::Uuid> {
    let mut tx = demo.pool.begin().await?;
    let assessor_id = sqlx::query_scalar!("SELECT assessor_id FROM enrolments WHERE id = $1", enrolment_id)
        .fetch_one(&mut *tx)
        .await?;
    let actor = accounts::load_actor(&mut tx, assessor_id).await?.expect("demo assessor exists");
    let access =
        policy::enrolment(&demo.views, &mut tx, &actor, enrolment_id, Action::RecordAssessment, Viewed::Portfolio)
            .await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let raw = RawEvidence {
        title: title.into(),
        description: description.into(),
        method: method.as_str().into(),
        occurred_on: occurred_on.to_string(),
        criteria: criteria.iter().map(|c| c.to_string()).collect(),
        declaration: true,
        third_party_confirmed: true,
        assessment_location: match method {
            Method::ProfessionalDiscussion => "Training room, Northgate Training".into(),
            _ => "Sales floor, Northgate contact centre".into(),
        },
        ..Default::default()
    };
    let types: Vec<&str> = files
        .iter()
        .map(|f| crate::evidence::detect_type(f.bytes, f.name))
        .collect::<Result<_, _>>()
        .map_err(anyhow::Error::msg)?;
    let item = evidence::parse_assessor_record(&raw, &unit, Utc::now().date_naive(), &types)
        .map_err(|errors| anyhow::anyhow!("demo record {title:?} invalid: {errors:?}"))?;
    let mut staged = Vec::new();
    for file in files {
        let mut source = Bytes(Some(bytes::Bytes::from_static(file.bytes)));
        staged.push(demo.store.stage(file.name, &mut source, u64::MAX).await?);
    }
    let id = evidence::create(&mut tx, demo.store, &actor, &access, item, staged).await?;
    tx.commit().await?;
    Ok(id)
}

/// The learner's team leader in their witness register, asked for a statement, which he writes
/// and signs through his link; the assessor confirms it with him and assesses it.
async fn witness_statement(demo: &Demo<'_>, enrolment_id: uuid::Uuid, seen_on: NaiveDate) -> anyhow::Result<()> {
    let mut tx = demo.pool.begin().await?;
    let learner_id = sqlx::query_scalar!("SELECT learner_id FROM enrolments WHERE id = $1", enrolment_id)
        .fetch_one(&mut *tx)
        .await?;
    let learner = accounts::load_actor(&mut tx, learner_id).await?.expect("demo learner exists");
    let access =
        policy::enrolment(&demo.views, &mut tx, &learner, enrolment_id, Action::ManageWitnesses, Viewed::Portfolio)
            .await?;
    let raw = witnesses::RawWitness {
        name: "Sam Okafor".into(),
        job_role: "Team Leader, Outbound Sales Team B".into(),
        relationship: "Line manager".into(),
        email: "sam.okafor@example.org".into(),
        ..Default::default()
    };
    let witness = witnesses::NewWitness::parse(&raw, &learner.name, &learner.email)
        .map_err(|errors| anyhow::anyhow!("demo witness invalid: {errors:?}"))?;
    witnesses::add(&mut tx, &learner, &access, witness).await?;
    let register = witnesses::register(&mut tx, learner_id).await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let ask = witnesses::RawRequest {
        witness_id: register[0].id.to_string(),
        criteria: vec!["3.2".into(), "3.3".into()],
        message: "The team briefings and 1-2-1s during the spring sales push".into(),
    };
    let request = witnesses::NewRequest::parse(&ask, &unit, &register)
        .map_err(|errors| anyhow::anyhow!("demo witness request invalid: {errors:?}"))?;
    let link = witnesses::request_statement(&mut tx, &learner, &access, request).await?;
    tx.commit().await?;

    let token = link.path.trim_start_matches("/witness/");
    let account = WITNESS_STATEMENT.split("\n\n").nth(1).unwrap_or(WITNESS_STATEMENT);
    let statement = witnesses::RawStatement {
        statement: account.split_whitespace().collect::<Vec<_>>().join(" "),
        criteria: vec!["3.2".into(), "3.3".into()],
        occurred_on: seen_on.to_string(),
        signature: "Sam Okafor".into(),
        declaration: true,
    };
    let mut tx = demo.pool.begin().await?;
    let (evidence_id, _) = witnesses::sign_statement(&mut tx, token, None, &statement, Utc::now().date_naive()).await?;
    tx.commit().await?;

    let mut tx = demo.pool.begin().await?;
    let assessor = accounts::load_actor(&mut tx, access.assessor_id).await?.expect("demo assessor exists");
    let as_assessor =
        policy::evidence(&demo.views, &mut tx, &assessor, evidence_id, Action::Assess, Viewed::Evidence(evidence_id))
            .await?;
    witnesses::confirm(&mut tx, &assessor, &as_assessor, evidence_id, true).await?;
    tx.commit().await?;
    judge(
        demo,
        evidence_id,
        &[
            ("3.2", true, "Confirmed with Sam Okafor by phone: a clear account of the targets you agreed."),
            ("3.3", true, "The witness describes your daily feedback and support in detail."),
        ],
    )
    .await
}

async fn judge(demo: &Demo<'_>, evidence_id: uuid::Uuid, decisions: &[(&str, bool, &str)]) -> anyhow::Result<()> {
    judge_as(demo, evidence_id, PEOPLE[1].2, decisions).await
}

async fn judge_as(
    demo: &Demo<'_>,
    evidence_id: uuid::Uuid,
    assessor: &str,
    decisions: &[(&str, bool, &str)],
) -> anyhow::Result<()> {
    let mut tx = demo.pool.begin().await?;
    let assessor_id = accounts::find_user_id(&mut tx, assessor).await?.expect("demo assessor exists");
    let actor = accounts::load_actor(&mut tx, assessor_id).await?.expect("demo assessor exists");
    let access =
        policy::evidence(&demo.views, &mut tx, &actor, evidence_id, Action::Assess, Viewed::Evidence(evidence_id))
            .await?;
    let unit = catalogue::find_unit(&mut tx, None, Some(access.unit_id)).await?;
    let inputs: Vec<DecisionInput> = decisions
        .iter()
        .map(|(criterion, met, feedback)| DecisionInput {
            criterion: criterion.to_string(),
            outcome: if *met { "met" } else { "not_yet" }.into(),
            feedback: feedback.to_string(),
            confirmed: assessment::Confirmations::NAMES.iter().map(|n| n.to_string()).collect(),
            reason: String::new(),
        })
        .collect();
    assessment::record_decisions(&mut tx, &actor, &access, &unit, evidence_id, &inputs).await?;
    tx.commit().await?;
    Ok(())
}
