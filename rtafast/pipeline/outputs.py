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
rtafast needs is an error (:class:`OutputDirError`). The columns of ``results.ecsv`` live
in :mod:`.result_columns`, the rerun bookkeeping in :mod:`.output_reruns`.
"""

import contextlib
import json
import math
import os
import re
import shutil
import time
from pathlib import Path

import astropy.units as u
from astropy.table import Table
from astropy.time import Time

from .atomic import atomic_path, write_atomic
from .gcn import gcn_notice
from .output_reruns import (
    JOURNAL,
    MAP_DIR,
    MARKER,
    NOTICE_DIR,
    VOEVENT_DIR,
    OutputDirError,
    describe_previous,
    jsonable,
    previous_files,
    read_marker,
    refuse_foreign,
    remove_leftover_temporaries,
    remove_stale,
    write_marker,
)
from .result_columns import (
    REQUIRED_RESULT_KEYS,
    RESULT_COLUMN_INDEX,
    RESULT_COLUMN_SPECS,
    RESULT_COLUMNS,
    ResultColumn,
    ecsv_lines,
    ecsv_parts,
    ecsv_text_parts,
    result_cell,
    result_column,
)
from .voevent import voevent_xml

__all__ = [
    "ALERT_FORMATS",
    "JOURNAL",
    "LATENCY_FILES",
    "MAP_DIR",
    "MARKER",
    "NOTICE_DIR",
    "OutputDir",
    "OutputDirError",
    "RESULT_COLUMNS",
    "RESULT_COLUMN_SPECS",
    "ResultColumn",
    "VOEVENT_DIR",
]

#: Alert formats: ``jsonl`` (``alerts.jsonl``), ``voevent`` (``voevents/``), ``gcn``
#: (``notices/``).
ALERT_FORMATS = ("jsonl", "voevent", "gcn")
#: Files the latency profile writes into the directory (:mod:`.latency`).
LATENCY_FILES = ("latency.json", "latency.csv", "latency.png")

RESULTS = "results.ecsv"
ALERTS = "alerts.jsonl"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


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
        marker = read_marker(self.path)
        self._previous = previous_files(self.path, marker)
        fixed = self._fixed_files()
        refuse_foreign(self.path, fixed, self._previous)
        removed = remove_leftover_temporaries(self.path) if marker is not None else 0
        lines = describe_previous(self.path, existed, marker, fixed, self._previous)
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

    def _subdirs(self):
        return {VOEVENT_DIR: "voevent" in self.formats, NOTICE_DIR: "gcn" in self.formats,
                MAP_DIR: self.maps}

    def _fixed_files(self):
        names = [RESULTS, MARKER]
        if "jsonl" in self.formats:
            names.append(ALERTS)
        return names + list(self.extra_files)

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
        """Add one results row (kept in memory as a tuple until :meth:`flush` writes it:
        rows already in ``results.ecsv`` are not kept, so memory stays flat over a long
        run).

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
        unknown = [key for key in row if key not in RESULT_COLUMN_INDEX]
        if unknown:
            raise OutputDirError(f"results row: unknown column(s) {', '.join(unknown)} "
                                 f"(allowed: {', '.join(RESULT_COLUMNS)})")
        missing = [key for key in REQUIRED_RESULT_KEYS if row.get(key) is None]
        if missing:
            raise OutputDirError(f"results row: missing column(s) {', '.join(missing)}")
        values = []
        for spec in RESULT_COLUMN_SPECS:
            try:
                values.append(result_cell(spec, row.get(spec.name)))
            except (TypeError, ValueError, u.UnitsError) as error:
                raise OutputDirError(f"results row: column {spec.name}: {error}") from error
        self._rows.append(tuple(values))
        self._dirty = True

    @property
    def n_results(self):
        """Rows added so far."""
        return self._n_flushed + len(self._rows)

    def _table(self, rows):
        """The rows (tuples) as an astropy Table with units, descriptions and meta."""
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(RESULT_COLUMN_SPECS)
        table = Table(meta=dict(self.meta))
        for spec, values in zip(RESULT_COLUMN_SPECS, columns, strict=True):
            table[spec.name] = result_column(spec, list(values))
            table[spec.name].unit = spec.unit
            table[spec.name].description = spec.description
        return table

    def results_table(self):
        """Every row added so far as an astropy `~astropy.table.Table` (units,
        descriptions, :attr:`meta`): the rows already written read back from
        ``results.ecsv``, then the rows not written yet."""
        header, body = ecsv_parts(self._table(self._rows))
        text = header + self._written_lines() + body
        return Table.read(text, format="ascii.ecsv")

    def _written_lines(self):
        """The data lines of ``results.ecsv`` as written so far ('' before the first)."""
        if self._n_flushed == 0:
            return ""
        _, body = ecsv_text_parts((self.path / RESULTS).read_text(encoding="utf-8"))
        return body

    def flush(self, force=False):
        """Write the rows not written yet to ``results.ecsv`` (atomically) when there are
        some and the last rewrite is old enough (see ``flush_interval``), or always with
        ``force``.

        Only the new rows are formatted (astropy's writer of the ECSV data lines:
        space-delimited, ``"`` quotes, masked values as ``""``): the new file is a copy
        of the previous one with the new lines appended, moved into place atomically;
        the first rewrite of the run and a changed :attr:`meta` write the header with
        astropy's ECSV writer (then the lines already written, then the new ones).

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
                    handle.write(ecsv_lines(self._table(self._rows)))
            else:
                header, body = ecsv_parts(self._table(self._rows))
                temporary.write_text(header + self._written_lines() + body,
                                     encoding="utf-8")
        self._ecsv_meta_key = meta_key
        self._n_flushed += len(self._rows)
        self._rows = []
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
        removed = remove_stale(self.path, self._previous, self._written, self.extra_files,
                               self._started_wall)
        files = sorted(name for name in self._written if (self.path / name).is_file())
        outputs = {"n_results": self.n_results, "n_alerts": self.n_alerts,
                   "n_maps": self._n_maps, "n_previous_files_removed": removed}
        self._write_marker("finished", files=files, outputs=outputs,
                           summary=jsonable(summary or {}, "summary"))
        self._journal.close()
        self._journal = None
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path / JOURNAL)
        return self.path / MARKER

    def _write_marker(self, status, files, **more):
        """Write ``run.json`` (:func:`~rtafast.pipeline.output_reruns.write_marker`)."""
        write_marker(self.path, status, started=self._started, formats=self.formats,
                     maps=self.maps, files=files, fsync=self.fsync, **more)
