#!/usr/bin/env bash
# Runs each cargo-fuzz target for RUNS inputs (default one million), then minimises its corpus.
#
#   scripts/fuzz.sh [RUNS]
#
# cargo-fuzz needs the nightly-only sanitizer flags; the stable toolchain accepts them with
# RUSTC_BOOTSTRAP=1, so no other toolchain is needed. Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs=${1:-1000000}
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
for target in parse_body stream_record; do
  mkdir -p "corpus/$target"
  echo "fuzz: $target, $runs inputs"
  log="target/fuzz-$target.log"
  mkdir -p target
  if ! cargo fuzz run --features libfuzzer --sanitizer none "$target" "corpus/$target" -- \
      -runs="$runs" -max_len=4096 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $target FAILED (crash input in fuzz/artifacts/$target/)" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
  cargo fuzz cmin --features libfuzzer --sanitizer none "$target" "corpus/$target" >/dev/null 2>&1
  echo "fuzz: $target corpus minimised to $(ls "corpus/$target" | wc -l) inputs"
done
