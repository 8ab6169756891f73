"""The output directory of a pipeline run: results table, alerts, notices, maps, marker.

:class:`OutputDir` owns ``OUTDIR``:

=========================  ===========================================================
``results.ecsv``           one row per window and source (:data:`RESULT_COLUMNS`, units
                           in the column metadata), rewritten at most every
                           ``flush_interval`` s and at the end
``alerts.jsonl``           one JSON record per alert (:meth:`Alert.to_dict`)
``voevents/<id>.xml``      one VOEvent 2.0 packet per alert (:mod:`.voevent`)
``notices/<id>.json``      one GCN-style JSON notice per alert (:mod:`.gcn`)
``maps/<name>.fits``       significance maps, on request
``run.json``               the run marker: status, the files this run wrote, summary
``latency.*``              written by :mod:`.latency` (listed in ``run.json``)
=========================  ===========================================================

Every file is written atomically (:mod:`.atomic`): a reader sees the previous version
or the new one, never half of one. Alerts are written as soon as they are emitted.

Reruns: ``run.json`` (written at the start with status ``running``, at the end with
``finished``) lists the files rtafast wrote there; files created during a run are
also appended to a hidden journal (``.rtafast-journal``) as they appear, so that an
interrupted run still knows them. On a rerun into the same directory,
:meth:`OutputDir.prepare` says which files will be replaced and that the previous
run's VOEvents, notices and maps not written again are removed at the end of the new
run. Files not written by rtafast are never touched: a file of that kind at a path
rtafast needs is an error (:class:`OutputDirError`).
"""

import contextlib
import io
import json
import math
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import MaskedColumn, Table
from astropy.time import Time

from .atomic import TEMPORARY_PREFIX, atomic_path, write_atomic
from .gcn import gcn_notice
from .voevent import voevent_xml

__all__ = [
    "ALERT_FORMATS",
    "LATENCY_FILES",
    "OutputDir",
    "OutputDirError",
    "RESULT_COLUMNS",
    "RESULT_COLUMN_SPECS",
    "ResultColumn",
]

#: Alert formats: ``jsonl`` (``alerts.jsonl``), ``voevent`` (``voevents/``), ``gcn``
#: (``notices/``).
ALERT_FORMATS = ("jsonl", "voevent", "gcn")
#: Files the latency profile writes into the directory (:mod:`.latency`).
LATENCY_FILES = ("latency.json", "latency.csv", "latency.png")

RESULTS = "results.ecsv"
ALERTS = "alerts.jsonl"
MARKER = "run.json"
JOURNAL = ".rtafast-journal"
VOEVENT_DIR = "voevents"
NOTICE_DIR = "notices"
MAP_DIR = "maps"
_SUBDIRS = (VOEVENT_DIR, NOTICE_DIR, MAP_DIR)
_PRODUCER = "rtafast"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
#: Names rtafast may own: a file at the top level or in one of its folders (so that a
#: doctored marker cannot make a rerun remove anything elsewhere).
_OWN_NAME_PATTERN = re.compile(
    rf"^(?:(?:{'|'.join(_SUBDIRS)})/)?[A-Za-z0-9_+-][A-Za-z0-9._+-]*$"
)
_TEMPORARY_PATTERN = re.compile(rf"^{re.escape(TEMPORARY_PREFIX)}[0-9a-f]{{12}}-.+$")


class OutputDirError(ValueError):
    """The output directory cannot be used as asked (names the path and the problem)."""


@dataclass(frozen=True)
class ResultColumn:
    """One column of ``results.ecsv``: name, kind (``int``, ``float``, ``str``),
    unit (None: dimensionless or not a quantity) and description."""

    name: str
    kind: str
    unit: str | None
    description: str


#: The columns of ``results.ecsv``, in order: RTA-SCI's result row (runid, texp,
#: sqrt_ts, flux, flux_err, ra, dec, oncounts, offcounts, alpha, excess, sigma, offset,
#: delay) with the window, candidate, error radii and backend, then rtafast's extras.
RESULT_COLUMN_SPECS = (
    ResultColumn("runid", "int", None, "observation id of the window's last bunch"),
    ResultColumn("window", "int", None, "window index in its stream (0, 1, ...)"),
    ResultColumn("window_start", "float", "s", "window start after the trigger"),
    ResultColumn("window_stop", "float", "s", "window stop after the trigger"),
    ResultColumn("texp", "float", "s", "live time of the window"),
    ResultColumn("candidate", "int", None,
                 "0: the configured target position; n >= 1: the n-th blind candidate"),
    ResultColumn("sqrt_ts", "float", None, "significance of the flux fit, sigma"),
    ResultColumn("ts", "float", None, "test statistic of the flux fit"),
    ResultColumn("flux", "float", "cm-2 s-1", "integral photon flux in the energy range"),
    ResultColumn("flux_err", "float", "cm-2 s-1", "1-sigma error of flux"),
    ResultColumn("flux_ul", "float", "cm-2 s-1", "95 % upper limit on flux"),
    ResultColumn("ra", "float", "deg", "right ascension (ICRS)"),
    ResultColumn("dec", "float", "deg", "declination (ICRS)"),
    ResultColumn("r68", "float", "deg", "68 % containment error radius (0: not localised)"),
    ResultColumn("r95", "float", "deg", "95 % containment error radius (0: not localised)"),
    ResultColumn("oncounts", "int", None, "counts in the on region"),
    ResultColumn("offcounts", "int", None, "counts in the off regions"),
    ResultColumn("alpha", "float", None, "on/off exposure ratio"),
    ResultColumn("excess", "float", None, "oncounts - alpha offcounts"),
    ResultColumn("sigma", "float", None, "Li & Ma significance of the on/off counts"),
    ResultColumn("offset", "float", "deg", "distance to the pointing position"),
    ResultColumn("delay", "float", "s", "window stop after the trigger (data age)"),
    ResultColumn("backend", "str", None, "array backend"),
    ResultColumn("window_kind", "str", None, "cumulative or sliding"),
    ResultColumn("detection_sqrt_ts", "float", None, "peak significance in the detection map"),
    ResultColumn("alert_id", "str", None, "the alert this row raised ('' for none)"),
)
#: Column names of ``results.ecsv``, in order.
RESULT_COLUMNS = [column.name for column in RESULT_COLUMN_SPECS]
_REQUIRED_RESULT_KEYS = ("runid", "window", "window_start", "window_stop", "texp", "backend")
_COLUMN_INDEX = {column.name: index for index, column in enumerate(RESULT_COLUMN_SPECS)}
_MISSING = {"int": None, "float": math.nan, "str": ""}


def _cell(spec, value):
    """One row value for a column: Quantities in the column's unit, numpy scalars as
    Python numbers, None as missing."""
    if value is None:
        return _MISSING[spec.kind]
    if isinstance(value, u.Quantity):
        value = value.to_value(spec.unit or u.dimensionless_unscaled)
    if spec.kind == "float":
        return float(value)
    if spec.kind == "int":
        return int(value)
    return str(value)


def _column(spec, values):
    """An astropy column from one column's row values (masked ints where missing)."""
    if spec.kind == "int":
        mask = np.array([value is None for value in values], dtype=bool)
        data = np.array([0 if value is None else value for value in values], dtype=np.int64)
        column = MaskedColumn(data, mask=mask, name=spec.name) if mask.any() else data
    elif spec.kind == "float":
        column = np.array(values, dtype=np.float64)
    else:
        column = np.array(values, dtype=str) if values else np.array([], dtype=str)
    return column


def _ecsv_parts(table):
    """(header, data lines) of a table written by astropy's ECSV writer: the header is
    the ``#`` lines and the column-name line."""
    buffer = io.StringIO()
    table.write(buffer, format="ascii.ecsv")
    text = buffer.getvalue()
    position = 0
    while text.startswith("#", position):
        position = text.index("\n", position) + 1
    position = text.index("\n", position) + 1
    return text[:position], text[position:]


def _ecsv_lines(table):
    """The ECSV data lines of a table (no header): what astropy's ECSV writer puts after
    its header, written by the basic writer with ECSV's delimiter (the tests check the
    two agree)."""
    buffer = io.StringIO()
    table.write(buffer, format="ascii.no_header", delimiter=" ")
    return buffer.getvalue()


def _jsonable(value, where):
    """A JSON-ready copy of ``value`` (NaN as None, Time as ISO UTC, Quantity as
    "value unit" text); anything else raises ValueError naming ``where``."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable(item, f"{where}[{index}]") for index, item in enumerate(value)]
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, Time):
        from .alerts import iso_utc

        return iso_utc(value)
    if isinstance(value, u.Quantity):
        return str(value)
    if isinstance(value, Path):
        return str(value)
    raise ValueError(f"{where}: cannot write a {type(value).__name__} to JSON")


class OutputDir:
    """The output directory of one run (see the module docstring).

    Parameters
    ----------
    path : str or `~pathlib.Path`
        The directory (created by :meth:`prepare`).
    formats : sequence of {"jsonl", "voevent", "gcn"}
        Alert formats to write.
    maps : bool
        Whether :meth:`write_map` is expected (maps were requested).
    flush_interval : float
        Least time between two rewrites of ``results.ecsv``, s; the rewrite is also
        spaced by at least 20 times its own last duration, so it never takes more than
        ~5 % of a long run.
    extra_files : sequence of str
        Names other writers put into the directory (default: the latency profile's);
        checked like rtafast's own and listed in ``run.json``.
    voevent_options, gcn_options : dict, optional
        Keyword arguments of :func:`~rtafast.pipeline.voevent.voevent_xml` (``stream``,
        ``role``, ...) and :func:`~rtafast.pipeline.gcn.gcn_notice` (``mission``,
        ``instrument``).
    meta : dict, optional
        Written into the header of ``results.ecsv`` (e.g. target, trigger time).
    fsync : bool
        Flush every file to the disk before its rename (durable against a crash of the
        machine, not only of the process; ~1-10 ms more per file on a busy disk, which
        goes straight into the time to alert: off by default).

    Attributes
    ----------
    path : `~pathlib.Path`
    meta : dict
    """

    def __init__(self, path, formats=ALERT_FORMATS, maps=False, *, flush_interval=5.0,
                 extra_files=LATENCY_FILES, voevent_options=None, gcn_options=None,
                 meta=None, fsync=False):
        self.path = Path(path)
        self.formats = tuple(formats)
        unknown = sorted(set(self.formats) - set(ALERT_FORMATS))
        if unknown:
            raise OutputDirError(f"alert formats {unknown}: unknown (allowed: {ALERT_FORMATS})")
        self.maps = bool(maps)
        self.flush_interval = float(flush_interval)
        self.extra_files = tuple(extra_files)
        self.voevent_options = dict(voevent_options or {})
        self.gcn_options = dict(gcn_options or {})
        self.meta = dict(meta or {})
        self.fsync = bool(fsync)
        self._rows = []
        self._alert_lines = []
        self._alert_ids = set()
        self._n_maps = 0
        self._previous = set()
        self._written = set()
        self._journal = None
        self._started = None
        self._started_wall = None
        self._dirty = False
        self._n_flushed = 0
        self._ecsv_meta_key = None
        self._last_flush = -math.inf
        self._flush_seconds = 0.0

    # -- the start ---------------------------------------------------------------------
    def prepare(self):
        """Create the directory, check it, and say what this run will do there.

        Returns
        -------
        lines : list of str
            For the user: a new directory, or on a rerun which files will be replaced and
            which of the previous run's files are removed at the end.

        Raises
        ------
        OutputDirError
            ``path`` is a file; ``run.json`` is not an rtafast marker; a file rtafast
            writes exists and was not written by rtafast.
        """
        if self.path.exists() and not self.path.is_dir():
            raise OutputDirError(f"{self.path}: exists and is not a directory")
        existed = self.path.is_dir()
        marker = self._read_marker()
        self._previous = self._previous_files(marker)
        fixed = self._fixed_files()
        self._refuse_foreign(fixed)
        removed = self._remove_leftover_temporaries() if marker is not None else 0
        lines = self._describe(existed, marker, fixed)
        if removed:
            lines.append(f"  removed {removed} temporary file(s) of an interrupted write")
        self.path.mkdir(parents=True, exist_ok=True)
        for subdir, wanted in self._subdirs().items():
            if wanted:
                (self.path / subdir).mkdir(exist_ok=True)
        self._started = Time.now()
        self._started_wall = time.time()
        self._write_marker("running", files=sorted(self._previous | set(fixed)))
        self._journal = open(self.path / JOURNAL, "w", encoding="utf-8")  # noqa: SIM115
        for name in fixed:
            self._record(name)
        return lines

    def _remove_leftover_temporaries(self):
        """Remove ``.tmp-<hex>-<name>`` files that interrupted atomic writes left."""
        removed = 0
        for folder in ("", *_SUBDIRS):
            directory = self.path / folder
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                if _TEMPORARY_PATTERN.match(entry.name) and entry.is_file():
                    entry.unlink()
                    removed += 1
        return removed

    def _subdirs(self):
        return {VOEVENT_DIR: "voevent" in self.formats, NOTICE_DIR: "gcn" in self.formats,
                MAP_DIR: self.maps}

    def _fixed_files(self):
        names = [RESULTS, MARKER]
        if "jsonl" in self.formats:
            names.append(ALERTS)
        return names + list(self.extra_files)

    def _read_marker(self):
        """The previous run's marker (a dict), or None when there is none."""
        marker_path = self.path / MARKER
        if not marker_path.is_file():
            return None
        try:
            marker = json.loads(marker_path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise OutputDirError(f"{marker_path}: not an rtafast run marker ({error})") from error
        if not isinstance(marker, dict) or marker.get("producer") != _PRODUCER:
            raise OutputDirError(f"{marker_path}: not an rtafast run marker (written by "
                                 "another program: choose another output directory)")
        return marker

    def _previous_files(self, marker):
        """Files of previous runs that still exist (marker list and journal)."""
        if marker is None:
            return set()
        names = {str(name) for name in marker.get("files", [])}
        journal = self.path / JOURNAL
        if journal.is_file():
            names |= {line.strip() for line in journal.read_text("utf-8").splitlines()}
        names.add(MARKER)
        return {name for name in names
                if _OWN_NAME_PATTERN.match(name) and (self.path / name).is_file()}

    def _refuse_foreign(self, names):
        foreign = [name for name in names
                   if (self.path / name).exists() and name not in self._previous]
        if foreign:
            raise OutputDirError(
                f"{self.path}: {', '.join(foreign)} exist(s) and were not written by rtafast "
                "(no rtafast run.json lists them): left untouched; remove them or choose "
                "another output directory"
            )

    def _describe(self, existed, marker, fixed):
        if not existed:
            return [f"{self.path}: new output directory"]
        foreign = self._foreign_count()
        untouched = f"{foreign} file(s) not written by rtafast are left untouched"
        if marker is None:
            return [f"{self.path}: existing directory without a previous rtafast run"
                    + (f"; {untouched}" if foreign else " (empty)")]
        lines = [
            f"{self.path}: holds a previous rtafast run ({marker.get('status', '?')}, "
            f"started {marker.get('started', '?')})"
        ]
        replaced = [name for name in fixed if name in self._previous]
        if replaced:
            lines.append(f"  replaced by this run: {', '.join(replaced)}")
        stale = self._previous - set(fixed)
        if stale:
            lines.append(f"  removed at the end of this run unless written again: "
                         f"{self._count_by_folder(stale)}")
        if foreign:
            lines.append(f"  {untouched}")
        return lines

    @staticmethod
    def _count_by_folder(names):
        """``3 file(s) in voevents/, 3 in notices/, latency.png`` style summary."""
        parts = []
        top = sorted(name for name in names if "/" not in name)
        if top:
            parts.append(", ".join(top))
        for folder in _SUBDIRS:
            count = sum(1 for name in names if name.startswith(f"{folder}/"))
            if count:
                parts.append(f"{count} file(s) in {folder}/")
        return ", ".join(parts)

    def _foreign_count(self):
        """Files at the top level and in rtafast's folders that rtafast did not write."""
        count = 0
        for folder in ("", *_SUBDIRS):
            directory = self.path / folder
            if not directory.is_dir():
                continue
            for entry in directory.iterdir():
                name = f"{folder}/{entry.name}" if folder else entry.name
                if folder == "" and entry.name in (*_SUBDIRS, JOURNAL):
                    continue
                if name not in self._previous:
                    count += 1
        return count

    # -- ownership ---------------------------------------------------------------------
    def _require_prepared(self):
        if self._journal is None:
            raise RuntimeError("OutputDir: call prepare() before writing (and not after "
                               "finish())")

    def _claim(self, name):
        """Record that this run writes ``name`` (journal first); refuse a foreign file."""
        if name in self._written:
            return
        target = self.path / name
        if target.exists() and name not in self._previous:
            raise OutputDirError(f"{target}: exists and was not written by rtafast: left "
                                 "untouched; remove it or choose another output directory")
        self._record(name)

    def _record(self, name):
        """Append ``name`` to the journal (before the file appears) and to this run's files."""
        self._journal.write(name + "\n")
        self._journal.flush()
        self._written.add(name)

    # -- results ------------------------------------------------------------------------
    def add_result(self, row):
        """Add one results row (kept in memory as a tuple; written by :meth:`flush`).

        Parameters
        ----------
        row : dict
            Keys from :data:`RESULT_COLUMNS`: required ``runid, window, window_start,
            window_stop, texp, backend``; the others default to missing (NaN, masked
            or ``''``). Values in the columns' units, or Quantities.

        Raises
        ------
        OutputDirError
            An unknown or missing key (naming it), or a value of the wrong kind.
        """
        unknown = [key for key in row if key not in _COLUMN_INDEX]
        if unknown:
            raise OutputDirError(f"results row: unknown column(s) {', '.join(unknown)} "
                                 f"(allowed: {', '.join(RESULT_COLUMNS)})")
        missing = [key for key in _REQUIRED_RESULT_KEYS if row.get(key) is None]
        if missing:
            raise OutputDirError(f"results row: missing column(s) {', '.join(missing)}")
        values = []
        for spec in RESULT_COLUMN_SPECS:
            try:
                values.append(_cell(spec, row.get(spec.name)))
            except (TypeError, ValueError, u.UnitsError) as error:
                raise OutputDirError(f"results row: column {spec.name}: {error}") from error
        self._rows.append(tuple(values))
        self._dirty = True

    @property
    def n_results(self):
        """Rows added so far."""
        return len(self._rows)

    def results_table(self, rows=None):
        """The results as an astropy `~astropy.table.Table` (units, descriptions,
        :attr:`meta`).

        Parameters
        ----------
        rows : list of tuple, optional
            Default: every row added so far.
        """
        rows = self._rows if rows is None else rows
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(RESULT_COLUMN_SPECS)
        table = Table(meta=dict(self.meta))
        for spec, values in zip(RESULT_COLUMN_SPECS, columns, strict=True):
            table[spec.name] = _column(spec, list(values))
            table[spec.name].unit = spec.unit
            table[spec.name].description = spec.description
        return table

    def flush(self, force=False):
        """Rewrite ``results.ecsv`` (atomically) when rows were added and the last rewrite
        is old enough (see ``flush_interval``), or always with ``force``.

        Only the rows added since the last rewrite are formatted (astropy's writer of
        the ECSV data lines: space-delimited, ``"`` quotes, masked values as ``""``): the
        new file is a copy of the previous one with the new lines appended, moved into
        place atomically; the first rewrite of the run and a changed :attr:`meta` write
        the whole table with astropy's ECSV writer.

        Returns
        -------
        written : bool
        """
        self._require_prepared()
        now = time.perf_counter()
        due = now - self._last_flush >= max(self.flush_interval, 20.0 * self._flush_seconds)
        if not (force or (self._dirty and due)):
            return False
        path = self.path / RESULTS
        meta_key = repr(self.meta)
        with atomic_path(path, fsync=self.fsync) as temporary:
            if meta_key == self._ecsv_meta_key and path.is_file():
                shutil.copyfile(path, temporary)
                with open(temporary, "a", encoding="utf-8") as handle:
                    handle.write(_ecsv_lines(self.results_table(self._rows[self._n_flushed:])))
            else:
                header, body = _ecsv_parts(self.results_table())
                temporary.write_text(header + body, encoding="utf-8")
        self._ecsv_meta_key = meta_key
        self._n_flushed = len(self._rows)
        self._dirty = False
        self._last_flush = time.perf_counter()
        self._flush_seconds = self._last_flush - now
        return True

    # -- alerts -------------------------------------------------------------------------
    def add_alert(self, alert):
        """Write one alert now: ``alerts.jsonl`` (rewritten), its VOEvent and its notice,
        each validated and written atomically, as the formats ask.

        When the alert carries ``arrived`` (`time.perf_counter` when its data were handed
        to the pipeline), its ``time_to_alert`` is set to the time since then just before
        the files are built.

        Parameters
        ----------
        alert : `~rtafast.pipeline.alerts.Alert`

        Returns
        -------
        written : float
            `time.perf_counter` when the last file was written (for the time to alert).

        Raises
        ------
        OutputDirError
            An alert with the same id was already written in this run.
        """
        self._require_prepared()
        if alert.alert_id in self._alert_ids:
            raise OutputDirError(f"alert {alert.alert_id}: already written in this run")
        if alert.arrived is not None:
            alert.time_to_alert = time.perf_counter() - alert.arrived
        payloads, line = self._alert_payloads(alert)
        for name, data in payloads.items():
            self._claim(name)
            write_atomic(self.path / name, data, fsync=self.fsync)
        self._alert_ids.add(alert.alert_id)
        if line is not None:
            self._alert_lines.append(line)
        return time.perf_counter()

    def _alert_payloads(self, alert):
        """Every file of one alert as bytes, built (and validated) before any is written."""
        payloads, line = {}, None
        if "voevent" in self.formats:
            payloads[f"{VOEVENT_DIR}/{alert.alert_id}.xml"] = voevent_xml(
                alert, **self.voevent_options
            )
        if "gcn" in self.formats:
            notice = gcn_notice(alert, **self.gcn_options)
            payloads[f"{NOTICE_DIR}/{alert.alert_id}.json"] = (
                json.dumps(notice, indent=2, allow_nan=False) + "\n"
            )
        if "jsonl" in self.formats:
            line = json.dumps(alert.to_dict(), allow_nan=False)
            payloads[ALERTS] = "".join(f"{text}\n" for text in [*self._alert_lines, line])
        return payloads, line

    @property
    def n_alerts(self):
        """Alerts written so far."""
        return len(self._alert_ids)

    # -- maps ---------------------------------------------------------------------------
    def write_map(self, name, sky_map):
        """Write a map as FITS into ``maps/`` (atomically).

        Parameters
        ----------
        name : str
            File name (``.fits`` added unless it ends in ``.fits`` or ``.fits.gz``);
            letters, digits and ``._+-`` only.
        sky_map : `~gammapy.maps.Map`

        Returns
        -------
        path : `~pathlib.Path`
        """
        self._require_prepared()
        if not self.maps:
            raise OutputDirError(f"map {name}: maps were not requested (output.maps false)")
        if not _NAME_PATTERN.match(name):
            raise OutputDirError(f"map {name!r}: use letters, digits and ._+- only")
        if not name.endswith((".fits", ".fits.gz")):
            name = f"{name}.fits"
        relative = f"{MAP_DIR}/{name}"
        self._claim(relative)
        with atomic_path(self.path / relative, fsync=self.fsync) as temporary:
            sky_map.write(temporary, overwrite=True)
        self._n_maps += 1
        return self.path / relative

    # -- the end ------------------------------------------------------------------------
    def finish(self, summary=None):
        """Write the final ``results.ecsv``, remove the previous run's files not written
        again, and write ``run.json`` (status, files, counts and ``summary``).

        Parameters
        ----------
        summary : dict, optional
            The run's summary (counts, skips, ...); JSON-ready values, numpy numbers,
            Quantities (as text) and Times (ISO UTC).

        Returns
        -------
        marker : `~pathlib.Path`
            ``run.json``.
        """
        self._require_prepared()
        self.flush(force=True)
        removed = self._remove_stale()
        files = sorted(name for name in self._written if (self.path / name).is_file())
        outputs = {"n_results": self.n_results, "n_alerts": self.n_alerts,
                   "n_maps": self._n_maps, "n_previous_files_removed": removed}
        self._write_marker("finished", files=files, outputs=outputs,
                           summary=_jsonable(summary or {}, "summary"))
        self._journal.close()
        self._journal = None
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path / JOURNAL)
        return self.path / MARKER

    def _remove_stale(self):
        """Remove the previous run's files this run did not write (including extra files
        claimed but not rewritten: older than this run's start); returns how many."""
        stale = set(self._previous - self._written)
        stale |= {name for name in self.extra_files if name in self._previous
                  and (self.path / name).is_file()
                  and (self.path / name).stat().st_mtime < self._started_wall}
        stale = sorted(stale)
        for name in stale:
            with contextlib.suppress(FileNotFoundError):
                os.remove(self.path / name)
        for folder in _SUBDIRS:
            with contextlib.suppress(OSError):
                (self.path / folder).rmdir()  # only when empty
        return len(stale)

    def _write_marker(self, status, files, **more):
        from .. import __version__

        marker = {
            "producer": _PRODUCER,
            "rtafast_version": __version__,
            "status": status,
            "started": _jsonable(self._started, "started"),
            "finished": _jsonable(Time.now(), "finished") if status == "finished" else None,
            "formats": list(self.formats),
            "maps": self.maps,
            "files": files,
            **more,
        }
        write_atomic(self.path / MARKER, json.dumps(marker, indent=2, allow_nan=False) + "\n",
                     fsync=self.fsync)

