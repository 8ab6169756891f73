"""The one place where element math is compiled for each target.

:func:`cpu` compiles a plain-Python scalar function with ``numba.njit`` (inlined
into the calling CPU kernels); :func:`gpu_device` compiles the same function as a
CUDA device function. Importing this module does not import CUDA or CuPy:
:func:`gpu_device` imports ``numba.cuda`` only when called.
"""

import numba

__all__ = ["cpu", "gpu_device"]


def cpu(func):
    """Compile ``func`` for the CPU (nopython, no GIL, inlined into callers)."""
    return numba.njit(nogil=True, inline="always")(func)


def gpu_device(func):
    """Compile ``func`` as a CUDA device function (or for numba's CUDA simulator)."""
    from numba import cuda

    return cuda.jit(device=True)(func)


# Note: no ``cache=True`` anywhere. numba's on-disk cache only tracks the file of
# the cached function, not the element functions it inlines from other modules,
# so an edit of ``element.py`` would silently keep running stale machine code.
