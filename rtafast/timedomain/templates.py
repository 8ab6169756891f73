"""Decay templates: the expected source counts of each bunch, per unit norm, of a
power-law decay from T0 (:func:`rtafast.models.temporal.decay_weights`)."""

import numpy as np

from ..models.temporal import decay_weights

__all__ = ["DEFAULT_DECAY_INDICES", "DEFAULT_ONSETS_S", "decay_templates"]

#: Decay indices of the LiFT grid (afterglows: ~0.8-2.0).
DEFAULT_DECAY_INDICES = (0.8, 1.2, 1.6, 2.0)
#: Onsets of the LiFT grid, s after T0 (no flux before; the afterglows of the study
#: start 10-100 s after T0).
DEFAULT_ONSETS_S = (10.0, 60.0, 100.0)


def decay_templates(start_s, stop_s, livetime_s, indices=DEFAULT_DECAY_INDICES, tau_s=1.0,
                    onsets_s=DEFAULT_ONSETS_S):
    """Templates ``(n_indices, n_bunches)``: the decay integral over each bunch times its
    live fraction (a bunch's exposure rate is constant within one pointing).

    Parameters
    ----------
    start_s, stop_s : array_like, shape (n_bunches,)
        Bunch start and stop, s since T0 (before an onset the template is 0; with an
        onset of 0, a bunch starting at T0 diverges for indices >= 1).
    livetime_s : array_like, shape (n_bunches,)
        Live time of each bunch, s.
    indices : sequence of float
        Decay indices (``F ∝ (t - T0)^-index``).
    tau_s : float
        Time scale, s (only scales the templates: the fit's TS does not depend on it).
    onsets_s : sequence of float
        Onsets, s after T0 (no flux before): one template per index and onset
        (index-major).

    Returns
    -------
    templates : `~numpy.ndarray`, float64, C-contiguous, ``(n_indices * n_onsets,
        n_bunches)``

    Raises
    ------
    ValueError
        A bunch that stops before it starts, a live time outside ``[0, stop -
        start]`` (named by index), or a divergent template.
    """
    start, stop, livetime = (np.asarray(a, dtype=float) for a in (start_s, stop_s, livetime_s))
    duration = stop - start
    bad = np.flatnonzero(~(duration > 0))
    if bad.size:
        raise ValueError(f"decay templates: bunches {bad[:5].tolist()} stop before they "
                         f"start ({start[bad[0]]} s, {stop[bad[0]]} s since T0)")
    if min(onsets_s) <= 0 and start.min() <= 0 and max(indices) >= 1:
        raise ValueError("decay templates: a bunch starts at or before T0 and an onset is 0: "
                         "the decay's integral diverges (give onsets > 0)")
    bad = np.flatnonzero(~((livetime >= 0) & (livetime <= duration * (1 + 1e-9))))
    if bad.size:
        raise ValueError(f"decay templates: bunches {bad[:5].tolist()} have a live time "
                         f"outside [0, duration] ({livetime[bad[0]]} s)")
    intervals = np.stack([start, stop], axis=1)
    fraction = livetime / duration
    return np.ascontiguousarray(
        [decay_weights(intervals, 0.0, tau_s, index, onset) * fraction
         for index in indices for onset in onsets_s]
    )
