//! The outbound HTTP client, used to discover upstream IdP metadata and by `signpost probe`.
//! Every request is bounded: a connect timeout, a total timeout (connect, redirects and body
//! together), a body size cap, at most [`MAX_REDIRECTS`] same-origin redirects and never a
//! cross-origin one. TLS is rustls with the Mozilla roots; plain http is allowed only to loopback
//! hosts. No credentials or cookies are ever sent.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use url::Url;

/// Same-origin redirects followed before giving up.
pub const MAX_REDIRECTS: usize = 3;
const USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("signpost/", env!("CARGO_PKG_VERSION")));

/// Bounds for every request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub connect_timeout: Duration,
    /// Connect, redirects and the whole body, together.
    pub total_timeout: Duration,
    /// The largest body read, in bytes; a larger one is an error.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(3),
            total_timeout: Duration::from_secs(10),
            max_body: 256 * 1024,
        }
    }
}

/// A response read whole.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The URL that answered (after same-origin redirects).
    pub url: Url,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Redirects followed, in order (`from → to`).
    pub redirects: Vec<(Url, Url)>,
}

/// Why a request produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// `http://` to a host that is not loopback, or a scheme that is not http(s).
    Insecure(String),
    /// DNS, TCP or TLS failure.
    Connect(String),
    Timeout(Duration),
    TooLarge(usize),
    CrossOriginRedirect {
        from: String,
        to: String,
    },
    TooManyRedirects,
    /// A redirect without a usable `Location`.
    BadRedirect(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Insecure(url) => write!(
                f,
                "refusing {url}: only https (or http to a loopback host) is fetched"
            ),
            FetchError::Connect(e) => write!(f, "cannot connect: {e}"),
            FetchError::Timeout(t) => write!(f, "no complete answer within {t:?}"),
            FetchError::TooLarge(max) => write!(f, "body larger than {max} bytes"),
            FetchError::CrossOriginRedirect { from, to } => {
                write!(
                    f,
                    "{from} redirects to another origin ({to}); not followed (clients do not follow it either)"
                )
            }
            FetchError::TooManyRedirects => write!(f, "more than {MAX_REDIRECTS} redirects"),
            FetchError::BadRedirect(url) => write!(f, "{url} redirects without a valid Location"),
        }
    }
}

impl std::error::Error for FetchError {}

/// A bounded HTTP(S) client. Cheap to clone.
#[derive(Clone)]
pub struct Fetcher {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    limits: Limits,
    /// Plain http to any host, not only loopback (`signpost probe` of an http deployment).
    any_http: bool,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher")
            .field("limits", &self.limits)
            .field("any_http", &self.any_http)
            .finish()
    }
}

impl Fetcher {
    pub fn new(limits: Limits) -> Fetcher {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(limits.connect_timeout));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("the ring provider supports the default TLS versions")
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Fetcher {
            client,
            limits,
            any_http: false,
        }
    }

    /// Allows plain `http://` to every host, not only loopback ones. For `signpost probe`, which
    /// must be able to diagnose an http deployment; never for upstream discovery.
    pub fn allow_http_to_any_host(mut self) -> Fetcher {
        self.any_http = true;
        self
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// `GET url` with `Accept: application/json`.
    pub async fn get_json(&self, url: &Url, extra: &[(&str, &str)]) -> Result<Fetched, FetchError> {
        let mut headers = vec![("accept", "application/json")];
        headers.extend_from_slice(extra);
        self.request(Method::GET, url, &headers, Bytes::new()).await
    }

    /// One request, following same-origin redirects, bounded by the limits.
    pub async fn request(
        &self,
        method: Method,
        url: &Url,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Result<Fetched, FetchError> {
        let total = self.limits.total_timeout;
        tokio::time::timeout(total, self.follow(method, url, headers, body))
            .await
            .unwrap_or(Err(FetchError::Timeout(total)))
    }

    async fn follow(
        &self,
        mut method: Method,
        url: &Url,
        headers: &[(&str, &str)],
        mut body: Bytes,
    ) -> Result<Fetched, FetchError> {
        let mut url = url.clone();
        let mut redirects = Vec::new();
        loop {
            check_scheme(&url, self.any_http)?;
            let mut req = Request::builder().method(method.clone()).uri(url.as_str());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            let mut req = req.body(Full::new(body.clone())).map_err(|e| {
                FetchError::Connect(format!("cannot build a request for {url}: {e}"))
            })?;
            req.headers_mut().insert(header::USER_AGENT, USER_AGENT);
            let response = self
                .client
                .request(req)
                .await
                .map_err(|e| FetchError::Connect(error_chain(&e)))?;
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| url.join(l).ok())
                    .ok_or_else(|| FetchError::BadRedirect(url.to_string()))?;
                if next.origin() != url.origin() {
                    return Err(FetchError::CrossOriginRedirect {
                        from: url.to_string(),
                        to: next.to_string(),
                    });
                }
                if redirects.len() == MAX_REDIRECTS {
                    return Err(FetchError::TooManyRedirects);
                }
                if status == StatusCode::SEE_OTHER {
                    method = Method::GET;
                    body = Bytes::new();
                }
                redirects.push((url.clone(), next.clone()));
                url = next;
                continue;
            }
            let (parts, incoming) = response.into_parts();
            let body = read_capped(incoming, self.limits.max_body).await?;
            return Ok(Fetched {
                url,
                status,
                headers: parts.headers,
                body,
                redirects,
            });
        }
    }
}

async fn read_capped(mut body: hyper::body::Incoming, max: usize) -> Result<Bytes, FetchError> {
    let mut out = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| FetchError::Connect(error_chain(&e)))?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out.freeze())
}

fn check_scheme(url: &Url, any_http: bool) -> Result<(), FetchError> {
    match url.scheme() {
        "https" => Ok(()),
        "http" if any_http || is_loopback(url) => Ok(()),
        _ => Err(FetchError::Insecure(url.to_string())),
    }
}

/// Whether `url`'s host is `localhost` or a loopback address (the rule lives in [`crate::addr`]).
pub use crate::addr::is_loopback_url as is_loopback;

/// An error and its sources, `: `-joined (hyper's top-level messages alone say little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = cause.source();
    }
    s
}
