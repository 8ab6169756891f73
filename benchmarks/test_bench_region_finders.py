"""Region finders: rtafast's ReflectedRegionsFinder / WobbleRegionsFinder against gammapy's.

One real run, PKS 2155-304 run 33787 (pointing from the observation), on region a
0.11 deg circle at the source; without and with an exclusion mask (a 0.3 deg circle
at the on region's offset, 100 deg around the pointing, on a 5 deg, 0.02 deg CAR map).
Finders are constructed once, outside the timing (gammapy's constructor parses its
angle strings, ~1.7 ms). Rows:

* ``gammapy``: gammapy's ``run`` (it keeps nothing between calls);
* ``warm``: rtafast's ``run`` again on the same inputs (every window of a stream on
  one pointing): the reference geometry and the mask's reprojection are cached;
* ``cold``: rtafast's ``run`` with both caches emptied before each round (a new
  pointing, a new mask).

Every timed answer is checked identical to gammapy's (regions and WCS).
"""

import astropy.units as u
import pytest
from bench_settings import rounds
from gammapy.makers import ReflectedRegionsFinder as GammapyReflected
from gammapy.makers import WobbleRegionsFinder as GammapyWobble
from gammapy.maps import WcsGeom
from regions import CircleSkyRegion

from rtafast.makers import ReflectedRegionsFinder, WobbleRegionsFinder, _region_masks, regions
from rtafast_devtools.lightcurve_data import PKS2155_POSITION as PKS

ROUNDS = dict(rounds=rounds(30), warmup_rounds=1, iterations=1)
FINDERS = {
    "reflected": (GammapyReflected, ReflectedRegionsFinder, {}),
    "cross (wobble n=3)": (GammapyWobble, WobbleRegionsFinder, {"n_off_regions": 3}),
}


@pytest.fixture(scope="module")
def inputs(hess_datastore):
    obs = hess_datastore.obs(33787)
    center = obs.get_pointing_icrs(obs.tmid)
    on_region = CircleSkyRegion(PKS, 0.11 * u.deg)
    pa = center.position_angle(PKS) + 100 * u.deg
    excluded = center.directional_offset_by(pa, center.separation(PKS))
    geom = WcsGeom.create(skydir=PKS, binsz=0.02, width=5.0)
    mask = ~geom.region_mask([CircleSkyRegion(excluded, 0.3 * u.deg)])
    return center, on_region, {"no mask": None, "mask": mask}


def _clear():
    regions._PLANS.clear()
    _region_masks._EXCLUDED.clear()


def _same(ours, theirs):
    assert len(ours[0]) == len(theirs[0]) > 0
    assert all(a == b for a, b in zip(ours[0], theirs[0], strict=True))
    assert ours[1].to_header_string() == theirs[1].to_header_string()


@pytest.mark.parametrize("finder", list(FINDERS))
@pytest.mark.parametrize("masked", ["no mask", "mask"])
@pytest.mark.parametrize("impl", ["gammapy", "warm", "cold"])
def test_region_finder(benchmark, record, inputs, finder, masked, impl):
    center, on_region, masks = inputs
    mask = masks[masked]
    gammapy_cls, rtafast_cls, kwargs = FINDERS[finder]
    size = f"PKS 2155 run 33787, r=0.11 deg, {masked}"
    expected = gammapy_cls(**kwargs).run(on_region, center, mask)
    if impl == "gammapy":
        record(f"{finder} finder", size, "gammapy")
        result = benchmark.pedantic(
            gammapy_cls(**kwargs).run, args=(on_region, center, mask), **ROUNDS
        )
    else:
        record(f"{finder} finder", size, "rtafast", impl)
        ours = rtafast_cls(**kwargs)
        ours.run(on_region, center, mask)  # imports, first-use costs

        def setup():
            if impl == "cold":
                _clear()
            return (on_region, center, mask), {}

        result = benchmark.pedantic(ours.run, setup=setup, **ROUNDS)
    _same(result, expected)
