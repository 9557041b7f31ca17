//! Property tests (issue 6): random valid configs render documents that keep DESIGN.md §1–4's
//! promises, and `config::parse` survives any JSON.
//!
//! The generated configs are valid by construction: fixed path segments carry a character server
//! names cannot have (`~`, `@`, `!`), so two servers never produce the same resource path or
//! issuer. The expected URLs are computed here from the generated parts (scheme, host, port,
//! prefix), not by signpost's own code.

use std::collections::{BTreeMap, BTreeSet};

use hyper::header;
use hyper::{Method, Request, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};
use signpost::testing::config::{self, ModeKind};
use signpost::testing::registry::{AS_PREFIX, DocKind, PRM_PREFIX, Registry};
use signpost::testing::state::{self, AppState};

#[path = "fuzz/check.rs"]
mod check;

// ---------------------------------------------------------------------------------------------
// The model of a generated config.

#[derive(Debug, Clone)]
struct SiteSpec {
    https: bool,
    host: String,
    port: Option<u16>,
    /// As written after the authority: `""`, `/litellm`, `/a/b/`.
    prefix: String,
}

impl SiteSpec {
    fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let port = self.port.map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}://{}{port}{}", self.host, self.prefix)
    }

    /// What clients see: lower-case host, no default port.
    fn origin(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        let port = match self.port {
            Some(p) if p != default => format!(":{p}"),
            _ => String::new(),
        };
        format!("{scheme}://{}{port}", self.host.to_ascii_lowercase())
    }

    /// The prefix without its trailing `/`.
    fn prefix(&self) -> &str {
        self.prefix.trim_end_matches('/')
    }

    /// The `Host` header a client sends.
    fn host_header(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    fn base(&self) -> String {
        format!("{}{}", self.origin(), self.prefix())
    }

    fn full_path(&self, path: &str) -> String {
        match (path, self.prefix()) {
            ("/", "") => "/".into(),
            ("/", p) => p.into(),
            (path, p) => format!("{p}{path}"),
        }
    }
}

#[derive(Debug, Clone)]
enum ModeSpec {
    Delegate {
        issuer: String,
    },
    Facade {
        issuer: String,
        facade_issuer: Option<String>,
        registration: bool,
    },
    Gateway,
    None,
}

impl ModeSpec {
    fn kind(&self) -> ModeKind {
        match self {
            ModeSpec::Delegate { .. } => ModeKind::Delegate,
            ModeSpec::Facade { .. } => ModeKind::Facade,
            ModeSpec::Gateway => ModeKind::Gateway,
            ModeSpec::None => ModeKind::None,
        }
    }
}

#[derive(Debug, Clone)]
struct ServerSpec {
    name: String,
    mode: ModeSpec,
    scopes: Vec<String>,
    resource_name: Option<String>,
    documentation: bool,
    paths: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
struct ConfigSpec {
    sites: Vec<SiteSpec>,
    /// `public_url` written as a list (else the one site as a string).
    list: bool,
    paths: Option<Vec<String>>,
    gateway_issuer: Option<String>,
    cache_max_age: Option<u64>,
    servers: Vec<ServerSpec>,
}

const DEFAULT_PATHS: [&str; 3] = ["/mcp/{server}/mcp", "/mcp/{server}", "/{server}/mcp"];

impl ConfigSpec {
    fn json(&self) -> Value {
        let mut root = serde_json::Map::new();
        root.insert(
            "public_url".into(),
            if self.list {
                json!(self.sites.iter().map(SiteSpec::url).collect::<Vec<_>>())
            } else {
                json!(self.sites[0].url())
            },
        );
        if let Some(p) = &self.paths {
            root.insert("resource_paths".into(), json!(p));
        }
        if let Some(age) = self.cache_max_age {
            root.insert("cache_max_age".into(), json!(age));
        }
        if let Some(issuer) = &self.gateway_issuer {
            root.insert("gateway".into(), json!({ "issuer": issuer }));
        }
        let mut servers = serde_json::Map::new();
        for s in &self.servers {
            let mut o = serde_json::Map::new();
            o.insert("mode".into(), json!(s.mode.kind().as_str()));
            match &s.mode {
                ModeSpec::Delegate { issuer } => {
                    o.insert("issuer".into(), json!(issuer));
                }
                ModeSpec::Facade {
                    issuer,
                    facade_issuer,
                    registration,
                } => {
                    o.insert("issuer".into(), json!(issuer));
                    o.insert(
                        "authorization_endpoint".into(),
                        json!(format!("{issuer}/authorize")),
                    );
                    o.insert("token_endpoint".into(), json!(format!("{issuer}/token")));
                    if *registration {
                        o.insert(
                            "registration_endpoint".into(),
                            json!(format!("{issuer}/register")),
                        );
                    }
                    if let Some(f) = facade_issuer {
                        o.insert("facade_issuer".into(), json!(f));
                    }
                }
                ModeSpec::Gateway | ModeSpec::None => {}
            }
            if !s.scopes.is_empty() || s.name.len() % 2 == 0 {
                o.insert("scopes".into(), json!(s.scopes));
            }
            if let Some(n) = &s.resource_name {
                o.insert("resource_name".into(), json!(n));
            }
            if s.documentation {
                o.insert(
                    "resource_documentation".into(),
                    json!(format!("https://docs.example.com/{}", s.name)),
                );
            }
            if let Some(p) = &s.paths {
                o.insert("resource_paths".into(), json!(p));
            }
            servers.insert(s.name.clone(), Value::Object(o));
        }
        root.insert("servers".into(), Value::Object(servers));
        Value::Object(root)
    }

    fn paths_of(&self, s: &ServerSpec) -> Vec<String> {
        let templates: Vec<String> = match (&s.paths, &self.paths) {
            (Some(p), _) | (None, Some(p)) => p.clone(),
            (None, None) => DEFAULT_PATHS.iter().map(|s| (*s).to_owned()).collect(),
        };
        let mut out: Vec<String> = Vec::new();
        for t in templates {
            let p = t.replace("{server}", &s.name);
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// The issuer a server's PRM names on `site`, and whether signpost hosts its metadata.
    fn issuer_of(&self, s: &ServerSpec, site: &SiteSpec) -> Option<(String, bool)> {
        let fill = |t: &str| {
            t.replace("{public_url}", &site.base())
                .replace("{server}", &s.name)
        };
        match &s.mode {
            ModeSpec::Delegate { issuer } => Some((issuer.clone(), false)),
            ModeSpec::Facade { facade_issuer, .. } => Some((
                fill(facade_issuer.as_deref().unwrap_or("{public_url}/{server}")),
                true,
            )),
            ModeSpec::Gateway => Some((
                fill(
                    self.gateway_issuer
                        .as_deref()
                        .unwrap_or("{public_url}/{server}"),
                ),
                true,
            )),
            ModeSpec::None => None,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

const HOSTS: [&str; 6] = [
    "gw.example.com",
    "GW2.Example.COM",
    "localhost",
    "127.0.0.1",
    "[::1]",
    "mcp.internal.example.org",
];

fn site() -> impl Strategy<Value = (usize, bool, Option<u16>, String)> {
    (
        0..HOSTS.len(),
        any::<bool>(),
        prop_oneof![
            Just(None),
            Just(Some(443)),
            Just(Some(80)),
            Just(Some(8443))
        ],
        prop_oneof![
            Just(String::new()),
            Just("/".to_owned()),
            Just("/litellm".to_owned()),
            Just("/a/b~c/".to_owned()),
            "/[a-z0-9~]{1,6}",
        ],
    )
}

fn sites() -> impl Strategy<Value = (Vec<SiteSpec>, bool)> {
    (prop::collection::vec(site(), 1..4), any::<bool>()).prop_map(|(raw, list)| {
        let mut seen = BTreeSet::new();
        let sites: Vec<SiteSpec> = raw
            .into_iter()
            .filter(|(h, ..)| seen.insert(*h))
            .map(|(h, https, port, prefix)| SiteSpec {
                https,
                host: HOSTS[h].to_owned(),
                port,
                prefix,
            })
            .collect();
        let list = list || sites.len() > 1;
        (sites, list)
    })
}

/// A resource path template: fixed segments that server names cannot spell, and `{server}` once
/// as a whole segment or with a `~` suffix.
fn template() -> impl Strategy<Value = String> {
    let fixed = prop::sample::select(vec!["mcp~", "v1@", "tools!", "x~y", "(a)", "s=1"]);
    (
        prop::collection::vec(fixed, 0..3),
        prop_oneof![
            Just("{server}".to_owned()),
            "[a-z]{1,3}".prop_map(|s| format!("{{server}}~{s}"))
        ],
        any::<prop::sample::Index>(),
    )
        .prop_map(|(mut segs, server, at)| {
            let i = at.index(segs.len() + 1);
            let mut all: Vec<String> = segs.drain(..).map(str::to_owned).collect();
            all.insert(i, server);
            format!("/{}", all.join("/"))
        })
}

fn templates() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(template(), 1..4)
}

fn upstream_issuer() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://idp.example.com".to_owned()),
        Just("https://tenant.eu.auth0.com/".to_owned()),
        Just("https://sso.example.com/realms/eng".to_owned()),
        Just("https://login.microsoftonline.com/0b7e/v2.0".to_owned()),
        Just("https://IdP.Example.com/Realms/X".to_owned()),
        Just("http://localhost:9000/".to_owned()),
        (
            prop::collection::vec("[A-Za-z0-9._~-]{1,8}", 0..3),
            any::<bool>()
        )
            .prop_filter("no dot segments", |(segs, _)| {
                segs.iter().all(|s| s != "." && s != "..")
            })
            .prop_map(|(segs, slash)| {
                let mut s = format!("https://issuer.example.net/{}", segs.join("/"));
                if !slash && s.ends_with('/') {
                    s.pop();
                }
                s
            }),
    ]
}

fn mode() -> impl Strategy<Value = ModeSpec> {
    prop_oneof![
        upstream_issuer().prop_map(|issuer| ModeSpec::Delegate { issuer }),
        (
            upstream_issuer(),
            prop::option::of(prop::sample::select(vec![
                "{public_url}/{server}",
                "{public_url}/{server}/",
                "{public_url}/as~/{server}/",
                "{public_url}/{server}/oauth~",
            ])),
            any::<bool>()
        )
            .prop_map(|(issuer, f, registration)| ModeSpec::Facade {
                issuer: issuer.trim_end_matches('/').to_owned(),
                facade_issuer: f.map(str::to_owned),
                registration,
            }),
        Just(ModeSpec::Gateway),
        Just(ModeSpec::None),
    ]
}

fn server() -> impl Strategy<Value = ServerSpec> {
    (
        "[A-Za-z0-9._-]{1,10}".prop_filter("not . or ..", |n| n != "." && n != ".."),
        mode(),
        prop::collection::vec("[!#-\\[\\]-~]{1,8}", 0..4),
        prop::option::of("\\PC{1,12}"),
        any::<bool>(),
        prop::option::of((templates(), any::<bool>())),
    )
        .prop_map(
            |(name, mode, scopes, resource_name, documentation, paths)| ServerSpec {
                name,
                mode,
                scopes,
                resource_name,
                documentation,
                paths: paths.map(|(mut p, root)| {
                    if root {
                        p.push("/".into());
                    }
                    p
                }),
            },
        )
}

fn config_spec() -> impl Strategy<Value = ConfigSpec> {
    (
        sites(),
        prop::option::of(templates()),
        prop::option::of(prop::sample::select(vec![
            "{public_url}/{server}",
            "{public_url}/{server}/",
            "{public_url}/gw~/{server}",
        ])),
        prop::option::of(0u64..100_000),
        prop::collection::vec(server(), 0..7),
    )
        .prop_map(
            |((sites, list), paths, gateway_issuer, cache_max_age, raw)| {
                // Unique names (case matters), and at most one server at the root.
                let mut names = BTreeSet::new();
                let mut root = false;
                let servers = raw
                    .into_iter()
                    .filter(|s| names.insert(s.name.clone()))
                    .map(|mut s| {
                        if let Some(p) = &mut s.paths {
                            if p.iter().any(|p| p == "/") {
                                if root {
                                    p.retain(|p| p != "/");
                                }
                                root = true;
                            }
                        }
                        s
                    })
                    .collect();
                ConfigSpec {
                    sites,
                    list,
                    paths,
                    gateway_issuer: gateway_issuer.map(str::to_owned),
                    cache_max_age,
                    servers,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn body(response: hyper::Response<http_body_util::Full<bytes::Bytes>>) -> (StatusCode, Vec<u8>) {
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};
    let (parts, mut body) = response.into_parts();
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    use hyper::body::Body;
    while let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) {
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    (parts.status, out)
}

fn get(state: &AppState, path: &str, host: &str) -> (StatusCode, Vec<u8>) {
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::HOST, host)
        .body(())
        .expect("a valid request");
    body(signpost::testing::public::respond(state, &req))
}

fn prm_path(full: &str) -> String {
    if full == "/" {
        PRM_PREFIX.to_owned()
    } else {
        format!("{PRM_PREFIX}{full}")
    }
}

fn as_path(issuer: &str) -> String {
    let after_scheme = issuer.split_once("://").expect("an absolute issuer").1;
    let path = after_scheme.find('/').map_or("", |i| &after_scheme[i..]);
    format!("{AS_PREFIX}{}", path.trim_end_matches('/'))
}

fn origin_of(issuer: &str) -> String {
    let url = url::Url::parse(issuer).expect("an absolute issuer");
    url.origin().ascii_serialization()
}

/// The config of a text `build` accepted (the registry keeps only what answering reads of it).
fn parsed(text: &str) -> signpost::testing::config::Config {
    config::parse(text, "p.json").expect("accepted by build")
}

/// `config::parse` (which validates servers as it parses them) gives exactly what validating the
/// whole JSON tree gives: the same config, or the same problems at the same positions; and so does
/// `config::parse_owned` (what `serve` uses: it frees the text before expanding the servers).
fn same_as_tree(text: &str) {
    let shown = |r: Result<config::Config, config::Problems>| match r {
        Ok(c) => format!("{c:?}"),
        Err(p) => format!("{p}\n{:?}", p.list),
    };
    let (streamed, tree, owned) = (
        shown(config::parse(text, "p.json")),
        shown(config::parse_tree(text, "p.json")),
        shown(config::parse_owned(text.as_bytes().to_vec(), "p.json")),
    );
    assert_eq!(streamed, tree, "parse and parse_tree differ on\n{text}");
    let in_place = shown(config::parse_bytes(text.as_bytes(), "p.json"));
    assert_eq!(
        in_place, owned,
        "parse_bytes and parse_owned differ on\n{text}"
    );
}

fn build(text: &str) -> Registry {
    same_as_tree(text);
    let registry = match state::build(text, "p.json", 1) {
        Ok(r) => r,
        Err(p) => panic!("a generated config was rejected:\n{p}\n{text}"),
    };
    // What `serve` builds from the file (one site and no discovery: a server at a time) answers
    // exactly the same.
    let served = state::build_file(text.as_bytes().to_vec(), "p.json", 1).expect("accepted");
    assert_eq!(
        answers(&served),
        answers(&registry),
        "build_file differs on\n{text}"
    );
    registry
}

/// Every document of a snapshot, per site: path, status, ETag and body; and each server's owner.
fn answers(r: &Registry) -> (Vec<Vec<String>>, Vec<String>) {
    let docs = r
        .sites
        .iter()
        .map(|site| {
            let mut all: Vec<String> = site
                .documents()
                .into_iter()
                .map(|(path, d)| {
                    let (etag, body) = (d.etag_bytes().to_vec(), d.body().to_vec());
                    format!(
                        "{path} {} {} {}",
                        d.status,
                        String::from_utf8_lossy(&etag),
                        String::from_utf8_lossy(&body)
                    )
                })
                .collect();
            all.sort();
            all
        })
        .collect();
    let owners = (0..r.server_count())
        .map(|i| format!("{:?}", r.owner(i)))
        .collect();
    (docs, owners)
}

// ---------------------------------------------------------------------------------------------
// Properties.

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    /// Every document of a random valid config keeps the promises of DESIGN.md §1–4, and is served
    /// by `public::respond` for the `Host` of its site.
    #[test]
    fn documents_match_the_urls_they_are_served_for(spec in config_spec()) {
        let text = serde_json::to_string_pretty(&spec.json()).expect("JSON");
        let registry = build(&text);
        check::check_registry(&registry, &parsed(&text));
        prop_assert_eq!(registry.sites.len(), spec.sites.len());

        // The expected documents, computed from the generated parts.
        let mut expected: Vec<BTreeMap<String, (DocKind, Option<String>)>> =
            vec![BTreeMap::new(); spec.sites.len()];
        for site_spec in &spec.sites {
            for s in &spec.servers {
                let Some((issuer, hosted)) = spec.issuer_of(s, site_spec) else { continue };
                if hosted {
                    let si = spec
                        .sites
                        .iter()
                        .position(|x| x.origin() == origin_of(&issuer))
                        .expect("a hosted issuer under some site");
                    expected[si].insert(as_path(&issuer), (DocKind::As, Some(issuer)));
                }
            }
        }
        for (si, site_spec) in spec.sites.iter().enumerate() {
            let site = &registry.sites[si];
            prop_assert_eq!(&site.site.origin, &site_spec.origin());
            for s in &spec.servers {
                let issuer = spec.issuer_of(s, site_spec);
                for p in spec.paths_of(s) {
                    let full = site_spec.full_path(&p);
                    let doc_path = prm_path(&full);
                    let Some((issuer, _)) = &issuer else {
                        prop_assert!(site.document(doc_path.as_str()).is_none(),
                            "a PRM for mode none server {} at {}", s.name, doc_path);
                        continue;
                    };
                    let doc = site.document(doc_path.as_str());
                    prop_assert!(doc.is_some(), "no PRM at {}{}", site_spec.origin(), doc_path);
                    let doc = doc.expect("checked");
                    let v: Value = serde_json::from_slice(&doc.body()).expect("JSON");
                    let resource = if full == "/" {
                        site_spec.origin()
                    } else {
                        format!("{}{full}", site_spec.origin())
                    };
                    prop_assert_eq!(v["resource"].as_str(), Some(resource.as_str()));
                    prop_assert_eq!(&v["authorization_servers"], &json!([issuer]));
                    let mut scopes: Vec<&String> = Vec::new();
                    for sc in &s.scopes {
                        if !scopes.contains(&sc) {
                            scopes.push(sc);
                        }
                    }
                    if scopes.is_empty() {
                        prop_assert!(v.get("scopes_supported").is_none());
                    } else {
                        prop_assert_eq!(&v["scopes_supported"], &json!(scopes));
                    }
                    let name = s.resource_name.as_ref().map(|n| json!(n));
                    prop_assert_eq!(v.get("resource_name"), name.as_ref());
                    prop_assert!(expected[si].insert(doc_path, (DocKind::Prm, None)).is_none());
                }
            }
            let documents = site.documents();
            let served: BTreeSet<&str> = documents.iter().map(|(k, _)| k.as_str()).collect();
            let wanted: BTreeSet<&str> = expected[si].keys().map(String::as_str).collect();
            prop_assert_eq!(served, wanted, "documents of {}", site_spec.origin());
            for (path, (kind, issuer)) in &expected[si] {
                let doc = site.document(path.as_str()).expect("listed");
                prop_assert_eq!(doc.kind, *kind);
                if let Some(issuer) = issuer {
                    let v: Value = serde_json::from_slice(&doc.body()).expect("JSON");
                    prop_assert_eq!(v["issuer"].as_str(), Some(issuer.as_str()));
                    prop_assert!(check::issuer_matches_location(
                        issuer,
                        &site_spec.origin(),
                        &path[AS_PREFIX.len()..]
                    ));
                }
            }
        }

        // Served through the router, with the Host a client sends (any spelling of it).
        let state = AppState::new(registry);
        let registry = state.registry();
        for (si, site_spec) in spec.sites.iter().enumerate() {
            let hosts = [site_spec.host_header(), site_spec.host_header().to_ascii_uppercase()];
            for (path, doc) in registry.sites[si].documents() {
                for host in &hosts {
                    for variant in [path.to_string(), format!("{path}/"), format!("{path}?x=1")] {
                        let (status, body) = get(&state, &variant, host);
                        prop_assert_eq!(status, StatusCode::OK, "GET {} Host {}", variant, host);
                        prop_assert_eq!(&body[..], &doc.body()[..], "GET {} Host {}", variant, host);
                    }
                }
            }
            if spec.list {
                let (status, _) = get(&state, PRM_PREFIX, "unknown.example");
                prop_assert_eq!(status, StatusCode::NOT_FOUND);
            }
        }
    }

    /// `config::parse` never panics on a random JSON value under the config's keys, and every
    /// problem about a key that exists in the file has its line and column.
    #[test]
    fn parse_survives_any_json(root in config_like()) {
        let text = serde_json::to_string_pretty(&root).expect("JSON");
        check_problems(&root, &text);
    }

    /// The same for a valid config with one value replaced by a random JSON value.
    #[test]
    fn parse_survives_one_bad_value(
        spec in config_spec(),
        at in any::<prop::sample::Index>(),
        value in json_value(),
    ) {
        let mut root = spec.json();
        let mut slots = Vec::new();
        collect_slots(&root, &mut Vec::new(), &mut slots);
        let slot = &slots[at.index(slots.len())];
        *pointer_mut(&mut root, slot) = value;
        let text = serde_json::to_string_pretty(&root).expect("JSON");
        check_problems(&root, &text);
    }
}

/// A JSON value of small depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "https://gw.example.com",
            "{public_url}/{server}",
            "/mcp/{server}",
            "/",
            "delegate",
            "facade",
            "gateway",
            "none",
            "",
        ])
        .prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "public_url",
            "resource_paths",
            "cache_max_age",
            "upstream_refresh",
            "gateway",
            "servers",
            "mode",
            "issuer",
            "facade_issuer",
            "authorization_endpoint",
            "token_endpoint",
            "registration_endpoint",
            "token_endpoint_auth_methods_supported",
            "scopes",
            "resource_name",
            "resource_documentation",
            "discover",
            "client_secret",
            "a.b",
            "x",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,8}",
    ]
}

/// A top-level object with config keys and random values.
fn config_like() -> impl Strategy<Value = Value> {
    prop::collection::vec((key(), json_value()), 0..6)
        .prop_map(|kv| Value::Object(kv.into_iter().collect()))
}

/// Every (object key or array index) path of `v`, as JSON pointer segments.
fn collect_slots(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                at.push(k.clone());
                collect_slots(x, at, out);
                at.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                at.push(i.to_string());
                collect_slots(x, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn pointer_mut<'v>(v: &'v mut Value, at: &[String]) -> &'v mut Value {
    at.iter().fold(v, |v, seg| match v {
        Value::Object(o) => o.get_mut(seg).expect("a collected key"),
        Value::Array(a) => &mut a[seg.parse::<usize>().expect("an index")],
        _ => unreachable!("collected slots lead to containers"),
    })
}

/// Follows a problem's JSON path (`servers.a.mode`, `servers["a.b"]`, `resource_paths[1]`) in
/// `root`; `None` when it names nothing that exists.
fn resolve<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    let mut v = root;
    let mut rest = path;
    while !rest.is_empty() {
        rest = rest.strip_prefix('.').unwrap_or(rest);
        if let Some(r) = rest.strip_prefix('[') {
            if r.starts_with('"') {
                // A quoted key: a JSON string, then `]`.
                let mut de = serde_json::Deserializer::from_str(r).into_iter::<String>();
                let key = de.next()?.ok()?;
                let used = de.byte_offset();
                v = v.as_object()?.get(&key)?;
                rest = r[used..].strip_prefix(']')?;
            } else {
                let end = r.find(']')?;
                v = v.as_array()?.get(r[..end].parse::<usize>().ok()?)?;
                rest = &r[end + 1..];
            }
        } else {
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            v = v.as_object()?.get(&rest[..end])?;
            rest = &rest[end..];
        }
    }
    Some(v)
}

fn check_problems(root: &Value, text: &str) {
    same_as_tree(text);
    same_as_tree(&serde_json::to_string(root).expect("JSON"));
    let lines = text.split('\n').count();
    match config::parse(text, "p.json") {
        Ok(config) => {
            let source = signpost::testing::registry::Source {
                path: "p.json".into(),
                generation: 1,
                content_sha256: String::new(),
                loaded_at: std::time::UNIX_EPOCH,
            };
            check::check_registry(&Registry::build(config.clone(), source), &config);
        }
        Err(problems) => {
            assert!(!problems.list.is_empty());
            for p in &problems.list {
                if let Some(pos) = p.pos {
                    assert!(
                        pos.line <= lines && pos.column >= 1,
                        "{p:?} is outside the text"
                    );
                } else {
                    assert!(
                        resolve(root, &p.path).is_none(),
                        "no position for {}, which exists: {p:?}\n{text}",
                        p.path
                    );
                }
                assert!(!p.message.contains('\n'), "{p:?}");
            }
            assert_eq!(
                problems.to_string().lines().count(),
                problems.list.len(),
                "{problems}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions found by fuzzing (tests/fuzz/corpus/config/regress-*).

/// A hosted issuer is served at the well-known URL of its parsed form: a template that URL parsers
/// rewrite (a backtick gets percent-encoded) would serve a document whose `issuer` differs from
/// the URL it is served under. It is rejected, with the form to write instead.
#[test]
fn hosted_issuer_not_in_normal_form_is_rejected() {
    let text = r#"{"public_url": "https://gw.example.com", "servers": {
        "f": {"mode": "facade", "issuer": "https://sso.example.com/realms/eng",
              "authorization_endpoint": "https://sso.example.com/a",
              "token_endpoint": "https://sso.example.com/t",
              "facade_issuer": "{public_url}/`s/{server}/"}}}"#;
    let problems = config::parse(text, "t.json")
        .expect_err("rejected")
        .to_string();
    assert!(
        problems.starts_with("t.json:5:32: servers.f.facade_issuer: issuer https://gw.example.com/`s/f/ is not written as URL parsers write it (https://gw.example.com/%60s/f/)"),
        "{problems}"
    );
    let text = r#"{"public_url": "https://gw.example.com", "gateway": {"issuer": "https://GW.example.com/{server}"},
        "servers": {"g": {"mode": "gateway"}}}"#;
    let problems = config::parse(text, "t.json")
        .expect_err("rejected")
        .to_string();
    assert!(problems.contains("gateway.issuer: issuer https://GW.example.com/g is not written as URL parsers write it (https://gw.example.com/g)"), "{problems}");
    // The bare origin without its `/` is the normal form too.
    let text = r#"{"public_url": "https://gw.example.com", "gateway": {"issuer": "{public_url}"},
        "servers": {"g": {"mode": "gateway"}}}"#;
    let registry = build(text);
    check::check_registry(&registry, &parsed(text));
}

/// URL parsers drop tabs and newlines: an issuer with one would never match the upstream's own.
#[test]
fn urls_with_spaces_or_control_characters_are_rejected() {
    for bad in [
        "https://idp.example.com/\t",
        "https://idp.example.com/a b",
        " https://idp.example.com",
    ] {
        let text = json!({"public_url": "https://gw.example.com",
            "servers": {"d": {"mode": "delegate", "issuer": bad}}})
        .to_string();
        let problems = config::parse(&text, "t.json").expect_err(bad).to_string();
        assert!(
            problems.contains("servers.d.issuer: must not contain spaces or control characters"),
            "{bad:?}: {problems}"
        );
    }
    let text = r#"{"public_url": "https://gw.example.com/a\nb", "servers": {}}"#;
    let problems = config::parse(text, "t.json")
        .expect_err("rejected")
        .to_string();
    assert!(
        problems.contains("public_url: must not contain spaces"),
        "{problems}"
    );
}

/// The router fuzz target's configs are valid and keep every promise.
#[test]
fn fuzz_router_config_is_valid() {
    for (text, resource) in [
        (
            include_str!("fuzz/fuzz_targets/router.json"),
            "/mcp/github/mcp",
        ),
        (
            include_str!("fuzz/fuzz_targets/router_single.json"),
            "/mcpgw/mcp/a/mcp",
        ),
    ] {
        let registry = build(text);
        assert!(check::check_registry(&registry, &parsed(text)) > 5);
        let state = AppState::new(registry);
        let (status, _) = get(&state, &prm_path(resource), "gw.example.com");
        assert_eq!(status, StatusCode::OK);
    }
}
