//! Upstream IdP metadata for servers with `"discover": true`: how one is discovered
//! ([`discover`], pure but for its fetches) and the store of what is known of each
//! ([`Upstreams`]: the accepted document, its findings, the last error), which `AppState` holds
//! and the registry renders facade documents from. The tasks that keep it fresh are in
//! `refresh.rs`. [`Upstreams::refresh_now`] makes every upstream fetch again without waiting
//! for its schedule.

pub mod discover;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::config::Config;
use discover::{Attempt, Discovery, Finding, Notes};

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

/// Every key the registry's `render_as` takes from an upstream document: a fetched document that differs from
/// the last one only elsewhere (a timestamp, a nonce) renders nothing anew.
pub const RELAYED_FIELDS: &[&str] = &[
    "authorization_endpoint",
    "token_endpoint",
    "registration_endpoint",
    "token_endpoint_auth_methods_supported",
    "revocation_endpoint",
    "client_id_metadata_document_supported",
    "scopes_supported",
];

/// The default `upstream_refresh`: one hour.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(3600);

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

    /// Records a discovery of an upstream it tracks; returns whether the accepted document
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
                let changed = entry
                    .document
                    .as_deref()
                    .is_none_or(|old| RELAYED_FIELDS.iter().any(|k| old.get(*k) != doc.get(*k)));
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

    /// A receiver that changes on every [`Upstreams::refresh_now`].
    pub fn subscribe_refresh(&self) -> tokio::sync::watch::Receiver<u64> {
        self.refresh.subscribe()
    }

    /// Tracks exactly the upstreams in `want`: forgets the others, starts the new ones empty.
    pub fn track(&self, want: &HashSet<String>) {
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

/// The issuers a config wants discovered.
pub fn wanted(config: &Config) -> HashSet<String> {
    config
        .servers
        .iter()
        .filter(|s| s.discover)
        .filter_map(|s| s.upstream_issuer.clone())
        .collect()
}
