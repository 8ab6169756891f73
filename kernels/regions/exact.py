"""The exact float64 path of one event, written once for the numba and CUDA kernels.

The kernels differ only in how a count is added (a plain add on the CPU, where each
block has its own counts; an atomic add on the GPU): :func:`make_count_event` builds
the path from the target's compiled element functions and its ``add``. The kernels
list the ambiguous events and count the invalid ones from the status it returns.
"""

__all__ = ["make_count_event"]


def make_count_event(compile_function, functions, add):
    """Compile ``count_event`` for one target.

    Parameters
    ----------
    compile_function : callable
        ``jit.cpu_piece`` (a function of its own, called from the screen's loop for the
        few events it cannot decide) or ``jit.gpu_device``.
    functions : types.SimpleNamespace
        :mod:`rtafast_kernels.regions.element` compiled for the same target
        (``jit.cpu_functions`` or ``jit.gpu_functions``).
    add : callable
        Compiled ``add(out, row, column)``: ``out[row, column] += 1``.

    Returns
    -------
    callable
        ``count_event(i, ra, dec, energy, circles, bounds, edges, etol, out)``: adds
        event ``i`` to ``out`` (every circle that contains it and, in the last row, the
        union of the off circles) and returns its status
        (:func:`~rtafast_kernels.regions.element.event_status`: the energy bin it was
        counted in, ``OUTSIDE``, ``AMBIGUOUS`` (not counted) or ``INVALID``).
    """
    status_of = functions.event_status
    bounds_offset = functions.bounds_offset
    member = functions.member_code
    screen_event = functions.screen_event

    def count_event(i, ra, dec, energy, circles, bounds, edges, etol, out):
        n_circles = circles.shape[1]
        r = float(ra[i])
        d = float(dec[i])
        status = status_of(r, d, float(energy[i]), circles, bounds, edges, etol)
        if status >= 0:
            dra = bounds_offset(r, d, bounds)
            n_inside, first, n_band = screen_event(dra, d, circles)
            if n_inside == 1 and n_band == 0:  # the usual case: one circle, screened
                add(out, first, status)
                if first > 0:
                    add(out, n_circles, status)
            else:
                off = False
                for k in range(n_circles):
                    if member(r, d, dra, circles, k) == 1:
                        add(out, k, status)
                        if k > 0:
                            off = True
                if off:
                    add(out, n_circles, status)
        return status

    return compile_function(count_event)
