"""``rtafast demo``: a simulated GRB afterglow through the alert pipeline.

The afterglow (power-law spectrum, flux decaying as ((t - t0)/tau)^-alpha from an onset
tens of seconds after T0) and the background are drawn with gammapy's event sampler on
the CTAO prod5 IRF when the shared data are present, else on the analytic CTA-like IRF
the package builds (:mod:`rtafast.simulate_grb`), written as DL3 files, and replayed by
the pipeline as 10 s bunches with a blind TS-map search: it prints each alert with the
distance of the alert's position to the truth, and the latency table.
"""

import logging
import tempfile
from pathlib import Path

import astropy.units as u

__all__ = ["demo_config", "run_grb_demo"]


def demo_config(event_files, truth, backend=None, overrides=()):
    """The pipeline config of the demo for the simulated files (blind search).

    Parameters
    ----------
    event_files : list of str
    truth : dict
        :func:`rtafast.simulate_grb.simulate_grb_observations`'s truth (``t0``).
    backend : str, optional
    overrides : sequence of str
        ``section.key=value`` overrides, applied last.
    """
    from .config import load_config

    base = [
        f"input.events={[str(path) for path in event_files]}",
        "target.name=GRB (simulated)",
        f"stream.trigger_time={truth['t0'] or 'null'}",
        "stream.bunch=10 s",
        "geometry.width=4 deg",
        "geometry.energy_nbins=6",
    ]
    if backend is not None:
        base.append(f"backend={backend}")
    return load_config(None, [*base, *overrides])


def run_grb_demo(
    seed=0, backend=None, duration="10 min", onset="30 s", alpha=1.6, outdir=None, overrides=()
):
    """Simulate, run the pipeline, print the alerts and the latency table; exit code."""
    from rtafast_kernels.jit import COMPILE_LOGGER

    from ..simulate_grb import simulate_grb_observations
    from .report import print_report
    from .run import AlertPipeline

    logging.getLogger(COMPILE_LOGGER).setLevel(logging.INFO)  # say when kernels compile
    demo_config(["not-yet-simulated.fits"], {"t0": None}, backend, overrides)  # bad keys: now
    outdir = Path(outdir) if outdir is not None else Path(tempfile.mkdtemp(prefix="rtafast-demo-"))
    print(
        f"Simulating a GRB afterglow (decay index {alpha}, onset {onset} after T0, "
        f"{duration} of observation, seed {seed})..."
    )
    files, truth = simulate_grb_observations(
        outdir / "simulated", seed=seed, duration=duration, onset=onset, alpha=alpha
    )
    print(
        f"  IRF: {truth['irf']}; true position RA {truth['ra']:.3f} Dec {truth['dec']:+.3f} deg; "
        f"events in {', '.join(str(f) for f in files)}"
    )
    config = demo_config(files, truth, backend=backend, overrides=overrides)
    pipeline = AlertPipeline(config, outdir / "pipeline", progress=False, voevent_role="test")
    print("Running the alert pipeline (10 s bunches, cumulative window, blind TS-map search)...")
    summary = pipeline.run()
    from astropy.coordinates import SkyCoord

    truth_position = SkyCoord(truth["ra"] * u.deg, truth["dec"] * u.deg)
    print_report(summary, pipeline, profile=True, truth=truth_position)
    return 0
