"""The TS-scan kernels on synthetic arrays, against gammapy's per-pixel estimator.

The reference for each pixel is gammapy 2.1's own ``BrentqFluxEstimator`` run
(tight: ``rtol=1e-10``) on a ``SimpleMapDataset`` of the pixel's footprint bins
(bins with ``n = b = m = 0`` dropped), i.e. gammapy's per-pixel conventions.
"""

import numpy as np
import pytest
from gammapy.estimators.map.ts import BrentqFluxEstimator, SimpleMapDataset

from rtafast_kernels.tsmap.element import OUTPUT_NAMES
from rtafast_kernels.tsmap.inputs import TSScanInputs

ROWS = {name: i for i, name in enumerate(OUTPUT_NAMES)}


def _inputs(ny=10, nx=9, k=5, layers=2, seed=3, **options):
    rng = np.random.default_rng(seed)
    shape = (layers, ny + k - 1, nx + k - 1)
    pad = (slice(None), slice(k // 2, k // 2 + ny), slice(k // 2, k // 2 + nx))
    background = np.zeros(shape)
    background[pad] = rng.uniform(0.05, 0.6, size=(layers, ny, nx))
    expo = np.zeros(shape)
    expo[pad] = rng.uniform(0.5, 1.5, size=(layers, ny, nx))
    source = np.zeros(shape)
    yy, xx = np.mgrid[:ny, :nx]
    source[pad] = 3.0 * np.exp(-((yy - 4) ** 2 + (xx - 4) ** 2) / 2.0)
    counts = np.zeros(shape)
    counts[pad] = rng.poisson(background[pad] + source[pad] * expo[pad])
    counts[:, k // 2 + ny - 1, k // 2 + nx - 1] = 0.0  # an empty corner bin
    g = np.exp(-((np.arange(k) - k // 2) ** 2) / 3.0)
    ktab = np.stack([np.outer(g, g), np.outer(g, g) ** 2])
    ktab /= ktab.sum(axis=(1, 2), keepdims=True)
    kidx = np.zeros(shape, dtype=np.int32)
    kidx[1:2] = 1  # the second layer (if any) uses the second kernel
    py, px = np.mgrid[:ny, :nx]
    defaults = dict(rtol=1e-10, max_niter=100)
    defaults.update(options)
    return TSScanInputs(
        counts=counts,
        background=background,
        expo=expo,
        kidx=kidx,
        ktab=ktab,
        pix_y=py.ravel().astype(np.int64),
        pix_x=px.ravel().astype(np.int64),
        guess=np.full(ny * nx, 0.5),
        **defaults,
    )


def _gammapy_pixel(inputs, j, selection):
    k = inputs.ktab.shape[1]
    y, x = inputs.pix_y[j], inputs.pix_x[j]
    window = (slice(None), slice(y, y + k), slice(x, x + k))
    n = inputs.counts[window]
    b = inputs.background[window]
    m = inputs.ktab[inputs.kidx[window], np.arange(k)[:, None], np.arange(k)] * inputs.expo[window]
    keep = ~((n == 0) & (b == 0) & (m == 0))
    dataset = SimpleMapDataset(model=m[keep], counts=n[keep], background=b[keep], norm_guess=0.5)
    estimator = BrentqFluxEstimator(
        rtol=inputs.rtol,
        n_sigma=1,
        n_sigma_ul=2,
        selection_optional=selection,
        max_niter=inputs.max_niter,
    )
    return estimator.run(dataset)


def _assert_same_iterations(out, inputs, j, reference):
    """brentq step for step: gammapy's converged flag and iteration count. At a tight
    ``rtol`` (1e-10: steps of ~1e-10 of the norm) the last iterates are decided by the
    rounding of the sums (summed in another order than gammapy's): one more or less."""
    assert out[ROWS["success"], j] == reference["success"], j
    slack = 0 if inputs.rtol >= 1e-6 else 1
    assert abs(out[ROWS["niter"], j] - reference["niter"]) <= slack, j


def test_scan_matches_gammapy_pixel_estimator(backend):
    """Every pixel: TS, norm, norm_err, errn/errp/ul, stat and npred as gammapy's."""
    small = backend.name == "cuda"
    inputs = _inputs(ny=4 if small else 10, nx=4 if small else 9, want_errs=True, want_ul=True)
    out = backend.ts_scan(inputs)
    assert out.shape == (len(OUTPUT_NAMES), inputs.pix_y.size)
    names = {
        "ts": "ts",
        "norm": "norm",
        "norm_err": "norm_err",
        "stat": "stat",
        "stat_null": "stat_null",
        "npred": "npred",
        "npred_excess": "npred_excess",
        "norm_errn": "norm_errn",
        "norm_errp": "norm_errp",
        "norm_ul": "norm_ul",
    }
    for j in range(inputs.pix_y.size):
        reference = _gammapy_pixel(inputs, j, ["errn-errp", "ul"])
        for name, key in names.items():
            assert out[ROWS[name], j] == pytest.approx(reference[key], rel=1e-6, abs=1e-8), (
                j,
                name,
            )
        _assert_same_iterations(out, inputs, j, reference)


@pytest.mark.parametrize("rtol", [0.01, 1e-4])
def test_gammapy_rtol_gives_gammapy_numbers(backend, rtol):
    """At gammapy's default ``rtol = 0.01`` (and 1e-4) the fit is gammapy's brentq:
    the same norm (not the exact minimum), TS, errors, iterations and flags."""
    small = backend.name == "cuda"
    inputs = _inputs(
        ny=4 if small else 6, nx=4 if small else 6, want_errs=True, want_ul=True, rtol=rtol
    )
    out = backend.ts_scan(inputs)
    _assert_matches_gammapy(out, inputs, ("errn-errp", "ul"))


def test_no_counts_gives_physical_limit(backend):
    """A pixel without counts: norm = -min(b/m), no iteration, as gammapy."""
    inputs = _inputs(ny=4, nx=4)
    inputs.counts[:] = 0.0
    out = backend.ts_scan(inputs)
    for j in range(inputs.pix_y.size):
        reference = _gammapy_pixel(inputs, j, [])
        assert out[ROWS["niter"], j] == 0
        assert out[ROWS["norm"], j] == pytest.approx(reference["norm"], rel=1e-12)
        assert out[ROWS["norm"], j] < 0


def test_threshold_skips_fit(backend):
    inputs = _inputs(ny=4, nx=4, use_threshold=True, threshold=1e9)
    out = backend.ts_scan(inputs)
    np.testing.assert_array_equal(out[ROWS["niter"]], 0)
    np.testing.assert_allclose(out[ROWS["norm"]], inputs.guess)


def _assert_agrees_with_numpy(out, reference):
    values = [i for i in range(out.shape[0]) if i != ROWS["niter"]]
    np.testing.assert_allclose(out[values], reference[values], rtol=1e-9, atol=1e-12)
    # numba sums the root function in vector lanes (jit.cpu_reduction): its values
    # differ from the sequential sum by rounding, which can move brentq's stopping
    # test by one iteration where it sits on a rounding boundary. Which pixels sit there
    # depends on the CPU's vector width (4 float64 lanes with AVX2, 8 with AVX-512: 2 of
    # these 16 pixels on an AMD EPYC, 3 on an Intel Xeon), so only the step is bounded
    niter_step = np.abs(out[ROWS["niter"]] - reference[ROWS["niter"]])
    assert niter_step.max() <= 1


def test_backends_agree_on_synthetic(backend):
    from rtafast_kernels import resolve_backend

    inputs = _inputs(ny=4, nx=4, want_errs=True, want_ul=True)  # one pixel per simulated thread
    reference = resolve_backend("numpy").ts_scan(inputs)
    out = backend.ts_scan(inputs)
    _assert_agrees_with_numpy(out, reference)


def _assert_matches_gammapy(out, inputs, selection=()):
    names = ["ts", "norm", "norm_err", "stat", "stat_null", "npred", "npred_excess"]
    names += ["norm_errn", "norm_errp"] if "errn-errp" in selection else []
    names += ["norm_ul"] if "ul" in selection else []
    for j in range(inputs.pix_y.size):
        reference = _gammapy_pixel(inputs, j, list(selection))
        for name in names:
            assert out[ROWS[name], j] == pytest.approx(reference[name], rel=1e-6, abs=1e-8), (
                j,
                name,
            )
        _assert_same_iterations(out, inputs, j, reference)


@pytest.mark.parametrize("negative", [-1e-9, -0.02])
def test_negative_kernel_values_match_gammapy(backend, negative):
    """Kernel tables with negative values (gammapy's PSF kernels can have tiny ones):
    bins with ``m < 0`` stay exact (the linear sums only hold up to the norm where
    such a bin's ``b + x m`` reaches 0). With large negative values the statistic
    jumps (truncation) below the norm and errn is ambiguous: not compared there."""
    small = backend.name == "cuda"
    selection = ("errn-errp", "ul") if negative > -1e-3 else ()
    inputs = _inputs(ny=4 if small else 6, nx=4 if small else 6, want_errs=True, want_ul=True)
    inputs.ktab[0, 0, :] = negative
    inputs.ktab[1, :, 0] = negative
    out = backend.ts_scan(inputs)
    _assert_matches_gammapy(out, inputs, selection)


def test_mixed_kernel_rows_match_gammapy(backend):
    """Several kernel rows within one layer (energy-mask patterns of summed energies)."""
    small = backend.name == "cuda"
    inputs = _inputs(ny=4 if small else 6, nx=4 if small else 6, layers=1)
    rng = np.random.default_rng(5)
    inputs.ktab = np.concatenate([inputs.ktab, inputs.ktab[:1] ** 0.5])
    inputs.ktab /= inputs.ktab.sum(axis=(1, 2), keepdims=True)
    inputs.kidx = rng.integers(0, 3, size=inputs.counts.shape).astype(np.int32)
    out = backend.ts_scan(inputs)
    _assert_matches_gammapy(out, inputs)


def test_irregular_inputs_agree_with_numpy(backend):
    """Negative background or counts (not physical): every bin is fitted bin by bin."""
    from rtafast_kernels import resolve_backend
    from rtafast_kernels.tsmap.inputs import scan_tables

    inputs = _inputs(ny=4, nx=4, want_errs=True, want_ul=True)
    inputs.background[0, 3, 3] = -0.01
    assert not scan_tables(inputs).regular
    reference = resolve_backend("numpy").ts_scan(inputs)
    out = backend.ts_scan(inputs)
    _assert_agrees_with_numpy(out, reference)
    assert np.all(out[ROWS["success"]] == 1.0)


def test_pixel_order_does_not_matter(backend):
    inputs = _inputs(ny=4, nx=4)
    out = backend.ts_scan(inputs)
    order = np.random.default_rng(2).permutation(inputs.pix_y.size)
    inputs.pix_y, inputs.pix_x = inputs.pix_y[order], inputs.pix_x[order]
    inputs.guess = inputs.guess[order]
    np.testing.assert_allclose(backend.ts_scan(inputs), out[:, order], rtol=1e-12, atol=1e-14)


def test_no_counted_model_bin_gives_physical_limit(backend):
    """Counts only where the model is 0: the statistic increases from the physical
    limit on, so the norm is that limit; gammapy's brentq finds no sign change and
    fails: ``success`` False, ``niter = max_niter``, as gammapy's."""
    inputs = _inputs(ny=4, nx=4, layers=1)
    inputs.ktab[:] = 0.0
    inputs.ktab[0, 2, 2] = 1.0
    inputs.counts[:] = 0.0
    inputs.counts[0, 0, 0] = 3.0  # only in the footprint corner of pixel (0, 0)
    out = backend.ts_scan(inputs)
    reference = _gammapy_pixel(inputs, 0, [])
    assert not reference["success"]
    assert out[ROWS["success"], 0] == 0.0
    assert out[ROWS["niter"], 0] == inputs.max_niter == reference["niter"]
    b, e = inputs.background[0, 2:6, 2:6], inputs.expo[0, 2:6, 2:6]
    assert out[ROWS["norm"], 0] == pytest.approx(-np.min(b[0, 0] / e[0, 0]), rel=1e-12)
