#!/usr/bin/env bash
# The main job, end to end on a fresh machine: installs what is missing, builds zerolabel, and
# trains a zero-label Fashion-MNIST classifier, printing its accuracy against the test labels.
#
#   stage I    SimCLR on a small ResNet-18 (width 0.25, CIFAR stem) for EPOCHS epochs
#   features   L2-normalised backbone features of the un-augmented train and test images
#   II + III   Sinkhorn clustering and cluster-guided distribution matching, SEEDS seeds
#
#   EPOCHS=4 SEEDS=10 scripts/main.sh     a longer run (defaults: 2 epochs, 3 seeds)
#   OUT=runs/x scripts/main.sh            another output folder (default runs/fashion-mnist)
# Running it again resumes the pretraining from its last checkpoint (finished epochs are kept).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/setup.sh
cargo build --release
out="${OUT:-runs/fashion-mnist}"
data=/usr/share/datasets/fashion-mnist
bin=target/release/zerolabel
$bin pretrain --format idx --data "$data" --arch resnet18 --width 0.25 --epochs "${EPOCHS:-2}" \
  --batch-size 128 --knn-every 1 --seed 0 --resume --out "$out/simclr"
$bin features --format idx --data "$data" --checkpoint "$out/simclr/best.safetensors" --out "$out/features"
$bin match \
  --train "$out/features/train.safetensors" \
  --test "$out/features/test.safetensors" \
  --classes-file configs/fashion-mnist.classes \
  --seeds "${SEEDS:-3}" \
  --out "$out"
echo "Results: $out/summary.md, $out/metrics.json; pretraining log: $out/simclr/pretrain_log.jsonl"
