"""Time-aware transient detection on on/off counts accumulated bunch by bunch.

A GRB afterglow fades as a power law in time; these statistics use the bunches'
arrival times instead of only their sum:

* :func:`brightest_stretch` — time-dependent Li & Ma: the significance of the
  brightest stretch of consecutive bunches since T0;
* :func:`cusum` — Page's CuSum change-point statistic against a signal of a given
  fraction of the background;
* :func:`decay_likelihood` — a LiFT-like likelihood: the flux-only Poisson fit of a
  source whose expected counts per bunch follow a power-law decay from T0
  (:func:`decay_templates`), the best of a grid of decay indices;

computed by the *timedomain* kernel family on the chosen backend.
:class:`OnOffSeries` keeps one source's counts per bunch in the alert pipeline.
"""

from .series import OnOffSeries, TimeStatistics
from .statistics import brightest_stretch, cusum, decay_likelihood, stretch_significance
from .templates import DEFAULT_DECAY_INDICES, decay_templates

__all__ = [
    "DEFAULT_DECAY_INDICES",
    "OnOffSeries",
    "TimeStatistics",
    "brightest_stretch",
    "cusum",
    "decay_likelihood",
    "decay_templates",
    "stretch_significance",
]
