//! signpost: the OAuth discovery half of an MCP gateway, for many MCP servers behind one origin.
//!
//! # Layout
//!
//! Layers, each importing only from the layers above it in this list (no import circle):
//!
//! 1. Leaves, importing nothing of the crate: `http` (the JSON answers and header values every
//!    listener sends), `well_known` (the RFC 9728 / RFC 8414 / OIDC well-known URLs and the order
//!    clients try them in), `addr` (loopback and private address rules), `metrics` (the counters
//!    behind `/metrics`), `fetch` (the bounded outbound HTTP client), `builder` (the one thread
//!    every snapshot is built on, so memory a replaced snapshot frees is reused by the next).
//! 2. `config` — read the file within limits, parse the JSON and validate it into a checked
//!    `Config`, every problem at once with `file:line:col`.
//! 3. Documents, pure: `hint` (a resource's no-token `WWW-Authenticate`), `upstream` (discovering
//!    an upstream IdP's metadata, judging it, and the store of what is known of each), `registry`
//!    (every document of a `Config` rendered once into an immutable `Registry` with its ETag).
//! 4. `state` — `AppState`: the `ArcSwap<Registry>` every request loads once, the upstream store,
//!    the load results, readiness; `state::build*` is the load pipeline (parse → validate →
//!    render once, with the upstream documents known).
//! 5. Listeners and tasks: `public` (the `/.well-known/*` routes: a lookup and a write), `admin`
//!    (`/challenge`, `/healthz`, `/readyz`, `/status`, `/metrics`) with `challenge` (what
//!    `/challenge` answers), `reload` (watch, decide, install), `refresh` (upstream refresh tasks).
//! 6. `server` — the accept loops: listener, handler and shutdown passed in; bounded connections.
//! 7. Commands: `lifecycle` (signals, the shutdown order, exit codes), `app` (`serve`, `check`,
//!    `hint`), `probe` (`signpost probe`, by discovery step), `import` (`signpost import
//!    litellm`), `cli` (the command line).
//! 8. `main.rs` only wires: parse, log, run a command, exit. `testing` is the one door the tests,
//!    fuzz targets and benchmark use to reach inside.
//!
//! # Paths
//!
//! * Request: `server::accept_loop` → `public::respond` → `AppState::registry` (one atomic load)
//!   → `Registry` lookup → pre-rendered bytes. The 401 path: `admin::respond` →
//!   `challenge::challenge` → the registry's precomputed hint (extended only for a step-up or
//!   `invalid_token`).
//! * Reload: `reload/task.rs` (an event batch, the poll, or SIGHUP via `lifecycle::SigHup`) →
//!   `reload/decide.rs` (`look_with`: resolve and hash; `decide`), on `builder`'s thread →
//!   `state::build_next` (read bytes → `config` → `registry`, sharing what renders the same) →
//!   `AppState::install` (one store); a failed load changes nothing but `/status` and `/metrics`.
//! * Shutdown: `lifecycle.rs`, whose doc lists the order: signal → `/readyz` 503 → serve on for
//!   `--shutdown-delay` → `server.rs` stops accepting and drains (bounded by `--shutdown-grace`)
//!   → admin listener stops → `main.rs` exits.

#![forbid(unsafe_code)]

mod addr;
mod admin;
mod app;
mod builder;
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
