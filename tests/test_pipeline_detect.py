"""Blind detection on stream windows (rtafast.pipeline.detect): the simulated source is
found and localised, background alone gives no 5σ peak, the significance at the peak is
gammapy's (TS map and Li & Ma), exclusion circles, ``max_candidates`` and
``min_separation`` are honoured and what they leave out is counted."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from gammapy.data import EventList
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.estimators import TSMapEstimator as GammapyTSMapEstimator
from gammapy.maps import Map, MapAxis, WcsGeom

from rtafast.pipeline.config import load_config
from rtafast.pipeline.detect import (
    Candidate,
    Detection,
    DetectionEstimators,
    ExclusionCircle,
    detect,
    find_candidate_peaks,
)
from rtafast.simulate import point_source_models
from tests.conftest import T0
from tests.pipeline_measure_helpers import _observation, offset_max_accumulator

ENERGY = MapAxis.from_energy_bounds(1, 10, 3, unit="TeV")
ENERGY_TRUE = MapAxis.from_energy_bounds(0.5, 50, 8, unit="TeV", name="energy_true")
GEOM = WcsGeom.create(skydir=(83.6, 22.0), binsz=0.04, width=2.0, axes=[ENERGY])
TRUTH = SkyCoord(83.71, 21.93, unit="deg")
#: The window: one bunch of this many seconds.
DURATION = 600.0
BACKEND = "numba"


def _config(*overrides):
    return load_config(None, overrides=[f"backend={BACKEND}", *overrides])


def _accumulator(backend):
    return offset_max_accumulator(GEOM, ENERGY_TRUE, backend, 1.5)


def _events_from_counts(counts, rng):
    """An event list with ``counts`` events per bin, uniform within each bin (so that
    binning them gives ``counts`` back), times uniform in the bunch."""
    index = np.repeat(np.arange(counts.size), counts.ravel().astype(int))
    ie, iy, ix = np.unravel_index(index, counts.shape)
    x = ix + rng.uniform(-0.5, 0.5, index.size)
    y = iy + rng.uniform(-0.5, 0.5, index.size)
    lon, lat = GEOM.to_image().pix_to_coord((x, y))
    edges = np.log(ENERGY.edges.to_value("TeV"))
    energy = np.exp(rng.uniform(edges[ie], edges[ie + 1]))
    times = np.sort(rng.uniform(0, DURATION, index.size))
    table = Table({"RA": u.Quantity(lon, "deg"), "DEC": u.Quantity(lat, "deg")})
    table["ENERGY"] = energy * u.TeV
    table["TIME"] = T0 + times * u.s
    return EventList(table)


def _window(observation, amplitude, seed, backend=BACKEND):
    """A window of one bunch: Poisson counts of the background (and a point source at
    TRUTH of this amplitude, cm-2 s-1 TeV-1) as events."""
    interval = (T0, T0 + DURATION * u.s)
    prototype = _accumulator(backend)
    empty = _events_from_counts(np.zeros(GEOM.data_shape), np.random.default_rng(0))
    prototype.add(empty, observation, interval)
    dataset = prototype.dataset()
    dataset.models = point_source_models(dataset, TRUTH, index=2.5, amplitude=amplitude)
    rng = np.random.default_rng(seed)
    counts = rng.poisson(dataset.npred().data)
    accumulator = _accumulator(backend)
    accumulator.add(_events_from_counts(counts, rng), observation, interval)
    window = accumulator.current_window()
    np.testing.assert_array_equal(window.backend.to_numpy(window.counts), counts)
    return window


@pytest.fixture(scope="module")
def observation():
    return _observation(SkyCoord(83.6, 22.5, unit="deg"), obs_id=0)


@pytest.fixture(scope="module")
def source_window(observation):
    return _window(observation, "4e-12 cm-2 s-1 TeV-1", seed=1)


@pytest.fixture(scope="module")
def background_window(observation):
    return _window(observation, "0 cm-2 s-1 TeV-1", seed=2)


@pytest.fixture(scope="module")
def tsmap_estimators():
    return DetectionEstimators.from_config(_config())


@pytest.fixture(scope="module")
def source_detection(source_window, tsmap_estimators):
    return detect(source_window, _config(), tsmap_estimators)


def _separation(candidate, position):
    return SkyCoord(candidate.ra, candidate.dec, unit="deg").separation(position).deg


def test_detects_and_localises_the_simulated_source(source_detection):
    detection = source_detection
    assert isinstance(detection, Detection) and detection.method == "tsmap"
    assert detection.significance_map.geom == GEOM.to_image()
    assert detection.ts_map.geom == GEOM.to_image()
    assert len(detection.candidates) == 1
    candidate = detection.candidates[0]
    assert isinstance(candidate, Candidate) and candidate.localised
    assert 8 < candidate.sqrt_ts < 30
    assert candidate.ts == pytest.approx(candidate.sqrt_ts**2, rel=1e-9)
    peak = np.unravel_index(np.nanargmax(detection.significance_map.data), GEOM.data_shape[1:])
    assert candidate.sqrt_ts == detection.significance_map.data[peak]
    assert candidate.ts == pytest.approx(detection.ts_map.data[peak], rel=1e-9)
    assert abs(candidate.x - peak[1]) < 2 and abs(candidate.y - peak[0]) < 2
    assert 0 < candidate.r68 < candidate.r95 < 0.1
    assert _separation(candidate, TRUTH) < candidate.r95
    lon, lat = GEOM.to_image().pix_to_coord((np.array([candidate.x]), np.array([candidate.y])))
    sub_pixel = SkyCoord(lon[0], lat[0], frame="icrs")
    assert _separation(candidate, sub_pixel) < 1e-9


def test_background_alone_gives_no_5_sigma_peak(background_window, tsmap_estimators):
    detection = detect(background_window, _config(), tsmap_estimators)
    assert detection.candidates == []
    significance = detection.significance_map.data
    assert np.isfinite(significance).sum() > 0.5 * significance.size
    # the same map has peaks at a low threshold: the search itself is not empty
    low = DetectionEstimators.from_config(_config("detection.threshold=1.5"))
    assert detect(background_window, _config(), low).candidates


def test_peak_significance_equals_gammapys_ts_map(source_window, source_detection):
    candidate = source_detection.candidates[0]
    estimators = DetectionEstimators.from_config(_config())
    reference = GammapyTSMapEstimator(
        kernel_model=estimators.estimator.kernel_model,
        kernel_width=0.3 * u.deg,
        sum_over_energy_groups=True,
        selection_optional=[],
    ).run(source_window.to_dataset())
    peak = np.unravel_index(
        np.nanargmax(source_detection.significance_map.data), GEOM.data_shape[1:]
    )
    assert candidate.sqrt_ts == pytest.approx(reference["sqrt_ts"].data[0][peak], rel=1e-3)
    mine = source_detection.significance_map.data
    theirs = reference["sqrt_ts"].data[0]
    np.testing.assert_array_equal(np.isfinite(mine), np.isfinite(theirs))
    np.testing.assert_allclose(mine[np.isfinite(mine)], theirs[np.isfinite(theirs)], atol=2e-3)


def test_a_window_and_its_dataset_give_the_same_candidates(source_window, source_detection):
    estimators = DetectionEstimators.from_config(_config())
    from_dataset = detect(source_window.to_dataset(), _config(), estimators)
    for mine, theirs in zip(source_detection.candidates, from_dataset.candidates, strict=True):
        assert (mine.x, mine.y) == pytest.approx((theirs.x, theirs.y), abs=1e-5)
        assert (mine.r68, mine.r95) == pytest.approx((theirs.r68, theirs.r95), rel=1e-4)
        assert mine.sqrt_ts == pytest.approx(theirs.sqrt_ts, rel=1e-5)


def test_lima_method_finds_the_source_with_gammapys_significance(source_window):
    config = _config("detection.method=lima")
    estimators = DetectionEstimators.from_config(config)
    detection = detect(source_window, config, estimators)
    assert detection.method == "lima" and detection.ts_map is None
    assert len(detection.candidates) == 1
    candidate = detection.candidates[0]
    assert candidate.localised and _separation(candidate, TRUTH) < candidate.r95
    reference = GammapyExcessMapEstimator(correlation_radius=0.1 * u.deg).run(
        source_window.to_dataset()
    )
    peak = np.unravel_index(np.nanargmax(detection.significance_map.data), GEOM.data_shape[1:])
    assert candidate.sqrt_ts == pytest.approx(reference["sqrt_ts"].data[0][peak], rel=1e-3)


def test_exclusion_circle_hides_the_source_and_is_counted(source_window):
    config = _config(
        f"detection.exclusion=[{{ra: {TRUTH.ra.deg}, dec: {TRUTH.dec.deg}, radius: 0.2 deg}}]"
    )
    estimators = DetectionEstimators.from_config(config)
    assert estimators.exclusion == (ExclusionCircle(TRUTH.ra.deg, TRUTH.dec.deg, 0.2),)
    detection = detect(source_window, config, estimators)
    assert detection.n_excluded == 1
    for candidate in detection.candidates:  # a shoulder of the source may remain, outside
        assert _separation(candidate, TRUTH) >= 0.2 - 0.04


# -- peak selection on synthetic significance maps ---------------------------------------


def _bumps(peaks):
    """A significance image of Gaussian bumps: (x, y, height) in pixels, σ = 1.5 px."""
    geom = GEOM.to_image()
    ny, nx = geom.data_shape
    y, x = np.mgrid[:ny, :nx]
    data = np.zeros((ny, nx))
    for px, py, height in peaks:
        data += height * np.exp(-0.5 * ((x - px) ** 2 + (y - py) ** 2) / 1.5**2)
    return Map.from_geom(geom, data=data)


def _selector(**kwargs):
    options = dict(threshold=5.0, max_candidates=3, min_separation=0.3)
    options.update(kwargs)
    return DetectionEstimators("tsmap", estimator=None, **options)


def test_max_candidates_and_min_separation_are_honoured():
    # 0.04° pixels: min_separation 0.3° = 7.5 px
    image = _bumps([(10, 10, 12), (30, 10, 9), (10, 30, 7), (30, 30, 6), (40, 40, 4.9)])
    peaks, counts = find_candidate_peaks(image, _selector(max_candidates=2))
    assert [p[:2] for p in peaks] == [(10, 10), (10, 30)]
    assert [p[2] for p in peaks] == pytest.approx([12, 9], rel=1e-3)
    assert counts == {"n_excluded": 0, "n_too_close": 0, "n_over_max": 2}
    # a weaker bump 6 px (0.24°) from the strongest is not a candidate
    close = _bumps([(10, 10, 12), (16, 10, 8)])
    peaks, _ = find_candidate_peaks(close, _selector(min_separation=0.3))
    assert [p[:2] for p in peaks] == [(10, 10)]
    peaks, _ = find_candidate_peaks(close, _selector(min_separation=0.1))
    assert [p[:2] for p in peaks] == [(10, 10), (10, 16)]


def test_equal_peaks_closer_than_min_separation_are_one_candidate():
    data = np.zeros(GEOM.data_shape[1:])
    data[20, 20] = data[20, 22] = 8.0  # a plateau's two maxima: both pass the box filter
    peaks, counts = find_candidate_peaks(Map.from_geom(GEOM.to_image(), data=data), _selector())
    assert len(peaks) == 1 and counts["n_too_close"] == 1


def test_threshold_is_inclusive_and_nan_pixels_are_skipped():
    image = _bumps([(10, 10, 5.0), (30, 30, 9.0)])
    peaks, _ = find_candidate_peaks(image, _selector())
    assert [p[:2] for p in peaks] == [(30, 30), (10, 10)]
    image.data[25:35, 25:35] = np.nan  # not fitted there
    peaks, _ = find_candidate_peaks(image, _selector())
    assert [p[:2] for p in peaks] == [(10, 10)]
    image.data[...] = np.nan
    assert find_candidate_peaks(image, _selector()) == ([], {
        "n_excluded": 0, "n_too_close": 0, "n_over_max": 0
    })


def test_exclusion_masks_peaks_but_not_their_neighbours():
    geom = GEOM.to_image()
    image = _bumps([(10, 10, 20), (19, 10, 8)])  # 9 px = 0.36° apart
    lon, lat = geom.pix_to_coord((np.array([10.0]), np.array([10.0])))
    circle = ExclusionCircle(float(lon[0].value), float(lat[0].value), 0.15)
    peaks, counts = find_candidate_peaks(image, _selector(exclusion=[circle]))
    assert [p[:2] for p in peaks] == [(10, 19)]
    assert counts["n_excluded"] == 1


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="detection.method"):
        DetectionEstimators("blob", estimator=None)
    with pytest.raises(ValueError, match="max_candidates"):
        _selector(max_candidates=0)
    with pytest.raises(ValueError, match="min_separation"):
        _selector(min_separation="far")
    with pytest.raises(ValueError, match="has no 'radius'"):
        ExclusionCircle.parse({"ra": 1.0, "dec": 2.0})
    with pytest.raises(ValueError, match="radius must be > 0"):
        ExclusionCircle.parse({"ra": 1.0, "dec": 2.0, "radius": "0 deg"})
    with pytest.raises(ValueError, match="fit_half_width"):
        _selector(fit_half_width=0)


def test_localisation_scan_of_a_window_on_every_backend(observation, backend):
    """The localiser's TS near a peak, from the window's counts where they live, equals the
    NumPy backend's."""
    from rtafast.pipeline.detect import make_localiser
    from rtafast.pipeline.localise import local_ts_image

    def scan(name):
        window = _window(observation, "4e-12 cm-2 s-1 TeV-1", seed=1, backend=name)
        assert window.backend.name == name
        return local_ts_image(make_localiser(backend=name), window, [(22, 22)], half_size=1)

    mine, reference = scan(backend.name), scan("numpy")
    assert np.isfinite(reference).sum() == 9
    np.testing.assert_allclose(mine, reference, rtol=1e-9, equal_nan=True)


def test_detect_times_its_stages(source_window, tsmap_estimators):
    import contextlib

    seen = []

    @contextlib.contextmanager
    def stage(name):
        seen.append(name)
        yield

    detection = detect(source_window, _config(), tsmap_estimators, stage=stage)
    assert seen == ["detect", "localise"] and len(detection.candidates) == 1


def test_localisation_follows_the_surface_to_its_maximum(source_window, tsmap_estimators):
    """A peak pixel 4 px (> SCAN_MARGIN) from the localiser's maximum: the squares move to
    the maximum, which is the full localiser map's."""
    from rtafast.pipeline.detect import localisation_surface

    full = tsmap_estimators.localiser.run(source_window)["sqrt_ts"].data[0]
    best = np.unravel_index(np.nanargmax(full), full.shape)
    start = (best[0] + 4, best[1] - 4, 10.0)
    image, maxima = localisation_surface(source_window, [start], tsmap_estimators)
    assert maxima == [tuple(int(v) for v in best)]
    around = image[best[0] - 1 : best[0] + 2, best[1] - 1 : best[1] + 2]
    np.testing.assert_allclose(
        around, (full * np.abs(full))[best[0] - 1 : best[0] + 2, best[1] - 1 : best[1] + 2],
        rtol=1e-9,
    )
