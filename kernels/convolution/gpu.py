"""CUDA twin of ``convolve_planes``: the cached-spectrum FFT on the device (cuFFT).

The planes stay on the device; the kernel's spectrum is computed once per kernel and
image shape and kept there (:mod:`.spectral`). Under numba's CUDA simulator the array
module is NumPy and the same code runs with NumPy's FFT.
"""

import numpy as np

from .plan import check_kernel
from .spectral import fft_convolve

__all__ = ["convolve_planes"]


def convolve_planes(backend, planes, kernel, dtype=np.float32):
    """Operation ``convolve_planes`` (cuda): see :func:`.reference.convolve_planes`.

    ``planes`` may be a host or device array; the result is on the device.
    """
    xp = backend.xp
    planes = xp.asarray(planes, dtype=xp.float64)
    flat = xp.ascontiguousarray(planes.reshape((-1,) + planes.shape[-2:]))

    def rfft2(array, shape):
        return xp.fft.rfft2(array, s=shape, axes=(-2, -1))

    def irfft2(array, shape):
        return xp.fft.irfft2(array, s=shape, axes=(-2, -1))

    out = fft_convolve(xp, rfft2, irfft2, flat, check_kernel(kernel), dtype, backend.name)
    return out.reshape(planes.shape)
