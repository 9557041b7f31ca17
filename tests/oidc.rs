//! Complete logins against a real, certified OpenID provider (`oidc-provider` from npm, set up by
//! tests/e2e/oidc.mjs: path issuer, open dynamic registration, PKCE, resource indicators binding
//! the token to the MCP URL, RFC 9207 `iss` on every redirect) through nginx + signpost, with the
//! real MCP TypeScript and Python SDK clients: registration, authorization, token, `tools/list`
//! at the test backend, which accepts only tokens whose audience is the URL it was called at.
//!
//! * `delegate_logins_complete_against_oidc_provider`: a delegate server as written (`wiki`) and
//!   one with `"discover": true` (`big`), both SDKs.
//! * `facade_logins_complete_against_an_idp_that_sends_no_iss`: a facade (with discovery) in front
//!   of tests/e2e/test-idp.mjs, which puts no `iss` on its redirect: the case a facade is for.
//! * `check_online_says_a_facade_over_oidc_provider_fails`: what `check --online` says of the same
//!   provider behind a facade (RFC 9207 `iss` advertised: an error), and of the delegate.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

#[path = "common/e2e.rs"]
mod e2e;

use e2e::*;

/// `wiki`: a delegate server as most configs have it; `big`: the same with upstream discovery.
fn delegate_config(origin: &str, issuer: &str) -> String {
    json!({
        "public_url": origin,
        "servers": {
            SERVER: { "mode": "delegate", "issuer": issuer, "scopes": [SERVER_SCOPE] },
            BIG: { "mode": "delegate", "issuer": issuer, "scopes": [SERVER_SCOPE], "discover": true },
        },
    })
    .to_string()
}

/// `wiki`: a facade discovering its endpoints from the upstream; `big` as usual.
fn facade_config(origin: &str, issuer: &str) -> String {
    json!({
        "public_url": origin,
        "servers": {
            SERVER: { "mode": "facade", "issuer": issuer, "scopes": [SERVER_SCOPE], "discover": true },
            BIG: { "mode": "delegate", "issuer": issuer, "scopes": [SERVER_SCOPE] },
        },
    })
    .to_string()
}

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
            idp_script: Some("oidc.mjs"),
            config: Some(delegate_config),
            ..Options::default()
        },
    );
    let runs: Vec<(Sdk, String, Vec<&'static str>)> = [SERVER, BIG]
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
    let big = &status["upstreams"][BIG];
    assert!(big["source"].as_str().is_some(), "{status:#}");
    let codes: Vec<&str> = big["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    // oidc-provider's registration endpoint answers no CORS preflight: browsers cannot register.
    assert!(codes.contains(&"cors_registration"), "{codes:?}");
    assert!(!codes.contains(&"no_registration"), "{codes:?}");
    assert!(!codes.contains(&"issuer_mismatch"), "{codes:?}");
}

#[test]
fn facade_logins_complete_against_an_idp_that_sends_no_iss() {
    let stack = Stack::start_with(
        Proxy::Nginx,
        Options {
            config: Some(facade_config),
            ..Options::default()
        },
    );
    let facade_issuer = format!("{}/{SERVER}", stack.origin());
    wait_for(
        &stack,
        &format!("/.well-known/oauth-authorization-server/{SERVER}"),
    );
    let runs: Vec<(Sdk, String, Vec<&'static str>)> = Sdk::ALL
        .iter()
        .map(|sdk| (*sdk, stack.url(SERVER, SHAPES[0]), vec![]))
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
            idp_script: Some("oidc.mjs"),
            config: Some(facade_config),
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
        .find(&format!("\n{SERVER} (facade)"))
        .expect("facade")..];
    let facade = &facade[..facade[1..].find("\n\n").map_or(facade.len(), |i| i + 1)];
    assert!(
        facade.contains("error   iss_parameter_with_facade: "),
        "{facade}"
    );
    let delegate = &online[online
        .find(&format!("\n{BIG} (delegate)"))
        .expect("delegate")..];
    assert!(!delegate.contains("iss_parameter"), "{delegate}");
    // The config check itself says what a facade needs.
    assert!(
        stderr.contains("a facade works only with IdPs that do not put RFC 9207"),
        "{stderr}"
    );
}
