#!/usr/bin/env bash
# Regenerates BENCHMARKS.md from scratch: criterion benches (guard_token, scrubber,
# generators, oracle, campaign), then the side-by-side runs of confab against PyJWT and detect-secrets, then the
# 1 GB bounded-memory run, then `confab scan` next to `wrk` (harness.sh; wrk is installed with apt-get when missing). One command, from anywhere in the repo:
#
#     benches/compare/run.sh
#
# Knobs (environment):
#   RUNS=5               timed runs per command (after one warm-up run), medians reported
#   MEASUREMENT_TIME=5   criterion --measurement-time (seconds); WARM_UP_TIME=2
#   SKIP_CRITERION=1     reuse the criterion results already in the target dir
#   QUICK=1              small sizes and short criterion times: checks the script, not numbers
#   REPORT_ONLY=1        re-render BENCHMARKS.md from the last run's figures (.last-run/)
#
# Everything stays on this machine: the only downloads are PyPI packages into
# benches/compare/.venv (git-ignored). Temporary files go to a mktemp folder removed on exit.
# Run it on a quiet machine: the numbers are only as good as the load allows (the load average
# is recorded in BENCHMARKS.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

RUNS="${RUNS:-5}"
MEASUREMENT_TIME="${MEASUREMENT_TIME:-5}"
WARM_UP_TIME="${WARM_UP_TIME:-2}"
QUICK="${QUICK:-0}"
NOW=1796169600 # fixed instant (2026-11-29T00:00:00Z): tokens are minted and judged at it

HS_LINES=200000
RS_UNIQUE=20000 # RS256 minting costs ~0.5 ms a token: mint 20k, repeat the file 10 times
RS_REPEAT=10
CORPUS_BYTES=$((20 * 1000 * 1000))
DS_BYTES=$((1000 * 1000)) # detect-secrets runs at ~0.15 MB/s: 1 MB takes ~7 s a run
STREAM_BYTES=$((1024 * 1024 * 1024))
if [[ "$QUICK" == 1 ]]; then
    RUNS=2
    MEASUREMENT_TIME=1
    WARM_UP_TIME=1
    HS_LINES=20000
    RS_UNIQUE=2000
    RS_REPEAT=2
    CORPUS_BYTES=$((2 * 1000 * 1000))
    DS_BYTES=$((100 * 1000))
    STREAM_BYTES=$((64 * 1024 * 1024))
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/confab-bench.XXXXXX")"
cleanup() { rm -rf "$TMP"; }
trap cleanup EXIT

log() { printf '\n== %s\n' "$*" >&2; }

LAST="$HERE/.last-run"
render() {
    log "writing BENCHMARKS.md"
    "$HERE/.venv/bin/python" "$HERE/report.py" --meta "$LAST/meta.env" \
        --results "$LAST/results.jsonl" --criterion "$(cat "$LAST/target-dir")/criterion" \
        --notes "$LAST/criterion-notes.txt" --out "$ROOT/BENCHMARKS.md"
    echo "BENCHMARKS.md written." >&2
}
if [[ "${REPORT_ONLY:-0}" == 1 ]]; then
    [[ -f "$LAST/meta.env" ]] || { echo "no earlier run in $LAST" >&2; exit 2; }
    render
    exit 0
fi

RESULTS="$TMP/results.jsonl"
META="$TMP/meta.env"
: >"$RESULTS"
: >"$TMP/criterion-notes.txt"
{
    echo "DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    # What was measured, recorded now: a later REPORT_ONLY=1 render must not name its own.
    rev="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
    if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
        rev="$rev (with uncommitted changes)"
    fi
    echo "GIT_REV=$rev"
    echo "RUSTC=$(rustc -V 2>/dev/null || echo unknown)"
    echo "CRITERION_REUSED=${SKIP_CRITERION:-0}"
    echo "LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "RUNS=$RUNS"
    echo "MEASUREMENT_TIME=$MEASUREMENT_TIME"
    echo "WARM_UP_TIME=$WARM_UP_TIME"
    echo "QUICK=$QUICK"
    echo "NOW=$NOW"
    echo "HS_LINES=$HS_LINES"
    echo "RS_LINES=$((RS_UNIQUE * RS_REPEAT))"
    echo "RS_UNIQUE=$RS_UNIQUE"
    echo "CORPUS_BYTES=$CORPUS_BYTES"
    echo "DS_BYTES=$DS_BYTES"
    echo "STREAM_BYTES=$STREAM_BYTES"
} >"$META"

# --- Python side --------------------------------------------------------------------------
log "Python venv with pinned PyJWT and detect-secrets"
VENV="$HERE/.venv"
# A venv made elsewhere (a copied checkout) has scripts whose `#!` points at the old place:
# made anew then.
if [[ ! -x "$VENV/bin/python" ]] || ! head -n 1 "$VENV/bin/pip" 2>/dev/null | grep -qF "$VENV/bin/"; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
PY="$VENV/bin/python"

# --- Build --------------------------------------------------------------------------------
log "cargo build --release, bench binaries"
cargo build --release --quiet
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
CONFAB="$TARGET_DIR/release/confab"
# The scrubber bench binary doubles as the corpus generator (CONFAB_CORPUS_OUT).
GEN="$(cargo bench --bench scrubber --no-run --message-format=json 2>/dev/null |
    python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "scrubber" and m.get("executable"):
        print(m["executable"])')"
[[ -x "$GEN" ]] || { echo "scrubber bench binary not found" >&2; exit 2; }

# --- Criterion ----------------------------------------------------------------------------
if [[ "${SKIP_CRITERION:-0}" == 1 ]]; then
    # The sizes the benches printed last time go with the results being reused.
    cp "$LAST/criterion-notes.txt" "$TMP/criterion-notes.txt" 2>/dev/null || true
else
    log "criterion: guard_token, scrubber, generators, oracle, campaign (--measurement-time $MEASUREMENT_TIME)"
    rm -rf "$TARGET_DIR"/criterion/guard_token_* "$TARGET_DIR"/criterion/scrubber_* \
        "$TARGET_DIR"/criterion/generators_* "$TARGET_DIR"/criterion/oracle_* \
        "$TARGET_DIR"/criterion/campaign "$TARGET_DIR"/criterion/per_case_one_core
    for bench in guard_token scrubber generators oracle campaign; do
        if ! cargo bench --quiet --bench "$bench" -- \
            --warm-up-time "$WARM_UP_TIME" --measurement-time "$MEASUREMENT_TIME" \
            --noplot >"$TMP/criterion-$bench.log" 2>&1; then
            tail -30 "$TMP/criterion-$bench.log" >&2
            echo "cargo bench --bench $bench failed" >&2
            exit 1
        fi
        # The corpus and token sizes each bench prints, for the report.
        grep -E '^(guard_token|scrubber|oracle)/[A-Za-z0-9_/]+: ' "$TMP/criterion-$bench.log" >>"$TMP/criterion-notes.txt" || true
    done
fi

# --- (a) guard: confab verify vs PyJWT ----------------------------------------------------
spec_value() { # spec_value SPEC KEY: a string from [auth], never printed
    python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["auth"][sys.argv[2]])' "$1" "$2"
}
HS_SPEC="examples/specs/docs-hs256.toml"
RS_SPEC="examples/specs/docs-rs256.toml"
CONFAB_BENCH_HS_SECRET="$(spec_value "$HS_SPEC" secret)"
export CONFAB_BENCH_HS_SECRET

log "minting $HS_LINES HS256 and $((RS_UNIQUE * RS_REPEAT)) RS256 header lines"
"$CONFAB" tokens --spec "$HS_SPEC" --scope docs:read --count "$HS_LINES" --now "$NOW" \
    --family valid >"$TMP/hs256.txt"
"$CONFAB" tokens --spec "$RS_SPEC" --scope docs:read --count "$RS_UNIQUE" --now "$NOW" \
    --family valid >"$TMP/rs256-unique.txt"
for _ in $(seq "$RS_REPEAT"); do cat "$TMP/rs256-unique.txt"; done >"$TMP/rs256.txt"
HS_N=$(wc -l <"$TMP/hs256.txt")
RS_N=$(wc -l <"$TMP/rs256.txt")
{
    echo "HS_TOKEN_BYTES=$(head -1 "$TMP/hs256.txt" | sed 's/^Bearer //' | tr -d '\n' | wc -c)"
    echo "RS_TOKEN_BYTES=$(head -1 "$TMP/rs256.txt" | sed 's/^Bearer //' | tr -d '\n' | wc -c)"
} >>"$META"

PYJWT_HS=("$PY" "$HERE/pyjwt_verify.py" --alg HS256 --secret-env CONFAB_BENCH_HS_SECRET
    --issuer https://issuer.test --audience docs-api --leeway 30 --scope docs:read --now "$NOW")
PYJWT_RS=("$PY" "$HERE/pyjwt_verify.py" --alg RS256 --public-key corpus/keys/rsa.pub.pem
    --issuer https://issuer.test --audience docs-api --typ at+jwt --scope docs:read --now "$NOW")

log "checking both sides decide alike (untimed)"
for alg in hs256 rs256; do
    if [[ $alg == hs256 ]]; then spec=$HS_SPEC; py=("${PYJWT_HS[@]}"); else spec=$RS_SPEC; py=("${PYJWT_RS[@]}"); fi
    "$CONFAB" verify --spec "$spec" --scope docs:read --now "$NOW" <"$TMP/$alg.txt" >"$TMP/$alg.confab.out"
    "${py[@]}" <"$TMP/$alg.txt" >"$TMP/$alg.pyjwt.out"
    if ! cmp -s "$TMP/$alg.confab.out" "$TMP/$alg.pyjwt.out"; then
        echo "confab verify and pyjwt_verify.py disagree on $alg" >&2
        exit 1
    fi
    accepted=$(grep -c '"accepted":true' "$TMP/$alg.confab.out" || true)
    echo "${alg^^}_ACCEPTED=$accepted" >>"$META"
    rm -f "$TMP/$alg.confab.out" "$TMP/$alg.pyjwt.out"
done

log "timing token verification ($RUNS runs each)"
M=("$PY" "$HERE/measure.py" --runs "$RUNS" --results "$RESULTS")
"${M[@]}" --name verify_hs256_confab --stdin "$TMP/hs256.txt" --units "$HS_N" --unit tokens -- \
    "$CONFAB" verify --spec "$HS_SPEC" --scope docs:read --now "$NOW"
"${M[@]}" --name verify_hs256_pyjwt --stdin "$TMP/hs256.txt" --units "$HS_N" --unit tokens -- \
    "${PYJWT_HS[@]}"
"${M[@]}" --name verify_rs256_confab --stdin "$TMP/rs256.txt" --units "$RS_N" --unit tokens -- \
    "$CONFAB" verify --spec "$RS_SPEC" --scope docs:read --now "$NOW"
"${M[@]}" --name verify_rs256_pyjwt --stdin "$TMP/rs256.txt" --units "$RS_N" --unit tokens -- \
    "${PYJWT_RS[@]}"
rm -f "$TMP"/hs256.txt "$TMP"/rs256*.txt

# --- (b) scrubber: confab scrub vs detect-secrets ------------------------------------------
log "generating corpora (${CORPUS_BYTES} B ASCII and non-ASCII, ${DS_BYTES} B for detect-secrets)"
CONFAB_CORPUS_OUT="$TMP/corpus.md" CONFAB_CORPUS_BYTES="$CORPUS_BYTES" \
    CONFAB_SECRETS_OUT="$TMP/secrets.txt" "$GEN"
CONFAB_CORPUS_OUT="$TMP/corpus-non-ascii.md" CONFAB_CORPUS_BYTES="$CORPUS_BYTES" \
    CONFAB_CORPUS_NON_ASCII=1 "$GEN"
CONFAB_CORPUS_OUT="$TMP/corpus-dense.md" CONFAB_CORPUS_BYTES="$CORPUS_BYTES" \
    CONFAB_CORPUS_DENSE=1 "$GEN"
mkdir -p "$TMP/ds"
CONFAB_CORPUS_OUT="$TMP/ds/corpus-small.md" CONFAB_CORPUS_BYTES="$DS_BYTES" "$GEN"
# The ten planted registered secrets go to confab through the environment, not argv.
SECRET_ARGS=()
i=0
while IFS= read -r s; do
    i=$((i + 1))
    export "CONFAB_BENCH_SECRET_$i=$s"
    SECRET_ARGS+=(--secret-env "CONFAB_BENCH_SECRET_$i")
done <"$TMP/secrets.txt"
rm -f "$TMP/secrets.txt"
SCRUB=("$CONFAB" scrub --findings /dev/null)

log "timing scrubbers ($RUNS runs each)"
"${M[@]}" --name scrub_ascii_confab --ok 0,1 --stdin "$TMP/corpus.md" --units "$CORPUS_BYTES" --unit B -- \
    "${SCRUB[@]}"
"${M[@]}" --name scrub_ascii_confab_secrets10 --ok 0,1 --stdin "$TMP/corpus.md" --units "$CORPUS_BYTES" --unit B -- \
    "${SCRUB[@]}" "${SECRET_ARGS[@]}"
"${M[@]}" --name scrub_non_ascii_confab_secrets10 --ok 0,1 --stdin "$TMP/corpus-non-ascii.md" --units "$CORPUS_BYTES" --unit B -- \
    "${SCRUB[@]}" "${SECRET_ARGS[@]}"
"${M[@]}" --name scrub_dense_confab_secrets10 --ok 0,1 --stdin "$TMP/corpus-dense.md" --units "$CORPUS_BYTES" --unit B -- \
    "${SCRUB[@]}" "${SECRET_ARGS[@]}"
"${M[@]}" --name scrub_small_confab --ok 0,1 --stdin "$TMP/ds/corpus-small.md" --units "$DS_BYTES" --unit B -- \
    "${SCRUB[@]}"
# detect-secrets scans paths; run it from the folder holding only the corpus.
(cd "$TMP/ds" && "${M[@]}" --name scan_small_detect_secrets --units "$DS_BYTES" --unit B -- \
    "$VENV/bin/detect-secrets" scan corpus-small.md)
rm -f "$TMP/corpus.md" "$TMP/corpus-non-ascii.md" "$TMP/corpus-dense.md"
rm -rf "$TMP/ds"

# --- (c) bounded memory: 1 GB through a pipe ----------------------------------------------
log "confab scrub on a $STREAM_BYTES-byte stream generated on the fly (peak RSS)"
# confab scrub exits 1 when it redacted something: judge the exit codes by hand.
set +e
CONFAB_CORPUS_OUT=- CONFAB_CORPUS_BYTES="$STREAM_BYTES" "$GEN" |
    /usr/bin/time -f '%M %e' -o "$TMP/stream.time" "${SCRUB[@]}" "${SECRET_ARGS[@]}" >/dev/null
codes=("${PIPESTATUS[@]}")
set -e
if [[ ${codes[0]} != 0 || ! ${codes[1]} =~ ^[01]$ ]]; then
    echo "1 GB stream failed: exit codes ${codes[*]}" >&2
    exit 1
fi
# GNU time prefixes "Command exited with non-zero status 1" on its own line.
read -r rss_kb wall_s < <(tail -n 1 "$TMP/stream.time")
{
    echo "STREAM_RSS_KB=$rss_kb"
    echo "STREAM_WALL_S=$wall_s"
} >>"$META"

# --- (d) harness: confab scan next to wrk, and its memory over 10k..1M cases ---------------
log "harness: confab scan vs wrk on the reference target, peak RSS by case count"
"$ROOT/scripts/ensure-apt.sh" wrk
QUICK="$QUICK" "$HERE/harness.sh" "$CONFAB" "$GEN" "$TMP" "$META"
echo "LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$META"

# --- Report -------------------------------------------------------------------------------
# The collected figures are kept (git-ignored) so the report can be re-rendered alone with
# REPORT_ONLY=1 after a change to report.py.
mkdir -p "$LAST"
cp "$META" "$LAST/meta.env"
cp "$RESULTS" "$LAST/results.jsonl"
cp "$TMP/criterion-notes.txt" "$LAST/criterion-notes.txt"
echo "$TARGET_DIR" >"$LAST/target-dir"
render
