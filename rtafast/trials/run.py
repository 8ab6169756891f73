"""Run calibration trials as Dask tasks: plan the batches, submit, write as they finish.

:func:`run_trials` cuts ``n`` trials per exposure into batches of ``trials.batch_size``,
skips the batches the output directory already holds (:class:`~rtafast.trials.store.
TrialStore`), submits the others as `distributed` tasks (:func:`~rtafast.trials.batch.
run_batch`) to a local cluster or a running scheduler (:func:`rtafast.distributed.
open_client`), and writes each batch's Parquet file as it comes back. A worker lost
mid-run costs nothing: the scheduler runs its tasks again elsewhere, and each batch is
the same whoever runs it (its seed is derived from the base seed, exposure and batch
number). The results are written by this process, so the workers need no shared disk,
only the input files the config names (paths are made absolute before they are sent).
"""

import hashlib
import time

import numpy as np

from .batch import run_batch
from .store import TrialStore

__all__ = ["TrialsSummary", "plan_batches", "run_trials"]


class TrialsSummary(dict):
    """What :func:`run_trials` did (a dict: ``n_batches``, ``n_run``, ``n_skipped``,
    ``n_trials_run``, ``wall_s``, ``cpu_s``, ``trials_per_core_second``, ``outdir``)."""


def plan_batches(n, batch_size, n_exposures):
    """``[(exposure_index, batch, first_trial, count), ...]`` covering ``n`` trials of each
    exposure in batches of ``batch_size`` (the last one shorter)."""
    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    return [
        (exposure, batch, first, min(batch_size, n - first))
        for exposure in range(n_exposures)
        for batch, first in enumerate(range(0, n, batch_size))
    ]


def _manifest(config, config_text, n, window):
    import rtafast

    trials = config.trials
    return {
        "config": config_text,
        "hypothesis": trials.hypothesis,
        "exposures_s": [float(e.to_value("s")) for e in trials.exposures],
        "batch_size": int(trials.batch_size),
        "seed": int(trials.seed),
        "blind": bool(trials.blind),
        "n": int(n),
        "flux_scale": window.flux_scale,
        "target": {"ra": float(window.target.ra.deg), "dec": float(window.target.dec.deg)},
        "irf": window.irf_name,
        "fit_bins": int(window.support.size),
        "rtafast_version": rtafast.__version__,
    }


def _progress_bar(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, unit="trial", unit_scale=True, disable=not enabled, leave=False)


def run_trials(
    config, outdir, n, scheduler=None, n_workers=None, processes=True, progress=True, say=print
):
    """Run (or continue) ``n`` trials per exposure of a config into ``outdir``.

    Parameters
    ----------
    config : `rtafast.pipeline.config.PipelineConfig`
        Its ``trials`` section, geometry, selection, fit, detection and input (IRFs).
    outdir : str or `~pathlib.Path`
    n : int
        Trials per exposure.
    scheduler : str, optional
        Address of a running Dask scheduler; default: a local cluster.
    n_workers : int, optional
        Local cluster's worker processes (default: the usable cores).
    processes : bool
        Local cluster in processes (default) or threads.
    progress : bool
        A progress bar over the trials (stderr).
    say : callable
        Where the one-line messages go.

    Returns
    -------
    TrialsSummary
    """
    from ..distributed import absolute_inputs, open_client
    from ..pipeline.config import dump_yaml
    from .window import make_trial_window

    config = absolute_inputs(config)
    text = dump_yaml(config, comments=False)
    exposures = [float(e.to_value("s")) for e in config.trials.exposures]
    plan = plan_batches(int(n), config.trials.batch_size, len(exposures))
    window = make_trial_window(config, exposures[0])  # checks the config before a cluster
    store = TrialStore(outdir)
    done = store.open(_manifest(config, text, n, window))
    todo = [item for item in plan if item[:2] not in done]
    say(
        f"{n} trial(s) x {len(exposures)} exposure(s) in {len(plan)} batch(es): "
        f"{len(plan) - len(todo)} already in {outdir}, {len(todo)} to run"
    )
    summary = TrialsSummary(
        n_batches=len(plan),
        n_run=0,
        n_skipped=len(plan) - len(todo),
        n_trials_run=0,
        wall_s=0.0,
        cpu_s=0.0,
        outdir=str(outdir),
    )
    start = time.perf_counter()
    if todo:
        with open_client(scheduler, n_workers, processes) as client:
            _run_on(client, text, exposures, todo, config.trials.seed, store, summary, progress)
    summary["wall_s"] = time.perf_counter() - start
    cpu = summary["cpu_s"]
    summary["trials_per_core_second"] = summary["n_trials_run"] / cpu if cpu > 0 else np.nan
    return summary


def _run_on(client, text, exposures, todo, seed, store, summary, progress):
    from distributed import as_completed

    token = hashlib.sha1(f"{seed}\n{text}".encode()).hexdigest()[:12]
    futures = [
        client.submit(
            run_batch,
            text,
            e,
            exposures[e],
            b,
            first,
            count,
            seed,
            key=f"rtafast-trials-{token}-e{e}-b{b}",
            pure=False,
        )
        for e, b, first, count in todo
    ]
    with _progress_bar(sum(item[3] for item in todo), progress) as bar:
        try:
            for future in as_completed(futures):
                table, info = future.result()
                store.write(table, info)
                summary["n_run"] += 1
                summary["n_trials_run"] += info["n"]
                summary["cpu_s"] += info["cpu_s"]
                bar.update(info["n"])
        finally:
            for future in futures:
                future.cancel()
