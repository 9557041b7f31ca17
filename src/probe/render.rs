//! The human checklist and the `--json` document (schema `signpost.probe/v1`, documented in
//! the README's "Diagnosing a deployment" section; fields are only ever added).

use std::fmt::Write;

use serde_json::{Value, json};

use super::check::Status;
use super::gather::Kind;
use super::{Family, Options, Report, Step};

pub const SCHEMA: &str = "signpost.probe/v1";

fn status_id(s: Status) -> &'static str {
    match s {
        Status::Pass => "pass",
        Status::Warn => "warn",
        Status::Fail => "fail",
        Status::Info => "info",
        Status::Skip => "skip",
    }
}

/// The `--json` document.
pub fn json(report: &Report, options: &Options) -> Value {
    let mut verdicts = serde_json::Map::new();
    for v in &report.verdicts {
        let f = v.failure.as_ref();
        verdicts.insert(
            v.family.id().to_owned(),
            json!({
                "name": v.family.name(),
                "result": if f.is_none() { "pass" } else { "fail" },
                "step": f.map(|f| f.check.step().id()),
                "check": f.map(|f| f.check.id()),
                "reason": f.map(|f| f.reason.as_str()),
                "fix": f.map(|f| f.fix),
                "prm": v.prm,
                "issuer": v.issuer,
                "as_metadata": v.as_metadata,
                "notes": v.notes,
            }),
        );
    }
    let checks: Vec<Value> = report
        .checks
        .iter()
        .map(|c| {
            json!({
                "id": c.id.id(),
                "step": c.id.step().id(),
                "status": status_id(c.status),
                "summary": c.summary,
                "details": c.details,
                "fails": c.fails.iter().map(|f| f.id()).collect::<Vec<_>>(),
                "fix": c.fix,
            })
        })
        .collect();
    let requests: Vec<Value> = report
        .seen
        .exchanges
        .iter()
        .map(|e| {
            let (status, error, final_url, redirects, www) = match &e.outcome {
                Ok(r) => (
                    Some(r.status),
                    None,
                    Some(r.final_url.to_string()),
                    r.redirects
                        .iter()
                        .map(|(a, b)| json!([a.as_str(), b.as_str()]))
                        .collect::<Vec<_>>(),
                    r.all("www-authenticate"),
                ),
                Err(err) => (None, Some(err.to_string()), None, Vec::new(), Vec::new()),
            };
            json!({
                "kind": e.kind,
                "description": e.kind.describe(),
                "method": match e.kind {
                    Kind::Post | Kind::CorsPost | Kind::FakeBearer => "POST",
                    Kind::McpPreflight | Kind::Preflight | Kind::PostPreflight => "OPTIONS",
                    _ => "GET",
                },
                "url": e.url.as_str(),
                "status": status,
                "error": error,
                "final_url": final_url,
                "redirects": redirects,
                "www_authenticate": www,
                "elapsed_ms": e.elapsed.as_millis() as u64,
            })
        })
        .collect();
    let passed = report
        .verdicts
        .iter()
        .filter(|v| v.failure.is_none())
        .count();
    json!({
        "schema": SCHEMA,
        "url": options.url.as_str(),
        "origin": options.origin,
        "expect_issuer": options.expect_issuer,
        "strict": options.strict,
        "warnings": report.warnings(),
        "reachable": report.reachable,
        "exit_code": report.exit_code().code(),
        "passed": passed,
        "families": Family::ALL.len(),
        "elapsed_ms": report.elapsed.as_millis() as u64,
        "budget_ms": options.timeout.as_millis() as u64,
        "verdicts": verdicts,
        "checks": checks,
        "requests": requests,
    })
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }

    fn status(&self, s: Status) -> String {
        match s {
            Status::Pass => self.wrap("32", " ok "),
            Status::Warn => self.wrap("33", "warn"),
            Status::Fail => self.wrap("1;31", "FAIL"),
            Status::Info => self.wrap("2", "info"),
            Status::Skip => self.wrap("2", "skip"),
        }
    }
}

/// The human checklist; ANSI colour only when `colour` (stdout is a terminal).
pub fn human(report: &Report, options: &Options, colour: bool) -> String {
    let p = Paint(colour);
    let mut out = String::new();
    let _ = writeln!(out, "signpost probe {}", options.url);
    let _ = writeln!(
        out,
        "  browser origin {} · {} requests in {:.1} s (budget {} s) · no credentials sent",
        options.origin,
        report.seen.exchanges.len(),
        report.elapsed.as_secs_f64(),
        options.timeout.as_secs()
    );
    for (n, step) in Step::ALL.iter().enumerate() {
        let checks: Vec<_> = report
            .checks
            .iter()
            .filter(|c| c.id.step() == *step)
            .collect();
        if checks.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}. {}", n + 1, p.wrap("1", step.title()));
        for c in checks {
            let _ = writeln!(out, "  {}  {:<28} {}", p.status(c.status), c.id, c.summary);
            for d in &c.details {
                let _ = writeln!(out, "        {:<28} {d}", "");
            }
            if !c.fails.is_empty() {
                let names: Vec<&str> = c.fails.iter().map(|f| f.name()).collect();
                let _ = writeln!(out, "        {:<28} stops: {}", "", names.join(", "));
            }
            if let Some(fix) = c.fix {
                let _ = writeln!(out, "        {:<28} fix: {fix}", "");
            }
        }
    }
    let _ = writeln!(out, "\n{}", p.wrap("1", "Verdicts"));
    for v in &report.verdicts {
        match &v.failure {
            None => {
                let _ = writeln!(
                    out,
                    "  {}  {:<28} PRM {} · AS metadata {}",
                    p.status(Status::Pass),
                    v.family.name(),
                    v.prm.as_deref().unwrap_or("?"),
                    v.as_metadata.as_deref().unwrap_or("?")
                );
            }
            Some(f) => {
                let _ = writeln!(
                    out,
                    "  {}  {:<28} at {} ({}): {}",
                    p.status(Status::Fail),
                    v.family.name(),
                    f.check,
                    f.check.step().title(),
                    f.reason
                );
                let _ = writeln!(out, "        {:<28} fix: {}", "", f.fix);
            }
        }
    }
    let passed = report
        .verdicts
        .iter()
        .filter(|v| v.failure.is_none())
        .count();
    let code = report.exit_code().code();
    let summary = match code {
        0 => p.wrap("32", &format!("all {passed} client families pass")),
        1 if passed == Family::ALL.len() => p.wrap(
            "1;31",
            &format!(
                "all {passed} client families pass, but {} check{} warn (--strict)",
                report.warnings(),
                if report.warnings() == 1 { "" } else { "s" }
            ),
        ),
        2 => p.wrap("1;31", "the MCP endpoint cannot be reached"),
        _ => p.wrap(
            "1;31",
            &format!("{passed} of {} client families pass", Family::ALL.len()),
        ),
    };
    let _ = writeln!(out, "\n{summary} (exit {code})");
    out
}
