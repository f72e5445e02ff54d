//! URL checks: a strict parser of our own and the exact host allowlist ([`HostAllowlist`]),
//! with the typed reason a URL was refused ([`UrlDenial`]).

use std::collections::BTreeSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Deserialize;

/// Why a URL was refused. Syntax reasons come first; then, for a well-formed URL whose host
/// is not declared, what kind of host it is (all are refused alike; the class tells the
/// report what the model was reaching for).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, thiserror::Error)]
#[non_exhaustive]
pub enum UrlDenial {
    /// Longer than [`MAX_URL_LEN`].
    #[error("URL too long")]
    TooLong,
    /// Whitespace, control characters, non-ASCII or `\`: parsers disagree on these (WHATWG
    /// strips tabs and newlines, turns `\` into `/`), so they are refused rather than
    /// normalized.
    #[error("invalid character in URL")]
    InvalidChar,
    /// A scheme other than `http` or `https` (`file:`, `gopher:`, `javascript:`, ...).
    #[error("scheme not allowed")]
    BadScheme,
    /// No `scheme://authority` (relative URLs, `http:/host`, `http:host`).
    #[error("URL has no authority")]
    MissingAuthority,
    /// `user:pass@` in the authority (`http://docs.test@evil.test/`).
    #[error("userinfo in URL")]
    UserInfo,
    /// An empty host (`http:///x`, `http://:80/`).
    #[error("empty host")]
    EmptyHost,
    /// A port that is empty, not decimal, has leading zeros, or is out of 1..=65535.
    #[error("invalid port")]
    BadPort,
    /// A host name that is not lowercase-able LDH labels (percent-encoding, `_`, empty
    /// labels, trailing dot, over 253 bytes).
    #[error("invalid host")]
    InvalidHost,
    /// A numeric host that is not a canonical dotted quad: decimal (`2130706433`), octal
    /// (`0177.0.0.1`), hex (`0x7f.1`), short (`127.1`) forms.
    #[error("ambiguous IPv4 form")]
    AmbiguousIpv4,
    /// A bracketed IPv6 literal that does not parse (including zone ids).
    #[error("invalid IPv6 literal")]
    BadIpv6,
    /// Undeclared loopback: `localhost`, `*.localhost`, `127.0.0.0/8`, `::1`, mapped forms.
    #[error("loopback host not declared")]
    Loopback,
    /// Undeclared cloud metadata endpoint (`169.254.169.254`, `fd00:ec2::254`,
    /// `metadata.google.internal`, `100.100.100.200`).
    #[error("metadata host not declared")]
    Metadata,
    /// Undeclared link-local address (`169.254.0.0/16`, `fe80::/10`).
    #[error("link-local host not declared")]
    LinkLocal,
    /// Undeclared private address (RFC 1918, `100.64.0.0/10`, `fc00::/7`).
    #[error("private address not declared")]
    PrivateAddress,
    /// Undeclared unspecified or "this network" address (`0.0.0.0/8`, `::`).
    #[error("unspecified address")]
    Unspecified,
    /// Any other host that is not declared.
    #[error("host not declared")]
    UndeclaredHost,
    /// The host is declared, but not with this port.
    #[error("port not declared for host")]
    UndeclaredPort,
}

impl UrlDenial {
    /// A stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            UrlDenial::TooLong => "too_long",
            UrlDenial::InvalidChar => "invalid_char",
            UrlDenial::BadScheme => "bad_scheme",
            UrlDenial::MissingAuthority => "missing_authority",
            UrlDenial::UserInfo => "user_info",
            UrlDenial::EmptyHost => "empty_host",
            UrlDenial::BadPort => "bad_port",
            UrlDenial::InvalidHost => "invalid_host",
            UrlDenial::AmbiguousIpv4 => "ambiguous_ipv4",
            UrlDenial::BadIpv6 => "bad_ipv6",
            UrlDenial::Loopback => "loopback",
            UrlDenial::Metadata => "metadata",
            UrlDenial::LinkLocal => "link_local",
            UrlDenial::PrivateAddress => "private_address",
            UrlDenial::Unspecified => "unspecified",
            UrlDenial::UndeclaredHost => "undeclared_host",
            UrlDenial::UndeclaredPort => "undeclared_port",
        }
    }

    /// The variant named `name`, if any (for tables of expected outcomes).
    pub fn from_name(name: &str) -> Option<UrlDenial> {
        use UrlDenial::*;
        [
            TooLong,
            InvalidChar,
            BadScheme,
            MissingAuthority,
            UserInfo,
            EmptyHost,
            BadPort,
            InvalidHost,
            AmbiguousIpv4,
            BadIpv6,
            Loopback,
            Metadata,
            LinkLocal,
            PrivateAddress,
            Unspecified,
            UndeclaredHost,
            UndeclaredPort,
        ]
        .into_iter()
        .find(|d| d.as_str() == name)
    }
}

/// Maximum URL length.
pub const MAX_URL_LEN: usize = 2048;

/// A URL scheme confab lets through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// `http`.
    Http,
    /// `https`.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// A parsed host: a lowercase DNS name, or an IP literal in canonical form.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A DNS name, lowercase, without a trailing dot.
    Name(String),
    /// An IPv4 literal.
    V4(Ipv4Addr),
    /// An IPv6 literal (written in brackets in a URL).
    V6(Ipv6Addr),
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::V4(a) => write!(f, "{a}"),
            Host::V6(a) => write!(f, "[{a}]"),
        }
    }
}

/// Parses `host[:port]` (no scheme, no userinfo). Strict: see [`UrlDenial`].
fn parse_authority(auth: &str) -> Result<(Host, Option<u16>), UrlDenial> {
    if auth.contains('@') {
        return Err(UrlDenial::UserInfo);
    }
    let (host, port) = if let Some(inner) = auth.strip_prefix('[') {
        let Some((v6, after)) = inner.split_once(']') else {
            return Err(UrlDenial::BadIpv6);
        };
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or(UrlDenial::BadPort)?),
        };
        let addr = Ipv6Addr::from_str(v6).map_err(|_| UrlDenial::BadIpv6)?;
        (Host::V6(addr), port)
    } else {
        let (h, port) = match auth.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (auth, None),
        };
        (parse_host_name(h)?, port)
    };
    let port = port.map(parse_port).transpose()?;
    Ok((host, port))
}

fn parse_port(p: &str) -> Result<u16, UrlDenial> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) || p.starts_with('0') {
        return Err(UrlDenial::BadPort);
    }
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(UrlDenial::BadPort),
    }
}

fn parse_host_name(h: &str) -> Result<Host, UrlDenial> {
    if h.is_empty() {
        return Err(UrlDenial::EmptyHost);
    }
    if h.len() > 253 || h.contains(['[', ']', ':']) {
        return Err(UrlDenial::InvalidHost);
    }
    let lower = h.to_ascii_lowercase();
    let labels: Vec<&str> = lower.split('.').collect();
    // WHATWG parses a host whose last label is numeric ("ends in a number") as IPv4 in any of
    // its historic forms; only the canonical dotted quad is accepted here.
    let last = labels.last().copied().unwrap_or_default();
    let numeric = |l: &str| {
        !l.is_empty()
            && (l.bytes().all(|b| b.is_ascii_digit())
                || l.strip_prefix("0x")
                    .is_some_and(|x| x.bytes().all(|b| b.is_ascii_hexdigit())))
    };
    if numeric(last) {
        let canonical = labels.len() == 4
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 3
                    && l.bytes().all(|b| b.is_ascii_digit())
                    && (l.len() == 1 || !l.starts_with('0'))
                    && l.parse::<u8>().is_ok()
            });
        if !canonical {
            return Err(UrlDenial::AmbiguousIpv4);
        }
        let addr = Ipv4Addr::from_str(&lower).map_err(|_| UrlDenial::AmbiguousIpv4)?;
        return Ok(Host::V4(addr));
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !labels.iter().all(|l| label_ok(l)) {
        return Err(UrlDenial::InvalidHost);
    }
    Ok(Host::Name(lower))
}

fn classify_v4(a: Ipv4Addr) -> UrlDenial {
    let o = a.octets();
    if a.is_loopback() {
        UrlDenial::Loopback
    } else if a == Ipv4Addr::new(169, 254, 169, 254) || a == Ipv4Addr::new(100, 100, 100, 200) {
        UrlDenial::Metadata
    } else if a.is_link_local() {
        UrlDenial::LinkLocal
    } else if a.is_private() || (o[0] == 100 && (o[1] & 0xc0) == 64) {
        UrlDenial::PrivateAddress
    } else if o[0] == 0 {
        UrlDenial::Unspecified
    } else {
        UrlDenial::UndeclaredHost
    }
}

fn classify(host: &Host) -> UrlDenial {
    match host {
        Host::Name(n) => {
            if n == "localhost" || n.ends_with(".localhost") {
                UrlDenial::Loopback
            } else if n == "metadata.google.internal" || n == "metadata" {
                UrlDenial::Metadata
            } else {
                UrlDenial::UndeclaredHost
            }
        }
        Host::V4(a) => classify_v4(*a),
        Host::V6(a) => {
            let s = a.segments();
            if a.is_loopback() {
                UrlDenial::Loopback
            } else if a.is_unspecified() {
                UrlDenial::Unspecified
            } else if let Some(v4) = a.to_ipv4_mapped() {
                classify_v4(v4)
            } else if s[..6] == [0; 6] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // IPv4-compatible (deprecated) and NAT64 forms embed an IPv4 address.
                let [a1, a2, b1, b2] = [s[6] >> 8, s[6] & 0xff, s[7] >> 8, s[7] & 0xff];
                classify_v4(Ipv4Addr::new(a1 as u8, a2 as u8, b1 as u8, b2 as u8))
            } else if *a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                UrlDenial::Metadata
            } else if (s[0] & 0xffc0) == 0xfe80 {
                UrlDenial::LinkLocal
            } else if (s[0] & 0xfe00) == 0xfc00 {
                UrlDenial::PrivateAddress
            } else {
                UrlDenial::UndeclaredHost
            }
        }
    }
}

/// A URL that passed the allowlist: scheme, canonical host, effective port, path and query
/// (the fragment, never sent to a server, is dropped). Only [`HostAllowlist::check`] makes
/// one; `Display` writes the normalized URL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AllowedUrl {
    scheme: Scheme,
    host: Host,
    port: u16,
    path: String,
    query: Option<String>,
}

impl AllowedUrl {
    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The canonical host.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The effective port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The path (at least `/`).
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The query without `?`, if any.
    pub fn query(&self) -> Option<&str> {
        self.query.as_deref()
    }
}

impl fmt::Display for AllowedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme.as_str(), self.host)?;
        if self.port != self.scheme.default_port() {
            write!(f, ":{}", self.port)?;
        }
        f.write_str(&self.path)?;
        if let Some(q) = &self.query {
            write!(f, "?{q}")?;
        }
        Ok(())
    }
}

/// The hosts an endpoint may reach, matched exactly (host and port) after a strict parse.
///
/// A strict parser of our own rather than the `url` crate: `url` implements WHATWG, which
/// *normalizes* the tricks (decimal and octal IPv4, `\` as `/`, stripped tabs) into something
/// that may then match; here every such form is refused outright, so the guard and whatever
/// parser the target uses cannot disagree about an accepted URL.
///
/// An entry without a port allows only the scheme's default port (80/443): declaring
/// `docs.test` does not open `docs.test:22`.
///
/// Deserializes from a list of entries: `hosts = ["docs.test", "127.0.0.1:8080"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct HostAllowlist {
    entries: BTreeSet<(Host, Option<u16>)>,
}

impl TryFrom<Vec<String>> for HostAllowlist {
    type Error = UrlDenial;
    fn try_from(v: Vec<String>) -> Result<Self, UrlDenial> {
        let mut h = HostAllowlist::new();
        for e in &v {
            h.allow(e)?;
        }
        Ok(h)
    }
}

impl HostAllowlist {
    /// An empty allowlist: no URL passes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares `host` or `host:port` (`docs.test`, `127.0.0.1:8080`, `[::1]:9000`).
    pub fn allow(&mut self, authority: &str) -> Result<&mut Self, UrlDenial> {
        if authority.is_empty()
            || authority.len() > MAX_URL_LEN
            || !authority
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
        {
            return Err(UrlDenial::InvalidChar);
        }
        let (host, port) = parse_authority(authority)?;
        self.entries.insert((host, port));
        Ok(self)
    }

    /// True when no host is declared.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Parses `url` strictly and accepts it only if its host and port are declared.
    pub fn check(&self, url: &str) -> Result<AllowedUrl, UrlDenial> {
        if url.len() > MAX_URL_LEN {
            return Err(UrlDenial::TooLong);
        }
        if !url
            .bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
        {
            return Err(UrlDenial::InvalidChar);
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            // `http:/x`, `http:x`, `javascript:...`, `file:...`, relative references.
            return Err(match url.split_once(':') {
                Some((s, _)) if !s.contains(['/', '?', '#']) && !is_http(s) => UrlDenial::BadScheme,
                _ => UrlDenial::MissingAuthority,
            });
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            _ => return Err(UrlDenial::BadScheme),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() {
            return Err(UrlDenial::EmptyHost);
        }
        let (host, port) = parse_authority(authority)?;
        let effective = port.unwrap_or(scheme.default_port());
        let declared = self
            .entries
            .iter()
            .any(|(h, p)| h == &host && p.unwrap_or(scheme.default_port()) == effective);
        if !declared {
            if self.entries.iter().any(|(h, _)| h == &host) {
                return Err(UrlDenial::UndeclaredPort);
            }
            return Err(classify(&host));
        }
        let tail = tail.split_once('#').map_or(tail, |(t, _)| t);
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (tail, None),
        };
        Ok(AllowedUrl {
            scheme,
            host,
            port: effective,
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            query,
        })
    }
}

fn is_http(s: &str) -> bool {
    s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https")
}
