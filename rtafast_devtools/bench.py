"""``rtafast bench``: run the benchmark suite and write its table, JSON and plot.

The suite is the pytest-benchmark files in the source tree's ``benchmarks/``
folder: each times rtafast and gammapy on the same data in the same run. This
module runs it in a subprocess, collects the rows its ``conftest.py`` writes
(``$RTAFAST_BENCH_JSON``), adds the device each backend ran on and the physical
floors of each problem (:mod:`rtafast_devtools.bench_floors`), and renders them: a Markdown
table and a plot of time against problem size per capability.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rtafast.cli import BenchmarkSuiteError  # raised here, reported by the CLI
from rtafast_kernels import available_backends, resolve_backend

from .bench_floors import add_floors

__all__ = [
    "BenchmarkSuiteError",
    "OutputPathError",
    "check_output_path",
    "find_benchmarks",
    "markdown_table",
    "plot_rows",
    "run_suite",
    "suite_environment",
    "write_text_atomic",
]


class OutputPathError(ValueError):
    """An output file cannot be written where it was asked for."""


def _plot_formats():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    return FigureCanvasAgg(Figure()).get_supported_filetypes()


def _plot_format(path):
    import matplotlib

    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix or matplotlib.rcParams["savefig.format"]


def check_output_path(path, option="output", plot=False):
    """Check, before any work, that ``path`` can be written; return it as a `Path`.

    Its folder must exist and be writable (checked by creating and removing a
    temporary file there), ``path`` must not be a folder, and for a plot its
    extension must be a format matplotlib writes.

    Raises
    ------
    OutputPathError
        Naming ``option`` and the path.
    """
    path = Path(path).expanduser()
    folder = path.parent
    if not str(path.name) or path.name in (".", ".."):
        raise OutputPathError(f"{option} {path}: not a file name")
    if path.is_dir():
        raise OutputPathError(f"{option} {path}: is a folder, not a file")
    if not folder.exists():
        raise OutputPathError(f"{option} {path}: folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputPathError(f"{option} {path}: {folder} is not a folder")
    try:
        handle, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".check")
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputPathError(f"{option} {path}: cannot write in {folder} ({reason})") from error
    os.close(handle)
    os.unlink(probe)
    if plot:
        formats = _plot_formats()
        fmt = _plot_format(path)
        if fmt not in formats:
            raise OutputPathError(
                f"{option} {path}: unknown plot format {fmt!r}; use one of "
                f"{', '.join('.' + f for f in sorted(formats))}"
            )
    return path


def _umask():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_atomic(path, write, suffix=None):
    """Call ``write(temporary path)`` in ``path``'s folder, then rename it to ``path``.

    A reader never sees a half-written ``path``; on error the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    handle, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=suffix or ".tmp"
    )
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` atomically (temporary file in its folder, renamed)."""
    _write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


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
            f"no benchmarks/ folder next to the rtafast_devtools package ({folder}): "
            "rtafast bench runs from a source checkout (pip install -e .)"
        )
    return folder


def _device(backend_label):
    name = backend_label.split()[0] if backend_label else ""
    if name in available_backends() and available_backends()[name][0]:
        return resolve_backend(name).device_name()
    return resolve_backend("numpy").device_name()


def _real_gpu():
    """Whether this process sees a real CUDA GPU (not numba's simulator)."""
    import numba

    return not numba.config.ENABLE_CUDASIM and available_backends()["cuda"][0]


def suite_environment(backends=None, quick=False, full=False, rows_path=None):
    """Environment of the benchmark subprocess.

    On a GPU node the suite's ``conftest.py`` is told (``RTAFAST_TEST_REAL_GPU=1``) to
    time the real device instead of numba's CUDA simulator, which it uses otherwise.
    """
    env = dict(os.environ)
    if rows_path is not None:
        env["RTAFAST_BENCH_JSON"] = str(rows_path)
    if quick:
        env["RTAFAST_BENCH_QUICK"] = "1"
    if full:
        env["RTAFAST_BENCH_FULL"] = "1"
    if backends:
        env["RTAFAST_BACKENDS"] = ",".join(backends)
    if (not backends or "cuda" in backends) and _real_gpu():
        env["RTAFAST_TEST_REAL_GPU"] = "1"
    return env


def run_suite(backends=None, quick=False, extra_args=(), full=False):
    """Run the benchmarks and return their rows (list of dicts).

    Each row holds the suite's fields (``capability``, ``size``, ``backend``,
    ``rtafast_median_s``, ``gammapy_median_s``, ``ratio``, optional ``params``),
    the ``device`` and the floors of :func:`rtafast_devtools.bench_floors.add_floors`
    (the machine's peak figures are measured once, after the suite has run).

    Parameters
    ----------
    backends : list of str, optional
        rtafast backends to time (default: every available one).
    quick : bool
        Fewer rounds and the small sizes only (``RTAFAST_BENCH_QUICK=1``).
    full : bool
        Also the large sizes and scaling sweeps (``RTAFAST_BENCH_FULL=1``).
    extra_args : sequence of str
        More pytest arguments.
    """
    folder = find_benchmarks()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "rows.json"
        env = suite_environment(backends, quick, full, rows_path=out)
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
            raise BenchmarkSuiteError(
                f"the benchmark suite failed (pytest exit {completed.returncode}; "
                "its output is above)"
            )
        rows = json.loads(out.read_text())
    for row in rows:
        row["device"] = _device(row["backend"])
    return add_floors(rows)


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


# (row field, line style, marker, legend name) of the two floors
_FLOOR_STYLES = (
    ("floor_arith_s", "--", "v", "arithmetic floor"),
    ("floor_bw_s", "-.", "d", "bandwidth floor"),
)


def _numeric_sizes(rows):
    return all(isinstance(r.get("size_x"), (int, float)) and r["size_x"] > 0 for r in rows)


def plot_rows(rows, path):
    """Time against problem size, one panel per capability (PNG, PDF, ... by extension).

    Each panel has the median time of every rtafast backend (markers joined by
    lines across sizes), gammapy's median (black squares) and, dashed, the
    arithmetic (``--``, open triangles) and bandwidth (``-.``, open diamonds)
    floors of each backend family (numpy, numba, cuda) from
    :func:`rtafast_devtools.bench_floors.add_floors`, computed here for rows that lack
    them. x: the problem size of :mod:`rtafast_devtools.bench_floors` (events, bins x free
    norms, pixels x kernel bins, map bins), log; y: median time in s, log. With a
    single size per capability the lines reduce to points. Rows whose size label
    is unknown are placed on a categorical axis, without floors. Drawn on
    matplotlib's Agg canvas (no display needed).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`run_suite` (or their JSON).
    path : str or path-like
        Output file, written atomically (a temporary file in its folder, renamed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [dict(r) for r in rows]
    if any("floor_arith_s" not in r for r in rows):
        add_floors(rows)
    capabilities = list(dict.fromkeys(r["capability"] for r in rows))
    labels = list(dict.fromkeys(r["backend"] for r in rows))
    palette = [f"C{i}" for i in range(10)]
    colors = {label: palette[i % len(palette)] for i, label in enumerate(labels)}

    ncols = min(3, max(1, len(capabilities)))
    nrows = -(-max(1, len(capabilities)) // ncols)
    fig = Figure(figsize=(5.4 * ncols, 4.4 * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(capabilities) :]:
        ax.set_visible(False)
    for ax, capability in zip(axes, capabilities, strict=False):
        panel = [r for r in rows if r["capability"] == capability]
        numeric = _numeric_sizes(panel)
        if numeric:
            xof = {r["size"]: r["size_x"] for r in panel}
            ax.set_xscale("log")
            ax.set_xlabel(panel[0].get("size_unit") or "problem size")
        else:
            xof = {size: i for i, size in enumerate(dict.fromkeys(r["size"] for r in panel))}
            ax.set_xticks(list(xof.values()), list(xof), fontsize=7, rotation=20, ha="right")
            ax.set_xlabel("size")
            ax.set_xlim(-0.5, len(xof) - 0.5)
        for label in dict.fromkeys(r["backend"] for r in panel):
            points = sorted(
                (xof[r["size"]], r["rtafast_median_s"]) for r in panel if r["backend"] == label
            )
            ax.plot(*zip(*points, strict=True), "o-", color=colors[label], label=f"rtafast {label}")
        gammapy = sorted(
            {(xof[r["size"]], r["gammapy_median_s"]) for r in panel if r.get("gammapy_median_s")}
        )
        if gammapy:
            ax.plot(*zip(*gammapy, strict=True), "s-", color="black", label="gammapy")
        if numeric:
            families = {}  # a family's floors in the colour of its first backend in the panel
            for r in panel:
                families.setdefault((r["backend"].split() or [""])[0], colors[r["backend"]])
            for family, color in families.items():
                members = [r for r in panel if (r["backend"].split() or [""])[0] == family]
                for field, style, marker, name in _FLOOR_STYLES:
                    points = sorted({(r["size_x"], r[field]) for r in members if r.get(field)})
                    if not points:
                        continue
                    cores = next((r.get("peak_cores") for r in members), None)
                    where = family
                    if family != "cuda" and cores:
                        where = f"{family}, {cores} core{'s' if cores > 1 else ''}"
                    ax.plot(
                        *zip(*points, strict=True),
                        linestyle=style,
                        marker=marker,
                        markersize=6,
                        markerfacecolor="none",
                        linewidth=1.2,
                        color=color,
                        label=f"{name} ({where})",
                    )
        ax.set_yscale("log")
        ax.set_ylabel("median time [s]")
        ax.set_title(capability)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=6.5)
    fig.tight_layout()
    fmt = _plot_format(path)
    _write_atomic(path, lambda tmp: fig.savefig(tmp, format=fmt), suffix="." + fmt)
