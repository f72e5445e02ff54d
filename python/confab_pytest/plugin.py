"""The confab pytest plugin (entry point ``pytest11``, name ``confab``).

``pytest --confab-spec api.toml`` runs ``confab scan`` once per session, during collection, from
the folder pytest was started in (from the ini file's folder for the ``confab_spec`` ini
option), and turns each (endpoint, invariant) of the spec into a test item
``api.toml::ENDPOINT::INVARIANT``: it passes when the invariant held on that endpoint, fails
with the findings (what was observed, the replay command, the curl line) when they fail the
gate (``--confab-fail-on``, ``--confab-baseline``), and is skipped when its findings are below
the gate or baselined, or when the invariant does not apply (UNAUTH_LLM on an endpoint that
does not reach the model). When confab cannot run (exit code 2: a bad spec, a target that does
not start) the spec is a collection error that shows confab's stderr.

The ``confab_scan`` fixture returns the :class:`confab_pytest.Report` of that run.
"""

from __future__ import annotations

import os
import re
import shlex
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from .report import TEST_CREDENTIALS_NOTE, Finding, Report
from .runner import ConfabError, ConfabNotFound, ScanOptions, find_confab, run_scan

SEVERITY_CHOICES = ("low", "medium", "high")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("confab", "confab: fuzz an LLM-backed API behind bearer tokens")
    group.addoption(
        "--confab-spec",
        metavar="SPEC",
        help="run `confab scan` on this spec once per session; each (endpoint, invariant) "
        "becomes a test item (ini: confab_spec)",
    )
    group.addoption("--confab-cases", type=int, metavar="N", help="cases to run (confab's --cases)")
    group.addoption("--confab-seed", type=int, metavar="K", help="campaign seed (confab's --seed)")
    group.addoption(
        "--confab-fail-on",
        choices=SEVERITY_CHOICES,
        metavar="SEVERITY",
        help="lowest severity that fails an item: low (default), medium or high",
    )
    group.addoption(
        "--confab-baseline",
        action="append",
        default=[],
        metavar="FILE",
        help="known findings (confab's --baseline; repeatable): reported, not failing",
    )
    group.addoption(
        "--confab-bin",
        metavar="PATH",
        help="the confab executable (default: $CONFAB_BIN, else the one installed beside this "
        "Python, else confab on PATH)",
    )
    group.addoption(
        "--confab-out",
        metavar="DIR",
        help="where the scan's report.json, report.xml and report.html go (default: a new "
        "folder under pytest's temporary folder, printed at the end)",
    )
    group.addoption(
        "--confab-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="pass ARG on to `confab scan` (repeatable), e.g. --confab-arg=--endpoint=assist",
    )
    parser.addini("confab_spec", "the spec of --confab-spec, when the option is not given")
    parser.addini("confab_cases", "the default of --confab-cases")
    parser.addini("confab_seed", "the default of --confab-seed")
    parser.addini("confab_fail_on", "the default of --confab-fail-on")


@dataclass
class _State:
    options: ScanOptions | None
    confab_bin: str | None
    cwd: Path
    config: pytest.Config | None = None
    out_given: bool = False
    report: Report | None = None
    error: str | None = None
    ran: bool = False

    def _out_dir(self) -> Path:
        """A new folder under pytest's base temporary folder (pytest keeps the last few runs'),
        or a temporary folder of its own when pytest's is not at hand."""
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is not None:
            try:
                return Path(factory.mktemp("confab", numbered=True))
            except Exception:  # noqa: BLE001 - any failure: fall back to a plain temp folder
                pass
        return Path(tempfile.mkdtemp(prefix="confab-pytest-"))

    def scan(self) -> Report:
        """Runs the scan the first time; raises ConfabError (with the reason) when it failed."""
        if not self.ran:
            self.ran = True
            try:
                assert self.options is not None
                if not self.out_given:
                    self.options.out_dir = self._out_dir()
                confab = find_confab(self.confab_bin)
                self.report = run_scan(confab, self.options, self.cwd)
            except (ConfabNotFound, ConfabError) as e:
                self.error = str(e)
        if self.error is not None:
            raise ConfabError(self.error)
        assert self.report is not None
        return self.report


_STATE = pytest.StashKey[_State]()


def _opt(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"--confab-{name.replace('_', '-')}")
    if value is None:
        ini = config.getini(f"confab_{name}")
        value = ini if ini not in ("", None, []) else None
    return value


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "confab: an (endpoint, invariant) item of a confab scan")
    invocation = Path(config.invocation_params.dir)
    cwd = invocation
    spec = config.getoption("--confab-spec")
    if not spec and config.getini("confab_spec"):
        # From the ini file: relative to the ini file's folder, and confab runs from there (the
        # spec's command is relative to it), wherever pytest was started.
        spec = str(config.getini("confab_spec"))
        if config.inipath is not None:
            cwd = config.inipath.parent
    options = None
    out_dir = None
    if spec:
        spec_path = Path(os.path.expanduser(str(spec)))
        if not spec_path.is_absolute():
            spec_path = cwd / spec_path
        if not spec_path.is_file():
            raise pytest.UsageError(f"--confab-spec: {spec} is not a file")
        fail_on = _opt(config, "fail_on")
        if fail_on is not None and fail_on not in SEVERITY_CHOICES:
            raise pytest.UsageError(f"confab_fail_on: {fail_on!r} is not one of low, medium, high")
        cases, seed = _opt(config, "cases"), _opt(config, "seed")
        try:
            cases_n = None if cases is None else int(cases)
            seed_n = None if seed is None else int(seed)
        except ValueError as e:
            raise pytest.UsageError(f"confab_cases / confab_seed: {e}") from None
        out = config.getoption("--confab-out")
        out_dir = None if not out else invocation / out  # an absolute `out` stays as it is
        extra: list[str] = []
        for arg in config.getoption("--confab-arg") or []:
            extra += shlex.split(arg)
        options = ScanOptions(
            spec=Path(os.path.expanduser(str(spec))),
            cases=cases_n,
            seed=seed_n,
            fail_on=fail_on,
            baseline=[invocation / b for b in config.getoption("--confab-baseline") or []],
            extra_args=extra,
        )
        if out_dir is not None:
            options.out_dir = out_dir
    state = _State(options, config.getoption("--confab-bin"), cwd, config=config)
    state.out_given = out_dir is not None
    config.stash[_STATE] = state


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash.get(_STATE, None)
    if state is None or state.options is None:
        return []
    try:
        exe = find_confab(state.confab_bin)
    except ConfabNotFound:
        exe = "(not found)"
    return [f"confab: {exe}, spec {state.options.spec}"]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    rep = yield
    if isinstance(collector, pytest.Session) and rep.passed:
        state = collector.config.stash.get(_STATE, None)
        if state is not None and state.options is not None:
            spec = state.cwd / state.options.spec  # the spec as given, from where pytest runs
            rep.result.append(ConfabSpec.from_parent(collector, path=spec))
    return rep


@dataclass(frozen=True)
class _Case:
    endpoint: str
    invariant: str
    summary: str
    outcome: str  # "passed", "failed" or "skipped"
    message: str


def _junit_cases(path: Path) -> list[_Case]:
    """The (endpoint, invariant) outcomes of confab's JUnit report, in its order."""
    cases = []
    for suite in ET.parse(path).getroot().iter("testsuite"):
        endpoint = suite.get("name", "").removeprefix("confab.")
        for tc in suite.iter("testcase"):
            invariant, _, summary = tc.get("name", "").partition(" ")
            failure, skipped = tc.find("failure"), tc.find("skipped")
            if failure is not None:
                outcome, message = "failed", failure.get("message", "")
            elif skipped is not None:
                outcome, message = "skipped", skipped.get("message", "")
            else:
                outcome, message = "passed", ""
            cases.append(_Case(endpoint, invariant, summary, outcome, message))
    return cases


def _endpoint_lines(path: Path) -> dict[str, int]:
    """0-based line of each ``[[endpoint]]`` table's ``name = "..."`` in the spec (for reports)."""
    lines: dict[str, int] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return lines
    in_endpoint = False
    for i, line in enumerate(text.splitlines()):
        table = re.match(r"\s*\[\[?\s*([\w.]+)\s*\]\]?", line)
        if table:
            in_endpoint = table.group(1) == "endpoint"
            continue
        m = re.match(r"""\s*name\s*=\s*(?:"([^"]*)"|'([^']*)')""", line)
        if in_endpoint and m:
            lines.setdefault(m.group(1) if m.group(1) is not None else m.group(2), i)
    return lines


class ConfabSpec(pytest.File):
    """The spec: runs the scan once and collects an endpoint node per endpoint."""

    def collect(self) -> Iterator[pytest.Collector]:
        state = self.config.stash[_STATE]
        try:
            report = state.scan()
        except ConfabError as e:
            raise self.CollectError(f"confab could not scan {self.path}:\n{e}") from None
        junit = report.outputs.get("junit")
        if junit is None:
            raise self.CollectError(f"confab wrote no JUnit report beside {report.path}")
        by_endpoint: dict[str, list[_Case]] = {}
        for case in _junit_cases(junit):
            by_endpoint.setdefault(case.endpoint, []).append(case)
        lines = _endpoint_lines(self.path)
        for endpoint, cases in by_endpoint.items():
            yield ConfabEndpoint.from_parent(
                self, name=endpoint, cases=cases, line=lines.get(endpoint, 0)
            )


class ConfabEndpoint(pytest.Collector):
    def __init__(self, *, cases: list[_Case], line: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cases = cases
        self.line = line

    def collect(self) -> Iterator[pytest.Item]:
        for case in self.cases:
            yield ConfabItem.from_parent(self, name=case.invariant, case=case, line=self.line)

    def reportinfo(self):  # type: ignore[override]
        return self.path, self.line, f"confab {self.name}"


class ConfabFindings(Exception):
    """An item's findings fail the gate."""


class ConfabItem(pytest.Item):
    """One invariant on one endpoint."""

    def __init__(self, *, case: _Case, line: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.case = case
        self.line = line
        self.add_marker(pytest.mark.confab)
        if case.outcome == "skipped":
            # Skipped by a mark, so that the report points at this item, not at the plugin.
            self.add_marker(pytest.mark.skip(reason=case.message))

    def findings(self) -> list[Finding]:
        report = self.config.stash[_STATE].scan()
        return report.select(endpoint=self.case.endpoint, invariant=self.case.invariant)

    def runtest(self) -> None:
        if self.case.outcome == "failed":
            raise ConfabFindings(self.case.message)

    def repr_failure(self, excinfo, style=None):  # type: ignore[override]
        if not isinstance(excinfo.value, ConfabFindings):
            return super().repr_failure(excinfo, style=style)
        report = self.config.stash[_STATE].scan()
        findings = self.findings()
        # First line: confab's own one-line message (worst severity, kind, what was observed),
        # which pytest's short summary shows.
        lines = [
            self.case.message or f"{self.case.invariant} on {self.case.endpoint}",
            f"invariant {self.case.invariant}: {self.case.summary}",
            "",
        ]
        for f in sorted(findings, key=lambda f: report.status(f) != "failing"):
            status = report.status(f)
            note = "" if status == "failing" else f"[{status.replace('_', ' ')}] "
            lines += [note + f.text(), ""]
        lines.append(TEST_CREDENTIALS_NOTE)
        return "\n".join(lines)

    def reportinfo(self):  # type: ignore[override]
        return self.path, self.line, f"confab {self.case.endpoint} {self.case.invariant}"


@pytest.fixture(scope="session")
def confab_scan(pytestconfig: pytest.Config) -> Report:
    """The report of this session's `confab scan` (run once, for --confab-spec)."""
    state = pytestconfig.stash.get(_STATE, None)
    if state is None or state.options is None:
        pytest.skip("confab_scan needs --confab-spec (or the confab_spec ini option)")
    try:
        return state.scan()
    except ConfabError as e:
        pytest.fail(f"confab could not scan {state.options.spec}:\n{e}", pytrace=False)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(_STATE, None)
    if state is None or state.report is None:
        return
    r = state.report
    st = r.stats
    failing = len(r.failing)
    tr = terminalreporter
    tr.section("confab")
    tr.write_line(
        f"{r.spec or state.options.spec}: {st.get('cases', '?')} cases, "
        f"{st.get('requests', '?')} requests in {st.get('duration_ms', 0) / 1000:.1f} s "
        f"(seed {st.get('seed', '?')}): {len(r.findings)} finding(s), {failing} failing"
    )
    for kind in ("html",):
        if kind in r.outputs:
            tr.write_line(f"{kind} report: {r.outputs[kind]}")
    if r.path is not None:
        tr.write_line(f"json report: {r.path}")
