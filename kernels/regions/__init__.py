"""Kernel family *regions*: which of several sky circles (an on region and its off
regions) each event falls in, counted per region and energy bin in one pass.

``element`` (one event's decision), ``reference`` (NumPy), ``cpu`` (numba), ``gpu`` (CUDA);
``exact`` (one event's exact count, built once for ``cpu`` and ``gpu``).
``count_in_circles(backend, ra, dec, energy, circles, bounds, screen, edges, etol, out)``
(``circles``: ``(CIRCLE_SIZE, n_circles)``, see ``element``; ``screen``: their float32
screen, :func:`plane.screen_params`, used by the numba backend) adds
to ``out`` (shape ``(n_circles + 1, n_energy)``, on the backend) the events inside each
circle (rows ``0 .. n_circles - 1``; an event counts in every circle that contains it)
and, in the last row, the events inside at least one of circles ``1 ..`` (the union of
the off regions, gammapy's compound region); it returns the indices of the *ambiguous*
events (within rounding of a circle's edge or an energy edge: not counted, for the
caller to decide with gammapy's arithmetic) as a host array and the number of invalid
(NaN/inf) events.
"""

#: Operations of this family: ``{operation: {backend: module}}`` (see ``registry``).
OPERATIONS = {
    "count_in_circles": {"numpy": "reference", "numba": "cpu", "cuda": "gpu"},
}
