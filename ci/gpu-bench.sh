#!/usr/bin/env bash
# What a GPU node runs: check CuPy sees the device, run the gpu-marked tests and the
# whole test suite on the real device, then the benchmark suite on cuda (numba beside it,
# same run) with the table, JSON rows and plot. Results go to $OUT (or ./gpu-results).
# A lease of minutes (no network, a 15-minute budget) runs ci/gpu-check.sh instead.
#
# The GPU machines come with numba, numba-cuda and one CuPy (cupy-cuda13x) preinstalled:
# never install a second CuPy beside it. Elsewhere, install the extra matching the CUDA
# major version first: pip install -e ".[cuda12,test]" or ".[cuda13,test]".
# RTAFAST_GPU_BENCH_SIZE=quick|default|full picks the benchmark sizes (default: full).
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
# not installed (a copy of the tree, as on the device lease): run it from the tree, with
# kernels/ importable as rtafast_kernels as pyproject maps it
if ! python3 -c "import rtafast, rtafast_kernels" 2>/dev/null; then
    mkdir -p /tmp/rtafast-src
    ln -sfn "$PWD/kernels" /tmp/rtafast-src/rtafast_kernels
    export PYTHONPATH="$PWD:/tmp/rtafast-src:${PYTHONPATH:-}"
fi
python3 -m rtafast.cli info --probe-gpu | tee "$out/info.txt"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
    > "$out/nvidia-smi.csv" 2>&1 || true
# A failing test does not stop the benchmarks; the script's exit status reports it.
status=0
python3 -m pytest -m gpu -v --benchmark-disable 2>&1 | tee "$out/gpu-tests.txt" || status=1
python3 -m pytest --benchmark-disable -q 2>&1 | tee "$out/all-tests.txt" || status=1

size="${RTAFAST_GPU_BENCH_SIZE:-full}"
size_flag=()
[ "$size" = quick ] && size_flag=(--quick)
[ "$size" = full ] && size_flag=(--full)
python3 -m rtafast.cli bench --backend cuda,numba "${size_flag[@]}" --json "$out/bench.json" \
    --markdown "$out/bench.md" --plot "$out/bench.png" 2>&1 | tee "$out/bench.txt" || status=1
exit "$status"
