"""Blind detection on a window: a significance map, its peaks, each peak localised.

:class:`DetectionEstimators` is built once per run from the config (its estimators
keep per-pointing caches across windows): with ``detection.method = "tsmap"`` a
`rtafast.TSMapEstimator` of a point source with a power law of index ``fit.index``
(``kernel_width``, energies summed into one group: gammapy's fast TS map), with
``"lima"`` a `rtafast.ExcessMapEstimator` (Li & Ma significance within
``correlation_radius``); and, for both, the *localiser* (:func:`make_localiser`).

:func:`detect` maps a `rtafast.stream.StreamWindow` (or a `gammapy.datasets.MapDataset`),
finds the peaks of the significance (``sqrt_ts``) image with
`gammapy.estimators.utils.find_peaks` -- local maxima at or above
``detection.threshold`` σ, outside the ``detection.exclusion`` circles and the pixels
without a fit (NaN) -- keeps the highest ones separated by at least ``min_separation``
(greedy, by significance, between peak pixel centres on the sky), at most
``max_candidates`` of them, and localises each: the localiser's TS -- the likelihood of
the binned counts cube, one PSF kernel per energy bin, wide enough to hold the PSF -- is
computed on a few pixels around the peak (:func:`rtafast.pipeline.localise.
local_ts_image`, ~10 ms a candidate) and :func:`rtafast.pipeline.localise.localise` fits
its maximum and error circles. The detection's own TS map is not used for that: its
energy-summed, 0.3°-cut kernel is not the counts' PSF and its error circles hold the
truth in ~49 % / ~85 % of cases instead of 68 % / 95 %; the localiser's hold it in
67 % / 94–96 % (``docs/pipeline-localisation.md``). What is left out is counted in the
:class:`Detection` (``n_excluded``, ``n_too_close``, ``n_over_max``).

The estimators and settings (:class:`DetectionEstimators`, :class:`ExclusionCircle`,
:func:`make_localiser`) live in :mod:`rtafast.pipeline.detect_estimators` and are
re-exported here.
"""

import contextlib
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.estimators.utils import find_peaks
from gammapy.maps import Map

from .detect_estimators import (
    LOCALISATION_KERNEL_WIDTH_DEG,
    METHODS,
    SYSTEMATIC_DEG,
    DetectionEstimators,
    ExclusionCircle,
    make_localiser,
)
from .localise import local_ts_image, localise

__all__ = [
    "LOCALISATION_KERNEL_WIDTH_DEG",
    "METHODS",
    "SYSTEMATIC_DEG",
    "Candidate",
    "Detection",
    "DetectionEstimators",
    "ExclusionCircle",
    "detect",
    "find_candidate_peaks",
    "localisation_surface",
    "localise_peaks",
    "make_localiser",
    "significance_images",
]

#: Pixels the localisation surface's maximum may lie from the detection peak before the
#: surface is scanned again around it (the squares scanned: ``fit_half_width + SCAN_MARGIN``).
SCAN_MARGIN = 1
#: Most squares scanned around one peak while its maximum keeps moving.
MAX_SCANS = 3


@dataclass
class Candidate:
    """A peak of a window's significance map, localised.

    Attributes
    ----------
    ra, dec : float
        Localised position, deg, ICRS.
    x, y : float
        Localised position, sub-pixel, in the map's pixel coordinates.
    sqrt_ts : float
        Detection significance at the peak pixel, σ (``sqrt_ts`` of the map).
    ts : float
        TS at the peak pixel (``sqrt_ts²``).
    r68, r95 : float
        Error-circle radii, deg, containing the true position with 68 % / 95 %
        probability.
    localised : bool
        False when the position fit failed: position of the peak pixel, radii from the
        TS contour (conservative).
    """

    ra: float
    dec: float
    x: float
    y: float
    sqrt_ts: float
    ts: float
    r68: float
    r95: float
    localised: bool


@dataclass
class Detection:
    """What :func:`detect` found in one window.

    Attributes
    ----------
    significance_map : `~gammapy.maps.Map`
        2D significance image (σ; NaN where no fit was made).
    ts_map : `~gammapy.maps.Map` or None
        2D TS image (``tsmap`` method), None for ``lima``.
    candidates : list of Candidate
        By decreasing significance.
    method : str
    n_excluded : int
        Peaks at or above the threshold inside the exclusion circles (left out).
    n_too_close : int
        Peaks left out for lying closer than ``min_separation`` to a higher one.
    n_over_max : int
        Peaks left out beyond ``max_candidates``.
    """

    significance_map: Map
    ts_map: Map | None
    candidates: list = field(default_factory=list)
    method: str = "tsmap"
    n_excluded: int = 0
    n_too_close: int = 0
    n_over_max: int = 0


def _image(flux_map, name, geom2d):
    """The quantity's single energy group as a 2D float64 Map."""
    data = np.asarray(flux_map[name].data, dtype=float)
    data = data.reshape((-1,) + tuple(geom2d.data_shape))
    if data.shape[0] != 1:
        raise ValueError(f"expected one energy group in the {name!r} map, got {data.shape[0]}")
    return Map.from_geom(geom2d, data=data[0], unit="")


def significance_images(window, estimators):
    """The window's significance image, TS image (``tsmap``) and localisation surface.

    Parameters
    ----------
    window : `rtafast.stream.StreamWindow` or `gammapy.datasets.MapDataset`
    estimators : DetectionEstimators

    Returns
    -------
    significance : `~gammapy.maps.Map`
        2D ``sqrt_ts`` image, σ.
    ts_map : `~gammapy.maps.Map` or None
        2D ``ts`` image (``tsmap``), None (``lima``).
    surface : `~numpy.ndarray`
        ``sqrt_ts·|sqrt_ts|``: the TS with the sign of the excess, for localisation.
    """
    result = estimators.estimator.run(window)
    geom2d = result["sqrt_ts"].geom.to_image()
    significance = _image(result, "sqrt_ts", geom2d)
    ts_map = _image(result, "ts", geom2d) if estimators.method == "tsmap" else None
    surface = significance.data * np.abs(significance.data)
    return significance, ts_map, surface


def _separated(peaks, geom2d, min_separation):
    """Indices of the peaks kept by a greedy pass (highest first): each at least
    ``min_separation`` deg from every kept one."""
    if not len(peaks):
        return []
    lon, lat = geom2d.pix_to_coord((np.asarray(peaks["x"], float), np.asarray(peaks["y"], float)))
    points = SkyCoord(lon, lat, unit="deg", frame=geom2d.frame)
    unit = np.asarray(points.cartesian.xyz.value).T  # (n, 3) unit vectors
    min_cos = np.cos(np.deg2rad(min_separation))
    kept = []
    for index in range(len(peaks)):
        if kept and np.max(unit[kept] @ unit[index]) > min_cos:
            continue
        kept.append(index)
    return kept


def _peaks(image, geom2d, threshold, min_separation):
    """gammapy's ``find_peaks`` at or above the threshold (an empty table on no data)."""
    if not np.any(np.isfinite(image)):
        return []
    at_or_above = np.nextafter(threshold, -np.inf)  # find_peaks keeps values > threshold
    table = find_peaks(
        Map.from_geom(geom2d, data=image), threshold=at_or_above,
        min_distance=max(min_separation, 1e-9) * u.deg,
    )
    return table if len(table) else []


def find_candidate_peaks(significance, estimators):
    """Peak pixels of a significance image that become candidates.

    Parameters
    ----------
    significance : `~gammapy.maps.Map`
        2D significance image, σ.
    estimators : DetectionEstimators
        Threshold, exclusion, separation and number of candidates.

    Returns
    -------
    peaks : list of (int, int, float)
        ``(row, column, sqrt_ts)`` by decreasing significance.
    counts : dict
        ``n_excluded``, ``n_too_close``, ``n_over_max`` (peaks left out).
    """
    geom2d = significance.geom
    data = np.array(significance.data, dtype=float)
    excluded = estimators.exclusion_mask(geom2d)
    counts = {"n_excluded": 0, "n_too_close": 0, "n_over_max": 0}
    threshold, separation = estimators.threshold, estimators.min_separation
    if excluded.any():
        inside = _peaks(data, geom2d, threshold, separation)
        counts["n_excluded"] = int(sum(excluded[row["y"], row["x"]] for row in inside))
        data[excluded] = np.nan
    table = _peaks(data, geom2d, threshold, separation)
    kept = _separated(table, geom2d, separation)
    counts["n_too_close"] = len(table) - len(kept)
    counts["n_over_max"] = max(0, len(kept) - estimators.max_candidates)
    peaks = [
        (int(table["y"][i]), int(table["x"][i]), float(data[table["y"][i], table["x"][i]]))
        for i in kept[: estimators.max_candidates]
    ]
    return peaks, counts


def _patch_peak(image, center_yx, half_size):
    """The highest finite pixel of ``image`` within ``half_size`` of a pixel, or None."""
    cy, cx = center_yx
    y0, x0 = max(cy - half_size, 0), max(cx - half_size, 0)
    patch = image[y0 : cy + half_size + 1, x0 : cx + half_size + 1]
    if not np.any(np.isfinite(patch)):
        return None
    iy, ix = np.unravel_index(np.nanargmax(patch), patch.shape)
    return int(y0 + iy), int(x0 + ix)


def localisation_surface(data, peaks, estimators):
    """The localisation TS surface near each peak, and the pixel of its maximum.

    The localiser's TS (:func:`rtafast.pipeline.localise.local_ts_image`) on squares of
    ``fit_half_width + SCAN_MARGIN`` pixels around each peak; where the maximum lies
    more than ``SCAN_MARGIN`` pixels from the square's centre, again around that maximum
    (at most :data:`MAX_SCANS` squares a peak).

    Parameters
    ----------
    data : `rtafast.stream.StreamWindow` or `gammapy.datasets.MapDataset`
    peaks : list of (int, int, float)
    estimators : DetectionEstimators

    Returns
    -------
    image : `~numpy.ndarray`, 2D
        Signed TS near the peaks, NaN elsewhere.
    maxima : list of (int, int) or None
        Per peak, its surface's maximum pixel (None: nothing fitted there).
    """
    half = estimators.fit_half_width + SCAN_MARGIN
    centers = [(row, column) for row, column, _ in peaks]
    maxima = [None] * len(peaks)
    image = None
    pending = list(range(len(peaks)))
    for _ in range(MAX_SCANS):
        scanned = local_ts_image(
            estimators.localiser, data, [centers[i] for i in pending], half_size=half
        )
        image = scanned if image is None else np.where(np.isfinite(scanned), scanned, image)
        moved = []
        for i in pending:
            maxima[i] = _patch_peak(image, centers[i], half)
            if maxima[i] is not None and max(
                abs(maxima[i][0] - centers[i][0]), abs(maxima[i][1] - centers[i][1])
            ) > SCAN_MARGIN:
                centers[i] = maxima[i]
                moved.append(i)
        pending = moved
        if not pending:
            break
    return image, maxima


def localise_peaks(peaks, data, surface, geom2d, estimators):
    """Localise each peak on the localisation TS surface (see
    :func:`rtafast.pipeline.localise.localise`).

    Parameters
    ----------
    peaks : list of (int, int, float)
        From :func:`find_candidate_peaks`.
    data : `rtafast.stream.StreamWindow` or `gammapy.datasets.MapDataset`
        The window (the localiser's TS is computed near the peaks).
    surface : `~numpy.ndarray`
        Signed TS image of the detection (the fallback radii of a failed fit).
    geom2d : `~gammapy.maps.WcsGeom`
    estimators : DetectionEstimators

    Returns
    -------
    list of Candidate
    """
    if not peaks:
        return []
    image, maxima = localisation_surface(data, peaks, estimators)
    candidates = []
    for (row, column, sqrt_ts), maximum in zip(peaks, maxima, strict=True):
        position = localise(
            image,
            geom2d,
            (row, column) if maximum is None else maximum,
            half_width=estimators.fit_half_width,
            systematic_deg=estimators.systematic_deg,
            fallback_image=surface,
        )
        candidates.append(
            Candidate(
                ra=position.ra,
                dec=position.dec,
                x=position.x,
                y=position.y,
                sqrt_ts=sqrt_ts,
                ts=float(surface[row, column]),
                r68=position.r68,
                r95=position.r95,
                localised=position.localised,
            )
        )
    return candidates


def detect(window, config, estimators, stage=None):
    """Detect and localise the candidates of one window.

    Parameters
    ----------
    window : `rtafast.stream.StreamWindow` or `gammapy.datasets.MapDataset`
    config : `~rtafast.pipeline.config.PipelineConfig`
        Unused beyond what ``estimators`` was built from (kept for the pipeline's
        interface).
    estimators : DetectionEstimators
        From :meth:`DetectionEstimators.from_config`.
    stage : callable, optional
        ``stage(name)`` returns a context manager timing a stage (e.g. the latency
        profile's ``window.stage``): the map and peak finding run in ``"detect"``, the
        localisation in ``"localise"``.

    Returns
    -------
    Detection
    """
    stage = stage or (lambda name: contextlib.nullcontext())
    with stage("detect"):
        significance, ts_map, surface = significance_images(window, estimators)
        peaks, counts = find_candidate_peaks(significance, estimators)
    with stage("localise"):
        candidates = localise_peaks(peaks, window, surface, significance.geom, estimators)
    return Detection(
        significance_map=significance,
        ts_map=ts_map,
        candidates=candidates,
        method=estimators.method,
        **counts,
    )
