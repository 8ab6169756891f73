"""Image convolutions shared by the map estimators (same numbers as gammapy's).

gammapy's ``WcsNDMap.convolve`` convolves each image plane with
``scipy.signal.convolve(method="fft", mode="same")`` and stores the result as
float32; :func:`convolve_images` does exactly that on plain arrays, without the
Map, unit and process-pool overhead, so the estimators built on it reproduce
gammapy's maps bit for bit.
"""

import numpy as np
import scipy.signal

__all__ = ["convolve_images", "tophat_kernel"]


def convolve_images(data, kernel):
    """Convolve each image plane of ``data`` with a kernel (FFT, mode "same", float32 out).

    Parameters
    ----------
    data : ndarray, shape (..., ny, nx)
        Image planes (any leading axes).
    kernel : ndarray, shape (ky, kx) or (n_planes, ky, kx)
        One kernel for every plane, or one per plane (leading axes flattened).

    Returns
    -------
    ndarray, float32, same shape as ``data``
    """
    data = np.asarray(data)
    kernel = np.asarray(kernel)
    planes = data.reshape((-1,) + data.shape[-2:])
    out = np.empty(planes.shape, dtype=np.float32)
    for index, image in enumerate(planes):
        plane_kernel = kernel if kernel.ndim == 2 else kernel[index]
        out[index] = scipy.signal.convolve(image, plane_kernel, method="fft", mode="same")
    return out.reshape(data.shape)


def tophat_kernel(radius_pix):
    """Top-hat (disk) kernel of a radius in pixels, as ``astropy``'s ``Tophat2DKernel``.

    Parameters
    ----------
    radius_pix : float
        Radius, in pixels.

    Returns
    -------
    ndarray, shape (k, k)
        The kernel array (normalised to unit sum, as astropy's).
    """
    from astropy.convolution import Tophat2DKernel

    return Tophat2DKernel(radius_pix).array
