#!/usr/bin/env bash
# What a GPU node runs: check CuPy sees the device, run the gpu-marked tests and the
# whole suite on the real device, then the benchmarks. Results go to $OUT (or ./gpu-results).
#
# The GPU machines come with numba, numba-cuda and one CuPy (cupy-cuda13x) preinstalled:
# never install a second CuPy beside it. Elsewhere, install the extra matching the CUDA
# major version first: pip install -e ".[cuda12,test]" or ".[cuda13,test]".
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"

python3 - <<'PY'
import cupy
from numba import cuda
n = cupy.cuda.runtime.getDeviceCount()
assert n > 0 and cuda.is_available(), "no CUDA device visible to CuPy/numba"
print("CuPy", cupy.__version__, "sees", n, "device(s):",
      cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
PY

export RTAFAST_TEST_REAL_GPU=1 PYTHONUNBUFFERED=1
rtafast info | tee "$out/info.txt"
python3 -m pytest -m gpu -v --benchmark-disable 2>&1 | tee "$out/gpu-tests.txt"
python3 -m pytest --benchmark-disable -q 2>&1 | tee "$out/all-tests.txt"
RTAFAST_BENCH_JSON="$out/bench.json" python3 -m pytest benchmarks --benchmark-only \
    2>&1 | tee "$out/bench.txt"
