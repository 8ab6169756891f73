"""The units of a batch: one run (a DataStore observation) or one event file each.

:func:`list_units` turns a configuration's input into its units; :func:`run_unit` is the
Dask task that runs the alert pipeline on one unit alone, into its own directory, and
returns a small JSON-ready record; :func:`complete_run` tells whether a unit's directory
already holds a finished run (``run.json`` with status ``finished``: the pipeline writes
it last, :meth:`rtafast.pipeline.outputs.OutputDir.finish`).
"""

import contextlib
import logging
import re
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from ..distributed import absolute_path

__all__ = [
    "BatchUnit",
    "complete_run",
    "list_units",
    "run_unit",
    "unit_config",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
_FITS_SUFFIXES = (".fits.gz", ".fits.fz", ".fits", ".fit", ".gz")


@dataclass(frozen=True)
class BatchUnit:
    """One unit of work: a DataStore observation or an event file.

    Attributes
    ----------
    name : str
        Its directory under ``OUTDIR/runs/`` (the observation id, or the file's stem).
    obs_id : int or None
        With ``input.datastore``: the observation.
    events : str or None
        With ``input.events``: the file (absolute path).
    """

    name: str
    obs_id: int | None = None
    events: str | None = None

    def as_dict(self):
        """The unit as a plain dict (what the task receives)."""
        return asdict(self)


def _file_unit_name(path):
    name = Path(path).name
    for suffix in _FITS_SUFFIXES:
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    name = _UNSAFE.sub("_", name).lstrip(".") or "events"
    return name


def _unique_names(names):
    """``names`` made unique by appending ``-2``, ``-3``, ... to repeats."""
    seen, unique = set(), []
    for name in names:
        candidate, number = name, 1
        while candidate in seen:
            number += 1
            candidate = f"{name}-{number}"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def _datastore_ids(config):
    """Every observation of the DataStore whose files exist, and a line per one left out
    (as the pipeline's input does without ``obs_ids``)."""
    from rtafast.pipeline.input_read import _missing_files, open_datastore

    store = open_datastore(config.input.datastore)[1]
    ids, excluded = [], []
    need_irfs = config.input.irf_file is None
    for obs_id in sorted(int(i) for i in store.obs_table["OBS_ID"]):
        missing = _missing_files(store, obs_id, need_irfs=need_irfs)
        if missing:
            excluded.append(f"observation {obs_id}: file(s) not found: {', '.join(missing)}")
        else:
            ids.append(obs_id)
    return ids, excluded


def list_units(config):
    """The units of a configuration's input.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        With ``input.datastore`` (each of ``obs_ids``; every observation whose files
        exist when it is empty) or ``input.events`` (each file).

    Returns
    -------
    units : list of BatchUnit
        In the order of the input.
    excluded : list of str
        One line per DataStore observation left out (its files are missing).

    Raises
    ------
    ValueError
        ``input.watch`` (a batch needs a fixed list), no input, an unreadable DataStore,
        or no unit at all.
    """
    from rtafast.pipeline.input_types import InputError

    source = config.input.source  # ConfigError when no input is given
    if source == "watch":
        raise InputError(
            "input.watch: a batch needs a fixed list of runs (input.datastore with "
            "obs_ids, or input.events); a watched directory is analysed by 'rtafast run'"
        )
    excluded = []
    if source == "events":
        paths = [absolute_path(path) for path in config.input.events]
        names = _unique_names([_file_unit_name(path) for path in paths])
        units = [BatchUnit(name, events=path) for name, path in zip(names, paths, strict=True)]
    else:
        ids = [int(i) for i in config.input.obs_ids]
        if not ids:
            ids, excluded = _datastore_ids(config)
        units = [BatchUnit(str(obs_id), obs_id=obs_id) for obs_id in ids]
    if not units:
        raise InputError(f"input: no run to analyse ({len(excluded)} left out: files missing)")
    return units, excluded


def unit_config(config_yaml, unit):
    """The configuration of one unit: the batch's, its input narrowed to the unit.

    Parameters
    ----------
    config_yaml : str
        The batch's configuration (:func:`~rtafast.pipeline.config.dump_yaml`).
    unit : dict
        :meth:`BatchUnit.as_dict`.

    Returns
    -------
    `~rtafast.pipeline.config.PipelineConfig`
    """
    from rtafast.pipeline.config import validate_config

    data = yaml.safe_load(config_yaml)
    if unit.get("obs_id") is not None:
        data["input"]["obs_ids"] = [int(unit["obs_id"])]
    else:
        data["input"]["events"] = [unit["events"]]
    return validate_config(data, source=f"unit {unit['name']}")


def complete_run(rundir):
    """The marker (``run.json``) of a finished run in ``rundir``, or None.

    A run is complete when its ``run.json`` says ``finished`` (written last, after every
    other file) and every file it lists, ``results.ecsv`` among them, exists.

    Parameters
    ----------
    rundir : str or `~pathlib.Path`

    Returns
    -------
    dict or None
    """
    from rtafast.pipeline.output_reruns import OutputDirError, read_marker

    rundir = Path(rundir)
    try:
        marker = read_marker(rundir) if rundir.is_dir() else None
    except OutputDirError:
        return None  # not rtafast's: the run itself will refuse the directory
    if marker is None or marker.get("status") != "finished":
        return None
    files = marker.get("files") or []
    if "results.ecsv" not in files or not all((rundir / name).is_file() for name in files):
        return None
    return marker


class _ThreadLines(logging.Handler):
    """Collects the log records of one thread (a task) as lines."""

    def __init__(self, lines):
        super().__init__(logging.INFO)
        self.lines = lines
        self.thread = threading.get_ident()

    def emit(self, record):
        if record.thread == self.thread:
            self.lines.append(f"{record.levelname.lower()}: {record.getMessage()}")


class _Capture:
    """While at least one task runs in this process, rtafast's log records go to the
    tasks' lines, not to the console (``propagate`` restored after the last one)."""

    lock = threading.Lock()
    depth = 0
    propagate = True

    @classmethod
    @contextlib.contextmanager
    def lines(cls, lines):
        logger = logging.getLogger("rtafast")
        handler = _ThreadLines(lines)
        with cls.lock:
            if cls.depth == 0:
                cls.propagate = logger.propagate
                logger.propagate = False
            cls.depth += 1
            logger.addHandler(handler)
        try:
            yield
        finally:
            with cls.lock:
                logger.removeHandler(handler)
                cls.depth -= 1
                if cls.depth == 0:
                    logger.propagate = cls.propagate


def _worker_name():
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _describe_error(error):
    """(one-line message, kind): ``input`` for the user's data or config, else
    ``internal`` (the message then names the exception type)."""
    from rtafast.cli._args import one_line, user_errors

    if isinstance(error, user_errors()):
        return one_line(error), "input"
    return f"{type(error).__name__}: {one_line(error)}", "internal"


def run_unit(config_yaml, unit, rundir):
    """Run the alert pipeline on one unit alone (the Dask task of a batch).

    Parameters
    ----------
    config_yaml : str
        The batch's configuration as YAML (:func:`~rtafast.pipeline.config.dump_yaml`).
    unit : dict
        :meth:`BatchUnit.as_dict`.
    rundir : str
        The unit's output directory.

    Returns
    -------
    dict
        ``name, obs_id, events, status`` (``ok`` or ``failed``), ``error`` (one line or
        None), ``error_kind`` (``input``, ``internal`` or None), ``n_windows, n_rows,
        n_alerts, wall_s, worker`` and ``messages`` (what the run said and logged).
    """
    started = time.perf_counter()
    messages = []
    record = dict(
        unit,
        status="ok",
        error=None,
        error_kind=None,
        n_windows=0,
        n_rows=0,
        n_alerts=0,
        wall_s=0.0,
        worker=_worker_name(),
        messages=messages,
    )
    with _Capture.lines(messages):
        try:
            from rtafast.pipeline.run import AlertPipeline

            config = unit_config(config_yaml, unit)
            summary = AlertPipeline(config, rundir, progress=False, say=messages.append).run()
        except Exception as error:  # noqa: BLE001 - recorded; the other units go on
            record["status"] = "failed"
            record["error"], record["error_kind"] = _describe_error(error)
        else:
            record.update(
                n_windows=summary.n_windows, n_rows=summary.n_rows, n_alerts=len(summary.alerts)
            )
    record["wall_s"] = time.perf_counter() - started
    return record
