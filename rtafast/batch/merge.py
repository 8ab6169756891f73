"""A batch's output directory: its marker and config, and the merge of its runs.

``OUTDIR/batch.json`` (the marker: status, cluster, totals, one record per unit),
``OUTDIR/config.yaml`` (the batch's configuration: a resumed batch must have the same,
its input aside), ``OUTDIR/results.ecsv`` and ``OUTDIR/alerts.jsonl`` (every unit's,
merged), ``OUTDIR/runs/<unit>/`` (each unit's own pipeline output). Every file is
written atomically (:mod:`rtafast.pipeline.atomic`).
"""

import json
from pathlib import Path

import numpy as np

from rtafast.pipeline.atomic import atomic_path, write_atomic
from rtafast.pipeline.output_reruns import OutputDirError, jsonable, read_json_marker

__all__ = [
    "BATCH_MARKER",
    "BATCH_PRODUCER",
    "RUNS_DIR",
    "merge_alerts",
    "merge_results",
    "prepare_outdir",
    "write_batch_marker",
]

BATCH_MARKER = "batch.json"
BATCH_PRODUCER = "rtafast batch"
RUNS_DIR = "runs"
CONFIG = "config.yaml"
RESULTS = "results.ecsv"
ALERTS = "alerts.jsonl"
_OWN_FILES = (BATCH_MARKER, CONFIG, RESULTS, ALERTS)


def _read_batch_marker(outdir):
    return read_json_marker(
        outdir / BATCH_MARKER, BATCH_PRODUCER, "batch", ": choose another output directory"
    )


def _config_differences(before, after):
    """Dotted keys whose values differ (the input section aside)."""
    keys = []
    for section in sorted(set(before) | set(after)):
        if section == "input":
            continue
        old, new = before.get(section), after.get(section)
        if isinstance(old, dict) and isinstance(new, dict):
            keys += [
                f"{section}.{key}"
                for key in sorted(set(old) | set(new))
                if old.get(key) != new.get(key)
            ]
        elif old != new:
            keys.append(section)
    return keys


def prepare_outdir(outdir, config):
    """Check (or create) a batch's output directory and write its configuration.

    Parameters
    ----------
    outdir : `~pathlib.Path`
    config : `~rtafast.pipeline.config.PipelineConfig`
        The batch's configuration (input paths absolute).

    Returns
    -------
    lines : list of str
        For the user: a new directory, or a resumed batch.

    Raises
    ------
    OutputDirError
        ``outdir`` is a file or a single run's directory (``run.json``); holds a
        ``batch.json`` not written by rtafast, or files a batch writes without one; holds
        a batch of another configuration (the keys that differ are named).
    """
    from rtafast.pipeline.config import ConfigError, dump_yaml, load_config

    if outdir.exists() and not outdir.is_dir():
        raise OutputDirError(f"{outdir}: exists and is not a directory")
    if (outdir / "run.json").exists():
        raise OutputDirError(
            f"{outdir}: holds a single run of 'rtafast run' (run.json), not "
            "a batch: choose another output directory"
        )
    marker = _read_batch_marker(outdir) if outdir.is_dir() else None
    lines = [f"{outdir}: new batch directory"]
    if outdir.is_dir() and marker is None:
        foreign = [name for name in (*_OWN_FILES, RUNS_DIR) if (outdir / name).exists()]
        if foreign:
            raise OutputDirError(
                f"{outdir}: {', '.join(foreign)} exist(s) without a batch "
                f"{BATCH_MARKER}: left untouched; choose another output "
                "directory"
            )
        lines = [f"{outdir}: existing directory, new batch"]
    elif marker is not None:
        lines = [
            f"{outdir}: resuming the batch started {marker.get('started', '?')} "
            f"({marker.get('status', '?')})"
        ]
        if (outdir / CONFIG).is_file():
            try:
                before = load_config(outdir / CONFIG).model_dump(mode="json")
            except ConfigError as error:
                raise OutputDirError(
                    f"{outdir / CONFIG}: the batch's configuration cannot "
                    f"be read back ({error}): choose another output "
                    "directory"
                ) from error
            differ = _config_differences(before, config.model_dump(mode="json"))
            if differ:
                raise OutputDirError(
                    f"{outdir}: holds a batch of another configuration (differs in "
                    f"{', '.join(differ)}): its runs would not be comparable; choose "
                    "another output directory (the input may change: new runs are added)"
                )
    (outdir / RUNS_DIR).mkdir(parents=True, exist_ok=True)
    write_atomic(outdir / CONFIG, dump_yaml(config))
    return lines


def write_batch_marker(outdir, marker):
    """Write ``batch.json`` (atomically; producer added, values made JSON-ready).

    Parameters
    ----------
    outdir : `~pathlib.Path`
    marker : dict

    Returns
    -------
    dict
        What was written.
    """
    from rtafast import __version__

    data = {"producer": BATCH_PRODUCER, "rtafast_version": __version__, **marker}
    data = jsonable(data, BATCH_MARKER)
    write_atomic(Path(outdir) / BATCH_MARKER, json.dumps(data, indent=2, allow_nan=False) + "\n")
    return data


def _read_results(rundir):
    from astropy.table import Table

    return Table.read(Path(rundir) / RESULTS, format="ascii.ecsv")


def merge_results(outdir, records):
    """Merge the units' ``results.ecsv`` into ``OUTDIR/results.ecsv``.

    Rows ordered by ``runid`` then ``window_start`` (a stable order: rows that tie keep
    their run's order). ``window_start``, ``window_stop`` and ``delay`` stay relative to
    each run's own trigger time, listed in the table's ``trigger_times`` meta.

    Parameters
    ----------
    outdir : `~pathlib.Path`
    records : list of dict
        The units' records; those with status ``ok`` or ``skipped`` are merged, in this
        order before the sort.

    Returns
    -------
    table : `~astropy.table.Table`
        The merged table (as written).
    """
    from astropy.table import vstack

    tables, meta = [], {"trigger_times": {}}
    for record in records:
        if record["status"] not in ("ok", "skipped"):
            continue
        table = _read_results(outdir / record["rundir"])
        for key in ("target", "backend"):
            if key in table.meta:
                meta.setdefault(key, table.meta[key])
        meta["trigger_times"][record["name"]] = table.meta.get("trigger_time")
        tables.append(table)
    if not tables:
        table = _empty_results()
    else:
        table = vstack(tables, join_type="exact", metadata_conflicts="silent")
        order = np.lexsort(
            (np.arange(len(table)), np.asarray(table["window_start"]), np.asarray(table["runid"]))
        )
        table = table[order]
    meta["batch"] = (
        f"{len(tables)} run(s) merged; window_start, window_stop and delay "
        "are relative to each run's trigger time (trigger_times)"
    )
    table.meta = meta
    with atomic_path(outdir / RESULTS) as temporary:
        table.write(temporary, format="ascii.ecsv")
    return table


def _empty_results():
    from astropy.table import Table

    from rtafast.pipeline.result_columns import RESULT_COLUMN_SPECS, result_column

    table = Table()
    for spec in RESULT_COLUMN_SPECS:
        table[spec.name] = result_column(spec, [])
        table[spec.name].unit = spec.unit
        table[spec.name].description = spec.description
    return table


def merge_alerts(outdir, records):
    """Concatenate the units' ``alerts.jsonl`` into ``OUTDIR/alerts.jsonl``.

    Parameters
    ----------
    outdir : `~pathlib.Path`
    records : list of dict
        Units with status ``ok`` or ``skipped`` are concatenated, in this order.

    Returns
    -------
    n_alerts : int
        Lines written.
    """
    lines = []
    for record in records:
        if record["status"] not in ("ok", "skipped"):
            continue
        path = outdir / record["rundir"] / ALERTS
        if path.is_file():
            lines += [line for line in path.read_text("utf-8").splitlines() if line.strip()]
    write_atomic(outdir / ALERTS, "".join(f"{line}\n" for line in lines))
    return len(lines)
