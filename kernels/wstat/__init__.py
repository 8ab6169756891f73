"""Kernel family *wstat*: the on/off (WStat) statistic with the background profiled,
and its derivatives in a signal norm, summed over bins.

``element`` (one bin's terms), ``reference`` (NumPy), ``cpu`` (numba), ``gpu`` (CUDA).
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "wstat_reduce": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
