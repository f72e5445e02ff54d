//! The flaws the vulnerable form plants, one switch each, with the invariant (docs/ARCHITECTURE.md §4)
//! each one must trip. A campaign against the vulnerable form proves confab finds every one;
//! against the hardened form (no flaw) it proves confab reports nothing.

use confab_target::Invariant;
use std::fmt;

/// One planted flaw: its stable name, what it does, and the invariants it trips.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlawInfo {
    /// The stable name, as `CONFAB_REFERENCE_FLAWS` and reports use it.
    pub name: &'static str,
    /// The invariants it trips (AUTHN, AGENCY, ECHO, …).
    pub invariants: &'static [Invariant],
    /// What the flawed target does.
    pub description: &'static str,
}

/// Every flaw, in the order of the [`Flaws`] fields.
pub const CATALOGUE: [FlawInfo; 13] = [
    FlawInfo {
        name: "comma_scopes",
        invariants: &[Invariant::Authz, Invariant::Agree],
        description: "splits the scope claim on commas (and spaces), so `docs:read,docs:write` \
                      grants docs:read",
    },
    FlawInfo {
        name: "skip_claim_checks",
        invariants: &[Invariant::Authn, Invariant::Agree],
        description: "verifies the signature only: expired tokens, wrong iss and aud accepted",
    },
    FlawInfo {
        name: "idor_read",
        invariants: &[Invariant::Ownership],
        description: "GET /docs/{id} serves any document, whoever owns it",
    },
    FlawInfo {
        name: "trust_llm_ids",
        invariants: &[Invariant::Provenance, Invariant::Ownership],
        description: "executes tool calls on any id the model proposes and returns any content",
    },
    FlawInfo {
        name: "all_tools",
        invariants: &[Invariant::Agency],
        description: "executes update_doc, delete_doc and fetch_url from a read endpoint",
    },
    FlawInfo {
        name: "follow_any_url",
        invariants: &[Invariant::Agency],
        description: "fetch_url to any URL, forwarding the caller's bearer token",
    },
    FlawInfo {
        name: "token_to_model",
        invariants: &[Invariant::Echo],
        description: "puts the caller's token into the system prompt sent upstream",
    },
    FlawInfo {
        name: "token_in_errors",
        invariants: &[Invariant::Echo],
        description: "echoes the raw Authorization header in 4xx error bodies",
    },
    FlawInfo {
        name: "log_token",
        invariants: &[Invariant::Echo],
        description: "logs the Authorization header",
    },
    FlawInfo {
        name: "llm_before_auth",
        invariants: &[Invariant::UnauthLlm, Invariant::Authn],
        description: "calls the model on /assist before checking the token",
    },
    FlawInfo {
        name: "no_call_cap",
        invariants: &[Invariant::Cost],
        description: "loops on tool calls with no cap on model calls",
    },
    FlawInfo {
        name: "crash_on_bad_body",
        invariants: &[Invariant::Robust],
        description: "a missing or malformed JSON body or field answers 500",
    },
    FlawInfo {
        name: "echo_model_output",
        invariants: &[Invariant::Echo],
        description: "returns the model's text unscrubbed",
    },
];

/// Which flaws are planted. [`Flaws::none`] is the hardened form, [`Flaws::all`] the
/// vulnerable one; any other combination plants flaws one at a time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flaws {
    /// Splits the scope claim on commas too, so `docs:read,docs:write` grants both.
    pub comma_scopes: bool,
    /// Verifies the signature only: expired tokens, wrong `iss` and `aud` accepted.
    pub skip_claim_checks: bool,
    /// `GET /docs/{id}` serves any document, whoever owns it.
    pub idor_read: bool,
    /// Executes tool calls on any id the model proposes and returns any content.
    pub trust_llm_ids: bool,
    /// Executes `update_doc`, `delete_doc` and `fetch_url` from a read endpoint.
    pub all_tools: bool,
    /// `fetch_url` to any URL, forwarding the caller's bearer token.
    pub follow_any_url: bool,
    /// Puts the caller's token into the system prompt sent upstream.
    pub token_to_model: bool,
    /// Echoes the raw `Authorization` header in 4xx error bodies.
    pub token_in_errors: bool,
    /// Logs the `Authorization` header.
    pub log_token: bool,
    /// Calls the model on `/assist` before checking the token.
    pub llm_before_auth: bool,
    /// Loops on tool calls with no cap on model calls.
    pub no_call_cap: bool,
    /// A missing or malformed JSON body or field answers 500.
    pub crash_on_bad_body: bool,
    /// Returns the model's text unscrubbed.
    pub echo_model_output: bool,
}

/// A flaw name that is not in [`CATALOGUE`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown flaw {0:?} (known: all, none, or {names})", names = names().join(", "))]
pub struct UnknownFlaw(pub String);

fn names() -> Vec<&'static str> {
    CATALOGUE.iter().map(|f| f.name).collect()
}

impl Flaws {
    /// The hardened form: nothing planted.
    pub fn none() -> Flaws {
        Flaws::default()
    }

    /// The vulnerable form: every flaw planted.
    pub fn all() -> Flaws {
        let mut f = Flaws::none();
        for info in CATALOGUE {
            if let Some(b) = f.field(info.name) {
                *b = true;
            }
        }
        f
    }

    /// Only the named flaw.
    pub fn only(name: &str) -> Result<Flaws, UnknownFlaw> {
        let mut f = Flaws::none();
        f.set(name, true)?;
        Ok(f)
    }

    /// Turns the named flaw on or off.
    pub fn set(&mut self, name: &str, on: bool) -> Result<(), UnknownFlaw> {
        *self
            .field(name)
            .ok_or_else(|| UnknownFlaw(name.to_owned()))? = on;
        Ok(())
    }

    /// Whether the named flaw is planted (`None` for an unknown name).
    pub fn get(&self, name: &str) -> Option<bool> {
        let mut copy = *self;
        copy.field(name).map(|b| *b)
    }

    /// The planted flaws, in catalogue order.
    pub fn enabled(&self) -> Vec<&'static FlawInfo> {
        CATALOGUE
            .iter()
            .filter(|i| self.get(i.name) == Some(true))
            .collect()
    }

    /// True for the hardened form.
    pub fn is_none(&self) -> bool {
        *self == Flaws::none()
    }

    /// Parses a comma-separated list of flaw names, or `all` / `none` (empty means none).
    pub fn parse_list(list: &str) -> Result<Flaws, UnknownFlaw> {
        let mut f = Flaws::none();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => f = Flaws::all(),
                "none" => {}
                other => f.set(other, true)?,
            }
        }
        Ok(f)
    }

    fn field(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "comma_scopes" => &mut self.comma_scopes,
            "skip_claim_checks" => &mut self.skip_claim_checks,
            "idor_read" => &mut self.idor_read,
            "trust_llm_ids" => &mut self.trust_llm_ids,
            "all_tools" => &mut self.all_tools,
            "follow_any_url" => &mut self.follow_any_url,
            "token_to_model" => &mut self.token_to_model,
            "token_in_errors" => &mut self.token_in_errors,
            "log_token" => &mut self.log_token,
            "llm_before_auth" => &mut self.llm_before_auth,
            "no_call_cap" => &mut self.no_call_cap,
            "crash_on_bad_body" => &mut self.crash_on_bad_body,
            "echo_model_output" => &mut self.echo_model_output,
            _ => return None,
        })
    }
}

impl fmt::Display for Flaws {
    /// `none`, or the planted flaws' names joined by commas (what [`Flaws::parse_list`] reads).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = self.enabled();
        if on.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = on.iter().map(|i| i.name).collect();
        f.write_str(&names.join(","))
    }
}

/// The two shipped forms, as `CONFAB_REFERENCE_MODE` names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No flaw planted ([`Flaws::none`]).
    Hardened,
    /// Every flaw planted ([`Flaws::all`]).
    Vulnerable,
}

impl Mode {
    /// Parses `hardened` or `vulnerable`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "hardened" => Some(Mode::Hardened),
            "vulnerable" => Some(Mode::Vulnerable),
            _ => None,
        }
    }

    /// `hardened` or `vulnerable`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hardened => "hardened",
            Mode::Vulnerable => "vulnerable",
        }
    }

    /// The flaws this form plants.
    pub fn flaws(self) -> Flaws {
        match self {
            Mode::Hardened => Flaws::none(),
            Mode::Vulnerable => Flaws::all(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_and_fields_agree() {
        let all = Flaws::all();
        assert_eq!(all.enabled().len(), CATALOGUE.len());
        for info in CATALOGUE {
            let one = Flaws::only(info.name).expect("known");
            assert_eq!(one.enabled(), vec![&info]);
            assert!(!info.invariants.is_empty());
        }
        assert!(Flaws::none().is_none());
        assert!(Flaws::only("nope").is_err());
    }

    #[test]
    fn list_round_trips() {
        for f in [
            Flaws::none(),
            Flaws::all(),
            Flaws::only("idor_read").expect("known"),
        ] {
            assert_eq!(Flaws::parse_list(&f.to_string()), Ok(f));
        }
        let two = Flaws::parse_list(" log_token , no_call_cap").expect("parses");
        assert!(two.log_token && two.no_call_cap && !two.idor_read);
        assert_eq!(
            Mode::parse("vulnerable").map(Mode::flaws),
            Some(Flaws::all())
        );
        assert_eq!(Mode::parse("Hardened"), None);
    }
}
