#!/usr/bin/env bash
# SimCLR training throughput (images/s, data loading and augmentation included) on 2 CPU
# cores, zerolabel next to PyTorch eager with the same model, batch, optimiser and
# augmentations; ResNet-18, 32x32 CIFAR-10 images, batch 128, widths 1 and 0.5, in f32 and in
# bfloat16 mixed precision (ours: --precision bf16; PyTorch: torch.autocast).
# Needs the full torch wheel importable (scripts/setup.sh --cuda) plus torchvision, numpy
# and pillow, which this script installs into .deps/bench.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
data="${DATA:-../shared/data/cifar10}"
scripts/setup.sh --cuda
if [ ! -d .deps/bench/torchvision ]; then
  python3 -m pip install --quiet --root-user-action=ignore --target .deps/bench --no-deps torchvision==0.28.0
  python3 -m pip install --quiet --root-user-action=ignore --target .deps/bench numpy pillow \
    typing_extensions sympy networkx jinja2 fsspec filelock setuptools
fi
cargo build --release --example bench_augment
steps="${STEPS:-20}"
for width in 1 0.5; do
  for precision in fp32 bf16; do
    echo "== zerolabel, ResNet-18 width $width, $precision: $steps steps of batch 128"
    rm -rf .deps/bench-simclr
    target/release/zerolabel pretrain --format cifar10 --data "$data" --limit $(( (steps + 1) * 128 )) \
      --width "$width" --epochs 1 --batch-size 128 --knn-every 0 --precision "$precision" --out .deps/bench-simclr --quiet
    cat .deps/bench-simclr/pretrain_log.jsonl
    echo "== PyTorch, ResNet-18 width $width, $precision"
    PYTHONPATH="$root/.deps/python:$root/.deps/bench" python3 -W ignore bench/simclr_reference.py \
      --data "$data" --width "$width" --steps "$steps" --precision "$precision"
  done
done
echo "== augmentation pipeline alone, zerolabel, 1 thread"
target/release/examples/bench_augment "$data" 1
