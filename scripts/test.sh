#!/usr/bin/env bash
# The test command: installs what is missing (scripts/setup.sh), builds, runs every test.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh --mpnet   # the second sentence encoder too, so that its reference test runs
# Tests run in parallel processes; one libtorch thread each avoids OpenMP threads spinning
# against each other on a small machine (measured: up to 10x slower otherwise).
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --release --no-fail-fast "$@"
else
  cargo test --release --no-fail-fast "$@"
fi
# kill -9 safety, short: a tiny run killed 3 times and resumed must match an uninterrupted one
# (scripts/crash_test.sh 20 is the full check).
cargo build --release --bin zerolabel --example crash_tools
scripts/crash_test.sh 3
