"""Select events by time intervals (GTIs), energy range and a cone, with rtafast's kernel.

Semantics: time in any of the half-open intervals ``[start, stop)`` (gammapy's
``EventList.select_time``), energy in ``[emin, emax)`` (gammapy's
``select_energy``), and angular separation from the cone's centre strictly below
its radius (``SkyCoord.separation(...) < radius``; note that gammapy's
``select_region`` tests containment in pixel space, not by separation). Events
within rounding of a time bound or of the cone's edge are decided with astropy's
``Time`` and ``SkyCoord.separation``.
"""

import logging
from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.time import Time
from gammapy.data import GTI

from rtafast_kernels import resolve_backend
from rtafast_kernels.selection import element as el

from .binning import _native

__all__ = ["SelectionStats", "select_events"]

log = logging.getLogger(__name__)


@dataclass
class SelectionStats:
    """Counts of one selection call."""

    n_events: int
    n_selected: int
    n_ambiguous: int


def _intervals(time_intervals, reference):
    if time_intervals is None:
        return None, np.zeros(0)
    if isinstance(time_intervals, GTI):
        pairs = list(zip(time_intervals.time_start, time_intervals.time_stop, strict=True))
    else:
        pairs = [(Time(a), Time(b)) for a, b in time_intervals]
    for start, stop in pairs:
        if not stop > start:
            raise ValueError(f"time interval is empty or reversed: {start.iso} .. {stop.iso}")
    flat = np.array(
        [[(a - reference).to_value("s"), (b - reference).to_value("s")] for a, b in pairs]
    ).ravel()
    return pairs, flat


def select_events(events, time_intervals=None, energy_range=None, cone=None, array_backend=None):
    """Events passing every given cut.

    Parameters
    ----------
    events : `~gammapy.data.EventList`
    time_intervals : `~gammapy.data.GTI` or list of (`~astropy.time.Time`, `~astropy.time.Time`)
        Half-open intervals; events in any of them pass.
    energy_range : (`~astropy.units.Quantity`, `~astropy.units.Quantity`), optional
        ``[emin, emax)``.
    cone : (`~astropy.coordinates.SkyCoord`, `~astropy.coordinates.Angle`), optional
        Centre and radius.
    array_backend : str, optional

    Returns
    -------
    selected : `~gammapy.data.EventList`
    stats : SelectionStats
    """
    impl = resolve_backend(array_backend)
    table = events.table
    n = len(table)
    reference = events.time_ref
    pairs, flat = _intervals(time_intervals, reference)
    energy_unit = table["ENERGY"].unit or u.TeV
    params = np.zeros(el.SELECTION_SIZE)
    params[el.S_EMIN], params[el.S_EMAX] = -np.inf, np.inf
    if energy_range is not None:
        emin, emax = (u.Quantity(e).to_value(energy_unit) for e in energy_range)
        params[el.S_EMIN], params[el.S_EMAX] = emin, emax
    if cone is not None:
        center, radius = cone[0].icrs, u.Quantity(cone[1], "deg")
        params[el.S_CONE : el.S_CONE + 3] = center.cartesian.xyz.value
        params[el.S_COS_RADIUS] = np.cos(radius.to_value("rad"))
        params[el.S_USE_CONE] = 1.0
        params[el.S_CONE_TOL] = 1e-12
    params[el.S_TIME_TOL] = 1e-6

    # seconds since the reference time, as in the DL3 file's TIME column
    time = _native((events.time - reference).to_value("s"))
    columns = [
        time,
        _native(u.Quantity(table["ENERGY"]).to_value(energy_unit)),
        _native(table["RA"]),
        _native(table["DEC"]),
    ]
    xp = impl.xp
    codes = impl.select_events(
        *[xp.asarray(c) for c in columns], impl.asarray(params), impl.asarray(flat)
    )
    codes = impl.to_numpy(codes)
    mask = codes == 1
    ambiguous = np.flatnonzero(codes == 2)
    if ambiguous.size:
        keep = np.ones(ambiguous.size, dtype=bool)
        subset = events.select_row_subset(ambiguous)
        if pairs is not None:
            t = subset.time
            keep &= np.any([(a <= t) & (t < b) for a, b in pairs], axis=0)
        if cone is not None:
            keep &= np.asarray(cone[0].separation(subset.radec) < u.Quantity(cone[1], "deg"))
        mask[ambiguous[keep]] = True
    stats = SelectionStats(n_events=n, n_selected=int(mask.sum()), n_ambiguous=ambiguous.size)
    return events.select_row_subset(mask), stats
