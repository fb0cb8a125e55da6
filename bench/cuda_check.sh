#!/usr/bin/env bash
# One short, prepared check of the CUDA path on a machine with an NVIDIA GPU (a few minutes):
#   1. SimCLR training throughput on the GPU, zerolabel next to PyTorch eager (bench/simclr_reference.py
#      --device cuda), ResNet-18 width 1, 32x32 CIFAR-10, batch 128, f32 and bf16;
#   2. Fashion-MNIST stage I recipes side by side (several small runs share the GPU), kNN each epoch;
#   3. the main job end to end with --device cuda (stages I-III on the GPU, the report).
# Results go to $OUT as JSON lines and logs.
#
#   BIN=target/release/zerolabel FM=<fashion-mnist dir> CIFAR=<cifar-10 dir> OUT=<dir> bench/cuda_check.sh
#
# libtorch comes from the machine's own PyTorch (LIBTORCH is pointed at its folder), so BIN must be
# built against that torch version (tch 0.24 for torch 2.11, tch 0.26 for torch 2.13).
set -uo pipefail
: "${BIN:?}" "${FM:?}" "${CIFAR:?}" "${OUT:?}"
STEPS="${STEPS:-200}"
SWEEP_EPOCHS="${SWEEP_EPOCHS:-8}"
SWEEP_SECONDS="${SWEEP_SECONDS:-240}"
torch_dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
export LIBTORCH="$torch_dir" LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
python3 -c 'import torch; print("torch", torch.__version__)' | tee -a "$OUT/gpu.txt"

echo "== 1. throughput (CIFAR-10, ResNet-18 width 1, batch 128, $STEPS steps)"
for precision in fp32 bf16; do
  rm -rf "$work/tp"
  /usr/bin/time -f "%e s wall" "$BIN" pretrain --format cifar10 --data "$CIFAR" --limit $(( (STEPS + 1) * 128 )) --width 1 \
    --epochs 1 --batch-size 128 --knn-every 0 --precision "$precision" --device cuda --loader-threads 4 --out "$work/tp" --quiet \
    2>&1 | tee -a "$OUT/throughput.log"
  sed "s/^{/{\"implementation\":\"zerolabel\",\"precision\":\"$precision\",/" "$work/tp/pretrain_log.jsonl" | tee -a "$OUT/throughput.jsonl"
  python3 -W ignore bench/simclr_reference.py --data "$CIFAR" --width 1 --steps "$STEPS" --warmup 5 --precision "$precision" \
    --device cuda --workers 4 --threads 4 2>>"$OUT/throughput.log" | tee -a "$OUT/throughput.jsonl"
done

echo "== 2. Fashion-MNIST stage I recipes ($SWEEP_EPOCHS epochs each, at most $SWEEP_SECONDS s), with 3. the main job beside them"
sweep() {  # name, extra pretrain flags...
  local name=$1; shift
  timeout "$SWEEP_SECONDS" "$BIN" pretrain --format idx --data "$FM" --width 0.25 --epochs "$SWEEP_EPOCHS" --batch-size 128 \
    --crop-min-scale 0.3 --precision bf16 --device cuda --loader-threads 2 --out "$work/sweep-$name" --quiet "$@" \
    >"$work/sweep-$name.log" 2>&1
  sed "s/^{/{\"recipe\":\"$name\",/" "$work/sweep-$name/pretrain_log.jsonl" >>"$OUT/sweep.jsonl" 2>/dev/null
}
sweep baseline &
sweep t0.2 --temperature 0.2 &
sweep t0.1 --temperature 0.1 &
sweep cosine --lr-schedule cosine &
sweep cosine-lr2e-3 --lr-schedule cosine --lr 2e-3 &
sweep t0.2-cosine --temperature 0.2 --lr-schedule cosine &
sweep batch256 --batch-size 256 &
sweep width1 --width 1 &
( /usr/bin/time -f "%e s wall" timeout "$SWEEP_SECONDS" "$BIN" run --config configs/fashion-mnist.toml --set data.path="$FM" \
    --set pretrain.loader_threads=2 --device cuda --out "$work/run" --quiet >"$OUT/run.log" 2>&1
  cp "$work/run/report.md" "$OUT/" 2>/dev/null
  cp "$work/run"/stages/pretrain-*/pretrain_log.jsonl "$OUT/run_pretrain_log.jsonl" 2>/dev/null ) &
wait
for f in "$work"/sweep-*.log; do echo "-- $f"; tail -3 "$f"; done >"$OUT/sweep.log"
cat "$OUT/sweep.jsonl"
tail -20 "$OUT/run.log"
ls "$work/run" 2>/dev/null
