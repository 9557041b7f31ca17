//! Counters behind `/metrics` (Prometheus text format). Requests are counted in a fixed table of
//! atomics indexed by (kind, status), so recording one is a single relaxed add.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use hyper::StatusCode;

/// The `kind` label of `signpost_requests_total` (README "Admin listener").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prm,
    As,
    Oidc,
    Preflight,
    NotFound,
    MethodNotAllowed,
    Challenge,
}

const KINDS: [(Kind, &str); 7] = [
    (Kind::Prm, "prm"),
    (Kind::As, "as"),
    (Kind::Oidc, "oidc"),
    (Kind::Preflight, "preflight"),
    (Kind::NotFound, "not_found"),
    (Kind::MethodNotAllowed, "method_not_allowed"),
    (Kind::Challenge, "challenge"),
];

/// Every status signpost answers with; anything else is counted as `other`.
const STATUSES: [u16; 10] = [200, 204, 304, 400, 401, 403, 404, 405, 503, 0];

/// Process-wide counters.
#[derive(Debug)]
pub struct Metrics {
    requests: [AtomicU64; KINDS.len() * STATUSES.len()],
    pub reloads_ok: AtomicU64,
    pub reloads_error: AtomicU64,
    /// Unix seconds of the last successful load.
    pub last_reload_success: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            reloads_ok: AtomicU64::new(0),
            reloads_error: AtomicU64::new(0),
            last_reload_success: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn record(&self, kind: Kind, status: StatusCode) {
        let k = kind as usize;
        let s = STATUSES
            .iter()
            .position(|s| *s == status.as_u16())
            .unwrap_or(STATUSES.len() - 1);
        self.requests[k * STATUSES.len() + s].fetch_add(1, Ordering::Relaxed);
    }

    /// The number of requests recorded for `kind` and `status`.
    pub fn requests(&self, kind: Kind, status: StatusCode) -> u64 {
        let s = STATUSES
            .iter()
            .position(|s| *s == status.as_u16())
            .unwrap_or(STATUSES.len() - 1);
        self.requests[kind as usize * STATUSES.len() + s].load(Ordering::Relaxed)
    }

    /// Renders every metric; `generation` is the served config's.
    pub fn render(&self, generation: u64, servers: usize) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP signpost_requests_total Requests answered, by kind and status.\n");
        out.push_str("# TYPE signpost_requests_total counter\n");
        for (ki, (_, kind)) in KINDS.iter().enumerate() {
            for (si, status) in STATUSES.iter().enumerate() {
                let n = self.requests[ki * STATUSES.len() + si].load(Ordering::Relaxed);
                if n > 0 {
                    let status = if *status == 0 {
                        "other".to_owned()
                    } else {
                        status.to_string()
                    };
                    let _ = writeln!(
                        out,
                        "signpost_requests_total{{kind=\"{kind}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        let _ = write!(
            out,
            "# HELP signpost_config_generation Generation of the config being served (1 for the first load).\n\
             # TYPE signpost_config_generation gauge\n\
             signpost_config_generation {generation}\n\
             # HELP signpost_config_servers MCP servers in the config being served.\n\
             # TYPE signpost_config_servers gauge\n\
             signpost_config_servers {servers}\n\
             # HELP signpost_config_reloads_total Config reloads attempted, by result.\n\
             # TYPE signpost_config_reloads_total counter\n\
             signpost_config_reloads_total{{result=\"ok\"}} {}\n\
             signpost_config_reloads_total{{result=\"error\"}} {}\n\
             # HELP signpost_config_last_reload_success_timestamp_seconds When the served config was loaded.\n\
             # TYPE signpost_config_last_reload_success_timestamp_seconds gauge\n\
             signpost_config_last_reload_success_timestamp_seconds {}\n",
            self.reloads_ok.load(Ordering::Relaxed),
            self.reloads_error.load(Ordering::Relaxed),
            self.last_reload_success.load(Ordering::Relaxed),
        );
        out
    }
}
