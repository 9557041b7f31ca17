//! Unit tests of the AS metadata step: host classes, and rmcp's private-host rule on hand-made
//! observations.

use std::collections::HashMap;

use url::Url;

use super::host_class;
use crate::probe::Family;
use crate::probe::check::Status;
use crate::probe::eval::evaluate;
use crate::probe::gather::{Kind, Observed, Outcome, Resp};

fn u(s: &str) -> Url {
    Url::parse(s).unwrap()
}

#[test]
fn private_hosts() {
    let none = HashMap::new();
    assert_eq!(host_class(&u("http://localhost/x"), &none), (true, true));
    assert_eq!(host_class(&u("https://10.1.2.3/x"), &none), (true, false));
    assert_eq!(host_class(&u("https://[fd00::1]/x"), &none), (true, false));
    assert_eq!(host_class(&u("https://8.8.8.8/x"), &none), (false, false));
    let mut addrs = HashMap::new();
    addrs.insert("sso.corp".to_owned(), vec!["192.168.1.5".parse().unwrap()]);
    assert_eq!(host_class(&u("https://sso.corp/x"), &addrs), (true, false));
    assert_eq!(
        host_class(&u("https://unknown.example/x"), &addrs),
        (false, false)
    );
}

/// rmcp rejects an authorization server on a private host when the MCP host is not loopback;
/// built from hand-made observations since a test cannot put an MCP URL on a public host.
#[test]
fn private_authorization_server_fails_rmcp_only() {
    let mcp = u("https://gw.example.com/mcp/x/mcp");
    let mut seen = Observed::new(mcp.clone(), "http://localhost:6274".to_owned());
    seen.addrs.insert(
        "gw.example.com".to_owned(),
        vec!["203.0.113.7".parse().unwrap()],
    );
    let resp = |url: &Url, status: u16, headers: &[(&str, &str)], body: &str| -> Outcome {
        Ok(Resp {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: bytes::Bytes::from(body.to_owned()),
            final_url: url.clone(),
            redirects: Vec::new(),
        })
    };
    let cors = [
        ("access-control-allow-origin", "*"),
        ("access-control-allow-headers", "*, authorization"),
        ("access-control-expose-headers", "WWW-Authenticate"),
        ("content-type", "application/json"),
    ];
    let prm_url = u("https://gw.example.com/.well-known/oauth-protected-resource/mcp/x/mcp");
    let challenge = format!("Bearer resource_metadata=\"{prm_url}\"");
    let mut h401: Vec<(&str, &str)> = cors.to_vec();
    h401.push(("www-authenticate", &challenge));
    for k in [Kind::Post, Kind::Get, Kind::CorsPost] {
        seen.insert(k, &mcp, resp(&mcp, 401, &h401, "{}"), Default::default());
    }
    seen.insert(
        Kind::McpPreflight,
        &mcp,
        resp(&mcp, 204, &cors, ""),
        Default::default(),
    );
    let prm = r#"{"resource":"https://gw.example.com/mcp/x/mcp","authorization_servers":["https://10.0.0.5/realms/eng"]}"#;
    for k in [Kind::Modern, Kind::Legacy, Kind::CorsGet] {
        seen.insert(
            k,
            &prm_url,
            resp(&prm_url, 200, &cors, prm),
            Default::default(),
        );
    }
    seen.insert(
        Kind::Preflight,
        &prm_url,
        resp(&prm_url, 204, &cors, ""),
        Default::default(),
    );
    let as_url = u("https://10.0.0.5/.well-known/oauth-authorization-server/realms/eng");
    let as_doc = r#"{"issuer":"https://10.0.0.5/realms/eng","authorization_endpoint":"https://10.0.0.5/realms/eng/auth","token_endpoint":"https://10.0.0.5/realms/eng/token","registration_endpoint":"https://10.0.0.5/realms/eng/reg","response_types_supported":["code"],"code_challenge_methods_supported":["S256"]}"#;
    for k in [Kind::Modern, Kind::CorsGet] {
        seen.insert(
            k,
            &as_url,
            resp(&as_url, 200, &cors, as_doc),
            Default::default(),
        );
    }
    seen.insert(
        Kind::Preflight,
        &as_url,
        resp(&as_url, 204, &cors, ""),
        Default::default(),
    );
    let (checks, verdicts) = evaluate(&seen, None, true);
    for v in &verdicts {
        let got = v.failure.as_ref().map(|f| f.check.id());
        let want = if v.family == Family::Rmcp {
            Some("as.private_host")
        } else {
            None
        };
        assert_eq!(got, want, "{:?}: {:?}", v.family, v.failure);
    }
    let c = checks
        .iter()
        .find(|c| c.id.id() == "as.private_host")
        .unwrap();
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.fails, vec![Family::Rmcp]);
}
