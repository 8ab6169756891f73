"""Per-window latency of the real-time core, stage by stage (not a pytest benchmark).

Replays one H.E.S.S. DL3 DR1 run as bunches into a cumulative window and times,
for every window, adding the bunch, ``dataset()``, the TS map and the excess map;
prints p50/p95/p99/max of each stage (the first window, which computes the IRF
maps, compiles and fills the caches, is reported apart). The alert pipeline's
target size is the default: 5 deg x 5 deg, 0.02 deg, 10 energy bins.

Usage: ``python benchmarks/window_latency.py [--run 33787] [--bunch 10] [--windows 120]
[--width 5] [--backend numba]`` (needs the shared data, see README).
"""

import argparse
import sys
import time
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.time import Time
from gammapy.data import DataStore
from gammapy.maps import MapAxis, WcsGeom

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout's rtafast_devtools

from rtafast.estimators import ExcessMapEstimator, TSMapEstimator  # noqa: E402
from rtafast.stream import BunchAccumulator  # noqa: E402
from rtafast_devtools.reference_data import find_data_dir  # noqa: E402

STAGES = ("add bunch", "dataset()", "TS map", "excess map")


def replay(run, bunch_s, n_windows, width_deg, backend):
    """Per-window stage times (s), shape (n_windows, 4), of a cumulative replay."""
    root = find_data_dir("hess-dl3-dr1") / "hess-dl3-dr1"
    observation = DataStore.from_dir(root).get_observations([run])[0]
    energy = MapAxis.from_energy_bounds(0.5, 50, 10, unit="TeV")
    energy_true = MapAxis.from_energy_bounds(0.3, 100, 15, unit="TeV", name="energy_true")
    geom = WcsGeom.create(
        skydir=observation.get_pointing_icrs(observation.tmid),
        binsz=0.02,
        width=width_deg,
        axes=[energy],
    )
    accumulator = BunchAccumulator(geom, energy_true, array_backend=backend)
    ts_map = TSMapEstimator(kernel_width=0.3 * u.deg, array_backend=backend)
    excess_map = ExcessMapEstimator(correlation_radius="0.1 deg")
    start = observation.gti.time_start[0]
    times = []
    for index in range(n_windows):
        a, b = start + index * bunch_s * u.s, start + (index + 1) * bunch_s * u.s
        events = observation.events.select_time(Time([a, b]))
        t0 = time.perf_counter()
        accumulator.add(events, observation, (a, b))
        t1 = time.perf_counter()
        dataset = accumulator.dataset()
        t2 = time.perf_counter()
        ts_map.run(dataset)
        t3 = time.perf_counter()
        excess_map.run(dataset)
        t4 = time.perf_counter()
        times.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3))
    return np.array(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=int, default=33787)
    parser.add_argument("--bunch", type=float, default=10.0, help="bunch length, s")
    parser.add_argument("--windows", type=int, default=120)
    parser.add_argument("--width", type=float, default=5.0, help="map width, deg")
    parser.add_argument("--backend", default="numba")
    args = parser.parse_args(argv)
    times = replay(args.run, args.bunch, args.windows, args.width, args.backend) * 1e3
    first, rest = times[0], times[1:]
    stages = ", ".join(f"{s} {t:.0f} ms" for s, t in zip(STAGES, first, strict=True))
    print(f"first window: {stages}")
    columns = list(rest.T) + [rest[:, :3].sum(axis=1)]
    for name, column in zip(STAGES + ("add+dataset+TS",), columns, strict=True):
        p50, p95, p99 = np.percentile(column, [50, 95, 99])
        print(
            f"{name:<16} p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}  max {column.max():6.1f} ms"
        )


if __name__ == "__main__":
    main()
