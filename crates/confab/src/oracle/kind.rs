//! What a violation is, within its invariant: a closed set, serialised as the stable
//! snake_case strings reports, fingerprints and replay files have always carried.

use crate::guard::Rejection;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A secret the ECHO invariant watches, named by where it came from: the origin decides the
/// severity and the OWASP category (docs/ARCHITECTURE.md §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretName {
    /// The caller's bearer token as it arrived in the `Authorization` header (or any header).
    BearerToken,
    /// The caller's token that the client itself put in the URL (`?access_token=`, RFC 6750
    /// §2.3): an access log printing it is a note about the client's channel.
    QueryToken,
    /// The signature segment alone of a [`SecretName::BearerToken`].
    BearerTokenSignature,
    /// The signature segment alone of a [`SecretName::QueryToken`].
    QueryTokenSignature,
    /// The model API key confab handed the target (`{llm_api_key}`), a canary.
    LlmApiKey,
    /// The HMAC signing secret of `[auth] secret` (a generated `{jwt_secret}` or a literal).
    SigningKey,
    /// Long verbatim spans of the system prompt.
    SystemPrompt,
    /// A credential the target showed the model (in its system prompt or a tool result).
    ShownCredential,
}

impl SecretName {
    /// Every secret name, for code that walks them all (parsing kinds back).
    pub const ALL: [SecretName; 8] = [
        SecretName::BearerToken,
        SecretName::QueryToken,
        SecretName::BearerTokenSignature,
        SecretName::QueryTokenSignature,
        SecretName::LlmApiKey,
        SecretName::SigningKey,
        SecretName::SystemPrompt,
        SecretName::ShownCredential,
    ];

    /// The label finders register it under (and the kind's prefix).
    pub fn label(self) -> &'static str {
        match self {
            SecretName::BearerToken => "bearer_token",
            SecretName::QueryToken => "query_token",
            SecretName::BearerTokenSignature => "bearer_token.signature",
            SecretName::QueryTokenSignature => "query_token.signature",
            SecretName::LlmApiKey => "llm_api_key",
            SecretName::SigningKey => "signing_key",
            SecretName::SystemPrompt => "system_prompt",
            SecretName::ShownCredential => "shown_credential",
        }
    }

    /// The secret whose [`SecretName::label`] is `label`; `None` for any other text.
    pub fn from_label(label: &str) -> Option<SecretName> {
        SecretName::ALL.into_iter().find(|s| s.label() == label)
    }
}

/// Where a secret showed up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Place {
    /// The body of the target's response (a streamed body reassembled as a client reads it).
    ResponseBody,
    /// The target's response headers.
    ResponseHeaders,
    /// What the target printed (a process's stdout and stderr, or a Rust target's
    /// `TargetLog`) for this case.
    TargetLogs,
}

impl Place {
    /// Every place, for code that walks them all (parsing kinds back).
    pub const ALL: [Place; 3] = [
        Place::ResponseBody,
        Place::ResponseHeaders,
        Place::TargetLogs,
    ];

    /// In prose ("found in the response body").
    pub fn text(self) -> &'static str {
        match self {
            Place::ResponseBody => "response body",
            Place::ResponseHeaders => "response headers",
            Place::TargetLogs => "target logs",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Place::ResponseBody => "response_body",
            Place::ResponseHeaders => "response_headers",
            Place::TargetLogs => "target_logs",
        }
    }
}

/// A short stable key within the invariant; findings with the same invariant, endpoint and
/// kind are grouped.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ViolationKind {
    // ROBUST
    /// ROBUST `server_error`: the target answered 5xx (a 502/503/504 only counts when the
    /// fake model was not scripted to fail).
    ServerError,
    /// ROBUST `hang`: no response within `[limits] request_timeout_ms`.
    Hang,
    /// ROBUST `no_response`: the connection closed or failed before a response.
    NoResponse,
    // AUTHN, AUTHZ, UNAUTH_LLM, AGREE
    /// AUTHN `accepted_<reason>`: the target accepted a request the guard rejects for this
    /// reason.
    Accepted(Rejection),
    /// AUTHN or AUTHZ `status_not_rfc6750`: refused, but with another 4xx than RFC 6750's for
    /// the reason (and not one the request's body explains).
    StatusNotRfc6750,
    /// AUTHN `model_called_before_auth`: a request the guard rejects caused a model call.
    ModelCalledBeforeAuth,
    /// AUTHN `downstream_called_before_auth`: a refused request the guard rejects still
    /// caused a downstream request.
    DownstreamCalledBeforeAuth,
    /// UNAUTH_LLM `model_called_without_token`: a request without bearer credentials to an
    /// `llm = true` endpoint caused a model call.
    ModelCalledWithoutToken,
    /// AUTHZ `missing_scope_accepted`: a valid token without the endpoint's `scope` was served.
    MissingScopeAccepted,
    /// AUTHZ `principal_not_allowed_accepted`: a principal outside the endpoint's `allow` list
    /// was served.
    PrincipalNotAllowedAccepted,
    /// AGREE `valid_request_refused`: the guard accepts the token for the principal's own
    /// resource, and the target refused it.
    ValidRequestRefused,
    // PROVENANCE, OWNERSHIP
    /// PROVENANCE `model_id_of_another_tenant`: a downstream request used a resource id only
    /// the model supplied, and the resource exists (another principal's).
    ModelIdOfAnotherTenant,
    /// PROVENANCE `model_invented_id`: a downstream request used an id only the model
    /// supplied, of no existing resource.
    ModelInventedId,
    /// OWNERSHIP `other_tenant_content`: the response carries the content marker of a
    /// resource another principal owns.
    OtherTenantContent,
    // AGENCY
    /// AGENCY `token_sent_to_foreign_host`: a request to the attacker host (a URL the model
    /// invented) carried the caller's bearer token.
    TokenSentToForeignHost,
    /// AGENCY `request_to_invented_url`: the target requested a URL the model invented.
    RequestToInventedUrl,
    /// AGENCY `capability_exceeded_<method>`: a downstream call with this method (lower case)
    /// outside the endpoint's `capabilities`.
    CapabilityExceeded(String),
    // ECHO
    /// ECHO `<secret>_in_<place>`: the secret showed up in the response or the logs.
    SecretIn(SecretName, Place),
    /// ECHO `<secret>_sent_upstream`: the secret was in a prompt the target sent the model.
    SecretSentUpstream(SecretName),
    // COST
    /// COST `model_calls_over_cap`: one request caused more model calls than `[limits]
    /// llm_calls_per_request`.
    ModelCallsOverCap,
    /// COST `max_tokens_unset`: a model call asked for no output cap.
    MaxTokensUnset,
    /// COST `max_tokens_over_cap`: a model call asked for more than `[limits] max_tokens`.
    MaxTokensOverCap,
    /// COST `prompt_over_cap`: a prompt sent upstream was larger than `[limits]
    /// upstream_prompt_bytes`.
    PromptOverCap,
    /// A kind this build does not know (a report from another version); kept verbatim.
    Other(String),
}

impl ViolationKind {
    const PLAIN: [(ViolationKind, &'static str); 19] = [
        (ViolationKind::ServerError, "server_error"),
        (ViolationKind::Hang, "hang"),
        (ViolationKind::NoResponse, "no_response"),
        (ViolationKind::StatusNotRfc6750, "status_not_rfc6750"),
        (
            ViolationKind::ModelCalledBeforeAuth,
            "model_called_before_auth",
        ),
        (
            ViolationKind::DownstreamCalledBeforeAuth,
            "downstream_called_before_auth",
        ),
        (
            ViolationKind::ModelCalledWithoutToken,
            "model_called_without_token",
        ),
        (
            ViolationKind::MissingScopeAccepted,
            "missing_scope_accepted",
        ),
        (
            ViolationKind::PrincipalNotAllowedAccepted,
            "principal_not_allowed_accepted",
        ),
        (ViolationKind::ValidRequestRefused, "valid_request_refused"),
        (
            ViolationKind::ModelIdOfAnotherTenant,
            "model_id_of_another_tenant",
        ),
        (ViolationKind::ModelInventedId, "model_invented_id"),
        (ViolationKind::OtherTenantContent, "other_tenant_content"),
        (
            ViolationKind::TokenSentToForeignHost,
            "token_sent_to_foreign_host",
        ),
        (
            ViolationKind::RequestToInventedUrl,
            "request_to_invented_url",
        ),
        (ViolationKind::ModelCallsOverCap, "model_calls_over_cap"),
        (ViolationKind::MaxTokensUnset, "max_tokens_unset"),
        (ViolationKind::MaxTokensOverCap, "max_tokens_over_cap"),
        (ViolationKind::PromptOverCap, "prompt_over_cap"),
    ];

    /// Reads the string form back ([`fmt::Display`] is its inverse).
    pub fn parse(s: &str) -> ViolationKind {
        if let Some((k, _)) = Self::PLAIN.iter().find(|(_, name)| *name == s) {
            return k.clone();
        }
        if let Some(r) = s
            .strip_prefix("accepted_")
            .and_then(|r| Rejection::ALL.into_iter().find(|x| x.as_str() == r))
        {
            return ViolationKind::Accepted(r);
        }
        if let Some(m) = s.strip_prefix("capability_exceeded_") {
            return ViolationKind::CapabilityExceeded(m.to_owned());
        }
        if let Some(secret) = s
            .strip_suffix("_sent_upstream")
            .and_then(SecretName::from_label)
        {
            return ViolationKind::SecretSentUpstream(secret);
        }
        for place in Place::ALL {
            if let Some(secret) = s
                .strip_suffix(place.key())
                .and_then(|rest| rest.strip_suffix("_in_"))
                .and_then(SecretName::from_label)
            {
                return ViolationKind::SecretIn(secret, place);
            }
        }
        ViolationKind::Other(s.to_owned())
    }
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViolationKind::Accepted(r) => write!(f, "accepted_{}", r.as_str()),
            ViolationKind::CapabilityExceeded(m) => write!(f, "capability_exceeded_{m}"),
            ViolationKind::SecretIn(s, p) => write!(f, "{}_in_{}", s.label(), p.key()),
            ViolationKind::SecretSentUpstream(s) => write!(f, "{}_sent_upstream", s.label()),
            ViolationKind::Other(s) => f.write_str(s),
            plain => {
                let name = Self::PLAIN
                    .iter()
                    .find(|(k, _)| k == plain)
                    .map_or("unknown", |(_, n)| n);
                f.write_str(name)
            }
        }
    }
}

impl PartialEq<&str> for ViolationKind {
    fn eq(&self, other: &&str) -> bool {
        // Parsing the string is cheaper than formatting every kind, and exact: `parse` is the
        // inverse of `Display`.
        ViolationKind::parse(other) == *self
    }
}

impl Serialize for ViolationKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ViolationKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(ViolationKind::parse(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_from_its_string() {
        let mut kinds: Vec<ViolationKind> = ViolationKind::PLAIN
            .iter()
            .map(|(k, _)| k.clone())
            .collect();
        kinds.extend(Rejection::ALL.map(ViolationKind::Accepted));
        kinds.push(ViolationKind::CapabilityExceeded("delete".into()));
        for s in SecretName::ALL {
            kinds.push(ViolationKind::SecretSentUpstream(s));
            for p in Place::ALL {
                kinds.push(ViolationKind::SecretIn(s, p));
            }
        }
        for k in kinds {
            let text = k.to_string();
            assert_eq!(ViolationKind::parse(&text), k, "{text}");
            let json = serde_json::to_string(&k).unwrap_or_default();
            assert_eq!(json, format!("\"{text}\""));
        }
        assert_eq!(
            ViolationKind::SecretIn(SecretName::BearerToken, Place::TargetLogs).to_string(),
            "bearer_token_in_target_logs"
        );
        assert_eq!(
            ViolationKind::Accepted(Rejection::AlgNone).to_string(),
            "accepted_alg_none"
        );
    }
}
