//! The URL allowlist (SSRF) and the downstream requests a model may make through an endpoint.

use super::{persistence, read_policy};
use crate::common::store;
use confab::guard::ScopeSet;
use confab::guard::capability::{Host, HostAllowlist, Method, RequestDenial, UrlDenial};
use confab::guard::provenance::{IdRejection, RequestContext, Untrusted, Validator};
use proptest::prelude::*;
use proptest::sample::select;

fn allowlist() -> HostAllowlist {
    let mut h = HostAllowlist::new();
    h.allow("docs.test")
        .and_then(|h| h.allow("127.0.0.1:8080"))
        .expect("constant hosts");
    h
}

/// The SSRF table: each URL and `ok` or the expected denial (by its stable name).
const URL_CASES: &[(&str, &str)] = &[
    ("http://docs.test/docs/1", "ok"),
    ("https://docs.test/docs/1?x=1#frag", "ok"),
    ("HTTP://DOCS.TEST/x", "ok"),
    ("http://docs.test:80/x", "ok"),
    ("https://docs.test:443", "ok"),
    ("http://127.0.0.1:8080/docs/doc-a1", "ok"),
    // Ports.
    ("http://docs.test:8080/", "undeclared_port"),
    ("http://docs.test:22/", "undeclared_port"),
    ("https://docs.test:80/", "undeclared_port"),
    ("http://127.0.0.1/", "undeclared_port"),
    ("http://127.0.0.1:8081/", "undeclared_port"),
    ("http://docs.test:/", "bad_port"),
    ("http://docs.test:0/", "bad_port"),
    ("http://docs.test:65536/", "bad_port"),
    ("http://docs.test:080/", "bad_port"),
    ("http://docs.test:8o/", "bad_port"),
    ("http://docs.test:+80/", "bad_port"),
    ("http://docs.test:80:80/", "invalid_host"),
    // Cloud metadata.
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata"),
    (
        "http://metadata.google.internal/computeMetadata/v1/",
        "metadata",
    ),
    ("http://METADATA.GOOGLE.INTERNAL/", "metadata"),
    ("http://100.100.100.200/latest/meta-data/", "metadata"),
    ("http://[::ffff:169.254.169.254]/", "metadata"),
    ("http://[::ffff:a9fe:a9fe]/", "metadata"),
    ("http://[64:ff9b::a9fe:a9fe]/", "metadata"),
    // Numeric IPv4 forms.
    ("http://2852039166/", "ambiguous_ipv4"),
    ("http://0xa9fea9fe/", "ambiguous_ipv4"),
    ("http://0251.0376.0251.0376/", "ambiguous_ipv4"),
    ("http://169.254.43518/", "ambiguous_ipv4"),
    ("http://2130706433/", "ambiguous_ipv4"),
    ("http://0177.0.0.1/", "ambiguous_ipv4"),
    ("http://0x7f.0.0.1/", "ambiguous_ipv4"),
    ("http://127.1/", "ambiguous_ipv4"),
    ("http://127.000.000.001/", "ambiguous_ipv4"),
    ("http://127.0.0.1.1/", "ambiguous_ipv4"),
    ("http://256.0.0.1/", "ambiguous_ipv4"),
    ("http://0/", "ambiguous_ipv4"),
    ("http://evil.test.0x7f/", "ambiguous_ipv4"),
    // Loopback.
    ("http://localhost/", "loopback"),
    ("http://LOCALHOST:8080/", "loopback"),
    ("http://foo.localhost/", "loopback"),
    ("http://127.0.0.2/", "loopback"),
    ("http://127.255.255.254:8080/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://[::1]:8080/", "loopback"),
    ("http://[0:0:0:0:0:0:0:1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]:8080/", "loopback"),
    ("http://[::ffff:7f00:1]/", "loopback"),
    ("http://[::127.0.0.1]/", "loopback"),
    // Private, link-local, unspecified.
    ("http://10.0.0.1/", "private_address"),
    ("http://172.16.0.1/", "private_address"),
    ("http://192.168.1.1/", "private_address"),
    ("http://100.64.0.1/", "private_address"),
    ("http://[fc00::1]/", "private_address"),
    ("http://[fd12:3456::1]/", "private_address"),
    ("http://169.254.1.1/", "link_local"),
    ("http://[fe80::1]/", "link_local"),
    ("http://0.0.0.0:8080/", "unspecified"),
    ("http://[::]/", "unspecified"),
    // IPv6 syntax.
    ("http://[fe80::1%25eth0]/", "bad_ipv6"),
    ("http://[::1/", "bad_ipv6"),
    ("http://[127.0.0.1]/", "bad_ipv6"),
    ("http://[::1]x/", "bad_port"),
    // Userinfo and authority confusion.
    ("http://docs.test@evil.test/", "user_info"),
    ("http://user:pass@docs.test/", "user_info"),
    ("http://docs.test%40evil.test/", "invalid_host"),
    ("http://evil.test#@docs.test/", "undeclared_host"),
    ("http://evil.test?@docs.test/", "undeclared_host"),
    ("http://evil.test/docs.test", "undeclared_host"),
    ("http://docs.test.evil.test/", "undeclared_host"),
    ("http://evildocs.test/", "undeclared_host"),
    ("http://docs.test\\@evil.test/", "invalid_char"),
    ("http://docs%2etest/", "invalid_host"),
    ("http://docs.test./", "invalid_host"),
    ("http://docs..test/", "invalid_host"),
    ("http://docs_test/", "invalid_host"),
    ("http://-docs.test/", "invalid_host"),
    ("http://xn--dcs-tdd.test/", "undeclared_host"),
    ("http://d\u{43e}cs.test/", "invalid_char"),
    ("http://ｄｏｃｓ.test/", "invalid_char"),
    // Whitespace and control characters.
    ("http://docs.test /", "invalid_char"),
    ("http://docs.test\t/", "invalid_char"),
    (" http://docs.test/", "invalid_char"),
    ("http://docs.test/\r\nHost: evil.test", "invalid_char"),
    ("http://docs.test/\0", "invalid_char"),
    // Schemes and missing authority.
    ("ftp://docs.test/", "bad_scheme"),
    ("file:///etc/passwd", "bad_scheme"),
    ("gopher://docs.test:70/_x", "bad_scheme"),
    ("dict://127.0.0.1:11211/", "bad_scheme"),
    ("javascript:alert(1)", "bad_scheme"),
    ("data:text/html,x", "bad_scheme"),
    ("httpx://docs.test/", "bad_scheme"),
    ("http:/docs.test/", "missing_authority"),
    ("http:docs.test", "missing_authority"),
    ("//docs.test/", "missing_authority"),
    ("/docs/doc-a1", "missing_authority"),
    ("docs.test", "missing_authority"),
    ("http:///docs.test/", "empty_host"),
    ("http://:80/", "empty_host"),
    ("http://", "empty_host"),
    // Everything else.
    ("http://evil.test/", "undeclared_host"),
    ("http://8.8.8.8/", "undeclared_host"),
    ("http://[2001:db8::1]/", "undeclared_host"),
];

#[test]
fn url_allowlist_table() {
    let h = allowlist();
    let mut failures = Vec::new();
    for (url, want) in URL_CASES {
        let got = match h.check(url) {
            Ok(_) => "ok",
            Err(d) => d.as_str(),
        };
        if got != *want {
            failures.push(format!("{url:?}: want {want}, got {got}"));
        }
        if *want != "ok" {
            assert!(
                UrlDenial::from_name(want).is_some(),
                "bad table name {want}"
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let too_long = format!("http://docs.test/{}", "a".repeat(2100));
    assert_eq!(h.check(&too_long), Err(UrlDenial::TooLong));
}

#[test]
fn declared_loopback_is_allowed() {
    let mut h = HostAllowlist::new();
    h.allow("localhost:8080")
        .and_then(|h| h.allow("[::1]:9000"))
        .and_then(|h| h.allow("169.254.169.254"))
        .expect("constant hosts");
    assert!(h.check("http://localhost:8080/x").is_ok());
    assert!(h.check("http://[::1]:9000/").is_ok());
    assert!(h.check("http://169.254.169.254/latest").is_ok());
    // Only the declared spelling: other loopback forms are still refused.
    assert_eq!(h.check("http://127.0.0.1:8080/"), Err(UrlDenial::Loopback));
    assert_eq!(
        h.check("http://[::ffff:127.0.0.1]:8080/"),
        Err(UrlDenial::Loopback)
    );
    assert_eq!(h.check("http://2852039166/"), Err(UrlDenial::AmbiguousIpv4));
}

#[test]
fn allowlist_deserializes() {
    let h: HostAllowlist =
        serde_json::from_str(r#"["docs.test", "127.0.0.1:8080"]"#).expect("valid");
    assert_eq!(h, allowlist());
    assert!(serde_json::from_str::<HostAllowlist>(r#"["user@docs.test"]"#).is_err());
    assert!(serde_json::from_str::<HostAllowlist>(r#"["2130706433"]"#).is_err());
}

#[test]
fn allowed_url_parts() {
    let u = allowlist()
        .check("HTTPS://Docs.Test/a/b?q=1#frag")
        .expect("allowed");
    assert_eq!(u.host(), &Host::Name("docs.test".into()));
    assert_eq!(u.port(), 443);
    assert_eq!(u.path(), "/a/b");
    assert_eq!(u.query(), Some("q=1"));
    assert_eq!(u.to_string(), "https://docs.test/a/b?q=1");
    let u = allowlist().check("http://docs.test").expect("allowed");
    assert_eq!(u.path(), "/");
}

#[test]
fn downstream_requests() {
    let p = read_policy();
    let store = store();
    let ctx = RequestContext::new("alice");
    let pv = p.privilege(
        &ScopeSet::parse("docs:read docs:write"),
        Validator::new(&store, &ctx),
    );
    let ok = pv
        .authorize_downstream(
            Method::Get,
            Untrusted::from_llm("http://127.0.0.1:8080/docs/doc-a1"),
        )
        .expect("allowed");
    assert_eq!(ok.path(), "/docs/doc-a1");
    assert_eq!(ok.params()["id"].as_str(), "doc-a1");
    assert_eq!(ok.scope(), "docs:read");
    assert_eq!(
        ok.url().map(ToString::to_string).as_deref(),
        Some("http://127.0.0.1:8080/docs/doc-a1")
    );
    let deny = |m: Method, url: &str| {
        pv.authorize_downstream(m, Untrusted::from_llm(url))
            .expect_err("denied")
    };
    assert!(matches!(
        deny(Method::Get, "http://evil.test/docs/doc-a1"),
        RequestDenial::Url(UrlDenial::UndeclaredHost)
    ));
    assert!(matches!(
        deny(Method::Get, "http://169.254.169.254/docs/doc-a1"),
        RequestDenial::Url(UrlDenial::Metadata)
    ));
    assert!(matches!(
        deny(Method::Delete, "http://127.0.0.1:8080/docs/doc-a1"),
        RequestDenial::NoCapability { .. }
    ));
    assert!(matches!(
        deny(Method::Get, "http://127.0.0.1:8080/admin"),
        RequestDenial::NoCapability { .. }
    ));
    assert!(matches!(
        deny(Method::Get, "http://127.0.0.1:8080/docs/doc-a1?owner=bob"),
        RequestDenial::NoCapability { .. }
    ));
    match deny(Method::Get, "http://127.0.0.1:8080/docs/doc-b1") {
        RequestDenial::Id { error, .. } => assert_eq!(error.reason(), IdRejection::NotPermitted),
        other => panic!("{other:?}"),
    }
    match deny(Method::Get, "http://127.0.0.1:8080/docs/%2e%2e%2fadmin") {
        RequestDenial::Id { error, .. } => {
            assert_eq!(error.reason(), IdRejection::PercentEncoding)
        }
        other => panic!("{other:?}"),
    }
    assert!(
        pv.authorize_url(Untrusted::from_llm("https://docs.test/anything"))
            .is_ok()
    );
}

proptest! {
    #![proptest_config(persistence("proptest-regressions/capability.txt"))]

    /// Random and assembled URLs: no panic, and anything allowed has a declared host and port
    /// and re-parses to itself.
    #[test]
    fn urls_allowed_only_for_declared_hosts(
        url in prop_oneof![
            any::<String>(),
            "\\PC{0,60}",
            (
                select(vec!["http", "https", "HTTP", "ftp", "http:", "http:/"]),
                select(vec!["", "user@", "docs.test@", "a:b@"]),
                select(vec![
                    "docs.test", "DOCS.test", "docs.test.", "evil.test", "127.0.0.1", "127.1",
                    "2130706433", "0x7f000001", "[::1]", "[::ffff:127.0.0.1]", "localhost",
                    "169.254.169.254", "0.0.0.0", "docs.test.evil.test", "",
                ]),
                select(vec!["", ":80", ":443", ":8080", ":0", ":99999", ":"]),
                select(vec!["", "/", "/docs/doc-a1", "?q", "#f", "/\\x", "/a b"]),
            )
                .prop_map(|(s, u, h, p, rest)| format!("{s}://{u}{h}{p}{rest}")),
        ]
    ) {
        let h = allowlist();
        if let Ok(u) = h.check(&url) {
            let declared = matches!(
                (u.host(), u.port()),
                (Host::Name(n), 80 | 443) if n == "docs.test"
            ) || matches!(
                (u.host(), u.port()),
                (Host::V4(a), 8080) if a.octets() == [127, 0, 0, 1]
            );
            prop_assert!(declared, "{} allowed as {}", url, u);
            prop_assert_eq!(h.check(&u.to_string()), Ok(u));
        }
    }
}
