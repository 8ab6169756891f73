"""Where one cuda ``bin_into`` of a small bunch spends its time (real GPU only).

On the H200 lease (2026-12-04) ``bin_into`` of 10^4 events into a 10x200x200 cube took
1.2 ms on cuda against 0.17 ms on numba, and 30 k or 140 k real events cost the same
~2.5 ms in ``fill_counts``: a fixed cost per call, not the kernel. These rows time its
pieces one by one, each ending with the GPU synchronised, so that the next lease shows
which to remove: the uploads of the columns and of the parameters, a numba-cuda launch
on CuPy arrays (with and without numba's stream synchronisation per CUDA-array-interface
argument, ``NUMBA_CUDA_ARRAY_INTERFACE_SYNC``; and on numba's own device arrays, with
the cost of making them from CuPy's), the binning kernel itself, and reading
the outcome back (the classes' counts in one copy since 2026-12-04; at the H200 run three
reductions each read back and the ambiguous events' flags); and, for
``fill_counts``, which returns a host Map, the download of a 10x200x200 float64 cube.
Run: ``RTAFAST_TEST_REAL_GPU=1 python -m pytest benchmarks/test_bench_cuda_overhead.py
--benchmark-only`` (``ci/gpu-check.sh`` with ``GPU_CHECK_BENCH_FILES``).
"""

import numpy as np
import pytest
from bench_settings import rounds
from test_bench_binning import GEOM, N_BINS, _events

from rtafast.events.binning import GeomBinning, bin_into, event_columns
from rtafast_kernels import available_backends, resolve_backend
from rtafast_kernels.launch import SIMULATED, grid

N_EVENTS = 10**4
PIECES = [
    "upload 3 event columns",
    "upload parameters and edges",
    "empty launch, no arguments",
    "empty launch, 7 CuPy arguments",
    "empty launch, 7 CuPy arguments, no CAI sync",
    "empty launch, 7 numba device arrays",
    "wrap 7 CuPy arrays as numba device arrays",
    "binning kernel alone",
    "read the outcome back",
    "bin_into, all of it",
    "download the cube (3.2 MB)",
]


@pytest.fixture(scope="module")
def cuda():
    """The cuda backend on a real GPU, the bunch, and its arrays already on the device."""
    ok, why = available_backends()["cuda"]
    if SIMULATED or not ok:
        pytest.skip(f"needs a real GPU (cuda backend: {why})")
    from numba import cuda as numba_cuda

    backend = resolve_backend("cuda")
    binning = GeomBinning.for_geom(GEOM)
    columns = event_columns(_events(N_EVENTS, seed=1), binning.axis.unit)
    xp = backend.xp
    params = binning.params_for(columns[0].dtype, columns[2].dtype)

    @numba_cuda.jit
    def empty_7(a, b, c, d, e, f, g):
        pass

    @numba_cuda.jit
    def empty_0():
        pass

    state = {
        "backend": backend,
        "binning": binning,
        "columns": columns,
        "params": params,
        "device_columns": [xp.asarray(np.ascontiguousarray(c)) for c in columns],
        "device_params": backend.asarray(params),
        "device_edges": backend.asarray(binning.scaled_edges),
        "cube": backend.asarray(np.zeros(binning.n_bins)),
        "codes": xp.empty(N_EVENTS, dtype=xp.int64),
        "empty_7": empty_7,
        "empty_0": empty_0,
    }
    # the same 7 arrays as numba's own device arrays (views of CuPy's memory, made once):
    # is numba-cuda's typing of CuPy arguments the launch's fixed cost? (NVIDIA/numba-cuda
    # issue 578: CuPy arguments launch slower than DeviceNDArray ones)
    state["numba_args"] = [
        numba_cuda.as_cuda_array(a, sync=False) for a in _args7(state)
    ]
    bin_into(state["cube"], binning, *columns, backend)  # compiles the kernels
    empty_7[1, 1](*_args7(state))
    empty_0[1, 1]()
    backend.synchronize()
    return state


def _args7(s):
    """The binning kernel's own arguments: lon, lat, energy, params, edges, codes, cube."""
    return (*s["device_columns"], s["device_params"], s["device_edges"], s["codes"], s["cube"])


def _piece(name, s):
    """The work of one piece (a function of no arguments)."""
    from numba import cuda as numba_cuda
    from numba.cuda.core import config

    from rtafast_kernels.binning.gpu import _bin_kernel
    from rtafast_kernels.binning.reference import outcome_from_codes

    backend, xp = s["backend"], s["backend"].xp
    args7 = _args7(s)

    def no_cai_sync():
        saved, config.CUDA_ARRAY_INTERFACE_SYNC = config.CUDA_ARRAY_INTERFACE_SYNC, 0
        try:
            s["empty_7"][grid(N_EVENTS)](*args7)
        finally:
            config.CUDA_ARRAY_INTERFACE_SYNC = saved

    return {
        "upload 3 event columns": lambda: [
            xp.asarray(np.ascontiguousarray(c)) for c in s["columns"]
        ],
        "upload parameters and edges": lambda: (
            backend.asarray(s["params"]), backend.asarray(s["binning"].scaled_edges)
        ),
        "empty launch, no arguments": lambda: s["empty_0"][grid(N_EVENTS)](),
        "empty launch, 7 CuPy arguments": lambda: s["empty_7"][grid(N_EVENTS)](*args7),
        "empty launch, 7 CuPy arguments, no CAI sync": no_cai_sync,
        "empty launch, 7 numba device arrays": lambda: s["empty_7"][grid(N_EVENTS)](
            *s["numba_args"]
        ),
        "wrap 7 CuPy arrays as numba device arrays": lambda: [
            numba_cuda.as_cuda_array(a, sync=False) for a in args7
        ],
        "binning kernel alone": lambda: _bin_kernel[grid(N_EVENTS)](*args7),
        "read the outcome back": lambda: outcome_from_codes(
            xp, s["codes"], False, backend.to_numpy
        ),
        "bin_into, all of it": lambda: bin_into(s["cube"], s["binning"], *s["columns"], backend),
        "download the cube (3.2 MB)": lambda: backend.to_numpy(s["cube"]),
    }[name]


@pytest.mark.gpu
@pytest.mark.parametrize("piece", PIECES)
def test_cuda_bin_into_pieces(benchmark, record, cuda, piece):
    record("cuda overhead", f"{N_EVENTS:.0e} events into 10x200x200", "rtafast",
           f"cuda {piece}", n_events=N_EVENTS, n_bins=N_BINS)
    work = _piece(piece, cuda)

    def timed():
        out = work()
        cuda["backend"].synchronize()
        return out

    benchmark.pedantic(timed, rounds=rounds(60), warmup_rounds=5, iterations=1)
