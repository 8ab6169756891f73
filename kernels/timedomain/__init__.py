"""Kernel family *timedomain*: significance of on/off counts accumulated bunch by bunch,
using the arrival times — the brightest time-stretch (time-dependent Li & Ma), a CuSum
change-point statistic and a decay-aware likelihood (LiFT-like).

``element`` (one series' loops), ``reference`` (NumPy), ``cpu`` (numba, parallel over
series), ``gpu`` (CUDA, one thread per series). Arrays: ``on``, ``off``, ``livetime``
float64 ``(n_series, n_bunches)`` (counts in the on region and in the off regions, and
the livetime of each bunch, s), ``alpha`` float64 ``(n_series,)`` (on/off exposure
ratio), ``weights`` float64 ``(n_templates, n_bunches)`` (expected source counts of
each bunch per unit norm, one row per decay template), ``out`` float64
``(n_series, n_bunches)``: window ``k`` is bunches ``0 .. k``.

* ``stretch_lima(backend, on, off, alpha, first, out)``: ``out[s, k]`` = the largest
  signed Li & Ma significance of the stretches of bunches ``i .. k`` ending at ``k``
  (``0 <= i <= k``), for ``k >= first`` (the brightest stretch since T0 is its running
  maximum over ``k``);
* ``cusum(backend, on, off, alpha, livetime, ratio, out)``: Page's CuSum ``S_k``;
* ``lift(backend, on, off, alpha, livetime, weights, first, out)``: the largest, over
  the templates, ``sqrt(TS)`` of the window ``0 .. k`` (``k >= first``).

The formulas are in :mod:`.element`.
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "stretch_lima": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
    "cusum": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
    "lift": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
