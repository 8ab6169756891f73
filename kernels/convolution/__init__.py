"""Kernel family *convolution*: image-plane correlations with top-hat and ring kernels
(ring background, the excess map's correlation).

``reference`` (NumPy), ``cpu`` (numba), ``gpu`` (CUDA).
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {}
