//! `signpost probe` against small local deployments, each breaking one rule of CLIENTS.md, and
//! against signpost behind the real nginx config (deploy/nginx/signpost.conf, templated for ports
//! only, read-only). Every test runs the real binary with `--json` and asserts the exact verdict
//! of every client family, the status of the rule's check, and the exit code.
//!
//! A `Site` is a raw HTTP/1.1 responder on 127.0.0.1 serving an MCP endpoint (`/mcp/x/mcp`),
//! protected-resource metadata and authorization-server metadata (issuer `<base>/realms/eng`);
//! `Knobs::default()` is a deployment every family accepts, and each test changes one knob.

mod common;
#[path = "common/e2e.rs"]
mod e2e;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MCP_PATH: &str = "/mcp/x/mcp";
const WELL_KNOWN_PRM: &str = "/.well-known/oauth-protected-resource/mcp/x/mcp";
const AS_PATH: &str = "/.well-known/oauth-authorization-server/realms/eng";
const OIDC_PATH: &str = "/.well-known/openid-configuration/realms/eng";

// === a configurable deployment ===

#[derive(Debug, Clone)]
struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Default)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Resp {
    fn new(status: u16) -> Resp {
        Resp {
            status,
            ..Resp::default()
        }
    }
    fn h(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_owned(), v.to_owned()));
        self
    }
    fn json(self, v: &Value) -> Resp {
        let mut r = self.h("Content-Type", "application/json");
        r.body = v.to_string();
        r
    }
}

/// One knob per rule; the default is a deployment every client family accepts.
#[derive(Clone)]
struct Knobs {
    post_status: u16,
    get_status: u16,
    /// The challenge lines; `{base}`, `{other}` and `{hint}` are replaced.
    challenge: Vec<String>,
    hint_path: String,
    /// Serve the PRM at the path-inserted well-known URL too.
    well_known_prm: bool,
    /// Status for the path-inserted PRM URL instead of the document.
    well_known_status: Option<u16>,
    /// Redirect the path-inserted PRM URL to the other origin.
    well_known_cross_redirect: bool,
    /// Redirect the path-inserted PRM URL to `/prm/moved` (same origin).
    well_known_same_redirect: bool,
    /// A PRM at the root well-known URL.
    root_prm: Option<Value>,
    prm: Value,
    prm_raw_body: Option<String>,
    prm_content_type: String,
    prm_legacy_400: bool,
    /// The AS metadata at the oauth-authorization-server URL (`None`: 404).
    as_oauth: Option<Value>,
    as_oauth_status: Option<u16>,
    /// The AS metadata at the path-inserted openid-configuration URL (`None`: 404).
    as_oidc: Option<Value>,
    mcp_allow_origin: bool,
    mcp_expose: bool,
    mcp_preflight: bool,
    doc_allow_origin: bool,
    doc_preflight: bool,
    as_allow_origin: bool,
    /// CORS preflights of the IdP's registration and token endpoints pass.
    idp_cors: bool,
    /// The token endpoint's answers carry Access-Control-Allow-Origin.
    token_allow_origin: bool,
    /// What the MCP endpoint answers a POST carrying an `Authorization` header (`None`: as without).
    bearer_status: Option<u16>,
    /// The MCP endpoint's preflight allows the 2026-07-28 headers (mcp-method, …) too.
    mcp_preflight_2026: bool,
}

fn good_prm() -> Value {
    json!({
        "resource": "{base}/mcp/x/mcp",
        "authorization_servers": ["{base}/realms/eng"],
        "scopes_supported": ["mcp:tools"],
        "bearer_methods_supported": ["header"],
    })
}

fn good_as() -> Value {
    json!({
        "issuer": "{base}/realms/eng",
        "authorization_endpoint": "{base}/realms/eng/auth",
        "token_endpoint": "{base}/realms/eng/token",
        "registration_endpoint": "{base}/realms/eng/register",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    })
}

fn full_oidc() -> Value {
    let mut v = good_as();
    v["jwks_uri"] = json!("{base}/realms/eng/certs");
    v["subject_types_supported"] = json!(["public"]);
    v["id_token_signing_alg_values_supported"] = json!(["RS256"]);
    v
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            post_status: 401,
            get_status: 401,
            challenge: vec![r#"Bearer resource_metadata="{hint}", scope="mcp:tools""#.to_owned()],
            hint_path: WELL_KNOWN_PRM.to_owned(),
            well_known_prm: true,
            well_known_status: None,
            well_known_cross_redirect: false,
            well_known_same_redirect: false,
            root_prm: None,
            prm: good_prm(),
            prm_raw_body: None,
            prm_content_type: "application/json".to_owned(),
            prm_legacy_400: false,
            as_oauth: Some(good_as()),
            as_oauth_status: None,
            as_oidc: None,
            mcp_allow_origin: true,
            mcp_expose: true,
            mcp_preflight: true,
            doc_allow_origin: true,
            doc_preflight: true,
            as_allow_origin: true,
            idp_cors: true,
            token_allow_origin: true,
            bearer_status: None,
            mcp_preflight_2026: true,
        }
    }
}

impl Knobs {
    /// The PRM only at a non-standard hint URL: the hint is the only way to it.
    fn hint_only() -> Knobs {
        Knobs {
            hint_path: "/prm/x".to_owned(),
            well_known_prm: false,
            ..Knobs::default()
        }
    }
}

struct Ctx {
    base: String,
    other: String,
}

fn subst(v: &Value, c: &Ctx) -> Value {
    match v {
        Value::String(s) => {
            Value::String(s.replace("{base}", &c.base).replace("{other}", &c.other))
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| subst(x, c)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), subst(x, c))).collect())
        }
        x => x.clone(),
    }
}

fn cors(mut r: Resp, on: bool) -> Resp {
    if on {
        r = r.h("Access-Control-Allow-Origin", "*");
    }
    r
}

fn preflight(on: bool) -> Resp {
    preflight_allowing(
        on,
        "authorization, content-type, mcp-protocol-version, mcp-method, mcp-name, mcp-param-x",
    )
}

fn preflight_allowing(on: bool, headers: &str) -> Resp {
    if !on {
        return Resp::new(405);
    }
    Resp::new(204)
        .h("Access-Control-Allow-Origin", "*")
        .h("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        .h("Access-Control-Allow-Headers", headers)
}

fn not_found(allow_origin: bool) -> Resp {
    cors(Resp::new(404), allow_origin).json(&json!({"error": "not_found"}))
}

/// The main site.
fn serve_main(k: &Knobs, req: &Req, c: &Ctx) -> Resp {
    let path = req.path.split('?').next().unwrap_or("");
    let options = req.method == "OPTIONS";
    if path == MCP_PATH {
        if options {
            return match (k.mcp_preflight, k.mcp_preflight_2026) {
                (false, _) => Resp::new(401),
                (true, true) => preflight(true),
                (true, false) => {
                    preflight_allowing(true, "authorization, content-type, mcp-protocol-version")
                }
            };
        }
        if let (Some(status), Some(_)) = (k.bearer_status, req.header("authorization")) {
            return Resp::new(status).json(&json!({"error": "No connected db."}));
        }
        let status = if req.method == "GET" {
            k.get_status
        } else {
            k.post_status
        };
        let mut r = Resp::new(status);
        if status == 401 {
            let hint = format!("{}{}", c.base, k.hint_path);
            for line in &k.challenge {
                let v = line
                    .replace("{hint}", &hint)
                    .replace("{base}", &c.base)
                    .replace("{other}", &c.other);
                r = r.h("WWW-Authenticate", &v);
            }
        }
        if k.mcp_allow_origin {
            r = r.h("Access-Control-Allow-Origin", "*");
        }
        if k.mcp_expose {
            r = r.h(
                "Access-Control-Expose-Headers",
                "WWW-Authenticate, Mcp-Session-Id",
            );
        }
        return r.json(&json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "unauthorized"}}));
    }
    if options {
        if path.ends_with("/register") || path.ends_with("/token") {
            return preflight(k.idp_cors);
        }
        return preflight(k.doc_preflight);
    }
    let prm_doc = || {
        if k.prm_legacy_400 && req.header("mcp-protocol-version") == Some("2024-11-05") {
            return cors(Resp::new(400), k.doc_allow_origin)
                .json(&json!({"error": "unsupported protocol version"}));
        }
        let mut r = cors(Resp::new(200), k.doc_allow_origin).h("Content-Type", &k.prm_content_type);
        r.body = k
            .prm_raw_body
            .clone()
            .unwrap_or_else(|| subst(&k.prm, c).to_string());
        r
    };
    if path == WELL_KNOWN_PRM {
        if k.well_known_cross_redirect {
            return Resp::new(302).h("Location", &format!("{}{WELL_KNOWN_PRM}", c.other));
        }
        if k.well_known_same_redirect {
            return Resp::new(302).h("Location", "/prm/moved");
        }
        if let Some(s) = k.well_known_status {
            return cors(Resp::new(s), k.doc_allow_origin).json(&json!({"error": "boom"}));
        }
        if k.well_known_prm {
            return prm_doc();
        }
    }
    if path == k.hint_path || (k.well_known_same_redirect && path == "/prm/moved") {
        return prm_doc();
    }
    if path == "/.well-known/oauth-protected-resource" {
        if let Some(root) = &k.root_prm {
            return cors(Resp::new(200), k.doc_allow_origin).json(&subst(root, c));
        }
    }
    if path == AS_PATH {
        if let Some(s) = k.as_oauth_status {
            return cors(Resp::new(s), k.as_allow_origin).json(&json!({"error": "boom"}));
        }
        if let Some(doc) = &k.as_oauth {
            return cors(Resp::new(200), k.as_allow_origin).json(&subst(doc, c));
        }
    }
    if path == OIDC_PATH {
        if let Some(doc) = &k.as_oidc {
            return cors(Resp::new(200), k.as_allow_origin).json(&subst(doc, c));
        }
    }
    if path.ends_with("/token") {
        return not_found(k.doc_allow_origin && k.token_allow_origin);
    }
    not_found(k.doc_allow_origin)
}

/// The other origin: serves the main site's PRM (resource on the main origin) at any path.
fn serve_other(req: &Req, c: &Ctx) -> Resp {
    if req.method == "OPTIONS" {
        return preflight(true);
    }
    let main = Ctx {
        base: c.other.clone(),
        other: c.base.clone(),
    };
    cors(Resp::new(200), true).json(&subst(&good_prm(), &main))
}

type Handler = Arc<dyn Fn(&Req, &Ctx) -> Option<Resp> + Send + Sync>;

/// A running responder. `None` from the handler holds the connection open without answering.
struct Site {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Req>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Site {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Site {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    async fn start(listener: TcpListener, other: String, handler: Handler) -> Site {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = requests.clone();
        let ctx = Arc::new(Ctx {
            base: format!("http://127.0.0.1:{}", addr.port()),
            other,
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                let (handler, log, ctx) = (handler.clone(), log.clone(), ctx.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            continue;
                        };
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        let mut lines = head.split("\r\n");
                        let mut first = lines.next().unwrap_or("").split(' ');
                        let method = first.next().unwrap_or("").to_owned();
                        let path = first.next().unwrap_or("").to_owned();
                        let headers: Vec<(String, String)> = lines
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                            .collect();
                        let req = Req {
                            method,
                            path,
                            headers,
                        };
                        let len: usize = req
                            .header("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0);
                        while buf.len() < end + 4 + len {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        buf.drain(..end + 4 + len);
                        log.lock().unwrap().push(req.clone());
                        let Some(resp) = handler(&req, &ctx) else {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                            return;
                        };
                        let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
                        for (k, v) in &resp.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        let body = if req.method == "HEAD" {
                            ""
                        } else {
                            resp.body.as_str()
                        };
                        out.push_str(&format!(
                            "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            resp.body.len()
                        ));
                        let _ = conn.write_all(out.as_bytes()).await;
                        let _ = conn.shutdown().await;
                        return;
                    }
                });
            }
        });
        Site {
            addr,
            requests,
            task,
        }
    }
}

/// The main site with `knobs` and the other origin it may point at.
struct Deployment {
    main: Site,
    other: Site,
}

impl Deployment {
    async fn start(knobs: Knobs) -> Deployment {
        let main_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let main_base = format!("http://127.0.0.1:{}", main_l.local_addr().unwrap().port());
        let other_base = format!("http://127.0.0.1:{}", other_l.local_addr().unwrap().port());
        let other = Site::start(
            other_l,
            main_base,
            Arc::new(|r: &Req, c: &Ctx| Some(serve_other(r, c))),
        )
        .await;
        let knobs = Arc::new(knobs);
        let main = Site::start(
            main_l,
            other_base,
            Arc::new(move |r: &Req, c: &Ctx| Some(serve_main(&knobs, r, c))),
        )
        .await;
        Deployment { main, other }
    }

    fn url(&self) -> String {
        format!("{}{MCP_PATH}", self.main.base())
    }

    fn all_requests(&self) -> Vec<Req> {
        let mut v = self.main.requests.lock().unwrap().clone();
        v.extend(self.other.requests.lock().unwrap().clone());
        v
    }
}

// === running the probe ===

struct Run {
    code: i32,
    stdout: String,
    elapsed: Duration,
}

async fn run_probe(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
            .arg("probe")
            .args(&args)
            .env("SIGNPOST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .expect("run signpost probe");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            elapsed: started.elapsed(),
        }
    })
    .await
    .unwrap()
}

async fn probe_json(url: &str, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![url.to_owned(), "--json".to_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let run = run_probe(args).await;
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("probe printed no JSON ({e}):\n{}", run.stdout));
    assert_eq!(
        v["exit_code"], run.code,
        "exit_code in the JSON is the exit code"
    );
    (run.code, v)
}

/// `ts_v1:pass ts_v2:prm.resource …`: every family's verdict in one comparable line.
fn verdicts(v: &Value) -> String {
    ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"]
        .iter()
        .map(|f| {
            let x = &v["verdicts"][f];
            match x["result"].as_str() {
                Some("pass") => format!("{f}:pass"),
                _ => format!("{f}:{}", x["check"].as_str().unwrap_or("?")),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The expected line: families not named pass.
fn want(failing: &[(&str, &str)]) -> String {
    let m: HashMap<&str, &str> = failing.iter().copied().collect();
    ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"]
        .iter()
        .map(|f| format!("{f}:{}", m.get(f).copied().unwrap_or("pass")))
        .collect::<Vec<_>>()
        .join(" ")
}

fn check_status<'a>(v: &'a Value, id: &str) -> &'a str {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {v:#}"))["status"]
        .as_str()
        .unwrap()
}

/// Runs the probe on a deployment with `knobs`; asserts verdicts, the check's status, the exit.
async fn case(
    knobs: Knobs,
    extra: &[&str],
    failing: &[(&str, &str)],
    check: (&str, &str),
) -> Value {
    let d = Deployment::start(knobs).await;
    let (code, v) = probe_json(&d.url(), extra).await;
    assert_eq!(verdicts(&v), want(failing), "verdicts; report:\n{v:#}");
    assert_eq!(
        check_status(&v, check.0),
        check.1,
        "status of {}; report:\n{v:#}",
        check.0
    );
    assert_eq!(code, if failing.is_empty() { 0 } else { 1 }, "exit code");
    assert_no_credentials(&d.all_requests());
    v
}

/// No credential was sent: no cookie, and no `Authorization` but the documented fake bearer.
fn assert_no_credentials(reqs: &[Req]) {
    assert!(!reqs.is_empty());
    for r in reqs {
        for (k, v) in &r.headers {
            let k = k.to_ascii_lowercase();
            if k == "authorization" && v == "Bearer signpost-probe-not-a-token" {
                continue;
            }
            assert!(
                !matches!(
                    k.as_str(),
                    "authorization" | "cookie" | "proxy-authorization"
                ),
                "the probe sent {k} on {} {}",
                r.method,
                r.path
            );
        }
    }
}

const TS: [&str; 3] = ["ts_v1", "ts_v2", "browser"];

fn each<'a>(families: &[&'a str], check: &'a str) -> Vec<(&'a str, &'a str)> {
    families.iter().map(|f| (*f, check)).collect()
}

// === the good deployments ===

#[tokio::test(flavor = "multi_thread")]
async fn good_deployment_passes_every_family_and_sends_no_credentials() {
    let d = Deployment::start(Knobs::default()).await;
    let (code, v) = probe_json(&d.url(), &[]).await;
    assert_eq!(verdicts(&v), want(&[]), "{v:#}");
    assert_eq!(code, 0);
    assert_eq!(v["schema"], "signpost.probe/v1");
    assert_eq!(v["reachable"], true);
    let base = d.main.base();
    for f in ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"] {
        assert_eq!(v["verdicts"][f]["prm"], format!("{base}{WELL_KNOWN_PRM}"));
        assert_eq!(v["verdicts"][f]["as_metadata"], format!("{base}{AS_PATH}"));
        assert_eq!(v["verdicts"][f]["issuer"], format!("{base}/realms/eng"));
    }
    for c in v["checks"].as_array().unwrap() {
        assert!(
            !matches!(c["status"].as_str(), Some("fail" | "warn")),
            "good deployment has {c:#}"
        );
    }
    assert_no_credentials(&d.all_requests());

    // The human checklist: no colour when stdout is not a terminal.
    let run = run_probe(vec![d.url()]).await;
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("all 6 client families pass (exit 0)"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains('\x1b'),
        "colour on a pipe:\n{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hint_only_metadata_passes_every_family() {
    case(Knobs::hint_only(), &[], &[], ("prm.hint", "pass")).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn same_origin_redirect_is_followed() {
    case(
        Knobs {
            challenge: vec![r#"Bearer realm="gw""#.to_owned()],
            well_known_same_redirect: true,
            ..Knobs::default()
        },
        &[],
        // A browser page follows no redirect during discovery, not even a same-origin one.
        &[("browser", "cors.redirect")],
        ("prm.redirect", "pass"),
    )
    .await;
}

// === one step past discovery, and the 2026-07-28 browser ===

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_answering_an_invalid_token_with_400_fails_every_family() {
    let v = case(
        Knobs {
            bearer_status: Some(400),
            ..Knobs::default()
        },
        &[],
        &each(
            &["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"],
            "challenge.invalid_token",
        ),
        ("challenge.invalid_token", "fail"),
    )
    .await;
    let reason = v["verdicts"]["ts_v1"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("400") && reason.contains("No connected db."),
        "{reason}"
    );
    // The fake bearer is the only Authorization ever sent, on one request.
    let fake: Vec<&Value> = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["kind"] == "fake_bearer")
        .collect();
    assert_eq!(fake.len(), 1, "{v:#}");
    assert_eq!(fake[0]["status"], 400);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idp_without_cors_on_registration_and_token_fails_the_browser() {
    case(
        Knobs {
            idp_cors: false,
            ..Knobs::default()
        },
        &[],
        &[("browser", "cors.registration")],
        ("cors.registration", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_endpoint_without_any_cors_fails_the_browser() {
    // The token request needs no preflight when its answers carry Allow-Origin: only both gone
    // stop the browser.
    let v = case(
        Knobs {
            idp_cors: false,
            token_allow_origin: false,
            ..Knobs::default()
        },
        &[],
        &[("browser", "cors.registration")],
        ("cors.token", "fail"),
    )
    .await;
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "cors.token")
        .unwrap();
    assert!(
        c["summary"].as_str().unwrap().contains("only the IdP"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_preflight_without_the_2026_headers_is_a_warning() {
    case(
        Knobs {
            mcp_preflight_2026: false,
            ..Knobs::default()
        },
        &[],
        &[],
        ("cors.mcp_preflight", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn strict_fails_on_any_warning() {
    let d = Deployment::start(Knobs {
        prm_content_type: "text/plain".into(),
        ..Knobs::default()
    })
    .await;
    let (code, v) = probe_json(&d.url(), &[]).await;
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(verdicts(&v), want(&[]));
    let (code, v) = probe_json(&d.url(), &["--strict"]).await;
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["strict"], true);
    assert_eq!(v["exit_code"], 1);
    assert!(v["warnings"].as_u64().unwrap() >= 1, "{v:#}");
    let run = run_probe(vec![d.url(), "--strict".into()]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("warn (--strict) (exit 1)"),
        "{}",
        run.stdout
    );
    // A deployment without warnings passes --strict.
    let good = Deployment::start(Knobs::default()).await;
    let (code, v) = probe_json(&good.url(), &["--strict"]).await;
    assert_eq!(code, 0, "{v:#}");
}

// === reachability and bounds ===

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_endpoint_exits_2() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, v) = probe_json(&format!("http://127.0.0.1:{port}/mcp"), &[]).await;
    assert_eq!(code, 2);
    assert_eq!(v["reachable"], false);
    assert_eq!(
        verdicts(&v),
        want(&each(
            &["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"],
            "challenge.status"
        ))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_endpoint_never_hangs_the_probe() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = Site::start(l, String::new(), Arc::new(|_: &Req, _: &Ctx| None)).await;
    let run = run_probe(vec![
        format!("{}{MCP_PATH}", site.base()),
        "--json".into(),
        "--timeout".into(),
        "2s".into(),
    ])
    .await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.elapsed < Duration::from_secs(6),
        "took {:?}",
        run.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_redirect_of_the_mcp_url_is_not_followed() {
    let other = Deployment::start(Knobs::default()).await;
    let target = other.url();
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let site = Site::start(
        l,
        String::new(),
        Arc::new(move |r: &Req, _: &Ctx| {
            Some(if r.path == MCP_PATH {
                Resp::new(307).h("Location", &target)
            } else {
                not_found(true)
            })
        }),
    )
    .await;
    let (code, v) = probe_json(&format!("{}{MCP_PATH}", site.base()), &[]).await;
    assert_eq!(code, 1);
    assert_eq!(
        verdicts(&v),
        want(&each(
            &["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"],
            "challenge.status"
        ))
    );
    assert!(
        other.all_requests().is_empty(),
        "the probe followed a cross-origin redirect"
    );
}

// === 1. the challenge ===

#[tokio::test(flavor = "multi_thread")]
async fn no_401_without_a_token() {
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            post_status: 200,
            get_status: 200,
            ..Knobs::default()
        },
        &[],
        &each(&all, "challenge.status"),
        ("challenge.status", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_405_costs_rmcp_the_hint() {
    case(
        Knobs {
            get_status: 405,
            ..Knobs::hint_only()
        },
        &[],
        &[("rmcp", "challenge.get")],
        ("challenge.get", "fail"),
    )
    .await;
    // With the metadata at the well-known URL rmcp's fallback finds it: a warning only.
    case(
        Knobs {
            get_status: 405,
            ..Knobs::default()
        },
        &[],
        &[],
        ("challenge.get", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_www_authenticate_relies_on_the_well_known_fallback() {
    case(
        Knobs {
            challenge: vec![],
            ..Knobs::default()
        },
        &[],
        &[],
        ("challenge.www_authenticate", "warn"),
    )
    .await;
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            challenge: vec![],
            ..Knobs::hint_only()
        },
        &[],
        &each(&all, "challenge.www_authenticate"),
        ("challenge.www_authenticate", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_not_first_loses_typescript_the_hint() {
    case(
        Knobs {
            challenge: vec![r#"Basic realm="gw", Bearer resource_metadata="{hint}""#.to_owned()],
            ..Knobs::hint_only()
        },
        &[],
        &each(&TS, "challenge.bearer_first"),
        ("challenge.bearer_first", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_challenges_typescript_takes_the_first_hint() {
    let knobs = Knobs {
        challenge: vec![
            r#"Bearer resource_metadata="{base}/.well-known/oauth-protected-resource/backend-own""#
                .to_owned(),
            r#"Bearer resource_metadata="{hint}""#.to_owned(),
        ],
        ..Knobs::default()
    };
    case(
        knobs.clone(),
        &[],
        &each(&TS, "challenge.single"),
        ("challenge.single", "fail"),
    )
    .await;
    // The human checklist names the check, the families it stops and the fix.
    let d = Deployment::start(knobs).await;
    let run = run_probe(vec![d.url()]).await;
    eprintln!("{}", run.stdout);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("3 of 6 client families pass (exit 1)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("stops: TypeScript SDK v1, TypeScript SDK v2, browser (MCP Inspector)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("fix: Send exactly one WWW-Authenticate challenge"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn relative_hint_is_ignored() {
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            challenge: vec![r#"Bearer resource_metadata="/prm/x""#.to_owned()],
            ..Knobs::hint_only()
        },
        &[],
        &each(&all, "challenge.resource_metadata"),
        ("challenge.resource_metadata", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_hint_is_ignored_by_rmcp() {
    case(
        Knobs {
            challenge: vec![r#"Bearer resource_metadata="{other}/prm/x""#.to_owned()],
            ..Knobs::hint_only()
        },
        &[],
        &[("rmcp", "challenge.hint_same_origin")],
        ("challenge.hint_same_origin", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_scope_is_reported() {
    case(
        Knobs {
            challenge: vec![r#"Bearer resource_metadata="{hint}", scope="read  write""#.to_owned()],
            ..Knobs::default()
        },
        &[],
        &[],
        ("challenge.scope", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unexposed_www_authenticate_hides_the_hint_from_browsers() {
    case(
        Knobs {
            mcp_expose: false,
            ..Knobs::hint_only()
        },
        &[],
        &[("browser", "challenge.expose_headers")],
        ("challenge.expose_headers", "fail"),
    )
    .await;
}

// === 2. protected-resource metadata ===

#[tokio::test(flavor = "multi_thread")]
async fn failed_hint_is_not_followed_by_the_fallback_in_typescript() {
    case(
        Knobs {
            challenge: vec![r#"Bearer resource_metadata="{base}/prm/gone""#.to_owned()],
            ..Knobs::default()
        },
        &[],
        &each(&TS, "prm.hint"),
        ("prm.hint", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_metadata_anywhere() {
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            challenge: vec![r#"Bearer realm="gw""#.to_owned()],
            ..Knobs::hint_only()
        },
        &[],
        &each(&all, "challenge.resource_metadata"),
        ("prm.found", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_error_stops_typescript_v1_and_rmcp() {
    let mut root = good_prm();
    root["resource"] = json!("{base}/mcp/x/mcp");
    case(
        Knobs {
            challenge: vec![r#"Bearer realm="gw""#.to_owned()],
            well_known_status: Some(500),
            root_prm: Some(root),
            ..Knobs::default()
        },
        &[],
        &each(&["ts_v1", "rmcp", "browser"], "prm.server_error"),
        ("prm.server_error", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_origin_redirect_is_followed_only_by_python() {
    let v = case(
        Knobs {
            challenge: vec![r#"Bearer realm="gw""#.to_owned()],
            well_known_cross_redirect: true,
            ..Knobs::default()
        },
        &[],
        &each(
            &["ts_v1", "ts_v2", "rmcp", "vscode", "browser"],
            "prm.redirect",
        ),
        ("prm.redirect", "fail"),
    )
    .await;
    let notes = v["verdicts"]["python"]["notes"].to_string();
    assert!(notes.contains("cross-origin redirect"), "{notes}");
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_that_is_not_json() {
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            prm_raw_body: Some("<html>login</html>".into()),
            prm_content_type: "text/html".into(),
            ..Knobs::default()
        },
        &[],
        &each(&all, "prm.json"),
        ("prm.json", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_content_type_is_a_warning() {
    case(
        Knobs {
            prm_content_type: "text/plain".into(),
            ..Knobs::default()
        },
        &[],
        &[],
        ("prm.content_type", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn null_in_metadata_fails_typescript_and_python() {
    let mut prm = good_prm();
    prm["resource_documentation"] = Value::Null;
    case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(
            &["ts_v1", "ts_v2", "python", "browser"],
            "prm.no_null_or_empty",
        ),
        ("prm.no_null_or_empty", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_list_in_metadata_fails_typescript_and_python() {
    let mut prm = good_prm();
    prm["scopes_supported"] = json!([]);
    case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(
            &["ts_v1", "ts_v2", "python", "browser"],
            "prm.no_null_or_empty",
        ),
        ("prm.no_null_or_empty", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_prefix_means_the_wrong_audience() {
    let mut prm = good_prm();
    prm["resource"] = json!("{base}/mcp");
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    let v = case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(&all, "prm.resource"),
        ("prm.resource", "fail"),
    )
    .await;
    let reason = v["verdicts"]["python"]["reason"].as_str().unwrap();
    assert!(reason.contains("wrong audience"), "{reason}");
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_with_a_trailing_slash() {
    let mut prm = good_prm();
    prm["resource"] = json!("{base}/mcp/x/mcp/");
    case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(&["ts_v1", "ts_v2", "vscode", "browser"], "prm.resource"),
        ("prm.resource", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn resource_of_another_server() {
    let mut prm = good_prm();
    prm["resource"] = json!("{base}/mcp/y/mcp");
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(&all, "prm.resource"),
        ("prm.resource", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_the_first_authorization_server_is_used() {
    let mut prm = good_prm();
    prm["authorization_servers"] = json!(["{base}/realms/gone", "{base}/realms/eng"]);
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(&all, "as.found"),
        ("prm.authorization_servers", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_authorization_server() {
    let mut prm = good_prm();
    prm.as_object_mut().unwrap().remove("authorization_servers");
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(&all, "prm.authorization_servers"),
        ("prm.authorization_servers", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn expect_issuer_mismatch() {
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs::default(),
        &["--expect-issuer", "https://sso.example.com/realms/eng"],
        &each(&all, "prm.expected_issuer"),
        ("prm.expected_issuer", "fail"),
    )
    .await;
    // And the match passes (the issuer is only known once the site is up).
    let d = Deployment::start(Knobs::default()).await;
    let issuer = format!("{}/realms/eng", d.main.base());
    let (code, v) = probe_json(&d.url(), &["--expect-issuer", &issuer]).await;
    assert_eq!((code, check_status(&v, "prm.expected_issuer")), (0, "pass"));
}

#[tokio::test(flavor = "multi_thread")]
async fn legacy_protocol_version_rejected_fails_rmcp() {
    case(
        Knobs {
            prm_legacy_400: true,
            ..Knobs::default()
        },
        &[],
        &[("rmcp", "prm.protocol_version")],
        ("prm.protocol_version", "fail"),
    )
    .await;
}

// === 3. authorization-server metadata ===

#[tokio::test(flavor = "multi_thread")]
async fn issuer_with_a_trailing_slash_in_the_document() {
    let mut doc = good_as();
    doc["issuer"] = json!("{base}/realms/eng/");
    case(
        Knobs {
            as_oauth: Some(doc),
            ..Knobs::default()
        },
        &[],
        &each(&["ts_v2", "python", "rmcp"], "as.issuer"),
        ("as.issuer", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn issuer_with_a_trailing_slash_on_the_expected_side_passes_ts_v2() {
    let mut prm = good_prm();
    prm["authorization_servers"] = json!(["{base}/realms/eng/"]);
    case(
        Knobs {
            prm,
            ..Knobs::default()
        },
        &[],
        &each(&["python", "rmcp"], "as.issuer"),
        ("as.issuer", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_as_metadata() {
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            as_oauth: None,
            ..Knobs::default()
        },
        &[],
        &each(&all, "as.found"),
        ("as.found", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn openid_configuration_without_oidc_fields_throws_in_typescript() {
    case(
        Knobs {
            as_oauth: None,
            as_oidc: Some(good_as()),
            ..Knobs::default()
        },
        &[],
        &each(&TS, "as.oidc_shape"),
        ("as.oidc_shape", "fail"),
    )
    .await;
    // A complete OIDC document there passes everyone.
    case(
        Knobs {
            as_oauth: None,
            as_oidc: Some(full_oidc()),
            ..Knobs::default()
        },
        &[],
        &[],
        ("as.oidc_shape", "pass"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unparsable_first_document_throws_in_typescript() {
    let mut broken = good_as();
    broken.as_object_mut().unwrap().remove("token_endpoint");
    case(
        Knobs {
            as_oauth: Some(broken),
            as_oidc: Some(full_oidc()),
            ..Knobs::default()
        },
        &[],
        &each(&TS, "as.parse"),
        ("as.parse", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn as_server_error_stops_typescript_v1_and_rmcp() {
    case(
        Knobs {
            as_oauth_status: Some(503),
            as_oidc: Some(full_oidc()),
            ..Knobs::default()
        },
        &[],
        &each(&["ts_v1", "rmcp", "browser"], "as.server_error"),
        ("as.server_error", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn null_in_as_metadata_fails_typescript() {
    let mut doc = good_as();
    doc["service_documentation"] = Value::Null;
    case(
        Knobs {
            as_oauth: Some(doc),
            ..Knobs::default()
        },
        &[],
        &each(&TS, "as.no_null_or_empty"),
        ("as.no_null_or_empty", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_code_response_type() {
    let mut doc = good_as();
    doc["response_types_supported"] = json!(["token"]);
    let all = ["ts_v1", "ts_v2", "python", "rmcp", "vscode", "browser"];
    case(
        Knobs {
            as_oauth: Some(doc),
            ..Knobs::default()
        },
        &[],
        &each(&all, "as.response_type_code"),
        ("as.response_type_code", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_methods_without_s256() {
    let mut doc = good_as();
    doc["code_challenge_methods_supported"] = json!(["plain"]);
    case(
        Knobs {
            as_oauth: Some(doc),
            ..Knobs::default()
        },
        &[],
        &each(&["ts_v1", "ts_v2", "rmcp", "browser"], "as.pkce_s256"),
        ("as.pkce_s256", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pkce_methods_absent_is_a_warning() {
    let mut doc = good_as();
    doc.as_object_mut()
        .unwrap()
        .remove("code_challenge_methods_supported");
    case(
        Knobs {
            as_oauth: Some(doc),
            ..Knobs::default()
        },
        &[],
        &[],
        ("as.pkce_s256", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn no_registration() {
    let mut doc = good_as();
    doc.as_object_mut().unwrap().remove("registration_endpoint");
    case(
        Knobs {
            as_oauth: Some(doc.clone()),
            ..Knobs::default()
        },
        &[],
        &each(&["ts_v1", "ts_v2", "python", "browser"], "as.registration"),
        ("as.registration", "fail"),
    )
    .await;
    doc["client_id_metadata_document_supported"] = json!(true);
    case(
        Knobs {
            as_oauth: Some(doc),
            ..Knobs::default()
        },
        &[],
        &[],
        ("as.registration", "pass"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn facade_without_rfc9207_is_a_warning() {
    let mut doc = good_as();
    doc.as_object_mut()
        .unwrap()
        .remove("authorization_response_iss_parameter_supported");
    doc["authorization_endpoint"] = json!("{other}/protocol/openid-connect/auth");
    case(
        Knobs {
            as_oauth: Some(doc),
            ..Knobs::default()
        },
        &[],
        &[],
        ("as.rfc9207", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_authorization_server_with_a_loopback_mcp_host_is_allowed() {
    // The rmcp rejection needs an MCP host that is not loopback: see the unit test
    // `probe::as_metadata::tests::private_authorization_server_fails_rmcp_only`.
    case(Knobs::default(), &[], &[], ("as.private_host", "info")).await;
}

// === 4. CORS ===

#[tokio::test(flavor = "multi_thread")]
async fn mcp_preflight_refused() {
    case(
        Knobs {
            mcp_preflight: false,
            ..Knobs::default()
        },
        &[],
        &[("browser", "cors.mcp_preflight")],
        ("cors.mcp_preflight", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn challenge_without_allow_origin() {
    case(
        Knobs {
            mcp_allow_origin: false,
            ..Knobs::default()
        },
        &[],
        &[("browser", "cors.challenge_allow_origin")],
        ("cors.challenge_allow_origin", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn well_known_preflight_refused_is_a_warning() {
    case(
        Knobs {
            doc_preflight: false,
            ..Knobs::default()
        },
        &[],
        &[],
        ("cors.prm_preflight", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_without_allow_origin() {
    case(
        Knobs {
            doc_allow_origin: false,
            ..Knobs::default()
        },
        &[],
        &[("browser", "cors.prm_allow_origin")],
        ("cors.prm_allow_origin", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn as_metadata_without_allow_origin() {
    case(
        Knobs {
            as_allow_origin: false,
            ..Knobs::default()
        },
        &[],
        &[("browser", "cors.as_allow_origin")],
        ("cors.as_allow_origin", "fail"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn origin_flag_is_used() {
    let d = Deployment::start(Knobs::default()).await;
    let (_, v) = probe_json(&d.url(), &["--origin", "https://app.example.com"]).await;
    assert_eq!(v["origin"], "https://app.example.com");
    let origins: Vec<String> = d
        .all_requests()
        .iter()
        .filter_map(|r| r.header("origin").map(str::to_owned))
        .collect();
    assert!(!origins.is_empty());
    assert!(
        origins.iter().all(|o| o == "https://app.example.com"),
        "{origins:?}"
    );
}

// === signpost behind the real nginx config ===

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Proc(Child, PathBuf);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc(child, log)
    }
    fn log(&self) -> String {
        std::fs::read_to_string(&self.1).unwrap_or_default()
    }
}

fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split(' ').nth(1)?.parse().ok()
}

fn nginx_module_line() -> String {
    let v = Command::new("/usr/sbin/nginx")
        .arg("-V")
        .output()
        .expect("nginx is installed (.ci/install)");
    let info = String::from_utf8_lossy(&v.stderr).into_owned();
    if info.contains("headers-more") {
        return String::new();
    }
    let modules = info
        .split_whitespace()
        .find_map(|a| a.strip_prefix("--modules-path="))
        .unwrap_or("/usr/lib/nginx/modules")
        .to_owned();
    format!("load_module {modules}/ngx_http_headers_more_filter_module.so;")
}

#[tokio::test(flavor = "multi_thread")]
async fn signpost_behind_nginx_passes_every_family() {
    let dir = tempfile::tempdir().unwrap();
    let _ = std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    );

    // The IdP: a Keycloak-like issuer with a path, CORS on its metadata.
    let idp = Deployment::start(Knobs::default()).await;
    let issuer = format!("{}/realms/eng", idp.main.base());
    // The gateway: answers every /mcp/* request without a token with its own 401 challenge,
    // which nginx must replace with signpost's.
    let gw_l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = Site::start(
        gw_l,
        String::new(),
        Arc::new(|_: &Req, _: &Ctx| {
            Some(
                Resp::new(401)
                    .h(
                        "WWW-Authenticate",
                        r#"Bearer realm="backend-own-challenge""#,
                    )
                    .json(&json!({"error": "unauthorized"})),
            )
        }),
    )
    .await;
    let [nginx_port] = e2e::free_ports();
    let config = dir.path().join("signpost.json");
    std::fs::write(
        &config,
        json!({
            "public_url": format!("http://127.0.0.1:{nginx_port}"),
            "servers": {
                "wiki": { "mode": "delegate", "issuer": issuer },
                "eng": {
                    "mode": "facade",
                    "issuer": issuer,
                    "authorization_endpoint": format!("{issuer}/auth"),
                    "token_endpoint": format!("{issuer}/token"),
                    "registration_endpoint": format!("{issuer}/register"),
                    "scopes": ["mcp:tools"],
                },
            },
        })
        .to_string(),
    )
    .unwrap();
    let signpost = common::Binary::serve(&config, &[]).await;
    let (public, admin) = (signpost.public.port(), signpost.admin.port());
    // deploy/nginx/signpost.conf as shipped, addresses filled in (read-only use of the file).
    let shipped = std::fs::read_to_string(repo().join("deploy/nginx/signpost.conf")).unwrap();
    let conf = shipped
        .replace("__LISTEN_ADDR__", &format!("127.0.0.1:{nginx_port}"))
        .replace(
            "__GATEWAY_ADDR__",
            &format!("127.0.0.1:{}", gateway.addr.port()),
        )
        .replace("__SIGNPOST_ADDR__", &format!("127.0.0.1:{public}"))
        .replace("__SIGNPOST_ADMIN_ADDR__", &format!("127.0.0.1:{admin}"))
        .replace("__RESCUE_5XX__", "0");
    assert!(
        !conf.contains("__"),
        "an unknown placeholder is left in deploy/nginx/signpost.conf"
    );
    std::fs::write(dir.path().join("signpost.conf"), conf).unwrap();
    let d = dir.path().display();
    let main = format!(
        "{}\ndaemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log stderr notice;\n\
         events {{ worker_connections 256; }}\nhttp {{\n access_log {d}/access.log;\n \
         client_body_temp_path {d}/client_body;\n proxy_temp_path {d}/proxy;\n \
         fastcgi_temp_path {d}/fastcgi;\n uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n \
         include {d}/signpost.conf;\n}}\n",
        nginx_module_line()
    );
    let nginx_conf = dir.path().join("nginx.conf");
    std::fs::write(&nginx_conf, main).unwrap();
    let nginx = Proc::spawn(
        "nginx",
        Command::new("/usr/sbin/nginx").args([
            "-p",
            dir.path().to_str().unwrap(),
            "-e",
            "stderr",
            "-c",
            nginx_conf.to_str().unwrap(),
        ]),
        dir.path(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let prm = "/.well-known/oauth-protected-resource/mcp/wiki/mcp";
    while tokio::task::spawn_blocking(move || http_status(nginx_port, prm))
        .await
        .unwrap()
        != Some(200)
    {
        assert!(
            Instant::now() < deadline,
            "the stack did not come up; signpost:\n{}\nnginx:\n{}",
            signpost.log_lines().join("\n"),
            nginx.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for server in ["wiki", "eng"] {
        let url = format!("http://127.0.0.1:{nginx_port}/mcp/{server}/mcp");
        let (code, v) = probe_json(&url, &[]).await;
        assert_eq!(verdicts(&v), want(&[]), "{server}: {v:#}\n{}", nginx.log());
        assert_eq!(code, 0);
        assert_eq!(
            check_status(&v, "challenge.single"),
            "pass",
            "nginx relays exactly one challenge"
        );
        let www = v["requests"][0]["www_authenticate"].to_string();
        assert!(!www.contains("backend-own-challenge"), "{www}");
    }
    // The human checklist (printed: `cargo test --test probe signpost_behind_nginx -- --nocapture`).
    let run = run_probe(vec![format!("http://127.0.0.1:{nginx_port}/mcp/wiki/mcp")]).await;
    eprintln!("{}", run.stdout);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("all 6 client families pass (exit 0)"),
        "{}",
        run.stdout
    );
    // The delegate's issuer is the IdP's, byte for byte; the facade's is signpost's own.
    let (_, v) = probe_json(
        &format!("http://127.0.0.1:{nginx_port}/mcp/wiki/mcp"),
        &["--expect-issuer", &issuer],
    )
    .await;
    assert_eq!(v["exit_code"], 0);
    let (_, v) = probe_json(&format!("http://127.0.0.1:{nginx_port}/mcp/eng/mcp"), &[]).await;
    assert_eq!(
        v["verdicts"]["ts_v1"]["issuer"],
        format!("http://127.0.0.1:{nginx_port}/eng")
    );
    assert_eq!(
        check_status(&v, "as.rfc9207"),
        "warn",
        "a facade's upstream may send iss"
    );
    assert_no_credentials(&idp.all_requests());
    assert_no_credentials(&gateway.requests.lock().unwrap());
}

// === scopes and Entra (issue 13 findings the probe mirrors) ===

#[tokio::test(flavor = "multi_thread")]
async fn no_scope_anywhere_is_a_warning() {
    let mut prm = good_prm();
    prm.as_object_mut().unwrap().remove("scopes_supported");
    let v = case(
        Knobs {
            challenge: vec![r#"Bearer resource_metadata="{hint}""#.to_owned()],
            prm,
            ..Knobs::default()
        },
        &[],
        &[],
        ("prm.scopes", "warn"),
    )
    .await;
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "prm.scopes")
        .unwrap();
    assert!(
        c["summary"].as_str().unwrap().contains("access_denied"),
        "{c}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_access_in_the_challenge_is_a_warning() {
    case(
        Knobs {
            challenge: vec![
                r#"Bearer resource_metadata="{hint}", scope="mcp:tools offline_access""#.to_owned(),
            ],
            ..Knobs::default()
        },
        &[],
        &[],
        ("prm.scopes", "warn"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entra_authorization_server_is_told_the_resource_rule() {
    let mut as_doc = good_as();
    as_doc["cloud_instance_name"] = json!("microsoftonline.com");
    case(
        Knobs {
            as_oauth: Some(as_doc),
            ..Knobs::default()
        },
        &[],
        &[],
        ("as.entra_resource", "warn"),
    )
    .await;
}
