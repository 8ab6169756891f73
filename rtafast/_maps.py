"""Cheap gammapy Map construction for hot paths."""

__all__ = ["map_like", "map_copy"]


def map_like(template, data):
    """A map of ``template``'s class, geometry, unit and meta with ``data``.

    The geometry object is shared (gammapy does not modify geometries in place);
    ``Map.copy`` and Map arithmetic deep-copy it (~0.2-1 ms each with a WCS).

    Parameters
    ----------
    template : `gammapy.maps.Map`
    data : ndarray
        Of the template's shape.

    Returns
    -------
    `gammapy.maps.Map`
    """
    meta = dict(template.meta) if template.meta else None
    return template.__class__(geom=template.geom, data=data, unit=template.unit, meta=meta)


def map_copy(template):
    """A copy of a map's data in a map sharing its geometry (None for None)."""
    return None if template is None else map_like(template, template.data.copy())
