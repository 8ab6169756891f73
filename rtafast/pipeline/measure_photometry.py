"""On/off photometry of a candidate on a stream window, regions cached per position.

:func:`photometry` counts the window's counts cube (summed over energy) in an on region
(a circle of ``photometry.on_radius`` at the candidate) and in off regions found by
gammapy's reflected-regions method around the window's pointing (rtafast's
`rtafast.makers.ReflectedRegionsFinder`, the same regions as gammapy's; or
`rtafast.makers.WobbleRegionsFinder` for ``photometry.method: wobble``), and returns a
:class:`Photometry`: on and off counts, alpha, excess and its error, and Li & Ma's
significance (eq. 17).

Conventions.

* Counts in a region are those of the pixels whose centres it contains (gammapy's
  ``Map.get_spectrum(region)``; :class:`rtafast.onoff.maps.MapRegionCounter` on the
  backend), of the window's counts (weighted by the safe mask, as the window's dataset).
* ``alpha = 1 / n_off_regions``: regions of equal size at the same offset from the
  pointing (radially symmetric acceptance), gammapy's reflected-regions convention.
* Exclusion mask (False = excluded), on the window's map padded by the on radius: a
  circle of ``exclusion_radius`` (default: the larger of ``detection.min_separation``
  and the on radius) around the candidate, ``detection.exclusion`` regions, the
  ``exclude`` positions given, the map's pixels without any safe energy bin, and every
  pixel outside the map, so that each off region lies inside the counted map.
* A window of several observations (a pointing change): each observation's on and off
  counts with its own pointing's regions, summed; ``alpha = sum(alpha_i n_off_i) /
  sum(n_off_i)`` (gammapy's stacking of on/off counts; the mean of the ``alpha_i``
  weighted by the live time when there are no off counts), ``offset`` the live-time
  weighted mean; observations without an off region are left out (named in ``reason``).
* No off region (e.g. a candidate at the pointing position, where reflected regions do
  not exist, or every region excluded): ``n_off_regions = 0``, ``offcounts = 0``, NaN
  ``alpha``, ``excess``, ``excess_err`` and ``sigma``, and ``reason`` says why; the on
  counts are still counted.

Positions are snapped to the cache's grid (``MeasureCache.grid_pixels``, see
:mod:`rtafast.pipeline.measure_fit`) and the regions, exclusion mask and pixel lists of
each (pointing, snapped position, settings) are kept in the cache: a later window counts
its cube in them (a gather and sum on the backend, one small copy to the host). The
on region is centred on the snapped position (reported as ``ra``/``dec``).
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.maps import Map
from regions import CircleSkyRegion

from ..makers.regions import ReflectedRegionsFinder, WobbleRegionsFinder
from ..onoff.lima import OnOffStatistics, lima_significance
from ..onoff.maps import MapRegionCounter, region_masks
from .measure_fit import check_position, default_cache, snap_position

__all__ = ["Photometry", "exclusion_mask", "off_regions", "photometry"]


@dataclass(frozen=True)
class Photometry:
    """Result of :func:`photometry`.

    Attributes
    ----------
    oncounts, offcounts : int
        Counts in the on region and in all off regions together.
    alpha : float
        On/off exposure ratio (``1 / n_off_regions`` for one observation).
    excess, excess_err : float
        ``oncounts - alpha * offcounts`` and ``sqrt(oncounts + alpha**2 * offcounts)``
        (gammapy's ``WStatCountsStatistic`` ``n_sig`` and ``error``), counts.
    sigma : float
        Li & Ma (1983) eq. 17, signed by the excess.
    n_off_regions : int
        Off regions used (summed over the observations of the window).
    offset : float
        Angular distance from the candidate to the pointing, deg.
    ra, dec : float
        Centre of the on region (deg, ICRS): the candidate snapped to the cache's grid.
    on_radius : float
        Radius of the on region, deg.
    reason : str
        Why ``sigma`` (and alpha, excess) is NaN, or which observations were left out;
        empty when all is well.
    """

    oncounts: int
    offcounts: int
    alpha: float
    excess: float
    excess_err: float
    sigma: float
    n_off_regions: int
    offset: float
    ra: float
    dec: float
    on_radius: float
    reason: str = ""


class _Settings(NamedTuple):
    method: str
    on_radius_deg: float
    max_off_regions: int
    exclusion_radius_deg: float
    exclusions: tuple  # ((ra, dec, radius_deg), ...)


def _field(item, name):
    """A field of a ``detection.exclusion`` item (the config's model, or a mapping)."""
    return item[name] if isinstance(item, dict) else getattr(item, name)


def _exclusion_items(config):
    """``detection.exclusion`` as ``(ra, dec, radius_deg)`` tuples."""
    items = []
    for k, item in enumerate(getattr(config.detection, "exclusion", ()) or ()):
        try:
            ra, dec = check_position(_field(item, "ra"), _field(item, "dec"))
            radius = float(u.Quantity(_field(item, "radius")).to_value(u.deg))
        except (AttributeError, KeyError, TypeError, u.UnitsError) as error:
            raise ValueError(f"detection.exclusion[{k}]: needs ra, dec and radius ({error})") from (
                error
            )
        items.append((ra, dec, radius))
    return tuple(items)


def _settings(config, exclusion_radius, exclude):
    photometry = config.photometry
    method = photometry.method
    if method not in ("reflected", "wobble"):
        raise ValueError(
            f"photometry.method: must be 'reflected' or 'wobble', got {photometry.method!r}"
        )
    on_radius = float(u.Quantity(photometry.on_radius).to_value(u.deg))
    if not on_radius > 0:
        raise ValueError(f"photometry.on_radius must be a positive angle, got {on_radius} deg")
    max_off = int(photometry.max_off_regions)
    if max_off < 1:
        raise ValueError(f"photometry.max_off_regions must be >= 1, got {max_off}")
    if exclusion_radius is None:
        separation = getattr(config.detection, "min_separation", 0 * u.deg)
        exclusion_radius = max(float(u.Quantity(separation).to_value(u.deg)), on_radius)
    else:
        exclusion_radius = float(u.Quantity(exclusion_radius, u.deg).to_value(u.deg))
    extra = tuple((*check_position(ra, dec), exclusion_radius) for ra, dec in exclude)
    return _Settings(method, on_radius, max_off, exclusion_radius, _exclusion_items(config) + extra)


# -- regions ------------------------------------------------------------------------------
def exclusion_mask(geom, ra, dec, radius, exclusions=(), safe_image=None, cover=None):
    """The exclusion mask of the photometry (gammapy's convention: False = excluded).

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        The counts map (its image is used).
    ra, dec, radius : float
        The candidate's excluded circle, deg (ICRS).
    exclusions : sequence of (ra, dec, radius)
        More excluded circles, deg.
    safe_image : ndarray of bool, optional
        Pixels of the map with a safe energy bin (the others are excluded).
    cover : (`~astropy.coordinates.SkyCoord`, float), optional
        A circle (centre, radius in deg) the mask must cover: the map is padded until it
        does, and every pixel outside the map is excluded (the region finders read no
        exclusion where the mask has no pixel).

    Returns
    -------
    `~gammapy.maps.WcsNDMap`
        Boolean, on the map's image padded by whole pixels.
    """
    image = geom.to_image()
    pad = 2 if cover is None else _pad_to_cover(image, *cover)
    padded = image.pad(pad, axis_name=None)
    circles = [
        CircleSkyRegion(SkyCoord(r, d, unit="deg", frame="icrs"), rad * u.deg)
        for r, d, rad in ((ra, dec, radius), *exclusions)
    ]
    excluded = np.logical_or.reduce(region_masks(padded, circles))  # gammapy's region_mask
    inside = np.zeros(excluded.shape, dtype=bool)
    ny, nx = image.data_shape
    inside[pad : pad + ny, pad : pad + nx] = True if safe_image is None else safe_image
    return Map.from_geom(padded, data=~excluded & inside)


def _pad_to_cover(image, center, radius):
    """Pixels to add around ``image`` so that it covers the circle (deg) around ``center``
    (its outline sampled every 5 deg, 2 pixels of margin)."""
    angles = np.arange(0.0, 360.0, 5.0) * u.deg
    outline = center.directional_offset_by(angles, radius * u.deg)
    x, y = image.to_image().coord_to_pix(outline)
    ny, nx = image.data_shape
    beyond = max(-np.min(x), -np.min(y), np.max(x) - (nx - 1), np.max(y) - (ny - 1), 0.0)
    return int(np.ceil(beyond)) + 2


def _finder(settings):
    if settings.method == "wobble":
        return WobbleRegionsFinder(n_off_regions=settings.max_off_regions)
    return ReflectedRegionsFinder(max_region_number=settings.max_off_regions)


def off_regions(on_region, center, mask, settings):
    """Off regions of ``on_region`` around ``center`` outside ``mask``'s excluded pixels
    (rtafast's finders: gammapy's regions)."""
    regions, _ = _finder(settings).run(on_region, center, exclusion_mask=mask)
    return regions


class _PartRegions(NamedTuple):
    """One observation's regions at one position: the counter (None without off
    regions; then the on region's pixels, backend int64), the number of off regions, the
    offset (deg) and why there are none."""

    counter: object
    on_pixels: object
    n_off: int
    offset: float
    reason: str


def _pointing_icrs(observation):
    return observation.get_pointing_icrs(observation.tmid)


def _safe_image(pointing):
    mask = pointing.unit.mask_safe
    if mask is None:
        return None
    return np.asarray(mask.data, dtype=bool).any(axis=0)


def _compute_part(window, part, ra, dec, settings):
    geom = window.geom
    center = _pointing_icrs(part.pointing.observation)
    position = SkyCoord(ra, dec, unit="deg", frame="icrs")
    offset = float(position.separation(center).deg)
    on_region = CircleSkyRegion(position, settings.on_radius_deg * u.deg)
    if not bool(np.all(geom.to_image().contains(position))):
        return _PartRegions(None, None, 0, offset, "the candidate is outside the map")
    binsz = float(np.max(np.abs(geom.to_image().pixel_scales.to_value(u.deg))))
    mask = exclusion_mask(
        geom,
        ra,
        dec,
        settings.exclusion_radius_deg,
        settings.exclusions,
        safe_image=_safe_image(part.pointing),
        cover=(center, offset + settings.on_radius_deg + 2 * binsz),
    )
    try:
        regions = off_regions(on_region, center, mask, settings)
    except ValueError as error:  # the on region is below the finder's pixel size
        raise ValueError(f"photometry.on_radius: {error}") from error
    if not regions:
        on_pixels = np.flatnonzero(geom.to_image().region_mask([on_region]).data)
        on_pixels = window.backend.upload(on_pixels, np.int64)
        return _PartRegions(None, on_pixels, 0, offset, _no_off_reason(offset, settings))
    counter = MapRegionCounter(geom, on_region, regions, window.backend)
    return _PartRegions(counter, None, len(regions), offset, "")


def _no_off_reason(offset, settings):
    if offset < settings.on_radius_deg:
        return (
            f"no off region: the candidate is {offset:.3f} deg from the pointing, inside "
            f"the on region ({settings.on_radius_deg} deg): reflected regions do not exist"
        )
    return (
        f"no off region: every {settings.method} region at {offset:.3f} deg from the "
        "pointing is excluded (candidate, exclusion regions, map edge, unsafe pixels)"
        + (" or they overlap" if settings.method == "wobble" else "")
    )


def _part_regions(cache, window, part, ra, dec, position_key, settings):
    key = (part.pointing.token, window.backend.name, position_key, settings)
    entry = cache.regions.lookup(key)
    if entry is None:
        entry = _compute_part(window, part, ra, dec, settings)
        cache.regions.store(key, entry)
    return entry


# -- counting -----------------------------------------------------------------------------
def _part_cubes(window):
    """Each observation's counts cube (weighted by its safe mask), on the backend."""
    if len(window.parts) == 1:
        return [window.counts]
    cubes = []
    for part in window.parts:
        weights = part.pointing.counts_weights(window.backend)
        counts = part.counts if weights is None else part.counts * weights.ravel()
        cubes.append(counts.reshape(window.geom.data_shape))
    return cubes


def _on_counts(window, cube, on_pixels):
    """Counts of a cube in the on region's pixels (when no off region exists)."""
    if on_pixels is None or on_pixels.shape[0] == 0:
        return 0
    flat = cube.reshape(cube.shape[0], -1)
    return int(round(float(window.backend.xp.nansum(flat[:, on_pixels]))))


def photometry(window, ra, dec, config, cache=None, *, exclusion_radius=None, exclude=()):
    """On/off photometry of a candidate at ``(ra, dec)`` on a stream window.

    Parameters
    ----------
    window : `rtafast.stream.StreamWindow`
        Each observation's counts cube and pointing (the off regions of each
        observation are placed about its pointing; live times weight the stacked alpha).
    ra, dec : float
        Candidate position, deg (ICRS).
    config : `rtafast.pipeline.config.PipelineConfig`
        Reads ``photometry.on_radius``, ``photometry.method``,
        ``photometry.max_off_regions``, ``detection.min_separation`` and
        ``detection.exclusion``.
    cache : `rtafast.pipeline.measure_fit.MeasureCache`, optional
        Default: the module's.
    exclusion_radius : `~astropy.units.Quantity` or float (deg), optional
        Radius excluded around the candidate (and ``exclude``) from the off regions.
    exclude : sequence of (ra, dec)
        More positions (deg) to exclude, e.g. the window's other candidates.

    Returns
    -------
    Photometry
        See the module's notes; ``reason`` explains any NaN.

    Raises
    ------
    ValueError
        A position that is not a valid RA/Dec; bad photometry settings (naming the key).
    """
    cache = default_cache() if cache is None else cache
    settings = _settings(config, exclusion_radius, exclude)
    ra, dec, position_key = snap_position(window.geom, ra, dec, cache.grid_pixels)
    found = [
        _part_regions(cache, window, part, ra, dec, position_key, settings) for part in window.parts
    ]
    cubes = _part_cubes(window)
    livetimes = np.array([part.livetime for part in window.parts])
    offset = float(np.average([f.offset for f in found], weights=_weights(livetimes)))
    used = [k for k, f in enumerate(found) if f.counter is not None]
    if not used:
        oncounts = sum(
            _on_counts(window, c, f.on_pixels) for c, f in zip(cubes, found, strict=True)
        )
        reason = "; ".join(dict.fromkeys(f.reason for f in found))
        return _no_background(oncounts, offset, ra, dec, settings, reason)
    on, off, alphas, n_off = [], [], [], 0
    for k in used:
        rows = found[k].counter.counts(cubes[k]).sum(axis=1)  # on, each off, off union
        on.append(rows[0])
        off.append(rows[1:-1].sum())
        alphas.append(1.0 / found[k].n_off)
        n_off += found[k].n_off
    oncounts, offcounts = int(round(sum(on))), int(round(sum(off)))
    alpha = _stacked_alpha(np.array(alphas), np.array(off), livetimes[used])
    stats = OnOffStatistics(oncounts, offcounts, alpha)
    return Photometry(
        oncounts=oncounts,
        offcounts=offcounts,
        alpha=alpha,
        excess=float(stats.excess),
        excess_err=float(stats.error),
        sigma=float(lima_significance(oncounts, offcounts, alpha)),
        n_off_regions=n_off,
        offset=offset,
        ra=ra,
        dec=dec,
        on_radius=settings.on_radius_deg,
        reason=_left_out(window, found, used),
    )


def _weights(livetimes):
    return livetimes if livetimes.sum() > 0 else np.ones_like(livetimes)


def _stacked_alpha(alphas, off, livetimes):
    """gammapy's stacked alpha ``sum(alpha n_off) / sum(n_off)``; without off counts the
    live-time weighted mean of the alphas."""
    if off.sum() > 0:
        return float((alphas * off).sum() / off.sum())
    return float(np.average(alphas, weights=_weights(livetimes)))


def _left_out(window, found, used):
    if len(used) == len(found):
        return ""
    names = [
        f"{window.parts[k].pointing.observation.obs_id} ({found[k].reason})"
        for k in range(len(found))
        if k not in used
    ]
    return "observation(s) without off regions left out: " + "; ".join(names)


def _no_background(oncounts, offset, ra, dec, settings, reason):
    nan = math.nan
    return Photometry(
        oncounts=oncounts,
        offcounts=0,
        alpha=nan,
        excess=nan,
        excess_err=nan,
        sigma=nan,
        n_off_regions=0,
        offset=offset,
        ra=ra,
        dec=dec,
        on_radius=settings.on_radius_deg,
        reason=reason,
    )
