//! The attack catalogue: every token family and what making one takes.

/// The attack catalogue: every family of token the generators make, each with what a correct
/// guard decides for it and what making it takes ([`TokenFamily::made_by`], from which a
/// finding's severity follows). The names (snake_case via [`TokenFamily::name`]) are stable:
/// reports and corpus files use them.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    arbitrary::Arbitrary,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TokenFamily {
    /// A valid token for the principal, as the issuer mints it: the baseline every other family is
    /// compared with.
    Valid,
    /// A valid token whose `aud` is an array that contains ours (RFC 7519 §4.1.3): must be
    /// accepted.
    ValidAudienceArray,
    /// A valid token under a legal spelling of the header: `bearer`, `BEARER`, several spaces,
    /// surrounding whitespace (RFC 6750 §2.1, RFC 9110 §11.1): must be accepted.
    ValidHeaderVariant,
    /// A valid token carrying its scopes as an `scp` array (a common, non-standard convention)
    /// instead of RFC 8693's `scope` string.
    ValidScpArray,
    /// A valid token with more scopes than the endpoint needs (`docs:admin`, `*`, …): accepted, and
    /// the extra scopes must grant nothing beyond what they name.
    Overscoped,
    /// No `Authorization` header at all: must be refused with 401 and a bare `WWW-Authenticate:
    /// Bearer` (RFC 6750 §3.1).
    MissingHeader,
    /// The holder's valid token moved to the URL (`?access_token=`, RFC 6750 §2.3), which the guard
    /// does not accept and access logs print.
    TokenInQuery,
    /// The holder's valid token under another scheme word (`Token`, `JWT`, `Basic`): not a Bearer
    /// credential.
    OtherScheme,
    /// `Bearer` with nothing, or only spaces, after it: a malformed request (400).
    EmptyCredential,
    /// The holder's valid token after a tab instead of a space: RFC 6750's grammar allows only
    /// spaces.
    TabSeparator,
    /// The holder's valid token followed by more text (`extra`, a second credential, a `;`): a
    /// malformed header.
    TrailingData,
    /// The holder's valid token sent in two `Authorization` headers: a request must carry one
    /// credential (RFC 6750 §2).
    DuplicateHeaders,
    /// The holder's valid token with control characters in the header (CR LF and another header,
    /// NUL, ESC).
    HeaderInjection,
    /// An issuer-signed token past the guard's size cap (8 KiB by default): refused before any
    /// decoding.
    Oversized,
    /// An unsigned token, `alg` `none` in any spelling (RFC 8725 §3.1): a forgery anyone can make.
    AlgNone,
    /// A valid token with its signature removed or emptied: a forgery.
    StrippedSignature,
    /// A token signed with the attacker's own key, or minted for another principal's identity: a
    /// forgery.
    WrongKey,
    /// A valid token whose claims were changed (another `sub`, more scopes) after signing: the
    /// signature no longer matches.
    TamperedPayload,
    /// RS→HS key confusion: an HS256 token whose HMAC key is the issuer's public RSA key (RFC 8725
    /// §2.1).
    AlgConfusion,
    /// An ES256 token whose signature is r = s = 0 (CVE-2022-21449, "psychic signatures").
    EcdsaZeroSignature,
    /// A token signed with the attacker's key and carrying that key in its `jwk` header
    /// (CVE-2018-0114).
    EmbeddedJwk,
    /// A token whose `jku` or `x5u` header points at the attacker's host for its key (RFC 8725
    /// §3.10).
    RemoteKeyUrl,
    /// A `kid` header with path traversal (`../../dev/null`), for guards that read keys from files.
    KidTraversal,
    /// A `kid` header carrying SQL or shell injection, for guards that look keys up in a database
    /// or run commands.
    KidInjection,
    /// An issuer-signed token with a `crit` header naming an extension nobody understands (RFC 7515
    /// §4.1.11: must be refused).
    UnknownCrit,
    /// An issuer-signed token of the wrong type (`typ` `JWT`, `id_token+jwt`, …): refused where the
    /// spec requires `at+jwt` (RFC 9068).
    TypConfusion,
    /// An issuer-signed token past its `exp`, beyond the leeway (RFC 7519 §4.1.4).
    Expired,
    /// An issuer-signed token whose `nbf` is in the future, beyond the leeway (RFC 7519 §4.1.5).
    NotYetValid,
    /// An issuer-signed token with no `exp`: RFC 8725 §3.10 wants a lifetime on every access token.
    MissingExp,
    /// An issuer-signed token whose `exp`/`nbf`/`iat` is a numeric string, not a JSON number (RFC
    /// 7519 §2).
    StringNumericDate,
    /// An issuer-signed token with another `iss` than the spec's issuer.
    WrongIssuer,
    /// An issuer-signed token with no `iss` where the spec names an issuer.
    MissingIssuer,
    /// An issuer-signed token for another audience (`aud`): a token meant for another API.
    WrongAudience,
    /// An issuer-signed token with no `aud` where the spec names an audience.
    MissingAudience,
    /// An issuer-signed token without the claim that names the caller (`sub`, or `[auth]
    /// subject_claim`).
    MissingSub,
    /// An issuer-signed token whose payload repeats a member (two `sub`s): parsers that keep
    /// different duplicates disagree on who it is for (RFC 7515 §5.2).
    DuplicateClaim,
    /// A signed token whose JOSE header repeats `alg` (the second one `none`).
    DuplicateHeaderMember,
    /// The holder's valid token with a character outside base64url (`+`, `/`, `~`) in a segment.
    BadBase64,
    /// The holder's valid token with `=` padding on its segments (RFC 7515 §2 forbids it).
    PaddedSegments,
    /// Two, four or more segments instead of three: not a JWS at all.
    WrongSegmentCount,
    /// An issuer-signed token whose header or payload is not a JSON object.
    NotJson,
    /// Scopes joined by commas (`docs:read,docs:write`): RFC 8693 §4.2 separates them by spaces, so
    /// this is one unknown scope.
    ScopeCommaSeparated,
    /// `scope` as a JSON array: RFC 8693 §4.2 makes it a string, so the token is malformed.
    ScopeArray,
    /// A wildcard scope (`*`, `docs:*`): scopes are compared exactly, so it grants nothing.
    ScopeWildcard,
    /// The required scope in another case (`DOCS:READ`): scopes are case-sensitive.
    ScopeCaseChanged,
    /// A scope that only starts or ends like the required one (`docs:readonly`, `docs`,
    /// `xdocs:read`).
    ScopePrefix,
    /// The required scope spelled with look-alike characters (Cyrillic `о`, full-width `：`).
    ScopeHomoglyph,
    /// A token with an empty scope: it grants nothing, so every scoped endpoint must refuse it
    /// (403).
    ScopeMissing,
    /// A login's token with a claim bound to the session (`[auth] bound_claims`) changed or
    /// removed, re-signed with the issuer's key.
    SessionClaimChanged,
}

impl TokenFamily {
    /// Every family, in declaration order: what [`super::token_recipe`] draws from and what
    /// reports list.
    pub const ALL: [TokenFamily; 49] = [
        TokenFamily::Valid,
        TokenFamily::ValidAudienceArray,
        TokenFamily::ValidHeaderVariant,
        TokenFamily::ValidScpArray,
        TokenFamily::Overscoped,
        TokenFamily::MissingHeader,
        TokenFamily::TokenInQuery,
        TokenFamily::OtherScheme,
        TokenFamily::EmptyCredential,
        TokenFamily::TabSeparator,
        TokenFamily::TrailingData,
        TokenFamily::DuplicateHeaders,
        TokenFamily::HeaderInjection,
        TokenFamily::Oversized,
        TokenFamily::AlgNone,
        TokenFamily::StrippedSignature,
        TokenFamily::WrongKey,
        TokenFamily::TamperedPayload,
        TokenFamily::AlgConfusion,
        TokenFamily::EcdsaZeroSignature,
        TokenFamily::EmbeddedJwk,
        TokenFamily::RemoteKeyUrl,
        TokenFamily::KidTraversal,
        TokenFamily::KidInjection,
        TokenFamily::UnknownCrit,
        TokenFamily::TypConfusion,
        TokenFamily::Expired,
        TokenFamily::NotYetValid,
        TokenFamily::MissingExp,
        TokenFamily::StringNumericDate,
        TokenFamily::WrongIssuer,
        TokenFamily::MissingIssuer,
        TokenFamily::WrongAudience,
        TokenFamily::MissingAudience,
        TokenFamily::MissingSub,
        TokenFamily::DuplicateClaim,
        TokenFamily::DuplicateHeaderMember,
        TokenFamily::BadBase64,
        TokenFamily::PaddedSegments,
        TokenFamily::WrongSegmentCount,
        TokenFamily::NotJson,
        TokenFamily::ScopeCommaSeparated,
        TokenFamily::ScopeArray,
        TokenFamily::ScopeWildcard,
        TokenFamily::ScopeCaseChanged,
        TokenFamily::ScopePrefix,
        TokenFamily::ScopeHomoglyph,
        TokenFamily::ScopeMissing,
        TokenFamily::SessionClaimChanged,
    ];

    /// The stable snake_case name.
    pub fn name(self) -> String {
        let debug = format!("{self:?}");
        let mut out = String::with_capacity(debug.len() + 4);
        for (i, c) in debug.chars().enumerate() {
            if c.is_ascii_uppercase() {
                if i > 0 {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }

    /// What making a token of this family takes (docs/ARCHITECTURE.md §4): the severity of
    /// a target accepting it follows from this. Matched exhaustively, so a new family must
    /// be classed before it compiles.
    pub fn made_by(self) -> MadeBy {
        use TokenFamily::*;
        match self {
            // Forgeries, garbage and no credential at all: anyone can make them.
            MissingHeader | EmptyCredential | AlgNone | StrippedSignature | WrongKey
            | TamperedPayload | AlgConfusion | EcdsaZeroSignature | EmbeddedJwk | RemoteKeyUrl
            | KidTraversal | KidInjection | WrongSegmentCount => MadeBy::Nothing,
            // The holder's own valid token, respelled or moved: accepting it gives the holder
            // nothing they did not have.
            TokenInQuery | OtherScheme | TabSeparator | TrailingData | DuplicateHeaders
            | HeaderInjection | BadBase64 | PaddedSegments => MadeBy::Holder,
            // Signed by the issuer's key: only the issuer (or a holder of an old one) has them.
            Valid
            | ValidAudienceArray
            | ValidHeaderVariant
            | ValidScpArray
            | Overscoped
            | Oversized
            | UnknownCrit
            | TypConfusion
            | Expired
            | NotYetValid
            | MissingExp
            | StringNumericDate
            | WrongIssuer
            | MissingIssuer
            | WrongAudience
            | MissingAudience
            | MissingSub
            | DuplicateClaim
            | DuplicateHeaderMember
            | NotJson
            | ScopeCommaSeparated
            | ScopeArray
            | ScopeWildcard
            | ScopeCaseChanged
            | ScopePrefix
            | ScopeHomoglyph
            | ScopeMissing
            // Signed by the issuer for another session: the binding ignored is a policy claim.
            | SessionClaimChanged => MadeBy::Issuer,
        }
    }

    /// The guard accepts this family only through a widespread but non-standard convention
    /// (`scp` arrays instead of RFC 8693's `scope`): a target that reads only the standard
    /// claim and refuses it is not wrong, so its refusal is no finding.
    pub(crate) fn accepted_by_convention_only(self) -> bool {
        self == TokenFamily::ValidScpArray
    }
}

/// What making a token takes: the classes severity is derived from (docs/ARCHITECTURE.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MadeBy {
    /// Nothing: anyone can make it (forged, unsigned, no credential, another's identity).
    Nothing,
    /// Only the token's own holder, from their own valid token (padding, another scheme word,
    /// the same token twice, moved to the URL).
    Holder,
    /// Only the issuer (expired, wrong `iss`/`aud`, string NumericDate, oversized, …).
    Issuer,
}

impl MadeBy {
    /// The stable snake_case label (the serde name) reports show.
    pub fn name(self) -> &'static str {
        match self {
            MadeBy::Nothing => "nothing",
            MadeBy::Holder => "holder",
            MadeBy::Issuer => "issuer",
        }
    }
}
