//! Step 1, the 401 challenge: how the MCP endpoint answers a request without a token (and with
//! an invalid one), and its `WWW-Authenticate` hint as each family reads it. The walk's first
//! step ([`walk`]) and the `challenge.*` checks ([`checklist`]).

use url::Url;

use super::check::{Builder, Check, CheckId, Failure, Status, Stop, Verdict, pass_fail, pass_warn};
use super::cors::{browser_challenge, exposes_www_authenticate};
use super::doc::{outcome_line, status_text};
use super::eval::Model;
use super::gather::{FAKE_BEARER, Kind, Observed, Resp};
use super::header::{self, parse_challenges};
use super::{Family, origin_of};

/// The fix when the MCP URL gives no answer at all.
const UNREACHABLE_FIX: &str = "Check the URL, DNS, the port and TLS: the probe could not get any answer from the MCP endpoint.";

/// The one failing check and every family's verdict when the MCP URL cannot be reached.
pub(super) fn unreachable(seen: &Observed) -> (Vec<Check>, Vec<Verdict>) {
    let mcp = &seen.mcp;
    let why = match seen.get(Kind::Post, mcp) {
        Some(Err(e)) => e.to_string(),
        _ => "no answer".to_owned(),
    };
    let check = Check {
        id: CheckId::ChallengeStatus,
        status: Status::Fail,
        summary: format!("{mcp} cannot be reached: {why}"),
        details: seen
            .exchanges
            .iter()
            .map(|e| {
                format!(
                    "{}: {}",
                    e.kind.describe(),
                    outcome_line(e.kind, &e.url, Some(&e.outcome))
                )
            })
            .collect(),
        fails: Family::ALL.to_vec(),
        fix: Some(UNREACHABLE_FIX),
    };
    let verdicts = Family::ALL
        .iter()
        .map(|&family| Verdict {
            failure: Some(Failure {
                check: CheckId::ChallengeStatus,
                reason: format!("the MCP URL cannot be reached: {why}"),
                fix: UNREACHABLE_FIX,
            }),
            ..Verdict::new(family)
        })
        .collect();
    (vec![check], verdicts)
}

// === the walk ===

/// The challenge as one family sees it: its hint, or why it has none.
pub(super) struct HintView {
    pub hint: Option<Url>,
    /// The check to blame if discovery fails without a hint.
    pub lost: Option<Stop>,
    /// Several different resource_metadata values were offered.
    pub several: Vec<String>,
}

/// The first step of family `m`: the 401, then the hint it reads from it.
pub(super) fn walk(seen: &Observed, m: &Model, notes: &mut Vec<String>) -> Result<HintView, Stop> {
    let mcp = &seen.mcp;
    let post = seen.get(Kind::Post, mcp);
    match post {
        Some(Ok(r)) if r.status == 401 => {}
        Some(Ok(r)) => {
            return Err((
                CheckId::ChallengeStatus,
                format!(
                    "POST initialize without a token answered {}, not 401: the client never starts OAuth",
                    r.status
                ),
            ));
        }
        Some(Err(e)) => {
            return Err((
                CheckId::ChallengeStatus,
                format!("POST initialize failed: {e}"),
            ));
        }
        None => {
            return Err((
                CheckId::ChallengeStatus,
                "the MCP URL was not requested".to_owned(),
            ));
        }
    }
    let view_source: Option<&Resp> = if m.browser {
        browser_challenge(seen)?
    } else if m.rmcp {
        match seen.get(Kind::Get, mcp) {
            Some(Ok(r)) if r.status == 401 => Some(r),
            Some(Ok(r)) => {
                notes.push(format!(
                    "GET on the MCP URL answered {}, so rmcp has no hint",
                    r.status
                ));
                None
            }
            _ => None,
        }
    } else {
        post.and_then(|o| o.as_ref().ok())
    };
    let mut view = hint_view(m, view_source, mcp);
    if m.rmcp && view_source.is_none() {
        view.lost = Some((
            CheckId::ChallengeGet,
            match seen.get(Kind::Get, mcp) {
                Some(Ok(r)) => format!(
                    "GET on the MCP URL answered {}, not 401, so rmcp gets no hint",
                    r.status
                ),
                Some(Err(e)) => format!("GET on the MCP URL failed ({e}), so rmcp gets no hint"),
                None => "GET on the MCP URL was not requested".to_owned(),
            },
        ));
    }
    if m.browser && view_source.is_some_and(|r| !exposes_www_authenticate(r)) {
        view = HintView {
            hint: None,
            lost: Some((CheckId::ChallengeExposeHeaders, "the 401 lacks Access-Control-Expose-Headers: WWW-Authenticate, so the page cannot read the hint".to_owned())),
            several: Vec::new(),
        };
    }
    Ok(view)
}

fn hint_view(m: &Model, r: Option<&Resp>, mcp: &Url) -> HintView {
    let mut out = HintView {
        hint: None,
        lost: None,
        several: Vec::new(),
    };
    let Some(r) = r else { return out };
    let lines = r.all("www-authenticate");
    if lines.is_empty() {
        out.lost = Some((
            CheckId::ChallengeWwwAuthenticate,
            "the 401 has no WWW-Authenticate header".to_owned(),
        ));
        return out;
    }
    let joined = lines.join(", ");
    let mut all = header::all_resource_metadata(&parse_challenges(&joined));
    all.dedup();
    if all.len() > 1 {
        out.several = all;
    }
    let raw = if m.ts_header {
        match header::ts_resource_metadata(&joined) {
            Some(h) => Some(h),
            None if header::any_resource_metadata(&joined).is_some()
                && !header::ts_bearer_first(&joined) =>
            {
                out.lost = Some((
                    CheckId::ChallengeBearerFirst,
                    format!(
                        "WWW-Authenticate does not start with `Bearer` ({joined:?}), so this client ignores the hint"
                    ),
                ));
                return out;
            }
            None => None,
        }
    } else {
        header::any_resource_metadata(&joined)
    };
    let Some(raw) = raw else {
        out.lost = Some((
            CheckId::ChallengeResourceMetadata,
            "the challenge carries no resource_metadata hint".to_owned(),
        ));
        return out;
    };
    let Ok(u) = Url::parse(&raw) else {
        out.lost = Some((
            CheckId::ChallengeResourceMetadata,
            format!("resource_metadata {raw:?} is not an absolute URL, so this client ignores it"),
        ));
        return out;
    };
    if m.rmcp && u.origin() != mcp.origin() {
        out.lost = Some((
            CheckId::ChallengeHintSameOrigin,
            format!("resource_metadata {u} is on another origin than the MCP URL; rmcp ignores it"),
        ));
        return out;
    }
    out.hint = Some(u);
    out
}

/// The walk's last rule: a family that got this far still fails if an expired token is not
/// answered with 401 (it could never log in again).
pub(super) fn walk_invalid_token(seen: &Observed) -> Result<(), Stop> {
    match invalid_token_problem(seen) {
        Some(p) => Err((CheckId::ChallengeInvalidToken, p)),
        None => Ok(()),
    }
}

/// Why the MCP endpoint's answer to the fake bearer keeps clients from logging in again.
fn invalid_token_problem(seen: &Observed) -> Option<String> {
    match seen.get(Kind::FakeBearer, &seen.mcp)? {
        Ok(r) if r.status == 401 => None,
        Ok(r) => {
            let body: String = String::from_utf8_lossy(&r.body).chars().take(120).collect();
            Some(format!(
                "POST initialize with `Authorization: {FAKE_BEARER}` answered {}, not 401 ({body:?}): a client whose token expired or was revoked gets that answer and never logs in again",
                r.status
            ))
        }
        Err(e) => Some(format!(
            "POST initialize with an invalid bearer failed ({e}): clients with an expired token cannot log in again"
        )),
    }
}

// === the checklist ===

/// What the later steps' checks need of the challenge.
pub(super) struct Seen {
    /// Every `resource_metadata` value of the POST's 401, in order.
    pub hints: Vec<String>,
    /// The first hint, when it is an absolute URL.
    pub hint_url: Option<Url>,
    /// The Bearer challenge's `scope` and whether it was quoted.
    pub scope: Option<(String, bool)>,
}

/// The `challenge.*` checks.
pub(super) fn checklist(seen: &Observed, b: &mut Builder) -> Seen {
    let post_r = status_checks(seen, b);
    let lines = post_r
        .map(|r| r.all("www-authenticate"))
        .unwrap_or_default();
    let joined = lines.join(", ");
    let challenges = parse_challenges(&joined);
    header_checks(&lines, &joined, &challenges, b);
    let hints = header::all_resource_metadata(&challenges);
    let first_hint = header::any_resource_metadata(&joined);
    let hint_url = first_hint.as_deref().and_then(|h| Url::parse(h).ok());
    hint_checks(
        seen,
        &lines,
        &hints,
        first_hint.as_deref(),
        hint_url.as_ref(),
        b,
    );
    let scope = challenges
        .iter()
        .find(|c| c.scheme.eq_ignore_ascii_case("bearer"))
        .and_then(|c| c.param("scope"));
    match scope {
        None => b.add(
            CheckId::ChallengeScope,
            Status::Info,
            "no scope in the challenge",
            Vec::new(),
        ),
        Some((v, quoted)) => match header::check_scope(v, quoted) {
            Ok(()) => b.add(
                CheckId::ChallengeScope,
                Status::Pass,
                format!("scope {v:?} is valid RFC 6750 syntax"),
                Vec::new(),
            ),
            Err(e) => b.add(
                CheckId::ChallengeScope,
                Status::Warn,
                format!("scope {v:?} is not valid RFC 6750 §3 syntax: {e}"),
                Vec::new(),
            ),
        },
    }
    let cors_post = seen
        .get(Kind::CorsPost, &seen.mcp)
        .and_then(|o| o.as_ref().ok());
    match cors_post.or(post_r) {
        Some(r) => {
            let aceh = r.all("access-control-expose-headers");
            b.add(
                CheckId::ChallengeExposeHeaders,
                pass_warn(exposes_www_authenticate(r)),
                if exposes_www_authenticate(r) { "Access-Control-Expose-Headers includes WWW-Authenticate".to_owned() } else { "Access-Control-Expose-Headers lacks WWW-Authenticate: browser pages cannot read the hint".to_owned() },
                aceh.iter().map(|v| format!("Access-Control-Expose-Headers: {v}")).collect(),
            );
        }
        None => b.skip(CheckId::ChallengeExposeHeaders, "no 401 to look at"),
    }
    Seen {
        hints,
        hint_url,
        scope: scope.map(|(v, q)| (v.to_owned(), q)),
    }
}

/// `challenge.status`, `challenge.invalid_token`, `challenge.get`; returns the POST's answer.
fn status_checks<'a>(seen: &'a Observed, b: &mut Builder) -> Option<&'a Resp> {
    let mcp = &seen.mcp;
    let post = seen.get(Kind::Post, mcp);
    match post {
        Some(Ok(r)) => b.add(
            CheckId::ChallengeStatus,
            pass_fail(r.status == 401),
            format!("POST initialize without a token → {}", r.status),
            Vec::new(),
        ),
        other => b.add(
            CheckId::ChallengeStatus,
            Status::Fail,
            format!("POST initialize without a token: {}", status_text(other)),
            Vec::new(),
        ),
    }
    match seen.get(Kind::FakeBearer, mcp) {
        None => b.skip(CheckId::ChallengeInvalidToken, "not requested"),
        Some(o) => {
            b.pass_unless(
                CheckId::ChallengeInvalidToken,
                invalid_token_problem(seen),
                || {
                    format!(
                        "POST initialize with `Authorization: {FAKE_BEARER}` → {}",
                        status_text(Some(o))
                    )
                },
            );
        }
    }
    let get = seen.get(Kind::Get, mcp);
    let get_hint = get
        .and_then(|o| o.as_ref().ok())
        .filter(|r| r.status == 401)
        .and_then(|r| header::any_resource_metadata(&r.all("www-authenticate").join(", ")));
    b.add(
        CheckId::ChallengeGet,
        pass_warn(get_hint.is_some()),
        match (get, &get_hint) {
            (Some(Ok(r)), Some(_)) => format!("GET (as rmcp) → {} with the hint", r.status),
            (Some(Ok(r)), None) => format!(
                "GET (as rmcp) → {} without a hint: rmcp falls back to the well-known URLs",
                r.status
            ),
            (o, _) => format!("GET (as rmcp): {}", status_text(o)),
        },
        Vec::new(),
    );
    post.and_then(|o| o.as_ref().ok())
}

/// `challenge.www_authenticate`, `challenge.bearer_first`, `challenge.single`.
fn header_checks(
    lines: &[String],
    joined: &str,
    challenges: &[header::Challenge],
    b: &mut Builder,
) {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    b.add(
        CheckId::ChallengeWwwAuthenticate,
        pass_warn(!lines.is_empty()),
        format!(
            "{} WWW-Authenticate line{}",
            lines.len(),
            plural(lines.len())
        ),
        lines
            .iter()
            .map(|l| format!("WWW-Authenticate: {l}"))
            .collect(),
    );
    if lines.is_empty() {
        b.skip(CheckId::ChallengeBearerFirst, "no WWW-Authenticate header");
        b.skip(CheckId::ChallengeSingle, "no WWW-Authenticate header");
        return;
    }
    b.add(
        CheckId::ChallengeBearerFirst,
        pass_warn(header::ts_bearer_first(joined)),
        if header::ts_bearer_first(joined) {
            "`Bearer` comes first".to_owned()
        } else {
            format!(
                "the header starts with {:?}, not `Bearer`: TypeScript clients ignore it",
                joined.split(' ').next().unwrap_or("")
            )
        },
        Vec::new(),
    );
    let single = lines.len() == 1 && challenges.len() == 1;
    b.add(
        CheckId::ChallengeSingle,
        pass_warn(single),
        if single { "exactly one challenge".to_owned() } else { format!("{} challenges on {} line{} (TypeScript joins the lines and the first resource_metadata wins)", challenges.len(), lines.len(), plural(lines.len())) },
        challenges.iter().map(|c| format!("challenge: {}", if c.scheme.is_empty() { "(no scheme)" } else { &c.scheme })).collect(),
    );
}

/// `challenge.resource_metadata` and `challenge.hint_same_origin`.
fn hint_checks(
    seen: &Observed,
    lines: &[String],
    hints: &[String],
    first_hint: Option<&str>,
    hint_url: Option<&Url>,
    b: &mut Builder,
) {
    let mcp = &seen.mcp;
    match (first_hint, hint_url) {
        (None, _) => b.add(
            CheckId::ChallengeResourceMetadata,
            if lines.is_empty() {
                Status::Skip
            } else {
                Status::Warn
            },
            "no resource_metadata: clients fall back to the well-known URLs",
            Vec::new(),
        ),
        (Some(h), None) => b.add(
            CheckId::ChallengeResourceMetadata,
            Status::Warn,
            format!("resource_metadata {h:?} is not an absolute URL: clients ignore it"),
            Vec::new(),
        ),
        (Some(_), Some(u)) => b.add(
            CheckId::ChallengeResourceMetadata,
            Status::Pass,
            format!("resource_metadata {u}"),
            hints
                .iter()
                .skip(1)
                .map(|h| format!("also resource_metadata {h}"))
                .collect(),
        ),
    }
    match hint_url {
        Some(u) => b.add(
            CheckId::ChallengeHintSameOrigin,
            pass_warn(u.origin() == mcp.origin()),
            if u.origin() == mcp.origin() {
                "the hint is on the MCP URL's origin".to_owned()
            } else {
                format!(
                    "the hint is on {}, not {}: rmcp ignores it",
                    origin_of(u),
                    origin_of(mcp)
                )
            },
            Vec::new(),
        ),
        None => b.skip(CheckId::ChallengeHintSameOrigin, "no hint"),
    }
}
