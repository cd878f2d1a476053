#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ once, then runs each for a set time
# (docs/fuzzing.md). Used by `make fuzz` (60 s each) and `make test` (a short smoke).
#
#   scripts/fuzz.sh SECONDS [TARGET...]     all targets when none is named
#
# Each target starts from its committed seeds (fuzz/seeds/<target>, never written)
# and the corpus earlier runs grew (fuzz/corpus/<target>, git-ignored), with its
# dictionary (fuzz/dicts/<target>.dict). A crash, a
# failed assertion or a hang leaves its input in fuzz/artifacts/<target>/ and fails
# the run once every target has had its turn. Nothing listens on a socket.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

seconds=${1:?usage: scripts/fuzz.sh SECONDS [TARGET...]}
shift
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(jwt credentials sdk_sign routes object_key range post_policy sigv4 form_upload)
fi

# shellcheck source=tools-dir.sh
. "$here/scripts/tools-dir.sh"
cargo_fuzz="$tools/bin/cargo-fuzz"
if [ ! -x "$cargo_fuzz" ]; then
  echo "fuzz: $cargo_fuzz is missing; run scripts/setup.sh test" >&2
  exit 1
fi
# The stable toolchain accepts libFuzzer's -Z flags with RUSTC_BOOTSTRAP=1. No
# sanitizer: the targets are safe Rust (docs/fuzzing.md has the measurements), and
# debug assertions and overflow checks stay on.
export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none)

start=$(date +%s)
"$cargo_fuzz" fuzz build "${flags[@]}"
echo "fuzz: targets built in $(( $(date +%s) - start )) s"

logs="$here/fuzz/target/logs"
mkdir -p "$logs"
failed=()
printf '%-12s %6s %12s %10s %s\n' target seconds runs exec/s result
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  seeds=()
  [ -d "fuzz/seeds/$t" ] && seeds=("fuzz/seeds/$t")
  dict=()
  [ -f "fuzz/dicts/$t.dict" ] && dict=("-dict=fuzz/dicts/$t.dict")
  t0=$(date +%s)
  result=ok
  if ! "$cargo_fuzz" fuzz run "${flags[@]}" "$t" "fuzz/corpus/$t" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
    >"$logs/$t.log" 2>&1; then
    result=FAILED
    failed+=("$t")
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$t.log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$logs/$t.log" | tail -1)
  printf '%-12s %6s %12s %10s %s\n' "$t" "$(( $(date +%s) - t0 ))" "${runs:--}" "${rate:--}" "$result"
done

passed=$(( ${#targets[@]} - ${#failed[@]} ))
if [ "${#failed[@]}" -gt 0 ]; then
  for t in "${failed[@]}"; do
    echo "--- fuzz: $t failed (full log: $logs/$t.log):" >&2
    # The panic message, then the input as the target saw it (its Debug form).
    sed -n '/panicked at/,/stack backtrace/p' "$logs/$t.log" | head -n 20 >&2
    sed -n '/^Failing input/,/^Reproduce with/p' "$logs/$t.log" | head -n 60 >&2
    grep -E '^(ERROR|SUMMARY): ' "$logs/$t.log" | head -n 5 >&2 || true
    echo "--- reproduce: RUSTC_BOOTSTRAP=1 $cargo_fuzz fuzz run ${flags[*]} $t fuzz/artifacts/$t/<file>" >&2
  done
  echo "fuzz: $passed passed, ${#failed[@]} failed"
  exit 1
fi
echo "fuzz: each target ran ${seconds} s, no crash"
echo "fuzz: $passed passed, 0 failed"
