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

Where the pieces are. The cache and the position grid are in
:mod:`rtafast.pipeline.measure_cache`, the source model, fit settings and templates in
:mod:`rtafast.pipeline.measure_templates`, the window's compact problem in
:mod:`rtafast.pipeline.measure_bins`, and the bound and profile of the fit with a free
background norm in :mod:`rtafast.pipeline.measure_profile`; their public names are
importable from here.
"""

import math
from dataclasses import dataclass

from rtafast_kernels import fit_norm, fit_norms

from ..fit.device_problem import cash_problem
from .measure_bins import _compact_bins, _dense_arrays, _sparse_bins
from .measure_cache import (
    DEFAULT_GRID_PIXELS,
    MeasureCache,
    check_position,
    default_cache,
    snap_position,
)
from .measure_profile import (
    _HOST_BACKEND,
    _MAX_ITER,
    _RTOL,
    UL_N_SIGMA,
    _fit_on_bound,
    _lowest_ratio,
    _Profile,
    _profile_root,
)
from .measure_templates import (
    REFERENCE_AMPLITUDE,
    SOURCE_NAME,
    _background,
    _flux_scale,
    _settings,
    _templates,
    source_model,
)

__all__ = [
    "DEFAULT_GRID_PIXELS",
    "REFERENCE_AMPLITUDE",
    "SOURCE_NAME",
    "UL_N_SIGMA",
    "FluxFit",
    "MeasureCache",
    "check_position",
    "default_cache",
    "fit_flux",
    "snap_position",
    "source_model",
]


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
        Its counts, live time, on-time and per-second IRF maps (the fit's arrays stay
        on its backend).
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


# -- the window's problem -----------------------------------------------------------------
# (kept here: it calls ``_sparse_bins``, and ``_fit_with_background`` ``_fit_on_bound``, by
# this module's names, which the tests replace with ``monkeypatch.setattr``)
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
