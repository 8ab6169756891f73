"""OpenMP settings for numba's thread pool, applied when ``rtafast_kernels`` is imported.

``GOMP_SPINCOUNT`` defaults to :data:`GOMP_SPINCOUNT` (unless the environment sets it
or ``OMP_WAIT_POLICY``): numba's OpenMP threads then sleep soon after a parallel
region instead of spinning for libgomp's default ~300 000 iterations. On a shared
machine (other processes on the cores) the spinning slowed the parallel binning kernel
3-4x (24 ms instead of 6-8 ms for 10^6 events with one core busy elsewhere). libgomp
reads the variable when numba first loads its OpenMP pool, so it is set here, before.
"""

import os

__all__ = ["GOMP_SPINCOUNT"]

#: Spin iterations of idle OpenMP threads before they sleep.
GOMP_SPINCOUNT = "10000"

if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", GOMP_SPINCOUNT)
