"""Analyse every run of a configuration as its own Dask task, then merge.

:func:`analyse_runs` lists the units (:func:`~rtafast.batch.units.list_units`), skips
those whose directory already holds a finished run, submits one
:func:`~rtafast.batch.units.run_unit` task per other unit to a Dask cluster
(:func:`rtafast.distributed.open_client`), records each result as it completes (a
failed unit with its one-line error, the others go on), then merges the runs' results
and alerts and writes ``batch.json`` (:mod:`rtafast.batch.merge`).
"""

import sys
import time
import uuid
from concurrent.futures import CancelledError
from pathlib import Path

from ..distributed import absolute_inputs
from .merge import (
    RUNS_DIR,
    merge_alerts,
    merge_results,
    prepare_outdir,
    write_batch_marker,
)
from .units import complete_run, list_units, run_unit

__all__ = ["analyse_runs"]


def _skipped_record(unit, marker):
    summary = marker.get("summary") or {}
    return dict(
        unit.as_dict(),
        rundir=f"{RUNS_DIR}/{unit.name}",
        status="skipped",
        error=None,
        error_kind=None,
        n_windows=summary.get("n_windows", 0),
        n_rows=summary.get("n_rows", 0),
        n_alerts=summary.get("n_alerts", 0),
        wall_s=summary.get("wall_s"),
        worker=None,
        messages=[f"complete run found (finished {marker.get('finished')}): not run again"],
    )


def _lost_record(unit, error):
    """The record of a task that returned nothing (its worker died, it was cancelled)."""
    from rtafast.cli._args import one_line

    return dict(
        unit.as_dict(),
        status="failed",
        error=f"{type(error).__name__}: {one_line(error)}",
        error_kind="internal",
        n_windows=0,
        n_rows=0,
        n_alerts=0,
        wall_s=None,
        worker=None,
        messages=[],
    )


def _cluster_name(client, scheduler, n_workers, processes):
    from rtafast.distributed import worker_count

    if scheduler is not None:
        return client.scheduler.address
    n_workers = worker_count(n_workers)
    return f"LocalCluster({n_workers})" if processes else f"LocalCluster({n_workers}, threads)"


def _run_pending(client, config_yaml, pending, outdir, bar, say):
    """Submit one task per pending unit; yield each unit's record as it completes."""
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    units = {}
    for unit in pending:
        rundir = str(outdir / RUNS_DIR / unit.name)
        future = client.submit(
            run_unit,
            config_yaml,
            unit.as_dict(),
            rundir,
            key=f"rtafast-batch-{unit.name}-{token}",
            pure=False,
        )
        units[future.key] = (unit, future)
    for future in as_completed([future for _, future in units.values()]):
        unit = units[future.key][0]
        try:
            record = future.result()
        except (Exception, CancelledError) as error:  # noqa: BLE001 - recorded, go on
            record = _lost_record(unit, error)
        finally:
            future.release()
        record["rundir"] = f"{RUNS_DIR}/{unit.name}"
        if record["status"] == "failed":
            say(f"{unit.name}: failed: {record['error']}")
        bar.update(1)
        yield record


def _totals(records, excluded):
    count = {
        status: sum(r["status"] == status for r in records)
        for status in ("ok", "skipped", "failed")
    }
    merged = [r for r in records if r["status"] != "failed"]
    return {
        "units": len(records),
        "done": count["ok"],
        "skipped": count["skipped"],
        "failed": count["failed"],
        "excluded": len(excluded),
        "n_windows": sum(r["n_windows"] or 0 for r in merged),
        "n_alerts": sum(r["n_alerts"] or 0 for r in merged),
    }


def _not_in_batch(outdir, units):
    names = {unit.name for unit in units}
    folder = outdir / RUNS_DIR
    return sorted(
        entry.name for entry in folder.iterdir() if entry.is_dir() and entry.name not in names
    )


def analyse_runs(
    config, outdir, scheduler=None, n_workers=None, processes=True, progress=True, say=print
):
    """Run the alert pipeline on each run of a configuration alone, as Dask tasks.

    Each unit (a DataStore observation, or an event file) is one task running the
    pipeline with the input narrowed to it, into ``OUTDIR/runs/<obs_id or file stem>/``.
    A unit whose directory already holds a finished run is skipped; a failed unit is
    recorded with its error and the others go on. Then every run's ``results.ecsv`` is
    merged into ``OUTDIR/results.ecsv`` (rows by runid then window start), the
    ``alerts.jsonl`` concatenated into ``OUTDIR/alerts.jsonl``, and ``OUTDIR/batch.json``
    written (per unit: status, error, counts, wall time, worker; totals; cluster).

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        With ``input.datastore`` (and ``obs_ids``: empty means every observation whose
        files exist) or ``input.events``; relative paths are made absolute here.
    outdir : str or `~pathlib.Path`
        The batch's directory (created; a resumed batch must have the same configuration,
        its input aside).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers must see
        the input files and ``outdir`` at the same paths. None: a local cluster.
    n_workers : int, optional
        Local cluster only: its workers (default: the usable cores).
    processes : bool
        Local cluster only: workers in processes (default) or threads.
    progress : bool
        A progress bar over the units on stderr.
    say : callable
        Where the one-line messages go.

    Returns
    -------
    dict
        What ``batch.json`` holds: ``producer, rtafast_version, status, started, finished,
        wall_s, cluster, totals`` (units, done, skipped, failed, excluded, n_windows,
        n_alerts), ``n_results, n_alerts, excluded, not_in_batch, units`` (one record each).

    Raises
    ------
    ValueError
        ``input.watch`` or no input; an unreadable DataStore; an output directory that
        cannot be used (:class:`~rtafast.pipeline.output_reruns.OutputDirError`).
    OSError
        The scheduler cannot be reached.
    """
    from astropy.time import Time
    from tqdm import tqdm

    from rtafast.distributed import open_client
    from rtafast.pipeline.config import dump_yaml

    wall, started = time.perf_counter(), Time.now()
    config = absolute_inputs(config)
    units, excluded = list_units(config)  # a watched directory or no input: refused here
    outdir = Path(outdir).expanduser().absolute()
    for line in prepare_outdir(outdir, config):
        say(line)
    for line in excluded:
        say(f"left out: {line}")
    records, pending = {}, []
    for unit in units:
        marker = complete_run(outdir / RUNS_DIR / unit.name)
        if marker is None:
            pending.append(unit)
        else:
            records[unit.name] = _skipped_record(unit, marker)
    marker = {
        "status": "running",
        "started": started,
        "units": len(units),
        "pending": [unit.name for unit in pending],
    }
    write_batch_marker(outdir, marker)
    say(
        f"{len(units)} unit(s): {len(units) - len(pending)} complete already (skipped), "
        f"{len(pending)} to run"
    )
    cluster = None
    if pending:
        config_yaml = dump_yaml(config, comments=False)
        with open_client(scheduler, n_workers, processes) as client:
            cluster = _cluster_name(client, scheduler, n_workers, processes)
            say(f"running {len(pending)} unit(s) on {cluster}")
            with tqdm(
                total=len(units),
                initial=len(units) - len(pending),
                unit="run",
                desc="rtafast batch",
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                for record in _run_pending(client, config_yaml, pending, outdir, bar, say):
                    records[record["name"]] = record
    ordered = [records[unit.name] for unit in units]
    table = merge_results(outdir, ordered)
    n_alerts = merge_alerts(outdir, ordered) if "jsonl" in config.alert.formats else None
    marker = {
        "status": "finished",
        "started": started,
        "finished": Time.now(),
        "wall_s": time.perf_counter() - wall,
        "cluster": cluster,
        "totals": _totals(ordered, excluded),
        "n_results": len(table),
        "n_alerts": n_alerts,
        "excluded": excluded,
        "not_in_batch": _not_in_batch(outdir, units),
        "units": ordered,
    }
    written = write_batch_marker(outdir, marker)
    _say_totals(say, outdir, marker)
    return written


def _say_totals(say, outdir, marker):
    totals = marker["totals"]
    say(
        f"done {totals['done']}, skipped {totals['skipped']}, failed {totals['failed']} "
        f"of {totals['units']} unit(s) in {marker['wall_s']:.1f} s: {marker['n_results']} "
        f"result row(s), {marker['n_alerts'] or 0} alert(s) -> {outdir}"
    )
    if marker["not_in_batch"]:
        say(
            f"not merged (not in this batch): {RUNS_DIR}/"
            + f", {RUNS_DIR}/".join(marker["not_in_batch"])
        )
