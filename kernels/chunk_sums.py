"""The end of the chunked numba reductions of the statistic families, written once.

The *cash* and *wstat* CPU kernels sum their bins chunk by chunk
(:data:`~rtafast_kernels.launch.CHUNK` bins, a partition independent of the thread
count) into an array the host allocates; :func:`sum_chunks` adds the chunks in their
order, so the rounding of a result does not depend on the number of threads.
"""

from .jit import cpu

__all__ = ["sum_chunks"]


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
