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
"""

import gzip
import io
import itertools
import logging
import time as _clock
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from gammapy.data import DataStore, EventList, Observation

from .geometry import map_center

__all__ = [
    "Bunch",
    "BunchCutter",
    "InputError",
    "InputStats",
    "REQUIRED_COLUMNS",
    "REQUIRED_IRFS",
    "check_observation",
    "iter_bunches",
    "open_observations",
    "read_observation",
    "roi_center",
    "watch_bunches",
]

log = logging.getLogger(__name__)

#: Columns every EVENTS HDU must have.
REQUIRED_COLUMNS = ("TIME", "RA", "DEC", "ENERGY")
#: IRF components every observation must have (gammapy names), with their HDU names.
REQUIRED_IRFS = {"aeff": "AEFF", "edisp": "EDISP", "psf": "PSF", "bkg": "BKG"}
#: Bunches shorter than this (s) left at the end of a GTI interval by rounding are dropped.
_MIN_BUNCH_S = 1e-6


class InputError(ValueError):
    """An input file or observation that cannot be analysed (one line naming the problem)."""


@dataclass(frozen=True)
class Bunch:
    """The selected events of one time interval of one observation.

    Attributes
    ----------
    events : `~gammapy.data.EventList`
        Events in ``[start, stop)``, sorted by time, energy- and ROI-selected (may be empty).
    observation : `~gammapy.data.Observation`
        The observation they belong to (IRFs, pointing, dead time), in memory.
    start, stop : `~astropy.time.Time`
        The bunch's interval (TT).
    runid : int
        Observation id.
    last_event_time : `~astropy.time.Time` or None
        Time of the bunch's last event (None when empty): the start of its time-to-alert.
    """

    events: EventList
    observation: Observation
    start: Time
    stop: Time
    runid: int
    last_event_time: Time | None

    @property
    def duration(self):
        """``stop - start`` as a Quantity (s)."""
        return (self.stop - self.start).to(u.s)


@dataclass
class InputStats:
    """What the input did with every file and event (counted, reported, never silent).

    Event accounting, summed over observations::

        n_events_read = n_duplicates + n_outside_selection + n_events_selected
        n_events_selected = n_events_in_bunches + n_outside_gti + n_outside_time_range

    Attributes
    ----------
    n_files : int
        Files (or DataStore runs) read successfully.
    n_observations : int
        Observations cut into bunches.
    n_skipped : int
        Files or runs skipped (watch mode: unreadable files; a DataStore without
        ``obs_ids``: runs whose files are absent), each reason in ``skipped``.
    n_events_read : int
        Rows of the EVENTS HDUs.
    n_unsorted : int
        Events listed after a later event (fixed by sorting).
    n_duplicates : int
        Exact duplicate rows dropped.
    n_outside_selection : int
        Events outside the energy range or the ROI.
    n_events_selected : int
        Events passing the energy and ROI selection.
    n_outside_gti : int
        Selected events outside every GTI interval of their observation.
    n_outside_time_range : int
        Selected events in a GTI but outside the analysis time range (before
        trigger + start delay, ``time_start``, or after ``time_stop``).
    n_events_in_bunches : int
        Events handed out in bunches.
    n_bunches, n_empty_bunches : int
        Bunches yielded, and those without events (still yielded: live time grows).
    read_seconds : float
        Wall time spent reading and preparing observations, s.
    skipped : list of str
        One line per skipped file or run.
    """

    n_files: int = 0
    n_observations: int = 0
    n_skipped: int = 0
    n_events_read: int = 0
    n_unsorted: int = 0
    n_duplicates: int = 0
    n_outside_selection: int = 0
    n_events_selected: int = 0
    n_outside_gti: int = 0
    n_outside_time_range: int = 0
    n_events_in_bunches: int = 0
    n_bunches: int = 0
    n_empty_bunches: int = 0
    read_seconds: float = 0.0
    skipped: list = field(default_factory=list)

    def skip(self, reason):
        """Count one skipped file or run and log its reason (one warning line)."""
        self.n_skipped += 1
        self.skipped.append(str(reason))
        log.warning("skipped: %s", reason)

    def as_dict(self):
        """The counts as a plain dict (for JSON outputs)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self):
        """One line: files, observations, events and bunches."""
        return (
            f"input: {self.n_files} file(s), {self.n_observations} observation(s), "
            f"{self.n_skipped} skipped; events: {self.n_events_read} read, "
            f"{self.n_duplicates} duplicate(s) dropped, {self.n_unsorted} out of order, "
            f"{self.n_events_selected} selected, {self.n_events_in_bunches} in bunches, "
            f"{self.n_outside_gti} outside GTIs, {self.n_outside_time_range} outside the "
            f"time range; {self.n_bunches} bunch(es), {self.n_empty_bunches} empty; "
            f"read {self.read_seconds:.2f} s"
        )


# -- reading and checking ------------------------------------------------------------------


def _file_bytes(path):
    """The file's FITS bytes (decompressed for ``.gz``: a truncated stream raises EOFError)."""
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _fits_problem(path, data):
    """Truncation or corruption of FITS bytes that astropy reads without an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with fits.open(io.BytesIO(data), memmap=False) as hdulist:
            names = [hdu.name for hdu in hdulist]
            for hdu in hdulist:
                _ = hdu.data  # truncated data raises here
            infos = [hdulist.fileinfo(i) for i in range(len(hdulist))]
            end = max(info["datLoc"] + info["datSpan"] for info in infos)
            columns = hdulist["EVENTS"].columns.names if "EVENTS" in names else None
    problem = None
    if caught or end != len(data):
        reason = "".join(f"; {str(w.message).splitlines()[0]}" for w in caught[:1])
        verb = "end at" if end <= len(data) else "need"
        size = f"{len(data)} bytes, its HDUs {verb} {end}"
        problem = f"truncated or corrupted FITS file ({size}{reason})"
    return problem, names, columns


def _diagnose_fits(path, events=True):
    """The first problem of a file that gammapy failed to read (or read partly), as one line.

    Parameters
    ----------
    path : `~pathlib.Path`
    events : bool
        Also require the EVENTS HDU (with ``REQUIRED_COLUMNS``) and the GTI HDU.

    Returns
    -------
    str or None
        ``"<path>: <problem>"``, or None when no problem is found.
    """
    path = Path(path)
    if not path.is_file():
        return f"{path}: file not found"
    try:
        problem, names, columns = _fits_problem(path, _file_bytes(path))
    except Exception as error:  # astropy and gzip raise OSError, EOFError, ValueError...
        return f"{path}: unreadable or truncated FITS file ({type(error).__name__}: {error})"
    if problem is not None:
        return f"{path}: {problem}"
    if not events:
        return None
    if columns is None:
        return f"{path}: no EVENTS HDU (HDUs: {', '.join(names)})"
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        has = ", ".join(columns)
        return f"{path}: HDU EVENTS lacks column(s) {', '.join(missing)} (has: {has})"
    if "GTI" not in names:
        return f"{path}: no GTI HDU (HDUs: {', '.join(names)})"
    return None


def _diagnose_files(path, irf_path):
    problem = _diagnose_fits(path)
    if problem is None and irf_path is not None:
        problem = _diagnose_fits(irf_path, events=False)
    return problem


def read_observation(path, irf_file=None):
    """Read one DL3 event file as an in-memory observation (gammapy's ``Observation.read``).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        Event file: EVENTS and GTI HDUs, and the IRF HDUs unless ``irf_file`` is given.
    irf_file : str or `~pathlib.Path`, optional
        A file with the IRF HDUs (e.g. a CALDB file) replacing the event file's.

    Returns
    -------
    `~gammapy.data.Observation`

    Raises
    ------
    InputError
        Missing file, unreadable, truncated or corrupted FITS, no EVENTS or GTI HDU,
        missing columns (the IRFs are checked by :func:`check_observation`; an IRF
        missing from a truncated file is reported as the truncation).
    """
    path = Path(path).expanduser()
    irf_path = None if irf_file is None else Path(irf_file).expanduser()
    for name, file in (("event file", path), ("IRF file", irf_path)):
        if file is not None and not file.is_file():
            raise InputError(f"{file}: {name} not found")
    try:
        observation = Observation.read(path, irf_file=irf_path)
    except Exception as error:
        problem = _diagnose_files(path, irf_path) or (
            f"{path}: cannot be read as an observation ({type(error).__name__}: {error})"
        )
        raise InputError(problem) from error
    _raise_if_damaged(observation, path, irf_path)
    return observation


def _raise_if_damaged(observation, path, irf_path):
    """An IRF missing from a truncated file: report the truncation, not a missing IRF.

    astropy stops quietly at an HDU cut short; the file is only examined when something
    is missing, so an intact file costs nothing here.
    """
    if any(getattr(observation, name) is None for name in REQUIRED_IRFS):
        problem = _diagnose_files(path, irf_path)
        if problem is not None:
            raise InputError(problem)


def _source_name(observation, source):
    return source if source is not None else f"observation {observation.obs_id}"


def _check_energy_overlap(axis, what, source, energy_range):
    lo, hi = axis.edges[0], axis.edges[-1]
    emin, emax = energy_range
    span = f"{lo.to_value('TeV'):.3g}\u2013{hi.to_value('TeV'):.3g} TeV"
    wanted = f"{emin.to_value('TeV'):.3g}\u2013{emax.to_value('TeV'):.3g} TeV"
    if emax <= lo or emin >= hi:
        raise InputError(
            f"{source}: the IRF's {what} covers {span}, which does not overlap the "
            f"selection's energy range {wanted}"
        )
    if emin < lo or emax > hi:
        log.warning("%s: the IRF's %s covers %s, only part of %s", source, what, span, wanted)


def check_observation(observation, energy_range=None, center=None, source=None):
    """Check that an observation can be analysed; raise one line naming the problem.

    Parameters
    ----------
    observation : `~gammapy.data.Observation`
    energy_range : (Quantity, Quantity), optional
        The selection's energy range: the IRF's must overlap it.
    center : `~astropy.coordinates.SkyCoord`, optional
        The map centre: it must lie within the IRF's offset range from the pointing.
    source : str, optional
        How to name the observation in messages (default: ``observation <id>``).

    Raises
    ------
    InputError
        No events or GTI, an IRF component missing, IRF energies not overlapping the
        selection, the map centre outside the IRF's offsets.
    """
    source = _source_name(observation, source)
    if observation.events is None:
        raise InputError(f"{source}: no EVENTS HDU")
    gti = observation.gti
    if gti is None or len(gti.table) == 0:
        raise InputError(f"{source}: no GTI (the GTI HDU is missing or empty)")
    missing = [hdu for name, hdu in REQUIRED_IRFS.items() if getattr(observation, name) is None]
    if missing:
        raise InputError(f"{source}: IRF HDU(s) missing: {', '.join(missing)}")
    if energy_range is not None:
        energy_range = tuple(u.Quantity(e, "TeV") for e in energy_range)
        _check_energy_overlap(
            observation.aeff.axes["energy_true"], "effective area", source, energy_range
        )
        _check_energy_overlap(observation.bkg.axes["energy"], "background", source, energy_range)
    if center is not None:
        offset = center.separation(observation.get_pointing_icrs(observation.tmid))
        max_offset = observation.aeff.axes["offset"].edges[-1]
        if offset > max_offset:
            raise InputError(
                f"{source}: the map centre is {offset.to_value('deg'):.2f} deg from the "
                f"pointing, beyond the IRF's offset range (up to "
                f"{max_offset.to_value('deg'):.2f} deg)"
            )


def roi_center(config, observation):
    """The map centre (:func:`~rtafast.pipeline.geometry.map_center`) for an observation.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
    observation : `~gammapy.data.Observation`
        Its pointing is the centre when ``target.ra``/``target.dec`` are null.

    Returns
    -------
    `~astropy.coordinates.SkyCoord`
    """
    return map_center(config, observation.get_pointing_icrs(observation.tmid))


def _selection_energy_range(config):
    return config.selection.energy_min, config.selection.energy_max


def _in_memory(observation, irfs):
    """A DataStore observation with everything read once.

    gammapy's DataStore observations re-read their HDUs on every access; ``copy(in_memory=
    True)`` would also deep-copy them (~40 % slower). ``irfs`` replace the run's IRFs.
    """
    if not irfs:
        irfs = {name: getattr(observation, name) for name in REQUIRED_IRFS}
    return Observation(
        obs_id=observation.obs_id,
        meta=observation.meta,
        gti=observation.gti,
        events=observation.events,
        pointing=observation.pointing,
        location=observation.observatory_earth_location,
        **irfs,
    )


def _datastore_observations(config, stats):
    directory = Path(config.input.datastore).expanduser()
    if not directory.is_dir():
        raise InputError(f"input.datastore: {directory}: not a directory")
    try:
        store = DataStore.from_dir(directory)
    except Exception as error:
        raise InputError(
            f"input.datastore: {directory}: cannot read its hdu-index/obs-index "
            f"({type(error).__name__}: {error})"
        ) from error
    known = set(int(i) for i in store.obs_table["OBS_ID"])
    explicit = bool(config.input.obs_ids)
    obs_ids = [int(i) for i in config.input.obs_ids] if explicit else sorted(known)
    irfs = {}
    if config.input.irf_file is not None:
        irf_path = Path(config.input.irf_file).expanduser()
        if not irf_path.is_file():
            raise InputError(f"{irf_path}: IRF file not found")
        from gammapy.irf.io import load_irf_dict_from_file

        irfs = load_irf_dict_from_file(irf_path)
    observations = []
    for obs_id in obs_ids:
        if obs_id not in known:
            raise InputError(f"input.obs_ids: observation {obs_id} is not in {directory}")
        missing = _missing_files(store, obs_id, need_irfs=not irfs)
        if missing:
            message = f"observation {obs_id}: file(s) not found: {', '.join(missing)}"
            if explicit:
                raise InputError(message)
            stats.skip(message)
            continue
        path = _events_path(store, obs_id)
        source = f"observation {obs_id} ({path})"
        try:
            observation = _in_memory(store.obs(obs_id), irfs)
        except Exception as error:
            problem = _diagnose_fits(path)
            raise InputError(
                problem or f"{source}: cannot be read ({type(error).__name__}: {error})"
            ) from error
        _raise_if_damaged(observation, path, None)
        observations.append((observation, source))
    return observations


def _events_path(store, obs_id):
    return store.hdu_table.hdu_location(obs_id=obs_id, hdu_type="events").path()


def _missing_files(store, obs_id, need_irfs):
    kinds = ["events", "gti"] + (list(REQUIRED_IRFS) if need_irfs else [])
    missing = []
    for kind in kinds:
        location = store.hdu_table.hdu_location(obs_id=obs_id, hdu_type=kind, warn_missing=False)
        if location is None:
            missing.append(f"no {kind} HDU in the index")
        elif not location.path().is_file() and str(location.path()) not in missing:
            missing.append(str(location.path()))
    return missing


def _check_no_overlap(checked):
    for (before, source_before), (after, source_after) in itertools.pairwise(checked):
        if after.gti.time_start[0] < before.gti.time_stop[-1]:
            raise InputError(
                f"{source_after} starts at {after.gti.time_start[0].isot} TT, before "
                f"{source_before} ends ({before.gti.time_stop[-1].isot} TT): observations "
                "must not overlap in time"
            )


def open_observations(config, stats=None):
    """Read and check the replay inputs of a configuration, sorted by start time.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        Uses ``input`` (``events`` and ``irf_file``, or ``datastore`` and ``obs_ids``),
        ``selection`` (energy range) and ``target`` (map centre, for the IRF check).
    stats : InputStats, optional
        Counts files read and runs skipped.

    Returns
    -------
    list of `~gammapy.data.Observation`
        In memory (events, GTI and IRFs read once), by start time.

    Raises
    ------
    InputError
        No replay input configured; a missing, unreadable or truncated file; no EVENTS
        or GTI HDU; missing columns; IRFs missing or not covering the selection;
        overlapping observations. With ``datastore``, an observation id asked for whose
        files are missing (without ``obs_ids``, runs whose files are absent are skipped,
        counted in ``stats``).
    """
    stats = stats if stats is not None else InputStats()
    started = _clock.perf_counter()
    source = config.input
    if source.events:
        observations = [
            (read_observation(path, source.irf_file), str(Path(path).expanduser()))
            for path in source.events
        ]
    elif source.datastore is not None:
        observations = _datastore_observations(config, stats)
    else:
        raise InputError(
            "input: no replay input (input.events or input.datastore); a watched "
            "directory (input.watch) is read by watch_bunches"
        )
    if not observations:
        raise InputError("input: no observation to analyse")
    energy_range = _selection_energy_range(config)
    for observation, name in observations:
        check_observation(observation, energy_range, source=name)
    observations.sort(key=lambda pair: pair[0].gti.time_start[0])
    _check_no_overlap(observations)
    center = roi_center(config, observations[0][0])
    for observation, name in observations:
        check_observation(observation, center=center, source=name)
    stats.n_files += len(observations)
    stats.read_seconds += _clock.perf_counter() - started
    return [observation for observation, _ in observations]


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
    return _PreparedEvents(table[order], seconds[order], reference, events.meta)


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


class BunchCutter:
    """Cuts observations into bunches, one after the other, in time order.

    The analysis time range (trigger, start delay, ``time_start``/``time_stop``) and the
    ROI centre are fixed by the first observation given (``stream.trigger_time`` null:
    its start; target null: its pointing).

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
    stats : InputStats
    """

    def __init__(self, config, stats):
        self.config = config
        self.stats = stats
        self.center = None
        self.trigger = None
        self.range_start = None
        self.range_stop = None
        self.last_stop = None

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
    for observation in observations:
        for bunch in cutter.bunches(observation):
            n_bunches += 1
            yield bunch
    if n_bunches == 0:
        raise InputError(
            f"input: no bunch to analyse: the analysis range starting {cutter.range_start.isot} "
            f"TT (trigger + start delay / time_start) does not overlap the GTIs of the "
            f"{len(observations)} observation(s)"
        )


# the real-time mode lives in its own module; importable from here, as the spec names it
from .watch import watch_bunches  # noqa: E402  (watch.py imports this module's names)
