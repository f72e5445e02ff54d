#!/usr/bin/env bash
# Runs the precision suite (issue 14): every target here, the hardened form at seeds 1, 2, 3
# and the vulnerable form at seed 1, and prints one line per finding.
#
#   CONFAB=target/release/confab   the confab binary
#   CASES=2000                     cases per campaign
#   OUT=.confab/precision          where the JSON reports and replays go
#
# Needs python3 with flask_pyjwt/requirements.txt and fastapi_pyjwt/requirements.txt
# installed (a venv first on PATH will do) and node/npm (runs `npm ci` when node_modules is
# missing). Exit status: 0 when every hardened campaign has nothing above low and every
# vulnerable one has a finding above low, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFAB=${CONFAB:-target/release/confab}
CASES=${CASES:-2000}
OUT=${OUT:-.confab/precision}
mkdir -p "$OUT"
[ -d examples/precision/express_jsonwebtoken/node_modules ] ||
  (cd examples/precision/express_jsonwebtoken && npm ci --no-audit --no-fund >/dev/null)

status=0
for target in flask_pyjwt fastapi_pyjwt express_jsonwebtoken; do
  for run in hardened:1 hardened:2 hardened:3 vulnerable:1; do
    form=${run%%:*} seed=${run##*:}
    report="$OUT/$target-$form-$seed.json"
    rc=0
    "$CONFAB" scan --spec "examples/precision/$target/$form.toml" --cases "$CASES" \
      --seed "$seed" --format json --out "$report" \
      --replay-dir "$OUT/$target-$form-$seed.replays" >"$OUT/$target-$form-$seed.log" 2>&1 || rc=$?
    if [ "$rc" -ge 2 ]; then
      echo "$target $form seed $seed: confab could not run (see $OUT/$target-$form-$seed.log)"
      status=1
      continue
    fi
    above_low=$(python3 - "$report" "$target $form seed $seed" <<'PY'
import json, sys
findings = json.load(open(sys.argv[1]))["findings"]
above = [f for f in findings if f["severity"] != "low"]
print(f"{sys.argv[2]}: {len(findings)} finding(s), {len(above)} above low", file=sys.stderr)
for f in findings:
    print(f"  {f['severity']:6} {f['invariant']:10} {f['kind']} [{f['endpoint']}] x{f['cases']}: "
          f"{f['observed'][:160]}", file=sys.stderr)
print(len(above))
PY
)
    if [ "$form" = hardened ] && [ "$above_low" -ne 0 ]; then status=1; fi
    if [ "$form" = vulnerable ] && [ "$above_low" -eq 0 ]; then status=1; fi
  done
done
exit $status
