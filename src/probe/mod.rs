//! `signpost probe <MCP URL>`: walks the OAuth discovery chain of a deployed MCP endpoint the way
//! each real client family does (CLIENTS.md) and says, per family, whether it gets through — or
//! the first step that stops it, why, and the one-sentence fix.
//!
//! * `gather` — every request, made once (the same bounded [`crate::fetch::Fetcher`] as upstream
//!   discovery; no credentials; same-origin redirects only).
//! * `header` — `WWW-Authenticate` as each client reads it, RFC 6750 scope syntax, CORS lists.
//! * `eval` — the per-family walks (pure functions of what was observed) and the checklist.
//! * `render` — the human checklist and the `--json` document (schema `signpost.probe/v1`).
//!
//! Bounds: every request is limited by [`crate::fetch::Limits`] (3 s connect, 10 s total, 256 KiB
//! body) and the whole probe by `--timeout` (default 30 s): a request that would start after the
//! budget is spent is not sent and is reported as such.

pub mod eval;
pub mod gather;
pub mod header;
pub mod render;

use crate::lifecycle::Exit;
use std::time::{Duration, Instant};

use serde::Serialize;
use url::Url;

use crate::cli::ProbeArgs;
use crate::fetch::{Fetcher, Limits};
use gather::{Kind, Observed, Session};

/// The default `--origin`: the MCP Inspector's local web page.
pub const DEFAULT_ORIGIN: &str = "http://localhost:6274";
/// The default overall time budget.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Authorization servers probed at most (only `authorization_servers[0]` of each PRM matters).
const MAX_ISSUERS: usize = 3;

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
    pub checks: Vec<eval::Check>,
    pub verdicts: Vec<eval::Verdict>,
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
            .filter(|c| c.status == eval::Status::Warn)
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
    let reachable = gather(&mut session).await;
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

/// Makes every request any family would make. Returns false when the MCP URL cannot be reached
/// at all (neither the POST nor the GET got an answer, and not because of a redirect).
async fn gather(s: &mut Session) -> bool {
    let mcp = s.seen.mcp.clone();
    let post = s.fetch(Kind::Post, &mcp).await;
    let get = s.fetch(Kind::Get, &mcp).await;
    let answered = |o: &gather::Outcome| {
        o.is_ok() || o.as_ref().is_err_and(|e| e.cross_origin_target().is_some())
    };
    if !answered(&post) && !answered(&get) {
        return false;
    }
    let _ = s.fetch(Kind::FakeBearer, &mcp).await;
    let _ = s.fetch(Kind::McpPreflight, &mcp).await;
    let cors_post = s.fetch(Kind::CorsPost, &mcp).await;
    s.resolve(&mcp).await;

    // Protected-resource metadata: every hint any client could read, and the well-known URLs.
    let mut candidates: Vec<Url> = Vec::new();
    for r in [&post, &get, &cors_post].into_iter().flatten() {
        let joined = r.all("www-authenticate").join(", ");
        for raw in header::all_resource_metadata(&header::parse_challenges(&joined))
            .into_iter()
            .chain(header::any_resource_metadata(&joined))
            .chain(header::ts_resource_metadata(&joined))
        {
            if let Ok(u) = Url::parse(&raw) {
                push_unique(&mut candidates, u);
            }
        }
    }
    for u in well_known_prm(&mcp) {
        push_unique(&mut candidates, u);
    }
    let mut issuers: Vec<Url> = Vec::new();
    for url in &candidates {
        for kind in [Kind::Modern, Kind::Legacy] {
            let mut o = s.fetch(kind, url).await;
            if let Some(to) = o.as_ref().err().and_then(|e| e.cross_origin_target()) {
                if let Ok(to) = Url::parse(to) {
                    o = s.fetch(Kind::PythonFollow, &to).await;
                }
            }
            if let Some(issuer) = o.ok().and_then(|r| first_issuer(&r)) {
                if issuers.len() < MAX_ISSUERS {
                    push_unique(&mut issuers, issuer);
                }
            }
        }
        cors_get(s, url).await;
    }

    // Authorization-server metadata of every `authorization_servers[0]` seen.
    for issuer in &issuers {
        s.resolve(issuer).await;
        for url in as_metadata_urls(issuer, true) {
            let o = s.fetch(Kind::Modern, &url).await;
            if let Some(to) = o.as_ref().err().and_then(|e| e.cross_origin_target()) {
                if let Ok(to) = Url::parse(to) {
                    let _ = s.fetch(Kind::PythonFollow, &to).await;
                }
            }
            cors_get(s, &url).await;
            // The endpoints a browser page POSTs to itself: their CORS, without a POST.
            if let Ok(r) = &o {
                let doc: Option<serde_json::Value> = (r.status == 200)
                    .then(|| serde_json::from_slice(&r.body).ok())
                    .flatten();
                for key in ["registration_endpoint", "token_endpoint"] {
                    let Some(u) = doc
                        .as_ref()
                        .and_then(|d| d.get(key)?.as_str())
                        .and_then(|e| Url::parse(e).ok())
                    else {
                        continue;
                    };
                    let pre = s.fetch(Kind::PostPreflight, &u).await;
                    if key == "token_endpoint"
                        && eval::preflight_problem(
                            &pre,
                            &s.seen.origin.clone(),
                            "POST",
                            &["content-type"],
                        )
                        .is_some()
                    {
                        let _ = s.fetch(Kind::OriginGet, &u).await;
                    }
                }
            }
        }
    }
    true
}

/// The browser's requests for one document: preflight, the real GET, and the retry without
/// custom headers when the preflight fails.
async fn cors_get(s: &mut Session, url: &Url) {
    let preflight = s.fetch(Kind::Preflight, url).await;
    let _ = s.fetch(Kind::CorsGet, url).await;
    let origin = s.seen.origin.clone();
    if eval::preflight_problem(&preflight, &origin, "GET", &["mcp-protocol-version"]).is_some() {
        let _ = s.fetch(Kind::CorsSimpleGet, url).await;
    }
}

fn push_unique(list: &mut Vec<Url>, u: Url) {
    if !list.contains(&u) {
        list.push(u);
    }
}

fn first_issuer(r: &gather::Resp) -> Option<Url> {
    if r.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    Url::parse(v.get("authorization_servers")?.get(0)?.as_str()?).ok()
}

/// `scheme://host[:port]` of a URL.
pub fn origin_of(u: &Url) -> String {
    u.origin().ascii_serialization()
}

/// The MCP URL's path without one trailing `/` (`""` for the root).
pub(crate) fn trimmed_path(u: &Url) -> &str {
    let p = u.path();
    p.strip_suffix('/').unwrap_or(p)
}

fn join_origin(u: &Url, path: &str) -> Url {
    let mut out = u.clone();
    out.set_path(path);
    out.set_query(None);
    out.set_fragment(None);
    out
}

/// RFC 9728 §3.1: `/.well-known/oauth-protected-resource` inserted before the path.
pub fn prm_path_inserted(mcp: &Url) -> Url {
    join_origin(
        mcp,
        &format!("/.well-known/oauth-protected-resource{}", trimmed_path(mcp)),
    )
}

pub fn prm_root(mcp: &Url) -> Url {
    join_origin(mcp, "/.well-known/oauth-protected-resource")
}

/// rmcp's extra form: `<path>/.well-known/oauth-protected-resource`.
pub fn prm_suffixed(mcp: &Url) -> Url {
    join_origin(
        mcp,
        &format!("{}/.well-known/oauth-protected-resource", trimmed_path(mcp)),
    )
}

/// Path-inserted, rmcp's suffixed form, root (deduplicated).
pub fn well_known_prm(mcp: &Url) -> Vec<Url> {
    let mut out = Vec::new();
    for u in [prm_path_inserted(mcp), prm_suffixed(mcp), prm_root(mcp)] {
        push_unique(&mut out, u);
    }
    out
}

/// The AS metadata URLs for an issuer, in MCP order; `rmcp_root` adds the root
/// `oauth-authorization-server` form rmcp also tries for an issuer with a path.
pub fn as_metadata_urls(issuer: &Url, rmcp_root: bool) -> Vec<Url> {
    let path = trimmed_path(issuer);
    let mut out = Vec::new();
    if path.is_empty() {
        out.push(join_origin(
            issuer,
            "/.well-known/oauth-authorization-server",
        ));
        out.push(join_origin(issuer, "/.well-known/openid-configuration"));
    } else {
        out.push(join_origin(
            issuer,
            &format!("/.well-known/oauth-authorization-server{path}"),
        ));
        out.push(join_origin(
            issuer,
            &format!("/.well-known/openid-configuration{path}"),
        ));
        out.push(join_origin(
            issuer,
            &format!("{path}/.well-known/openid-configuration"),
        ));
        if rmcp_root {
            out.push(join_origin(
                issuer,
                "/.well-known/oauth-authorization-server",
            ));
        }
    }
    out
}

/// Whether a URL is one of the OpenID Connect discovery forms.
pub fn is_oidc_url(u: &Url) -> bool {
    u.path().contains("/.well-known/openid-configuration")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn prm_urls() {
        let m = u("https://gw.example.com/mcp/x/mcp?a=b");
        assert_eq!(
            prm_path_inserted(&m).as_str(),
            "https://gw.example.com/.well-known/oauth-protected-resource/mcp/x/mcp"
        );
        assert_eq!(
            prm_suffixed(&m).as_str(),
            "https://gw.example.com/mcp/x/mcp/.well-known/oauth-protected-resource"
        );
        assert_eq!(well_known_prm(&u("https://gw/")).len(), 1);
    }

    #[test]
    fn as_urls_in_mcp_order() {
        let with_path: Vec<String> = as_metadata_urls(&u("https://as/realms/eng"), true)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            with_path,
            [
                "https://as/.well-known/oauth-authorization-server/realms/eng",
                "https://as/.well-known/openid-configuration/realms/eng",
                "https://as/realms/eng/.well-known/openid-configuration",
                "https://as/.well-known/oauth-authorization-server",
            ]
        );
        let root: Vec<String> = as_metadata_urls(&u("https://x.auth0.com/"), true)
            .iter()
            .map(Url::to_string)
            .collect();
        assert_eq!(
            root,
            [
                "https://x.auth0.com/.well-known/oauth-authorization-server",
                "https://x.auth0.com/.well-known/openid-configuration",
            ]
        );
    }
}
