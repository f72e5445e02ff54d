#!/bin/bash -eu
# Builds every cargo-fuzz target and packages, per target: the binary, a seed corpus zip,
# a dictionary and libFuzzer options. Runs inside the OSS-Fuzz base-builder-rust image.
cd "$SRC/confab/fuzz"
cargo fuzz build -O --debug-assertions
release="$SRC/confab/fuzz/target/x86_64-unknown-linux-gnu/release"

seed_dirs() {
  local target=$1
  echo "seeds/$target"
  case "$target" in
    guard_header) echo ../corpus/headers ;;
    scrubber) echo ../corpus/texts ;;
    wire) echo ../corpus/outputs ;;
  esac
  echo "../tests/fuzz_regressions/$target"
}

for target in $(cargo fuzz list); do
  cp "$release/$target" "$OUT/"
  files=()
  for dir in $(seed_dirs "$target"); do
    [ -d "$dir" ] && while IFS= read -r f; do files+=("$f"); done < <(find "$dir" -type f ! -name '*.md')
  done
  if [ ${#files[@]} -gt 0 ]; then
    zip -q -j "$OUT/${target}_seed_corpus.zip" "${files[@]}"
  fi
  [ -f "dicts/$target.dict" ] && cp "dicts/$target.dict" "$OUT/$target.dict"
  printf '[libfuzzer]\nmax_len = 8192\ntimeout = 10\nrss_limit_mb = 2560\n' > "$OUT/$target.options"
done
