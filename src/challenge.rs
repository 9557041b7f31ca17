//! What `/challenge` answers (README "Admin listener"): the decision table from the
//! gateway's status and `error` to an [`Outcome`], and the complete answer built from the
//! registry's precomputed hint (see `hint.rs`); the step-up and `invalid_token` answers extend
//! that value by appending. The gateway's `WWW-Authenticate` is parsed in `www_authenticate`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hyper::StatusCode;
use hyper::header::HeaderValue;

use crate::config::{ModeKind, is_scope_char};
use crate::hint::header_value;
use crate::registry::Registry;

pub mod www_authenticate;

/// The `error` a gateway reports with its 401/403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No token was presented: no `error` attribute (RFC 6750 §3.1).
    NoToken,
    InvalidToken,
    InsufficientScope,
}

impl AuthError {
    /// Parses an `error` value; `None` for a value signpost does not know.
    pub fn parse(value: &[u8]) -> Option<AuthError> {
        match value {
            b"" => Some(AuthError::NoToken),
            b"invalid_token" => Some(AuthError::InvalidToken),
            b"insufficient_scope" => Some(AuthError::InsufficientScope),
            _ => None,
        }
    }
}

/// The gateway's status as the proxy forwards it in `X-Gateway-Status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayStatus {
    /// No header: the proxy only says what `error` (if any) it saw.
    Absent,
    Unauthorized,
    Forbidden,
    /// Anything else: a 5xx a proxy's error rescue sends, or garbage.
    Other,
}

impl GatewayStatus {
    pub fn parse(value: Option<&[u8]>) -> GatewayStatus {
        match value.map(<[u8]>::trim_ascii) {
            None => GatewayStatus::Absent,
            Some(b"401") => GatewayStatus::Unauthorized,
            Some(b"403") => GatewayStatus::Forbidden,
            Some(_) => GatewayStatus::Other,
        }
    }
}

/// Which answer `/challenge` gives (README "Admin listener").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 401 with the plain hint: the common case, no token presented.
    Hint,
    /// 401 with `error="invalid_token"`.
    InvalidToken,
    /// 403 with `error="insufficient_scope"` and the union of scopes.
    StepUp,
    /// 403 without a challenge: a policy refusal is not a login problem.
    Forbidden,
}

impl Outcome {
    /// The decision table: 403 + `insufficient_scope` → step-up; any other 403 → forbidden; 401 +
    /// `invalid_token` → invalid token; everything else (401, no status, a 5xx, garbage) → the
    /// plain hint. Without a status, the `error` alone decides (the query-only form).
    pub fn decide(status: GatewayStatus, error: AuthError) -> Outcome {
        use {AuthError as E, GatewayStatus as S};
        match (status, error) {
            (S::Forbidden | S::Absent, E::InsufficientScope) => Outcome::StepUp,
            (S::Forbidden, _) => Outcome::Forbidden,
            (S::Unauthorized | S::Absent, E::InvalidToken) => Outcome::InvalidToken,
            _ => Outcome::Hint,
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Outcome::Hint | Outcome::InvalidToken => StatusCode::UNAUTHORIZED,
            Outcome::StepUp | Outcome::Forbidden => StatusCode::FORBIDDEN,
        }
    }

    /// The OAuth-style JSON body (RFC 6750 §3.1 error codes).
    pub fn body(self) -> &'static str {
        match self {
            Outcome::Hint => BODY_UNAUTHORIZED,
            Outcome::InvalidToken => BODY_INVALID_TOKEN,
            Outcome::StepUp => BODY_INSUFFICIENT_SCOPE,
            Outcome::Forbidden => BODY_FORBIDDEN,
        }
    }
}

pub const BODY_UNAUTHORIZED: &str = r#"{"error":"unauthorized","error_description":"authentication required; the WWW-Authenticate header says where to log in"}"#;
pub const BODY_INVALID_TOKEN: &str = r#"{"error":"invalid_token","error_description":"the access token is invalid or expired; log in again"}"#;
pub const BODY_INSUFFICIENT_SCOPE: &str = r#"{"error":"insufficient_scope","error_description":"the access token lacks the scope this request needs; log in again with the scope in the WWW-Authenticate header"}"#;
pub const BODY_FORBIDDEN: &str = r#"{"error":"forbidden","error_description":"the gateway refused this request; logging in again would not change that"}"#;

/// A complete `/challenge` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge<'a> {
    pub status: StatusCode,
    /// The `WWW-Authenticate` value; `None` for a 403 that is not a step-up.
    pub header: Option<HeaderValue>,
    /// OAuth-style JSON error body.
    pub body: &'static str,
    /// The server owning the resource, when one does.
    pub server: Option<&'a str>,
    /// Requested scopes dropped because they are not RFC 6749 scope tokens.
    pub dropped_scopes: Vec<&'a [u8]>,
}

/// Builds the answer for `resource` (a URL or path; `None` when the proxy sent none). The common
/// answer, [`Outcome::Hint`], is a lookup in the table [`Registry::build`] precomputed; the
/// others extend that value by appending (no formatting, one allocation).
pub fn challenge<'a>(
    registry: &'a Registry,
    resource: Option<&str>,
    host: Option<&[u8]>,
    outcome: Outcome,
    requested_scope: Option<&'a [u8]>,
) -> Challenge<'a> {
    let resolved = registry.resolve(resource, host);
    let owner = resolved
        .and_then(|r| r.resource)
        .map(|(_, r)| registry.owner(r.server()));
    let mut answer = Challenge {
        status: outcome.status(),
        header: None,
        body: outcome.body(),
        server: owner.map(|s| s.name),
        dropped_scopes: Vec::new(),
    };
    let hint = match resolved {
        Some(r) => match r.resource {
            Some((_, resource)) => &resource.hint,
            None => &r.site.realm,
        },
        None => &EMPTY_REALM,
    };
    answer.header = match outcome {
        Outcome::Forbidden => None,
        Outcome::Hint => Some(hint.clone()),
        Outcome::InvalidToken => Some(append(hint.as_bytes(), &[b", error=\"invalid_token\""])),
        Outcome::StepUp => {
            // The hint ends with the server's `scope="…"` exactly when it has scopes (and is not a
            // `none` server, whose hint is the realm).
            let server_scopes: &str = match owner {
                Some(s) if s.mode != ModeKind::None => s.scopes,
                _ => "",
            };
            let h = hint.as_bytes();
            let mut out = Vec::with_capacity(h.len() + requested_scope.map_or(0, <[u8]>::len) + 40);
            let mut open = !server_scopes.is_empty();
            out.extend_from_slice(if open { &h[..h.len() - 1] } else { h });
            let mut added: Vec<&[u8]> = Vec::new();
            for s in requested_scope
                .unwrap_or(b"")
                .split(|b| *b == b' ' || *b == b'\t')
                .filter(|s| !s.is_empty())
            {
                if !s.iter().copied().all(is_scope_char) {
                    answer.dropped_scopes.push(s);
                } else if !server_scopes.split(' ').any(|x| x.as_bytes() == s)
                    && !added.contains(&s)
                {
                    out.extend_from_slice(if open { b" " } else { b", scope=\"" });
                    open = true;
                    out.extend_from_slice(s);
                    added.push(s);
                }
            }
            if open {
                out.push(b'"');
            }
            out.extend_from_slice(b", error=\"insufficient_scope\"");
            Some(header_value(out))
        }
    };
    answer
}

/// `Bearer realm=""`: only for a registry without sites, which a valid config never builds.
static EMPTY_REALM: HeaderValue = HeaderValue::from_static("Bearer realm=\"\"");

fn append(head: &[u8], tails: &[&[u8]]) -> HeaderValue {
    let mut out = Vec::with_capacity(head.len() + tails.iter().map(|t| t.len()).sum::<usize>());
    out.extend_from_slice(head);
    tails.iter().for_each(|t| out.extend_from_slice(t));
    header_value(out)
}

/// The most bytes of an unknown `error` value a log line shows.
pub const LOGGED_ERROR_BYTES: usize = 64;
/// At most one unknown-`error` warning per this interval; the next one counts those suppressed.
pub const UNKNOWN_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

static UNKNOWN_ERROR_LOG: LogLimiter = LogLimiter::new(UNKNOWN_ERROR_LOG_INTERVAL);

/// Logs an `error` value signpost does not know (it is ignored), truncated to
/// [`LOGGED_ERROR_BYTES`], escaped, at most once per [`UNKNOWN_ERROR_LOG_INTERVAL`]: the value
/// comes from the gateway or the client and can be 16 KiB of anything.
pub fn log_unknown_error(value: &[u8]) {
    let Some(suppressed) = UNKNOWN_ERROR_LOG.allow(process_millis()) else {
        return;
    };
    let shown = &value[..value.len().min(LOGGED_ERROR_BYTES)];
    let more = if value.len() > shown.len() { "…" } else { "" };
    tracing::warn!(
        error = %format_args!("{}{more}", shown.escape_ascii()),
        bytes = value.len(),
        suppressed,
        "ignoring unknown error value in /challenge (use invalid_token or insufficient_scope); `suppressed` counts the lines skipped since the last one"
    );
}

/// Milliseconds since the first call (monotonic), never 0.
fn process_millis() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX) + 1
}

/// Lets one event through per interval and counts the others.
#[derive(Debug)]
pub struct LogLimiter {
    interval_ms: u64,
    /// The earliest millisecond the next line may be written.
    next: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub const fn new(interval: Duration) -> LogLimiter {
        LogLimiter {
            interval_ms: interval.as_millis() as u64,
            next: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// At `now_ms`: `Some(lines suppressed since the last one)` when a line may be written.
    pub fn allow(&self, now_ms: u64) -> Option<u64> {
        let next = self.next.load(Ordering::Relaxed);
        if now_ms >= next
            && self
                .next
                .compare_exchange(
                    next,
                    now_ms.saturating_add(self.interval_ms),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_limiter_lets_one_line_through_per_interval_and_counts_the_rest() {
        let l = LogLimiter::new(Duration::from_secs(10));
        assert_eq!(l.allow(1), Some(0));
        for t in [2, 5_000, 10_000] {
            assert_eq!(l.allow(t), None, "{t}");
        }
        assert_eq!(l.allow(10_001), Some(3));
        assert_eq!(l.allow(10_002), None);
        assert_eq!(l.allow(30_000), Some(1));
        assert_eq!(l.allow(30_001), None);
    }

    #[test]
    fn the_decision_table() {
        use AuthError as E;
        use GatewayStatus as S;
        let cases = [
            (S::Forbidden, E::InsufficientScope, Outcome::StepUp),
            (S::Absent, E::InsufficientScope, Outcome::StepUp),
            (S::Forbidden, E::NoToken, Outcome::Forbidden),
            (S::Forbidden, E::InvalidToken, Outcome::Forbidden),
            (S::Unauthorized, E::InvalidToken, Outcome::InvalidToken),
            (S::Absent, E::InvalidToken, Outcome::InvalidToken),
            (S::Unauthorized, E::NoToken, Outcome::Hint),
            (S::Unauthorized, E::InsufficientScope, Outcome::Hint),
            (S::Absent, E::NoToken, Outcome::Hint),
            (S::Other, E::InsufficientScope, Outcome::Hint),
            (S::Other, E::InvalidToken, Outcome::Hint),
        ];
        for (s, e, o) in cases {
            assert_eq!(Outcome::decide(s, e), o, "{s:?} {e:?}");
        }
        assert_eq!(GatewayStatus::parse(Some(b" 403 ")), S::Forbidden);
        assert_eq!(GatewayStatus::parse(Some(b"502")), S::Other);
        assert_eq!(GatewayStatus::parse(Some(b"\xff")), S::Other);
        assert_eq!(GatewayStatus::parse(None), S::Absent);
        for body in [
            BODY_UNAUTHORIZED,
            BODY_INVALID_TOKEN,
            BODY_INSUFFICIENT_SCOPE,
            BODY_FORBIDDEN,
        ] {
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            assert!(v["error"].is_string() && v["error_description"].is_string());
        }
    }
}
