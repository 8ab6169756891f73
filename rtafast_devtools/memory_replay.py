"""Resident memory over a long replay of the alert pipeline (issue 13's flat-memory check).

Runs ``rtafast run CONFIG`` as a child process (``--set`` overrides passed on), samples
its resident set size (``/proc/PID/status`` VmRSS) every ``--interval`` s and, at the
end, maps the samples onto window indices with the run's ``latency.csv`` (each
window's wall-clock end is the cumulative sum of the window totals after the setup):
prints the mean RSS of the first and the last tenth of the windows and their ratio.

Usage: ``python -m rtafast_devtools.memory_replay CONFIG OUTDIR [--interval 1]
[--set KEY=VALUE ...]`` (Linux).
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

__all__ = ["main", "rss_mib"]


def rss_mib(pid):
    """Resident set size of a process, MiB (None once it has ended)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except FileNotFoundError:
        return None
    return None


def _sample(command, interval):
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    start = time.perf_counter()
    samples = []
    while child.poll() is None:
        rss = rss_mib(child.pid)
        if rss is not None:
            samples.append((time.perf_counter() - start, rss))
        time.sleep(interval)
    return child.returncode, np.array(samples), time.perf_counter() - start


def _window_tenths(latency_csv, samples, wall):
    """Mean RSS during each tenth of the windows (by their end times, counted back from
    the end of the run: the process start and setup come first): (n windows, means)."""
    from astropy.table import Table

    table = Table.read(latency_csv, format="ascii.csv")
    totals = np.asarray(table["total_ms"], float) / 1e3
    ends = wall - (totals[::-1].cumsum()[::-1] - totals)  # approximate end of each window
    n = len(totals)
    bounds = np.linspace(0, n, 11).astype(int)
    means = []
    for low, high in zip(bounds[:-1], bounds[1:], strict=True):
        inside = (samples[:, 0] >= ends[low] - totals[low]) & (samples[:, 0] <= ends[high - 1])
        means.append(samples[inside, 1].mean())
    return n, means


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("outdir")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    command = [sys.executable, "-m", "rtafast.cli", "run", args.config, "-o", args.outdir,
               "--no-progress"]
    for override in args.overrides:
        command += ["--set", override]
    code, samples, wall = _sample(command, args.interval)
    if code != 0:
        print(f"rtafast run failed (exit {code})")
        return code
    n, means = _window_tenths(Path(args.outdir) / "latency.csv", samples, wall)
    first, last = means[0], means[-1]
    print(
        f"{n} windows, {wall:.0f} s, {len(samples)} samples; RSS first tenth {first:.0f} MiB, "
        f"last tenth {last:.0f} MiB, growth {100 * (last / first - 1):+.1f} %; "
        f"peak {samples[:, 1].max():.0f} MiB; by tenth: "
        + " ".join(f"{mean:.0f}" for mean in means)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
