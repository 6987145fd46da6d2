//! The embedded default: without `DATABASE_URL` the binary runs a private PostgreSQL cluster
//! kept in the data dir, reachable only through a Unix socket inside it.
//!
//! One lock file in the data dir says who owns the cluster: a server holds it for its whole life
//! (so a second server is refused), a command-line tool holds it only while it starts the cluster
//! for its own run. Postgres runs as a child in its own process group with a parent-death signal,
//! so a killed server does not leave it behind; a leftover one from an older crash is stopped.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User};
use sqlx::postgres::PgConnectOptions;

/// Name of the database, the superuser and (when started as root) the system account.
pub const NAME: &str = "eportfolio";
const PORT: u16 = 5432;
// sockaddr_un holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;

/// Who is starting the cluster, which decides what happens when someone else already holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// A long-running server: refuses to share the data dir with another server.
    Server,
    /// A one-off command: uses a running server's cluster or starts one for its own run.
    Tool,
}

impl Owner {
    fn label(self) -> &'static str {
        match self {
            Owner::Server => "server",
            Owner::Tool => "tool",
        }
    }
}

/// A running cluster this process can connect to. Dropping it stops the cluster if this process
/// started it.
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    postmaster: Option<Postmaster>,
    _lock: Option<Flock<File>>,
}

struct Postmaster {
    pid: Pid,
    // In a Mutex only so that a cluster can be shared between threads (as the tests do).
    exited: std::sync::Mutex<mpsc::Receiver<std::io::Result<ExitStatus>>>,
}

impl Postmaster {
    fn exit_status(&self, wait: Duration) -> Option<std::io::Result<ExitStatus>> {
        let exited = self.exited.lock().unwrap_or_else(|e| e.into_inner());
        if wait.is_zero() { exited.try_recv().ok() } else { exited.recv_timeout(wait).ok() }
    }
}

impl EmbeddedPostgres {
    /// Creates (first run) and starts the cluster in `data_dir`, or joins the one a running server
    /// owns when `owner` is a tool.
    pub fn start(data_dir: &Path, owner: Owner) -> anyhow::Result<Self> {
        fs::create_dir_all(data_dir).with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        let data_dir =
            data_dir.canonicalize().with_context(|| format!("cannot resolve data dir {}", data_dir.display()))?;
        let cluster_dir = data_dir.join("postgres");
        let socket = cluster_dir.join(format!(".s.PGSQL.{PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the data dir path {} is too long for a Unix socket ({} bytes at most for {}); \
                 choose a shorter EPORTFOLIO_DATA_DIR",
                data_dir.display(),
                MAX_SOCKET_PATH,
                socket.display()
            );
        }

        let lock = match acquire_lock(&data_dir, owner)? {
            Acquired::Owned(lock) => lock,
            Acquired::HeldByServer(pid) if owner == Owner::Tool => {
                tracing::debug!(pid, "using the cluster of the running server");
                return Ok(EmbeddedPostgres { cluster_dir, postmaster: None, _lock: None });
            }
            Acquired::HeldByServer(pid) => bail!(
                "another eportfolio server (pid {pid}) is already running on data dir {}; \
                 stop it first or choose another EPORTFOLIO_DATA_DIR",
                data_dir.display()
            ),
        };

        let binaries = PostgresBinaries::find()?;
        let run_as = service_account()?;
        prepare_cluster_dir(&cluster_dir, run_as.as_ref())?;
        if !cluster_dir.join("PG_VERSION").exists() {
            binaries.initdb(&cluster_dir, run_as.as_ref())?;
        }
        stop_leftover_postmaster(&cluster_dir)?;
        let postmaster = binaries.start_postmaster(&data_dir, &cluster_dir, run_as.as_ref())?;
        let mut cluster = EmbeddedPostgres { cluster_dir, postmaster: Some(postmaster), _lock: Some(lock) };
        cluster.wait_until_ready()?;
        Ok(cluster)
    }

    /// A `postgres://` URL for `database` on this cluster (its socket directory as `host`).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{NAME}@localhost:{PORT}/{database}?host={}", self.cluster_dir.display())
    }

    /// Connection options for `database` on this cluster.
    pub fn connect_options(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new().socket(&self.cluster_dir).port(PORT).username(NAME).database(database)
    }

    fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let socket = self.cluster_dir.join(format!(".s.PGSQL.{PORT}"));
        loop {
            if let Some(postmaster) = &self.postmaster
                && let Some(status) = postmaster.exit_status(Duration::ZERO)
            {
                self.postmaster = None;
                bail!(
                    "PostgreSQL exited during start-up ({}); see {}",
                    status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    self.log_path().display()
                );
            }
            if socket.exists() && accepts_connections(&self.cluster_dir) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("PostgreSQL did not become ready within 60 s; see {}", self.log_path().display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.cluster_dir.with_file_name("postgres.log")
    }

    /// Stops the cluster if this process started it (a fast shutdown: open sessions are ended,
    /// committed work is on disk).
    pub fn stop(&mut self) {
        if let Some(postmaster) = self.postmaster.take() {
            let _ = kill(postmaster.pid, Signal::SIGINT);
            match postmaster.exit_status(Duration::from_secs(60)) {
                Some(_) => tracing::info!("embedded PostgreSQL stopped"),
                None => {
                    tracing::warn!("embedded PostgreSQL did not stop within 60 s; sending SIGQUIT");
                    let _ = kill(postmaster.pid, Signal::SIGQUIT);
                    let _ = postmaster.exit_status(Duration::from_secs(10));
                }
            }
        }
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether the postmaster answers a startup packet, checked without an async runtime.
fn accepts_connections(cluster_dir: &Path) -> bool {
    use std::os::unix::net::UnixStream;
    let Ok(mut stream) = UnixStream::connect(cluster_dir.join(format!(".s.PGSQL.{PORT}"))) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    // A StartupMessage for user and database "eportfolio"; any 'R' (authentication) reply
    // means the server accepts connections, 'E' means it is still starting or shutting down.
    let mut body = Vec::new();
    body.extend_from_slice(&196608i32.to_be_bytes());
    for (key, value) in [("user", NAME), ("database", "postgres")] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    if stream.write_all(&packet).is_err() {
        return false;
    }
    let mut reply = [0u8; 1];
    matches!(stream.read_exact(&mut reply), Ok(()) if reply[0] == b'R')
}

enum Acquired {
    Owned(Flock<File>),
    HeldByServer(i32),
}

/// Takes the data dir's lock. A tool holding it is waited for; a server holding it is reported.
fn acquire_lock(data_dir: &Path, owner: Owner) -> anyhow::Result<Acquired> {
    let path = data_dir.join("eportfolio.lock");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open lock file {}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                lock.set_len(0)?;
                lock.rewind()?;
                write!(lock, "{} {}", owner.label(), std::process::id())?;
                lock.flush()?;
                return Ok(Acquired::Owned(lock));
            }
            Err((mut file, _)) => {
                let mut holder = String::new();
                file.read_to_string(&mut holder)?;
                let mut words = holder.split_whitespace();
                let kind = words.next().unwrap_or("");
                let pid = words.next().and_then(|p| p.parse().ok()).unwrap_or(0);
                if kind == "server" && accepts_connections(&data_dir.join("postgres")) {
                    return Ok(Acquired::HeldByServer(pid));
                }
                if Instant::now() > deadline {
                    bail!("data dir {} stayed locked by {holder:?} for 60 s", data_dir.display());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// PostgreSQL refuses to run as root: when we are root, the cluster runs as a system account.
fn service_account() -> anyhow::Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    if User::from_name(NAME)?.is_none() {
        let status = Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"])
            .args(["--shell", "/usr/sbin/nologin", NAME])
            .status()
            .context("cannot run useradd to create the eportfolio system account")?;
        if !status.success() {
            bail!("useradd could not create the system account {NAME:?} ({status})");
        }
    }
    let user = User::from_name(NAME)?.ok_or_else(|| anyhow!("system account {NAME:?} missing"))?;
    Ok(Some((user.uid, user.gid)))
}

fn prepare_cluster_dir(cluster_dir: &Path, run_as: Option<&(Uid, Gid)>) -> anyhow::Result<()> {
    fs::create_dir_all(cluster_dir).with_context(|| format!("cannot create {}", cluster_dir.display()))?;
    fs::set_permissions(cluster_dir, fs::Permissions::from_mode(0o700))?;
    if let Some((uid, gid)) = run_as {
        let meta = fs::metadata(cluster_dir)?;
        if meta.uid() != uid.as_raw() {
            let status = Command::new("chown").arg("-R").arg(format!("{uid}:{gid}")).arg(cluster_dir).status()?;
            if !status.success() {
                bail!("cannot give {} to the {NAME} account", cluster_dir.display());
            }
        }
        let mut ancestor = cluster_dir.parent();
        while let Some(dir) = ancestor {
            grant_traverse(dir, *uid, *gid)?;
            ancestor = dir.parent();
        }
    }
    Ok(())
}

/// Lets the service account pass through `dir` (execute only: it cannot list it).
fn grant_traverse(dir: &Path, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    let meta = fs::metadata(dir)?;
    let mode = meta.mode();
    let passable = mode & 0o001 != 0
        || (meta.uid() == uid.as_raw() && mode & 0o100 != 0)
        || (meta.gid() == gid.as_raw() && mode & 0o010 != 0);
    if passable {
        return Ok(());
    }
    let acl = Command::new("setfacl").args(["-m", &format!("u:{NAME}:x")]).arg(dir).stderr(Stdio::null()).status();
    if matches!(acl, Ok(status) if status.success()) {
        tracing::warn!(dir = %dir.display(), "granted the {NAME} account passage (ACL u:{NAME}:x)");
    } else {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o001))?;
        tracing::warn!(dir = %dir.display(), "made the folder passable by others (o+x) so the database account can reach its cluster");
    }
    Ok(())
}

/// Stops a postmaster left over from an earlier crash and removes a stale pid file.
fn stop_leftover_postmaster(cluster_dir: &Path) -> anyhow::Result<()> {
    let pid_file = cluster_dir.join("postmaster.pid");
    let Ok(contents) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let Some(pid) = contents.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) else {
        fs::remove_file(&pid_file)?;
        return Ok(());
    };
    let is_postgres = fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains("postgres"))
        .unwrap_or(false);
    if !is_postgres {
        tracing::info!(pid, "removing stale postmaster.pid from an earlier crash");
        fs::remove_file(&pid_file)?;
        return Ok(());
    }
    tracing::warn!(pid, "stopping a PostgreSQL left running by an earlier crash");
    let pid = Pid::from_raw(pid);
    let _ = kill(pid, Signal::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(30);
    while kill(pid, None).is_ok() && Path::new(&format!("/proc/{pid}")).exists() {
        if Instant::now() > deadline {
            let _ = kill(pid, Signal::SIGKILL);
        }
        if Instant::now() > deadline + Duration::from_secs(10) {
            bail!("a leftover PostgreSQL (pid {pid}) on {} will not stop", cluster_dir.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = fs::remove_file(&pid_file);
    Ok(())
}

struct PostgresBinaries {
    dir: PathBuf,
}

impl PostgresBinaries {
    /// `initdb` and `postgres` from `PATH`, else the newest `/usr/lib/postgresql/*/bin`.
    fn find() -> anyhow::Result<Self> {
        let on_path =
            std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>()).unwrap_or_default();
        for dir in on_path {
            if dir.join("initdb").is_file() && dir.join("postgres").is_file() {
                return Ok(PostgresBinaries { dir });
            }
        }
        let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("postgres").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        match versions.pop() {
            Some((_, dir)) => Ok(PostgresBinaries { dir }),
            None => bail!(
                "no PostgreSQL server binaries found (initdb and postgres on PATH or under \
                 /usr/lib/postgresql/*/bin); install them with `apt-get install -y postgresql` \
                 or set DATABASE_URL"
            ),
        }
    }

    fn command(&self, program: &str, run_as: Option<&(Uid, Gid)>) -> Command {
        let mut command = Command::new(self.dir.join(program));
        command.current_dir("/");
        if let Some(&(uid, gid)) = run_as {
            // SAFETY: only async-signal-safe system calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    nix::unistd::setgroups(&[gid])?;
                    nix::unistd::setgid(gid)?;
                    nix::unistd::setuid(uid)?;
                    Ok(())
                });
            }
        }
        command
    }

    fn initdb(&self, cluster_dir: &Path, run_as: Option<&(Uid, Gid)>) -> anyhow::Result<()> {
        tracing::info!(dir = %cluster_dir.display(), "creating the embedded PostgreSQL cluster");
        let output = self
            .command("initdb", run_as)
            .arg("--pgdata")
            .arg(cluster_dir)
            .args(["--username", NAME, "--auth", "trust", "--encoding", "UTF8", "--no-locale"])
            .output()
            .context("cannot run initdb")?;
        if !output.status.success() {
            bail!("initdb failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
        }
        Ok(())
    }

    fn start_postmaster(
        &self,
        data_dir: &Path,
        cluster_dir: &Path,
        run_as: Option<&(Uid, Gid)>,
    ) -> anyhow::Result<Postmaster> {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.join("postgres.log"))
            .context("cannot open postgres.log in the data dir")?;
        let mut command = self.command("postgres", run_as);
        command
            .arg("-D")
            .arg(cluster_dir)
            .args(["-c", "listen_addresses="])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", cluster_dir.display()))
            .args(["-c", "unix_socket_permissions=0700", "-c", &format!("port={PORT}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a Ctrl-C meant for the server must not reach PostgreSQL
            // before the server has finished its requests.
            .process_group(0);
        // SAFETY: prctl is async-signal-safe. The signal asks for a fast shutdown if the thread
        // that started PostgreSQL (and so this process) dies, even by SIGKILL.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT)?;
                Ok(())
            });
        }

        // The parent-death signal follows the spawning thread, so spawn from a thread that lives
        // exactly as long as the postmaster.
        let (started_tx, started_rx) = mpsc::channel();
        let (exited_tx, exited_rx) = mpsc::channel();
        std::thread::Builder::new().name("postgres".into()).spawn(move || match command.spawn() {
            Ok(mut child) => {
                let _ = started_tx.send(Ok(child.id()));
                let _ = exited_tx.send(child.wait());
            }
            Err(error) => {
                let _ = started_tx.send(Err(error));
            }
        })?;
        let pid = started_rx.recv()?.context("cannot start postgres")?;
        Ok(Postmaster { pid: Pid::from_raw(pid as i32), exited: std::sync::Mutex::new(exited_rx) })
    }
}
