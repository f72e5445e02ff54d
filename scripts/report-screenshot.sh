#!/usr/bin/env bash
# Regenerates docs/report.png, the README's picture of the HTML report: a real scan of the
# Flask example target in its vulnerable form (`--format html`), rendered by headless
# Chromium. Needs the Flask example's Python packages (scripts/test.sh installs them into
# .venv/) and chromium (Debian/Ubuntu: apt-get install chromium).
#
#   bash scripts/report-screenshot.sh [report.html]   # also keeps the page when a path is given
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x .venv/bin/python3 ]; then
  export PATH="$PWD/.venv/bin:$PATH"
fi
browser="${CONFAB_CHROMIUM:-chromium}"
if ! command -v "$browser" >/dev/null 2>&1; then
  echo "report-screenshot: $browser not found (apt-get install chromium, or set CONFAB_CHROMIUM)" >&2
  exit 1
fi
python3 -c 'import flask, jwt, openai, requests' 2>/dev/null || {
  echo "report-screenshot: the Flask example's packages are missing (bash scripts/test.sh sets up .venv/)" >&2
  exit 1
}

cargo build --quiet --bin confab
confab="${CARGO_TARGET_DIR:-target}/debug/confab"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Exit 1 means "findings": what the vulnerable form must give.
set +e
"$confab" scan --spec examples/flask/vulnerable.toml --cases 400 --seed 1 \
  --format html --out "$work/report.html" --replay-dir .confab/replays --quiet
code=$?
set -e
if [ "$code" -ne 1 ]; then
  echo "report-screenshot: the scan exited $code; expected 1 (findings)" >&2
  exit 1
fi
if [ $# -ge 1 ]; then
  cp "$work/report.html" "$1"
fi

mkdir -p docs
# No hash in the address: the page opens its first (most severe) finding by itself.
timeout 60 "$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --no-first-run --no-default-browser-check --hide-scrollbars \
  --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE localhost' \
  --user-data-dir="$work/profile" --window-size=1280,1600 \
  --screenshot="$PWD/docs/report.png" "file://$work/report.html" 2>/dev/null
echo "wrote docs/report.png"
