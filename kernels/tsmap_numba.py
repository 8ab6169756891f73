"""CPU TS-scan kernel: the per-pixel fit of :mod:`rtafast_kernels.tsmap_element`
compiled with numba, parallel over chunks of pixels (``prange``).

Each chunk allocates one scratch row (``3 x L x ky x kx`` floats): memory is
O(map size + threads x kernel size), never O(map size x kernel size).
"""

import numba
import numpy as np

from .jit import cpu, cpu_kernel
from .tsmap_element import N_OUTPUTS, make_fit_pixel

__all__ = ["ts_scan_numba"]

#: Pixels per ``prange`` iteration (one scratch row each); results do not depend on it.
CHUNK = 64

_fit_pixel = make_fit_pixel(cpu)


def _ts_scan_source(
    pix_y,
    pix_x,
    counts,
    background,
    expo,
    kidx,
    ktab,
    guess,
    threshold,
    use_threshold,
    n_sigma,
    n_sigma_ul,
    rtol,
    max_niter,
    want_errs,
    want_ul,
    out,
):
    npix = pix_y.shape[0]
    size = counts.shape[0] * ktab.shape[1] * ktab.shape[2]
    nchunks = (npix + CHUNK - 1) // CHUNK
    for c in numba.prange(nchunks):
        scratch = np.empty((1, 3, size))
        for j in range(c * CHUNK, min(npix, (c + 1) * CHUNK)):
            _fit_pixel(
                j,
                pix_y[j],
                pix_x[j],
                counts,
                background,
                expo,
                kidx,
                ktab,
                guess[j],
                threshold,
                use_threshold,
                n_sigma,
                n_sigma_ul,
                rtol,
                max_niter,
                want_errs,
                want_ul,
                scratch,
                0,
                out,
            )


_ts_scan_parallel = cpu_kernel(_ts_scan_source, parallel=True)
_ts_scan_serial = cpu_kernel(_ts_scan_source)


def ts_scan_numba(inputs, parallel=True):
    """Run the TS scan of :class:`rtafast_kernels.tsmap_numpy.TSScanInputs` on the CPU.

    Returns
    -------
    ndarray, shape (N_OUTPUTS, npix)
        Rows in :data:`rtafast_kernels.tsmap_element.OUTPUT_NAMES` order.
    """
    npix = inputs.pix_y.shape[0]
    out = np.empty((N_OUTPUTS, npix))
    kernel = _ts_scan_parallel if parallel and npix > CHUNK else _ts_scan_serial
    kernel(
        inputs.pix_y,
        inputs.pix_x,
        inputs.counts,
        inputs.background,
        inputs.expo,
        inputs.kidx,
        inputs.ktab,
        inputs.guess,
        float(inputs.threshold),
        bool(inputs.use_threshold),
        float(inputs.n_sigma),
        float(inputs.n_sigma_ul),
        float(inputs.rtol),
        int(inputs.max_niter),
        bool(inputs.want_errs),
        bool(inputs.want_ul),
        out,
    )
    return out
