#!/usr/bin/env bash
# Builds every fuzz target and runs each for a fixed time, failing on the first crash.
# Usage: fuzz/smoke.sh [SECONDS_PER_TARGET]   (default 20)
#
# Uses `-s none` (no sanitizer), which works on stable Rust: the library forbids unsafe code,
# so AddressSanitizer adds little here; run `cargo +nightly fuzz run TARGET` for it.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cargo fuzz build -s none
for target in $(cargo fuzz list); do
  work=$(mktemp -d)
  seeds=()
  [ -d "seeds/$target" ] && seeds+=("seeds/$target")
  case "$target" in
    guard_header) seeds+=(../corpus/headers) ;;
    scrubber) seeds+=(../corpus/texts) ;;
    wire) seeds+=(../corpus/outputs) ;;
  esac
  dict=()
  [ -f "dicts/$target.dict" ] && dict=("-dict=dicts/$target.dict")
  echo "--- $target: ${secs}s"
  cargo fuzz run -s none "$target" "$work" "${seeds[@]}" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" 2>&1 \
    | grep -E 'stat::(number_of_executed_units|average_exec_per_sec)|panicked|SUMMARY|Done' || true
  # cargo fuzz exits non-zero on a crash; PIPESTATUS keeps that visible through grep.
  status=${PIPESTATUS[0]}
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "fuzz target $target crashed: see fuzz/artifacts/$target/" >&2
    exit 1
  fi
done
