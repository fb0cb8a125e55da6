#!/usr/bin/env bash
# The bad-input table of issue 12 (see bench/bad_inputs.py): ~170 bad inputs against the release
# binary, each classified as clean error / panic / hang / wrong success / damaged output.
#   bench/bad_inputs.sh [TABLE.md]     (default: bench/bad_inputs.md)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
exec python3 "$root/bench/bad_inputs.py" "$@"
