"""One source's on/off counts bunch by bunch, and its time statistics at each window.

The alert pipeline measures a source's on/off counts on each *cumulative* window;
:class:`OnOffSeries` turns them into counts per bunch (the difference of consecutive
windows) and gives, for the latest window, the three statistics of
:mod:`rtafast.timedomain.statistics` — each computed for the new window only (the
stretches ending at it, the LiFT fit of the whole window, the CuSum recursion).
"""

import math
from dataclasses import dataclass

import numpy as np

from rtafast_kernels import resolve_backend

from .templates import DEFAULT_DECAY_INDICES, DEFAULT_ONSETS_S, decay_templates

__all__ = ["METHODS", "OnOffSeries", "TimeStatistics"]

#: The time statistics, in the order computed.
METHODS = ("lima_time", "cusum", "lift")


@dataclass(frozen=True)
class TimeStatistics:
    """The time statistics of one window.

    Attributes
    ----------
    lima_time : float
        Significance of the brightest stretch of bunches so far (Li & Ma, sigma).
    cusum : float
        Page's CuSum statistic (natural-log likelihood-ratio units).
    lift : float
        sqrt(TS) of the decay-aware fit (best decay index of the grid).
    """

    lima_time: float = math.nan
    cusum: float = math.nan
    lift: float = math.nan


class OnOffSeries:
    """The counts of one source, bunch by bunch, from its cumulative on/off counts.

    Parameters
    ----------
    indices : sequence of float
        Decay indices of the LiFT templates.
    cusum_ratio : float
        The signal, as a multiple of the background, the CuSum is tuned to.
    backend : str or Backend, optional
    onsets_s : sequence of float
        Onsets of the LiFT templates, s after T0.
    capacity : int
        Bunches allocated at first (doubled when full).
    """

    def __init__(self, indices=DEFAULT_DECAY_INDICES, cusum_ratio=1.0, backend=None,
                 onsets_s=DEFAULT_ONSETS_S, capacity=256):
        self.indices = tuple(float(index) for index in indices)
        self.onsets_s = tuple(float(onset) for onset in onsets_s)
        self.cusum_ratio = float(cusum_ratio)
        self.backend = resolve_backend(backend)
        self._columns = np.zeros((5, capacity))  # on, off, livetime, start, stop
        self._n = 0
        self._last = (0.0, 0.0, 0.0)
        self._best_stretch = -math.inf
        self._stretches_done = 0
        self.alpha = math.nan

    def __len__(self):
        return self._n

    @property
    def last_stop(self):
        """Stop of the latest bunch, s since T0 (NaN before the first)."""
        return float(self._columns[4, self._n - 1]) if self._n else math.nan

    def add_window(self, oncounts, offcounts, livetime_s, alpha, start_s, stop_s):
        """Add the next cumulative window: its counts, live time (s), alpha, and the new
        bunch's start and stop (s since T0)."""
        on, off, livetime = (float(v) for v in (oncounts, offcounts, livetime_s))
        before = self._last
        increments = (on - before[0], off - before[1], livetime - before[2])
        if min(increments) < 0:
            raise ValueError("OnOffSeries: a cumulative window has fewer counts or less "
                             f"live time than the previous one ({increments})")
        if self._n == self._columns.shape[1]:
            self._columns = np.concatenate([self._columns, np.zeros_like(self._columns)], 1)
        self._columns[:, self._n] = (*increments, start_s, stop_s)
        self._n += 1
        self._last = (on, off, livetime)
        self.alpha = float(alpha) if np.isfinite(alpha) else self.alpha

    def statistics(self, methods=METHODS):
        """The statistics of the latest window (NaN for those not asked, and for all
        without an alpha yet)."""
        if self._n == 0 or not np.isfinite(self.alpha):
            return TimeStatistics()
        backend = self.backend
        on, off, livetime, start, stop = (backend.asarray(c[None, : self._n])
                                          for c in self._columns)
        alpha = backend.asarray([self.alpha])
        values = {}
        if "lima_time" in methods:  # the stretches ending at every bunch not seen yet
            out = backend.xp.full((1, self._n), -math.inf)
            backend.stretch_lima(on, off, alpha, self._stretches_done, out)
            self._best_stretch = max(self._best_stretch, float(out.max()))
            self._stretches_done = self._n
            values["lima_time"] = self._best_stretch
        if "cusum" in methods:
            out = backend.xp.zeros((1, self._n))
            backend.cusum(on, off, alpha, livetime, self.cusum_ratio, out)
            values["cusum"] = float(out[0, -1])
        if "lift" in methods:
            host = self._columns[:, : self._n]
            templates = backend.asarray(decay_templates(
                host[3], host[4], host[2], self.indices, onsets_s=self.onsets_s))
            out = backend.xp.zeros((1, self._n))
            backend.lift(on, off, alpha, livetime, templates, self._n - 1, out)
            values["lift"] = float(out[0, -1])
        return TimeStatistics(**values)
