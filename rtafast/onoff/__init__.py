"""On/off photometry: on and off region counts straight from event lists (per bunch),
alpha, excess and Li & Ma significance.

* :class:`OnOffCounter` (:mod:`.counter`): counts bunch by bunch with the ``regions``
  kernel family;
* :func:`counts_in_regions` (:mod:`.maps`): the same from a counts cube;
* :class:`OnOffStatistics`, :func:`lima_significance`, :func:`alpha_from_acceptance`
  (:mod:`.lima`).
"""

from .circles import CircleProblem
from .counter import OnOffCounter, OnOffStats
from .lima import OnOffStatistics, alpha_from_acceptance, lima_significance, wstat
from .maps import counts_in_regions

__all__ = [
    "CircleProblem",
    "OnOffCounter",
    "OnOffStatistics",
    "OnOffStats",
    "alpha_from_acceptance",
    "counts_in_regions",
    "lima_significance",
    "wstat",
]
