"""Candidate measurements on a stream window: the flux-only fit and on/off photometry.

For each candidate of a window the pipeline calls

* :func:`fit_flux` (:mod:`.measure_fit`): a point source with a power law of fixed index
  at the candidate, only the amplitude free (and the FoV background norm if
  ``fit.free_background_norm``), fitted on the window's backend: integral flux over the
  selection's energy range, its error, 95 % upper limit, TS and signed sqrt(TS);
* :func:`photometry` (:mod:`.measure_photometry`): on region at the candidate, reflected
  (or wobble) off regions around the pointing, counts of the window's cube in them,
  alpha, excess, its error and Li & Ma's significance.

Both keep what depends only on the pointing and the position (the fit's templates, the
regions) in a :class:`MeasureCache`, positions snapped to a grid of a tenth of a pixel:
one per run, passed to both (``cache=``); without it they use a module-level one.

Measured costs (H.E.S.S. Crab run 23523, 5 deg x 5 deg, 0.02 deg, 10 energy bins, 10 s
bunches, one core of a shared 2-core machine; numpy and numba backends alike): the first
fit at a position 0.3-0.5 s (gammapy's PSF kernel and evaluator), then 1.2-1.4 ms per
window (5 ms with the background norm free); the first photometry at a position 60-110 ms
(exclusion mask and regions), then 0.5 ms.
"""

from .measure_fit import (
    DEFAULT_GRID_PIXELS,
    REFERENCE_AMPLITUDE,
    UL_N_SIGMA,
    FluxFit,
    MeasureCache,
    default_cache,
    fit_flux,
    snap_position,
    source_model,
)
from .measure_photometry import Photometry, exclusion_mask, off_regions, photometry

__all__ = [
    "DEFAULT_GRID_PIXELS",
    "REFERENCE_AMPLITUDE",
    "UL_N_SIGMA",
    "FluxFit",
    "MeasureCache",
    "Photometry",
    "default_cache",
    "exclusion_mask",
    "fit_flux",
    "off_regions",
    "photometry",
    "snap_position",
    "source_model",
]
