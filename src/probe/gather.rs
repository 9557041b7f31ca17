//! Every request the probe makes, made once and remembered. Clients differ in which requests they
//! make (GET or POST, which `MCP-Protocol-Version`, with or without `Origin`), so the probe makes
//! each distinct request once ([`gather`], step by step) and the per-family walks in `eval` read
//! the answers.
//!
//! Nothing here sends credentials: no `Cookie`, no client certificate, and the only
//! `Authorization` ever sent is the obviously fake [`FAKE_BEARER`] (to see how the MCP endpoint
//! answers an invalid token).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use url::Url;

use super::cors::preflight_problem;
use super::header;
use crate::fetch::{FetchError, Fetched, Fetcher};
use crate::well_known;

/// The protocol version modern clients send on discovery requests.
pub const MODERN_VERSION: &str = "2025-11-25";
/// The version rmcp sends.
pub const LEGACY_VERSION: &str = "2024-11-05";
/// What the browser asks to send on the MCP endpoint: what every client sends, then what
/// 2026-07-28 clients add to every Streamable HTTP POST (`Mcp-Param-*` stands as `mcp-param-x`).
pub const MCP_PREFLIGHT_HEADERS: &str =
    "authorization, content-type, mcp-protocol-version, mcp-method, mcp-name, mcp-param-x";
/// The headers of [`MCP_PREFLIGHT_HEADERS`] every client sends.
pub const MCP_BASE_HEADERS: [&str; 3] = ["authorization", "content-type", "mcp-protocol-version"];
/// The headers 2026-07-28 clients add.
pub const MCP_2026_HEADERS: [&str; 3] = ["mcp-method", "mcp-name", "mcp-param-x"];
/// The bearer the probe sends to see how an invalid token is answered: obviously not a token.
pub const FAKE_BEARER: &str = "Bearer signpost-probe-not-a-token";

/// Authorization servers probed at most (only `authorization_servers[0]` of each PRM matters).
const MAX_ISSUERS: usize = 3;

const INITIALIZE: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
    r#""capabilities":{},"clientInfo":{"name":"signpost-probe","version":""#,
    env!("CARGO_PKG_VERSION"),
    r#""}}}"#
);

/// Which request, as a client makes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `POST` an MCP `initialize` without a token.
    Post,
    /// `GET` the MCP URL (rmcp's first request).
    Get,
    /// `GET` a document with `MCP-Protocol-Version: 2025-11-25`.
    Modern,
    /// `GET` a document with `MCP-Protocol-Version: 2024-11-05` (rmcp).
    Legacy,
    /// `GET` the target of a cross-origin redirect (only Python follows one).
    PythonFollow,
    /// Browser: `OPTIONS` preflight of the MCP `POST`.
    McpPreflight,
    /// Browser: the `POST initialize` with `Origin`.
    CorsPost,
    /// Browser: `OPTIONS` preflight of a document `GET` with `mcp-protocol-version`.
    Preflight,
    /// Browser: the document `GET` with `Origin` and `MCP-Protocol-Version`.
    CorsGet,
    /// Browser: the retry without custom headers after a failed preflight.
    CorsSimpleGet,
    /// `POST initialize` with the fake bearer [`FAKE_BEARER`].
    FakeBearer,
    /// Browser: `OPTIONS` preflight of a `POST` with `content-type` (registration, token).
    PostPreflight,
    /// Browser: `GET` with `Origin` only (what a simple cross-origin request's answer carries).
    OriginGet,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::Post => "POST initialize, no token",
            Kind::Get => "GET, no token (as rmcp)",
            Kind::Modern => "GET, MCP-Protocol-Version: 2025-11-25",
            Kind::Legacy => "GET, MCP-Protocol-Version: 2024-11-05 (as rmcp)",
            Kind::PythonFollow => "GET after a cross-origin redirect (only Python follows it)",
            Kind::McpPreflight => "OPTIONS preflight of the POST, with Origin",
            Kind::CorsPost => "POST initialize with Origin",
            Kind::Preflight => "OPTIONS preflight for mcp-protocol-version, with Origin",
            Kind::CorsGet => "GET with Origin and MCP-Protocol-Version",
            Kind::CorsSimpleGet => {
                "GET with Origin, no custom headers (retry after a failed preflight)"
            }
            Kind::FakeBearer => {
                "POST initialize with Authorization: Bearer signpost-probe-not-a-token"
            }
            Kind::PostPreflight => "OPTIONS preflight of a POST with content-type, with Origin",
            Kind::OriginGet => "GET with Origin (no side effects)",
        }
    }
}

/// A response, headers kept as lines in order.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub final_url: Url,
    pub redirects: Vec<(Url, Url)>,
}

impl Resp {
    pub fn all(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn first(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn from(f: Fetched) -> Resp {
        let headers = f
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        Resp {
            status: f.status.as_u16(),
            headers,
            body: f.body,
            final_url: f.url,
            redirects: f.redirects,
        }
    }
}

/// Why a request has no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failed {
    Fetch(FetchError),
    /// The probe's overall time budget ran out before this request.
    Deadline,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Fetch(e) => e.fmt(f),
            Failed::Deadline => f.write_str("not sent: the probe's time budget ran out"),
        }
    }
}

impl Failed {
    pub fn cross_origin_target(&self) -> Option<&str> {
        match self {
            Failed::Fetch(FetchError::CrossOriginRedirect { to, .. }) => Some(to),
            _ => None,
        }
    }
}

pub type Outcome = Result<Resp, Failed>;

/// One request and its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub kind: Kind,
    pub url: Url,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// Everything the probe saw.
#[derive(Debug, Clone)]
pub struct Observed {
    pub mcp: Url,
    pub origin: String,
    pub exchanges: Vec<Exchange>,
    index: HashMap<(Kind, String), usize>,
    /// Resolved addresses of hosts the checks classify (AS hosts, the MCP host).
    pub addrs: HashMap<String, Vec<IpAddr>>,
}

impl Observed {
    pub fn new(mcp: Url, origin: String) -> Observed {
        Observed {
            mcp,
            origin,
            exchanges: Vec::new(),
            index: HashMap::new(),
            addrs: HashMap::new(),
        }
    }

    pub fn get(&self, kind: Kind, url: &Url) -> Option<&Outcome> {
        self.index
            .get(&(kind, url.to_string()))
            .map(|&i| &self.exchanges[i].outcome)
    }

    /// Records an answer (also used by unit tests to build observations by hand).
    pub fn insert(&mut self, kind: Kind, url: &Url, outcome: Outcome, elapsed: Duration) {
        let key = (kind, url.to_string());
        if self.index.contains_key(&key) {
            return;
        }
        self.index.insert(key, self.exchanges.len());
        self.exchanges.push(Exchange {
            kind,
            url: url.clone(),
            outcome,
            elapsed,
        });
    }
}

/// Makes the requests, each at most once, within an overall deadline.
pub struct Session {
    fetcher: Fetcher,
    deadline: Instant,
    pub seen: Observed,
}

impl Session {
    pub fn new(fetcher: Fetcher, deadline: Instant, mcp: Url, origin: String) -> Session {
        Session {
            fetcher,
            deadline,
            seen: Observed::new(mcp, origin),
        }
    }

    /// Makes the request unless it was made already; returns its outcome.
    pub async fn fetch(&mut self, kind: Kind, url: &Url) -> Outcome {
        if let Some(o) = self.seen.get(kind, url) {
            return o.clone();
        }
        let started = Instant::now();
        let remaining = self.deadline.saturating_duration_since(started);
        let outcome = if remaining.is_zero() {
            Err(Failed::Deadline)
        } else {
            let origin = self.seen.origin.clone();
            let (method, headers, body) = request_for(kind, &origin);
            let pairs = headers.pairs();
            let fut = self.fetcher.request(method, url, &pairs, body);
            match tokio::time::timeout(remaining, fut).await {
                Ok(Ok(f)) => Ok(Resp::from(f)),
                Ok(Err(e)) => Err(Failed::Fetch(e)),
                Err(_) => Err(Failed::Deadline),
            }
        };
        self.seen
            .insert(kind, url, outcome.clone(), started.elapsed());
        outcome
    }

    /// Resolves `host` (bounded by the deadline and 2 s) and remembers the addresses.
    pub async fn resolve(&mut self, url: &Url) {
        let Some(host) = url.host_str() else { return };
        if self.seen.addrs.contains_key(host) {
            return;
        }
        let addrs = match url.host() {
            Some(url::Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
            Some(url::Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
            _ => {
                let remaining = self
                    .deadline
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_secs(2));
                let port = url.port_or_known_default().unwrap_or(443);
                match tokio::time::timeout(
                    remaining,
                    tokio::net::lookup_host((host.to_owned(), port)),
                )
                .await
                {
                    Ok(Ok(it)) => it.map(|a| a.ip()).collect(),
                    _ => Vec::new(),
                }
            }
        };
        self.seen.addrs.insert(host.to_owned(), addrs);
    }
}

/// Makes every request any family would make, step by step. Returns false when the MCP URL
/// cannot be reached at all (neither the POST nor the GET got an answer, and not because of a
/// redirect).
pub async fn gather(s: &mut Session) -> bool {
    let Some(answers) = challenge_requests(s).await else {
        return false;
    };
    let issuers = prm_requests(s, &answers).await;
    as_requests(s, &issuers).await;
    true
}

/// The MCP endpoint: POST and GET without a token, the fake bearer, the browser's preflight and
/// POST. Returns the answers a hint could be read from, or `None` when nothing answered.
async fn challenge_requests(s: &mut Session) -> Option<Vec<Resp>> {
    let mcp = s.seen.mcp.clone();
    let post = s.fetch(Kind::Post, &mcp).await;
    let get = s.fetch(Kind::Get, &mcp).await;
    let answered =
        |o: &Outcome| o.is_ok() || o.as_ref().is_err_and(|e| e.cross_origin_target().is_some());
    if !answered(&post) && !answered(&get) {
        return None;
    }
    let _ = s.fetch(Kind::FakeBearer, &mcp).await;
    let _ = s.fetch(Kind::McpPreflight, &mcp).await;
    let cors_post = s.fetch(Kind::CorsPost, &mcp).await;
    s.resolve(&mcp).await;
    Some([post, get, cors_post].into_iter().flatten().collect())
}

/// Protected-resource metadata: every hint any client could read in `answers`, and the
/// well-known URLs, as each family requests them. Returns the `authorization_servers[0]` seen.
async fn prm_requests(s: &mut Session, answers: &[Resp]) -> Vec<Url> {
    let mcp = s.seen.mcp.clone();
    let mut candidates: Vec<Url> = Vec::new();
    for r in answers {
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
    for u in well_known::prm_urls(&mcp) {
        push_unique(&mut candidates, u);
    }
    let mut issuers: Vec<Url> = Vec::new();
    for url in &candidates {
        for kind in [Kind::Modern, Kind::Legacy] {
            let mut o = s.fetch(kind, url).await;
            if let Some(followed) = follow_cross_origin(s, &o).await {
                o = followed;
            }
            if let Some(issuer) = o.ok().and_then(|r| first_issuer(&r)) {
                if issuers.len() < MAX_ISSUERS {
                    push_unique(&mut issuers, issuer);
                }
            }
        }
        cors_get(s, url).await;
    }
    issuers
}

/// Authorization-server metadata of every issuer, at every URL any family tries, and the CORS of
/// the endpoints a browser page POSTs to itself (without a POST).
async fn as_requests(s: &mut Session, issuers: &[Url]) {
    for issuer in issuers {
        s.resolve(issuer).await;
        for url in well_known::as_metadata_urls(issuer, well_known::trimmed_path(issuer), true) {
            let o = s.fetch(Kind::Modern, &url).await;
            let _ = follow_cross_origin(s, &o).await;
            cors_get(s, &url).await;
            if let Ok(r) = &o {
                endpoint_requests(s, r).await;
            }
        }
    }
}

/// The browser's preflights of the registration and token endpoints of an AS metadata answer,
/// and a GET with `Origin` of the token endpoint when its preflight fails.
async fn endpoint_requests(s: &mut Session, r: &Resp) {
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
            && preflight_problem(&pre, &s.seen.origin.clone(), "POST", &["content-type"]).is_some()
        {
            let _ = s.fetch(Kind::OriginGet, &u).await;
        }
    }
}

/// Python's request after a cross-origin redirect (the only family that follows one), when `o`
/// is one.
async fn follow_cross_origin(s: &mut Session, o: &Outcome) -> Option<Outcome> {
    let to = o.as_ref().err().and_then(|e| e.cross_origin_target())?;
    let to = Url::parse(to).ok()?;
    Some(s.fetch(Kind::PythonFollow, &to).await)
}

/// The browser's requests for one document: preflight, the real GET, and the retry without
/// custom headers when the preflight fails.
async fn cors_get(s: &mut Session, url: &Url) {
    let preflight = s.fetch(Kind::Preflight, url).await;
    let _ = s.fetch(Kind::CorsGet, url).await;
    let origin = s.seen.origin.clone();
    if preflight_problem(&preflight, &origin, "GET", &["mcp-protocol-version"]).is_some() {
        let _ = s.fetch(Kind::CorsSimpleGet, url).await;
    }
}

fn push_unique(list: &mut Vec<Url>, u: Url) {
    if !list.contains(&u) {
        list.push(u);
    }
}

fn first_issuer(r: &Resp) -> Option<Url> {
    if r.status != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    Url::parse(v.get("authorization_servers")?.get(0)?.as_str()?).ok()
}

fn request_for(kind: Kind, origin: &str) -> (Method, Vec<(&'static str, String)>, Bytes) {
    let json = ("accept", "application/json".to_owned());
    let post_headers = |with_origin: bool| {
        let mut h = vec![
            ("content-type", "application/json".to_owned()),
            ("accept", "application/json, text/event-stream".to_owned()),
        ];
        if with_origin {
            h.push(("origin", origin.to_owned()));
        }
        h
    };
    match kind {
        Kind::Post => (
            Method::POST,
            post_headers(false),
            Bytes::from_static(INITIALIZE.as_bytes()),
        ),
        Kind::CorsPost => (
            Method::POST,
            post_headers(true),
            Bytes::from_static(INITIALIZE.as_bytes()),
        ),
        Kind::FakeBearer => {
            let mut h = post_headers(false);
            h.push(("authorization", FAKE_BEARER.to_owned()));
            (Method::POST, h, Bytes::from_static(INITIALIZE.as_bytes()))
        }
        Kind::PostPreflight => (
            Method::OPTIONS,
            vec![
                ("origin", origin.to_owned()),
                ("access-control-request-method", "POST".to_owned()),
                ("access-control-request-headers", "content-type".to_owned()),
            ],
            Bytes::new(),
        ),
        Kind::OriginGet => (
            Method::GET,
            vec![("origin", origin.to_owned())],
            Bytes::new(),
        ),
        Kind::Get => (
            Method::GET,
            vec![
                ("accept", "text/event-stream".to_owned()),
                ("mcp-protocol-version", LEGACY_VERSION.to_owned()),
            ],
            Bytes::new(),
        ),
        Kind::Modern | Kind::PythonFollow => (
            Method::GET,
            vec![json, ("mcp-protocol-version", MODERN_VERSION.to_owned())],
            Bytes::new(),
        ),
        Kind::Legacy => (
            Method::GET,
            vec![json, ("mcp-protocol-version", LEGACY_VERSION.to_owned())],
            Bytes::new(),
        ),
        Kind::McpPreflight => (
            Method::OPTIONS,
            vec![
                ("origin", origin.to_owned()),
                ("access-control-request-method", "POST".to_owned()),
                (
                    "access-control-request-headers",
                    MCP_PREFLIGHT_HEADERS.to_owned(),
                ),
            ],
            Bytes::new(),
        ),
        Kind::Preflight => (
            Method::OPTIONS,
            vec![
                ("origin", origin.to_owned()),
                ("access-control-request-method", "GET".to_owned()),
                (
                    "access-control-request-headers",
                    "mcp-protocol-version".to_owned(),
                ),
            ],
            Bytes::new(),
        ),
        Kind::CorsGet => (
            Method::GET,
            vec![
                json,
                ("origin", origin.to_owned()),
                ("mcp-protocol-version", MODERN_VERSION.to_owned()),
            ],
            Bytes::new(),
        ),
        Kind::CorsSimpleGet => (
            Method::GET,
            vec![("origin", origin.to_owned())],
            Bytes::new(),
        ),
    }
}

// Header slices for `Fetcher::request` (it takes `&[(&str, &str)]`).
trait AsPairs {
    fn pairs(&self) -> Vec<(&str, &str)>;
}

impl AsPairs for Vec<(&'static str, String)> {
    fn pairs(&self) -> Vec<(&str, &str)> {
        self.iter().map(|(k, v)| (*k, v.as_str())).collect()
    }
}
