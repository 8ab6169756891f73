"""``fill_counts`` of real event lists with 1, 2, 4, ... numba threads, gammapy beside.

On the H200 lease's 16 cores (2026-12-04) numba's ``fill_counts`` of the 4 Crab runs
(ICRS) took 0.875 ms with 16 threads, where this project's 2-core VM takes 0.38-0.41 ms;
gammapy took 13.1 ms there and 5.7 ms here, so that node is slower per call in general.
These rows tell, on any machine, whether more threads help or hurt one call of this size
(numba's pool as ``prange`` uses it; counts asserted equal to gammapy's).
"""

import numba
import numpy as np
import pytest
from bench_settings import rounds
from test_bench_binning import _fill_with_gammapy, real_event_set

from rtafast.events.binning import fill_counts

SETS = ["hess-crab-4-runs", "hess-pks2155-15-runs"]
THREADS = [1, 2, 4, 8, 16]


@pytest.fixture(scope="module", params=SETS)
def icrs_events(request, data_dir):
    return real_event_set(request.param, "icrs")


@pytest.mark.data
@pytest.mark.parametrize("n_threads", [0, *THREADS], ids=["gammapy", *map(str, THREADS)])
def test_fill_by_threads(benchmark, record, icrs_events, n_threads):
    """gammapy's ``fill_events`` (``n_threads`` 0) or rtafast's ``fill_counts`` on numba
    with ``n_threads`` threads."""
    if n_threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip(f"numba has {numba.config.NUMBA_NUM_THREADS} threads here")
    size, event_list, geom, reference = icrs_events
    if not n_threads:
        record("bin real events by threads", size, "gammapy")
        counts = benchmark.pedantic(
            _fill_with_gammapy, args=(geom, event_list), rounds=rounds(5), iterations=1
        )
        np.testing.assert_array_equal(counts.data, reference.data)
        return
    record("bin real events by threads", size, "rtafast", f"numba {n_threads} threads")
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        fill_counts(geom, event_list, array_backend="numba")  # JIT warm-up
        counts = benchmark.pedantic(
            lambda: fill_counts(geom, event_list, array_backend="numba"),
            rounds=rounds(15),
            warmup_rounds=2,
            iterations=1,
        )
    finally:
        numba.set_num_threads(previous)
    np.testing.assert_array_equal(counts.data, reference.data)
