//! SARIF 2.1.0 (OASIS), the format code-scanning services read (GitHub's
//! `github/codeql-action/upload-sarif`, GitLab, Azure DevOps).
//!
//! One run; its tool's rules are the invariants (all of them, so that a clean scan still
//! declares what it checked), each with CWE and OWASP tags, a `security-severity` score and
//! remediation help. One result per grouped finding: the endpoint as a logical location, the
//! spec's `[[endpoint]]` line as the physical one, `partialFingerprints` from the finding's
//! stable fingerprint, and the reproducer (curl line, replay file) in its properties.

use super::{Finding, Gate, Report, SpecContext, Status, TEST_CREDENTIALS_NOTE, guidance};
use crate::oracle::{Invariant, Severity};
use serde_json::{Value, json};

/// The schema URI written in `$schema` (the OASIS errata 01 schema, as SchemaStore serves it).
pub const SCHEMA_URI: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The key of confab's fingerprint in `partialFingerprints` (versioned, per SARIF §3.27.17).
pub const FINGERPRINT_KEY: &str = "confabFingerprint/v1";

/// The project's address, when the package declares one (`repository` or `homepage`).
pub fn information_uri() -> Option<&'static str> {
    [
        option_env!("CARGO_PKG_REPOSITORY"),
        option_env!("CARGO_PKG_HOMEPAGE"),
    ]
    .into_iter()
    .flatten()
    .find(|u| u.starts_with("https://"))
}

/// GitHub's `security-severity` score for a severity: high 8.0, medium 5.5, low 3.0.
pub fn security_severity(sev: Severity) -> &'static str {
    match sev {
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "3.0",
    }
}

/// SARIF `level` for a severity: error, warning, note.
pub fn level(sev: Severity) -> &'static str {
    match sev {
        Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    }
}

/// The worst severity an invariant's findings can have (docs/ARCHITECTURE.md §4): the rule's default.
pub fn worst_severity(inv: Invariant) -> Severity {
    match inv {
        Invariant::Authz | Invariant::Cost => Severity::Medium,
        Invariant::Agree => Severity::Low,
        _ => Severity::High,
    }
}

fn cwe_uri(cwe: &str) -> Option<String> {
    cwe.strip_prefix("CWE-")
        .map(|n| format!("https://cwe.mitre.org/data/definitions/{n}.html"))
}

/// The rule (reportingDescriptor) of an invariant.
pub fn rule(inv: Invariant) -> Value {
    let g = guidance(inv);
    let mut tags = vec!["security".to_owned()];
    tags.extend(
        inv.cwe()
            .iter()
            .map(|c| format!("external/cwe/{}", c.to_lowercase())),
    );
    tags.extend(inv.cwe().iter().map(|c| c.to_string()));
    tags.extend(inv.owasp().iter().map(|o| {
        let id = o.split_whitespace().next().unwrap_or(o);
        format!("OWASP-{id}")
    }));
    let refs: Vec<String> = inv
        .cwe()
        .iter()
        .filter_map(|c| cwe_uri(c).map(|u| format!("[{c}]({u})")))
        .chain(inv.owasp().iter().map(|o| o.to_string()))
        .collect();
    let classification = if inv.cwe().is_empty() && inv.owasp().is_empty() {
        String::new()
    } else {
        format!(
            " ({})",
            inv.cwe()
                .iter()
                .copied()
                .chain(inv.owasp().iter().copied())
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    let summary = capitalize(inv.summary());
    let worst = worst_severity(inv);
    json!({
        "id": inv.id(),
        "name": g.name,
        "shortDescription": { "text": format!("{summary}.") },
        "fullDescription": {
            "text": format!(
                "confab invariant {}: {}{}. confab plays the model and the downstream API, \
                 sends generated requests to the target and checks every exchange against this \
                 invariant; a finding comes with a curl line and a replay file.",
                inv.id(),
                inv.summary(),
                classification
            )
        },
        "help": {
            "text": format!("{summary}.\n\nRemediation: {}", g.remediation),
            "markdown": format!(
                "**{}** — {summary}.\n\n**Remediation.** {}\n\n{}",
                inv.id(),
                g.remediation,
                if refs.is_empty() { String::new() } else { format!("References: {}", refs.join(", ")) }
            ),
        },
        "helpUri": g.help_uri,
        "defaultConfiguration": { "level": level(worst) },
        "properties": {
            "tags": tags,
            "security-severity": security_severity(worst),
            "precision": "very-high",
            "problem.severity": match worst {
                Severity::High => "error",
                Severity::Medium => "warning",
                Severity::Low => "recommendation",
            },
        },
    })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A relative or absolute file path as a SARIF URI reference.
pub fn path_uri(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p);
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@!$&'()*+,;=".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.starts_with('/') {
        format!("file://{out}")
    } else {
        out
    }
}

fn result(f: &Finding, ctx: &SpecContext, gate: &Gate) -> Value {
    let rule_index = Invariant::ALL
        .iter()
        .position(|i| *i == f.invariant)
        .unwrap_or(0);
    let endpoint = ctx.endpoint(&f.endpoint);
    let qualified = endpoint
        .map(|e| format!("{} {}", e.method, e.path))
        .unwrap_or_else(|| f.endpoint.clone());
    let mut location = json!({
        "logicalLocations": [{
            "name": f.endpoint,
            "fullyQualifiedName": qualified,
            "kind": "resource",
        }],
    });
    if !ctx.path.is_empty() {
        let mut physical = json!({ "artifactLocation": { "uri": path_uri(&ctx.path) } });
        if let Some(line) = endpoint.and_then(|e| e.line) {
            physical["region"] = json!({ "startLine": line });
        }
        location["physicalLocation"] = physical;
    }
    let replay_command = f
        .reproduce
        .replay
        .as_ref()
        .map(|r| format!("confab replay {r}"));
    let mut text = format!(
        "{} on endpoint {} ({}): {} — {} case(s). Observed: {}",
        f.invariant.id(),
        f.endpoint,
        f.severity,
        f.kind,
        f.cases,
        f.observed
    );
    if !text.ends_with(['.', '!', '?']) {
        text.push('.');
    }
    if let Some(cmd) = &replay_command {
        text.push_str(&format!(" Reproduce: {cmd}"));
    }
    let mut r = json!({
        "ruleId": f.invariant.id(),
        "ruleIndex": rule_index,
        "level": level(f.severity),
        "kind": "fail",
        "message": { "text": text },
        "locations": [location],
        "partialFingerprints": { FINGERPRINT_KEY: f.fingerprint },
        "properties": {
            "severity": f.severity,
            "security-severity": security_severity(f.severity),
            "endpoint": f.endpoint,
            "kind": f.kind,
            "cases": f.cases,
            "cwe": f.cwe,
            "owasp": f.owasp,
            "fingerprint": f.fingerprint,
            "reproduce": {
                "curl": f.reproduce.curl,
                "replay": f.reproduce.replay,
                "replayCommand": replay_command,
                "note": TEST_CREDENTIALS_NOTE,
            },
            // The raw response excerpt and model output stay in the JSON report and the replay
            // file: SARIF is uploaded to code-scanning services, and an API that echoes a
            // literal secret of its spec would echo it there.
            "example": {
                "case": f.example.case,
                "request": f.example.request,
                "downstream": f.example.downstream,
                "responseStatus": f.example.response_status,
            },
        },
    });
    if gate.baseline.is_some() {
        let status = gate.status(f);
        r["baselineState"] = json!(if status == Status::Baselined {
            "unchanged"
        } else {
            "new"
        });
        if status == Status::Baselined {
            r["suppressions"] = json!([{
                "kind": "external",
                "status": "accepted",
                "justification": "a known finding, listed in the confab baseline",
            }]);
        }
    }
    r
}

/// The SARIF log of a report.
pub fn render(report: &Report, ctx: &SpecContext, gate: &Gate) -> Value {
    let mut driver = json!({
        "name": "confab",
        "version": report.confab_version,
        "semanticVersion": report.confab_version,
        "rules": Invariant::ALL.iter().map(|i| rule(*i)).collect::<Vec<_>>(),
    });
    if let Some(uri) = information_uri() {
        driver["informationUri"] = json!(uri);
    }
    let st = &report.stats;
    let mut run = json!({
        "tool": { "driver": driver },
        "invocations": [{
            "executionSuccessful": true,
            "toolExecutionNotifications": st.warnings.iter().map(|w| json!({
                "level": "warning",
                "message": {"text": w},
            })).collect::<Vec<_>>(),
            "properties": {
                "target": report.target,
                "seed": st.seed,
                "cases": st.cases,
                "requests": st.requests,
                "modelCalls": st.model_calls,
                "downstreamRequests": st.downstream_requests,
                "durationMs": st.duration_ms,
                "failOn": gate.fail_on,
                "passed": gate.passes(report),
            },
        }],
        "results": report.findings.iter().map(|f| result(f, ctx, gate)).collect::<Vec<_>>(),
        "properties": { "note": TEST_CREDENTIALS_NOTE },
    });
    if !ctx.path.is_empty() {
        run["artifacts"] = json!([{
            "location": { "uri": path_uri(&ctx.path) },
            "roles": ["analysisTarget"],
            "description": { "text": "the confab target spec" },
        }]);
    }
    json!({
        "$schema": SCHEMA_URI,
        "version": "2.1.0",
        "runs": [run],
    })
}

/// The SARIF log as pretty JSON with a trailing newline.
pub fn to_string(report: &Report, ctx: &SpecContext, gate: &Gate) -> String {
    serde_json::to_string_pretty(&render(report, ctx, gate))
        .map_or_else(|_| String::from("{}\n"), |t| t + "\n")
}
