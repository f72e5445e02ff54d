#!/usr/bin/env bash
# The script part of the confab GitHub Action (action.yml at the repository root): installs
# confab from its wheel into a venv of its own, runs `confab scan` (SARIF, JSON and HTML
# outputs), writes the job summary and the step outputs. It exits 0 when the scan ran, whatever
# it found (the action's last step fails the job after the uploads), and 2 when confab could not
# be installed or could not run.
#
# Inputs come from the environment (action.yml maps its inputs onto these names):
#   CONFAB_SPEC (required), CONFAB_CASES, CONFAB_SEED, CONFAB_FAIL_ON, CONFAB_BASELINE
#   (files, one per line or space-separated), CONFAB_SHARD (i/n), CONFAB_ARGS (more scan
#   arguments), CONFAB_VERSION (confab-llm version from PyPI), CONFAB_WHEEL (a wheel file or a
#   glob; wins over CONFAB_VERSION), CONFAB_PYTHON (default python3), CONFAB_OUT_DIR,
#   CONFAB_ARTIFACT (the HTML artifact's name, for the summary).
# GitHub's RUNNER_TEMP, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY are used when set, so it runs
# outside Actions too (python/tests/test_action.py runs it with fakes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
summary_py="$here/../../python/confab_action/summary.py"
tmp="${RUNNER_TEMP:-${TMPDIR:-/tmp}}"
out_dir="${CONFAB_OUT_DIR:-$tmp/confab-report}"
venv="$tmp/confab-venv"
python="${CONFAB_PYTHON:-python3}"
output="${GITHUB_OUTPUT:-/dev/null}"
step_summary="${GITHUB_STEP_SUMMARY:-/dev/stdout}"

fail() {
  echo "::error title=confab::$*" >&2
  echo "exit-code=2" >>"$output"
  printf '## confab scan: could not run\n\n❌ %s\n' "$*" >>"$step_summary"
  exit 2
}

[ -n "${CONFAB_SPEC:-}" ] || fail "the spec input is empty: give the path of your confab spec (TOML)"
[ -f "$CONFAB_SPEC" ] || fail "spec $CONFAB_SPEC: no such file (in $(pwd))"

echo "::group::Install confab"
"$python" -m venv "$venv" || fail "$python -m venv failed: confab needs Python 3.9+ with venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
if [ -n "${CONFAB_WHEEL:-}" ]; then
  # A glob (dist/*.whl) or a path; the newest match wins.
  # shellcheck disable=SC2206 # the glob is meant to expand
  matches=($CONFAB_WHEEL)
  wheel=""
  for w in "${matches[@]}"; do
    if [ -f "$w" ] && { [ -z "$wheel" ] || [ "$w" -nt "$wheel" ]; }; then
      wheel=$w
    fi
  done
  if [ -z "$wheel" ]; then
    fail "wheel $CONFAB_WHEEL: no such file"
  fi
  "${pip[@]}" "$wheel" || fail "pip could not install $wheel"
elif [ -n "${CONFAB_VERSION:-}" ] && [ "$CONFAB_VERSION" != "latest" ]; then
  "${pip[@]}" "confab-llm==$CONFAB_VERSION" || fail "pip could not install confab-llm==$CONFAB_VERSION"
else
  "${pip[@]}" confab-llm || fail "pip could not install confab-llm"
fi
confab="$venv/bin/confab"
[ -x "$confab" ] || fail "the installed package has no confab executable at $confab"
"$confab" --version
echo "::endgroup::"

mkdir -p "$out_dir"
args=(scan --spec "$CONFAB_SPEC"
  --format sarif --out "$out_dir/confab.sarif"
  --out-json "$out_dir/report.json"
  --out-html "$out_dir/report.html"
  --fail-on "${CONFAB_FAIL_ON:-low}")
[ -z "${CONFAB_CASES:-}" ] || args+=(--cases "$CONFAB_CASES")
[ -z "${CONFAB_SEED:-}" ] || args+=(--seed "$CONFAB_SEED")
[ -z "${CONFAB_SHARD:-}" ] || args+=(--shard "$CONFAB_SHARD")
for b in ${CONFAB_BASELINE:-}; do
  args+=(--baseline "$b")
done
if [ -n "${CONFAB_ARGS:-}" ]; then
  read -r -a extra <<<"$CONFAB_ARGS"
  args+=("${extra[@]}")
fi

# A sharded run gets its own SARIF category and artifact name: they must differ between jobs.
suffix=""
if [ -n "${CONFAB_SHARD:-}" ]; then
  suffix="-shard-${CONFAB_SHARD%%/*}-of-${CONFAB_SHARD##*/}"
fi
artifact="${CONFAB_ARTIFACT:-confab-report}$suffix"
{
  echo "category=confab$suffix"
  echo "artifact=$artifact"
  echo "dir=$out_dir"
} >>"$output"

echo "confab ${args[*]}"
# confab's stderr (progress, the text summary, errors) goes to the log and to stderr.txt.
set +e
{ "$confab" "${args[@]}" 2>&1 1>&3 3>&- | tee "$out_dir/stderr.txt" >&2; } 3>&1
code=$? # pipefail: confab's exit code
set -e
echo "exit-code=$code" >>"$output"

if [ "$code" -ne 0 ] && [ "$code" -ne 1 ]; then
  "$venv/bin/python" "$summary_py" "$out_dir/report.json" --exit-code "$code" \
    --spec "$CONFAB_SPEC" --stderr-file "$out_dir/stderr.txt" --summary "$step_summary" --output ""
  echo "::error title=confab::confab scan exited with $code: it could not run (see the log above)" >&2
  exit 2
fi
{
  echo "sarif=$out_dir/confab.sarif"
  echo "json=$out_dir/report.json"
  echo "html=$out_dir/report.html"
} >>"$output"
"$venv/bin/python" "$summary_py" "$out_dir/report.json" --exit-code "$code" \
  --html-artifact "$artifact" --summary "$step_summary" --output "$output"
if [ "$code" -eq 1 ]; then
  echo "::warning title=confab::findings fail the gate (--fail-on ${CONFAB_FAIL_ON:-low}): see the job summary"
fi
