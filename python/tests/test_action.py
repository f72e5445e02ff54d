"""The GitHub Action's script part, run locally with fakes of what the runner provides
(GITHUB_STEP_SUMMARY, GITHUB_OUTPUT, RUNNER_TEMP): the Markdown job summary from a JSON report
(python/confab_action/summary.py) and, with a built wheel (CONFAB_TEST_WHEEL, which
scripts/python-tests.sh sets), the whole scripts/action/run.sh against the Flask example."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT

SUMMARY = ROOT / "python" / "confab_action" / "summary.py"
RUN = ROOT / "scripts" / "action" / "run.sh"


def outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def run_summary(tmp_path: Path, report: Path, *args: str) -> tuple[str, dict[str, str]]:
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    summary.write_text("# earlier step\n")  # the summary file is appended to
    env = dict(os.environ, GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(output))
    subprocess.run([sys.executable, str(SUMMARY), str(report), *args], env=env, check=True)
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    return text, outputs(output) if output.exists() else {}


def table_rows(md: str, heading: str) -> list[list[str]]:
    """The body rows of the first Markdown table under `heading`, as cell lists."""
    lines = md.split(heading, 1)[1].strip("\n").splitlines()
    rows = []
    for line in lines[2:]:  # past the header and its rule
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


def test_summary_of_the_vulnerable_example(tmp_path):
    md, out = run_summary(
        tmp_path, FIXTURES / "report-vulnerable.json", "--exit-code", "1",
        "--html-artifact", "confab-report",
    )
    assert "## confab scan: examples/flask/vulnerable.toml" in md
    assert "❌ **failed**: 16 failing finding(s) of 16 (fail on low and above)." in md
    assert "seed: 1 · cases: 64 · requests: 169" in md
    inv = {r[0]: r for r in table_rows(md, "### Invariants")}
    assert list(inv) == ["AUTHN", "AUTHZ", "PROVENANCE", "OWNERSHIP", "AGENCY", "ECHO", "ROBUST",
                         "COST", "UNAUTH_LLM", "AGREE"]
    # invariant | result | findings | cases | worst | failing | CWE | OWASP
    assert inv["ECHO"][1:6] == ["❌ broken", "5", "83", "🔴 high", "5"]
    assert inv["ECHO"][6] == "CWE-200, CWE-532"
    assert inv["AGENCY"][7] == "LLM06:2025 Excessive Agency"
    assert inv["COST"][4] == "🟠 medium"
    assert inv["UNAUTH_LLM"][1] == "✅ held" and inv["AGREE"][2] == "0"
    top = table_rows(md, "### Top findings (10 of 16)")
    assert [r[0] for r in top] == [str(i) for i in range(1, 11)]
    # Most severe first, then by cases: the token in the target's logs (34 cases) leads.
    assert top[0][1:6] == ["🔴 high", "ECHO", "assist", "`bearer_token_in_target_logs`", "34"]
    assert all(r[1].endswith("high") for r in top[:9]) and top[9][1] == "🟠 medium"
    # The first findings come with their replay command and curl line.
    assert md.count("<details><summary>Reproduce") == 5
    assert "confab replay .confab/replays/ECHO-assist-bearer_token_in_target_logs.json" in md
    assert "\ncurl -i -X POST 'http://127.0.0.1:" in md
    assert "**confab-report** artifact" in md
    assert out == {"findings": "16", "failing": "16", "passed": "false"}


def test_summary_of_a_clean_run(tmp_path):
    md, out = run_summary(tmp_path, FIXTURES / "report-hardened.json", "--exit-code", "0")
    assert "✅ **passed**: 0 failing finding(s) of 0" in md
    assert "No finding: every invariant held on every endpoint." in md
    assert all(r[1] == "✅ held" for r in table_rows(md, "### Invariants"))
    assert out == {"findings": "0", "failing": "0", "passed": "true"}


def test_summary_marks_gated_findings_and_escapes_what_the_target_said(tmp_path):
    data = json.loads((FIXTURES / "report-vulnerable.json").read_text())
    low = [f["fingerprint"] for f in data["findings"] if f["severity"] == "low"]
    data["gate"].update(fail_on="medium", below_threshold=low,
                        failing=[fp for fp in data["gate"]["failing"] if fp not in low])
    data["findings"][0]["observed"] = "a | b <script>alert(1)</script> `x`\nsecond line"
    report = tmp_path / "r.json"
    report.write_text(json.dumps(data))
    md, out = run_summary(tmp_path, report, "--exit-code", "1", "--top", "16")
    assert "12 failing finding(s) of 16 (fail on medium and above)" in md
    assert out["failing"] == "12"
    inv = {r[0]: r for r in table_rows(md, "### Invariants")}
    assert inv["AUTHN"][1] == "⚠️ not gating" and inv["AUTHN"][5] == "0"
    rows = table_rows(md, "### Top findings (16 of 16)")
    assert len(rows) == 16
    assert [r[6] for r in rows].count("below threshold") == 4
    assert "<script>" not in md
    assert "a &#124; b &lt;script&gt;alert(1)&lt;/script&gt; &#96;x&#96; second line" in md


def test_summary_of_a_scan_that_could_not_run(tmp_path):
    stderr = tmp_path / "stderr.txt"
    stderr.write_text("confab: scan: api.toml:3: invalid type: integer `12`, expected a string\n")
    md, out = run_summary(tmp_path, tmp_path / "missing.json", "--exit-code", "2",
                          "--spec", "api.toml", "--stderr-file", str(stderr))
    assert "## confab scan: could not run" in md
    assert "`confab scan --spec api.toml` exited with 2" in md
    assert "api.toml:3: invalid type" in md
    assert out == {}


def test_summary_refuses_what_is_not_a_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"runs": []}')
    proc = subprocess.run([sys.executable, str(SUMMARY), str(bad), "--summary", str(tmp_path / "s")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not a confab JSON report" in proc.stderr


@pytest.fixture
def wheel() -> str:
    w = os.environ.get("CONFAB_TEST_WHEEL")
    if not w or not Path(w).is_file():
        pytest.skip("CONFAB_TEST_WHEEL (a built confab-llm wheel) is not set")
    pytest.importorskip("flask", reason="the Flask example needs examples/flask/requirements.txt")
    return w


def run_action(tmp_path: Path, wheel: str, **inputs: str) -> tuple[subprocess.CompletedProcess,
                                                                    str, dict[str, str]]:
    work = tmp_path / "repo"
    (work / "examples" / "flask").mkdir(parents=True, exist_ok=True)
    for name in ("app.py", "hardened.toml", "vulnerable.toml"):
        shutil.copy(ROOT / "examples" / "flask" / name, work / "examples" / "flask" / name)
    runner_temp = tmp_path / "runner-temp"
    runner_temp.mkdir()
    summary, output = tmp_path / "summary.md", tmp_path / "output.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONFAB_", "GITHUB_"))}
    env.update(
        RUNNER_TEMP=str(runner_temp), GITHUB_STEP_SUMMARY=str(summary),
        GITHUB_OUTPUT=str(output), CONFAB_WHEEL=wheel, CONFAB_PYTHON=sys.executable,
        # The target's `python3` must be one with Flask: this test's, as a workflow's would be.
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    env.update({f"CONFAB_{k.upper()}": v for k, v in inputs.items()})
    proc = subprocess.run(["bash", str(RUN)], cwd=work, env=env, capture_output=True, text=True,
                          timeout=600)
    return proc, summary.read_text() if summary.exists() else "", (
        outputs(output) if output.exists() else {})


def test_action_script_scans_the_vulnerable_example(tmp_path, wheel):
    proc, md, out = run_action(tmp_path, wheel, spec="examples/flask/vulnerable.toml",
                               cases="60", seed="1", fail_on="medium", shard="0/2")
    assert proc.returncode == 0, proc.stderr  # findings fail the job in the action's last step
    assert out["exit-code"] == "1", proc.stderr
    assert out["category"] == "confab-shard-0-of-2"
    assert out["artifact"] == "confab-report-shard-0-of-2"
    sarif = json.loads(Path(out["sarif"]).read_text())
    assert sarif["version"] == "2.1.0" and sarif["runs"][0]["results"]
    assert Path(out["html"]).read_text().lstrip().lower().startswith("<!doctype html")
    report = json.loads(Path(out["json"]).read_text())
    assert report["gate"]["fail_on"] == "medium"
    assert int(out["failing"]) == len(report["gate"]["failing"]) > 0
    assert "## confab scan: examples/flask/vulnerable.toml" in md
    assert "### Invariants" in md and "### Top findings" in md
    assert "::warning title=confab::findings fail the gate" in proc.stdout + proc.stderr


def test_action_script_passes_the_hardened_example(tmp_path, wheel):
    proc, md, out = run_action(tmp_path, wheel, spec="examples/flask/hardened.toml",
                               cases="60", seed="1", fail_on="medium")
    assert proc.returncode == 0, proc.stderr
    assert out["exit-code"] == "0" and out["failing"] == "0" and out["passed"] == "true"
    assert out["category"] == "confab" and out["artifact"] == "confab-report"
    assert "✅ **passed**" in md


def test_action_script_reports_a_scan_that_could_not_run(tmp_path, wheel):
    bad = tmp_path / "repo" / "bad.toml"
    bad.parent.mkdir(parents=True)
    bad.write_text('[target]\ncommand = ["python3", "app.py"]\nbase_url = 12\n')
    proc, md, out = run_action(tmp_path, wheel, spec="bad.toml")
    assert proc.returncode == 2
    assert out["exit-code"] == "2" and "sarif" not in out
    assert "## confab scan: could not run" in md and "bad.toml:3" in md


def test_action_script_needs_a_spec(tmp_path, wheel):
    proc, md, out = run_action(tmp_path, wheel, spec="nowhere.toml")
    assert proc.returncode == 2 and out["exit-code"] == "2"
    assert "spec nowhere.toml: no such file" in md
