"""``rtafast bench``: run the benchmark suite and write its table, JSON and plot.

The suite is the pytest-benchmark files in the source tree's ``benchmarks/``
folder: each times rtafast and gammapy on the same data in the same run. This
module runs it in a subprocess, collects the rows its ``conftest.py`` writes
(``$RTAFAST_BENCH_JSON``), adds the device each backend ran on, and renders them.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rtafast_kernels import available_backends, resolve_backend

__all__ = ["find_benchmarks", "run_suite", "markdown_table", "plot_rows"]


def find_benchmarks():
    """The ``benchmarks/`` folder of the source tree rtafast was installed from.

    Raises
    ------
    FileNotFoundError
        If rtafast runs from an installed wheel without the source tree.
    """
    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    if not (folder / "conftest.py").is_file():
        raise FileNotFoundError(
            f"no benchmarks/ folder next to the rtafast package ({folder}): rtafast bench "
            "runs from a source checkout (pip install -e .)"
        )
    return folder


def _device(backend_label):
    name = backend_label.split()[0] if backend_label else ""
    if name in available_backends() and available_backends()[name][0]:
        return resolve_backend(name).device_name()
    return resolve_backend("numpy").device_name()


def run_suite(backends=None, quick=False, extra_args=()):
    """Run the benchmarks and return their rows (list of dicts).

    Parameters
    ----------
    backends : list of str, optional
        rtafast backends to time (default: every available one).
    quick : bool
        Fewer rounds and the small sizes only (``RTAFAST_BENCH_QUICK=1``).
    extra_args : sequence of str
        More pytest arguments.
    """
    folder = find_benchmarks()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        env = dict(os.environ, RTAFAST_BENCH_JSON=str(out))
        if quick:
            env["RTAFAST_BENCH_QUICK"] = "1"
        if backends:
            env["RTAFAST_BACKENDS"] = ",".join(backends)
        command = [
            sys.executable,
            "-m",
            "pytest",
            str(folder),
            "--benchmark-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *extra_args,
        ]
        completed = subprocess.run(command, cwd=folder.parent, env=env, check=False)
        if completed.returncode not in (0, 5) or not out.is_file():
            raise RuntimeError(f"the benchmark suite failed (pytest exit {completed.returncode})")
        rows = json.loads(out.read_text())
    for row in rows:
        row["device"] = _device(row["backend"])
    return rows


def markdown_table(rows):
    """The rows as a Markdown table (medians in ms, ratio to gammapy)."""
    lines = [
        "| capability | size | rtafast | device | rtafast median | gammapy median | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        gammapy = row["gammapy_median_s"]
        ratio = f"{row['ratio']:.1f}×" if row["ratio"] else "n/a"
        lines.append(
            f"| {row['capability']} | {row['size']} | {row['backend']} | {row['device']} | "
            f"{row['rtafast_median_s'] * 1e3:.3f} ms | "
            f"{'n/a' if gammapy is None else f'{gammapy * 1e3:.2f} ms'} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def plot_rows(rows, path):
    """Bar chart of rtafast and gammapy medians per capability and size (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['capability']}, {r['backend']}\n{r['size']}" for r in rows]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows)), 6))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r["rtafast_median_s"] * 1e3 for r in rows], 0.4, label="rtafast")
    ax.bar(
        [i + 0.2 for i in x],
        [(r["gammapy_median_s"] or 0) * 1e3 for r in rows],
        0.4,
        label="gammapy",
    )
    ax.set_yscale("log")
    ax.set_ylabel("median time [ms]")
    ax.set_xticks(list(x), labels, fontsize=7, rotation=40, ha="right")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
