//! The login harness of the end-to-end tests (tests/proxies.rs; the LiteLLM and findings tests reuse
//! it): one `Stack` of real processes on 127.0.0.1, each stopped by its PID when the stack drops —
//!
//! ```text
//!  login.mjs / login.py ──► main proxy (deploy/<proxy>, render.sh + run.sh)
//!   (real MCP SDK clients)     ├─/.well-known/*──► signpost public ─┐ one config: `wiki` delegate → IdP,
//!                              ├─/mcp/… /…/mcp──► mcp-backend.mjs  │ `big` delegate (≈ 8 KiB hint)
//!                              └─on 401/403────► signpost admin /challenge
//!                   ──► test-idp.mjs (AS metadata, DCR, authorization, token, introspection)
//! ```
//!
//! plus raw HTTP (headers exactly as sent), recording and misbehaving listeners that stand in for
//! signpost, and `assert_login`, which checks every link of a login report: 401 → hint → PRM → AS
//! metadata → registration → authorization → token → tools/list.
//!
//! Include it with `#[path = "common/e2e.rs"] mod e2e;`. Needs node, tests/e2e/node_modules,
//! .venv/e2e (Python SDK, envoy, traefik) and the proxies: `.ci/install` installs them all; a test
//! whose tool is missing fails saying so (never skips).

#![allow(dead_code)]

use std::fs;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long any one process may take to become ready (2 cores, several stacks at once).
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one login driver run may take (it gives up itself after 120 s).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(150);
/// The IdP realm: issuer `http://127.0.0.1:<port>/realms/eng`, like Keycloak.
pub const REALM: &str = "eng";
/// The server every login goes to, and its scope (in the hint, so clients request it).
pub const SERVER: &str = "wiki";
pub const SERVER_SCOPE: &str = "mcp:tools";
/// A server with so many scopes that its hint is just under 8 KiB.
pub const BIG: &str = "big";
/// A delegate server whose upstream metadata signpost discovers (`"discover": true`).
pub const DISCOVERED: &str = "found";
/// A facade server over the IdP (its AS metadata is signpost's, issuer `{origin}/eng`).
pub const FACADE: &str = "eng";
/// Every server of the stack's config.
pub const SERVERS: [&str; 4] = [SERVER, BIG, DISCOVERED, FACADE];
/// The backend's own challenge marker: it must never reach a client.
pub const BACKEND_OWN: &str = "backend-own-challenge";
/// How long the backend's `stream` tool waits between its first event and its answer.
pub const STREAM_DELAY: Duration = Duration::from_millis(1500);
/// The default resource path shapes (DESIGN §3), with `{server}`.
pub const SHAPES: [&str; 3] = ["/mcp/{server}/mcp", "/mcp/{server}", "/{server}/mcp"];

const INSTALL_HINT: &str = "run `.ci/install` (as root): it installs the proxies, node's \
                            tests/e2e/node_modules and .venv/e2e";

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn e2e_dir() -> PathBuf {
    repo().join("tests/e2e")
}

/// The Python of `.venv/e2e` (the MCP Python SDK), or a failure saying how to get it.
pub fn python() -> PathBuf {
    let p = repo().join(".venv/e2e/bin/python");
    assert!(p.exists(), "{} is missing; {INSTALL_HINT}", p.display());
    p
}

fn require_node() {
    let sdk = e2e_dir().join("node_modules/@modelcontextprotocol/sdk/package.json");
    assert!(sdk.exists(), "{} is missing; {INSTALL_HINT}", sdk.display());
}

// === processes ===

/// A child process stopped (SIGTERM, then SIGKILL) when dropped; stdout and stderr in files.
pub struct Proc {
    pub name: String,
    child: Child,
    out: PathBuf,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let out = dir.join(format!("{name}.out"));
        let log = dir.join(format!("{name}.log"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).expect("create stdout file"))
            .stderr(fs::File::create(&log).expect("create log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}; {INSTALL_HINT}"));
        Proc {
            name: name.to_owned(),
            child,
            out,
            log,
        }
    }

    pub fn output(&self) -> String {
        let out = fs::read_to_string(&self.out).unwrap_or_default();
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        format!("{out}{log}")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Panics with the process's output if it has exited.
    pub fn check_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); its output:\n{}",
                self.name,
                self.output()
            );
        }
    }

    /// The first line a node helper prints once listening (`{"port":N,…}`), parsed.
    pub fn ready_line(&mut self) -> Value {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_alive();
            let text = fs::read_to_string(&self.out).unwrap_or_default();
            if let Some(line) = text
                .split_inclusive('\n')
                .next()
                .filter(|l| l.ends_with('\n'))
            {
                return serde_json::from_str(line.trim()).unwrap_or_else(|e| {
                    panic!(
                        "{} printed {line:?}, not its JSON ready line: {e}",
                        self.name
                    )
                });
            }
            assert!(
                Instant::now() < deadline,
                "{} not ready after {READY_TIMEOUT:?}:\n{}",
                self.name,
                self.output()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stderr(Stdio::null())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `N` distinct ports nobody listens on right now, for processes that must be told their port
/// before they start (signpost, the proxies). They come from below Linux's ephemeral range
/// (32768–60999): a port the kernel hands out for `bind(0)` can be taken again as the source port
/// of any outgoing connection before the process binds it, and these tests open hundreds. A
/// per-process counter (test binaries run one at a time; their tests share the counter) keeps
/// parallel tests apart; each port is checked bindable before it is returned.
pub fn free_ports<const N: usize>() -> [u16; N] {
    const FIRST: u32 = 10_000;
    const SPAN: u32 = 22_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Start each test binary somewhere else in the span, so that a process left over by an
    // earlier binary is unlikely to sit on the first ports handed out.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7_919) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let mut held = Vec::with_capacity(N);
    while held.len() < N {
        let port = (FIRST + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    std::array::from_fn(|i| held[i].local_addr().expect("local addr").port())
}

/// Polls `probe` until true, failing with `what` and the process output at the deadline.
pub fn wait_until(what: &str, proc: &mut Proc, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        proc.check_alive();
        if probe() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not ready after {READY_TIMEOUT:?}; {} output:\n{}",
            proc.name,
            proc.output()
        );
        thread::sleep(Duration::from_millis(25));
    }
}

// === raw HTTP (headers exactly as sent) ===

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Every header line, in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `name`; panics when there are none or several.
    pub fn one(&self, name: &str) -> &str {
        match self.all(name).as_slice() {
            [v] => v,
            other => panic!("expected exactly one {name} header, got {other:?} in {self:#?}"),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {self:#?}"))
    }
}

/// One HTTP/1.1 request with `Connection: close` to 127.0.0.1:`port`; the answer off the wire.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    s.write_all(request_bytes(port, method, path, headers, body).as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD").ok_or_else(|| {
        std::io::Error::other(format!("bad response: {:?}", String::from_utf8_lossy(&raw)))
    })
}

fn request_bytes(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    req.push_str("Connection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

/// Sends one request and reports when each of `markers` first appeared in the answer, measured
/// from the moment the request was written (to see whether a stream arrives before it ends).
pub fn http_timed(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
    markers: &[&str],
) -> (Response, Vec<Option<Duration>>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(request_bytes(port, "POST", path, headers, body).as_bytes())
        .expect("write");
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut seen = vec![None; markers.len()];
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&raw);
        for (i, m) in markers.iter().enumerate() {
            if seen[i].is_none() && text.contains(m) {
                seen[i] = Some(start.elapsed());
            }
        }
    }
    let r = parse_response(&raw, false)
        .unwrap_or_else(|| panic!("bad response: {:?}", String::from_utf8_lossy(&raw)));
    (r, seen)
}

pub fn parse_response(raw: &[u8], head: bool) -> Option<Response> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head_text = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head_text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or((l, ""));
            (n.to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked && !head {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&b[..eol])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        b = &b[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

pub fn status_of(port: u16, path: &str) -> Option<u16> {
    http(port, "GET", path, &[], "").ok().map(|r| r.status)
}

// === listeners that stand in for signpost ===

/// What a [`FakeSignpost`] does with each connection.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(u8)]
pub enum Behave {
    /// 200 with a small JSON body, recording the request head (a recording public listener).
    Record = 0,
    Status500 = 1,
    /// Accept, read, close without a byte.
    Hangup = 2,
    /// Accept and never answer.
    Silence = 3,
    Status404 = 4,
}

/// A TCP listener that answers as told and records the head of every request it reads.
pub struct FakeSignpost {
    pub port: u16,
    pub mode: Arc<AtomicU8>,
    /// Every request head received, as text.
    pub seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakeSignpost {
    pub fn start(mode: Behave) -> FakeSignpost {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake signpost");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let mode = Arc::new(AtomicU8::new(mode as u8));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, sn, st) = (mode.clone(), seen.clone(), stop.clone());
        thread::spawn(move || {
            let mut held = Vec::new();
            while !st.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let _ = conn.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                sn.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(String::from_utf8_lossy(&buf).into_owned());
                let reply = |status: &str, body: &str| {
                    format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                match m.load(Ordering::Relaxed) {
                    0 => drop(conn.write_all(reply("200 OK", r#"{"recorded":true}"#).as_bytes())),
                    1 => drop(conn.write_all(reply("500 Internal Server Error", "{}").as_bytes())),
                    2 => drop(conn.shutdown(Shutdown::Both)),
                    4 => drop(conn.write_all(reply("404 Not Found", "{}").as_bytes())),
                    _ => held.push(conn),
                }
            }
        });
        FakeSignpost {
            port,
            mode,
            seen,
            stop,
        }
    }

    pub fn set(&self, mode: Behave) {
        self.mode.store(mode as u8, Ordering::Relaxed);
    }

    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for FakeSignpost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// === the main proxies ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proxy {
    Nginx,
    Envoy,
    Haproxy,
    Caddy,
    Traefik,
}

impl Proxy {
    pub fn name(self) -> &'static str {
        match self {
            Proxy::Nginx => "nginx",
            Proxy::Envoy => "envoy",
            Proxy::Haproxy => "haproxy",
            Proxy::Caddy => "caddy",
            Proxy::Traefik => "traefik",
        }
    }

    /// Whether `deploy/<proxy>/` follows DESIGN §8 (render.sh + run.sh).
    pub fn shipped(self) -> bool {
        repo()
            .join("deploy")
            .join(self.name())
            .join("run.sh")
            .exists()
    }
}

/// Which IdP the stack's servers log in at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Idp {
    /// tests/e2e/test-idp.mjs: Keycloak-shaped, RFC 8414 metadata path-inserted.
    #[default]
    Test,
    /// tests/e2e/oidc-idp.mjs: `oidc-provider`, OIDC discovery path-appended only, `iss` always.
    Oidc,
}

/// How a stack is put together.
#[derive(Default)]
pub struct Options {
    pub idp: Idp,
    /// Render the proxy with `--rescue-5xx`.
    pub rescue_5xx: bool,
    /// Extra arguments for test-idp.mjs (`--iss`, `--require-scope`, …).
    pub idp_args: Vec<String>,
    /// Point the proxy's SIGNPOST (public) address here instead of signpost's.
    pub public_override: Option<u16>,
    /// Point the proxy's ADMIN address here instead of signpost's.
    pub admin_override: Option<u16>,
}

/// A running stack: IdP, backend, signpost, main proxy.
pub struct Stack {
    pub proxy: Proxy,
    pub port: u16,
    pub signpost_port: u16,
    pub admin_port: u16,
    pub idp_port: u16,
    pub backend_port: u16,
    pub issuer: String,
    pub idp_kind: Idp,
    pub config: PathBuf,
    // Drop order: the proxy first; the temp dir last.
    proxy_proc: Proc,
    signpost: Option<Proc>,
    backend: Proc,
    idp: Proc,
    pub dir: tempfile::TempDir,
}

/// The scopes of [`BIG`]: as many as keep its hint at or just under 8 KiB.
pub fn big_scopes() -> Vec<String> {
    (0..400).map(|i| format!("scope.{i:04}.read:all")).collect()
}

impl Stack {
    pub fn start(proxy: Proxy) -> Stack {
        Stack::start_with(proxy, Options::default())
    }

    pub fn start_with(proxy: Proxy, opts: Options) -> Stack {
        require_node();
        let dir = tempfile::tempdir().expect("tempdir");
        let _ = fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        );
        let [port, signpost_port, admin_port] = free_ports();
        let origin = format!("http://127.0.0.1:{port}");

        let node = |script: &str, extra: &[String]| {
            let mut c = Command::new("node");
            c.current_dir(e2e_dir())
                .arg(script)
                .args(["--port", "0"])
                .args(extra);
            c
        };
        let mut idp_args = vec!["--realm".to_owned(), REALM.to_owned()];
        idp_args.extend(opts.idp_args.iter().cloned());
        let script = match opts.idp {
            Idp::Test => "test-idp.mjs",
            Idp::Oidc => "oidc-idp.mjs",
        };
        let mut idp = Proc::spawn("idp", &mut node(script, &idp_args), dir.path());
        let ready = idp.ready_line();
        let idp_port = ready["port"].as_u64().expect("idp port") as u16;
        let issuer = ready["issuer"].as_str().expect("issuer").to_owned();

        let mut backend_args = vec![
            "--stream-delay".to_owned(),
            STREAM_DELAY.as_millis().to_string(),
            "--introspect".to_owned(),
        ];
        match opts.idp {
            Idp::Test => {
                backend_args.push(format!("{issuer}/protocol/openid-connect/token/introspect"))
            }
            Idp::Oidc => backend_args.extend([
                format!("{issuer}/token/introspection"),
                "--introspect-client".to_owned(),
                "mcp-backend:mcp-backend-secret".to_owned(),
            ]),
        }
        for server in SERVERS {
            for shape in SHAPES {
                backend_args.push("--audience".to_owned());
                backend_args.push(format!("{origin}{}", shape.replace("{server}", server)));
            }
        }
        let mut backend = Proc::spawn(
            "backend",
            &mut node("mcp-backend.mjs", &backend_args),
            dir.path(),
        );
        let backend_port = backend.ready_line()["port"].as_u64().expect("backend port") as u16;

        let config = dir.path().join("signpost.json");
        fs::write(&config, signpost_config(&origin, &issuer, opts.idp))
            .expect("write signpost config");
        let mut signpost = Proc::spawn(
            "signpost",
            Command::new(env!("CARGO_BIN_EXE_signpost")).args([
                "serve",
                "--config",
                config.to_str().expect("utf-8 path"),
                "--listen",
                &format!("127.0.0.1:{signpost_port}"),
                "--admin-listen",
                &format!("127.0.0.1:{admin_port}"),
            ]),
            dir.path(),
        );
        wait_until("signpost", &mut signpost, || {
            status_of(admin_port, "/readyz") == Some(200)
        });

        let public = opts.public_override.unwrap_or(signpost_port);
        let admin = opts.admin_override.unwrap_or(admin_port);
        let mut proxy_proc = start_proxy(
            proxy,
            dir.path(),
            port,
            backend_port,
            public,
            admin,
            opts.rescue_5xx,
        );
        let prm = format!("/.well-known/oauth-protected-resource/mcp/{SERVER}/mcp");
        wait_until(proxy.name(), &mut proxy_proc, || {
            status_of(port, &prm) == Some(200)
        });
        Stack {
            proxy,
            port,
            signpost_port,
            admin_port,
            idp_port,
            backend_port,
            issuer,
            idp_kind: opts.idp,
            config,
            proxy_proc,
            signpost: Some(signpost),
            backend,
            idp,
            dir,
        }
    }

    pub fn origin(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The path of `server` at a resource path `shape`.
    pub fn path(server: &str, shape: &str) -> String {
        shape.replace("{server}", server)
    }

    /// The MCP URL of `server` at `shape`, through the proxy.
    pub fn url(&self, server: &str, shape: &str) -> String {
        format!("{}{}", self.origin(), Stack::path(server, shape))
    }

    /// The PRM URL the hint of `url` must name.
    pub fn prm_url(&self, url: &str) -> String {
        let path = url
            .strip_prefix(&self.origin())
            .expect("a URL of this stack");
        format!(
            "{}/.well-known/oauth-protected-resource{path}",
            self.origin()
        )
    }

    /// Where MCP clients find the IdP's metadata: the RFC 8414 path-inserted URL they try first
    /// (test IdP), or the OIDC path-appended one they try last (oidc-provider serves only that).
    pub fn as_metadata_url(&self) -> String {
        match self.idp_kind {
            Idp::Test => format!(
                "http://127.0.0.1:{}/.well-known/oauth-authorization-server/realms/{REALM}",
                self.idp_port
            ),
            Idp::Oidc => format!("{}/.well-known/openid-configuration", self.issuer),
        }
    }

    /// The facade server's issuer (signpost's) and the URL of its AS metadata.
    pub fn facade_issuer(&self) -> (String, String) {
        (
            format!("{}/{FACADE}", self.origin()),
            format!(
                "{}/.well-known/oauth-authorization-server/{FACADE}",
                self.origin()
            ),
        )
    }

    /// A raw request to the proxy.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Response {
        http(self.port, method, path, headers, body).unwrap_or_else(|e| {
            panic!(
                "{method} {path} through {}: {e}\n{}",
                self.proxy.name(),
                self.logs()
            )
        })
    }

    /// What `signpost hint` says for `resource`: the exact value the proxy must relay.
    pub fn hint(&self, resource: &str) -> String {
        signpost_hint(&self.config, resource)
    }

    /// A token of the IdP for `resource` with `scope`, without a login (raw tests).
    pub fn mint(&self, resource: &str, scope: &str) -> String {
        let body = json!({ "resource": resource, "scope": scope }).to_string();
        let r = http(
            self.idp_port,
            "POST",
            "/_test/token",
            &[("Content-Type", "application/json")],
            &body,
        )
        .expect("mint a token");
        assert_eq!(r.status, 200, "{r:#?}");
        r.json()["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// What the IdP granted so far (authorizations, tokens: resource and scope).
    pub fn idp_events(&self) -> Value {
        http(self.idp_port, "GET", "/_test/events", &[], "")
            .expect("idp events")
            .json()
    }

    /// Runs a login driver against `url` (calling `calls` after tools/list); its JSON report.
    pub fn login(&self, sdk: Sdk, url: &str, calls: &[&str]) -> Value {
        run_login(sdk, url, calls)
    }

    /// Stops signpost (both listeners).
    pub fn stop_signpost(&mut self) {
        if let Some(mut p) = self.signpost.take() {
            p.stop();
        }
    }

    /// The last lines of every process's output, for failure messages.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        let procs: Vec<&Proc> = [
            Some(&self.proxy_proc),
            self.signpost.as_ref(),
            Some(&self.backend),
            Some(&self.idp),
        ]
        .into_iter()
        .flatten()
        .collect();
        for p in procs {
            let text = p.output();
            let tail: Vec<&str> = text.lines().rev().take(30).collect();
            s.push_str(&format!("--- {} (last lines) ---\n", p.name));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

/// The signpost config of every stack, on the default resource paths: `wiki` (one scope) and
/// `big` (≈ 8 KiB hint) delegating to the IdP, `found` delegating with `"discover": true`, and
/// `eng`, a facade over the IdP.
pub fn signpost_config(origin: &str, issuer: &str, idp: Idp) -> String {
    let (auth, token, reg) = match idp {
        Idp::Test => (
            format!("{issuer}/protocol/openid-connect/auth"),
            format!("{issuer}/protocol/openid-connect/token"),
            format!("{issuer}/clients-registrations/openid-connect"),
        ),
        Idp::Oidc => (
            format!("{issuer}/auth"),
            format!("{issuer}/token"),
            format!("{issuer}/reg"),
        ),
    };
    serde_json::to_string_pretty(&json!({
        "public_url": origin,
        "servers": {
            SERVER: { "mode": "delegate", "issuer": issuer, "scopes": [SERVER_SCOPE] },
            BIG: { "mode": "delegate", "issuer": issuer, "scopes": big_scopes() },
            DISCOVERED: { "mode": "delegate", "issuer": issuer, "discover": true, "scopes": [SERVER_SCOPE] },
            FACADE: {
                "mode": "facade",
                "issuer": issuer,
                "authorization_endpoint": auth,
                "token_endpoint": token,
                "registration_endpoint": reg,
                "scopes": [SERVER_SCOPE],
            },
        },
    }))
    .expect("config json")
}

/// Renders and starts `proxy` in front of the backend: `deploy/render.sh` + `deploy/<proxy>/run.sh`
/// (DESIGN §8), with `.venv/e2e/bin` (envoy, traefik) on `PATH`.
fn start_proxy(
    proxy: Proxy,
    dir: &Path,
    listen: u16,
    gateway: u16,
    public: u16,
    admin: u16,
    rescue: bool,
) -> Proc {
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let out = dir.join(proxy.name());
    if proxy.shipped() {
        let mut render = Command::new(repo().join("deploy/render.sh"));
        if rescue {
            render.arg("--rescue-5xx");
        }
        let status = render
            .arg(proxy.name())
            .arg(&out)
            .args([addr(listen), addr(gateway), addr(public), addr(admin)])
            .stdout(Stdio::null())
            .status()
            .expect("run deploy/render.sh");
        assert!(status.success(), "deploy/render.sh {} failed", proxy.name());
        let path = format!(
            "{}:{}",
            repo().join(".venv/e2e/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        return Proc::spawn(
            proxy.name(),
            Command::new(repo().join("deploy").join(proxy.name()).join("run.sh"))
                .arg(&out)
                .env("PATH", path),
            dir,
        );
    }
    panic!(
        "deploy/{}/run.sh is missing: deploy/{} does not follow DESIGN §8",
        proxy.name(),
        proxy.name()
    );
}

// === the login drivers ===

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sdk {
    /// tests/e2e/login.mjs: @modelcontextprotocol/sdk (TS v1).
    Ts,
    /// tests/e2e/login.py: `mcp` (Python).
    Python,
}

impl Sdk {
    pub const ALL: [Sdk; 2] = [Sdk::Ts, Sdk::Python];
}

/// Runs one login driver and returns its report; fails when it crashes or prints no report.
pub fn run_login(sdk: Sdk, url: &str, calls: &[&str]) -> Value {
    let mut cmd = match sdk {
        Sdk::Ts => {
            require_node();
            let mut c = Command::new("node");
            c.current_dir(e2e_dir()).arg("login.mjs");
            c
        }
        Sdk::Python => {
            let mut c = Command::new(python());
            c.current_dir(e2e_dir()).arg("login.py");
            c
        }
    };
    cmd.args(["--url", url]);
    for c in calls {
        cmd.args(["--call", c]);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the {sdk:?} login driver: {e}; {INSTALL_HINT}"));
    let started = Instant::now();
    let deadline = started + LOGIN_TIMEOUT;
    // Read both pipes in threads so a chatty driver never blocks on a full pipe.
    let mut so = child.stdout.take().expect("stdout");
    let mut se = child.stderr.take().expect("stderr");
    let out_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let err_t = thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait login driver") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the {sdk:?} login driver for {url} did not finish within {LOGIN_TIMEOUT:?}");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    assert!(
        status.success(),
        "the {sdk:?} login driver for {url} failed ({status}):\n{stdout}\n{stderr}"
    );
    let mut report: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| {
            panic!("the {sdk:?} login driver printed no report ({e}):\n{stdout}\n{stderr}")
        });
    report["seconds"] = json!(started.elapsed().as_secs_f64());
    report["stderr_tail"] =
        Value::String(stderr.lines().rev().take(15).collect::<Vec<_>>().join("\n"));
    report
}

/// Runs several logins at once, one thread each; the reports in the order given.
pub fn run_logins(runs: &[(Sdk, String, Vec<&'static str>)]) -> Vec<Value> {
    thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(sdk, url, calls)| s.spawn(move || run_login(*sdk, url, calls)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

pub fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("report has no string at {pointer}:\n{v:#}"))
}

/// Space-separated scopes as a sorted set, without `offline_access` (which the Python SDK adds
/// by itself when the AS advertises it and the client may refresh).
pub fn scope_set(scope: &str) -> Vec<String> {
    let mut v: Vec<String> = scope
        .split(' ')
        .filter(|x| !x.is_empty() && *x != "offline_access")
        .map(str::to_owned)
        .collect();
    v.sort();
    v.dedup();
    v
}

/// The index of the first request of `report` after `from` that matches, or a failure naming `link`.
fn find_request(
    report: &Value,
    from: usize,
    link: &str,
    ctx: &dyn Fn() -> String,
    m: impl Fn(&str, &str, u64) -> bool,
) -> usize {
    let reqs = report["requests"].as_array().expect("requests");
    reqs.iter()
        .enumerate()
        .skip(from)
        .find(|(_, r)| {
            m(
                s(r, "/method"),
                s(r, "/url"),
                r["status"].as_u64().unwrap_or(0),
            )
        })
        .map(|(i, _)| i)
        .unwrap_or_else(|| {
            panic!(
                "login chain broken at `{link}` (after request #{from}); {}",
                ctx()
            )
        })
}

/// Asserts every link of a completed login to `url` through `stack`, in order: the MCP request's
/// 401 → signpost's hint (exactly the `signpost hint` value) → PRM (resource = `url`, the IdP
/// as its one AS) → the IdP's AS metadata (issuer identical) → registration → authorization
/// (PKCE S256, resource = `url`, scope from the hint, code and state back) → token (bound to
/// `url`) → the MCP request with the token answered, tools listed.
pub fn assert_login(stack: &Stack, report: &Value, url: &str) {
    assert_login_at(stack, report, url, &stack.issuer, &stack.as_metadata_url());
}

/// [`assert_login`] for a server whose authorization server is `issuer`, its metadata at `as_url`
/// (a facade: signpost's issuer and document).
pub fn assert_login_at(stack: &Stack, report: &Value, url: &str, issuer: &str, as_url: &str) {
    let ctx = || format!("report:\n{report:#}\n{}", stack.logs());
    assert_eq!(report["ok"], true, "the login did not complete; {}", ctx());
    let prm_url = stack.prm_url(url);

    // 1. 401 with signpost's hint, never the backend's own challenge.
    assert_eq!(report["hint"]["status"], 401, "{}", ctx());
    let www = s(report, "/hint/www_authenticate");
    assert_eq!(
        www,
        stack.hint(url),
        "the 401 must carry signpost's hint, unchanged; {}",
        ctx()
    );
    assert!(!www.contains(BACKEND_OWN), "{}", ctx());
    assert_eq!(s(report, "/hint/resource_metadata"), prm_url, "{}", ctx());
    assert_eq!(s(report, "/hint/scope"), SERVER_SCOPE, "{}", ctx());
    // 2. PRM.
    assert_eq!(s(report, "/prm/url"), prm_url, "{}", ctx());
    assert_eq!(
        s(report, "/prm/body/resource"),
        url,
        "PRM resource; {}",
        ctx()
    );
    assert_eq!(
        report["prm"]["body"]["authorization_servers"],
        json!([issuer]),
        "{}",
        ctx()
    );
    // 3. AS metadata, found where the client looks.
    assert_eq!(s(report, "/as_metadata_url"), as_url, "{}", ctx());
    assert_eq!(s(report, "/as_metadata/issuer"), issuer, "{}", ctx());
    // 4. Registration.
    assert_eq!(
        report["registration"]["status"],
        201,
        "dynamic registration; {}",
        ctx()
    );
    assert!(
        !s(report, "/registration/client_id").is_empty(),
        "{}",
        ctx()
    );
    // 5. Authorization.
    let a = &report["authorizations"][0];
    assert_eq!(a["resource"], url, "authorization resource=; {}", ctx());
    assert_eq!(a["code_challenge_method"], "S256", "{}", ctx());
    assert_eq!(
        scope_set(a["scope"].as_str().unwrap_or("")),
        scope_set(SERVER_SCOPE),
        "the hint's scope; {}",
        ctx()
    );
    assert!(
        matches!(a["status"].as_u64(), Some(302 | 303)),
        "the authorization redirects; {}",
        ctx()
    );
    assert_eq!(a["code"], true, "no code on the redirect; {}", ctx());
    assert_eq!(a["state_ok"], true, "{}", ctx());
    // 6. Token.
    assert_eq!(report["token_obtained"], true, "{}", ctx());
    assert_eq!(report["tokens"][0]["status"], 200, "{}", ctx());
    // 7. tools/list with the token (the backend accepted a token bound to `url`).
    let tools = report["tools"].as_array().expect("tools");
    for t in ["echo", "admin_write", "files_read", "stream"] {
        assert!(tools.iter().any(|x| x == t), "tool {t} missing; {}", ctx());
    }

    // The same chain in the request log, in order.
    let md = &report["as_metadata"];
    let reg = s(md, "/registration_endpoint").to_owned();
    let tok = s(md, "/token_endpoint").to_owned();
    let auth = s(md, "/authorization_endpoint").to_owned();
    let same = |u: &str| u.trim_end_matches('/') == url;
    let i = find_request(report, 0, "401", &ctx, |m, u, st| {
        m == "POST" && same(u) && st == 401
    });
    let i = find_request(report, i, "PRM", &ctx, |m, u, st| {
        m == "GET" && u == prm_url && st == 200
    });
    let i = find_request(report, i, "AS metadata", &ctx, |m, u, st| {
        m == "GET" && u == as_url && st == 200
    });
    let i = find_request(report, i, "registration", &ctx, |m, u, st| {
        m == "POST" && u == reg && st == 201
    });
    let i = find_request(report, i, "authorization", &ctx, |m, u, st| {
        m == "GET" && u.starts_with(&auth) && (st == 302 || st == 303)
    });
    let i = find_request(report, i, "token", &ctx, |m, u, st| {
        m == "POST" && u == tok && st == 200
    });
    find_request(report, i, "MCP with the token", &ctx, |m, u, st| {
        m == "POST" && same(u) && st == 200
    });
}

/// What `signpost hint --config CONFIG RESOURCE` prints: the exact `WWW-Authenticate` value a
/// proxy must relay for that resource.
pub fn signpost_hint(config: &Path, resource: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args([
            "hint",
            "--config",
            config.to_str().expect("utf-8"),
            resource,
        ])
        .output()
        .expect("run signpost hint");
    assert!(
        out.status.success(),
        "signpost hint {resource}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim_end()
        .to_owned()
}
