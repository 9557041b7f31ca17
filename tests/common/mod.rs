//! Test harness: a real signpost (both listeners) in-process on pre-bound `127.0.0.1:0` ports with a
//! config file in a temporary directory, a minimal raw HTTP/1.1 client (raw so tests can send
//! garbage), and `wait_until` for polls with a deadline.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use signpost::testing::state::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running signpost.
pub struct TestServer {
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub state: Arc<AppState>,
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Writes `config` to `<tempdir>/signpost.json` and serves it.
    pub async fn start(config: &str) -> TestServer {
        TestServer::start_with_delay(config, Duration::ZERO).await
    }

    /// The same, with a `--shutdown-delay`.
    pub async fn start_with_delay(config: &str, delay: Duration) -> TestServer {
        let settings = signpost::testing::state::Settings {
            shutdown_grace: Duration::from_secs(5),
            shutdown_delay: delay,
            ..Default::default()
        };
        TestServer::start_with_settings(config, settings).await
    }

    /// The same, with every listener setting chosen by the test.
    pub async fn start_with_settings(
        config: &str,
        settings: signpost::testing::state::Settings,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("signpost.json");
        std::fs::write(&config_path, config).expect("write config");
        TestServer::serve_file(dir, config_path, settings).await
    }

    /// Loads the config at `config_path` (inside `dir`, which the server keeps alive) and serves
    /// it on pre-bound `127.0.0.1:0` listeners, without watching it.
    async fn serve_file(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        settings: signpost::testing::state::Settings,
    ) -> TestServer {
        let registry = signpost::testing::app::load_file(&config_path, 1)
            .unwrap_or_else(|p| panic!("test config is invalid:\n{p}"));
        let state = AppState::with_settings(registry, settings);
        let public = TcpListener::bind("127.0.0.1:0").await.expect("bind public");
        let admin = TcpListener::bind("127.0.0.1:0").await.expect("bind admin");
        let (public_addr, admin_addr) = (public.local_addr().unwrap(), admin.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(signpost::testing::lifecycle::serve_until_stopped(
            public,
            admin,
            state.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        TestServer {
            public: public_addr,
            admin: admin_addr,
            state,
            dir,
            config_path,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown without waiting for the drain.
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Signals shutdown and waits until both listeners have drained.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .expect("drained within 10 s")
                .expect("server task did not panic");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.begin_shutdown();
    }
}

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: SocketAddr) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Sends `method path` with `Host: host` and extra header lines, and reads the answer.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut raw = format!("{method} {path} HTTP/1.1\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            raw.push_str("Host: test.local\r\n");
        }
        for (k, v) in headers {
            raw.push_str(&format!("{k}: {v}\r\n"));
        }
        raw.push_str("\r\n");
        self.send_raw(raw.as_bytes()).await;
        self.read_response(method == "HEAD")
            .await
            .expect("a response")
    }

    /// Reads one response; `None` when the server closed the connection first.
    pub async fn read_response(&mut self, head: bool) -> Option<Response> {
        let end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                return None;
            }
        };
        let head_text = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head_text.split("\r\n");
        let status_line = lines.next()?;
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let length = if head || status == 204 || status == 304 {
            0
        } else {
            length
        };
        while self.buf.len() < length {
            if !self.fill().await {
                return None;
            }
        }
        let body = self.buf.drain(..length).collect();
        Some(Response {
            status,
            headers,
            body,
        })
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!("no answer within 10 s"),
        }
    }

    /// True when the server has closed the connection (reads EOF within `within`).
    pub async fn is_closed(&mut self, within: Duration) -> bool {
        let mut chunk = [0u8; 64];
        matches!(
            tokio::time::timeout(within, self.stream.read(&mut chunk)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Response {
    Conn::open(addr).await.request(method, path, headers).await
}

pub async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[]).await
}

/// Polls `check` every 10 ms until it returns true; panics with `what` after `deadline`.
pub async fn wait_until<F, Fut>(deadline: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = tokio::time::Instant::now();
    loop {
        if check().await {
            return;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// === Hot reload, held connections and the real binary (tests/reload.rs, tests/shutdown.rs) ===

/// A running signpost whose config file is watched and hot-reloaded; derefs to its [`TestServer`].
pub struct WatchedServer {
    pub server: TestServer,
    /// The running watcher; `reload.reload()` is what `SIGHUP` triggers.
    pub reload: signpost::testing::reload::Reloading,
}

impl std::ops::Deref for WatchedServer {
    type Target = TestServer;
    fn deref(&self) -> &TestServer {
        &self.server
    }
}

impl std::ops::DerefMut for WatchedServer {
    fn deref_mut(&mut self) -> &mut TestServer {
        &mut self.server
    }
}

impl TestServer {
    /// Serves the config file already at `config_path` (inside `dir`, which the server keeps
    /// alive), without watching it.
    pub async fn start_at(dir: tempfile::TempDir, config_path: PathBuf) -> TestServer {
        let settings = signpost::testing::state::Settings {
            shutdown_grace: Duration::from_secs(5),
            ..Default::default()
        };
        TestServer::serve_file(dir, config_path, settings).await
    }

    /// Writes `config` to `<tempdir>/signpost.json` and serves it with the watcher running and
    /// the poll disabled, so only file-system events (or `reload.reload()`) can reload it.
    pub async fn start_watched(config: &str) -> WatchedServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let config_path = dir.path().join("signpost.json");
        std::fs::write(&config_path, config).expect("write config");
        TestServer::start_watched_at(dir, config_path, events_only()).await
    }

    /// Serves the config file already at `config_path`, watched with `options`.
    pub async fn start_watched_at(
        dir: tempfile::TempDir,
        config_path: PathBuf,
        options: signpost::testing::reload::Options,
    ) -> WatchedServer {
        let server = TestServer::start_at(dir, config_path).await;
        let reload = signpost::testing::reload::spawn(
            server.config_path.clone(),
            server.state.clone(),
            options,
        );
        // Let the reloader take its first look, so a test's first edit is a change after it.
        assert!(reload.reload().await.is_some(), "the reloader runs");
        WatchedServer { server, reload }
    }
}

/// Watcher options for tests that prove the notify path: events on, poll off.
pub fn events_only() -> signpost::testing::reload::Options {
    signpost::testing::reload::Options {
        poll_interval: Duration::ZERO,
        watch_events: true,
    }
}

impl Conn {
    /// Wraps a stream connected by the caller (e.g. with a small receive buffer).
    pub fn from_stream(stream: TcpStream) -> Conn {
        Conn {
            stream,
            buf: Vec::new(),
        }
    }
}

/// The real `signpost serve` binary on `127.0.0.1:0` ports, logging JSON on stderr; its log lines
/// are collected. Killed on drop.
pub struct Binary {
    pub child: std::process::Child,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    logs: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Binary {
    /// Starts `signpost serve --config <config_path> <extra…>` and waits until it listens.
    pub async fn serve(config_path: &std::path::Path, extra: &[&str]) -> Binary {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_signpost"));
        cmd.arg("serve").arg("--config").arg(config_path);
        Binary::start(cmd, extra).await
    }

    /// The same with the config path in `SIGNPOST_CONFIG` instead of `--config`.
    pub async fn serve_env(config_path: &std::path::Path, extra: &[&str]) -> Binary {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_signpost"));
        cmd.arg("serve").env("SIGNPOST_CONFIG", config_path);
        Binary::start(cmd, extra).await
    }

    /// Starts `cmd` (a `signpost serve` command line, possibly behind a wrapper) with the test
    /// listeners and JSON logs, and waits until it listens.
    pub async fn start(mut cmd: std::process::Command, extra: &[&str]) -> Binary {
        use std::io::BufRead;
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(["--log-format", "json"])
            .args(extra)
            .env("SIGNPOST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start the signpost binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let logs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap_or_else(|e| e.into_inner()).push(line);
            }
        });
        let mut addrs = None;
        let start = tokio::time::Instant::now();
        while addrs.is_none() {
            if let Some(status) = child.try_wait().expect("try_wait") {
                let logs = logs.lock().unwrap_or_else(|e| e.into_inner()).join("\n");
                panic!("signpost exited early ({status}):\n{logs}");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "signpost did not listen within 10 s"
            );
            addrs = logs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .find(|v| v["fields"]["message"] == "signpost listening")
                .map(|v| {
                    let addr = |k: &str| -> SocketAddr {
                        v["fields"][k]
                            .as_str()
                            .and_then(|s| s.parse().ok())
                            .expect("address")
                    };
                    (addr("public"), addr("admin"))
                });
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (public, admin) = addrs.expect("listening");
        Binary {
            child,
            public,
            admin,
            logs,
        }
    }

    /// Sends a signal by name (`HUP`, `TERM`) with the `kill` command.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Every log message (`fields.message`) so far.
    pub fn messages(&self) -> Vec<String> {
        self.logs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|v| v["fields"]["message"].as_str().map(str::to_owned))
            .collect()
    }

    /// Every raw log line so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until the process exits, at most `deadline`.
    pub async fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let start = tokio::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                start.elapsed() < deadline,
                "signpost still running after {deadline:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// === Upstream discovery (tests/upstream.rs) ===

impl TestServer {
    /// [`TestServer::start`] plus the upstream discovery task `signpost serve` runs, fetching with
    /// `limits` (small ones keep the timeout tests short).
    pub async fn start_with_upstreams(
        config: &str,
        limits: signpost::testing::fetch::Limits,
    ) -> TestServer {
        let server = TestServer::start(config).await;
        tokio::spawn(signpost::testing::refresh::keep_upstreams_fresh(
            server.state.clone(),
            signpost::testing::fetch::Fetcher::new(limits),
        ));
        server
    }
}
