//! LiteLLM's `mcp_servers` → signpost servers, by the table in README "Which LiteLLM settings work, and why": which auth settings a
//! login through signpost can work for (the bearer-forwarding ones become `delegate`), which make
//! LiteLLM the authorization server (`gateway`), and which need no OAuth from MCP clients (`none`).
//! Only names, issuers and scopes are read into the output: never `client_secret`, `client_id`,
//! headers, or any `os.environ/…` reference.

use crate::config::{ModeKind, Pos, Problem};

use super::yaml::{Node, Value};

/// LiteLLM's URL shapes for a server: it cannot route `/mcp/{server}/mcp` (README "URL shapes").
pub const RESOURCE_PATHS: [&str; 2] = ["/mcp/{server}", "/{server}/mcp"];

/// The `auth_type` values LiteLLM 1.108 knows (`MCPAuth`).
const KNOWN_AUTH_TYPES: &[&str] = &[
    "none",
    "api_key",
    "bearer_token",
    "basic",
    "authorization",
    "oauth2",
    "aws_sigv4",
    "token",
    "oauth2_token_exchange",
    "oauth2_id_jag",
    "true_passthrough",
    "oauth_delegate",
];

/// How bad a remark about one server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Informational: the mapping is what the operator wants.
    Note,
    /// signpost cannot make MCP clients log in to this server as LiteLLM is configured.
    Warning,
    /// The server is not in the output.
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Note => "note",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A remark about one server (or the whole file, with an empty path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remark {
    pub pos: Option<Pos>,
    pub path: String,
    pub level: Level,
    pub message: String,
}

/// One LiteLLM server, mapped.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The name clients use in the URL (`alias` wins) and signpost's server name.
    pub name: String,
    /// `mcp_servers.<key>`, for remarks.
    pub path: String,
    pub pos: Pos,
    pub mode: ModeKind,
    pub issuer: Option<String>,
    pub scopes: Vec<String>,
    /// The upstream MCP URL, for `--online` (never written out).
    pub url: Option<String>,
    pub auth_type: String,
}

/// Everything read from a LiteLLM config.
#[derive(Debug, Default)]
pub struct Mapped {
    pub servers: Vec<Planned>,
    pub remarks: Vec<Remark>,
}

/// An `os.environ/VAR` reference (LiteLLM reads the value from the environment): never copied.
fn is_env_ref(s: &str) -> bool {
    s.trim_start().starts_with("os.environ/")
}

/// A usable signpost server name (README "Config reference").
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

struct Reader {
    problems: Vec<Problem>,
    remarks: Vec<Remark>,
}

impl Reader {
    fn problem(&mut self, node: &Node, path: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            pos: Some(node.pos),
            path: path.to_owned(),
            message: message.into(),
        });
    }

    fn remark(&mut self, pos: Pos, path: &str, level: Level, message: impl Into<String>) {
        self.remarks.push(Remark {
            pos: Some(pos),
            path: path.to_owned(),
            level,
            message: message.into(),
        });
    }

    /// A string setting: `None` when absent or null; a problem when it is not a string.
    fn string<'n>(&mut self, entry: &'n Node, key: &str, path: &str) -> Option<&'n str> {
        let value = entry.get(key)?;
        match &value.value {
            Value::Null => None,
            Value::Str { text, .. } => Some(text.trim()).filter(|s| !s.is_empty()),
            _ => {
                self.problem(
                    value,
                    &format!("{path}.{key}"),
                    format!("must be a string, not {}; fix the value", value.kind()),
                );
                None
            }
        }
    }

    fn boolean(&mut self, entry: &Node, key: &str, path: &str) -> bool {
        let Some(value) = entry.get(key) else {
            return false;
        };
        match value.value {
            Value::Null => false,
            Value::Bool(b) => b,
            _ => {
                self.problem(
                    value,
                    &format!("{path}.{key}"),
                    format!(
                        "must be true or false, not {}; LiteLLM refuses it too",
                        value.kind()
                    ),
                );
                false
            }
        }
    }
}

/// Reads the `mcp_servers` of a LiteLLM config. `Err` holds every problem with the input's shape
/// (exit 78); remarks with level [`Level::Error`] name servers that could not be mapped (exit 1).
pub fn map(root: &Node) -> Result<Mapped, Vec<Problem>> {
    let mut r = Reader {
        problems: Vec::new(),
        remarks: Vec::new(),
    };
    let Some(top) = root.as_map() else {
        return Err(vec![Problem {
            pos: Some(root.pos),
            path: String::new(),
            message: format!(
                "a LiteLLM config is a mapping (model_list:, mcp_servers:, …), not {}; give the config.yaml LiteLLM runs with",
                root.kind()
            ),
        }]);
    };
    let servers = top
        .iter()
        .find(|(k, _)| k.key_text() == Some("mcp_servers"));
    let Some((servers_key, servers)) = servers else {
        return Err(vec![Problem {
            pos: Some(root.pos),
            path: "mcp_servers".into(),
            message: "missing: this LiteLLM config has no MCP servers to import; LiteLLM reads them from a top-level mcp_servers: mapping".into(),
        }]);
    };
    if let Some((k, _)) = top.iter().find(|(k, _)| k.key_text() == Some("include")) {
        r.remark(
            k.pos,
            "include",
            Level::Warning,
            "included files are not read: import each file that holds mcp_servers on its own and merge the servers",
        );
    }
    // litellm_settings.mcp_aliases: alias → server name; the first alias naming a server wins,
    // and only for servers without their own `alias` (LiteLLM's load_servers_from_config).
    let mut aliases: Vec<(String, String)> = Vec::new();
    if let Some(settings) = root
        .get("litellm_settings")
        .filter(|s| s.as_map().is_some())
    {
        if let Some(list) = settings.get("mcp_aliases") {
            match &list.value {
                Value::Null => {}
                Value::Map(pairs) => {
                    for (k, v) in pairs {
                        match (k.key_text(), v.as_str()) {
                            (Some(alias), Some(target)) => {
                                aliases.push((alias.to_owned(), target.to_owned()))
                            }
                            _ => r.problem(
                                v,
                                "litellm_settings.mcp_aliases",
                                "each entry maps an alias to a server name (alias: server); fix this one",
                            ),
                        }
                    }
                }
                _ => r.problem(
                    list,
                    "litellm_settings.mcp_aliases",
                    "must be a mapping of alias: server name",
                ),
            }
        }
    }
    let entries = match &servers.value {
        Value::Map(entries) if !entries.is_empty() => entries.as_slice(),
        Value::Map(_) | Value::Null => {
            r.problem(
                servers_key,
                "mcp_servers",
                "empty: no MCP servers to import; add LiteLLM's servers under mcp_servers:",
            );
            return Err(r.problems);
        }
        _ => {
            r.problem(
                servers,
                "mcp_servers",
                format!(
                    "must be a mapping of server name to its settings, not {}",
                    servers.kind()
                ),
            );
            return Err(r.problems);
        }
    };
    let mut used_aliases: Vec<&str> = Vec::new();
    let mut out: Vec<Planned> = Vec::new();
    for (key, entry) in entries {
        let key_text = key.key_text().unwrap_or("");
        let path = format!("mcp_servers.{key_text}");
        if entry.as_map().is_none() {
            r.problem(
                entry,
                &path,
                format!(
                    "must be a mapping of this server's settings (url:, auth_type:, …), not {}",
                    entry.kind()
                ),
            );
            continue;
        }
        let own_alias = r.string(entry, "alias", &path).map(str::to_owned);
        let alias = own_alias.or_else(|| {
            let found = aliases
                .iter()
                .find(|(a, target)| target == key_text && !used_aliases.contains(&a.as_str()))?;
            used_aliases.push(found.0.as_str());
            Some(found.0.clone())
        });
        let url = r.string(entry, "url", &path).map(str::to_owned);
        let auth_type = r
            .string(entry, "auth_type", &path)
            .unwrap_or("none")
            .to_owned();
        let flow = r.string(entry, "oauth2_flow", &path).map(str::to_owned);
        let delegate_upstream = r.boolean(entry, "delegate_auth_to_upstream", &path);
        r.boolean(entry, "dcr_bridge", &path);
        let issuer = r.string(entry, "issuer", &path).map(str::to_owned);
        let scopes = scopes(&mut r, entry, &path);
        let name = alias.clone().unwrap_or_else(|| key_text.to_owned());
        if !valid_name(&name) {
            let what = if alias.is_some() { "alias" } else { "name" };
            r.remark(
                key.pos,
                &path,
                Level::Error,
                format!("{what} {name:?} cannot be a signpost server name (only A-Z a-z 0-9 . _ -); give the server an alias: of those characters in LiteLLM"),
            );
            continue;
        }
        if let Some(other) = out.iter().find(|p| p.name == name) {
            r.remark(
                key.pos,
                &path,
                Level::Error,
                format!(
                    "clients reach this server as /mcp/{name}, which {} already is; give one of them another alias: in LiteLLM",
                    other.path
                ),
            );
            continue;
        }
        if !KNOWN_AUTH_TYPES.contains(&auth_type.as_str()) {
            let pos = entry.get("auth_type").map_or(key.pos, |n| n.pos);
            r.remark(
                pos,
                &path,
                Level::Error,
                format!(
                    "auth_type {auth_type:?} is not one LiteLLM 1.108 knows ({}); add this server to signpost's config by hand",
                    KNOWN_AUTH_TYPES.join(", ")
                ),
            );
            continue;
        }
        let auth_pos = entry.get("auth_type").map_or(key.pos, |n| n.pos);
        let issuer = match issuer {
            Some(i) if is_env_ref(&i) => {
                r.remark(auth_pos, &path, Level::Note, "issuer is an os.environ/ reference: not copied (signpost's config holds only public values); --online finds the issuer from the upstream");
                None
            }
            other => other,
        };
        let url = url.filter(|u| !is_env_ref(u));
        let mode = match auth_type.as_str() {
            "true_passthrough" => ModeKind::Delegate,
            "oauth_delegate" => {
                r.remark(auth_pos, &path, Level::Warning, "auth_type oauth_delegate: LiteLLM also requires its own key (x-litellm-api-key) on every MCP request, which MCP clients do not send after an OAuth login, so the login completes and every MCP call is rejected; set auth_type: true_passthrough in LiteLLM to forward the IdP's token untouched");
                ModeKind::Delegate
            }
            "oauth2" if flow.as_deref() == Some("client_credentials") => {
                r.remark(auth_pos, &path, Level::Note, "oauth2_flow client_credentials: LiteLLM fetches its own machine token for the upstream and MCP clients do not log in, so mode none");
                ModeKind::None
            }
            "oauth2" => {
                if flow.is_none() {
                    r.remark(auth_pos, &path, Level::Warning, "auth_type oauth2 without oauth2_flow: LiteLLM 1.108 refuses to start; add oauth2_flow: authorization_code (imported as if it were there)");
                }
                if delegate_upstream {
                    ModeKind::Delegate
                } else {
                    let iss = if issuer.is_some() {
                        ""
                    } else {
                        " and set issuer: (the IdP's) so LiteLLM accepts the IdP's RFC 9207 iss at its callback"
                    };
                    r.remark(auth_pos, &path, Level::Warning, format!("auth_type oauth2 without delegate_auth_to_upstream: LiteLLM is the authorization server (mode gateway) and relays the login to the IdP with its own client; LiteLLM builds its callback URL from Host, so register <public URL>/callback at the IdP{iss}; for clients to log in at the IdP itself, set delegate_auth_to_upstream: true"));
                    ModeKind::Gateway
                }
            }
            "oauth2_token_exchange" | "oauth2_id_jag" => {
                r.remark(auth_pos, &path, Level::Warning, format!("auth_type {auth_type}: LiteLLM exchanges the caller's LiteLLM identity for an upstream token, and MCP clients cannot obtain that identity through OAuth discovery, so mode none; for MCP clients to log in, use auth_type: true_passthrough or oauth2 with delegate_auth_to_upstream: true"));
                ModeKind::None
            }
            _ => ModeKind::None,
        };
        if mode == ModeKind::Delegate && url.is_none() {
            r.remark(
                key.pos,
                &path,
                Level::Error,
                format!("auth_type {auth_type} forwards the client's token to the upstream, but this server has no url: (stdio servers cannot take a client's token); give it the upstream's url"),
            );
            continue;
        }
        out.push(Planned {
            name,
            path,
            pos: key.pos,
            mode,
            // Only a delegate's PRM names the upstream's issuer; a gateway's is LiteLLM's own.
            issuer: issuer.filter(|_| mode == ModeKind::Delegate),
            scopes: if mode == ModeKind::None {
                Vec::new()
            } else {
                scopes
            },
            url,
            auth_type,
        });
    }
    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(Mapped {
        servers: out,
        remarks: r.remarks,
    })
}

/// `scopes:` as a list of strings, or one space-separated string. Tokens that are not valid
/// scopes (RFC 6749 §3.3) or are `os.environ/` references are left out with a note.
fn scopes(r: &mut Reader, entry: &Node, path: &str) -> Vec<String> {
    let Some(node) = entry.get("scopes") else {
        return Vec::new();
    };
    let kpath = format!("{path}.scopes");
    let raw: Vec<(&Node, &str)> = match &node.value {
        Value::Null => return Vec::new(),
        Value::Str { text, .. } => text.split_whitespace().map(|s| (node, s)).collect(),
        Value::Seq(items) => {
            let mut out = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) => out.extend(s.split_whitespace().map(|t| (item, t))),
                    None if item.value == Value::Null => {}
                    None => r.problem(
                        item,
                        &kpath,
                        format!("each scope must be a string, not {}", item.kind()),
                    ),
                }
            }
            out
        }
        _ => {
            r.problem(
                node,
                &kpath,
                format!("must be a list of scopes, not {}", node.kind()),
            );
            return Vec::new();
        }
    };
    let mut out: Vec<String> = Vec::new();
    for (item, s) in raw {
        if is_env_ref(s) || !s.bytes().all(crate::config::is_scope_char) {
            r.remark(
                item.pos,
                &kpath,
                Level::Note,
                "a scope that is an os.environ/ reference or not a valid scope token is left out",
            );
        } else if !out.iter().any(|o| o == s) {
            out.push(s.to_owned());
        }
    }
    out
}
