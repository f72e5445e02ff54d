//! The invariants confab checks (docs/ARCHITECTURE.md §4), named here rather than in the
//! harness so that a target can say which ones it means to break (the reference target's
//! planted flaws) without depending on confab.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The invariants (docs/ARCHITECTURE.md §4). The names are binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Invariant {
    /// AUTHN: a token the guard rejects is refused with a 4xx before any model or downstream call.
    Authn,
    /// AUTHZ: a valid token without the endpoint's scope gets 403 `insufficient_scope`.
    Authz,
    /// PROVENANCE: no identifier that only the model supplied reaches a downstream request.
    Provenance,
    /// OWNERSHIP: a response to a principal never carries another principal's content.
    Ownership,
    /// AGENCY: no downstream call outside the endpoint's capabilities, no invented URL, the
    /// token goes only to the downstream API.
    Agency,
    /// ECHO: no secret in responses, logs or the prompt sent upstream.
    Echo,
    /// ROBUST: no 5xx and no hang caused by what the client sent.
    Robust,
    /// COST: model calls, `max_tokens` and prompt size per request stay under the spec's caps.
    Cost,
    /// UNAUTH_LLM: an endpoint that reaches the model refuses a tokenless request before any
    /// model call.
    UnauthLlm,
    /// AGREE: the target's accept/reject decision matches the reference guard's.
    Agree,
}

impl Invariant {
    /// Every invariant, in the order of docs/ARCHITECTURE.md §4.
    pub const ALL: [Invariant; 10] = [
        Invariant::Authn,
        Invariant::Authz,
        Invariant::Provenance,
        Invariant::Ownership,
        Invariant::Agency,
        Invariant::Echo,
        Invariant::Robust,
        Invariant::Cost,
        Invariant::UnauthLlm,
        Invariant::Agree,
    ];

    /// The binding id (`AUTHN`, `UNAUTH_LLM`, …): what reports, serde and `Display` write.
    pub fn id(self) -> &'static str {
        match self {
            Invariant::Authn => "AUTHN",
            Invariant::Authz => "AUTHZ",
            Invariant::Provenance => "PROVENANCE",
            Invariant::Ownership => "OWNERSHIP",
            Invariant::Agency => "AGENCY",
            Invariant::Echo => "ECHO",
            Invariant::Robust => "ROBUST",
            Invariant::Cost => "COST",
            Invariant::UnauthLlm => "UNAUTH_LLM",
            Invariant::Agree => "AGREE",
        }
    }

    /// CWE ids (docs/ARCHITECTURE.md §4).
    pub fn cwe(self) -> &'static [&'static str] {
        match self {
            Invariant::Authn => &["CWE-287", "CWE-347", "CWE-613"],
            Invariant::Authz => &["CWE-285"],
            Invariant::Provenance => &["CWE-1426", "CWE-639"],
            Invariant::Ownership => &["CWE-639"],
            Invariant::Agency => &["CWE-918", "CWE-285"],
            Invariant::Echo => &["CWE-200", "CWE-532"],
            Invariant::Robust => &["CWE-754"],
            Invariant::Cost => &["CWE-400"],
            Invariant::UnauthLlm => &["CWE-306"],
            Invariant::Agree => &[],
        }
    }

    /// OWASP LLM Top 10 (2025) and API Security Top 10 (2023) categories.
    pub fn owasp(self) -> &'static [&'static str] {
        match self {
            Invariant::Authn => &["API2:2023 Broken Authentication"],
            Invariant::Authz => &["API5:2023 Broken Function Level Authorization"],
            Invariant::Provenance => &[
                "LLM05:2025 Improper Output Handling",
                "API1:2023 Broken Object Level Authorization",
            ],
            Invariant::Ownership => &["API1:2023 Broken Object Level Authorization"],
            Invariant::Agency => &["LLM06:2025 Excessive Agency"],
            Invariant::Echo => &[
                "LLM02:2025 Sensitive Information Disclosure",
                "LLM07:2025 System Prompt Leakage",
            ],
            Invariant::Robust => &[],
            Invariant::Cost => &["LLM10:2025 Unbounded Consumption"],
            Invariant::UnauthLlm => &["API2:2023 Broken Authentication"],
            Invariant::Agree => &[],
        }
    }

    /// The invariant in one sentence.
    pub fn summary(self) -> &'static str {
        match self {
            Invariant::Authn => {
                "a request whose token the guard rejects is refused with a 4xx and causes no model or downstream call"
            }
            Invariant::Authz => {
                "a valid token without the endpoint's scope gets 403 insufficient_scope"
            }
            Invariant::Provenance => {
                "no identifier that only the model supplied reaches a downstream request"
            }
            Invariant::Ownership => {
                "a response to a principal never carries another principal's content"
            }
            Invariant::Agency => {
                "no downstream call outside the endpoint's capabilities, no request to an invented URL, the token goes only to the downstream API"
            }
            Invariant::Echo => "no secret in responses, logs or the prompt sent upstream",
            Invariant::Robust => "no 5xx and no hang caused by what the client sent",
            Invariant::Cost => {
                "model calls, max_tokens and prompt size per request stay under the spec's caps"
            }
            Invariant::UnauthLlm => {
                "an endpoint that reaches the model refuses a request without a token before any model call"
            }
            Invariant::Agree => "the target's accept/reject decision matches the reference guard's",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_and_display_write_the_binding_id() {
        for inv in Invariant::ALL {
            let json = serde_json::to_string(&inv).expect("serialises");
            assert_eq!(json, format!("\"{}\"", inv.id()));
            assert_eq!(inv.to_string(), inv.id());
            let back: Invariant = serde_json::from_str(&json).expect("deserialises");
            assert_eq!(back, inv);
        }
    }
}
