#!/usr/bin/env bash
# One short, prepared check of the CUDA path on a machine with an NVIDIA GPU (a few minutes):
#   1. SimCLR training throughput on the GPU, zerolabel next to PyTorch eager (bench/simclr_reference.py
#      --device cuda), ResNet-18 width 1, 32x32 CIFAR-10, batch 128, f32 and bf16;
#   2. Fashion-MNIST stage I recipes side by side (several small runs share the GPU), kNN each epoch;
#   3. the main job end to end with --device cuda (stages I-III on the GPU, the report).
# Results go to $OUT as JSON lines and logs.
#
#   BIN=target/release/zerolabel FM=<fashion-mnist dir> CIFAR=<cifar-10 dir> OUT=<dir> [GLOVE=<word vectors>] bench/cuda_check.sh
#
# libtorch comes from the machine's own PyTorch (LIBTORCH is pointed at its folder), so BIN must be
# built against that torch version (tch 0.24 for torch 2.11, tch 0.26 for torch 2.13).
set -uo pipefail
: "${BIN:?}" "${FM:?}" "${CIFAR:?}" "${OUT:?}"
STEPS="${STEPS:-200}"
SWEEP_EPOCHS="${SWEEP_EPOCHS:-15}"
SWEEP_SECONDS="${SWEEP_SECONDS:-370}"
torch_dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
export LIBTORCH="$torch_dir" LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
work=$(mktemp -d)
timed() {  # runs a command, then prints its wall time
  local start=$(date +%s%N) rc
  "$@"; rc=$?
  echo "wall $(( ($(date +%s%N) - start) / 1000000 )) ms: $*" >&2
  return $rc
}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/throughput.log"
python3 -c 'import torch; print("torch", torch.__version__)' | tee -a "$OUT/throughput.log"

echo "== 1. throughput (CIFAR-10, ResNet-18 width 1, batch 128, $STEPS steps)"
for precision in fp32 bf16; do
  rm -rf "$work/tp"
  timed "$BIN" pretrain --format cifar10 --data "$CIFAR" --limit $(( (STEPS + 1) * 128 )) --width 1 \
    --epochs 1 --batch-size 128 --knn-every 0 --precision "$precision" --device cuda --loader-threads 4 --out "$work/tp" --quiet \
    2>&1 | tee -a "$OUT/throughput.log"
  sed "s/^{/{\"implementation\":\"zerolabel\",\"precision\":\"$precision\",/" "$work/tp/pretrain_log.jsonl" | tee -a "$OUT/throughput.jsonl"
  python3 -W ignore bench/simclr_reference.py --data "$CIFAR" --width 1 --steps "$STEPS" --warmup 5 --precision "$precision" \
    --device cuda --workers 4 --threads 4 2>>"$OUT/throughput.log" | tee -a "$OUT/throughput.jsonl"
done

echo "== 2. Fashion-MNIST stage I recipes ($SWEEP_EPOCHS epochs each, at most $SWEEP_SECONDS s), with 3. the main job beside them"
sweep() {  # name, width, batch size, temperature, extra pretrain flags...
  local name=$1 width=$2 batch=$3 temperature=$4; shift 4
  timeout "$SWEEP_SECONDS" "$BIN" pretrain --format idx --data "$FM" --width "$width" --epochs "$SWEEP_EPOCHS" --batch-size "$batch" \
    --temperature "$temperature" --crop-min-scale 0.3 --precision bf16 --device cuda --loader-threads 2 --threads 1 \
    --out "$work/sweep-$name" --quiet "$@" >"$work/sweep-$name.log" 2>&1
  sed "s/^{/{\"recipe\":\"$name\",/" "$work/sweep-$name/pretrain_log.jsonl" >>"$OUT/sweep.jsonl" 2>/dev/null
}
sweep w0.25-t0.5 0.25 128 0.5 &
sweep w0.25-t0.2 0.25 128 0.2 &
sweep w0.25-t0.1 0.25 128 0.1 &
sweep w0.25-t0.2-b256 0.25 256 0.2 &
sweep w0.5-t0.5 0.5 128 0.5 &
sweep w0.5-t0.1 0.5 128 0.1 &
sweep w1-t0.5 1 128 0.5 &
sweep w1-t0.1 1 128 0.1 &
( timed timeout "$SWEEP_SECONDS" "$BIN" run --config configs/fashion-mnist.toml --set data.path="$FM" \
    --set pretrain.loader_threads=2 --set pretrain.threads=2 --set stages.seeds=1 ${GLOVE:+--set classes.word_vectors="$GLOVE"} --device cuda --out "$work/run" --quiet >"$OUT/run.log" 2>&1
  cp "$work/run/report.md" "$OUT/" 2>/dev/null
  cp "$work/run"/stages/pretrain-*/pretrain_log.jsonl "$OUT/run_pretrain_log.jsonl" 2>/dev/null ) &
wait
for f in "$work"/sweep-*.log; do echo "-- $f"; tail -3 "$f"; done >"$OUT/sweep.log"
cat "$OUT/sweep.jsonl"
tail -20 "$OUT/run.log"
ls "$work/run" 2>/dev/null
