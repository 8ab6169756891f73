"""Calibration trials on a Dask LocalCluster: the null TS distribution, no trial lost.

* 2000 null trials on a local cluster of 2 worker processes: the fixed-position TS of the
  trials whose fitted norm is positive follows χ²₁ (KS test, p > 1e-3: a correct
  distribution fails it once in a thousand runs), half the norms are positive (within 4
  binomial σ): the bounded-norm TS follows ½χ²₁ (Chernoff). The window is long enough
  (100 h, ~2400 background counts in the fit's bins) for Wilks' asymptotics; at 1 h
  (~24 counts) only 42 % of the norms are positive (the Poisson counts' skew), and at
  10 s the counts are too few (the report shows the discreteness).
* A worker killed mid-run: the scheduler runs its batches again; every trial is there
  exactly once and equal to an undisturbed run.
* A run stopped after some batches and started again: it runs only the missing ones.
"""

import json
import os
import signal
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from scipy import stats

from rtafast.pipeline.config import load_config
from rtafast.trials import run_trials
from rtafast.trials.store import TrialStore
from tests.test_trials_batch import SMALL, same_rows

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def config(*overrides):
    return load_config(None, [*SMALL, *overrides])


def _table(outdir):
    return TrialStore(outdir).read_all()


def _run(overrides, outdir, n, **where):
    """run_trials quietly: `where` says where it runs (n_workers, processes, scheduler)."""
    return run_trials(
        config(*overrides), outdir, n, progress=False, say=lambda line: None, **where
    )


#: The 2000 null trials (8 batches of 250) and the same run but for the seed.
NULL_RUN = ("trials.exposures=[100 h]", "trials.batch_size=250", "trials.seed=2026")
OTHER_SEED = (*NULL_RUN[:2], "trials.seed=1")
#: In this process: two worker threads.
THREADS = {"n_workers": 2, "processes": False}


@pytest.fixture(scope="module")
def null_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("null")
    summary = _run(NULL_RUN, outdir, 2000, n_workers=2)
    return outdir, summary


def test_null_ts_follows_half_chi2(null_run):
    outdir, summary = null_run
    table = _table(outdir)
    assert summary["n_run"] == 8 and summary["n_trials_run"] == 2000
    assert sorted(table.column("trial").to_pylist()) == list(range(2000))
    ts, norm = table.column("ts").to_numpy(), table.column("norm").to_numpy()
    # a fit whose minimum is on the physical limit -min(b/s) (a deficit where the template
    # is brightest) ends there unconverged, as the pipeline's fit_norm does
    converged = table.column("converged").to_numpy()
    assert np.all(norm[~converged] == norm.min()) and converged.mean() > 0.99
    positive = norm > 0
    fraction = positive.mean()
    assert abs(fraction - 0.5) < 4 * np.sqrt(0.25 / ts.size)
    result = stats.kstest(ts[positive], stats.chi2(1).cdf)
    assert result.pvalue > 1e-3, result
    # and it can fail: the same values against a χ² of 2 degrees of freedom
    assert stats.kstest(ts[positive], stats.chi2(2).cdf).pvalue < 1e-6
    manifest = json.loads((outdir / "trials.json").read_text())
    assert len(manifest["batches"]) == 8
    assert manifest["hypothesis"] == "background" and manifest["n"] == 2000


def test_rerun_skips_every_batch(null_run):
    outdir, _ = null_run
    before = _table(outdir)
    summary = _run(NULL_RUN, outdir, 2000, n_workers=1)
    assert summary["n_run"] == 0 and summary["n_skipped"] == 8
    assert same_rows(_table(outdir), before)


def test_another_config_is_refused(null_run):
    outdir, _ = null_run
    with pytest.raises(ValueError, match="differs in: .*seed"):
        _run(OTHER_SEED, outdir, 2000, n_workers=1)


SMALL_RUN = ("trials.exposures=[60 s, 600 s]", "trials.batch_size=100", "trials.seed=9")


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    outdir = tmp_path_factory.mktemp("reference")
    _run(SMALL_RUN, outdir, 1000, **THREADS)
    return _table(outdir)


#: Blind trials (~20 ms each): a batch lasts long enough for a worker to die inside it.
BLIND_RUN = ("trials.blind=true", "trials.batch_size=5", "trials.seed=4")


def _kill_a_busy_worker_once_a_batch_is_written(client, outdir, done, killed):
    batches = outdir / "batches"
    while not done.is_set():
        busy = [address for address, keys in client.processing().items() if keys]
        if batches.is_dir() and any(batches.glob("*.parquet")) and busy:
            pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
            return
        time.sleep(0.01)


def test_a_killed_worker_loses_no_trial(tmp_path):
    """A worker killed while it runs a batch: the scheduler runs the batch again (on the
    other worker or the restarted one); every trial is there once, equal to a run that
    nothing disturbed."""
    from distributed import Client, LocalCluster

    reference = tmp_path / "reference"
    _run(BLIND_RUN, reference, 60, **THREADS)
    outdir, done, killed = tmp_path / "killed", threading.Event(), []
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            killer = threading.Thread(
                target=_kill_a_busy_worker_once_a_batch_is_written,
                args=(client, outdir, done, killed),
            )
            killer.start()
            summary = _run(BLIND_RUN, outdir, 60, scheduler=cluster.scheduler_address)
            done.set()
            killer.join()
    assert killed, "no worker was killed while a batch ran (the run ended first)"
    assert summary["n_run"] == 12
    table = _table(outdir)
    assert sorted(table.column("trial").to_pylist()) == list(range(60))
    assert same_rows(table, _table(reference))


def test_a_stopped_run_continues_where_it_stopped(tmp_path, monkeypatch, reference_run):
    outdir = tmp_path / "stopped"
    original = TrialStore.write
    written = []

    def crash_after_five(self, table, info):
        if len(written) == 5:
            raise KeyboardInterrupt  # the run is stopped here
        written.append(info["batch"])
        original(self, table, info)

    monkeypatch.setattr(TrialStore, "write", crash_after_five)
    with pytest.raises(KeyboardInterrupt):
        _run(SMALL_RUN, outdir, 1000, **THREADS)
    monkeypatch.setattr(TrialStore, "write", original)
    assert len(list((outdir / "batches").glob("*.parquet"))) == 5
    assert not list((outdir / "batches").glob(".tmp-*"))
    summary = _run(SMALL_RUN, outdir, 1000, **THREADS)
    assert summary["n_skipped"] == 5 and summary["n_run"] == 15
    assert same_rows(_table(outdir), reference_run)
    for path in (outdir / "batches").glob("*.parquet"):
        assert pq.read_metadata(path).num_rows == 100
