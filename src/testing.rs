//! What the integration tests, the fuzz targets and the benchmark drive directly, and nothing
//! else: the binary is the product, so every module is private to the crate and this is the one
//! door tests go through. It mirrors the crate's layout (`testing::registry::Registry` is
//! `registry::Registry`), so a test names the layer it exercises:
//!
//! * `config`, `registry`, `state` — parse a config, build the served snapshot, hold it;
//! * `public`, `admin` — a request answered by a listener's handler, without a socket;
//! * `reload`, `refresh`, `lifecycle` — the reload task, the upstream refresh tasks and the two
//!   listeners with an injected shutdown, as `signpost serve` runs them;
//! * `upstream`, `fetch` — one discovery of an upstream IdP, its findings, the fetch client.

pub mod admin {
    pub use crate::admin::respond;
}

pub mod app {
    pub use crate::app::load_file;
}

pub mod config {
    pub use crate::config::{
        Config, ModeKind, Problems, parse, parse_bytes, parse_owned, parse_tree,
    };
}

pub mod fetch {
    pub use crate::fetch::{Fetcher, Limits, is_loopback};
}

pub mod lifecycle {
    pub use crate::lifecycle::serve_until_stopped;
}

pub mod metrics {
    pub use crate::metrics::Kind;
}

pub mod public {
    pub use crate::public::{request_host, respond};
}

pub mod refresh {
    pub use crate::refresh::keep_upstreams_fresh;
}

pub mod registry {
    pub use crate::registry::{DocKind, Registry, Source};
    pub use crate::well_known::{AS_PREFIX, PRM_PREFIX};
}

pub mod reload {
    pub use crate::reload::{Options, Outcome, Reloading, spawn};
}

pub mod state {
    pub use crate::state::{AppState, Settings, build, build_file};
}

pub mod upstream {
    pub use crate::upstream::{Documents, Relay};

    pub mod discover {
        pub use crate::upstream::discover::{
            Discovery, Finding, Severity, Usage, Use, discover, discover_with_cors, judge,
            judge_usage, sanitize,
        };
    }
}
