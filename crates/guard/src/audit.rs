//! The audit log: one JSON line per guard decision, never holding a token.
//!
//! Every string field goes through the [`Scrubber`] before serialization, and the token the
//! decision was about is redacted from every field exactly (with its signature segment), so a
//! token smuggled into, say, `resource` never reaches the log. Scrubbing fields rather than the
//! finished line keeps the line valid JSON and also catches secrets that JSON escaping would
//! have disguised (a `"` or `\` inside a secret). The token is identified only by
//! `token_fingerprint`: the first 8 bytes of its SHA-256, in hex, enough to correlate lines
//! for one token and useless for replaying it.

use crate::error::Rejection;
use crate::scope::ScopeSet;
use crate::scrub::{Scrubber, marker};
use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// What the guard decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// The request (or the action) was allowed.
    Allow,
    /// The request (or the action) was refused.
    Deny,
}

/// One audit line. Field names are stable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// RFC 3339 UTC with milliseconds, e.g. `2026-05-01T12:00:00.123Z`.
    pub timestamp: String,
    /// The token's `sub`, when the token got that far.
    pub sub: Option<String>,
    /// The endpoint name from the target spec.
    pub endpoint: String,
    /// The action, e.g. `GET /docs/{id}` or a tool name.
    pub action: String,
    /// The resource acted on, if any.
    pub resource: Option<String>,
    /// The token's scopes, when known.
    pub scopes: Vec<String>,
    /// What the guard decided.
    pub decision: Decision,
    /// The HTTP status the guard answers with.
    pub status: u16,
    /// The rejection name ([`Rejection::as_str`]) or another short reason.
    pub reason: Option<String>,
    /// [`token_fingerprint`] of the presented token.
    pub token_fingerprint: Option<String>,
}

impl AuditRecord {
    /// A record stamped now.
    pub fn new(
        endpoint: impl Into<String>,
        action: impl Into<String>,
        decision: Decision,
        status: u16,
    ) -> Self {
        AuditRecord {
            timestamp: rfc3339_now(),
            sub: None,
            endpoint: endpoint.into(),
            action: action.into(),
            resource: None,
            scopes: Vec::new(),
            decision,
            status,
            reason: None,
            token_fingerprint: None,
        }
    }

    /// An allowed request (status 200).
    pub fn allow(endpoint: impl Into<String>, action: impl Into<String>) -> Self {
        AuditRecord::new(endpoint, action, Decision::Allow, 200)
    }

    /// A refused request, with the status and reason of `rejection`.
    pub fn deny(
        endpoint: impl Into<String>,
        action: impl Into<String>,
        rejection: Rejection,
    ) -> Self {
        let mut r = AuditRecord::new(endpoint, action, Decision::Deny, rejection.status());
        r.reason = Some(rejection.as_str().to_owned());
        r
    }

    /// Sets the principal (the token's `sub`).
    pub fn with_sub(mut self, sub: impl Into<String>) -> Self {
        self.sub = Some(sub.into());
        self
    }

    /// Sets the resource acted on.
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Sets the token's scopes.
    pub fn with_scopes(mut self, scopes: &ScopeSet) -> Self {
        self.scopes = scopes.iter().map(str::to_owned).collect();
        self
    }

    /// Sets the reason (a [`Rejection`] name or a short denial kind).
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the fingerprint of the presented token (the token itself is not kept).
    pub fn with_token(mut self, token: &Secret) -> Self {
        self.token_fingerprint = Some(token_fingerprint(token.expose()));
        self
    }
}

/// First 8 bytes of SHA-256 of the token, lower-case hex (16 characters).
pub fn token_fingerprint(token: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token);
    d.as_ref()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes audit records as JSON lines through a scrubber. Wrap a file in a `BufWriter` or
/// `LineWriter`; each record is one `write_all` of a whole line.
pub struct AuditLog<W: Write> {
    writer: W,
    scrubber: Scrubber,
}

impl<W: Write> std::fmt::Debug for AuditLog<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("scrubber", &self.scrubber)
            .finish_non_exhaustive()
    }
}

impl<W: Write> AuditLog<W> {
    /// An audit log writing JSON lines to `writer`; every line passes through `scrubber` first, so
    /// a token or key that reaches a field is redacted before it is written.
    pub fn new(writer: W, scrubber: Scrubber) -> Self {
        AuditLog { writer, scrubber }
    }

    /// Scrubs `record` (and removes `token`, raw and its signature segment, from every field),
    /// fills its fingerprint from `token` if unset, and writes one line.
    pub fn record(&mut self, record: &AuditRecord, token: Option<&Secret>) -> io::Result<()> {
        let line = self.line(record, token)?;
        self.writer.write_all(&line)
    }

    /// The line [`AuditLog::record`] writes, with its trailing newline.
    pub fn line(&self, record: &AuditRecord, token: Option<&Secret>) -> io::Result<Vec<u8>> {
        let token = token.map(Secret::expose).filter(|t| !t.is_empty());
        let clean = |s: &str| self.clean(s, token);
        let mut r = AuditRecord {
            timestamp: clean(&record.timestamp),
            sub: record.sub.as_deref().map(clean),
            endpoint: clean(&record.endpoint),
            action: clean(&record.action),
            resource: record.resource.as_deref().map(clean),
            scopes: record.scopes.iter().map(|s| clean(s)).collect(),
            decision: record.decision,
            status: record.status,
            reason: record.reason.as_deref().map(clean),
            token_fingerprint: record.token_fingerprint.as_deref().map(clean),
        };
        if r.token_fingerprint.is_none() {
            r.token_fingerprint = token.map(token_fingerprint);
        }
        let mut line = serde_json::to_vec(&r).map_err(io::Error::other)?;
        line.push(b'\n');
        Ok(line)
    }

    /// The writer, e.g. to read what a test logged.
    pub fn into_inner(self) -> W {
        self.writer
    }

    fn clean(&self, s: &str, token: Option<&[u8]>) -> String {
        let mut s = self.scrubber.scrub_str(s).0;
        if let Some(t) = token {
            let sig = t
                .rsplit(|b| *b == b'.')
                .next()
                .filter(|g| g.len() >= 8 && g.len() < t.len());
            for needle in std::iter::once(t).chain(sig) {
                if let Ok(n) = std::str::from_utf8(needle)
                    && s.contains(n)
                {
                    s = s.replace(n, &marker("bearer_token"));
                }
            }
        }
        s
    }
}

/// The current time as RFC 3339 UTC with milliseconds.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs(), d.subsec_millis())
}

/// Formats Unix seconds and milliseconds as RFC 3339 UTC (civil-from-days, H. Hinnant).
pub fn rfc3339(secs: u64, millis: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn fingerprint_is_sha256_prefix() {
        // SHA-256("abc") = ba7816bf8f01cfea...
        assert_eq!(token_fingerprint(b"abc"), "ba7816bf8f01cfea");
    }

    #[test]
    fn smuggled_token_is_redacted_and_line_is_json() {
        let token = Secret::from("opaque-token-value-123456");
        let scrubber = Scrubber::with_defaults().expect("default rules build");
        let log = AuditLog::new(Vec::new(), scrubber);
        let rec = AuditRecord::deny("read", "GET /docs/{id}", Rejection::BadSignature)
            .with_resource("doc-1?t=opaque-token-value-123456")
            .with_sub("alice \"quoted\"");
        let line = log.line(&rec, Some(&token)).expect("serializes");
        let text = String::from_utf8(line).expect("utf8");
        assert!(!text.contains("opaque-token-value-123456"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["decision"], "deny");
        assert_eq!(v["status"], 401);
        assert_eq!(v["reason"], "bad_signature");
        assert_eq!(v["token_fingerprint"], token_fingerprint(token.expose()));
        assert_eq!(v["resource"], "doc-1?t=[REDACTED:bearer_token]");
    }
}
