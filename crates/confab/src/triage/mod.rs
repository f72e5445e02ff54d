//! Triage: between the oracle and the reports. Violations of many cases become findings: grouped
//! by invariant, endpoint and kind, counted, each with one example (shrunk by the harness, which
//! can re-run cases) and how to reproduce it. The types here are what every report reads.

use crate::oracle::{Invariant, Severity, Violation};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One grouped finding: the same invariant, endpoint and kind across all the cases that hit it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// The invariant broken.
    pub invariant: Invariant,
    /// How much an attacker gains (docs/ARCHITECTURE.md §4).
    pub severity: Severity,
    /// The invariant's CWE ids (`CWE-287`, …).
    pub cwe: Vec<String>,
    /// Its OWASP categories (`API2:2023`, `LLM02:2025`, …).
    pub owasp: Vec<String>,
    /// The endpoint's name in the spec.
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
    /// The case, in words: principal, token family, resource, prompt and model-output families.
    pub case: String,
    /// `METHOD path` of the client's request.
    pub request: String,
    /// What the fake model answered, call by call.
    pub model_output: Vec<serde_json::Value>,
    /// Requests the target made downstream (`METHOD uri`).
    pub downstream: Vec<String>,
    /// The target's status code; `None` when it sent no response.
    pub response_status: Option<u16>,
    /// The start of the response body, secrets masked.
    pub response_excerpt: String,
}

/// How to reproduce a finding.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Reproduce {
    /// A `curl` line for the client side (its tokens are short-lived test credentials).
    pub curl: String,
    /// The replay file for the whole exchange (`confab replay FILE`), when one was written.
    pub replay: Option<String>,
}

/// Counts over a campaign, as every report's summary shows them (`stats` in the JSON report).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    /// Every case run, the baselines included.
    pub cases: u64,
    /// The valid requests run before the generated cases (one per principal and endpoint its
    /// scope covers).
    #[serde(default)]
    pub baselines: u64,
    /// Requests sent to the target (shrinking's re-runs included).
    pub requests: u64,
    /// Calls the target made to the fake model.
    pub model_calls: u64,
    /// Requests the target made to the sink (downstream API and attacker host).
    pub downstream_requests: u64,
    /// Wall-clock time of the campaign.
    pub duration_ms: u64,
    /// The seed the cases were generated from.
    pub seed: u64,
    /// Cases ran one at a time: the target's calls carry neither the caller's token nor the
    /// prompt's nonce, so concurrent cases could not be told apart.
    #[serde(default)]
    pub one_at_a_time: bool,
    /// What keeps the run from testing what it should (an `llm = true` endpoint that never
    /// called the model, say): every report format shows these first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// `METHOD /path` of the target's calls to the model in a shape confab does not speak
    /// (answered with an error): the model was not exercised there.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown_model_shapes: Vec<String>,
}

/// The whole result of a campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// The confab version that ran it.
    pub confab_version: String,
    /// What was tested: the target's base URL, or a label for a called target.
    pub target: String,
    /// Where the spec came from (its path, or where a spec built in Rust was built).
    pub spec: String,
    /// The findings, most severe first once sorted.
    pub findings: Vec<Finding>,
    /// Counts over the run.
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
