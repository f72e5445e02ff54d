//! Findings as people and tools read them: a terminal summary, JSON, SARIF 2.1.0
//! ([`sarif`]), JUnit XML ([`junit`]), a self-contained HTML page ([`html`]), and the CI gate ([`Gate`]: `--fail-on`, baselines of
//! known findings in [`baseline`]). Reads findings, and what the CLI tells it about the spec
//! ([`SpecContext`]), nothing else.

pub mod baseline;
pub mod html;
pub mod junit;
pub mod sarif;

pub use baseline::{Baseline, BaselineError};

use crate::oracle::{Invariant, Severity};
pub use crate::triage::{Example, Finding, Report, Reproduce, Stats};
use std::fmt::Write as _;

impl Report {
    /// Findings ordered for people: severity, then how many cases hit them.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.cases.cmp(&a.cases))
                .then(a.invariant.cmp(&b.invariant))
                .then(a.kind.cmp(&b.kind))
        });
    }

    /// True when nothing above low severity was found (the guard would call it hardened).
    pub fn hardened(&self) -> bool {
        self.findings.iter().all(|f| f.severity == Severity::Low)
    }

    /// The terminal summary: findings grouped by invariant and severity.
    pub fn render_text(&self, verbose: bool) -> String {
        self.render_text_gated(verbose, &Gate::default())
    }

    /// The terminal summary under a CI gate: findings the gate ignores are marked (below
    /// `--fail-on`) or listed apart (baselined), and the last line says whether the run fails.
    pub fn render_text_gated(&self, verbose: bool, gate: &Gate) -> String {
        let mut s = String::new();
        let st = &self.stats;
        // Baselines (valid requests run first) count as cases: say so, or "--cases 400" reads
        // as a miscount when 404 ran.
        let cases = if st.baselines > 0 {
            format!(
                "{} cases ({} baselines, {} generated)",
                st.cases,
                st.baselines,
                st.cases.saturating_sub(st.baselines)
            )
        } else {
            format!("{} cases", st.cases)
        };
        let _ = writeln!(
            s,
            "{}: {cases}, {} requests, {} model calls, {} downstream requests in {:.1} s (seed {})",
            self.target,
            st.requests,
            st.model_calls,
            st.downstream_requests,
            st.duration_ms as f64 / 1000.0,
            st.seed
        );
        for w in &st.warnings {
            let _ = writeln!(s, "WARNING: {w}");
        }
        if st.one_at_a_time {
            let _ = writeln!(
                s,
                "(cases ran one at a time: the target's downstream or model calls carry neither the caller's token nor the prompt)"
            );
        }
        for shape in &st.unknown_model_shapes {
            let _ = writeln!(
                s,
                "warning: the target called the model in a shape confab does not speak: {shape} (answered with an error)"
            );
        }
        let stale = gate.stale(self);
        if self.findings.is_empty() {
            let _ = writeln!(s, "no findings: every invariant held.");
            write_stale(&mut s, &stale);
            return s;
        }
        let shown: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| gate.status(f) != Status::Baselined)
            .collect();
        for sev in [Severity::High, Severity::Medium, Severity::Low] {
            for inv in Invariant::ALL {
                let group: Vec<&&Finding> = shown
                    .iter()
                    .filter(|f| f.severity == sev && f.invariant == inv)
                    .collect();
                if group.is_empty() {
                    continue;
                }
                let note = if sev < gate.fail_on {
                    format!(" [not gating: below --fail-on {}]", gate.fail_on)
                } else {
                    String::new()
                };
                // AGREE has no CWE of its own: no empty parentheses.
                let cwe = match inv.cwe() {
                    [] => String::new(),
                    ids => format!(" ({})", ids.join(", ")),
                };
                let _ = writeln!(
                    s,
                    "\n{} {}{cwe}: {}{note}",
                    sev.as_str().to_uppercase(),
                    inv.id(),
                    inv.summary()
                );
                for f in group {
                    let _ = writeln!(
                        s,
                        "  [{}] {} — {} case(s)\n      {}",
                        f.endpoint, f.kind, f.cases, f.observed
                    );
                    if verbose {
                        let _ = writeln!(s, "      case: {}", f.example.case);
                        let _ = writeln!(s, "      reproduce: {}", f.reproduce.curl);
                    }
                    if let Some(r) = &f.reproduce.replay {
                        let _ = writeln!(s, "      replay: confab replay {r}");
                    }
                }
            }
        }
        let baselined: Vec<&Finding> = self
            .findings
            .iter()
            .filter(|f| gate.status(f) == Status::Baselined)
            .collect();
        if !baselined.is_empty() {
            let _ = writeln!(
                s,
                "\nbaselined ({} known finding(s), listed in the baseline; they do not fail the run):",
                baselined.len()
            );
            for f in &baselined {
                let _ = writeln!(
                    s,
                    "  {} {} [{}] {} — {} case(s)",
                    f.severity.as_str().to_uppercase(),
                    f.invariant.id(),
                    f.endpoint,
                    f.kind,
                    f.cases
                );
            }
        }
        write_stale(&mut s, &stale);
        let count = |sev| shown.iter().filter(|f| f.severity == sev).count();
        let _ = write!(
            s,
            "\n{} finding(s): {} high, {} medium, {} low",
            shown.len(),
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low)
        );
        if !baselined.is_empty() {
            let _ = write!(s, "; {} baselined", baselined.len());
        }
        let failing = gate.failing(self).len();
        if gate.is_default() {
            let _ = writeln!(s, ".");
        } else if failing == 0 {
            let _ = writeln!(
                s,
                ". The gate passes (--fail-on {}{}).",
                gate.fail_on,
                if gate.baseline.is_some() {
                    ", baseline applied"
                } else {
                    ""
                }
            );
        } else {
            let _ = writeln!(s, ". {failing} fail the gate (--fail-on {}).", gate.fail_on);
        }
        s
    }
}

fn write_stale(s: &mut String, stale: &[&str]) {
    if stale.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\n{} baselined finding(s) no longer found (fixed, or not reached by this run's cases; \
         refresh the baseline with --write-baseline once fixed):",
        stale.len()
    );
    for fp in stale {
        let _ = writeln!(s, "  {fp}");
    }
}

/// What a finding means for the CI gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// At or above `--fail-on` and not in the baseline: the run fails (exit 1).
    Failing,
    /// Its fingerprint is in the baseline: known, reported, not failing.
    Baselined,
    /// Below `--fail-on`: reported, not failing.
    BelowThreshold,
}

/// The CI gate: which findings make `confab scan` exit 1.
#[derive(Clone, Debug)]
pub struct Gate {
    /// Findings at or above this severity fail the run (default: low, i.e. any finding).
    pub fail_on: Severity,
    /// Known findings, by fingerprint, that do not fail the run.
    pub baseline: Option<Baseline>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            fail_on: Severity::Low,
            baseline: None,
        }
    }
}

impl Gate {
    /// True for the gate without `--fail-on` above low and without a baseline.
    /// No `--fail-on` above low and no baseline: every finding gates.
    pub fn is_default(&self) -> bool {
        self.fail_on == Severity::Low && self.baseline.is_none()
    }

    /// Whether `f` fails the run, is below `--fail-on`, or is baselined.
    pub fn status(&self, f: &Finding) -> Status {
        if self
            .baseline
            .as_ref()
            .is_some_and(|b| b.contains(&f.fingerprint))
        {
            Status::Baselined
        } else if f.severity < self.fail_on {
            Status::BelowThreshold
        } else {
            Status::Failing
        }
    }

    /// The findings that fail the run.
    pub fn failing<'a>(&self, report: &'a Report) -> Vec<&'a Finding> {
        report
            .findings
            .iter()
            .filter(|f| self.status(f) == Status::Failing)
            .collect()
    }

    /// True when no finding fails the run (exit 0).
    pub fn passes(&self, report: &Report) -> bool {
        self.failing(report).is_empty()
    }

    /// Baselined fingerprints this report did not find.
    pub fn stale<'a>(&'a self, report: &Report) -> Vec<&'a str> {
        self.baseline
            .as_ref()
            .map(|b| b.stale(report))
            .unwrap_or_default()
    }

    /// The gate's outcome as JSON (added to `--format json` output under `"gate"`).
    pub fn summary_json(&self, report: &Report) -> serde_json::Value {
        let by = |st: Status| -> Vec<&str> {
            report
                .findings
                .iter()
                .filter(|f| self.status(f) == st)
                .map(|f| f.fingerprint.as_str())
                .collect()
        };
        serde_json::json!({
            "fail_on": self.fail_on,
            "passed": self.passes(report),
            "failing": by(Status::Failing),
            "baselined": by(Status::Baselined),
            "below_threshold": by(Status::BelowThreshold),
            "stale_baseline": self.stale(report),
        })
    }
}

/// What SARIF and JUnit output need to know about the spec a report came from; the CLI fills
/// it in from the spec, so the report stays free of spec parsing.
#[derive(Clone, Debug, Default)]
pub struct SpecContext {
    /// The spec file as given on the command line (SARIF's artifact location).
    pub path: String,
    /// The endpoints the campaign covered, in spec order.
    pub endpoints: Vec<EndpointInfo>,
}

/// One `[[endpoint]]` of the spec.
#[derive(Clone, Debug, Default)]
pub struct EndpointInfo {
    /// Its `name`.
    pub name: String,
    /// Its HTTP method.
    pub method: String,
    /// Its path template.
    pub path: String,
    /// The endpoint reaches the model (`llm = true`).
    pub llm: bool,
    /// The line of its `[[endpoint]]` entry in the spec, when known.
    pub line: Option<usize>,
}

impl SpecContext {
    /// The endpoint of that name.
    pub fn endpoint(&self, name: &str) -> Option<&EndpointInfo> {
        self.endpoints.iter().find(|e| e.name == name)
    }
}

/// Guidance per invariant: a rule name, and what to change in an API like confab's examples.
pub struct Guidance {
    /// A readable PascalCase rule name.
    pub name: &'static str,
    /// What to change, concretely, in plain text.
    pub remediation: &'static str,
    /// Where to read more (the first CWE's page, or the RFC that decides).
    pub help_uri: &'static str,
}

/// Said wherever a report shows reproducers.
pub const TEST_CREDENTIALS_NOTE: &str = "The bearer tokens and keys in reproducers are \
short-lived test credentials confab minted or generated for this run only; they grant nothing \
outside it.";

/// The guidance for an invariant.
pub fn guidance(inv: Invariant) -> Guidance {
    match inv {
        Invariant::Authn => Guidance {
            name: "RejectedTokenIsRefused",
            remediation: "Verify the bearer token before doing any work, and refuse with 401 \
`invalid_token` (RFC 6750) before any model or downstream call. Pin the accepted algorithm \
per key (never `none`; never HMAC with a public key), never take keys from the token's `jwk`, \
`jku`, `x5u` or `kid` path, require `exp` and check `exp`, `nbf`, `iss` and `aud`. With PyJWT: \
`jwt.decode(token, key, algorithms=[\"HS256\"], audience=AUD, issuer=ISS, \
options={\"require\": [\"exp\", \"iss\", \"aud\", \"sub\"]})`; in Rust, `confab::guard::Guard`.",
            help_uri: "https://cwe.mitre.org/data/definitions/287.html",
        },
        Invariant::Authz => Guidance {
            name: "MissingScopeIsForbidden",
            remediation: "Check the endpoint's scope on every request, after authentication and \
before any work: read `scope` as a space-delimited, case-sensitive set (RFC 8693) and require an \
exact member such as `docs:read`. Do not split on commas, match prefixes or wildcards, or \
compare case-insensitively. Answer 403 with `WWW-Authenticate: Bearer \
error=\"insufficient_scope\"`.",
            help_uri: "https://cwe.mitre.org/data/definitions/285.html",
        },
        Invariant::Provenance => Guidance {
            name: "ModelIdsNeverReachDownstream",
            remediation: "Treat every identifier in the model's output (tool-call arguments, ids \
in text) as untrusted input. Before a downstream call, check it against what the caller asked \
for and what the caller may access (the id in the request, the documents the token's subject \
owns) and refuse or drop anything else; prefer ids from the request over ids from the model.",
            help_uri: "https://cwe.mitre.org/data/definitions/1426.html",
        },
        Invariant::Ownership => Guidance {
            name: "NoCrossTenantContent",
            remediation: "Authorize every object access by owner: when serving or fetching \
`/docs/{id}`, compare the resource's owner with the token's `sub` (or tenant) and answer 404 or \
403 otherwise, for direct reads and for documents fetched by the model's tool calls alike. \
Never return content fetched for one principal to another (no shared caches across tenants).",
            help_uri: "https://cwe.mitre.org/data/definitions/639.html",
        },
        Invariant::Agency => Guidance {
            name: "DownstreamCallsStayInCapabilities",
            remediation: "Offer the model only the tools the endpoint needs (a read endpoint gets \
no write or delete tool) and enforce the endpoint's capabilities in code when executing a tool \
call (method and path pattern). Never fetch a URL the model produced: build downstream URLs \
from a fixed base and a validated id. Send the caller's bearer token only to the downstream \
API's host, or exchange it for a narrower downstream token.",
            help_uri: "https://cwe.mitre.org/data/definitions/918.html",
        },
        Invariant::Echo => Guidance {
            name: "NoSecretEchoed",
            remediation: "Keep secrets out of what the model, the response and the logs can see: \
no Authorization header, signing key or API key in prompts, tool results, error messages or \
log lines (log the token's `sub` or `jti`, never the token). Scrub model output and error \
bodies for the caller's token (and its base64, hex and percent encodings), keys and long spans \
of the system prompt before returning them, e.g. with `confab::guard::scrub`.",
            help_uri: "https://cwe.mitre.org/data/definitions/200.html",
        },
        Invariant::Robust => Guidance {
            name: "NoServerErrorFromClientInput",
            remediation: "Validate request bodies and headers and answer 400, 401 or 422 for bad \
input; catch errors of the model client and of downstream calls and map them to 502 or 503 \
instead of letting exceptions become 500s; put a timeout on every outbound call so that no \
request hangs.",
            help_uri: "https://cwe.mitre.org/data/definitions/754.html",
        },
        Invariant::Cost => Guidance {
            name: "ModelCostIsCapped",
            remediation: "Cap model use per request in code: a maximum number of model calls \
(stop tool-call loops after N rounds), an explicit `max_tokens` on every call no larger than \
the spec's cap, and a maximum prompt size (refuse or truncate oversized user input and \
documents before sending them).",
            help_uri: "https://cwe.mitre.org/data/definitions/400.html",
        },
        Invariant::UnauthLlm => Guidance {
            name: "NoModelCallWithoutToken",
            remediation: "Authenticate before calling the model: run the bearer-token check \
(decorator, middleware or extractor) on every endpoint that reaches the model before the \
handler builds a prompt, and answer 401 with `WWW-Authenticate: Bearer` when the token is \
missing.",
            help_uri: "https://cwe.mitre.org/data/definitions/306.html",
        },
        Invariant::Agree => Guidance {
            name: "DecisionMatchesReferenceGuard",
            remediation: "The target accepted or refused a request differently from the reference \
guard (RFC 6750, 7519, 8725). Read the finding's reason (e.g. `duplicate_claims`, \
`string_numeric_date`, `wrong_audience`) and align the token validation with it; if the target \
is stricter on purpose, record the finding in a baseline.",
            help_uri: "https://www.rfc-editor.org/rfc/rfc8725.html",
        },
    }
}
