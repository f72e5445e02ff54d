#!/usr/bin/env bash
# The whole test suite: Rust tests (property tests, known vectors, fuzz corpus replay, CLI and
# harness end to end, campaigns against the Flask example target) and the Flask target's own
# pytest suite. Python packages go into .venv/ (created on first run); chromium is installed
# with apt-get when missing (as root, or through sudo).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python3 ]; then
  python3 -m venv .venv
fi
.venv/bin/python3 -m pip install --quiet --disable-pip-version-check \
  -r tests/requirements.txt -r examples/flask/requirements.txt
export PATH="$PWD/.venv/bin:$PATH"
# chromium (headless) renders the HTML report in its browser test.
scripts/ensure-apt.sh chromium
chromium --version 2>/dev/null || true

cargo test
CONFAB_BIN="$PWD/target/debug/confab" python3 -m pytest -q examples/flask/test_app.py
