"""Image convolutions shared by the map estimators and the ring background (gammapy's numbers).

gammapy's ``WcsNDMap.convolve`` convolves each image plane with
``scipy.signal.convolve(method="fft", mode="same")`` and stores the result as
float32; :func:`convolve_images` does that on plain arrays, without the Map, unit and
process-pool overhead, through the kernel family ``rtafast_kernels.convolution``
(operation ``convolve_planes``). On the default ``"numpy"`` backend it is scipy's own
call, so the estimators built on it reproduce gammapy's maps bit for bit; the numba
and cuda backends agree within float32 rounding (they sum in float64 without scipy's
single-precision transform of float32 images).
"""

import numpy as np
from astropy.convolution import Ring2DKernel, Tophat2DKernel

from rtafast_kernels import resolve_backend

__all__ = ["convolve_images", "ring_kernel", "tophat_kernel"]


def convolve_images(data, kernel, dtype=np.float32, array_backend="numpy"):
    """Convolve each image plane of ``data`` with a kernel (FFT numbers, mode "same").

    Parameters
    ----------
    data : ndarray, shape (..., ny, nx)
        Image planes (any leading axes), on the host.
    kernel : ndarray, shape (ky, kx) or (n_planes, ky, kx)
        One kernel for every plane, or one per plane (leading axes flattened).
    dtype : dtype, optional
        Dtype of the result: float32 (gammapy's maps, default) or float64 (before that
        rounding).
    array_backend : {"numpy", "numba", "cuda", "auto", None}, optional
        Backend of the kernel family; default ``"numpy"`` (scipy, gammapy's bits).

    Returns
    -------
    ndarray of ``dtype``, same shape as ``data``, on the host
    """
    backend = resolve_backend(array_backend)
    data = np.asarray(data)
    kernel = np.asarray(kernel)
    if kernel.ndim == 2:
        return backend.to_numpy(backend.convolve_planes(data, kernel, dtype))
    planes = data.reshape((-1,) + data.shape[-2:])
    if kernel.shape[0] != planes.shape[0] or kernel.ndim != 3:
        raise ValueError(
            f"a kernel of shape {kernel.shape} for {planes.shape[0]} image planes: "
            "give one 2D kernel or one per plane"
        )
    out = np.empty(planes.shape, dtype=dtype)
    for index, image in enumerate(planes):
        out[index] = backend.to_numpy(backend.convolve_planes(image, kernel[index], dtype))
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
    return Tophat2DKernel(radius_pix).array


def ring_kernel(r_in_pix, width_pix):
    """Ring kernel normalised to its peak (1 inside the ring), as gammapy's ring makers.

    Parameters
    ----------
    r_in_pix, width_pix : float
        Inner radius and width, in pixels.

    Returns
    -------
    ndarray, shape (k, k)
        astropy's ``Ring2DKernel(r_in_pix, width_pix)`` array after ``normalize("peak")``.
    """
    ring = Ring2DKernel(r_in_pix, width_pix)
    ring.normalize("peak")
    return ring.array
