//! Hot reload, end to end: real files in a temporary directory, the real watcher (notify), the
//! real listeners. Each way of editing a config is its own test; the watcher runs with the poll
//! disabled unless the test is about the poll, so a pass proves the event path.
//!
//! `bench_reload_latency` (ignored) measures reload latency and keep-alive throughput during
//! reloads: `cargo test --release --test reload -- --ignored --nocapture bench_reload_latency`.

#![cfg(unix)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::{Binary, Conn, TestServer, events_only, get, wait_until};
use signpost::testing::reload::{Options, Outcome};

const PRM: &str = "/.well-known/oauth-protected-resource/mcp/atlassian/mcp";
/// Generous for a loaded CI machine; a reload normally lands within ~25 ms.
const DEADLINE: Duration = Duration::from_secs(5);

/// A valid config whose PRM carries `resource_name: name`.
fn config(name: &str) -> String {
    format!(
        r#"{{
  "public_url": "https://gw.example.com",
  "servers": {{
    "atlassian": {{ "mode": "delegate", "issuer": "https://auth.atlassian.com",
                   "scopes": ["read:jira-work"], "resource_name": "{name}" }}
  }}
}}
"#
    )
}

/// The `resource_name` of the PRM served now.
async fn served(addr: SocketAddr) -> String {
    let r = get(addr, PRM).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["resource_name"]
        .as_str()
        .expect("resource_name")
        .to_owned()
}

async fn wait_served(addr: SocketAddr, name: &str) {
    wait_until(
        DEADLINE,
        &format!("resource_name {name} to be served"),
        || async move { served(addr).await == name },
    )
    .await;
}

async fn status(admin: SocketAddr) -> serde_json::Value {
    let r = get(admin, "/status").await;
    assert_eq!(r.status, 200);
    r.json()
}

async fn metric(admin: SocketAddr, series: &str) -> f64 {
    let text = get(admin, "/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
}

/// What an editor does: write a temporary file next to the config, then rename it over.
fn replace(path: &Path, text: &str) {
    let tmp = path.with_file_name(".signpost.json.tmp");
    std::fs::write(&tmp, text).expect("write temp");
    std::fs::rename(&tmp, path).expect("rename over");
}

// === Kubernetes ConfigMap volume layout (the kubelet's atomic writer) ===

/// `root/signpost.json -> ..data/signpost.json`, `root/..data -> ..<timestamp>/`.
struct Projection {
    root: PathBuf,
    current: String,
    updates: u32,
}

impl Projection {
    fn create(root: &Path, text: &str) -> Projection {
        let mut p = Projection {
            root: root.to_path_buf(),
            current: String::new(),
            updates: 0,
        };
        p.current = p.write_timestamped(text);
        std::os::unix::fs::symlink(&p.current, root.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/signpost.json", root.join("signpost.json")).unwrap();
        p
    }

    fn write_timestamped(&mut self, text: &str) -> String {
        self.updates += 1;
        let name = format!("..2026_11_26_14_{:02}_00.{:03}", self.updates, self.updates);
        std::fs::create_dir(self.root.join(&name)).unwrap();
        std::fs::write(self.root.join(&name).join("signpost.json"), text).unwrap();
        name
    }

    /// One update: new directory, `..data_tmp` symlink renamed over `..data`, old directory
    /// removed. No step touches `signpost.json` itself.
    fn swap(&mut self, text: &str) {
        let new = self.write_timestamped(text);
        std::os::unix::fs::symlink(&new, self.root.join("..data_tmp")).unwrap();
        std::fs::rename(self.root.join("..data_tmp"), self.root.join("..data")).unwrap();
        std::fs::remove_dir_all(self.root.join(&self.current)).unwrap();
        self.current = new;
    }
}

// === One test per way of editing ===

#[tokio::test]
async fn in_place_write_is_served() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    assert_eq!(served(s.public).await, "gen-A");
    std::fs::write(&s.config_path, config("gen-B")).unwrap();
    wait_served(s.public, "gen-B").await;
    let st = status(s.admin).await;
    assert_eq!(st["generation"], 2);
    assert_eq!(st["last_reload"]["ok"], true);
    assert_eq!(metric(s.admin, "signpost_config_generation").await, 2.0);
    assert_eq!(
        metric(s.admin, r#"signpost_config_reloads_total{result="ok"}"#).await,
        1.0
    );
}

#[tokio::test]
async fn rename_over_config_is_served() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    replace(&s.config_path, &config("gen-B"));
    wait_served(s.public, "gen-B").await;
    // And again: the watch is on the directory, so it survives the inode change.
    replace(&s.config_path, &config("gen-C"));
    wait_served(s.public, "gen-C").await;
    assert_eq!(status(s.admin).await["generation"], 3);
}

#[tokio::test]
async fn configmap_data_swaps_are_served_every_time() {
    let dir = tempfile::tempdir().unwrap();
    let mut projection = Projection::create(dir.path(), &config("gen-A"));
    let path = dir.path().join("signpost.json");
    let s = TestServer::start_watched_at(dir, path, events_only()).await;
    assert_eq!(served(s.public).await, "gen-A");
    projection.swap(&config("gen-B"));
    wait_served(s.public, "gen-B").await;
    projection.swap(&config("gen-C"));
    wait_served(s.public, "gen-C").await;
    let st = status(s.admin).await;
    assert_eq!(st["generation"], 3);
    assert_eq!(st["last_reload"]["ok"], true);
    // The path shown is the one configured, not the timestamped target.
    assert!(
        st["config_path"]
            .as_str()
            .unwrap()
            .ends_with("/signpost.json")
    );
    assert!(!st["config_path"].as_str().unwrap().contains("..2026"));
}

#[tokio::test]
async fn invalid_edit_keeps_serving_the_last_good_config() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    let good = config("gen-B");
    // Half a file, as a crashed or interrupted writer leaves it.
    std::fs::write(&s.config_path, &good[..good.len() / 2]).unwrap();
    let admin = s.admin;
    wait_until(DEADLINE, "the failed reload in /status", || async move {
        status(admin).await["last_reload"]["ok"] == false
    })
    .await;
    let st = status(s.admin).await;
    let error = st["last_reload"]["error"].as_str().unwrap();
    let prefix = format!("{}:", s.config_path.display());
    let rest = error
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{error}"));
    let mut pos = rest.split(':');
    let line: u32 = pos
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{error}"));
    let column: u32 = pos
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{error}"));
    assert!(line > 1 && column > 0, "{error}");
    assert_eq!(st["generation"], 1);
    assert_eq!(served(s.public).await, "gen-A");
    assert_eq!(get(s.admin, "/readyz").await.status, 200);
    assert_eq!(
        metric(s.admin, r#"signpost_config_reloads_total{result="error"}"#).await,
        1.0
    );
    assert_eq!(metric(s.admin, "signpost_config_generation").await, 1.0);
}

#[tokio::test]
async fn semantic_errors_are_all_reported_with_positions() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    let bad = config("gen-B")
        .replace("\"delegate\"", "\"delegate\", \"client_secret\": \"x\"")
        .replace("https://gw.example.com", "ftp://gw.example.com");
    replace(&s.config_path, &bad);
    let admin = s.admin;
    wait_until(DEADLINE, "the failed reload in /status", || async move {
        status(admin).await["last_reload"]["ok"] == false
    })
    .await;
    let st = status(s.admin).await;
    let error = st["last_reload"]["error"].as_str().unwrap();
    assert!(
        error.lines().count() >= 2,
        "every problem, one per line: {error}"
    );
    assert!(error.contains("client_secret"), "{error}");
    assert_eq!(served(s.public).await, "gen-A");
}

#[tokio::test]
async fn fix_after_bad_edit_is_served() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    std::fs::write(&s.config_path, "{ \"public_url\": ").unwrap();
    let admin = s.admin;
    wait_until(DEADLINE, "the failed reload", || async move {
        status(admin).await["last_reload"]["ok"] == false
    })
    .await;
    std::fs::write(&s.config_path, config("gen-B")).unwrap();
    wait_served(s.public, "gen-B").await;
    let st = status(s.admin).await;
    assert_eq!(st["generation"], 2);
    assert_eq!(st["last_reload"]["ok"], true);
    assert_eq!(st["last_reload"]["error"], serde_json::Value::Null);
}

#[tokio::test]
async fn reverting_a_bad_edit_clears_the_error() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    std::fs::write(&s.config_path, "not json").unwrap();
    let admin = s.admin;
    wait_until(DEADLINE, "the failed reload", || async move {
        status(admin).await["last_reload"]["ok"] == false
    })
    .await;
    // Back to the exact bytes being served.
    std::fs::write(&s.config_path, config("gen-A")).unwrap();
    wait_until(DEADLINE, "the reload to succeed", || async move {
        status(admin).await["last_reload"]["ok"] == true
    })
    .await;
    assert_eq!(served(s.public).await, "gen-A");
}

#[tokio::test]
async fn delete_then_recreate_keeps_serving_then_reloads() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    std::fs::remove_file(&s.config_path).unwrap();
    // The reloader sees nothing at the path and keeps serving the last good config.
    assert_eq!(s.reload.reload().await, Some(Outcome::Missing));
    assert_eq!(served(s.public).await, "gen-A");
    assert_eq!(get(s.admin, "/readyz").await.status, 200);
    assert_eq!(status(s.admin).await["last_reload"]["ok"], true);
    std::fs::write(&s.config_path, config("gen-B")).unwrap();
    wait_served(s.public, "gen-B").await;
    assert_eq!(status(s.admin).await["generation"], 2);
}

#[tokio::test]
async fn unchanged_content_is_not_a_reload() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    // The same bytes again (a `touch`, a no-op `kubectl apply`): no new generation.
    replace(&s.config_path, &config("gen-A"));
    std::fs::write(&s.config_path, config("gen-A")).unwrap();
    assert_eq!(s.reload.reload().await, Some(Outcome::Unchanged));
    replace(&s.config_path, &config("gen-B"));
    wait_served(s.public, "gen-B").await;
    assert_eq!(status(s.admin).await["generation"], 2);
    assert_eq!(
        metric(s.admin, r#"signpost_config_reloads_total{result="ok"}"#).await,
        1.0
    );
}

#[tokio::test]
async fn other_files_in_the_directory_are_ignored() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    for i in 0..20 {
        std::fs::write(s.dir.path().join(format!("other-{i}.json")), "garbage").unwrap();
    }
    replace(&s.config_path, &config("gen-B"));
    wait_served(s.public, "gen-B").await;
    let st = status(s.admin).await;
    assert_eq!(st["generation"], 2);
    assert_eq!(st["last_reload"]["ok"], true);
}

#[tokio::test]
async fn symlink_to_another_directory_edited_in_place_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let real = elsewhere.path().join("prod.json");
    std::fs::write(&real, config("gen-A")).unwrap();
    let path = dir.path().join("signpost.json");
    std::os::unix::fs::symlink(&real, &path).unwrap();
    let s = TestServer::start_watched_at(dir, path, events_only()).await;
    std::fs::write(&real, config("gen-B")).unwrap();
    wait_served(s.public, "gen-B").await;
    // Repointing the symlink is a change too.
    let other = elsewhere.path().join("staging.json");
    std::fs::write(&other, config("gen-C")).unwrap();
    let tmp = s.dir.path().join("link.tmp");
    std::os::unix::fs::symlink(&other, &tmp).unwrap();
    std::fs::rename(&tmp, &s.config_path).unwrap();
    wait_served(s.public, "gen-C").await;
    // And the watch followed the new target's directory: an in-place edit there is seen.
    std::fs::write(&other, config("gen-D")).unwrap();
    wait_served(s.public, "gen-D").await;
}

#[tokio::test]
async fn watch_survives_the_config_directory_being_replaced() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("conf");
    std::fs::create_dir(&conf).unwrap();
    let path = conf.join("signpost.json");
    std::fs::write(&path, config("gen-A")).unwrap();
    let s = TestServer::start_watched_at(root, path.clone(), events_only()).await;
    std::fs::remove_dir_all(&conf).unwrap();
    std::fs::create_dir(&conf).unwrap();
    std::fs::write(&path, config("gen-B")).unwrap();
    // Re-watched within REWATCH_INTERVAL, then looked at.
    wait_served(s.public, "gen-B").await;
    // The new directory is watched by events.
    std::fs::write(&path, config("gen-C")).unwrap();
    wait_served(s.public, "gen-C").await;
}

#[tokio::test]
async fn reload_trigger_rereads_the_file_like_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, config("gen-A")).unwrap();
    // No events, no poll: only the trigger can reload.
    let options = Options {
        poll_interval: Duration::ZERO,
        watch_events: false,
    };
    let s = TestServer::start_watched_at(dir, path, options).await;
    assert_eq!(s.reload.reload().await, Some(Outcome::Unchanged));
    std::fs::write(&s.config_path, config("gen-B")).unwrap();
    assert_eq!(served(s.public).await, "gen-A");
    assert_eq!(
        s.reload.reload().await,
        Some(Outcome::Installed { generation: 2 })
    );
    assert_eq!(served(s.public).await, "gen-B");
    assert_eq!(s.reload.reload().await, Some(Outcome::Unchanged));
    std::fs::write(&s.config_path, "{").unwrap();
    assert_eq!(s.reload.reload().await, Some(Outcome::Rejected));
    assert_eq!(served(s.public).await, "gen-B");
}

#[tokio::test]
async fn poll_catches_changes_without_events() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, config("gen-A")).unwrap();
    let options = Options {
        poll_interval: Duration::from_millis(100),
        watch_events: false,
    };
    let s = TestServer::start_watched_at(dir, path, options).await;
    std::fs::write(&s.config_path, config("gen-B")).unwrap();
    wait_served(s.public, "gen-B").await;
    // A bad file is rejected once, not once per poll.
    std::fs::write(&s.config_path, "{").unwrap();
    let admin = s.admin;
    wait_until(DEADLINE, "the failed reload", || async move {
        status(admin).await["last_reload"]["ok"] == false
    })
    .await;
    let errors = r#"signpost_config_reloads_total{result="error"}"#;
    assert_eq!(metric(s.admin, errors).await, 1.0);
    // Absence needs time to show: three more polls re-read the bad file, still one error.
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(metric(s.admin, errors).await, 1.0);
    std::fs::write(&s.config_path, config("gen-C")).unwrap();
    wait_served(s.public, "gen-C").await;
    assert_eq!(metric(s.admin, errors).await, 1.0);
}

#[tokio::test]
async fn sighup_makes_the_binary_reread_its_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, config("gen-A")).unwrap();
    let bin = Binary::serve(&path, &["--poll-interval", "0s"]).await;
    bin.signal("HUP");
    wait_until(DEADLINE, "the SIGHUP to be handled", || async {
        bin.messages()
            .iter()
            .any(|m| m.contains("config unchanged; nothing to reload"))
    })
    .await;
    assert_eq!(get(bin.admin, "/readyz").await.status, 200, "still running");
    // A bad edit is rejected once by the watcher; SIGHUP re-reads and re-reports it.
    std::fs::write(&path, "{").unwrap();
    let errors = r#"signpost_config_reloads_total{result="error"}"#;
    let admin = bin.admin;
    wait_until(DEADLINE, "the bad edit to be rejected", || async move {
        metric(admin, errors).await == 1.0
    })
    .await;
    bin.signal("HUP");
    wait_until(DEADLINE, "the SIGHUP re-read", || async move {
        metric(admin, errors).await == 2.0
    })
    .await;
    std::fs::write(&path, config("gen-B")).unwrap();
    wait_served(bin.public, "gen-B").await;
    let problem_lines = bin
        .log_lines()
        .iter()
        .filter(|l| {
            l.contains("\"level\":\"ERROR\"") && l.contains("signpost.json:1:1: invalid JSON")
        })
        .count();
    assert_eq!(
        problem_lines,
        2,
        "once by the watcher, once for SIGHUP:\n{}",
        bin.log_lines().join("\n")
    );
}

#[tokio::test]
async fn binary_watches_a_config_named_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, config("gen-A")).unwrap();
    let bin = Binary::serve_env(&path, &["--poll-interval", "0s"]).await;
    replace(&path, &config("gen-B"));
    wait_served(bin.public, "gen-B").await;
}

#[tokio::test]
async fn deleted_config_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signpost.json");
    std::fs::write(&path, config("gen-A")).unwrap();
    let bin = Binary::serve(&path, &["--poll-interval", "50ms"]).await;
    std::fs::remove_file(&path).unwrap();
    let gone = |bin: &Binary| {
        bin.messages()
            .iter()
            .filter(|m| m.contains("the config file is gone"))
            .count()
    };
    wait_until(DEADLINE, "the warning", || async { gone(&bin) == 1 }).await;
    assert_eq!(served(bin.public).await, "gen-A");
    // Absence needs time to show: six polls later, still one warning, and still serving.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gone(&bin), 1, "{:?}", bin.messages());
    assert_eq!(served(bin.public).await, "gen-A");
    assert_eq!(get(bin.admin, "/readyz").await.status, 200);
    std::fs::write(&path, config("gen-B")).unwrap();
    wait_served(bin.public, "gen-B").await;
}

// === Every answer complete while reloading ===

/// Keep-alive clients requesting in a loop; each answer must be a 200 carrying one whole PRM of
/// either version. Returns (answers, saw gen-A, saw gen-B).
async fn hammer(addr: SocketAddr, stop: Arc<AtomicBool>) -> (u64, bool, bool) {
    let mut conn = Conn::open(addr).await;
    let (mut n, mut a, mut b) = (0, false, false);
    while !stop.load(Ordering::Relaxed) {
        let r = conn.request("GET", PRM, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let doc = r.json();
        assert_eq!(doc["resource"], "https://gw.example.com/mcp/atlassian/mcp");
        assert_eq!(
            doc["authorization_servers"][0],
            "https://auth.atlassian.com"
        );
        match doc["resource_name"].as_str() {
            Some("gen-A") => a = true,
            Some("gen-B") => b = true,
            other => panic!("unexpected document {other:?}: {doc}"),
        }
        n += 1;
    }
    (n, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_is_complete_during_100_reloads() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| tokio::spawn(hammer(s.public, stop.clone())))
        .collect();
    let texts = [config("gen-A"), config("gen-B")];
    for i in 1..=100u64 {
        // In place (truncate, then write): the hardest case for "never serve half a file".
        std::fs::write(&s.config_path, &texts[(i % 2) as usize]).unwrap();
        let state = s.state.clone();
        wait_until(DEADLINE, &format!("generation {}", i + 1), || {
            let state = state.clone();
            async move { state.registry().source.generation == i + 1 }
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut total = 0;
    for c in clients {
        let (n, a, b) = c.await.expect("client did not panic");
        assert!(n > 0);
        assert!(a && b, "each client saw both versions");
        total += n;
    }
    assert!(total >= 100, "{total} answers");
    let st = status(s.admin).await;
    assert_eq!(st["generation"], 101);
    assert_eq!(st["last_reload"]["ok"], true);
    // The quiet period and the wait for the writer's close mean no half-written file was read.
    assert_eq!(
        metric(s.admin, r#"signpost_config_reloads_total{result="error"}"#).await,
        0.0
    );
}

// === Measurements (not a timed test) ===

fn summarize(name: &str, mut ms: Vec<f64>) {
    for (i, x) in ms.iter().enumerate().filter(|(_, x)| **x > 100.0) {
        println!("{name}: reload #{} took {x:.1} ms", i + 1);
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let pct = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "{name:<14} n={:<3} median {:>6.1} ms   p90 {:>6.1} ms   worst {:>6.1} ms",
        ms.len(),
        pct(0.5),
        pct(0.9),
        ms[ms.len() - 1]
    );
}

/// Time from `change` (the write, the rename, the `..data` rename) to the first answer carrying
/// the new document, polled in a tight loop on a keep-alive connection.
async fn latency(conn: &mut Conn, expected: &str, change: impl FnOnce()) -> f64 {
    let start = std::time::Instant::now();
    change();
    loop {
        let r = conn.request("GET", PRM, &[]).await;
        if r.json()["resource_name"] == expected {
            return start.elapsed().as_secs_f64() * 1000.0;
        }
        assert!(start.elapsed() < DEADLINE, "no reload within {DEADLINE:?}");
    }
}

async fn throughput(addr: SocketAddr, conns: usize, for_: Duration) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (stop, count) = (stop.clone(), count.clone());
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await;
                while !stop.load(Ordering::Relaxed) {
                    let r = conn.request("GET", PRM, &[]).await;
                    assert_eq!(r.status, 200);
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(for_).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    count.load(Ordering::Relaxed) as f64 / for_.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement: cargo test --release --test reload -- --ignored --nocapture"]
async fn bench_reload_latency() {
    // SIGNPOST_LOG=signpost::reload=debug shows every look, to explain an outlier.
    if std::env::var_os("SIGNPOST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("SIGNPOST_LOG"))
            .try_init();
    }
    const N: usize = 50;
    let names = |i: usize| format!("gen-{i}");

    let s = TestServer::start_watched(&config("gen-0")).await;
    let mut conn = Conn::open(s.public).await;
    let mut ms = Vec::new();
    for i in 1..=N {
        let (path, text) = (s.config_path.clone(), config(&names(i)));
        ms.push(latency(&mut conn, &names(i), || std::fs::write(path, text).unwrap()).await);
    }
    summarize("in-place", ms);

    let mut ms = Vec::new();
    for i in N + 1..=2 * N {
        let (path, text) = (s.config_path.clone(), config(&names(i)));
        ms.push(latency(&mut conn, &names(i), || replace(&path, &text)).await);
    }
    summarize("rename", ms);
    drop(s);

    let dir = tempfile::tempdir().unwrap();
    let mut projection = Projection::create(dir.path(), &config("gen-0"));
    let path = dir.path().join("signpost.json");
    let s = TestServer::start_watched_at(dir, path, events_only()).await;
    let mut conn = Conn::open(s.public).await;
    let mut ms = Vec::new();
    for i in 1..=N {
        let text = config(&names(i));
        // Prepare the new directory first, as the kubelet does; time from the `..data` rename.
        let new = projection.write_timestamped(&text);
        std::os::unix::fs::symlink(&new, projection.root.join("..data_tmp")).unwrap();
        let root = projection.root.clone();
        ms.push(
            latency(&mut conn, &names(i), || {
                std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap()
            })
            .await,
        );
        std::fs::remove_dir_all(projection.root.join(&projection.current)).unwrap();
        projection.current = new;
    }
    summarize("..data swap", ms);
    drop(s);

    // Keep-alive throughput without reloads and while reloading continuously (each reload waits
    // for the previous one to be served), in the same process and run. The windows alternate so
    // that drift in the machine's load hits both alike.
    let s = TestServer::start_watched(&config("gen-A")).await;
    let (window, rounds, conns) = (Duration::from_secs(2), 5, 8);
    let reloading = Arc::new(AtomicBool::new(false));
    let reloads = Arc::new(AtomicU64::new(0));
    let reloader = {
        let (reloading, reloads) = (reloading.clone(), reloads.clone());
        let (path, state) = (s.config_path.clone(), s.state.clone());
        tokio::spawn(async move {
            let texts = [config("gen-A"), config("gen-B")];
            let mut generation = state.registry().source.generation;
            loop {
                if !reloading.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                replace(&path, &texts[(generation % 2) as usize]);
                generation += 1;
                while state.registry().source.generation < generation {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                reloads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        quiet.push(throughput(s.public, conns, window).await);
        reloading.store(true, Ordering::Relaxed);
        busy.push(throughput(s.public, conns, window).await);
        reloading.store(false, Ordering::Relaxed);
    }
    reloader.abort();
    let n = reloads.load(Ordering::Relaxed);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (q, b) = (mean(&quiet), mean(&busy));
    println!(
        "throughput     {conns} keep-alive conns, {rounds} x {window:?} windows each, alternating: \
         {q:.0} req/s without reloads, {b:.0} req/s during {n} reloads ({:.1} reloads/s): {:+.1}%",
        n as f64 / (window.as_secs_f64() * rounds as f64),
        (b / q - 1.0) * 100.0
    );
    let show = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "               per window: quiet [{}]  reloading [{}]",
        show(&quiet),
        show(&busy)
    );
}

// === Defensive reads: FIFOs, pipes (issue 14) ===

/// A named pipe at `path`, made by the real `mkfifo`.
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo (coreutils)");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// Opens the FIFO for writing on a thread of its own (that blocks until a reader opens it) and
/// writes `text`, then closes it.
fn feed_fifo(path: &Path, text: String) -> std::thread::JoinHandle<()> {
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&path) {
            let _ = f.write_all(text.as_bytes());
        }
    })
}

#[tokio::test]
async fn a_fifo_renamed_over_the_config_is_refused_without_blocking() {
    let s = TestServer::start_watched(&config("gen-A")).await;
    let fifo = s.dir.path().join("fifo");
    mkfifo(&fifo);
    // Nothing ever writes it: a plain read of it would block the reloader forever.
    std::fs::rename(&fifo, &s.config_path).unwrap();
    let outcome = tokio::time::timeout(DEADLINE, s.reload.reload())
        .await
        .expect("the look at a FIFO returns");
    assert_eq!(outcome, Some(Outcome::Rejected));
    let st = status(s.admin).await;
    let error = st["last_reload"]["error"].as_str().expect("an error");
    assert_eq!(error.lines().count(), 1, "one line: {error}");
    assert!(
        error.contains("is a pipe or FIFO") && error.contains("not a regular file"),
        "{error}"
    );
    assert!(st["config_read"]["read_pending_since"].is_null(), "{st}");
    assert_eq!(
        served(s.public).await,
        "gen-A",
        "the last good config stays"
    );
    // A regular file again is served as usual.
    replace(&s.config_path, &config("gen-B"));
    wait_served(s.public, "gen-B").await;
    s.server.shutdown().await;
}

#[tokio::test]
async fn a_config_from_a_pipe_is_read_once_and_reloads_are_off_not_failing() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("config.pipe");
    mkfifo(&fifo);
    let writer = feed_fifo(&fifo, config("gen-A"));
    let bin = Binary::serve(&fifo, &["--poll-interval", "50ms"]).await;
    writer.join().unwrap();
    assert_eq!(served(bin.public).await, "gen-A");
    let st = status(bin.admin).await;
    assert!(
        st["config_read"]["reloads"]
            .as_str()
            .is_some_and(|r| r.starts_with("off: ") && r.contains("pipe")),
        "{st}"
    );
    bin.signal("HUP");
    wait_until(DEADLINE, "the SIGHUP to be handled", || async {
        bin.messages()
            .iter()
            .any(|m| m.contains("SIGHUP received; nothing to reload"))
    })
    .await;
    let st = status(bin.admin).await;
    assert_eq!(st["last_reload"]["ok"], true, "{st}");
    let errors = r#"signpost_config_reloads_total{result="error"}"#;
    assert_eq!(metric(bin.admin, errors).await, 0.0);
}

// === Upstream refreshes across reloads (issue 14) ===

/// A loopback IdP answering every request with the current `doc` (one request per connection),
/// counting requests.
struct TinyIdp {
    addr: SocketAddr,
    doc: Arc<std::sync::Mutex<serde_json::Value>>,
    hits: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl TinyIdp {
    async fn start(path: &str) -> TinyIdp {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let issuer = format!("http://{addr}{path}");
        let doc = Arc::new(std::sync::Mutex::new(serde_json::json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "registration_endpoint": format!("{issuer}/register"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
        })));
        let hits = Arc::new(AtomicU64::new(0));
        let (d, h) = (doc.clone(), hits.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let (d, h) = (d.clone(), h.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    h.fetch_add(1, Ordering::SeqCst);
                    let body = d.lock().unwrap().to_string();
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes()).await;
                });
            }
        });
        TinyIdp {
            addr,
            doc,
            hits,
            task,
        }
    }

    fn issuer(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, key: &str, value: serde_json::Value) {
        self.doc.lock().unwrap()[key] = value;
    }
}

impl Drop for TinyIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A facade discovering its endpoints from `issuer`, refreshed every `refresh`.
fn discovering(issuer: &str, refresh: &str) -> String {
    format!(
        r#"{{"public_url": "https://gw.example.com", "upstream_refresh": {refresh},
  "servers": {{"eng": {{"mode": "facade", "issuer": "{issuer}", "discover": true}}}}}}"#
    )
}

const ENG_AS: &str = "/.well-known/oauth-authorization-server/eng";

async fn fetches_ok(s: &TestServer, n: u64) {
    wait_until(DEADLINE, &format!("{n} upstream fetches"), || async {
        s.state.upstreams.fetches_ok.load(Ordering::SeqCst) >= n
    })
    .await;
}

#[tokio::test]
async fn an_upstream_document_re_renders_only_when_a_relayed_field_changes() {
    let idp = TinyIdp::start("/realms/eng").await;
    let s = TestServer::start_with_upstreams(
        &discovering(&idp.issuer("/realms/eng"), "\"1h\""),
        signpost::testing::fetch::Limits::default(),
    )
    .await;
    wait_until(DEADLINE, "the facade's metadata", || async {
        get(s.public, ENG_AS).await.status == 200
    })
    .await;
    fetches_ok(&s, 1).await;
    // Held, so a new snapshot can never reuse its address.
    let rendered = Arc::clone(&*s.state.registry());
    // A nonce that changes on every fetch is not relayed: nothing is rendered anew. Two fetches,
    // so a render the first one started would have finished before the second is recorded.
    for (n, nonce) in [(2, "a"), (3, "b")] {
        idp.set("nonce", serde_json::json!(nonce));
        s.state.upstreams.refresh_now();
        fetches_ok(&s, n).await;
    }
    assert!(
        Arc::ptr_eq(&rendered, &*s.state.registry()),
        "re-rendered for a field no document relays"
    );
    // A relayed field is.
    let revoke = format!("{}/revoke", idp.issuer("/realms/eng"));
    idp.set("revocation_endpoint", serde_json::json!(revoke));
    s.state.upstreams.refresh_now();
    wait_until(DEADLINE, "the new revocation_endpoint", || async {
        get(s.public, ENG_AS).await.json()["revocation_endpoint"] == revoke.as_str()
    })
    .await;
    assert!(idp.hits.load(Ordering::SeqCst) >= 4);
}

#[tokio::test]
async fn a_reload_that_changes_upstream_refresh_reaches_upstreams_that_stay() {
    let idp = TinyIdp::start("/realms/eng").await;
    let issuer = idp.issuer("/realms/eng");
    let s = TestServer::start_with_upstreams(
        &discovering(&issuer, "\"7d\""),
        signpost::testing::fetch::Limits::default(),
    )
    .await;
    fetches_ok(&s, 1).await;
    // The same upstream, refreshed every 10 s (the minimum) from now on: the next fetch comes
    // 9-11 s after the first, not in 7 days.
    std::fs::write(&s.config_path, discovering(&issuer, "10")).unwrap();
    let registry = signpost::testing::app::load_file(&s.config_path, 2).expect("valid");
    s.state.install(registry);
    wait_until(
        Duration::from_secs(20),
        "a refresh on the new interval",
        || async { s.state.upstreams.fetches_ok.load(Ordering::SeqCst) >= 2 },
    )
    .await;
}
