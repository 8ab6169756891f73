"""Calibration of the pipeline's error circles on simulated point sources near threshold.

``python -m rtafast_devtools.localisation_trials --n 500 --seed 1`` simulates ``n``
windows of a point source at a random sub-pixel position with an expected √TS drawn
uniformly in [5, 10], detects and localises it as the pipeline does
(:func:`rtafast.pipeline.detect.detect`, ``tsmap`` method by default), and reports the
fraction of trials whose true position falls inside the 68 % and 95 % error circles,
with binomial errors, and the distribution of the measured √TS.

Each trial: one fixed `gammapy.datasets.MapDataset` from :func:`rtafast.simulate.
simulate_dataset` (the analytic CTA-like IRF, 2°×2° at 0.02°, 4 energy bins in
1–10 TeV, 10 min, pointing 0.5° from the map centre); the source model (power law of
the fit's index) moved and scaled, ``npred`` of source plus background, Poisson counts
(a seeded generator), the TS map with rtafast's `TSMapEstimator` on a copy of the
dataset without the source model, then the peak finding and localisation. The
candidate nearest the truth is scored (the brightest, unless a fluctuation elsewhere
is brighter); trials without a candidate at or above the threshold are counted.
"""

import argparse
import time
from dataclasses import dataclass, field

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

__all__ = ["TrialResults", "default_config", "main", "report", "run_trials"]

#: Expected √TS of the simulated sources (uniform in this range).
SQRT_TS_RANGE = (5.0, 10.0)
#: Largest offset of a simulated source from the map centre, deg.
MAX_OFFSET_DEG = 0.5


def default_config(method="tsmap", backend="numba", index=2.5):
    """The pipeline's default config with the detection method, backend and index set."""
    from rtafast.pipeline.config import load_config

    return load_config(
        None, overrides=[f"detection.method={method}", f"backend={backend}", f"fit.index={index}"]
    )


@dataclass
class TrialResults:
    """Per-trial outcome of :func:`run_trials` (arrays over the detected trials)."""

    n_trials: int
    n_undetected: int = 0
    n_not_localised: int = 0
    expected_sqrt_ts: list = field(default_factory=list)
    sqrt_ts: list = field(default_factory=list)
    distance: list = field(default_factory=list)
    r68: list = field(default_factory=list)
    r95: list = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def n_detected(self):
        """Trials with a candidate."""
        return len(self.distance)

    def fraction(self, containment, selection=None):
        """Fraction (and its binomial error) of detected trials with the truth inside r68
        (``containment=0.68``) or r95 (``0.95``); ``selection``: a boolean mask."""
        radius = np.asarray(self.r68 if containment == 0.68 else self.r95)
        inside = np.asarray(self.distance) <= radius
        if selection is not None:
            inside = inside[selection]
        n = inside.size
        if n == 0:
            return float("nan"), float("nan"), 0
        p = inside.mean()
        return float(p), float(np.sqrt(p * (1 - p) / n)), n


def _simulation(seed, index, irf_file=None):
    """The fixed dataset, the source model and the TS-map dataset (no source model).

    The models are evaluated in gammapy's ``"global"`` mode (``gammapy.datasets.map.
    EVALUATION_MODE`` while they are set): the PSF kernel is made once for the map, not
    again at every move of the source (the same ``npred`` within 1e-6 for this
    position-independent PSF, ~10× faster).
    """
    import gammapy.datasets.map as gammapy_map_datasets

    from rtafast.simulate import simulate_dataset

    dataset = simulate_dataset(
        livetime="10 min", width_deg=2.0, binsz_deg=0.02, n_energy=4, index=index,
        amplitude="1e-12 cm-2 s-1 TeV-1", random_state=seed, irf_file=irf_file,
    )
    search = dataset.copy(name="search")
    search.models = None
    mode = gammapy_map_datasets.EVALUATION_MODE
    gammapy_map_datasets.EVALUATION_MODE = "global"
    try:
        dataset.models = dataset.models.copy()
    finally:
        gammapy_map_datasets.EVALUATION_MODE = mode
    return dataset, dataset.models["source"], search


def _asimov_sqrt_ts(dataset, source, search, estimators, amplitude):
    """√TS at the source pixel of the Asimov dataset (counts = npred) for an amplitude."""
    from rtafast.pipeline.detect import significance_images

    source.spectral_model.amplitude.value = amplitude
    search.counts.data = dataset.npred().data
    significance, _, _ = significance_images(search, estimators)
    return float(np.nanmax(significance.data))


def _amplitude_for(dataset, source, search, estimators):
    """A function: expected √TS -> amplitude (a power law through two Asimov points)."""
    amplitudes = np.array([3e-13, 3e-12])
    values = np.array([_asimov_sqrt_ts(dataset, source, search, estimators, a) for a in amplitudes])
    slope = np.log(values[1] / values[0]) / np.log(amplitudes[1] / amplitudes[0])

    def amplitude(sqrt_ts):
        return amplitudes[0] * (sqrt_ts / values[0]) ** (1.0 / slope)

    return amplitude


def run_trials(
    n,
    seed=1,
    method="tsmap",
    backend="numba",
    systematic_deg=None,
    index=2.5,
    fit_half_width=1,
    source_index=None,
    irf_file=None,
    surface="localiser",
    localiser_width=None,
    localiser_summed=False,
):
    """Simulate, detect and localise ``n`` point sources (see the module's notes).

    Parameters
    ----------
    n : int
        Number of trials.
    seed : int
        Seed of the positions, fluxes and Poisson draws.
    method : {"tsmap", "lima"}
    backend : str
        rtafast backend of the estimator.
    systematic_deg : float, optional
        Localisation systematic σ, deg; default: the pipeline's.
    index : float
        Spectral index of the detection and localisation kernels (``fit.index``).
    fit_half_width : int
        Half size of the patch the localisation paraboloid is fitted to, pixels.
    source_index : float, optional
        Spectral index of the simulated sources; default ``index``.
    irf_file : path, optional
        A GADF IRF file (e.g. CTAO prod5) instead of the analytic IRF.
    surface : {"localiser", "detection"}
        The TS surface localised on: the pipeline's (its localiser: one kernel per energy
        bin, 0.8° wide), or the detection's TS map (``tsmap`` only: gammapy's summed
        kernel, ``detection.kernel_width``), for comparison.
    localiser_width : float, optional
        Width of the localiser's kernel, deg (default: the pipeline's).
    localiser_summed : bool
        Localise on a TS map of gammapy's energy-summed kernel (for comparison).

    Returns
    -------
    TrialResults
    """
    from rtafast.pipeline.detect import DetectionEstimators, detect

    if n < 1:
        raise ValueError(f"--n must be >= 1, got {n}")
    start = time.perf_counter()
    config = default_config(method=method, backend=backend, index=index)
    estimators = DetectionEstimators.from_config(
        config, systematic_deg=systematic_deg, fit_half_width=fit_half_width
    )
    if surface == "detection":
        if method != "tsmap":
            raise ValueError("--surface detection needs --method tsmap")
        estimators.localiser = estimators.estimator
    elif surface != "localiser":
        raise ValueError(f"--surface must be 'localiser' or 'detection', got {surface!r}")
    if surface == "localiser":
        if localiser_width is not None:
            estimators.localiser.kernel_width = localiser_width * u.deg
        estimators.localiser.sum_over_energy_groups = bool(localiser_summed)
    source_index = index if source_index is None else source_index
    dataset, source, search = _simulation(seed, source_index, irf_file)
    reference = estimators
    if method != "tsmap":  # fluxes are set by the expected √TS of the TS map
        reference = DetectionEstimators.from_config(default_config(backend=backend, index=index))
    amplitude_for = _amplitude_for(dataset, source, search, reference)
    center = dataset.counts.geom.center_skydir.icrs
    rng = np.random.default_rng(seed)
    results = TrialResults(n_trials=n)
    for _ in range(n):
        expected = rng.uniform(*SQRT_TS_RANGE)
        offset = MAX_OFFSET_DEG * np.sqrt(rng.uniform()) * u.deg
        truth = center.directional_offset_by(rng.uniform(0, 360) * u.deg, offset)
        source.spatial_model.lon_0.value = truth.ra.deg
        source.spatial_model.lat_0.value = truth.dec.deg
        source.spectral_model.amplitude.value = amplitude_for(expected)
        search.counts.data = rng.poisson(dataset.npred().data).astype(float)
        detection = detect(search, config, estimators)
        _score(results, detection, truth, expected)
    results.wall_s = time.perf_counter() - start
    return results


def _score(results, detection, truth, expected):
    if not detection.candidates:
        results.n_undetected += 1
        return
    positions = SkyCoord(
        [c.ra for c in detection.candidates], [c.dec for c in detection.candidates], unit="deg"
    )
    distances = truth.separation(positions).deg
    nearest = int(np.argmin(distances))
    candidate = detection.candidates[nearest]
    results.n_not_localised += not candidate.localised
    results.expected_sqrt_ts.append(expected)
    results.sqrt_ts.append(candidate.sqrt_ts)
    results.distance.append(float(distances[nearest]))
    results.r68.append(candidate.r68)
    results.r95.append(candidate.r95)


def report(results):
    """A plain-text summary of :class:`TrialResults` (fractions, √TS distribution)."""
    lines = [
        f"trials: {results.n_trials}, detected: {results.n_detected}, "
        f"undetected: {results.n_undetected}, not localised: {results.n_not_localised}, "
        f"wall: {results.wall_s:.1f} s",
    ]
    sqrt_ts = np.asarray(results.sqrt_ts)
    bins = [
        ("all detected", None),
        ("sqrt_ts 5-10", (sqrt_ts >= 5) & (sqrt_ts < 10)),
        ("sqrt_ts 5-7.5", (sqrt_ts >= 5) & (sqrt_ts < 7.5)),
        ("sqrt_ts 7.5-10", (sqrt_ts >= 7.5) & (sqrt_ts < 10)),
        ("sqrt_ts >= 10", sqrt_ts >= 10),
    ]
    lines.append(f"{'selection':<16}{'n':>6}{'in r68':>18}{'in r95':>18}")
    for name, selection in bins:
        p68, e68, count = results.fraction(0.68, selection)
        p95, e95, _ = results.fraction(0.95, selection)
        lines.append(f"{name:<16}{count:>6}{p68:>11.3f} ± {e68:.3f}{p95:>11.3f} ± {e95:.3f}")
    if sqrt_ts.size:
        q = np.percentile(sqrt_ts, [0, 5, 25, 50, 75, 95, 100])
        lines.append("measured sqrt_ts percentiles 0/5/25/50/75/95/100: " + " ".join(
            f"{v:.2f}" for v in q))
        lines.append(
            f"r68 median {np.median(results.r68):.4f} deg, r95 median "
            f"{np.median(results.r95):.4f} deg, distance median "
            f"{np.median(results.distance):.4f} deg"
        )
    return "\n".join(lines)


def main(argv=None):
    """Command line (see the module's notes)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="number of trials")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--method", choices=("tsmap", "lima"), default="tsmap")
    parser.add_argument("--backend", default="numba", help="rtafast backend")
    parser.add_argument("--index", type=float, default=2.5, help="kernels' spectral index")
    parser.add_argument(
        "--source-index", type=float, default=None,
        help="simulated sources' spectral index (default: --index)",
    )
    parser.add_argument("--irf-file", default=None, help="GADF IRF file (default: analytic)")
    parser.add_argument(
        "--surface", choices=("localiser", "detection"), default="localiser",
        help="TS surface to localise on (detection: the detection's TS map, for comparison)",
    )
    parser.add_argument(
        "--localiser-width", type=float, default=None,
        help="width of the localiser's kernel, deg (default: the pipeline's)",
    )
    parser.add_argument(
        "--localiser-summed", action="store_true",
        help="localiser with gammapy's energy-summed kernel (for comparison)",
    )
    parser.add_argument(
        "--systematic", type=float, default=None,
        help="localisation systematic sigma, deg (default: the pipeline's)",
    )
    parser.add_argument(
        "--fit-half-width", type=int, default=1,
        help="half size of the patch the paraboloid is fitted to, pixels (1: 3x3)",
    )
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error(f"--n must be >= 1, got {args.n}")
    if args.fit_half_width < 1:
        parser.error(f"--fit-half-width must be >= 1, got {args.fit_half_width}")
    results = run_trials(
        args.n, seed=args.seed, method=args.method, backend=args.backend,
        systematic_deg=args.systematic, index=args.index, fit_half_width=args.fit_half_width,
        source_index=args.source_index, irf_file=args.irf_file, surface=args.surface,
        localiser_width=args.localiser_width, localiser_summed=args.localiser_summed,
    )
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
