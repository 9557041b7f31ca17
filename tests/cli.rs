//! The real `signpost` binary (DESIGN.md §7): `check`, `hint`, `serve` exit codes and output.
//! Fixtures live in tests/fixtures/; commands run with that directory as their working directory so
//! problem lines name the file exactly as given (`valid.json:2:17: …`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::Binary;

const BIN: &str = env!("CARGO_BIN_EXE_signpost");
const EX_CONFIG: i32 = 78;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `signpost` in the fixtures directory, with none of the `SIGNPOST_*` variables the test process
/// may have inherited (each test sets what it needs on the child only).
fn signpost() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(fixtures());
    for var in [
        "SIGNPOST_CONFIG",
        "SIGNPOST_LISTEN",
        "SIGNPOST_ADMIN_LISTEN",
        "SIGNPOST_LOG_FORMAT",
        "SIGNPOST_LOG",
        "SIGNPOST_SHUTDOWN_GRACE",
        "SIGNPOST_POLL_INTERVAL",
    ] {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run signpost")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 stdout")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("utf-8 stderr")
}

/// The second whitespace-separated token of every stdout line whose first token is `label`.
fn labelled(out: &str, label: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            (it.next() == Some(label)).then(|| it.next().unwrap_or("").to_owned())
        })
        .collect()
}

/// A problem line with the list after "allowed here: " replaced by "…" (it grows with new config
/// keys; the unit tests check it).
fn elide_allowed(line: &str) -> String {
    const AT: &str = "allowed here: ";
    match line.find(AT) {
        Some(i) => match line[i..].find("; remove or rename it") {
            Some(j) => format!("{}…{}", &line[..i + AT.len()], &line[i + j..]),
            None => line.to_owned(),
        },
        None => line.to_owned(),
    }
}

const GW: &str = "https://gw.example.com";

fn prm(path: &str) -> String {
    format!("{GW}/.well-known/oauth-protected-resource{path}")
}

// ---------------------------------------------------------------------------------------------
// check

#[test]
fn check_valid_config_prints_every_url_and_hint() {
    let o = run(signpost().args(["check", "--config", "valid.json"]));
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.lines().next(),
        Some("valid.json: ok: 4 servers, public_url https://gw.example.com")
    );
    // Each server with its mode, in file order.
    let headers: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(')'))
        .collect();
    assert_eq!(
        headers,
        [
            "atlassian (delegate)",
            "eng-tools (facade)",
            "github (gateway)",
            "docs (none)"
        ]
    );
    assert_eq!(
        labelled(&out, "PRM"),
        [
            prm("/mcp/atlassian/mcp"),
            prm("/mcp/atlassian"),
            prm("/mcp/eng-tools/mcp"),
            prm("/mcp/eng-tools"),
            prm("/mcp/github/mcp"),
            prm("/mcp/github"),
        ]
    );
    let as_urls: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("AS metadata"))
        .map(str::trim)
        .collect();
    assert_eq!(
        as_urls,
        [
            "https://gw.example.com/.well-known/oauth-authorization-server/eng-tools",
            "https://gw.example.com/.well-known/oauth-authorization-server/github",
        ]
    );
    let issuers: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("authorization server"))
        .map(str::trim)
        .collect();
    assert_eq!(
        issuers,
        [
            "https://auth.atlassian.com",
            "https://gw.example.com/eng-tools",
            "https://gw.example.com/github",
        ]
    );
    assert_eq!(
        labelled(&out, "hint"),
        [
            "https://gw.example.com/mcp/atlassian/mcp",
            "https://gw.example.com/mcp/atlassian",
            "https://gw.example.com/mcp/eng-tools/mcp",
            "https://gw.example.com/mcp/eng-tools",
            "https://gw.example.com/mcp/github/mcp",
            "https://gw.example.com/mcp/github",
            "https://gw.example.com/mcp/docs/mcp",
            "https://gw.example.com/mcp/docs",
        ]
    );
    let challenges: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("WWW-Authenticate: "))
        .collect();
    let atl = prm("/mcp/atlassian/mcp");
    let atl2 = prm("/mcp/atlassian");
    let eng = prm("/mcp/eng-tools/mcp");
    let eng2 = prm("/mcp/eng-tools");
    let gh = prm("/mcp/github/mcp");
    let gh2 = prm("/mcp/github");
    assert_eq!(
        challenges,
        [
            format!(r#"Bearer resource_metadata="{atl}", scope="read:jira-work""#),
            format!(r#"Bearer resource_metadata="{atl2}", scope="read:jira-work""#),
            format!(r#"Bearer resource_metadata="{eng}""#),
            format!(r#"Bearer resource_metadata="{eng2}""#),
            format!(r#"Bearer resource_metadata="{gh}", scope="repo""#),
            format!(r#"Bearer resource_metadata="{gh2}", scope="repo""#),
            r#"Bearer realm="https://gw.example.com""#.to_owned(),
            r#"Bearer realm="https://gw.example.com""#.to_owned(),
        ]
    );
    assert!(
        !out.contains("warning"),
        "warnings belong on stderr, not stdout:\n{out}"
    );

    // Warnings on stderr, one line each, with position and path.
    let err = stderr(&o);
    let warnings: Vec<&str> = err.lines().collect();
    assert!(
        !warnings.is_empty(),
        "the facade without registration warns"
    );
    for w in &warnings {
        assert!(
            w.starts_with("valid.json:") && w.contains(": warning: "),
            "not a warning line: {w}"
        );
    }
    assert!(
        warnings.iter().any(|w| w.starts_with(
            "valid.json:15:18: warning: servers.eng-tools: facade without \"registration_endpoint\""
        )),
        "{err}"
    );
}

#[test]
fn check_invalid_config_reports_every_problem_and_exits_78() {
    let o = run(signpost().args(["check", "--config", "invalid-everything.json"]));
    assert_eq!(o.status.code(), Some(EX_CONFIG));
    assert_eq!(stdout(&o), "", "nothing on stdout for an invalid config");
    let err = stderr(&o);
    assert_eq!(
        err.lines().map(elide_allowed).collect::<Vec<_>>(),
        [
            "invalid-everything.json:2:17: public_url: scheme \"ftp\" is not allowed; use https (or http for loopback)",
            "invalid-everything.json:3:20: cache_max_age: must be a whole number of seconds from 0 to 31536000",
            "invalid-everything.json:4:3: listen: unknown key; allowed here: …; remove or rename it",
            "invalid-everything.json:6:5: servers.atlassian: mode \"delegate\" needs \"issuer\": the upstream IdP's issuer exactly as its metadata spells it",
            "invalid-everything.json:6:39: servers.atlassian.client_secret: secrets do not belong in signpost's config (it serves only public metadata); remove this key",
            "invalid-everything.json:7:5: servers[\"bad name\"]: server names may use only A-Z a-z 0-9 . _ - (and are not \".\" or \"..\"); rename it",
            "invalid-everything.json:7:37: servers[\"bad name\"].issuer: not used in mode \"gateway\" (only delegate and facade servers take it); remove it or change the mode",
            "invalid-everything.json:8:22: servers.docs.mode: found \"nope\", did you mean \"none\"? (must be one of \"delegate\", \"facade\", \"gateway\", \"none\")",
            "invalid-everything.json:10:5: servers.mcp: resource path /mcp/x is also produced by server \"x\"; give one of them its own \"resource_paths\"",
            "invalid-everything.json: 9 problems; nothing was served",
        ]
    );
    assert!(
        !err.contains("hunter2"),
        "a secret value was echoed:\n{err}"
    );
}

#[test]
fn check_syntax_error_reports_only_it() {
    let o = run(signpost().args(["check", "--config", "invalid-syntax.json"]));
    assert_eq!(o.status.code(), Some(EX_CONFIG));
    assert_eq!(stdout(&o), "");
    assert_eq!(
        stderr(&o),
        "invalid-syntax.json:5:3: invalid JSON: trailing comma; remove the trailing comma\ninvalid-syntax.json: 1 problem; nothing was served\n"
    );
}

#[test]
fn check_missing_file_exits_78_with_a_clear_message() {
    let o = run(signpost().args(["check", "--config", "no-such-file.json"]));
    assert_eq!(o.status.code(), Some(EX_CONFIG));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    let first = err.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("no-such-file.json: cannot read the config file: "),
        "{err}"
    );
}

#[test]
fn check_config_from_the_environment() {
    let o = run(signpost().arg("check").env("SIGNPOST_CONFIG", "valid.json"));
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    assert_eq!(
        stdout(&o).lines().next(),
        Some("valid.json: ok: 4 servers, public_url https://gw.example.com")
    );

    let o = run(signpost()
        .arg("check")
        .env("SIGNPOST_CONFIG", "invalid-everything.json"));
    assert_eq!(o.status.code(), Some(EX_CONFIG));

    // The flag wins over the environment.
    let o = run(signpost()
        .args(["check", "--config", "valid.json"])
        .env("SIGNPOST_CONFIG", "invalid-everything.json"));
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
}

#[test]
fn check_without_a_config_is_a_usage_error() {
    let o = run(signpost().arg("check"));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--config"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// hint

#[test]
fn hint_for_a_url_and_for_a_path() {
    let expected = format!(
        "Bearer resource_metadata=\"{}\", scope=\"read:jira-work\"\n",
        prm("/mcp/atlassian/mcp")
    );
    for resource in [
        "https://gw.example.com/mcp/atlassian/mcp",
        "/mcp/atlassian/mcp",
        "/mcp/atlassian/mcp/",
        "/mcp/atlassian/mcp?session=1",
    ] {
        let o = run(signpost().args(["hint", "--config", "valid.json", resource]));
        assert_eq!(
            o.status.code(),
            Some(0),
            "{resource}: stderr:\n{}",
            stderr(&o)
        );
        assert_eq!(stdout(&o), expected, "{resource}");
    }

    let o = run(signpost().args(["hint", "--config", "valid.json", "/mcp/eng-tools"]));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        stdout(&o),
        format!("Bearer resource_metadata=\"{}\"\n", prm("/mcp/eng-tools"))
    );

    // A `none` server owns its path: the plain challenge, and success.
    let o = run(signpost().args(["hint", "--config", "valid.json", "/mcp/docs/mcp"]));
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(stdout(&o), "Bearer realm=\"https://gw.example.com\"\n");
}

#[test]
fn hint_for_an_unknown_resource_prints_the_plain_challenge_and_exits_1() {
    for resource in [
        "/mcp/nobody/mcp",
        "/mcp/atlassian/mcp/tools",
        "https://other.example.com/mcp/atlassian/mcp",
    ] {
        let o = run(signpost().args(["hint", "--config", "valid.json", resource]));
        assert_eq!(o.status.code(), Some(1), "{resource}");
        assert_eq!(
            stdout(&o),
            "Bearer realm=\"https://gw.example.com\"\n",
            "{resource}"
        );
        assert!(stderr(&o).contains(resource), "{}", stderr(&o));
    }
}

#[test]
fn hint_with_an_invalid_config_exits_78() {
    let o = run(signpost().args(["hint", "--config", "invalid-everything.json", "/mcp/x/mcp"]));
    assert_eq!(o.status.code(), Some(EX_CONFIG));
    assert_eq!(stdout(&o), "");
    assert!(
        stderr(&o).starts_with("invalid-everything.json:2:17: public_url: "),
        "{}",
        stderr(&o)
    );

    let o = run(signpost().args(["hint", "--config", "no-such-file.json", "/mcp/x/mcp"]));
    assert_eq!(o.status.code(), Some(EX_CONFIG));
}

#[test]
fn hint_reads_the_config_from_the_environment() {
    let o = run(signpost()
        .args(["hint", "/mcp/github/mcp"])
        .env("SIGNPOST_CONFIG", "valid.json"));
    assert_eq!(o.status.code(), Some(0), "stderr:\n{}", stderr(&o));
    assert_eq!(
        stdout(&o),
        format!(
            "Bearer resource_metadata=\"{}\", scope=\"repo\"\n",
            prm("/mcp/github/mcp")
        )
    );
}

// ---------------------------------------------------------------------------------------------
// serve

/// A child process killed if the test fails before it exits.
struct Running(Option<Child>);

impl Running {
    fn spawn(cmd: &mut Command) -> Running {
        Running(Some(
            cmd.stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn signpost"),
        ))
    }

    /// Waits for the exit (at most `limit`); returns the exit code and everything on stderr.
    fn wait(mut self, limit: Duration) -> (Option<i32>, String) {
        let mut child = self.0.take().expect("running");
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("signpost did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut err);
        }
        (status.code(), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A port held busy for as long as the listener lives.
fn busy() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// `GET path` on `addr`; the status code, or `None` when nothing answers.
fn http_status(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = String::new();
    s.read_to_string(&mut head).ok()?;
    head.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn serve_demo_with_config_is_a_usage_error() {
    let o = run(signpost().args(["serve", "--demo", "--config", "valid.json"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--demo"), "{}", stderr(&o));
}

#[test]
fn serve_with_an_invalid_config_exits_78_before_binding() {
    // Both ports are held busy: had signpost tried to bind, it would exit 1 instead.
    let (_public, public) = busy();
    let (_admin, admin) = busy();
    let child = Running::spawn(signpost().args([
        "serve",
        "--config",
        "invalid-everything.json",
        "--listen",
        &public,
        "--admin-listen",
        &admin,
    ]));
    let (code, err) = child.wait(Duration::from_secs(10));
    assert_eq!(code, Some(EX_CONFIG), "stderr:\n{err}");
    assert!(
        err.contains("invalid-everything.json:6:39: servers.atlassian.client_secret"),
        "every problem is logged:\n{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    assert!(!err.contains("cannot listen"), "{err}");
}

#[test]
fn serve_with_a_missing_config_exits_78() {
    let (_public, public) = busy();
    let child = Running::spawn(signpost().args([
        "serve",
        "--config",
        "no-such-file.json",
        "--listen",
        &public,
        "--admin-listen",
        "127.0.0.1:0",
    ]));
    let (code, err) = child.wait(Duration::from_secs(10));
    assert_eq!(code, Some(EX_CONFIG), "stderr:\n{err}");
    assert!(err.contains("no-such-file.json"), "{err}");
}

#[test]
fn serve_on_a_port_in_use_exits_1_naming_the_address_and_flag() {
    let (_held, addr) = busy();
    let child = Running::spawn(signpost().args([
        "serve",
        "--config",
        "valid.json",
        "--listen",
        &addr,
        "--admin-listen",
        "127.0.0.1:0",
    ]));
    let (code, err) = child.wait(Duration::from_secs(10));
    assert_eq!(code, Some(1), "stderr:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(&addr) && l.contains("--listen")),
        "no line names {addr} and --listen:\n{err}"
    );

    let (_held, addr) = busy();
    let child = Running::spawn(signpost().args([
        "serve",
        "--config",
        "valid.json",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        &addr,
    ]));
    let (code, err) = child.wait(Duration::from_secs(10));
    assert_eq!(code, Some(1), "stderr:\n{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(&addr) && l.contains("--admin-listen")),
        "no line names {addr} and --admin-listen:\n{err}"
    );
}

/// Starts `serve --config valid.json` through the common [`Binary`] helper (port 0, JSON logs)
/// and waits until it listens.
async fn serve_until_healthy() -> Binary {
    serve_with(&["--config", "valid.json"], &[]).await
}

/// Starts `serve <args>` with `env` through the common [`Binary`] helper.
async fn serve_with(args: &[&str], env: &[(&str, &str)]) -> Binary {
    let mut cmd = signpost();
    cmd.envs(env.iter().copied()).arg("serve").args(args);
    let b = Binary::start(cmd, &[]).await;
    assert_eq!(http_status(b.admin, "/healthz"), Some(200));
    b
}

#[tokio::test]
async fn serve_exits_0_on_sigterm() {
    let mut b = serve_until_healthy().await;
    // It serves the config's documents.
    assert_eq!(
        http_status(
            b.public,
            "/.well-known/oauth-protected-resource/mcp/github/mcp"
        ),
        Some(200)
    );
    let (code, err) = terminate(&mut b).await;
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(err.contains("SIGTERM"), "{err}");
}

#[tokio::test]
async fn log_format_json_emits_json_lines() {
    // An invalid config: every problem is logged, as JSON.
    let o = run(signpost().args([
        "--log-format",
        "json",
        "serve",
        "--config",
        "invalid-everything.json",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ]));
    assert_eq!(o.status.code(), Some(EX_CONFIG));
    let err = stderr(&o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 9, "every problem is logged:\n{err}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.get("level").is_some(), "no level: {line}");
        assert!(v.get("fields").is_some(), "no fields: {line}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("servers.atlassian.client_secret")),
        "{err}"
    );

    // A running server logs JSON too (the flag is global: the helper gives it after the
    // subcommand).
    let mut b = serve_until_healthy().await;
    let (code, err) = terminate(&mut b).await;
    assert_eq!(code, Some(0), "stderr:\n{err}");
    for line in err.lines().filter(|l| !l.trim().is_empty()) {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
}

/// Sends SIGTERM and waits for the exit: `(exit code, stderr)`.
async fn terminate(b: &mut Binary) -> (Option<i32>, String) {
    b.signal("TERM");
    let status = b.wait_exit(Duration::from_secs(15)).await;
    (status.code(), b.log_lines().join("\n"))
}

#[tokio::test]
async fn serve_demo_works_in_an_image_that_sets_signpost_config() {
    let mut b = serve_with(
        &["--demo"],
        &[("SIGNPOST_CONFIG", "/nonexistent/signpost.json")],
    )
    .await;
    assert_eq!(
        http_status(
            b.public,
            "/.well-known/oauth-protected-resource/mcp/atlassian/mcp"
        ),
        Some(200)
    );
    let (code, err) = terminate(&mut b).await;
    assert_eq!(code, Some(0), "stderr:\n{err}");
    assert!(err.contains("demo"), "{err}");
}

#[test]
fn serve_without_config_or_demo_is_a_usage_error() {
    let o = run(signpost().args(["serve"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--config"), "{}", stderr(&o));
}

// ---------------------------------------------------------------------------------------------
// reading the config defensively (issue 14)

/// A named pipe at `path`, made by the real `mkfifo`.
fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo (coreutils)");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Runs `cmd`, killing it if it has not exited within `deadline` (then the test fails).
fn run_within(cmd: &mut Command, deadline: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run signpost");
    let start = Instant::now();
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("signpost did not exit within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

#[test]
fn check_gives_up_on_a_slow_pipe_writer_within_the_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("slow.json");
    mkfifo(&fifo);
    // A real slow writer: one byte every 100 ms, 4 s in all, far longer than the 1 s allowed.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) {
                for b in std::fs::read("tests/fixtures/valid.json")
                    .unwrap_or_else(|_| b"{\"public_url\": \"https://gw.example.com\"}".to_vec())
                    .iter()
                    .take(40)
                {
                    if f.write_all(&[*b]).is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        })
    };
    let o = run_within(
        signpost()
            .args(["check", "--config-read-timeout", "1s", "--config"])
            .arg(&fifo),
        Duration::from_secs(8),
    );
    assert_eq!(o.status.code(), Some(EX_CONFIG), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.lines().next().is_some_and(|l| l
            .contains("reading the config pipe did not finish within 1s (--config-read-timeout)")),
        "{err}"
    );
    writer.join().unwrap();
}

#[test]
fn a_fifo_nobody_writes_never_wedges_check_or_serve() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("signpost.json");
    mkfifo(&fifo);
    let o = run_within(
        signpost()
            .args(["check", "--config-read-timeout", "1s", "--config"])
            .arg(&fifo),
        Duration::from_secs(8),
    );
    assert_eq!(o.status.code(), Some(EX_CONFIG), "{}", stderr(&o));
    // serve is stopped by SIGTERM while it waits for the pipe: it exits at once, 0.
    let mut child = signpost()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--config-read-timeout", "60s", "--config"])
        .arg(&fifo)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start signpost");
    // Once signpost has the FIFO open for reading (its signal handlers are in place by then), a
    // non-blocking open for writing succeeds.
    let start = Instant::now();
    while {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .is_err()
    } {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "serve never opened the FIFO"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let start = Instant::now();
    let code = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s.code();
        }
        if start.elapsed() > Duration::from_secs(5) {
            let _ = child.kill();
            panic!("serve ignored SIGTERM while reading a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(code, Some(0));
}

#[test]
fn check_reads_a_pipe_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.pipe");
    mkfifo(&fifo);
    let text = std::fs::read(fixtures().join("valid.json")).unwrap();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            f.write_all(&text).unwrap();
        })
    };
    let o = run_within(
        signpost().args(["check", "--config"]).arg(&fifo),
        Duration::from_secs(10),
    );
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("ok: 4 servers"), "{}", stdout(&o));
}

#[test]
fn anything_but_a_regular_file_is_refused_with_one_line() {
    for (path, what) in [("/dev/zero", "a character device"), (".", "a directory")] {
        let o = run_within(
            signpost().args(["check", "--config", path]),
            Duration::from_secs(10),
        );
        assert_eq!(o.status.code(), Some(EX_CONFIG));
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 2, "{err}");
        assert!(
            err.starts_with(&format!(
                "{path}: the config path is {what}, not a regular file;"
            )),
            "{err}"
        );
    }
    // A symlink to a regular file is a regular file.
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link.json");
    std::os::unix::fs::symlink(fixtures().join("valid.json"), &link).unwrap();
    let o = run(signpost().args(["check", "--config"]).arg(&link));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn a_huge_file_is_refused_unread() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    // 500 MiB, sparse: refused by its size, before a byte is read.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(500 << 20)
        .unwrap();
    let o = run_within(
        signpost().args(["check", "--config"]).arg(&big),
        Duration::from_secs(10),
    );
    assert_eq!(o.status.code(), Some(EX_CONFIG));
    let err = stderr(&o);
    assert!(
        err.contains("the config file is 524288000 bytes, over the limit of 67108864 bytes")
            && err.contains("--max-config-size"),
        "{err}"
    );
    // The limit is a flag.
    let o = run(signpost().args([
        "check",
        "--max-config-size",
        "1KiB",
        "--config",
        "valid.json",
    ]));
    assert_eq!(o.status.code(), Some(EX_CONFIG));
    assert!(
        stderr(&o).contains("over the limit of 1024 bytes"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn check_warns_about_a_hint_longer_than_proxy_header_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scopes.json");
    let scopes: Vec<String> = (0..150)
        .map(|i| format!("\"scope:number-{i:03}-with-a-long-name\""))
        .collect();
    std::fs::write(
        &path,
        format!(
            r#"{{"public_url": "https://gw.example.com", "servers": {{"many": {{"mode": "delegate", "issuer": "https://idp.example.com", "scopes": [{}]}}, "few": {{"mode": "delegate", "issuer": "https://idp.example.com", "scopes": ["a"]}}}}}}"#,
            scopes.join(", ")
        ),
    )
    .unwrap();
    let o = run(signpost().args(["check", "--config"]).arg(&path));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let warnings: Vec<String> = stderr(&o)
        .lines()
        .filter(|l| l.contains("proxy_buffer_size"))
        .map(str::to_owned)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("warning: servers.many: its hint is"),
        "{warnings:?}"
    );
}
