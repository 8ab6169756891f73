"""Kernel family *binning*: event columns to a counts cube, every event accounted for.

``element`` (exact per-event math), ``fast_element`` (its float32 screening twin),
``reference`` (NumPy), ``cpu`` (numba), ``gpu`` (CUDA). Every backend returns a
:class:`~rtafast_kernels.binning.reference.BinOutcome`: how many events were counted,
outside, invalid; the indices of the *ambiguous* events (within rounding of a bin edge,
for the caller to decide with gammapy's arithmetic); on request the counted events' bins.
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "bin_events": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
    "scatter_add": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
