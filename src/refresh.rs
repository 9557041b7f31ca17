//! The upstream refresh: one task per upstream issuer (so one fetch in flight per upstream)
//! fetches its metadata after start, then every `upstream_refresh` with ±10 % jitter; a failure
//! keeps the last good document (stale-if-error) and retries with exponential backoff. Serving
//! never waits for any of this: a facade whose endpoints are not known yet answers its AS
//! document with 503 + `Retry-After`. When a fetched document changes, the served snapshot is
//! rebuilt with it (same generation). After a config reload only upstreams that appeared are
//! fetched; removed ones are forgotten.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::fetch::Fetcher;
use crate::state::AppState;
use crate::upstream::discover::discover_with_cors;
use crate::upstream::wanted;

/// The first retry after a failed fetch; doubles up to [`MAX_BACKOFF`] (or the refresh interval).
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// No wait is ever longer than a year, whatever the interval.
const MAX_REFRESH: Duration = Duration::from_secs(365 * 24 * 3600);

/// Runs the upstream tasks for as long as the process lives: starts one per wanted issuer, and
/// after every install of a new config starts the new ones and stops the removed ones.
pub async fn keep_upstreams_fresh(state: Arc<AppState>, fetcher: Fetcher) {
    let mut installs = state.subscribe_installs();
    let mut tasks: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        let registry = state.registry();
        let want = wanted(&registry.config);
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
    let mut now = state.upstreams.subscribe_refresh();
    let mut installs = state.subscribe_installs();
    loop {
        let d = discover_with_cors(&fetcher, &issuer).await;
        let ok = d.document.is_some();
        if let Some(f) = d.findings.first().filter(|_| !ok) {
            tracing::warn!(issuer = %issuer, retry_in = ?backoff, "upstream metadata fetch failed: {}", f.message);
        }
        if state.upstreams.record(&issuer, d) {
            tracing::info!(issuer = %issuer, "upstream metadata (or why there is none) changed; rebuilding documents");
            // Rendering a large registry takes long enough to stall requests on an async worker:
            // it runs on the build thread, where every snapshot is built.
            let s = state.clone();
            let _ = crate::builder::run(move || s.refresh_upstreams()).await;
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
