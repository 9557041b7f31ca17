//! signpost: the OAuth discovery half of an MCP gateway, for many MCP servers behind one origin.
//!
//! # Layout
//!
//! * `config` — parse the JSON config and validate it into a checked `Config` (every problem at
//!   once, with line and column).
//! * `registry` — render every document of a `Config` once into an immutable `Registry`: per site,
//!   resource path → owner and PRM, issuer path → AS document, each with its ETag.
//! * `state` — the `ArcSwap<Registry>` every request loads once, the metrics and readiness.
//! * `public` — the `/.well-known/*` routes: a lookup and a write.
//! * `admin` — `/challenge`, `/healthz`, `/readyz`, `/status`, `/metrics`.
//! * `challenge` — the `WWW-Authenticate` value, shared by `/challenge` and `signpost hint`.
//! * `server` — accept loops with injected listener and shutdown, graceful drain.
//! * `reload` — watch the config's directory (notify, poll, SIGHUP), decide from each look whether
//!   the content changed, and install or reject the new snapshot.
//! * `cli`, `app`, `shutdown` — the command line, the commands, the signals.
//! * `fetch` — the bounded outbound HTTP client; `upstream` — discovery of each upstream IdP's
//!   metadata, its findings and its refresh; `probe` — `signpost probe`, the deployment
//!   diagnosis that walks discovery as each client family does.
//! * `import` — `signpost import litellm`: a signpost config from a LiteLLM proxy config.
//! * `metrics` — the counters behind `/metrics`.
//!
//! # Paths
//!
//! Request: accept → `public::respond` → `state.registry()` (one atomic load) → hash lookup →
//! pre-rendered bytes. Reload: event batch or poll or SIGHUP → `reload::look` (resolve, hash) →
//! `reload::decide` → read → `config::parse` → `Registry::build` → `AppState::install`
//! (one store); a failed load changes nothing but `/status` and `/metrics`. Shutdown: signal →
//! `/readyz` 503 → serve on for `--shutdown-delay` → stop accepting → drain (bounded by
//! `--shutdown-grace`) → exit 0.

#![forbid(unsafe_code)]

mod addr;
mod admin;
mod app;
mod challenge;
pub mod cli;
mod config;
mod fetch;
mod hint;
mod http;
mod import;
mod lifecycle;
mod metrics;
mod probe;
mod public;
mod refresh;
mod registry;
mod reload;
mod server;
mod state;
pub mod testing;
mod upstream;
mod well_known;

// What `main.rs` runs: the commands, each returning its exit code.
pub use app::{check, hint, serve};
pub use import::litellm as import_litellm;
pub use lifecycle::Exit;
pub use probe::command as probe;
