//! The loopback and private address rules, written once: which hosts count as loopback (plain
//! http is allowed there) and which addresses are private (clients such as rmcp and hosted
//! connectors refuse an authorization server there). A leaf: it imports nothing of this crate.

use std::net::IpAddr;

use url::{Host, Url};

/// Whether a host name is `localhost` or under `.localhost` (RFC 6761 §6.3).
fn is_localhost_name(name: &str) -> bool {
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `url`'s host is `localhost` or a loopback address.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(d)) => is_localhost_name(d),
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether a host as written in a URL (`localhost`, `127.0.0.1`, `[::1]`) is loopback.
pub fn is_loopback_host(host: &str) -> bool {
    is_localhost_name(host)
        || host
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Loopback, private (RFC 1918 / unique local), link-local, unspecified, or shared address space
/// (RFC 6598, `100.64.0.0/10`); an IPv4-mapped IPv6 address by its IPv4 address.
pub fn is_private(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                // `Ipv4Addr::is_shared` is not stable yet.
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_private(&IpAddr::V4(v4)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.1",
            "172.16.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "febf::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(&ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "2606:4700::1111",
            "100.128.0.1",
            "fec0::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(&ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn loopback_hosts() {
        for url in [
            "http://localhost/x",
            "http://a.localhost:8080/",
            "http://127.0.0.1/",
            "http://127.9.9.9/",
            "http://[::1]:3000/",
        ] {
            assert!(is_loopback_url(&Url::parse(url).unwrap()), "{url}");
        }
        for url in [
            "http://example.com/",
            "http://10.0.0.1/",
            "http://[::2]/",
            "file:///x",
        ] {
            assert!(!is_loopback_url(&Url::parse(url).unwrap()), "{url}");
        }
        for host in ["localhost", "x.localhost", "127.0.0.1", "[::1]", "::1"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["localhost.example", "10.0.0.1", "[::2]", ""] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
