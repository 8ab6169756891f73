"""Kernel family *convolution*: image-plane convolutions with top-hat and ring kernels
(ring background, the excess map's correlation).

One operation, ``convolve_planes(backend, planes, kernel, dtype)``: each image plane of a
stack convolved with one small 2D kernel, the numbers of ``scipy.signal.convolve(image,
kernel, method="fft", mode="same")`` (gammapy's ``WcsNDMap.convolve``) rounded to
``dtype``. ``plan`` (the kernel's run-length form and FFT sizes, cached), ``element``
(one image row's prefix sums and run sums), ``spectral`` (FFT with the kernel's spectrum
cached per kernel and image shape), ``reference`` (scipy, gammapy's own call),
``cpu`` (numba: run sums along image rows, or the cached FFT for kernels without long
runs), ``gpu`` (the cached FFT with the backend's FFT: cuFFT through CuPy).
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "convolve_planes": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
