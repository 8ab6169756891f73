"""One batch of calibration trials: simulate, analyse, return the rows (a Dask task).

:func:`run_batch` is what each Dask task runs: ``n`` trials of one exposure, in one
process, with the kernels (no gammapy call per trial). It draws, from the batch's seed:

1. with ``trials.hypothesis: source``, each trial's injected integral flux (log-uniform
   in ``[flux_min, flux_max]``, cm-2 s-1; with ``decay_index`` the flux at the window's
   start, fading as ``(t / decay_start)^-decay_index``: the window sees its mean);
2. Poisson counts: of the fit's bins only (fixed-position trials), or of the whole
   cube (``trials.blind``: background plus the injected source);
3. and analyses them: the flux-only fit at the target of every trial at once
   (:func:`rtafast_kernels.trials.fit_norm_rows`: the pipeline's fit, one free norm, on
   the pipeline's bins, see :mod:`rtafast.trials.window`), and with ``blind`` the
   pipeline's blind search on the whole cube (:func:`rtafast.pipeline.detect.detect`:
   TS map or Li & Ma map, peaks, localisation).

A batch is reproducible from ``(base seed, exposure index, batch number)`` alone
(:func:`batch_seed`), whatever worker runs it and however often.
"""

import time

import numpy as np
import pyarrow as pa

from .sampling import PoissonSampler
from .schema import SCHEMA

__all__ = ["batch_seed", "decay_factor", "run_batch", "trial_window"]

#: TrialWindows made in this process: ``{(config text, exposure s): TrialWindow}``.
_WINDOWS = {}
_ESTIMATORS = {}


def batch_seed(base_seed, exposure_index, batch):
    """The seed of one batch: 63 bits drawn by NumPy's SeedSequence from the three numbers."""
    sequence = np.random.SeedSequence([int(base_seed), int(exposure_index), int(batch)])
    return int(sequence.generate_state(1, np.uint64)[0] >> np.uint64(1))


def decay_factor(decay_index, start_s, exposure_s):
    """Mean over ``[start, start + exposure]`` of ``(t / start)^-decay_index`` (1: steady)."""
    if decay_index is None:
        return 1.0
    ratio = 1.0 + exposure_s / start_s
    if abs(decay_index - 1.0) < 1e-12:
        return float(np.log(ratio) * start_s / exposure_s)
    return float(
        (ratio ** (1.0 - decay_index) - 1.0) * start_s / ((1.0 - decay_index) * exposure_s)
    )


def _load(config_text):
    import yaml

    from ..pipeline.config import validate_config

    return validate_config(yaml.safe_load(config_text), source="trials config")


def trial_window(config_text, exposure_s):
    """The process's :class:`~rtafast.trials.window.TrialWindow` (made at the first call)."""
    from .window import make_trial_window

    key = (config_text, float(exposure_s))
    if key not in _WINDOWS:
        _WINDOWS.clear()  # one config at a time per process
        _WINDOWS[key] = make_trial_window(_load(config_text), float(exposure_s))
    return _WINDOWS[key]


def _estimators(config_text, config):
    from ..pipeline.detect import DetectionEstimators

    if config_text not in _ESTIMATORS:
        _ESTIMATORS.clear()
        _ESTIMATORS[config_text] = DetectionEstimators.from_config(config)
    return _ESTIMATORS[config_text]


def _injected(rng, config, window, n):
    """Injected integral fluxes (cm-2 s-1) and the true norms of the window."""
    settings = config.trials
    if settings.hypothesis == "background":
        return np.zeros(n), np.zeros(n)
    low, high = np.log(settings.flux_min), np.log(settings.flux_max)
    flux = np.exp(rng.uniform(low, high, n))
    factor = decay_factor(
        settings.decay_index, settings.decay_start.to_value("s"), window.exposure_s
    )
    return flux, flux * factor / window.flux_scale


#: Counts held at once by a batch: rows x bins (160 MB of float64).
CHUNK_VALUES = 20_000_000


def _samplers(window):
    """Samplers of the fit's bins: background, and the source at unit norm."""
    return PoissonSampler(window.fixed), PoissonSampler(window.template)


def _chunk_rows(n_bins):
    return max(1, CHUNK_VALUES // n_bins)


def _fixed_counts(rng, window, norms, samplers=None):
    """Poisson counts of the fit's bins, shape ``(len(norms), M)``: background plus the
    source at each row's norm."""
    background, source = samplers or _samplers(window)
    counts = np.zeros((norms.size, window.fixed.size))
    background.add_to(rng, counts)
    source.add_to(rng, counts, norms)
    return counts


def _fit(window, counts, backend):
    from rtafast_kernels.trials import fit_norm_rows

    fit = fit_norm_rows(counts, window.fixed, window.template, backend=backend)
    norm = np.asarray(backend.to_numpy(fit.norm))
    ts = np.asarray(backend.to_numpy(fit.ts))
    sqrt_ts = np.where(norm > 0, 1.0, -1.0) * np.sqrt(np.clip(ts, 0.0, None))
    return {
        "ts": ts,
        "sqrt_ts": sqrt_ts,
        "norm": norm,
        "flux": norm * window.flux_scale,
        "flux_err": np.asarray(backend.to_numpy(fit.norm_err)) * window.flux_scale,
        "n_counts": counts.sum(axis=1),
        "converged": np.asarray(backend.to_numpy(fit.converged), bool),
    }


def _fixed_trials(rng, window, norms, backend):
    """Fit columns of fixed-position trials, drawn and fitted ``_chunk_rows`` at a time
    (memory bounded whatever the batch size; the draws depend on the bins only)."""
    samplers = _samplers(window)
    step = _chunk_rows(window.fixed.size)
    parts = [
        _fit(window, _fixed_counts(rng, window, norms[start : start + step], samplers), backend)
        for start in range(0, norms.size, step)
    ]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def _no_blind(n):
    nan = np.full(n, np.nan)
    columns = ("sqrt_ts", "ts", "ra", "dec", "offset", "r68", "r95", "r997")
    rows = {f"blind_{name}": nan.copy() for name in columns}
    rows["n_candidates"] = np.full(n, -1, np.int32)
    return rows


def _r997_scale():
    from ..pipeline.localise import chi2_2dof_quantile

    return float(np.sqrt(chi2_2dof_quantile(0.997) / chi2_2dof_quantile(0.95)))


def _record_candidate(rows, i, detection, target, r997_scale):
    significance = np.asarray(detection.significance_map.data, np.float64)
    best = float(np.nanmax(significance)) if np.isfinite(significance).any() else np.nan
    rows["blind_sqrt_ts"][i] = best
    rows["blind_ts"][i] = best * abs(best)
    rows["n_candidates"][i] = len(detection.candidates)
    if detection.candidates:
        from astropy.coordinates import SkyCoord

        candidate = detection.candidates[0]
        position = SkyCoord(candidate.ra, candidate.dec, unit="deg", frame="icrs")
        rows["blind_ra"][i], rows["blind_dec"][i] = candidate.ra, candidate.dec
        rows["blind_offset"][i] = float(position.separation(target).deg)
        rows["blind_r68"][i], rows["blind_r95"][i] = candidate.r68, candidate.r95
        rows["blind_r997"][i] = candidate.r95 * r997_scale


def _blind_search(rng, config, config_text, window, norms):
    """Whole-cube counts of every trial, the pipeline's detection on each; returns the
    blind columns and the counts of the fit's bins, shape (n, M)."""
    from ..pipeline.detect import detect
    from ..stream.window import StreamWindow

    estimators = _estimators(config_text, config)
    base = window.window
    backend = base.backend
    background, source = PoissonSampler(window.background), PoissonSampler(window.source_cube())
    rows = _no_blind(norms.size)
    fixed_counts = np.empty((norms.size, window.support.size))
    scale = _r997_scale()
    for i in range(norms.size):
        cube = np.zeros((1, window.background.size))
        background.add_to(rng, cube)
        source.add_to(rng, cube, norms[i : i + 1])
        cube = cube.reshape(window.background.shape)
        fixed_counts[i] = cube.ravel()[window.support]
        trial = StreamWindow(
            base.geom,
            base.energy_axis_true,
            "trial",
            backend,
            base.parts,
            counts=backend.upload(cube),
        )
        _record_candidate(rows, i, detect(trial, config, estimators), window.target, scale)
    return rows, fixed_counts


def run_batch(config_text, exposure_index, exposure_s, batch, first_trial, n, base_seed):
    """Run one batch of trials (see the module's notes).

    Parameters
    ----------
    config_text : str
        The pipeline config as YAML (``dump_yaml``; input paths absolute).
    exposure_index : int
        Position of the exposure in ``trials.exposures``.
    exposure_s : float
        Its live time, s.
    batch : int
        Batch number within the exposure.
    first_trial : int
        Trial number of the batch's first row.
    n : int
        Trials in the batch (>= 1).
    base_seed : int
        ``trials.seed``.

    Returns
    -------
    table : `pyarrow.Table`
        One row per trial, :data:`rtafast.trials.schema.SCHEMA`.
    info : dict
        ``exposure_index, batch, n, seed, wall_s, cpu_s, setup_s`` (s; setup: the
        trial window made in this call, 0 when the process had it) and ``worker`` (pid).
    """
    import os

    wall, cpu = time.perf_counter(), time.process_time()
    config = _load(config_text)
    window = trial_window(config_text, exposure_s)
    setup_s = time.perf_counter() - wall
    seed = batch_seed(base_seed, exposure_index, batch)
    rng = np.random.default_rng(seed)
    flux, norms = _injected(rng, config, window, n)
    backend = window.window.backend
    if config.trials.blind:
        blind, counts = _blind_search(rng, config, config_text, window, norms)
        fit = _fit(window, counts, backend)
    else:
        blind, fit = _no_blind(n), _fixed_trials(rng, window, norms, backend)
    columns = {
        "trial": first_trial + np.arange(n, dtype=np.int64),
        "batch": np.full(n, batch, np.int32),
        "seed": np.full(n, seed, np.int64),
        "exposure_s": np.full(n, window.exposure_s),
        "injected_flux": flux,
        **fit,
        **blind,
    }
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    info = {
        "exposure_index": int(exposure_index),
        "batch": int(batch),
        "n": int(n),
        "seed": seed,
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "setup_s": setup_s,
        "worker": os.getpid(),
    }
    return table, info
