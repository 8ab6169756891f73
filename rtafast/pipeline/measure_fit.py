"""Flux-only fit of a candidate on a stream window, with templates cached per position.

:func:`fit_flux` fits a point source at a candidate's position with a power law of fixed
index (only its amplitude free, and the FoV background norm with
``fit.free_background_norm``) to a `rtafast.stream.StreamWindow`, on the window's
backend, and returns a :class:`FluxFit`: the integral flux over the selection's energy
range with its error, the 95 % upper limit, TS and signed sqrt(TS).

What it costs. The source's predicted counts at unit amplitude (its *template*) are
computed with gammapy's evaluators (exposure, PSF kernel at the position, EDisp) on the
pointing's 1 s dataset (:attr:`rtafast.stream.PointingMaps.stacked_unit`, what the
window's dataset is scaled from): ~0.3 s for the first position of a pointing on a 5 deg
x 5 deg, 0.02 deg, 10-energy-bin cube (gammapy's PSF kernel is 90 % of it), ~13 ms for
a new position within 0.1 deg of where the kernels were made (the source model is moved
in a kept dataset, and gammapy's evaluator keeps its kernels, see :class:`MeasureCache`).
They are kept in a
:class:`MeasureCache` per (pointing, position on a grid, spectral index and reference,
backend) and scaled by each window's live time and on-time. A window's fit then gathers
its counts on the template's bins on the backend and copies to the host only the bins
with counts, the empty bins summed into one (their Cash terms are linear in the norm),
and the empty bin that sets the norm's physical lower limit ``-min(b/s)``: the same
statistic up to rounding, a few hundred bins, solved by rtafast's Cash kernel on the
host (numpy). Measured on that cube (H.E.S.S. Crab run 23523, numpy backend): ~1.1 ms
per cached fit (norm, error, TS and the upper limit's root search), ~4.7 ms with the
background norm free (every counted bin of the map; the upper limit profiles the
background norm).

Position grid. Positions are snapped to a grid of ``grid_pixels`` (default 0.1) pixels
of the window's map (its own projection and frame) before the templates are made, and
the snapped position is the one fitted (reported as ``FluxFit.ra``/``dec``): at most
``0.071 * binsz`` from the candidate (0.0014 deg at 0.02 deg pixels). Measured
(``tests/test_pipeline_measure.py``, the largest rounding in each direction): on
H.E.S.S. Crab run 23523 (10 min, 0.02 deg pixels, sqrt(TS) 9.9) the flux moves by
< 8e-4 relative (0.004 of its error) and sqrt(TS) by < 0.005; on a simulated window
(0.04 deg pixels, a sharper PSF, sqrt(TS) 31) by < 7e-3 (0.09 of its error) and < 0.07.
A 1-pixel grid (pixel centres) moves them by up to 0.4 of the flux error and 0.26 in
sqrt(TS). ``grid_pixels=0`` fits the exact position (a new template for every new
position). A candidate reuses its templates only while its localised position stays in
the same grid cell from window to window.

What is fitted. With the amplitude alone free, only the bins where the template is not
zero (gammapy's evaluator cut-out around the source, inside the fit mask) enter: the
other bins add a constant to the statistic, so the norm, its error, TS and upper limit
are those of gammapy's fit of the whole window (``tests/test_pipeline_measure.py``
compares them with gammapy's ``Fit`` on ``window.to_dataset()``). With the background
norm free, every bin of the fit mask enters and TS refits the background norm under the
null hypothesis (amplitude 0), as gammapy's fit of both would.

A window holding several observations (a pointing change) is fitted with the sum of the
observations' predictions (each from its own cached per-second templates, times its own
live time and on-time) against the summed counts: the prediction of the summed counts;
gammapy's ``MapDataset.stack`` instead averages the observations' PSF and EDisp maps
into one, which differs from it by the variation of the IRFs between the pointings.
"""

import math
from dataclasses import dataclass
from typing import NamedTuple

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from gammapy.datasets import MapDataset
from gammapy.modeling.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel

from rtafast_kernels import NormFitResult, fit_norm, fit_norms, resolve_backend

from ..cache.lru import LRUCache
from ..fit.device_problem import cash_problem

__all__ = [
    "DEFAULT_GRID_PIXELS",
    "REFERENCE_AMPLITUDE",
    "UL_N_SIGMA",
    "FluxFit",
    "MeasureCache",
    "check_position",
    "default_cache",
    "fit_flux",
    "snap_position",
    "source_model",
]

#: Grid of the cached positions, in pixels of the window's map.
DEFAULT_GRID_PIXELS = 0.1
#: Amplitude of the templates (norm 1), cm-2 s-1 TeV-1.
REFERENCE_AMPLITUDE = 1e-12
#: Significance of the upper limit: the norm where the (profile) statistic rises by 2**2
#: above its minimum (gammapy's ``n_sigma_ul=2``; 95 % one-sided is 1.64 sigma, gammapy's
#: convention calls this the 95 % upper limit).
UL_N_SIGMA = 2.0
#: Name of the candidate's sky model (gammapy models).
SOURCE_NAME = "candidate"
#: Relative convergence tolerance of the profile fits, in units of the norm's error.
_RTOL = 1e-10
_MAX_ITER = 100
_AMPLITUDE_UNIT = u.Unit("cm-2 s-1 TeV-1")
#: Where the compacted fit problems are solved (a few hundred bins: the host is fastest).
_HOST_BACKEND = resolve_backend("numpy")


@dataclass(frozen=True)
class FluxFit:
    """Result of :func:`fit_flux`.

    Attributes
    ----------
    flux, flux_err : float
        Integral flux over the selection's energy range and its (Hesse) error, cm-2 s-1.
    flux_ul : float
        Upper limit on the integral flux, cm-2 s-1: where the statistic (profiled over the
        background norm when it is free) is ``UL_N_SIGMA**2`` above its minimum.
    ts : float
        ``stat(amplitude = 0) - stat(best)`` (background norm refitted when free).
    sqrt_ts : float
        ``sqrt(ts)``, negative when the fitted norm is not positive (gammapy's sign).
    norm, norm_err, norm_ul : float
        Amplitude in units of :data:`REFERENCE_AMPLITUDE` (cm-2 s-1 TeV-1 at
        ``fit.reference``), its error and upper limit.
    background_norm : float
        FoV background norm (1 when it is not free).
    ra, dec : float
        Position fitted (deg, ICRS): the candidate's, snapped to the cache's grid.
    n_counts : float
        Counts in the fitted bins.
    niter : int
        Newton iterations.
    success : bool
        The fit converged; False also when there is nothing to fit (see ``reason``).
    reason : str
        Why a quantity is NaN or the fit failed; empty when all is well.
    """

    flux: float
    flux_err: float
    flux_ul: float
    ts: float
    sqrt_ts: float
    norm: float
    norm_err: float
    norm_ul: float
    background_norm: float
    ra: float
    dec: float
    n_counts: float
    niter: int
    success: bool
    reason: str = ""

    @property
    def amplitude(self):
        """Fitted power-law amplitude at ``fit.reference``, cm-2 s-1 TeV-1."""
        return self.norm * REFERENCE_AMPLITUDE


class MeasureCache:
    """What the candidate measurements keep between windows: templates and regions.

    One per pipeline run (or the module's :func:`default_cache`). Entries are keyed by
    the pointing (:attr:`rtafast.stream.PointingMaps.token`), the position snapped to the
    grid and the settings they depend on; the least recently used go first.

    Parameters
    ----------
    grid_pixels : float
        Grid of the cached positions, pixels of the window's map (0: exact positions).
    maxsize : int
        Entries kept per kind (templates: ~24 bytes per template bin, e.g. 1.4 MB for a
        point source on 0.02 deg pixels with 10 energy bins).
    move_sources : bool
        Keep one gammapy dataset per pointing and move the source model to each new
        position (gammapy's evaluator reuses its PSF and EDisp kernels within 0.1 deg of
        where it computed them, as a gammapy fit with a free position does): ~13 ms per
        new position instead of ~0.3 s. False: a fresh evaluator (kernels at the exact
        position) for every new position.

    Attributes
    ----------
    templates, unions, regions : `rtafast.cache.lru.LRUCache`
        Per-position fit templates, the bin unions of multi-observation windows, and the
        photometry's regions (:mod:`rtafast.pipeline.measure_photometry`), with their hit
        and miss counts.
    sources : `rtafast.cache.lru.LRUCache`
        The per-pointing gammapy datasets whose source model is moved (``move_sources``).
    """

    def __init__(self, grid_pixels=DEFAULT_GRID_PIXELS, maxsize=32, move_sources=True):
        grid_pixels = float(grid_pixels)
        if not (math.isfinite(grid_pixels) and 0 <= grid_pixels <= 1):
            raise ValueError(f"grid_pixels must be within [0, 1] pixel, got {grid_pixels}")
        if int(maxsize) < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        self.grid_pixels = grid_pixels
        self.move_sources = bool(move_sources)
        self.templates = LRUCache(int(maxsize))
        self.unions = LRUCache(int(maxsize))
        self.regions = LRUCache(int(maxsize))
        self.sources = LRUCache(8)
        self._flux_scales = {}

    def clear(self):
        """Forget every entry."""
        for cache in (self.templates, self.unions, self.regions, self.sources):
            cache.clear()
        self._flux_scales.clear()


_DEFAULT_CACHE = None


def default_cache():
    """The module's :class:`MeasureCache` (used when no cache is given; made on first use)."""
    global _DEFAULT_CACHE
    if _DEFAULT_CACHE is None:
        _DEFAULT_CACHE = MeasureCache()
    return _DEFAULT_CACHE


def check_position(ra, dec):
    """``(ra, dec)`` as floats (deg), or ValueError naming the bad value."""
    try:
        ra, dec = float(ra), float(dec)
    except (TypeError, ValueError) as error:
        raise ValueError(f"candidate position must be numbers (deg), got ({ra!r}, {dec!r})") from (
            error
        )
    if not (math.isfinite(ra) and math.isfinite(dec) and -90.0 <= dec <= 90.0):
        raise ValueError(f"candidate position ({ra}, {dec}) deg is not a valid ICRS RA/Dec")
    return ra, dec


def snap_position(geom, ra, dec, grid_pixels):
    """The point of the pixel grid nearest ``(ra, dec)`` and its cache key.

    Parameters
    ----------
    geom : `~gammapy.maps.WcsGeom`
        The window's map (its WCS, frame ``icrs`` or ``galactic``).
    ra, dec : float
        deg, ICRS.
    grid_pixels : float
        Grid step in pixels (0: no snapping).

    Returns
    -------
    ra, dec : float
        The snapped position, deg ICRS.
    key : tuple
        ``(ix, iy, grid_pixels)`` grid indices (or ``(ra, dec, 0)``).
    """
    ra, dec = check_position(ra, dec)
    if grid_pixels == 0:
        return ra, dec, (ra, dec, 0.0)
    wcs = geom.wcs
    lon, lat = _to_frame(ra, dec, geom.frame)
    x, y = wcs.wcs_world2pix(np.array([[lon, lat]]), 0)[0]
    ix, iy = round(x / grid_pixels), round(y / grid_pixels)
    lon, lat = wcs.wcs_pix2world(np.array([[ix * grid_pixels, iy * grid_pixels]]), 0)[0]
    ra_snapped, dec_snapped = _from_frame(float(lon), float(lat), geom.frame)
    return ra_snapped, dec_snapped, (ix, iy, grid_pixels)


def _to_frame(ra, dec, frame):
    if frame == "icrs":
        return ra, dec
    coord = SkyCoord(ra, dec, unit="deg", frame="icrs").transform_to(frame)
    return coord.spherical.lon.deg, coord.spherical.lat.deg


def _from_frame(lon, lat, frame):
    if frame == "icrs":
        return lon % 360.0, lat
    coord = SkyCoord(lon, lat, unit="deg", frame=frame).icrs
    return float(coord.ra.deg), float(coord.dec.deg)


# -- the fit settings ---------------------------------------------------------------------
class _Settings(NamedTuple):
    index: float
    reference_tev: float
    free_background: bool
    energy_min_tev: float
    energy_max_tev: float

    @property
    def template_key(self):
        """What the templates depend on (not the flux's energy range, not which norms
        are free)."""
        return (self.index, self.reference_tev)


def _settings(config):
    fit, selection = config.fit, config.selection
    model = getattr(fit, "spectral_model", "powerlaw")
    if model != "powerlaw":
        raise ValueError(f"fit.spectral_model: only 'powerlaw' is supported, got {model!r}")
    index = float(fit.index)
    if not math.isfinite(index):
        raise ValueError(f"fit.index must be a finite number, got {fit.index!r}")
    energy_min = u.Quantity(selection.energy_min).to_value(u.TeV)
    energy_max = u.Quantity(selection.energy_max).to_value(u.TeV)
    if not 0 < energy_min < energy_max:
        raise ValueError(
            f"selection.energy_min ({selection.energy_min}) must be positive and below "
            f"selection.energy_max ({selection.energy_max})"
        )
    reference = u.Quantity(fit.reference).to_value(u.TeV)
    if not reference > 0:
        raise ValueError(f"fit.reference must be a positive energy, got {fit.reference}")
    return _Settings(index, reference, bool(fit.free_background_norm), energy_min, energy_max)


def _spectral_model(settings, amplitude=REFERENCE_AMPLITUDE):
    return PowerLawSpectralModel(
        index=settings.index,
        amplitude=amplitude * _AMPLITUDE_UNIT,
        reference=settings.reference_tev * u.TeV,
    )


def source_model(ra, dec, config, amplitude=REFERENCE_AMPLITUDE):
    """The candidate's gammapy model: a point source at ``(ra, dec)`` (deg, ICRS) with a
    power law of ``fit.index`` at ``fit.reference``, only the amplitude free (the model
    :func:`fit_flux` fits; the tests give it to gammapy's ``Fit``).

    Returns
    -------
    `~gammapy.modeling.models.SkyModel`
    """
    settings = _settings(config)
    spatial = PointSpatialModel(lon_0=ra * u.deg, lat_0=dec * u.deg, frame="icrs")
    model = SkyModel(_spectral_model(settings, amplitude), spatial, name=SOURCE_NAME)
    for parameter in model.parameters:
        parameter.frozen = parameter is not model.spectral_model.amplitude
    return model


def _flux_scale(cache, settings):
    """Integral flux (cm-2 s-1) over the selection's range of the template's amplitude."""
    scale = cache._flux_scales.get(settings)
    if scale is None:
        integral = _spectral_model(settings).integral(
            settings.energy_min_tev * u.TeV, settings.energy_max_tev * u.TeV
        )
        scale = cache._flux_scales[settings] = float(integral.to_value("cm-2 s-1"))
    return scale


# -- templates ----------------------------------------------------------------------------
#: Bins kept per position with the lowest background-to-source ratio: the first of them
#: without counts is the empty bin that sets the norm's lower limit (all counted: the
#: window's problem is built from the whole arrays instead).
_LIMIT_CANDIDATES = 64


class _Templates(NamedTuple):
    """A pointing's source template at one position, per second.

    ``index`` (backend int64, ``(M,)``) and ``index_host``: the flat bins of the counts
    cube where the template is not zero, inside the fit mask (sorted); ``background``
    (per s of on-time) and ``signal`` (norm 1, per s of live time): backend float64
    ``(M,)``; ``sums``: their sums (host, ``(2,)``); ``order`` (backend int64, ``(L,)``):
    the positions in ``index`` of the ``L`` bins of lowest background / signal (signal
    > 0), ascending, and ``order_values`` (host, ``(2, L)``) their background and signal.
    """

    index: object
    index_host: np.ndarray
    background: object
    signal: object
    sums: np.ndarray
    order: object
    order_values: np.ndarray


class _Background(NamedTuple):
    """A pointing's background over its fit mask per s of on-time (free background norm):
    ``index``/``index_host`` the mask's flat bins, ``values`` there, ``full`` the whole
    cube's (zero outside the mask), ``in_mask`` (bool, whole cube), on the backend;
    ``total`` the sum (float)."""

    index: object
    index_host: np.ndarray
    values: object
    full: object
    in_mask: object
    total: float


def _unit_dataset(window, part):
    """The part's pointing at 1 s (gammapy's stack of its per-second maps), no models."""
    pointing = part.pointing
    if pointing.stacked_unit is None:
        pointing.make_stacked_unit(window.geom, window.energy_axis_true, part.gti)
    unit = pointing.stacked_unit
    return MapDataset(
        counts=unit.counts,
        exposure=unit.exposure,
        background=unit.background,
        psf=unit.psf,
        edisp=unit.edisp,
        mask_safe=unit.mask_safe,
        mask_fit=unit.mask_fit,
        gti=unit.gti,
        name=unit.name,
    )


def _fit_mask_and_background(dataset, part):
    """The dataset's fit mask and background (per s, float64, 0 without a map), checked."""
    shape = dataset.counts.data.shape
    mask = np.ones(shape, bool) if dataset.mask is None else dataset.mask.data.astype(bool)
    background = np.zeros(shape)
    if dataset.background is not None:
        background = dataset.background.data.astype(np.float64)
    bad = mask & ~np.isfinite(background)
    if bad.any():
        raise ValueError(
            f"observation {part.pointing.observation.obs_id}: the background map has "
            f"{int(bad.sum())} NaN/inf value(s) inside the fit mask"
        )
    return mask.ravel(), np.where(mask, background, 0.0).ravel()


def _source_dataset(cache, window, part, config, settings, ra, dec):
    """The part's 1 s dataset holding the candidate model, kept per pointing and moved
    to ``(ra, dec)``: gammapy's evaluator then keeps its PSF and EDisp kernels while the
    source moves by less than its cut-out margin (0.1 deg), as in a gammapy fit with a
    free position (~13 ms per new position instead of ~0.3 s)."""
    key = ("source dataset", part.pointing.token, settings.template_key)
    dataset = cache.sources.lookup(key) if cache.move_sources else None
    if dataset is None:
        dataset = _unit_dataset(window, part)
        dataset.models = Models([source_model(ra, dec, config)])
        if cache.move_sources:
            cache.sources.store(key, dataset)
        return dataset
    spatial = dataset.models[SOURCE_NAME].spatial_model
    spatial.lon_0.value, spatial.lat_0.value = ra, dec
    return dataset


def _compute_templates(cache, window, part, ra, dec, config, settings):
    dataset = _source_dataset(cache, window, part, config, settings, ra, dec)
    mask, background = _fit_mask_and_background(dataset, part)
    signal = dataset.npred_signal(model_names=[SOURCE_NAME]).data.astype(np.float64).ravel()
    index = np.flatnonzero(mask & (signal != 0))
    background, signal = background[index], signal[index]
    positive = np.flatnonzero(signal > 0)
    ratio = background[positive] / signal[positive]
    order = positive[np.argsort(ratio, kind="stable")[:_LIMIT_CANDIDATES]]
    upload = window.backend.upload
    return _Templates(
        index=upload(index, np.int64),
        index_host=index,
        background=upload(background, np.float64),
        signal=upload(signal, np.float64),
        sums=np.array([background.sum(), signal.sum()]),
        order=upload(order, np.int64),
        order_values=np.stack([background[order], signal[order]]),
    )


def _compute_background(window, part):
    mask, background = _fit_mask_and_background(_unit_dataset(window, part), part)
    index = np.flatnonzero(mask)
    upload = window.backend.upload
    return _Background(
        index=upload(index, np.int64),
        index_host=index,
        values=upload(background[index], np.float64),
        full=upload(background, np.float64),
        in_mask=upload(mask, bool),
        total=float(background.sum()),
    )


def _templates(cache, window, part, ra, dec, position_key, config, settings):
    key = (part.pointing.token, window.backend.name, position_key, settings.template_key)
    entry = cache.templates.lookup(key)
    if entry is None:
        entry = _compute_templates(cache, window, part, ra, dec, config, settings)
        cache.templates.store(key, entry)
    return key, entry


def _background(cache, window, part):
    key = ("background", part.pointing.token, window.backend.name)
    entry = cache.templates.lookup(key)
    if entry is None:
        entry = _compute_background(window, part)
        cache.templates.store(key, entry)
    return entry


# -- the window's problem -----------------------------------------------------------------
def _window_bins(cache, window, ra, dec, position_key, config, settings):
    """The window's compact Cash problem as host arrays ``(counts, fixed, templates)``
    (see :func:`_compact_bins`), or None when the source predicts no counts.

    One observation: from the counted bins gathered on the backend (:func:`_sparse_bins`);
    several, or the rare window whose empty bins are not covered by the per-position
    candidates: from the whole arrays (:func:`_dense_arrays`, :func:`_compact_bins`).
    """
    found = [
        _templates(cache, window, part, ra, dec, position_key, config, settings)
        for part in window.parts
    ]
    if all(entry.index_host.size == 0 for _, entry in found):
        return None
    backgrounds = [None] * len(found)
    if settings.free_background:
        backgrounds = [_background(cache, window, part) for part in window.parts]
    if len(found) == 1 and found[0][1].index_host.size:
        bins = _sparse_bins(window, window.parts[0], found[0][1], backgrounds[0])
        if bins is not None:
            return bins
    arrays = _dense_arrays(cache, window, found, backgrounds)
    return _compact_bins(window.backend, arrays, settings.free_background)


def _sparse_bins(window, part, entry, background):
    """Counts, fixed prediction and templates (host) of the counted bins, the empty bins
    summed into one, and the empty bin that sets the norm's lower limit (see
    :func:`_compact_bins`); None when every limit candidate has counts."""
    xp, to_numpy = window.backend.xp, window.backend.to_numpy
    flat = window.counts.reshape(-1)
    support_counts = flat[entry.index]
    empty_candidates = np.flatnonzero(to_numpy(support_counts[entry.order]) == 0)
    if empty_candidates.size == 0:
        return None
    limit_background, limit_signal = entry.order_values[:, empty_candidates[0]]
    if background is None:
        local = xp.flatnonzero(support_counts)
        rows = [support_counts[local], entry.background[local], entry.signal[local]]
        background_total = entry.sums[0]
    else:
        counted = xp.flatnonzero(flat)
        counted = counted[background.in_mask[counted]]
        where = xp.minimum(xp.searchsorted(entry.index, counted), entry.index.shape[0] - 1)
        signal = xp.where(entry.index[where] == counted, entry.signal[where], 0.0)
        rows = [flat[counted], background.full[counted], signal]
        background_total = background.total
    counts, counted_background, counted_signal = np.asarray(to_numpy(xp.stack(rows)))
    ontime, livetime = part.ontime, part.livetime
    background_row = (
        np.append(
            counted_background,
            [background_total - counted_background.sum() - limit_background, limit_background],
        )
        * ontime
    )
    signal_row = (
        np.append(
            counted_signal, [entry.sums[1] - counted_signal.sum() - limit_signal, limit_signal]
        )
        * livetime
    )
    counts = np.append(counts, [0.0, 0.0])
    if background is None:
        return counts, background_row, signal_row[None, :]
    return counts, np.zeros(counts.size), np.stack([signal_row, background_row])


class _WindowArrays(NamedTuple):
    counts: object
    background: object
    signal: object


def _dense_part(entry, background, backend):
    """A part's fitted bins (host index) with its background and signal there (backend):
    the template's bins, or the whole fit mask with a free background norm."""
    if background is None:
        return entry.index_host, entry.background, entry.signal
    xp = backend.xp
    signal = xp.zeros(background.index_host.size)
    where = np.searchsorted(background.index_host, entry.index_host)
    signal[backend.upload(where, np.int64)] = entry.signal
    return background.index_host, background.values, signal


def _dense_arrays(cache, window, found, backgrounds):
    """The window's counts, background and signal (norm 1) on all fitted bins."""
    backend, xp = window.backend, window.backend.xp
    parts = [_dense_part(e, b, backend) for (_, e), b in zip(found, backgrounds, strict=True)]
    key = (tuple(k for k, _ in found), backgrounds[0] is not None)
    union = cache.unions.lookup(key)
    if union is None:
        index = np.unique(np.concatenate([p[0] for p in parts]))
        positions = [backend.upload(np.searchsorted(index, p[0]), np.int64) for p in parts]
        union = (backend.upload(index, np.int64), index.size, positions)
        cache.unions.store(key, union)
    index, size, positions = union
    background, signal = xp.zeros(size), xp.zeros(size)
    for (_, part_background, part_signal), where, part in zip(
        parts, positions, window.parts, strict=True
    ):
        background[where] += part_background * part.ontime
        signal[where] += part_signal * part.livetime
    return _WindowArrays(window.counts.reshape(-1)[index], background, signal)


# -- the fit ------------------------------------------------------------------------------
def fit_flux(window, ra, dec, config, cache=None):
    """Fit the flux of a point source at ``(ra, dec)`` on a stream window.

    A power law of index ``fit.index`` at ``fit.reference``, only its amplitude free
    (and the FoV background norm with ``fit.free_background_norm``); the Cash statistic
    of the window's counts, on the window's backend (see the module's notes for what is
    fitted, cached and rounded).

    Parameters
    ----------
    window : `rtafast.stream.StreamWindow`
    ra, dec : float
        Candidate position, deg (ICRS).
    config : `rtafast.pipeline.config.PipelineConfig`
        Reads ``fit.index``, ``fit.reference``, ``fit.free_background_norm``,
        ``selection.energy_min`` and ``selection.energy_max``.
    cache : MeasureCache, optional
        Default: :func:`default_cache`.

    Returns
    -------
    FluxFit
        With ``success`` False, NaN quantities and a ``reason`` when the source predicts
        no counts in the window's fit mask (outside the map or its safe region).

    Raises
    ------
    ValueError
        A position that is not a valid RA/Dec; bad fit settings (naming the key); NaN in
        the background inside the fit mask.
    """
    cache = default_cache() if cache is None else cache
    settings = _settings(config)
    ra, dec, position_key = snap_position(window.geom, ra, dec, cache.grid_pixels)
    bins = _window_bins(cache, window, ra, dec, position_key, config, settings)
    if bins is None:
        return _nothing_to_fit(
            ra,
            dec,
            f"the source at ({ra:.4f}, {dec:.4f}) deg predicts no counts inside the "
            "window's fit mask (outside the map or its safe region)",
        )
    scale = _flux_scale(cache, settings)
    if settings.free_background:
        return _fit_with_background(bins, scale, ra, dec)
    return _fit_amplitude(cash_problem(*bins, _HOST_BACKEND), scale, ra, dec)


def _nothing_to_fit(ra, dec, reason):
    nan = math.nan
    return FluxFit(nan, nan, nan, nan, nan, nan, nan, nan, 1.0, ra, dec, 0.0, 0, False, reason)


def _signed_sqrt(ts, norm):
    """gammapy's signed sqrt(TS): negative unless the norm is positive."""
    root = math.sqrt(max(ts, 0.0)) if math.isfinite(ts) else math.nan
    return root if norm > 0 else -root


def _result(norm, norm_err, norm_ul, ts, background_norm, scale, ra, dec, counts, fit):
    reason = "" if fit.success else f"fit did not converge: {fit.message}"
    return FluxFit(
        flux=norm * scale,
        flux_err=norm_err * scale,
        flux_ul=norm_ul * scale,
        ts=ts,
        sqrt_ts=_signed_sqrt(ts, norm),
        norm=norm,
        norm_err=norm_err,
        norm_ul=norm_ul,
        background_norm=background_norm,
        ra=ra,
        dec=dec,
        n_counts=counts,
        niter=int(fit.niter),
        success=bool(fit.success),
        reason=reason,
    )


def _compact_bins(backend, arrays, free_background):
    """The window's Cash problem over its counted bins, as small host arrays.

    The bins of ``arrays`` (backend) fall in two kinds: with counts (kept one by one)
    and without, whose Cash terms are their predictions, linear in the norms while they
    stay positive (``rtafast_kernels.cash.prepare``). The empty ones are summed into one
    bin, except the one that reaches zero first as the source norm decreases (lowest
    ratio of the rest of the prediction to the source template), kept as it is: it sets
    the norm's physical lower limit ``-min(b/s)``, as in the whole problem. In that
    domain the statistic equals the whole problem's up to rounding; only these few bins
    are copied to the host and iterated.

    Returns
    -------
    counts, fixed : ndarray, shape (n,)
    templates : ndarray, shape (K, n)
        The source's template first (and the background's with a free norm).
    """
    xp = backend.xp
    counts, background, signal = arrays
    if free_background:
        fixed = xp.zeros_like(background)
        templates = xp.stack([signal, background])
    else:
        fixed, templates = background, signal[None, :]
    empty = counts == 0
    rest = fixed + templates[1:].sum(axis=0)  # the prediction without the source
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = xp.where(empty & (signal > 0), rest / xp.where(signal > 0, signal, 1.0), np.inf)
    limit = int(xp.argmin(ratio)) if ratio.shape[0] else 0
    has_limit = ratio.shape[0] > 0 and bool(xp.isfinite(ratio[limit]))
    counted = xp.flatnonzero(~empty)
    aggregated = xp.where(empty, 1.0, 0.0)
    if has_limit:
        aggregated[limit] = 0.0
    columns = xp.concatenate([fixed[None, :], templates])
    extra = [xp.concatenate([xp.zeros(1), (columns * aggregated).sum(axis=1)])]
    if has_limit:
        extra.append(xp.concatenate([xp.zeros(1), columns[:, limit]]))
    rows = xp.concatenate([counts[None, counted], fixed[None, counted], templates[:, counted]])
    host = np.asarray(backend.to_numpy(xp.concatenate([rows] + [e[:, None] for e in extra], 1)))
    return host[0].copy(), host[1].copy(), np.ascontiguousarray(host[2:])


def _fit_amplitude(problem, scale, ra, dec):
    """One free norm over the template's bins (the background fixed)."""
    fit = fit_norm(problem, rtol=_RTOL, n_sigma_ul=UL_N_SIGMA, selection=("ul",))
    norm = float(fit.norm[0])
    return _result(
        norm,
        float(fit.norm_err[0]),
        float(fit.ul[0]),
        float(fit.ts[0]),
        1.0,
        scale,
        ra,
        dec,
        problem.counts_total,
        fit,
    )


def _fit_with_background(bins, scale, ra, dec):
    """Amplitude and background norm, every prediction kept >= 0.

    The predictions ``a s + b B`` stay non-negative in every bin when ``b >= 0`` and
    ``a >= -b r`` (``r`` the lowest ``B / s``): the bound rtafast's and gammapy's
    one-norm fits have, ``-min(b/s)``. When the free optimum lies beyond it (a nearly
    empty window, where a negative source can cancel a large background: the truncated
    Cash statistic is flat there) the optimum on the bound is taken. TS refits the
    background norm at zero amplitude; the upper limit profiles it.
    """
    problem = cash_problem(*bins, _HOST_BACKEND)
    ratio = _lowest_ratio(bins[2])
    fit = fit_norms(problem, x0=[1.0, 1.0], rtol=_RTOL, max_iter=_MAX_ITER, ts_for=[0])
    stat_null = float(fit.stat + fit.ts[0])
    norm, background_norm = (float(v) for v in fit.norm)
    if not (background_norm >= 0 and norm >= -background_norm * ratio):
        fit = _fit_on_bound(problem, bins, ratio)
        norm, background_norm = (float(v) for v in fit.norm)
    norm_err = float(fit.norm_err[0])
    profile = _Profile(problem, background_norm, ratio)
    target = fit.stat + UL_N_SIGMA**2
    ul = _profile_root(profile, norm, target, norm_err if norm_err > 0 else 1.0)
    return _result(
        norm,
        norm_err,
        float(ul),
        stat_null - float(fit.stat),
        background_norm,
        scale,
        ra,
        dec,
        problem.counts_total,
        fit,
    )


def _lowest_ratio(templates):
    """``min(B / s)`` over the bins with ``s > 0`` (templates ``(s, B)``)."""
    signal, background = templates
    positive = signal > 0
    return float(np.min(background[positive] / signal[positive])) if positive.any() else np.inf


def _fit_on_bound(problem, bins, ratio):
    """The best ``(a, b)`` with ``a = -b r``: a one-norm fit of ``b`` (template
    ``B - r s``), errors from the two-norm Hessian there."""
    counts, _, (signal, background) = bins
    along = np.clip(background - ratio * signal, 0.0, None)
    fit = fit_norm(cash_problem(counts, np.zeros(counts.size), along[None, :], _HOST_BACKEND))
    b = float(fit.norm[0])
    norms = np.array([-ratio * b, b])
    stat, _, hess = problem.reduce(norms, need_stat=True)
    try:
        covariance = 2.0 * np.linalg.inv(hess)
    except np.linalg.LinAlgError:
        covariance = np.full((2, 2), np.nan)
    return NormFitResult(
        norm=norms,
        norm_err=np.sqrt(np.abs(np.diag(covariance))),
        covariance=covariance,
        stat=float(stat),
        ts=np.full(2, np.nan),
        niter=fit.niter,
        n_evaluations=fit.n_evaluations,
        success=fit.success,
        message=f"amplitude on its lower bound -b min(B/s) ({fit.message})",
    )


class _Profile:
    """The statistic at a fixed amplitude ``a``, minimised over the background norm
    ``b >= max(0, -a / r)`` (every prediction non-negative)."""

    def __init__(self, problem, background_norm, ratio):
        self.problem = problem
        self.background_norm = background_norm  # start of the next inner fit
        self.ratio = ratio

    def __call__(self, amplitude):
        """Profile statistic and its derivative in the amplitude (envelope theorem)."""
        lowest = 0.0 if amplitude >= 0 or self.ratio == np.inf else -amplitude / self.ratio
        b = max(self.background_norm, lowest)
        for _ in range(_MAX_ITER):
            _, grad, hess = self.problem.reduce(np.array([amplitude, b]), need_stat=False)
            if not (hess[1, 1] > 0 and math.isfinite(grad[1])):
                break
            new = b - grad[1] / hess[1, 1]
            if new <= lowest:
                new = 0.5 * (b + lowest)
            converged = abs(new - b) <= _RTOL * math.sqrt(2.0 / hess[1, 1])
            b = new
            if converged:
                break
        stat, grad, _ = self.problem.reduce(np.array([amplitude, b]), need_stat=True)
        self.background_norm = b
        return float(stat), float(grad[0])


def _profile_root(profile, best, target, error):
    """The amplitude above ``best`` where the profile statistic reaches ``target``."""
    inside, outside = best, None
    step = UL_N_SIGMA * error
    x = best + step
    for _ in range(200):  # bracket the root
        stat, _ = profile(x)
        if stat >= target:
            outside = x
            break
        inside, step = x, 2.0 * step
        x = best + step
    if outside is None:
        return math.nan
    x = 0.5 * (inside + outside)
    for _ in range(_MAX_ITER):
        stat, grad = profile(x)
        f = stat - target
        if f > 0:
            outside = x
        else:
            inside = x
        new = x - f / grad if grad > 0 else math.nan
        if not inside < new < outside:
            new = 0.5 * (inside + outside)
        if abs(new - x) <= 1e-10 * error or f == 0:
            return new
        x = new
    return x
