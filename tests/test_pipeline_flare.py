"""The alert pipeline on real data: the PKS 2155-304 flare (H.E.S.S. DL3 DR1 run 33787).

The first 3 minutes of the run, replayed as 10 s bunches through the blind TS-map search
on the benchmark's cube (5 deg x 5 deg, 0.02 deg, 10 energy bins): the pipeline must
alert on PKS 2155-304 in the first windows, with the source inside the 95 % radius, and
on nothing else; its sqrt(TS) and flux at the target in every window must agree with
gammapy's own analysis of the same window (``Observation.select_time`` →
``MapDatasetMaker`` → ``SafeMaskMaker`` offset-max → ``Fit`` of the same flux-only
point source, :mod:`rtafast_devtools.gammapy_window`).

Tolerances: the pipeline fits the target on a 0.1-pixel grid (at most 0.0014 deg from
the catalogue position, ``rtafast.pipeline.measure_fit``); gammapy at the exact
position. Measured: flux within 1.1e-3 relative, its error within 1e-3 and sqrt(TS)
within 2e-6 over the
windows compared; asserted 2e-3 and 0.02.
"""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.table import Table

from rtafast.pipeline.geometry import map_center
from rtafast.pipeline.run import AlertPipeline
from rtafast_devtools.gammapy_window import gammapy_window_analysis
from tests._pks2155_flare_helpers import PKS2155, RUN, flare_config, target_row

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def config(hess_datastore):
    return flare_config(hess_datastore, "selection.time_stop=180 s")


@pytest.fixture(scope="module")
def replay(config, tmp_path_factory):
    outdir = tmp_path_factory.mktemp("flare") / "out"
    summary = AlertPipeline(config, outdir, say=lambda line: None).run()
    return summary, Table.read(outdir / "results.ecsv")


def test_alerts_on_pks2155_first_and_on_nothing_else(replay):
    summary, table = replay
    assert summary.n_windows == 18
    assert summary.alerts
    # the first alert comes with the first window whose target fit passes 5 sigma (the
    # flare's counts reach it 70-90 s into the run), written in that window
    target = table[table["candidate"] == 0]
    first_significant = target[target["sqrt_ts"] >= 5][0]
    first = summary.alerts[0]
    assert first.window_stop == pytest.approx(first_significant["window_stop"])
    assert first.window_stop <= 120
    for alert in summary.alerts:
        separation = SkyCoord(alert.ra, alert.dec, unit="deg").separation(PKS2155).deg
        assert separation <= max(alert.r95, 0.01), alert  # the target row: r95 0 (fixed)
    # no other source above 5 sigma anywhere in the field
    far = SkyCoord(table["ra"], table["dec"], unit="deg").separation(PKS2155).deg > 0.3
    assert not np.any(table["sqrt_ts"][far] >= 5)
    # the blind search finds the flare too, localised around it
    blind = table[(table["candidate"] > 0) & ~far]
    assert len(blind) > 0
    inside = SkyCoord(blind["ra"], blind["dec"], unit="deg").separation(PKS2155).deg
    assert np.mean(inside <= blind["r95"]) >= 0.8


@pytest.mark.parametrize("window", [5, 11, 17])
def test_target_sqrt_ts_and_flux_agree_with_gammapy(replay, config, hess_datastore, window):
    _, table = replay
    row = target_row(table, window)
    observation = hess_datastore.obs(RUN)
    trigger = observation.tstart  # stream.trigger_time null: the run's start
    start = trigger + row["window_start"] * table["window_start"].unit
    stop = trigger + row["window_stop"] * table["window_stop"].unit
    center = map_center(config, observation.get_pointing_icrs(observation.tmid))
    reference = gammapy_window_analysis(
        observation, start, stop, config, center, positions=[(PKS2155.ra.deg, PKS2155.dec.deg)]
    )
    expected = reference.fits[(PKS2155.ra.deg, PKS2155.dec.deg)]
    assert row["sqrt_ts"] == pytest.approx(expected["sqrt_ts"], abs=0.02)
    assert row["flux"] == pytest.approx(expected["flux"], rel=2e-3)
    assert row["flux_err"] == pytest.approx(expected["flux_err"], rel=2e-3)
