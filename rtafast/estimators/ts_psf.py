"""PSF kernels and IRF lookups on the pixel grid, as gammapy 2.1 computes them.

The array pieces of :mod:`rtafast.estimators.ts_kernel`: gammapy's pixel coordinates
and multilinear interpolation, axis by axis; the PSF kernel of ``PSFMap.get_psf_kernel``
(:func:`psf_kernel`); the energy-dispersion matrix at a position; the checks that raise
:class:`Unsupported` where gammapy's own functions must run.
"""

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.wcs.utils import celestial_frame_to_wcs
from gammapy.datasets.evaluator import PSF_CONTAINMENT
from gammapy.irf import EDispKernelMap, PSFMap
from gammapy.maps import RegionGeom, WcsGeom
from gammapy.maps.coord import skycoord_to_lonlat

__all__ = [
    "Unsupported",
    "angular_separation",
    "edisp_matrix",
    "is_regular_wcs",
    "pix_of",
    "psf_kernel",
]


#: gammapy's ``PSF_MAX_OVERSAMPLING`` and ``precision_factor`` of ``get_psf_kernel``.
PSF_MAX_OVERSAMPLING = 4
PRECISION_FACTOR = 12
#: Upsampling of the rad axis in gammapy's ``containment_radius``.
CONTAINMENT_RAD_FACTOR = 20
#: Margin of the decisions rounding could flip (relative, or in pixels).
DECISION_MARGIN = 1e-9


class Unsupported(Exception):
    """A case the array path does not cover (gammapy's function runs instead)."""


def is_regular_wcs(geom):
    return isinstance(geom, WcsGeom) and geom.is_regular


def _single_bin(geom):
    """A region geometry with one spatial bin (e.g. Fermi-LAT ``gtpsf`` PSF maps)."""
    return isinstance(geom, RegionGeom) and tuple(geom.data_shape[-2:]) == (1, 1)


def _round_up_to_odd(value):
    """gammapy's ``round_up_to_odd``."""
    return int(np.ceil(value) // 2 * 2 + 1)


def _axis_pix(axis, coord):
    """``MapAxis.coord_to_pix`` for a non-periodic axis: scipy's ``interp1d``
    (linear, extrapolated) of the axis' scaled edges or nodes against their pixel
    positions, with its formula (the same numbers, without building ``interp1d``)."""
    transform = axis._transform
    if transform.kind != 1 or axis._boundary_type != "monotonic":
        return axis.coord_to_pix(coord)
    coord = u.Quantity(coord, axis.unit).value
    x_new = np.asarray(transform.scale(coord), dtype=float)
    x, y = transform.x, transform.y
    if x[-1] < x[0]:
        return axis.coord_to_pix(coord * axis.unit)
    index = np.searchsorted(x, x_new).clip(1, len(x) - 1).astype(int)
    lo, hi = index - 1, index
    slope = (y[hi] - y[lo]) / (x[hi] - x[lo])
    pix = slope * (x_new - x[lo]) + y[lo]
    return np.array(pix + axis._pix_offset, ndmin=1)


def _linear_weights(grid_size, pix):
    """Lower index and weight of scipy's ``RegularGridInterpolator`` (linear, with
    linear extrapolation) on the grid ``0 .. grid_size - 1`` at pixel coordinates."""
    pix = np.asarray(pix, dtype=float)
    grid = np.arange(grid_size, dtype=float)
    index = np.searchsorted(grid, pix) - 1
    index = np.clip(index, 0, grid_size - 2)
    return index, pix - grid[index]


def _interp_axis(values, axis, pix):
    """Linear interpolation (extrapolation) of ``values`` along ``axis`` at pixel
    coordinates ``pix`` (scalar: the axis is removed; array: it is replaced)."""
    values = np.moveaxis(values, axis, 0)
    n = values.shape[0]
    if n == 1:  # gammapy's interpolator ignores dimensions of length 1
        out = values[0]
        return out if np.ndim(pix) == 0 else np.broadcast_to(out, np.shape(pix) + out.shape)
    index, weight = _linear_weights(n, pix)
    lo, hi = values[index], values[index + 1]
    weight = np.reshape(weight, np.shape(weight) + (1,) * (values.ndim - 1))
    out = lo * (1.0 - weight) + hi * weight
    return out


def _nearest_index(grid_size, pix):
    """scipy's ``RegularGridInterpolator`` nearest rule on ``0 .. grid_size - 1``
    (a distance of exactly half a pixel goes to the lower index)."""
    if grid_size == 1:
        return 0
    index, weight = _linear_weights(grid_size, pix)
    return int(index if weight <= 0.5 else index + 1)


def angular_separation(lon1, lat1, lon2, lat2):
    """astropy's Vincenty formula (radians)."""
    sdlon = np.sin(lon2 - lon1)
    cdlon = np.cos(lon2 - lon1)
    slat1, slat2 = np.sin(lat1), np.sin(lat2)
    clat1, clat2 = np.cos(lat1), np.cos(lat2)
    num1 = clat2 * sdlon
    num2 = clat1 * slat2 - slat1 * clat2 * cdlon
    denominator = slat1 * slat2 + clat1 * clat2 * cdlon
    return np.arctan2(np.hypot(num1, num2), denominator)


def pix_of(geom, position):
    """Pixel coordinates ``(x, y)`` of a sky position in a geometry (as gammapy's
    ``coord_to_pix``: the position in the geometry's frame, WCSLIB's world2pix)."""
    lon, lat = skycoord_to_lonlat(position, frame=geom.frame)[:2]
    x, y = geom.wcs.wcs_world2pix(np.atleast_1d(lon), np.atleast_1d(lat), 0)
    return float(x[0]), float(y[0])


def _region_pixel(geom, position):
    """The pixel ``(iy, ix)`` gammapy's ``Map.to_region_nd_map(position)`` reads.

    gammapy makes a point region of the position, whose centre is that of its
    pixel bounding box (the ``regions`` package: ``floor(x + 0.5)``), and reads
    the map there by nearest-neighbour interpolation. A pixel coordinate exactly
    half way between pixels gives an empty box, whose centre (the half-pixel
    point) goes to the sky and back: done as gammapy does. Coordinates within
    1e-6 pixel of half way are recomputed with astropy's ``world_to_pixel`` (the
    ``regions`` call) to decide.
    """
    ny, nx = geom.data_shape[-2:]
    x, y = pix_of(geom, position)
    if min(abs((x + 0.5) - np.rint(x + 0.5)), abs((y + 0.5) - np.rint(y + 0.5))) <= 1e-6:
        x, y = geom.wcs.world_to_pixel(position)
        x, y = float(np.squeeze(x)), float(np.squeeze(y))
    ix0, ix1 = int(np.floor(x + 0.5)), int(np.ceil(x + 0.5))
    iy0, iy1 = int(np.floor(y + 0.5)), int(np.ceil(y + 0.5))
    if ix1 > ix0 and iy1 > iy0:
        return min(max(iy0, 0), ny - 1), min(max(ix0, 0), nx - 1)
    xc, yc = 0.5 * (ix1 - 1 + ix0), 0.5 * (iy1 - 1 + iy0)
    sky = geom.wcs.pixel_to_world(xc, yc)
    px, py = pix_of(geom, sky)
    return _nearest_index(ny, py), _nearest_index(nx, px)


def _irf_mask_image(irf_map):
    """``IRFMap.mask_safe_image`` as an array: any value > 0 over the other axes."""
    data = irf_map.data
    return (data > 0).reshape((-1,) + data.shape[-2:]).any(axis=0)


def _check_valid_position(irf_map, position):
    """gammapy's ``IRFMap._get_nearest_valid_position``: the position itself when
    its pixel (``coord_to_idx``, as gammapy) is valid; other cases are left to gammapy."""
    mask = _irf_mask_image(irf_map)
    if mask.all() or not mask.any():
        return
    idx = irf_map.geom.to_image().coord_to_idx(position)
    ix, iy = int(np.squeeze(idx[0])), int(np.squeeze(idx[1]))
    ny, nx = mask.shape
    valid = 0 <= iy < ny and 0 <= ix < nx and mask[iy, ix]
    if not valid and mask.any():
        raise Unsupported("IRF map invalid at the position")


# --- energy dispersion ------------------------------------------------------------


def edisp_matrix(edisp, position, energy_axis):
    """``edisp.get_edisp_kernel(position, energy_axis).pdf_matrix`` (true x reco)."""
    if not isinstance(edisp, EDispKernelMap) or not is_regular_wcs(edisp.edisp_map.geom):
        kernel = edisp.get_edisp_kernel(position=position, energy_axis=energy_axis)
        return kernel.pdf_matrix, kernel.axes["energy"]
    edisp_map = edisp.edisp_map
    if energy_axis is not None and energy_axis != edisp_map.geom.axes["energy"]:
        raise AssertionError  # as gammapy's get_edisp_kernel
    if position is None:
        position = edisp_map.geom.center_skydir
    _check_valid_position(edisp_map, position)
    iy, ix = _region_pixel(edisp_map.geom, position)
    data = edisp_map.data
    if not np.isfinite(data[..., iy, ix]).all():
        raise Unsupported("EDisp map with non-finite values")
    # (energy_true, energy) at the pixel, gammapy's region map keeps the dtype
    return data[:, :, iy, ix], edisp_map.geom.axes["energy"]


# --- PSF kernel -----------------------------------------------------------------------


class _PSFTable:
    """A PSF map's values at one sky position: ``table[energy, rad]`` (linear
    interpolation on the spatial pixel grid, as gammapy's), and the containment
    radius of ``PSFMap.containment_radius`` at that position."""

    def __init__(self, psf, position):
        psf_map = psf.psf_map
        data = psf_map.data
        if not np.isfinite(data).all():
            raise Unsupported("PSF map with non-finite values")
        if _single_bin(psf_map.geom):  # one spatial bin: no spatial interpolation
            x, y = 0.0, 0.0
        else:
            x, y = pix_of(psf_map.geom, position)
        # data axes: (energy_true, rad, lat, lon)
        table = _interp_axis(data.astype(np.float64), 2, y)
        self.table = _interp_axis(table, 2, x)  # (energy, rad)
        self.position = position
        self.psf = psf
        self.x, self.y = x, y
        self.energy_axis = psf_map.geom.axes["energy_true"]
        self.rad_axis = psf_map.geom.axes["rad"]
        self.unit = psf_map.unit

    def values(self, energy, rad):
        """``psf_map.interp_by_coord({skycoord, rad, energy_true})`` at one energy
        and an array of rad values (Quantity), clipped at 0 as gammapy's kernel."""
        e_pix = float(np.squeeze(_axis_pix(self.energy_axis, energy)))
        r_pix = _axis_pix(self.rad_axis, rad.ravel())
        profile = _interp_axis(self.table, 0, e_pix)  # (rad,)
        out = _interp_axis(profile, 0, r_pix)
        return np.clip(out, 0, np.inf).reshape(rad.shape)

    def containment_radius(self, fraction, energies):
        """``PSFMap.containment_radius(fraction, energies, position)`` (deg)."""
        rad_axis = self.rad_axis
        rad_up = rad_axis.upsample(factor=CONTAINMENT_RAD_FACTOR).center
        # the cumulative IRF of gammapy's IRF.cumsum, at the position
        values = self.table * rad_axis.bin_width.value[None, :]
        values = 2 * np.pi * rad_axis.center.value[None, :] * values
        cumsum = values.cumsum(axis=1)
        from gammapy.maps import MapAxis

        cum_axis = MapAxis.from_nodes(rad_axis.edges[1:], name="rad", interp=rad_axis.interp)
        scale = (self.unit * rad_axis.unit * rad_axis.unit).to("")
        energy_axis = self.energy_axis
        # ScaledRegularGridInterpolator over axis centers in the axes' interpolation
        # scales, linear extrapolation, then gammapy's fill value 0 outside the axes
        e_scale = energy_axis._transform.scale
        r_scale = cum_axis._transform.scale
        e_nodes = e_scale(energy_axis.center.value)
        r_nodes = r_scale(cum_axis.center.to_value(rad_axis.unit))
        e_x = e_scale(u.Quantity(energies, energy_axis.unit).value)
        r_x = r_scale(rad_up.to_value(rad_axis.unit))
        table = _interp_nodes(cumsum, 0, e_nodes, e_x)  # (n_e, rad)
        cont = _interp_nodes(table, 1, r_nodes, r_x)  # (n_e, n_rad_up)
        cont = cont * scale
        outside = (energy_axis.coord_to_idx(energies, clip=False) == -1)[:, None]
        outside = outside | (cum_axis.coord_to_idx(rad_up, clip=False) == -1)[None, :]
        ny, nx = self.psf.psf_map.geom.data_shape[-2:]
        if not (-0.5 <= self.x <= nx - 0.5 and -0.5 <= self.y <= ny - 0.5):
            raise Unsupported("position outside the PSF map")
        cont = np.where(outside, 0.0, cont)
        cont[~np.isfinite(cont)] = 0.0
        distance = np.abs(cont - fraction)
        order = np.argsort(distance, axis=1, kind="stable")
        best = np.take_along_axis(distance, order[:, :2], axis=1)
        if distance.shape[1] > 1 and np.any(best[:, 1] - best[:, 0] <= DECISION_MARGIN):
            raise Unsupported("containment radius on a tie")
        return rad_up[np.argmin(distance, axis=1)].to("deg")


def _interp_nodes(values, axis, nodes, x):
    """scipy's ``RegularGridInterpolator`` linear rule along one axis with nodes."""
    values = np.moveaxis(values, axis, 0)
    if nodes.size == 1:
        out = np.broadcast_to(values[0], (np.size(x),) + values.shape[1:])
        return np.moveaxis(out, 0, axis)
    x = np.asarray(x, dtype=float)
    index = np.clip(np.searchsorted(nodes, x) - 1, 0, nodes.size - 2)
    weight = (x - nodes[index]) / (nodes[index + 1] - nodes[index])
    weight = weight.reshape(weight.shape + (1,) * (values.ndim - 1))
    out = values[index] * (1.0 - weight) + values[index + 1] * weight
    return np.moveaxis(out, 0, axis)


def psf_kernel(psf, geom, position):
    """``PSFMap.get_psf_kernel(geom, position, containment=0.999)`` on arrays.

    Parameters
    ----------
    psf : `gammapy.irf.PSFMap`
    geom : `gammapy.maps.WcsGeom`
        Kernel geometry with an ``energy_true`` axis.
    position : `astropy.coordinates.SkyCoord`

    Returns
    -------
    data : ndarray, float32, shape (n_energy_true, n, n)
        Normalised PSF kernel (as gammapy's ``PSFKernel``).
    psf_geom : `gammapy.maps.WcsGeom`
        Its geometry.
    """
    if type(psf) is not PSFMap or psf.energy_name != "energy_true":  # noqa: E721
        raise Unsupported("PSF map type")
    if not (is_regular_wcs(psf.psf_map.geom) or _single_bin(psf.psf_map.geom)):
        raise Unsupported("PSF map geometry")
    _check_valid_position(psf.psf_map, position)
    table = _PSFTable(psf, position)
    energy_axis = psf.psf_map.geom.axes["energy_true"]
    # the containment radii are values of gammapy's upsampled rad axis (the same
    # argmin, checked for ties, gives the same values): everything below uses
    # gammapy's float operations on them, so the integer decisions are its own
    radii = table.containment_radius(PSF_CONTAINMENT, energy_axis.center)
    max_radius = np.max(radii)
    r68s = table.containment_radius(0.68, geom.axes["energy_true"].center)
    factors = []
    for r68 in r68s:
        base_factor = (2 * r68 / geom.pixel_scales.max()).to_value("")
        factors.append(
            np.minimum(int(np.ceil(PRECISION_FACTOR / base_factor)), PSF_MAX_OVERSAMPLING)
        )
    psf_geom = geom.to_odd_npix(max_radius=max_radius)
    n_energy = psf_geom.data_shape[0]
    npix = psf_geom.data_shape[-1]
    data = np.zeros(psf_geom.data_shape, dtype=np.float32)
    center = psf_geom.center_skydir
    crval = skycoord_to_lonlat(center, frame=psf_geom.frame)[:2]
    binsz = psf_geom.pixel_scales.max()
    center_lon, center_lat = np.deg2rad(center.data.lon.deg), np.deg2rad(center.data.lat.deg)
    energies = psf_geom.axes["energy_true"].center
    cuts = []
    for i in range(min(n_energy, radii.size)):
        # im.geom.to_odd_npix(max_radius=radii[i]).upsample(factors[i]), gammapy's ops
        width_npix = (2 * u.Quantity(radii[i]) / binsz).to_value("")
        cuts.append((i, _round_up_to_odd(width_npix), int(factors[i])))
    # the upsampled cut grids of one factor are nested (same centre and pixel size):
    # the separations of the largest one serve all (equal up to rounding)
    largest = {}
    for _, n_cut, factor in cuts:
        largest[factor] = max(n_cut, largest.get(factor, 0))
    separations = {
        factor: _cut_separations(
            psf_geom, crval, binsz.to_value("deg"), n_cut, factor, center_lon, center_lat
        )
        for factor, n_cut in largest.items()
    }
    for i, n_cut, factor in cuts:
        big = separations[factor]
        off = (big.shape[0] - n_cut * factor) // 2
        rad = big[off : off + n_cut * factor, off : off + n_cut * factor]
        values = table.values(energies[i], u.Quantity(rad, "rad").to("deg"))
        if factor > 1:  # Map.downsample(preserve_counts=True): block sums
            values = np.nansum(values.reshape(n_cut, factor, n_cut, factor), axis=(1, 3))
        lo = (npix - n_cut) // 2
        data[i, lo : lo + n_cut, lo : lo + n_cut] = values
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.nan_to_num(data / data.sum(axis=(1, 2), keepdims=True))
    return data, psf_geom


def _cut_separations(psf_geom, crval, binsz, n_cut, factor, lon0, lat0):
    """Separations (rad) of the pixel centres of gammapy's upsampled cut geometry
    (``WcsGeom.create(skydir, binsz, npix).upsample(factor)``) from the kernel centre."""
    frame = SkyCoord(np.nan, np.nan, frame=psf_geom.frame, unit="deg").frame
    wcs = celestial_frame_to_wcs(frame, projection=psf_geom.projection)
    refpix = (n_cut + 1) / 2.0
    wcs.wcs.crpix = (refpix, refpix)
    wcs.wcs.crval = crval
    wcs.wcs.cdelt = (-binsz, binsz)
    wcs.wcs.datfix()
    # get_resampled_wcs(wcs, factor, downsampled=False)
    scale = 1.0 / factor
    wcs.wcs.cdelt *= scale
    wcs.wcs.crpix = (wcs.wcs.crpix - 0.5) / scale + 0.5
    pix = np.arange(n_cut * factor, dtype=float)
    lon, lat = wcs.wcs_pix2world(pix[None, :], pix[:, None], 0)
    return angular_separation(np.deg2rad(lon), np.deg2rad(lat), lon0, lat0)


# --- kernel ---------------------------------------------------------------------------
