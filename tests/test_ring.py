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

data = pytest.mark.data

CRAB = SkyCoord(83.633, 22.014, unit="deg")
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
