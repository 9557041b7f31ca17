//! The findings of an accepted upstream document: what in it breaks which MCP clients, given how
//! the server uses it (delegate or facade, scopes, registration), each with a severity and a fix.
//! Pure: `discover` fetches, this judges.

use serde_json::{Map, Value};
use url::Url;

use super::discover::{Endpoint, Finding, Notes, Use};

/// The fix for an issuer mismatch: the published issuer, suggested only when it works on its own.
pub(super) fn suggest(configured: &str, published: &str, works: bool) -> String {
    if published.is_empty() {
        return "The document has no issuer; the IdP's metadata is broken".into();
    }
    if !works {
        return format!(
            "\"{published}\" cannot be used instead: its own metadata URLs do not serve a document with that issuer, so clients starting from it fail too. The IdP publishes its metadata under a URL that is not its issuer (a proxy rewriting paths, a wrong public URL setting at the IdP): fix the IdP's issuer setting, or use mode \"facade\", which has its own issuer and tolerates this"
        );
    }
    if published.trim_end_matches('/') == configured.trim_end_matches('/') {
        let slash = if published.ends_with('/') {
            "with"
        } else {
            "without"
        };
        return format!(
            "Did you mean \"{published}\" ({slash} the trailing slash)? Write the issuer exactly as the IdP publishes it"
        );
    }
    format!("Did you mean \"{published}\"? Write the issuer exactly as the IdP publishes it")
}

/// What the findings for one server depend on besides the upstream's document.
#[derive(Debug, Clone, Copy)]
pub struct Usage<'a> {
    pub used_as: Use,
    /// The server's `scopes`.
    pub scopes: &'a [String],
    /// A facade with its own `registration_endpoint` in the config.
    pub registration_configured: bool,
    /// A facade with `client_id_metadata_document_supported: true` in the config.
    pub cimd_configured: bool,
}

impl<'a> Usage<'a> {
    pub fn of(server: &'a crate::config::Server) -> Usage<'a> {
        let hosted = server.auth.iter().filter_map(|a| a.hosted.as_ref());
        Usage {
            used_as: match server.mode {
                crate::config::ModeKind::Facade => Use::Facade,
                _ => Use::Delegate,
            },
            scopes: &server.scopes,
            registration_configured: hosted.clone().any(|h| h.registration_endpoint.is_some()),
            cimd_configured: hosted
                .clone()
                .any(|h| h.client_id_metadata_document_supported == Some(true)),
        }
    }
}

/// Every finding of an accepted document for a configured server, beyond the mode-independent
/// ones of [`Discovery::findings`].
pub fn judge_for(
    doc: &Map<String, Value>,
    notes: &Notes,
    server: &crate::config::Server,
) -> Vec<Finding> {
    judge_usage(doc, notes, &Usage::of(server))
}

/// [`judge_for`] from a [`Usage`].
pub fn judge_usage(doc: &Map<String, Value>, notes: &Notes, usage: &Usage<'_>) -> Vec<Finding> {
    let facade = usage.used_as == Use::Facade;
    let mut out = Vec::new();
    if let Some(published) = &notes.published_issuer {
        let configured = &notes.configured_issuer;
        if facade {
            out.push(Finding::warning(
                "issuer_mismatch",
                format!(
                    "the upstream's metadata says issuer {published:?}, not the configured {configured:?}; tolerated for a facade, which serves its own issuer, but if the IdP puts RFC 9207 `iss` on its redirect the login fails anyway; write the issuer as the IdP publishes it if that works"
                ),
            ));
        } else {
            out.push(Finding::error(
                "issuer_mismatch",
                format!(
                    "the upstream's metadata says issuer {published:?} but the config says {configured:?}; clients compare them exactly (RFC 8414 §3.3) and refuse to log in. {}",
                    suggest(configured, published, notes.published_issuer_works)
                ),
            ));
        }
    }
    let skip_registration = facade && (usage.registration_configured || usage.cimd_configured);
    out.extend(
        judge(doc, usage.used_as)
            .into_iter()
            .filter(|f| !(skip_registration && f.code == "no_registration")),
    );
    if facade
        && !doc
            .get("authorization_response_iss_parameter_supported")
            .is_some_and(|v| v == &Value::Bool(true))
    {
        if let Some(kind) = sends_iss(doc) {
            out.push(Finding::warning(
                "iss_parameter_likely",
                format!(
                    "the upstream looks like {kind}, which puts RFC 9207 `iss` on its authorization redirect even without advertising it; behind a facade that `iss` differs from the facade's issuer and 2026-07-28 clients (TS v2, Python, rmcp) reject the login; use mode \"delegate\" (or turn `iss` off at the IdP)"
                ),
            ));
        }
    }
    if is_entra(doc) {
        out.push(Finding::warning(
            "entra_resource",
            "Entra ID rejects the RFC 8707 `resource` MCP clients send (the MCP URL) with AADSTS9010010 unless the app registration's Application ID URI is that MCP URL; set the app's Application ID URI to the MCP URL and expose its scopes under it (api://… URIs do not match)".into(),
        ));
    }
    let upstream_scopes: Option<Vec<&str>> = doc
        .get("scopes_supported")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    if usage.scopes.is_empty() {
        let python = match (&upstream_scopes, facade) {
            (Some(_), true) => {
                "Python requests every scope of the upstream's scopes_supported (the facade carries them)"
            }
            (Some(_), false) => "Python requests every scope of the IdP's scopes_supported",
            (None, _) => "Python requests none either",
        };
        out.push(Finding::warning(
            "no_scopes",
            format!("the server has no \"scopes\": TypeScript clients (v1, v2) then request no scope at all, and strict IdPs (oidc-provider) answer access_denied; {python}; set \"scopes\" to what the MCP server needs"),
        ));
    }
    if let Some(supported) = &upstream_scopes {
        let unknown: Vec<&str> = usage
            .scopes
            .iter()
            .map(String::as_str)
            .filter(|s| !supported.contains(s))
            .collect();
        if !unknown.is_empty() {
            out.push(Finding::warning(
                "scope_not_supported",
                format!(
                    "scope{} {} {} not in the IdP's scopes_supported {supported:?}: clients request {}, and strict IdPs (oidc-provider) refuse the registration or the authorization; use scopes the IdP lists",
                    if unknown.len() == 1 { "" } else { "s" },
                    unknown.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", "),
                    if unknown.len() == 1 { "is" } else { "are" },
                    if unknown.len() == 1 { "it" } else { "them" },
                ),
            ));
        }
    }
    if usage.scopes.iter().any(|s| s == "offline_access") {
        out.push(Finding::warning(
            "offline_access_scope",
            "\"scopes\" holds offline_access, which MCP servers SHOULD NOT advertise (2025-11-25 spec): clients then request it on every login and IdPs that restrict refresh tokens refuse; remove it (clients ask for it themselves when they want a refresh token)".into(),
        ));
    }
    for cors in &notes.cors {
        let Some(problem) = &cors.problem else {
            continue;
        };
        let f = match cors.endpoint {
            Endpoint::Metadata if !facade => Finding::warning(
                "cors_metadata",
                format!(
                    "browser clients (MCP Inspector, web apps) cannot read the IdP's metadata {}: {problem}; mode \"facade\" fixes it (signpost serves the metadata with CORS), or enable CORS at the IdP",
                    cors.url
                ),
            ),
            Endpoint::Metadata => continue,
            Endpoint::Registration if facade && usage.registration_configured => continue,
            Endpoint::Registration => Finding::warning(
                "cors_registration",
                format!(
                    "browser clients cannot register at {}: {problem}; only the IdP can fix it (enable CORS on its registration endpoint); a facade does not help, since the browser calls that endpoint itself",
                    cors.url
                ),
            ),
            Endpoint::Token => Finding::warning(
                "cors_token",
                format!(
                    "browser clients cannot redeem their code at {}: {problem}; only the IdP can fix it (enable CORS on its token endpoint); a facade does not help, since the browser calls that endpoint itself",
                    cors.url
                ),
            ),
        };
        out.push(f);
    }
    if facade {
        for (key, why) in &notes.dropped {
            out.push(Finding::warning(
                "invalid_upstream_value",
                format!("the upstream's {key} {why}; the facade does not relay it (the config check refuses the same value); fix it at the IdP, or set it in the config"),
            ));
        }
    }
    out
}

/// The IdP software whose signatures the metadata carries, when it is one known to put RFC 9207
/// `iss` on every authorization response: Keycloak (`/realms/…` issuers with
/// `/protocol/openid-connect/` endpoints) or node oidc-provider (`/session/end`, `/me`, `/reg`).
pub fn sends_iss(doc: &Map<String, Value>) -> Option<&'static str> {
    let s = |k: &str| doc.get(k).and_then(Value::as_str).unwrap_or("");
    if s("issuer").contains("/realms/")
        && s("authorization_endpoint").contains("/protocol/openid-connect/")
    {
        return Some("Keycloak");
    }
    let oidc_provider = [
        ("end_session_endpoint", "/session/end"),
        ("userinfo_endpoint", "/me"),
        ("registration_endpoint", "/reg"),
        ("pushed_authorization_request_endpoint", "/request"),
    ]
    .iter()
    .filter(|(k, end)| s(k).ends_with(end))
    .count();
    (oidc_provider >= 2).then_some("oidc-provider")
}

/// Entra ID (Azure AD): its issuer host, or the fields only its metadata carries.
pub fn is_entra(doc: &Map<String, Value>) -> bool {
    let host = doc
        .get("issuer")
        .and_then(Value::as_str)
        .and_then(|i| Url::parse(i).ok())
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase));
    host.is_some_and(|h| {
        h == "login.microsoftonline.com"
            || h == "login.microsoftonline.us"
            || h == "login.partner.microsoftonline.cn"
            || h == "sts.windows.net"
    }) || ["cloud_instance_name", "msgraph_host", "tenant_region_scope"]
        .iter()
        .any(|k| doc.contains_key(*k))
}

/// What in an accepted document breaks which clients, from the document alone.
pub fn judge(doc: &Map<String, Value>, used_as: Use) -> Vec<Finding> {
    let mut out = Vec::new();
    let strings = |key: &str| -> Option<Vec<&str>> {
        doc.get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
    };
    match strings("code_challenge_methods_supported") {
        None if used_as == Use::Delegate => out.push(Finding::warning(
            "no_pkce_methods",
            "no code_challenge_methods_supported: strict clients (the 2025-11-25 spec, claude.ai) refuse to log in; use mode \"facade\", which advertises S256".into(),
        )),
        Some(methods) if !methods.contains(&"S256") => out.push(Finding::warning(
            "no_s256",
            format!(
                "code_challenge_methods_supported is {methods:?} without S256: the TypeScript SDK and rmcp refuse to log in{}",
                if used_as == Use::Delegate { "; use mode \"facade\" if the IdP does support S256" } else { "; the facade advertises S256, but check the IdP accepts it" }
            ),
        )),
        _ => {}
    }
    let cimd = doc
        .get("client_id_metadata_document_supported")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if doc
        .get("registration_endpoint")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
        && !cimd
    {
        let (make, rescue): (fn(&'static str, String) -> Finding, &str) = match used_as {
            // Nothing else the client reads offers a way to register: every client fails.
            Use::Delegate => (
                Finding::error,
                "; or use mode \"facade\" with a \"registration_endpoint\" or \"client_id_metadata_document_supported\" in the config",
            ),
            Use::Facade => (
                Finding::warning,
                "; or set \"registration_endpoint\" or \"client_id_metadata_document_supported\" for this facade in the config",
            ),
        };
        out.push(make(
            "no_registration",
            format!("no registration_endpoint and no client ID metadata document support: the TypeScript SDK cannot register a client and the Python SDK posts to the gateway's /register instead; enable client ID metadata documents at the IdP (client_id_metadata_document_supported, which 2026-07-28 clients prefer) or dynamic client registration{rescue}"),
        ));
    }
    if used_as == Use::Facade
        && doc
            .get("authorization_response_iss_parameter_supported")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    {
        out.push(Finding::error(
            "iss_parameter_with_facade",
            "the IdP sends RFC 9207 `iss` on its authorization response; behind a facade that `iss` differs from the facade's issuer, so 2026-07-28 clients (TS v2, Python, rmcp) reject the redirect; use mode \"delegate\" for this IdP".into(),
        ));
    }
    out
}
