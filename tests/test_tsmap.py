"""rtafast.estimators.TSMapEstimator against gammapy 2.1's, on real data.

The reference runs gammapy's TSMapEstimator in the test, tight (``rtol=1e-6``,
``max_niter=1000``). For every fitted pixel: ``|dTS| <= 0.01 + 1e-4 TS`` and
``|dnorm| <= 1e-3 norm_err`` (likewise norm_errn, norm_errp and norm_ul where
selected); the same pixels are fitted. Backends agree with each other to 1e-9
relative (the cuda backend, simulated, on a 0.4 deg cutout, against numpy on it).

Pixels where gammapy's own root search fails (``success`` False: its bracket's
ends have the same sign by rounding; 149 of 14919 pixels on CTA 1DC, none on the
Crab) are not compared; rtafast must converge there.
"""

import astropy.units as u
import numpy as np
import pytest
from gammapy.estimators import FluxMaps
from gammapy.estimators import TSMapEstimator as GammapyTSMapEstimator
from gammapy.estimators.utils import find_peaks

from rtafast.estimators import TSMapEstimator
from rtafast.estimators.ts_inputs import TSInputCache
from rtafast.reference_data import CRAB_POSITION

pytestmark = pytest.mark.data

KERNEL_WIDTH = 0.3 * u.deg
ERRORS = ["errn-errp", "ul"]
BASE_KEYS = ["ts", "norm", "norm_err", "npred", "npred_excess", "niter", "success", "stat"]


def _gammapy(dataset, **kwargs):
    kwargs.setdefault("kernel_width", KERNEL_WIDTH)
    return GammapyTSMapEstimator(rtol=1e-6, max_niter=1000, **kwargs).run(dataset)


def _rtafast(dataset, backend="numba", **kwargs):
    kwargs.setdefault("kernel_width", KERNEL_WIDTH)
    return TSMapEstimator(backend=backend, **kwargs).run(dataset)


def assert_matches_gammapy(result, reference, errors=False):
    """The issue's per-pixel tolerances; returns the worst deviations (for reports)."""
    ts_ref = reference["ts"].data
    finite = np.isfinite(ts_ref)
    assert finite.sum() > 100
    np.testing.assert_array_equal(np.isfinite(result["ts"].data), finite)
    # gammapy's brentq fails (success False, norm NaN) where its bracket's ends have
    # the same sign by rounding (the root is on the lower end): rare; rtafast converges.
    fitted = finite & (reference["success"].data > 0)
    assert (finite & ~fitted).sum() <= 0.02 * finite.sum()
    assert result["success"].data[finite].all()
    ts = result["ts"].data[fitted]
    norm_err = reference["norm_err"].data[fitted]
    worst = {}
    dts = np.abs(ts - ts_ref[fitted])
    assert np.all(dts <= 0.01 + 1e-4 * np.abs(ts_ref[fitted])), dts.max()
    worst["ts"] = dts.max()
    names = ["norm"] + (["norm_errn", "norm_errp", "norm_ul"] if errors else [])
    for name in names:
        value = result[name].data[fitted]
        expected = reference[name].data[fitted]
        np.testing.assert_array_equal(np.isfinite(value), np.isfinite(expected), err_msg=name)
        both = np.isfinite(expected)
        delta = np.abs(value - expected)[both] / norm_err[both]
        assert np.all(delta <= 1e-3), (name, delta.max())
        worst[name] = delta.max()
    np.testing.assert_allclose(result["norm_err"].data[fitted], norm_err, rtol=1e-3)
    np.testing.assert_allclose(
        result["stat_null"].data[fitted], reference["stat_null"].data[fitted], rtol=1e-6
    )
    return worst


@pytest.fixture(scope="module")
def crab(hess_crab_stacked):
    return hess_crab_stacked


@pytest.fixture(scope="module")
def crab_even(crab):
    """A 100 x 100 cutout: gammapy's downsampling needs an even map."""
    return crab.cutout(CRAB_POSITION, width=2.0 * u.deg)


@pytest.mark.parametrize("sum_over_energy_groups", [True, False])
def test_crab_matches_gammapy(crab, sum_over_energy_groups):
    kwargs = dict(sum_over_energy_groups=sum_over_energy_groups, selection_optional=ERRORS)
    reference = _gammapy(crab, **kwargs)
    result = _rtafast(crab, **kwargs)
    assert_matches_gammapy(result, reference, errors=True)
    assert np.nanmax(result["ts"].data) > 100  # the Crab is there


def test_cta_1dc_matches_gammapy(cta_1dc_gc):
    kwargs = dict(selection_optional=ERRORS)
    reference = _gammapy(cta_1dc_gc, **kwargs)
    result = _rtafast(cta_1dc_gc, **kwargs)
    assert_matches_gammapy(result, reference, errors=True)


def test_energy_groups_match_gammapy(crab):
    kwargs = dict(sum_over_energy_groups=False, energy_edges=[1, 3, 10] * u.TeV)
    reference = _gammapy(crab, **kwargs)
    result = _rtafast(crab, **kwargs)
    assert result["ts"].data.shape[0] == 2
    assert_matches_gammapy(result, reference)


def test_downsampling_matches_gammapy(crab_even):
    kwargs = dict(downsampling_factor=2, selection_optional=ERRORS)
    reference = _gammapy(crab_even, **kwargs)
    result = _rtafast(crab_even, **kwargs)
    assert result["ts"].geom == reference["ts"].geom
    assert_matches_gammapy(result, reference, errors=True)


def test_threshold_matches_gammapy(crab_even):
    kwargs = dict(downsampling_factor=2, threshold=4.0)
    reference = _gammapy(crab_even, **kwargs)
    result = _rtafast(crab_even, **kwargs)
    skipped = reference["niter"].data == 0
    assert skipped.sum() > 10 and (~skipped & np.isfinite(reference["ts"].data)).sum() > 10
    np.testing.assert_array_equal(result["niter"].data == 0, skipped)
    assert_matches_gammapy(result, reference)


def test_output_is_gammapy_flux_maps(crab):
    cutout = crab.cutout(CRAB_POSITION, width=0.6 * u.deg)
    result = _rtafast(cutout, selection_optional=ERRORS)
    reference = _gammapy(cutout, selection_optional=ERRORS)
    assert isinstance(result, FluxMaps)
    assert result.available_quantities == reference.available_quantities
    for name in BASE_KEYS + ["sqrt_ts", "flux", "flux_err", "flux_ul", "dnde"]:
        assert result[name].unit == reference[name].unit, name
        assert result[name].geom == reference[name].geom, name
    peaks = find_peaks(result["sqrt_ts"], threshold=5)
    peaks_ref = find_peaks(reference["sqrt_ts"], threshold=5)
    assert len(peaks) == len(peaks_ref) >= 1
    assert tuple(peaks["x"]) == tuple(peaks_ref["x"])


def test_stat_scan_runs_gammapy_loop(crab):
    cutout = crab.cutout(CRAB_POSITION, width=0.2 * u.deg)
    result = _rtafast(cutout, selection_optional=["stat_scan"])
    assert "stat_scan" in result.available_quantities


def test_backends_agree(crab, backend):
    """numpy, numba and cuda agree to 1e-9 relative on the Crab map.

    Under the CUDA simulator (a Python thread per GPU thread, and a polling loop
    that slows them down) on a 0.08 deg cutout (16 pixels, one per simulated
    thread) with a 0.1 deg kernel; else on a 0.4 deg cutout with the 0.3 deg kernel.
    """
    import numba

    small = backend.name == "cuda" and numba.config.ENABLE_CUDASIM
    width, kernel_width = (0.08, 0.1) if small else (0.4, 0.3)
    cutout = crab.cutout(CRAB_POSITION, width=width * u.deg)
    kwargs = dict(selection_optional=ERRORS, kernel_width=kernel_width * u.deg)
    reference = _rtafast(cutout, backend="numpy", **kwargs)
    result = _rtafast(cutout, backend=backend.name, **kwargs)
    for name in ["ts", "norm", "norm_err", "stat", "npred", "norm_errn", "norm_errp", "norm_ul"]:
        np.testing.assert_allclose(
            result[name].data, reference[name].data, rtol=1e-9, atol=1e-12, err_msg=name
        )
    assert np.nanmax(reference["ts"].data) > 25
    assert np.isfinite(reference["norm_errn"].data).sum() >= 10


def _longer_live_time(dataset, factor):
    """The dataset with exposure, background and the IRFs' exposure maps times
    ``factor`` (what a longer window of the same pointing gives), counts as they are."""
    scaled = dataset.copy(name=f"{dataset.name}-x{factor}")
    scaled.exposure = dataset.exposure * factor
    scaled.background = dataset.background * factor
    for irf in (scaled.psf, scaled.edisp):
        if irf is not None and irf.exposure_map is not None:
            irf.exposure_map = irf.exposure_map * factor
    return scaled


def test_longer_live_time_reuses_the_kernel_and_rescales_exposures(crab):
    """A window of the same pointing with more live time: no new kernel, the same maps
    as computing everything again, and as gammapy's (the issue's tolerances).

    "The same" within gammapy's own rounding: its ``estimate_kernel`` puts the
    exposure at the centre into a float32 map, so its kernel moves by ~1e-9 of its
    peak when the exposure is scaled (asserted below), and TS by ~1e-6 relative.
    """
    cache = TSInputCache()
    kwargs = dict(kernel_width=KERNEL_WIDTH, selection_optional=ERRORS, backend="numba")
    TSMapEstimator(cache=cache, **kwargs).run(crab)
    assert (cache.misses, cache.rescaled) == (1, 0)
    longer = _longer_live_time(crab, 1.7)
    result = TSMapEstimator(cache=cache, **kwargs).run(longer)
    assert (cache.misses, cache.hits, cache.rescaled) == (1, 1, 1)
    TSMapEstimator(cache=cache, **kwargs).run(crab)  # the first maps again: factor 1
    assert (cache.misses, cache.hits, cache.rescaled) == (1, 2, 1)
    fresh_cache = TSInputCache()
    fresh = TSMapEstimator(cache=fresh_cache, **kwargs).run(longer)
    estimator = TSMapEstimator(kernel_width=KERNEL_WIDTH)
    kernel, fresh_kernel = cache.get(estimator, longer)[0], fresh_cache.get(estimator, longer)[0]
    assert np.abs(kernel.data - fresh_kernel.data).max() <= 1e-8 * fresh_kernel.data.max()
    for name in ["ts", "norm", "norm_err", "npred", "stat", "norm_errn", "norm_errp", "norm_ul"]:
        np.testing.assert_allclose(
            result[name].data, fresh[name].data, rtol=1e-5, atol=1e-7, err_msg=name
        )
    assert_matches_gammapy(result, _gammapy(longer, selection_optional=ERRORS), errors=True)


def test_changed_exposure_shape_is_not_rescaled(crab):
    cache = TSInputCache()
    TSMapEstimator(kernel_width=KERNEL_WIDTH, cache=cache).run(crab)
    changed = _longer_live_time(crab, 2.0)
    changed.exposure.data[3, 60, 60] *= 1.001  # no longer a multiple of the first
    kernel = TSMapEstimator(kernel_width=KERNEL_WIDTH, cache=cache).estimate_kernel(changed)
    assert (cache.misses, cache.hits, cache.rescaled) == (2, 0, 0)
    reference = GammapyTSMapEstimator(kernel_width=KERNEL_WIDTH).estimate_kernel(changed)
    np.testing.assert_allclose(kernel.data, reference.data, rtol=1e-12, atol=1e-15)
