//! `signpost import litellm` through the real binary: the mode of every LiteLLM auth setting, the
//! warnings, LiteLLM's URL shapes, no secret copied, the output accepted by `signpost check` as
//! printed, `--online` against real loopback upstreams (401 hint → PRM → issuer metadata), and
//! exit 78 with file:line:column for every input that is not a LiteLLM config.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_signpost");
const EX_CONFIG: i32 = 78;

/// Runs `signpost args…` in `dir` (so problem lines name files as given).
fn signpost(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("SIGNPOST_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run signpost")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// Writes `yaml` as `config.yaml` in a new directory and imports it.
fn import(yaml: &str, extra: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.yaml"), yaml).expect("write");
    let mut args = vec![
        "import",
        "litellm",
        "config.yaml",
        "--public-url",
        "https://gw.example.com",
    ];
    args.extend_from_slice(extra);
    let out = signpost(dir.path(), &args);
    (dir, out)
}

/// `signpost check` of what the import printed, exactly as printed.
fn check_accepts(dir: &Path, stdout: &str) -> String {
    std::fs::write(dir.join("signpost.json"), stdout).expect("write");
    let out = signpost(dir, &["check", "--config", "signpost.json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "check rejects the import:\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// One server of each LiteLLM auth setting in LITELLM.md, each with its issuer written down.
const EVERY_SETTING: &str = r#"# LiteLLM proxy config
model_list: []
litellm_settings:
  mcp_aliases:
    jira: atlassian-prod
mcp_servers:
  delegated_oauth2:
    url: https://mcp.one.example/mcp
    auth_type: oauth2
    oauth2_flow: authorization_code
    delegate_auth_to_upstream: true
    issuer: https://sso.example.com/realms/eng
    client_id: litellm-client
    client_secret: os.environ/ONE_SECRET
    scopes: ["read", "write"]
  passthrough:
    url: https://mcp.two.example/mcp
    auth_type: true_passthrough
    issuer: https://tenant.auth0.com/
  bridged:
    url: https://mcp.three.example/mcp
    auth_type: true_passthrough
    dcr_bridge: true
    issuer: https://sso.example.com/realms/eng
    alias: bridge
  keyed_delegate:
    url: https://mcp.four.example/mcp
    auth_type: oauth_delegate
    issuer: https://sso.example.com/realms/eng
  managed:
    url: https://mcp.five.example/mcp
    auth_type: oauth2
    oauth2_flow: authorization_code
    client_id: litellm
    client_secret: hunter2-not-copied
    scopes: repo
  machine:
    url: https://mcp.six.example/mcp
    auth_type: oauth2
    oauth2_flow: client_credentials
    client_id: m2m
    client_secret: os.environ/M2M
    token_url: https://sso.example.com/token
  atlassian-prod:
    url: https://mcp.seven.example/mcp
    auth_type: api_key
    auth_value: os.environ/KEY
  plain:
    url: https://mcp.eight.example/mcp
  local:
    transport: stdio
    command: npx
    args: ["-y", "some-server"]
"#;

#[test]
fn every_litellm_setting_gets_its_mode_warnings_and_litellms_url_shapes() {
    let (dir, out) = import(EVERY_SETTING, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let config: Value = serde_json::from_str(&stdout).expect("JSON on stdout");
    assert_eq!(
        config,
        json!({
            "public_url": "https://gw.example.com",
            "resource_paths": ["/mcp/{server}", "/{server}/mcp"],
            "gateway": {
                "issuer": "{public_url}/{server}",
                "authorization_endpoint": "{public_url}/{server}/authorize",
                "token_endpoint": "{public_url}/{server}/token",
                "registration_endpoint": "{public_url}/{server}/register",
                "token_endpoint_auth_methods_supported": ["client_secret_post"]
            },
            "servers": {
                "delegated_oauth2": {"mode": "delegate", "issuer": "https://sso.example.com/realms/eng", "scopes": ["read", "write"]},
                "passthrough": {"mode": "delegate", "issuer": "https://tenant.auth0.com/"},
                "bridge": {"mode": "delegate", "issuer": "https://sso.example.com/realms/eng"},
                "keyed_delegate": {"mode": "delegate", "issuer": "https://sso.example.com/realms/eng"},
                "managed": {"mode": "gateway", "scopes": ["repo"]},
                "machine": {"mode": "none"},
                "jira": {"mode": "none"},
                "plain": {"mode": "none"},
                "local": {"mode": "none"}
            }
        })
    );
    // Servers in file order (the output is for people to read too).
    let names: Vec<&String> = config["servers"].as_object().unwrap().keys().collect();
    assert_eq!(
        names,
        [
            "delegated_oauth2",
            "passthrough",
            "bridge",
            "keyed_delegate",
            "managed",
            "machine",
            "jira",
            "plain",
            "local"
        ]
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with("config.yaml:28:16: mcp_servers.keyed_delegate: warning: auth_type oauth_delegate: LiteLLM also requires its own key (x-litellm-api-key)")
            && lines[0].ends_with("set auth_type: true_passthrough in LiteLLM to forward the IdP's token untouched"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("config.yaml:32:16: mcp_servers.managed: warning: auth_type oauth2 without delegate_auth_to_upstream: LiteLLM is the authorization server (mode gateway)")
            && lines[1].contains("register https://gw.example.com/callback at the IdP and set issuer:"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(
            "config.yaml:39:16: mcp_servers.machine: note: oauth2_flow client_credentials"
        ),
        "{stderr}"
    );
    for secret in [
        "os.environ",
        "hunter2",
        "litellm-client",
        "\"client_secret\"",
        "\"client_id\"",
        "m2m",
    ] {
        assert!(!stdout.contains(secret), "{secret} copied:\n{stdout}");
    }
    let routes = check_accepts(dir.path(), &stdout);
    // LiteLLM cannot route /mcp/{server}/mcp: never served.
    assert!(
        routes.contains("https://gw.example.com/.well-known/oauth-protected-resource/mcp/bridge\n")
    );
    assert!(
        routes.contains("https://gw.example.com/.well-known/oauth-protected-resource/bridge/mcp\n")
    );
    assert!(!routes.contains("/mcp/bridge/mcp"), "{routes}");
}

#[test]
fn a_delegate_without_an_issuer_offline_is_left_out_and_exits_1() {
    let yaml = "mcp_servers:\n  a:\n    url: https://a.example/mcp\n    auth_type: true_passthrough\n  b:\n    url: https://b.example/mcp\n    auth_type: none\n  c:\n    url: https://c.example/mcp\n    auth_type: some_future_type\n";
    let (dir, out) = import(yaml, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("config.yaml:2:3: mcp_servers.a: error: LiteLLM's entry does not name the upstream IdP's issuer")
            && stderr.contains("run again with --online"),
        "{stderr}"
    );
    assert!(
        stderr.contains("config.yaml:10:16: mcp_servers.c: error: auth_type \"some_future_type\" is not one LiteLLM 1.108 knows"),
        "{stderr}"
    );
    assert!(stderr.contains("2 servers could not be mapped"), "{stderr}");
    let config: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(config["servers"], json!({"b": {"mode": "none"}}));
    check_accepts(dir.path(), &stdout);
}

#[test]
fn names_that_cannot_be_served_and_clashing_aliases_are_reported() {
    let yaml = "mcp_servers:\n  \"my server\":\n    url: https://a.example/mcp\n  b:\n    url: https://b.example/mcp\n  c:\n    alias: b\n    url: https://c.example/mcp\n";
    let (_dir, out) = import(yaml, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("config.yaml:2:3: mcp_servers.my server: error: name \"my server\" cannot be a signpost server name"),
        "{stderr}"
    );
    assert!(
        stderr.contains("config.yaml:6:3: mcp_servers.c: error: clients reach this server as /mcp/b, which mcp_servers.b already is"),
        "{stderr}"
    );
}

#[test]
fn inputs_that_are_not_litellm_configs_exit_78_with_file_line_and_the_fix() {
    let cases: &[(&str, &str)] = &[
        (
            "mcp_servers:\n  a: [1, 2\n",
            "config.yaml:3:1: invalid YAML",
        ),
        ("", "config.yaml:1:1: empty: no YAML document"),
        ("# nothing but a comment\n", "config.yaml:1:1: empty"),
        (
            "- a\n- b\n",
            "config.yaml:1:1: a LiteLLM config is a mapping",
        ),
        ("model_list: []\n", "config.yaml:1:1: mcp_servers: missing"),
        ("mcp_servers:\n", "config.yaml:1:1: mcp_servers: empty"),
        (
            "mcp_servers: [a, b]\n",
            "config.yaml:1:14: mcp_servers: must be a mapping",
        ),
        (
            "mcp_servers:\n  a: https://x\n",
            "config.yaml:2:6: mcp_servers.a: must be a mapping",
        ),
        (
            "mcp_servers:\n  a:\n    auth_type: [oauth2]\n",
            "config.yaml:3:16: mcp_servers.a.auth_type: must be a string, not a list",
        ),
        (
            "mcp_servers:\n  a:\n    url: https://x\n    delegate_auth_to_upstream: maybe\n",
            "config.yaml:4:32: mcp_servers.a.delegate_auth_to_upstream: must be true or false",
        ),
        (
            "mcp_servers:\n  a:\n    url: https://x\n  a:\n    url: https://y\n",
            "config.yaml:4:3: duplicate key \"a\" (first at line 2)",
        ),
        (
            "a: 1\n---\nb: 2\n",
            "config.yaml:2:1: a second YAML document",
        ),
    ];
    for (yaml, want) in cases {
        let (_dir, out) = import(yaml, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(EX_CONFIG), "{yaml:?}: {stderr}");
        assert!(
            stderr.contains(want),
            "{yaml:?}: want {want:?} in:\n{stderr}"
        );
        assert!(stderr.contains("nothing was written"), "{stderr}");
        assert!(
            out.stdout.is_empty(),
            "{yaml:?}: stdout {:?}",
            text(&out.stdout)
        );
    }
    // Several shape problems are reported together.
    let (_dir, out) = import("mcp_servers:\n  a: 1\n  b:\n    alias: [x]\n", &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(EX_CONFIG));
    assert!(
        stderr.contains("config.yaml:2:6:") && stderr.contains("config.yaml:4:12:"),
        "{stderr}"
    );
    assert!(stderr.contains("(2 problems)"), "{stderr}");

    // A directory, a missing file, bytes that are not UTF-8.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    std::fs::write(
        dir.path().join("latin1.yaml"),
        b"mcp_servers:\n  caf\xe9: {}\n",
    )
    .unwrap();
    for (file, want) in [
        (
            "conf.d",
            "conf.d: is a directory; give the path of LiteLLM's config file",
        ),
        (
            "missing.yaml",
            "missing.yaml: cannot read the LiteLLM config",
        ),
        ("latin1.yaml", "latin1.yaml:2:6: not UTF-8 text"),
    ] {
        let out = signpost(
            dir.path(),
            &[
                "import",
                "litellm",
                file,
                "--public-url",
                "https://gw.example.com",
            ],
        );
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(EX_CONFIG), "{file}: {stderr}");
        assert!(stderr.contains(want), "{file}: {stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_bad_public_url_is_a_usage_error() {
    let (_dir, out) = import("mcp_servers:\n  a:\n    url: https://x\n", &[]);
    assert_eq!(out.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("c.yaml"),
        "mcp_servers:\n  a:\n    url: https://x\n",
    )
    .unwrap();
    let out = signpost(
        dir.path(),
        &[
            "import",
            "litellm",
            "c.yaml",
            "--public-url",
            "gw.example.com",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("public_url: not an absolute URL"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

// === --online against real loopback upstreams ===

/// A canned answer: status, headers, body.
type Answer = (u16, Vec<(String, String)>, String);

/// A loopback HTTP server answering `METHOD path` from a table; anything else is a 404.
struct Upstream {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<_, _>>> = Arc::default();
        let table = routes.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let table = table.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let key = format!("{} {}", req.method(), req.uri().path());
                        let found = table.lock().unwrap().get(&key).cloned();
                        async move {
                            let (status, headers, body) =
                                found.unwrap_or((404, Vec::new(), "{}".into()));
                            let mut r = Response::builder().status(status);
                            for (k, v) in headers {
                                r = r.header(k, v);
                            }
                            Ok::<_, Infallible>(r.body(Full::new(Bytes::from(body))).unwrap())
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Upstream { addr, routes, task }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn route(&self, method_path: &str, status: u16, headers: &[(&str, &str)], body: &str) {
        self.routes.lock().unwrap().insert(
            method_path.to_owned(),
            (
                status,
                headers
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                body.to_owned(),
            ),
        );
    }

    /// An MCP endpoint at `path` behind an IdP with issuer `{base}{issuer_path}`; `hint` decides
    /// whether its 401 carries `resource_metadata`.
    fn protect(&self, path: &str, issuer_path: &str, published_issuer: Option<&str>, hint: bool) {
        let issuer = format!("{}{issuer_path}", self.base());
        let prm = format!("/.well-known/oauth-protected-resource{path}");
        let challenge = if hint {
            format!("Bearer resource_metadata=\"{}{prm}\"", self.base())
        } else {
            "Bearer realm=\"mcp\"".to_owned()
        };
        self.route(
            &format!("POST {path}"),
            401,
            &[("www-authenticate", &challenge)],
            "{\"error\":\"unauthorized\"}",
        );
        self.route(
            &format!("GET {prm}"),
            200,
            &[("content-type", "application/json")],
            &json!({"resource": format!("{}{path}", self.base()), "authorization_servers": [issuer], "scopes_supported": ["mcp:tools", "offline_access"]}).to_string(),
        );
        let published = published_issuer.map_or(issuer.clone(), str::to_owned);
        self.route(
            &format!("GET /.well-known/oauth-authorization-server{issuer_path}"),
            200,
            &[("content-type", "application/json")],
            &json!({
                "issuer": published,
                "authorization_endpoint": format!("{issuer}/auth"),
                "token_endpoint": format!("{issuer}/token"),
                "registration_endpoint": format!("{issuer}/register"),
                "code_challenge_methods_supported": ["S256"]
            })
            .to_string(),
        );
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_finds_each_issuer_the_way_a_client_does() {
    let up = Upstream::start().await;
    let base = up.base();
    up.protect("/hinted/mcp", "/realms/eng", None, true);
    up.protect("/unhinted/mcp", "/realms/ops", None, false);
    up.protect(
        "/mismatched/mcp",
        "/realms/bad",
        Some("https://elsewhere.example/realms/bad"),
        true,
    );
    up.route(
        "POST /open/mcp",
        200,
        &[("content-type", "application/json")],
        "{}",
    );
    let yaml = format!(
        "mcp_servers:\n  hinted:\n    url: {base}/hinted/mcp\n    auth_type: true_passthrough\n  unhinted:\n    url: {base}/unhinted/mcp\n    auth_type: oauth2\n    oauth2_flow: authorization_code\n    delegate_auth_to_upstream: true\n    scopes: [mine]\n  mismatched:\n    url: {base}/mismatched/mcp\n    auth_type: true_passthrough\n  open:\n    url: {base}/open/mcp\n    auth_type: true_passthrough\n  gone:\n    url: http://127.0.0.1:9/mcp\n    auth_type: true_passthrough\n"
    );
    let (dir, out) = tokio::task::spawn_blocking(move || import(&yaml, &["--online"]))
        .await
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let config: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(
        config["servers"],
        json!({
            "hinted": {"mode": "delegate", "issuer": format!("{base}/realms/eng"), "scopes": ["mcp:tools", "offline_access"]},
            "unhinted": {"mode": "delegate", "issuer": format!("{base}/realms/ops"), "scopes": ["mine"]}
        }),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "mcp_servers.mismatched: error: --online could not find the upstream's issuer:"
        ) && stderr.contains("says issuer \"https://elsewhere.example/realms/bad\""),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "mcp_servers.open: error: --online could not find the upstream's issuer: POST"
        ) && stderr.contains("answers 200, not 401"),
        "{stderr}"
    );
    assert!(
        stderr.contains("mcp_servers.gone: error: --online could not find the upstream's issuer: POST http://127.0.0.1:9/mcp: cannot connect"),
        "{stderr}"
    );
    assert!(stderr.contains("3 servers could not be mapped"), "{stderr}");
    check_accepts(dir.path(), &stdout);
}
