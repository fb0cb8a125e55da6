#!/usr/bin/env bash
# The main job, end to end on a fresh machine: installs what is missing, builds zerolabel, and
# trains a zero-label Fashion-MNIST classifier with `zerolabel run --config configs/fashion-mnist.toml`:
#
#   stage I    SimCLR on a small ResNet-18 (width 0.25, CIFAR stem), 4 epochs (bf16 where the CPU has AMX)
#   features   L2-normalised backbone features of the un-augmented train and test images
#   II + III   Sinkhorn clustering and cluster-guided distribution matching, 10 seeds
#   report     runs/fashion-mnist/report.md with plots; the accuracy is printed at the end
#
# Extra arguments go to `zerolabel run`, e.g.  scripts/main.sh --epochs 8 --seeds 3
# Running it again reuses every finished stage (an interrupted run resumes).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release
target/release/zerolabel run --config configs/fashion-mnist.toml "$@"
