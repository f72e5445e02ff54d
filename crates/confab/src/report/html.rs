//! The HTML report: one self-contained file (inline CSS, one inline script, SVG charts drawn
//! here), generated from the same [`Report`] as the JSON report, readable from `file://` with
//! no network at all.
//!
//! Everything that comes from the target (responses, model output as the target shaped it,
//! downstream URIs, kinds) is attacker-controlled: it is HTML-escaped ([`escape`]) and masked
//! ([`Masking`]: the LLM API key canary, generated signing keys, the spec's literal secrets)
//! before it is written. A strict Content-Security-Policy (`default-src 'none'`, the one
//! script allowed by its SHA-256 hash) means nothing is fetched and no injected script runs,
//! even if escaping ever failed. Links a person clicks (CWE and OWASP pages) are plain
//! `<a href>`s.
//!
//! This file draws the page and its summary; `html/charts.rs` the SVG charts and the endpoint
//! table, `html/findings.rs` the findings with what was observed, and `html/remediation.rs` the text per
//! invariant.

mod charts;
mod findings;
mod remediation;

use charts::{SEVERITIES, charts, tally};
pub use findings::owasp_uri;
use findings::{findings, references};

pub use remediation::{Remedy, remedy};

use super::{Finding, Gate, Report, SpecContext, Status, TEST_CREDENTIALS_NOTE};
use crate::guard::Secret;
use crate::guard::scrub::{ScrubConfig, Scrubber, ScrubberBuilder, SecretKind};
use crate::oracle::{Invariant, Severity};
use base64::Engine as _;
use std::fmt::Write as _;

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (NUL, ESC, ...) other than tab and newline are not
            // meaningful in a report: shown as their code point.
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text with `code spans` in backticks, escaped, the spans as `<code>`.
fn inline_code(s: &str) -> String {
    s.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", escape(part))
            } else {
                escape(part)
            }
        })
        .collect()
}

/// What the report masks in text that came from the target.
///
/// Always: OpenAI-style API keys (`sk-…`, which covers the `sk-confab-…` canary confab hands
/// the target as its LLM key) and runs of 64 or more hex digits (the form of the signing key
/// confab generates per run for `{jwt_secret}`). Besides: the literal secrets given to
/// [`Masking::with_secrets`] (a spec's own `secret = "…"`), with their encodings.
pub struct Masking {
    literals: Option<Scrubber>,
    short: Vec<String>,
    patterns: Option<regex::Regex>,
}

impl Default for Masking {
    fn default() -> Self {
        Masking::with_secrets(&[])
    }
}

impl Masking {
    /// Masks the built-in patterns and these literal secrets (label, value).
    pub fn with_secrets(secrets: &[(String, Secret)]) -> Masking {
        let mut b = ScrubberBuilder::new().config(ScrubConfig::literals_only());
        let mut short = Vec::new();
        let mut any = false;
        for (label, secret) in secrets {
            let raw = String::from_utf8_lossy(secret.expose()).into_owned();
            if raw.len() < 6 || raw.contains('{') {
                continue; // too short to mask without noise, or a placeholder the run fills in
            }
            if b.secret(SecretKind::SigningKey, label.clone(), secret)
                .is_ok()
            {
                any = true;
            } else {
                short.push(raw);
            }
        }
        Masking {
            literals: if any { b.build().ok() } else { None },
            short,
            patterns: regex::Regex::new(r"sk-[A-Za-z0-9_-]{20,}|\b[0-9A-Fa-f]{64,}\b").ok(),
        }
    }

    /// The text with every secret replaced by a `[masked]` marker.
    pub fn mask(&self, text: &str) -> String {
        let mut out = match &self.literals {
            Some(s) => s.scrub_str(text).0,
            None => text.to_owned(),
        };
        for s in &self.short {
            out = out.replace(s.as_str(), "[masked:secret]");
        }
        if let Some(re) = &self.patterns {
            out = re
                .replace_all(&out, |c: &regex::Captures<'_>| {
                    if c[0].starts_with("sk-") {
                        "[masked:api_key]"
                    } else {
                        "[masked:key]"
                    }
                })
                .into_owned();
        }
        out
    }
}

/// The report as one HTML page, with the built-in masking.
pub fn render(report: &Report, ctx: &SpecContext, gate: &Gate) -> String {
    render_masked(report, ctx, gate, &Masking::default())
}

/// The report as one HTML page.
pub fn render_masked(report: &Report, ctx: &SpecContext, gate: &Gate, mask: &Masking) -> String {
    let mut sorted = report.clone();
    sorted.sort();
    let r = &sorted;
    let mut body = String::new();
    body.push_str(&header(r, gate));
    body.push_str(&summary(r, ctx, gate, mask));
    if !r.findings.is_empty() {
        body.push_str(&charts(r, ctx));
        body.push_str(&findings(r, ctx, gate, mask));
        body.push_str(&remediations(r));
    }
    body.push_str(&checked(r));
    body.push_str(&footer(r));
    page(&format!("confab report: {}", mask.mask(&r.target)), &body)
}

/// Runs when the page loads. Registered first, in `<head>`: errors and CSP violations while
/// the page is parsed are noted in the page (`#confab-errors`, `data-errors` on `<html>`),
/// which the browser test reads back; `#finding-N` in the address opens that finding.
const SCRIPT: &str = r#"
(function () {
  var root = document.documentElement;
  function note(kind, text) {
    root.setAttribute("data-errors", "1");
    var add = function () {
      var box = document.getElementById("confab-errors");
      if (!box) { return; }
      box.hidden = false;
      var li = document.createElement("li");
      li.textContent = kind + ": " + text;
      box.querySelector("ul").appendChild(li);
    };
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", add);
    } else {
      add();
    }
  }
  window.addEventListener("error", function (e) {
    var t = e.target || {};
    note("error", e.message || t.src || t.href || "a resource failed to load");
  }, true);
  document.addEventListener("securitypolicyviolation", function (e) {
    note("blocked by the Content-Security-Policy", e.violatedDirective + " " + e.blockedURI);
  });
  // #finding-N opens that finding and scrolls to it; without one, the first (most severe)
  // finding is open.
  function openFromAddress() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id ? document.getElementById(id) : null;
    if (el && el.tagName === "DETAILS") {
      el.open = true;
      el.scrollIntoView();
    } else if (!id) {
      var first = document.getElementById("finding-1");
      if (first) { first.open = true; }
    }
  }
  function setAll(open) {
    var all = document.querySelectorAll("details.finding");
    for (var i = 0; i < all.length; i++) { all[i].open = open; }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var exp = document.getElementById("expand-all");
    var col = document.getElementById("collapse-all");
    if (exp) { exp.addEventListener("click", function () { setAll(true); }); }
    if (col) { col.addEventListener("click", function () { setAll(false); }); }
    openFromAddress();
    root.setAttribute("data-ready", "1");
  });
  window.addEventListener("hashchange", openFromAddress);
  // What the page loaded besides itself (resource timing): always 0; the browser test
  // reads it back.
  window.addEventListener("load", function () {
    var n = performance.getEntriesByType ? performance.getEntriesByType("resource").length : 0;
    root.setAttribute("data-resources", String(n));
  });
})();
"#;

const STYLE: &str = r#"
:root { --high: #b71c1c; --medium: #e65100; --low: #1565c0; --ok: #2e7d32;
  --fg: #1c1f24; --muted: #5f6670; --line: #d9dde3; --bg: #f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 32px 0 12px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
h4 { font-size: 13px; margin: 14px 0 4px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
code, pre { font: 13px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; }
pre { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px;
  overflow-x: auto; white-space: pre-wrap; word-break: break-all; margin: 4px 0; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 14px 18px; }
.verdict { border-radius: 8px; padding: 14px 18px; margin: 14px 0; font-size: 17px; color: #fff; }
.verdict.bad { background: var(--high); }
.verdict.warn { background: var(--medium); }
.verdict.good { background: var(--ok); }
.verdict small { display: block; font-size: 14px; opacity: .92; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-all; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; }
.charts figure { margin: 0; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.charts figcaption { font-weight: 600; margin-bottom: 4px; }
figure.chart svg { display: block; width: 100%; max-width: 560px; height: auto; }
svg text { font: 12px system-ui, sans-serif; fill: var(--fg); }
svg .seg-high { fill: var(--high); } svg .seg-medium { fill: var(--medium); } svg .seg-low { fill: var(--low); }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eef0f3; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.badge { display: inline-block; min-width: 64px; text-align: center; border-radius: 4px; color: #fff;
  font-size: 12px; font-weight: 700; padding: 1px 6px; margin-right: 6px; }
.badge.high { background: var(--high); } .badge.medium { background: var(--medium); } .badge.low { background: var(--low); }
.tag { display: inline-block; font-size: 12px; border: 1px solid var(--line); border-radius: 4px; padding: 0 6px; color: var(--muted); margin-left: 6px; }
details.finding { background: #fff; border: 1px solid var(--line); border-left: 5px solid var(--low);
  border-radius: 6px; margin: 8px 0; }
details.finding.high { border-left-color: var(--high); } details.finding.medium { border-left-color: var(--medium); }
details.finding > summary { cursor: pointer; padding: 8px 12px; list-style-position: inside; }
details.finding > summary .inv { font-weight: 700; }
details.finding > summary .cases { color: var(--muted); }
details.finding .body { padding: 0 16px 14px; border-top: 1px solid var(--line); }
.observed { font-size: 15px; margin: 10px 0; }
.note { color: var(--muted); font-size: 13px; }
.fix { background: #f1f8e9; border: 1px solid #c5e1a5; border-radius: 6px; padding: 8px 12px; }
section.remedy { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 6px 18px 14px; margin: 12px 0; }
.examples { display: grid; grid-template-columns: 1fr; gap: 4px; }
pre.code { white-space: pre; word-break: normal; }
.toolbar button { font: inherit; font-size: 13px; margin-right: 6px; padding: 2px 10px; }
#confab-errors { background: #fff3f3; border: 2px solid var(--high); padding: 8px 14px; }
footer { margin-top: 36px; color: var(--muted); font-size: 13px; }
"#;

/// `'sha256-…'` of a script, for the CSP.
fn script_hash(script: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, script.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// The Content-Security-Policy of the page: nothing may load, only confab's script runs.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; script-src {}; img-src data:; \
         base-uri 'none'; form-action 'none'",
        script_hash(SCRIPT)
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"{csp}\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n\
         <link rel=\"icon\" href=\"data:,\">\n\
         <title>{title}</title>\n<script>{SCRIPT}</script>\n<style>{STYLE}</style>\n</head>\n\
         <body>\n<main>\n\
         <div id=\"confab-errors\" hidden><strong>This page reported errors:</strong><ul></ul></div>\n\
         {body}</main>\n</body>\n</html>\n",
        csp = escape(&content_security_policy()),
        title = escape(title),
    )
}

fn count(r: &Report, sev: Severity) -> usize {
    r.findings.iter().filter(|f| f.severity == sev).count()
}

fn header(r: &Report, gate: &Gate) -> String {
    let (class, headline, detail) = verdict(r, gate);
    format!(
        "<header>\n<h1>confab report</h1>\n<p class=\"note\">Can a hallucinated or injected \
         model output make this API act outside what the caller's token and request allow, or \
         leak a secret? confab played the model and the downstream API to find out.</p>\n\
         <div class=\"verdict {class}\" id=\"verdict\">{headline}<small>{detail}</small></div>\n\
         </header>\n"
    )
}

/// The banner: (CSS class, headline, detail), all already HTML.
fn verdict(r: &Report, gate: &Gate) -> (&'static str, String, String) {
    let cases = r.stats.cases;
    let gate_text = gate_sentence(r, gate);
    if r.findings.is_empty() {
        return (
            "good",
            "Clean bill: no findings.".to_owned(),
            format!("Every invariant held in {cases} case(s). {gate_text}"),
        );
    }
    let (h, m, l) = (
        count(r, Severity::High),
        count(r, Severity::Medium),
        count(r, Severity::Low),
    );
    let tally = format!(
        "{} finding(s): {h} high, {m} medium, {l} low, in {cases} case(s).",
        r.findings.len()
    );
    if r.hardened() {
        (
            "good",
            "Clean bill above low: no high or medium finding.".to_owned(),
            format!(
                "{tally} Only strictness notes remain; the reference guard would call this \
                 target hardened. {gate_text}"
            ),
        )
    } else if h > 0 {
        ("bad", tally, gate_text)
    } else {
        ("warn", tally, gate_text)
    }
}

fn gate_sentence(r: &Report, gate: &Gate) -> String {
    let failing = gate.failing(r).len();
    let baselined = r
        .findings
        .iter()
        .filter(|f| gate.status(f) == Status::Baselined)
        .count();
    let mut s = if failing == 0 {
        format!(
            "The CI gate passes (--fail-on {}): confab scan exits 0.",
            gate.fail_on
        )
    } else {
        format!(
            "{failing} finding(s) fail the CI gate (--fail-on {}): confab scan exits 1.",
            gate.fail_on
        )
    };
    if baselined > 0 {
        let _ = write!(s, " {baselined} baselined.");
    }
    escape(&s)
}

fn summary(r: &Report, ctx: &SpecContext, gate: &Gate, mask: &Masking) -> String {
    let st = &r.stats;
    let mut rows: Vec<(&str, String)> = vec![
        ("Target", escape(&mask.mask(&r.target))),
        ("Spec", escape(&mask.mask(&r.spec))),
        ("Seed", st.seed.to_string()),
        ("Cases", st.cases.to_string()),
        ("Requests", st.requests.to_string()),
        ("Model calls", st.model_calls.to_string()),
        ("Downstream requests", st.downstream_requests.to_string()),
        (
            "Duration",
            format!("{:.1} s", st.duration_ms as f64 / 1000.0),
        ),
        ("confab version", escape(&r.confab_version)),
        ("Fail on", escape(gate.fail_on.as_str())),
    ];
    if !ctx.endpoints.is_empty() {
        let eps: Vec<String> = ctx
            .endpoints
            .iter()
            .map(|e| {
                format!(
                    "<code>{}</code> ({} {}{})",
                    escape(&e.name),
                    escape(&e.method),
                    escape(&e.path),
                    if e.llm { ", reaches the model" } else { "" }
                )
            })
            .collect();
        rows.push(("Endpoints", eps.join(", ")));
    }
    if st.one_at_a_time {
        rows.push((
            "Note",
            "cases ran one at a time: the target's downstream and model calls carry neither the \
             caller's token nor the prompt's nonce"
                .to_owned(),
        ));
    }
    let mut s = String::from("<section id=\"summary\">\n<h2>Summary</h2>\n");
    let shapes = st.unknown_model_shapes.iter().map(|call| {
        format!("the target called the model in a shape confab does not speak: {call}")
    });
    for w in st.warnings.iter().cloned().chain(shapes) {
        let _ = writeln!(
            s,
            "<div class=\"verdict warn\" role=\"alert\">Warning<small>{}</small></div>",
            escape(&mask.mask(&w))
        );
    }
    s.push_str("<div class=\"card\"><dl class=\"facts\">\n");
    for (k, v) in rows {
        let _ = writeln!(s, "<dt>{k}</dt><dd>{v}</dd>");
    }
    s.push_str("</dl></div>\n</section>\n");
    s
}

// --- remediation ---------------------------------------------------------------------------

fn remediations(r: &Report) -> String {
    let mut s = String::from(
        "<section id=\"remediation\">\n<h2>How to fix it</h2>\n<p class=\"note\">One section \
         per invariant broken in this run, in the order of the most severe finding. The \
         examples follow the Flask + PyJWT form of <code>examples/flask/app.py</code> and a \
         Rust + axum service using confab's reference guard (<code>confab::guard</code>).</p>\n",
    );
    let mut seen: Vec<Invariant> = Vec::new();
    for f in &r.findings {
        if !seen.contains(&f.invariant) {
            seen.push(f.invariant);
        }
    }
    for inv in seen {
        s.push_str(&remedy_section(inv));
    }
    s.push_str("</section>\n");
    s
}

fn remedy_section(inv: Invariant) -> String {
    let rm = remedy(inv);
    let mut s = format!(
        "<section class=\"remedy\" id=\"fix-{id}\">\n<h3>{id}: {title}</h3>\n\
         <p><em>{summary}.</em> {refs}</p>\n<p>{risk}</p>\n<ol>\n",
        id = inv.id(),
        title = escape(rm.title),
        summary = escape(&capitalize(inv.summary())),
        refs = references(inv.cwe(), inv.owasp()),
        risk = inline_code(rm.risk),
    );
    for step in rm.steps {
        let _ = writeln!(s, "<li>{}</li>", inline_code(step));
    }
    let _ = write!(
        s,
        "</ol>\n<div class=\"examples\">\n<div><h4>Flask + PyJWT</h4><pre class=\"code\">{}</pre></div>\n\
         <div><h4>Rust + axum with confab::guard</h4><pre class=\"code\">{}</pre></div>\n</div>\n</section>\n",
        escape(rm.flask),
        escape(rm.rust)
    );
    s
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Every invariant, whether it held, and where to read more.
fn checked(r: &Report) -> String {
    let mut s = String::from(
        "<section id=\"checked\">\n<h2>What was checked</h2>\n<table><thead><tr><th>Invariant</th>\
         <th>Result</th><th>What it means</th><th>CWE / OWASP</th></tr></thead><tbody>\n",
    );
    for inv in Invariant::ALL {
        let fs: Vec<&Finding> = r.findings.iter().filter(|f| f.invariant == inv).collect();
        let result = if fs.is_empty() {
            "<span class=\"tag\">held</span>".to_owned()
        } else {
            let t = tally(fs.iter().copied());
            let worst = SEVERITIES[t.iter().position(|n| *n > 0).unwrap_or(2)];
            format!(
                "<a href=\"#fix-{}\"><span class=\"badge {worst}\">{} finding(s)</span></a>",
                inv.id(),
                fs.len()
            )
        };
        let _ = writeln!(
            s,
            "<tr><td><strong>{}</strong></td><td>{result}</td><td>{}</td><td>{}</td></tr>",
            inv.id(),
            escape(inv.summary()),
            references(inv.cwe(), inv.owasp())
        );
    }
    s.push_str("</tbody></table>\n</section>\n");
    s
}

fn footer(r: &Report) -> String {
    format!(
        "<footer><p>{}</p><p>Generated by confab {} from the same report as <code>--format \
         json</code>. This page loads nothing from the network; links to CWE and OWASP pages \
         open only when clicked.</p></footer>\n",
        escape(TEST_CREDENTIALS_NOTE),
        escape(&r.confab_version)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralizes_markup() {
        assert_eq!(
            escape("<script>a&b</script> \"x\" 'y'"),
            "&lt;script&gt;a&amp;b&lt;/script&gt; &quot;x&quot; &#39;y&#39;"
        );
        assert_eq!(escape("a\u{0}b\u{1b}c\nd"), "a\\u{0}b\\u{1b}c\nd");
    }

    #[test]
    fn inline_code_escapes_inside_and_out() {
        assert_eq!(inline_code("a `<b>` c<"), "a <code>&lt;b&gt;</code> c&lt;");
    }

    #[test]
    fn masking_hides_keys_and_literal_secrets() {
        let m = Masking::with_secrets(&[
            ("auth.secret".into(), Secret::from("literal-signing-key-42")),
            ("short".into(), Secret::from("abc123x")),
            ("placeholder".into(), Secret::from("{jwt_secret}")),
        ]);
        let hex64 = "0123456789abcdef".repeat(4);
        let text = format!(
            "key sk-confab-0123456789abcdef0123456789abcdef, secret {hex64}, \
             literal-signing-key-42, abc123x, token a.b.c"
        );
        let out = m.mask(&text);
        assert!(!out.contains("sk-confab-0123"), "{out}");
        assert!(!out.contains(&hex64), "{out}");
        assert!(!out.contains("literal-signing-key-42"), "{out}");
        assert!(!out.contains("abc123x"), "{out}");
        assert!(out.contains("token a.b.c"), "{out}");
    }

    #[test]
    fn the_csp_hash_is_of_the_script_in_the_page() {
        let r = Report {
            confab_version: "0".into(),
            target: "t".into(),
            spec: "s".into(),
            findings: vec![],
            stats: Default::default(),
        };
        let html = render(&r, &SpecContext::default(), &Gate::default());
        assert!(html.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(html.contains(&escape(&script_hash(SCRIPT))));
        assert!(html.contains("Clean bill"));
    }

    #[test]
    fn every_owasp_category_of_the_oracle_has_a_page() {
        for inv in Invariant::ALL {
            for o in inv.owasp() {
                assert!(owasp_uri(o).is_some(), "{o}");
            }
        }
    }
}
