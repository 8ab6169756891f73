"""Time-domain statistics in plain NumPy, vectorised over series and windows.

An independent twin of :mod:`rtafast_kernels.timedomain.element` (prefix sums for the
stretches, bisection for the LiFT norm), for the tests and the numpy backend.
"""

import numpy as np

__all__ = ["cusum", "lift", "lima_signed", "stretch_lima"]

#: Bisection steps of the LiFT norm (the bracket shrinks by 2**-BISECTIONS).
BISECTIONS = 100


def lima_signed(n_on, n_off, alpha):
    """Li & Ma's eq. 17 signed by the excess, 0 where there are no counts (arrays)."""
    n_on, n_off, alpha = np.broadcast_arrays(*(np.asarray(a, float) for a in (n_on, n_off, alpha)))
    total = n_on + n_off
    with np.errstate(divide="ignore", invalid="ignore"):
        t_on = np.where(n_on > 0, n_on * np.log((1 + alpha) / alpha * n_on / total), 0.0)
        t_off = np.where(n_off > 0, n_off * np.log((1 + alpha) * n_off / total), 0.0)
    root = np.sqrt(np.clip(2 * (t_on + t_off), 0, None))
    return np.where(n_on - alpha * n_off >= 0, root, -root)


def stretch_lima(backend, on, off, alpha, first, out):
    """Operation ``stretch_lima`` (numpy): every stretch ``i .. k`` from prefix sums."""
    n = on.shape[1]
    zeros = np.zeros((on.shape[0], 1))
    cum_on = np.concatenate([zeros, np.cumsum(on, axis=1)], axis=1)
    cum_off = np.concatenate([zeros, np.cumsum(off, axis=1)], axis=1)
    for k in range(first, n):
        n_on = cum_on[:, k + 1, None] - cum_on[:, : k + 1]
        n_off = cum_off[:, k + 1, None] - cum_off[:, : k + 1]
        out[:, k] = lima_signed(n_on, n_off, alpha[:, None]).max(axis=1)
    return out


def cusum(backend, on, off, alpha, livetime, ratio, out):
    """Operation ``cusum`` (numpy)."""
    time_sum = np.cumsum(livetime, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        background = np.where(
            time_sum > 0, alpha[:, None] * np.cumsum(off, axis=1) * livetime / time_sum, 0.0
        )
    steps = on * np.log1p(ratio) - ratio * background
    value = np.zeros(on.shape[0])
    for j in range(on.shape[1]):
        value = np.maximum(0.0, value + steps[:, j])
        out[:, j] = value
    return out


def _lift_ts(on, weights, scale, norm):
    """TS of norms ``norm`` (n_series, n_templates), bunches along the last axis."""
    mu_ratio = norm[..., None] * weights[None] / scale[:, None]
    terms = np.where(on[:, None] > 0, on[:, None] * np.log1p(mu_ratio), 0.0)
    return 2 * (terms.sum(-1) - norm * weights.sum(-1)[None])


def _lift_window(on, off, alpha, livetime, weights):
    """sqrt(TS) of one window (bunches along axis 1 are the window's), max over templates."""
    off_sum, time_sum = off.sum(1), livetime.sum(1)
    valid = (off_sum > 0) & (time_sum > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.maximum(alpha[:, None] * off_sum[:, None] * livetime / time_sum[:, None],
                           1e-300)
    weight_sum = weights.sum(1)  # (n_templates,)
    with np.errstate(divide="ignore", invalid="ignore"):
        low = np.zeros((on.shape[0], weights.shape[0]))
        high = np.where(weight_sum > 0, on.sum(1)[:, None] / weight_sum[None], 0.0)
        for _ in range(BISECTIONS):
            mid = 0.5 * (low + high)
            mu = scale[:, None] + mid[..., None] * weights[None]
            grad = (on[:, None] * weights[None] / mu).sum(-1) - weight_sum[None]
            low = np.where(grad > 0, mid, low)
            high = np.where(grad > 0, high, mid)
    ts = _lift_ts(on, weights, scale, 0.5 * (low + high))
    root = np.sqrt(np.clip(ts, 0, None)).max(axis=1)
    return np.where(valid, root, 0.0)


def lift(backend, on, off, alpha, livetime, weights, first, out):
    """Operation ``lift`` (numpy)."""
    for k in range(first, on.shape[1]):
        window = slice(0, k + 1)
        out[:, k] = _lift_window(on[:, window], off[:, window], alpha, livetime[:, window],
                                 weights[:, window])
    return out
