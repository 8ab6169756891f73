"""FFT convolution with the kernel's spectrum cached per (kernel, image shape, device).

The same arithmetic as ``scipy.signal.fftconvolve`` (real FFTs of the zero-padded image
and kernel, product, inverse FFT, the "same" part kept) in float64, with FFT lengths
just long enough that the kept part has no wrap-around (:func:`.plan.fft_size`): the
kernel's transform is computed once per kernel, image shape and array module, and
every plane of a stack goes through one batched transform each way.
"""

from .plan import CachedPlans, fft_size, kernel_key

__all__ = ["fft_convolve", "clear_spectra"]

_spectra = CachedPlans(maxsize=16)


def clear_spectra():
    """Forget the cached kernel spectra (all devices)."""
    _spectra.clear()


def fft_convolve(xp, rfft2, irfft2, planes, kernel, dtype, device_key):
    """Convolve each plane of ``planes`` (n, ny, nx) with a 2D kernel, "same" mode.

    Parameters
    ----------
    xp : module
        Array module of ``planes`` (NumPy or CuPy).
    rfft2, irfft2 : callable
        ``f(array, s)`` 2D real FFT and its inverse over the last two axes.
    planes : array, float64, shape (n, ny, nx)
    kernel : ndarray, float64, shape (ky, kx)
        Checked host array (:func:`.plan.check_kernel`).
    dtype : dtype
        Dtype of the result.
    device_key : hashable
        Names where the spectrum lives (a backend name).

    Returns
    -------
    array of ``dtype``, shape (n, ny, nx), on the device of ``planes``
    """
    ny, nx = planes.shape[-2:]
    ky, kx = kernel.shape
    shape = (fft_size(ny, ky), fft_size(nx, kx))

    def compute():
        return rfft2(xp.asarray(kernel), shape)

    spectrum = _spectra.get((device_key, shape, kernel_key(kernel)), compute)
    transformed = rfft2(planes, shape)
    transformed *= spectrum
    full = irfft2(transformed, shape)
    cy, cx = (ky - 1) // 2, (kx - 1) // 2
    return full[:, cy : cy + ny, cx : cx + nx].astype(dtype)
