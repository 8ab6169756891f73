"""Compile every kernel a real-time analysis uses, before the first data arrive.

numba compiles a CPU kernel at its first call (seconds to a minute each on a small
machine) and keeps the machine code in its on-disk cache
(:func:`rtafast_kernels.jit.kernel_cache_dir`), so only the first process after an
install or an upgrade pays it. :func:`warmup` makes those first calls on a tiny
simulated dataset (analytic CTA-like IRF, no data files needed): binning events, the
flux-only fit, the TS map (with its confidence searches) and the excess map, and
reports how long each step took. The alert pipeline calls it at start-up;
``rtafast warmup`` runs it from the command line.
"""

import time

import astropy.units as u
import numpy as np

__all__ = ["WARMUP_STEPS", "warmup"]

#: The steps of :func:`warmup`, in order.
WARMUP_STEPS = (
    "simulate",
    "bin events",
    "flux-only fit",
    "TS map",
    "excess map",
    "on/off and ring",
    "time domain and trials",
)


def _tiny_dataset():
    from rtafast.simulate import simulate_dataset

    return simulate_dataset(
        width_deg=0.6, binsz_deg=0.05, n_energy=3, amplitude="5e-12 cm-2 s-1 TeV-1"
    )


def _bin_events(dataset, backend):
    from astropy.table import Table

    from rtafast.events.binning import fill_counts

    center = dataset.counts.geom.center_skydir.icrs
    rng = np.random.default_rng(0)
    n = 200_000  # above the parallel threshold: the threaded kernels compile too
    events = Table(
        {
            "RA": (center.ra.deg + rng.normal(0, 0.2, n)).astype(np.float32),
            "DEC": (center.dec.deg + rng.normal(0, 0.2, n)).astype(np.float32),
            "ENERGY": (10 ** rng.uniform(0, 1, n)).astype(np.float32),
        }
    )
    events["RA"].unit, events["DEC"].unit, events["ENERGY"].unit = "deg", "deg", "TeV"
    fill_counts(dataset.counts.geom, events, array_backend=backend)


def _fit(dataset, backend):
    from rtafast import Fit
    from rtafast.simulate import DEMO_POSITION, point_source_models

    for background_norm_free in (False, True):  # one free norm, then two (other kernels)
        dataset.models = point_source_models(
            dataset, DEMO_POSITION, background_norm_free=background_norm_free
        )
        Fit(array_backend=backend).run(dataset)
    dataset.models = None


def _ts_map(dataset, backend):
    from rtafast.estimators import TSMapEstimator

    TSMapEstimator(
        kernel_width=0.2 * u.deg,
        selection_optional=["errn-errp", "ul"],
        array_backend=backend,
    ).run(dataset)


def _excess_map(dataset, backend):
    from rtafast.estimators import ExcessMapEstimator

    ExcessMapEstimator(correlation_radius=0.1 * u.deg, array_backend=backend).run(dataset)


def _onoff_and_ring(dataset, backend):
    """On/off counts (*regions*), the one-norm WStat fit (*wstat*), the ring (*convolution*)."""
    from astropy.coordinates import SkyCoord
    from astropy.table import Table
    from regions import CircleSkyRegion

    from rtafast.fit.norm_profile import fit_flux_norm
    from rtafast.makers import RingBackgroundMaker
    from rtafast.onoff.counter import OnOffCounter

    center = dataset.counts.geom.center_skydir.icrs
    rng = np.random.default_rng(1)
    n = 100_000  # above the parallel threshold
    events = Table(
        {
            "RA": (center.ra.deg + rng.normal(0, 0.3, n)).astype(np.float32),
            "DEC": (center.dec.deg + rng.normal(0, 0.3, n)).astype(np.float32),
            "ENERGY": (10 ** rng.uniform(0, 1, n)).astype(np.float32),
        }
    )
    events["RA"].unit, events["DEC"].unit, events["ENERGY"].unit = "deg", "deg", "TeV"
    off_centre = SkyCoord(center.ra.deg + 0.5, center.dec.deg, unit="deg")
    on, off = CircleSkyRegion(center, 0.1 * u.deg), CircleSkyRegion(off_centre, 0.1 * u.deg)
    axis = dataset.counts.geom.axes["energy"]
    OnOffCounter(on, [off], axis, array_backend=backend).add(events)
    counts = rng.poisson(3.0, 64).astype(float)
    fit_flux_norm(
        counts, np.full(64, 0.5), counts_off=counts, alpha=np.full(64, 0.2), array_backend=backend
    )
    RingBackgroundMaker(r_in=0.1 * u.deg, width=0.1 * u.deg, array_backend=backend).run(dataset)


def _time_domain_and_trials(dataset, backend):
    """The *timedomain* statistics and the *trials* fits, serial and parallel (many series
    and rows, as the afterglow study and the calibration trials run them)."""
    from rtafast.timedomain.statistics import cusum, decay_likelihood, stretch_significance
    from rtafast.timedomain.templates import decay_templates
    from rtafast_kernels import fit_norm_rows

    rng = np.random.default_rng(2)
    for n_series in (1, 16):
        on = rng.poisson(2.0, (n_series, 12)).astype(float)
        off = rng.poisson(10.0, (n_series, 12)).astype(float)
        alpha, livetime = np.full(n_series, 0.2), np.full((n_series, 12), 10.0)
        start = 30.0 + np.arange(12) * 10.0  # after every onset of the templates
        templates = decay_templates(start, start + 10.0, livetime[0])
        stretch_significance(on, off, alpha, backend=backend)
        cusum(on, off, alpha, livetime, 3.0, backend=backend)
        decay_likelihood(on, off, alpha, livetime, templates, backend=backend)
    fixed, template = np.full(50, 0.2), np.linspace(0.01, 1.0, 50)
    for rows in (1, 1000):
        fit_norm_rows(rng.poisson(fixed, (rows, 50)).astype(float), fixed, template, backend)


def warmup(array_backend=None, report=None):
    """Run every kernel family once so that numba compiles (or loads) it now.

    Parameters
    ----------
    array_backend : {None, "auto", "numpy", "numba", "cuda"}, optional
        Backend to warm (default: ``$RTAFAST_BACKEND`` or ``auto``).
    report : callable, optional
        Called as ``report(step, seconds)`` after each step of :data:`WARMUP_STEPS`.

    Returns
    -------
    dict
        Seconds per step, in :data:`WARMUP_STEPS` order.
    """
    from rtafast_kernels import resolve_backend

    backend = resolve_backend(array_backend).name
    times = {}
    dataset = None
    for step in WARMUP_STEPS:
        start = time.perf_counter()
        if step == "simulate":
            dataset = _tiny_dataset()
        else:
            {
                "bin events": _bin_events,
                "flux-only fit": _fit,
                "TS map": _ts_map,
                "excess map": _excess_map,
                "on/off and ring": _onoff_and_ring,
                "time domain and trials": _time_domain_and_trials,
            }[step](dataset, backend)
        times[step] = time.perf_counter() - start
        if report is not None:
            report(step, times[step])
    return times
