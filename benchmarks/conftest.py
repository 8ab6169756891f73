"""Benchmark fixtures and the ratio report.

Every benchmark times rtafast and gammapy on the same data in the same run. Each
timed test puts ``capability``, ``size``, ``impl`` (``"rtafast"`` or ``"gammapy"``)
and ``backend`` into ``benchmark.extra_info`` (and optionally machine-readable size
``params``, e.g. ``n_events=10**6, n_bins=400_000``, the keyword arguments of the
capability's work function in :mod:`rtafast.bench_floors`; without them the size
label is parsed there to compute the physical floors); at the end of the session the
median of each rtafast entry is divided into the gammapy median of the same
capability and size, and the table is printed (and written as JSON to
``$RTAFAST_BENCH_JSON`` if set). Under ``--benchmark-disable`` (CI) each benchmark
runs once as a test and no table is printed.
"""

import json
import os
from pathlib import Path

import pytest


def _rows(config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled:
        return []
    medians, params = {}, {}
    for bench in session.benchmarks:
        info = bench.extra_info
        if "capability" not in info or bench.stats is None:
            continue
        key = (info["capability"], info["size"])
        medians.setdefault(key, {})[(info["impl"], info.get("backend", ""))] = bench.stats.median
        if info.get("params"):
            params[key] = info["params"]
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
            rows.append(row)
    return rows


def pytest_terminal_summary(terminalreporter, config):
    rows = _rows(config)
    if not rows:
        return
    write = terminalreporter.write_line
    write("")
    write("rtafast vs gammapy (medians, same run)")
    write(
        f"{'capability':<28} {'size':<24} {'backend':<8} {'rtafast':>11} {'gammapy':>11} "
        f"{'ratio':>8}"
    )
    for row in rows:
        ratio = f"{row['ratio']:7.1f}x" if row["ratio"] else "     n/a"
        gammapy = f"{row['gammapy_median_s'] * 1e3:9.2f}ms" if row["gammapy_median_s"] else "n/a"
        write(
            f"{row['capability']:<28} {row['size']:<24} {row['backend']:<8} "
            f"{row['rtafast_median_s'] * 1e3:9.3f}ms {gammapy:>11} {ratio}"
        )
    path = os.environ.get("RTAFAST_BENCH_JSON")
    if path:
        Path(path).write_text(json.dumps(rows, indent=2))


@pytest.fixture
def record(benchmark):
    """Tag a benchmark with its capability, size, implementation and backend.

    ``record(capability, size, impl, backend_name="", **params)``: ``params`` are
    optional machine-readable sizes (numbers), the keyword arguments of the
    capability's work function in :mod:`rtafast.bench_floors` (e.g.
    ``n_events``/``n_bins``; ``ny, nx, ky, kx, n_energy``); rows without them get
    their sizes parsed from ``size``.
    """

    def tag(capability, size, impl, backend_name="", **params):
        benchmark.extra_info.update(
            capability=capability, size=size, impl=impl, backend=backend_name
        )
        if params:
            benchmark.extra_info["params"] = params
        benchmark.group = f"{capability} {size}"

    return tag
