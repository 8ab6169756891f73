"""Candidate on/off photometry (rtafast.pipeline.measure) against gammapy on the same window.

``photometry`` against gammapy's ``ReflectedRegionsFinder``/``WobbleRegionsFinder``,
``Map.get_spectrum`` counts and ``WStatCountsStatistic``: identical counts and alpha,
sigma to 1e-6; the exclusion mask and the configured exclusions, the documented result
without off regions, and a window of two observations.

Windows (``tests/pipeline_measure_helpers.py``): H.E.S.S. Crab run 23523 (10 min, skipped
without the shared data) and a simulated one, both with the pipeline's default
configuration. The flux fit, the caches and the results shared with it are in
``tests/test_pipeline_measure.py``.
"""

import math

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from gammapy.makers import ReflectedRegionsFinder as GammapyReflected
from gammapy.makers import WobbleRegionsFinder as GammapyWobble
from gammapy.stats import WStatCountsStatistic
from regions import CircleSkyRegion

from rtafast.pipeline.measure import MeasureCache, exclusion_mask, photometry
from tests.conftest import T0
from tests.pipeline_measure_helpers import (
    SIM_GEOM,
    SIM_POINTING,
    SIM_SOURCE,
    _config,
)


# -- photometry ---------------------------------------------------------------------------
def _gammapy_photometry(window, ra, dec, config, finder):
    """gammapy's regions (same exclusion mask) and counts, and its on/off statistic."""
    observation = window.parts[0].pointing.observation
    pointing = observation.get_pointing_icrs(observation.tmid)
    radius = max(config.detection.min_separation, config.photometry.on_radius).to_value("deg")
    mask = exclusion_mask(
        window.geom,
        ra,
        dec,
        radius,
        safe_image=window.to_dataset().mask_safe.data.any(axis=0),
        cover=(pointing, 3.0),  # a larger mask than photometry's: the same regions
    )
    on = CircleSkyRegion(SkyCoord(ra, dec, unit="deg"), config.photometry.on_radius)
    regions, _ = finder.run(on, pointing, exclusion_mask=mask)
    counts = window.to_dataset().counts
    n_on = counts.get_spectrum(on).data.sum()
    n_off = sum(counts.get_spectrum(region).data.sum() for region in regions)
    alpha = 1.0 / len(regions)
    return n_on, n_off, alpha, len(regions), WStatCountsStatistic(n_on, n_off, alpha)


@pytest.mark.parametrize("method", ["reflected", "wobble"])
def test_photometry_matches_gammapy(window_and_source, method):
    window, (ra, dec) = window_and_source
    config = _config(f"photometry.method={method}", "photometry.max_off_regions=5")
    result = photometry(window, ra, dec, config, MeasureCache(grid_pixels=0))
    finder = (
        GammapyReflected(max_region_number=5)
        if method == "reflected"
        else GammapyWobble(n_off_regions=5)
    )
    n_on, n_off, alpha, n_regions, stat = _gammapy_photometry(window, ra, dec, config, finder)
    assert result.reason == ""
    assert (result.oncounts, result.offcounts, result.n_off_regions) == (n_on, n_off, n_regions)
    assert result.alpha == alpha
    assert stat.sqrt_ts > 5  # a source: the comparison is not of noise
    np.testing.assert_allclose(
        [result.excess, result.excess_err, result.sigma],
        [stat.n_sig, stat.error, stat.sqrt_ts],
        rtol=1e-6,
    )
    pointing = window.parts[0].pointing.observation.get_pointing_icrs(T0)
    assert result.offset == pytest.approx(SkyCoord(ra, dec, unit="deg").separation(pointing).deg)


def test_configured_exclusions_and_other_candidates_remove_off_regions(simulated_window):
    """``detection.exclusion`` and ``exclude=`` positions take off regions away, as the
    same exclusions given to gammapy's finder do."""
    plain = photometry(simulated_window, *SIM_SOURCE, _config(), MeasureCache())
    # a circle on the reflected ring (0.5 deg around the pointing), opposite the source
    config = _config("detection.exclusion=[{ra: 83.6, dec: 23.0, radius: 0.15 deg}]")
    excluded = photometry(simulated_window, *SIM_SOURCE, config, MeasureCache())
    other = (83.6 + 0.5 / np.cos(np.deg2rad(22.5)), 22.5)  # east of the pointing
    both = photometry(simulated_window, *SIM_SOURCE, config, MeasureCache(), exclude=[other])
    assert plain.n_off_regions > excluded.n_off_regions > both.n_off_regions > 0
    observation = simulated_window.parts[0].pointing.observation
    pointing = observation.get_pointing_icrs(observation.tmid)
    mask = exclusion_mask(
        simulated_window.geom,
        *SIM_SOURCE,
        0.3,
        [(83.6, 23.0, 0.15), (*other, 0.3)],
        safe_image=simulated_window.to_dataset().mask_safe.data.any(axis=0),
        cover=(pointing, 3.0),
    )
    on = CircleSkyRegion(SkyCoord(*SIM_SOURCE, unit="deg"), 0.1 * u.deg)
    regions, _ = GammapyReflected(max_region_number=11).run(on, pointing, exclusion_mask=mask)
    counts = simulated_window.to_dataset().counts
    assert both.n_off_regions == len(regions)
    assert both.offcounts == sum(counts.get_spectrum(r).data.sum() for r in regions)


def test_exclusion_mask_excludes_candidate_map_edge_and_unsafe_pixels():
    safe = np.ones(SIM_GEOM.to_image().data_shape, dtype=bool)
    safe[:, :3] = False
    center = SkyCoord(83.6, 22.5, unit="deg")
    mask = exclusion_mask(SIM_GEOM, *SIM_SOURCE, 0.3, [(84.0, 22.8, 0.2)], safe, (center, 2.5))
    pad = (mask.data.shape[0] - safe.shape[0]) // 2
    assert pad > 2  # padded to cover 2.5 deg around the centre
    inner = mask.data[pad:-pad, pad:-pad]
    assert not mask.data[:pad].any() and not mask.data[:, -pad:].any()
    coords = SIM_GEOM.to_image().get_coord().skycoord
    near = (coords.separation(SkyCoord(*SIM_SOURCE, unit="deg")).deg < 0.3) | (
        coords.separation(SkyCoord(84.0, 22.8, unit="deg")).deg < 0.2
    )
    edge = np.isclose(coords.separation(SkyCoord(*SIM_SOURCE, unit="deg")).deg, 0.3, atol=0.03)
    np.testing.assert_array_equal(inner[~edge], (safe & ~near)[~edge])


# -- documented results and errors ---------------------------------------------------------
def test_no_off_region_at_the_pointing_is_a_flagged_result(simulated_window):
    config = _config()
    ra, dec = SIM_POINTING.ra.deg, SIM_POINTING.dec.deg
    result = photometry(simulated_window, ra, dec, config, MeasureCache(grid_pixels=0))
    assert result.n_off_regions == 0 and result.offcounts == 0
    assert math.isnan(result.sigma) and math.isnan(result.alpha) and math.isnan(result.excess)
    assert "no off region" in result.reason and "pointing" in result.reason
    on = CircleSkyRegion(SIM_POINTING, config.photometry.on_radius)
    assert result.oncounts == simulated_window.to_dataset().counts.get_spectrum(on).data.sum() > 0


# -- a window of two observations ---------------------------------------------------------
def test_two_observations_photometry_sums_each_pointings(two_pointing_window):
    window = two_pointing_window
    config = _config("photometry.max_off_regions=5")
    result = photometry(window, *SIM_SOURCE, config, MeasureCache(grid_pixels=0))
    n_on = n_off = weighted_alpha = n_regions = 0
    for part in window.parts:
        pointing = part.pointing.observation.get_pointing_icrs(T0)
        mask = exclusion_mask(
            window.geom,
            *SIM_SOURCE,
            0.3,
            safe_image=part.pointing.unit.mask_safe.data.any(axis=0),
            cover=(pointing, 3.0),
        )
        on = CircleSkyRegion(SkyCoord(*SIM_SOURCE, unit="deg"), 0.1 * u.deg)
        regions, _ = GammapyReflected(max_region_number=5).run(on, pointing, exclusion_mask=mask)
        counts = (
            part.pointing.observation_dataset(
                window.geom,
                np.reshape(part.counts, window.geom.data_shape),
                part.livetime,
                part.ontime,
                part.gti,
            ).counts
            * part.pointing.unit.mask_safe.data
        )
        part_off = sum(counts.get_spectrum(r).data.sum() for r in regions)
        n_on += counts.get_spectrum(on).data.sum()
        n_off += part_off
        weighted_alpha += part_off / len(regions)
        n_regions += len(regions)
    assert (result.oncounts, result.offcounts, result.n_off_regions) == (n_on, n_off, n_regions)
    assert result.alpha == pytest.approx(weighted_alpha / n_off, rel=1e-12)
    stat = WStatCountsStatistic(n_on, n_off, weighted_alpha / n_off)
    assert result.sigma == pytest.approx(stat.sqrt_ts, rel=1e-6)
    assert result.offset == pytest.approx(0.5, abs=1e-3)
