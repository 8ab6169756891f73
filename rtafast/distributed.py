"""A Dask client for rtafast's scale-out commands (calibration trials, batch analysis).

:func:`open_client` connects to a running scheduler (``--scheduler ADDRESS``: a cluster
anywhere, started with ``dask scheduler`` / ``dask worker`` or any Dask deployment) or
starts a `distributed.LocalCluster` on this machine (the embedded default): one worker
process per core, one thread each, so that each task's numba kernels have the core
to themselves (``NUMBA_NUM_THREADS=1`` in the workers: parallelism comes from the
tasks, not from the kernels' threads).
"""

import contextlib
import logging
import os

__all__ = ["WORKER_ENVIRONMENT", "absolute_inputs", "absolute_path", "open_client", "worker_count"]


def worker_count(n_workers=None):
    """Workers of a local cluster: ``n_workers``, else the cores this process may use."""
    if n_workers is not None:
        if int(n_workers) < 1:
            raise ValueError(f"--workers must be >= 1, got {n_workers}")
        return int(n_workers)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def open_client(scheduler=None, n_workers=None, processes=True, quiet=True):
    """A `distributed.Client`: connected to ``scheduler``, or on a new local cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); None: a
        `~distributed.LocalCluster` on this machine, closed on exit.
    n_workers : int, optional
        Local cluster only: worker processes (default: the usable cores).
    processes : bool
        Local cluster only: workers in processes (default) or threads of this process.
    quiet : bool
        Keep distributed's INFO logging (worker start/stop lines) off the console.

    Yields
    ------
    `distributed.Client`

    Raises
    ------
    OSError
        The scheduler cannot be reached (message names the address).
    """
    from distributed import Client

    if quiet:
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except (OSError, TimeoutError) as error:
            raise OSError(f"cannot reach the Dask scheduler at {scheduler}: {error}") from None
        with client:
            yield client
        return
    with (
        _local_cluster(worker_count(n_workers), processes, quiet) as cluster,
        Client(cluster) as client,
    ):
        yield client


#: The environment of local worker processes: one numba (and BLAS) thread each.
WORKER_ENVIRONMENT = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _local_cluster(n_workers, processes, quiet):
    """A started `~distributed.LocalCluster` of single-threaded workers.

    Worker processes get :data:`WORKER_ENVIRONMENT`: set in this process only while they
    start (so that it is there before their first import), and given to their nannies
    (a worker restarted later gets it too). Workers in threads share this process's
    numba threads: its environment is not touched (numba refuses a new
    ``NUMBA_NUM_THREADS`` once its threads run, at its next compilation).
    """
    from distributed import LocalCluster

    settings = {
        "n_workers": n_workers,
        "threads_per_worker": 1,
        "processes": processes,
        "dashboard_address": None,
        "silence_logs": logging.CRITICAL if quiet else logging.INFO,
    }
    if not processes:
        return LocalCluster(**settings)
    with _worker_environment(WORKER_ENVIRONMENT):
        return LocalCluster(**settings, env=dict(WORKER_ENVIRONMENT))


@contextlib.contextmanager
def _worker_environment(values):
    """Set environment variables in this process, restored on exit."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def absolute_path(path):
    """``path`` absolute, ``~`` expanded (a string)."""
    return os.path.abspath(os.path.expanduser(path))


def absolute_inputs(config):
    """A copy of ``config`` whose input paths are absolute (workers may run elsewhere).

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`

    Returns
    -------
    `~rtafast.pipeline.config.PipelineConfig`
    """
    from .pipeline.config import validate_config

    data = config.model_dump(mode="json")
    section = data["input"]
    for key in ("datastore", "irf_file", "watch"):
        if section[key]:
            section[key] = absolute_path(section[key])
    section["events"] = [absolute_path(path) for path in section["events"]]
    return validate_config(data)
