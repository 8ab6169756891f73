"""Event selection (time intervals, energy range, cone) against astropy/gammapy semantics."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time
from gammapy.data import GTI, EventList

from rtafast.events.selection import select_events

T0 = Time("2026-01-01T00:00:00", scale="tt")


def _events(n=3000, seed=0, on_bounds=()):
    rng = np.random.default_rng(seed)
    seconds = np.sort(np.concatenate([rng.uniform(0, 1000, n - len(on_bounds)), on_bounds]))
    table = Table(
        {
            "RA": (83.6 + rng.normal(0, 1, n)).astype(np.float32),
            "DEC": (22.0 + rng.normal(0, 1, n)).astype(np.float32),
            "ENERGY": (10 ** rng.uniform(-1, 2, n)).astype(np.float32),
            "EVENT_ID": np.arange(n),
        }
    )
    table["TIME"] = T0 + seconds * u.s
    table["RA"].unit, table["DEC"].unit, table["ENERGY"].unit = "deg", "deg", "TeV"
    table.meta.update({"MJDREFI": 61041, "MJDREFF": 0.0007428703703703703, "TIMESYS": "TT"})
    return EventList(table)


def _expected(events, intervals, energy_range, cone):
    mask = np.ones(len(events.table), dtype=bool)
    if intervals is not None:
        t = events.time
        mask &= np.any([(a <= t) & (t < b) for a, b in intervals], axis=0)
    if energy_range is not None:
        mask &= (energy_range[0] <= events.energy) & (events.energy < energy_range[1])
    if cone is not None:
        mask &= np.asarray(cone[0].separation(events.radec) < cone[1])
    return np.asarray(events.table["EVENT_ID"])[mask]


CUTS = {
    "time": ([(T0 + 100 * u.s, T0 + 250 * u.s), (T0 + 600 * u.s, T0 + 601.5 * u.s)], None, None),
    "energy": (None, (1 * u.TeV, 10 * u.TeV), None),
    "cone": (None, None, (SkyCoord(83.9, 22.3, unit="deg"), 0.7 * u.deg)),
    "all": (
        [(T0 + 50 * u.s, T0 + 700 * u.s)],
        (0.5 * u.TeV, 20 * u.TeV),
        (SkyCoord(83.6, 22.0, unit="deg"), 1.2 * u.deg),
    ),
}


@pytest.mark.parametrize("cut", list(CUTS))
def test_selection_matches_reference(backend, cut):
    n = 300 if backend.name == "cuda" else 5000
    events = _events(n, on_bounds=[100.0, 250.0, 600.0])
    intervals, energy_range, cone = CUTS[cut]
    selected, stats = select_events(
        events, intervals, energy_range, cone, array_backend=backend.name
    )
    expected = _expected(events, intervals, energy_range, cone)
    np.testing.assert_array_equal(np.asarray(selected.table["EVENT_ID"]), expected)
    assert stats.n_selected == expected.size and stats.n_events == n


def test_events_on_time_bounds_and_cone_edge_follow_astropy():
    events = _events(400, on_bounds=[100.0, 250.0, 250.0, 600.0])
    intervals = [(T0 + 100 * u.s, T0 + 250 * u.s)]
    selected, stats = select_events(events, intervals, array_backend="numba")
    assert stats.n_ambiguous >= 3  # decided with astropy Time comparisons
    np.testing.assert_array_equal(
        np.asarray(selected.table["EVENT_ID"]), _expected(events, intervals, None, None)
    )


def test_gti_input_and_errors():
    events = _events(500)
    gti = GTI.create(T0 + [10] * u.s, T0 + [20] * u.s)
    selected, _ = select_events(events, gti, array_backend="numpy")
    assert (
        len(selected.table) == _expected(events, [(T0 + 10 * u.s, T0 + 20 * u.s)], None, None).size
    )
    with pytest.raises(ValueError, match="empty or reversed"):
        select_events(events, [(T0 + 20 * u.s, T0 + 10 * u.s)])
