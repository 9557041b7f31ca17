//! End-to-end: a real nginx running the shipped `deploy/nginx/signpost.conf` (templated for addresses
//! only), the signpost binary, a Keycloak-like test IdP with a path issuer (`tests/e2e/idp.mjs`), a
//! small MCP backend that answers 401 with its own challenge (`tests/e2e/backend.mjs`), and the real
//! MCP TypeScript SDK client auth code (`tests/e2e/client.mjs`, SDK pinned in package-lock.json).
//!
//! Layout of one `Stack` (every port picked free on 127.0.0.1):
//!
//! ```text
//!  client.mjs ──► nginx ──/.well-known/*──► signpost public ─┐ one config: `wiki` delegate → IdP issuer,
//!                   │                                          │             `eng` facade  → IdP endpoints
//!                   ├──/mcp/*──► backend.mjs (401 / 403 / 200)  │
//!                   └──on 401/403──► signpost admin /challenge ─┘
//!  client.mjs ──► idp.mjs (AS metadata for `wiki`, registration, authorization, token)
//! ```
//!
//! The tests at the end complete the login with both real SDK clients (tests/common/e2e.rs: the
//! login drivers, a real MCP backend, the test IdP or `oidc-provider`) through nginx + signpost:
//! delegate servers at `oidc-provider` (with and without `"discover": true`), and a facade over an
//! IdP without RFC 9207 `iss` (both complete) and with it (TS v1 completes, Python refuses).
//!
//! Needs nginx with the headers-more module, node and `tests/e2e/node_modules`, and .venv/e2e for
//! the Python SDK: `.ci/install` installs them. Without them these tests fail (they never skip).

use std::fs;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long one run of client.mjs may take (discovery, registration, a login, a reconnect).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);
/// The IdP realm: issuer `http://127.0.0.1:<port>/realms/eng`, like Keycloak.
const REALM: &str = "eng";
/// Server names in the signpost config.
const DELEGATE: &str = "wiki";
const FACADE: &str = "eng";
/// The facade server's own scope: the step-up challenge must carry it and the backend's.
const FACADE_SCOPE: &str = "mcp:tools";
/// The backend's own challenge marker: it must never reach a client.
const BACKEND_OWN: &str = "backend-own-challenge";

// Processes, raw HTTP and misbehaving listeners come from the shared harness.
#[path = "common/e2e.rs"]
mod harness;

use harness::{
    Behave, FakeSignpost, Proc, Response, e2e_dir, free_ports, http, repo, signpost_hint,
    status_of, wait_until,
};

const INSTALL_HINT: &str = "run `.ci/install` (as root; it installs nginx, the headers-more module and tests/e2e/node_modules)";

// === prerequisites ===

struct Tools {
    nginx: PathBuf,
    /// `load_module` line for the headers-more module, or empty when it is built in.
    load_module: String,
}

/// Finds nginx, the headers-more module, node and the SDK, or fails the test saying how to fix it.
fn tools() -> &'static Tools {
    static TOOLS: OnceLock<Result<Tools, String>> = OnceLock::new();
    match TOOLS.get_or_init(find_tools) {
        Ok(t) => t,
        Err(e) => panic!("e2e prerequisites missing: {e}; {INSTALL_HINT}"),
    }
}

fn find_tools() -> Result<Tools, String> {
    let nginx = [
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
        "/usr/local/nginx/sbin/nginx",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists())
    .or_else(|| which("nginx"))
    .ok_or("nginx is not installed")?;
    let v = Command::new(&nginx)
        .arg("-V")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", nginx.display()))?;
    let info = String::from_utf8_lossy(&v.stderr).into_owned();
    let load_module = if info.contains("headers-more") {
        String::new() // compiled in (OpenResty-style builds)
    } else {
        let modules = info
            .split_whitespace()
            .find_map(|a| a.strip_prefix("--modules-path="))
            .unwrap_or("/usr/lib/nginx/modules")
            .to_owned();
        let so = Path::new(&modules).join("ngx_http_headers_more_filter_module.so");
        if !so.exists() {
            return Err(format!(
                "the nginx headers-more module is missing ({}; Debian: libnginx-mod-http-headers-more-filter)",
                so.display()
            ));
        }
        format!("load_module {};", so.display())
    };
    which("node").ok_or("node is not installed")?;
    let sdk = e2e_dir().join("node_modules/@modelcontextprotocol/sdk/package.json");
    if !sdk.exists() {
        return Err(format!(
            "{} is missing (npm ci --prefix tests/e2e)",
            sdk.display()
        ));
    }
    Ok(Tools { nginx, load_module })
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

// === the stack ===

struct Ports {
    nginx: u16,
    signpost: u16,
    admin: u16,
    idp: u16,
    backend: u16,
}

struct Stack {
    ports: Ports,
    issuer: String,
    config: PathBuf,
    // Drop order: nginx first, then the rest; the tempdir last.
    nginx: Proc,
    signpost: Option<Proc>,
    _backend: Proc,
    _idp: Proc,
    _fake_admin: Option<FakeSignpost>,
    dir: tempfile::TempDir,
}

impl Stack {
    fn start() -> Stack {
        Stack::start_with(None)
    }

    /// `fake_admin`: point nginx's challenge upstream at this listener instead of signpost's admin.
    fn start_with(fake_admin: Option<FakeSignpost>) -> Stack {
        let tools = tools();
        let dir = tempfile::tempdir().expect("tempdir");
        // nginx temp paths live here; readable by a non-root worker if nginx ever drops privileges.
        let _ = fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let [nginx, signpost, admin, idp, backend] = free_ports();
        let ports = Ports {
            nginx,
            signpost,
            admin,
            idp,
            backend,
        };
        let issuer = format!("http://127.0.0.1:{}/realms/{REALM}", ports.idp);

        let node = |script: &str, port: u16, extra: &[&str]| {
            let mut c = Command::new("node");
            c.current_dir(e2e_dir())
                .arg(script)
                .args(["--port", &port.to_string()])
                .args(extra);
            c
        };
        let mut idp = Proc::spawn(
            "idp",
            &mut node("idp.mjs", ports.idp, &["--realm", REALM]),
            dir.path(),
        );
        let mut backend = Proc::spawn(
            "backend",
            &mut node("backend.mjs", ports.backend, &[]),
            dir.path(),
        );

        let config = dir.path().join("signpost.json");
        fs::write(&config, signpost_config(&ports, &issuer)).expect("write signpost config");
        let mut signpost = Proc::spawn(
            "signpost",
            Command::new(env!("CARGO_BIN_EXE_signpost")).args([
                "serve",
                "--config",
                config.to_str().expect("utf-8 path"),
                "--listen",
                &format!("127.0.0.1:{}", ports.signpost),
                "--admin-listen",
                &format!("127.0.0.1:{}", ports.admin),
            ]),
            dir.path(),
        );

        let challenge_port = fake_admin.as_ref().map_or(ports.admin, |f| f.port);
        let conf = write_nginx_conf(dir.path(), tools, &ports, challenge_port);
        let mut nginx = Proc::spawn(
            "nginx",
            Command::new(&tools.nginx).args([
                "-p",
                dir.path().to_str().expect("utf-8 path"),
                "-e",
                "stderr",
                "-c",
                conf.to_str().expect("utf-8 path"),
            ]),
            dir.path(),
        );

        let idp_meta = format!("/.well-known/oauth-authorization-server/realms/{REALM}");
        wait_until("idp", &mut idp, || {
            status_of(ports.idp, &idp_meta) == Some(200)
        });
        wait_until("backend", &mut backend, || {
            status_of(ports.backend, "/mcp/x/mcp") == Some(401)
        });
        wait_until("signpost", &mut signpost, || {
            status_of(ports.admin, "/readyz") == Some(200)
        });
        let prm = format!("/.well-known/oauth-protected-resource/mcp/{DELEGATE}/mcp");
        wait_until("nginx", &mut nginx, || {
            status_of(ports.nginx, &prm) == Some(200)
        });

        Stack {
            ports,
            issuer,
            config,
            nginx,
            signpost: Some(signpost),
            _backend: backend,
            _idp: idp,
            _fake_admin: fake_admin,
            dir,
        }
    }

    fn endpoint(&self, server: &str) -> String {
        format!("http://127.0.0.1:{}/mcp/{server}/mcp", self.ports.nginx)
    }

    fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.nginx)
    }

    /// Raw request to nginx.
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        self.nginx_alive();
        http(self.ports.nginx, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    fn nginx_alive(&self) {
        // `check_alive` needs &mut; a cheap re-probe is enough here.
        assert!(
            TcpStream::connect(("127.0.0.1", self.ports.nginx)).is_ok(),
            "nginx is gone; its output:\n{}",
            self.nginx.output()
        );
    }

    /// What `signpost hint` says for this resource: the exact value nginx must relay.
    fn hint(&self, resource: &str) -> String {
        signpost_hint(&self.config, resource)
    }

    /// Runs client.mjs (the real SDK) and returns its JSON report.
    fn client(&self, server: &str, extra: &[&str]) -> Value {
        let url = self.endpoint(server);
        let mut child = Command::new("node")
            .current_dir(e2e_dir())
            .args(["client.mjs", "--url", &url])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node client.mjs: {e}; {INSTALL_HINT}"));
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while child.try_wait().expect("wait client").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("client.mjs {url} did not finish within {CLIENT_TIMEOUT:?}");
            }
            thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().expect("client output");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "client.mjs {url} failed ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(stdout.lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("client.mjs printed no JSON report ({e}):\n{stdout}"))
    }

    fn stop_signpost(&mut self) {
        if let Some(mut p) = self.signpost.take() {
            p.stop();
        }
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for name in ["nginx", "signpost", "idp", "backend"] {
            let text = ["out", "log"]
                .map(|ext| {
                    fs::read_to_string(self.dir.path().join(format!("{name}.{ext}")))
                        .unwrap_or_default()
                })
                .concat();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            s.push_str(&format!("--- {name} (last lines) ---\n"));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

fn signpost_config(ports: &Ports, issuer: &str) -> String {
    let oidc = format!("{issuer}/protocol/openid-connect");
    serde_json::to_string_pretty(&serde_json::json!({
        "public_url": format!("http://127.0.0.1:{}", ports.nginx),
        "servers": {
            DELEGATE: { "mode": "delegate", "issuer": issuer },
            FACADE: {
                "mode": "facade",
                "issuer": issuer,
                "authorization_endpoint": format!("{oidc}/auth"),
                "token_endpoint": format!("{oidc}/token"),
                "registration_endpoint": format!("{issuer}/clients-registrations/openid-connect"),
                "scopes": [FACADE_SCOPE],
            },
        },
    }))
    .expect("config json")
}

/// The shipped config with its address placeholders filled in (and nothing else changed), included
/// from a minimal main config that keeps every path inside the temp dir.
fn write_nginx_conf(dir: &Path, tools: &Tools, ports: &Ports, challenge_port: u16) -> PathBuf {
    let shipped = fs::read_to_string(repo().join("deploy/nginx/signpost.conf"))
        .expect("read deploy/nginx/signpost.conf");
    let templated = shipped
        .replace("__LISTEN_ADDR__", &format!("127.0.0.1:{}", ports.nginx))
        .replace("__GATEWAY_ADDR__", &format!("127.0.0.1:{}", ports.backend))
        .replace(
            "__SIGNPOST_ADDR__",
            &format!("127.0.0.1:{}", ports.signpost),
        )
        .replace(
            "__SIGNPOST_ADMIN_ADDR__",
            &format!("127.0.0.1:{challenge_port}"),
        )
        .replace("__RESCUE_5XX__", "0");
    assert!(
        !templated.contains("__"),
        "an unknown placeholder is left in deploy/nginx/signpost.conf"
    );
    fs::write(dir.join("signpost.conf"), templated).expect("write signpost.conf");
    let d = dir.display();
    let main = format!(
        "{load}\n\
         daemon off;\n\
         master_process off;\n\
         pid {d}/nginx.pid;\n\
         error_log stderr notice;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n\
         \x20   access_log {d}/access.log;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   include {d}/signpost.conf;\n\
         }}\n",
        load = tools.load_module,
    );
    let path = dir.join("nginx.conf");
    fs::write(&path, main).expect("write nginx.conf");
    path
}

// === assertions on the SDK's report ===

fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("report has no string at {pointer}:\n{v:#}"))
}

/// The whole discovery chain, as the real SDK walked it, ending at the authorization redirect.
fn assert_reaches_authorization(
    stack: &Stack,
    server: &str,
    expected_issuer: &str,
    expected_as_url: &str,
) {
    let r = stack.client(server, &["--complete"]);
    let ctx = || format!("report:\n{r:#}\n{}", stack.logs());
    assert_eq!(
        r["outcome"],
        "redirect",
        "the SDK did not reach the authorization redirect; {}",
        ctx()
    );
    let endpoint = stack.endpoint(server);
    let prm_url = format!(
        "{}/.well-known/oauth-protected-resource/mcp/{server}/mcp",
        stack.origin()
    );

    // 1. The hint came from signpost (not the backend's own challenge) and names the PRM URL.
    assert_eq!(r["first_challenge"]["status"], 401, "{}", ctx());
    let www = s(&r, "/first_challenge/www_authenticate");
    assert_eq!(
        www,
        stack.hint(&endpoint),
        "the 401 must carry signpost's hint, unchanged; {}",
        ctx()
    );
    assert!(
        !www.contains(BACKEND_OWN),
        "the backend's own challenge leaked; {}",
        ctx()
    );
    assert_eq!(s(&r, "/hint/resource_metadata_url"), prm_url, "{}", ctx());
    assert_eq!(
        s(&r, "/hint_legacy_resource_metadata_url"),
        prm_url,
        "{}",
        ctx()
    );

    // 2. PRM: fetched from the hint, resource byte-equal to the endpoint, one AS.
    assert_eq!(s(&r, "/prm_fetched/url"), prm_url, "{}", ctx());
    assert_eq!(r["prm_fetched"]["status"], 200, "{}", ctx());
    assert_eq!(
        s(&r, "/prm_fetched/body/resource"),
        endpoint,
        "PRM resource must equal the endpoint URL; {}",
        ctx()
    );
    let servers = r["prm_fetched"]["body"]["authorization_servers"]
        .as_array()
        .expect("authorization_servers");
    assert_eq!(servers.len(), 1, "{}", ctx());
    assert_eq!(
        servers[0],
        expected_issuer,
        "authorization_servers[0]; {}",
        ctx()
    );
    assert_eq!(
        r["prm_via_helper"],
        r["prm_fetched"]["body"],
        "discoverOAuthProtectedResourceMetadata; {}",
        ctx()
    );
    assert_eq!(
        s(&r, "/discovery_state/authorizationServerUrl"),
        expected_issuer,
        "{}",
        ctx()
    );

    // 3. AS metadata: found where the SDK looks first, issuer identical to where it started.
    assert_eq!(
        s(&r, "/as_metadata_fetched/url"),
        expected_as_url,
        "{}",
        ctx()
    );
    assert_eq!(
        s(&r, "/as_metadata_fetched/body/issuer"),
        expected_issuer,
        "AS metadata issuer; {}",
        ctx()
    );
    let methods = &r["as_metadata_fetched"]["body"]["code_challenge_methods_supported"];
    assert!(
        methods
            .as_array()
            .is_some_and(|m| m.iter().any(|x| x == "S256")),
        "{}",
        ctx()
    );

    // 4. Registration at the IdP, then the authorization request: PKCE S256 and resource=.
    assert_eq!(
        r["registration"]["status"],
        201,
        "dynamic client registration; {}",
        ctx()
    );
    let client_id = s(&r, "/registration/body/client_id");
    let auth_endpoint = format!("{}/protocol/openid-connect/auth?", stack.issuer);
    assert!(
        s(&r, "/authorization_url").starts_with(&auth_endpoint),
        "{}",
        ctx()
    );
    assert_eq!(
        s(&r, "/authorization_params/client_id"),
        client_id,
        "{}",
        ctx()
    );
    assert_eq!(
        s(&r, "/authorization_params/code_challenge_method"),
        "S256",
        "{}",
        ctx()
    );
    assert!(
        s(&r, "/authorization_params/code_challenge").len() >= 43,
        "{}",
        ctx()
    );
    assert_eq!(
        s(&r, "/authorization_params/resource"),
        endpoint,
        "resource= must equal the endpoint URL; {}",
        ctx()
    );
    assert_eq!(
        s(&r, "/authorization_params/response_type"),
        "code",
        "{}",
        ctx()
    );

    // 5. The user logs in; the token reaches the backend through nginx and the session works.
    assert_eq!(
        r["completed"]["connected"],
        true,
        "login completed but MCP did not connect; {}",
        ctx()
    );
}

// === tests ===

#[test]
fn delegate_server_reaches_the_authorization_redirect_with_the_real_sdk() {
    let stack = Stack::start();
    let issuer = stack.issuer.clone();
    let as_url = format!(
        "http://127.0.0.1:{}/.well-known/oauth-authorization-server/realms/{REALM}",
        stack.ports.idp
    );
    assert_reaches_authorization(&stack, DELEGATE, &issuer, &as_url);
}

#[test]
fn facade_server_reaches_the_authorization_redirect_with_the_real_sdk() {
    let stack = Stack::start();
    let facade_issuer = format!("{}/{FACADE}", stack.origin());
    let as_url = format!(
        "{}/.well-known/oauth-authorization-server/{FACADE}",
        stack.origin()
    );
    assert_reaches_authorization(&stack, FACADE, &facade_issuer, &as_url);
}

/// One request of a table-driven test: method, path, headers, body.
type Case<'a> = (&'a str, String, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn every_method_gets_exactly_one_challenge_and_it_is_signposts() {
    let stack = Stack::start();
    for server in [DELEGATE, FACADE] {
        let path = format!("/mcp/{server}/mcp");
        let expected = stack.hint(&stack.endpoint(server));
        let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
        let post_hdrs = [
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
        ];
        // POST (TS, Python), GET (the Rust SDK's probe), DELETE, HEAD; with and without a trailing slash.
        let cases: Vec<Case<'_>> = vec![
            ("POST", path.clone(), &post_hdrs, init),
            (
                "GET",
                path.clone(),
                &[
                    ("Accept", "text/event-stream"),
                    ("MCP-Protocol-Version", "2024-11-05"),
                ],
                "",
            ),
            ("DELETE", path.clone(), &[], ""),
            ("HEAD", path.clone(), &[], ""),
            ("POST", format!("{path}/"), &post_hdrs, init),
        ];
        for (method, p, hdrs, body) in cases {
            let r = stack.request(method, &p, hdrs, body);
            assert_eq!(r.status, 401, "{method} {p}: {r:#?}\n{}", stack.logs());
            let www = r.one("WWW-Authenticate");
            assert_eq!(
                www, expected,
                "{method} {p}: the client must see signpost's hint and nothing else"
            );
            assert!(!www.contains(BACKEND_OWN));
            assert_eq!(r.one("Access-Control-Allow-Origin"), "*", "{method} {p}");
            assert!(
                r.one("Access-Control-Expose-Headers")
                    .contains("WWW-Authenticate"),
                "{method} {p}"
            );
            if method != "HEAD" {
                assert_eq!(
                    r.json()["error"],
                    "unauthorized",
                    "{method} {p}: {}",
                    r.body
                );
            }
        }
        // A rejected token: still exactly one challenge, now with error="invalid_token".
        let r = stack.request(
            "POST",
            &path,
            &[("Authorization", "Bearer expired"), post_hdrs[0]],
            init,
        );
        assert_eq!(r.status, 401, "{r:#?}");
        let www = r.one("WWW-Authenticate");
        assert!(www.starts_with(&expected), "{www}");
        assert!(www.contains(r#"error="invalid_token""#), "{www}");
        // The right token passes straight through.
        let r = stack.request(
            "POST",
            &path,
            &[("Authorization", "Bearer good"), post_hdrs[0], post_hdrs[1]],
            init,
        );
        assert_eq!(r.status, 200, "{r:#?}");
        assert!(r.all("WWW-Authenticate").is_empty());
        assert_eq!(
            r.json()["result"]["serverInfo"]["name"],
            "signpost-e2e-backend"
        );
    }
}

#[test]
fn insufficient_scope_reaches_the_client_as_signposts_step_up_challenge() {
    let stack = Stack::start();
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let path = format!("/mcp/{FACADE}/mcp");
    let r = stack.request(
        "POST",
        &path,
        &[
            ("Authorization", "Bearer scoped"),
            ("Content-Type", "application/json"),
        ],
        init,
    );
    assert_eq!(r.status, 403, "{r:#?}\n{}", stack.logs());
    let www = r.one("WWW-Authenticate");
    let hint = stack.hint(&stack.endpoint(FACADE));
    let prm = format!(
        r#"Bearer resource_metadata="{}/.well-known/oauth-protected-resource{path}""#,
        stack.origin()
    );
    assert!(www.starts_with(&prm), "{www}");
    assert!(www.contains(r#"error="insufficient_scope""#), "{www}");
    let scope = www
        .split(r#"scope=""#)
        .nth(1)
        .and_then(|t| t.split('"').next())
        .expect("scope=");
    let scopes: Vec<&str> = scope.split(' ').collect();
    assert!(
        scopes.contains(&"admin:write"),
        "the backend's scope is lost: {www}"
    );
    assert!(
        scopes.contains(&FACADE_SCOPE),
        "the server's scope is lost: {www} (hint {hint})"
    );
    assert_eq!(r.json()["error"], "insufficient_scope", "{}", r.body);

    // The real SDK re-runs auth with that scope and reaches the authorization redirect.
    let rep = stack.client(FACADE, &["--token", "scoped", "--complete"]);
    assert_eq!(rep["first_challenge"]["status"], 403, "{rep:#}");
    assert_eq!(rep["hint"]["error"], "insufficient_scope", "{rep:#}");
    assert_eq!(rep["outcome"], "redirect", "{rep:#}");
    let asked = s(&rep, "/authorization_params/scope");
    assert!(
        asked.split(' ').any(|x| x == "admin:write"),
        "step-up scope not requested: {asked}"
    );
    assert_eq!(
        s(&rep, "/authorization_params/resource"),
        stack.endpoint(FACADE)
    );
    assert_eq!(rep["completed"]["connected"], true, "{rep:#}");
}

/// nginx's plain challenge: the gateway's status, exactly one `Bearer realm` header, JSON body.
fn assert_plain_fallback(stack: &Stack, why: &str) {
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    let path = format!("/mcp/{DELEGATE}/mcp");
    for (method, auth) in [
        ("POST", None),
        ("GET", None),
        ("POST", Some("Bearer expired")),
    ] {
        let mut h = vec![("Content-Type", "application/json")];
        if let Some(a) = auth {
            h.push(("Authorization", a));
        }
        let r = stack.request(method, &path, &h, if method == "POST" { init } else { "" });
        assert_eq!(
            r.status,
            401,
            "{why}: {method} {auth:?} must stay 401: {r:#?}\n{}",
            stack.logs()
        );
        let www = r.one("WWW-Authenticate");
        assert!(www.starts_with("Bearer realm="), "{why}: {www}");
        assert!(!www.contains(BACKEND_OWN), "{why}: {www}");
        assert_eq!(r.one("Access-Control-Allow-Origin"), "*");
        assert_eq!(r.json()["error"], "unauthorized");
    }
    // DESIGN §8 (issue 11): the plain challenge keeps the gateway's status, also for a step-up.
    let r = stack.request("POST", &path, &[("Authorization", "Bearer scoped")], init);
    assert_eq!(r.status, 403, "{why}: a 403 must stay 403: {r:#?}");
    let www = r.one("WWW-Authenticate");
    assert!(www.starts_with(r#"Bearer realm="mcp""#), "{why}: {www}");
}

#[test]
fn gateway_401_stays_401_when_signpost_is_down() {
    let mut stack = Stack::start();
    stack.stop_signpost();
    assert_plain_fallback(&stack, "signpost stopped");
}

#[test]
fn gateway_401_stays_401_whatever_the_challenge_endpoint_answers() {
    let fake = FakeSignpost::start(Behave::Status500);
    let mode = fake.mode.clone();
    let stack = Stack::start_with(Some(fake));
    for m in [
        Behave::Status500,
        Behave::Status404,
        Behave::Hangup,
        Behave::Silence,
    ] {
        mode.store(m as u8, Ordering::Relaxed);
        assert_plain_fallback(&stack, &format!("challenge endpoint misbehaving: {m:?}"));
    }
}

#[test]
fn preflights_and_discovery_documents_pass_through_without_auth() {
    let stack = Stack::start();
    let origin = ("Origin", "http://localhost:6274");
    let r = stack.request(
        "OPTIONS",
        &format!("/mcp/{FACADE}/mcp"),
        &[
            origin,
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "authorization, mcp-protocol-version",
            ),
        ],
        "",
    );
    assert_eq!(r.status, 204, "{r:#?}");
    assert_eq!(r.one("Access-Control-Allow-Origin"), "*");
    let allowed = r.one("Access-Control-Allow-Headers").to_ascii_lowercase();
    for h in [
        "mcp-protocol-version",
        "authorization",
        "content-type",
        "mcp-session-id",
    ] {
        assert!(allowed.contains(h), "{h} missing from {allowed}");
    }
    assert!(r.all("WWW-Authenticate").is_empty());

    let prm = format!("/.well-known/oauth-protected-resource/mcp/{FACADE}/mcp");
    let r = stack.request(
        "OPTIONS",
        &prm,
        &[origin, ("Access-Control-Request-Method", "GET")],
        "",
    );
    assert_eq!(r.status, 204, "well-known preflight: {r:#?}");
    // Discovery requests carry tokens and protocol versions; the documents never care.
    let r = stack.request(
        "GET",
        &prm,
        &[
            ("Authorization", "Bearer whatever"),
            ("MCP-Protocol-Version", "2024-11-05"),
        ],
        "",
    );
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.json()["resource"], stack.endpoint(FACADE));
    assert_eq!(r.one("Access-Control-Allow-Origin"), "*");
    // The facade's AS metadata is signpost's, under the gateway origin.
    let r = stack.request(
        "GET",
        &format!("/.well-known/oauth-authorization-server/{FACADE}"),
        &[],
        "",
    );
    assert_eq!(r.status, 200, "{r:#?}");
    assert_eq!(r.json()["issuer"], format!("{}/{FACADE}", stack.origin()));
    // Unknown well-known paths are signpost's JSON 404, not the gateway's.
    let r = stack.request(
        "GET",
        "/.well-known/oauth-protected-resource/mcp/nope/mcp",
        &[],
        "",
    );
    assert_eq!(r.status, 404);
    assert!(r.json().get("error").is_some(), "{}", r.body);
}

// === completed logins with the real SDK clients (tests/common/e2e.rs) ===

use harness::{Idp, Options, Sdk, Stack as LoginStack};

/// Both SDK clients log in at `urls` of one stack; the reports in the order (url, sdk).
fn logins_at(urls: &[String]) -> Vec<(Sdk, String, Value)> {
    let runs: Vec<(Sdk, String, Vec<&'static str>)> = urls
        .iter()
        .flat_map(|u| Sdk::ALL.map(|sdk| (sdk, u.clone(), vec![])))
        .collect();
    let reports = harness::run_logins(&runs);
    runs.into_iter()
        .zip(reports)
        .map(|((sdk, url, _), r)| (sdk, url, r))
        .collect()
}

#[test]
fn both_sdks_complete_the_login_at_oidc_provider_for_delegate_servers() {
    let stack = LoginStack::start_with(
        harness::Proxy::Nginx,
        Options {
            idp: Idp::Oidc,
            ..Options::default()
        },
    );
    let urls = [harness::SERVER, harness::DISCOVERED].map(|s| stack.url(s, harness::SHAPES[0]));
    for (sdk, url, report) in logins_at(&urls) {
        harness::assert_login(&stack, &report, &url);
        // oidc-provider always sends RFC 9207 iss; for a delegate server it is the issuer itself.
        assert_eq!(
            report["authorizations"][0]["iss"], stack.issuer,
            "{sdk:?} {url}: {report:#}"
        );
    }
}

#[test]
fn both_sdks_complete_a_facade_login_when_the_idp_sends_no_iss() {
    let stack = LoginStack::start(harness::Proxy::Nginx);
    let url = stack.url(harness::FACADE, harness::SHAPES[0]);
    let (issuer, as_url) = stack.facade_issuer();
    for (sdk, url, report) in logins_at(&[url]) {
        harness::assert_login_at(&stack, &report, &url, &issuer, &as_url);
        assert!(
            report["authorizations"][0]["iss"].is_null(),
            "{sdk:?}: {report:#}"
        );
    }
}

#[test]
fn a_facade_over_an_idp_that_sends_iss_fails_python_and_passes_ts_v1() {
    let stack = LoginStack::start_with(
        harness::Proxy::Nginx,
        Options {
            idp_args: vec!["--iss".to_owned()],
            ..Options::default()
        },
    );
    let url = stack.url(harness::FACADE, harness::SHAPES[0]);
    let (issuer, as_url) = stack.facade_issuer();
    for (sdk, url, report) in logins_at(&[url]) {
        assert_eq!(
            report["authorizations"][0]["iss"], stack.issuer,
            "{sdk:?}: {report:#}"
        );
        match sdk {
            // TS v1's API never sees `iss` (CLIENTS.md): it completes.
            Sdk::Ts => harness::assert_login_at(&stack, &report, &url, &issuer, &as_url),
            // Python checks it against the facade's issuer and stops before the token request.
            Sdk::Python => {
                assert_eq!(report["ok"], false, "{report:#}");
                assert_eq!(report["token_obtained"], false, "{report:#}");
                let error = report["error"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                assert!(error.contains("iss"), "{report:#}");
            }
        }
    }
}
