//! A real LiteLLM proxy (1.108.14 from .venv/litellm, as installed: no prisma) with one MCP server
//! of each auth setting in LITELLM.md, imported with `signpost import litellm --online` and served
//! as imported, behind nginx rendered from deploy/nginx with the 5xx rescue:
//!
//! ```text
//!  login.mjs / login.py ──► nginx (render.sh --rescue-5xx) ──/.well-known/*──► signpost
//!                              └─/mcp/<s>, /<s>/mcp──► LiteLLM ──► upstream.py (MCP Python SDK
//!                                                                   server, resource server of the IdP)
//!                   ──► test-idp.mjs (issuer …/realms/eng, DCR, PKCE, introspection)
//! ```
//!
//! The TS and Python SDK clients complete the login and `tools/list` through LiteLLM for the three
//! bearer-forwarding settings at both of LiteLLM's URL shapes; the other settings behave as the
//! importer's warnings say. LiteLLM takes a minute or more to start on a loaded machine and ~300
//! MiB: it is started once for the whole file (one test), and every process is stopped by its PID.

#[path = "common/e2e.rs"]
mod e2e;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant};

use e2e::{Proc, Sdk, free_ports, http, python, repo, run_logins, status_of};
use serde_json::Value;

/// How long LiteLLM may take to answer its liveness probe (measured: 80 s on an idle 2-core
/// machine, 260 s at a load average of 30).
const LITELLM_READY: Duration = Duration::from_secs(420);
/// The servers whose logins must complete: LiteLLM forwards the client's token untouched.
const FORWARDING: [&str; 3] = ["delegated", "passthrough", "bridged"];
/// LiteLLM's two URL shapes.
const SHAPES: [&str; 2] = ["/mcp/{server}", "/{server}/mcp"];

fn litellm_config(upstream: &str, idp_port: u16, upstream_port: u16, token_url: &str) -> String {
    format!(
        r#"# tests/litellm.rs: one MCP server of each auth setting in LITELLM.md
litellm_settings:
  # LiteLLM's SSRF guard refuses its own metadata fetches to private hosts unless listed.
  user_url_allowed_hosts: ["127.0.0.1:{idp_port}", "127.0.0.1:{upstream_port}"]
general_settings:
  dangerously_permit_weak_or_unset_master_key: true
mcp_servers:
  delegated:
    url: {upstream}
    auth_type: oauth2
    oauth2_flow: authorization_code
    delegate_auth_to_upstream: true
  passthrough:
    url: {upstream}
    auth_type: true_passthrough
  bridged:
    url: {upstream}
    auth_type: true_passthrough
    dcr_bridge: true
  keyed:
    url: {upstream}
    auth_type: oauth_delegate
  managed:
    url: {upstream}
    auth_type: oauth2
    oauth2_flow: authorization_code
    client_id: litellm-test-client
    client_secret: os.environ/LITELLM_TEST_CLIENT_SECRET
  machine:
    url: {upstream}
    auth_type: oauth2
    oauth2_flow: client_credentials
    client_id: litellm-m2m
    client_secret: os.environ/LITELLM_TEST_CLIENT_SECRET
    token_url: {token_url}
  keyless:
    url: {upstream}
    auth_type: none
"#
    )
}

#[test]
fn litellm_behind_nginx_and_the_imported_signpost() {
    let litellm_bin = repo().join(".venv/litellm/bin/litellm");
    assert!(
        litellm_bin.exists(),
        "{} is missing; run `.ci/install` (it installs tests/litellm/requirements.txt into .venv/litellm)",
        litellm_bin.display()
    );
    assert!(
        repo().join("deploy/nginx/run.sh").exists(),
        "deploy/nginx/run.sh is missing: the nginx configuration of DESIGN §8 has not landed"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let [port, signpost_port, admin_port, litellm_port] = free_ports();
    let origin = format!("http://127.0.0.1:{port}");

    // The IdP and the upstream MCP server (which accepts tokens for the gateway's URLs only).
    let mut idp = Proc::spawn(
        "idp",
        Command::new("node").current_dir(e2e::e2e_dir()).args([
            "test-idp.mjs",
            "--port",
            "0",
            "--realm",
            e2e::REALM,
        ]),
        d,
    );
    let ready = idp.ready_line();
    let idp_port = ready["port"].as_u64().expect("idp port") as u16;
    let issuer = ready["issuer"].as_str().expect("issuer").to_owned();
    let mut upstream_cmd = Command::new(python());
    upstream_cmd
        .arg(repo().join("tests/litellm/upstream.py"))
        .args([
            "--issuer",
            &issuer,
            "--introspect",
            &format!("{issuer}/protocol/openid-connect/token/introspect"),
        ]);
    for server in FORWARDING.iter().chain(&["keyed"]) {
        for shape in SHAPES {
            upstream_cmd
                .arg("--audience")
                .arg(format!("{origin}{}", shape.replace("{server}", server)));
        }
    }
    let mut upstream = Proc::spawn("upstream", &mut upstream_cmd, d);
    let upstream_port = upstream.ready_line()["port"].as_u64().expect("port") as u16;
    let upstream_url = format!("http://127.0.0.1:{upstream_port}/mcp");

    // LiteLLM, started first: it is by far the slowest to come up.
    let config = d.join("config.yaml");
    fs::write(
        &config,
        litellm_config(
            &upstream_url,
            idp_port,
            upstream_port,
            &format!("{issuer}/protocol/openid-connect/token"),
        ),
    )
    .expect("write LiteLLM config");
    let mut litellm = Proc::spawn(
        "litellm",
        Command::new(&litellm_bin)
            .args(["--config", "config.yaml", "--host", "127.0.0.1"])
            .args(["--port", &litellm_port.to_string()])
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("LITELLM_TEST_CLIENT_SECRET", "not-a-real-secret")
            .current_dir(d),
        d,
    );

    // Step 1: the import, exactly as an operator runs it.
    let import = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args([
            "import",
            "litellm",
            "config.yaml",
            "--public-url",
            &origin,
            "--online",
        ])
        .current_dir(d)
        .output()
        .expect("run signpost import");
    let stdout = String::from_utf8(import.stdout).expect("utf-8");
    let stderr = String::from_utf8(import.stderr).expect("utf-8");
    assert_eq!(import.status.code(), Some(0), "import failed:\n{stderr}");
    let imported: Value = serde_json::from_str(&stdout).expect("the import prints JSON");
    for server in FORWARDING.iter().chain(&["keyed"]) {
        assert_eq!(
            imported["servers"][server],
            serde_json::json!({"mode": "delegate", "issuer": issuer}),
            "{server}: {stdout}"
        );
    }
    assert_eq!(imported["servers"]["managed"]["mode"], "gateway");
    assert_eq!(imported["servers"]["machine"]["mode"], "none");
    assert_eq!(imported["servers"]["keyless"]["mode"], "none");
    assert!(!stdout.contains("not-a-real-secret") && !stdout.contains("os.environ"));
    // The warnings: exactly one per server signpost cannot make work (and a note for the machine
    // client); the other lines are upstream discovery's notes about the loopback IdP.
    let remarks: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("upstream private_host"))
        .collect();
    assert_eq!(remarks.len(), 3, "{stderr}");
    assert!(remarks[0].starts_with("config.yaml:22:16: mcp_servers.keyed: warning: auth_type oauth_delegate: LiteLLM also requires its own key (x-litellm-api-key)"), "{stderr}");
    assert!(remarks[1].starts_with("config.yaml:25:16: mcp_servers.managed: warning: auth_type oauth2 without delegate_auth_to_upstream: LiteLLM is the authorization server (mode gateway)"), "{stderr}");
    assert!(
        remarks[1].contains(&format!("register {origin}/callback at the IdP")),
        "{stderr}"
    );
    assert!(
        remarks[2].starts_with(
            "config.yaml:31:16: mcp_servers.machine: note: oauth2_flow client_credentials"
        ),
        "{stderr}"
    );

    // Step 2: deploy — signpost with the imported file unchanged, nginx rendered with the rescue.
    fs::write(d.join("signpost.json"), &stdout).expect("write signpost.json");
    let mut signpost = Proc::spawn(
        "signpost",
        Command::new(env!("CARGO_BIN_EXE_signpost")).args([
            "serve",
            "--config",
            d.join("signpost.json").to_str().expect("utf-8"),
            "--listen",
            &format!("127.0.0.1:{signpost_port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin_port}"),
        ]),
        d,
    );
    e2e::wait_until("signpost", &mut signpost, || {
        status_of(admin_port, "/readyz") == Some(200)
    });
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let rendered = d.join("nginx");
    let status = Command::new(repo().join("deploy/render.sh"))
        .arg("--rescue-5xx")
        .arg("nginx")
        .arg(&rendered)
        .args([
            addr(port),
            addr(litellm_port),
            addr(signpost_port),
            addr(admin_port),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run deploy/render.sh");
    assert!(status.success(), "deploy/render.sh nginx failed");
    let mut nginx = Proc::spawn(
        "nginx",
        Command::new(repo().join("deploy/nginx/run.sh")).arg(&rendered),
        d,
    );
    e2e::wait_until("nginx", &mut nginx, || {
        status_of(
            port,
            "/.well-known/oauth-protected-resource/mcp/passthrough",
        ) == Some(200)
    });

    // LiteLLM up (bounded; its output on failure).
    let started = Instant::now();
    loop {
        litellm.check_alive();
        if status_of(litellm_port, "/health/liveliness") == Some(200) {
            break;
        }
        assert!(
            started.elapsed() < LITELLM_READY,
            "LiteLLM not ready after {LITELLM_READY:?}:\n{}",
            litellm.output()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("LiteLLM ready after {:?}", started.elapsed());

    // The login of every bearer-forwarding setting, at both URL shapes, with both SDKs.
    let mut runs = Vec::new();
    for server in FORWARDING {
        for shape in SHAPES {
            for sdk in Sdk::ALL {
                runs.push((
                    sdk,
                    format!("{origin}{}", shape.replace("{server}", server)),
                    vec![],
                ));
            }
        }
    }
    let keyed_url = format!("{origin}/mcp/keyed");
    runs.push((Sdk::Ts, keyed_url.clone(), vec![]));
    // A few at a time: LiteLLM is one Python process, and on a loaded 2-core machine a dozen
    // concurrent logins through it outlast the drivers' deadline.
    let reports: Vec<Value> = runs.chunks(3).flat_map(run_logins).collect();
    let logs = || {
        format!(
            "--- litellm ---\n{}\n--- nginx ---\n{}\n--- upstream ---\n{}",
            tail(&litellm.output()),
            tail(&nginx.output()),
            tail(&upstream.output())
        )
    };
    for ((sdk, url, _), report) in runs.iter().zip(&reports) {
        if *url == keyed_url {
            continue;
        }
        let path = url.strip_prefix(&origin).expect("our URL");
        assert_eq!(
            report["ok"],
            true,
            "{sdk:?} {url}: the login through LiteLLM failed:\n{report:#}\n{}",
            logs()
        );
        assert_eq!(
            e2e::s(report, "/hint/resource_metadata"),
            format!("{origin}/.well-known/oauth-protected-resource{path}"),
            "{sdk:?} {url}"
        );
        assert!(
            report["tools"].as_array().is_some_and(|t| t
                .iter()
                .any(|n| n.as_str().is_some_and(|n| n.ends_with("echo")))),
            "{sdk:?} {url}: tools/list did not reach the upstream (LiteLLM swallows its 401 into an empty list):\n{report:#}\n{}",
            logs()
        );
    }
    // oauth_delegate: discovery and the login work, then LiteLLM refuses the MCP calls — what
    // the importer's warning says.
    let keyed = reports.last().expect("the keyed report");
    assert_eq!(keyed["ok"], false, "{keyed:#}");
    assert_eq!(keyed["token_obtained"], true, "{keyed:#}");

    // Mode none: no PRM; LiteLLM-managed OAuth: signpost's gateway document with LiteLLM's endpoints.
    for server in ["machine", "keyless"] {
        assert_eq!(
            status_of(
                port,
                &format!("/.well-known/oauth-protected-resource/mcp/{server}")
            ),
            Some(404),
            "{server}"
        );
    }
    let managed = http(
        port,
        "GET",
        "/.well-known/oauth-authorization-server/managed",
        &[],
        "",
    )
    .expect("managed AS metadata");
    assert_eq!(managed.status, 200);
    let doc = managed.json();
    assert_eq!(doc["issuer"], format!("{origin}/managed"));
    assert_eq!(
        doc["authorization_endpoint"],
        format!("{origin}/managed/authorize")
    );
    // LiteLLM's own route behind it exists (nginx sends it to LiteLLM).
    let authorize = http(port, "GET", "/managed/authorize", &[], "").expect("authorize");
    assert_ne!(authorize.status, 404, "{authorize:?}");
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().rev().take(40).collect();
    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
}
