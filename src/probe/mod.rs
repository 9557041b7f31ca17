//! `signpost probe <MCP URL>`: walks the OAuth discovery chain of a deployed MCP endpoint the way
//! each real client family does (README "What it checks") and says, per family, whether it gets through — or
//! the first step that stops it, why, and the one-sentence fix.
//!
//! * `gather` — every request, made once (the same bounded [`crate::fetch::Fetcher`] as upstream
//!   discovery; no credentials; same-origin redirects only).
//! * `header` — `WWW-Authenticate` as each client reads it, RFC 6750 scope syntax, CORS lists.
//! * `eval` — the family models, and the per-family walks and the checklist (pure functions of
//!   what was observed), run step by step through the four step files:
//!   `challenge` (the 401 and its `WWW-Authenticate`), `prm` (protected-resource metadata),
//!   `as_metadata` (authorization-server metadata) and `cors` (browser clients); each holds that
//!   step's walk and its checks. `doc` is what the PRM and AS steps share (the candidate loop).
//! * `check` — the check ids as one enum (id, step, the families each can stop, fix), and the
//!   checklist and verdict types.
//! * `render` — the human checklist and the `--json` document (schema `signpost.probe/v1`).
//!
//! Bounds: every request is limited by [`crate::fetch::Limits`] (3 s connect, 10 s total, 256 KiB
//! body) and the whole probe by `--timeout` (default 30 s): a request that would start after the
//! budget is spent is not sent and is reported as such.

mod as_metadata;
mod challenge;
pub mod check;
mod cors;
mod doc;
pub mod eval;
pub mod gather;
pub mod header;
mod prm;
pub mod render;

use crate::lifecycle::Exit;
use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use crate::cli::ProbeArgs;
use crate::fetch::{Fetcher, Limits};
use gather::{Observed, Session};

/// The default `--origin`: the MCP Inspector's local web page.
pub const DEFAULT_ORIGIN: &str = "http://localhost:6274";

/// The client families a verdict is given for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    TsV1,
    TsV2,
    Python,
    Rmcp,
    Vscode,
    Browser,
}

impl Family {
    pub const ALL: [Family; 6] = [
        Family::TsV1,
        Family::TsV2,
        Family::Python,
        Family::Rmcp,
        Family::Vscode,
        Family::Browser,
    ];

    /// The key in `--json`.
    pub fn id(self) -> &'static str {
        match self {
            Family::TsV1 => "ts_v1",
            Family::TsV2 => "ts_v2",
            Family::Python => "python",
            Family::Rmcp => "rmcp",
            Family::Vscode => "vscode",
            Family::Browser => "browser",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::TsV1 => "TypeScript SDK v1",
            Family::TsV2 => "TypeScript SDK v2",
            Family::Python => "Python SDK",
            Family::Rmcp => "rmcp (Rust, Codex)",
            Family::Vscode => "VS Code",
            Family::Browser => "browser (MCP Inspector)",
        }
    }
}

/// The four steps of the walk, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Challenge,
    Prm,
    As,
    Cors,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Challenge, Step::Prm, Step::As, Step::Cors];

    pub fn id(self) -> &'static str {
        match self {
            Step::Challenge => "challenge",
            Step::Prm => "prm",
            Step::As => "as",
            Step::Cors => "cors",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Step::Challenge => "The 401 challenge",
            Step::Prm => "Protected-resource metadata (RFC 9728)",
            Step::As => "Authorization-server metadata (RFC 8414)",
            Step::Cors => "CORS (browser clients)",
        }
    }
}

/// What the probe was asked.
#[derive(Debug, Clone)]
pub struct Options {
    pub url: Url,
    pub origin: String,
    pub expect_issuer: Option<String>,
    /// `--strict`: any warning fails too.
    pub strict: bool,
    pub timeout: Duration,
    pub limits: Limits,
}

/// `signpost probe`.
pub async fn command(args: ProbeArgs) -> Exit {
    let url = match Url::parse(&args.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
        Ok(u) => {
            eprintln!("signpost probe: {u} is not an http(s) URL");
            return Exit::Usage;
        }
        Err(e) => {
            eprintln!("signpost probe: {:?} is not a URL: {e}", args.url);
            return Exit::Usage;
        }
    };
    let origin = args
        .origin
        .clone()
        .unwrap_or_else(|| DEFAULT_ORIGIN.to_owned());
    let options = Options {
        url,
        origin: origin.trim_end_matches('/').to_owned(),
        expect_issuer: args.expect_issuer.clone(),
        strict: args.strict,
        timeout: args.timeout,
        limits: Limits::default(),
    };
    let report = probe(&options).await;
    let out = if args.json {
        let mut s = serde_json::to_string_pretty(&render::json(&report, &options))
            .expect("a JSON value serializes");
        s.push('\n');
        s
    } else {
        use std::io::IsTerminal;
        render::human(&report, &options, std::io::stdout().is_terminal())
    };
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(out.as_bytes())
            .and_then(|()| stdout.flush());
    }
    report.exit_code()
}

/// Everything `probe` found.
#[derive(Debug, Clone)]
pub struct Report {
    pub seen: Observed,
    pub reachable: bool,
    pub checks: Vec<check::Check>,
    pub verdicts: Vec<check::Verdict>,
    pub elapsed: Duration,
    /// `--strict`: a warning fails the probe too.
    pub strict: bool,
}

impl Report {
    /// 0 when every family passes (and, with `--strict`, no check warns), 2 when the endpoint
    /// cannot be reached at all, else 1.
    pub fn exit_code(&self) -> Exit {
        if !self.reachable {
            Exit::Usage
        } else if self.verdicts.iter().all(|v| v.failure.is_none())
            && !(self.strict && self.warnings() > 0)
        {
            Exit::Ok
        } else {
            Exit::Failure
        }
    }

    /// The checks that warn.
    pub fn warnings(&self) -> usize {
        self.checks
            .iter()
            .filter(|c| c.status == check::Status::Warn)
            .count()
    }
}

/// Runs the whole probe: requests (bounded by `options.timeout`), then the evaluation.
pub async fn probe(options: &Options) -> Report {
    let started = Instant::now();
    let fetcher = Fetcher::new(options.limits).allow_http_to_any_host();
    let mut session = Session::new(
        fetcher,
        started + options.timeout,
        options.url.clone(),
        options.origin.clone(),
    );
    let reachable = gather::gather(&mut session).await;
    let seen = session.seen;
    let (checks, verdicts) = eval::evaluate(&seen, options.expect_issuer.as_deref(), reachable);
    Report {
        seen,
        reachable,
        checks,
        verdicts,
        elapsed: started.elapsed(),
        strict: options.strict,
    }
}

/// `scheme://host[:port]` of a URL.
pub fn origin_of(u: &Url) -> String {
    u.origin().ascii_serialization()
}
