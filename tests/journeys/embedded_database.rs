//! The binary's own PostgreSQL: created on first run, stopped with the server, recovered after
//! a `kill -9`, never shared by two servers, and used by the other subcommands whether or not
//! a server is running. These tests run the real `eportfolio` binary.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

fn binary(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eportfolio"));
    command.env_remove("DATABASE_URL").env("EPORTFOLIO_DATA_DIR", data_dir).env("RUST_LOG", "warn");
    command
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn start_server(data_dir: &Path, port: u16) -> Child {
    binary(data_dir)
        .args(["--addr", &format!("127.0.0.1:{port}"), "serve"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_ready(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await
            && response.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "server on port {port} never became ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = binary(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("command finishes")
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Whether any postgres process serves a cluster under `data_dir`.
fn postgres_running_in(data_dir: &Path) -> bool {
    let needle = data_dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|cmd| {
                let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
                cmd.contains("postgres") && cmd.contains(&needle)
            })
            .unwrap_or(false)
    })
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_server_runs_its_own_cluster_survives_kill_9_and_refuses_a_second_server() {
    let data = tempfile::Builder::new().prefix("epf-e2e-").tempdir_in("/tmp").unwrap();
    let dir = data.path();

    let port = free_port();
    let mut first = start_server(dir, port).await;
    wait_ready(port).await;
    assert!(dir.join("postgres/PG_VERSION").exists(), "the cluster lives in the data dir");
    assert!(postgres_running_in(dir));

    // A second server on the same data dir is refused with a clear message.
    let second = binary(dir).args(["--addr", &format!("127.0.0.1:{}", free_port()), "serve"]).output().await.unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(
        message.contains("another eportfolio server") && message.contains("is already running on data dir"),
        "{message}"
    );

    // Other subcommands use the running server's cluster.
    let (ok, out, err) =
        run(dir, &["user", "add", "--email", "kim@example.org", "--name", "Kim Lee", "--role", "learner"], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("password: "), "a generated password is printed once: {out}");
    let (ok, _, err) = run(
        dir,
        &["user", "add", "--email", "ash@example.org", "--name", "Ash Green", "--role", "assessor", "--password-stdin"],
        Some("a long enough password\n"),
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) =
        run(dir, &["enrol", "--learner", "kim@example.org", "--unit", "CC20", "--assessor", "ash@example.org"], None)
            .await;
    assert!(ok, "{err}");
    assert!(uuid::Uuid::parse_str(out.trim()).is_ok(), "enrol prints the enrolment id: {out}");
    let (ok, out, err) = run(dir, &["token", "create", "--email", "kim@example.org"], None).await;
    assert!(ok, "{err}");
    let token = out.trim().to_string();
    let me = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200);

    // kill -9: the next start recovers (stale postmaster.pid, possibly a postgres still exiting).
    first.start_kill().unwrap();
    first.wait().await.unwrap();
    let port = free_port();
    let mut again = start_server(dir, port).await;
    wait_ready(port).await;
    let me = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/api/v1/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 200, "committed data survived the crash");

    // SIGTERM stops the server and its cluster.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(again.id().unwrap() as i32), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), again.wait()).await.expect("server stops").unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    wait_until("the cluster has stopped", || !postgres_running_in(dir)).await;

    // With no server running, a subcommand starts the cluster for its own run and stops it.
    let (ok, out, err) = run(dir, &["user", "list"], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("kim@example.org") && out.contains("ash@example.org"), "{out}");
    wait_until("the tool's cluster has stopped", || !postgres_running_in(dir)).await;
    let (ok, out, _) = run(dir, &["audit", "verify"], None).await;
    assert!(ok);
    assert!(out.starts_with("audit trail intact"), "{out}");
}

#[tokio::test]
async fn unit_import_is_idempotent_and_refuses_bad_files() {
    let data = tempfile::Builder::new().prefix("epf-unit-").tempdir_in("/tmp").unwrap();
    let dir = data.path();
    let unit = dir.join("cc20.toml");
    std::fs::write(
        &unit,
        include_str!("../../units/cc20.toml").replace("CC20", "CC20X").replace("code = \"CC20X\"", "code = \"XCC20\""),
    )
    .unwrap();
    let file = unit.to_str().unwrap();
    let (ok, out, err) = run(dir, &["unit", "import", file], None).await;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "unit XCC20: imported (unit file)");
    let (ok, out, _) = run(dir, &["unit", "import", file], None).await;
    assert!(ok);
    assert_eq!(out.trim(), "unit XCC20: unchanged (unit file)");
    let broken = dir.join("broken.toml");
    std::fs::write(&broken, "code = \"B1\"\ntitle = 3\n").unwrap();
    let (ok, _, err) = run(dir, &["unit", "import", broken.to_str().unwrap()], None).await;
    assert!(!ok);
    assert!(err.contains("not a valid unit file"), "{err}");
    let (ok, _, err) = run(dir, &["user", "add", "--email", "bad", "--name", "X", "--role", "learner"], None).await;
    assert!(!ok);
    assert!(err.contains("is not an email address"), "{err}");
}

#[tokio::test]
async fn with_database_url_every_command_uses_that_server_and_no_cluster_is_made() {
    let url = crate::common::empty_database_url().await;
    let data = tempfile::Builder::new().prefix("epf-url-").tempdir_in("/tmp").unwrap();
    let dir = data.path();
    let with_url = |args: &[&str]| {
        let mut command = binary(dir);
        command.env("DATABASE_URL", &url).args(args);
        command
    };
    let output = with_url(&["migrate"]).output().await.unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = with_url(&["user", "add", "--email", "url@example.org", "--name", "Una Url", "--role", "admin"])
        .output()
        .await
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let output = with_url(&["user", "list"]).output().await.unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("url@example.org"));
    assert!(!dir.join("postgres").exists(), "no embedded cluster is created when DATABASE_URL is set");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let units: i64 = sqlx::query_scalar("SELECT count(*) FROM units").fetch_one(&mut conn).await.unwrap();
    assert_eq!(units, 2, "migrate loaded the bundled units into that server");
}

/// A planner setting changed for one statement is back to the default after it, whether the
/// statement succeeded or failed (and a failure inside a transaction is the one reported).
#[tokio::test]
async fn a_planner_setting_for_one_statement_is_reset_after_it_even_when_it_fails() {
    use eportfolio::error::AppError;
    let app = crate::common::TestApp::spawn().await;
    let mut conn = app.pool.acquire().await.unwrap();
    let setting = async |conn: &mut sqlx::PgConnection| -> String {
        sqlx::query_scalar("SELECT current_setting('join_collapse_limit')").fetch_one(conn).await.unwrap()
    };
    assert_eq!(setting(&mut conn).await, "8", "PostgreSQL's default to start with");

    let inside = eportfolio::db::with_planner_setting(&mut conn, "join_collapse_limit", "1", async |conn| {
        Ok(sqlx::query_scalar::<_, String>("SELECT current_setting('join_collapse_limit')").fetch_one(conn).await?)
    })
    .await
    .unwrap();
    assert_eq!(inside, "1", "the statement runs with the setting");
    assert_eq!(setting(&mut conn).await, "8", "and the connection has the default again");

    // In a transaction, on a connection of its own so what it is left with can be read after.
    let mut own = <sqlx::PgConnection as sqlx::Connection>::connect(&app.database_url).await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut own).await.unwrap();
    let failed = eportfolio::db::with_planner_setting(&mut tx, "join_collapse_limit", "1", async |conn| {
        Err::<(), _>(AppError::from(sqlx::query("SELECT 1/0").execute(conn).await.unwrap_err()))
    })
    .await
    .unwrap_err();
    assert!(
        matches!(&failed, AppError::Unexpected(error) if error.to_string().contains("division by zero")),
        "the statement's own error is reported, not the failed reset's: {failed:?}"
    );
    tx.rollback().await.unwrap();
    assert_eq!(setting(&mut own).await, "8", "the connection has the default after the rollback");
}
