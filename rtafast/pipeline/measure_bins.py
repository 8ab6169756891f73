"""The window's compact Cash problem for the flux fit: counted bins on the host.

From a window's counts and a position's cached templates
(:mod:`rtafast.pipeline.measure_templates`), the bins with counts are gathered on the
window's backend and copied to the host with the empty bins summed into one and the empty
bin that sets the norm's lower limit kept: :func:`_sparse_bins` (one observation, from
the counted bins) or :func:`_dense_arrays` then :func:`_compact_bins` (several
observations, or no empty bin among the limit candidates, from the whole arrays).
"""

from typing import NamedTuple

import numpy as np

__all__ = []  # private helpers of measure_fit (which imports them)


def _sparse_bins(window, part, entry, background):
    """Counts, fixed prediction and templates (host) of the counted bins, the empty bins
    summed into one, and the empty bin that sets the norm's lower limit (see
    :func:`_compact_bins`); None when every limit candidate has counts."""
    xp, to_numpy = window.backend.xp, window.backend.to_numpy
    flat = window.counts.reshape(-1)
    support_counts = flat[entry.index]
    empty_candidates = np.flatnonzero(to_numpy(support_counts[entry.order]) == 0)
    if empty_candidates.size == 0:
        return None
    limit_background, limit_signal = entry.order_values[:, empty_candidates[0]]
    if background is None:
        local = xp.flatnonzero(support_counts)
        rows = [support_counts[local], entry.background[local], entry.signal[local]]
        background_total = entry.sums[0]
    else:
        counted = xp.flatnonzero(flat)
        counted = counted[background.in_mask[counted]]
        where = xp.minimum(xp.searchsorted(entry.index, counted), entry.index.shape[0] - 1)
        signal = xp.where(entry.index[where] == counted, entry.signal[where], 0.0)
        rows = [flat[counted], background.full[counted], signal]
        background_total = background.total
    counts, counted_background, counted_signal = np.asarray(to_numpy(xp.stack(rows)))
    ontime, livetime = part.ontime, part.livetime
    background_row = (
        np.append(
            counted_background,
            [background_total - counted_background.sum() - limit_background, limit_background],
        )
        * ontime
    )
    signal_row = (
        np.append(
            counted_signal, [entry.sums[1] - counted_signal.sum() - limit_signal, limit_signal]
        )
        * livetime
    )
    counts = np.append(counts, [0.0, 0.0])
    if background is None:
        return counts, background_row, signal_row[None, :]
    return counts, np.zeros(counts.size), np.stack([signal_row, background_row])


class _WindowArrays(NamedTuple):
    counts: object
    background: object
    signal: object


def _dense_part(entry, background, backend):
    """A part's fitted bins (host index) with its background and signal there (backend):
    the template's bins, or the whole fit mask with a free background norm."""
    if background is None:
        return entry.index_host, entry.background, entry.signal
    xp = backend.xp
    signal = xp.zeros(background.index_host.size)
    where = np.searchsorted(background.index_host, entry.index_host)
    signal[backend.upload(where, np.int64)] = entry.signal
    return background.index_host, background.values, signal


def _dense_arrays(cache, window, found, backgrounds):
    """The window's counts, background and signal (norm 1) on all fitted bins."""
    backend, xp = window.backend, window.backend.xp
    parts = [_dense_part(e, b, backend) for (_, e), b in zip(found, backgrounds, strict=True)]
    key = (tuple(k for k, _ in found), backgrounds[0] is not None)
    union = cache.unions.lookup(key)
    if union is None:
        index = np.unique(np.concatenate([p[0] for p in parts]))
        positions = [backend.upload(np.searchsorted(index, p[0]), np.int64) for p in parts]
        union = (backend.upload(index, np.int64), index.size, positions)
        cache.unions.store(key, union)
    index, size, positions = union
    background, signal = xp.zeros(size), xp.zeros(size)
    for (_, part_background, part_signal), where, part in zip(
        parts, positions, window.parts, strict=True
    ):
        background[where] += part_background * part.ontime
        signal[where] += part_signal * part.livetime
    return _WindowArrays(window.counts.reshape(-1)[index], background, signal)


def _compact_bins(backend, arrays, free_background):
    """The window's Cash problem over its counted bins, as small host arrays.

    The bins of ``arrays`` (backend) fall in two kinds: with counts (kept one by one)
    and without, whose Cash terms are their predictions, linear in the norms while they
    stay positive (``rtafast_kernels.cash.prepare``). The empty ones are summed into one
    bin, except the one that reaches zero first as the source norm decreases (lowest
    ratio of the rest of the prediction to the source template), kept as it is: it sets
    the norm's physical lower limit ``-min(b/s)``, as in the whole problem. In that
    domain the statistic equals the whole problem's up to rounding; only these few bins
    are copied to the host and iterated.

    Returns
    -------
    counts, fixed : ndarray, shape (n,)
    templates : ndarray, shape (K, n)
        The source's template first (and the background's with a free norm).
    """
    xp = backend.xp
    counts, background, signal = arrays
    if free_background:
        fixed = xp.zeros_like(background)
        templates = xp.stack([signal, background])
    else:
        fixed, templates = background, signal[None, :]
    empty = counts == 0
    rest = fixed + templates[1:].sum(axis=0)  # the prediction without the source
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = xp.where(empty & (signal > 0), rest / xp.where(signal > 0, signal, 1.0), np.inf)
    limit = int(xp.argmin(ratio)) if ratio.shape[0] else 0
    has_limit = ratio.shape[0] > 0 and bool(xp.isfinite(ratio[limit]))
    counted = xp.flatnonzero(~empty)
    aggregated = xp.where(empty, 1.0, 0.0)
    if has_limit:
        aggregated[limit] = 0.0
    columns = xp.concatenate([fixed[None, :], templates])
    extra = [xp.concatenate([xp.zeros(1), (columns * aggregated).sum(axis=1)])]
    if has_limit:
        extra.append(xp.concatenate([xp.zeros(1), columns[:, limit]]))
    rows = xp.concatenate([counts[None, counted], fixed[None, counted], templates[:, counted]])
    host = np.asarray(backend.to_numpy(xp.concatenate([rows] + [e[:, None] for e in extra], 1)))
    return host[0].copy(), host[1].copy(), np.ascontiguousarray(host[2:])
