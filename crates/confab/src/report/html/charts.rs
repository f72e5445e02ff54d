//! The report page's charts (findings by invariant, severity and endpoint), drawn as inline
//! SVG, and the table of endpoints.

use super::escape;
use crate::oracle::{Invariant, Severity};
use crate::report::SpecContext;
use crate::triage::{Finding, Report};
use std::fmt::Write as _;

pub(super) const SEVERITIES: [Severity; 3] = [Severity::High, Severity::Medium, Severity::Low];

/// Findings per severity (high, medium, low) among `fs`.
pub(super) fn tally<'a>(fs: impl Iterator<Item = &'a Finding>) -> [u64; 3] {
    let mut t = [0u64; 3];
    for f in fs {
        let i = SEVERITIES
            .iter()
            .position(|s| *s == f.severity)
            .unwrap_or(2);
        t[i] += 1;
    }
    t
}

/// A horizontal bar chart, one row per label, each bar stacked by severity.
fn bar_chart(id: &str, caption: &str, rows: &[(String, [u64; 3])]) -> String {
    const LABEL_W: u64 = 104;
    const BAR_W: u64 = 210;
    const ROW_H: u64 = 24;
    let max = rows
        .iter()
        .map(|(_, t)| t.iter().sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let height = ROW_H * rows.len() as u64 + 30;
    let width = LABEL_W + BAR_W + 40;
    let mut s = format!(
        "<figure class=\"chart\" id=\"{id}\"><figcaption>{}</figcaption>\n\
         <svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {width} {height}\" \
         preserveAspectRatio=\"xMinYMin meet\">\n",
        escape(caption),
        escape(caption)
    );
    for (i, (label, t)) in rows.iter().enumerate() {
        let y = i as u64 * ROW_H;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LABEL_W - 8,
            y + 16,
            escape(label)
        );
        let mut x = LABEL_W;
        for (sev, n) in SEVERITIES.iter().zip(t) {
            if *n == 0 {
                continue;
            }
            let w = (n * BAR_W / max).max(3);
            let _ = writeln!(
                s,
                "<rect class=\"seg-{sev}\" x=\"{x}\" y=\"{}\" width=\"{w}\" height=\"{}\">\
                 <title>{} {sev}: {n}</title></rect>",
                y + 4,
                ROW_H - 8,
                escape(label)
            );
            x += w;
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\">{}</text>",
            x + 6,
            y + 16,
            t.iter().sum::<u64>()
        );
    }
    // Legend.
    let y = ROW_H * rows.len() as u64 + 8;
    for (i, sev) in SEVERITIES.iter().enumerate() {
        let x = LABEL_W + i as u64 * 70;
        let _ = writeln!(
            s,
            "<rect class=\"seg-{sev}\" x=\"{x}\" y=\"{y}\" width=\"12\" height=\"12\"></rect>\
             <text x=\"{}\" y=\"{}\">{sev}</text>",
            x + 16,
            y + 11
        );
    }
    s.push_str("</svg></figure>\n");
    s
}

pub(super) fn charts(r: &Report, ctx: &SpecContext) -> String {
    let by_invariant: Vec<(String, [u64; 3])> = Invariant::ALL
        .iter()
        .map(|inv| {
            (
                inv.id().to_owned(),
                tally(r.findings.iter().filter(|f| f.invariant == *inv)),
            )
        })
        .filter(|(_, t)| t.iter().sum::<u64>() > 0)
        .collect();
    let by_severity: Vec<(String, [u64; 3])> = SEVERITIES
        .iter()
        .map(|sev| {
            (
                sev.as_str().to_owned(),
                tally(r.findings.iter().filter(|f| f.severity == *sev)),
            )
        })
        .collect();
    let by_endpoint: Vec<(String, [u64; 3])> = endpoints(r, ctx)
        .into_iter()
        .map(|e| {
            let t = tally(r.findings.iter().filter(|f| f.endpoint == e));
            (e, t)
        })
        .collect();
    let mut s =
        String::from("<section id=\"breakdown\">\n<h2>Breakdown</h2>\n<div class=\"charts\">\n");
    s.push_str(&bar_chart(
        "chart-invariant",
        "Findings by invariant",
        &by_invariant,
    ));
    s.push_str(&bar_chart(
        "chart-severity",
        "Findings by severity",
        &by_severity,
    ));
    s.push_str(&bar_chart(
        "chart-endpoint",
        "Findings by endpoint",
        &by_endpoint,
    ));
    s.push_str("</div>\n");
    s.push_str(&endpoint_table(r, ctx));
    s.push_str("</section>\n");
    s
}

/// The endpoints to show: the spec's, in order, then any other a finding names.
fn endpoints(r: &Report, ctx: &SpecContext) -> Vec<String> {
    let mut names: Vec<String> = ctx.endpoints.iter().map(|e| e.name.clone()).collect();
    for f in &r.findings {
        if !names.contains(&f.endpoint) {
            names.push(f.endpoint.clone());
        }
    }
    names
}

fn endpoint_table(r: &Report, ctx: &SpecContext) -> String {
    let mut s = String::from(
        "<h3>By endpoint</h3>\n<table id=\"by-endpoint\"><thead><tr><th>Endpoint</th><th>Request</th>\
         <th>High</th><th>Medium</th><th>Low</th><th>Invariants broken</th></tr></thead><tbody>\n",
    );
    for name in endpoints(r, ctx) {
        let fs: Vec<&Finding> = r.findings.iter().filter(|f| f.endpoint == name).collect();
        let t = tally(fs.iter().copied());
        let mut invs: Vec<&str> = fs.iter().map(|f| f.invariant.id()).collect();
        invs.sort_unstable();
        invs.dedup();
        let request = ctx
            .endpoint(&name)
            .map(|e| format!("{} {}", e.method, e.path))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&name),
            escape(&request),
            t[0],
            t[1],
            t[2],
            if invs.is_empty() {
                "none".to_owned()
            } else {
                invs.join(", ")
            }
        );
    }
    s.push_str("</tbody></table>\n");
    s
}
