"""NumPy/scipy reference of ``convolve_planes``: gammapy's own call, plane by plane.

``WcsNDMap.convolve`` runs ``scipy.signal.convolve(image, kernel, method="fft",
mode="same")`` on each image plane (as stored: a float32 image is transformed in
single precision by scipy) and stores the result in a float32 map; this does exactly
that, so maps made on the numpy backend are gammapy's bit for bit.
"""

import numpy as np
import scipy.signal

from .plan import check_kernel

__all__ = ["convolve_planes"]


def convolve_planes(backend, planes, kernel, dtype=np.float32):
    """Operation ``convolve_planes`` (numpy): scipy's FFT convolution of each plane.

    Parameters
    ----------
    backend : backend object
    planes : array_like, shape (..., ny, nx)
        Image planes (any leading axes), in any real dtype (kept as given, as gammapy).
    kernel : array_like, shape (ky, kx)
        The kernel.
    dtype : dtype, optional
        Dtype of the result (default float32, gammapy's maps).

    Returns
    -------
    ndarray of ``dtype``, same shape as ``planes``
    """
    planes = np.asarray(planes)
    check_kernel(kernel)
    kernel = np.asarray(kernel)  # as given: scipy transforms a float32 kernel in float32
    flat = planes.reshape((-1,) + planes.shape[-2:])
    out = np.empty(flat.shape, dtype=dtype)
    for index, image in enumerate(flat):
        out[index] = scipy.signal.convolve(image, kernel, method="fft", mode="same")
    return out.reshape(planes.shape)
