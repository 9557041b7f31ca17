//! The checks, as one enum: each [`CheckId`] knows its stable id (the `id` of `--json` and the
//! checklist), its step, the families it can stop and its one-sentence fix, all in one table
//! (`CheckId::about`). The rules that decide a check live in the step's file (`challenge`,
//! `prm`, `as_metadata`, `cors`); the results they produce ([`Check`], [`Failure`], [`Verdict`])
//! are defined here.

use std::fmt;

use serde::{Serialize, Serializer};

use super::Family::{self, Browser, Python, Rmcp, TsV1, TsV2};
use super::Step;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    Info,
    Skip,
}

/// `Pass` when `ok`, else `Warn`.
pub(super) fn pass_warn(ok: bool) -> Status {
    if ok { Status::Pass } else { Status::Warn }
}

/// `Pass` when `ok`, else `Fail`.
pub(super) fn pass_fail(ok: bool) -> Status {
    if ok { Status::Pass } else { Status::Fail }
}

/// Every check of the probe, in checklist order within its step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckId {
    // Challenge
    ChallengeStatus,
    ChallengeGet,
    ChallengeWwwAuthenticate,
    ChallengeBearerFirst,
    ChallengeSingle,
    ChallengeResourceMetadata,
    ChallengeHintSameOrigin,
    ChallengeScope,
    ChallengeExposeHeaders,
    ChallengeInvalidToken,

    // Prm
    PrmHint,
    PrmFound,
    PrmServerError,
    PrmRedirect,
    PrmJson,
    PrmContentType,
    PrmNoNullOrEmpty,
    PrmResource,
    PrmAuthorizationServers,
    PrmExpectedIssuer,
    PrmProtocolVersion,
    PrmScopes,

    // As
    AsFound,
    AsServerError,
    AsParse,
    AsOidcShape,
    AsNoNullOrEmpty,
    AsIssuer,
    AsResponseTypeCode,
    AsPkceS256,
    AsRegistration,
    AsRfc9207,
    AsEntraResource,
    AsPrivateHost,

    // Cors
    CorsMcpPreflight,
    CorsChallengeAllowOrigin,
    CorsPrmPreflight,
    CorsPrmAllowOrigin,
    CorsAsPreflight,
    CorsAsAllowOrigin,
    CorsRedirect,
    CorsRegistration,
    CorsToken,
}

/// What one check is: the row of [`CheckId::about`].
struct About {
    id: &'static str,
    step: Step,
    /// The families whose walk can stop at this check; for the others it is at most a warning.
    stops: &'static [Family],
    fix: &'static str,
}

const ALL: &[Family] = &Family::ALL;
/// The TypeScript SDK's rules: both versions and the browser page built on it.
const TS: &[Family] = &[TsV1, TsV2, Browser];
/// TypeScript's and Python's shared rules (schema validation of the PRM, registration).
const TS_AND_PYTHON: &[Family] = &[TsV1, TsV2, Python, Browser];
/// The families that compare the AS metadata's `issuer`.
const ISSUER_EXACT: &[Family] = &[TsV2, Python, Rmcp];
/// The families that refuse a server whose PKCE methods lack S256.
const S256: &[Family] = &[TsV1, TsV2, Rmcp, Browser];
const RMCP: &[Family] = &[Rmcp];
const BROWSER: &[Family] = &[Browser];
/// Checks that only ever warn.
const NONE: &[Family] = &[];

impl CheckId {
    /// The stable id, as in `--json` and the checklist (`challenge.status`).
    pub fn id(self) -> &'static str {
        self.about().id
    }

    pub fn step(self) -> Step {
        self.about().step
    }

    /// The families whose walk can stop at this check (what was measured of each client, README "What it checks"; the
    /// family models in `eval` apply it).
    pub fn stops(self) -> &'static [Family] {
        self.about().stops
    }

    /// The one-sentence fix.
    pub fn fix(self) -> &'static str {
        self.about().fix
    }

    fn about(self) -> About {
        use CheckId::*;
        let (id, step, stops, fix) = match self {
            ChallengeStatus => (
                "challenge.status",
                Step::Challenge,
                ALL,
                "Make the MCP endpoint answer a request without a token with 401 and a WWW-Authenticate challenge (the proxy must relay the gateway's 401, not turn it into another status).",
            ),
            ChallengeGet => (
                "challenge.get",
                Step::Challenge,
                RMCP,
                "Answer GET on the MCP URL without a token with the same 401 and challenge as POST, so rmcp (which probes with GET) gets the hint.",
            ),
            ChallengeWwwAuthenticate => (
                "challenge.www_authenticate",
                Step::Challenge,
                ALL,
                "Add `WWW-Authenticate: Bearer resource_metadata=\"<absolute PRM URL>\"` to the 401 (signpost's /challenge answer).",
            ),
            ChallengeBearerFirst => (
                "challenge.bearer_first",
                Step::Challenge,
                TS,
                "Send exactly one WWW-Authenticate line and make it start with `Bearer` (drop the gateway's own challenge; signpost's deploy/nginx config does this).",
            ),
            ChallengeSingle => (
                "challenge.single",
                Step::Challenge,
                TS,
                "Send exactly one WWW-Authenticate challenge: replace the gateway's own with signpost's instead of adding a second one.",
            ),
            ChallengeResourceMetadata => (
                "challenge.resource_metadata",
                Step::Challenge,
                ALL,
                "Put an absolute `resource_metadata=\"https://…/.well-known/oauth-protected-resource/…\"` in the Bearer challenge.",
            ),
            ChallengeHintSameOrigin => (
                "challenge.hint_same_origin",
                Step::Challenge,
                RMCP,
                "Serve the protected-resource metadata on the MCP URL's own origin and point resource_metadata there.",
            ),
            ChallengeScope => (
                "challenge.scope",
                Step::Challenge,
                NONE,
                "Quote the scope value and separate scope tokens with single spaces (RFC 6750 §3).",
            ),
            ChallengeExposeHeaders => (
                "challenge.expose_headers",
                Step::Challenge,
                BROWSER,
                "Add `Access-Control-Expose-Headers: WWW-Authenticate` to the 401 so browser clients can read the hint.",
            ),
            ChallengeInvalidToken => (
                "challenge.invalid_token",
                Step::Challenge,
                ALL,
                "Make the gateway answer a request with an invalid or expired token with 401 (and `error=\"invalid_token\"`), as for no token: any other status keeps clients from logging in again.",
            ),
            PrmHint => (
                "prm.hint",
                Step::Prm,
                TS,
                "Make the resource_metadata URL answer 200 with the metadata document: TypeScript clients do not fall back to the well-known URLs when the hint fails.",
            ),
            PrmFound => (
                "prm.found",
                Step::Prm,
                ALL,
                "Serve the protected-resource metadata at /.well-known/oauth-protected-resource<MCP path> (RFC 9728 §3.1) on the MCP URL's origin.",
            ),
            PrmServerError => (
                "prm.server_error",
                Step::Prm,
                ALL,
                "Answer the well-known URLs with 200 or 404, never 5xx: a 5xx stops TypeScript v1 and rmcp discovery.",
            ),
            PrmRedirect => (
                "prm.redirect",
                Step::Prm,
                ALL,
                "Serve the metadata on the MCP URL's origin instead of redirecting to another origin.",
            ),
            PrmJson => (
                "prm.json",
                Step::Prm,
                ALL,
                "Answer the metadata URL with a JSON object (Content-Type: application/json).",
            ),
            PrmContentType => (
                "prm.content_type",
                Step::Prm,
                NONE,
                "Send the metadata with `Content-Type: application/json`.",
            ),
            PrmNoNullOrEmpty => (
                "prm.no_null_or_empty",
                Step::Prm,
                TS_AND_PYTHON,
                "Omit absent fields instead of sending null, empty strings or empty lists.",
            ),
            PrmResource => (
                "prm.resource",
                Step::Prm,
                ALL,
                "Set `resource` to exactly the MCP URL clients use (same scheme, host, port and path, no trailing slash).",
            ),
            PrmAuthorizationServers => (
                "prm.authorization_servers",
                Step::Prm,
                ALL,
                "List exactly one authorization server, the issuer clients should use, in `authorization_servers`.",
            ),
            PrmExpectedIssuer => (
                "prm.expected_issuer",
                Step::Prm,
                ALL,
                "Point `authorization_servers[0]` at the expected issuer (the server's `issuer` or mode in signpost's config).",
            ),
            PrmProtocolVersion => (
                "prm.protocol_version",
                Step::Prm,
                RMCP,
                "Answer the well-known URLs the same whatever `MCP-Protocol-Version` the request carries (rmcp sends 2024-11-05).",
            ),
            PrmScopes => (
                "prm.scopes",
                Step::Prm,
                NONE,
                "Give the server the scopes it needs (signpost's `scopes`), without offline_access: they go into the challenge and the PRM.",
            ),
            AsFound => (
                "as.found",
                Step::As,
                ALL,
                "Serve the authorization server's metadata at one of the RFC 8414 / OIDC well-known URLs for its issuer.",
            ),
            AsServerError => (
                "as.server_error",
                Step::As,
                ALL,
                "Answer the AS metadata URLs with 200 or 404, never 5xx: a 5xx stops TypeScript v1 and rmcp discovery.",
            ),
            AsParse => (
                "as.parse",
                Step::As,
                ALL,
                "Serve complete RFC 8414 metadata (issuer, authorization_endpoint, token_endpoint, response_types_supported) at the first URL that answers 200.",
            ),
            AsOidcShape => (
                "as.oidc_shape",
                Step::As,
                TS,
                "At an openid-configuration URL serve a complete OIDC document (jwks_uri, subject_types_supported, id_token_signing_alg_values_supported) or answer 404.",
            ),
            AsNoNullOrEmpty => (
                "as.no_null_or_empty",
                Step::As,
                TS,
                "Omit absent fields from the AS metadata instead of sending null, empty strings or empty lists.",
            ),
            AsIssuer => (
                "as.issuer",
                Step::As,
                ISSUER_EXACT,
                "Make `authorization_servers[0]` byte-for-byte the `issuer` in the AS metadata (or use signpost's facade mode to serve a matching document).",
            ),
            AsResponseTypeCode => (
                "as.response_type_code",
                Step::As,
                ALL,
                "Advertise `\"code\"` in response_types_supported (MCP clients use the authorization-code flow).",
            ),
            AsPkceS256 => (
                "as.pkce_s256",
                Step::As,
                S256,
                "Advertise `code_challenge_methods_supported: [\"S256\"]` (signpost's facade mode adds it).",
            ),
            AsRegistration => (
                "as.registration",
                Step::As,
                TS_AND_PYTHON,
                "Offer dynamic client registration (registration_endpoint) or client ID metadata documents.",
            ),
            AsRfc9207 => (
                "as.rfc9207",
                Step::As,
                NONE,
                "If the upstream sends `iss` on the authorization response, use delegate mode so the recorded issuer is the upstream's own.",
            ),
            AsEntraResource => (
                "as.entra_resource",
                Step::As,
                NONE,
                "Set the Entra app registration's Application ID URI to the MCP URL (clients send it as RFC 8707 resource; Entra answers AADSTS9010010 otherwise).",
            ),
            AsPrivateHost => (
                "as.private_host",
                Step::As,
                RMCP,
                "Publish an authorization server on a public host, or run the MCP endpoint on loopback too for a local setup.",
            ),
            CorsMcpPreflight => (
                "cors.mcp_preflight",
                Step::Cors,
                BROWSER,
                "Answer OPTIONS on the MCP URL without auth, allowing the Origin and every requested header (echo Access-Control-Request-Headers: 2026-07-28 clients add mcp-method, mcp-name and mcp-param-*).",
            ),
            CorsChallengeAllowOrigin => (
                "cors.challenge_allow_origin",
                Step::Cors,
                BROWSER,
                "Add `Access-Control-Allow-Origin` to the MCP endpoint's 401.",
            ),
            CorsPrmPreflight => (
                "cors.prm_preflight",
                Step::Cors,
                NONE,
                "Answer OPTIONS on the well-known URLs with 2xx, allowing the Origin and mcp-protocol-version.",
            ),
            CorsPrmAllowOrigin => (
                "cors.prm_allow_origin",
                Step::Cors,
                BROWSER,
                "Add `Access-Control-Allow-Origin` to the protected-resource metadata responses.",
            ),
            CorsAsPreflight => (
                "cors.as_preflight",
                Step::Cors,
                NONE,
                "Answer OPTIONS on the AS metadata URLs with 2xx, allowing the Origin and mcp-protocol-version.",
            ),
            CorsAsAllowOrigin => (
                "cors.as_allow_origin",
                Step::Cors,
                BROWSER,
                "Add `Access-Control-Allow-Origin` to the AS metadata responses (signpost's facade mode serves them with CORS).",
            ),
            CorsRedirect => (
                "cors.redirect",
                Step::Cors,
                BROWSER,
                "Serve every discovery document at the URL clients request, without a redirect: a browser page follows none during discovery, not even a same-origin one.",
            ),
            CorsRegistration => (
                "cors.registration",
                Step::Cors,
                BROWSER,
                "Enable CORS on the IdP's registration endpoint (answer the OPTIONS preflight of a JSON POST for the page's Origin); only the IdP can fix it, a facade does not.",
            ),
            CorsToken => (
                "cors.token",
                Step::Cors,
                BROWSER,
                "Enable CORS on the IdP's token endpoint (Access-Control-Allow-Origin on its answers and preflights); only the IdP can fix it, a facade does not.",
            ),
        };
        About {
            id,
            step,
            stops,
            fix,
        }
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.id())
    }
}

impl Serialize for CheckId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

/// Where a walk stops: the check and why.
pub(super) type Stop = (CheckId, String);

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: CheckId,
    pub status: Status,
    pub summary: String,
    pub details: Vec<String>,
    /// Families whose verdict stops at this check.
    pub fails: Vec<Family>,
    pub fix: Option<&'static str>,
}

/// Where a family stops.
#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub check: CheckId,
    pub reason: String,
    pub fix: &'static str,
}

impl Failure {
    pub(super) fn at((check, reason): Stop) -> Failure {
        Failure {
            check,
            reason,
            fix: check.fix(),
        }
    }
}

/// One family's result.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub family: Family,
    pub failure: Option<Failure>,
    /// The PRM URL the family used (after redirects), when it got that far.
    pub prm: Option<String>,
    pub issuer: Option<String>,
    /// The AS metadata URL the family used.
    pub as_metadata: Option<String>,
    pub notes: Vec<String>,
}

impl Verdict {
    pub(super) fn new(family: Family) -> Verdict {
        Verdict {
            family,
            failure: None,
            prm: None,
            issuer: None,
            as_metadata: None,
            notes: Vec::new(),
        }
    }
}

/// The checklist as the step files add to it, in order.
pub(super) struct Builder {
    pub(super) checks: Vec<Check>,
}

impl Builder {
    pub(super) fn add(
        &mut self,
        id: CheckId,
        status: Status,
        summary: impl Into<String>,
        details: Vec<String>,
    ) {
        self.checks.push(Check {
            id,
            status,
            summary: summary.into(),
            details,
            fails: Vec::new(),
            fix: None,
        });
    }

    /// `id` fails with `problem`, or passes with the summary `ok()`.
    pub(super) fn pass_unless(
        &mut self,
        id: CheckId,
        problem: Option<String>,
        ok: impl FnOnce() -> String,
    ) {
        let status = pass_fail(problem.is_none());
        self.add(id, status, problem.unwrap_or_else(ok), Vec::new());
    }

    /// `id` passes with `ok` when nothing was `found`, else warns with `bad` of what was found
    /// (joined with `, `).
    pub(super) fn warn_if_any(
        &mut self,
        id: CheckId,
        found: &[String],
        ok: &str,
        bad: impl FnOnce(String) -> String,
    ) {
        let summary = if found.is_empty() {
            ok.to_owned()
        } else {
            bad(found.join(", "))
        };
        self.add(id, pass_warn(found.is_empty()), summary, Vec::new());
    }

    /// `id` passes with `ok` when nothing was `found`, else warns with `bad`, listing what was
    /// found as the details.
    pub(super) fn warn_if_listed(&mut self, id: CheckId, found: Vec<String>, ok: &str, bad: &str) {
        let summary = if found.is_empty() { ok } else { bad };
        self.add(id, pass_warn(found.is_empty()), summary, found);
    }

    /// `id` skipped, with the reason.
    pub(super) fn skip(&mut self, id: CheckId, why: impl Into<String>) {
        self.add(id, Status::Skip, why, Vec::new());
    }
}
