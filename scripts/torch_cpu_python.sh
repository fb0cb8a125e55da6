#!/usr/bin/env bash
# Runs python3 with the torch wheel of .deps/python on a CPU-only machine that lacks the CUDA
# libraries libtorch_cuda links to (cuDNN, cuBLAS, ...: `scripts/setup.sh --cuda` would fetch
# several GB of them). It builds empty stand-ins with the same sonames and symbol versions
# (once, into $STUBS, default /tmp/zerolabel-cuda-stubs), so `import torch` works for CPU work;
# any CUDA call would fail (binding is lazy, so unused functions need not exist). Python-only packages torch imports come from $PYDEPS, e.g.
#   pip install --target /tmp/pydeps typing_extensions sympy mpmath networkx jinja2 markupsafe fsspec filelock numpy
#
#   scripts/torch_cpu_python.sh SCRIPT.py [ARGS...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
stubs="${STUBS:-/tmp/zerolabel-cuda-stubs}"
pydeps="${PYDEPS:-/tmp/pydeps}"
if [ ! -f "$stubs/libcudnn.so.9" ]; then
  mkdir -p "$stubs"
  echo 'void zerolabel_cuda_stub(void) {}' >"$stubs/stub.c"
  # soname:version node (the version nodes libtorch_cuda/libtorch_python require, if any).
  for spec in libcudnn.so.9:libcudnn.so.9 libcusparse.so.12:libcusparse.so.12 libcufft.so.12:libcufft.so.12 \
      libcublas.so.13:libcublas.so.13 libcublasLt.so.13:libcublasLt.so.13 libnvrtc.so.13:libnvrtc.so.13 \
      libcusolver.so.12:libcusolver.so.12 libnvshmem_host.so.3:NVSHMEM libcufile.so.0: libnccl.so.2: \
      libcusparseLt.so.0: libcurand.so.10:; do
    so=${spec%%:*} version=${spec#*:}
    flags=()
    if [ -n "$version" ]; then
      echo "$version { global: zerolabel_cuda_stub; };" >"$stubs/$so.map"
      flags=(-Wl,--version-script="$stubs/$so.map")
    fi
    gcc -shared -fPIC -o "$stubs/$so" "$stubs/stub.c" -Wl,-soname,"$so" "${flags[@]}"
  done
fi
export LD_LIBRARY_PATH="$stubs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PYTHONPATH="$root/.deps/python:$pydeps${PYTHONPATH:+:$PYTHONPATH}"
# Lazy binding: the stand-ins define no functions, which is fine as long as none is called.
exec python3 -c 'import os, runpy, sys
sys.setdlopenflags(os.RTLD_LAZY | os.RTLD_GLOBAL)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")' "$@"
