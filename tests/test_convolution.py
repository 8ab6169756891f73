"""Kernel family ``convolution``: ``convolve_planes`` equals scipy's FFT convolution.

The numpy backend is gammapy's own call (``scipy.signal.convolve(method="fft",
mode="same")`` plane by plane, float32 result): equal bit for bit. numba (run sums along
rows for ring/top-hat kernels, the cached FFT for dense kernels) and cuda (the cached FFT;
simulated on CI) are compared with scipy on float64 planes: within float32 rounding
(``rtol`` 1.2e-7, twice the half unit) where the value is above 1e-6 of the map's peak,
and ``atol`` 1e-12 of the peak elsewhere (scipy's FFT leaves ~1e-16 of the peak where
the exact sum is 0).
"""

import numpy as np
import pytest
import scipy.signal
from astropy.convolution import Gaussian2DKernel

from rtafast.estimators.convolution import convolve_images, ring_kernel, tophat_kernel
from rtafast_kernels.convolution import cpu, spectral
from rtafast_kernels.convolution.plan import run_plan

RNG = np.random.default_rng(12)

KERNELS = {
    # H.E.S.S. ring of the tutorial at 0.02 deg (r_in 25 px, width 15 px): direct on numba
    "ring": ring_kernel(25.0, 15.0),
    # the excess map's top-hat, normalised to its peak
    "tophat": tophat_kernel(2.0) / tophat_kernel(2.0).max(),
    # dense: every pixel its own run -> the cached FFT on numba
    "gaussian": Gaussian2DKernel(4.0).array,
    # even-sized and asymmetric: checks the flip and scipy's "same" centring
    "asymmetric-even": RNG.random((4, 7)),
    # larger than the image along y
    "tall": np.ones((61, 3)),
}


def _planes(shape=(2, 50, 40), seed=3):
    rng = np.random.default_rng(seed)
    planes = np.stack([rng.poisson(3.0, shape[1:]), rng.random(shape[1:])]).astype(np.float32)
    planes[:, :, :4] = 0.0  # an empty border, as outside a safe mask
    return planes[: shape[0]]


def _scipy(planes, kernel):
    flat = planes.reshape((-1,) + planes.shape[-2:]).astype(np.float64)
    out = [scipy.signal.convolve(p, kernel, method="fft", mode="same") for p in flat]
    return np.array(out).reshape(planes.shape)


def _assert_close(result, reference, rtol=1.2e-7):
    peak = np.abs(reference).max()
    large = np.abs(reference) > 1e-6 * peak
    np.testing.assert_allclose(result[large], reference[large], rtol=rtol, atol=0)
    np.testing.assert_allclose(result[~large], reference[~large], rtol=0, atol=1e-12 * peak)


def _check(backend, result, planes, kernel):
    """numpy: gammapy's call bit for bit; numba, cuda: scipy on float64 planes, rounded."""
    if backend.name == "numpy":
        # the float32 planes as given (scipy transforms them in float32, as in gammapy)
        flat = planes.reshape((-1,) + planes.shape[-2:])
        expected = [scipy.signal.convolve(p, kernel, method="fft", mode="same") for p in flat]
        expected = np.array(expected).astype(np.float32).reshape(planes.shape)
        np.testing.assert_array_equal(result, expected)
    else:
        _assert_close(result, _scipy(planes, kernel))


@pytest.mark.parametrize("name", list(KERNELS))
def test_convolve_planes_matches_scipy(backend, name):
    kernel = KERNELS[name]
    planes = _planes()
    result = backend.to_numpy(backend.convolve_planes(planes, kernel))
    assert result.dtype == np.float32 and result.shape == planes.shape
    _check(backend, result, planes, kernel)


def test_convolve_planes_float64_and_leading_axes(backend):
    kernel = KERNELS["ring"][::3, ::3]  # a smaller ring-like kernel
    planes = np.random.default_rng(5).random((2, 3, 30, 20))
    result = backend.to_numpy(backend.convolve_planes(planes, kernel, np.float64))
    assert result.dtype == np.float64 and result.shape == planes.shape
    expected = _scipy(planes, kernel)
    peak = np.abs(expected).max()
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-13 * peak)


def test_convolve_single_image(backend):
    image = _planes()[0]
    result = backend.to_numpy(backend.convolve_planes(image, KERNELS["tophat"]))
    assert result.shape == image.shape
    _check(backend, result, image, KERNELS["tophat"])


def test_numba_paths():
    """The ring runs directly (two runs per kernel row at most), a dense kernel by FFT."""
    ring_plan = run_plan(np.asarray(KERNELS["ring"], dtype=np.float64))
    assert ring_plan.runs.shape[0] <= 2 * KERNELS["ring"].shape[0]
    assert ring_plan.runs.shape[0] <= cpu.DIRECT_MAX_RUNS_PER_PIXEL
    dense = run_plan(np.asarray(KERNELS["gaussian"], dtype=np.float64))
    assert dense.runs.shape[0] > cpu.DIRECT_MAX_RUNS_PER_PIXEL
    # the FFT path itself (forced) agrees with the direct one on the ring
    planes = _planes().astype(np.float64)
    kernel = np.asarray(KERNELS["ring"], dtype=np.float64)
    fft = spectral.fft_convolve(np, cpu._rfft2, cpu._irfft2, planes, kernel, np.float32, "test")
    direct = cpu.convolve_numba(planes, kernel)
    _assert_close(direct, _scipy(planes, kernel))
    _assert_close(fft, _scipy(planes, kernel))


def test_kernel_spectrum_cached_per_kernel_and_shape():
    spectral.clear_spectra()
    kernel = KERNELS["gaussian"]
    from rtafast_kernels import resolve_backend

    backend = resolve_backend("numba")
    backend.convolve_planes(_planes(), kernel)
    assert len(spectral._spectra) == 1
    backend.convolve_planes(_planes(seed=9), kernel)  # same kernel and shape: reused
    assert len(spectral._spectra) == 1
    backend.convolve_planes(_planes((2, 30, 40)), kernel)  # another image shape
    assert len(spectral._spectra) == 2


@pytest.mark.parametrize(
    "kernel, match",
    [
        (np.full((3, 3), np.nan), "non-finite"),
        (np.ones((2, 3, 3)), "2D"),
        (np.ones((0, 3)), "2D"),
    ],
)
def test_bad_kernel(backend, kernel, match):
    with pytest.raises(ValueError, match=match):
        backend.convolve_planes(_planes(), kernel)


def test_convolve_images_per_plane_kernels(backend):
    planes = _planes()
    tophat = KERNELS["tophat"]
    kernels = np.stack([tophat, tophat * np.arange(1.0, 1.0 + tophat.shape[1])])
    result = convolve_images(planes, kernels, array_backend=backend.name)
    for index in range(2):
        expected = convolve_images(planes[index], kernels[index], array_backend=backend.name)
        np.testing.assert_array_equal(result[index], expected)
    with pytest.raises(ValueError, match="one per plane"):
        convolve_images(planes, np.stack([kernels[0]] * 3), array_backend=backend.name)
