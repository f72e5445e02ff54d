"""The JSON report model (confab_pytest.Report), on reports confab wrote."""

from __future__ import annotations

import json

import pytest
from conftest import FIXTURES

from confab_pytest import Report, severity_rank


def test_vulnerable_report_loads_with_every_field():
    r = Report.load(FIXTURES / "report-vulnerable.json")
    assert len(r) == len(r["findings"]) == 16
    assert not r.passed and r.gate["fail_on"] == "low"
    assert r.stats["seed"] == 1 and r.spec == "examples/flask/vulnerable.toml"
    for f in r:
        assert f.invariant and f.severity in ("low", "medium", "high") and f.endpoint
        assert f.fingerprint == f"{f.invariant}/{f.endpoint}/{f.kind}"
        assert f.curl.startswith("curl ")
        assert f.replay_command == f"confab replay {f.replay}"
        assert r.status(f) == "failing"
    agency = r.select(endpoint="assist", invariant="AGENCY")
    assert [f.kind for f in agency] == ["capability_exceeded_delete"]
    text = agency[0].text()
    assert text.startswith("HIGH AGENCY (CWE-918, CWE-285) on assist: capability_exceeded_delete")
    assert "replay: confab replay .confab/replays/AGENCY-assist-" in text
    assert "curl: curl -i -X POST" in text


def test_order_gate_and_selection():
    data = json.loads((FIXTURES / "report-vulnerable.json").read_text())
    low = [f["fingerprint"] for f in data["findings"] if f["severity"] == "low"]
    data["gate"].update(
        fail_on="medium",
        failing=[fp for fp in data["gate"]["failing"] if fp not in low],
        below_threshold=low,
    )
    r = Report.from_json(data)
    assert {f.fingerprint for f in r.failing} == set(data["gate"]["failing"])
    assert all(r.status(f) == "below_threshold" for f in r.select(min_severity="low")
               if f.severity == "low")
    assert all(severity_rank(f.severity) >= 1 for f in r.select(min_severity="medium"))
    ranks = [(-severity_rank(f.severity), -f.cases) for f in r.sorted_findings()]
    assert ranks == sorted(ranks)
    assert set(r.by_invariant()) == {f.invariant for f in r}


def test_hardened_report_passes():
    r = Report.load(FIXTURES / "report-hardened.json")
    assert r.passed and r.findings == [] and r.failing == []


def test_not_a_report_is_refused(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"runs": []}')
    with pytest.raises(ValueError, match="not a confab JSON report"):
        Report.load(p)
