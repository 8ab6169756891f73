"""Candidate flux fits (rtafast.pipeline.measure) against gammapy on the same window.

* ``fit_flux`` against gammapy's ``Fit`` on ``window.to_dataset()`` with the same models
  (MINUIT with a tight tolerance): amplitude, error, TS, the 2-sigma upper limit
  (``Fit.confidence``) and the integral flux of gammapy's model, within 1e-4;
* the caches (templates and regions reused at the same grid position), the grid's effect
  on the flux, the backends, the documented results outside the map and for bad inputs
  (of the fit and the photometry alike), and windows of two observations.

The photometry against gammapy is in ``tests/test_pipeline_measure_photometry.py``.
Windows (``tests/pipeline_measure_helpers.py``): H.E.S.S. Crab run 23523 (10 min, skipped
without the shared data) and a simulated one (the package's analytic CTA-like IRFs, a
Gaussian source over a flat background), both with the pipeline's default configuration.
"""

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from gammapy.datasets import Datasets
from gammapy.maps import WcsGeom
from gammapy.modeling import Fit as GammapyFit
from gammapy.modeling.models import FoVBackgroundModel, Models

from rtafast.pipeline import measure_fit
from rtafast.pipeline.measure import (
    REFERENCE_AMPLITUDE,
    MeasureCache,
    fit_flux,
    photometry,
    snap_position,
    source_model,
)
from tests.pipeline_measure_helpers import (
    SIM_GEOM,
    SIM_SOURCE,
    _config,
    _observation,
    _simulated_bunches,
    _window,
)

#: Relative agreement with gammapy's fit (MINUIT converged to ``_GAMMAPY_FIT`` below)
FIT_RTOL = 1e-4
_GAMMAPY_FIT = {"optimize_opts": {"tol": 1e-6, "strategy": 2}}


# -- flux fit -----------------------------------------------------------------------------
def _gammapy_fit(window, ra, dec, config):
    """gammapy's fit of the window's dataset: amplitude, error, upper limit, TS, flux."""
    dataset = window.to_dataset()
    model = source_model(ra, dec, config)
    models = Models([model])
    if config.fit.free_background_norm:
        models.append(FoVBackgroundModel(dataset_name=dataset.name))
    dataset.models = models
    datasets = Datasets([dataset])
    fit = GammapyFit(**_GAMMAPY_FIT)
    fit.run(datasets)
    amplitude = model.spectral_model.amplitude
    best, error, stat = amplitude.value, amplitude.error, datasets.stat_sum()
    errp = fit.confidence(datasets, amplitude, sigma=2)["errp"]
    flux = model.spectral_model.integral(config.selection.energy_min, config.selection.energy_max)
    amplitude.value, amplitude.frozen = 0.0, True
    if config.fit.free_background_norm:
        fit.run(datasets)  # the null hypothesis refits the background norm
    ts = datasets.stat_sum() - stat
    dataset.models = None
    return {
        "amplitude": best,
        "error": error,
        "ul": best + errp,
        "ts": ts,
        "flux": flux.to_value("cm-2 s-1"),
        "flux_err": flux.to_value("cm-2 s-1") * error / best,
    }


@pytest.mark.parametrize("free_background", [False, True])
def test_fit_flux_matches_gammapy(window_and_source, free_background):
    window, (ra, dec) = window_and_source
    config = _config(f"fit.free_background_norm={str(free_background).lower()}")
    result = fit_flux(window, ra, dec, config, MeasureCache(grid_pixels=0))
    assert result.success and result.reason == ""
    assert (result.ra, result.dec) == (ra, dec)
    reference = _gammapy_fit(window, ra, dec, config)
    assert result.ts > 25  # a detected source: the comparison is not of noise
    mine = {
        "amplitude": result.amplitude,
        "error": result.norm_err * REFERENCE_AMPLITUDE,
        "ul": result.norm_ul * REFERENCE_AMPLITUDE,
        "ts": result.ts,
        "flux": result.flux,
        "flux_err": result.flux_err,
    }
    for name, value in reference.items():
        assert mine[name] == pytest.approx(value, rel=FIT_RTOL), name
    assert result.sqrt_ts == pytest.approx(math.sqrt(result.ts))
    assert result.flux_ul > result.flux + result.flux_err
    assert (result.background_norm == 1.0) != free_background


def test_fit_of_a_negative_excess_is_signed_like_gammapy(simulated_window):
    """Where there is no source the fitted norm may be negative: sqrt_ts is then
    negative (gammapy's sign convention) and the numbers are still gammapy's."""
    config = _config("fit.free_background_norm=true")  # the flat background refitted
    ra, dec = 83.0, 21.5  # 0.6 deg from the source, background only
    result = fit_flux(simulated_window, ra, dec, config, MeasureCache(grid_pixels=0))
    reference = _gammapy_fit(simulated_window, ra, dec, config)
    assert result.norm < 0 and result.sqrt_ts == -math.sqrt(result.ts) < 0
    error = reference["error"]
    assert result.amplitude == pytest.approx(reference["amplitude"], abs=FIT_RTOL * error)
    assert result.norm_err * REFERENCE_AMPLITUDE == pytest.approx(error, rel=FIT_RTOL)
    assert result.norm_ul * REFERENCE_AMPLITUDE == pytest.approx(reference["ul"], rel=FIT_RTOL)
    assert result.ts == pytest.approx(reference["ts"], rel=FIT_RTOL)


# -- caches and the position grid ---------------------------------------------------------
def test_cached_calls_reuse_templates_and_regions(simulated_window):
    config, cache = _config(), MeasureCache()
    first = fit_flux(simulated_window, *SIM_SOURCE, config, cache)
    first_photometry = photometry(simulated_window, *SIM_SOURCE, config, cache)
    assert (cache.templates.misses, cache.regions.misses) == (1, 1)
    # a later window, the candidate a fraction of the grid step away: nothing recomputed
    nearby = (SIM_SOURCE[0] + 0.001, SIM_SOURCE[1] - 0.001)  # 0.025 pixel
    again = fit_flux(simulated_window, *nearby, config, cache)
    again_photometry = photometry(simulated_window, *nearby, config, cache)
    assert (cache.templates.misses, cache.regions.misses) == (1, 1)
    assert (cache.templates.hits, cache.regions.hits) == (1, 1)
    assert again == first and again_photometry == first_photometry
    # the fitted position is on the grid, within 0.071 pixel of the candidate
    binsz = 0.04
    separation = SkyCoord(first.ra, first.dec, unit="deg").separation(
        SkyCoord(*SIM_SOURCE, unit="deg")
    )
    assert separation.deg <= 0.0708 * binsz
    # another position is a new entry
    fit_flux(simulated_window, SIM_SOURCE[0], SIM_SOURCE[1] + 0.1, config, cache)
    assert cache.templates.misses == 2


@pytest.mark.parametrize(
    ("frame", "projection", "center"),
    [("icrs", "CAR", (0.0, 22.0)), ("galactic", "TAN", (184.56, -5.78)), ("icrs", "TAN", (0, 89))],
)
def test_positions_snap_to_the_grid_of_the_maps_pixels(frame, projection, center):
    geom = WcsGeom.create(skydir=center, binsz=0.02, width=2.0, frame=frame, proj=projection)
    image = geom.to_image()
    rng = np.random.default_rng(3)
    for _ in range(20):
        x, y = rng.uniform(0, 99, 2)
        target = image.pix_to_coord((np.array([x]), np.array([y])))
        coord = SkyCoord(target[0][0], target[1][0], unit="deg", frame=frame).icrs
        ra, dec, key = snap_position(geom, coord.ra.deg, coord.dec.deg, 0.1)
        assert 0 <= ra < 360
        snapped_x, snapped_y = image.coord_to_pix(SkyCoord(ra, dec, unit="deg"))
        np.testing.assert_allclose(
            [snapped_x[0], snapped_y[0]], [round(x * 10) / 10, round(y * 10) / 10], atol=1e-8
        )
        assert key == (round(x * 10), round(y * 10), 0.1)
    assert snap_position(geom, 1.5, 2.5, 0)[:2] == (1.5, 2.5)


def test_grid_rounding_moves_the_flux_by_a_small_fraction_of_its_error(window_and_source):
    """The documented effect of the default grid (0.1 pixel): moving the position by its
    largest rounding (0.05 pixel in x and y) changes the flux by < 0.15 of its error
    (measured: 0.004 on the Crab run, 0.02 deg pixels; 0.09 on the simulated window,
    0.04 deg pixels and a sharper PSF) and sqrt(TS) by < 0.1 (0.005, 0.07)."""
    window, (ra, dec) = window_and_source
    config, cache = _config(), MeasureCache(grid_pixels=0)
    binsz = float(np.abs(window.geom.pixel_scales[0].to_value("deg")))
    step = 0.05 * binsz
    exact = fit_flux(window, ra, dec, config, cache)
    for sign_ra, sign_dec in ((1, 1), (-1, 1), (1, -1), (-1, -1)):
        moved = fit_flux(
            window,
            ra + sign_ra * step / np.cos(np.deg2rad(dec)),
            dec + sign_dec * step,
            config,
            cache,
        )
        assert abs(moved.flux - exact.flux) < 0.15 * exact.flux_err
        assert abs(moved.sqrt_ts - exact.sqrt_ts) < 0.1
    assert cache.templates.misses == 5  # each position fitted with its own template


def test_backends_give_the_numpy_numbers(backend):
    observation = _observation()
    window = _window(SIM_GEOM, _simulated_bunches(observation, 2), backend=backend.name)
    reference = _window(SIM_GEOM, _simulated_bunches(observation, 2), backend="numpy")
    config = _config()
    for measure in (fit_flux, photometry):
        mine = measure(window, *SIM_SOURCE, config, MeasureCache())
        numpy = measure(reference, *SIM_SOURCE, config, MeasureCache())
        for name, value in vars(numpy).items():
            if isinstance(value, float):
                assert getattr(mine, name) == pytest.approx(value, rel=1e-9), name
            else:
                assert getattr(mine, name) == value, name


@pytest.mark.parametrize("free_background", [False, True])
def test_whole_array_path_gives_the_counted_bins_numbers(
    simulated_window, monkeypatch, free_background
):
    """The problem built from the counted bins (one observation) and from the whole arrays
    (several observations; or no empty bin among the limit candidates) are the same."""
    config = _config(f"fit.free_background_norm={str(free_background).lower()}")
    cache = MeasureCache()
    sparse = fit_flux(simulated_window, *SIM_SOURCE, config, cache)
    monkeypatch.setattr(measure_fit, "_sparse_bins", lambda *args: None)
    dense = fit_flux(simulated_window, *SIM_SOURCE, config, cache)
    for name, value in vars(sparse).items():
        if isinstance(value, float):
            assert getattr(dense, name) == pytest.approx(value, rel=1e-9), name


def test_free_background_fit_of_a_nearly_empty_window_stays_physical(monkeypatch):
    """10 s, 12 background events on the map: the free optimum would cancel a huge
    background with a negative source (the truncated statistic is flat there); the fit
    keeps every prediction >= 0 (amplitude on its bound -b min(B/s)), TS >= 0."""
    window = _window(
        SIM_GEOM,
        _simulated_bunches(
            _observation(), 1, duration=10 * u.s, n_source=0, n_background=12, seed=5
        ),
        offset_max=1.5,
    )
    on_bound = []
    original = measure_fit._fit_on_bound
    monkeypatch.setattr(
        measure_fit, "_fit_on_bound", lambda *args: on_bound.append(1) or original(*args)
    )
    config = _config("fit.free_background_norm=true")
    result = fit_flux(window, *SIM_SOURCE, config, MeasureCache())
    assert on_bound, "the window no longer reaches the bound: the test checks nothing"
    assert result.success and result.norm < 0 and result.background_norm > 0
    assert 0 <= result.ts < 1 and result.norm_ul > result.norm
    dataset = window.to_dataset()
    model = source_model(result.ra, result.dec, config, amplitude=result.amplitude)
    background = FoVBackgroundModel(dataset_name=dataset.name)
    background.spectral_model.norm.value = result.background_norm
    dataset.models = Models([model, background])
    npred = dataset.npred().data[dataset.mask.data]
    assert npred.min() >= -1e-9 * npred.max()


# -- documented results and errors ---------------------------------------------------------
def test_candidate_outside_the_map_is_a_flagged_result(simulated_window):
    config = _config()
    ra, dec = 90.0, 22.0  # 5.6 deg from the map's centre
    fit = fit_flux(simulated_window, ra, dec, config, MeasureCache())
    assert not fit.success and math.isnan(fit.flux) and math.isnan(fit.sqrt_ts)
    assert "predicts no counts" in fit.reason
    result = photometry(simulated_window, ra, dec, config, MeasureCache())
    assert result.reason == "the candidate is outside the map" and math.isnan(result.sigma)
    assert result.oncounts == 0


@pytest.mark.parametrize(
    ("ra", "dec", "match"),
    [(83.6, 95.0, "not a valid ICRS"), (math.nan, 22.0, "not a valid ICRS"), ("x", 1, "numbers")],
)
def test_bad_positions_are_rejected(simulated_window, ra, dec, match):
    for measure in (fit_flux, photometry):
        with pytest.raises(ValueError, match=match):
            measure(simulated_window, ra, dec, _config(), MeasureCache())


def test_bad_cache_settings_are_rejected():
    with pytest.raises(ValueError, match="grid_pixels must be within"):
        MeasureCache(grid_pixels=2)
    with pytest.raises(ValueError, match="maxsize must be >= 1"):
        MeasureCache(maxsize=0)


# -- a window of two observations ---------------------------------------------------------
@pytest.mark.parametrize("free_background", [False, True])
def test_two_observations_fit_is_close_to_gammapys_stacked_fit(
    two_pointing_window, free_background
):
    """The sum of the two observations' predictions against gammapy's stacked dataset
    (whose PSF and EDisp are exposure-weighted averages): equal here to 1e-4 (measured
    2e-6), the analytic IRFs varying little between the two pointings."""
    window = two_pointing_window
    config = _config(f"fit.free_background_norm={str(free_background).lower()}")
    result = fit_flux(window, *SIM_SOURCE, config, MeasureCache(grid_pixels=0))
    reference = _gammapy_fit(window, *SIM_SOURCE, config)
    assert result.success and result.ts > 25
    assert result.amplitude == pytest.approx(reference["amplitude"], rel=FIT_RTOL)
    assert result.ts == pytest.approx(reference["ts"], rel=FIT_RTOL)


def test_moving_the_source_keeps_the_kernels_and_the_flux(window_and_source):
    """A new position within gammapy's cut-out margin (0.1 deg) of the first reuses the
    dataset's PSF and EDisp kernels (as a gammapy fit with a free position does): the
    flux differs from a fresh evaluator's at that position by < 2e-3 relative and < 0.02
    of its error, sqrt(TS) by < 0.01."""
    window, (ra, dec) = window_and_source
    config = _config()
    moving, fresh = MeasureCache(), MeasureCache(move_sources=False)
    fit_flux(window, ra, dec, config, moving)
    for offset in (0.03, 0.08):
        moved = fit_flux(window, ra + offset, dec, config, moving)
        exact = fit_flux(window, ra + offset, dec, config, fresh)
        assert moved.ra == exact.ra and moved.dec == exact.dec
        assert abs(moved.flux / exact.flux - 1) < 2e-3
        assert abs(moved.flux - exact.flux) < 0.02 * exact.flux_err
        assert abs(moved.sqrt_ts - exact.sqrt_ts) < 0.01
    assert moving.sources.misses == 1 and moving.sources.hits == 2
