"""confab's JSON report (`confab scan --format json`) as Python objects.

The report is ``{"confab_version", "target", "spec", "findings": [...], "stats": {...},
"gate": {...}}``; each finding has ``invariant``, ``severity``, ``cwe``, ``owasp``, ``endpoint``,
``kind``, ``observed``, ``cases``, ``fingerprint``, ``example`` and ``reproduce`` (``curl``,
``replay``). :class:`Report` keeps the parsed JSON as it is (``report.data``, and ``report["key"]``
reads it) and adds typed access to what tests and summaries use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

SEVERITIES = ("low", "medium", "high")

#: What reproducer tokens are (the JSON carries test credentials minted for one run).
TEST_CREDENTIALS_NOTE = (
    "The bearer tokens and keys in reproducers are short-lived test credentials confab minted "
    "or generated for this run only; they grant nothing outside it."
)


def severity_rank(severity: str) -> int:
    """0 for low, 1 for medium, 2 for high (unknown severities rank above high)."""
    try:
        return SEVERITIES.index(severity.lower())
    except ValueError:
        return len(SEVERITIES)


@dataclass(frozen=True)
class Finding:
    """One grouped finding: an invariant broken on an endpoint, in `cases` cases."""

    invariant: str
    severity: str
    cwe: tuple[str, ...]
    owasp: tuple[str, ...]
    endpoint: str
    kind: str
    observed: str
    cases: int
    fingerprint: str
    example: Mapping[str, Any]
    curl: str
    replay: str | None
    #: The finding's JSON object as confab wrote it.
    raw: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Finding:
        reproduce = obj.get("reproduce") or {}
        return cls(
            invariant=str(obj.get("invariant", "")),
            severity=str(obj.get("severity", "")),
            cwe=tuple(obj.get("cwe") or ()),
            owasp=tuple(obj.get("owasp") or ()),
            endpoint=str(obj.get("endpoint", "")),
            kind=str(obj.get("kind", "")),
            observed=str(obj.get("observed", "")),
            cases=int(obj.get("cases", 0)),
            fingerprint=str(obj.get("fingerprint", "")),
            example=obj.get("example") or {},
            curl=str(reproduce.get("curl") or ""),
            replay=reproduce.get("replay"),
            raw=obj,
        )

    @property
    def replay_command(self) -> str | None:
        """``confab replay FILE``: reruns the exchange and says whether it still fails."""
        return f"confab replay {self.replay}" if self.replay else None

    def headline(self) -> str:
        """``HIGH AGENCY (CWE-918, CWE-285) on assist: capability_exceeded_delete — 10 case(s)``."""
        cwe = f" ({', '.join(self.cwe)})" if self.cwe else ""
        return (
            f"{self.severity.upper()} {self.invariant}{cwe} on {self.endpoint}: "
            f"{self.kind} — {self.cases} case(s)"
        )

    def text(self) -> str:
        """The finding as people read it: headline, what was observed, case, replay and curl."""
        lines = [self.headline(), f"  observed: {self.observed}"]
        case = self.example.get("case")
        if case:
            lines.append(f"  case: {case}")
        if self.replay_command:
            lines.append(f"  replay: {self.replay_command}")
        if self.curl:
            lines.append(f"  curl: {self.curl}")
        return "\n".join(lines)


@dataclass
class Report:
    """A parsed JSON report, with the gate's outcome (``--fail-on``, baselines)."""

    data: dict[str, Any]
    findings: list[Finding]
    #: Where the JSON was read from, when it was read from a file.
    path: Path | None = None
    #: confab's exit code (0 nothing failing, 1 findings fail the gate), when the plugin ran it.
    exit_code: int | None = None
    #: What confab printed on stderr (the text summary), when the plugin ran it.
    stderr: str = ""
    #: The other outputs of the run (``"html"``, ``"junit"``, ``"sarif"``), when written.
    outputs: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], path: Path | None = None) -> Report:
        if not isinstance(data, Mapping) or not isinstance(data.get("findings"), list):
            raise ValueError("not a confab JSON report: no \"findings\" list")
        findings = [Finding.from_json(f) for f in data["findings"]]
        return cls(data=dict(data), findings=findings, path=path)

    @classmethod
    def load(cls, path: str | Path) -> Report:
        p = Path(path)
        with p.open(encoding="utf-8") as f:
            return cls.from_json(json.load(f), path=p)

    # dict-like access to the JSON as confab wrote it
    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __iter__(self) -> Iterator[Finding]:
        return iter(self.findings)

    def __len__(self) -> int:
        return len(self.findings)

    @property
    def stats(self) -> dict[str, Any]:
        return dict(self.data.get("stats") or {})

    @property
    def gate(self) -> dict[str, Any]:
        return dict(self.data.get("gate") or {})

    @property
    def target(self) -> str:
        return str(self.data.get("target", ""))

    @property
    def spec(self) -> str:
        return str(self.data.get("spec", ""))

    @property
    def version(self) -> str:
        return str(self.data.get("confab_version", ""))

    def status(self, finding: Finding) -> str:
        """``"failing"``, ``"baselined"`` or ``"below_threshold"`` under the run's gate.

        A report without a ``gate`` object (older confab) fails on every finding."""
        gate = self.gate
        if not gate:
            return "failing"
        for status in ("failing", "baselined", "below_threshold"):
            if finding.fingerprint in (gate.get(status) or ()):
                return status
        return "failing"

    @property
    def failing(self) -> list[Finding]:
        """The findings that fail the run (at or above ``--fail-on``, not baselined)."""
        return [f for f in self.findings if self.status(f) == "failing"]

    @property
    def passed(self) -> bool:
        """True when no finding fails the gate (``confab scan`` exited 0)."""
        gate = self.gate
        if "passed" in gate:
            return bool(gate["passed"])
        return not self.failing

    def select(
        self,
        endpoint: str | None = None,
        invariant: str | None = None,
        min_severity: str | None = None,
    ) -> list[Finding]:
        """The findings on an endpoint and/or of an invariant and/or at least a severity."""
        floor = severity_rank(min_severity) if min_severity else -1
        return [
            f
            for f in self.findings
            if (endpoint is None or f.endpoint == endpoint)
            and (invariant is None or f.invariant == invariant)
            and severity_rank(f.severity) >= floor
        ]

    def by_invariant(self) -> dict[str, list[Finding]]:
        out: dict[str, list[Finding]] = {}
        for f in self.findings:
            out.setdefault(f.invariant, []).append(f)
        return out

    def sorted_findings(self) -> list[Finding]:
        """Most severe first, then by how many cases hit them (confab's own order)."""
        return sorted(
            self.findings,
            key=lambda f: (-severity_rank(f.severity), -f.cases, f.invariant, f.kind),
        )
