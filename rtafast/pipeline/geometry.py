"""The pipeline's map geometry, from the configuration's ``target`` and ``geometry`` sections.

The counts cube is a square WCS map of ``geometry.width`` (pixel ``geometry.binsz``)
centred on the target (or on the pointing when no target position is given), with
``geometry.energy_nbins`` log-spaced reconstructed-energy bins spanning the selection's
energy range; the IRF maps use the ``energy_true`` axis of ``geometry``. The detection's
exclusion circles become a gammapy exclusion mask on that geometry.
"""

import astropy.units as u
from astropy.coordinates import SkyCoord
from gammapy.maps import MapAxis, WcsGeom
from regions import CircleSkyRegion

__all__ = [
    "energy_axis",
    "energy_axis_true",
    "exclusion_mask",
    "make_geom",
    "map_center",
]


def map_center(config, pointing):
    """The centre of the maps: the configured target, or the pointing.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        ``target.ra`` / ``target.dec`` (deg, ICRS), or both null.
    pointing : `~astropy.coordinates.SkyCoord`
        Pointing direction of the (first) observation, used when no target position is set.

    Returns
    -------
    `~astropy.coordinates.SkyCoord`
        The centre, in ICRS.
    """
    target = config.target
    if target.ra is not None and target.dec is not None:
        return SkyCoord(target.ra, target.dec, unit="deg", frame="icrs")
    if pointing is None:
        raise ValueError("map centre: target.ra and target.dec are null and no pointing was given")
    return SkyCoord(pointing).icrs


def _log_energy_axis(energy_min, energy_max, nbin, name):
    """``nbin`` log-spaced bins from ``energy_min`` to ``energy_max`` (an energy Quantity
    each; the axis is in the unit of ``energy_min``), named ``name``."""
    return MapAxis.from_energy_bounds(
        energy_min, energy_max.to(energy_min.unit), nbin=nbin, name=name
    )


def energy_axis(config):
    """Reconstructed-energy axis: ``geometry.energy_nbins`` log bins over the selection.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        Reads ``selection.energy_min``, ``selection.energy_max`` (energies) and
        ``geometry.energy_nbins``.

    Returns
    -------
    `~gammapy.maps.MapAxis`
        Named ``"energy"``, edges from ``selection.energy_min`` to ``selection.energy_max``.
    """
    selection = config.selection
    return _log_energy_axis(
        selection.energy_min, selection.energy_max, config.geometry.energy_nbins, "energy"
    )


def energy_axis_true(config):
    """True-energy axis of the IRF maps: ``geometry.energy_true_nbins`` log bins in total.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        Reads ``geometry.energy_true_min``, ``geometry.energy_true_max`` (energies) and
        ``geometry.energy_true_nbins``.

    Returns
    -------
    `~gammapy.maps.MapAxis`
        Named ``"energy_true"``, edges from ``geometry.energy_true_min`` to ``_max``.
    """
    geometry = config.geometry
    return _log_energy_axis(
        geometry.energy_true_min,
        geometry.energy_true_max,
        geometry.energy_true_nbins,
        "energy_true",
    )


def make_geom(config, center):
    """The counts geometry of the pipeline.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        ``geometry`` (binsz, width, projection, frame, energy_nbins) and ``selection``
        (energy range).
    center : `~astropy.coordinates.SkyCoord`
        Map centre (see :func:`map_center`); transformed to ``geometry.frame``.

    Returns
    -------
    `~gammapy.maps.WcsGeom`
        ``npix × npix`` pixels of ``binsz`` (deg) with the :func:`energy_axis`.
    """
    geometry = config.geometry
    return WcsGeom.create(
        skydir=center,
        binsz=geometry.binsz.to_value(u.deg),
        width=geometry.width.to_value(u.deg),
        proj=geometry.projection,
        frame=geometry.frame,
        axes=[energy_axis(config)],
    )


def exclusion_mask(config, geom):
    """The detection's exclusion regions as a gammapy exclusion mask (True: usable).

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        ``detection.exclusion``: circles (ra, dec in deg ICRS, radius an angle).
    geom : `~gammapy.maps.WcsGeom`
        The geometry; only its image (sky) part is used.

    Returns
    -------
    `~gammapy.maps.WcsNDMap` or None
        A 2D boolean map, False inside any circle; None when no region is configured.
    """
    regions = [
        CircleSkyRegion(SkyCoord(region.ra, region.dec, unit="deg", frame="icrs"), region.radius)
        for region in config.detection.exclusion
    ]
    if not regions:
        return None
    return geom.to_image().region_mask(regions, inside=False)
