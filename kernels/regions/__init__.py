"""Kernel family *regions*: which of several sky circles (an on region and its off
regions) each event falls in, counted per region and energy bin in one pass.

``element`` (one event's decision), ``reference`` (NumPy), ``cpu`` (numba), ``gpu`` (CUDA).
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {}
