"""rtafast's RingBackgroundMaker equals gammapy 2.1's on the 4 H.E.S.S. Crab runs.

Datasets as in gammapy's ring background tutorial: per run ``MapDatasetMaker`` and
``SafeMaskMaker`` (offset-max 2.5 deg) on 0.02 deg pixels, reduced to an image, an
exclusion circle of 0.3 deg around the Crab, ring ``r_in`` 0.5 deg and width 0.3 deg;
gammapy's maker runs in the test on the same datasets. Tolerances: the numpy backend is
gammapy's arithmetic (equal bit for bit); numba and cuda (simulated on CI) sum the ring
in float64 where gammapy's scipy FFT transforms the float32 images in float32 (errors
of ~1e-7 of the image's peak, also where the exact ring sum is 0): the off maps are
equal within 2e-7 relative (float32 rounding) plus 1e-6 of the map's peak; every other
map and the safe masks are equal.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from gammapy.datasets import MapDataset, MapDatasetOnOff
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.makers import AdaptiveRingBackgroundMaker as GammapyAdaptiveRingBackgroundMaker
from gammapy.makers import RingBackgroundMaker as GammapyRingBackgroundMaker
from gammapy.makers import SafeMaskMaker
from gammapy.maps import MapAxis, WcsGeom
from regions import CircleSkyRegion

from rtafast import dispatch
from rtafast.estimators import ExcessMapEstimator
from rtafast.makers import MapDatasetMaker
from rtafast.makers.ring import AdaptiveRingBackgroundMaker, RingBackgroundMaker, RingInputError
from rtafast_devtools.reference_data import CRAB_POSITION as CRAB

data = pytest.mark.data

RUNS = (23523, 23526, 23559, 23592)
RING = {"r_in": "0.5 deg", "width": "0.3 deg"}
MAPS = ("counts_off", "acceptance_off", "background", "acceptance", "counts", "exposure")
OFF_MAPS = ("counts_off", "acceptance_off", "background")  # background: alpha * counts_off


def _geom(width=4.0, nbin=1, skydir=CRAB):
    energy = MapAxis.from_energy_bounds("1 TeV", "10 TeV", nbin=nbin)
    return WcsGeom.create(skydir=skydir, binsz=0.02, width=width, axes=[energy])


def _exclusion(geom, radius=0.3):
    return ~geom.to_image().region_mask([CircleSkyRegion(CRAB, radius * u.deg)])


@pytest.fixture(scope="module")
def crab_runs(hess_datastore):
    """Per-run datasets of the 4 Crab runs (a 2-bin cube each) and their empty template."""
    observations = hess_datastore.get_observations(list(RUNS))
    geom = _geom(nbin=2)
    energy_true = MapAxis.from_energy_bounds("0.5 TeV", "20 TeV", nbin=8, name="energy_true")
    reference = MapDataset.create(geom, energy_axis_true=energy_true)
    maker = MapDatasetMaker(selection=["counts", "background", "exposure"])
    safe = SafeMaskMaker(methods=["offset-max"], offset_max="2.5 deg")
    datasets = []
    for observation in observations:
        dataset = maker.run(reference.copy(name=f"run-{observation.obs_id}"), observation)
        datasets.append(safe.run(dataset, observation))
    return datasets, reference


@pytest.fixture(scope="module")
def crab_images(crab_runs):
    """Each run's image and the stacked image (the tutorial's stacked-then-ring input)."""
    datasets, reference = crab_runs
    images = [dataset.to_image() for dataset in datasets]
    stacked = reference.copy(name="stacked")
    for dataset in datasets:
        stacked.stack(dataset)
    return images + [stacked.to_image()]


def assert_same_on_off(result, reference, backend_name):
    """``result`` equals gammapy's ``reference`` (see the module notes for tolerances)."""
    assert type(result) is MapDatasetOnOff and result.name == reference.name
    for name in MAPS:
        got, expected = getattr(result, name), getattr(reference, name)
        assert got.geom == expected.geom and got.unit == expected.unit, name
        assert got.data.dtype == expected.data.dtype, name
        if backend_name == "numpy" or name not in OFF_MAPS:
            np.testing.assert_array_equal(got.data, expected.data, err_msg=name)
            continue
        peak = np.abs(expected.data).max()
        np.testing.assert_allclose(
            got.data, expected.data, rtol=2e-7, atol=1e-6 * peak, err_msg=name
        )
    np.testing.assert_array_equal(result.mask_safe.data, reference.mask_safe.data)
    assert result.mask_safe.data.dtype == reference.mask_safe.data.dtype
    assert result.gti.time_sum == reference.gti.time_sum


@data
def test_ring_matches_gammapy(crab_images, backend):
    exclusion = _exclusion(crab_images[0].counts.geom)
    gammapy_maker = GammapyRingBackgroundMaker(**RING, exclusion_mask=exclusion)
    maker = RingBackgroundMaker(**RING, exclusion_mask=exclusion, array_backend=backend.name)
    dispatch.reset()
    for image in crab_images:
        reference = gammapy_maker.run(image)
        result = maker.run(image)
        assert_same_on_off(result, reference, backend.name)
        # the off counts are ring sums of counts: integers up to the FFT's rounding
        off = result.counts_off.data
        np.testing.assert_allclose(off, np.rint(off), rtol=0, atol=1e-3)
    assert dispatch.counts() == {("RingBackgroundMaker.run", "fast", None): len(crab_images)}


@data
def test_ring_cube_and_no_exclusion(crab_runs):
    """Several energy planes (convolved plane by plane) and no exclusion mask (all sky)."""
    dataset = crab_runs[0][0]
    reference = GammapyRingBackgroundMaker(**RING).run(dataset)
    result = RingBackgroundMaker(**RING, array_backend="numba").run(dataset)
    assert result.counts_off.data.shape == (2,) + dataset.counts.data.shape[1:]
    assert_same_on_off(result, reference, "numba")


@data
def test_lima_map_on_ring_output(crab_images):
    """ExcessMapEstimator (Li & Ma) on the ring's dataset: rtafast's fast path = gammapy's."""
    stacked = crab_images[-1]
    exclusion = _exclusion(stacked.counts.geom)
    reference_on_off = GammapyRingBackgroundMaker(**RING, exclusion_mask=exclusion).run(stacked)
    maker = RingBackgroundMaker(**RING, exclusion_mask=exclusion, array_backend="numba")
    on_off = maker.run(stacked)
    for correlate_off in (False, True):
        options = {"correlation_radius": "0.1 deg", "correlate_off": correlate_off}
        reference = GammapyExcessMapEstimator(**options).run(reference_on_off)
        dispatch.reset()
        result = ExcessMapEstimator(**options).run(on_off)
        assert dispatch.counts() == {("ExcessMapEstimator.run", "fast", None): 1}
        for name in ("sqrt_ts", "npred_excess", "npred", "norm"):
            got, expected = result[name].data, reference[name].data
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
            finite = np.isfinite(expected) & (np.abs(expected) > 1e-3)
            np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-5, err_msg=name)
        peak_sqrt_ts = np.nanmax(result["sqrt_ts"].data)
        assert peak_sqrt_ts > 20  # the Crab (4 runs, ~2 h): a real detection is being compared


@pytest.fixture(scope="module")
def ring_on_off(crab_images):
    """gammapy's ring ``MapDatasetOnOff`` of the stacked image and rtafast's (numba)."""
    stacked = crab_images[-1]
    exclusion = _exclusion(stacked.counts.geom)
    reference = GammapyRingBackgroundMaker(**RING, exclusion_mask=exclusion).run(stacked)
    maker = RingBackgroundMaker(**RING, exclusion_mask=exclusion, array_backend="numba")
    return reference, maker.run(stacked)


@data
@pytest.mark.parametrize("correlate_off", [False, True])
def test_lima_map_on_backends(ring_on_off, backend, correlate_off):
    """ExcessMapEstimator(array_backend=...) on the ring's dataset against gammapy's.

    The same on/off dataset (rtafast's ring, numba) goes to both estimators. numpy:
    gammapy's maps bit for bit. numba and cuda: the top-hat correlations on the
    backend (float64 sums rounded to float32) and Li & Ma's closed form for the TS:
    the correlated counts equal, ``sqrt_ts`` within 1e-5 absolute, ``ts`` within 1e-6
    relative + 1e-5, the excess within 1e-6 relative + 1e-7 of the correlated counts'
    peak (alpha carries the float32 rounding of a correlation; measured: 1.8e-6 for a
    peak of ~400), the norm within 1e-5 relative where above 1e-3 of its peak; NaN
    patterns equal.
    """
    _, on_off = ring_on_off
    options = {"correlation_radius": "0.1 deg", "correlate_off": correlate_off}
    reference = GammapyExcessMapEstimator(**options).run(on_off)
    dispatch.reset()
    result = ExcessMapEstimator(**options, array_backend=backend.name).run(on_off)
    assert dispatch.counts() == {("ExcessMapEstimator.run", "fast", None): 1}
    assert result.available_quantities == reference.available_quantities
    for name in reference.available_quantities:
        got, expected = result[name].data, reference[name].data
        assert got.dtype == expected.dtype, name
        if backend.name == "numpy":
            np.testing.assert_array_equal(got, expected, err_msg=name)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
    finite = np.isfinite(reference["sqrt_ts"].data)
    got = {name: result[name].data[finite] for name in reference.available_quantities}
    expected = {name: reference[name].data[finite] for name in reference.available_quantities}
    np.testing.assert_array_equal(got["npred"], expected["npred"])
    np.testing.assert_allclose(got["sqrt_ts"], expected["sqrt_ts"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["ts"], expected["ts"], rtol=1e-6, atol=1e-5)
    peak = expected["npred"].max()
    np.testing.assert_allclose(
        got["npred_excess"], expected["npred_excess"], rtol=1e-6, atol=1e-7 * peak
    )
    large = np.abs(expected["norm"]) > 1e-3 * np.abs(expected["norm"]).max()
    np.testing.assert_allclose(got["norm"][large], expected["norm"][large], rtol=1e-5)
    assert np.nanmax(result["sqrt_ts"].data) > 20  # the Crab: a real detection compared


def test_lima_statistic_degenerate_bins():
    """The Li & Ma TS of the fast backends is gammapy's WStat TS, also in degenerate bins.

    Bins with alpha 0, infinite or NaN, NaN counts, no counts at all, no on or no off
    counts: gammapy's own ``ts`` (same values and NaN pattern) where alpha or the
    counts are not regular, the closed form (within 1e-9 relative) elsewhere.
    """
    from gammapy.stats import WStatCountsStatistic

    from rtafast.estimators.excess import _LiMaStatistic

    n_on = np.array([10.0, 0.0, 5.0, 0.0, 7.0, 3.0, 12.0, 4.0, np.nan, 250.0])
    n_off = np.array([40.0, 30.0, 0.0, 0.0, 20.0, 9.0, 30.0, np.nan, 5.0, 1000.0])
    alpha = np.array([0.1, 0.2, 0.3, 0.5, 0.0, np.inf, np.nan, 0.2, 0.2, 0.05])
    reference = WStatCountsStatistic(n_on, n_off, alpha)
    with np.errstate(invalid="ignore", divide="ignore"):
        expected = reference.ts
        stat = _LiMaStatistic(n_on, n_off, alpha)
        ts = stat.ts
        np.testing.assert_array_equal(stat.n_sig, reference.n_sig)
    np.testing.assert_array_equal(np.isnan(ts), np.isnan(expected))
    regular = np.isfinite(alpha) & (alpha > 0) & np.isfinite(n_on) & np.isfinite(n_off)
    np.testing.assert_array_equal(ts[~regular], expected[~regular])
    np.testing.assert_allclose(ts[regular], expected[regular], rtol=1e-9, atol=1e-12)
    assert ts[-1] > 25  # a significant bin is among those compared


@data
def test_exclusion_reprojected_once_per_geometry(crab_images, monkeypatch):
    image = crab_images[0]
    exclusion = _exclusion(_geom(width=6.0))  # larger than the dataset: reprojected
    calls = []
    original = type(exclusion).get_by_coord

    def counting(self, coords, *args, **kwargs):
        calls.append(1)
        return original(self, coords, *args, **kwargs)

    monkeypatch.setattr(type(exclusion), "get_by_coord", counting)
    maker = RingBackgroundMaker(**RING, exclusion_mask=exclusion, array_backend="numba")
    first = maker.run(image)
    maker.run(image)
    maker.run(image.copy(name="same-geometry"))  # an equal geometry object
    assert len(calls) == 1
    exclusion.data[60:80, 60:80] = False  # edited in place: reprojected again
    edited = maker.run(image)
    assert len(calls) == 2
    monkeypatch.undo()
    reference = GammapyRingBackgroundMaker(**RING, exclusion_mask=exclusion).run(image)
    assert_same_on_off(edited, reference, "numba")
    assert edited.counts_off.data.sum() != first.counts_off.data.sum()


@data
@pytest.mark.filterwarnings("ignore:Use of fft convolution:RuntimeWarning")  # gammapy's NaN
def test_bad_input(crab_images):
    image = crab_images[0]
    # an exclusion mask elsewhere on the sky: gammapy fills the off maps with NaN
    far = _exclusion(_geom(width=2.0, skydir=SkyCoord(120, 22, unit="deg")))
    gammapy_result = GammapyRingBackgroundMaker(**RING, exclusion_mask=far).run(image)
    assert np.isnan(gammapy_result.counts_off.data).all()
    with pytest.raises(RingInputError, match="outside the exclusion mask's geometry"):
        RingBackgroundMaker(**RING, exclusion_mask=far).run(image)
    # a mask covering part of the dataset: the same (gammapy: NaN everywhere)
    part = _exclusion(_geom(width=2.0))
    with pytest.raises(RingInputError, match="of 40000 pixels"):
        RingBackgroundMaker(**RING, exclusion_mask=part).run(image)
    # no background (gammapy: TypeError on None * Map)
    no_background = MapDataset(counts=image.counts, mask_safe=image.mask_safe, name="nobkg")
    with pytest.raises(TypeError):
        GammapyRingBackgroundMaker(**RING).run(no_background)
    with pytest.raises(RingInputError, match="'nobkg' has no background map"):
        RingBackgroundMaker(**RING).run(no_background)
    # no safe mask (gammapy: AttributeError)
    no_mask = MapDataset(counts=image.counts, background=image.background, name="nomask")
    with pytest.raises(RingInputError, match="'nomask' has no safe mask"):
        RingBackgroundMaker(**RING).run(no_mask)
    # NaN in the background
    bad = image.copy(name="nan")
    bad.background.data[0, 5, 5] = np.nan
    with pytest.raises(RingInputError, match="background of dataset 'nan' has 1 non-finite"):
        RingBackgroundMaker(**RING).run(bad)


@data
def test_delegations_counted(crab_images):
    image = crab_images[0]
    on_off = GammapyRingBackgroundMaker(**RING).run(image)
    dispatch.reset()
    result = RingBackgroundMaker(**RING).run(on_off)
    reference = GammapyRingBackgroundMaker(**RING).run(on_off)
    np.testing.assert_array_equal(result.counts_off.data, reference.counts_off.data)
    adaptive = {
        "r_in": "0.5 deg",
        "width": "0.3 deg",
        "r_out_max": "1.2 deg",
        "stepsize": "0.2 deg",
    }
    result = AdaptiveRingBackgroundMaker(**adaptive).run(image)
    reference = GammapyAdaptiveRingBackgroundMaker(**adaptive).run(image)
    np.testing.assert_array_equal(result.counts_off.data, reference.counts_off.data)
    assert dispatch.counts() == {
        ("RingBackgroundMaker.run", "gammapy", "ring-unsupported-dataset"): 1,
        ("AdaptiveRingBackgroundMaker.run", "gammapy", "adaptive-ring"): 1,
    }
