"""The candidate's source model and its per-position templates, for the flux fit.

:func:`source_model` is the model :func:`rtafast.pipeline.measure_fit.fit_flux` fits (a
point source with a power law of fixed index, only the amplitude free); the fit settings
are read from the configuration (``_settings``). A pointing's source template at a
position (its predicted counts per second at unit amplitude, from gammapy's evaluators on
the pointing's 1 s dataset) and its background over the fit mask (free background norm)
are computed here and kept in the :class:`rtafast.pipeline.measure_cache.MeasureCache`.
"""

import math
from typing import NamedTuple

import astropy.units as u
import numpy as np
from gammapy.modeling.models import Models, PointSpatialModel, PowerLawSpectralModel, SkyModel

from ..fit.window import shared_maps_dataset

__all__ = ["REFERENCE_AMPLITUDE", "SOURCE_NAME", "source_model"]

#: Amplitude of the templates (norm 1), cm-2 s-1 TeV-1.
REFERENCE_AMPLITUDE = 1e-12
#: Name of the candidate's sky model (gammapy models).
SOURCE_NAME = "candidate"
_AMPLITUDE_UNIT = u.Unit("cm-2 s-1 TeV-1")


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
    return shared_maps_dataset(pointing.stacked_unit)


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
