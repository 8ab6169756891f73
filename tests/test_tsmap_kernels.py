"""The TS-scan kernels on synthetic arrays, against gammapy's per-pixel estimator.

The reference for each pixel is gammapy 2.1's own ``BrentqFluxEstimator`` run
(tight: ``rtol=1e-10``) on a ``SimpleMapDataset`` of the pixel's footprint bins
(bins with ``n = b = m = 0`` dropped), i.e. gammapy's per-pixel conventions.
"""

import numpy as np
import pytest
from gammapy.estimators.map.ts import BrentqFluxEstimator, SimpleMapDataset

from rtafast_kernels.tsmap_element import OUTPUT_NAMES
from rtafast_kernels.tsmap_numpy import TSScanInputs

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
    kidx[1] = 1
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
        rtol=1e-10, n_sigma=1, n_sigma_ul=2, selection_optional=selection, max_niter=1000
    )
    return estimator.run(dataset)


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
        assert out[ROWS["success"], j] == 1.0


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


def test_backends_agree_on_synthetic(backend):
    from rtafast_kernels import resolve_backend

    inputs = _inputs(ny=4, nx=4, want_errs=True, want_ul=True)  # one pixel per simulated thread
    reference = resolve_backend("numpy").ts_scan(inputs)
    out = backend.ts_scan(inputs)
    np.testing.assert_allclose(out, reference, rtol=1e-9, atol=1e-12)
