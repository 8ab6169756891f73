"""Sky circles compiled for the ``regions`` kernel family, and gammapy's own arithmetic
for the few events the kernel leaves ambiguous.

gammapy decides ``CircleSkyRegion.contains(skycoord, wcs)`` in the pixel plane of the
region geometry's WCS (regions 0.11: ``region.to_pixel(wcs)`` and the events'
``PixCoord.from_sky``): a circle of ``to_pixel(wcs).radius`` pixels there, which is not a
circle on the sky. The kernel reproduces that test for TAN WCSs with square pixels (see
:mod:`rtafast_kernels.regions.element`); the circles are compiled on arrays with wcslib
(:mod:`.wcsarrays`, :func:`circle_rows_of`) and each is checked against wcslib's pixel
arithmetic (astropy's ``pixel_to_world``) when it is compiled.
"""

import functools

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import wcs_to_celestial_frame
from gammapy.maps import MapCoord, RegionGeom
from gammapy.maps.utils import INVALID_INDEX
from regions import CircleSkyRegion

from rtafast_kernels.regions import element as el
from rtafast_kernels.regions.plane import basis

from . import wcsarrays as wa

__all__ = [
    "CircleProblem",
    "circle_problem",
    "circle_rows",
    "circle_rows_of",
    "energy_tolerance",
    "near_circles",
    "finish_rows",
    "bounds_of",
    "ExactCounter",
]

#: Ambiguity band (deg) around a circle's edge: float64 arithmetic (ours and wcslib's
#: differ by ~1e-13 pixel), and float32 RA/Dec transformed by astropy into another frame
#: (errors up to ~1e-5 deg, see ``rtafast.events.binning``).
BAND_DEG = {"exact": 1e-8, "float32-frame": 5e-5}
#: Energy band, in units of the narrowest bin (in the axis's scale): float64, float32.
ENERGY_BAND = {"float64": 1e-9, "float32": 1e-5}
#: Largest relative difference allowed between the kernel's and astropy's pixel
#: distances in the check of each compiled circle.
CHECK_RTOL = 1e-9

_D2R = np.pi / 180.0


class CircleProblem(ValueError):
    """A region or WCS the kernel cannot count in (the caller delegates to gammapy)."""


def circle_problem(region, wcs):
    """Why the kernel cannot reproduce ``region.contains(skycoord, wcs)``, or None."""
    return _region_problem(region) or _wcs_problem(wcs)


def _wcs_problem(wcs):
    """Why the kernel cannot test circles in ``wcs``, or None."""
    if wcs is None or wcs.naxis != 2 or not wcs.has_celestial:
        return "no 2D celestial WCS"
    if any(not ctype.endswith("-TAN") for ctype in wcs.wcs.ctype):
        return f"projection {tuple(wcs.wcs.ctype)} is not TAN"
    (a, b), (c, d) = (wcs.wcs.get_pc() * wcs.wcs.cdelt[:, None]).tolist()
    scale2 = abs(a * d - b * c)  # linear @ linear.T must be scale2 * identity
    atol = 1e-12 * scale2
    gram = (a * a + b * b - scale2, a * c + b * d, c * c + d * d - scale2)
    if not all(abs(value) <= atol for value in gram):
        return "pixels are not square (or are skewed)"
    return None


def _region_problem(region):
    if type(region) is not CircleSkyRegion:
        return f"{type(region).__name__} is not a CircleSkyRegion"
    if not region.meta.get("include", True):
        return "an exclusion (include=False) region"
    return None


def _check_points(cx, cy, r_pix):
    """Pixels of the check (32 per circle, (n, 32)) and their offsets in radii (2, 32)."""
    phi = np.linspace(0, 2 * np.pi, 9)[:-1]
    factors = np.array([0.3, 0.999, 1.001, 1.7])
    offsets = np.array([np.outer(factors, np.cos(phi)), np.outer(factors, np.sin(phi))])
    offsets = offsets.reshape(2, -1)
    x = cx[:, None] + r_pix[:, None] * offsets[0]
    y = cy[:, None] + r_pix[:, None] * offsets[1]
    return x, y, offsets


def _check(rows, v, offsets):
    """Compare the kernel's squared distances with astropy's pixels at a few points.

    ``v`` (3, n, m): ICRS unit vectors of the pixels ``centre + r_pix * offsets`` (wcslib).
    """
    p, c = rows[:, el.C_P : el.C_P + 3], rows[:, el.C_C : el.C_C + 3]
    d = np.einsum("inm,ni->nm", v, p)
    w = v / d - c.T[:, :, None]
    ours = (w * w).sum(axis=0) / rows[:, el.C_R2, None]
    theirs = (offsets[0] ** 2 + offsets[1] ** 2)[None, :] * np.ones_like(ours)
    if not np.all(np.abs(ours - theirs) <= CHECK_RTOL * theirs):  # NaN fails too
        worst = float(np.max(np.abs(ours / theirs - 1)))
        raise CircleProblem(f"kernel and astropy pixel distances differ by {worst:.1e} (relative)")


#: Points on each footprint's edge for its nearest / farthest distance: the distance at
#: an extreme deviates from the nearest sample by < (pi / 180)^2 / 2 = 1.5e-4 relative,
#: far inside the 0.2 % margin of :func:`circle_rows`.
_EDGE_PHI = np.linspace(0, 2 * np.pi, 181)[:-1]
_EDGE_COS, _EDGE_SIN = np.cos(_EDGE_PHI), np.sin(_EDGE_PHI)


def _screen(rows, radius, ra_c, dec_c):
    """The nearest / farthest footprint edge (deg) from the centres (ICRS deg).

    Each footprint's edge (180 points) is the kernel's circle (the rows: centre and
    radius in the tangent plane of ``p``, the footprint checked against wcslib by
    :func:`_check`), mapped to ``x = (RA - RA_c) cos(Dec_c)``, ``y = Dec - Dec_c``; its
    nearest and farthest points bracket the circle (the curve encloses the centre).
    """
    p, c = rows[:, el.C_P : el.C_P + 3], rows[:, el.C_C : el.C_C + 3]
    e1, e2 = basis(p)
    w = c[:, :, None] + radius[:, None, None] * (
        e1[:, :, None] * _EDGE_COS + e2[:, :, None] * _EDGE_SIN
    )  # (n, 3, 720), unnormalised directions
    ra_e = np.arctan2(w[:, 1], w[:, 0]) / _D2R
    dec_e = np.arctan2(w[:, 2], np.hypot(w[:, 0], w[:, 1])) / _D2R
    cos_c = np.cos(dec_c * _D2R)
    dx = ((ra_e - ra_c[:, None] + 180.0) % 360.0 - 180.0) * cos_c[:, None]
    dist = np.hypot(dx, dec_e - dec_c[:, None])
    return cos_c, dist.min(axis=1), dist.max(axis=1)


def _pixel_geometry(regions, wcs):
    """Everything :func:`circle_rows` needs from wcslib/astropy, on arrays."""
    target = wcs_to_celestial_frame(wcs)
    try:
        lon, lat, frame, cx, cy, r_pix = wa.pixel_circles(regions, wcs, target)
        x, y, offsets = _check_points(cx, cy, r_pix)
        ra_pts, dec_pts = wa.pixels_to_icrs(wcs, x, y, target)
    except wa.WcsProblem as error:
        raise CircleProblem(str(error)) from None
    lng, lat_axis = wa.celestial_axes(wcs)
    crval = wcs.wcs.crval
    p = wa.unit_vectors(crval[lng], crval[lat_axis], target)
    ra_c, dec_c = wa.transform(lon, lat, frame, wa.ICRS_FRAME)
    return p, ra_c, dec_c, cx, cy, r_pix, ra_pts, dec_pts, offsets


def _group_rows(regions, wcs):
    """Geometry rows (tangent point, centre, R^2) of circles in one WCS, and what
    :func:`circle_rows` needs for the check and the screens."""
    problem = _wcs_problem(wcs)
    for region in regions:
        problem = problem or _region_problem(region)
    if problem is not None:
        raise CircleProblem(problem)
    frames = {r.center.frame.name for r in regions}
    if len(frames) > 1:
        raise CircleProblem(f"regions in several frames {sorted(frames)}")
    p, ra_c, dec_c, cx, cy, r_pix, ra_pts, dec_pts, offsets = _pixel_geometry(regions, wcs)
    c = wa.unit_vectors(ra_c, dec_c).T  # (n, 3)
    scale = np.sqrt(abs(np.linalg.det(wcs.wcs.get_pc() * wcs.wcs.cdelt[:, None]))) * _D2R
    radius = r_pix * scale
    base = np.zeros((len(regions), el.CIRCLE_SIZE))
    base[:, el.C_P : el.C_P + 3] = p
    base[:, el.C_C : el.C_C + 3] = c / (c @ p)[:, None]
    base[:, el.C_R2] = radius**2
    return base, radius, ra_c, dec_c, ra_pts, dec_pts, offsets


def circle_rows(regions, wcs, bands_deg):
    """Pack circles tested in one WCS for the kernel (``rtafast_kernels.regions.element``).

    :func:`circle_rows_of` of one group.
    """
    return circle_rows_of([(regions, wcs)], bands_deg)


def circle_rows_of(groups, bands_deg):
    """Pack circles for the kernel (``rtafast_kernels.regions.element``), each group of
    circles tested in its own WCS (e.g. the on region, then the off regions).

    The pixel circles are regions 0.11's ``to_pixel(wcs)`` computed on arrays
    (:mod:`.wcsarrays`: wcslib's ``s2p``/``p2s``); each compiled circle is then checked
    against wcslib's pixels at 32 points (:data:`CHECK_RTOL`).

    Parameters
    ----------
    groups : list of (list of `~regions.CircleSkyRegion`, `~astropy.wcs.WCS`)
    bands_deg : dict
        ``{name: ambiguity band (deg)}``.

    Returns
    -------
    dict
        ``{name: rows (n_regions, CIRCLE_SIZE)}``, the groups' circles in order,
        screening RA absolute (see :func:`finish_rows`).

    Raises
    ------
    CircleProblem
        If a region or a WCS is not supported, or the compiled circles do not
        reproduce astropy's pixel distances within :data:`CHECK_RTOL`.
    """
    parts = [_group_rows(regions, wcs) for regions, wcs in groups]
    base, radius, ra_c, dec_c, ra_pts, dec_pts = (
        np.concatenate([part[i] for part in parts]) for i in range(6)
    )
    _check(base, wa.unit_vectors(ra_pts, dec_pts), parts[0][6])
    cos_c, near, far = _screen(base, radius, ra_c, dec_c)
    out = {}
    for name, band_deg in bands_deg.items():
        rows = base.copy()
        band = band_deg * _D2R
        rows[:, el.C_TOL] = 2 * radius * band + band**2
        r_out = far * 1.002 + band_deg + 1e-7
        r_in = np.maximum(near * 0.998 - band_deg - 1e-7, 0.0)
        rows[:, el.C_OFF], rows[:, el.C_DEC], rows[:, el.C_COS] = ra_c, dec_c, cos_c
        rows[:, el.C_RIN2], rows[:, el.C_ROUT2], rows[:, el.C_ROUT] = r_in**2, r_out**2, r_out
        polar = np.abs(dec_c) + r_out > 80.0  # no screen near a pole: every event exact
        rows[polar, el.C_RIN2], rows[polar, el.C_ROUT2], rows[polar, el.C_ROUT] = -1, np.inf, 180
        out[name] = rows
    return out


def finish_rows(rows, ra_ref):
    """Rows with their screening RA as offsets from ``ra_ref`` (deg)."""
    rows = rows.copy()
    rows[:, el.C_OFF] = (rows[:, el.C_OFF] - ra_ref + 180.0) % 360.0 - 180.0
    return rows


def near_circles(ra, dec, rows, bounds):
    """(n_circles, n_events) bool: events a circle may contain (its screen's box)."""
    dra = (ra[None, :] - bounds[el.B_RA] - rows[:, el.C_OFF, None] + 180.0) % 360.0 - 180.0
    near = np.abs(dra * rows[:, el.C_COS, None]) <= rows[:, el.C_ROUT, None]
    return near & (np.abs(dec[None, :] - rows[:, el.C_DEC, None]) <= rows[:, el.C_ROUT, None])


def bounds_of(rows):
    """The RA/Dec box containing every circle's screen (rows with absolute RA)."""
    ra0 = rows[0, el.C_OFF]
    dra = (rows[:, el.C_OFF] - ra0 + 180.0) % 360.0 - 180.0
    with np.errstate(divide="ignore"):
        half = np.where(rows[:, el.C_COS] > 0, rows[:, el.C_ROUT] / rows[:, el.C_COS], np.inf)
    half_width = float(np.max(np.abs(dra) + half * 1.000001 + 1e-9))
    bounds = np.zeros(el.BOUNDS_SIZE)
    bounds[el.B_RA] = ra0
    bounds[el.B_HW] = min(half_width, 180.0)
    bounds[el.B_DEC_MIN] = float(np.min(rows[:, el.C_DEC] - rows[:, el.C_ROUT]))
    bounds[el.B_DEC_MAX] = float(np.max(rows[:, el.C_DEC] + rows[:, el.C_ROUT]))
    return bounds


def energy_tolerance(axis, dtype):
    """Relative energy band (of ``E``) for an energy column of ``dtype``."""
    band = ENERGY_BAND["float64" if np.dtype(dtype) == np.float64 else "float32"]
    edges = np.asarray(axis.edges.value, dtype=np.float64)
    if axis.interp == "log":
        return band * float(np.min(np.diff(np.log(edges))))
    return band * float(np.min(np.diff(edges))) / float(np.max(np.abs(edges)))


class ExactCounter:
    """gammapy's own arithmetic for a few events: ``RegionGeom.coord_to_idx`` per circle.

    Parameters
    ----------
    regions : list of `~regions.CircleSkyRegion`
        On region first, then the off regions.
    wcss : list of `~astropy.wcs.WCS`
        The WCS in which gammapy tests each region.
    axis : `~gammapy.maps.MapAxis`
        The energy axis.
    """

    def __init__(self, regions, wcss, axis):
        self.regions = list(regions)
        self.wcss = list(wcss)
        self.axis = axis

    @functools.cached_property
    def geoms(self):
        return [
            RegionGeom(region, axes=[self.axis], wcs=wcs)
            for region, wcs in zip(self.regions, self.wcss, strict=True)
        ]

    def counts(self, ra, dec, energy, candidates):
        """(n_regions + 1, n_energy) counts of the events, as gammapy's ``fill_events``.

        ``candidates`` (n_regions, n_events) bool: where a region can contain an event
        (the kernel's boxes); the others are not asked.
        """
        n_regions, n_energy = len(self.regions), self.axis.nbin
        out = np.zeros((n_regions + 1, n_energy))
        # gammapy's EventList.map_coord: SkyCoord of the columns (dtype kept), energies
        coords = MapCoord.create(
            {
                "skycoord": SkyCoord(ra * u.deg, dec * u.deg, frame="icrs"),
                "energy": u.Quantity(energy, self.axis.unit),
            }
        )
        union = np.full((n_energy, len(ra)), False)
        for k in np.flatnonzero(candidates.any(axis=1)):
            geom = self.geoms[k]
            idx = geom.coord_to_idx(coords)
            valid = np.all(np.stack([t != INVALID_INDEX.int for t in idx]), axis=0)
            for i in np.flatnonzero(valid):
                out[k, idx[-1][i]] += 1
                if k > 0:
                    union[idx[-1][i], i] = True
        out[n_regions] = union.sum(axis=1)
        return out
