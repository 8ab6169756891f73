"""TS map: rtafast.estimators.TSMapEstimator against gammapy's, same data, same run.

Default run (short): the 4-run H.E.S.S. Crab map (125 x 125, 6 energies, kernel
width 0.3 deg = 15 x 15 pixels, point source, index 2): gammapy's default
``TSMapEstimator().run`` against rtafast's ``run``, two rtafast rows per backend:

* warm (backend ``numba``, ``numpy``): repeated maps of one dataset, the kernel and
  exposure cache warm (the IRF maps and mask are compared with the cached entry's
  at every call);
* cold (backend ``numba cold: ...``): the first TS map of a new dataset -- each
  round a fresh ``TSInputCache`` and a new copy of the dataset (new Map and
  geometry objects, nothing memoised), numba's JIT compiled beforehand: the
  kernel (PSF/EDisp convolution of the kernel model) and the reconstructed-energy
  exposures are computed from the IRF arrays (:mod:`rtafast.estimators.ts_kernel`).

Both are divided into the same gammapy median. Each rtafast result is checked
against gammapy's default run: the same pixels, and TS within gammapy's own
default tolerance (``rtol=0.01`` on the norm).

``RTAFAST_BENCH_FULL=1`` adds the scaling table of the scan kernel alone
(synthetic maps 64^2 to 1024^2, kernels 9^2 to 41^2, numpy and numba; cuda on a
real GPU) and the memory check: the 1024^2 map with a 41^2 kernel, in a fresh
process, must peak below 2 GB (resident set, ``resource.getrusage``).
"""

import os
import subprocess
import sys

import astropy.units as u
import numpy as np
import pytest
from bench_settings import skip_simulated_cuda
from gammapy.estimators import TSMapEstimator as GammapyTSMapEstimator

from rtafast.estimators import TSMapEstimator
from rtafast.estimators.ts_inputs import TSInputCache

FULL = os.environ.get("RTAFAST_BENCH_FULL") == "1"
KERNEL_WIDTH = 0.3 * u.deg
SIZE = "crab 125x125x6, kernel 15x15"


@pytest.fixture(scope="module")
def crab_reference(hess_crab_stacked):
    return GammapyTSMapEstimator(kernel_width=KERNEL_WIDTH).run(hess_crab_stacked)


def test_gammapy_tsmap(benchmark, record, hess_crab_stacked, crab_reference):
    """gammapy's default ``TSMapEstimator(kernel_width=0.3 deg).run`` on the Crab map."""
    record("ts map", SIZE, "gammapy")
    estimator = GammapyTSMapEstimator(kernel_width=KERNEL_WIDTH)
    result = benchmark.pedantic(
        estimator.run, args=(hess_crab_stacked,), rounds=3, warmup_rounds=0, iterations=1
    )
    np.testing.assert_allclose(result["ts"].data, crab_reference["ts"].data, rtol=1e-6)


def test_rtafast_tsmap(benchmark, record, hess_crab_stacked, crab_reference, backend):
    """Repeated TS maps of one dataset: the kernel and exposures found in the cache."""
    skip_simulated_cuda(backend)
    record("ts map", SIZE, "rtafast", backend.name)
    estimator = TSMapEstimator(kernel_width=KERNEL_WIDTH, array_backend=backend.name)
    estimator.run(hess_crab_stacked)  # JIT compilation and kernel cache
    rounds = 3 if backend.name == "numpy" else 20
    result = benchmark.pedantic(
        estimator.run, args=(hess_crab_stacked,), rounds=rounds, warmup_rounds=1, iterations=1
    )
    _assert_agrees(result, crab_reference)


def _assert_agrees(result, reference):
    ts_ref = reference["ts"].data
    fitted = np.isfinite(ts_ref)
    np.testing.assert_array_equal(np.isfinite(result["ts"].data), fitted)
    delta = np.abs(result["ts"].data[fitted] - ts_ref[fitted])
    assert np.all(delta <= 0.05 + 0.02 * np.abs(ts_ref[fitted]))


def test_rtafast_tsmap_first_call(benchmark, record, hess_crab_stacked, crab_reference, backend):
    """The first TS map of a new dataset: fresh TS-input cache, new dataset objects,
    JIT compiled (kernel and exposures computed, then the scan)."""
    skip_simulated_cuda(backend)
    if backend.name == "numpy":
        pytest.skip("cold row: the compiled backends (the numpy scan dominates its time)")
    record("ts map", SIZE, "rtafast", f"{backend.name} cold: first call on a new dataset")
    caches = []

    def setup():
        caches.append(TSInputCache())
        estimator = TSMapEstimator(
            kernel_width=KERNEL_WIDTH, array_backend=backend.name, cache=caches[-1]
        )
        dataset = hess_crab_stacked.copy(name=f"crab-copy-{len(caches)}")
        return (estimator, dataset), {}

    def first_call(estimator, dataset):
        return estimator.run(dataset)

    first_call(*setup()[0])  # JIT compilation of the scan
    result = benchmark.pedantic(first_call, setup=setup, rounds=10, iterations=1)
    assert all(cache.misses == 1 and cache.hits == 0 for cache in caches)
    _assert_agrees(result, crab_reference)


# --- scaling table of the scan kernel (RTAFAST_BENCH_FULL=1) -------------------

MAP_SIZES = (64, 256, 1024)
KERNEL_SIZES = (9, 21, 41)


def synthetic_inputs(npix, k, seed=0):
    """A sparse synthetic map (0.05 background counts per pixel, one source)."""
    from rtafast_kernels.tsmap.inputs import TSScanInputs

    rng = np.random.default_rng(seed)
    shape = (1, npix + k - 1, npix + k - 1)
    inner = (slice(None), slice(k // 2, k // 2 + npix), slice(k // 2, k // 2 + npix))
    background = np.zeros(shape)
    background[inner] = 0.05
    yy, xx = np.mgrid[:npix, :npix]
    source = 20.0 * np.exp(-((yy - npix / 2) ** 2 + (xx - npix / 2) ** 2) / 8.0)
    counts = np.zeros(shape)
    counts[inner] = rng.poisson(0.05 + source)
    expo = np.zeros(shape)
    expo[inner] = 1.0
    g = np.exp(-((np.arange(k) - k // 2) ** 2) / (2 * (k / 6) ** 2))
    ktab = (np.outer(g, g) / np.outer(g, g).sum())[None]
    py, px = np.mgrid[:npix, :npix]
    return TSScanInputs(
        counts=counts,
        background=background,
        expo=expo,
        kidx=np.zeros(shape, dtype=np.int32),
        ktab=ktab,
        pix_y=py.ravel().astype(np.int64),
        pix_x=px.ravel().astype(np.int64),
        guess=np.zeros(npix * npix),
    )


@pytest.mark.skipif(not FULL, reason="scaling sweep: set RTAFAST_BENCH_FULL=1")
@pytest.mark.parametrize("k", KERNEL_SIZES)
@pytest.mark.parametrize("npix", MAP_SIZES)
def test_scan_scaling(benchmark, record, backend, npix, k):
    skip_simulated_cuda(backend)
    if backend.name == "numpy" and npix * npix * k * k > 256 * 256 * 21 * 21:
        pytest.skip("numpy reference: too slow for this size")
    record("ts scan kernel", f"map {npix}^2, kernel {k}^2", "rtafast", backend.name)
    inputs = synthetic_inputs(npix, k)
    out = backend.ts_scan(inputs)  # warm-up (JIT)
    result = benchmark.pedantic(
        backend.ts_scan, args=(inputs,), rounds=3, warmup_rounds=0, iterations=1
    )
    np.testing.assert_allclose(result, out, rtol=1e-9, equal_nan=True)
    assert np.nanmax(result[2]) > 25  # the source is detected


MEMORY_SCRIPT = """
import resource, sys, time
sys.path.insert(0, {bench_dir!r})
from test_bench_tsmap import synthetic_inputs
from rtafast_kernels import resolve_backend
backend = resolve_backend("numba")
backend.ts_scan(synthetic_inputs(16, 41))  # compile / load the kernel first
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
inputs = synthetic_inputs(1024, 41)
start = time.perf_counter()
out = backend.ts_scan(inputs)
elapsed = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before * 1024, peak * 1024, elapsed, out.shape[1])
"""


@pytest.mark.skipif(not FULL, reason="memory check: set RTAFAST_BENCH_FULL=1")
def test_scan_memory_1024_map_41_kernel():
    """The scan allocates O(map): a 1024^2 map with a 41^2 kernel peaks below 2 GB."""
    script = MEMORY_SCRIPT.format(bench_dir=os.path.dirname(__file__))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    before, peak, elapsed, npix = done.stdout.split()
    peak_gb = int(peak) / 2**30
    print(
        f"\n1024^2 map, 41^2 kernel (numba): peak RSS {peak_gb:.2f} GB "
        f"(before the map: {int(before) / 2**30:.2f} GB), scan {float(elapsed):.2f} s"
    )
    assert int(npix) == 1024 * 1024
    assert peak_gb < 2.0
    # O(map): well below one float per (pixel, kernel bin) = 1024^2 * 41^2 * 8 B = 14 GB
    assert int(peak) - int(before) < 0.05 * 1024**2 * 41**2 * 8
