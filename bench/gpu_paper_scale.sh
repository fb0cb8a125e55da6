#!/usr/bin/env bash
# Paper-scale stage I on one GPU, stages II-III back on the CPU: SimCLR ResNet-18 (width 1, CIFAR
# stem) on CIFAR-10 for as many epochs as BUDGET_MIN minutes allow (bf16, batch BATCH, Adam 1e-3,
# constant rate; `pretrain --max-minutes` stops after the last epoch that fits, checkpoint
# written), then features, kNN and `match` over SEEDS seeds with the paper's stage III and with
# naming by geometry alone. Sized for about 15 minutes of GPU machine time in all: start-up
# (1-2 min), about 40 MB each way, BUDGET_MIN of training plus a minute of set-up and kNN.
#
# From the repository root:
#   1. here:  BIN=<zerolabel for the GPU machine's torch> bench/gpu_paper_scale.sh prepare [CIFAR_DIR]
#             -> .gpu/ (git-ignored, 23 MB): the stripped binary (5.4 MB) and CIFAR-10 as two JPEG
#             mosaics (18 MB; bench/gpu_data.py: 64 MiB travel with a run, the binary files take
#             184 MB). Here python3 needs numpy and Pillow (e.g. PYTHONPATH=/tmp/pydeps).
#   2. there: device run: command "bash bench/gpu_paper_scale.sh train", carry [".gpu"], timeout_s 600
#             -> $OUT: the best checkpoint without Adam moments (f32) in 15 MiB parts, its .json,
#             pretrain_log.jsonl (loss, images/s, kNN accuracy every KNN_EVERY epochs), train.log
#   3. here:  bench/gpu_paper_scale.sh finish FILES_AT [CIFAR_DIR]
#             -> runs/gpu-paper-scale/: features, kNN, match-paper/, match-naming/ (summary.md each)
#   rehearsal on this CPU, all three steps with a tiny budget (1,000 images, ResNet-18 x0.25,
#             a 3 s budget that stops after epoch 1 of 2, 2 seeds, 1,000 steps per stage):
#             bench/gpu_paper_scale.sh rehearse [CIFAR_DIR]   (log: bench/gpu_paper_scale.rehearsal.log)
#   finish on the CPU takes a while: features of 60,000 images through ResNet-18 x1 (~10 min on
#   2 idle cores), then 2 x SEEDS seeds of stages II-III (about a minute each).
#
# The binary links to libtorch dynamically and `train` points it at the GPU machine's own torch
# (python3's), so BIN must be built against that torch version: tch 0.26 needs torch 2.13, and
# the H200 image had torch 2.11 in 2026-11 (tch 0.24; see bench/cuda_check.sh). `train` checks
# that the binary starts before it spends the budget.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
step="${1:-}"
gpu_dir="${GPU_DIR:-.gpu}"
budget_min="${BUDGET_MIN:-8}"
batch="${BATCH:-512}"
epochs="${EPOCHS:-500}"
knn_every="${KNN_EVERY:-5}"
loader_threads="${LOADER_THREADS:-12}"
threads="${THREADS:-4}"
device="${DEVICE:-cuda}"
precision="${PRECISION:-bf16}"
width="${WIDTH:-1}"
seeds="${SEEDS:-10}"
limit_flag=(${LIMIT:+--limit "$LIMIT"})
timed() {  # runs a command, then prints its wall time
  local start=$(date +%s%N) rc=0
  "$@" || rc=$?
  echo "wall $(( ($(date +%s%N) - start) / 1000000 )) ms: $*" >&2
  return $rc
}

prepare() {  # [CIFAR_DIR]
  local cifar="${1:-../shared/data/cifar10}"
  : "${BIN:?BIN=<zerolabel built for the torch of the GPU machine>}"
  mkdir -p "$gpu_dir/data"
  strip -o "$gpu_dir/zerolabel" "$BIN"
  python3 bench/gpu_data.py pack "$cifar" "$gpu_dir/data"
  git check-ignore -q "$gpu_dir" || echo "(add /$gpu_dir/ to .gitignore so it is not committed)"
  du -sh "$gpu_dir"/zerolabel "$gpu_dir"/data/*
  du -sh "$gpu_dir"
}

train() {
  : "${OUT:?OUT=<folder for what comes back>}"
  mkdir -p "$OUT"
  local work="${WORK:-/tmp/zerolabel-gpu}" bin="$gpu_dir/zerolabel"
  chmod +x "$bin"
  exec > >(tee -a "$OUT/train.log") 2>&1
  if [ "$device" = cuda ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
    local torch_dir
    torch_dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
    python3 -c 'import torch; print("torch", torch.__version__)'
    export LIBTORCH="$torch_dir" LD_LIBRARY_PATH="$torch_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  fi
  "$bin" --version || { echo "the binary does not start against this torch: build it for this torch version (see the header)"; return 1; }
  rm -rf "$work" && mkdir -p "$work"
  timed python3 bench/gpu_data.py unpack "$gpu_dir/data" "$work/cifar10"
  echo "== SimCLR ResNet-18 x$width, batch $batch, $precision, $device, budget $budget_min min"
  timed "$bin" pretrain --format cifar10 --data "$work/cifar10" "${limit_flag[@]}" --arch resnet18 --width "$width" \
    --epochs "$epochs" --batch-size "$batch" --precision "$precision" --knn-every "$knn_every" --device "$device" \
    --loader-threads "$loader_threads" --threads "$threads" --max-minutes "$budget_min" --out "$work/run" || true
  cp "$work/run/pretrain_log.jsonl" "$OUT/" || true
  timed python3 bench/strip_checkpoint.py "$work/run/best.safetensors" "$work/backbone.safetensors"
  split -b 15M -d "$work/backbone.safetensors" "$OUT/backbone.safetensors.part-"
  cp "$work/backbone.json" "$OUT/backbone.json"
  ls -la "$OUT"
}

finish() {  # FILES_AT [CIFAR_DIR]
  local back="${1:?FILES_AT: the folder the files of the run came back to}" cifar="${2:-../shared/data/cifar10}"
  local work="${FINISH_DIR:-runs/gpu-paper-scale}" bin="${BIN:-target/release/zerolabel}"
  mkdir -p "$work"
  exec > >(tee -a "$work/finish.log") 2>&1
  cat "$back"/backbone.safetensors.part-* >"$work/backbone.safetensors"
  cp "$back/backbone.json" "$work/backbone.json"
  cp "$back/pretrain_log.jsonl" "$work/" 2>/dev/null || true
  echo "== stage I as it came back (per epoch: loss, images/s, kNN accuracy on the GPU copy of the data)"
  cat "$work/pretrain_log.jsonl" 2>/dev/null || true
  echo "== features on the CPU (the shared CIFAR-10, not the JPEG-carried copy)"
  timed "$bin" features --format cifar10 --data "$cifar" "${limit_flag[@]}" --checkpoint "$work/backbone.safetensors" \
    --device cpu --out "$work/features"
  "$bin" knn --train "$work/features/train.safetensors" --test "$work/features/test.safetensors"
  local classes="airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck"
  local common=(--classes "$classes" --train "$work/features/train.safetensors" --test "$work/features/test.safetensors" --seeds "$seeds" --device cpu)
  echo "== match: the paper's stage III ($seeds seeds)"
  timed "$bin" match "${common[@]}" --preset paper ${MATCH_ARGS:-} --out "$work/match-paper" --quiet
  echo "== match: naming by geometry alone, no stage III ($seeds seeds)"
  timed "$bin" match "${common[@]}" --preset paper --naming geometry --no-paper-reference ${MATCH_ARGS:-} --out "$work/match-naming" --quiet
}

rehearse() {  # [CIFAR_DIR]: the three steps on this CPU, with a tiny budget
  local cifar="${1:-../shared/data/cifar10}" tmp="${REHEARSAL_DIR:-runs/gpu-rehearsal}"
  rm -rf "$tmp" && mkdir -p "$tmp"
  export GPU_DIR="$tmp/gpu" OUT="$tmp/out" WORK="$tmp/work" FINISH_DIR="$tmp/finish"
  export BIN="${BIN:-target/release/zerolabel}" DEVICE=cpu PRECISION="${PRECISION_REHEARSAL:-auto}" LIMIT="${LIMIT:-1000}"
  export BUDGET_MIN="${BUDGET_MIN_REHEARSAL:-0.05}" EPOCHS="${EPOCHS_REHEARSAL:-2}" BATCH="${BATCH_REHEARSAL:-128}" KNN_EVERY=1
  export LOADER_THREADS=1 THREADS=2 WIDTH="${WIDTH_REHEARSAL:-0.25}" SEEDS="${SEEDS_REHEARSAL:-2}"
  export MATCH_ARGS="${MATCH_ARGS_REHEARSAL:---steps 1000 --cluster-steps 1000}"
  echo "== rehearsal: prepare"
  bash "$0" prepare "$cifar"
  echo "== rehearsal: train (DEVICE=$DEVICE, LIMIT=$LIMIT, budget $BUDGET_MIN min, at most $EPOCHS epochs)"
  bash "$0" train
  echo "== rehearsal: finish (files back: $(ls "$OUT" | tr '\n' ' '))"
  bash "$0" finish "$OUT" "$cifar"
}

case "$step" in
  prepare) prepare "${@:2}" ;;
  train) train ;;
  finish) finish "${@:2}" ;;
  rehearse) rehearse "${@:2}" ;;
  *) sed -n '2,/^[^#]/{/^#/p}' "$0"; exit 2 ;;
esac
