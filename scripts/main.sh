#!/usr/bin/env bash
# The main job, end to end on a fresh machine: installs what is missing, builds zerolabel, and
# trains a zero-label Fashion-MNIST classifier, printing its accuracy against the test labels.
#
# Until stage I (SimCLR) lands, the features are the 50 principal components of the pixels
# (`zerolabel pixel-features`); stages II-III and the evaluation are the real ones.
#   SEEDS=10 scripts/main.sh     more seeds (default 3)
#   OUT=runs/x scripts/main.sh   another output folder (default runs/fashion-mnist)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release
out="${OUT:-runs/fashion-mnist}"
bin=target/release/zerolabel
$bin pixel-features --dataset-dir /usr/share/datasets/fashion-mnist --pca 50 --out "$out/features"
$bin match \
  --train "$out/features/train.safetensors" \
  --test "$out/features/test.safetensors" \
  --classes-file configs/fashion-mnist.classes \
  --seeds "${SEEDS:-3}" \
  --out "$out"
echo "Results: $out/summary.md, $out/metrics.json"
