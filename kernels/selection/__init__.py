"""Kernel family *selection*: which events a window keeps (time, energy, cone).

``element`` (one event's decision), ``reference`` (NumPy), ``cpu`` (numba), ``gpu`` (CUDA).
Each event gets a code: 1 selected, 0 rejected, 2 ambiguous (within rounding of a cut,
for the caller to decide with astropy's arithmetic).
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "select_events": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
