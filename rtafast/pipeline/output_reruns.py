"""Rerun bookkeeping of a pipeline output directory: the names rtafast owns there, the run
marker ``run.json`` (read, checked and written), the journal of files created during a
run, the previous run's files (what a rerun replaces or removes), the temporary files of
interrupted writes, and JSON-ready copies of the marker's values (used by
:class:`~rtafast.pipeline.outputs.OutputDir`; files not written by rtafast are never
touched: a file of that kind at a path rtafast needs is an :class:`OutputDirError`).
"""

import contextlib
import json
import math
import os
import re
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.time import Time

from .atomic import TEMPORARY_PREFIX, write_atomic

__all__ = [
    "JOURNAL",
    "MAP_DIR",
    "MARKER",
    "NOTICE_DIR",
    "OutputDirError",
    "SUBDIRS",
    "VOEVENT_DIR",
    "count_by_folder",
    "describe_previous",
    "jsonable",
    "previous_files",
    "read_json_marker",
    "read_marker",
    "refuse_foreign",
    "remove_leftover_temporaries",
    "remove_stale",
    "write_marker",
]

MARKER = "run.json"
JOURNAL = ".rtafast-journal"
VOEVENT_DIR = "voevents"
NOTICE_DIR = "notices"
MAP_DIR = "maps"
#: rtafast's folders in the directory.
SUBDIRS = (VOEVENT_DIR, NOTICE_DIR, MAP_DIR)
_PRODUCER = "rtafast"
#: Names rtafast may own: a file at the top level or in one of its folders (so that a
#: doctored marker cannot make a rerun remove anything elsewhere).
_OWN_NAME_PATTERN = re.compile(
    rf"^(?:(?:{'|'.join(SUBDIRS)})/)?[A-Za-z0-9_+-][A-Za-z0-9._+-]*$"
)
_TEMPORARY_PATTERN = re.compile(rf"^{re.escape(TEMPORARY_PREFIX)}[0-9a-f]{{12}}-.+$")


class OutputDirError(ValueError):
    """The output directory cannot be used as asked (names the path and the problem)."""


# -- the previous run ----------------------------------------------------------------------
def read_json_marker(marker_path, producer, kind, foreign):
    """The JSON marker file ``marker_path`` (a dict), or None when there is no such file.

    Parameters
    ----------
    marker_path : `~pathlib.Path`
        The marker file (``run.json``, ``batch.json``).
    producer : str
        Its ``"producer"`` entry when rtafast wrote it.
    kind : str
        What it marks, for the errors (``"run"``, ``"batch"``).
    foreign : str
        Appended to ``"<marker_path>: not an rtafast <kind> marker"`` when the file is
        JSON but not written by ``producer``.

    Returns
    -------
    dict or None

    Raises
    ------
    OutputDirError
        The file is unreadable, not JSON or not written by ``producer``.
    """
    if not marker_path.is_file():
        return None
    not_ours = f"{marker_path}: not an rtafast {kind} marker"
    try:
        marker = json.loads(marker_path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise OutputDirError(f"{not_ours} ({error})") from error
    if not isinstance(marker, dict) or marker.get("producer") != producer:
        raise OutputDirError(not_ours + foreign)
    return marker


def read_marker(path):
    """The previous run's marker in directory ``path`` (a dict), or None when there is
    none; a ``run.json`` that is not rtafast's raises :class:`OutputDirError`."""
    return read_json_marker(
        Path(path) / MARKER,
        _PRODUCER,
        "run",
        " (written by another program: choose another output directory)",
    )


def previous_files(path, marker):
    """Files of previous runs in ``path`` that still exist (marker list and journal)."""
    if marker is None:
        return set()
    path = Path(path)
    names = {str(name) for name in marker.get("files", [])}
    journal = path / JOURNAL
    if journal.is_file():
        names |= {line.strip() for line in journal.read_text("utf-8").splitlines()}
    names.add(MARKER)
    return {name for name in names
            if _OWN_NAME_PATTERN.match(name) and (path / name).is_file()}


def remove_leftover_temporaries(path):
    """Remove ``.tmp-<hex>-<name>`` files that interrupted atomic writes left in ``path``
    and its folders; returns how many."""
    removed = 0
    for _, entry in _own_folder_entries(path):
        if _TEMPORARY_PATTERN.match(entry.name) and entry.is_file():
            entry.unlink()
            removed += 1
    return removed


def _own_folder_entries(path):
    """``(folder, entry)`` for each entry at the top level of ``path`` (folder ``""``) and
    in those of rtafast's folders that exist."""
    for folder in ("", *SUBDIRS):
        directory = Path(path) / folder
        if directory.is_dir():
            for entry in directory.iterdir():
                yield folder, entry


def refuse_foreign(path, names, previous):
    """Raise :class:`OutputDirError` when one of ``names`` exists in ``path`` and is not
    one of the ``previous`` run's files."""
    foreign = [name for name in names if (Path(path) / name).exists() and name not in previous]
    if foreign:
        raise OutputDirError(
            f"{path}: {', '.join(foreign)} exist(s) and were not written by rtafast "
            "(no rtafast run.json lists them): left untouched; remove them or choose "
            "another output directory"
        )


def describe_previous(path, existed, marker, fixed, previous):
    """For the user: a new directory, or on a rerun which files will be replaced
    (``fixed`` ones of the ``previous`` run) and which are removed at the end."""
    if not existed:
        return [f"{path}: new output directory"]
    foreign = _foreign_count(path, previous)
    untouched = f"{foreign} file(s) not written by rtafast are left untouched"
    if marker is None:
        return [f"{path}: existing directory without a previous rtafast run"
                + (f"; {untouched}" if foreign else " (empty)")]
    lines = [
        f"{path}: holds a previous rtafast run ({marker.get('status', '?')}, "
        f"started {marker.get('started', '?')})"
    ]
    replaced = [name for name in fixed if name in previous]
    if replaced:
        lines.append(f"  replaced by this run: {', '.join(replaced)}")
    stale = previous - set(fixed)
    if stale:
        lines.append(f"  removed at the end of this run unless written again: "
                     f"{count_by_folder(stale)}")
    if foreign:
        lines.append(f"  {untouched}")
    return lines


def count_by_folder(names):
    """``3 file(s) in voevents/, 3 in notices/, latency.png`` style summary."""
    parts = []
    top = sorted(name for name in names if "/" not in name)
    if top:
        parts.append(", ".join(top))
    for folder in SUBDIRS:
        count = sum(1 for name in names if name.startswith(f"{folder}/"))
        if count:
            parts.append(f"{count} file(s) in {folder}/")
    return ", ".join(parts)


def _foreign_count(path, previous):
    """Files at the top level and in rtafast's folders that rtafast did not write."""
    count = 0
    for folder, entry in _own_folder_entries(path):
        name = f"{folder}/{entry.name}" if folder else entry.name
        if folder == "" and entry.name in (*SUBDIRS, JOURNAL):
            continue
        if name not in previous:
            count += 1
    return count


# -- the end of a run ----------------------------------------------------------------------
def remove_stale(path, previous, written, extra_files, started_wall):
    """Remove the previous run's files this run did not write (including extra files
    claimed but not rewritten: older than this run's start, ``started_wall`` in
    `time.time`), and rtafast's folders left empty; returns how many files."""
    path = Path(path)
    stale = set(previous - written)
    stale |= {name for name in extra_files if name in previous
              and (path / name).is_file()
              and (path / name).stat().st_mtime < started_wall}
    stale = sorted(stale)
    for name in stale:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path / name)
    for folder in SUBDIRS:
        with contextlib.suppress(OSError):
            (path / folder).rmdir()  # only when empty
    return len(stale)


def write_marker(path, status, *, started, formats, maps, files, fsync=False, **more):
    """Write ``run.json`` into ``path`` (atomically): producer, version, ``status``
    (``running`` or ``finished``), start and end times, alert formats, maps, the run's
    ``files`` and the ``more`` entries (JSON-ready)."""
    from .. import __version__

    marker = {
        "producer": _PRODUCER,
        "rtafast_version": __version__,
        "status": status,
        "started": jsonable(started, "started"),
        "finished": jsonable(Time.now(), "finished") if status == "finished" else None,
        "formats": list(formats),
        "maps": maps,
        "files": files,
        **more,
    }
    write_atomic(Path(path) / MARKER, json.dumps(marker, indent=2, allow_nan=False) + "\n",
                 fsync=fsync)


def jsonable(value, where):
    """A JSON-ready copy of ``value`` (NaN as None, Time as ISO UTC, Quantity as
    "value unit" text); anything else raises ValueError naming ``where``."""
    if isinstance(value, dict):
        return {str(key): jsonable(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, Time):
        from .alert_record import iso_utc

        return iso_utc(value)
    if isinstance(value, u.Quantity):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    raise ValueError(f"{where}: cannot write a {type(value).__name__} to JSON")
