//! Findings as people and tools read them: a terminal summary and JSON. Reads findings and
//! nothing else.

use crate::oracle::{Invariant, Severity};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One grouped finding: the same invariant, endpoint and kind across all the cases that hit it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    pub invariant: Invariant,
    pub severity: Severity,
    pub cwe: Vec<String>,
    pub owasp: Vec<String>,
    pub endpoint: String,
    /// Stable within the invariant, e.g. `accepted_alg_none`.
    pub kind: String,
    /// What was observed in the (shrunk) example, secrets masked.
    pub observed: String,
    /// How many cases hit it.
    pub cases: u64,
    /// A stable identity across runs: invariant, endpoint, kind.
    pub fingerprint: String,
    /// The shrunk example.
    pub example: Example,
    /// A `curl` line for the client side, and the command that replays the whole exchange.
    pub reproduce: Reproduce,
}

/// The shrunk case behind a finding, as observed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Example {
    pub case: String,
    pub request: String,
    /// What the fake model answered, call by call.
    pub model_output: Vec<serde_json::Value>,
    /// Requests the target made downstream (`METHOD uri`).
    pub downstream: Vec<String>,
    pub response_status: Option<u16>,
    pub response_excerpt: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reproduce {
    pub curl: String,
    pub replay: Option<String>,
}

/// Run statistics.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub cases: u64,
    pub requests: u64,
    pub model_calls: u64,
    pub downstream_requests: u64,
    pub duration_ms: u64,
    pub seed: u64,
}

/// The whole result of a campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub confab_version: String,
    pub target: String,
    pub spec: String,
    pub findings: Vec<Finding>,
    pub stats: Stats,
}

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
        let mut s = String::new();
        let st = &self.stats;
        let _ = writeln!(
            s,
            "{}: {} cases, {} requests, {} model calls, {} downstream requests in {:.1} s (seed {})",
            self.target,
            st.cases,
            st.requests,
            st.model_calls,
            st.downstream_requests,
            st.duration_ms as f64 / 1000.0,
            st.seed
        );
        if self.findings.is_empty() {
            let _ = writeln!(s, "no findings: every invariant held.");
            return s;
        }
        for sev in [Severity::High, Severity::Medium, Severity::Low] {
            for inv in Invariant::ALL {
                let group: Vec<&Finding> = self
                    .findings
                    .iter()
                    .filter(|f| f.severity == sev && f.invariant == inv)
                    .collect();
                if group.is_empty() {
                    continue;
                }
                let _ = writeln!(
                    s,
                    "\n{} {} ({}): {}",
                    sev.as_str().to_uppercase(),
                    inv.id(),
                    inv.cwe().join(", "),
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
        let count = |sev| self.findings.iter().filter(|f| f.severity == sev).count();
        let _ = writeln!(
            s,
            "\n{} finding(s): {} high, {} medium, {} low.",
            self.findings.len(),
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low)
        );
        s
    }
}
