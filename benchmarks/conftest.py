"""Benchmark fixtures and the ratio report.

Every benchmark times rtafast and gammapy on the same data in the same run. Each
timed test puts ``capability``, ``size``, ``impl`` (``"rtafast"`` or ``"gammapy"``)
and ``backend`` into ``benchmark.extra_info`` (and optionally machine-readable size
``params``, e.g. ``n_events=10**6, n_bins=400_000``, the keyword arguments of the
capability's work function in :mod:`rtafast_devtools.bench_floors`; without them the size
label is parsed there to compute the physical floors); at the end of the session the
median of each rtafast entry is divided into the gammapy median of the same
capability and size, and the table is printed (and written as JSON to
``$RTAFAST_BENCH_JSON`` if set). A benchmark may also put a one-line ``check`` into
``benchmark.extra_info`` (what its agreement check compared, what it could not): it is
carried into its row and printed under the table. Under ``--benchmark-disable`` (CI) each benchmark
runs once as a test and no table is printed.
"""

import json
import os
import statistics
from pathlib import Path

import pytest


def _rows(config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return []
    medians, params, checks = {}, {}, {}
    for bench in session.benchmarks:
        info = bench.extra_info
        if "capability" not in info or bench.stats is None:
            continue
        try:
            median = bench.stats.median
        except statistics.StatisticsError:  # a benchmark that failed before its rounds
            continue
        key = (info["capability"], info["size"])
        entry = (info["impl"], info.get("backend", ""))
        # a call doing ``units`` of the work (a batch of trials) counts per unit
        medians.setdefault(key, {})[entry] = median / info.get("units", 1)
        if info.get("params"):
            params[key] = info["params"]
        if info.get("check"):
            checks[key + entry] = info["check"]
    rows = []
    for (capability, size), entries in sorted(medians.items()):
        reference = entries.get(("gammapy", ""))
        for (impl, backend_name), median in sorted(entries.items()):
            if impl == "gammapy":
                continue
            row = {
                "capability": capability,
                "size": size,
                "backend": backend_name,
                "rtafast_median_s": median,
                "gammapy_median_s": reference,
                "ratio": reference / median if reference else None,
            }
            if (capability, size) in params:
                row["params"] = params[(capability, size)]
            if (capability, size, impl, backend_name) in checks:
                row["check"] = checks[(capability, size, impl, backend_name)]
            rows.append(row)
    return rows


def pytest_terminal_summary(terminalreporter, config):
    rows = _rows(config)
    if not rows:
        return
    write = terminalreporter.write_line
    widths = [
        max(len(title), *(len(row[field]) for row in rows))
        for title, field in (("capability", "capability"), ("size", "size"), ("rtafast", "backend"))
    ]
    write("")
    write("rtafast vs gammapy (medians, same run)")
    head = [f"{t:<{w}}" for t, w in zip(("capability", "size", "rtafast"), widths, strict=True)]
    write(" ".join(head) + f" {'median':>11} {'gammapy':>11} {'ratio':>8}")
    for row in rows:
        ratio = f"{row['ratio']:7.1f}x" if row["ratio"] else "     n/a"
        gammapy = f"{row['gammapy_median_s'] * 1e3:9.2f}ms" if row["gammapy_median_s"] else "n/a"
        cells = [row["capability"], row["size"], row["backend"]]
        text = " ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True))
        write(f"{text} {row['rtafast_median_s'] * 1e3:9.3f}ms {gammapy:>11} {ratio}")
    checked = [row for row in rows if row.get("check")]
    if checked:
        write("")
        write("agreement checks recorded by the benchmarks")
        for row in checked:
            write(f"{row['capability']} {row['size']} {row['backend']}: {row['check']}")
    path = os.environ.get("RTAFAST_BENCH_JSON")
    if path:
        Path(path).write_text(json.dumps(rows, indent=2))


@pytest.fixture
def record(benchmark):
    """Tag a benchmark with its capability, size, implementation and backend.

    ``record(capability, size, impl, backend_name="", **params)``: ``params`` are
    optional machine-readable sizes (numbers), the keyword arguments of the
    capability's work function in :mod:`rtafast_devtools.bench_floors` (e.g.
    ``n_events``/``n_bins``; ``ny, nx, ky, kx, n_energy``); rows without them get
    their sizes parsed from ``size``. ``units``: how many units of the work one timed
    call does (a batch of trials): the row's median is per unit.
    """

    def tag(capability, size, impl, backend_name="", units=1, **params):
        benchmark.extra_info.update(
            capability=capability, size=size, impl=impl, backend=backend_name, units=units
        )
        if params:
            benchmark.extra_info["params"] = params
        benchmark.group = f"{capability} {size}"

    return tag
