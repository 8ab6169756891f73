#!/usr/bin/env bash
# What a GPU node runs: check CuPy sees the device, run the gpu-marked tests and the
# whole test suite on the real device, then the benchmark suite on cuda (numba beside it,
# same run) with the table, JSON rows and plot. Results go to $OUT (or ./gpu-results).
#
# The GPU machines come with numba, numba-cuda and one CuPy (cupy-cuda13x) preinstalled:
# never install a second CuPy beside it. Elsewhere, install the extra matching the CUDA
# major version first: pip install -e ".[cuda12,test]" or ".[cuda13,test]". On a copy of
# the tree that is not installed (a device lease) ci/tree-env.sh sets it up from the
# carried wheels and data (ci/device-kit.sh prepares them).
#
# Settings (environment):
#   RTAFAST_GPU_BENCH_SIZE  quick|default|full: the benchmark sizes (default: full)
#   GPU_BENCH_STAGES        the stages to run (default "info tests bench"): a lease of
#                           minutes runs "info tests" in one call and "bench" in a second
#                           one on the same machine (the kernels compiled by the tests
#                           are then in the on-disk cache)
#   GPU_BENCH_WORKERS       pytest-xdist workers of the test stages (default: one per
#                           core; the benchmarks always run in one process)
# Files: info.txt, nvidia-smi.csv, gpu-tests.txt, all-tests.txt, bench.{txt,json,md,png}.
# A failing stage does not stop the next ones; the exit status says whether one failed.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
python="${PYTHON:-python3}"
export RTAFAST_TEST_REAL_GPU=1 PYTHONUNBUFFERED=1
export RTAFAST_CACHE_DIR="${RTAFAST_CACHE_DIR:-/tmp/rtafast-cache}"
# shellcheck source=ci/tree-env.sh
. ci/tree-env.sh || exit 2

stage() { [[ " ${GPU_BENCH_STAGES:-info tests bench} " == *" $1 "* ]]; }
status=0

if stage info; then
    "$python" - <<'PY' 2>&1 | tee "$out/info.txt" || exit 1
import cupy
from numba import cuda
n = cupy.cuda.runtime.getDeviceCount()
assert n > 0 and cuda.is_available(), "no CUDA device visible to CuPy/numba"
print("CuPy", cupy.__version__, "sees", n, "device(s):",
      cupy.cuda.runtime.getDeviceProperties(0)["name"].decode())
PY
    "$python" -m rtafast.cli info --probe-gpu 2>&1 | tee -a "$out/info.txt" || status=1
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
        > "$out/nvidia-smi.csv" 2>&1 || true
fi

if stage tests; then
    workers=()
    "$python" -c "import xdist" 2>/dev/null && workers=(-n "${GPU_BENCH_WORKERS:-auto}")
    "$python" -m pytest -m gpu "${workers[@]}" -v --benchmark-disable -p no:cacheprovider \
        2>&1 | tee "$out/gpu-tests.txt" || status=1
    # the rest of the suite (the gpu-marked tests ran just above)
    "$python" -m pytest -m "not gpu" "${workers[@]}" --benchmark-disable -q -rfE \
        -p no:cacheprovider --durations=15 2>&1 | tee "$out/all-tests.txt" || status=1
fi

if stage bench; then
    size="${RTAFAST_GPU_BENCH_SIZE:-full}"
    size_flag=()
    [ "$size" = quick ] && size_flag=(--quick)
    [ "$size" = full ] && size_flag=(--full)
    "$python" -m rtafast.cli bench --backend cuda,numba "${size_flag[@]}" \
        --json "$out/bench.json" --markdown "$out/bench.md" --plot "$out/bench.png" \
        2>&1 | tee "$out/bench.txt" || status=1
fi
exit "$status"
