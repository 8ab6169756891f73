"""Drop-in dataset and background makers: gammapy 2.1's API, rtafast's kernels.

* `MapDatasetMaker` (:mod:`.map`): counts binned by rtafast's kernel, IRF maps cached
  per observation and rescaled by live time.
* `ReflectedRegionsFinder`, `WobbleRegionsFinder`, `cross_regions_finder` (:mod:`.regions`):
  gammapy's off regions, exactly, without its per-region overhead.
* `ReflectedRegionsBackgroundMaker` (:mod:`.reflected`): `SpectrumDatasetOnOff` with the
  off counts from the *regions* kernel family.
* `RingBackgroundMaker` (:mod:`.ring`): `MapDatasetOnOff` with the ring correlations on the
  *convolution* kernel family; `AdaptiveRingBackgroundMaker` is gammapy's (counted).
"""

from .map import MapDatasetMaker
from .reflected import ReflectedRegionsBackgroundMaker
from .regions import ReflectedRegionsFinder, WobbleRegionsFinder, cross_regions_finder
from .ring import AdaptiveRingBackgroundMaker, RingBackgroundMaker

__all__ = [
    "AdaptiveRingBackgroundMaker",
    "MapDatasetMaker",
    "ReflectedRegionsBackgroundMaker",
    "ReflectedRegionsFinder",
    "RingBackgroundMaker",
    "WobbleRegionsFinder",
    "cross_regions_finder",
]
