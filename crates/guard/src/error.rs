//! Why the guard refused a request, and how that maps onto RFC 6750 §3.

use std::fmt;

/// Every reason the guard refuses a request. The snake_case names from
/// [`Rejection::as_str`] are stable: they appear in `confab verify` output, audit lines and
/// the labels of generated tokens.
///
/// The guard checks in the order of the variants below (header syntax, size, structure,
/// header parameters, key selection, signature, claims, scope) and reports the first rule that
/// fails, so each generated token family has exactly one expected reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rejection {
    /// No `Authorization` header: 401 with a bare `WWW-Authenticate: Bearer` challenge and no
    /// error code (RFC 6750 §3.1).
    MissingCredentials,
    /// An `Authorization` header with a scheme other than `Bearer`: treated as no bearer
    /// credentials (RFC 6750 §3.1: no error code).
    UnsupportedScheme,
    /// The header is not `Bearer 1*SP b64token` (RFC 6750 §2.1: empty or non-b64token
    /// credential, trailing data, control characters, invalid UTF-8): 400 `invalid_request`.
    MalformedHeader,
    /// More than one `Authorization` header: 400 `invalid_request` (RFC 6750 §3.1: a request
    /// that uses more than one credential).
    MultipleCredentials,
    /// The credential exceeds the size cap; refused before any decoding. No RFC sets a size:
    /// the cap bounds the work an attacker can cause (RFC 8725 §3 treats every input as hostile).
    Oversized,
    /// Not three base64url segments of JSON objects (RFC 7515 §7.1 compact serialization,
    /// RFC 7519 §7.2: bad base64, padding, extra or missing segments, invalid JSON).
    MalformedToken,
    /// A JOSE header or claims set with a duplicate member name (RFC 7515 §4, RFC 7519 §4).
    DuplicateMember,
    /// `alg` is `none` in any spelling (RFC 8725 §3.2).
    AlgNone,
    /// A `crit` header parameter: no extension is understood (RFC 7515 §4.1.11).
    UnsupportedCrit,
    /// `jwk`, `jku`, `x5u` or `x5c` in the header (RFC 7515 §4.1.2–4.1.6): keys never come
    /// from the token (RFC 8725 §3.10: do not trust received claims).
    KeyInHeader,
    /// A `kid` (RFC 7515 §4.1.4) that is not in the configured key map, or no `kid` where only
    /// a map exists: the key is chosen by configuration, never by the token (RFC 8725 §3.1).
    UnknownKid,
    /// `alg` differs from the algorithm pinned to the selected key (RFC 8725 §3.1).
    AlgMismatch,
    /// `typ` is not the required type (RFC 9068 §4, RFC 8725 §3.11).
    TypMismatch,
    /// The signature does not verify with the pinned key (RFC 7515 §5.2, step 8).
    BadSignature,
    /// A registered claim has the wrong JSON type, e.g. a NumericDate that is a string
    /// (RFC 7519 §2 and §4.1).
    ClaimType,
    /// No `exp` claim (required in an access token: RFC 9068 §2.2).
    MissingExp,
    /// `exp` is in the past, beyond the leeway (RFC 7519 §4.1.4).
    Expired,
    /// `nbf` is in the future, beyond the leeway (RFC 7519 §4.1.5).
    NotYetValid,
    /// `iss` missing or different from the configured issuer (RFC 7519 §4.1.1, RFC 9068 §4,
    /// RFC 8725 §3.8).
    IssuerMismatch,
    /// `aud` missing or not containing the configured audience (RFC 7519 §4.1.3, RFC 9068 §4,
    /// RFC 8725 §3.9).
    AudienceMismatch,
    /// No `sub` claim (or the configured subject claim), or an empty one (RFC 9068 §2.2).
    MissingSub,
    /// A claim the app binds to the caller's session (`[auth] bound_claims`, e.g. a
    /// `session_stamp`) is missing or differs from the one the caller's login was issued. An
    /// application rule rather than an RFC one: a resource server may check more than RFC 9068
    /// §4 lists, and this is the check a logout or a password change relies on.
    SessionMismatch,
    /// Valid token, but its scopes do not include the endpoint's: 403 `insufficient_scope`
    /// (RFC 6750 §3.1; scope tokens compared exactly, RFC 8693 §4.2).
    InsufficientScope,
}

impl Rejection {
    /// Every rejection, in the order the guard checks.
    pub const ALL: [Rejection; 23] = [
        Rejection::MissingCredentials,
        Rejection::UnsupportedScheme,
        Rejection::MalformedHeader,
        Rejection::MultipleCredentials,
        Rejection::Oversized,
        Rejection::MalformedToken,
        Rejection::DuplicateMember,
        Rejection::AlgNone,
        Rejection::UnsupportedCrit,
        Rejection::KeyInHeader,
        Rejection::UnknownKid,
        Rejection::AlgMismatch,
        Rejection::TypMismatch,
        Rejection::BadSignature,
        Rejection::ClaimType,
        Rejection::MissingExp,
        Rejection::Expired,
        Rejection::NotYetValid,
        Rejection::IssuerMismatch,
        Rejection::AudienceMismatch,
        Rejection::MissingSub,
        Rejection::SessionMismatch,
        Rejection::InsufficientScope,
    ];

    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MissingCredentials => "missing_credentials",
            Rejection::UnsupportedScheme => "unsupported_scheme",
            Rejection::MalformedHeader => "malformed_header",
            Rejection::MultipleCredentials => "multiple_credentials",
            Rejection::Oversized => "oversized",
            Rejection::MalformedToken => "malformed_token",
            Rejection::DuplicateMember => "duplicate_member",
            Rejection::AlgNone => "alg_none",
            Rejection::AlgMismatch => "alg_mismatch",
            Rejection::UnsupportedCrit => "unsupported_crit",
            Rejection::KeyInHeader => "key_in_header",
            Rejection::UnknownKid => "unknown_kid",
            Rejection::TypMismatch => "typ_mismatch",
            Rejection::BadSignature => "bad_signature",
            Rejection::ClaimType => "claim_type",
            Rejection::MissingExp => "missing_exp",
            Rejection::Expired => "expired",
            Rejection::NotYetValid => "not_yet_valid",
            Rejection::IssuerMismatch => "issuer_mismatch",
            Rejection::AudienceMismatch => "audience_mismatch",
            Rejection::MissingSub => "missing_sub",
            Rejection::SessionMismatch => "session_mismatch",
            Rejection::InsufficientScope => "insufficient_scope",
        }
    }

    /// Parses a name from [`Rejection::as_str`].
    pub fn from_name(name: &str) -> Option<Rejection> {
        Rejection::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The RFC 6750 §3.1 error code, or `None` where the RFC says to send none (the
    /// request carried no bearer credentials at all).
    pub fn error_code(self) -> Option<&'static str> {
        match self {
            Rejection::MissingCredentials | Rejection::UnsupportedScheme => None,
            Rejection::MalformedHeader | Rejection::MultipleCredentials => Some("invalid_request"),
            Rejection::InsufficientScope => Some("insufficient_scope"),
            _ => Some("invalid_token"),
        }
    }

    /// The HTTP status RFC 6750 §3.1 prescribes.
    pub fn status(self) -> u16 {
        match self.error_code() {
            None | Some("invalid_token") => 401,
            Some("invalid_request") => 400,
            _ => 403,
        }
    }

    /// True for failures that only the issuer could produce (the token verified, but a
    /// policy claim is off), as opposed to forgeries and garbage.
    pub fn is_policy_claim(self) -> bool {
        matches!(
            self,
            Rejection::ClaimType
                | Rejection::MissingExp
                | Rejection::Expired
                | Rejection::NotYetValid
                | Rejection::IssuerMismatch
                | Rejection::AudienceMismatch
                | Rejection::MissingSub
                | Rejection::SessionMismatch
                | Rejection::InsufficientScope
        )
    }

    /// The `WWW-Authenticate` value for this rejection (RFC 6750 §3). `required_scope` is
    /// named for `insufficient_scope`. Nothing here ever contains any part of the token.
    pub fn www_authenticate(self, realm: &str, required_scope: Option<&str>) -> String {
        let mut v = format!("Bearer realm=\"{}\"", quote_safe(realm));
        if let Some(code) = self.error_code() {
            v.push_str(&format!(", error=\"{code}\""));
            v.push_str(&format!(", error_description=\"{}\"", self.as_str()));
            if self == Rejection::InsufficientScope
                && let Some(scope) = required_scope
            {
                v.push_str(&format!(", scope=\"{}\"", quote_safe(scope)));
            }
        }
        v
    }
}

/// Keeps a value legal inside an RFC 7230 quoted-string (drops `"`, `\` and controls).
fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '"' && *c != '\\' && (' '..='~').contains(c))
        .collect()
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for Rejection {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for r in Rejection::ALL {
            assert_eq!(Rejection::from_name(r.as_str()), Some(r));
        }
        let mut names: Vec<_> = Rejection::ALL.iter().map(|r| r.as_str()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Rejection::ALL.len());
    }

    #[test]
    fn statuses_follow_rfc_6750() {
        assert_eq!(Rejection::MissingCredentials.status(), 401);
        assert_eq!(Rejection::MissingCredentials.error_code(), None);
        assert_eq!(Rejection::MalformedHeader.status(), 400);
        assert_eq!(Rejection::BadSignature.status(), 401);
        assert_eq!(Rejection::InsufficientScope.status(), 403);
        assert_eq!(
            Rejection::MissingCredentials.www_authenticate("api", None),
            "Bearer realm=\"api\""
        );
        assert!(
            Rejection::InsufficientScope
                .www_authenticate("api", Some("docs:write"))
                .ends_with("scope=\"docs:write\"")
        );
    }
}
