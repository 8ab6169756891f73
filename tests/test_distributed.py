"""The local Dask cluster of ``trials`` and ``batch`` (:mod:`rtafast.distributed`): its
workers' environment, and this process's left as it was."""

import os

import numba
import numpy as np
import pytest

from rtafast.distributed import WORKER_ENVIRONMENT, open_client

pytest.importorskip("distributed")


def _environment():
    return {key: os.environ.get(key) for key in WORKER_ENVIRONMENT}


@numba.njit(parallel=True)
def _parallel_sum(values):
    total = 0.0
    for i in numba.prange(values.shape[0]):
        total += values[i]
    return total


def _compile_a_new_kernel():
    """Compile (not from a cache) and run a parallel kernel: numba re-reads its
    environment when it compiles."""

    @numba.njit(parallel=True)
    def doubled_sum(values):
        total = 0.0
        for i in numba.prange(values.shape[0]):
            total += 2.0 * values[i]
        return total

    return doubled_sum(np.ones(1000))


def test_thread_workers_leave_this_process_alone():
    """Workers in threads share this process's numba threads: with them launched, a
    kernel compiled in a task (or here) while the cluster runs still works."""
    _parallel_sum(np.ones(1000))  # numba's threads run from here on
    before = _environment()
    with open_client(n_workers=1, processes=False) as client:
        assert _environment() == before
        assert client.submit(_compile_a_new_kernel).result() == 2000.0
        assert _compile_a_new_kernel() == 2000.0
    assert _environment() == before


def test_worker_processes_get_one_thread_each():
    before = _environment()
    with open_client(n_workers=1, processes=True) as client:
        assert _environment() == before
        seen = client.run(_environment)
        assert list(seen.values()) == [WORKER_ENVIRONMENT]
    assert _environment() == before
