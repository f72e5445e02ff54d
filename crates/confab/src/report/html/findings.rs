//! The report page's findings: each one opening onto what was observed, how to reproduce
//! it, and its CWE and OWASP references.

use super::{Masking, escape, inline_code};
use crate::report::{Gate, SpecContext, Status, TEST_CREDENTIALS_NOTE, guidance};
use crate::triage::{Finding, Report};
use std::fmt::Write as _;

pub(super) fn findings(r: &Report, ctx: &SpecContext, gate: &Gate, mask: &Masking) -> String {
    let mut s = format!(
        "<section id=\"findings\">\n<h2>Findings ({})</h2>\n<p class=\"note\">Most severe \
         first, then by how many cases hit them. Open a finding to see what was observed and \
         how to reproduce it. {}</p>\n<p class=\"toolbar\"><button type=\"button\" \
         id=\"expand-all\">Expand all</button><button type=\"button\" id=\"collapse-all\">\
         Collapse all</button></p>\n",
        r.findings.len(),
        escape(TEST_CREDENTIALS_NOTE)
    );
    for (i, f) in r.findings.iter().enumerate() {
        s.push_str(&finding(i + 1, f, ctx, gate, mask));
    }
    s.push_str("</section>\n");
    s
}

fn gate_tag(f: &Finding, gate: &Gate) -> &'static str {
    match gate.status(f) {
        Status::Failing => "",
        Status::Baselined => "<span class=\"tag\">baselined</span>",
        Status::BelowThreshold => "<span class=\"tag\">below --fail-on</span>",
    }
}

fn finding(n: usize, f: &Finding, ctx: &SpecContext, gate: &Gate, mask: &Masking) -> String {
    let m = |t: &str| escape(&mask.mask(t));
    let sev = f.severity.as_str();
    let endpoint = ctx
        .endpoint(&f.endpoint)
        .map(|e| format!(" ({} {})", e.method, e.path))
        .unwrap_or_default();
    let mut s = format!(
        "<details class=\"finding {sev}\" id=\"finding-{n}\" data-invariant=\"{inv}\">\n\
         <summary><span class=\"badge {sev}\">{SEV}</span><span class=\"inv\">{inv}</span> \
         on <code>{ep}</code>: {kind} <span class=\"cases\">— {cases} case(s)</span>{tag}</summary>\n\
         <div class=\"body\">\n<p class=\"observed\">{observed}</p>\n<dl class=\"facts\">\n\
         <dt>Endpoint</dt><dd><code>{ep}</code>{endpoint}</dd>\n\
         <dt>Case</dt><dd>{case}</dd>\n<dt>Fingerprint</dt><dd><code>{fp}</code></dd>\n\
         <dt>Classification</dt><dd>{refs}</dd>\n</dl>\n",
        SEV = sev.to_uppercase(),
        inv = f.invariant.id(),
        ep = m(&f.endpoint),
        endpoint = m(&endpoint),
        kind = m(&f.kind),
        cases = f.cases,
        tag = gate_tag(f, gate),
        observed = m(&f.observed),
        case = m(&f.example.case),
        fp = m(&f.fingerprint),
        refs = references(&f.cwe, &f.owasp),
    );
    s.push_str(&observed(f, mask));
    s.push_str(&reproduce(f, mask));
    let g = guidance(f.invariant);
    let _ = write!(
        s,
        "<h4>How to fix</h4>\n<div class=\"fix\"><p>{}</p><p><a href=\"#fix-{}\">Full \
         guidance for {} with Flask and Rust examples</a></p></div>\n</div>\n</details>\n",
        inline_code(g.remediation),
        f.invariant.id(),
        f.invariant.id()
    );
    s
}

/// What the example exchange showed: request, the model's scripted output, downstream calls,
/// the response.
fn observed(f: &Finding, mask: &Masking) -> String {
    let m = |t: &str| escape(&mask.mask(t));
    let ex = &f.example;
    let mut s = format!("<h4>Request</h4>\n<pre>{}</pre>\n", m(&ex.request));
    s.push_str("<h4>Model output (scripted by confab, call by call)</h4>\n");
    if ex.model_output.is_empty() {
        s.push_str("<p class=\"note\">The target made no model call.</p>\n");
    } else {
        for (i, out) in ex.model_output.iter().enumerate() {
            let text = serde_json::to_string_pretty(out).unwrap_or_else(|_| out.to_string());
            let _ = writeln!(s, "<pre data-call=\"{}\">{}</pre>", i + 1, m(&text));
        }
    }
    s.push_str("<h4>Downstream calls the target made</h4>\n");
    if ex.downstream.is_empty() {
        s.push_str("<p class=\"note\">None.</p>\n");
    } else {
        s.push_str("<pre>");
        for d in &ex.downstream {
            let _ = writeln!(s, "{}", m(d));
        }
        s.push_str("</pre>\n");
    }
    let status = ex
        .response_status
        .map_or_else(|| "no response".to_owned(), |c| c.to_string());
    let _ = write!(
        s,
        "<h4>Response</h4>\n<pre class=\"response\">{}\n\n{}</pre>\n",
        escape(&status),
        m(&ex.response_excerpt)
    );
    s
}

fn reproduce(f: &Finding, mask: &Masking) -> String {
    let mut s = format!(
        "<h4>Reproduce</h4>\n<p class=\"note\">The client side, with curl (its bearer token is \
         a short-lived test credential confab minted for this run):</p>\n<pre class=\"curl\">{}</pre>\n",
        escape(&mask.mask(&f.reproduce.curl))
    );
    if let Some(r) = &f.reproduce.replay {
        let _ = write!(
            s,
            "<p class=\"note\">The whole exchange, fake model and downstream API included \
             (exit 1 while it still fails):</p>\n<pre class=\"replay\">confab replay {}</pre>\n",
            escape(&mask.mask(r))
        );
    }
    s
}

/// CWE and OWASP ids as links to their public pages.
pub(super) fn references<S: AsRef<str>>(cwe: &[S], owasp: &[S]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in cwe {
        let c = c.as_ref();
        match c
            .strip_prefix("CWE-")
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            Some(n) => parts.push(format!(
                "<a href=\"https://cwe.mitre.org/data/definitions/{n}.html\">{}</a>",
                escape(c)
            )),
            None => parts.push(escape(c)),
        }
    }
    for o in owasp {
        let o = o.as_ref();
        match owasp_uri(o) {
            Some(u) => parts.push(format!("<a href=\"{u}\">{}</a>", escape(o))),
            None => parts.push(escape(o)),
        }
    }
    if parts.is_empty() {
        "none (a conformance check against the RFCs)".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The public page of an OWASP LLM Top 10 (2025) or API Security Top 10 (2023) category.
pub fn owasp_uri(category: &str) -> Option<&'static str> {
    let id = category.split_whitespace().next()?;
    Some(match id {
        "LLM02:2025" => {
            "https://genai.owasp.org/llmrisk/llm022025-sensitive-information-disclosure/"
        }
        "LLM05:2025" => "https://genai.owasp.org/llmrisk/llm052025-improper-output-handling/",
        "LLM06:2025" => "https://genai.owasp.org/llmrisk/llm062025-excessive-agency/",
        "LLM07:2025" => "https://genai.owasp.org/llmrisk/llm072025-system-prompt-leakage/",
        "LLM10:2025" => "https://genai.owasp.org/llmrisk/llm102025-unbounded-consumption/",
        "API1:2023" => {
            "https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/"
        }
        "API2:2023" => {
            "https://owasp.org/API-Security/editions/2023/en/0xa2-broken-authentication/"
        }
        "API5:2023" => {
            "https://owasp.org/API-Security/editions/2023/en/0xa5-broken-function-level-authorization/"
        }
        _ => return None,
    })
}
