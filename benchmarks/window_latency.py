"""Per-window latency of the real-time core, stage by stage (not a pytest benchmark).

Replays one H.E.S.S. DL3 DR1 run as bunches into a cumulative window and times,
for every window, adding the bunch, taking the window (``current_window()``: its
counts stay on the backend), its TS map and its excess map (both given the window);
prints p50/p95/p99/max of each stage and of bunch in -> TS map out (the first
window, which computes the IRF maps, compiles and fills the caches, is reported
apart). With ``--via-dataset`` the second stage is the window's gammapy dataset
(``dataset()``) and the maps are made from it, the drop-in way. The alert
pipeline's target size is the default: 5 deg x 5 deg, 0.02 deg, 10 energy bins.

With ``--alternate`` both run on every window, in turns, with their own estimators
and caches: the same load for both, which a shared machine does not give two runs.

Usage: ``python benchmarks/window_latency.py [--run 33787] [--bunch 10] [--windows 120]
[--width 5] [--backend numba] [--via-dataset | --alternate]`` (needs the shared data,
see README).
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
from rtafast.estimators.excess_inputs import ExcessInputCache  # noqa: E402
from rtafast.estimators.ts_inputs import TSInputCache  # noqa: E402
from rtafast.stream import BunchAccumulator  # noqa: E402
from rtafast_devtools.reference_data import find_data_dir  # noqa: E402

STAGES = ("add bunch", "window", "TS map", "excess map")
#: How a window reaches the maps: the window itself, or its gammapy dataset.
PATHS = {"window": "current_window", "dataset()": "dataset"}


def _geometry(run, width_deg):
    """The run's observation, the counts geometry around its pointing, true energies."""
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
    return observation, geom, energy_true


def replay(run, bunch_s, n_windows, width_deg, backend, paths=("window",)):
    """Per-window stage times (s), shape (n_windows, len(paths), 4), of a cumulative replay.

    For each path of :data:`PATHS` (its own estimators and caches) the second stage
    takes the window (``current_window()``) or its dataset (``dataset()``) and the
    maps are made from it; with several paths each window runs them all, in turns
    first (the same bunch added once: its time is repeated in every path's row).
    """
    observation, geom, energy_true = _geometry(run, width_deg)
    accumulator = BunchAccumulator(geom, energy_true, array_backend=backend)
    estimators = [
        (
            getattr(accumulator, PATHS[path]),
            TSMapEstimator(kernel_width=0.3 * u.deg, array_backend=backend, cache=TSInputCache()),
            ExcessMapEstimator(correlation_radius="0.1 deg", cache=ExcessInputCache()),
        )
        for path in paths
    ]
    start = observation.gti.time_start[0]
    times = np.zeros((n_windows, len(paths), 4))
    for index in range(n_windows):
        a, b = start + index * bunch_s * u.s, start + (index + 1) * bunch_s * u.s
        events = observation.events.select_time(Time([a, b]))
        t0 = time.perf_counter()
        accumulator.add(events, observation, (a, b))
        times[index, :, 0] = time.perf_counter() - t0
        order = np.roll(np.arange(len(paths)), index)
        for path in order:
            take, ts_map, excess_map = estimators[path]
            t1 = time.perf_counter()
            window = take()
            t2 = time.perf_counter()
            ts_map.run(window)
            t3 = time.perf_counter()
            excess_map.run(window)
            times[index, path, 1:] = (t2 - t1, t3 - t2, time.perf_counter() - t3)
    return times


def _report(label, times):
    """Print the first window and the percentiles of the others (times in ms)."""
    stages = ("add bunch", label) + STAGES[2:]
    first, rest = times[0], times[1:]
    text = ", ".join(f"{s} {t:.0f} ms" for s, t in zip(stages, first, strict=True))
    print(f"first window: {text}")
    columns = list(rest.T) + [rest[:, :3].sum(axis=1)]
    total = f"add+{label.rstrip('()')}+TS"
    for name, column in zip(stages + (total,), columns, strict=True):
        p50, p95, p99 = np.percentile(column, [50, 95, 99])
        print(
            f"{name:<16} p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f}  max {column.max():6.1f} ms"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=int, default=33787)
    parser.add_argument("--bunch", type=float, default=10.0, help="bunch length, s")
    parser.add_argument("--windows", type=int, default=120)
    parser.add_argument("--width", type=float, default=5.0, help="map width, deg")
    parser.add_argument("--backend", default="numba")
    parser.add_argument(
        "--via-dataset", action="store_true", help="time dataset() and maps of the dataset"
    )
    parser.add_argument(
        "--alternate",
        action="store_true",
        help="both paths on every window, in turns (the same load for both)",
    )
    args = parser.parse_args(argv)
    if args.alternate:
        paths = ("window", "dataset()")
    else:
        paths = ("dataset()",) if args.via_dataset else ("window",)
    times = replay(args.run, args.bunch, args.windows, args.width, args.backend, paths) * 1e3
    for index, path in enumerate(paths):
        if len(paths) > 1:
            print(f"-- {path}")
        _report(path, times[:, index])


if __name__ == "__main__":
    main()
