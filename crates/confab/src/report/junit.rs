//! JUnit XML, the test-report format CI systems show (GitLab, Jenkins, Azure DevOps, GitHub
//! test-report actions).
//!
//! `<testsuites>` holds a `<testsuite>` per endpoint, and each suite a `<testcase>` per
//! invariant, all of them: a case passes when the invariant held on that endpoint, has a
//! `<failure type="SEVERITY">` when findings fail the gate, and is `<skipped>` with the reason
//! when its findings are baselined or below `--fail-on` (so the test report agrees with the
//! exit code), or when the invariant does not apply (UNAUTH_LLM on an endpoint that does not
//! reach the model).

use super::{Finding, Gate, Report, SpecContext, Status, TEST_CREDENTIALS_NOTE, guidance};
use crate::oracle::{Invariant, Severity};
use std::fmt::Write as _;

/// Escapes text for XML 1.0 content and attribute values. Characters XML 1.0 cannot hold at
/// all (control characters but tab, line feed and carriage return; U+FFFE, U+FFFF) are written
/// as `\u{..}` text instead.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes an attribute value that should stay on one line (line breaks as `&#10;`).
fn attr(s: &str) -> String {
    escape(s)
        .replace('\n', "&#10;")
        .replace('\r', "&#13;")
        .replace('\t', "&#9;")
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

enum Outcome<'a> {
    Passed,
    Failed(Vec<&'a Finding>),
    Skipped(String, Vec<&'a Finding>),
}

fn outcome<'a>(findings: Vec<&'a Finding>, gate: &Gate, applies: bool) -> Outcome<'a> {
    if findings.is_empty() {
        return if applies {
            Outcome::Passed
        } else {
            Outcome::Skipped(
                "not applicable: the endpoint does not reach the model (llm = false)".to_owned(),
                findings,
            )
        };
    }
    if findings.iter().any(|f| gate.status(f) == Status::Failing) {
        return Outcome::Failed(findings);
    }
    let baselined = findings
        .iter()
        .filter(|f| gate.status(f) == Status::Baselined)
        .count();
    let below = findings.len() - baselined;
    let mut why = Vec::new();
    if baselined > 0 {
        why.push(format!("{baselined} baselined finding(s)"));
    }
    if below > 0 {
        why.push(format!(
            "{below} finding(s) below --fail-on {}",
            gate.fail_on
        ));
    }
    Outcome::Skipped(format!("not gating: {}", why.join(", ")), findings)
}

fn describe(out: &mut String, f: &Finding, gate: &Gate) {
    let status = match gate.status(f) {
        Status::Failing => "",
        Status::Baselined => " [baselined]",
        Status::BelowThreshold => " [below --fail-on]",
    };
    let _ = writeln!(
        out,
        "{} {} ({}) — {} case(s){status}",
        f.severity.as_str().to_uppercase(),
        f.kind,
        f.fingerprint,
        f.cases
    );
    let _ = writeln!(out, "  observed: {}", f.observed);
    let _ = writeln!(out, "  case: {}", f.example.case);
    let _ = writeln!(out, "  request: {}", f.example.request);
    let _ = writeln!(out, "  reproduce: {}", f.reproduce.curl);
    if let Some(r) = &f.reproduce.replay {
        let _ = writeln!(out, "  replay: confab replay {r}");
    }
}

fn body(findings: &[&Finding], inv: Invariant, gate: &Gate) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} ({}): {}",
        inv.id(),
        inv.cwe().join(", "),
        inv.summary()
    );
    for f in findings {
        describe(&mut s, f, gate);
    }
    let _ = writeln!(s, "remediation: {}", guidance(inv).remediation);
    let _ = writeln!(s, "{TEST_CREDENTIALS_NOTE}");
    s
}

/// The JUnit XML document of a report. Endpoints come from `ctx` (in spec order), then any
/// endpoint a finding names that `ctx` does not list.
pub fn render(report: &Report, ctx: &SpecContext, gate: &Gate) -> String {
    let mut endpoints: Vec<(String, bool)> = ctx
        .endpoints
        .iter()
        .map(|e| (e.name.clone(), e.llm))
        .collect();
    for f in &report.findings {
        if !endpoints.iter().any(|(n, _)| n == &f.endpoint) {
            endpoints.push((f.endpoint.clone(), true));
        }
    }
    let time = report.stats.duration_ms as f64 / 1000.0;
    let mut suites = String::new();
    let (mut all_tests, mut all_failures, mut all_skipped) = (0, 0, 0);
    for (endpoint, llm) in &endpoints {
        let class = format!("confab.{endpoint}");
        let (mut failures, mut skipped) = (0, 0);
        let mut cases = String::new();
        for inv in Invariant::ALL {
            let findings: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| &f.endpoint == endpoint && f.invariant == inv)
                .collect();
            let applies = *llm || inv != Invariant::UnauthLlm;
            let _ = write!(
                cases,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\"",
                attr(&class),
                attr(&format!("{} {}", inv.id(), inv.summary()))
            );
            match outcome(findings, gate, applies) {
                Outcome::Passed => cases.push_str("/>\n"),
                Outcome::Failed(fs) => {
                    failures += 1;
                    let worst = fs.iter().map(|f| f.severity).max().unwrap_or(Severity::Low);
                    let (kind, observed) = fs
                        .iter()
                        .find(|f| gate.status(f) == Status::Failing)
                        .map(|f| (f.kind.as_str(), f.observed.as_str()))
                        .unwrap_or_default();
                    let message = format!(
                        "{} {} on {}: {} — {}",
                        worst.as_str().to_uppercase(),
                        inv.id(),
                        endpoint,
                        kind,
                        truncate(observed, 300)
                    );
                    let _ = write!(
                        cases,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        attr(&message),
                        worst.as_str(),
                        escape(&body(&fs, inv, gate))
                    );
                }
                Outcome::Skipped(why, fs) => {
                    skipped += 1;
                    let _ = write!(cases, ">\n      <skipped message=\"{}\"/>\n", attr(&why));
                    if !fs.is_empty() {
                        let _ = writeln!(
                            cases,
                            "      <system-out>{}</system-out>",
                            escape(&body(&fs, inv, gate))
                        );
                    }
                    cases.push_str("    </testcase>\n");
                }
            }
        }
        let tests = Invariant::ALL.len();
        all_tests += tests;
        all_failures += failures;
        all_skipped += skipped;
        let _ = write!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" \
             skipped=\"{skipped}\" time=\"{time:.3}\">\n    <properties>\n",
            attr(&class)
        );
        for (name, value) in [
            ("target", report.target.clone()),
            ("spec", report.spec.clone()),
            ("seed", report.stats.seed.to_string()),
            ("cases", report.stats.cases.to_string()),
            ("fail_on", gate.fail_on.to_string()),
        ]
        .into_iter()
        .chain(report.stats.warnings.iter().map(|w| ("warning", w.clone())))
        {
            let _ = writeln!(
                suites,
                "      <property name=\"{}\" value=\"{}\"/>",
                attr(name),
                attr(&value)
            );
        }
        suites.push_str("    </properties>\n");
        suites.push_str(&cases);
        suites.push_str("  </testsuite>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"confab\" \
         tests=\"{all_tests}\" failures=\"{all_failures}\" errors=\"0\" skipped=\"{all_skipped}\" \
         time=\"{time:.3}\">\n{suites}</testsuites>\n"
    )
}
