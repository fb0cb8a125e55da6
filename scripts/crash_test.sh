#!/usr/bin/env bash
# kill -9 safety of `zerolabel run` (issue 12): a tiny run (300 16x16 images, 4 SimCLR epochs,
# 3 seeds, the Figure 4B classifier, the report) is killed with SIGKILL at random moments spread
# over every stage, resumed each time, and must end with metrics, classifier and backbone
# identical to an uninterrupted run; after every kill no file under its final name may be
# partial (JSON, JSON lines, safetensors, .npy and PNG files are parsed).
#
#   scripts/crash_test.sh [KILLS] [SEED]      (default 20 kills; CI runs 3)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kills="${1:-20}"
seed="${2:-1}"
bin="$root/target/release/zerolabel"
tools="$root/target/release/examples/crash_tools"
[ -x "$bin" ] && [ -x "$tools" ] || { echo "build first: cargo build --release --bin zerolabel --example crash_tools" >&2; exit 2; }
export OMP_NUM_THREADS=1
work="$(mktemp -d "${TMPDIR:-/tmp}/zl-crash.XXXXXX")"
trap 'rm -rf "$work"' EXIT
"$tools" make "$work"
run() { "$bin" run --quiet --config "$work/tiny.toml" --out "$1" >/dev/null 2>>"$work/stderr.log"; }

start=$(date +%s.%N)
run "$work/reference"
full=$(echo "$(date +%s.%N) - $start" | bc)
echo "uninterrupted run: ${full} s"

RANDOM=$seed
# Which stage a kill interrupted: the newest stage folder and whether the report exists.
stage_of() {
  local d="$1/stages"
  [ -d "$d" ] || { echo "start"; return; }
  if [ -f "$1/manifest.json" ]; then echo "finished"; return; fi
  if [ -f "$1/model.json" ]; then echo "report"; return; fi
  ls -t "$d" 2>/dev/null | head -1 | sed 's/-[0-9a-f]*$//'
}
failures=0; cycle=0; done_kills=0
declare -A seen
while [ "$done_kills" -lt "$kills" ]; do
  cycle=$((cycle + 1))
  out="$work/crash-$cycle"
  # Each attempt resumes the last and is killed at a random moment within the uninterrupted
  # run's time, so successive kills of a cycle land in later and later stages, until an
  # attempt finishes before its kill; then the cycle's result is compared.
  while [ "$done_kills" -lt "$kills" ]; do
    r=$RANDOM  # drawn here: $RANDOM inside $(...) would not advance the parent's sequence
    frac=$(echo "scale=3; $((r % 1000)) / 1000" | bc)
    delay=$(echo "scale=3; $full * (0.05 + 0.95 * $frac)" | bc)
    "$bin" run --quiet --config "$work/tiny.toml" --out "$out" >/dev/null 2>>"$work/stderr.log" &
    pid=$!
    sleep "$delay"
    stage=$(stage_of "$out")
    if kill -9 "$pid" 2>/dev/null; then
      wait "$pid" 2>/dev/null || true
      done_kills=$((done_kills + 1))
      seen[$stage]=$(( ${seen[$stage]:-0} + 1 ))
      echo "kill $done_kills (cycle $cycle) after ${delay} s, during: $stage"
    else
      wait "$pid" 2>/dev/null || true
      echo "cycle $cycle: the resumed run finished before the kill at ${delay} s"
      break
    fi
    if ! "$tools" check "$out" >"$work/check.log"; then
      cat "$work/check.log"; failures=$((failures + 1))
    fi
  done
  # Resume to the end and compare with the uninterrupted run.
  run "$out"
  if ! "$tools" compare "$work/reference" "$out"; then failures=$((failures + 1)); fi
  "$tools" check "$out" >/dev/null || failures=$((failures + 1))
done
echo "kills by stage: $(for s in "${!seen[@]}"; do printf '%s=%s ' "$s" "${seen[$s]}"; done)"
echo "RESULT: $done_kills kills in $cycle cycle(s), $failures failure(s)"
[ "$failures" -eq 0 ]
