//! Upstream IdP discovery (`"discover": true`, `check --online`) against real IdPs on loopback:
//! each [`Idp`] is a hyper server answering configurable routes, counting requests, able to hold
//! its answers until the test releases them and to die mid-test. Covers the MCP URL order, exact
//! issuer comparison, every finding, the fetch bounds (timeout, body cap, cross-origin redirects),
//! the facade's 503-then-200 at runtime, stale-if-error, reloads and the CLI.

mod common;

/// The invariants every rendered registry keeps (shared with the fuzz targets).
#[path = "fuzz/check.rs"]
mod check;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use signpost::testing::fetch::{Fetcher, Limits};
use signpost::testing::upstream::discover::{
    Discovery, Finding, Severity, Usage, Use, discover, discover_with_cors, judge, judge_usage,
};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use common::{TestServer, get, wait_until};

const AS: &str = "/.well-known/oauth-authorization-server";
const OIDC: &str = "/.well-known/openid-configuration";
/// Long enough for a loaded CI machine, short enough to fail fast.
const DEADLINE: Duration = Duration::from_secs(10);

// === Test IdP ===

/// One canned answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
}

impl Answer {
    fn json(doc: &Value) -> Answer {
        Answer {
            status: 200,
            headers: vec![
                ("content-type", "application/json".into()),
                ("access-control-allow-origin", "*".into()),
            ],
            body: Bytes::from(doc.to_string()),
        }
    }

    fn redirect(to: &str) -> Answer {
        Answer {
            status: 302,
            headers: vec![("location", to.into())],
            body: Bytes::new(),
        }
    }
}

/// A loopback IdP: every path not given an answer is a 404. It answers every CORS preflight
/// (`OPTIONS`) with 204 allowing everything, like a well-configured IdP, until [`Idp::no_cors`].
struct Idp {
    addr: SocketAddr,
    routes: Arc<Mutex<HashMap<String, Answer>>>,
    /// Every request's path but the preflights', in arrival order.
    hits: Arc<Mutex<Vec<String>>>,
    /// The paths of the preflights.
    preflights: Arc<Mutex<Vec<String>>>,
    cors: Arc<std::sync::atomic::AtomicBool>,
    /// While false, requests are counted but not answered.
    open: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Idp {
    /// An IdP answering at once.
    async fn start() -> Idp {
        Idp::start_with(true).await
    }

    /// An IdP that holds every answer until [`Idp::release`].
    async fn start_held() -> Idp {
        Idp::start_with(false).await
    }

    async fn start_with(open: bool) -> Idp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind idp");
        let addr = listener.local_addr().unwrap();
        let routes: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let hits: Arc<Mutex<Vec<String>>> = Arc::default();
        let preflights: Arc<Mutex<Vec<String>>> = Arc::default();
        let cors = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (open, gate) = watch::channel(open);
        let (r, h, p, c) = (
            routes.clone(),
            hits.clone(),
            preflights.clone(),
            cors.clone(),
        );
        // The connections live in a JoinSet owned by the accept task: aborting that task closes
        // every keep-alive connection too, so a killed IdP is really gone.
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (routes, hits, gate) = (r.clone(), h.clone(), gate.clone());
                let (preflights, cors) = (p.clone(), c.clone());
                let svc = service_fn(move |req: Request<Incoming>| {
                    let (routes, hits, mut gate) = (routes.clone(), hits.clone(), gate.clone());
                    let (preflights, cors) = (preflights.clone(), cors.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        if req.method() == hyper::Method::OPTIONS {
                            preflights.lock().unwrap().push(path);
                            return Ok(preflight(cors.load(std::sync::atomic::Ordering::SeqCst)));
                        }
                        hits.lock().unwrap().push(path.clone());
                        let _ = gate.wait_for(|open| *open).await;
                        let answer = routes.lock().unwrap().get(&path).cloned();
                        Ok::<_, Infallible>(respond(answer))
                    }
                });
                conns.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
                while conns.try_join_next().is_some() {}
            }
        });
        Idp {
            addr,
            routes,
            hits,
            preflights,
            cors,
            open,
            task,
        }
    }

    /// From now on, preflights are refused (405, no CORS headers).
    fn no_cors(&self) {
        self.cors.store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// `http://127.0.0.1:<port><path>`.
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn serve(&self, path: &str, answer: Answer) {
        self.routes.lock().unwrap().insert(path.into(), answer);
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }

    fn release(&self) {
        self.open.send_replace(true);
    }

    /// Stops listening and closes every open connection.
    async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A preflight answer: allowing everything, or a bare 405.
fn preflight(allow: bool) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    if allow {
        *response.status_mut() = StatusCode::NO_CONTENT;
        for (k, v) in [
            ("access-control-allow-origin", "*"),
            ("access-control-allow-methods", "GET, POST, OPTIONS"),
            (
                "access-control-allow-headers",
                "content-type, authorization, mcp-protocol-version",
            ),
        ] {
            response.headers_mut().insert(k, v.parse().unwrap());
        }
    } else {
        *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    }
    response
}

fn respond(answer: Option<Answer>) -> Response<Full<Bytes>> {
    let answer = answer.unwrap_or(Answer {
        status: 404,
        headers: vec![("content-type", "application/json".into())],
        body: Bytes::from_static(br#"{"error":"not_found"}"#),
    });
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = StatusCode::from_u16(answer.status).unwrap();
    for (k, v) in answer.headers {
        response.headers_mut().insert(k, v.parse().unwrap());
    }
    response
}

/// Accepts connections and never answers; keeps them open until dropped.
struct Hanging {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Hanging {
    async fn start() -> Hanging {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        Hanging { addr, task }
    }
}

impl Drop for Hanging {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keycloak-flavoured metadata for `issuer`: S256, a registration endpoint, the OIDC fields.
fn metadata(issuer: &str) -> Value {
    let base = issuer.trim_end_matches('/');
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/protocol/openid-connect/auth"),
        "token_endpoint": format!("{base}/protocol/openid-connect/token"),
        "registration_endpoint": format!("{base}/clients-registrations/openid-connect"),
        "revocation_endpoint": format!("{base}/protocol/openid-connect/revoke"),
        "jwks_uri": format!("{base}/protocol/openid-connect/certs"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "code_challenge_methods_supported": ["plain", "S256"]
    })
}

/// `metadata(issuer)` with `edit` applied (`null` removes a key).
fn metadata_with(issuer: &str, edit: Value) -> Value {
    let mut doc = metadata(issuer);
    let m = doc.as_object_mut().unwrap();
    for (k, v) in edit.as_object().unwrap() {
        if v.is_null() {
            m.remove(k);
        } else {
            m.insert(k.clone(), v.clone());
        }
    }
    doc
}

/// An Entra-like v2.0 document: OIDC only, no PKCE methods, no registration endpoint.
fn entra_metadata(issuer: &str) -> Value {
    metadata_with(
        issuer,
        json!({"code_challenge_methods_supported": null, "registration_endpoint": null, "revocation_endpoint": null}),
    )
}

fn fetcher() -> Fetcher {
    Fetcher::new(Limits::default())
}

fn codes(findings: &[Finding]) -> Vec<&'static str> {
    findings.iter().map(|f| f.code).collect()
}

fn results(d: &Discovery) -> Vec<&str> {
    d.attempts.iter().map(|a| a.result.as_str()).collect()
}

/// The accepted document, asserting what every accepted loopback discovery has: no error and
/// exactly one finding, the `private_host` warning naming the address.
fn accepted(d: &Discovery) -> (&str, &Map<String, Value>) {
    let (source, doc) = d
        .document
        .as_ref()
        .map(|(s, d)| (s.as_str(), d))
        .unwrap_or_else(|| panic!("not accepted: {:?}", d.findings));
    assert!(!d.has_errors(), "{:?}", d.findings);
    assert_eq!(codes(&d.findings), ["private_host"], "{:?}", d.findings);
    assert_eq!(d.findings[0].severity, Severity::Warning);
    assert!(
        d.findings[0].message.contains("127.0.0.1"),
        "{:?}",
        d.findings
    );
    (source, doc)
}

/// The single error of a discovery that found nothing usable.
fn rejected(d: &Discovery) -> &Finding {
    assert!(d.document.is_none(), "accepted: {:?}", d.document);
    assert_eq!(d.findings.len(), 1, "{:?}", d.findings);
    assert_eq!(d.findings[0].severity, Severity::Error);
    &d.findings[0]
}

/// How a server with `scopes` uses an upstream (nothing configured besides).
fn usage(used_as: Use, scopes: &[String]) -> Usage<'_> {
    Usage {
        used_as,
        scopes,
        registration_configured: false,
        cimd_configured: false,
    }
}

/// The issuer finding of a discovery whose document names another issuer.
fn mismatch(d: &Discovery, used_as: Use) -> Finding {
    let (_, doc) = d
        .document
        .as_ref()
        .expect("a mismatched document is still returned");
    let scopes = ["openid".to_owned()];
    judge_usage(doc, &d.notes, &usage(used_as, &scopes))
        .into_iter()
        .find(|f| f.code == "issuer_mismatch")
        .unwrap_or_else(|| panic!("no issuer_mismatch: {:?}", d.notes))
}

// === One discovery ===

#[tokio::test]
async fn keycloak_path_issuer_is_found_at_the_third_url_after_two_404s() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("/realms/eng{OIDC}"),
        Answer::json(&metadata(&issuer)),
    );

    let d = discover(&fetcher(), &issuer).await;

    let (source, doc) = accepted(&d);
    let third = idp.url(&format!("/realms/eng{OIDC}"));
    assert_eq!(source, third);
    assert_eq!(doc["issuer"], issuer.as_str());
    let tried: Vec<&str> = d.attempts.iter().map(|a| a.url.as_str()).collect();
    assert_eq!(
        tried,
        [
            idp.url(&format!("{AS}/realms/eng")),
            idp.url(&format!("{OIDC}/realms/eng")),
            third.clone()
        ]
    );
    assert_eq!(results(&d), ["404", "404", "200"]);
    // The same order on the wire.
    assert_eq!(
        idp.hits(),
        [
            format!("{AS}/realms/eng"),
            format!("{OIDC}/realms/eng"),
            format!("/realms/eng{OIDC}")
        ]
    );
    assert_eq!(judge(doc, Use::Delegate), []);
    assert_eq!(judge(doc, Use::Facade), []);
}

#[tokio::test]
async fn root_issuer_with_a_trailing_slash_matches_only_when_configured_with_it() {
    let idp = Idp::start().await;
    let with = idp.url("/");
    let without = idp.url("");
    idp.serve(OIDC, Answer::json(&metadata(&with)));

    let d = discover(&fetcher(), &with).await;
    let (source, _) = accepted(&d);
    assert_eq!(source, idp.url(OIDC));
    assert_eq!(results(&d), ["404", "200"]);

    let d = discover(&fetcher(), &without).await;
    let f = mismatch(&d, Use::Delegate);
    assert_eq!(f.severity, Severity::Error);
    for needle in [
        format!("\"{with}\""),
        format!("\"{without}\""),
        "with the trailing slash".into(),
    ] {
        assert!(f.message.contains(&needle), "{needle} not in {}", f.message);
    }

    // And the other way round.
    idp.serve(OIDC, Answer::json(&metadata(&without)));
    let d = discover(&fetcher(), &with).await;
    let f = mismatch(&d, Use::Delegate);
    assert!(
        f.message.contains("without the trailing slash"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn entra_document_without_pkce_methods_warns_for_delegate_only() {
    let idp = Idp::start().await;
    let issuer = idp.url("/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0");
    let path = "/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0/.well-known/openid-configuration";
    idp.serve(path, Answer::json(&entra_metadata(&issuer)));

    let d = discover(&fetcher(), &issuer).await;
    let (_, doc) = accepted(&d);
    let delegate = judge(doc, Use::Delegate);
    assert_eq!(codes(&delegate), ["no_pkce_methods", "no_registration"]);
    assert_eq!(delegate[0].severity, Severity::Warning);
    // No way to register at all behind a delegate: every client fails.
    assert_eq!(delegate[1].severity, Severity::Error);
    assert!(
        delegate[0].message.contains("facade"),
        "{}",
        delegate[0].message
    );
    assert_eq!(codes(&judge(doc, Use::Facade)), ["no_registration"]);

    // Methods listed, but not S256: both modes are told.
    idp.serve(
        path,
        Answer::json(&metadata_with(
            &issuer,
            json!({"code_challenge_methods_supported": ["plain"]}),
        )),
    );
    let d = discover(&fetcher(), &issuer).await;
    let (_, doc) = accepted(&d);
    for used_as in [Use::Delegate, Use::Facade] {
        let f = judge(doc, used_as);
        assert_eq!(codes(&f), ["no_s256"], "{used_as:?}");
        assert_eq!(f[0].severity, Severity::Warning);
    }
}

#[tokio::test]
async fn no_registration_endpoint_warns_unless_client_id_metadata_documents_are_supported() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let first = format!("{AS}/realms/eng");
    for registration in [json!(null), json!("")] {
        idp.serve(
            &first,
            Answer::json(&metadata_with(
                &issuer,
                json!({"registration_endpoint": registration}),
            )),
        );
        let d = discover(&fetcher(), &issuer).await;
        let (source, doc) = accepted(&d);
        assert_eq!(source, idp.url(&first));
        for used_as in [Use::Delegate, Use::Facade] {
            assert_eq!(
                codes(&judge(doc, used_as)),
                ["no_registration"],
                "{registration} {used_as:?}"
            );
        }
    }

    idp.serve(
        &first,
        Answer::json(&metadata_with(
            &issuer,
            json!({"registration_endpoint": null, "client_id_metadata_document_supported": true}),
        )),
    );
    let d = discover(&fetcher(), &issuer).await;
    let (_, doc) = accepted(&d);
    assert_eq!(judge(doc, Use::Delegate), []);
    assert_eq!(judge(doc, Use::Facade), []);
}

#[tokio::test]
async fn another_realms_issuer_is_a_mismatch_with_a_suggestion() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let published = idp.url("/realms/eng2");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata(&published)),
    );
    // The suggested issuer is checked first: it serves its own metadata.
    idp.serve(
        &format!("{AS}/realms/eng2"),
        Answer::json(&metadata(&published)),
    );

    let d = discover(&fetcher(), &issuer).await;
    let f = mismatch(&d, Use::Delegate);
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message
            .to_lowercase()
            .contains(&format!("did you mean \"{published}\"")),
        "{}",
        f.message
    );
    assert!(
        f.message.contains(&format!("\"{issuer}\"")),
        "{}",
        f.message
    );
    // A mismatch is an answer: no further URL of the configured issuer is tried.
    assert_eq!(results(&d), ["200"]);
    // A facade tolerates it (it serves its own issuer), with a warning.
    let f = mismatch(&d, Use::Facade);
    assert_eq!(f.severity, Severity::Warning, "{}", f.message);
}

/// The issue's case: a Keycloak behind a proxy publishing `issuer` without the realm path. The
/// path-less issuer serves nothing on its own, so it is never suggested; a facade still works.
#[tokio::test]
async fn an_issuer_without_its_path_is_never_suggested_unless_it_works() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let pathless = idp.url("");
    idp.serve(
        &format!("/realms/eng{OIDC}"),
        Answer::json(&metadata_with(&issuer, json!({"issuer": pathless}))),
    );
    let d = discover(&fetcher(), &issuer).await;
    let f = mismatch(&d, Use::Delegate);
    assert_eq!(f.severity, Severity::Error);
    assert!(!f.message.contains("Did you mean"), "{}", f.message);
    assert!(
        f.message.contains("cannot be used instead"),
        "{}",
        f.message
    );
    assert!(f.message.contains("facade"), "{}", f.message);
    // The path-less issuer's own URLs were tried (and served nothing).
    assert!(idp.hits().contains(&AS.to_owned()), "{:?}", idp.hits());
    assert_eq!(mismatch(&d, Use::Facade).severity, Severity::Warning);

    // Once the path-less issuer does serve its own metadata, it is suggested.
    idp.serve(OIDC, Answer::json(&metadata(&pathless)));
    let d = discover(&fetcher(), &issuer).await;
    let f = mismatch(&d, Use::Delegate);
    assert!(
        f.message.contains(&format!("Did you mean \"{pathless}\"")),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn a_hanging_idp_costs_one_total_timeout() {
    let hang = Hanging::start().await;
    let issuer = format!("http://{}/realms/eng", hang.addr);
    let total = Duration::from_millis(500);
    let fetcher = Fetcher::new(Limits {
        connect_timeout: Duration::from_secs(1),
        total_timeout: total,
        ..Limits::default()
    });

    let start = tokio::time::Instant::now();
    let d = discover(&fetcher, &issuer).await;
    let took = start.elapsed();

    assert!(took >= total, "{took:?}");
    // Not one timeout per candidate URL: they share the origin.
    assert!(took < total * 2, "{took:?}");
    let f = rejected(&d);
    assert_eq!(f.code, "unreachable");
    assert!(f.message.contains("none of them answered"), "{}", f.message);
    assert!(
        f.message.contains("no complete answer within"),
        "{}",
        f.message
    );
    assert_eq!(d.attempts.len(), 1);
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/realms/eng", closed.local_addr().unwrap());
    drop(closed);
    let d = discover(&fetcher(), &issuer).await;
    let f = rejected(&d);
    assert_eq!(f.code, "unreachable");
    assert!(f.message.contains("cannot connect"), "{}", f.message);
}

#[tokio::test]
async fn a_cross_origin_redirect_is_not_followed_and_is_reported() {
    let idp = Idp::start().await;
    let elsewhere = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let first = format!("{AS}/realms/eng");
    // The other origin would serve perfectly good metadata.
    elsewhere.serve(&first, Answer::json(&metadata(&issuer)));
    idp.serve(&first, Answer::redirect(&elsewhere.url(&first)));

    let d = discover(&fetcher(), &issuer).await;

    assert_eq!(elsewhere.hits(), Vec::<String>::new(), "followed");
    assert!(
        d.attempts[0].result.contains("redirects to another origin"),
        "{:?}",
        d.attempts
    );
    let f = rejected(&d);
    assert_eq!(f.code, "unreachable");
    assert!(f.message.contains("another origin"), "{}", f.message);
    assert!(f.message.contains(&elsewhere.url(&first)), "{}", f.message);
}

#[tokio::test]
async fn a_same_origin_redirect_is_followed() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer::redirect(&format!("/realms/eng{OIDC}")),
    );
    idp.serve(
        &format!("/realms/eng{OIDC}"),
        Answer::json(&metadata(&issuer)),
    );
    let d = discover(&fetcher(), &issuer).await;
    accepted(&d);
    assert_eq!(d.attempts.len(), 1);
}

#[tokio::test]
async fn a_ten_mib_body_is_cut_at_the_cap() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let huge = format!(
        r#"{{"issuer":"{issuer}","pad":"{}"}}"#,
        "x".repeat(10 << 20)
    );
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer {
            status: 200,
            headers: vec![("content-type", "application/json".into())],
            body: Bytes::from(huge),
        },
    );
    let max = Limits::default().max_body;

    let d = discover(&fetcher(), &issuer).await;

    let f = rejected(&d);
    assert_eq!(f.code, "invalid_metadata");
    assert!(
        f.message.contains(&format!("larger than {max} bytes")),
        "{}",
        f.message
    );
    assert_eq!(d.attempts.len(), 1, "{:?}", d.attempts);
}

#[tokio::test]
async fn a_5xx_stops_discovery_as_it_stops_clients() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer {
            status: 503,
            headers: Vec::new(),
            body: Bytes::new(),
        },
    );
    idp.serve(
        &format!("/realms/eng{OIDC}"),
        Answer::json(&metadata(&issuer)),
    );
    let d = discover(&fetcher(), &issuer).await;
    let f = rejected(&d);
    assert_eq!(f.code, "unreachable");
    assert!(f.message.contains("(503)"), "{}", f.message);
    assert_eq!(results(&d), ["503"]);
}

#[tokio::test]
async fn a_200_that_is_not_json_is_invalid_metadata() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer {
            status: 200,
            headers: vec![("content-type", "text/html".into())],
            body: Bytes::from_static(b"<html>login</html>"),
        },
    );
    idp.serve(
        &format!("/realms/eng{OIDC}"),
        Answer::json(&metadata(&issuer)),
    );
    let d = discover(&fetcher(), &issuer).await;
    assert_eq!(rejected(&d).code, "invalid_metadata");
    assert_eq!(results(&d), ["200"]);
}

#[tokio::test]
async fn rfc9207_iss_parameter_is_an_error_behind_a_facade_only() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata_with(
            &issuer,
            json!({"authorization_response_iss_parameter_supported": true}),
        )),
    );
    let d = discover(&fetcher(), &issuer).await;
    let (_, doc) = accepted(&d);
    let facade = judge(doc, Use::Facade);
    assert_eq!(codes(&facade), ["iss_parameter_with_facade"]);
    assert_eq!(facade[0].severity, Severity::Error);
    assert!(
        facade[0].message.contains("delegate"),
        "{}",
        facade[0].message
    );
    assert_eq!(judge(doc, Use::Delegate), []);
}

// === At runtime ===

/// The admin `/status` document.
async fn status(s: &TestServer) -> Value {
    get(s.admin, "/status").await.json()
}

async fn metric(s: &TestServer, series: &str) -> u64 {
    let text = get(s.admin, "/metrics").await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

fn facade_config(issuer: &str, scopes: &str) -> String {
    format!(
        r#"{{
  "public_url": "https://gw.example.com",
  "servers": {{
    "eng": {{ "mode": "facade", "issuer": "{issuer}", "discover": true, "scopes": {scopes} }}
  }}
}}"#
    )
}

/// The facade's AS metadata path for server `eng` under `https://gw.example.com`.
const ENG_AS: &str = "/.well-known/oauth-authorization-server/eng";

#[tokio::test]
async fn facade_answers_503_until_the_upstream_is_fetched_then_serves_its_endpoints() {
    let idp = Idp::start_held().await;
    let issuer = idp.url("/realms/eng");
    // No PKCE methods upstream: the facade must add S256.
    let upstream = metadata_with(&issuer, json!({"code_challenge_methods_supported": null}));
    idp.serve(&format!("{AS}/realms/eng"), Answer::json(&upstream));
    let s =
        TestServer::start_with_upstreams(&facade_config(&issuer, "[]"), Limits::default()).await;

    // The fetch is in flight (the IdP holds it): the facade cannot answer yet.
    wait_until(DEADLINE, "the first upstream fetch", || async {
        !idp.hits().is_empty()
    })
    .await;
    let r = get(s.public, ENG_AS).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some(), "{:?}", r.headers);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = r.json();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains(&issuer),
        "{body}"
    );
    let st = status(&s).await;
    assert!(
        st["upstreams"]["eng"]["serving"]
            .as_str()
            .unwrap()
            .starts_with("503"),
        "{st}"
    );

    idp.release();
    wait_until(DEADLINE, "the facade's metadata", || async {
        get(s.public, ENG_AS).await.status == 200
    })
    .await;
    let r = get(s.public, ENG_AS).await;
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(r.header("etag").is_some_and(|e| e != "\"pending\""));
    let doc = r.json();
    assert_eq!(doc["issuer"], "https://gw.example.com/eng");
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "token_endpoint_auth_methods_supported",
    ] {
        assert_eq!(doc[key], upstream[key], "{key}");
    }
    assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(doc["response_types_supported"], json!(["code"]));
    // Upstream-only OIDC fields are not copied into the facade's RFC 8414 document.
    assert!(doc.get("jwks_uri").is_none(), "{doc}");

    let st = status(&s).await;
    let eng = &st["upstreams"]["eng"];
    assert_eq!(eng["issuer"], issuer.as_str());
    assert_eq!(eng["source"], idp.url(&format!("{AS}/realms/eng")).as_str());
    assert_eq!(eng["serving"], "ok");
    assert_eq!(eng["last_error"], Value::Null);
    assert_eq!(eng["attempts"][0]["result"], "200");
    let found: Vec<&str> = eng["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // A facade is not told about the missing PKCE methods: it adds S256 itself. The upstream
    // looks like Keycloak (which sends RFC 9207 `iss`), and the server has no scopes.
    assert_eq!(
        found,
        ["private_host", "iss_parameter_likely", "no_scopes"],
        "{eng}"
    );
    assert_eq!(
        metric(&s, "signpost_upstream_fetches_total{result=\"ok\"}").await,
        1
    );
    assert_eq!(idp.hits().len(), 1);
}

#[tokio::test]
async fn facade_keeps_the_last_good_metadata_when_the_upstream_dies() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata(&issuer)),
    );
    let s =
        TestServer::start_with_upstreams(&facade_config(&issuer, "[]"), Limits::default()).await;
    wait_until(DEADLINE, "the facade's metadata", || async {
        get(s.public, ENG_AS).await.status == 200
    })
    .await;
    let before = get(s.public, ENG_AS).await;

    idp.kill().await;
    s.state.upstreams.refresh_now();
    wait_until(DEADLINE, "a failed refresh in /status", || async {
        status(&s).await["upstreams"]["eng"]["last_error"].is_string()
    })
    .await;

    let after = get(s.public, ENG_AS).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.body, before.body);
    assert_eq!(after.header("etag"), before.header("etag"));
    let st = status(&s).await;
    let eng = &st["upstreams"]["eng"];
    assert!(eng["age_seconds"].is_u64(), "{eng}");
    assert!(eng["fetched_at"].is_string(), "{eng}");
    assert!(eng["source"].is_string(), "{eng}");
    assert_eq!(eng["serving"], "ok");
    let last_error = eng["last_error"].as_str().unwrap();
    assert!(last_error.contains("cannot connect"), "{last_error}");
    assert!(
        metric(&s, "signpost_upstream_fetches_total{result=\"error\"}").await > 0,
        "no error counted"
    );
    assert_eq!(
        metric(&s, "signpost_upstream_fetches_total{result=\"ok\"}").await,
        1
    );
    let age = format!("signpost_upstream_age_seconds{{issuer=\"{issuer}\"}}");
    metric(&s, &age).await;
}

/// Rewrites the served config file and installs it as generation `generation`.
fn reload(s: &TestServer, config: &str, generation: u64) {
    std::fs::write(&s.config_path, config).unwrap();
    let registry = signpost::testing::app::load_file(&s.config_path, generation)
        .unwrap_or_else(|p| panic!("invalid config:\n{p}"));
    s.state.install(registry);
}

#[tokio::test]
async fn a_reload_fetches_only_upstreams_it_adds_and_forgets_removed_ones() {
    let eng = Idp::start().await;
    let eng_issuer = eng.url("/realms/eng");
    eng.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata(&eng_issuer)),
    );
    let tools = Idp::start().await;
    let tools_issuer = tools.url("/tenant/v2.0");
    tools.serve(
        &format!("/tenant/v2.0{OIDC}"),
        Answer::json(&entra_metadata(&tools_issuer)),
    );
    let s = TestServer::start_with_upstreams(&facade_config(&eng_issuer, "[]"), Limits::default())
        .await;
    wait_until(DEADLINE, "the facade's metadata", || async {
        get(s.public, ENG_AS).await.status == 200
    })
    .await;
    let fetched = eng.hits().len();

    // Same upstream, another scope, plus a delegate server discovering a second IdP.
    let two = format!(
        r#"{{
  "public_url": "https://gw.example.com",
  "servers": {{
    "eng": {{ "mode": "facade", "issuer": "{eng_issuer}", "discover": true, "scopes": ["openid"] }},
    "tools": {{ "mode": "delegate", "issuer": "{tools_issuer}", "discover": true }}
  }}
}}"#
    );
    reload(&s, &two, 2);
    // Rendered with the document already known: no 503 window after a reload.
    let r = get(s.public, ENG_AS).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["scopes_supported"], json!(["openid"]));

    wait_until(DEADLINE, "the new upstream's fetch", || async {
        status(&s).await["upstreams"]["tools"]["source"].is_string()
    })
    .await;
    assert_eq!(
        eng.hits().len(),
        fetched,
        "the kept upstream was fetched again"
    );
    assert_eq!(tools.hits().len(), 3, "{:?}", tools.hits());
    let st = status(&s).await;
    let found: Vec<&str> = st["upstreams"]["tools"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        found,
        [
            "private_host",
            "no_pkce_methods",
            "no_registration",
            "no_scopes"
        ]
    );
    assert_eq!(st["upstreams"]["tools"]["serving"], "ok");

    // Dropping the server drops its upstream.
    reload(&s, &facade_config(&eng_issuer, "[\"openid\"]"), 3);
    wait_until(DEADLINE, "the removed upstream to be forgotten", || async {
        s.state.upstreams.status(&tools_issuer).is_none()
    })
    .await;
    assert!(status(&s).await["upstreams"].get("tools").is_none());
    assert_eq!(eng.hits().len(), fetched);
    assert_eq!(get(s.public, ENG_AS).await.status, 200);
}

// === signpost check --online ===

/// Runs `signpost check --config <path> --online`; returns (exit code, stdout, stderr).
async fn check_online(path: &Path) -> (i32, String, String) {
    let path = path.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_signpost"))
            .args(["check", "--online", "--config"])
            .arg(&path)
            .env("NO_COLOR", "1")
            .output()
            .expect("run signpost check")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!(
        "--- check --online: exit {:?}\n{stdout}--- stderr\n{stderr}",
        out.status.code()
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn write_config(dir: &tempfile::TempDir, servers: &str) -> std::path::PathBuf {
    let path = dir.path().join("signpost.json");
    std::fs::write(
        &path,
        format!(r#"{{ "public_url": "https://gw.example.com", "servers": {{ {servers} }} }}"#),
    )
    .unwrap();
    path
}

/// The lines of `check --online`'s report for one server (up to the next blank line).
fn section<'a>(stdout: &'a str, server: &str) -> &'a str {
    let report = &stdout[stdout.find("upstreams (online):").expect("online report")..];
    let start = report
        .find(&format!("\n{server} ("))
        .unwrap_or_else(|| panic!("no {server} in {report}"));
    let rest = &report[start + 1..];
    &rest[..rest.find("\n\n").unwrap_or(rest.len())]
}

#[tokio::test]
async fn check_online_exits_0_when_every_finding_is_a_warning() {
    let kc = Idp::start().await;
    let kc_issuer = kc.url("/realms/eng");
    kc.serve(
        &format!("/realms/eng{OIDC}"),
        Answer::json(&metadata(&kc_issuer)),
    );
    let auth0 = Idp::start().await;
    let auth0_issuer = auth0.url("/");
    auth0.serve(OIDC, Answer::json(&metadata(&auth0_issuer)));
    let entra = Idp::start().await;
    let entra_issuer = entra.url("/tenant/v2.0");
    entra.serve(
        &format!("/tenant/v2.0{OIDC}"),
        Answer::json(&entra_metadata(&entra_issuer)),
    );
    let cimd = Idp::start().await;
    let cimd_issuer = cimd.url("/realms/cimd");
    cimd.serve(
        &format!("{AS}/realms/cimd"),
        Answer::json(&metadata_with(
            &cimd_issuer,
            json!({"registration_endpoint": null, "client_id_metadata_document_supported": true}),
        )),
    );
    let plain = Idp::start().await;
    let plain_issuer = plain.url("/realms/plain");
    plain.serve(
        &format!("{AS}/realms/plain"),
        Answer::json(&metadata_with(
            &plain_issuer,
            json!({"code_challenge_methods_supported": ["plain"]}),
        )),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!(
            r#""keycloak": {{ "mode": "delegate", "issuer": "{kc_issuer}" }},
               "auth0": {{ "mode": "delegate", "issuer": "{auth0_issuer}" }},
               "entra-facade": {{ "mode": "facade", "issuer": "{entra_issuer}", "discover": true }},
               "cimd": {{ "mode": "delegate", "issuer": "{cimd_issuer}" }},
               "plain": {{ "mode": "delegate", "issuer": "{plain_issuer}" }}"#
        ),
    );

    let (code, stdout, _) = check_online(&path).await;

    assert_eq!(code, 0);
    let kc_report = section(&stdout, "keycloak");
    assert!(
        kc_report.contains(&format!(
            "using   {}",
            kc.url(&format!("/realms/eng{OIDC}"))
        )),
        "{kc_report}"
    );
    assert_eq!(kc_report.matches("→ 404").count(), 2, "{kc_report}");
    for (server, expected) in [
        ("keycloak", &["private_host", "no_scopes"][..]),
        ("auth0", &["private_host", "no_scopes"]),
        (
            "entra-facade",
            &["private_host", "no_registration", "no_scopes"],
        ),
        ("cimd", &["private_host", "no_scopes"]),
        ("plain", &["private_host", "no_s256", "no_scopes"]),
    ] {
        let report = section(&stdout, server);
        for code in expected {
            assert!(
                report.contains(&format!("warning {code}: ")),
                "{code} not in {report}"
            );
        }
        assert_eq!(
            report.matches("warning ").count(),
            expected.len(),
            "{report}"
        );
        assert!(!report.contains("error "), "{report}");
    }
    assert!(!section(&stdout, "entra-facade").contains("no_pkce_methods"));
}

#[tokio::test]
async fn check_online_exits_1_on_any_error_finding() {
    let auth0 = Idp::start().await;
    let auth0_slash = auth0.url("/");
    auth0.serve(OIDC, Answer::json(&metadata(&auth0_slash)));
    let kc = Idp::start().await;
    let eng = kc.url("/realms/eng");
    kc.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata(&kc.url("/realms/eng2"))),
    );
    kc.serve(
        &format!("{AS}/realms/eng2"),
        Answer::json(&metadata(&kc.url("/realms/eng2"))),
    );
    let entra = Idp::start().await;
    let entra_issuer = entra.url("/tenant/v2.0");
    entra.serve(
        &format!("/tenant/v2.0{OIDC}"),
        Answer::json(&entra_metadata(&entra_issuer)),
    );
    let iss = Idp::start().await;
    let iss_issuer = iss.url("/realms/iss");
    iss.serve(
        &format!("{AS}/realms/iss"),
        Answer::json(&metadata_with(
            &iss_issuer,
            json!({"authorization_response_iss_parameter_supported": true}),
        )),
    );
    let redirect = Idp::start().await;
    let elsewhere = Idp::start().await;
    let redirect_issuer = redirect.url("/realms/moved");
    redirect.serve(
        &format!("{AS}/realms/moved"),
        Answer::redirect(&elsewhere.url(&format!("{AS}/realms/moved"))),
    );
    let huge = Idp::start().await;
    let huge_issuer = huge.url("/realms/huge");
    huge.serve(
        &format!("{AS}/realms/huge"),
        Answer {
            status: 200,
            headers: Vec::new(),
            body: Bytes::from(vec![b' '; 10 << 20]),
        },
    );
    let hang = Hanging::start().await;
    let hang_issuer = format!("http://{}/realms/hang", hang.addr);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        &format!(
            r#""auth0-no-slash": {{ "mode": "delegate", "issuer": "{}" }},
               "eng": {{ "mode": "delegate", "issuer": "{eng}" }},
               "iss-facade": {{ "mode": "facade", "issuer": "{iss_issuer}", "discover": true }},
               "iss-delegate": {{ "mode": "delegate", "issuer": "{iss_issuer}" }},
               "moved": {{ "mode": "delegate", "issuer": "{redirect_issuer}" }},
               "huge": {{ "mode": "delegate", "issuer": "{huge_issuer}" }},
               "hang": {{ "mode": "delegate", "issuer": "{hang_issuer}" }},
               "entra": {{ "mode": "delegate", "issuer": "{entra_issuer}" }}"#,
            auth0_slash.trim_end_matches('/')
        ),
    );

    let start = tokio::time::Instant::now();
    let (code, stdout, stderr) = check_online(&path).await;

    assert_eq!(code, 1);
    // Fetched concurrently, the hanging IdP bounded by one default total timeout.
    let bound = Limits::default().total_timeout + Duration::from_secs(5);
    assert!(start.elapsed() < bound, "{:?}", start.elapsed());
    for (server, expected) in [
        ("auth0-no-slash", "error   issuer_mismatch: "),
        ("eng", "error   issuer_mismatch: "),
        ("iss-facade", "error   iss_parameter_with_facade: "),
        ("moved", "error   unreachable: "),
        ("huge", "error   invalid_metadata: "),
        ("hang", "error   unreachable: "),
        ("entra", "error   no_registration: "),
    ] {
        let report = section(&stdout, server);
        assert!(report.contains(expected), "{expected} not in {report}");
    }
    assert!(section(&stdout, "auth0-no-slash").contains("with the trailing slash"));
    assert!(section(&stdout, "eng").contains("Did you mean"));
    assert!(section(&stdout, "moved").contains("another origin"));
    assert!(section(&stdout, "hang").contains("no complete answer within"));
    let delegate = section(&stdout, "iss-delegate");
    assert!(!delegate.contains("error "), "{delegate}");
    assert!(delegate.contains("warning private_host: "), "{delegate}");
    assert!(stderr.contains("7 error findings"), "{stderr}");
    assert!(
        section(&stdout, "entra").contains("client ID metadata documents"),
        "the fix leads with client ID metadata documents"
    );
    assert_eq!(elsewhere.hits(), Vec::<String>::new());
}

#[tokio::test]
async fn a_facade_with_its_own_registration_endpoint_is_not_warned_about_the_upstreams() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let upstream = metadata_with(&issuer, json!({"registration_endpoint": null}));
    idp.serve(&format!("{AS}/realms/eng"), Answer::json(&upstream));
    let config = format!(
        r#"{{ "public_url": "https://gw.example.com", "servers": {{
          "eng": {{ "mode": "facade", "issuer": "{issuer}", "discover": true,
                   "registration_endpoint": "https://register.example.com/dcr" }},
          "bare": {{ "mode": "facade", "issuer": "{issuer}", "discover": true, "resource_paths": ["/bare/{{server}}"] }} }} }}"#
    );
    let s = TestServer::start_with_upstreams(&config, Limits::default()).await;
    wait_until(DEADLINE, "the facade's metadata", || async {
        get(s.public, ENG_AS).await.status == 200
    })
    .await;
    assert_eq!(
        get(s.public, ENG_AS).await.json()["registration_endpoint"],
        "https://register.example.com/dcr"
    );
    let st = status(&s).await;
    let codes = |server: &str| -> Vec<String> {
        st["upstreams"][server]["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        !codes("eng").contains(&"no_registration".to_owned()),
        "{st}"
    );
    assert!(
        codes("bare").contains(&"no_registration".to_owned()),
        "{st}"
    );
}

#[tokio::test]
async fn status_says_why_a_facade_still_answers_503_and_a_failure_is_a_finding() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    // An upstream document without a token endpoint: the facade cannot be completed.
    let upstream = metadata_with(&issuer, json!({"token_endpoint": null}));
    idp.serve(&format!("{AS}/realms/eng"), Answer::json(&upstream));
    let gone = idp.url("/realms/gone");
    let config = format!(
        r#"{{ "public_url": "https://gw.example.com", "servers": {{
          "eng": {{ "mode": "facade", "issuer": "{issuer}", "discover": true }},
          "gone": {{ "mode": "delegate", "issuer": "{gone}", "discover": true }} }} }}"#
    );
    let s = TestServer::start_with_upstreams(&config, Limits::default()).await;
    wait_until(DEADLINE, "both fetches", || async {
        let st = status(&s).await;
        !st["upstreams"]["eng"]["last_attempt_at"].is_null()
            && !st["upstreams"]["gone"]["last_attempt_at"].is_null()
    })
    .await;
    assert_eq!(get(s.public, ENG_AS).await.status, 503);
    let st = status(&s).await;
    let serving = st["upstreams"]["eng"]["serving"].as_str().unwrap();
    assert!(
        serving.starts_with("503") && serving.contains("token_endpoint"),
        "{st}"
    );
    let gone = &st["upstreams"]["gone"]["findings"];
    assert_eq!(gone[0]["code"], "unreachable", "{st}");
    assert_eq!(gone[0]["severity"], "error", "{st}");
}

// === Findings that predict the login (issue 13) ===

fn scopes(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// The codes of every finding of `d` for `used_as` with `scopes`.
fn judged(d: &Discovery, used_as: Use, scopes: &[String]) -> Vec<&'static str> {
    let (_, doc) = d.document.as_ref().expect("accepted");
    codes(&judge_usage(doc, &d.notes, &usage(used_as, scopes)))
}

#[tokio::test]
async fn cors_on_the_idps_metadata_registration_and_token_endpoints_is_checked() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let path = format!("{AS}/realms/eng");
    idp.serve(&path, Answer::json(&metadata(&issuer)));
    let tools = scopes(&["openid"]);

    let d = discover_with_cors(&fetcher(), &issuer).await;
    assert_eq!(d.notes.cors.len(), 3, "{:?}", d.notes.cors);
    for used_as in [Use::Delegate, Use::Facade] {
        let found = judged(&d, used_as, &tools);
        assert!(!found.iter().any(|c| c.starts_with("cors_")), "{found:?}");
    }
    let preflights = idp.preflights.lock().unwrap().clone();
    assert_eq!(preflights.len(), 3, "{preflights:?}");

    // The same IdP without CORS: no preflight passes, no answer carries Allow-Origin.
    idp.no_cors();
    let mut bare = Answer::json(&metadata(&issuer));
    bare.headers
        .retain(|(k, _)| !k.starts_with("access-control"));
    idp.serve(&path, bare);
    let before = idp.hits().len();
    let d = discover_with_cors(&fetcher(), &issuer).await;
    let delegate = judged(&d, Use::Delegate, &tools);
    assert!(
        delegate.ends_with(&["cors_metadata", "cors_registration", "cors_token"]),
        "{delegate:?}"
    );
    // A facade serves its own metadata with CORS: only the endpoints the browser calls itself.
    let facade = judged(&d, Use::Facade, &tools);
    assert!(!facade.contains(&"cors_metadata"), "{facade:?}");
    assert!(
        facade.ends_with(&["cors_registration", "cors_token"]),
        "{facade:?}"
    );
    let (_, doc) = d.document.as_ref().unwrap();
    let all = judge_usage(doc, &d.notes, &usage(Use::Delegate, &tools));
    let message = |code: &str| {
        all.iter()
            .find(|f| f.code == code)
            .map(|f| f.message.clone())
            .unwrap()
    };
    assert!(message("cors_metadata").contains("facade\" fixes it"));
    assert!(message("cors_registration").contains("only the IdP can fix it"));
    assert!(message("cors_token").contains("only the IdP can fix it"));
    assert!(
        all.iter()
            .all(|f| !f.code.starts_with("cors_") || f.severity == Severity::Warning)
    );
    // Side-effect free: besides the metadata search, only GETs with an Origin were sent (the
    // token endpoint's, after its preflight failed, and the metadata's); nothing was POSTed.
    let after: Vec<String> = idp.hits()[before..].to_vec();
    assert!(
        after.contains(&"/realms/eng/protocol/openid-connect/token".to_owned()),
        "{after:?}"
    );
    assert!(
        !after.contains(&"/realms/eng/clients-registrations/openid-connect".to_owned()),
        "{after:?}"
    );
}

#[tokio::test]
async fn scopes_missing_unknown_to_the_idp_or_holding_offline_access_are_findings() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata_with(
            &issuer,
            json!({"scopes_supported": ["openid", "mcp:tools", "offline_access"]}),
        )),
    );
    let d = discover(&fetcher(), &issuer).await;
    let has = |s: &[&str], code: &str| {
        [Use::Delegate, Use::Facade]
            .iter()
            .all(|u| judged(&d, *u, &scopes(s)).contains(&code))
    };
    assert!(has(&[], "no_scopes"));
    assert!(!has(&["mcp:tools"], "no_scopes"));
    assert!(has(&["mcp:admin"], "scope_not_supported"));
    assert!(!has(&["mcp:tools"], "scope_not_supported"));
    assert!(has(
        &["mcp:tools", "offline_access"],
        "offline_access_scope"
    ));
    assert!(!has(&["mcp:tools"], "offline_access_scope"));
    let (_, doc) = d.document.as_ref().unwrap();
    let none = judge_usage(doc, &d.notes, &usage(Use::Delegate, &[]));
    let f = none.iter().find(|f| f.code == "no_scopes").unwrap();
    assert!(
        f.message.contains("TypeScript") && f.message.contains("Python"),
        "{}",
        f.message
    );
}

#[tokio::test]
async fn a_facade_over_an_idp_known_to_send_iss_is_warned_and_one_advertising_it_is_an_error() {
    let idp = Idp::start().await;
    let any = scopes(&["openid"]);
    // Keycloak's shape (`/realms/…`, `/protocol/openid-connect/…`).
    let kc = idp.url("/realms/eng");
    idp.serve(&format!("{AS}/realms/eng"), Answer::json(&metadata(&kc)));
    let d = discover(&fetcher(), &kc).await;
    assert!(judged(&d, Use::Facade, &any).contains(&"iss_parameter_likely"));
    assert!(!judged(&d, Use::Delegate, &any).contains(&"iss_parameter_likely"));
    // oidc-provider's routes.
    let op = idp.url("/oidc");
    let base = op.clone();
    idp.serve(
        &format!("{AS}/oidc"),
        Answer::json(&json!({
            "issuer": op, "authorization_endpoint": format!("{base}/auth"),
            "token_endpoint": format!("{base}/token"), "registration_endpoint": format!("{base}/reg"),
            "userinfo_endpoint": format!("{base}/me"), "end_session_endpoint": format!("{base}/session/end"),
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"]
        })),
    );
    let d = discover(&fetcher(), &op).await;
    let (_, doc) = d.document.as_ref().unwrap();
    let f = judge_usage(doc, &d.notes, &usage(Use::Facade, &any));
    let likely = f.iter().find(|f| f.code == "iss_parameter_likely").unwrap();
    assert_eq!(likely.severity, Severity::Warning);
    assert!(
        likely.message.contains("oidc-provider"),
        "{}",
        likely.message
    );
    // A generic IdP: nothing to say.
    let plain = idp.url("/as");
    idp.serve(
        &format!("{AS}/as"),
        Answer::json(&json!({
            "issuer": plain, "authorization_endpoint": format!("{plain}/authorize"),
            "token_endpoint": format!("{plain}/token"), "registration_endpoint": format!("{plain}/register"),
            "response_types_supported": ["code"], "code_challenge_methods_supported": ["S256"]
        })),
    );
    let d = discover(&fetcher(), &plain).await;
    assert!(!judged(&d, Use::Facade, &any).contains(&"iss_parameter_likely"));
    // Advertised: the error, not also the warning.
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata_with(
            &kc,
            json!({"authorization_response_iss_parameter_supported": true}),
        )),
    );
    let d = discover(&fetcher(), &kc).await;
    let found = judged(&d, Use::Facade, &any);
    assert!(found.contains(&"iss_parameter_with_facade"), "{found:?}");
    assert!(!found.contains(&"iss_parameter_likely"), "{found:?}");
}

#[tokio::test]
async fn an_entra_idp_is_told_the_resource_rule() {
    let idp = Idp::start().await;
    let issuer = idp.url("/tenant/v2.0");
    let path = format!("/tenant/v2.0{OIDC}");
    idp.serve(&path, Answer::json(&entra_metadata(&issuer)));
    let any = scopes(&["openid"]);
    let d = discover(&fetcher(), &issuer).await;
    assert!(!judged(&d, Use::Delegate, &any).contains(&"entra_resource"));
    // The fields only Entra's metadata carries (its host cannot be on loopback).
    let mut doc = entra_metadata(&issuer);
    doc["cloud_instance_name"] = json!("microsoftonline.com");
    doc["tenant_region_scope"] = json!("EU");
    idp.serve(&path, Answer::json(&doc));
    let d = discover(&fetcher(), &issuer).await;
    for used_as in [Use::Delegate, Use::Facade] {
        assert!(
            judged(&d, used_as, &any).contains(&"entra_resource"),
            "{used_as:?}"
        );
    }
    let (_, doc) = d.document.as_ref().unwrap();
    let f = judge_usage(doc, &d.notes, &usage(Use::Delegate, &any));
    let entra = f.iter().find(|f| f.code == "entra_resource").unwrap();
    assert!(entra.message.contains("AADSTS9010010"), "{}", entra.message);
    assert!(
        entra.message.contains("Application ID URI"),
        "{}",
        entra.message
    );
}

#[tokio::test]
async fn a_facade_carries_the_upstreams_scopes_and_tolerates_its_different_issuer() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let upstream = metadata_with(
        &issuer,
        json!({"issuer": idp.url(""), "scopes_supported": ["openid", "mcp:tools"]}),
    );
    idp.serve(&format!("{AS}/realms/eng"), Answer::json(&upstream));
    let config = format!(
        r#"{{ "public_url": "https://gw.example.com", "servers": {{
          "eng": {{ "mode": "facade", "issuer": "{issuer}", "discover": true }},
          "set": {{ "mode": "facade", "issuer": "{issuer}", "discover": true, "scopes": ["mcp:tools"],
                    "resource_paths": ["/set/{{server}}"] }} }} }}"#
    );
    let s = TestServer::start_with_upstreams(&config, Limits::default()).await;
    wait_until(DEADLINE, "the facade's metadata", || async {
        get(s.public, ENG_AS).await.status == 200
    })
    .await;
    let doc = get(s.public, ENG_AS).await.json();
    assert_eq!(doc["issuer"], "https://gw.example.com/eng");
    assert_eq!(doc["scopes_supported"], json!(["openid", "mcp:tools"]));
    // Never into the PRM: that lists what the resource needs, and the server set nothing.
    let prm = get(
        s.public,
        "/.well-known/oauth-protected-resource/mcp/eng/mcp",
    )
    .await
    .json();
    assert!(prm.get("scopes_supported").is_none(), "{prm}");
    // The server's own scopes win.
    let set = get(s.public, "/.well-known/oauth-authorization-server/set")
        .await
        .json();
    assert_eq!(set["scopes_supported"], json!(["mcp:tools"]));

    let st = status(&s).await;
    let eng = &st["upstreams"]["eng"];
    assert_eq!(eng["serving"], "ok", "{eng}");
    let mismatch = eng["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "issuer_mismatch")
        .unwrap_or_else(|| panic!("{eng}"));
    assert_eq!(mismatch["severity"], "warning");
    let metrics = get(s.admin, "/metrics").await.text();
    assert!(
        metrics.contains(
            r#"signpost_upstream_findings{server="eng",code="issuer_mismatch",severity="warning"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"signpost_upstream_findings{server="eng",code="no_scopes",severity="warning"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        !metrics.contains(r#"server="set",code="no_scopes""#),
        "{metrics}"
    );
}

#[tokio::test]
async fn relayed_values_the_config_check_would_refuse_are_dropped_and_reported() {
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    let hostile = metadata_with(
        &issuer,
        json!({
            "token_endpoint": "http://metadata.example.com/token",
            "registration_endpoint": "javascript:alert(1)",
            "revocation_endpoint": 42,
            "token_endpoint_auth_methods_supported": [null, "", {}],
            "client_id_metadata_document_supported": "yes",
            "scopes_supported": ["openid", "two words"],
        }),
    );
    idp.serve(&format!("{AS}/realms/eng"), Answer::json(&hostile));
    let gone = idp.url("/realms/gone");
    let config = format!(
        r#"{{ "public_url": "https://gw.example.com", "servers": {{
          "eng": {{ "mode": "facade", "issuer": "{issuer}", "discover": true, "scopes": ["openid"] }},
          "fixed": {{ "mode": "facade", "issuer": "{issuer}", "discover": true, "scopes": ["openid"],
                      "token_endpoint": "https://sso.example.com/token",
                      "resource_paths": ["/fixed/{{server}}"] }},
          "gone": {{ "mode": "facade", "issuer": "{gone}", "discover": true, "scopes": ["openid"],
                     "resource_paths": ["/gone/{{server}}"] }} }} }}"#
    );
    let s = TestServer::start_with_upstreams(&config, Limits::default()).await;
    let fixed_as = "/.well-known/oauth-authorization-server/fixed";
    wait_until(DEADLINE, "the fixed facade's metadata", || async {
        get(s.public, fixed_as).await.status == 200
    })
    .await;
    let doc = get(s.public, fixed_as).await.json();
    assert_eq!(doc["token_endpoint"], "https://sso.example.com/token");
    assert_eq!(
        doc["authorization_endpoint"],
        hostile["authorization_endpoint"]
    );
    for key in [
        "registration_endpoint",
        "revocation_endpoint",
        "token_endpoint_auth_methods_supported",
        "client_id_metadata_document_supported",
    ] {
        assert!(doc.get(key).is_none(), "{key} relayed: {doc}");
    }
    // The one without a usable token endpoint says it was rejected, and why.
    let r = get(s.public, ENG_AS).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let why = r.json()["error_description"].as_str().unwrap().to_owned();
    assert!(why.starts_with("rejected: invalid_upstream_value"), "{why}");
    assert!(
        why.contains("token_endpoint") && why.contains("plain http"),
        "{why}"
    );
    wait_until(DEADLINE, "the gone upstream's failure", || async {
        get(s.public, "/.well-known/oauth-authorization-server/gone")
            .await
            .json()["error_description"]
            .as_str()
            .is_some_and(|d| d.starts_with("rejected: unreachable"))
    })
    .await;
    let st = status(&s).await;
    assert!(
        st["upstreams"]["eng"]["serving"]
            .as_str()
            .unwrap()
            .starts_with("503: rejected: invalid_upstream_value"),
        "{st}"
    );
    assert!(
        st["upstreams"]["gone"]["serving"]
            .as_str()
            .unwrap()
            .starts_with("503: rejected: unreachable"),
        "{st}"
    );
    let dropped: Vec<String> = st["upstreams"]["fixed"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "invalid_upstream_value")
        .map(|f| f["message"].as_str().unwrap().to_owned())
        .collect();
    for key in [
        "token_endpoint",
        "registration_endpoint",
        "revocation_endpoint",
        "token_endpoint_auth_methods_supported",
        "client_id_metadata_document_supported",
        "scopes_supported",
    ] {
        assert!(
            dropped
                .iter()
                .any(|m| m.contains(&format!("upstream's {key} "))),
            "{key} not reported: {dropped:?}"
        );
    }
}

#[tokio::test]
async fn client_id_metadata_documents_are_advertised_for_facades_and_gateways_with_none_kept() {
    let config = r#"{ "public_url": "https://gw.example.com",
      "gateway": { "token_endpoint_auth_methods_supported": ["client_secret_post"] },
      "servers": {
        "eng": { "mode": "facade", "issuer": "https://sso.example.com/realms/eng",
                 "authorization_endpoint": "https://sso.example.com/auth",
                 "token_endpoint": "https://sso.example.com/token",
                 "client_id_metadata_document_supported": true, "scopes": ["openid"] },
        "gw": { "mode": "gateway", "client_id_metadata_document_supported": true },
        "off": { "mode": "gateway", "client_id_metadata_document_supported": false }
      } }"#;
    let s = TestServer::start(config).await;
    let eng = get(s.public, ENG_AS).await.json();
    assert_eq!(eng["client_id_metadata_document_supported"], true, "{eng}");
    assert_eq!(
        eng["token_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    let gw = get(s.public, "/.well-known/oauth-authorization-server/gw")
        .await
        .json();
    assert_eq!(gw["client_id_metadata_document_supported"], true, "{gw}");
    assert_eq!(
        gw["token_endpoint_auth_methods_supported"],
        json!(["client_secret_post", "none"])
    );
    let off = get(s.public, "/.well-known/oauth-authorization-server/off")
        .await
        .json();
    assert!(
        off.get("client_id_metadata_document_supported").is_none(),
        "{off}"
    );
    assert_eq!(
        off["token_endpoint_auth_methods_supported"],
        json!(["client_secret_post"])
    );

    // Misplaced on a delegate server: the check says which modes take it.
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        &dir,
        r#""d": { "mode": "delegate", "issuer": "https://sso.example.com", "client_id_metadata_document_supported": true }"#,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("only facade and gateway servers"),
        "{stderr}"
    );

    // A facade advertising them needs no registration endpoint upstream.
    let idp = Idp::start().await;
    let issuer = idp.url("/realms/eng");
    idp.serve(
        &format!("{AS}/realms/eng"),
        Answer::json(&metadata_with(
            &issuer,
            json!({"registration_endpoint": null}),
        )),
    );
    let d = discover(&fetcher(), &issuer).await;
    let (_, doc) = d.document.as_ref().unwrap();
    let any = scopes(&["openid"]);
    let with = Usage {
        cimd_configured: true,
        ..usage(Use::Facade, &any)
    };
    assert!(!codes(&judge_usage(doc, &d.notes, &with)).contains(&"no_registration"));
    assert!(
        codes(&judge_usage(doc, &d.notes, &usage(Use::Facade, &any))).contains(&"no_registration")
    );
}

// === Hostile relayed documents, generated ===

mod relayed {
    //! Whatever an upstream document holds, a facade serves only what the config check would
    //! accept: generated documents mixing valid, hostile and ill-typed values for every relayed
    //! key, rendered through the real registry and checked with the fuzz targets' invariants.

    use super::*;
    use proptest::prelude::*;
    use signpost::testing::registry::{Registry, Source};
    use signpost::testing::upstream::{Documents, Relay};

    const ISSUER: &str = "https://sso.example.com/realms/eng";

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(json!("https://sso.example.com/realms/eng/auth")),
            Just(json!("http://127.0.0.1:8080/token")),
            Just(json!("http://metadata.internal/token")),
            Just(json!("javascript:alert(1)")),
            Just(json!("https://user:pw@sso.example.com/x")),
            Just(json!("https://sso.example.com/x#frag")),
            Just(json!("https://sso.example.com/a b")),
            Just(json!("")),
            Just(json!("none")),
            Just(json!("two words")),
            Just(json!(null)),
            Just(json!(true)),
            Just(json!("yes")),
            Just(json!(42)),
            Just(json!({})),
            "[ -~]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(Value::Array)
        })
    }

    fn document() -> impl Strategy<Value = Map<String, Value>> {
        const KEYS: [&str; 9] = [
            "authorization_endpoint",
            "token_endpoint",
            "registration_endpoint",
            "revocation_endpoint",
            "token_endpoint_auth_methods_supported",
            "scopes_supported",
            "client_id_metadata_document_supported",
            "code_challenge_methods_supported",
            "authorization_response_iss_parameter_supported",
        ];
        prop::collection::vec((prop::sample::select(&KEYS[..]), value()), 0..12).prop_map(|kv| {
            let mut m = Map::new();
            m.insert("issuer".into(), json!(ISSUER));
            for (k, v) in kv {
                m.insert(k.to_owned(), v);
            }
            m
        })
    }

    fn is_relayable_url(v: &Value) -> bool {
        let Some(s) = v.as_str() else { return false };
        let Ok(u) = url::Url::parse(s) else {
            return false;
        };
        (u.scheme() == "https"
            || (u.scheme() == "http" && signpost::testing::fetch::is_loopback(&u)))
            && u.username().is_empty()
            && u.password().is_none()
            && u.fragment().is_none()
            && !s.contains(' ')
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn a_facade_relays_only_values_the_config_check_accepts(doc in document()) {
            let mut clean = doc.clone();
            let dropped = signpost::testing::upstream::discover::sanitize(&mut clean);
            // Idempotent: what is left passes again untouched.
            let mut again = clean.clone();
            prop_assert!(signpost::testing::upstream::discover::sanitize(&mut again).is_empty());
            prop_assert_eq!(&again, &clean);
            let config = signpost::testing::config::parse(
                &format!(r#"{{ "public_url": "https://gw.example.com", "servers": {{
                    "eng": {{ "mode": "facade", "issuer": "{ISSUER}", "discover": true }} }} }}"#),
                "f.json",
            )
            .unwrap();
            let source = Source {
                path: "f.json".into(),
                generation: 1,
                content_sha256: String::new(),
                loaded_at: std::time::UNIX_EPOCH,
            };
            let mut docs = Documents::new();
            docs.insert(ISSUER.to_owned(), Relay { document: Some(Arc::new(clean)), failure: None, dropped });
            let registry = Registry::build(config.clone(), source).with_upstreams(&docs)
        .expect("a config whose facade discovers renders again");
            check::check_registry(&registry, &config);
            let site = &registry.sites[0];
            let served = site.find(ENG_AS).expect("the facade's document");
            let body: Value = serde_json::from_slice(&served.body()).unwrap();
            if served.status == 200 {
                for key in ["authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint"] {
                    if let Some(v) = body.get(key) {
                        prop_assert!(is_relayable_url(v), "{} = {} served", key, v);
                    }
                }
                for key in ["token_endpoint_auth_methods_supported", "scopes_supported"] {
                    if let Some(v) = body.get(key) {
                        let list = v.as_array().expect("a list");
                        prop_assert!(!list.is_empty());
                        prop_assert!(list.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty())), "{} = {}", key, v);
                    }
                }
                if let Some(v) = body.get("client_id_metadata_document_supported") {
                    prop_assert!(v.is_boolean(), "{}", v);
                }
            } else {
                prop_assert_eq!(served.status, 503);
                let why = body["error_description"].as_str().unwrap_or("");
                prop_assert!(why.starts_with("rejected: "), "{}", why);
            }
        }
    }
}
