"""The detection's settings, built once per run: its estimators and exclusion circles.

:class:`DetectionEstimators` holds, from the config, the significance-map estimator (with
``detection.method = "tsmap"`` a `rtafast.TSMapEstimator` of a point source with a power
law of index ``fit.index``, energies summed into one group; with ``"lima"`` a
`rtafast.ExcessMapEstimator` of Li & Ma significance within ``correlation_radius``), the
localiser (:func:`make_localiser`: a TS estimator with one PSF kernel per energy bin, see
``docs/pipeline-localisation.md``), the threshold, separation, number of candidates and
:class:`ExclusionCircle` masks (made once per geometry) that
:func:`rtafast.pipeline.detect.detect` uses on each window.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.modeling.models import PointSpatialModel, PowerLawSpectralModel, SkyModel
from regions import CircleSkyRegion

from ..estimators import ExcessMapEstimator, TSMapEstimator
from ..timedomain.series import METHODS as TIME_METHODS

__all__ = [
    "LOCALISATION_KERNEL_WIDTH_DEG",
    "METHODS",
    "SYSTEMATIC_DEG",
    "DetectionEstimators",
    "ExclusionCircle",
    "make_localiser",
    "map_method",
]

#: Detection methods and the estimator each uses.
METHODS = ("tsmap", "lima")
#: Smallest width of the localisation TS kernel, deg (it must hold the PSF: 2 × its
#: ~99 % containment radius at the lowest energies of CTA and H.E.S.S.).
LOCALISATION_KERNEL_WIDTH_DEG = 0.8
#: σ added in quadrature to the statistical localisation error, deg (see
#: ``docs/pipeline-localisation.md``).
SYSTEMATIC_DEG = 0.0


@dataclass(frozen=True)
class ExclusionCircle:
    """A sky circle where no candidate is searched (ICRS, deg)."""

    ra: float
    dec: float
    radius: float

    @classmethod
    def parse(cls, entry):
        """From a config entry (an object or a mapping with ``ra``, ``dec``, ``radius``)."""
        values = {}
        for key in ("ra", "dec", "radius"):
            value = entry.get(key) if isinstance(entry, dict) else getattr(entry, key, None)
            if value is None:
                raise ValueError(f"detection.exclusion: entry {entry!r} has no {key!r}")
            values[key] = u.Quantity(value, "deg").to_value("deg")
        if not values["radius"] > 0:
            raise ValueError(f"detection.exclusion: radius must be > 0, got {entry!r}")
        return cls(**values)

    def region(self):
        """The `regions.CircleSkyRegion`."""
        center = SkyCoord(self.ra, self.dec, unit="deg", frame="icrs")
        return CircleSkyRegion(center=center, radius=self.radius * u.deg)


def _point_source(index, reference):
    """The TS kernel's model: a point source with a power law."""
    spectral = PowerLawSpectralModel(index=float(index), reference=u.Quantity(reference))
    return SkyModel(spatial_model=PointSpatialModel(), spectral_model=spectral)


def map_method(method):
    """The significance map of the blind search for ``detection.method``: the
    time-aware methods (:data:`rtafast.timedomain.series.METHODS`, which measure the
    target) search with a TS map."""
    return "tsmap" if method in TIME_METHODS else method


def make_localiser(index=2.5, reference="1 TeV", kernel_width=None, backend=None):
    """The TS estimator of the localisation surface.

    A point source with a power law (the fit's index), one kernel per energy bin
    (``sum_over_energy_groups=False``: the likelihood of the binned counts cube, whose
    profile over the position gives calibrated error circles; gammapy's summed kernel
    is an unweighted mean of the per-bin kernels, narrower than the counts' PSF), and a
    kernel wide enough to hold the PSF (:data:`LOCALISATION_KERNEL_WIDTH_DEG` at least:
    a kernel that cuts the PSF makes each position's TS a likelihood of different
    pixels). See ``docs/pipeline-localisation.md``.

    Parameters
    ----------
    index : float
        Power-law index.
    reference : str or `~astropy.units.Quantity`
        Reference energy.
    kernel_width : float, optional
        Kernel width, deg; default :data:`LOCALISATION_KERNEL_WIDTH_DEG`.
    backend : str, optional
        rtafast backend.

    Returns
    -------
    `rtafast.TSMapEstimator`
    """
    width = LOCALISATION_KERNEL_WIDTH_DEG if kernel_width is None else kernel_width
    return TSMapEstimator(
        kernel_model=_point_source(index, reference),
        kernel_width=_angle_deg(width, "localisation kernel width") * u.deg,
        sum_over_energy_groups=False,
        selection_optional=[],
        array_backend=backend,
    )


def _angle_deg(value, name):
    try:
        return u.Quantity(value, "deg").to_value("deg")
    except (TypeError, ValueError, u.UnitsError) as error:
        raise ValueError(f"{name}: expected an angle, got {value!r}") from error


class DetectionEstimators:
    """The detection's estimator and settings, built once per run (see the module's notes).

    Parameters
    ----------
    method : {"tsmap", "lima"}
    estimator : `rtafast.TSMapEstimator` or `rtafast.ExcessMapEstimator`
    threshold : float
        Detection threshold, σ.
    max_candidates : int
        At most this many candidates per window (>= 1).
    min_separation : float
        Minimum separation of two candidates, deg.
    exclusion : sequence of ExclusionCircle
    localiser : `rtafast.TSMapEstimator`, optional
        The TS estimator of the localisation surface (:func:`make_localiser`); default:
        one of a point source with a power law of index 2.5.
    systematic_deg : float, optional
        σ added in quadrature to the statistical localisation error, deg; default:
        :data:`SYSTEMATIC_DEG`.
    fit_half_width : int
        Half size of the pixel patch the paraboloid is fitted to (1: 3×3).
    """

    def __init__(
        self,
        method,
        estimator,
        threshold=5.0,
        max_candidates=3,
        min_separation=0.3,
        exclusion=(),
        localiser=None,
        systematic_deg=None,
        fit_half_width=1,
    ):
        if method not in METHODS:
            raise ValueError(f"detection.method: {method!r} is not one of {METHODS}")
        if int(max_candidates) < 1:
            raise ValueError(f"detection.max_candidates: must be >= 1, got {max_candidates!r}")
        self.method = method
        self.estimator = estimator
        self.threshold = float(threshold)
        self.max_candidates = int(max_candidates)
        self.min_separation = _angle_deg(min_separation, "detection.min_separation")
        self.exclusion = tuple(exclusion)
        self.localiser = make_localiser() if localiser is None else localiser
        self.systematic_deg = SYSTEMATIC_DEG if systematic_deg is None else float(systematic_deg)
        if int(fit_half_width) < 1:
            raise ValueError(f"fit_half_width must be >= 1, got {fit_half_width!r}")
        self.fit_half_width = int(fit_half_width)
        self._exclusion_masks = []

    @classmethod
    def from_config(cls, config, **kwargs):
        """Build from a `~rtafast.pipeline.config.PipelineConfig` (``detection``, ``fit``,
        ``backend``); keyword arguments go to the constructor (e.g. ``systematic_deg``)."""
        detection = config.detection
        backend = getattr(config, "backend", None)
        kernel_width = _angle_deg(detection.kernel_width, "detection.kernel_width")
        kwargs.setdefault(
            "localiser",
            make_localiser(
                index=config.fit.index,
                reference=config.fit.reference,
                kernel_width=max(kernel_width, LOCALISATION_KERNEL_WIDTH_DEG),
                backend=backend,
            ),
        )
        method = map_method(detection.method)
        if method == "tsmap":
            estimator = TSMapEstimator(
                kernel_model=_point_source(config.fit.index, config.fit.reference),
                kernel_width=kernel_width * u.deg,
                sum_over_energy_groups=True,
                selection_optional=[],
                array_backend=backend,
            )
        elif method == "lima":
            radius = _angle_deg(detection.correlation_radius, "detection.correlation_radius")
            estimator = ExcessMapEstimator(
                correlation_radius=radius * u.deg,
                selection_optional=[],
                array_backend=backend,
            )
        else:
            raise ValueError(f"detection.method: {detection.method!r} is not one of {METHODS}")
        return cls(
            method,
            estimator,
            threshold=detection.threshold,
            max_candidates=detection.max_candidates,
            min_separation=detection.min_separation,
            exclusion=[ExclusionCircle.parse(entry) for entry in detection.exclusion],
            **kwargs,
        )

    def exclusion_mask(self, geom2d):
        """Boolean image, True inside an exclusion circle (made once per geometry)."""
        image = geom2d.to_image()
        # a window's geometry is a new object every window (WcsGeom hashes by identity):
        # found by equality among the last few, so that nothing piles up over a run
        for known, mask in self._exclusion_masks:
            if known == image:
                return mask
        if self.exclusion:
            regions = [circle.region() for circle in self.exclusion]
            mask = np.asarray(geom2d.region_mask(regions).data, dtype=bool)
        else:
            mask = np.zeros(geom2d.data_shape, dtype=bool)
        self._exclusion_masks = [(image, mask), *self._exclusion_masks[:3]]
        return mask
