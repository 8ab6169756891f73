"""TSMapEstimator's confidence options against gammapy's, on every backend.

``n_sigma`` (the norm error ``norm_err`` and the asymmetric errors
``norm_errn``/``norm_errp``, where the statistic rises by ``n_sigma**2``) and
``n_sigma_ul`` (the upper limit ``norm_ul``, a rise of ``n_sigma_ul**2``), with
values other than the defaults (1 and 2): ``n_sigma=2``, ``n_sigma_ul=3``.

The reference is gammapy's TSMapEstimator run tight (``rtol=1e-6``,
``max_niter=1000``) on the same small simulated dataset (no external data: a
0.25 deg cutout around the simulated source, 5 x 5 pixels, 5 x 5 kernel), so the
cuda backend under numba's CUDA simulator stays quick. Tolerances: ``norm`` and
the errors within 1e-3 of gammapy's ``norm_err`` (gammapy's own rtol of 1e-6 on
the norm, propagated), ``norm_err`` 1e-4 relative, TS 1e-6 relative + 1e-6.
"""

import astropy.units as u
import numpy as np
import pytest
from gammapy.estimators import TSMapEstimator as GammapyTSMapEstimator

from rtafast.estimators import TSMapEstimator
from rtafast.estimators.ts_inputs import TSInputCache

KERNEL_WIDTH = 0.25 * u.deg
SELECTION = ["errn-errp", "ul"]


@pytest.fixture(scope="module")
def small(simulated):
    """5 x 5 pixels around the simulated source, its models removed (TS of the source)."""
    dataset = simulated.cutout(simulated.counts.geom.center_skydir, width=0.25 * u.deg)
    dataset.models = None
    assert dataset.counts.geom.data_shape[-2:] == (5, 5)
    return dataset


@pytest.fixture(scope="module")
def reference(small):
    """gammapy, tight, n_sigma=2 and n_sigma_ul=3."""
    estimator = GammapyTSMapEstimator(
        kernel_width=KERNEL_WIDTH,
        n_sigma=2,
        n_sigma_ul=3,
        selection_optional=SELECTION,
        rtol=1e-6,
        max_niter=1000,
    )
    return estimator.run(small)


def _rtafast(dataset, backend_name, **kwargs):
    """rtafast with the reference's ``rtol`` and ``max_niter`` (gammapy's brentq)."""
    kwargs.setdefault("rtol", 1e-6)
    kwargs.setdefault("max_niter", 1000)
    estimator = TSMapEstimator(
        kernel_width=KERNEL_WIDTH,
        selection_optional=SELECTION,
        array_backend=backend_name,
        cache=TSInputCache(),
        **kwargs,
    )
    return estimator.run(dataset)


def _assert_errors_match(result, reference):
    ts_ref = reference["ts"].data
    fitted = np.isfinite(ts_ref) & reference["success"].data
    assert fitted.sum() == 25
    assert np.nanmax(ts_ref) > 25  # the source is there: errors are not trivial
    np.testing.assert_allclose(result["ts"].data[fitted], ts_ref[fitted], rtol=1e-6, atol=1e-6)
    norm_err = reference["norm_err"].data[fitted]
    np.testing.assert_allclose(result["norm_err"].data[fitted], norm_err, rtol=1e-4)
    for name in ["norm", "norm_errn", "norm_errp", "norm_ul"]:
        value, expected = result[name].data[fitted], reference[name].data[fitted]
        assert np.isfinite(expected).all(), name
        atol = 1e-3 * norm_err.min()
        np.testing.assert_allclose(value, expected, rtol=0, atol=atol, err_msg=name)


def test_n_sigma_2_and_n_sigma_ul_3_match_gammapy(small, reference, backend):
    """norm_err, norm_errn/errp (n_sigma=2) and norm_ul (n_sigma_ul=3) equal gammapy's."""
    result = _rtafast(small, backend.name, n_sigma=2, n_sigma_ul=3)
    assert result.meta["n_sigma"] == 2 and result.meta["n_sigma_ul"] == 3
    _assert_errors_match(result, reference)


def test_n_sigma_scales_the_errors(small, backend):
    """With n_sigma=2 the symmetric error is twice the 1-sigma one, and the
    asymmetric errors and the upper limit grow with their confidence levels."""
    one = _rtafast(small, backend.name)
    two = _rtafast(small, backend.name, n_sigma=2, n_sigma_ul=3)
    np.testing.assert_allclose(two["norm_err"].data, 2 * one["norm_err"].data, rtol=1e-12)
    np.testing.assert_allclose(two["norm"].data, one["norm"].data, rtol=1e-12)
    for name in ["norm_errn", "norm_errp"]:
        assert np.all(two[name].data > 1.5 * one[name].data), name
    assert np.all(two["norm_ul"].data > one["norm_ul"].data)
