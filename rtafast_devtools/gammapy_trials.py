"""A calibration trial written with gammapy alone: the reference of the trials benchmark.

What a gammapy user writes to run the trials of ``rtafast trials``: the window's
`~gammapy.datasets.MapDataset` made once (here: the trial window's dataset, the same
IRF maps), then per trial

* fixed position: ``dataset.fake`` (Poisson counts of the background), ``Fit`` of the
  point source at the target with its amplitude free (power law of ``fit.index``),
  TS = stat(amplitude 0) - stat(best);
* blind search: ``dataset.fake``, ``TSMapEstimator`` (the pipeline's kernel width,
  energies summed), ``find_peaks`` above the detection threshold, and the fit at the
  target as above.
"""

import numpy as np

from .gammapy_window import _fit, _models

__all__ = ["GammapyTrials"]


class GammapyTrials:
    """gammapy trials of one window (see the module's notes).

    Parameters
    ----------
    dataset : `~gammapy.datasets.MapDataset`
        The window's dataset (counts are replaced by every trial).
    config : `rtafast.pipeline.config.PipelineConfig`
    target : (float, float)
        Fitted position, deg (ICRS).
    seed : int
    """

    def __init__(self, dataset, config, target, seed=0):
        from gammapy.estimators import TSMapEstimator

        self.dataset = dataset
        self.config = config
        self.target = target
        self.rng = np.random.RandomState(seed)  # what gammapy's fake takes
        models = _models(dataset, *target, config)
        self.estimator = TSMapEstimator(
            model=models["source"],
            kernel_width=config.detection.kernel_width,
            selection_optional=[],
            sum_over_energy_groups=True,
        )

    def _fake(self):
        self.dataset.models = None
        self.dataset.fake(random_state=self.rng)

    def fixed_trial(self):
        """One fixed-position null trial; returns its fit (``ts``, ``norm``, ...)."""
        self._fake()
        return _fit(self.dataset, *self.target, self.config)

    def blind_trial(self):
        """One blind-search null trial: ``(highest sqrt_ts of the map, peaks, fit)``."""
        from gammapy.estimators.utils import find_peaks

        self._fake()
        self.dataset.models = _models(self.dataset, *self.target, self.config)[1:]
        maps = self.estimator.run(self.dataset)
        sqrt_ts = maps["sqrt_ts"]
        peaks = find_peaks(sqrt_ts, threshold=self.config.detection.threshold)
        return float(np.nanmax(sqrt_ts.data)), peaks, _fit(self.dataset, *self.target, self.config)
