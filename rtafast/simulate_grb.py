"""Simulated GRB afterglow observations, written as DL3 files (the demo's data).

:func:`simulate_grb_observations` draws the events of a GRB afterglow — a point source
with a power-law spectrum times a power-law decay (:class:`~rtafast.models.
PowerLawDecayTemporalModel`) switching on ``onset`` after T0 — and of the IRF background
with gammapy's ``MapDatasetEventSampler``, on the CTAO prod5 IRF from the shared data when
present (``$RTAFAST_DATA`` or ``../shared/data``: ``cta-caldb/``) and otherwise on the
analytic CTA-like IRF of :func:`rtafast.simulate.analytic_cta_irfs`. Each observation is a
DL3 file with its IRF HDUs, read by gammapy (``Observation.read``,
``DataStore.from_events_files``) and by the pipeline like real data: event times in TT
seconds since MJDREF (CTA's 2000-01-01 12:00 TT), time-sorted, GTI, pointing, live time
and dead time keywords.

The IRF look-up and the DL3 writing live in :mod:`rtafast.simulate_grb_irf`
(``PROD5_IRF_FILES`` and :func:`find_prod5_irf` are re-exported here).
"""

import json
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord
from astropy.time import Time

from .simulate_grb_irf import (
    PROD5_IRF_FILES,
    _irf_hdus,
    _resolve_irf,
    _write_observation,
    find_prod5_irf,
)

__all__ = [
    "DEFAULT_AMPLITUDE",
    "GRB_POSITION",
    "GRB_T0",
    "PROD5_IRF_FILES",
    "TIME_REFERENCE",
    "find_prod5_irf",
    "simulate_grb_observations",
]

#: Default burst position (ICRS): GRB 190114C's.
GRB_POSITION = SkyCoord(54.51, -26.94, unit="deg", frame="icrs")
#: Default T0 (TT): GRB 190114C's trigger, 2019-01-14 20:57:03.19 UTC.
GRB_T0 = Time("2019-01-14T20:57:03.19", scale="utc").tt
#: Default amplitude: dN/dE at 1 TeV at the onset. With prod5 South, ~7 source events in
#: 1-10 TeV in the first 10 s after the onset: >= 5 sigma there in 95 % of seeds, in all
#: by the second 10 s (docs/grb-model.md has the numbers).
DEFAULT_AMPLITUDE = "1e-10 cm-2 s-1 TeV-1"
#: Reference time of the event times (CTA's MJDREF: 51544.5 TT).
TIME_REFERENCE = Time(51544.5, format="mjd", scale="tt")
#: Wobble directions of consecutive runs (position angle of the pointing from the source).
_WOBBLE_ANGLES_DEG = (0.0, 180.0, 90.0, 270.0)
_FLUX_UNIT = "cm-2 s-1 TeV-1"


def _quantity(value, unit, name, minimum=None, strict=True):
    """``value`` (str, Quantity, or number in ``unit``) as a Quantity in ``unit``, checked."""
    try:
        quantity = u.Quantity(value, unit) if not isinstance(value, str) else u.Quantity(value)
        quantity = quantity.to(unit)
    except (TypeError, ValueError, u.UnitsError) as error:
        raise ValueError(f"{name} must be a quantity in {unit}, got {value!r}") from error
    if quantity.isscalar is False or not np.isfinite(quantity.value):
        raise ValueError(f"{name} must be a finite scalar quantity, got {value!r}")
    if minimum is not None:
        too_small = quantity.value <= minimum if strict else quantity.value < minimum
        if too_small:
            relation = ">" if strict else ">="
            raise ValueError(f"{name} must be {relation} {minimum} {unit}, got {value!r}")
    return quantity


def _finite(value, name):
    """``value`` as a finite float, or a ValueError naming ``name``."""
    try:
        number = float(value)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a number, got {value!r}") from error
    if not np.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def _burst_time(t0):
    """T0 as a TT Time (ISO strings are read as TT)."""
    if t0 is None:
        return GRB_T0
    if isinstance(t0, Time):
        return t0.tt
    try:
        return Time(t0, scale="tt")
    except ValueError as error:
        raise ValueError(f"t0 must be an astropy Time or an ISO time (TT), got {t0!r}") from error


def _grb_models(position, t0, onset, alpha, amplitude, index, dataset_name):
    """The afterglow (power law x power-law decay, ``tau = onset``) and the FoV background."""
    from gammapy.modeling.models import (
        FoVBackgroundModel,
        Models,
        PointSpatialModel,
        PowerLawSpectralModel,
        SkyModel,
    )

    from .models import PowerLawDecayTemporalModel

    decay = PowerLawDecayTemporalModel(t0=t0, tau=onset, t_start=onset, alpha=alpha)
    grb = SkyModel(
        spectral_model=PowerLawSpectralModel(index=index, amplitude=amplitude, reference="1 TeV"),
        spatial_model=PointSpatialModel.from_position(position),
        temporal_model=decay,
        name="grb",
    )
    return Models([grb, FoVBackgroundModel(dataset_name=dataset_name)])


def _sampling_dataset(observation, energy_range, width, binsz):
    """The reduced dataset the sampler draws from: around the pointing, 20 energy bins/decade.

    The reconstructed-energy edges are multiples of 1/20 decade (aligned with any
    10, 5 or 4 bins per decade the analysis uses), so the sampler's flat-in-log draws
    within a bin do not bias the analysis' bins.
    """
    from gammapy.datasets import MapDataset
    from gammapy.makers import MapDatasetMaker
    from gammapy.maps import MapAxis, WcsGeom

    log_min, log_max = 20 * np.log10([e.to_value("TeV") for e in energy_range])
    edges = 10 ** (np.arange(np.floor(log_min + 1e-9), np.ceil(log_max - 1e-9) + 1) / 20)
    energy = MapAxis.from_edges(edges, unit="TeV", name="energy", interp="log")
    energy_true = MapAxis.from_energy_bounds(
        edges[0] / 2,
        edges[-1] * 2,
        int(np.ceil(10 * np.log10(4 * edges[-1] / edges[0]))),
        unit="TeV",
        name="energy_true",
    )
    migra = MapAxis.from_bounds(0.3, 3, 60, unit="", name="migra", node_type="edges")
    geom = WcsGeom.create(
        skydir=observation.get_pointing_icrs(observation.tmid),
        binsz=binsz,
        width=(width, width),
        frame="icrs",
        axes=[energy],
    )
    empty = MapDataset.create(
        geom, energy_axis_true=energy_true, migra_axis=migra, name=f"obs-{observation.obs_id}"
    )
    maker = MapDatasetMaker(selection=["exposure", "background", "psf", "edisp"])
    return maker.run(empty, observation)


def _exact_point_source_sampler(random_state):
    """gammapy's event sampler, drawing point sources at their exact true position.

    gammapy draws a point source's true positions from its predicted-counts map, so
    they spread over the pixels around it (a uniform +-1 pixel smear added to the PSF);
    this one puts them at the model position before the PSF is drawn.
    """
    from gammapy.datasets import MapDatasetEventSampler
    from gammapy.modeling.models import PointSpatialModel

    class _ExactPointSourceSampler(MapDatasetEventSampler):
        def sample_sources(self, dataset, psf_update=False):
            table = super().sample_sources(dataset, psf_update=psf_update)
            if len(table) == 0 or "MC_ID" not in table.colnames:
                return table
            for mc_id in np.unique(table["MC_ID"]):
                model = dataset.models[table.meta[f"MMN{mc_id:05d}"]]
                if isinstance(model.spatial_model, PointSpatialModel):
                    rows = table["MC_ID"] == mc_id
                    position = model.spatial_model.position.icrs
                    table["RA_TRUE"][rows] = position.ra.deg
                    table["DEC_TRUE"][rows] = position.dec.deg
            return table

    return _ExactPointSourceSampler(random_state=random_state)


def _simulate_run(obs_id, pointing, tstart, duration, irfs, location, models, arguments, rng):
    """One observation with its sampled events, and its number of source events."""
    from astropy.utils import iers
    from gammapy.data import FixedPointingInfo, Observation

    observation = Observation.create(
        pointing=FixedPointingInfo(fixed_icrs=pointing),
        location=location,
        obs_id=obs_id,
        tstart=(tstart - TIME_REFERENCE).to("s"),
        tstop=(tstart - TIME_REFERENCE).to("s") + duration,
        irfs=irfs,
        deadtime_fraction=arguments["deadtime_fraction"],
        reference_time=TIME_REFERENCE,
    )
    dataset = _sampling_dataset(
        observation, arguments["energy_range"], arguments["width"], arguments["binsz"]
    )
    dataset.models = models
    # the sampler's pointing AltAz needs UT1: never download IERS tables (offline use)
    with iers.conf.set_temp("auto_download", False), iers.conf.set_temp("auto_max_age", None):
        events = _exact_point_source_sampler(rng).run(dataset, observation)
    observation = observation.copy(in_memory=True, events=events)
    n_source = int(np.sum(events.table["MC_ID"] > 0))
    return observation, n_source


def simulate_grb_observations(
    outdir,
    seed=0,
    irf="auto",
    duration="30 min",
    onset="30 s",
    alpha=1.6,
    amplitude=DEFAULT_AMPLITUDE,
    index=2.2,
    position=None,
    pointing_offset="0.7 deg",
    n_runs=1,
    t0=None,
    energy_range=("0.5 TeV", "20 TeV"),
    width="7 deg",
    binsz="0.1 deg",
    deadtime_fraction=0.02,
):
    """Simulate a GRB afterglow over the IRF background and write DL3 event files.

    The afterglow is ``amplitude * (E / 1 TeV) ** -index * ((t - t0) / onset) ** -alpha``
    for ``t > t0 + onset`` (zero before): ``amplitude`` is the flux at the onset. Runs
    of ``duration`` follow each other from T0, in wobble mode ``pointing_offset`` from
    the burst (north, south, east, west in turn). Events are drawn by gammapy's
    ``MapDatasetEventSampler`` (point sources at their exact true position).

    Parameters
    ----------
    outdir : str or `~pathlib.Path`
        Folder for the event files (created); files are overwritten.
    seed : int
        Random seed: the same seed gives the same events.
    irf : str
        ``"auto"`` (prod5 South when the shared data have it, else analytic),
        ``"prod5-south"``, ``"prod5-north"``, ``"analytic"``
        (:func:`rtafast.simulate.analytic_cta_irfs`), or the path of a GADF IRF file.
    duration : str or `~astropy.units.Quantity`
        Duration of each run (time, > 0).
    onset : str or `~astropy.units.Quantity`
        Time from T0 to the afterglow's onset (> 0; also the decay's ``tau``).
    alpha : float
        Decay index.
    amplitude : str or `~astropy.units.Quantity` or float
        dN/dE at 1 TeV at the onset (cm-2 s-1 TeV-1 when a number; > 0).
    index : float
        Spectral index.
    position : `~astropy.coordinates.SkyCoord`, optional
        Burst position; default :data:`GRB_POSITION`.
    pointing_offset : str or `~astropy.units.Quantity`
        Wobble offset of the pointing from the burst (angle, >= 0).
    n_runs : int
        Number of consecutive runs (>= 1), one file each.
    t0 : `~astropy.time.Time` or str, optional
        Burst time T0 (strings are TT); default :data:`GRB_T0`.
    energy_range : tuple of (str or `~astropy.units.Quantity`)
        Reconstructed-energy range of the events, widened outward to multiples of 1/20
        decade (default: 0.45-22 TeV); true energies from half the minimum to twice the
        maximum.
    width, binsz : str or `~astropy.units.Quantity`
        Width and pixel size of the sampling maps around the pointing (angle).
    deadtime_fraction : float
        Dead-time fraction in [0, 1): live time = (1 - it) x duration.

    Returns
    -------
    files : list of `~pathlib.Path`
        One DL3 file per run (events, GTI, IRFs), in time order.
    truth : dict
        ``ra``, ``dec`` (deg), ``t0`` (ISO, TT), ``t0_mjd_tt``, ``onset``, ``tau``,
        ``duration`` (s), ``alpha``, ``amplitude`` (cm-2 s-1 TeV-1 at 1 TeV at the
        onset), ``reference_energy`` (TeV), ``index``, ``irf`` (name), ``irf_file``,
        ``pointings`` (per run: ``obs_id``, ``ra``, ``dec``, ``tstart``, ``tstop`` ISO TT,
        ``n_source_events``, ``n_events``), ``seed``, ``files``. Also written to
        ``outdir/truth.json``.

    Raises
    ------
    ValueError
        On a bad argument (naming it), or when the onset is after the last run.
    """
    arguments = _checked_arguments(
        seed=seed,
        duration=duration,
        onset=onset,
        alpha=alpha,
        amplitude=amplitude,
        index=index,
        position=position,
        pointing_offset=pointing_offset,
        n_runs=n_runs,
        t0=t0,
        energy_range=energy_range,
        width=width,
        binsz=binsz,
        deadtime_fraction=deadtime_fraction,
    )
    irfs, irf_name, irf_path, site = _resolve_irf(irf)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    files, pointings = _simulate_runs(outdir, irfs, _irf_hdus(irfs, irf_path), site, arguments)
    truth = _truth(arguments, irf_name, irf_path, pointings, files)
    (outdir / "truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return files, truth


def _checked_arguments(**arguments):
    """The arguments of :func:`simulate_grb_observations` as quantities, checked (ValueError)."""
    checked = {
        "duration": _quantity(arguments["duration"], "s", "duration", minimum=0),
        "onset": _quantity(arguments["onset"], "s", "onset", minimum=0),
        "amplitude": _quantity(arguments["amplitude"], _FLUX_UNIT, "amplitude", minimum=0),
        "offset": _quantity(
            arguments["pointing_offset"], "deg", "pointing_offset", minimum=0, strict=False
        ),
        "alpha": _finite(arguments["alpha"], "alpha"),
        "index": _finite(arguments["index"], "index"),
        "width": _quantity(arguments["width"], "deg", "width", minimum=0),
        "binsz": _quantity(arguments["binsz"], "deg", "binsz", minimum=0),
        "deadtime_fraction": _finite(arguments["deadtime_fraction"], "deadtime_fraction"),
        "t0": _burst_time(arguments["t0"]),
    }
    for name in ("n_runs", "seed"):
        value = arguments[name]
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
        checked[name] = int(value)
    if checked["n_runs"] < 1:
        raise ValueError(f"n_runs must be an integer >= 1, got {arguments['n_runs']!r}")
    end = checked["n_runs"] * checked["duration"]
    if checked["onset"] >= end:
        raise ValueError(
            f"onset ({checked['onset']}) must be before the end of the observations ({end})"
        )
    if not 0 <= checked["deadtime_fraction"] < 1:
        raise ValueError(
            f"deadtime_fraction must be in [0, 1), got {arguments['deadtime_fraction']!r}"
        )
    energy_range = arguments["energy_range"]
    if len(energy_range) != 2:
        raise ValueError(f"energy_range must be (min, max), got {energy_range!r}")
    checked["energy_range"] = tuple(
        _quantity(energy, "TeV", "energy_range", minimum=0) for energy in energy_range
    )
    if checked["energy_range"][0] >= checked["energy_range"][1]:
        raise ValueError(f"energy_range must be (min, max) with min < max, got {energy_range!r}")
    position = GRB_POSITION if arguments["position"] is None else arguments["position"]
    if not isinstance(position, SkyCoord) or not position.isscalar:
        raise ValueError(f"position must be a scalar SkyCoord, got {position!r}")
    checked["position"] = position.icrs
    return checked


def _simulate_runs(outdir, irfs, irf_hdus, site, arguments):
    """Simulate and write the runs; their files and their truth rows."""
    from gammapy.data import observatory_locations

    location = observatory_locations[f"ctao_{site}"]
    position, duration, t0 = arguments["position"], arguments["duration"], arguments["t0"]
    rng = np.random.RandomState(arguments["seed"])
    files, pointings = [], []
    for run in range(arguments["n_runs"]):
        obs_id = run + 1
        angle = _WOBBLE_ANGLES_DEG[run % len(_WOBBLE_ANGLES_DEG)] * u.deg
        pointing = position.directional_offset_by(angle, arguments["offset"])
        tstart = t0 + run * duration
        models = _grb_models(
            position,
            t0,
            arguments["onset"],
            arguments["alpha"],
            arguments["amplitude"],
            arguments["index"],
            f"obs-{obs_id}",
        )
        observation, n_source = _simulate_run(
            obs_id, pointing, tstart, duration, irfs, location, models, arguments, rng
        )
        path = outdir / f"grb_obs_{obs_id:06d}.fits"
        _write_observation(observation, irf_hdus, path)
        files.append(path)
        pointings.append(
            {
                "obs_id": obs_id,
                "ra": float(pointing.ra.deg),
                "dec": float(pointing.dec.deg),
                "tstart": tstart.isot,
                "tstop": (tstart + duration).isot,
                "n_source_events": n_source,
                "n_events": len(observation.events.table),
            }
        )
    return files, pointings


def _truth(arguments, irf_name, irf_path, pointings, files):
    """The truth dict of a simulation (plain JSON types; units in ``units``)."""
    return {
        "ra": float(arguments["position"].ra.deg),
        "dec": float(arguments["position"].dec.deg),
        "t0": arguments["t0"].isot,
        "t0_mjd_tt": float(arguments["t0"].mjd),
        "time_scale": "tt",
        "onset": float(arguments["onset"].value),
        "tau": float(arguments["onset"].value),
        "duration": float(arguments["duration"].value),
        "alpha": arguments["alpha"],
        "amplitude": float(arguments["amplitude"].value),
        "reference_energy": 1.0,
        "index": arguments["index"],
        "irf": irf_name,
        "irf_file": None if irf_path is None else str(irf_path),
        "pointing_offset": float(arguments["offset"].value),
        "pointings": pointings,
        "seed": arguments["seed"],
        "files": [str(path) for path in files],
        "units": {
            "ra": "deg",
            "dec": "deg",
            "onset": "s",
            "tau": "s",
            "duration": "s",
            "amplitude": "cm-2 s-1 TeV-1",
            "reference_energy": "TeV",
            "pointing_offset": "deg",
        },
    }
