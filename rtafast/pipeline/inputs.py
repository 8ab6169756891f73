"""The pipeline's input: observations read and checked, their events cut into time bunches.

:func:`open_observations` reads the replay inputs of a configuration (DL3 event files, or a
DataStore and observation ids) with gammapy, checks them and sorts them by start time; any
problem is one :class:`InputError` line naming the file, HDU or column.
:func:`iter_bunches` replays them as :class:`Bunch` es in time order. The real-time mode, a
watched directory, is :func:`rtafast.pipeline.watch.watch_bunches`.

Each observation's events are prepared once: sorted by time (stable; events out of order
are counted), exact duplicate rows (same TIME, RA, DEC, ENERGY) dropped and counted, the
energy range ``[energy_min, energy_max)`` and the cone of ``selection.roi_radius`` around
the map centre applied. Bunches are then slices of that table found with
:func:`numpy.searchsorted`: no per-bunch selection.

Bunch intervals: within each GTI interval of an observation, clipped to the analysis range
``[max(trigger + start_delay, trigger + time_start), trigger + time_stop)`` (``trigger``:
``stream.trigger_time``, or the start of the first observation), consecutive intervals of
``stream.bunch`` starting at the clipped GTI start; the last of a GTI interval may be
shorter. A bunch never spans a GTI gap. Every selected event inside a bunch's half-open
interval ``[start, stop)`` is in that bunch; events outside the observation's GTIs or the
analysis range are counted in :class:`InputStats`, never silently lost. All times are TT
(H.E.S.S. and CTA DL3 files store TT seconds since MJDREF).

The pieces: :mod:`~rtafast.pipeline.input_types` (:class:`InputError`, :class:`Bunch`,
:class:`InputStats`), :mod:`~rtafast.pipeline.input_read` (reading and checking
observations); this module prepares events and cuts bunches, and re-exports them all.
"""

import logging
import time as _clock
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.time import Time
from gammapy.data import EventList

from .input_read import (
    _source_name,
    check_observation,
    open_observations,
    read_observation,
    roi_center,
)
from .input_types import REQUIRED_COLUMNS, REQUIRED_IRFS, Bunch, InputError, InputStats

__all__ = [
    "Bunch",
    "BunchCutter",
    "InputError",
    "InputStats",
    "REQUIRED_COLUMNS",
    "REQUIRED_IRFS",
    "check_observation",
    "iter_bunches",
    "native_byte_order",
    "open_observations",
    "read_observation",
    "roi_center",
    "watch_bunches",
]

log = logging.getLogger(__name__)

#: Bunches shorter than this (s) left at the end of a GTI interval by rounding are dropped.
_MIN_BUNCH_S = 1e-6


# -- events prepared once per observation ---------------------------------------------------


def _event_list_view(table, meta):
    """An EventList on ``table`` without gammapy's per-call column validation.

    ``EventList(table)`` re-validates the columns against a freshly built empty list
    (~0.7 ms); the tables here are slices of one already validated by gammapy.
    """
    events = EventList.__new__(EventList)
    events.table = table
    events.meta = meta
    return events


def _time_order(seconds):
    """Stable time order, and the number of events listed after a later event."""
    running_max = np.maximum.accumulate(seconds) if seconds.size else seconds
    n_unsorted = int(np.count_nonzero(seconds < running_max))
    return np.argsort(seconds, kind="stable"), n_unsorted


def _duplicate_rows(order, seconds, table):
    """Rows (indices into ``order``) repeating an earlier row's TIME, RA, DEC and ENERGY."""
    sorted_seconds = seconds[order]
    same_time = np.flatnonzero(np.diff(sorted_seconds) == 0)
    if same_time.size == 0:
        return np.zeros(0, dtype=np.intp)
    # only events sharing a time can be duplicates: compare all four columns among them
    candidates = np.unique(np.concatenate([same_time, same_time + 1]))
    rows = order[candidates]
    keys = [np.asarray(table[name])[rows] for name in ("ENERGY", "DEC", "RA")]
    keys.append(sorted_seconds[candidates])
    by_content = np.lexsort([candidates] + keys)  # ties keep the earlier (sorted) row first
    content = np.stack([k[by_content] for k in keys])
    repeat = np.all(content[:, 1:] == content[:, :-1], axis=0)
    return np.sort(candidates[by_content[1:][repeat]])


def _selection_mask(table, config, center):
    energy = u.Quantity(table["ENERGY"])
    mask = (energy >= config.selection.energy_min) & (energy < config.selection.energy_max)
    radius = config.selection.roi_radius
    if radius is not None:
        radec = SkyCoord(table["RA"], table["DEC"], unit="deg", frame="icrs")
        mask &= np.asarray(center.separation(radec) < radius)
    return np.asarray(mask)


@dataclass(frozen=True)
class _PreparedEvents:
    """One observation's events: sorted, deduplicated, selected; TIME as seconds."""

    table: object  # astropy Table
    seconds: np.ndarray  # s since ``reference``, ascending
    reference: Time
    meta: object


def _prepare_events(observation, config, center, stats):
    events = observation.events
    table = events.table
    reference = events.time_ref
    seconds = np.asarray((table["TIME"] - reference).to_value("s"), dtype=np.float64)
    order, n_unsorted = _time_order(seconds)
    duplicates = _duplicate_rows(order, seconds, table)
    if n_unsorted:
        log.warning(
            "observation %s: %d event(s) out of time order (sorted)", observation.obs_id, n_unsorted
        )
    if duplicates.size:
        log.warning(
            "observation %s: %d exact duplicate event row(s) (same TIME, RA, DEC, ENERGY) dropped",
            observation.obs_id,
            duplicates.size,
        )
        order = np.delete(order, duplicates)
    selected = _selection_mask(table, config, center)[order]
    order = order[selected]
    stats.n_events_read += len(table)
    stats.n_unsorted += n_unsorted
    stats.n_duplicates += int(duplicates.size)
    stats.n_events_selected += int(order.size)
    stats.n_outside_selection += len(table) - int(duplicates.size) - int(order.size)
    return _PreparedEvents(native_byte_order(table[order]), seconds[order], reference, events.meta)


def native_byte_order(table):
    """``table`` with its numeric columns in native byte order (FITS stores big-endian).

    Converted once per observation, so that every bunch sliced from it hands its
    consumers (the window's binning, the on/off counter) columns they use without a copy
    (a byte-swapped copy of three columns cost ~9 µs per 10⁴-event bunch).
    """
    for name in table.colnames:
        column = table[name]
        dtype = getattr(column, "dtype", None)  # None: a mixin column (Time, SkyCoord)
        if dtype is not None and dtype.kind in "fiu" and not dtype.isnative:
            native = column.data.astype(dtype.newbyteorder("="))  # a masked column: masked
            table.replace_column(name, column.copy(data=native, copy_data=False))
    return table


# -- bunches --------------------------------------------------------------------------------


def _bunch_edges(gti_intervals, range_start, range_stop, duration):
    """Bunch intervals (s) within each GTI interval clipped to ``[range_start, range_stop)``."""
    starts, stops = [], []
    for gti_start, gti_stop in gti_intervals:
        lo, hi = max(gti_start, range_start), min(gti_stop, range_stop)
        if hi - lo <= _MIN_BUNCH_S:
            continue
        n = int(np.ceil((hi - lo) / duration - 1e-9))
        edges = lo + duration * np.arange(n + 1, dtype=np.float64)
        edges[-1] = hi
        if n > 1 and edges[-1] - edges[-2] <= _MIN_BUNCH_S:
            edges = np.delete(edges, -2)
        starts.append(edges[:-1])
        stops.append(edges[1:])
    if not starts:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(starts), np.concatenate(stops)


@dataclass(eq=False)
class BunchCutter:
    """Cuts observations into bunches, one after the other, in time order.

    The analysis time range (trigger, start delay, ``time_start``/``time_stop``) and the
    ROI centre are fixed by the first observation given (``stream.trigger_time`` null:
    its start; target null: its pointing).

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
    stats : InputStats

    Attributes
    ----------
    center : `~astropy.coordinates.SkyCoord` or None
        The ROI centre, once the first observation fixed it.
    trigger, range_start, range_stop : `~astropy.time.Time` or None
        The trigger time and the analysis time range, fixed likewise.
    last_stop : `~astropy.time.Time` or None
        The end of the last bunch cut.
    """

    config: object
    stats: object
    center: object = field(default=None, init=False)
    trigger: object = field(default=None, init=False)
    range_start: object = field(default=None, init=False)
    range_stop: object = field(default=None, init=False)
    last_stop: object = field(default=None, init=False)

    def _fix_range(self, observation):
        stream, selection = self.config.stream, self.config.selection
        trigger = stream.trigger_time
        self.trigger = Time(trigger, scale="tt") if trigger is not None else None
        if self.trigger is None:
            self.trigger = observation.gti.time_start[0].tt
        delay = u.Quantity(stream.start_delay, "s")
        if selection.time_start is not None:
            delay = max(delay, u.Quantity(selection.time_start, "s"))
        self.range_start = self.trigger + delay
        if selection.time_stop is not None:
            self.range_stop = self.trigger + u.Quantity(selection.time_stop, "s")
        self.center = roi_center(self.config, observation)

    def check_order(self, observation, source=None):
        """Raise :class:`InputError` when ``observation`` starts before the last one ended."""
        if self.last_stop is not None and observation.gti.time_start[0] < self.last_stop:
            raise InputError(
                f"{_source_name(observation, source)} starts at "
                f"{observation.gti.time_start[0].isot} TT, before the previous observation "
                f"ended ({self.last_stop.isot} TT): observations must come in time order"
            )

    def bunches(self, observation):
        """Yield the bunches of one (checked) observation."""
        if self.center is None:
            self._fix_range(observation)
        started = _clock.perf_counter()
        prepared = _prepare_events(observation, self.config, self.center, self.stats)
        starts, stops = self._intervals(observation, prepared)
        self.stats.read_seconds += _clock.perf_counter() - started
        self.stats.n_observations += 1
        self.last_stop = observation.gti.time_stop[-1]
        first = np.searchsorted(prepared.seconds, starts, side="left")
        last = np.searchsorted(prepared.seconds, stops, side="left")
        self._count_outside(prepared.seconds, observation, prepared.reference, first, last)
        if starts.size == 0:
            log.warning(
                "observation %s: no time inside the analysis range (it ends before "
                "trigger + delay, or starts after time_stop)",
                observation.obs_id,
            )
            return
        edge_starts = prepared.reference + u.Quantity(starts, u.s)
        edge_stops = prepared.reference + u.Quantity(stops, u.s)
        runid = int(observation.obs_id)
        times = prepared.table["TIME"]
        for i, (i0, i1) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
            events = _event_list_view(prepared.table[i0:i1], prepared.meta)
            self.stats.n_bunches += 1
            self.stats.n_empty_bunches += int(i1 == i0)
            self.stats.n_events_in_bunches += i1 - i0
            yield Bunch(
                events=events,
                observation=observation,
                start=edge_starts[i],
                stop=edge_stops[i],
                runid=runid,
                last_event_time=times[i1 - 1] if i1 > i0 else None,
            )

    def _intervals(self, observation, prepared):
        reference = prepared.reference
        gti = observation.gti
        gti_starts = (gti.time_start - reference).to_value("s")
        gti_stops = (gti.time_stop - reference).to_value("s")
        range_start = (self.range_start - reference).to_value("s")
        range_stop = np.inf
        if self.range_stop is not None:
            range_stop = (self.range_stop - reference).to_value("s")
        duration = u.Quantity(self.config.stream.bunch, "s").value
        intervals = zip(gti_starts, gti_stops, strict=True)
        return _bunch_edges(intervals, range_start, range_stop, duration)

    def _count_outside(self, seconds, observation, reference, first, last):
        """Selected events not in any bunch: outside the GTIs, or outside the time range."""
        gti = observation.gti
        starts = (gti.time_start - reference).to_value("s")
        stops = (gti.time_stop - reference).to_value("s")
        in_gti = np.zeros(seconds.size, dtype=bool)
        for start, stop in zip(starts, stops, strict=True):
            in_gti[np.searchsorted(seconds, start) : np.searchsorted(seconds, stop)] = True
        n_in_bunches = int(np.sum(last - first))
        n_outside_gti = int(seconds.size - np.count_nonzero(in_gti))
        self.stats.n_outside_gti += n_outside_gti
        self.stats.n_outside_time_range += seconds.size - n_outside_gti - n_in_bunches
        if n_outside_gti:
            log.warning(
                "observation %s: %d selected event(s) outside its GTIs (not analysed)",
                observation.obs_id,
                n_outside_gti,
            )


def iter_bunches(config, stats=None):
    """Replay the configured observations as bunches, in time order.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        Uses ``input``, ``selection`` (energy range, ``roi_radius``, ``time_start``,
        ``time_stop``), ``target`` and ``stream`` (``bunch``, ``trigger_time``,
        ``start_delay``).
    stats : InputStats, optional
        Filled as the replay goes (a fresh one when None).

    Yields
    ------
    Bunch
        Contiguous within each GTI interval, in time order; empty ones included.

    Raises
    ------
    InputError
        See :func:`open_observations` (raised before the first bunch); and, at the end,
        when no observation had any time inside the analysis range (no bunch at all).
    """
    stats = stats if stats is not None else InputStats()
    observations = open_observations(config, stats)
    cutter = BunchCutter(config, stats)
    n_bunches = 0
    n_observations = len(observations)
    observations.reverse()
    while observations:  # each observation let go once replayed (memory flat over many runs)
        observation = observations.pop()
        for bunch in cutter.bunches(observation):
            n_bunches += 1
            yield bunch
    if n_bunches == 0:
        raise InputError(
            f"input: no bunch to analyse: the analysis range starting {cutter.range_start.isot} "
            f"TT (trigger + start delay / time_start) does not overlap the GTIs of the "
            f"{n_observations} observation(s)"
        )


# the real-time mode lives in its own module; importable from here, as the spec names it
from .watch import watch_bunches  # noqa: E402  (watch.py imports this module's names)
