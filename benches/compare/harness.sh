#!/usr/bin/env bash
# Step (d) of run.sh: the HTTP harness next to a plain load generator, and its memory.
#
#   benches/compare/harness.sh CONFAB GEN TMPDIR META
#
# CONFAB is the release binary, GEN the scrubber bench binary (it serves the harness's fake
# model and downstream sink with CONFAB_SERVE_FAKES), TMPDIR a scratch folder, META the
# KEY=value file run.sh renders BENCHMARKS.md from. Standalone runs are fine (it only appends
# to META). Knobs: HARNESS_C (concurrency, default 8), WRK_SECONDS (10), HARNESS_RUNS (3),
# SCAN_CASES (50000), RSS_CASES ("10000 100000 1000000"), QUICK=1 for small sizes.
#
# The reference target runs as `confab reference-target` on a loopback port, hardened, wired
# like a campaign wires it: downstream documents API and OpenAI-compatible model from the
# harness's own fakes. wrk loads one endpoint with one valid token (every request accepted
# and served); `confab scan` runs its cases (a mix of valid and hostile tokens, prompts and
# payloads, each judged by the oracle) against its own instance of the same target.
set -euo pipefail
CONFAB=$1 GEN=$2 WORK=$3 META=$4
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SPEC="$ROOT/examples/reference/hardened.toml"
C="${HARNESS_C:-8}"
WRK_SECONDS="${WRK_SECONDS:-10}"
RUNS="${HARNESS_RUNS:-3}"
SCAN_CASES="${SCAN_CASES:-50000}"
RSS_CASES="${RSS_CASES:-10000 100000 1000000}"
if [[ "${QUICK:-0}" == 1 ]]; then
    WRK_SECONDS=2 RUNS=1 SCAN_CASES=5000 RSS_CASES="2000 10000"
fi
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
log() { printf '\n== %s\n' "$*" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
median() { python3 -c 'import statistics, sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

PIDS=()
stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap stop_all EXIT

# Throwaway credentials for this run, passed through the environment only.
CONFAB_BENCH_JWT_SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(24))')"
CONFAB_BENCH_LLM_KEY="sk-bench-$(python3 -c 'import secrets; print(secrets.token_hex(12))')"
export CONFAB_BENCH_JWT_SECRET CONFAB_BENCH_LLM_KEY

log "harness: fake model and sink, reference target"
rm -f "$WORK/fakes.env"
CONFAB_SERVE_FAKES="$WORK/fakes.env" CONFAB_FAKE_LLM_KEY="$CONFAB_BENCH_LLM_KEY" "$GEN" \
    >"$WORK/fakes.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [[ -s "$WORK/fakes.env" ]] && break; sleep 0.1; done
# shellcheck disable=SC1091
. "$WORK/fakes.env"
PORT="$(free_port)"
PORT=$PORT OPENAI_BASE_URL="$OPENAI_BASE_URL" OPENAI_API_KEY="$CONFAB_BENCH_LLM_KEY" \
    DOCS_API_URL="$DOCS_API_URL" JWT_SECRET="$CONFAB_BENCH_JWT_SECRET" \
    JWT_ISSUER=https://issuer.test JWT_AUDIENCE=docs-api CONFAB_REFERENCE_MODE=hardened \
    "$CONFAB" reference-target >"$WORK/target.log" 2>&1 &
PIDS+=($!)
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 50); do curl -fs "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

# A valid token for a principal of the spec, and a document that principal owns.
python3 - "$SPEC" "$WORK/ref-spec.toml" <<'EOF'
import os, sys
text = open(sys.argv[1]).read().replace("{jwt_secret}", os.environ["CONFAB_BENCH_JWT_SECRET"])
fd = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, text.encode())
os.close(fd)
EOF
CONFAB_BENCH_BEARER="$("$CONFAB" tokens --spec "$WORK/ref-spec.toml" --scope docs:read \
    --family valid --count 1 --now "$(date +%s)" | head -1)"
rm -f "$WORK/ref-spec.toml"
export CONFAB_BENCH_BEARER
DOC="$(python3 -c '
import base64, json, os, sys, tomllib
payload = os.environ["CONFAB_BENCH_BEARER"].split()[1].split(".")[1]
sub = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
spec = tomllib.load(open(sys.argv[1], "rb"))
print(next(p["owns"][0] for p in spec["principal"] if p["name"] == sub))' "$SPEC")"
cat >"$WORK/read.lua" <<EOF
wrk.headers["Authorization"] = os.getenv("CONFAB_BENCH_BEARER")
EOF
cat >"$WORK/assist.lua" <<EOF
wrk.method = "POST"
wrk.body = '{"prompt":"Summarize the document.","doc_id":"$DOC"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = os.getenv("CONFAB_BENCH_BEARER")
EOF
for ep in read assist; do
    if [[ $ep == read ]]; then url="$BASE/docs/$DOC"; args=(); else url="$BASE/assist"; args=(-X POST -H 'Content-Type: application/json' --data "{\"prompt\":\"Summarize the document.\",\"doc_id\":\"$DOC\"}"); fi
    code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $CONFAB_BENCH_BEARER" "${args[@]}" "$url")"
    [[ $code == 200 ]] || { echo "reference target answered $code on $ep; wrk would not measure served requests" >&2; exit 1; }
done

log "wrk -c $C, ${WRK_SECONDS}s, $RUNS runs per endpoint"
for ep in read assist; do
    if [[ $ep == read ]]; then url="$BASE/docs/$DOC"; else url="$BASE/assist"; fi
    rates=()
    for _ in $(seq "$RUNS"); do
        wrk -t1 -c"$C" -d"${WRK_SECONDS}s" -s "$WORK/$ep.lua" "$url" >"$WORK/wrk.out" 2>&1 || true
        if grep -q 'Non-2xx' "$WORK/wrk.out"; then
            grep 'Non-2xx' "$WORK/wrk.out" >&2
            echo "wrk saw non-2xx answers on $ep" >&2
            exit 1
        fi
        rates+=("$(awk '/^Requests\/sec:/ {print $2}' "$WORK/wrk.out")")
    done
    echo "WRK_${ep^^}_RPS=$(median "${rates[@]}")" >>"$META"
done
stop_all
PIDS=()

# confab scan starts its own target, fakes and sink from the spec.
scan_rps() { # scan_rps CASES [scan args...]: requests/s from the JSON report's stats
    local cases=$1
    shift
    "$CONFAB" scan --spec "$SPEC" --cases "$cases" --concurrency "$C" --format json \
        --out "$WORK/scan.json" "$@" >/dev/null 2>"$WORK/scan.err" || {
        tail -5 "$WORK/scan.err" >&2
        echo "confab scan failed" >&2
        exit 1
    }
    python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))["stats"]
print(s["requests"] / s["duration_ms"] * 1000, s["requests"], s["duration_ms"])' "$WORK/scan.json"
}
log "confab scan --concurrency $C, $RUNS runs per endpoint"
for ep in read assist; do
    rates=()
    for _ in $(seq "$RUNS"); do
        read -r rps reqs ms < <(scan_rps "$SCAN_CASES" --endpoint "$ep")
        rates+=("$rps")
    done
    {
        echo "SCAN_${ep^^}_RPS=$(median "${rates[@]}")"
        echo "SCAN_${ep^^}_REQUESTS=$reqs"
        echo "SCAN_${ep^^}_MS=$ms"
    } >>"$META"
done
echo "HARNESS_C=$C" >>"$META"
echo "HARNESS_RUNS=$RUNS" >>"$META"
echo "HARNESS_SCAN_CASES=$SCAN_CASES" >>"$META"
echo "HARNESS_WRK_SECONDS=$WRK_SECONDS" >>"$META"

log "confab scan peak RSS at ${RSS_CASES// /, } cases (both endpoints)"
points=()
for n in $RSS_CASES; do
    /usr/bin/time -f '%M %e' -o "$WORK/rss.time" "$CONFAB" scan --spec "$SPEC" --cases "$n" \
        --concurrency "$C" --format json --out "$WORK/scan.json" >/dev/null 2>"$WORK/scan.err" || {
        tail -5 "$WORK/scan.err" >&2
        echo "confab scan --cases $n failed" >&2
        exit 1
    }
    read -r kb wall < <(tail -n 1 "$WORK/rss.time")
    reqs="$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["stats"]["requests"])' "$WORK/scan.json")"
    points+=("$n:$kb:$wall:$reqs")
done
echo "SCAN_RSS_POINTS=${points[*]}" >>"$META"
rm -f "$WORK/scan.json" "$WORK/scan.err" "$WORK/rss.time" "$WORK/wrk.out" "$WORK"/*.lua
