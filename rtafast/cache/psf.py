"""A content-addressed cache of gammapy PSF kernels.

gammapy's evaluator rebuilds the PSF kernel of a source (``PSFMap.get_psf_kernel``)
each time a model is attached to a dataset: about 0.1 s, most of a flux-only fit.
The kernel depends only on the PSF map's content, the position and the target
geometry, so rtafast keys it on exactly those (a hash of the PSF and exposure map
data, not the object's identity: maps stacked in place get a new key) and reuses it.
In real-time analysis the same PSF and position recur window after window.
"""

import contextlib

import numpy as np

from .keys import content_digest, geom_key
from .lru import LRUCache

__all__ = ["PSFKernelCache", "default_cache"]


def _position_key(position):
    if position is None:
        return None
    icrs = position.icrs
    return (round(float(icrs.ra.deg), 12), round(float(icrs.dec.deg), 12))


class PSFKernelCache(LRUCache):
    """Least-recently-used cache of PSF kernels, keyed on content.

    Parameters
    ----------
    maxsize : int
        Number of kernels kept.
    """

    def __init__(self, maxsize=64):
        super().__init__(maxsize)

    def get_psf_kernel(
        self, psf, geom, position=None, max_radius=None, containment=0.999, precision_factor=12
    ):
        """Same call and result as ``psf.get_psf_kernel``, computed once per content."""
        exposure = psf.exposure_map.data if psf.exposure_map is not None else np.zeros(0)
        key = (
            type(psf).__name__,
            content_digest(psf.psf_map.data, exposure),
            geom_key(psf.psf_map.geom),
            geom_key(geom),
            _position_key(position),
            None if max_radius is None else str(max_radius),
            containment,
            precision_factor,
        )
        return self.get_or_compute(
            key,
            lambda: type(psf).get_psf_kernel(
                psf,
                geom=geom,
                position=position,
                max_radius=max_radius,
                containment=containment,
                precision_factor=precision_factor,
            ),
        )

    @contextlib.contextmanager
    def attached(self, datasets):
        """Route the datasets' ``psf.get_psf_kernel`` through this cache meanwhile."""
        patched = []
        try:
            for dataset in datasets:
                psf = getattr(dataset, "psf", None)
                if psf is None or "get_psf_kernel" in vars(psf):
                    continue
                psf.get_psf_kernel = lambda *args, _psf=psf, **kwargs: self.get_psf_kernel(
                    _psf, *args, **kwargs
                )
                patched.append(psf)
            yield self
        finally:
            for psf in patched:
                del psf.get_psf_kernel


#: The process-wide cache used by :class:`rtafast.Fit` (``cache_psf=True``).
default_cache = PSFKernelCache()
