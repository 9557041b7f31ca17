//! The three commands: `serve`, `check` and `hint`. Each returns its [`Exit`] code.

use std::io::Write;

use tokio::net::TcpListener;

use crate::challenge::{Outcome, challenge};
use crate::cli::{CheckArgs, HintArgs, ServeArgs};
use crate::config::read::{ConfigReader, Contents, Kind, ReadLimits};
use crate::config::{Config, DEMO, ModeKind, Problems, Site};
use crate::fetch::{Fetcher, Limits};
use crate::lifecycle::Exit;
use crate::registry::Registry;
use crate::state::{self, AppState, Settings};
use crate::well_known::prm_path;

/// Reads and builds a config file into generation `generation`, with the default read limits.
pub fn load_file(path: &std::path::Path, generation: u64) -> Result<Registry, Problems> {
    load_with(&ConfigReader::new(ReadLimits::default()), path, generation).map(|(r, _)| r)
}

/// Reads (a pipe too: `--config <(…)` is read once) and builds a config file with `reader`;
/// also says what was read, so a pipe is not watched.
pub fn load_with(
    reader: &ConfigReader,
    path: &std::path::Path,
    generation: u64,
) -> Result<(Registry, Kind), Problems> {
    let (label, contents) = read(reader, path)?;
    let registry = state::build_file(contents.bytes, &label, generation)?;
    Ok((registry, contents.kind))
}

/// Reads a config file with `reader` (a pipe too); also returns the name problems give it.
fn read(reader: &ConfigReader, path: &std::path::Path) -> Result<(String, Contents), Problems> {
    let label = path.display().to_string();
    let contents = reader
        .read(path, true)
        .map_err(|e| Problems::unreadable(&label, e))?;
    Ok((label, contents))
}

/// `signpost serve`.
pub async fn serve(args: ServeArgs) -> Exit {
    // Before anything else: a SIGTERM during start-up must drain, not kill.
    let stop = match crate::lifecycle::stop_signal() {
        Ok(stop) => stop,
        Err(e) => {
            tracing::error!("cannot install the SIGTERM/SIGINT handlers: {e}");
            return Exit::Failure;
        }
    };
    let sighup = crate::lifecycle::SigHup::install()
        .inspect_err(|e| {
            tracing::warn!("cannot handle SIGHUP ({e}); reloads still follow file changes")
        })
        .ok();
    // `SIGNPOST_CONFIG` is read here rather than by clap, so `--demo` still works in an image
    // that sets it; `--demo` together with an explicit `--config` is a usage error (clap).
    let config_path = match (&args.config, args.demo) {
        (Some(path), _) => Some(path.clone()),
        (None, true) => None,
        (None, false) => match std::env::var_os("SIGNPOST_CONFIG") {
            Some(path) if !path.is_empty() => Some(std::path::PathBuf::from(path)),
            _ => {
                eprintln!(
                    "error: signpost serve needs --config FILE (or SIGNPOST_CONFIG), or --demo\n\nFor more information, try 'signpost serve --help'."
                );
                return Exit::Usage;
            }
        },
    };
    let limits = args.read.limits();
    let mut stop = std::pin::pin!(stop);
    let loaded = match config_path.clone() {
        // On the build thread (not the runtime's blocking pool, which exit would wait for), so
        // a SIGTERM during a slow read still ends the process at once; every later snapshot is
        // built there too (see `builder.rs`).
        Some(path) => {
            let load = crate::builder::run(move || load_with(&ConfigReader::new(limits), &path, 1));
            tokio::select! {
                loaded = load => match loaded {
                    Some(loaded) => loaded,
                    None => {
                        tracing::error!("reading the config failed unexpectedly");
                        return Exit::Failure;
                    }
                },
                () = &mut stop => {
                    tracing::info!("stopped while reading the config; bye");
                    return Exit::Ok;
                }
            }
        }
        None => state::build(DEMO, "(demo)", 1).map(|r| (r, Kind::File)),
    };
    let (registry, kind) = match loaded {
        Ok(r) => r,
        Err(problems) => {
            crate::config::log_problems!(problems);
            tracing::error!("invalid config; not starting (exit 78)");
            return Exit::Config;
        }
    };
    crate::config::log_warnings!(&registry.source.path, &registry.config.warnings);
    if args.demo {
        tracing::info!(
            "serving the built-in demo config (public_url http://localhost:8080); use --config FILE for your own"
        );
    }
    let public = match TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {} (--listen): {e}", args.listen);
            return Exit::Failure;
        }
    };
    let admin = match TcpListener::bind(args.admin_listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(
                "cannot listen on {} (--admin-listen): {e}",
                args.admin_listen
            );
            return Exit::Failure;
        }
    };
    tracing::info!(
        public = %public.local_addr().map_or(args.listen, |a| a),
        admin = %admin.local_addr().map_or(args.admin_listen, |a| a),
        servers = registry.server_count(),
        config = %registry.source.path,
        "signpost listening"
    );
    let settings = Settings {
        shutdown_grace: args.shutdown_grace,
        shutdown_delay: args.shutdown_delay,
        max_connections: args.max_connections,
        header_read_timeout: args.header_read_timeout,
        config_read: limits,
    };
    let state = AppState::with_settings(registry, settings);
    tokio::spawn(crate::refresh::keep_upstreams_fresh(
        state.clone(),
        Fetcher::new(Limits::default()),
    ));
    let options = crate::reload::Options {
        poll_interval: args.poll_interval,
        watch_events: true,
    };
    let reloading = match (config_path, kind) {
        (Some(p), Kind::File) => Some(crate::reload::spawn(p, state.clone(), options)),
        (Some(p), Kind::Pipe) => {
            let why = format!(
                "{} is a pipe, read once at start-up; restart to change the config, or use a regular file to have it reloaded",
                p.display()
            );
            tracing::info!("reloads off: {why}");
            state.set_reloads_off(why);
            None
        }
        (None, _) => None,
    };
    let sighup = sighup.map(|s| s.forward_to(reloading.as_ref().map(|r| r.handle())));
    crate::lifecycle::serve_until_stopped(public, admin, state, stop).await;
    if let Some(task) = sighup {
        task.abort();
    }
    drop(reloading);
    tracing::info!("drained; bye");
    Exit::Ok
}

/// `signpost check`.
pub fn check(args: CheckArgs) -> Exit {
    // Read and validated only: rendering the served documents cannot fail once the config is
    // valid (see `config`), and `check` prints nothing of them.
    let loaded =
        read(&ConfigReader::new(args.read.limits()), &args.config).and_then(|(label, contents)| {
            Ok((crate::config::parse_bytes(&contents.bytes, &label)?, label))
        });
    let (config, file) = match loaded {
        Ok(loaded) => loaded,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!(
                "{}: {} problem{}; nothing was served",
                problems.file,
                problems.list.len(),
                if problems.list.len() == 1 { "" } else { "s" }
            );
            return Exit::Config;
        }
    };
    crate::config::print_warnings(&file, &config.warnings);
    // Each hint is built once: printed with the routes, and its length kept for the warning.
    let (mut routes, mut longest) = (String::new(), Vec::new());
    print_routes(&mut routes, &file, &config, &mut longest);
    for line in long_hints(&config, &longest) {
        eprintln!("{file}: warning: {line}");
    }
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(routes.as_bytes()).and_then(|()| out.flush());
    drop(out);
    let code = if !args.online {
        Exit::Ok
    } else {
        match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(check_online(&config)),
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                Exit::Failure
            }
        }
    };
    // The process exits now: freeing a large config piece by piece would only delay that.
    std::mem::forget(config);
    code
}

/// `check --online`: fetch each upstream once (concurrently) and print its findings per server.
async fn check_online(config: &Config) -> Exit {
    use crate::upstream::discover::{Severity, discover_with_cors, judge_for};
    let fetcher = Fetcher::new(Limits::default());
    let mut issuers: Vec<&str> = config
        .servers
        .iter()
        .filter_map(|s| s.upstream_issuer.as_deref())
        .collect();
    issuers.sort_unstable();
    issuers.dedup();
    let fetches = issuers.iter().map(|issuer| {
        let fetcher = fetcher.clone();
        let issuer = (*issuer).to_owned();
        tokio::spawn(async move { (issuer.clone(), discover_with_cors(&fetcher, &issuer).await) })
    });
    let mut found = std::collections::HashMap::new();
    for task in fetches.collect::<Vec<_>>() {
        if let Ok((issuer, d)) = task.await {
            found.insert(issuer, d);
        }
    }
    let mut errors = 0;
    let mut out = String::from("\nupstreams (online):\n");
    for server in &config.servers {
        let Some(d) = server.upstream_issuer.as_ref().and_then(|i| found.get(i)) else {
            continue;
        };
        let issuer = server.upstream_issuer.as_deref().unwrap_or("");
        out.push_str(&format!(
            "\n{} ({}) upstream {issuer}\n",
            server.name,
            server.mode.as_str()
        ));
        for a in &d.attempts {
            out.push_str(&format!("  tried   {} → {}\n", a.url, a.result));
        }
        let mut findings = d.findings.clone();
        if let Some((source, doc)) = &d.document {
            out.push_str(&format!("  using   {source}\n"));
            findings.extend(judge_for(doc, &d.notes, server));
        }
        if findings.is_empty() {
            out.push_str("  ok      no findings\n");
        }
        for f in &findings {
            let label = match f.severity {
                Severity::Error => {
                    errors += 1;
                    "error  "
                }
                Severity::Warning => "warning",
            };
            out.push_str(&format!("  {label} {}: {}\n", f.code, f.message));
        }
    }
    print!("{out}");
    if errors > 0 {
        eprintln!(
            "{errors} error finding{}: some clients cannot log in",
            if errors == 1 { "" } else { "s" }
        );
        Exit::Failure
    } else {
        Exit::Ok
    }
}

/// One warning per server whose `WWW-Authenticate` hint is longer than proxies' default header
/// buffers hold: behind nginx's 4 KiB `proxy_buffer_size` such an answer silently becomes the
/// proxy's fallback challenge. `longest`: each server's longest hint, as [`print_routes`] found.
fn long_hints(config: &Config, longest: &[usize]) -> Vec<String> {
    let mut out = Vec::new();
    for (server, &longest) in config.servers.iter().zip(longest) {
        if longest > crate::config::MAX_HINT_BYTES {
            out.push(format!(
                "servers.{}: its hint is {longest} bytes, over the {} bytes of a proxy's default header buffer (nginx proxy_buffer_size), so behind one clients get the fallback challenge; list fewer scopes, or raise the proxy's buffer (proxy_buffer_size 16k)",
                server.name,
                crate::config::MAX_HINT_BYTES
            ));
        }
    }
    out
}

/// Writes every route of `config` to `out` (pieces appended, no formatting: 10,000 servers make
/// 130,000 lines); `longest` gets each server's longest hint.
fn print_routes(out: &mut String, file: &str, config: &Config, longest: &mut Vec<usize>) {
    let bases: Vec<String> = config.sites.iter().map(Site::base).collect();
    let plural = if config.servers.len() == 1 { "" } else { "s" };
    let n = config.servers.len().to_string();
    for piece in [file, ": ok: ", &n, " server", plural, ", public_url "] {
        out.push_str(piece);
    }
    out.push_str(&bases.join(", "));
    out.push('\n');
    for server in &config.servers {
        for piece in ["\n", &server.name, " (", server.mode.as_str(), ")\n"] {
            out.push_str(piece);
        }
        let mut max = 0;
        for (si, site) in config.sites.iter().enumerate() {
            if let Some(auth) = server.auth.get(si) {
                for piece in ["  authorization server ", &auth.issuer, "\n"] {
                    out.push_str(piece);
                }
                if let Some(hosted) = &auth.hosted {
                    let origin = &config.sites[hosted.site].origin;
                    for piece in ["  AS metadata  ", origin, &hosted.well_known_path, "\n"] {
                        out.push_str(piece);
                    }
                }
            }
            for path in &server.paths {
                let full = site.full_path(path);
                if server.mode != ModeKind::None {
                    for piece in ["  PRM          ", &site.origin, &prm_path(&full), "\n"] {
                        out.push_str(piece);
                    }
                }
                let hint = crate::hint::hint(site, server, &full);
                max = max.max(hint.len());
                let resource = site.resource_url(&full);
                for piece in [
                    "  hint         ",
                    &resource,
                    "\n               WWW-Authenticate: ",
                    &hint,
                    "\n",
                ] {
                    out.push_str(piece);
                }
            }
        }
        longest.push(max);
    }
}

/// `signpost hint`.
pub fn hint(args: HintArgs) -> Exit {
    let registry = match load_with(&ConfigReader::new(args.read.limits()), &args.config, 1) {
        Ok((r, _)) => r,
        Err(problems) => {
            eprintln!("{problems}");
            return Exit::Config;
        }
    };
    let c = challenge(&registry, Some(&args.resource), None, Outcome::Hint, None);
    let header = c.header.as_ref().map(|h| h.as_bytes()).unwrap_or_default();
    println!("{}", String::from_utf8_lossy(header));
    let owned = c.server.is_some();
    std::mem::forget(registry); // exiting: see `check`
    if owned {
        return Exit::Ok;
    }
    eprintln!(
        "no server owns {}; this is the plain challenge (check the path against `signpost check`)",
        args.resource
    );
    Exit::Failure
}
