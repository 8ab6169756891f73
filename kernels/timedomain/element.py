"""Element math of the time-domain statistics, written once (one series per call).

Scalar loops using only :mod:`math`: the same source compiles with ``numba.njit`` for
the CPU and as CUDA device functions (:mod:`rtafast_kernels.jit`);
:mod:`rtafast_kernels.timedomain.reference` is the vectorised NumPy twin. ``s`` is the
row of the series (``on[s]``, ``off[s]``, ...; see the family's docstring).

*Li & Ma* (1983, eq. 17), signed by the excess ``n_on - a n_off``::

    S = sign * sqrt(2 [n_on ln((1 + a)/a * n_on/(n_on + n_off))
                       + n_off ln((1 + a) * n_off/(n_on + n_off))])

(each term 0 where its count is 0; 0 when both are).

*Background per bunch* (CuSum and LiFT): the off counts give the on region's
background rate, ``b_j = a * OFF * t_j / T`` with ``OFF`` and ``T`` the off counts and
livetime summed over the bunches used (CuSum: ``0 .. j``, causal; LiFT: the window).

*CuSum* (Page 1954) against a signal of ``ratio`` times the background::

    L_j = n_j ln(1 + ratio) - ratio b_j,     S_j = max(0, S_{j-1} + L_j),  S_{-1} = 0

*LiFT-like decay-aware likelihood*: the on counts of bunch ``j`` are Poisson with mean
``b_j + s w_j`` (``w_j``: the template's expected source counts per unit norm, the
decay-weighted exposure of the bunch), one norm ``s >= 0``::

    TS = 2 sum_j [n_j ln(1 + s w_j / b_j) - s w_j]

maximised by a safeguarded Newton iteration on ``g(s) = sum_j n_j w_j/(b_j + s w_j)
- sum_j w_j`` (decreasing; ``g(0) <= 0`` gives ``s = 0``, ``TS = 0``; the root lies in
``[0, N_on / sum_j w_j]``). A window whose off counts are 0 has no background
estimate: its value is 0.
"""

import math

__all__ = [
    "LIFT_ITERATIONS",
    "LIFT_TOLERANCE",
    "cusum_series",
    "lift_sqrt_ts",
    "lift_window",
    "lima_signed",
    "stretch_window",
]

#: Most Newton/bisection steps of one LiFT norm.
LIFT_ITERATIONS = 60
#: Relative width of the bracket at which the LiFT norm is converged.
LIFT_TOLERANCE = 1e-12


def lima_signed(n_on, n_off, a):
    """Li & Ma's eq. 17, signed by ``n_on - a n_off`` (0 for no counts)."""
    total = n_on + n_off
    if total <= 0.0:
        return 0.0
    ts = 0.0
    if n_on > 0.0:
        ts += n_on * math.log((1.0 + a) / a * n_on / total)
    if n_off > 0.0:
        ts += n_off * math.log((1.0 + a) * n_off / total)
    root = math.sqrt(max(2.0 * ts, 0.0))
    return root if n_on - a * n_off >= 0.0 else -root


def stretch_window(on, off, a, s, k):
    """The largest signed Li & Ma significance of the stretches ``i .. k`` (``i <= k``)."""
    n_on = 0.0
    n_off = 0.0
    best = -math.inf
    for i in range(k, -1, -1):
        n_on += on[s, i]
        n_off += off[s, i]
        value = lima_signed(n_on, n_off, a)
        if value > best:
            best = value
    return best


def cusum_series(on, off, a, livetime, ratio, s, out):
    """Page's CuSum of series ``s`` into ``out[s]`` (every bunch)."""
    log_gain = math.log1p(ratio)
    off_sum = 0.0
    time_sum = 0.0
    value = 0.0
    for j in range(on.shape[1]):
        off_sum += off[s, j]
        time_sum += livetime[s, j]
        background = a * off_sum * livetime[s, j] / time_sum if time_sum > 0.0 else 0.0
        value = max(0.0, value + on[s, j] * log_gain - ratio * background)
        out[s, j] = value


def _lift_gradient(on, weights, s, m, k, scale, norm):
    """``g(norm)`` and ``g'(norm)`` of template ``m`` on bunches ``0 .. k``."""
    grad = 0.0
    curv = 0.0
    for j in range(k + 1):
        w = weights[m, j]
        if w > 0.0 and on[s, j] > 0.0:
            ratio = w / (scale[j] + norm * w)
            grad += on[s, j] * ratio
            curv -= on[s, j] * ratio * ratio
    return grad, curv


def lift_sqrt_ts(on, weights, s, m, k, scale, weight_sum, n_on):
    """sqrt(TS) (0 without an excess) of template ``m`` on bunches ``0 .. k``, background
    ``scale[j]`` in bunch ``j`` (> 0)."""
    if weight_sum <= 0.0:
        return 0.0
    grad0, _ = _lift_gradient(on, weights, s, m, k, scale, 0.0)
    if grad0 <= weight_sum:
        return 0.0
    low = 0.0
    high = n_on / weight_sum
    norm = 0.5 * high
    for _ in range(LIFT_ITERATIONS):
        grad, curv = _lift_gradient(on, weights, s, m, k, scale, norm)
        excess = grad - weight_sum
        if excess > 0.0:
            low = norm
        else:
            high = norm
        if high - low <= LIFT_TOLERANCE * high:
            break
        step = norm - excess / curv if curv < 0.0 else -1.0
        norm = step if low < step < high else 0.5 * (low + high)
    ts = 0.0
    for j in range(k + 1):
        w = weights[m, j]
        if on[s, j] > 0.0:
            ts += on[s, j] * math.log1p(norm * w / scale[j])
        ts -= norm * w
    return math.sqrt(max(2.0 * ts, 0.0))


def lift_window(on, off, a, livetime, weights, s, k, scale):
    """The largest, over the templates, sqrt(TS) of window ``0 .. k``;
    ``scale`` (length >= k + 1) is scratch for the background of each bunch."""
    off_sum = 0.0
    time_sum = 0.0
    n_on = 0.0
    for j in range(k + 1):
        off_sum += off[s, j]
        time_sum += livetime[s, j]
        n_on += on[s, j]
    if off_sum <= 0.0 or time_sum <= 0.0:
        return 0.0
    for j in range(k + 1):
        scale[j] = max(a * off_sum * livetime[s, j] / time_sum, 1e-300)
    best = 0.0
    for m in range(weights.shape[0]):
        weight_sum = 0.0
        for j in range(k + 1):
            weight_sum += weights[m, j]
        value = lift_sqrt_ts(on, weights, s, m, k, scale, weight_sum, n_on)
        if value > best:
            best = value
    return best
