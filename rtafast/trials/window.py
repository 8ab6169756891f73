"""The simulated window of a calibration trial: geometry, IRFs, background and template.

:func:`make_trial_window` builds, once per (config, exposure), what every trial of that
exposure shares, the way the alert pipeline builds a window of a real observation:

* the IRFs and pointing: the first observation of ``input.datastore``/``input.events``
  (its IRFs and pointing), else ``input.irf_file`` (a caldb file), else the package's
  default (CTAO prod5 South when ``../shared/data`` has it, else the analytic CTA-like
  IRF), pointed ``trials.pointing_offset`` north of the target;
* an observation of ``exposure`` live time (no dead time) at that pointing, and an empty
  :class:`rtafast.stream.StreamWindow` of it made by the pipeline's own accumulator
  (geometry, true-energy axis and safe mask of the config);
* the flux-only fit's bins at the target (:mod:`rtafast.pipeline.measure_templates`: the
  pipeline's template cache, the same bins, background and unit-norm template its
  ``fit_flux`` fits): ``support`` (flat indices into the counts cube), ``fixed``
  (predicted background counts there) and ``template`` (predicted source counts per
  unit norm), and ``flux_scale`` (integral flux per unit norm, cm-2 s-1);
* for the blind search, the whole cube's predicted background (``background``, zero
  outside the safe mask) and the template scattered into the whole cube.

The fixed-position statistic of a trial only involves the ``support`` bins (every other
bin adds a constant independent of the norm), so fixed-position trials draw Poisson
counts there only: the same distribution as drawing the whole cube and fitting it.
"""

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.time import Time

__all__ = ["TrialWindow", "make_trial_window", "trial_irfs"]

#: Time origin of the simulated observations (any date: the IRFs do not depend on it).
_REFERENCE = Time("2026-01-01T00:00:00", scale="tt")


@dataclass
class TrialWindow:
    """What every trial of one exposure shares (see the module's notes).

    Attributes
    ----------
    window : `rtafast.stream.StreamWindow`
        The empty window (counts zero) of the simulated observation.
    exposure_s : float
        Live time (= on-time), s.
    target : `~astropy.coordinates.SkyCoord`
        The fitted (and injected) position, snapped to the pipeline's template grid.
    support : ndarray of int64, shape (M,)
        Flat indices into the counts cube of the fit's bins.
    fixed, template : ndarray of float64, shape (M,)
        Predicted background counts, and source counts per unit norm, in those bins.
    flux_scale : float
        Integral flux over the selection's energy range per unit norm, cm-2 s-1.
    background : ndarray of float64, shape ``geom.data_shape``
        Predicted background counts of the whole cube (zero outside the safe mask).
    weights : ndarray of float64, shape ``geom.data_shape``
        The safe mask (1 inside, 0 outside).
    irf_name : str
        Where the IRFs came from.
    """

    window: object
    exposure_s: float
    target: SkyCoord
    support: np.ndarray
    fixed: np.ndarray
    template: np.ndarray
    flux_scale: float
    background: np.ndarray
    weights: np.ndarray
    irf_name: str

    def source_cube(self):
        """The template scattered into the whole cube (zero elsewhere), float64."""
        cube = np.zeros(self.background.size)
        cube[self.support] = self.template
        return cube.reshape(self.background.shape)


def _first_input_only(config):
    """The config with only the first observation of its input (None: no input)."""
    source = config.input
    if source.events:
        update = {"events": source.events[:1]}
    elif source.datastore is not None:
        if not source.obs_ids:
            return config  # open_observations reads all: pick the first below
        update = {"obs_ids": source.obs_ids[:1]}
    else:
        return None
    return config.model_copy(update={"input": source.model_copy(update=update)})


def trial_irfs(config):
    """``(irfs, pointing, name)``: the IRF dict, the pointing (ICRS) and where they came from.

    ``pointing`` is None when the IRFs are not an observation's (see the module's notes).
    """
    from ..pipeline.input_read import open_observations

    single = _first_input_only(config)
    if single is not None:
        observation = open_observations(single)[0]
        irfs = {name: getattr(observation, name) for name in ("aeff", "edisp", "psf", "bkg")}
        pointing = observation.get_pointing_icrs(observation.tmid).icrs
        return irfs, pointing, f"observation {observation.obs_id}"
    if config.input.irf_file is not None:
        from gammapy.irf import load_irf_dict_from_file

        return load_irf_dict_from_file(config.input.irf_file), None, str(config.input.irf_file)
    from ..simulate_grb_irf import _resolve_irf

    irfs, name, _, _ = _resolve_irf("auto")
    return irfs, None, name


def _target_and_pointing(config, pointing):
    target = config.target
    if target.ra is not None:
        position = SkyCoord(target.ra, target.dec, unit="deg", frame="icrs")
    elif pointing is not None:
        position = pointing
    else:
        raise ValueError(
            "trials: give target.ra and target.dec (the fitted position), or an input "
            "observation whose pointing is used"
        )
    if pointing is None:
        pointing = position.directional_offset_by(0 * u.deg, config.trials.pointing_offset)
    return position, pointing


def _observation(irfs, pointing, exposure_s):
    from gammapy.data import FixedPointingInfo, Observation, observatory_locations

    return Observation.create(
        pointing=FixedPointingInfo(fixed_icrs=pointing),
        location=observatory_locations["cta_south"],
        obs_id=1,
        tstart=0 * u.s,
        tstop=exposure_s * u.s,
        irfs=irfs,
        deadtime_fraction=0.0,
        reference_time=_REFERENCE,
    )


def _empty_events():
    from gammapy.data import EventList

    return EventList(EventList._create_empty_list())


def _empty_window(config, observation, center, backend):
    from gammapy.makers import SafeMaskMaker

    from ..pipeline.geometry import energy_axis_true, make_geom
    from ..stream import BunchAccumulator

    safe = None
    if config.selection.offset_max is not None:
        safe = SafeMaskMaker(methods=["offset-max"], offset_max=config.selection.offset_max)
    accumulator = BunchAccumulator(
        make_geom(config, center),
        energy_axis_true=energy_axis_true(config),
        array_backend=backend,
        safe_mask_maker=safe,
        name="trial",
    )
    interval = (observation.tstart, observation.tstop)
    accumulator.add(_empty_events(), observation, interval)
    return accumulator.current_window()


def _non_negative(signal):
    """The template with gammapy's numerical noise set to 0: its PSF convolution leaves
    values down to ~-1e-8 of the peak in a source's predicted counts (their sum ~-5e-8 of
    the total); the trials' kernel fits non-negative templates (the fits then differ
    from the pipeline's by < 1e-6 relative: ``tests/test_trials_batch.py``)."""
    return np.clip(np.asarray(signal, np.float64), 0.0, None)


def make_trial_window(config, exposure_s, backend=None, cache=None):
    """The :class:`TrialWindow` of a config at one exposure (see the module's notes).

    Parameters
    ----------
    config : `rtafast.pipeline.config.PipelineConfig`
    exposure_s : float
        Live time of the window, s (> 0).
    backend : str or backend object, optional
        Where the window's arrays live (default: the config's backend).
    cache : `rtafast.pipeline.measure.MeasureCache`, optional
        The fit's template cache (a new one by default).

    Returns
    -------
    TrialWindow
    """
    from rtafast_kernels import resolve_backend

    from ..pipeline.geometry import map_center
    from ..pipeline.measure import MeasureCache
    from ..pipeline.measure_cache import snap_position
    from ..pipeline.measure_templates import _flux_scale, _settings, _templates

    if not exposure_s > 0:
        raise ValueError(f"trials.exposures: {exposure_s} s is not a positive live time")
    if backend is None:
        backend = None if config.backend == "auto" else config.backend
    backend = resolve_backend(backend)
    irfs, pointing, irf_name = trial_irfs(config)
    target, pointing = _target_and_pointing(config, pointing)
    observation = _observation(irfs, pointing, float(exposure_s))
    window = _empty_window(config, observation, map_center(config, pointing), backend)
    cache = MeasureCache() if cache is None else cache
    settings = _settings(config)
    ra, dec, key = snap_position(window.geom, target.ra.deg, target.dec.deg, cache.grid_pixels)
    part = window.parts[0]
    _, entry = _templates(cache, window, part, ra, dec, key, config, settings)
    if entry.index_host.size == 0:
        raise ValueError(
            f"trials: the target ({ra:.4f}, {dec:.4f}) deg predicts no counts inside the "
            "map's safe region (outside the map, or beyond selection.offset_max)"
        )
    weights = part.pointing.counts_weights(backend)
    shape = window.geom.data_shape
    weights = np.ones(shape) if weights is None else np.asarray(backend.to_numpy(weights), float)
    dataset = window.to_dataset()
    background = np.asarray(dataset.background.data, np.float64).ravel() * weights.ravel()
    return TrialWindow(
        window=window,
        exposure_s=float(exposure_s),
        target=SkyCoord(ra, dec, unit="deg", frame="icrs"),
        support=entry.index_host.astype(np.int64),
        fixed=np.asarray(backend.to_numpy(entry.background), np.float64) * window.ontime,
        template=_non_negative(backend.to_numpy(entry.signal)) * window.livetime,
        flux_scale=float(_flux_scale(cache, settings)),
        background=background.reshape(shape),
        weights=weights.reshape(shape),
        irf_name=irf_name,
    )
