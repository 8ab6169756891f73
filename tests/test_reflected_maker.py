"""Drop-in ReflectedRegionsBackgroundMaker: gammapy's SpectrumDatasetOnOff, off counts
from rtafast's kernel, on real H.E.S.S. runs (PKS 2155-304 flare and Crab)."""

import logging

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle
from gammapy.datasets import SpectrumDataset
from gammapy.makers import ReflectedRegionsBackgroundMaker as GammapyMaker
from gammapy.makers import SpectrumDatasetMaker
from gammapy.maps import MapAxis, RegionGeom, WcsGeom
from regions import CircleSkyRegion, RectangleSkyRegion

from rtafast import dispatch
from rtafast.makers.reflected import ReflectedRegionsBackgroundMaker
from rtafast.onoff import compiled, reuse
from rtafast_devtools.lightcurve_data import PKS2155_POSITION as PKS2155
from rtafast_devtools.reference_data import CRAB_POSITION as CRAB

AXIS = MapAxis.from_energy_bounds(0.5, 40, 10, unit="TeV")


def _maker_counts():
    return {
        k: n for k, n in dispatch.counts().items() if k[0] == "ReflectedRegionsBackgroundMaker.run"
    }


def _dataset(observation, region):
    geom = RegionGeom.create(region=region, axes=[AXIS])
    empty = SpectrumDataset.create(geom=geom, name=f"obs-{observation.obs_id}")
    return SpectrumDatasetMaker(selection=["counts"]).run(empty, observation)


@pytest.fixture(scope="module")
def cases(hess_datastore):
    out = []
    for obs_id, target in ((33787, PKS2155), (33795, PKS2155), (23523, CRAB), (23559, CRAB)):
        observation = hess_datastore.obs(obs_id)
        region = CircleSkyRegion(target, Angle("0.11 deg"))
        dataset = _dataset(observation, region)
        out.append((observation, dataset, GammapyMaker().run(dataset, observation)))
    return out


def test_dataset_equals_gammapy(cases, backend):
    dispatch.reset()
    for observation, dataset, expected in cases:
        result = ReflectedRegionsBackgroundMaker(array_backend=backend).run(dataset, observation)
        assert result.name == expected.name
        assert expected.counts_off.data.sum() > 50
        for name in ("counts", "counts_off", "acceptance", "acceptance_off", "mask_safe"):
            ours, theirs = getattr(result, name), getattr(expected, name)
            assert ours.geom == theirs.geom, name
            assert ours.data.dtype == theirs.data.dtype, name
            np.testing.assert_array_equal(ours.data, theirs.data, err_msg=name)
        np.testing.assert_allclose(result.alpha.data, expected.alpha.data, rtol=1e-6)
    assert dispatch.counts()[("ReflectedRegionsBackgroundMaker.run", "fast", None)] == len(cases)


def test_exclusion_covering_every_off_position(cases, caplog):
    """gammapy's behaviour: a warning, no counts_off, mask_safe False; counted fast."""
    observation, dataset, _ = cases[0]
    geom = WcsGeom.create(skydir=PKS2155, width="6 deg", binsz=0.02)
    everything = geom.region_mask([CircleSkyRegion(PKS2155, 5 * u.deg)], inside=False)
    dispatch.reset()
    with caplog.at_level(logging.WARNING):
        ours = ReflectedRegionsBackgroundMaker(exclusion_mask=everything).run(dataset, observation)
        theirs = GammapyMaker(exclusion_mask=everything).run(dataset, observation)
    assert ours.counts_off is None and theirs.counts_off is None
    assert not ours.mask_safe.data.any()
    assert "No OFF region found" in caplog.text
    assert _maker_counts() == {("ReflectedRegionsBackgroundMaker.run", "fast", None): 1}


def test_non_circle_region_delegates(cases):
    observation, _, _ = cases[0]
    box = RectangleSkyRegion(PKS2155, 0.2 * u.deg, 0.2 * u.deg)
    dataset = _dataset(observation, box)
    dispatch.reset()
    ours = ReflectedRegionsBackgroundMaker().run(dataset, observation)
    theirs = GammapyMaker().run(dataset, observation)
    np.testing.assert_array_equal(ours.counts_off.data, theirs.counts_off.data)
    key = ("ReflectedRegionsBackgroundMaker.run", "gammapy", "non-circle-region")
    assert _maker_counts() == {key: 1}


def test_kwargs_with_a_finder_is_an_error():
    with pytest.raises(ValueError, match="No kwargs"):
        ReflectedRegionsBackgroundMaker(region_finder=object(), min_distance="0.1 rad")


def test_repeated_runs_reuse_the_cached_work(cases):
    """A second run on the same pointing takes the finder's regions, the compiled circles
    and the off geometry from the caches, and gives the same dataset (gammapy's)."""
    observation, dataset, expected = cases[1]
    reuse.FOUND.clear()
    compiled.COMPILED.clear()
    first = ReflectedRegionsBackgroundMaker().run(dataset, observation)
    hits = reuse.FOUND.hits, compiled.COMPILED.hits, reuse.GEOMS.hits
    second = ReflectedRegionsBackgroundMaker().run(dataset, observation)
    assert (reuse.FOUND.hits, compiled.COMPILED.hits, reuse.GEOMS.hits) == tuple(
        h + 1 for h in hits
    )
    for result in (first, second):
        np.testing.assert_array_equal(result.counts_off.data, expected.counts_off.data)
        assert result.counts_off.geom == expected.counts_off.geom


def test_cached_finder_sees_an_edited_exclusion_mask(cases):
    """Editing the exclusion mask in place, or other finder settings, is not served
    from the cache: the result is gammapy's for the new mask / settings."""
    observation, dataset, _ = cases[0]
    geom = WcsGeom.create(skydir=PKS2155, width="4 deg", binsz=0.02)
    mask = geom.region_mask([CircleSkyRegion(PKS2155, 0.3 * u.deg)], inside=False)
    before = ReflectedRegionsBackgroundMaker(exclusion_mask=mask).run(dataset, observation)
    pointing = observation.get_pointing_icrs(observation.tmid)
    mask.data &= ~geom.region_mask(
        [CircleSkyRegion(pointing.directional_offset_by(0 * u.deg, 0.5 * u.deg), 0.3 * u.deg)]
    ).data  # exclude more, in place
    after = ReflectedRegionsBackgroundMaker(exclusion_mask=mask).run(dataset, observation)
    theirs = GammapyMaker(exclusion_mask=mask).run(dataset, observation)
    assert after.acceptance_off.data.max() != before.acceptance_off.data.max()
    np.testing.assert_array_equal(after.counts_off.data, theirs.counts_off.data)
    np.testing.assert_array_equal(after.acceptance_off.data, theirs.acceptance_off.data)
    wider = ReflectedRegionsBackgroundMaker(exclusion_mask=mask, min_distance="0.3 rad")
    theirs = GammapyMaker(exclusion_mask=mask, min_distance="0.3 rad").run(dataset, observation)
    np.testing.assert_array_equal(
        wider.run(dataset, observation).counts_off.data, theirs.counts_off.data
    )


def test_default_finders_are_independent_copies():
    """The default finder is a copy of one prototype: gammapy's settings, its own object."""
    from gammapy.makers import ReflectedRegionsFinder as GammapyFinder

    first, second = ReflectedRegionsBackgroundMaker(), ReflectedRegionsBackgroundMaker()
    assert first.region_finder is not second.region_finder
    reference = GammapyFinder()
    for finder in (first.region_finder, second.region_finder):
        assert set(vars(finder)) == set(vars(reference))
        for name, value in vars(reference).items():
            assert np.all(getattr(finder, name) == value), name
    first.region_finder.max_region_number = 3
    assert second.region_finder.max_region_number == 10000
    custom = ReflectedRegionsBackgroundMaker(min_distance="0.3 rad")
    assert custom.region_finder.min_distance == Angle("0.3 rad")
    assert ReflectedRegionsBackgroundMaker().region_finder.min_distance == Angle("0 rad")
