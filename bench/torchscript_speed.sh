#!/usr/bin/env bash
# Feature extraction speed, `zerolabel features --torchscript` next to the native `--checkpoint`
# path, on the same images with the same weights: the project's SimCLR ResNet-18 x0.5 (CIFAR
# stem, 256-D) from ../shared/data/cifar10-simclr, exported to TorchScript by
# bench/export_resnet18_torchscript.py (a torchvision-style module, traced at 32x32), on the
# first LIMIT images of CIFAR-10's train and of its test split, f32, on the CPU (the threads
# libtorch picks). The two commands alternate REPEAT times, so that a busy shared machine slows
# both alike; each prints the extraction's own rate per split (the `Wrote` lines: images/s
# without reading the data or loading the model) and the command's CPU seconds. Then the
# largest difference between the two feature files (float rounding only, if both paths compute
# the same network) and kNN accuracy on each.
#
#   LIMIT=2000 REPEAT=2 bench/torchscript_speed.sh
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
data="${DATA:-/work/shared/data/cifar10}"
checkpoint="${CHECKPOINT:-/work/shared/data/cifar10-simclr/r18x05-ep15.safetensors}"
limit="${LIMIT:-2000}"
repeat="${REPEAT:-2}"
batch="${BATCH:-256}"
work="${WORK:-$(mktemp -d)}"
mkdir -p "$work"
bin="${BIN:-target/release/zerolabel}"
export_json=$(scripts/torch_cpu_python.sh bench/export_resnet18_torchscript.py --checkpoint "$checkpoint" --out "$work/r18x05.pt")
normalize=$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["normalize"])' "$export_json")
native=(features --format cifar10 --data "$data" --limit "$limit" --checkpoint "$checkpoint" --device cpu --out "$work/native")
torchscript=(features --format cifar10 --data "$data" --limit "$limit" --torchscript "$work/r18x05.pt" --image-size 32
  --normalize "$normalize" --batch-size "$batch" --device cpu --out "$work/torchscript")
echo "native:      zerolabel ${native[*]}"
echo "TorchScript: zerolabel ${torchscript[*]}"
for k in $(seq "$repeat"); do
  for name in native torchscript; do
    declare -n args="$name"
    /usr/bin/time -f "  $name run $k: %U s user + %S s system CPU, %e s wall (whole command)" "$bin" "${args[@]}" 2>&1 \
      | grep -E "Wrote|CPU" | sed "s/^.*Wrote.\{4\}/  $name run $k: /"
  done
done
echo "== same features? (largest absolute difference, per split)"
for split in train test; do
  scripts/torch_cpu_python.sh bench/compare_features.py "$work/native/$split.safetensors" "$work/torchscript/$split.safetensors"
done
echo "== kNN (k = 200) on each"
"$bin" knn --train "$work/native/train.safetensors" --test "$work/native/test.safetensors"
"$bin" knn --train "$work/torchscript/train.safetensors" --test "$work/torchscript/test.safetensors"
