"""Reading and checking the pipeline's observations (part of :mod:`rtafast.pipeline.inputs`).

:func:`read_observation` reads one DL3 event file with gammapy, :func:`check_observation`
checks that an observation can be analysed, and :func:`open_observations` reads and checks
the replay inputs of a configuration (DL3 event files, or a DataStore and observation ids),
sorted by start time. Any problem is one :class:`~rtafast.pipeline.inputs.InputError` line
naming the file, HDU or column: when gammapy fails (or reads a damaged file partly), the
file's bytes are examined to say which. All are re-exported by
:mod:`rtafast.pipeline.inputs`, their public home.
"""

import gzip
import io
import itertools
import logging
import time as _clock
import warnings
from pathlib import Path

import astropy.units as u
from astropy.io import fits
from gammapy.data import DataStore, Observation

from .geometry import map_center
from .input_types import REQUIRED_COLUMNS, REQUIRED_IRFS, InputError, InputStats

__all__ = [
    "check_observation",
    "open_datastore",
    "open_observations",
    "read_observation",
    "roi_center",
]

#: The input's one logger, named after its public module (as before the split).
log = logging.getLogger("rtafast.pipeline.inputs")

#: What :func:`_in_memory` passes on from an observation, besides its location and IRFs.
_OBSERVATION_PARTS = ("obs_id", "meta", "gti", "events", "pointing")


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
    parts = {name: getattr(observation, name) for name in _OBSERVATION_PARTS}
    return Observation(**parts, location=observation.observatory_earth_location, **irfs)


def open_datastore(path):
    """``(directory, store)``: the configuration's ``input.datastore`` opened.

    Raises
    ------
    InputError
        Not a directory, or its hdu-index/obs-index cannot be read (named).
    """
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise InputError(f"input.datastore: {directory}: not a directory")
    try:
        return directory, DataStore.from_dir(directory)
    except Exception as error:
        raise InputError(
            f"input.datastore: {directory}: cannot read its hdu-index/obs-index "
            f"({type(error).__name__}: {error})"
        ) from error


def _datastore_observations(config, stats):
    directory, store = open_datastore(config.input.datastore)
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
