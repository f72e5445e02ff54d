//! Triage: between the oracle and the reports. Violations of many cases become findings: grouped
//! by invariant, endpoint and kind, counted, each with one example (shrunk by the harness, which
//! can re-run cases) and how to reproduce it. The types here are what every report reads.

use crate::oracle::{Invariant, Severity, Violation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
    /// Cases ran one at a time: the target's calls carry neither the caller's token nor the
    /// prompt's nonce, so concurrent cases could not be told apart.
    #[serde(default)]
    pub one_at_a_time: bool,
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

/// What findings are grouped by: the invariant, the endpoint's name and the violation's kind.
pub type GroupKey = (Invariant, String, String);

/// Findings as they accumulate: per group a count and one example, the exchange with the
/// lowest case id (so the example does not depend on which concurrent case finished first).
/// Exchanges that open no group are dropped at once: memory grows with findings, not cases.
pub struct Aggregate<E> {
    /// Counts over every exchange added.
    pub stats: Stats,
    /// Per group: how many cases hit it, and the violation and exchange of the lowest case id.
    pub groups: HashMap<GroupKey, (u64, Violation, E)>,
}

impl<E> Default for Aggregate<E> {
    fn default() -> Self {
        Aggregate {
            stats: Stats::default(),
            groups: HashMap::new(),
        }
    }
}

/// What [`Aggregate`] needs to know of an exchange.
pub trait Triaged: Clone {
    /// The case's id (the lower one's example is kept).
    fn case_id(&self) -> u64;
    /// What the oracle found in it.
    fn violations(&self) -> &[Violation];
    /// Model calls and downstream requests it made (for the run's statistics).
    fn calls(&self) -> (u64, u64);
}

impl<E: Triaged> Aggregate<E> {
    /// Counts one exchange on `endpoint` and files its violations.
    pub fn add(&mut self, endpoint: &str, ex: E) {
        self.stats.cases += 1;
        let (model, downstream) = ex.calls();
        self.stats.model_calls += model;
        self.stats.downstream_requests += downstream;
        for v in ex.violations() {
            let key = (v.invariant, endpoint.to_owned(), v.kind.to_string());
            match self.groups.get_mut(&key) {
                Some(g) => {
                    g.0 += 1;
                    if ex.case_id() < g.2.case_id() {
                        g.1 = v.clone();
                        g.2 = ex.clone();
                    }
                }
                None => {
                    self.groups.insert(key, (1, v.clone(), ex.clone()));
                }
            }
        }
    }
}

/// A finding's stable identity across runs: `INVARIANT/endpoint/kind`.
pub fn fingerprint(key: &GroupKey) -> String {
    format!("{}/{}/{}", key.0.id(), key.1, key.2)
}
