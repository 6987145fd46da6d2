//! Configuration, read once from flags with environment fallbacks. Nothing else reads the
//! environment.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Settings shared by every subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Config {
    /// PostgreSQL server to use. Without it the binary runs its own cluster in the data dir.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// Where the embedded database, stored files and server lock live.
    #[arg(long, env = "EPORTFOLIO_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Address the web server listens on.
    #[arg(long, env = "EPORTFOLIO_ADDR", default_value = "127.0.0.1:8080", global = true)]
    pub addr: SocketAddr,

    /// The server is reached through HTTPS (a TLS-terminating proxy): send HSTS and mark cookies Secure.
    #[arg(long, env = "EPORTFOLIO_BEHIND_TLS", global = true)]
    pub behind_tls: bool,

    /// Trust the last address in X-Forwarded-For (only behind a reverse proxy that sets it).
    #[arg(long, env = "EPORTFOLIO_BEHIND_PROXY", global = true)]
    pub behind_proxy: bool,

    /// Largest file accepted in one upload, in bytes (default 2 GiB).
    #[arg(long, env = "EPORTFOLIO_MAX_UPLOAD", default_value_t = 2 * 1024 * 1024 * 1024, global = true)]
    pub max_upload: u64,

    /// Where evidence files are stored: `s3://bucket/prefix` for S3-compatible object storage
    /// (configured by the usual AWS_* variables), or unset for the folder `files/` in the data dir.
    #[arg(long, env = "EPORTFOLIO_STORAGE", global = true)]
    pub storage: Option<String>,

    /// The AWS_* settings (endpoint, region, keys) for S3-compatible storage.
    #[arg(skip = aws_settings())]
    pub aws: Vec<(String, String)>,

    /// SMTP server that notification emails go through: `smtp://host:port` (plain, or with
    /// `?tls=required` for STARTTLS) or `smtps://user:password@host:port`. Unset: no email, the
    /// notifications stay in the app.
    #[arg(long, env = "EPORTFOLIO_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Sender of notification emails.
    #[arg(long, env = "EPORTFOLIO_MAIL_FROM", default_value = "eportfolio <eportfolio@localhost>", global = true)]
    pub mail_from: String,

    /// The address people reach the server at, for links in emails (default `http://` and the
    /// listen address).
    #[arg(long, env = "EPORTFOLIO_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// On SIGTERM or Ctrl-C, how many seconds requests in flight (an upload, an export) get to
    /// finish before the server stops anyway. New connections are refused at once.
    #[arg(long, env = "EPORTFOLIO_SHUTDOWN_GRACE", default_value_t = 30, global = true)]
    pub shutdown_grace_secs: u64,

    /// Seconds a client gets to send a request's line and headers, and the longest a kept-alive
    /// connection may sit idle between requests; then the connection is closed (slow-loris).
    #[arg(long, env = "EPORTFOLIO_HEADER_TIMEOUT", default_value_t = 10, global = true)]
    pub header_timeout_secs: u64,

    /// Minutes between the server's whole-chain checks of the audit trail (the first runs a
    /// minute after start); 0 turns the scheduled check off (checks on request still work).
    #[arg(long, env = "EPORTFOLIO_CHAIN_CHECK_MINUTES", default_value_t = 60, global = true)]
    pub chain_check_minutes: u64,

    /// Seconds a request body (an upload) may go with no bytes arriving before it is stopped and
    /// answered 408; whatever had arrived is thrown away.
    #[arg(long, env = "EPORTFOLIO_BODY_IDLE_TIMEOUT", default_value_t = 30, global = true)]
    pub body_idle_timeout_secs: u64,

    /// Slowest average rate, in bytes per second, a request body may arrive at once the grace
    /// period below has passed (0: no minimum). The default, 1 KiB/s, is far below a poor phone
    /// connection, so only a client holding the connection on purpose is cut off.
    #[arg(long, env = "EPORTFOLIO_MIN_UPLOAD_RATE", default_value_t = 1024, global = true)]
    pub min_upload_rate: u64,

    /// Seconds an upload may take before the minimum rate applies to it.
    #[arg(long, env = "EPORTFOLIO_UPLOAD_RATE_GRACE", default_value_t = 60, global = true)]
    pub upload_rate_grace_secs: u64,
}

/// Every `AWS_*` variable, as object storage clients conventionally read them.
fn aws_settings() -> Vec<(String, String)> {
    std::env::vars().filter(|(key, _)| key.starts_with("AWS_")).collect()
}

impl Config {
    /// Folder that holds stored evidence files.
    pub fn files_dir(&self) -> PathBuf {
        self.data_dir.join("files")
    }

    /// Where links in emails point: the public address without a trailing slash.
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.addr),
        }
    }

    /// Configuration for a test or embedded use, with everything under `data_dir`.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Config {
            database_url: None,
            data_dir,
            addr: "127.0.0.1:0".parse().expect("valid address"),
            behind_tls: false,
            behind_proxy: false,
            max_upload: 2 * 1024 * 1024 * 1024,
            storage: None,
            aws: Vec::new(),
            smtp_url: None,
            mail_from: "eportfolio <eportfolio@localhost>".into(),
            public_url: None,
            shutdown_grace_secs: 30,
            header_timeout_secs: 10,
            chain_check_minutes: 60,
            body_idle_timeout_secs: 30,
            min_upload_rate: 1024,
            upload_rate_grace_secs: 60,
        }
    }
}
