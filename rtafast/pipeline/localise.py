"""Sub-pixel position and error circle of a TS-map peak.

The TS map of a point source is, pixel by pixel, the likelihood ratio of the source
at that position with its flux profiled: near its maximum ``TS(p) ≈ TS0 − ½ (p − p0)ᵀ
H (p − p0)``. :func:`localise` fits that paraboloid by least squares to the
``(2 h + 1)²`` pixels around the peak (``h = 1``: 3×3), takes the maximum ``p0`` as the
position and ``C = 2 H⁻¹`` as its covariance (Wilks: ``TS0 − TS(p_true)`` follows χ²
with 2 degrees of freedom), converts ``C`` to degrees on the sky with the geometry's WCS
and returns the radii of the circles around ``p0`` that contain 68 % and 95 % of that
2D Gaussian (exactly, for an elliptical Gaussian: :func:`circular_containment_radius`).

This holds when the TS surface is the likelihood of the data as binned (one PSF kernel
per energy bin, wide enough to hold the PSF): :func:`local_ts_image` computes such a
surface on a few pixels around a peak with the TS map's own per-pixel fits. On it the
radii are calibrated as they are, with no correction (``docs/pipeline-localisation.md``);
a systematic term (``systematic_deg``, added in quadrature to both axes' σ, e.g. a
pointing uncertainty) is available and zero by default.

A peak that cannot be fitted -- on the map's edge or next to a pixel that was not
fitted (NaN), a paraboloid that does not open downwards, a maximum outside the fitted
patch -- gives ``localised=False``, the peak pixel's centre as position, and radii
from the TS contour: the largest distance from the peak of a pixel connected to it whose
TS is within the χ²₂ quantile of the peak's, plus half a pixel diagonal
(:func:`contour_radius`: the likelihood-ratio region, enlarged to whole pixels; never
below one pixel; with ``fallback_image``, the larger of the two images' radii). Nothing
is NaN.
"""

import dataclasses
from typing import NamedTuple

import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.datasets import Datasets
from scipy import ndimage
from scipy.optimize import brentq

from rtafast_kernels import resolve_backend
from rtafast_kernels.tsmap.element import OUTPUT_NAMES
from rtafast_kernels.tsmap.inputs import array_module

from ..estimators.ts_inputs import build_scan_inputs
from ..estimators.ts_window import pointing_layers, window_fallback, window_scan_inputs
from ..stream.window import StreamWindow

__all__ = [
    "CONTAINMENT",
    "Localisation",
    "chi2_2dof_quantile",
    "circular_containment_radius",
    "contour_radius",
    "fit_paraboloid",
    "local_ts_image",
    "localise",
    "pixel_jacobian",
]

#: Containment probabilities of the two error circles (r68, r95).
CONTAINMENT = (0.68, 0.95)

#: Points of the angle quadrature in :func:`circular_containment` (periodic integrand:
#: the trapezoid rule converges exponentially; 256 points: < 1e-12 for axis ratios < 30).
_N_ANGLES = 256

#: Smallest curvature eigenvalue accepted, relative to the largest: a flatter valley is
#: degenerate (the position is not constrained along it).
_MIN_EIGEN_RATIO = 1e-3


class Localisation(NamedTuple):
    """Result of :func:`localise` (unpacks as ``ra, dec, x, y, r68, r95, localised``).

    Attributes
    ----------
    ra, dec : float
        Position, deg, ICRS.
    x, y : float
        Position in pixel coordinates of the image (first pixel's centre at 0).
    r68, r95 : float
        Radii of the error circles containing the true position with 68 % / 95 %
        probability, deg.
    localised : bool
        False when the paraboloid fit failed (position: the peak pixel; radii from the
        TS contour, :func:`contour_radius`).
    """

    ra: float
    dec: float
    x: float
    y: float
    r68: float
    r95: float
    localised: bool


def chi2_2dof_quantile(containment):
    """ΔTS containing a fraction of a 2D Gaussian: the χ² quantile for 2 degrees of freedom.

    Parameters
    ----------
    containment : float
        Probability, in (0, 1).

    Returns
    -------
    float
        ``−2 ln(1 − containment)`` (2.28 for 68 %, 5.99 for 95 %).
    """
    if not 0 < containment < 1:
        raise ValueError(f"containment must be in (0, 1), got {containment!r}")
    return -2.0 * np.log1p(-containment)


def circular_containment(radius, sigma_major, sigma_minor):
    """Probability that a 2D Gaussian centred at the origin falls inside a circle.

    Parameters
    ----------
    radius : float
        Circle radius (same unit as the σ).
    sigma_major, sigma_minor : float
        Standard deviations along the Gaussian's principal axes (> 0).

    Returns
    -------
    float
        ``(2π σ₁σ₂)⁻¹ ∫₀^{2π} (1 − exp(−r² q(θ)/2)) / q(θ) dθ`` with
        ``q(θ) = cos²θ/σ₁² + sin²θ/σ₂²`` (the radial integral done analytically).
    """
    theta = np.linspace(0.0, 2 * np.pi, _N_ANGLES, endpoint=False)
    q = np.cos(theta) ** 2 / sigma_major**2 + np.sin(theta) ** 2 / sigma_minor**2
    integrand = -np.expm1(-0.5 * radius**2 * q) / q
    return float(integrand.mean() / (sigma_major * sigma_minor))


def circular_containment_radius(sigma_major, sigma_minor, containment):
    """Radius of the circle around a 2D Gaussian's centre that contains a given probability.

    Parameters
    ----------
    sigma_major, sigma_minor : float
        Standard deviations along the principal axes (> 0, any unit).
    containment : float
        Probability, in (0, 1).

    Returns
    -------
    float
        The radius, in the σ's unit (``σ √(−2 ln(1 − p))`` when the σ are equal).
    """
    if not (sigma_major > 0 and sigma_minor > 0):
        raise ValueError(f"sigmas must be > 0, got {sigma_major!r}, {sigma_minor!r}")
    scale = np.sqrt(chi2_2dof_quantile(containment))
    low, high = sorted((sigma_major, sigma_minor))
    if high - low <= 1e-12 * high:
        return float(high * scale)
    return float(
        brentq(
            lambda r: circular_containment(r, sigma_major, sigma_minor) - containment,
            low * scale,
            high * scale,
            xtol=1e-12 * high,
        )
    )


def fit_paraboloid(patch):
    """Least-squares paraboloid through a square patch of values.

    Parameters
    ----------
    patch : `~numpy.ndarray`, shape (2h+1, 2h+1)
        Values on pixels at offsets ``dy, dx`` in ``−h..h`` (row: y, column: x).

    Returns
    -------
    peak : float
        Value at the stationary point.
    offset : `~numpy.ndarray`, shape (2,)
        Stationary point ``(dx, dy)``, pixels from the patch's centre (NaN when the
        Hessian is singular).
    hessian : `~numpy.ndarray`, shape (2, 2)
        Hessian of the *negative* values in ``(x, y)``: positive definite at a maximum.
    """
    half = patch.shape[0] // 2
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    dx, dy = dx.ravel().astype(float), dy.ravel().astype(float)
    design = np.column_stack([np.ones_like(dx), dx, dy, dx * dx, dx * dy, dy * dy])
    coef = np.linalg.lstsq(design, patch.ravel(), rcond=None)[0]
    c0, cx, cy, cxx, cxy, cyy = coef
    hessian = -np.array([[2 * cxx, cxy], [cxy, 2 * cyy]])
    gradient = np.array([cx, cy])
    try:
        offset = np.linalg.solve(hessian, gradient)
    except np.linalg.LinAlgError:
        return float(c0), np.full(2, np.nan), hessian
    peak = c0 + 0.5 * gradient @ offset
    return float(peak), offset, hessian


def pixel_jacobian(geom, x, y):
    """Sky offsets (deg) per pixel step at a position: the local WCS Jacobian.

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        2D geometry.
    x, y : float
        Pixel coordinates.

    Returns
    -------
    jacobian : `~numpy.ndarray`, shape (2, 2)
        ``J[i, j]``: offset along sky axis ``i`` (0: longitude × cos latitude, 1:
        latitude, in the geometry's frame) per pixel along axis ``j`` (0: x, 1: y);
        central differences over ±½ pixel.
    center : `~astropy.coordinates.SkyCoord`
        The sky position of ``(x, y)``, in the geometry's frame.
    """
    xs = np.array([x, x - 0.5, x + 0.5, x, x])
    ys = np.array([y, y, y, y - 0.5, y + 0.5])
    lon, lat = geom.pix_to_coord((xs, ys))
    points = SkyCoord(lon, lat, unit="deg", frame=geom.frame)
    center = points[0]
    dlon, dlat = center.spherical_offsets_to(points[1:])
    dlon, dlat = dlon.to_value("deg"), dlat.to_value("deg")
    jacobian = np.array(
        [[dlon[1] - dlon[0], dlon[3] - dlon[2]], [dlat[1] - dlat[0], dlat[3] - dlat[2]]]
    )
    return jacobian, center


def contour_radius(ts_image, peak_yx, delta_ts, pixel_deg):
    """Conservative radius of the region where TS is within ``delta_ts`` of the peak's.

    The pixels with ``TS ≥ TS_peak − delta_ts`` connected to the peak (8-connectivity;
    NaN pixels are outside): the largest distance of one from the peak, plus half a pixel
    diagonal; at least one pixel.

    Parameters
    ----------
    ts_image : `~numpy.ndarray`, 2D
        TS values.
    peak_yx : tuple of int
        Peak pixel (row, column).
    delta_ts : float
        The ΔTS of the region (e.g. :func:`chi2_2dof_quantile`).
    pixel_deg : float
        Pixel size, deg.

    Returns
    -------
    float
        Radius, deg.
    """
    peak_value = ts_image[peak_yx]
    if not np.isfinite(peak_value):
        return float(pixel_deg)
    with np.errstate(invalid="ignore"):
        inside = np.nan_to_num(ts_image, nan=-np.inf) >= peak_value - delta_ts
    labels, _ = ndimage.label(inside, structure=np.ones((3, 3), dtype=bool))
    rows, cols = np.nonzero(labels == labels[peak_yx])
    distance = np.hypot(rows - peak_yx[0], cols - peak_yx[1]).max()
    return float(max((distance + np.sqrt(0.5)) * pixel_deg, pixel_deg))


def _patch(ts_image, peak_yx, half):
    """The (2h+1)² patch around the peak, or None if it leaves the image or has NaN."""
    iy, ix = peak_yx
    ny, nx = ts_image.shape
    if iy - half < 0 or ix - half < 0 or iy + half >= ny or ix + half >= nx:
        return None
    patch = ts_image[iy - half : iy + half + 1, ix - half : ix + half + 1]
    return patch if np.all(np.isfinite(patch)) else None


def _sky_sigmas(hessian, jacobian):
    """Principal σ (deg) of the position's covariance ``J (2 H⁻¹) Jᵀ``, or None."""
    eigen = np.linalg.eigvalsh(hessian)
    if not (np.all(np.isfinite(eigen)) and eigen[0] > _MIN_EIGEN_RATIO * eigen[1] > 0):
        return None
    covariance = jacobian @ (2.0 * np.linalg.inv(hessian)) @ jacobian.T
    variances = np.linalg.eigvalsh(0.5 * (covariance + covariance.T))
    if not variances[0] > 0:
        return None
    return np.sqrt(variances[::-1])


def _to_icrs(point):
    icrs = point.icrs
    return float(icrs.ra.deg), float(icrs.dec.deg)


def localise(ts_image, geom2d, peak_yx, half_width=1, systematic_deg=0.0, fallback_image=None):
    """Sub-pixel position and 68 % / 95 % error circles of a peak of a TS image.

    Parameters
    ----------
    ts_image : `~numpy.ndarray`, 2D
        TS per pixel (use the signed ``sqrt_ts * |sqrt_ts|`` so that negative excesses
        are minima); NaN where no fit was made.
    geom2d : `~gammapy.maps.WcsGeom`
        The image's 2D geometry (its WCS converts pixels to the sky).
    peak_yx : tuple of int
        Peak pixel (row, column), e.g. from `gammapy.estimators.utils.find_peaks`.
    half_width : int
        Half size ``h`` of the fitted patch, pixels (1: 3×3, 2: 5×5).
    systematic_deg : float
        σ added in quadrature to both principal σ of the statistical error, deg.
    fallback_image : `~numpy.ndarray`, 2D, optional
        A second TS image for the radii of a failed fit (e.g. the whole detection map
        when ``ts_image`` is only known near the peak): the larger of the two contour
        radii is taken.

    Returns
    -------
    Localisation
        ``(ra, dec, x, y, r68, r95, localised)``; never NaN (see the module's notes).
    """
    ts_image = np.asarray(ts_image, dtype=float)
    if ts_image.ndim != 2 or ts_image.shape != tuple(geom2d.data_shape[-2:]):
        raise ValueError(
            f"ts_image shape {ts_image.shape} does not match the geometry's "
            f"{tuple(geom2d.data_shape[-2:])}"
        )
    iy, ix = (int(v) for v in peak_yx)
    if not (0 <= iy < ts_image.shape[0] and 0 <= ix < ts_image.shape[1]):
        raise ValueError(f"peak_yx {peak_yx!r} is outside the image {ts_image.shape}")
    if half_width < 1:
        raise ValueError(f"half_width must be >= 1 pixel, got {half_width!r}")
    pixel_deg = float(np.mean(np.abs(geom2d.pixel_scales.to_value("deg"))))
    result = _fit_localisation(ts_image, geom2d, (iy, ix), half_width, systematic_deg)
    if result is not None:
        return result
    images = [ts_image]
    if fallback_image is not None:
        fallback_image = np.asarray(fallback_image, dtype=float)
        if fallback_image.shape != ts_image.shape:
            raise ValueError(
                f"fallback_image shape {fallback_image.shape} differs from ts_image's "
                f"{ts_image.shape}"
            )
        images.append(fallback_image)
    return _fallback_localisation(images, geom2d, (iy, ix), pixel_deg, systematic_deg)


def _fit_localisation(ts_image, geom2d, peak_yx, half_width, systematic_deg):
    """The paraboloid fit's :class:`Localisation`, or None when it fails."""
    patch = _patch(ts_image, peak_yx, half_width)
    if patch is None:
        return None
    _, offset, hessian = fit_paraboloid(patch)
    if not np.all(np.isfinite(offset)) or np.any(np.abs(offset) > half_width):
        return None
    x, y = peak_yx[1] + offset[0], peak_yx[0] + offset[1]
    jacobian, center = pixel_jacobian(geom2d, x, y)
    sigmas = _sky_sigmas(hessian, jacobian)
    if sigmas is None:
        return None
    sigmas = np.hypot(sigmas, systematic_deg)
    r68, r95 = (circular_containment_radius(*sigmas, p) for p in CONTAINMENT)
    return Localisation(*_to_icrs(center), float(x), float(y), r68, r95, True)


def _fallback_localisation(images, geom2d, peak_yx, pixel_deg, systematic_deg):
    """Peak pixel and contour radii of an unfitted peak: the largest
    :func:`contour_radius` of the images."""
    iy, ix = peak_yx
    lon, lat = geom2d.pix_to_coord((np.array([ix], float), np.array([iy], float)))
    center = SkyCoord(lon[0], lat[0], unit="deg", frame=geom2d.frame)
    radii = []
    for containment in CONTAINMENT:
        delta_ts = chi2_2dof_quantile(containment)
        radius = max(contour_radius(image, peak_yx, delta_ts, pixel_deg) for image in images)
        radii.append(float(np.hypot(radius, systematic_deg)))
    return Localisation(*_to_icrs(center), float(ix), float(iy), *radii, False)


def _scan_inputs(estimator, data):
    """The full-map TS-scan inputs of a window or dataset and its fitted-pixel mask.

    The same inputs as ``estimator.run(data)`` builds (a window of one observation: its
    pointing's cached per-second layers scaled by its live time; otherwise the dataset's,
    ``window.to_dataset()`` for a window of several observations).
    """
    options = estimator._scan_options()
    if isinstance(data, StreamWindow) and window_fallback(estimator, data) is None:
        backend = data.backend
        layers = pointing_layers(estimator, data.pointing, estimator.cache, backend)
        inputs = window_scan_inputs(layers, data, **options)
        positions = layers.positions
        shape = data.geom.data_shape[-2:]
    else:
        dataset = data.to_dataset() if isinstance(data, StreamWindow) else data
        backend = resolve_backend(estimator.array_backend)
        inputs, positions, _ = build_scan_inputs(
            estimator, Datasets([dataset]), estimator.cache,
            estimator.sum_over_energy_groups, **options,
        )
        shape = dataset.counts.geom.data_shape[-2:]
    fitted = np.zeros(shape, dtype=bool)
    fitted[positions] = True
    return backend, inputs, fitted


def _patch_pixels(center_yx, half_size, fitted):
    """``(y, x)`` of the fitted pixels in the square around a pixel."""
    cy, cx = center_yx
    ny, nx = fitted.shape
    y0, y1 = max(cy - half_size, 0), min(cy + half_size + 1, ny)
    x0, x1 = max(cx - half_size, 0), min(cx + half_size + 1, nx)
    ys, xs = np.nonzero(fitted[y0:y1, x0:x1])
    return ys + y0, xs + x0


def _cropped_inputs(inputs, ys, xs):
    """The scan inputs of some pixels only: the padded arrays cut to their footprints.

    A pixel's footprint starts at its own ``(y, x)`` in the padded arrays and spans
    the kernel's shape, so the box ``[min y, max y + ky) × [min x, max x + kx)`` holds
    every bin the pixels' fits read: the fits are the same, the tables
    (:func:`rtafast_kernels.tsmap.inputs.scan_tables`) are built for the box only.
    """
    xp = array_module(inputs)
    ky, kx = inputs.ktab.shape[1:]
    y0, x0 = int(ys.min()), int(xs.min())
    box = (slice(None), slice(y0, int(ys.max()) + ky), slice(x0, int(xs.max()) + kx))

    def crop(array):
        return xp.ascontiguousarray(array[box])

    return dataclasses.replace(
        inputs,
        counts=crop(inputs.counts),
        background=crop(inputs.background),
        expo=crop(inputs.expo),
        kidx=crop(inputs.kidx),
        pix_y=xp.asarray(ys - y0, dtype=np.int64),
        pix_x=xp.asarray(xs - x0, dtype=np.int64),
        guess=xp.zeros(ys.size),
        ring_counts=None,
        xp=xp,
    )


def local_ts_image(estimator, data, centers_yx, half_size=2):
    """TS of a point source on squares of pixels around given pixels (NaN elsewhere).

    The TS map's own per-pixel fits (``estimator``: a `rtafast.TSMapEstimator`, e.g. with
    one kernel per energy bin), run only at the pixels within ``half_size`` of each
    centre, on the estimator's backend: a TS surface to localise a peak on, at a
    fraction of a whole map's cost.

    Parameters
    ----------
    estimator : `rtafast.TSMapEstimator`
        Without downsampling, energy groups or threshold; ``kernel_width`` set.
    data : `rtafast.stream.StreamWindow` or `gammapy.datasets.MapDataset`
    centers_yx : sequence of (int, int)
        Pixels (row, column).
    half_size : int
        Squares of ``2 half_size + 1`` pixels a side.

    Returns
    -------
    `~numpy.ndarray`, 2D
        ``sign(norm) · TS`` at the scanned pixels, NaN elsewhere.
    """
    if estimator.kernel_width is None:
        raise ValueError("the localisation TS estimator needs a kernel_width")
    backend, inputs, fitted = _scan_inputs(estimator, data)
    if inputs.ring_counts is not None:
        raise ValueError("the localisation TS estimator takes one dataset (no padded kernels)")
    image = np.full(fitted.shape, np.nan)
    ts_row, norm_row = OUTPUT_NAMES.index("ts"), OUTPUT_NAMES.index("norm")
    for center in centers_yx:
        ys, xs = _patch_pixels(tuple(int(v) for v in center), int(half_size), fitted)
        if not ys.size:
            continue
        out = backend.to_numpy(backend.ts_scan(_cropped_inputs(inputs, ys, xs)))
        ts, norm = out[ts_row], out[norm_row]
        image[ys, xs] = np.where(norm < 0, -ts, ts)
    return image
