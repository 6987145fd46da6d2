//! The `eportfolio` command: parses the command line and calls into the library.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use eportfolio::accounts::{self, Email};
use eportfolio::auth::{Role, password, tokens};
use eportfolio::config::Config;
use eportfolio::db::{self, Database, Owner};

#[derive(Parser)]
#[command(name = "eportfolio", version, about = "E-portfolio for vocational qualifications")]
struct Cli {
    #[command(flatten)]
    config: Config,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate the database, then serve the web application
    Serve {
        /// Load the demonstration centre first if the database is empty, and print its logins
        #[arg(long)]
        demo: bool,
    },
    /// Bring the database schema up to date and load the bundled units
    Migrate,
    /// Manage user accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Enrol a learner on a unit with an assessor (and an IQA); prints the enrolment id
    Enrol {
        #[arg(long)]
        learner: String,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        assessor: String,
        #[arg(long)]
        iqa: Option<String>,
    },
    /// Personal API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Qualification units
    #[command(subcommand)]
    Unit(UnitCommand),
    /// Load the demonstration centre into an empty database and print its logins; with --scale,
    /// generate a large centre for load tests instead (COPY, deterministic from a seed)
    Demo {
        /// `learners=N[,seed=S]`: N learners and, per 10,000 of them, 200 assessors, 20 IQAs,
        /// about 1M evidence items, 3M mappings, 2M decisions and 10M chained audit events
        #[arg(long, value_parser = eportfolio::demo::scale::Scale::parse)]
        scale: Option<eportfolio::demo::scale::Scale>,
        /// With --scale: generate even though the database already has accounts
        #[arg(long, requires = "scale")]
        force: bool,
    },
    /// The tamper-evident audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Stored evidence files
    #[command(subcommand)]
    Files(FilesCommand),
    /// Portfolio exports
    #[command(subcommand)]
    Export(ExportCommand),
    /// Write a consistent backup into a new folder: the database (pg_dump of one snapshot) and
    /// every stored file it refers to, each checked against its SHA-256, with a manifest
    Backup {
        /// A new or empty folder
        dir: PathBuf,
    },
    /// Check a backup, then restore it into an empty database and file store (a new data dir,
    /// or DATABASE_URL naming a new database); refuses a damaged backup or a database in use
    Restore {
        /// A folder written by `eportfolio backup`
        dir: PathBuf,
    },
    /// Apply the centres' retention schedules: list what is due and why (a dry run, the default),
    /// or with --apply delete the files and anonymise or redact the records that are due,
    /// recording each step in the audit trail. Learners under a legal hold are never purged.
    Purge {
        /// Do it: delete, anonymise and redact what is due (without it nothing changes)
        #[arg(long)]
        apply: bool,
        /// Judge what is due on this day (YYYY-MM-DD) instead of today, e.g. to preview a later
        /// purge; with --apply it purges early, so use it only deliberately
        #[arg(long, value_name = "YYYY-MM-DD")]
        as_of: Option<chrono::NaiveDate>,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum FilesCommand {
    /// Remove stored files that no evidence refers to (left by a crash mid-upload) and abandoned
    /// partial uploads; recorded in the audit trail
    Sweep {
        /// Only report what would be removed
        #[arg(long)]
        dry_run: bool,
        /// Leave files stored less than this many minutes ago (uploads may still be saving them)
        #[arg(long, default_value_t = 60)]
        grace_minutes: u64,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; prints a generated password unless --password-stdin is given
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
        /// Centre the role is held at
        #[arg(long, default_value = accounts::DEFAULT_CENTRE)]
        centre: String,
    },
    /// List every account with its roles
    List,
    /// Set a new password (generated and printed unless --password-stdin); ends the user's sessions
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a personal API token for a user; it is printed once
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "command line")]
        label: String,
    },
}

#[derive(Subcommand)]
enum UnitCommand {
    /// Import a unit specification: a unit file (TOML) or an IMS CASE 1.0 package (JSON), told
    /// apart by content unless --format says; importing the same specification again changes
    /// nothing. A malformed file is refused with the problem named, and nothing is stored
    Import {
        file: PathBuf,
        /// `unit` (TOML unit file) or `case` (IMS CASE JSON); by default told from the content
        #[arg(long, value_parser = parse_unit_format)]
        format: Option<eportfolio::catalogue::transfer::Format>,
    },
    /// Export a unit specification as a unit file (TOML, the format `unit import` reads) or an
    /// IMS CASE 1.0 package (JSON); the same unit always gives the same bytes
    Export {
        /// The unit's code, e.g. CC20
        code: String,
        /// `unit` (TOML unit file) or `case` (IMS CASE JSON)
        #[arg(long, default_value = "unit", value_parser = parse_unit_format)]
        format: eportfolio::catalogue::transfer::Format,
        /// Write to this file instead of standard output
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn parse_unit_format(text: &str) -> Result<eportfolio::catalogue::transfer::Format, String> {
    eportfolio::catalogue::transfer::Format::parse(text)
}

#[derive(Subcommand)]
enum ExportCommand {
    /// Check an offline portfolio ZIP without the database: exit 0 if every file and the record
    /// match manifest.json, 1 naming the first mismatch otherwise
    Verify { file: PathBuf },
    /// Write an enrolment's offline portfolio ZIP to a file, as the person named by `--as`
    /// (who must be allowed to see it; the export is audited as theirs)
    Enrolment {
        #[arg(long)]
        id: uuid::Uuid,
        /// Email of the person exporting: the learner, their assessor or IQA, or a verifier
        #[arg(long = "as")]
        as_email: String,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain: exit 0 if intact, 1 with the first broken event otherwise
    Verify,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse()
}

fn read_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if !from_stdin {
        return Ok((password::generate(), true));
    }
    let mut text = String::new();
    std::io::stdin().read_to_string(&mut text).context("cannot read the password from standard input")?;
    Ok((text.trim_end_matches(['\r', '\n']).to_string(), false))
}

fn main() -> std::process::ExitCode {
    eportfolio::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "eportfolio=info,tower_http=warn,sqlx=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let config = cli.config;
    if let Command::Serve { demo } = cli.command {
        eportfolio::serve(config, demo).await?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    if let Command::Export(ExportCommand::Verify { file }) = &cli.command {
        let opened = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        return Ok(match eportfolio::export::verify::verify(std::io::BufReader::new(opened)) {
            Ok(intact) => {
                println!("export intact: {} files, record SHA-256 {}", intact.files, intact.record_sha256);
                std::process::ExitCode::SUCCESS
            }
            Err(mismatch) => {
                println!("export NOT intact: {mismatch}");
                std::process::ExitCode::FAILURE
            }
        });
    }
    let database = Database::open(&config, Owner::Tool).await?;
    if let Command::Restore { dir } = &cli.command {
        // Before migrating: restore needs the database empty, and the dump brings its schema.
        let result = restore(&database, &config, dir).await;
        database.close().await;
        return result;
    }
    let result = run_tool(&database, &config, cli.command).await;
    database.close().await;
    result
}

/// `eportfolio restore DIR`: checks the backup, restores files and database, then brings the
/// schema up to date and checks the audit trail of what was restored.
async fn restore(database: &Database, config: &Config, dir: &Path) -> anyhow::Result<std::process::ExitCode> {
    let store = eportfolio::evidence::FileStore::from_config(config)?;
    let manifest = eportfolio::backup::restore(&database.pool, &database.url, &store, dir).await?;
    db::migrate(&database.pool).await?;
    let mut conn = database.pool.acquire().await?;
    let report = eportfolio::audit::verify(&mut conn).await?;
    println!(
        "restored the backup of {} from {}: {} stored files ({})",
        manifest.created_at.format("%Y-%m-%d %H:%M UTC"),
        dir.display(),
        manifest.files.len(),
        eportfolio::evidence::storage::human_size(manifest.file_bytes()),
    );
    match report.first_broken {
        None => println!("audit trail intact: {} events", report.events),
        Some(broken) => {
            println!("audit trail BROKEN at event {}: {}", broken.seq, broken.reason);
            return Ok(std::process::ExitCode::FAILURE);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn run_tool(database: &Database, config: &Config, command: Command) -> anyhow::Result<std::process::ExitCode> {
    let pool = &database.pool;
    db::migrate(pool).await?;
    match command {
        Command::Serve { .. } | Command::Export(ExportCommand::Verify { .. }) | Command::Restore { .. } => {
            unreachable!("handled before the database is opened or migrated")
        }
        Command::Backup { dir } => {
            let store = eportfolio::evidence::FileStore::from_config(config)?;
            let manifest = eportfolio::backup::backup(pool, &database.url, &store, &dir).await?;
            println!(
                "backup written to {}: database at migration {} ({}), {} stored files ({})",
                dir.display(),
                manifest.schema_version,
                eportfolio::evidence::storage::human_size(manifest.database.bytes),
                manifest.files.len(),
                eportfolio::evidence::storage::human_size(manifest.file_bytes())
            );
        }
        Command::Migrate => println!("database is up to date"),
        Command::User(UserCommand::Add { email, name, role, password_stdin, centre }) => {
            let email = Email::parse(&email).map_err(anyhow::Error::msg)?;
            let (password, generated) = read_password(password_stdin)?;
            let mut tx = pool.begin().await?;
            let centre_id = accounts::ensure_centre(&mut tx, &centre).await?;
            let id = accounts::add_user(&mut tx, None, centre_id, &email, &name, role, Some(&password)).await?;
            tx.commit().await?;
            println!("created {role} {} ({id})", email.as_str());
            if generated {
                println!("password: {password}");
            }
        }
        Command::User(UserCommand::List) => {
            let mut conn = pool.acquire().await?;
            for user in accounts::list_users(&mut conn, None).await? {
                let disabled = if user.disabled { " (disabled)" } else { "" };
                println!("{}\t{}\t{}{disabled}", user.email, user.name, user.roles.join(","));
            }
        }
        Command::User(UserCommand::ResetPassword { email, password_stdin }) => {
            let mut tx = pool.begin().await?;
            let id = accounts::find_user_id(&mut tx, &email)
                .await?
                .with_context(|| format!("no user with email {email}"))?;
            let (password, generated) = read_password(password_stdin)?;
            accounts::set_password(&mut tx, id, &password).await?;
            tx.commit().await?;
            println!("password changed for {email}; their sessions have ended");
            if generated {
                println!("password: {password}");
            }
        }
        Command::Enrol { learner, unit, assessor, iqa } => {
            let mut tx = pool.begin().await?;
            let id = accounts::enrol(&mut tx, None, None, &learner, &unit, &assessor, iqa.as_deref()).await?;
            tx.commit().await?;
            println!("{id}");
        }
        Command::Token(TokenCommand::Create { email, label }) => {
            let mut tx = pool.begin().await?;
            let id = accounts::find_user_id(&mut tx, &email)
                .await?
                .with_context(|| format!("no user with email {email}"))?;
            let created = tokens::create(&mut tx, id, &label).await?;
            tx.commit().await?;
            println!("{}", created.token);
        }
        Command::Unit(UnitCommand::Import { file, format }) => {
            let source = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let mut tx = pool.begin().await?;
            let report = eportfolio::catalogue::transfer::import_unit(&mut tx, None, &source, format).await.map_err(
                |error| match error {
                    eportfolio::error::AppError::Invalid(errors) => anyhow::anyhow!(
                        "{} is not a unit specification that can be imported: {}",
                        file.display(),
                        errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ")
                    ),
                    other => anyhow::anyhow!("{other}"),
                },
            )?;
            tx.commit().await?;
            println!(
                "unit {}: {} ({})",
                report.code,
                if report.outcome == "added" { "imported" } else { report.outcome },
                match report.format {
                    eportfolio::catalogue::transfer::Format::Unit => "unit file",
                    eportfolio::catalogue::transfer::Format::Case => "IMS CASE package",
                }
            );
        }
        Command::Unit(UnitCommand::Export { code, format, out }) => {
            let mut conn = pool.acquire().await?;
            let exported = eportfolio::catalogue::transfer::export_unit(&mut conn, &code, format)
                .await
                .map_err(|error| anyhow::anyhow!("cannot export unit {code}: {error}"))?;
            match out {
                Some(path) => {
                    // Written beside the target and renamed, so a failure leaves no partial file.
                    let partial = path.with_extension("partial");
                    std::fs::write(&partial, exported.text.as_bytes())
                        .with_context(|| format!("cannot write {}", partial.display()))?;
                    std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => {
                    use std::io::Write;
                    std::io::stdout().write_all(exported.text.as_bytes())?;
                }
            }
        }
        Command::Demo { scale: Some(scale), force } => {
            let store = eportfolio::evidence::FileStore::from_config(config)?;
            let summary =
                eportfolio::demo::scale::generate(pool, &store, scale, force, &|line| eprintln!("{line}")).await?;
            print!("{summary}");
        }
        Command::Demo { scale: None, .. } => {
            let store = eportfolio::evidence::FileStore::from_config(config)?;
            let logins = eportfolio::demo::load_if_empty(pool, &store, &config.data_dir).await?;
            eportfolio::demo::print_logins(&logins);
        }
        Command::Files(FilesCommand::Sweep { dry_run, grace_minutes }) => {
            let store = eportfolio::evidence::FileStore::from_config(config)?;
            let grace = std::time::Duration::from_secs(grace_minutes * 60);
            let report = eportfolio::evidence::remove_unreferenced_files(pool, &store, grace, dry_run)
                .await
                .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            let verb = if dry_run { "would remove" } else { "removed" };
            println!(
                "{} stored files examined in {}; {verb} {} unreferenced ({}) and {} abandoned uploads",
                report.examined,
                store.describe(),
                report.unreferenced.len(),
                eportfolio::evidence::storage::human_size(report.unreferenced_bytes),
                report.abandoned_uploads
            );
            for sha256 in &report.unreferenced {
                println!("  {sha256}");
            }
        }
        Command::Export(ExportCommand::Enrolment { id, as_email, out }) => {
            let mut conn = pool.acquire().await?;
            let user = accounts::find_user_id(&mut conn, &as_email).await?.context("no one has that email")?;
            let actor = accounts::load_actor(&mut conn, user).await?.context("that account cannot sign in")?;
            drop(conn);
            let store = eportfolio::evidence::FileStore::from_config(config)?;
            let record_sha256 = eportfolio::export::export_to_file(pool, &store, &actor, id, out.clone())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("wrote {} (record SHA-256 {record_sha256})", out.display());
        }
        Command::Purge { apply, as_of, json } => {
            let as_of = as_of.unwrap_or_else(|| chrono::Utc::now().date_naive());
            let report = if apply {
                let store = eportfolio::evidence::FileStore::from_config(config)?;
                eportfolio::retention::purge::apply(pool, &store, as_of).await
            } else {
                let mut conn = pool.acquire().await?;
                eportfolio::retention::purge::plan(&mut conn, as_of).await
            }
            .map_err(|e| anyhow::anyhow!("{e:#}"))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", report.text());
            }
        }
        Command::Audit(AuditCommand::Verify) => {
            let mut conn = pool.acquire().await?;
            let report = eportfolio::audit::verify(&mut conn).await?;
            match report.first_broken {
                None => println!("audit trail intact: {} events", report.events),
                Some(broken) => {
                    println!("audit trail BROKEN at event {}: {}", broken.seq, broken.reason);
                    return Ok(std::process::ExitCode::FAILURE);
                }
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
