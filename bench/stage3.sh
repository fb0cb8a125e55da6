#!/usr/bin/env bash
# Stage III benchmark, side by side on this machine: zerolabel (10K steps, measured) and the
# review-code-style PyTorch reference (a few hundred steps, extrapolated to 10K).
# Needs the full torch wheel importable from Python: `scripts/setup.sh --cuda` (several GB)
# plus torch's pure-Python requirements, which this script installs into .deps/bench.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh --cuda
if [ ! -d .deps/bench/sympy ]; then
  python3 -m pip install --quiet --root-user-action=ignore --target .deps/bench \
    typing_extensions sympy networkx jinja2 fsspec filelock setuptools
fi
cargo build --release --example bench_stage3
echo "== zerolabel, 10K steps, 1 thread"
target/release/examples/bench_stage3 --steps 10000 --threads 1 | tee .deps/bench-ours.json
echo "== PyTorch reference, ${REF_STEPS:-50} steps, 2 threads, extrapolated"
PYTHONPATH="$root/.deps/python:$root/.deps/bench" python3 -W ignore bench/stage3_reference.py --steps "${REF_STEPS:-50}" --threads 2 | tee .deps/bench-ref.json
python3 - <<'PY'
import json
ours = json.load(open(".deps/bench-ours.json")); ref = json.load(open(".deps/bench-ref.json"))
print(f"10K steps: zerolabel {ours['seconds_for_10k_steps']:.1f} s, reference {ref['seconds_for_10k_steps_extrapolated']:.1f} s (extrapolated): "
      f"{ref['seconds_for_10k_steps_extrapolated'] / ours['seconds_for_10k_steps']:.0f}x faster")
PY
