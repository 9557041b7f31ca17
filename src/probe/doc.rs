//! What the PRM and AS steps share: a discovery document as one family fetches it ([`answer`]),
//! the one candidate loop both steps run over their URL lists ([`first_accepted`]), and the
//! JSON and status helpers their checks read answers with.

use serde_json::{Map, Value};
use url::Url;

use super::check::{Builder, CheckId, Stop};
use super::cors::{allow_origin_problem, browser_get, preflight_problem};
use super::eval::Model;
use super::gather::{Failed, Kind, Observed, Outcome, Resp};

/// The checks a document kind blames, and how rmcp requests it.
pub(super) struct DocRules {
    /// A cross-origin redirect the family does not follow.
    pub redirect: CheckId,
    /// The browser cannot read the answer.
    pub allow_origin: CheckId,
    /// Not found (a plain absence).
    pub found: CheckId,
    pub server_error: CheckId,
    /// rmcp requests it with `MCP-Protocol-Version: 2024-11-05`.
    pub rmcp_legacy: bool,
}

/// Why one candidate URL gave a family nothing; `strong` when it is a real rule violation rather
/// than a plain absence (a strong problem is blamed before an absence when nothing is found).
pub(super) struct Problem {
    pub check: CheckId,
    pub strong: bool,
    pub why: String,
}

/// A document a family accepts: the answer and its JSON object.
pub(super) type Document<'a> = (&'a Resp, Map<String, Value>);

/// What a family made of one candidate URL.
pub(super) enum Tried<T> {
    Accepted(T),
    Problem(Problem),
}

/// Why the candidate loop found nothing.
pub(super) enum Missed {
    /// The family stopped at one URL.
    Stop(Stop),
    /// Every URL failed: the first strong problem, and the other reasons in order.
    Nothing {
        strong: Option<Stop>,
        weak: Vec<String>,
    },
}

/// The candidate loop of the PRM and AS steps: tries `urls` in order and returns the first
/// document the family accepts. `try_url` gets each URL's index and judges it.
pub(super) fn first_accepted<T>(
    urls: &[Url],
    mut try_url: impl FnMut(usize, &Url) -> Result<Tried<T>, Stop>,
) -> Result<T, Missed> {
    let mut strong: Option<Stop> = None;
    let mut weak = Vec::new();
    for (i, url) in urls.iter().enumerate() {
        match try_url(i, url).map_err(Missed::Stop)? {
            Tried::Accepted(t) => return Ok(t),
            Tried::Problem(p) if p.strong && strong.is_none() => strong = Some((p.check, p.why)),
            Tried::Problem(p) => weak.push(p.why),
        }
    }
    Err(Missed::Nothing { strong, weak })
}

/// A document URL as family `m` fetches it: the answer to judge (not a 5xx), or why there is
/// none; `Err` when the family stops here (a 5xx for a family that stops on one).
pub(super) fn answer<'a>(
    seen: &'a Observed,
    m: &Model,
    rules: &DocRules,
    url: &Url,
    notes: &mut Vec<String>,
) -> Result<Tried<&'a Resp>, Stop> {
    match fetched(seen, m, rules, url, notes) {
        Ok(r) if r.status >= 500 => {
            if m.stops_on_5xx {
                return Err((
                    rules.server_error,
                    format!(
                        "{url} answered {}: this client stops discovery on a 5xx",
                        r.status
                    ),
                ));
            }
            Ok(Tried::Problem(Problem {
                check: rules.server_error,
                strong: true,
                why: format!("{url} answered {}", r.status),
            }))
        }
        Ok(r) => Ok(Tried::Accepted(r)),
        Err(p) => Ok(Tried::Problem(p)),
    }
}

/// The answer family `m` reads for `url` (after the redirects it follows), or why it has none.
fn fetched<'a>(
    seen: &'a Observed,
    m: &Model,
    rules: &DocRules,
    url: &Url,
    notes: &mut Vec<String>,
) -> Result<&'a Resp, Problem> {
    let outcome = if m.browser {
        let pre = seen.get(Kind::Preflight, url);
        let ok = pre.is_some_and(|p| {
            preflight_problem(p, &seen.origin, "GET", &["mcp-protocol-version"]).is_none()
        });
        browser_get(seen, url, ok)
    } else if m.rmcp && rules.rmcp_legacy {
        seen.get(Kind::Legacy, url)
    } else {
        seen.get(Kind::Modern, url)
    };
    let problem = |check, strong, why| Err(Problem { check, strong, why });
    let Some(outcome) = outcome else {
        return problem(
            rules.found,
            false,
            format!("{url} was not requested (time budget)"),
        );
    };
    match outcome {
        Ok(r) => {
            if m.browser && !r.redirects.is_empty() {
                let hops: Vec<String> = r
                    .redirects
                    .iter()
                    .map(|(from, to)| format!("{from} → {to}"))
                    .collect();
                return problem(
                    CheckId::CorsRedirect,
                    true,
                    format!(
                        "{url} redirects ({}); a browser page follows no redirect during discovery",
                        hops.join(", ")
                    ),
                );
            }
            if m.browser {
                if let Some(p) = allow_origin_problem(r, &seen.origin) {
                    return problem(
                        rules.allow_origin,
                        true,
                        format!("{url}: the browser cannot read the answer: {p}"),
                    );
                }
            }
            Ok(r)
        }
        Err(e) => {
            if let Some(to) = e.cross_origin_target() {
                if m.follows_cross_origin {
                    if let Some(Ok(r)) = Url::parse(to)
                        .ok()
                        .and_then(|t| seen.get(Kind::PythonFollow, &t))
                    {
                        notes.push(format!("follows the cross-origin redirect {url} → {to}"));
                        return Ok(r);
                    }
                }
                return problem(
                    rules.redirect,
                    true,
                    format!(
                        "{url} redirects to another origin ({to}), which this client does not follow"
                    ),
                );
            }
            problem(rules.found, false, format!("{url}: {e}"))
        }
    }
}

/// One request's outcome as a checklist line.
pub(super) fn outcome_line(kind: Kind, url: &Url, o: Option<&Outcome>) -> String {
    match o {
        None => format!("{url}: not requested"),
        Some(Ok(r)) => {
            let mut s = format!("{url} → {}", r.status);
            for (from, to) in &r.redirects {
                s.push_str(&format!(" (same-origin redirect {from} → {to})"));
            }
            if kind == Kind::Legacy {
                s.push_str(" with MCP-Protocol-Version: 2024-11-05");
            }
            s
        }
        Some(Err(e)) => format!("{url} → {e}"),
    }
}

/// A request's status, or why it has none.
pub(super) fn status_text(o: Option<&Outcome>) -> String {
    match o {
        None => "not requested".to_owned(),
        Some(Ok(r)) => r.status.to_string(),
        Some(Err(Failed::Fetch(crate::fetch::FetchError::CrossOriginRedirect { to, .. }))) => {
            format!("cross-origin redirect to {to} (not followed)")
        }
        Some(Err(e)) => e.to_string(),
    }
}

/// Paths (`a.b[0]`) of every null, empty string and empty list in a document.
pub(super) fn nulls_and_empties(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(format!("{path} is null")),
        Value::String(s) if s.is_empty() => out.push(format!("{path} is an empty string")),
        Value::Array(a) if a.is_empty() => out.push(format!("{path} is an empty list")),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                nulls_and_empties(x, &format!("{path}[{i}]"), out);
            }
        }
        Value::Object(o) => {
            for (k, x) in o {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                nulls_and_empties(x, &p, out);
            }
        }
        _ => {}
    }
}

/// [`nulls_and_empties`] of a whole document.
pub(super) fn bad_values(doc: &Map<String, Value>) -> Vec<String> {
    let mut bad = Vec::new();
    nulls_and_empties(&Value::Object(doc.clone()), "", &mut bad);
    bad
}

/// The body as a JSON object.
pub(super) fn json_object(r: &Resp) -> Option<Map<String, Value>> {
    match serde_json::from_slice::<Value>(&r.body) {
        Ok(Value::Object(o)) => Some(o),
        _ => None,
    }
}

/// The strings of a list field.
pub(super) fn str_list<'a>(doc: &'a Map<String, Value>, key: &str) -> Option<Vec<&'a str>> {
    doc.get(key)?
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
}

/// `prm.server_error` / `as.server_error`: the 5xx answers among the URLs clients try.
pub(super) fn server_error_check(b: &mut Builder, id: CheckId, five: &[String]) {
    b.warn_if_any(id, five, "no 5xx", |f| format!("5xx from {f}"));
}

/// `prm.no_null_or_empty` / `as.no_null_or_empty`: the nulls and empties of a document, and whose
/// schema validation they fail.
pub(super) fn null_check(b: &mut Builder, id: CheckId, bad: &[String], fails: &str) {
    b.warn_if_any(id, bad, "no null, empty string or empty list", |f| {
        format!("{f}: {fails} schema validation fails")
    });
}
