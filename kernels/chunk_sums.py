"""The chunked numba reductions of the statistic families, written once.

The *cash* and *wstat* CPU kernels sum their bins chunk by chunk
(:data:`~rtafast_kernels.launch.CHUNK` bins, a partition independent of the thread
count) into an array the host allocates; :func:`sum_chunks` adds the chunks in their
order, so the rounding of a result does not depend on the number of threads.
:func:`triple_reduce_source` is the whole loop of a one-norm reduction (the statistic,
its gradient and its curvature), given the family's function that adds one bin.
"""

import types

import numba

from .jit import cpu
from .launch import CHUNK

__all__ = ["sum_chunks", "triple_reduce_source"]


@cpu
def sum_chunks(partial, out):
    """``out[j] = 2 * sum_c partial[c, j]``, chunks added in order (serial loop).

    Parameters
    ----------
    partial : array, shape (n_chunks, width)
        Each chunk's half sums.
    out : array, shape (width,)
        Written: twice the sums over the chunks.
    """
    for j in range(partial.shape[1]):
        total = 0.0
        for c in range(partial.shape[0]):
            total += partial[c, j]
        out[j] = 2.0 * total


def _triple_reduce(x0, x1, x2, x3, x4, partial, out):
    """The loop of :func:`triple_reduce_source` (``add_bin`` is the family's global)."""
    n = x0.shape[0]
    for c in numba.prange(partial.shape[0]):
        stat = 0.0
        grad = 0.0
        hess = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            stat, grad, hess = add_bin(stat, grad, hess, x0, x1, x2, x3, x4, i)  # noqa: F821
        partial[c, 0] = stat
        partial[c, 1] = grad
        partial[c, 2] = hess
    sum_chunks(partial, out)


def triple_reduce_source(name, add_bin):
    """Source of a chunked one-norm reduction, to compile with :func:`~.jit.cpu_kernel`.

    The kernel is ``kernel(x0, x1, x2, x3, x4, partial, out)``: five inputs of the
    family (``x0`` has one value per bin), ``partial`` of shape ``(n_chunks, 3)``
    receives each chunk's half (statistic, gradient, curvature) and ``out`` (3,) twice
    their totals (:func:`sum_chunks`).

    Parameters
    ----------
    name : str
        The kernel's name, one per family: it names its on-disk cache entry and its
        compilation's log line.
    add_bin : function compiled with :func:`~.jit.cpu`
        ``add_bin(stat, grad, hess, x0, x1, x2, x3, x4, i) -> (stat, grad, hess)``,
        the sums with bin ``i`` added.
    """
    namespace = {**globals(), "add_bin": add_bin}  # resolved by numba when it compiles
    source = types.FunctionType(_triple_reduce.__code__, namespace, name)
    source.__qualname__ = name
    return source
