"""rtafast's ReflectedRegionsFinder and WobbleRegionsFinder against gammapy 2.1's, run here.

"Identical" means: the same number of regions in the same order, each region equal
by ``regions``' ``==`` (SkyCoord centres compared exactly, radii exactly, meta and
visual equal) and the same returned WCS (header and array shape). Tolerance: none.
"""

import logging

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import Angle, SkyCoord
from gammapy.makers import ReflectedRegionsFinder as GammapyReflected
from gammapy.makers import WobbleRegionsFinder as GammapyWobble
from gammapy.maps import WcsGeom
from regions import CircleSkyRegion, EllipseSkyRegion, PointSkyRegion

from rtafast import dispatch
from rtafast.makers import (
    ReflectedRegionsFinder,
    WobbleRegionsFinder,
    _region_masks,
    cross_regions_finder,
)
from rtafast_devtools.lightcurve_data import PKS2155_POSITION as PKS_POSITION

CRAB_POSITION = SkyCoord(83.6333, 22.0145, unit="deg")


def assert_identical(ours, theirs):
    """Same regions (exactly), same order, same WCS."""
    regions, wcs = ours
    expected, expected_wcs = theirs
    assert wcs.to_header_string() == expected_wcs.to_header_string()
    assert wcs.array_shape == expected_wcs.array_shape
    assert len(regions) == len(expected)
    for got, want in zip(regions, expected, strict=True):
        assert type(got) is type(want)
        assert got == want, (got, want)


def exclusion_mask(position, radius, frame="icrs", binsz=0.02, width=5.0):
    """gammapy's usual exclusion mask: False inside a circle."""
    geom = WcsGeom.create(skydir=position, binsz=binsz, width=width, frame=frame)
    return ~geom.region_mask([CircleSkyRegion(position, Angle(radius, "deg"))])


@pytest.fixture(scope="module")
def pointings(hess_datastore):
    """ICRS pointing of PKS 2155-304 run 33787 and Crab run 23523."""
    out = {}
    for obs_id in (33787, 23523):
        obs = hess_datastore.obs(obs_id)
        out[obs_id] = obs.get_pointing_icrs(obs.tmid)
    return out


def _near(center, position, angle_deg):
    """A position at the on region's offset, rotated by angle_deg around the pointing."""
    pa = center.position_angle(position) + Angle(angle_deg, "deg")
    return center.directional_offset_by(pa, center.separation(position))


@pytest.mark.parametrize("radius", [0.11, 0.2])
@pytest.mark.parametrize("masked", [False, True])
def test_reflected_pks2155(pointings, radius, masked):
    center = pointings[33787]
    on_region = CircleSkyRegion(PKS_POSITION, radius * u.deg)
    mask = exclusion_mask(_near(center, PKS_POSITION, 100), 0.3) if masked else None
    ours = ReflectedRegionsFinder().run(on_region, center, mask)
    theirs = GammapyReflected().run(on_region, center, mask)
    assert_identical(ours, theirs)
    assert len(ours[0]) > 3


@pytest.mark.parametrize("radius", [0.1, 0.15, 0.2])
def test_reflected_crab_with_mask(pointings, radius):
    center = pointings[23523]
    on_region = CircleSkyRegion(CRAB_POSITION, radius * u.deg)
    mask = exclusion_mask(_near(center, CRAB_POSITION, -70), 0.5, frame="galactic")
    ours = ReflectedRegionsFinder().run(on_region, center, mask)
    theirs = GammapyReflected().run(on_region, center, mask)
    assert_identical(ours, theirs)


OPTIONS = [
    {"min_distance_input": "0 deg"},
    {"min_distance": "5 deg", "min_distance_input": "0.3 rad"},
    {"min_distance": "0.05 rad", "angle_increment": "3 deg"},
    {"max_region_number": 3},
    {"angle_increment": "0.01 rad", "binsz": "0.02 deg"},
]


@pytest.mark.parametrize("options", OPTIONS)
def test_reflected_options(pointings, options):
    center = pointings[33787]
    on_region = CircleSkyRegion(PKS_POSITION, 0.11 * u.deg)
    mask = exclusion_mask(_near(center, PKS_POSITION, 200), 0.4)
    for m in (None, mask):
        ours = ReflectedRegionsFinder(**options).run(on_region, center, m)
        theirs = GammapyReflected(**options).run(on_region, center, m)
        assert_identical(ours, theirs)


def test_reflected_mask_cuts_everything(pointings):
    """An exclusion covering every off position: no region (gammapy's answer)."""
    center = pointings[33787]
    on_region = CircleSkyRegion(PKS_POSITION, 0.11 * u.deg)
    mask = exclusion_mask(center, 2.0, width=6.0)
    mask.data |= ~exclusion_mask(PKS_POSITION, 0.2, width=6.0).data  # on region kept
    ours = ReflectedRegionsFinder().run(on_region, center, mask)
    theirs = GammapyReflected().run(on_region, center, mask)
    assert_identical(ours, theirs)
    assert ours[0] == []


def test_random_geometries():
    """Seeded random pointings, offsets, radii, frames, masks and options."""
    rng = np.random.default_rng(12)
    for trial in range(6):
        frame = ("icrs", "galactic")[trial % 2]
        center = SkyCoord(rng.uniform(0, 360), rng.uniform(-70, 70), unit="deg")
        if trial == 3:
            center = SkyCoord(359.9, 10.0, unit="deg")  # RA wrap inside the geometry
        offset = rng.uniform(0.3, 2.0)
        position = center.directional_offset_by(rng.uniform(0, 360) * u.deg, offset * u.deg)
        position = position.transform_to(frame)
        lon, lat = position.data.lon.deg, position.data.lat.deg
        on_region = CircleSkyRegion(
            SkyCoord(lon, lat, unit="deg", frame=frame), rng.uniform(0.05, 0.3) * u.deg
        )
        mask = None
        if trial % 3:
            near = center.directional_offset_by(rng.uniform(0, 360) * u.deg, offset * u.deg)
            mask = exclusion_mask(
                near, rng.uniform(0.1, 0.8), frame=("galactic", "icrs")[trial % 2]
            )
        options = {"min_distance_input": f"{rng.choice([0, 0.1])} rad"}
        ours = ReflectedRegionsFinder(**options).run(on_region, center, mask)
        assert_identical(ours, GammapyReflected(**options).run(on_region, center, mask))
        n_off = int(rng.integers(1, 6))
        for region in (on_region, PointSkyRegion(on_region.center)):
            ours = WobbleRegionsFinder(n_off).run(region, center, mask)
            assert_identical(ours, GammapyWobble(n_off).run(region, center, mask))


@pytest.mark.parametrize("n_off", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("kind", ["circle", "point"])
def test_wobble(pointings, n_off, kind):
    center = pointings[33787]
    on_region = CircleSkyRegion(PKS_POSITION, 0.11 * u.deg)
    if kind == "point":
        on_region = PointSkyRegion(PKS_POSITION)
    mask = exclusion_mask(_near(center, PKS_POSITION, 180), 0.2)
    for m in (None, mask):
        ours = WobbleRegionsFinder(n_off).run(on_region, center, m)
        assert_identical(ours, GammapyWobble(n_off).run(on_region, center, m))


def test_wobble_overlapping_warns_like_gammapy(pointings, caplog):
    center = pointings[33787]
    on_region = CircleSkyRegion(PKS_POSITION, 0.4 * u.deg)
    with caplog.at_level(logging.WARNING):
        ours = WobbleRegionsFinder(5).run(on_region, center)
    assert ours[0] == []
    assert caplog.record_tuples == [
        (
            "gammapy.makers.background.reflected",
            logging.WARNING,
            "Found overlapping off regions, returning no regions",
        )
    ]
    assert_identical(ours, GammapyWobble(5).run(on_region, center))


def test_cross_layout(pointings):
    """3 off regions at 90, 180 and 270 deg: gammapy's WobbleRegionsFinder(3)."""
    center = pointings[23523]
    on_region = CircleSkyRegion(CRAB_POSITION, 0.1 * u.deg)
    finder = cross_regions_finder()
    assert finder.n_off_regions == 3
    regions, wcs = finder.run(on_region, center)
    assert_identical((regions, wcs), GammapyWobble(3).run(on_region, center))
    angles = [
        (center.position_angle(r.center) - center.position_angle(CRAB_POSITION)).wrap_at("360d").deg
        for r in regions
    ]
    assert np.allclose(angles, [90, 180, 270], atol=0.5)


def test_mask_changed_in_place_is_noticed(pointings):
    """The reprojection cache compares the mask's content, not only its identity."""
    center = pointings[33787]
    on_region = CircleSkyRegion(PKS_POSITION, 0.11 * u.deg)
    mask = exclusion_mask(_near(center, PKS_POSITION, 90), 0.3)
    finder = ReflectedRegionsFinder()
    first = finder.run(on_region, center, mask)
    mask.data &= exclusion_mask(_near(center, PKS_POSITION, 180), 0.6).data
    second = finder.run(on_region, center, mask)
    assert_identical(second, GammapyReflected().run(on_region, center, mask))
    assert len(second[0]) < len(first[0])


def test_regions_are_ordinary_objects(pointings):
    """Regions built without re-validation are the constructor's objects."""
    center = pointings[33787]
    on_region = CircleSkyRegion(PKS_POSITION, 0.11 * u.deg, meta={"text": "on"})
    regions, wcs = ReflectedRegionsFinder().run(on_region, center)
    region = regions[0]
    rebuilt = CircleSkyRegion(region.center, region.radius, meta=region.meta, visual=region.visual)
    assert rebuilt == region
    assert {k: type(v) for k, v in vars(rebuilt).items()} == {
        k: type(v) for k, v in vars(region).items()
    }
    assert region.meta == {"text": "on"} and region.meta is not on_region.meta
    assert region.copy() == region
    assert region.to_pixel(wcs).to_sky(wcs).center.separation(region.center) < 1e-9 * u.deg


def test_subclasses_and_dispatch(pointings):
    assert issubclass(ReflectedRegionsFinder, GammapyReflected)
    assert issubclass(WobbleRegionsFinder, GammapyWobble)
    center = pointings[33787]
    dispatch.reset()
    ReflectedRegionsFinder().run(CircleSkyRegion(PKS_POSITION, 0.11 * u.deg), center)
    ellipse = EllipseSkyRegion(PKS_POSITION, 0.1 * u.deg, 0.3 * u.deg, angle=30 * u.deg)
    ours = ReflectedRegionsFinder().run(ellipse, center)
    assert_identical(ours, GammapyReflected().run(ellipse, center))
    assert dispatch.counts() == {
        ("ReflectedRegionsFinder.run", "fast", None): 1,
        ("ReflectedRegionsFinder.run", "gammapy", "region-shape"): 1,
    }


def test_bad_input(pointings):
    center = pointings[33787]
    with pytest.raises(TypeError, match="PointSkyRegion"):
        ReflectedRegionsFinder().run(PointSkyRegion(PKS_POSITION), center)
    tiny = CircleSkyRegion(PKS_POSITION, 0.001 * u.deg)
    with pytest.raises(ValueError, match="covers no pixel"):
        ReflectedRegionsFinder().run(tiny, center)
    with pytest.raises(ValueError, match="angle_increment"):
        ReflectedRegionsFinder(angle_increment="0 rad")


def test_caches_bounded():
    assert _region_masks._EXCLUDED.maxsize <= 16
