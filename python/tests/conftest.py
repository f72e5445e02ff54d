"""Shared helpers of the Python tests (plugin, report model, GitHub Action script).

Run from the repository root, in an environment with the confab-llm wheel installed (or with
``PYTHONPATH=python`` and ``CONFAB_BIN=path/to/confab``) and the Flask example's requirements:

    python -m pytest python/tests

``scripts/python-tests.sh`` does all of it from a fresh wheel.
"""

from __future__ import annotations

import os
import shutil
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def plugin_installed() -> bool:
    """True when the confab plugin is registered through the wheel's pytest11 entry point."""
    return any(ep.value.startswith("confab_pytest") for ep in entry_points(group="pytest11"))


@pytest.fixture
def plugin_args() -> list[str]:
    """What a pytester run needs to load the plugin: nothing once the wheel is installed."""
    return [] if plugin_installed() else ["-p", "confab_pytest.plugin"]


@pytest.fixture
def confab_bin() -> str:
    """The confab executable the plugin will use; skips when there is none."""
    from confab_pytest import ConfabNotFound, find_confab

    try:
        return find_confab()
    except ConfabNotFound as e:
        pytest.skip(str(e))


@pytest.fixture
def flask_example(pytester: pytest.Pytester) -> Path:
    """The Flask example target (app.py and its specs) under the pytester folder, laid out as in
    the repository, so that the specs' relative command works from there."""
    pytest.importorskip("flask", reason="the Flask example needs examples/flask/requirements.txt")
    pytest.importorskip("jwt", reason="the Flask example needs examples/flask/requirements.txt")
    dest = pytester.path / "examples" / "flask"
    dest.mkdir(parents=True)
    for name in ("app.py", "hardened.toml", "vulnerable.toml"):
        shutil.copy(ROOT / "examples" / "flask" / name, dest / name)
    return dest


def uses_wheel_binary() -> bool:
    return not os.environ.get("CONFAB_BIN")
