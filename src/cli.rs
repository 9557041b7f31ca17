//! The command line (README "Command line"). Every flag has an environment fallback for container use.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "signpost",
    version,
    about = "OAuth discovery sidecar for MCP gateways: serves RFC 9728 / RFC 8414 documents and WWW-Authenticate hints"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format on stderr.
    #[arg(long, global = true, env = "SIGNPOST_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the discovery documents (public listener) and the challenge endpoint (admin listener).
    Serve(ServeArgs),
    /// Validate a config; print every URL served and every hint (exit 0), or every problem (exit 78).
    Check(CheckArgs),
    /// Print the WWW-Authenticate value for an MCP URL or path.
    Hint(HintArgs),
    /// Walk a deployed MCP endpoint's OAuth discovery as each client family does; exit 0 when
    /// every family passes, 1 otherwise, 2 when the endpoint cannot be reached.
    Probe(ProbeArgs),
    /// Write a signpost config (stdout) from a gateway's own config; warnings on stderr.
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The JSON config file (watched and reloaded when it changes) [env: SIGNPOST_CONFIG=]
    #[arg(long, conflicts_with = "demo")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Serve the built-in demo config (the README's example config on http://localhost:8080).
    #[arg(long)]
    pub demo: bool,
    /// Public listener: the `/.well-known/*` routes.
    #[arg(long, env = "SIGNPOST_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Admin listener: `/challenge`, `/healthz`, `/readyz`, `/status`, `/metrics`. Keep it private.
    #[arg(long, env = "SIGNPOST_ADMIN_LISTEN", default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// How long to let open connections finish after SIGTERM/SIGINT (e.g. `10s`, `500ms`).
    #[arg(long, env = "SIGNPOST_SHUTDOWN_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_grace: Duration,
    /// After SIGTERM/SIGINT, keep serving this long with `/readyz` answering 503 before the
    /// public listener stops accepting, so load balancers stop routing first (e.g. `5s` in
    /// Kubernetes).
    #[arg(long, env = "SIGNPOST_SHUTDOWN_DELAY", default_value = "0s", value_parser = humantime::parse_duration)]
    pub shutdown_delay: Duration,
    /// Open connections per listener; beyond it new connections wait in the accept backlog.
    #[arg(long, env = "SIGNPOST_MAX_CONNECTIONS", default_value_t = crate::state::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(usize))]
    pub max_connections: usize,
    /// How long a client may take to send a complete request head (slowloris bound).
    #[arg(long, env = "SIGNPOST_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// How often to re-read the config file as a safety net for filesystems whose change
    /// notifications are unreliable (e.g. `5s`; `0s` disables).
    #[arg(long, env = "SIGNPOST_POLL_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub poll_interval: Duration,
}

/// How the config file is read (every command that reads one).
#[derive(Debug, Clone, Copy, Args)]
pub struct ReadArgs {
    /// The largest config file accepted (e.g. `64MiB`, `200MB`); a larger one is refused unread.
    #[arg(long, env = "SIGNPOST_MAX_CONFIG_SIZE", default_value = "64MiB", value_parser = crate::config::read::parse_size)]
    pub max_config_size: u64,
    /// How long reading the config file may take (a hung network mount, a pipe nobody writes to).
    #[arg(long, env = "SIGNPOST_CONFIG_READ_TIMEOUT", default_value = "10s", value_parser = parse_read_timeout)]
    pub config_read_timeout: Duration,
}

impl ReadArgs {
    pub fn limits(&self) -> crate::config::read::ReadLimits {
        crate::config::read::ReadLimits {
            max_size: self.max_config_size,
            timeout: self.config_read_timeout,
        }
    }
}

fn parse_read_timeout(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() || d > Duration::from_secs(3600) {
        return Err("must be more than 0 and at most 1h".into());
    }
    Ok(d)
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The JSON config file.
    #[arg(long, env = "SIGNPOST_CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
    /// Also fetch every delegate and facade upstream's metadata once and report what breaks which
    /// clients; exit 1 on any error finding.
    #[arg(long)]
    pub online: bool,
}

#[derive(Debug, Args)]
pub struct HintArgs {
    /// The JSON config file.
    #[arg(long, env = "SIGNPOST_CONFIG")]
    pub config: PathBuf,
    #[command(flatten)]
    pub read: ReadArgs,
    /// An MCP endpoint URL (`https://gw.example.com/mcp/x/mcp`) or path (`/mcp/x/mcp`).
    pub resource: String,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The MCP endpoint URL, as clients are configured with it (`https://gw.example.com/mcp/x/mcp`).
    pub url: String,
    /// Print the stable JSON report (schema `signpost.probe/v1`) instead of the checklist.
    #[arg(long)]
    pub json: bool,
    /// The browser origin for the CORS checks (default: the MCP Inspector's).
    #[arg(long, value_name = "ORIGIN")]
    pub origin: Option<String>,
    /// Fail every family unless `authorization_servers[0]` is exactly this issuer.
    #[arg(long, value_name = "URL")]
    pub expect_issuer: Option<String>,
    /// Fail (exit 1) on any warning too, not only when a client family fails.
    #[arg(long)]
    pub strict: bool,
    /// Overall time budget for all requests (each is also limited to 3 s connect, 10 s total).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: ImportFrom,
}

#[derive(Debug, Subcommand)]
pub enum ImportFrom {
    /// From a LiteLLM proxy config (its `mcp_servers`): exit 0, 78 when the file cannot be read as
    /// one, 1 when some server could not be mapped.
    Litellm(LitellmImportArgs),
}

#[derive(Debug, Args)]
pub struct LitellmImportArgs {
    /// LiteLLM's config file (the one passed to `litellm --config`).
    pub config: PathBuf,
    /// The gateway's public URL, as MCP clients are configured with it (`https://gw.example.com`).
    #[arg(long, value_name = "URL")]
    pub public_url: String,
    /// Find each upstream's issuer as a client does (unauthenticated POST to its `url`, the 401's
    /// hint, its protected-resource metadata, the issuer's own metadata); no credential is sent.
    #[arg(long)]
    pub online: bool,
}
