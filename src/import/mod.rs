//! `signpost import litellm CONFIG.yaml --public-url URL [--online]` (README "signpost import litellm"): a signpost
//! config (JSON on stdout) for the `mcp_servers` of a LiteLLM proxy config, with LiteLLM's URL
//! shapes as `resource_paths`, and one line on stderr for every server signpost cannot make MCP
//! clients log in to (why, and what to change in LiteLLM).
//!
//! * `yaml` — the YAML loader (positions on every node, PyYAML's reading of scalars, bounded).
//! * `litellm` — the mapping of each `mcp_servers` entry to a mode (README "Which LiteLLM settings work, and why").
//! * here — reading the file, `--online` (each issuer found as a client finds it, through the
//!   bounded [`Fetcher`] and upstream discovery's checks), the output, and its self-check: what
//!   is printed has passed the same validation as `signpost check`.
//!
//! Exit codes: 0 done, 78 the input cannot be read as a LiteLLM config (every problem with
//! file:line:column and the fix; nothing on stdout), 1 some server could not be mapped (the
//! others are printed), 2 a bad `--public-url`.

pub mod litellm;
pub mod yaml;

use std::path::Path;

use bytes::Bytes;
use hyper::Method;
use serde_json::{Map, Value, json};
use url::Url;

use crate::cli::LitellmImportArgs;
use crate::config::{ModeKind, Pos, Problem, Problems};
use crate::fetch::{FetchError, Fetcher, Limits};
use crate::lifecycle::Exit;
use crate::upstream::discover::{Severity, discover};
use litellm::{Level, Planned, Remark};

/// The largest config read: LiteLLM configs are kilobytes.
const MAX_INPUT: u64 = 4 * 1024 * 1024;

/// `signpost import litellm`.
pub fn litellm(args: LitellmImportArgs) -> Exit {
    let file = args.config.display().to_string();
    let root = match read(&args.config, &file) {
        Ok(root) => root,
        Err(problems) => return invalid(&problems),
    };
    let mapped = match litellm::map(&root) {
        Ok(m) => m,
        Err(list) => return invalid(&Problems { file, list }),
    };
    let mut servers = mapped.servers;
    let mut remarks = mapped.remarks;
    if args.online {
        match tokio::runtime::Runtime::new() {
            Ok(rt) => rt.block_on(online(&mut servers, &mut remarks)),
            Err(e) => {
                eprintln!("cannot start the async runtime: {e}");
                return Exit::Failure;
            }
        }
    }
    // A delegate needs its issuer: without one (not in LiteLLM's config, not found online) the
    // server cannot be written.
    servers.retain(|s| {
        if s.mode == ModeKind::Delegate && s.issuer.is_none() {
            if !args.online {
                remarks.push(Remark {
                    pos: Some(s.pos),
                    path: s.path.clone(),
                    level: Level::Error,
                    message: "LiteLLM's entry does not name the upstream IdP's issuer (true_passthrough entries rarely do); run again with --online to find it from the upstream's url as a client does, or add the server by hand".into(),
                });
            }
            return false;
        }
        true
    });
    let (text, dropped) = match checked_output(&args.public_url, servers) {
        Ok(done) => done,
        Err(problems) => {
            eprintln!("{problems}");
            eprintln!(
                "--public-url: give the gateway's public URL, such as https://gw.example.com"
            );
            return Exit::Usage;
        }
    };
    remarks.extend(dropped);
    let base = args.public_url.trim_end_matches('/');
    for r in &mut remarks {
        r.message = r.message.replace("<public URL>", base);
    }
    remarks.sort_by_key(|r| r.pos.map(|p| (p.line, p.column)));
    for r in &remarks {
        let pos = r
            .pos
            .map(|p| format!(":{}:{}", p.line, p.column))
            .unwrap_or_default();
        let path = if r.path.is_empty() {
            String::new()
        } else {
            format!(" {}:", r.path)
        };
        eprintln!("{file}{pos}:{path} {}: {}", r.level.as_str(), r.message);
    }
    println!("{text}");
    let errors = remarks.iter().filter(|r| r.level == Level::Error).count();
    if errors > 0 {
        eprintln!(
            "{file}: {errors} server{} could not be mapped and {} not in the output",
            if errors == 1 { "" } else { "s" },
            if errors == 1 { "is" } else { "are" }
        );
        Exit::Failure
    } else {
        Exit::Ok
    }
}

fn invalid(problems: &Problems) -> Exit {
    eprintln!("{problems}");
    eprintln!(
        "{}: not imported ({} problem{}); nothing was written",
        problems.file,
        problems.list.len(),
        if problems.list.len() == 1 { "" } else { "s" }
    );
    Exit::Config
}

fn one(file: &str, pos: Option<Pos>, message: String) -> Problems {
    Problems {
        file: file.to_owned(),
        list: vec![Problem {
            pos,
            path: String::new(),
            message,
        }],
    }
}

/// Reads and loads the YAML file: a directory, an unreadable, huge, non-UTF-8, empty or
/// malformed file is a problem with its position and the fix.
fn read(path: &Path, file: &str) -> Result<yaml::Node, Problems> {
    let meta = std::fs::metadata(path)
        .map_err(|e| one(file, None, format!("cannot read the LiteLLM config: {e}")))?;
    if meta.is_dir() {
        return Err(one(
            file,
            None,
            "is a directory; give the path of LiteLLM's config file (the one passed to litellm --config)".into(),
        ));
    }
    if meta.len() > MAX_INPUT {
        return Err(one(
            file,
            None,
            format!(
                "larger than {MAX_INPUT} bytes; that is not a LiteLLM config, give the file passed to litellm --config"
            ),
        ));
    }
    let bytes = std::fs::read(path)
        .map_err(|e| one(file, None, format!("cannot read the LiteLLM config: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = good.iter().filter(|b| **b == b'\n').count() + 1;
        let column = String::from_utf8_lossy(good)
            .rsplit('\n')
            .next()
            .map_or(0, |l| l.chars().count())
            + 1;
        one(
            file,
            Some(Pos { line, column }),
            "not UTF-8 text; save the file as UTF-8 (LiteLLM reads it as text too)".into(),
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    match yaml::load(text) {
        Err(e) => Err(one(file, Some(e.pos), e.message)),
        Ok(None) => Err(one(
            file,
            Some(Pos { line: 1, column: 1 }),
            "empty: no YAML document (LiteLLM refuses an empty config too); give the config LiteLLM runs with".into(),
        )),
        Ok(Some(root)) => Ok(root),
    }
}

/// The signpost config for `servers`, validated as `signpost check` would. A server the
/// validation rejects is left out and reported (a `Level::Error` remark); a problem outside the
/// servers can only be `--public-url`'s, returned as `Err`.
fn checked_output(
    public_url: &str,
    mut servers: Vec<Planned>,
) -> Result<(String, Vec<Remark>), Problems> {
    let mut dropped = Vec::new();
    loop {
        let text = render(public_url, &servers);
        let problems = match crate::config::parse(&text, "--public-url") {
            Ok(_) => return Ok((text, dropped)),
            Err(p) => p,
        };
        let mut outside = Vec::new();
        for p in problems.list {
            let owner = p.path.strip_prefix("servers.").and_then(|rest| {
                servers
                    .iter()
                    .position(|s| rest.split('.').next() == Some(s.name.as_str()))
            });
            match owner {
                Some(i) => {
                    let s = servers.remove(i);
                    let field = p.path.rsplit('.').next().unwrap_or("");
                    dropped.push(Remark {
                        pos: Some(s.pos),
                        path: s.path,
                        level: Level::Error,
                        message: format!("its {field} cannot be served: {}", p.message),
                    });
                }
                None => outside.push(Problem { pos: None, ..p }),
            }
        }
        if !outside.is_empty() {
            return Err(Problems {
                file: "--public-url".into(),
                list: outside,
            });
        }
    }
}

/// The JSON text: `public_url`, LiteLLM's `resource_paths`, the `gateway` templates when a
/// server is LiteLLM-managed OAuth, and the servers in file order.
fn render(public_url: &str, servers: &[Planned]) -> String {
    let mut out = Map::new();
    out.insert("public_url".into(), json!(public_url));
    out.insert("resource_paths".into(), json!(litellm::RESOURCE_PATHS));
    if servers.iter().any(|s| s.mode == ModeKind::Gateway) {
        // LiteLLM's own per-server endpoints (its discoverable_endpoints), under the public URL.
        out.insert(
            "gateway".into(),
            json!({
                "issuer": "{public_url}/{server}",
                "authorization_endpoint": "{public_url}/{server}/authorize",
                "token_endpoint": "{public_url}/{server}/token",
                "registration_endpoint": "{public_url}/{server}/register",
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }),
        );
    }
    let mut list = Map::new();
    for s in servers {
        let mut server = Map::new();
        server.insert("mode".into(), json!(s.mode.as_str()));
        if let Some(issuer) = &s.issuer {
            server.insert("issuer".into(), json!(issuer));
        }
        if !s.scopes.is_empty() {
            server.insert("scopes".into(), json!(s.scopes));
        }
        list.insert(s.name.clone(), Value::Object(server));
    }
    out.insert("servers".into(), Value::Object(list));
    serde_json::to_string_pretty(&Value::Object(out)).unwrap_or_default()
}

/// `--online`: finds the issuer of every delegate server concurrently, as a client does.
async fn online(servers: &mut [Planned], remarks: &mut Vec<Remark>) {
    let strict = Fetcher::new(Limits::default());
    let tasks: Vec<_> = servers
        .iter()
        .enumerate()
        .filter(|(_, s)| s.mode == ModeKind::Delegate)
        .filter_map(|(i, s)| {
            let url = s.url.clone()?;
            let strict = strict.clone();
            Some((i, tokio::spawn(async move { walk(&strict, &url).await })))
        })
        .collect();
    for (i, task) in tasks {
        let s = &mut servers[i];
        let found = task
            .await
            .unwrap_or_else(|e| Err(format!("the discovery task failed: {e}")));
        match found {
            Err(why) => {
                let message = match &s.issuer {
                    Some(issuer) => {
                        format!(
                            "--online could not confirm the issuer ({why}); kept LiteLLM's issuer {issuer}"
                        )
                    }
                    None => format!("--online could not find the upstream's issuer: {why}"),
                };
                let level = if s.issuer.is_some() {
                    Level::Warning
                } else {
                    Level::Error
                };
                remarks.push(Remark {
                    pos: Some(s.pos),
                    path: s.path.clone(),
                    level,
                    message,
                });
            }
            Ok(found) => {
                if let Some(configured) = &s.issuer {
                    if *configured != found.issuer {
                        remarks.push(Remark {
                            pos: Some(s.pos),
                            path: s.path.clone(),
                            level: Level::Warning,
                            message: format!(
                                "LiteLLM's issuer {configured:?} is not the one the upstream names ({:?}); using the upstream's, which its metadata confirms; fix issuer: in LiteLLM",
                                found.issuer
                            ),
                        });
                    }
                }
                for note in found.notes {
                    remarks.push(Remark {
                        pos: Some(s.pos),
                        path: s.path.clone(),
                        level: Level::Note,
                        message: note,
                    });
                }
                s.issuer = Some(found.issuer);
                if s.scopes.is_empty() {
                    s.scopes = found.scopes;
                }
            }
        }
    }
}

/// What `--online` found for one upstream.
struct Found {
    issuer: String,
    scopes: Vec<String>,
    /// Upstream discovery's warnings about the issuer's metadata.
    notes: Vec<String>,
}

/// An MCP `initialize` request, as a client's first request.
const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"signpost-import","version":"1"}}}"#;

/// A client's walk: unauthenticated `POST url` → its 401's `resource_metadata` hint (else the
/// RFC 9728 well-known URLs) → PRM → `authorization_servers[0]` → that issuer's metadata,
/// checked by upstream discovery (byte-for-byte `issuer`, reachable, not too large). The MCP URL
/// and the PRM may be plain http inside the cluster (LiteLLM reaches the upstream there); the
/// issuer is held to upstream discovery's rules.
async fn walk(strict: &Fetcher, url: &str) -> Result<Found, String> {
    let loose = strict.clone().allow_http_to_any_host();
    let mcp = Url::parse(url).map_err(|e| format!("url {url:?} is not a URL ({e})"))?;
    let answer = loose
        .request(
            Method::POST,
            &mcp,
            &[
                ("content-type", "application/json"),
                ("accept", "application/json, text/event-stream"),
            ],
            Bytes::from_static(INITIALIZE.as_bytes()),
        )
        .await
        .map_err(|e| format!("POST {mcp}: {}", fetch_error(&e)))?;
    if answer.status.as_u16() != 401 {
        return Err(format!(
            "POST {mcp} without a token answers {}, not 401: the upstream does not ask MCP clients to log in, so there is no issuer to find",
            answer.status.as_u16()
        ));
    }
    let joined = answer
        .headers
        .get_all(hyper::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");
    let hinted =
        crate::probe::header::any_resource_metadata(&joined).and_then(|h| answer.url.join(&h).ok());
    let candidates = match hinted {
        Some(u) => vec![u],
        None => vec![
            crate::well_known::prm_path_inserted(&mcp),
            crate::well_known::prm_root(&mcp),
        ],
    };
    let mut tried = Vec::new();
    let mut prm = None;
    for candidate in candidates {
        match loose.get_json(&candidate, &[]).await {
            Err(e) => tried.push(format!("{candidate} ({})", fetch_error(&e))),
            Ok(r) if !r.status.is_success() => {
                tried.push(format!("{candidate} ({})", r.status.as_u16()))
            }
            Ok(r) => match serde_json::from_slice::<Value>(&r.body) {
                Ok(Value::Object(doc)) => {
                    prm = Some((candidate, doc));
                    break;
                }
                _ => tried.push(format!("{candidate} (200, not a JSON object)")),
            },
        }
    }
    let Some((prm_url, prm)) = prm else {
        return Err(format!(
            "no protected-resource metadata: tried {}",
            tried.join(", ")
        ));
    };
    let issuer = prm
        .get("authorization_servers")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("{prm_url} has no authorization_servers[0]"))?
        .to_owned();
    let scopes = prm
        .get("scopes_supported")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .filter(|s| !s.is_empty() && s.bytes().all(crate::config::is_scope_char))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let d = discover(strict, &issuer).await;
    if d.document.is_none() {
        let why: Vec<String> = d.findings.iter().map(|f| f.message.clone()).collect();
        return Err(format!(
            "{prm_url} names issuer {issuer}, but: {}",
            why.join("; ")
        ));
    }
    // A document naming another issuer is returned (a facade tolerates it); a delegate cannot.
    if let (Some(_), Some((_, doc))) = (&d.notes.published_issuer, &d.document) {
        let usage = crate::upstream::discover::Usage {
            used_as: crate::upstream::discover::Use::Delegate,
            scopes: &[],
            registration_configured: false,
            cimd_configured: false,
        };
        let why = crate::upstream::discover::judge_usage(doc, &d.notes, &usage)
            .into_iter()
            .find(|f| f.code == "issuer_mismatch")
            .map(|f| f.message)
            .unwrap_or_default();
        return Err(format!("{prm_url} names issuer {issuer}, but: {why}"));
    }
    let notes = d
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .map(|f| format!("upstream {}: {}", f.code, f.message))
        .collect();
    Ok(Found {
        issuer,
        scopes,
        notes,
    })
}

fn fetch_error(e: &FetchError) -> String {
    e.to_string()
}
