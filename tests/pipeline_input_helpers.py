"""Helpers of the pipeline input tests: configurations, small DL3 files, gammapy references.

Shared by ``tests/test_pipeline_inputs.py`` (bunches, the watched directory) and
``tests/test_pipeline_inputs_bad.py`` (bad input); their fixtures call these. The synthetic
files hold EVENTS and GTI HDUs (TT seconds since ``REFERENCE``, pointed at ``POINTING``);
the package's analytic IRFs go in a separate IRF file.
"""

import astropy.units as u
import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.time import Time

from rtafast.pipeline.config import load_config
from rtafast.simulate import analytic_cta_irfs
from rtafast_devtools.reference_data import DataNotFoundError, find_data_dir

__all__ = [
    "ENERGY_RANGE",
    "MJDREF",
    "POINTING",
    "REFERENCE",
    "analytic_irf_hdus",
    "bunch_intervals",
    "event_seconds",
    "file_config",
    "gammapy_selection",
    "hess_data_dir",
    "make_config",
    "random_events",
    "seconds_since_reference",
    "union_of_bunches",
    "write_events_file",
    "write_gapped_events_file",
    "write_irf_file",
]

ENERGY_RANGE = u.Quantity([1, 10], "TeV")  # the config's default selection

#: Reference time of the synthetic files (2026-01-01 00:00 TT) and their pointing.
MJDREF = 61041
REFERENCE = Time(MJDREF, format="mjd", scale="tt")
POINTING = (83.6, 22.0)


def make_config(*overrides):
    return load_config(None, overrides=list(overrides))


def seconds_since_reference(times):
    """Seconds since the synthetic files' reference time."""
    return (times - REFERENCE).to_value("s")


# -- synthetic DL3 files ---------------------------------------------------------------------


def _time_header(**extra):
    header = {"MJDREFI": MJDREF, "MJDREFF": 0.0, "TIMESYS": "TT", "TIMEUNIT": "s"}
    return {"TIMEREF": "LOCAL", **header, **extra}


def random_events(n=400, start=0.0, stop=100.0, seed=1):
    """Columns of ``n`` events: uniform times, energies log-uniform 0.5-20 TeV, ~0.7 deg spread."""
    rng = np.random.default_rng(seed)
    return {
        "TIME": np.sort(rng.uniform(start, stop, n)),
        "RA": POINTING[0] + rng.normal(0, 0.7, n),
        "DEC": POINTING[1] + rng.normal(0, 0.7, n),
        "ENERGY": 10 ** rng.uniform(np.log10(0.5), np.log10(20), n),
    }


def write_events_file(path, columns, gti=((0.0, 100.0),), obs_id=1, drop=(), extra_hdus=()):
    """A DL3 file: EVENTS (``columns``, minus ``drop``) and GTI HDUs, and ``extra_hdus``."""
    units = {"TIME": "s", "RA": "deg", "DEC": "deg", "ENERGY": "TeV"}
    table = Table({k: np.asarray(v) for k, v in columns.items() if k not in drop})
    for name in table.colnames:
        table[name].unit = units.get(name)
    starts, stops = np.array(gti, dtype=float).T
    header = _time_header(
        OBS_ID=obs_id,
        TSTART=starts[0],
        TSTOP=stops[-1],
        ONTIME=float(np.sum(stops - starts)),
        LIVETIME=0.95 * float(np.sum(stops - starts)),
        DEADC=0.95,
        RA_PNT=POINTING[0],
        DEC_PNT=POINTING[1],
        OBS_MODE="POINTING",
        GEOLON=-70.3,
        GEOLAT=-24.6,
        ALTITUDE=2100.0,
    )
    events = fits.table_to_hdu(table)
    events.name = "EVENTS"
    events.header.update(header)
    hdus = [fits.PrimaryHDU(), events]
    if "GTI" not in drop:
        gti_hdu = fits.table_to_hdu(Table({"START": starts, "STOP": stops}))
        gti_hdu.name = "GTI"
        gti_hdu.header.update(_time_header())
        hdus.append(gti_hdu)
    fits.HDUList(hdus + list(extra_hdus)).writeto(path, overwrite=True)
    return path


def analytic_irf_hdus():
    """The analytic CTA-like IRFs as FITS HDUs, by gammapy name."""
    return {name: irf.to_table_hdu() for name, irf in analytic_cta_irfs().items()}


def write_irf_file(path, irf_hdus):
    """An IRF file: a primary HDU and ``irf_hdus`` (a dict of HDUs)."""
    fits.HDUList([fits.PrimaryHDU(), *irf_hdus.values()]).writeto(path)
    return path


def write_gapped_events_file(path):
    """400 events in 0-100 s; GTI [0, 50) and [60, 100): a gap of 10 s."""
    return write_events_file(path, random_events(), gti=((0.0, 50.0), (60.0, 100.0)))


def file_config(paths, irf_file, *overrides):
    return make_config(
        f"input.events={[str(p) for p in paths]}", f"input.irf_file={irf_file}", *overrides
    )


def gammapy_selection(observation, energy_range=ENERGY_RANGE):
    """gammapy's events of the observation's GTIs in the energy range, by time."""
    events = observation.events.select_energy(energy_range)
    gti = observation.gti
    parts = [
        events.select_time((start, stop))
        for start, stop in zip(gti.time_start, gti.time_stop, strict=True)
    ]
    return np.concatenate([event_seconds(p) for p in parts])


def event_seconds(events):
    return (events.time - events.time_ref).to_value("s")


def union_of_bunches(bunches):
    """TIME (s since each run's reference) of all bunches' events, concatenated."""
    if not bunches:
        return np.zeros(0)
    return np.concatenate([event_seconds(b.events) for b in bunches])


def hess_data_dir():
    """The H.E.S.S. DL3 DR1 directory; skips the test without ``../shared/data``."""
    try:
        return find_data_dir("hess-dl3-dr1") / "hess-dl3-dr1"
    except DataNotFoundError as error:
        pytest.skip(f"real data not available: {error}")


def bunch_intervals(bunches):
    """``(start, stop)`` of each bunch, s since ``REFERENCE`` (rounded to 1 us)."""
    return [
        (round(seconds_since_reference(b.start), 6), round(seconds_since_reference(b.stop), 6))
        for b in bunches
    ]
