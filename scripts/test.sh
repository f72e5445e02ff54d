#!/usr/bin/env bash
# The whole test suite: Rust tests of every crate (property tests, known vectors, fuzz corpus
# replay, CLI and harness end to end, campaigns against the example targets) and the example
# targets' own pytest suites.
#
# Needs: the Rust toolchain, python3 with venv, and (for chromium, when it is missing) apt-get
# as root or through sudo. Python packages go into .venv/ (created on first run). Every test
# that needs one of these tools fails when it is missing (CONFAB_REQUIRE_TOOLS=1), instead of
# skipping as a plain `cargo test` does.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python3 ]; then
  python3 -m venv .venv
fi
.venv/bin/python3 -m pip install --quiet --disable-pip-version-check \
  -r tests/requirements.txt -r examples/flask/requirements.txt \
  -r examples/webapp/requirements.txt \
  -r examples/precision/flask_pyjwt/requirements.txt \
  -r examples/precision/fastapi_pyjwt/requirements.txt
export PATH="$PWD/.venv/bin:$PATH"
# The Express precision target (node >= 20 and npm; its exact dependencies from the lock file).
scripts/ensure-apt.sh npm
(cd examples/precision/express_jsonwebtoken && npm ci --no-audit --no-fund --loglevel=error)
# chromium (headless) renders the HTML report in its browser test.
scripts/ensure-apt.sh chromium
export CONFAB_REQUIRE_TOOLS=1

cargo test --workspace
# Two example suites named test_app.py: imported by path, not as one module name.
CONFAB_BIN="$PWD/target/debug/confab" python3 -m pytest -q --import-mode=importlib \
  examples/flask/test_app.py examples/webapp/test_app.py
