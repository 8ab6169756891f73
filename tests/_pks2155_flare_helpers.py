"""The PKS 2155-304 flare run shared by tests/test_pipeline_flare.py and
benchmarks/test_bench_pipeline.py.

H.E.S.S. DL3 DR1 run 33787 (the July 2006 flare), replayed as 10 s bunches with
PKS 2155-304 as the pipeline's target (flux-only fit, index 3.4).
"""

from astropy.coordinates import SkyCoord

from rtafast.pipeline.config import load_config

RUN = 33787
PKS2155 = SkyCoord(329.71694, -30.2255, unit="deg")


def flare_config(hess_datastore, *more):
    """The pipeline's configuration for the flare run, with the ``more`` overrides."""
    return load_config(
        None,
        [
            f"input.datastore={hess_datastore.hdu_table.base_dir}",
            f"input.obs_ids=[{RUN}]",
            "target.name=PKS 2155-304",
            f"target.ra={PKS2155.ra.deg}",
            f"target.dec={PKS2155.dec.deg}",
            "fit.index=3.4",
            "stream.bunch=10 s",
            *more,
        ],
    )


def target_row(table, window):
    """The target's row (candidate 0) of ``window`` in a results table."""
    return table[(table["candidate"] == 0) & (table["window"] == window)][0]
