"""The contract of the conformance suite: what may differ from gammapy's own tests, and why.

Three lists, each entry with its reason. Nothing else is relaxed: every assertion on
a value (TS, norm, flux, errors, counts, maps) of gammapy's test modules runs as
gammapy wrote it.

* ``RELAXATIONS``: single source lines of gammapy's test modules replaced by ``pass``.
  None at present (rtafast's TS map runs gammapy's brentq step for step, so its
  ``niter``, ``success`` and rtol=0.01 answers are gammapy's).
* ``MISSING_DATA``: tests that fail with gammapy itself because a gammapy-data file is
  not distributed here; skipped with that reason while the file is absent (they run
  as soon as it is there).
* ``KNOWN_FAILURES``: tests that fail with rtafast and pass with gammapy, not relaxed:
  they run as strict expected failures (an unexpected pass fails the suite, so the
  entry is removed when fixed). Each names the measurement; see
  docs/gammapy-differences.md. These are open defects, not accepted differences
  (none at present).
* ``DELEGATIONS``: why a drop-in may hand a call to gammapy (the reason codes of
  :func:`rtafast.dispatch.record`); a delegation with any other code fails the suite.
"""

from typing import NamedTuple

__all__ = [
    "GAMMAPY_MODULES",
    "RELAXATIONS",
    "MISSING_DATA",
    "KNOWN_FAILURES",
    "DELEGATIONS",
    "Relaxation",
]

#: gammapy's test modules run by the suite: one test file each in this folder.
GAMMAPY_MODULES = {
    "test_gammapy_ts.py": "gammapy.estimators.map.tests.test_ts",
    "test_gammapy_excess.py": "gammapy.estimators.map.tests.test_excess",
    "test_gammapy_fit.py": "gammapy.modeling.tests.test_fit",
    "test_gammapy_map_maker.py": "gammapy.makers.tests.test_map",
    "test_gammapy_ring.py": "gammapy.makers.background.tests.test_ring",
    "test_gammapy_reflected.py": "gammapy.makers.background.tests.test_reflected",
    "test_gammapy_lightcurve.py": "gammapy.estimators.points.tests.test_lightcurve",
}


class Relaxation(NamedTuple):
    """A source line of a gammapy test module that the suite does not run.

    ``count`` is how many times the line occurs in the module (all are relaxed); a
    different count fails the load, so a changed gammapy test is noticed.
    """

    module: str
    line: str
    reason: str
    count: int = 1


#: None: rtafast's TSMapEstimator runs gammapy's brentq step for step (niter, success
#: and the rtol=0.01 answers are gammapy's).
RELAXATIONS: list[Relaxation] = []

#: test function name -> ($GAMMAPY_DATA-relative path that is missing, what it is).
MISSING_DATA = {
    # gammapy/estimators/map/tests/test_ts.py
    "test_with_TemplateSpatialModel": ("cta-1dc-gc/cta-1dc-gc.fits.gz", "CTA 1DC GC dataset"),
    "test_excess_map_compatibility": ("cta-1dc-gc/cta-1dc-gc.fits.gz", "CTA 1DC GC dataset"),
    # gammapy/makers/tests/test_map.py
    "test_minimal_datastore": ("tests/minimal_datastore", "a minimal DL3 data store"),
    "test_dataset_hawc": ("hawc/crab_events_pass4", "HAWC pass 4 Crab event lists"),
    "test_make_background_2d": ("tests/irf/bkg_2d_full_example.fits", "a Background2D file"),
    "test_map_dataset_maker_swgo": ("tests/format/swgo", "SWGO DL3 files"),
    # gammapy/estimators/points/tests/test_lightcurve.py
    "test_lightcurve_to_time_series": (
        "catalogs/fermi/gll_psc_v20.fit.gz",
        "Fermi-LAT 4FGL catalogue (its light curves)",
    ),
}

#: test function name -> why it fails with rtafast (measured).
KNOWN_FAILURES: dict[str, str] = {}

#: reason code -> why the fast path cannot apply.
DELEGATIONS = {
    # Fit.run / Fit.optimize
    "non-linear-parameter": (
        "a free parameter is not a linear norm of a SkyModel/FoVBackgroundModel (a spectral "
        "index, a position, a custom model's parameter): the Cash statistic is not quadratic "
        "in its norms alone, so gammapy's optimizer fits it"
    ),
    "unsupported-dataset": (
        "Fit: the dataset is neither a MapDataset/SpectrumDataset with the Cash statistic "
        "nor an on/off dataset with WStat (a custom Dataset or statistic): its statistic is "
        "the dataset's own code. "
        "ExcessMapEstimator: another Dataset class, no counts, on/off maps with units"
    ),
    "wstat-not-one-norm": (
        "Fit with on/off (WStat) datasets: several free norms, a free background norm, or "
        "frozen sky models predicting counts in an on/off dataset; the fast path profiles "
        "WStat's background for one free source norm only"
    ),
    "store-trace": "store_trace=True asks for the optimizer's trace; the Newton solve has none",
    # TSMapEstimator.run
    "selection-stat-scan": "the per-pixel likelihood profile over a norm grid is gammapy's loop",
    "selection-sensitivity": "the per-pixel sensitivity search is gammapy's loop",
    # ExcessMapEstimator.run, MapDatasetMaker.run
    "unsupported-geometry": "HEALPix or region geometry, or axes other than energy",
    # ReflectedRegionsBackgroundMaker.run
    "point-like-rad-max": (
        "point-like IRFs with RAD_MAX or a PointSkyRegion on region: the off regions' size "
        "follows RAD_MAX per energy (gammapy's make_counts_off_rad_max)"
    ),
    "non-circle-region": (
        "an on or off region that is not a CircleSkyRegion (or an exclusion region), or a "
        "region WCS that is not TAN with square pixels: the kernel tests pixel circles"
    ),
    # ReflectedRegionsFinder.run, WobbleRegionsFinder.run
    "region-shape": (
        "the on region is not a circle (the wobble finder: not a circle or a point): "
        "ellipses, rectangles, annuli and polygons rotate through gammapy's regions code"
    ),
    "region-frame": "the on region's frame is neither ICRS nor Galactic",
    "exclusion-mask-geometry": (
        "the exclusion mask has non-spatial axes or an irregular geometry: gammapy's reprojection"
    ),
    "coordinates": (
        "astropy would read the rotation centre differently (not a single coordinate, no "
        "longitude/latitude): gammapy's code"
    ),
    # RingBackgroundMaker.run, AdaptiveRingBackgroundMaker.run
    "ring-unsupported-dataset": (
        "RingBackgroundMaker: a dataset class other than MapDataset (an on/off dataset's "
        "npred_background is WStat's own estimate): gammapy's run"
    ),
    "adaptive-ring": "AdaptiveRingBackgroundMaker: the cube of ring sizes is gammapy's code",
    # LightCurveEstimator.run
    "lightcurve-reoptimize": (
        "reoptimize=True refits the other models' free parameters with the norm in every bin: "
        "gammapy's optimizer"
    ),
    "lightcurve-parallel": "n_jobs > 1 or ray actors: gammapy's process pool or actors",
    "lightcurve-energy-groups": (
        "sum_over_energy_groups=True (datasets summed to images) or energy_edges=None"
    ),
    "lightcurve-priors": "a model parameter has a prior: gammapy's statistic adds it",
    "lightcurve-unsupported-dataset": (
        "a dataset class other than MapDataset/SpectrumDataset (Cash) and their on/off "
        "classes (WStat), another stat_type, a weighted mask, no counts/GTI, Cash and WStat "
        "datasets mixed, or energy axes that differ"
    ),
    "lightcurve-onoff-other-models": (
        "an on/off dataset with sky models besides the source: WStat with a fixed signal "
        "part is not in fit_flux_norm"
    ),
    # MapDatasetMaker.run
    "not-an-observation": (
        "the 'observation' is a MapDataset (gammapy's way of interpolating a dataset onto new "
        "geometries): there are no events to bin, only gammapy's map interpolation"
    ),
}
