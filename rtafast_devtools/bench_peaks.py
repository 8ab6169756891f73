"""Peak figures of the hardware a benchmark row ran on: flop rate and memory bandwidth.

Measured once per process and cached: the flop rate of one core by a single-threaded
DGEMM (NumPy's BLAS in a subprocess limited to one thread) times the number of cores
the backend uses; the bandwidth by a STREAM triad compiled with numba over arrays four
times the last-level cache, with the backend's number of threads. The environment
variables ``RTAFAST_PEAK_GFLOPS_CORE``, ``RTAFAST_PEAK_GBS_CORE``, ``RTAFAST_PEAK_GBS``
(CPU) and ``RTAFAST_GPU_PEAK_GFLOPS``, ``RTAFAST_GPU_PEAK_GBS`` (cuda) override them.
The cuda backend's figures come from the CuPy device attributes (CuPy imported only
for rows of the cuda backend). Used by :mod:`rtafast_devtools.bench_floors`.
"""

import functools
import math
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

__all__ = ["Peaks", "backend_peaks", "cpu_peaks", "gpu_peaks", "gpu_peaks_from_attributes"]


@dataclass(frozen=True)
class Peaks:
    """Peak figures of the hardware a backend runs on.

    Attributes
    ----------
    flops_per_s : float
        Peak arithmetic rate, flop/s (per-core rate times the cores used).
    bytes_per_s : float
        Peak memory bandwidth, byte/s.
    cores : int
        CPU cores (threads) used, or the GPU's streaming multiprocessors.
    source : str
        How the figures were obtained (measured, environment, device attributes).
    """

    flops_per_s: float
    bytes_per_s: float
    cores: int
    source: str


def _env_rate(name):
    """``$name`` in G-units per second (GFLOP/s or GB/s) as units per second, or None."""
    value = os.environ.get(name)
    if not value:
        return None
    rate = float(value) * 1e9
    if not rate > 0:
        raise ValueError(f"${name} must be a positive rate in G/s, got {value!r}")
    return rate


def _llc_bytes():
    """Size of the last-level CPU cache in bytes (32 MiB if it cannot be read)."""
    base = "/sys/devices/system/cpu/cpu0/cache"
    best = 0
    try:
        for entry in os.listdir(base):
            with open(os.path.join(base, entry, "size")) as handle:
                text = handle.read().strip()
            scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(text[-1:], 1)
            best = max(best, int(text.rstrip("KMG")) * scale)
    except (OSError, ValueError):
        pass
    return best or 32 * 1024**2


_MATMUL_SCRIPT = """
import time
import numpy as np
n = {n}
rng = np.random.default_rng(0)
a, b = rng.random((n, n)), rng.random((n, n))
a @ b
best = min(
    (lambda t: (a @ b, time.perf_counter() - t)[1])(time.perf_counter()) for _ in range({repeats})
)
print(2.0 * n**3 / best)
"""


@functools.cache
def _measured_core_flops(n=1024, repeats=5):
    """Best-of-``repeats`` single-threaded float64 matmul (DGEMM) rate, flop/s.

    Run in a subprocess with the BLAS thread pools limited to one thread; if that
    fails, timed here and divided by the CPUs this process may use.
    """
    script = _MATMUL_SCRIPT.format(n=n, repeats=repeats)
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
        )
        return float(done.stdout.split()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        import numpy as np

        a = np.random.default_rng(0).random((n, n))
        a @ a
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - start)
        return 2.0 * n**3 / best / len(os.sched_getaffinity(0))


@functools.cache
def _triad_kernels():
    import numba

    def triad(a, b, c, s):
        for i in numba.prange(a.shape[0]):
            a[i] = b[i] + s * c[i]

    return numba.njit(triad), numba.njit(parallel=True)(triad)


@functools.cache
def _measured_bandwidth(threads, n_elements=None, repeats=10):
    """Best-of-``repeats`` STREAM triad ``a = b + s c`` (float64) with ``threads`` threads, B/s.

    Counts 24 bytes per element (STREAM's convention: write-allocate traffic not
    counted). Each array holds ``n_elements`` values, by default four times the
    last-level cache.
    """
    import numba
    import numpy as np

    if n_elements is None:
        n_elements = min(max(4 * _llc_bytes() // 8, 2**22), 2**25)
    serial, parallel = _triad_kernels()
    a = np.empty(n_elements)
    b = np.full(n_elements, 1.0)
    c = np.full(n_elements, 2.0)
    previous = numba.get_num_threads()
    threads = max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS))
    kernel = serial if threads == 1 else parallel
    try:
        if threads > 1:
            numba.set_num_threads(threads)
        kernel(a, b, c, 3.0)  # compilation and first touch of ``a``
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            kernel(a, b, c, 3.0)
            best = min(best, time.perf_counter() - start)
    finally:
        numba.set_num_threads(previous)
    return 3 * 8 * n_elements / best


def cpu_peaks(threads=1):
    """Peak figures of ``threads`` CPU cores (measured once per process, or from the env).

    Parameters
    ----------
    threads : int
        Cores the backend uses (1 for NumPy, the numba thread count for numba).

    Returns
    -------
    Peaks
        ``flops_per_s = threads x`` one core's DGEMM rate
        (``$RTAFAST_PEAK_GFLOPS_CORE`` in GFLOP/s overrides it); ``bytes_per_s`` the
        STREAM triad with ``threads`` threads, or with one thread where that was
        faster (a run disturbed by other load) (``$RTAFAST_PEAK_GBS_CORE`` for one
        thread, ``$RTAFAST_PEAK_GBS`` for more, in GB/s, override it).
    """
    threads = max(1, int(threads))
    sources = []
    per_core = _env_rate("RTAFAST_PEAK_GFLOPS_CORE")
    if per_core is None:
        per_core = _measured_core_flops()
        sources.append("DGEMM 1 thread")
    else:
        sources.append("$RTAFAST_PEAK_GFLOPS_CORE")
    name = "RTAFAST_PEAK_GBS_CORE" if threads == 1 else "RTAFAST_PEAK_GBS"
    bandwidth = _env_rate(name)
    if bandwidth is None:
        # more threads never need less bandwidth: a noisy multi-thread run keeps the 1-thread rate
        bandwidth, used = _measured_bandwidth(threads), threads
        if threads > 1 and _measured_bandwidth(1) > bandwidth:
            bandwidth, used = _measured_bandwidth(1), 1
        note = "" if used == threads else f" (beat the {threads}-thread run)"
        sources.append(f"STREAM triad {used} thread{'s' if used > 1 else ''}{note}")
    else:
        sources.append(f"${name}")
    return Peaks(per_core * threads, bandwidth, threads, ", ".join(sources))


#: FP64 FMA units per streaming multiprocessor, by compute capability (CUDA
#: programming guide, arithmetic-instruction throughput). Unknown: the largest
#: value, so that the floor stays a lower bound.
FP64_UNITS_PER_SM = {
    (6, 0): 32,
    (6, 1): 4,
    (6, 2): 4,
    (7, 0): 32,
    (7, 2): 32,
    (7, 5): 2,
    (8, 0): 32,
    (8, 6): 2,
    (8, 9): 2,
    (9, 0): 64,
    (10, 0): 64,
}


def gpu_peaks_from_attributes(attributes):
    """GPU peak figures from CUDA device attributes (CuPy's ``Device.attributes`` names).

    Parameters
    ----------
    attributes : dict
        ``ClockRate`` and ``MemoryClockRate`` (kHz), ``GlobalMemoryBusWidth`` (bits),
        ``MultiProcessorCount``, ``ComputeCapabilityMajor``/``Minor``.

    Returns
    -------
    Peaks
        ``flops_per_s = SMs x FP64 units per SM x 2 x clock``; ``bytes_per_s = 2 x
        memory clock x bus width / 8`` (double data rate).
    """
    sms = int(attributes["MultiProcessorCount"])
    cc = (int(attributes["ComputeCapabilityMajor"]), int(attributes["ComputeCapabilityMinor"]))
    units = FP64_UNITS_PER_SM.get(cc, max(FP64_UNITS_PER_SM.values()))
    flops = sms * units * 2 * float(attributes["ClockRate"]) * 1e3
    bandwidth = (
        2 * float(attributes["MemoryClockRate"]) * 1e3 * int(attributes["GlobalMemoryBusWidth"]) / 8
    )
    return Peaks(flops, bandwidth, sms, f"device attributes (sm_{cc[0]}{cc[1]}, {units} FP64/SM)")


@functools.cache
def _device_peaks():
    import cupy

    device = cupy.cuda.Device()
    attributes = dict(device.attributes)
    attributes.setdefault("ComputeCapabilityMajor", int(device.compute_capability[:-1]))
    attributes.setdefault("ComputeCapabilityMinor", int(device.compute_capability[-1]))
    return gpu_peaks_from_attributes(attributes)


def gpu_peaks():
    """Peak figures of the current CUDA device (imports CuPy).

    ``$RTAFAST_GPU_PEAK_GFLOPS`` and ``$RTAFAST_GPU_PEAK_GBS`` override the figures
    derived from the device attributes (:func:`gpu_peaks_from_attributes`).
    """
    flops = _env_rate("RTAFAST_GPU_PEAK_GFLOPS")
    bandwidth = _env_rate("RTAFAST_GPU_PEAK_GBS")
    if flops is not None and bandwidth is not None:
        return Peaks(flops, bandwidth, 0, "$RTAFAST_GPU_PEAK_GFLOPS, $RTAFAST_GPU_PEAK_GBS")
    device = _device_peaks()
    return Peaks(
        flops if flops is not None else device.flops_per_s,
        bandwidth if bandwidth is not None else device.bytes_per_s,
        device.cores,
        device.source,
    )


def _numba_threads(device):
    match = re.search(r"(\d+) numba threads?", device or "")
    if match:
        return int(match.group(1))
    import numba

    return numba.get_num_threads()


def backend_peaks(backend_label, device=""):
    """Peak figures for a row's backend label (``"numba step"``, ``"numpy"``, ``"cuda"``).

    NumPy runs on one core; numba on its threads (read from the row's device
    string ``"..., 2 numba threads"``, else numba's current count); cuda on the
    current GPU.
    """
    family = (backend_label or "").split()[0] if backend_label else ""
    if family == "cuda":
        return gpu_peaks()
    if family == "numba":
        return cpu_peaks(_numba_threads(device))
    return cpu_peaks(1)
