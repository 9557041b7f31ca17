//! Complete logins against a real, certified OpenID provider (`oidc-provider` from npm, set up by
//! tests/e2e/oidc-idp.mjs: path issuer, open dynamic registration, PKCE, resource indicators
//! binding the token to the MCP URL, RFC 9207 `iss` on every redirect) through nginx + signpost,
//! with the real MCP TypeScript and Python SDK clients: registration, authorization, token,
//! `tools/list` at the test backend, which accepts only tokens whose audience is the URL it was
//! called at. The stacks are tests/common/e2e.rs's.
//!
//! * `delegate_logins_complete_against_oidc_provider`: a delegate server as written (`wiki`) and
//!   one with `"discover": true` (`found`), both SDKs.
//! * `facade_logins_complete_against_an_idp_that_sends_no_iss`: the facade (`eng`) in front of
//!   tests/e2e/test-idp.mjs, which puts no `iss` on its redirect: the case a facade is for.
//! * `check_online_says_a_facade_over_oidc_provider_fails`: what `check --online` says of the same
//!   provider behind a facade (RFC 9207 `iss` advertised: an error), and of the delegate.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "common/e2e.rs"]
mod e2e;

use e2e::*;

/// What every completed login must show, whichever SDK made it.
fn assert_completed(stack: &Stack, report: &Value, url: &str, as_issuer: &str) {
    let ctx = || format!("report:\n{report:#}\n{}", stack.logs());
    assert_eq!(report["ok"], true, "the login did not complete; {}", ctx());
    assert_eq!(s(report, "/prm/body/resource"), url, "{}", ctx());
    assert_eq!(s(report, "/as_metadata/issuer"), as_issuer, "{}", ctx());
    let reg = &report["registration"];
    assert_eq!(reg["status"], 201, "registration; {}", ctx());
    let a = &report["authorizations"][0];
    assert_eq!(a["resource"], url, "RFC 8707 resource; {}", ctx());
    assert_eq!(a["code_challenge_method"], "S256", "{}", ctx());
    assert_eq!(
        scope_set(a["scope"].as_str().unwrap_or("")),
        scope_set(SERVER_SCOPE),
        "{}",
        ctx()
    );
    assert_eq!(a["code"], true, "no code on the redirect; {}", ctx());
    assert_eq!(report["token_obtained"], true, "{}", ctx());
    // The backend answered tools/list: it accepted a token whose audience is `url`.
    let tools = report["tools"].as_array().expect("tools");
    assert!(tools.iter().any(|t| t == "echo"), "{}", ctx());
}

/// Waits until `path` on the stack's origin answers 200 (a facade answers 503 until signpost
/// has fetched its upstream).
fn wait_for(stack: &Stack, path: &str) {
    let deadline = Instant::now() + READY_TIMEOUT;
    while stack.request("GET", path, &[], "").status != 200 {
        assert!(
            Instant::now() < deadline,
            "{path} never answered 200\n{}",
            stack.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn delegate_logins_complete_against_oidc_provider() {
    let stack = Stack::start_with(
        Proxy::Nginx,
        Options {
            idp: Idp::Oidc,
            ..Options::default()
        },
    );
    let runs: Vec<(Sdk, String, Vec<&'static str>)> = [SERVER, DISCOVERED]
        .iter()
        .flat_map(|server| Sdk::ALL.map(|sdk| (sdk, stack.url(server, SHAPES[0]), vec![])))
        .collect();
    let reports = run_logins(&runs);
    for ((sdk, url, _), report) in runs.iter().zip(&reports) {
        eprintln!("{sdk:?} login at {url}: {} s", report["seconds"]);
        assert_completed(&stack, report, url, &stack.issuer);
        // oidc-provider puts RFC 9207 `iss` on its redirect: its own issuer, which is what a
        // delegate's client recorded, so the check passes.
        let iss = &report["authorizations"][0]["iss"];
        assert!(
            iss.is_null() || iss == stack.issuer.as_str(),
            "{sdk:?}: iss {iss} on the redirect"
        );
        assert_eq!(
            report["prm"]["body"]["authorization_servers"],
            json!([stack.issuer])
        );
    }
    // The delegate with discovery reports what it found about oidc-provider.
    let status = http(stack.admin_port, "GET", "/status", &[], "")
        .expect("status")
        .json();
    let found = &status["upstreams"][DISCOVERED];
    assert!(found["source"].as_str().is_some(), "{status:#}");
    let errors: Vec<&Value> = found["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    // Every login above completed: nothing signpost found may claim otherwise.
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn facade_logins_complete_against_an_idp_that_sends_no_iss() {
    let stack = Stack::start(Proxy::Nginx);
    let facade_issuer = format!("{}/{FACADE}", stack.origin());
    wait_for(
        &stack,
        &format!("/.well-known/oauth-authorization-server/{FACADE}"),
    );
    let runs: Vec<(Sdk, String, Vec<&'static str>)> = Sdk::ALL
        .iter()
        .map(|sdk| (*sdk, stack.url(FACADE, SHAPES[0]), vec![]))
        .collect();
    let reports = run_logins(&runs);
    for ((sdk, url, _), report) in runs.iter().zip(&reports) {
        eprintln!("{sdk:?} facade login at {url}: {} s", report["seconds"]);
        assert_completed(&stack, report, url, &facade_issuer);
        assert_eq!(
            report["prm"]["body"]["authorization_servers"],
            json!([facade_issuer])
        );
        assert!(
            report["authorizations"][0]["iss"].is_null(),
            "{sdk:?}: this IdP sends no iss: {report:#}"
        );
    }
}

#[test]
fn check_online_says_a_facade_over_oidc_provider_fails() {
    let stack = Stack::start_with(
        Proxy::Nginx,
        Options {
            idp: Idp::Oidc,
            ..Options::default()
        },
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args(["check", "--online", "--config"])
        .arg(&stack.config)
        .output()
        .expect("run signpost check --online");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let online = &stdout[stdout.find("upstreams (online):").expect("online report")..];
    let facade = &online[online
        .find(&format!("\n{FACADE} (facade)"))
        .expect("facade")..];
    let facade = &facade[..facade[1..].find("\n\n").map_or(facade.len(), |i| i + 1)];
    assert!(
        facade.contains("error   iss_parameter_with_facade: "),
        "{facade}"
    );
    let delegate = &online[online
        .find(&format!("\n{SERVER} (delegate)"))
        .expect("delegate")..];
    let delegate = &delegate[..delegate[1..].find("\n\n").map_or(delegate.len(), |i| i + 1)];
    assert!(!delegate.contains("iss_parameter"), "{delegate}");
    // oidc-provider answers no preflight on its registration endpoint: browsers cannot register.
    assert!(
        delegate.contains("warning cors_registration: "),
        "{delegate}"
    );
    // The config check itself says what a facade needs.
    assert!(
        stderr.contains("a facade works only with IdPs that do not put RFC 9207"),
        "{stderr}"
    );
}
