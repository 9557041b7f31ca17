//! Upstream IdP metadata, kept fresh at runtime for servers with `"discover": true`.
//!
//! One task per upstream issuer (so one fetch in flight per upstream) fetches its metadata after
//! start, then every `upstream_refresh` with ±10 % jitter; a failure keeps the last good document
//! (stale-if-error) and retries with exponential backoff. Serving never waits for any of this: a
//! facade whose endpoints are not known yet answers its AS document with 503 + `Retry-After`.
//! When a fetched document changes, the served snapshot is rebuilt with it (same generation).
//! After a config reload only upstreams that appeared are fetched; removed ones are forgotten.
//! [`Upstreams::refresh_now`] makes every upstream fetch again without waiting for its schedule.

pub mod discover;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::fetch::Fetcher;
use crate::registry::Registry;
use crate::state::AppState;
use discover::{Attempt, Discovery, Finding, Notes, discover_with_cors};

/// What is known of each upstream for rendering facade metadata, by issuer (the configured string).
pub type Documents = HashMap<String, Relay>;

/// One upstream as the registry renders it: the accepted document, or why there is none.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    pub document: Option<Arc<Map<String, Value>>>,
    /// The error of the last fetch, when no document was ever accepted.
    pub failure: Option<Finding>,
    /// Values dropped from the document because they break the config's rules: `(key, why)`.
    pub dropped: Vec<(String, String)>,
}

/// The default `upstream_refresh` (one hour): a config rule, owned by `config`.
pub use crate::config::DEFAULT_REFRESH;
/// The first retry after a failed fetch; doubles up to [`MAX_BACKOFF`] (or the refresh interval).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// No wait is ever longer than a year, whatever the interval.
const MAX_REFRESH: Duration = Duration::from_secs(365 * 24 * 3600);

/// What is known about one upstream.
#[derive(Debug, Clone, Default)]
pub struct UpstreamStatus {
    /// The URL the accepted document came from.
    pub source: Option<String>,
    pub document: Option<Arc<Map<String, Value>>>,
    /// When the accepted document was fetched.
    pub fetched_at: Option<SystemTime>,
    /// Findings of the accepted document that do not depend on the mode (private host, …).
    pub findings: Vec<Finding>,
    /// What the mode-dependent findings need beyond the document (issuer, CORS, dropped values).
    pub notes: Notes,
    /// Why the last fetch failed, if it did (the document above is then stale).
    pub last_error: Option<Finding>,
    pub last_attempt_at: Option<SystemTime>,
    pub attempts: Vec<Attempt>,
}

/// Every upstream's status, and fetch counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Upstreams {
    entries: Mutex<HashMap<String, UpstreamStatus>>,
    pub fetches_ok: AtomicU64,
    pub fetches_error: AtomicU64,
    /// Bumped by [`Upstreams::refresh_now`]; every upstream task watches it. A watch (not a
    /// `Notify`) so a task busy fetching when it is bumped still sees it once it sleeps again.
    refresh: tokio::sync::watch::Sender<u64>,
}

impl Upstreams {
    /// The accepted documents (or why there is none), for rendering facade metadata.
    pub fn documents(&self) -> Documents {
        self.lock()
            .iter()
            .filter(|(_, s)| s.document.is_some() || s.last_error.is_some())
            .map(|(issuer, s)| {
                let relay = Relay {
                    document: s.document.clone(),
                    failure: s.last_error.clone().filter(|_| s.document.is_none()),
                    dropped: s.notes.dropped.clone(),
                };
                (issuer.clone(), relay)
            })
            .collect()
    }

    pub fn status(&self, issuer: &str) -> Option<UpstreamStatus> {
        self.lock().get(issuer).cloned()
    }

    /// Every upstream's status, by issuer.
    pub fn all(&self) -> HashMap<String, UpstreamStatus> {
        self.lock().clone()
    }

    /// Records a discovery of an upstream [`run`] tracks; returns whether the accepted document
    /// changed in a field the served documents relay. One no longer tracked is ignored: an aborted task can still finish the fetch it
    /// was making, and must not bring back the entry of an upstream a reload removed.
    pub fn record(&self, issuer: &str, d: Discovery) -> bool {
        let now = SystemTime::now();
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(issuer) else {
            return false;
        };
        entry.last_attempt_at = Some(now);
        entry.attempts = d.attempts;
        match d.document {
            Some((source, doc)) => {
                self.fetches_ok.fetch_add(1, Ordering::Relaxed);
                let changed = entry.document.as_deref().is_none_or(|old| {
                    crate::registry::RELAYED_FIELDS
                        .iter()
                        .any(|k| old.get(*k) != doc.get(*k))
                });
                entry.source = Some(source);
                entry.document = Some(Arc::new(doc));
                entry.fetched_at = Some(now);
                entry.findings = d.findings;
                entry.notes = d.notes;
                entry.last_error = None;
                changed
            }
            None => {
                self.fetches_error.fetch_add(1, Ordering::Relaxed);
                let error = d.findings.into_iter().next();
                // Without a document, the 503 says why: re-render when the reason changes.
                let changed = entry.document.is_none() && entry.last_error != error;
                entry.last_error = error;
                changed
            }
        }
    }

    /// Makes every upstream task fetch again now instead of at its next scheduled refresh (or
    /// retry). For tests, and for anything that learns an upstream changed.
    pub fn refresh_now(&self) {
        self.refresh.send_modify(|n| *n += 1);
    }

    /// Tracks exactly the upstreams in `want`: forgets the others, starts the new ones empty.
    fn track(&self, want: &HashSet<String>) {
        let mut entries = self.lock();
        entries.retain(|issuer, _| want.contains(issuer));
        for issuer in want {
            entries.entry(issuer.clone()).or_default();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, UpstreamStatus>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The issuers the registry wants discovered.
pub fn wanted(registry: &Registry) -> HashSet<String> {
    registry
        .config
        .servers
        .iter()
        .filter(|s| s.discover)
        .filter_map(|s| s.upstream_issuer.clone())
        .collect()
}

/// Runs the upstream tasks for as long as the process lives: starts one per wanted issuer, and
/// after every install of a new config starts the new ones and stops the removed ones.
pub async fn run(state: Arc<AppState>, fetcher: Fetcher) {
    let mut installs = state.subscribe_installs();
    let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        let registry = state.registry();
        let want = wanted(&registry);
        drop(registry);
        tasks.retain(|issuer, task| {
            let keep = want.contains(issuer);
            if !keep {
                task.abort();
            }
            keep
        });
        state.upstreams.track(&want);
        for issuer in want {
            tasks.entry(issuer.clone()).or_insert_with(|| {
                tokio::spawn(keep_fresh(state.clone(), fetcher.clone(), issuer))
            });
        }
        if installs.changed().await.is_err() {
            return;
        }
    }
}

async fn keep_fresh(state: Arc<AppState>, fetcher: Fetcher, issuer: String) {
    let mut backoff = FIRST_BACKOFF;
    let mut now = state.upstreams.refresh.subscribe();
    let mut installs = state.subscribe_installs();
    loop {
        let d = discover_with_cors(&fetcher, &issuer).await;
        let ok = d.document.is_some();
        if let Some(f) = d.findings.first().filter(|_| !ok) {
            tracing::warn!(issuer = %issuer, retry_in = ?backoff, "upstream metadata fetch failed: {}", f.message);
        }
        if state.upstreams.record(&issuer, d) {
            tracing::info!(issuer = %issuer, "upstream metadata (or why there is none) changed; rebuilding documents");
            // Rendering a large registry takes long enough to stall requests on an async worker.
            let s = state.clone();
            let _ = tokio::task::spawn_blocking(move || s.refresh_upstreams()).await;
        }
        let fetched = tokio::time::Instant::now();
        // The interval is read again after every reload, so a changed `upstream_refresh`
        // reaches this upstream too (measured from its last fetch).
        let wait = |refresh: Duration| {
            let w = if ok {
                jitter(refresh, &issuer)
            } else {
                backoff.min(refresh.max(FIRST_BACKOFF))
            };
            // The config caps the interval far below this; an `Instant` must never overflow.
            w.min(MAX_REFRESH)
        };
        let mut refresh = state.registry().config.upstream_refresh;
        let mut due = fetched + wait(refresh);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(due) => break,
                _ = now.changed() => break,
                changed = installs.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let new = state.registry().config.upstream_refresh;
                    if new != refresh {
                        refresh = new;
                        due = fetched + wait(refresh);
                    }
                }
            }
        }
        if !ok {
            backoff = (backoff * 2)
                .min(MAX_BACKOFF)
                .min(refresh.max(FIRST_BACKOFF));
        } else {
            backoff = FIRST_BACKOFF;
        }
    }
}

/// `base` ± 10 %, different per issuer and per call, so upstreams are not refreshed in lockstep.
/// Saturates instead of overflowing for any `base`.
fn jitter(base: Duration, issuer: &str) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(issuer.as_bytes());
    let unit = (h.finish() % 2001) as f64 / 1000.0 - 1.0; // -1.0 ..= 1.0
    Duration::try_from_secs_f64(base.as_secs_f64() * (1.0 + 0.1 * unit)).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_saturates_for_huge_intervals() {
        for i in 0..100 {
            let j = jitter(Duration::MAX, &i.to_string());
            assert!(j >= Duration::from_secs(u64::MAX / 100 * 89), "{j:?}");
        }
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for i in 0..100 {
            let j = jitter(Duration::from_secs(3600), &i.to_string());
            assert!(
                j >= Duration::from_secs(3240) && j <= Duration::from_secs(3960),
                "{j:?}"
            );
        }
    }
}
