#!/usr/bin/env bash
# The GPU check sized for a device lease (15 minutes of device time, all tries; 10
# minutes a command): run it there, on a copy of this working tree prepared here by
# ci/device-kit.sh, so that a second try still fits. From the session, e.g.:
#   run(command="bash ci/gpu-check.sh", timeout_s=480, carry=[".whl",
#       ".devdata/hess-dl3-dr1", ".devdata/cta-caldb", ".devdata/estimators"])
# Stages, each time-boxed, each writing one file to $OUT (at most 8 come back):
#   info.txt        versions, the device (rtafast info --probe-gpu, nvidia-smi)
#   gpu-tests.txt   the gpu-marked tests and every cuda-parametrised test, on the device
#   bench.txt       where a small cuda call spends its time (test_bench_cuda_overhead.py),
#                   benchmarks of the kernel families, cuda and numba beside gammapy,
#   bench.json      same run (rtafast vs gammapy medians and ratios; JSON rows)
#   bench-lc.txt    the flux-only light curves (15 flare runs), cuda and numba,
#   bench-lc.json   beside gammapy's LightCurveEstimator (gammapy's side ~1 min)
# Exit status: non-zero when a stage failed or ran out of its time (its file says which).
# GPU_CHECK_STAGES (default "info tests bench lightcurve") picks stages, e.g. a second
# call with the stages the first could not finish; GPU_CHECK_TESTS_S, GPU_CHECK_BENCH_S
# and GPU_CHECK_LC_S (150, 150, 120 s) their time limits: ~7.5 min at most with the
# wheels' install; GPU_CHECK_BENCH_FILES the benchmark files of the bench stage. RTAFAST_TEST_REAL_GPU=0 runs it here (no GPU) under numba's CUDA simulator:
# a dry run of the script, its data and its selections (cuda timings are skipped).
# A full GPU node with time to spare runs ci/gpu-bench.sh instead (whole suite, all sizes).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 RTAFAST_TEST_REAL_GPU="${RTAFAST_TEST_REAL_GPU:-1}"
[ "$RTAFAST_TEST_REAL_GPU" = 1 ] || export NUMBA_ENABLE_CUDASIM=1   # the dry run here
export RTAFAST_CACHE_DIR="${RTAFAST_CACHE_DIR:-/tmp/rtafast-cache}"
python="${PYTHON:-python3}"

# the carried wheels, rtafast from this tree (no pip install: no network there), the data
# shellcheck source=ci/tree-env.sh
. ci/tree-env.sh || exit 2

status=0
xdist_args() {  # the tests' compilations spread over the node's cores when xdist is there
    "$python" -c "import xdist" 2>/dev/null && echo "-n ${GPU_CHECK_WORKERS:-8}"
}
stage() { [[ " ${GPU_CHECK_STAGES:-info tests bench lightcurve} " == *" $1 "* ]]; }
finish() {  # name, exit code of its command: 124 = out of time
    case "$2" in
        0) ;;
        124) echo "gpu-check: stage $1 ran out of its time" | tee -a "$out/$1.txt"; status=1 ;;
        *) echo "gpu-check: stage $1 failed (exit $2)" | tee -a "$out/$1.txt"; status=1 ;;
    esac
}

if stage info; then
    {
        date -u
        "$python" -c "import sys; print('python', sys.version.split()[0])"
        "$python" -m pip list 2>/dev/null | grep -i -E \
            '^(numpy|scipy|numba|numba-cuda|llvmlite|cupy-cuda1.x|astropy|gammapy|regions) '
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        nproc
        timeout 120 "$python" -m rtafast.cli info --probe-gpu
    } > "$out/info.txt" 2>&1
    finish info $?
fi

if stage tests; then
    # without a usable cuda backend every cuda test would skip: a pass that proves nothing
    "$python" -c "from rtafast_kernels import available_backends as a; ok, why = a()['cuda']
assert ok, f'the cuda backend cannot run here: {why}'" > "$out/gpu-tests.txt" 2>&1 &&
    timeout "${GPU_CHECK_TESTS_S:-150}" "$python" -m pytest tests -k "cuda or gpu" \
        $(xdist_args) -p no:cacheprovider --benchmark-disable -q -rfEs --durations=10 \
        >> "$out/gpu-tests.txt" 2>&1
    finish gpu-tests $?
fi

bench_args=(--benchmark-only --benchmark-columns=min,median,max,rounds -q --disable-warnings
           -p no:cacheprovider)
if stage bench; then
    RTAFAST_BACKENDS=cuda,numba RTAFAST_BENCH_QUICK=1 RTAFAST_BENCH_JSON="$out/bench.json" \
        timeout "${GPU_CHECK_BENCH_S:-150}" "$python" -m pytest ${GPU_CHECK_BENCH_FILES:-\
        benchmarks/test_bench_cuda_overhead.py \
        benchmarks/test_bench_binning.py benchmarks/test_bench_binning_threads.py \
        benchmarks/test_bench_ring.py benchmarks/test_bench_onoff.py benchmarks/test_bench_wstat.py \
        benchmarks/test_bench_tsmap.py benchmarks/test_bench_fit.py} \
        "${bench_args[@]}" > "$out/bench.txt" 2>&1
    finish bench $?
fi

if stage lightcurve; then
    RTAFAST_BACKENDS=cuda,numba RTAFAST_BENCH_QUICK=1 RTAFAST_BENCH_JSON="$out/bench-lc.json" \
        timeout "${GPU_CHECK_LC_S:-120}" "$python" -m pytest benchmarks/test_bench_lightcurve.py \
        "${bench_args[@]}" > "$out/bench-lc.txt" 2>&1
    finish bench-lc $?
fi
exit "$status"
