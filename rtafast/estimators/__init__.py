"""Drop-in map estimators: gammapy 2.1's API, rtafast's kernels.

* `TSMapEstimator`: per-pixel flux-only fits (TS, norm, errors, upper limits) on
  the numpy, numba or cuda backend;
* `ExcessMapEstimator`: correlated counts statistics (Cash / Li & Ma) with a
  top-hat correlation radius.

Both take gammapy datasets or a stream window (`rtafast.stream.StreamWindow`), whose
counts they read on its backend (:mod:`.ts_window`, :mod:`.excess_window`).
"""

from .excess import ExcessMapEstimator
from .lightcurve import LightCurveEstimator
from .tsmap import TSMapEstimator

__all__ = ["ExcessMapEstimator", "LightCurveEstimator", "TSMapEstimator"]
