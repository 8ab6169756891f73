"""Settings shared by the benchmark files (quick mode, sizes)."""

import os

import pytest

__all__ = ["QUICK", "FULL", "rounds", "skip_simulated_cuda"]

#: ``rtafast bench --quick`` (``RTAFAST_BENCH_QUICK=1``): fewer rounds, small sizes only.
QUICK = os.environ.get("RTAFAST_BENCH_QUICK") == "1"
#: ``RTAFAST_BENCH_FULL=1``: also the large sizes and scaling sweeps.
FULL = os.environ.get("RTAFAST_BENCH_FULL") == "1" and not QUICK


def rounds(n):
    """Benchmark rounds: ``n``, or a third of it (at least 3) in quick mode."""
    return max(3, n // 3) if QUICK else n


def skip_simulated_cuda(backend):
    """Skip a timing of the cuda backend under numba's CUDA simulator.

    The simulator runs the kernels in Python: its timings mean nothing (its results
    are tested in ``tests/``). On a GPU node (``RTAFAST_TEST_REAL_GPU=1``) the cuda
    backend is timed like the others.
    """
    import numba

    if backend.name == "cuda" and numba.config.ENABLE_CUDASIM:
        pytest.skip("cuda timings need a real GPU (the simulator is tested in tests/)")
