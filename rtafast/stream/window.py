"""A stream's time window: counts on the backend, per-second IRF maps, times as numbers.

:class:`StreamWindow` is what :class:`rtafast.stream.BunchAccumulator` hands out
after each bunch (``current_window()``, ``windows(...)``). It holds

* the window's counts cube on the accumulator's backend (the GPU for ``"cuda"``): a
  snapshot, weighted by each observation's safe mask as gammapy's stack weights them;
* for each observation in the window, its :class:`~rtafast.stream.pointing.PointingMaps`
  (the per-second IRF maps, computed once per observation) and the live time, on-time
  and bunch intervals the window holds of it, as plain numbers (s);
* no gammapy dataset: :meth:`StreamWindow.to_dataset` makes one when asked (lazily,
  once), the per-second maps times the live time and on-time.

`rtafast.estimators.TSMapEstimator`, `rtafast.estimators.ExcessMapEstimator` and
`rtafast.Fit` accept a window: with one observation in it (every window inside a run)
they read its counts where they are and the per-second inputs they cached for its
pointing, scaled by its live time and on-time; with several they use ``to_dataset()``.
"""

from dataclasses import dataclass

import numpy as np
from gammapy.datasets import MapDataset

from .pointing import PointingMaps, window_gti

__all__ = ["StreamWindow", "WindowPart"]


@dataclass(frozen=True)
class WindowPart:
    """What a window holds of one observation.

    Attributes
    ----------
    pointing : PointingMaps
    counts : backend array, shape (n_bins,), float64, or None
        Snapshot of the observation's counts (not weighted), for windows of several
        observations; None when the window has only this one.
    livetime, ontime : float
        Live time and on-time of the observation's bunches in the window, s.
    intervals : tuple of (float, float)
        ``(start, stop)`` of each bunch, s since ``reference``, in time order.
    reference : `~astropy.time.Time`
    """

    pointing: PointingMaps
    counts: object
    livetime: float
    ontime: float
    intervals: tuple
    reference: object

    @property
    def gti(self):
        """GTI of the observation's bunches in the window (touching ones merged)."""
        return window_gti(self.intervals, self.reference)


class StreamWindow:
    """The data of one time window of a stream (see the module's notes).

    Made by :class:`rtafast.stream.BunchAccumulator`; a snapshot: adding bunches to the
    accumulator afterwards does not change it.

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        Counts geometry.
    energy_axis_true : `~gammapy.maps.MapAxis` or None
    name : str
        Name of the dataset (:meth:`to_dataset`).
    backend : backend object
        Where :attr:`counts` lives.
    parts : sequence of WindowPart
        One per observation, in the order they entered the window.
    counts : backend array, optional
        The window's counts cube, shape ``geom.data_shape``, float64, weighted by the
        safe masks (given for a single observation; summed from the parts otherwise).
    """

    def __init__(self, geom, energy_axis_true, name, backend, parts, counts=None):
        if not parts:
            raise ValueError("a window needs at least one observation")
        self.geom = geom
        self.energy_axis_true = energy_axis_true
        self.name = name
        self.backend = backend
        self.parts = tuple(parts)
        self._counts = counts
        self._models = None
        self._dataset = None
        self._gti = None

    # -- what the window holds ----------------------------------------------------------
    @property
    def pointing(self):
        """The :class:`PointingMaps` of the window's one observation, or None when the
        window holds several (a pointing change)."""
        return self.parts[0].pointing if len(self.parts) == 1 else None

    @property
    def livetime(self):
        """Live time of the window, s (a float)."""
        return float(sum(part.livetime for part in self.parts))

    @property
    def ontime(self):
        """On-time of the window, s (a float)."""
        return float(sum(part.ontime for part in self.parts))

    @property
    def counts(self):
        """Counts cube on the backend, shape ``geom.data_shape``, float64: each
        observation's counts weighted by its safe mask (gammapy's stack)."""
        if self._counts is None:
            xp = self.backend.xp
            total = None
            for part in self.parts:
                weights = part.pointing.counts_weights(self.backend)
                counts = part.counts if weights is None else part.counts * weights.ravel()
                total = counts if total is None else total + counts
            self._counts = xp.reshape(total, self.geom.data_shape)
        return self._counts

    @property
    def gti(self):
        """The window's GTI as its dataset has it (made once, on first use)."""
        if self._gti is None:
            self._gti = self.to_dataset().gti if self.pointing is None else self._single_gti()
        return self._gti

    def _single_gti(self):
        return self.pointing.stacked_gti(self.parts[0].gti)

    @property
    def models(self):
        """Models of the window (as a dataset's; ``None`` by default). Set them to fit the
        window with `rtafast.Fit`; :meth:`to_dataset` carries them."""
        return self._models

    @models.setter
    def models(self, models):
        self._models = models
        if self._dataset is not None:
            self._dataset.models = models

    # -- as a gammapy dataset -----------------------------------------------------------
    def to_dataset(self):
        """The window's gammapy ``MapDataset`` (made on first call, then the same object).

        Counts, exposure, background, PSF, EDisp, safe mask and GTI, observations stacked
        as gammapy stacks datasets; with one observation, its stack made once at 1 s and
        rescaled (the maps differ from stacking anew by float32 rounding at most). The
        counts are copied from the backend here.

        Returns
        -------
        `~gammapy.datasets.MapDataset`
        """
        if self._dataset is None:
            self._dataset = self._make_dataset()
            if self._models is not None:
                self._dataset.models = self._models
        return self._dataset

    def _make_dataset(self):
        to_numpy = self.backend.to_numpy
        if self.pointing is not None:
            part = self.parts[0]
            counts = to_numpy(self.counts)
            return self.pointing.window_dataset(counts, part.livetime, part.ontime, self.gti)
        stacked = MapDataset.create(
            self.geom, energy_axis_true=self.energy_axis_true, name=self.name
        )
        for part in self.parts:
            counts = np.reshape(to_numpy(part.counts), self.geom.data_shape)
            stacked.stack(
                part.pointing.observation_dataset(
                    self.geom, counts, part.livetime, part.ontime, part.gti
                )
            )
        return stacked

    def __repr__(self):
        observations = ", ".join(str(p.pointing.observation.obs_id) for p in self.parts)
        return (
            f"<StreamWindow {self.name!r}: observation(s) {observations}, live time "
            f"{self.livetime:.6g} s, on-time {self.ontime:.6g} s, on {self.backend.name}>"
        )
