"""Ring background and Li & Ma map: rtafast against gammapy, same data, same run.

The 4 H.E.S.S. DL3 DR1 Crab runs as in gammapy's ring background tutorial: per run
``MapDatasetMaker`` and ``SafeMaskMaker`` (offset-max 2.5 deg) on a 5 x 5 deg map of
0.02 deg pixels (250 x 250, 1-10 TeV), stacked and reduced to an image (all outside
the timing); an exclusion circle of 0.3 deg around the Crab; ring ``r_in`` 0.5 deg,
width 0.3 deg (the tutorial's stacked-then-ring workflow). Two capabilities:

* ``ring background``: ``RingBackgroundMaker.run`` of the stacked image;
* ``ring + Li&Ma map``: the same, then ``ExcessMapEstimator(correlation_radius=0.1 deg,
  correlate_off=False)`` on the ``MapDatasetOnOff`` (the Li & Ma significance map).

rtafast's rows run per backend (cuda only on a real GPU), the excess map with the same
``array_backend`` (numpy: gammapy's bits; numba/cuda: the correlations on the backend
and Li & Ma's closed form, see ``docs/ring.md``). Each timed result is checked
against gammapy's in the same run (recorded in the table's checks).
"""

import astropy.units as u
import numpy as np
import pytest
from bench_settings import rounds, skip_simulated_cuda
from gammapy.datasets import MapDataset
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator
from gammapy.makers import MapDatasetMaker as GammapyMapDatasetMaker
from gammapy.makers import RingBackgroundMaker as GammapyRingBackgroundMaker
from gammapy.makers import SafeMaskMaker
from gammapy.maps import MapAxis, WcsGeom
from regions import CircleSkyRegion

from rtafast.estimators import ExcessMapEstimator
from rtafast.makers import RingBackgroundMaker
from rtafast_devtools.reference_data import CRAB_POSITION as CRAB

SIZE = "crab 4 runs stacked 250x250, ring 0.5+0.3 deg"
RING = {"r_in": "0.5 deg", "width": "0.3 deg"}
EXCESS = {"correlation_radius": "0.1 deg", "correlate_off": False}
ROUNDS = dict(rounds=rounds(15), warmup_rounds=2, iterations=1)


@pytest.fixture(scope="module")
def crab_ring_inputs(hess_datastore):
    """The stacked Crab image and the exclusion mask (prepared once, outside the timing)."""
    observations = hess_datastore.get_observations([23523, 23526, 23559, 23592])
    energy = MapAxis.from_energy_bounds("1 TeV", "10 TeV", nbin=1)
    energy_true = MapAxis.from_energy_bounds("0.5 TeV", "20 TeV", nbin=12, name="energy_true")
    geom = WcsGeom.create(skydir=CRAB, binsz=0.02, width=5, axes=[energy])
    stacked = MapDataset.create(geom, energy_axis_true=energy_true, name="crab-stacked")
    maker = GammapyMapDatasetMaker(selection=["counts", "background", "exposure"])
    safe = SafeMaskMaker(methods=["offset-max"], offset_max="2.5 deg")
    for observation in observations:
        dataset = maker.run(stacked.copy(name=f"run-{observation.obs_id}"), observation)
        stacked.stack(safe.run(dataset, observation))
    image = stacked.to_image()
    exclusion = ~image.counts.geom.to_image().region_mask([CircleSkyRegion(CRAB, 0.3 * u.deg)])
    return image, exclusion


def _ring_check(result, reference):
    """Largest relative difference of the off maps where above 1e-6 of their peak."""
    worst = 0.0
    for name in ("counts_off", "acceptance_off"):
        got, expected = getattr(result, name).data, getattr(reference, name).data
        large = np.abs(expected) > 1e-6 * np.abs(expected).max()
        worst = max(worst, float(np.max(np.abs(got - expected)[large] / np.abs(expected[large]))))
        assert worst < 1e-6, name
    np.testing.assert_array_equal(result.mask_safe.data, reference.mask_safe.data)
    return f"off maps max rel. diff {worst:.1e} vs gammapy, safe masks equal"


def _lima_check(result, reference):
    got, expected = result["sqrt_ts"].data, reference["sqrt_ts"].data
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    finite = np.isfinite(expected)
    diff = float(np.max(np.abs(got[finite] - expected[finite])))
    assert diff < 1e-4
    return f"Li & Ma sqrt_ts max abs. diff {diff:.1e} vs gammapy (peak {np.nanmax(expected):.1f})"


def test_gammapy_ring(benchmark, record, crab_ring_inputs):
    record("ring background", SIZE, "gammapy")
    image, exclusion = crab_ring_inputs
    maker = GammapyRingBackgroundMaker(**RING, exclusion_mask=exclusion)
    result = benchmark.pedantic(maker.run, args=(image,), **ROUNDS)
    assert np.nansum(result.counts_off.data) > 0


def test_rtafast_ring(benchmark, record, crab_ring_inputs, backend):
    skip_simulated_cuda(backend)
    record("ring background", SIZE, "rtafast", backend.name)
    image, exclusion = crab_ring_inputs
    reference = GammapyRingBackgroundMaker(**RING, exclusion_mask=exclusion).run(image)
    maker = RingBackgroundMaker(**RING, exclusion_mask=exclusion, array_backend=backend.name)
    result = benchmark.pedantic(maker.run, args=(image,), **ROUNDS)
    benchmark.extra_info["check"] = _ring_check(result, reference)


def _gammapy_pipeline(image, exclusion):
    on_off = GammapyRingBackgroundMaker(**RING, exclusion_mask=exclusion).run(image)
    return GammapyExcessMapEstimator(**EXCESS).run(on_off)


def test_gammapy_ring_lima(benchmark, record, crab_ring_inputs):
    record("ring + Li&Ma map", SIZE, "gammapy")
    result = benchmark.pedantic(_gammapy_pipeline, args=crab_ring_inputs, **ROUNDS)
    assert np.nanmax(result["sqrt_ts"].data) > 20


def test_rtafast_ring_lima(benchmark, record, crab_ring_inputs, backend):
    skip_simulated_cuda(backend)
    record("ring + Li&Ma map", SIZE, "rtafast", backend.name)
    image, exclusion = crab_ring_inputs
    reference = _gammapy_pipeline(image, exclusion)
    maker = RingBackgroundMaker(**RING, exclusion_mask=exclusion, array_backend=backend.name)
    estimator = ExcessMapEstimator(**EXCESS, array_backend=backend.name)

    def pipeline():
        return estimator.run(maker.run(image))

    result = benchmark.pedantic(pipeline, **ROUNDS)
    benchmark.extra_info["check"] = _lima_check(result, reference)
