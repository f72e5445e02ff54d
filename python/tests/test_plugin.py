"""The pytest plugin against the repository's Flask example target (examples/flask), run as
a user would: `pytest --confab-spec examples/flask/....toml` from the folder the spec's
command is relative to. Each run is one real `confab scan` of 60 cases (a few seconds)."""

from __future__ import annotations

import re

import pytest

CASES = ["--confab-cases", "60", "--confab-seed", "1"]
ENDPOINTS = ("read", "assist")
INVARIANTS = ("AUTHN", "AUTHZ", "PROVENANCE", "OWNERSHIP", "AGENCY", "ECHO", "ROBUST", "COST",
              "UNAUTH_LLM", "AGREE")
SPEC = "examples/flask/vulnerable.toml"


def outcomes_by_item(result: pytest.RunResult) -> dict[str, str]:
    """{"read::AUTHN": "PASSED", ...} from a `-v` run's lines."""
    out = {}
    for line in result.outlines:
        m = re.match(r"examples/flask/\w+\.toml::(\w+::\w+) (PASSED|FAILED|SKIPPED|ERROR)", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def test_hardened_example_passes(pytester, flask_example, plugin_args, confab_bin):
    # The hardened form must show nothing above low (examples/flask/README.md).
    result = pytester.runpytest(
        *plugin_args, "-v", "--confab-spec", "examples/flask/hardened.toml", *CASES,
        "--confab-fail-on", "medium",
    )
    items = outcomes_by_item(result)
    assert set(items) == {f"{e}::{i}" for e in ENDPOINTS for i in INVARIANTS}, result.stdout.str()
    assert "FAILED" not in items.values(), result.stdout.str()
    # UNAUTH_LLM does not apply to an endpoint that does not reach the model.
    assert items["read::UNAUTH_LLM"] == "SKIPPED"
    assert items["assist::UNAUTH_LLM"] == "PASSED"
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*= confab =*", "examples/flask/hardened.toml: * cases*"])


def test_ini_options_run_from_the_ini_folder(pytester, flask_example, plugin_args, confab_bin):
    pytester.makeini(
        "[pytest]\nconfab_spec = examples/flask/hardened.toml\nconfab_cases = 20\n"
        "confab_fail_on = medium\n"
    )
    sub = pytester.mkdir("sub")
    sub.joinpath("test_nothing.py").write_text("def test_ok():\n    pass\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(sub)  # the spec's command is relative to the ini file's folder, not this one
        result = pytester.runpytest(*plugin_args, "-q", ".")
    assert result.ret == 0, result.stdout.str()
    result.assert_outcomes(passed=20, skipped=1)
    result.stdout.fnmatch_lines(["*hardened.toml: 2? cases*"])


def test_vulnerable_example_fails_the_right_items(pytester, flask_example, plugin_args, confab_bin):
    # A test of the user's own that reads the same scan through the fixture: no second scan.
    pytester.makepyfile(
        test_uses_report="""
        def test_report(confab_scan):
            assert confab_scan.exit_code == 1 and not confab_scan.passed
            assert confab_scan["stats"]["seed"] == 1
            agency = confab_scan.select(endpoint="assist", invariant="AGENCY")
            assert agency and agency[0].severity == "high"
            assert agency[0].replay_command.startswith("confab replay ")
            assert confab_scan.outputs["html"].is_file()
        """
    )
    result = pytester.runpytest(*plugin_args, "-v", "-rfs", "--confab-spec", SPEC, *CASES)
    items = outcomes_by_item(result)
    assert len(items) == 20, result.stdout.str()
    # Planted flaws (examples/flask/README.md) and the items that must catch them.
    planted = {
        "read::OWNERSHIP": "#10 plain IDOR",
        "read::ECHO": "#4/#6 token in errors and logs",
        "assist::ECHO": "#5/#6 token in the prompt and logs",
        "assist::AGENCY": "#8/#9 tools beyond the capabilities",
        "assist::COST": "#11 max_tokens over the cap",
    }
    for item, flaw in planted.items():
        assert items[item] == "FAILED", f"{item} should catch {flaw}\n{result.stdout.str()}"
    assert items["read::UNAUTH_LLM"] == "SKIPPED"
    assert set(items.values()) <= {"PASSED", "FAILED", "SKIPPED"}
    result.assert_outcomes(
        failed=list(items.values()).count("FAILED"),
        passed=list(items.values()).count("PASSED") + 1,  # + test_report
        skipped=list(items.values()).count("SKIPPED"),
    )
    assert result.ret == 1
    out = result.stdout.str()
    # A failing item shows the finding, its replay command and its curl line.
    section = out.split("confab assist AGENCY", 1)[1].split("\n____", 1)[0]
    assert "HIGH AGENCY (CWE-918, CWE-285) on assist: capability_exceeded_delete" in section
    assert "observed: DELETE /docs/" in section
    assert re.search(r"replay: confab replay \S+/AGENCY-assist-capability_exceeded_delete\.json",
                     section)
    assert "curl: curl -i -X POST 'http://127.0.0.1:" in section
    assert "Authorization: Bearer ey" in section
    # The short summary line carries confab's one-line message.
    result.stdout.fnmatch_lines(["FAILED examples/flask/vulnerable.toml::assist::AGENCY - HIGH*"])


def test_fail_on_high_skips_lower_findings(pytester, flask_example, plugin_args, confab_bin):
    result = pytester.runpytest(
        *plugin_args, "-v", "-rs", "--confab-spec", SPEC, *CASES, "--confab-fail-on", "high",
    )
    items = outcomes_by_item(result)
    assert items["assist::COST"] == "SKIPPED"  # medium: below --fail-on high
    assert items["assist::AGENCY"] == "FAILED"
    result.stdout.fnmatch_lines(["*not gating: * below --fail-on high*"])


def test_only_the_chosen_items_run_with_k(pytester, flask_example, plugin_args, confab_bin):
    result = pytester.runpytest(*plugin_args, "-v", "--confab-spec", SPEC, *CASES, "-k", "ECHO")
    assert set(outcomes_by_item(result)) == {"read::ECHO", "assist::ECHO"}
    result.assert_outcomes(failed=2, deselected=18)


def test_confab_that_cannot_run_is_a_collection_error(pytester, plugin_args, confab_bin):
    pytester.makefile(".toml", bad='[target]\ncommand = ["python3", "app.py"]\nbase_url = 12\n')
    result = pytester.runpytest(*plugin_args, "--confab-spec", "bad.toml")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(
        [
            "*ERROR collecting bad.toml*",
            "confab could not scan *bad.toml:",
            "confab scan exited with 2 (2: confab could not run)",
            "*bad.toml:3*",  # confab's own message on stderr: file:line
            "*1 error during collection*",
        ]
    )


def test_a_missing_executable_is_a_collection_error(pytester, plugin_args):
    pytester.makefile(".toml", spec="")
    result = pytester.runpytest(*plugin_args, "--confab-spec", "spec.toml",
                                "--confab-bin", str(pytester.path / "no-such-confab"))
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*--confab-bin=*no-such-confab* is not an executable file*"])


def test_a_missing_spec_is_a_usage_error(pytester, plugin_args):
    result = pytester.runpytest(*plugin_args, "--confab-spec", "nowhere.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--confab-spec: nowhere.toml is not a file*"])


def test_fixture_without_a_spec_skips(pytester, plugin_args):
    pytester.makepyfile("def test_x(confab_scan):\n    pass\n")
    result = pytester.runpytest(*plugin_args, "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*confab_scan needs --confab-spec*"])


def test_the_wheels_executable_is_found_beside_python(monkeypatch):
    from conftest import plugin_installed

    from confab_pytest import find_confab
    from confab_pytest.runner import interpreter_dirs

    if not plugin_installed():
        pytest.skip("the confab-llm wheel is not installed in this environment")
    monkeypatch.delenv("CONFAB_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_confab()
    assert any(found.startswith(str(d)) for d in interpreter_dirs()), found
