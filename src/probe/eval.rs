//! The evaluation, as pure functions of what was observed: every family's walk and the
//! checklist, each run step by step (`challenge` → `prm` → `as_metadata` → `cors`).
//!
//! Each family is a `Model`: the rules measured of that client (README "Diagnosing a deployment"). A walk follows the family's
//! discovery order over the recorded answers and stops at the first check that stops that client.
//! The checklist reports every rule on the deployment's answers; a rule that is broken but stops no
//! family here (a fallback rescues it) is a warning, one that stops a family is a failure.

use super::check::{Builder, Check, Failure, Status, Stop, Verdict};
use super::gather::Observed;
use super::{Family, as_metadata, challenge, cors, prm};

// === family models ===

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IssuerRule {
    None,
    Exact,
    /// TS v2: one trailing `/` tolerated on the expected side only.
    ExpectedSlash,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Model {
    pub(super) family: Family,
    /// TS: `Bearer` first, first quoted `resource_metadata`, no well-known fallback after a hint.
    pub(super) ts_header: bool,
    /// rmcp: the hint comes from its GET; cross-origin hints are ignored.
    pub(super) rmcp: bool,
    pub(super) browser: bool,
    pub(super) stops_on_5xx: bool,
    pub(super) follows_cross_origin: bool,
    pub(super) strict_null_prm: bool,
    pub(super) strict_null_as: bool,
    /// TS: a 200 that fails to parse throws; OIDC URLs need the OIDC shape.
    pub(super) ts_parse: bool,
    pub(super) trailing_slash_ok: bool,
    pub(super) exact_resource: bool,
    pub(super) issuer: IssuerRule,
    pub(super) s256_when_present: bool,
    pub(super) needs_registration: bool,
}

pub(super) fn model(family: Family) -> Model {
    let ts_v1 = Model {
        family,
        ts_header: true,
        rmcp: false,
        browser: false,
        stops_on_5xx: true,
        follows_cross_origin: false,
        strict_null_prm: true,
        strict_null_as: true,
        ts_parse: true,
        trailing_slash_ok: false,
        exact_resource: false,
        issuer: IssuerRule::None,
        s256_when_present: true,
        needs_registration: true,
    };
    let lenient = Model {
        family,
        ts_header: false,
        rmcp: false,
        browser: false,
        stops_on_5xx: false,
        follows_cross_origin: false,
        strict_null_prm: false,
        strict_null_as: false,
        ts_parse: false,
        trailing_slash_ok: false,
        exact_resource: false,
        issuer: IssuerRule::None,
        s256_when_present: false,
        needs_registration: false,
    };
    match family {
        Family::TsV1 => ts_v1,
        Family::TsV2 => Model {
            stops_on_5xx: false,
            issuer: IssuerRule::ExpectedSlash,
            ..ts_v1
        },
        Family::Browser => Model {
            browser: true,
            ..ts_v1
        },
        Family::Python => Model {
            follows_cross_origin: true,
            strict_null_prm: true,
            trailing_slash_ok: true,
            issuer: IssuerRule::Exact,
            needs_registration: true,
            ..lenient
        },
        Family::Rmcp => Model {
            rmcp: true,
            stops_on_5xx: true,
            trailing_slash_ok: true,
            issuer: IssuerRule::Exact,
            s256_when_present: true,
            ..lenient
        },
        Family::Vscode => Model {
            exact_resource: true,
            ..lenient
        },
    }
}

/// Runs every family's walk and builds the checklist.
pub fn evaluate(
    seen: &Observed,
    expect_issuer: Option<&str>,
    reachable: bool,
) -> (Vec<Check>, Vec<Verdict>) {
    if !reachable {
        return challenge::unreachable(seen);
    }
    let verdicts: Vec<Verdict> = Family::ALL
        .iter()
        .map(|&f| walk(seen, model(f), expect_issuer))
        .collect();
    let mut b = Builder { checks: Vec::new() };
    checklist(seen, expect_issuer, &mut b);
    let mut checks = b.checks;
    for v in &verdicts {
        if let Some(f) = &v.failure {
            debug_assert!(
                f.check.stops().contains(&v.family),
                "{} stops {:?}, which its table does not list",
                f.check,
                v.family
            );
            if !checks.iter().any(|c| c.id == f.check) {
                checks.push(Check {
                    id: f.check,
                    status: Status::Fail,
                    summary: f.reason.clone(),
                    details: Vec::new(),
                    fails: Vec::new(),
                    fix: None,
                });
            }
            let c = checks
                .iter_mut()
                .find(|c| c.id == f.check)
                .expect("just ensured");
            c.fails.push(v.family);
        }
    }
    for c in &mut checks {
        if !c.fails.is_empty() {
            c.status = Status::Fail;
        }
        if matches!(c.status, Status::Fail | Status::Warn) {
            c.fix = Some(c.id.fix());
        }
    }
    checks.sort_by_key(|c| c.id.step());
    (checks, verdicts)
}

/// One family's walk: its verdict, with the first check that stops it.
fn walk(seen: &Observed, m: Model, expect_issuer: Option<&str>) -> Verdict {
    let mut v = Verdict::new(m.family);
    if let Err(stop) = walk_steps(seen, &m, expect_issuer, &mut v) {
        v.failure = Some(Failure::at(stop));
    }
    v
}

fn walk_steps(
    seen: &Observed,
    m: &Model,
    expect_issuer: Option<&str>,
    v: &mut Verdict,
) -> Result<(), Stop> {
    let view = challenge::walk(seen, m, &mut v.notes)?;
    let (issuer_raw, issuer) = prm::walk(seen, m, &view, expect_issuer, v)?;
    let doc = as_metadata::walk(seen, m, &issuer_raw, &issuer, v)?;
    if m.browser {
        cors::browser_endpoints(seen, &doc)?;
    }
    challenge::walk_invalid_token(seen)
}

/// The checklist, step by step; each step passes on what the next one reads.
fn checklist(seen: &Observed, expect_issuer: Option<&str>, b: &mut Builder) {
    let ch = challenge::checklist(seen, b);
    let found = prm::checklist(seen, expect_issuer, &ch, b);
    let used = as_metadata::checklist(seen, found.first_issuer.as_deref(), b);
    cors::checklist(
        seen,
        found.primary.as_ref().map(|(u, _)| u),
        used.as_ref().map(|(u, r)| (u, *r)),
        b,
    );
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::probe::check::CheckId;

    /// Every check of the table is on the checklist once, under the step its id names, with a fix;
    /// here on a reachable endpoint that answered nothing, so every check is skipped or fails.
    #[test]
    fn every_check_once_under_its_step() {
        let mcp = url::Url::parse("https://gw.example.com/mcp").unwrap();
        let seen = Observed::new(mcp, "http://localhost:6274".to_owned());
        let (checks, verdicts) = evaluate(&seen, None, true);
        let ids: HashSet<CheckId> = checks.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), checks.len(), "a check is listed twice");
        assert_eq!(ids.len(), 43);
        for c in &checks {
            assert!(
                c.id.id().starts_with(&format!("{}.", c.id.step().id())),
                "{}",
                c.id
            );
            assert!(!c.id.fix().is_empty(), "{}", c.id);
        }
        assert!(checks.is_sorted_by_key(|c| c.id.step()));
        for v in &verdicts {
            let f = v.failure.as_ref().expect("nothing answered");
            assert_eq!(f.check, CheckId::ChallengeStatus);
            assert_eq!(f.fix, CheckId::ChallengeStatus.fix());
        }
    }
}
