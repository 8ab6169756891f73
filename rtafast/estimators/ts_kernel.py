"""The TS-map kernel and reconstructed-energy exposures of a dataset, on arrays.

gammapy 2.1's ``TSMapEstimator.estimate_kernel`` evaluates the kernel model with
a ``MapEvaluator`` (PSF kernel from ``PSFMap.get_psf_kernel``, exposure at the
nearest valid position, energy dispersion at the kernel position), and
``estimate_exposure_reco_energy`` folds the exposure with the energy dispersion;
both build sky coordinates, region geometries, interpolators and model copies
at every step (~0.5 s for the H.E.S.S. Crab map). This module computes the same
numbers from the IRF arrays: the same geometries (gammapy's own ``to_odd_npix``
and ``cutout``), the same interpolation rules (gammapy's pixel coordinates,
multilinear interpolation on the pixel grid with linear extrapolation, done
axis by axis: the same numbers up to rounding), the same float32 casts, and
the same scipy FFT convolution. Decisions that a rounding error could flip (a
containment radius on a tie of its argmin, a number of pixels or an
upsampling factor at an integer, a nearest pixel at half a pixel) are checked
with a margin, and gammapy's own function decides them when they are that close.

Anything else (HEALPix geometries, a PSF in reconstructed energy or a PSF map on
a region geometry of several bins, an energy-dependent kernel model, a temporal
model, IRF maps with NaN, no energy dispersion for the exposures, an IRF map
invalid at the kernel position) runs gammapy's functions: :func:`estimate_kernel`
and :func:`reco_exposures` return gammapy's results there. ``tests/test_tsmap.py``
compares both with gammapy's functions (H.E.S.S., CTA 1DC, Fermi-LAT, simulated
datasets): kernels within 1e-7 of their peak (float32 rounding of gammapy's PSF
kernel), exposures equal.
"""

import astropy.units as u
import numpy as np
import scipy.signal
from astropy.coordinates import SkyCoord
from gammapy.datasets.evaluator import CUTOUT_MARGIN
from gammapy.estimators import TSMapEstimator as GammapyTSMapEstimator
from gammapy.estimators.utils import estimate_exposure_reco_energy
from gammapy.irf.edisp import EDispKernel
from gammapy.maps import Map
from gammapy.maps.coord import skycoord_to_lonlat
from gammapy.modeling.models import PointSpatialModel, SkyModel

from .ts_psf import (
    Unsupported,
    angular_separation,
    edisp_matrix,
    is_regular_wcs,
    pix_of,
    psf_kernel,
)

__all__ = ["estimate_kernel", "reco_exposures", "psf_kernel", "Unsupported"]


def estimate_kernel(helper, dataset):
    """gammapy's ``TSMapEstimator.estimate_kernel(dataset)``, on arrays where possible.

    Parameters
    ----------
    helper : `gammapy.estimators.TSMapEstimator`
        Kernel model and width.
    dataset : `gammapy.datasets.MapDataset`

    Returns
    -------
    `gammapy.maps.Map`
        Kernel, normalised to unit sum in each reconstructed-energy bin.
    """
    try:
        return _kernel(helper, dataset)
    except Unsupported:
        return GammapyTSMapEstimator.estimate_kernel(helper, dataset)


def reco_exposures(dataset, spectral_model):
    """gammapy's ``estimate_exposure_reco_energy`` with ``normalize=True`` and ``False``.

    Parameters
    ----------
    dataset : `gammapy.datasets.MapDataset`
    spectral_model : `gammapy.modeling.models.SpectralModel`

    Returns
    -------
    exposure, exposure_npred : `gammapy.maps.Map`
    """
    try:
        return _reco_exposures(dataset, spectral_model)
    except Unsupported:
        return (
            estimate_exposure_reco_energy(dataset, spectral_model, normalize=True),
            estimate_exposure_reco_energy(dataset, spectral_model, normalize=False),
        )


# --- small helpers -------------------------------------------------------------


def _exposure_position(exposure, position):
    """The exposure gammapy's ``estimate_kernel`` puts in its kernel map: at the
    valid pixel whose centre is nearest to ``position``
    (``get_nearest_valid_exposure_position``: ``argmin`` of astropy's
    separations, the first of exact ties in row-major order), read with
    ``to_region_nd_map``. Separations are computed on arrays; those within
    rounding of the nearest are recomputed with astropy, as gammapy does."""
    geom = exposure.geom.to_image()
    data = exposure.data
    valid = (data > 0).reshape((-1,) + data.shape[-2:]).any(axis=0)
    if not valid.any():
        raise ValueError("No valid exposure. Impossible to compute kernel for TS Map.")
    ny, nx = valid.shape
    x, y = pix_of(geom, position)
    iy, ix = np.nonzero(valid)
    # candidates: the valid pixels nearest in pixel distance, with a margin that
    # covers the projection's distortion on a map of a few tens of degrees
    pixel_distance = np.hypot(ix - x, iy - y)
    small_map = max(ny, nx) * float(np.max(geom.pixel_scales.deg)) <= 30.0
    if small_map:
        keep = pixel_distance <= 1.5 * pixel_distance.min() + 2.0
        iy, ix = iy[keep], ix[keep]
    lon, lat = geom.wcs.wcs_pix2world(ix.astype(float), iy.astype(float), 0)
    lon0, lat0 = skycoord_to_lonlat(position, frame=geom.frame)[:2]
    separation = angular_separation(
        np.deg2rad(lon), np.deg2rad(lat), np.deg2rad(lon0), np.deg2rad(lat0)
    )
    near = np.flatnonzero(separation <= separation.min() * (1 + 1e-6) + 1e-15)
    if near.size > 1:  # candidates within rounding: astropy's numbers decide
        coords = SkyCoord(lon[near] * u.deg, lat[near] * u.deg, frame=geom.frame)
        exact = coords.separation(position)
        near = near[np.argmin(exact)]  # candidates are in row-major order, as gammapy's
    else:
        near = near[0]
    # to_region_nd_map at that pixel centre reads that pixel
    return data[:, iy[near], ix[near]]


def _spatial_image(spatial_model, geom):
    """``spatial_model.integrate_geom(geom.to_image())`` data (gammapy's; for a
    point source its 4-pixel weights, computed here)."""
    if type(spatial_model) is PointSpatialModel:
        x0, y0 = spatial_model.position.to_pixel(geom.wcs)
        ny, nx = geom.data_shape[-2:]
        y, x = np.indices((ny, nx), dtype=float)
        return PointSpatialModel._grid_weights(x, y, x0, y0)
    return spatial_model.integrate_geom(geom.to_image()).data


def _convolve_same(image, kernels):
    """``scipy.signal.convolve(image, kernel, method="fft", mode="same")`` for each
    kernel (float32, as gammapy's ``WcsNDMap.convolve``), in one batched FFT."""
    images = np.broadcast_to(image, (kernels.shape[0],) + image.shape)
    out = scipy.signal.fftconvolve(images, kernels, mode="same", axes=(1, 2))
    return out.astype(np.float32, copy=False)


def _kernel(helper, dataset):
    kernel_model = helper.kernel_model
    if (
        not isinstance(kernel_model, SkyModel)
        or kernel_model.spatial_model is None
        or kernel_model.temporal_model is not None
        or kernel_model.spatial_model.is_energy_dependent
        or not all(kernel_model.apply_irf.values())
    ):
        raise Unsupported("kernel model")
    if dataset.exposure is None or not is_regular_wcs(dataset.exposure.geom):
        raise Unsupported("exposure geometry")
    if not is_regular_wcs(dataset.counts.geom):
        raise Unsupported("counts geometry")
    geom = dataset.exposure.geom
    if helper.kernel_width is not None:
        geom = geom.to_odd_npix(max_radius=helper.kernel_width / 2)
    center = geom.center_skydir
    # gammapy sets the copied kernel model's position: its parameters, in the
    # model's frame, give the position the evaluator uses
    spatial_model = kernel_model.spatial_model.copy()
    spatial_model.position = center
    position = spatial_model.position
    exposure_values = _exposure_position(dataset.exposure, center).astype(np.float32)
    if not np.any(exposure_values):
        raise ValueError("No valid exposure. Impossible to compute kernel for TS Map.")
    energy_axis = dataset.counts.geom.axes["energy"]
    edisp = None
    if dataset.edisp:
        edisp = edisp_matrix(dataset.edisp, position, energy_axis)
    psf_data, psf_width = None, 0 * u.deg
    if dataset.psf:
        psf_data, psf_geom = psf_kernel(dataset.psf, geom, position)
        psf_width = np.max(psf_geom.width)
    evaluation_radius = spatial_model.evaluation_radius
    eval_geom = geom
    if evaluation_radius is not None:
        cutout_width = psf_width + 2 * (evaluation_radius + CUTOUT_MARGIN)
        if _contributes(dataset, position, evaluation_radius, psf_width):
            eval_geom = geom.cutout(
                position=position, width=cutout_width, mode="trim", odd_npix=True
            )
    energy_true = eval_geom.axes["energy_true"]
    flux = kernel_model.spectral_model.integral(energy_true.edges[:-1], energy_true.edges[1:])
    spatial = _spatial_image(spatial_model, eval_geom)
    if psf_data is not None:
        if not np.allclose(geom.pixel_scales.deg, psf_geom.pixel_scales.deg, rtol=1e-5):
            raise ValueError("Pixel size of kernel and map not compatible.")
        convolved = _convolve_same(spatial.astype(np.float32), psf_data)
        value = flux.value.reshape((-1, 1, 1)) * convolved
    else:
        value = flux.value.reshape((-1, 1, 1)) * spatial
    scale = (flux.unit * dataset.exposure.unit).to("")
    npred = value * exposure_values[:, None, None]
    if scale != 1:
        npred = npred * scale
    if edisp is not None:
        matrix, reco_axis = edisp
    else:
        diagonal = EDispKernel.from_diagonal_response(
            energy_axis_true=energy_true, energy_axis=energy_axis.copy(name="energy")
        )
        matrix, reco_axis = diagonal.pdf_matrix, diagonal.axes["energy"]
    data = np.rollaxis(npred, 0, 3)
    data = np.matmul(data, matrix)
    data = np.rollaxis(data, -1, 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        data /= data.sum(axis=(1, 2))[:, None, None]
        data[~np.isfinite(data)] = 0
    kernel_geom = eval_geom.to_image().to_cube(axes=[reco_axis.copy(name="energy")])
    return Map.from_geom(geom=kernel_geom, data=data, unit="")


def _contributes(dataset, position, evaluation_radius, margin):
    """``SkyModel.contributes(mask=dataset.mask_image, margin)`` of the kernel model."""
    mask = dataset.mask
    if mask is None:
        return True
    image = np.logical_or.reduce(mask.data, axis=0) if mask.data.ndim > 2 else mask.data
    if image.all():
        return True
    x, y = pix_of(dataset.counts.geom, position)
    iy, ix = int(np.floor(y + 0.5)), int(np.floor(x + 0.5))
    ny, nx = image.shape
    if 0 <= iy < ny and 0 <= ix < nx and image[iy, ix]:
        return True

    class _Model:
        pass

    model = _Model()
    model.position = position
    model.evaluation_radius = evaluation_radius
    return SkyModel.contributes(model, mask=dataset.mask_image, margin=margin)


# --- reconstructed-energy exposures ----------------------------------------------------


def _reco_exposures(dataset, spectral_model):
    if dataset.exposure is None or not is_regular_wcs(dataset.exposure.geom):
        raise Unsupported("exposure geometry")
    if dataset.edisp is None:
        raise Unsupported("no energy dispersion")
    energy_axis = dataset._geom.axes["energy"]
    matrix, reco_axis = edisp_matrix(dataset.edisp, None, energy_axis)
    exposure = dataset.exposure
    energy_true = exposure.geom.axes["energy_true"]
    flux = spectral_model.integral(energy_true.edges[:-1], energy_true.edges[1:])
    # MapEvaluator: spectral integral times the constant spatial model (1, float32),
    # times the exposure, in the unit of the product, then the energy dispersion
    value = flux.value.reshape((-1, 1, 1)) * np.ones(1, dtype=np.float32)
    npred = value * exposure.data
    scale = (flux.unit * exposure.unit).to("")
    if scale != 1:
        npred = npred * scale
    data = np.rollaxis(npred, 0, 3)
    data = np.matmul(data, matrix)
    data = np.rollaxis(data, -1, 0)
    geom = exposure.geom.to_image().to_cube(axes=[reco_axis.copy(name="energy")])
    npred_map = Map.from_geom(geom=geom, data=data, unit="")
    ref_flux = spectral_model.integral(reco_axis.edges[:-1], reco_axis.edges[1:])
    normalised = npred_map / ref_flux[:, np.newaxis, np.newaxis]
    return normalised, npred_map
