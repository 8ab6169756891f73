"""Kernel family *cash*: the Cash statistic and the flux-only (linear-norm) fit.

``element`` (one bin's term and derivatives), ``reference`` (NumPy), ``cpu`` (numba),
``gpu`` (CUDA); ``prepare`` (bin classification), ``problem`` (:class:`CashProblem`),
``normfit`` (Newton on the norms, errors, TS), which use the operations below through
the backend.
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "cash_sum": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
    "cash_reduce": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
    "prepare": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
