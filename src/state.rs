//! Shared process state: the served [`Registry`] behind an `ArcSwap` (the one swap point reloads
//! use), the metrics, the draining flag `/readyz` reports, and the outcome of the last load.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;

use crate::config::read::ConfigReader;
use crate::config::{self, Problems};
use crate::metrics::Metrics;
use crate::registry::{Registry, Source};
use crate::upstream::Upstreams;

/// How long `serve` waits for open connections to finish after a shutdown signal.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Open connections per listener beyond which new ones wait in the kernel's accept backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
/// How long a client may take to send its first byte, and then a complete request head
/// (bounds slowloris clients).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Operational settings of the listeners.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long a drain may take before connections are dropped.
    pub shutdown_grace: Duration,
    /// How long to keep serving after a shutdown signal, with `/readyz` already 503, before the
    /// public listener stops accepting (lets load balancers take the pod out of rotation first).
    pub shutdown_delay: Duration,
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    /// How large a config file may be and how long reading it may take (reloads).
    pub config_read: crate::config::read::ReadLimits,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            shutdown_delay: Duration::ZERO,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            config_read: crate::config::read::ReadLimits::default(),
        }
    }
}

/// The outcome of the most recent load or reload attempt.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    pub ok: bool,
    pub at: SystemTime,
    /// Every problem, one per line, when `ok` is false.
    pub error: Option<String>,
}

/// Everything the listeners share.
#[derive(Debug)]
pub struct AppState {
    registry: ArcSwap<Registry>,
    pub metrics: Metrics,
    draining: AtomicBool,
    last_load: Mutex<LoadOutcome>,
    pub settings: Settings,
    /// Upstream IdP metadata fetched at runtime (servers with `"discover": true`).
    pub upstreams: Upstreams,
    /// Serialises the writers of `registry` (reloads and upstream refreshes), so neither can
    /// overwrite a snapshot the other just installed.
    writer: Mutex<()>,
    /// Bumped after every install, so the upstream tasks learn about a new config.
    installs: tokio::sync::watch::Sender<u64>,
    /// Reads the config file for reloads; `/status` shows a read that has not returned.
    pub config_reader: Arc<ConfigReader>,
    /// Why reloads are off (the config came from a pipe), if they are.
    reloads_off: Mutex<Option<String>>,
}

impl AppState {
    /// State serving `registry` (generation 1).
    pub fn new(registry: Registry) -> Arc<AppState> {
        let state = AppState {
            last_load: Mutex::new(LoadOutcome {
                ok: true,
                at: registry.source.loaded_at,
                error: None,
            }),
            registry: ArcSwap::from_pointee(registry),
            metrics: Metrics::default(),
            draining: AtomicBool::new(false),
            settings: Settings::default(),
            upstreams: Upstreams::default(),
            writer: Mutex::new(()),
            installs: tokio::sync::watch::Sender::new(0),
            config_reader: Arc::default(),
            reloads_off: Mutex::new(None),
        };
        state.note_success(&state.registry.load());
        Arc::new(state)
    }

    /// State serving `registry` with the given listener settings.
    pub fn with_settings(registry: Registry, settings: Settings) -> Arc<AppState> {
        let mut state = Arc::into_inner(AppState::new(registry)).expect("just created");
        state.settings = settings;
        state.config_reader = Arc::new(ConfigReader::new(settings.config_read));
        Arc::new(state)
    }

    /// The snapshot to answer one request from. Hold it only for that request.
    pub fn registry(&self) -> arc_swap::Guard<Arc<Registry>> {
        self.registry.load()
    }

    /// Installs a new snapshot in one atomic store; requests already holding the old one finish
    /// with it.
    pub fn install(&self, registry: Registry) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        // A reload rendered with the documents known when it was built: again only if a fetch
        // has landed since.
        let registry = if crate::upstream::wanted(&registry.config).is_empty() {
            registry
        } else {
            let upstreams = self.upstreams.documents();
            if registry.rendered_with(&upstreams) {
                registry
            } else {
                registry.with_upstreams(&upstreams).unwrap_or(registry)
            }
        };
        let registry = Arc::new(registry);
        self.note_success(&registry);
        self.metrics.reloads_ok.fetch_add(1, Ordering::Relaxed);
        *self.last_load.lock().unwrap_or_else(|e| e.into_inner()) = LoadOutcome {
            ok: true,
            at: registry.source.loaded_at,
            error: None,
        };
        retire(self.registry.swap(registry));
        self.installs.send_modify(|n| *n += 1);
    }

    /// Re-renders the served snapshot with the latest upstream documents (same generation).
    pub fn refresh_upstreams(&self) {
        let _writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.registry.load_full();
        // A fetch that lands just after a reload to a config without upstreams: nothing to do.
        if let Some(next) = current.with_upstreams(&self.upstreams.documents()) {
            retire(self.registry.swap(Arc::new(next)));
        }
    }

    /// A receiver that changes after every install of a new config.
    pub fn subscribe_installs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.installs.subscribe()
    }

    /// Records a failed reload; the served snapshot stays as it is.
    pub fn reject(&self, error: String) {
        self.metrics.reloads_error.fetch_add(1, Ordering::Relaxed);
        *self.last_load.lock().unwrap_or_else(|e| e.into_inner()) = LoadOutcome {
            ok: false,
            at: SystemTime::now(),
            error: Some(error),
        };
    }

    pub fn last_load(&self) -> LoadOutcome {
        self.last_load
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn note_success(&self, registry: &Registry) {
        let secs = registry
            .source
            .loaded_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.metrics
            .last_reload_success
            .store(secs, Ordering::Relaxed);
    }

    /// Records that the config is never reloaded, and why (`/status` says so; it is no failure).
    pub fn set_reloads_off(&self, why: impl Into<String>) {
        *self.reloads_off.lock().unwrap_or_else(|e| e.into_inner()) = Some(why.into());
    }

    /// Why reloads are off, if they are.
    pub fn reloads_off(&self) -> Option<String> {
        self.reloads_off
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// What `/status` says about reading the config: whether reloads happen at all, and a read
    /// that has not returned (a hung filesystem), with when it started.
    pub fn config_read_status(&self) -> serde_json::Value {
        let stuck = self.config_reader.stuck_since();
        serde_json::json!({
            "reloads": match self.reloads_off() {
                Some(why) => format!("off: {why}"),
                None => "on".to_owned(),
            },
            "read_pending_since": stuck.map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            "read_pending_seconds": stuck.and_then(|t| t.elapsed().ok()).map(|d| d.as_secs()),
        })
    }

    /// Marks the process as shutting down: `/readyz` answers 503 from now on.
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Frees a replaced snapshot on a thread of its own: with 100,000 servers that takes a second,
/// which must not land on a request (whichever holds the last reference frees it).
fn retire(old: Arc<Registry>) {
    if Arc::strong_count(&old) == 1 && old.server_count() >= 1000 {
        let _ = std::thread::Builder::new()
            .name("signpost-retire".into())
            .spawn(move || drop(old));
    }
}

/// Parses, validates and renders a config text into a snapshot. `label` names the file in problems.
pub fn build(text: &str, label: &str, generation: u64) -> Result<Registry, Problems> {
    build_bytes(text.as_bytes(), label, generation)
}

/// The same from the file's bytes: anything but UTF-8 is refused with the fix.
pub fn build_bytes(bytes: &[u8], label: &str, generation: u64) -> Result<Registry, Problems> {
    let sha256 = crate::config::read::content_sha256(bytes);
    build_after(
        || config::parse_bytes(bytes, label).map(Parsed::Whole),
        sha256,
        label,
        generation,
        None,
    )
}

/// [`build_bytes`] taking the bytes read: they are freed once validated, before the servers are
/// expanded, and a config of one site whose servers discover nothing is rendered one expanded
/// server at a time (see [`config::parse_staged`]; with 100,000 servers the text is 18 MB and
/// the expanded servers some 70 MB).
pub fn build_file(bytes: Vec<u8>, label: &str, generation: u64) -> Result<Registry, Problems> {
    let sha256 = crate::config::read::content_sha256(&bytes);
    build_after(
        || config::parse_staged(bytes, label).map(Parsed::Staged),
        sha256,
        label,
        generation,
        None,
    )
}

/// [`build_file`] for a reload, given the bytes' hash (the look that read them computed it): the
/// new snapshot shares with the one `state` serves every buffer that renders the same, so during
/// the swap only what changed exists twice.
pub fn build_next(
    state: &AppState,
    bytes: Vec<u8>,
    sha256: String,
    label: &str,
    generation: u64,
) -> Result<Registry, Problems> {
    let previous = state.registry.load_full();
    build_after(
        || config::parse_staged(bytes, label).map(Parsed::Staged),
        sha256,
        label,
        generation,
        Some((&state.upstreams, &previous)),
    )
}

/// What [`build_after`] renders.
enum Parsed {
    Whole(config::Config),
    Staged(config::Staged),
}

/// Parses (with `parse`), then renders: a staged config of one site whose servers discover
/// nothing one expanded server at a time, any other whole.
fn build_after(
    parse: impl FnOnce() -> Result<Parsed, Problems>,
    sha256: String,
    label: &str,
    generation: u64,
    previous: Option<(&Upstreams, &Registry)>,
) -> Result<Registry, Problems> {
    let started = std::time::Instant::now();
    let parsed = parse()?;
    let parse_time = started.elapsed();
    let source = Source {
        path: label.to_owned(),
        generation,
        content_sha256: sha256,
        loaded_at: SystemTime::now(),
    };
    let registry = match parsed {
        Parsed::Staged(staged) => {
            let (head, servers) = staged.into_stream();
            if head.sites.len() == 1 && !servers.discovers() {
                Registry::build_streamed(head, servers, source, previous.map(|(_, p)| p))
            } else {
                let mut config = head;
                config.servers = servers.collect();
                build_whole(config, source, previous)
            }
        }
        Parsed::Whole(config) => build_whole(config, source, previous),
    };
    // The expansion of a staged config counts as rendering.
    tracing::debug!(
        config = label,
        parse_ms = parse_time.as_millis() as u64,
        render_ms = (started.elapsed() - parse_time).as_millis() as u64,
        "config built"
    );
    Ok(registry)
}

/// Renders a whole config, with the upstream documents known now if any server discovers.
fn build_whole(
    config: config::Config,
    source: Source,
    previous: Option<(&Upstreams, &Registry)>,
) -> Registry {
    match previous {
        Some((upstreams, previous)) => {
            let documents = if crate::upstream::wanted(&config).is_empty() {
                Default::default()
            } else {
                upstreams.documents()
            };
            Registry::build_after(config, source, &documents, previous)
        }
        None => Registry::build(config, source),
    }
}
