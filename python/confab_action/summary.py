"""The GitHub job summary of a confab scan, in Markdown.

    python3 summary.py REPORT.json [--exit-code N] [--top N] [--html-artifact NAME]

appends the summary to ``$GITHUB_STEP_SUMMARY`` (or ``--summary FILE``; stdout when neither is
set) and writes ``findings``, ``failing`` and ``passed`` to ``$GITHUB_OUTPUT`` when that is set.
The summary has the outcome, a table of the invariants (findings, cases, worst severity, how many
fail the gate, CWE and OWASP ids) and the top findings, most severe first, each with its replay
command and curl line. ``REPORT.json`` is ``confab scan --format json`` output (or ``--out-json``).

Standard library only: the action runs it from its own checkout, whatever confab it installed.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

#: confab's invariants, in the order of its README table.
INVARIANTS = (
    "AUTHN",
    "AUTHZ",
    "PROVENANCE",
    "OWNERSHIP",
    "AGENCY",
    "ECHO",
    "ROBUST",
    "COST",
    "UNAUTH_LLM",
    "AGREE",
)
SEVERITIES = ("low", "medium", "high")
ICON = {"high": "🔴", "medium": "🟠", "low": "🟡"}


def rank(severity: str) -> int:
    try:
        return SEVERITIES.index(str(severity).lower())
    except ValueError:
        return len(SEVERITIES)


def cell(text: Any, limit: int = 0) -> str:
    """Text for one Markdown table cell: one line, HTML-escaped (what the target said is
    untrusted), pipes and backticks neutralised, cut at ``limit`` characters."""
    s = " ".join(str(text).split())
    if limit and len(s) > limit:
        s = s[: limit - 1] + "…"
    return html.escape(s, quote=False).replace("|", "&#124;").replace("`", "&#96;")


def fence(text: str) -> str:
    """A fenced code block that the text cannot close."""
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}\n{text}\n{ticks}"


def status(finding: Mapping[str, Any], gate: Mapping[str, Any]) -> str:
    fp = finding.get("fingerprint")
    if not gate:
        return "failing"
    for st in ("failing", "baselined", "below_threshold"):
        if fp in (gate.get(st) or ()):
            return st
    return "failing"


def ordered(findings: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(
        findings,
        key=lambda f: (
            -rank(f.get("severity", "")),
            -int(f.get("cases", 0)),
            str(f.get("invariant", "")),
            str(f.get("kind", "")),
        ),
    )


def render(
    report: Mapping[str, Any],
    exit_code: int | None = None,
    top: int = 10,
    html_artifact: str | None = None,
    details: int = 5,
) -> str:
    """The Markdown summary: outcome, invariants table, the ``top`` most severe findings (the
    first ``details`` of them with their replay command and curl line)."""
    findings = list(report.get("findings") or [])
    stats = report.get("stats") or {}
    gate = report.get("gate") or {}
    failing = [f for f in findings if status(f, gate) == "failing"]
    passed = gate.get("passed", not failing) if exit_code is None else exit_code == 0
    out: list[str] = []
    out.append(f"## confab scan: {cell(report.get('spec') or 'spec')}")
    out.append("")
    verdict = "✅ **passed**" if passed else "❌ **failed**"
    fail_on = gate.get("fail_on", "low")
    counts = f"{len(failing)} failing finding(s) of {len(findings)} (fail on {cell(fail_on)} and above"
    if gate.get("baselined"):
        counts += f"; {len(gate['baselined'])} baselined"
    counts += ")"
    out.append(f"{verdict}: {counts}.")
    out.append("")
    facts = [
        ("target", cell(report.get("target", ""))),
        ("seed", cell(stats.get("seed", ""))),
        ("cases", cell(stats.get("cases", ""))),
        ("requests", cell(stats.get("requests", ""))),
        ("model calls", cell(stats.get("model_calls", ""))),
        ("downstream requests", cell(stats.get("downstream_requests", ""))),
        ("duration", f"{int(stats.get('duration_ms', 0)) / 1000:.1f} s"),
        ("confab", cell(report.get("confab_version", ""))),
    ]
    out.append(" · ".join(f"{k}: {v}" for k, v in facts))
    out.append("")

    out.append("### Invariants")
    out.append("")
    out.append("| invariant | result | findings | cases | worst | failing | CWE | OWASP |")
    out.append("|---|---|---:|---:|---|---:|---|---|")
    by_inv: dict[str, list[Mapping[str, Any]]] = {}
    for f in findings:
        by_inv.setdefault(str(f.get("invariant", "")), []).append(f)
    names = list(INVARIANTS) + sorted(k for k in by_inv if k not in INVARIANTS)
    for name in names:
        fs = by_inv.get(name, [])
        if not fs:
            out.append(f"| {name} | ✅ held | 0 | 0 | | 0 | | |")
            continue
        worst = max((f.get("severity", "") for f in fs), key=rank)
        n_failing = sum(1 for f in fs if status(f, gate) == "failing")
        result = "❌ broken" if n_failing else "⚠️ not gating"
        cwe = sorted({c for f in fs for c in f.get("cwe") or ()})
        owasp = sorted({c for f in fs for c in f.get("owasp") or ()})
        out.append(
            f"| {cell(name)} | {result} | {len(fs)} | {sum(int(f.get('cases', 0)) for f in fs)} "
            f"| {ICON.get(worst, '')} {cell(worst)} | {n_failing} | {cell(', '.join(cwe))} "
            f"| {cell(', '.join(owasp))} |"
        )
    out.append("")

    if findings:
        shown = ordered(findings)[: max(top, 0)]
        out.append(f"### Top findings ({len(shown)} of {len(findings)})")
        out.append("")
        out.append("| # | severity | invariant | endpoint | kind | cases | status | observed |")
        out.append("|---:|---|---|---|---|---:|---|---|")
        for i, f in enumerate(shown, 1):
            sev = str(f.get("severity", ""))
            out.append(
                f"| {i} | {ICON.get(sev, '')} {cell(sev)} | {cell(f.get('invariant', ''))} "
                f"| {cell(f.get('endpoint', ''))} | `{cell(f.get('kind', ''))}` "
                f"| {cell(f.get('cases', 0))} | {cell(status(f, gate).replace('_', ' '))} "
                f"| {cell(f.get('observed', ''), 200)} |"
            )
        out.append("")
        for i, f in enumerate(shown[:details], 1):
            repro = f.get("reproduce") or {}
            lines = []
            if repro.get("replay"):
                lines.append(f"confab replay {repro['replay']}")
            if repro.get("curl"):
                lines.append(str(repro["curl"]))
            if not lines:
                continue
            title = (
                f"#{i} {cell(f.get('invariant', ''))} on {cell(f.get('endpoint', ''))}: "
                f"{cell(f.get('kind', ''))}"
            )
            out.append(f"<details><summary>Reproduce {title}</summary>")
            out.append("")
            out.append(fence("\n".join(lines)))
            out.append("")
            out.append("</details>")
            out.append("")
        out.append(
            "_The tokens and keys in reproducers are short-lived test credentials confab minted "
            "for this run only._"
        )
    else:
        out.append("No finding: every invariant held on every endpoint.")
    if gate.get("stale_baseline"):
        out.append("")
        out.append(
            f"{len(gate['stale_baseline'])} baselined finding(s) were not found this time: "
            "the baseline can be refreshed (`confab scan --write-baseline`)."
        )
    if html_artifact:
        out.append("")
        out.append(f"The full HTML report is in the **{cell(html_artifact)}** artifact of this run.")
    out.append("")
    return "\n".join(out)


def render_error(spec: str, exit_code: int, stderr: str = "") -> str:
    """The summary of a scan that could not run (exit code 2)."""
    out = [
        "## confab scan: could not run",
        "",
        f"❌ `confab scan --spec {cell(spec)}` exited with {exit_code}: confab could not run "
        "(a spec error, a target that did not start or answer its ready path, an unwritable "
        "output). Its messages are in the step's log.",
        "",
    ]
    if stderr.strip():
        tail = "\n".join(stderr.strip().splitlines()[-40:])
        out += [fence(tail), ""]
    return "\n".join(out)


def append(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
    else:
        sys.stdout.write(text)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("report", help="confab's JSON report")
    ap.add_argument("--exit-code", type=int, help="confab scan's exit code")
    ap.add_argument("--top", type=int, default=10, help="findings to list (default 10)")
    ap.add_argument("--html-artifact", help="name of the artifact holding the HTML report")
    ap.add_argument(
        "--summary",
        default=os.environ.get("GITHUB_STEP_SUMMARY"),
        help="file to append to (default: $GITHUB_STEP_SUMMARY, else stdout)",
    )
    ap.add_argument(
        "--output",
        default=os.environ.get("GITHUB_OUTPUT"),
        help="step outputs file (default: $GITHUB_OUTPUT)",
    )
    ap.add_argument("--spec", default="", help="the spec, for the summary of a scan that failed")
    ap.add_argument("--stderr-file", help="confab's stderr, shown when it could not run")
    args = ap.parse_args(argv)

    if args.exit_code is not None and args.exit_code not in (0, 1):
        stderr = ""
        if args.stderr_file and Path(args.stderr_file).is_file():
            stderr = Path(args.stderr_file).read_text(encoding="utf-8", errors="replace")
        append(args.summary, render_error(args.spec, args.exit_code, stderr))
        return 0
    try:
        report = json.loads(Path(args.report).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        print(f"summary: cannot read {args.report}: {e}", file=sys.stderr)
        return 2
    if not isinstance(report, dict) or not isinstance(report.get("findings"), list):
        print(f"summary: {args.report} is not a confab JSON report", file=sys.stderr)
        return 2
    append(args.summary, render(report, args.exit_code, args.top, args.html_artifact))
    if args.output:
        gate = report.get("gate") or {}
        findings = report["findings"]
        failing = [f for f in findings if status(f, gate) == "failing"]
        passed = gate.get("passed", not failing) if args.exit_code is None else args.exit_code == 0
        with open(args.output, "a", encoding="utf-8") as f:
            f.write(f"findings={len(findings)}\n")
            f.write(f"failing={len(failing)}\n")
            f.write(f"passed={'true' if passed else 'false'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
