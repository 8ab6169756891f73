"""Windows and settings shared by the candidate-measurement tests.

Used by ``tests/test_pipeline_measure.py`` (the flux fit, the caches and the position
grid) and ``tests/test_pipeline_measure_photometry.py`` (on/off photometry): the
pipeline's default configuration with overrides, stream windows of H.E.S.S. Crab run
23523 (10 min) and of simulated bunches (the package's analytic CTA-like IRFs, a Gaussian
source over a flat background), one observation or two from different pointings. Each
test module wraps the builders below in its own module-scoped fixtures.
"""

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.table import Table
from gammapy.data import EventList, FixedPointingInfo, Observation
from gammapy.makers import SafeMaskMaker
from gammapy.maps import MapAxis, WcsGeom

from rtafast.pipeline.config import load_config
from rtafast.simulate import analytic_cta_irfs
from rtafast.stream import BunchAccumulator
from tests.conftest import T0

CRAB = SkyCoord(83.633, 22.0145, unit="deg")
ENERGY_TRUE = MapAxis.from_energy_bounds(0.5, 30, 10, unit="TeV", name="energy_true")

SIM_POINTING = SkyCoord(83.6, 22.5, unit="deg")
SIM_SOURCE = (83.6, 22.0)  # 0.5 deg from the pointing
SIM_GEOM = WcsGeom.create(
    skydir=(83.6, 22.2),
    binsz=0.04,
    width=3.0,
    axes=[MapAxis.from_energy_bounds(1, 10, 4, unit="TeV")],
)


def _config(*overrides):
    return load_config(None, overrides)


# -- windows ------------------------------------------------------------------------------
def offset_max_accumulator(geom, energy_true, backend, offset_max, **kwargs):
    """A ``BunchAccumulator`` on ``geom`` whose safe mask is gammapy's offset-max (deg).

    Also used by tests/test_stream_window.py and tests/test_pipeline_detect.py.
    """
    return BunchAccumulator(
        geom,
        energy_true,
        array_backend=backend,
        safe_mask_maker=SafeMaskMaker(methods=["offset-max"], offset_max=offset_max * u.deg),
        **kwargs,
    )


def _window(geom, bunches, backend="numpy", offset_max=2.0):
    accumulator = offset_max_accumulator(geom, ENERGY_TRUE, backend, offset_max)
    for events, observation, interval in bunches:
        accumulator.add(events, observation, interval)
    return accumulator.current_window()


def _crab_bunches(observation, n=2, duration=300 * u.s):
    start = observation.gti.time_start[0]
    for k in range(n):
        interval = (start + k * duration, start + (k + 1) * duration)
        yield observation.events.select_time(interval), observation, interval


def _crab_window(observation):
    """10 min of H.E.S.S. Crab run 23523 (0.5 deg wobble) on a 3 deg, 0.02 deg map."""
    geom = WcsGeom.create(
        skydir=CRAB, binsz=0.02, width=3.0, axes=[MapAxis.from_energy_bounds(1, 10, 6, unit="TeV")]
    )
    return _window(geom, _crab_bunches(observation))


def _observation(pointing=SIM_POINTING, obs_id=1, tstart=T0):
    observation = Observation.create(
        pointing=FixedPointingInfo(fixed_icrs=pointing),
        livetime=1 * u.h,
        irfs=analytic_cta_irfs(),
        tstart=tstart,
        reference_time=T0,
        obs_id=obs_id,
    )
    observation.observation_dead_time_fraction  # noqa: B018 - read once (lazy)
    return observation


def _simulated_events(rng, start, stop, n_source=40, n_background=1500):
    """A Gaussian source (0.06 deg) at SIM_SOURCE over a flat background, 1-10 TeV."""
    n = n_source + n_background
    dec0 = np.deg2rad(SIM_SOURCE[1])
    ra = np.concatenate(
        [
            SIM_SOURCE[0] + rng.normal(0, 0.06, n_source) / np.cos(dec0),
            83.6 + rng.uniform(-1.6, 1.6, n_background) / np.cos(dec0),
        ]
    )
    dec = np.concatenate(
        [SIM_SOURCE[1] + rng.normal(0, 0.06, n_source), 22.2 + rng.uniform(-1.6, 1.6, n_background)]
    )
    table = Table(
        {
            "RA": ra * u.deg,
            "DEC": dec * u.deg,
            "ENERGY": 10 ** rng.uniform(0, 1, n) * u.TeV,
        }
    )
    offsets = np.sort(rng.uniform(0, (stop - start).to_value("s"), n))
    table["TIME"] = start + offsets * u.s
    return EventList(table)


def _simulated_bunches(observation, n, first=0, seed=1, duration=60 * u.s, **kwargs):
    rng = np.random.default_rng(seed)
    for k in range(first, first + n):
        start = observation.tstart + k * duration
        interval = (start, start + duration)
        yield _simulated_events(rng, *interval, **kwargs), observation, interval


def _simulated_window():
    """3 min of simulated bunches, the source 0.5 deg from the pointing."""
    return _window(SIM_GEOM, _simulated_bunches(_observation(), 3), offset_max=1.5)


def _two_pointing_window():
    """Two 2-min observations of SIM_SOURCE from pointings 0.5 deg north and south."""
    first = _observation(SkyCoord(83.6, 22.5, unit="deg"), obs_id=1)
    second = _observation(SkyCoord(83.6, 21.5, unit="deg"), obs_id=2, tstart=T0 + 1 * u.h)
    bunches = [*_simulated_bunches(first, 2), *_simulated_bunches(second, 2, seed=2)]
    return _window(SIM_GEOM, bunches, offset_max=1.5)


def _window_and_source(request):
    """The ``window_and_source`` fixtures' value: the window named by ``request.param``
    and its source's position (deg)."""
    window = request.getfixturevalue(request.param)
    source = (CRAB.ra.deg, CRAB.dec.deg) if request.param == "crab_window" else SIM_SOURCE
    return window, source
