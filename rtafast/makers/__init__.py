"""Drop-in dataset and background makers: gammapy 2.1's API, rtafast's kernels.

* `MapDatasetMaker` (:mod:`.map`): counts binned by rtafast's kernel, IRF maps cached
  per observation and rescaled by live time.
"""

from .map import MapDatasetMaker

__all__ = ["MapDatasetMaker"]
