"""Finding the ``confab`` executable and running ``confab scan`` for the plugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from .report import Report

EXE = "confab.exe" if os.name == "nt" else "confab"


class ConfabNotFound(Exception):
    pass


class ConfabError(Exception):
    """confab could not run (exit code 2, or anything but 0 and 1): the message says why."""


def interpreter_dirs() -> list[Path]:
    """The folders beside the running Python where a wheel installs its executables."""
    dirs: list[Path] = []
    for d in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if d and Path(d) not in dirs:
            dirs.append(Path(d))
    return dirs


def find_confab(explicit: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The confab executable: ``explicit`` (``--confab-bin``), else ``$CONFAB_BIN``, else the
    one installed beside this Python (the wheel's), else ``confab`` on ``PATH``."""
    env = os.environ if env is None else env
    for candidate, origin in ((explicit, "--confab-bin"), (env.get("CONFAB_BIN"), "CONFAB_BIN")):
        if candidate:
            found = shutil.which(candidate) if os.sep not in candidate else candidate
            if not found or not os.access(found, os.X_OK):
                raise ConfabNotFound(f"{origin}={candidate!r} is not an executable file")
            return found
    for d in interpreter_dirs():
        p = d / EXE
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    found = shutil.which("confab", path=env.get("PATH"))
    if found:
        return found
    raise ConfabNotFound(
        "the confab executable was not found beside this Python "
        f"({', '.join(str(d) for d in interpreter_dirs())}) nor on PATH: install the confab-llm "
        "wheel in this environment, or pass --confab-bin PATH (or set CONFAB_BIN)"
    )


def child_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment confab (and the target it starts) runs in: this Python's folder first on
    PATH, so that a spec's ``python3 app.py`` runs in the environment pytest runs in (where the
    target's packages are) even when it is not activated."""
    env = dict(os.environ if base is None else base)
    front = [str(d) for d in interpreter_dirs()]
    rest = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in front]
    env["PATH"] = os.pathsep.join(front + rest)
    return env


@dataclass
class ScanOptions:
    spec: Path
    cases: int | None = None
    seed: int | None = None
    fail_on: str | None = None
    baseline: Sequence[Path] = ()
    extra_args: Sequence[str] = ()
    out_dir: Path = field(default_factory=lambda: Path("."))


def scan_command(confab: str, opts: ScanOptions) -> list[str]:
    out = opts.out_dir
    cmd = [
        confab,
        "scan",
        "--spec",
        str(opts.spec),
        "--format",
        "json",
        "--out",
        str(out / "report.json"),
        "--out-junit",
        str(out / "report.xml"),
        "--out-html",
        str(out / "report.html"),
    ]
    if opts.cases is not None:
        cmd += ["--cases", str(opts.cases)]
    if opts.seed is not None:
        cmd += ["--seed", str(opts.seed)]
    if opts.fail_on:
        cmd += ["--fail-on", opts.fail_on]
    for b in opts.baseline:
        cmd += ["--baseline", str(b)]
    cmd += list(opts.extra_args)
    return cmd


def run_scan(confab: str, opts: ScanOptions, cwd: Path, timeout: float | None = None) -> Report:
    """Runs ``confab scan`` (JSON, JUnit and HTML outputs into ``opts.out_dir``) from ``cwd``
    and returns the report; raises :class:`ConfabError` when confab could not run."""
    opts.out_dir.mkdir(parents=True, exist_ok=True)
    cmd = scan_command(confab, opts)
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=child_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise ConfabError(f"confab scan did not finish in {timeout} s: {' '.join(cmd)}") from e
    except OSError as e:
        raise ConfabError(f"cannot run {confab}: {e}") from e
    if proc.returncode not in (0, 1):
        raise ConfabError(
            f"confab scan exited with {proc.returncode} (2: confab could not run)\n"
            f"command: {' '.join(cmd)}\n"
            f"cwd: {cwd}\n\n{proc.stderr.strip() or '(no output on stderr)'}"
        )
    json_path = opts.out_dir / "report.json"
    try:
        report = Report.load(json_path)
    except (OSError, ValueError) as e:
        raise ConfabError(
            f"confab scan exited with {proc.returncode} but its JSON report {json_path} "
            f"cannot be read: {e}\n\n{proc.stderr.strip()}"
        ) from e
    report.exit_code = proc.returncode
    report.stderr = proc.stderr
    for kind, name in (("junit", "report.xml"), ("html", "report.html")):
        if (opts.out_dir / name).is_file():
            report.outputs[kind] = opts.out_dir / name
    return report
