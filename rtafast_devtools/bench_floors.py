"""Physical floors of the benchmarked capabilities: arithmetic and bandwidth.

For each capability of the benchmark suite (``benchmarks/``) this module counts

* the **operations** a single pass of the algorithm needs, in flop-equivalents:
  additions, multiplications, divisions and square roots count 1 flop each
  (comparisons, index arithmetic and branches are not counted); each
  transcendental function (``log``, ``sin``, ``cos``, ...) counts
  :data:`TRANSCENDENTAL_FLOPS` (a vectorised double-precision libm call is a
  range reduction plus a polynomial of degree ~10-15);
* the **minimum bytes moved**: every input value read once and every output value
  written once, at the dtype the benchmark uses;

and divides them by the machine's peak figures: ``arithmetic floor = flops /
peak_flops`` and ``bandwidth floor = bytes / peak_bandwidth``. A measured median
can be compared with ``max(arithmetic floor, bandwidth floor)``. The counts are
those of an oracle that already knows the answer and only verifies it (one
evaluation of the statistic and its derivatives per bin, one projection per
event), so they are lower bounds of any implementation of the same arithmetic;
see ``docs/benchmarks.md``, section "Physical floors", for the formulas.

Peak figures (:func:`cpu_peaks`, :func:`gpu_peaks`) are measured once per
process and cached: the flop rate of one core by a single-threaded DGEMM (NumPy's
BLAS in a subprocess limited to one thread) times the number of cores the
backend uses; the bandwidth by a STREAM triad compiled with numba over arrays
four times the last-level cache, with the backend's number of threads. The
environment variables ``RTAFAST_PEAK_GFLOPS_CORE``, ``RTAFAST_PEAK_GBS_CORE``,
``RTAFAST_PEAK_GBS`` (CPU) and ``RTAFAST_GPU_PEAK_GFLOPS``,
``RTAFAST_GPU_PEAK_GBS`` (cuda) override them. The cuda backend's figures come
from the CuPy device attributes; CuPy is imported only for rows of the cuda
backend.

Problem sizes come from the benchmark rows: the optional ``params`` a benchmark
passes to ``record(...)`` or, failing that, the size label parsed by
:func:`parse_size` (no floor for a label it does not know).
"""

import math
import re
import warnings
from dataclasses import dataclass

from .bench_peaks import (  # re-exported: the floors divide work by these  # noqa: F401
    Peaks,
    _llc_bytes,
    _measured_bandwidth,
    _measured_core_flops,
    backend_peaks,
    cpu_peaks,
    gpu_peaks,
    gpu_peaks_from_attributes,
)

__all__ = [
    "TRANSCENDENTAL_FLOPS",
    "BIN_EVENT_FLOPS",
    "TS_TERM_FLOPS",
    "CRAB_PIXEL_DEG",
    "Work",
    "Peaks",
    "fit_step_work",
    "binning_work",
    "accumulate_work",
    "ts_map_work",
    "excess_map_work",
    "parse_size",
    "problem_params",
    "problem_work",
    "cpu_peaks",
    "gpu_peaks",
    "gpu_peaks_from_attributes",
    "backend_peaks",
    "floors",
    "add_floors",
]

#: Flop-equivalents charged for one transcendental function (log, exp, sin, cos, atan2).
TRANSCENDENTAL_FLOPS = 20

_T = TRANSCENDENTAL_FLOPS
#: Flop-equivalents to bin one event (``rtafast_kernels.binning.element.event_bin``):
#: deg->rad 2, cos/sin of RA and Dec 4 T, unit vector 2, 3x3 rotation 15, TAN
#: projection 4, WCS linear map 8, log of the energy T, energy interpolation 4,
#: rounding of three pixel coordinates 6, flat index 4, histogram add 1 (the
#: bin-edge exactness checks and the binary search's comparisons are not counted).
BIN_EVENT_FLOPS = 2 + 4 * _T + 2 + 15 + 4 + 8 + _T + 4 + 6 + 4 + 1
#: Flop-equivalents per (pixel, kernel bin) of a TS scan, evaluated once at the
#: best norm: model ``m = k e`` 1, ``mu = b + x m`` 2, ``log mu`` T, the Cash term
#: and its sum 3, ``r = n / mu`` and ``1 - r`` 2, gradient 2, curvature
#: ``m**2 r / mu`` and its sum 4, sum of the null statistic 1.
TS_TERM_FLOPS = 1 + 2 + _T + 3 + 2 + 2 + 4 + 1
#: Pixel size of the H.E.S.S. Crab maps of the benchmarks (deg): ``rtafast_devtools.reference_data``
#: bins them at 0.02 deg; their size labels give the correlation radius in deg only.
CRAB_PIXEL_DEG = 0.02

_F64 = 8  # bytes of a float64 value
_F32 = 4
_TS_OUTPUT_MAPS = 9  # gammapy's default TSMapEstimator maps (ts, norm, niter, norm_err, ...)
_EXCESS_OUTPUT_MAPS = 6  # npred (= counts), npred_excess, ts, sqrt_ts, norm, norm_err


@dataclass(frozen=True)
class Work:
    """Operation count and minimum traffic of one benchmarked call.

    Attributes
    ----------
    flops : float
        Operations, in flop-equivalents (transcendentals at
        :data:`TRANSCENDENTAL_FLOPS`).
    bytes : float
        Minimum bytes moved: inputs read once plus outputs written once.
    size : float
        The problem size plotted on the x axis, in ``size_unit``.
    size_unit : str
        What ``size`` counts (e.g. ``"events"``).
    """

    flops: float
    bytes: float
    size: float
    size_unit: str


# --- operation and byte counts per capability ------------------------------------


def fit_step_work(n_bins, n_norms=1):
    """Flux-only fit step: one statistic, gradient and Hessian pass over the cube.

    Parameters
    ----------
    n_bins : int
        Bins of the dataset(s) (counts, fixed prediction and one template each).
    n_norms : int
        Free linear norms ``K``.

    Returns
    -------
    Work
        ``flops = n_bins (5 K + K (K + 1) + 6 + T)`` (prediction ``2 K``, ``log``,
        Cash term 3, ``n / mu`` and ``1 - n / mu`` 2, gradient ``2 K``, ``n / mu**2``
        1 and ``K`` products, Hessian's upper triangle ``K (K + 1)``);
        ``bytes = 8 n_bins (K + 2)`` (float64 counts, fixed prediction, templates)
        plus the ``K + K**2 + 2`` output values; size: bins x free norms.
    """
    k = int(n_norms)
    flops = n_bins * (5 * k + k * (k + 1) + 6 + _T)
    nbytes = _F64 * (n_bins * (k + 2) + k + k * k + 2)
    return Work(float(flops), float(nbytes), float(n_bins * k), "bins x free norms")


def binning_work(n_events, n_bins):
    """Bin ``n_events`` events into a new cube of ``n_bins`` bins (select+bin).

    Parameters
    ----------
    n_events : int
        Events (float32 RA, Dec, energy columns, as in DL3 files).
    n_bins : int
        Bins of the counts cube (float64).

    Returns
    -------
    Work
        ``flops = n_events BIN_EVENT_FLOPS``; ``bytes = 12 n_events + 8 n_bins``
        (three float32 columns read, the cube written once); size: events.
    """
    flops = n_events * BIN_EVENT_FLOPS
    nbytes = 3 * _F32 * n_events + _F64 * n_bins
    return Work(float(flops), float(nbytes), float(n_events), "events")


def accumulate_work(n_events, n_bins):
    """Add one bunch of ``n_events`` events to an existing cube of ``n_bins`` bins.

    Parameters
    ----------
    n_events : int
        Events of the bunch (float32 columns).
    n_bins : int
        Bins of the cube already on the backend (float64).

    Returns
    -------
    Work
        ``flops = n_events BIN_EVENT_FLOPS``; ``bytes = 12 n_events + 16
        min(n_events, n_bins)`` (columns read; each touched bin read and written
        once, assuming distinct bins); size: events.
    """
    flops = n_events * BIN_EVENT_FLOPS
    nbytes = 3 * _F32 * n_events + 2 * _F64 * min(n_events, n_bins)
    return Work(float(flops), float(nbytes), float(n_events), "events")


def ts_map_work(ny, nx, ky, kx, n_energy=1):
    """TS map: one flux-only Cash evaluation per pixel over its kernel footprint.

    gammapy's default ``sum_over_energy_groups=True`` sums the energy bins first,
    so the scan runs over one layer.

    Parameters
    ----------
    ny, nx : int
        Map pixels (all fitted).
    ky, kx : int
        Kernel shape in pixels.
    n_energy : int
        Energy bins of the input cubes, summed before the scan.

    Returns
    -------
    Work
        ``flops = ny nx (ky kx TS_TERM_FLOPS + 3 n_energy + T + 2)`` (the
        footprint terms; summing counts, background and exposure over energy;
        ``b - n log b`` of each bin for the null statistic); ``bytes = 8 (3
        n_energy ny nx + n_energy ky kx + 9 ny nx)`` (float64 counts, background,
        exposure cubes and kernels read, gammapy's nine default output maps
        written); size: pixels x kernel bins.
    """
    pixels = ny * nx
    terms = pixels * ky * kx
    flops = terms * TS_TERM_FLOPS + pixels * (3 * n_energy + _T + 2)
    nbytes = _F64 * (3 * n_energy * pixels + n_energy * ky * kx + _TS_OUTPUT_MAPS * pixels)
    return Work(float(flops), float(nbytes), float(terms), "pixels x kernel bins")


def _disk_pixels(radius_pix):
    """Pixels whose centre lies within ``radius_pix`` of the centre pixel's (top-hat)."""
    r = int(math.floor(radius_pix))
    return sum(
        1 for i in range(-r, r + 1) for j in range(-r, r + 1) if i * i + j * j <= radius_pix**2
    )


def _convolution_flops(ny, nx, radius_pix):
    """Cheaper of a direct (non-zero taps only) and an FFT top-hat convolution, flop."""
    taps = _disk_pixels(radius_pix)
    direct = 2.0 * ny * nx * taps
    k = 2 * int(math.floor(radius_pix)) + 1
    try:
        from scipy.fft import next_fast_len

        py, px = next_fast_len(ny + k - 1, real=True), next_fast_len(nx + k - 1, real=True)
    except ImportError:  # pragma: no cover - scipy is a dependency
        py, px = ny + k - 1, nx + k - 1
    # three real 2-D FFTs (image, kernel, inverse) at 2.5 N log2 N, complex product 6/bin
    fft = 3 * 2.5 * py * px * math.log2(py * px) + 6.0 * py * (px // 2 + 1)
    return min(direct, fft)


def excess_map_work(ny, nx, n_energy=1, radius_pix=5.0):
    """Excess map: top-hat correlation of counts and background, Cash statistics.

    gammapy's ``ExcessMapEstimator`` (default energy edges) sums the energy bins,
    correlates four images (counts, background, exposure, mask) and evaluates the
    Cash counts statistics per pixel. The kernel-averaged exposure depends only on
    the IRF maps and the mask -- rtafast caches it, rescaled by live time -- so the
    floor of one call counts two correlations and one read of that exposure image.

    Parameters
    ----------
    ny, nx : int
        Map pixels.
    n_energy : int
        Energy bins of the input cubes.
    radius_pix : float
        Correlation radius, pixels.

    Returns
    -------
    Work
        ``flops = ny nx (3 n_energy + 15 + T) + 2 C`` (energy sums and mask,
        statistics with one ``log``, the division by the exposure, ``C`` the cheaper
        of a direct and an FFT convolution); ``bytes = 4 (2 n_energy ny nx + 7 ny nx)
        + n_energy ny nx`` (float32 counts and background cubes, the exposure image
        and a boolean mask read, six float32 maps written); size: map bins (pixels x
        energies).
    """
    pixels = ny * nx
    flops = pixels * (3 * n_energy + 15 + _T) + 2 * _convolution_flops(ny, nx, radius_pix)
    nbytes = _F32 * (2 * n_energy * pixels + (_EXCESS_OUTPUT_MAPS + 1) * pixels)
    nbytes += n_energy * pixels
    return Work(float(flops), float(nbytes), float(pixels * n_energy), "map bins")


_WORK = {
    "flux-only fit": fit_step_work,
    "select+bin": binning_work,
    "accumulate bunch": accumulate_work,
    "ts map": ts_map_work,
    "ts scan kernel": ts_map_work,
    "excess map": excess_map_work,
}


# --- size labels ------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d*)?(?:e[+-]?\d+)?)"


def _fit_label(m):
    ne, ny, nx = (int(v) for v in m.group(1, 2, 3))
    return {"n_bins": ne * ny * nx, "n_norms": len(m.group(4).split("+"))}


def _events_label(m):
    ne, ny, nx = (int(v) for v in m.group(2, 3, 4))
    return {"n_events": int(float(m.group(1))), "n_bins": ne * ny * nx}


def _ts_label(m):
    ny, nx, ne, ky, kx = (int(v) for v in m.groups())
    return {"ny": ny, "nx": nx, "ky": ky, "kx": kx, "n_energy": ne}


def _scan_label(m):
    npix, k = int(m.group(1)), int(m.group(2))
    return {"ny": npix, "nx": npix, "ky": k, "kx": k, "n_energy": 1}


def _excess_label(m):
    ny, nx, ne = (int(v) for v in m.group(1, 2, 3))
    radius = round(float(m.group(4)) / CRAB_PIXEL_DEG, 9)
    return {"ny": ny, "nx": nx, "n_energy": ne, "radius_pix": radius}


# capability -> (pattern searched in the size label, converter); the labels are the
# benchmark files' (benchmarks/test_bench_*.py): see tests/test_bench_floors.py.
_LABELS = {
    # "crab 6x125x125, amplitude+bkgnorm": energies x ny x nx, free norms joined by "+"
    "flux-only fit": (r"(\d+)x(\d+)x(\d+), ([\w+]+)$", _fit_label),
    # "1e+06 events 10x200x200"
    "select+bin": (rf"^{_NUM} events (\d+)x(\d+)x(\d+)$", _events_label),
    # "1e4 events into 10x200x200"
    "accumulate bunch": (rf"^{_NUM} events into (\d+)x(\d+)x(\d+)$", _events_label),
    # "crab 125x125x6, kernel 15x15": ny x nx x energies, kernel ky x kx
    "ts map": (r"(\d+)x(\d+)x(\d+), kernel (\d+)x(\d+)$", _ts_label),
    # "map 64^2, kernel 9^2"
    "ts scan kernel": (r"^map (\d+)\^2, kernel (\d+)\^2$", _scan_label),
    # "crab 125x125x6, r=0.1 deg": ny x nx x energies, radius in deg (0.02 deg pixels)
    "excess map": (rf"(\d+)x(\d+)x(\d+), r={_NUM} deg$", _excess_label),
}


def parse_size(capability, size):
    """Size parameters of a benchmark row from its size label.

    Parameters
    ----------
    capability : str
        The row's capability (``"flux-only fit"``, ``"select+bin"``, ...).
    size : str
        Its size label, as the benchmark files write it (``"1e+06 events
        10x200x200"``, ``"crab 125x125x6, kernel 15x15"``, ...).

    Returns
    -------
    dict or None
        Keyword arguments of the capability's work function (e.g. ``n_events``,
        ``n_bins``), or None for an unknown capability or label.
    """
    entry = _LABELS.get(capability)
    if entry is None or not isinstance(size, str):
        return None
    match = re.search(entry[0], size.strip())
    return entry[1](match) if match else None


def problem_params(row):
    """A row's size parameters: its ``params`` (from ``record``), else its parsed label."""
    params = row.get("params")
    if params:
        return dict(params)
    return parse_size(row.get("capability"), row.get("size"))


def problem_work(capability, params):
    """:class:`Work` of a capability at the given size parameters (None if unknown)."""
    function = _WORK.get(capability)
    if function is None or params is None:
        return None
    try:
        return function(**params)
    except TypeError:  # parameters of another capability or an older record
        return None


def floors(work, peaks):
    """``(arithmetic floor, bandwidth floor)`` in seconds: ``flops / peak``, ``bytes / peak``."""
    return work.flops / peaks.flops_per_s, work.bytes / peaks.bytes_per_s


def add_floors(rows):
    """Add the problem size, work, peaks and floors to benchmark rows (in place).

    Fields added to each row: ``size_x`` and ``size_unit`` (the plotted size),
    ``flops``, ``bytes``, ``peak_flops_per_s``, ``peak_bytes_per_s``,
    ``peak_source``, ``peak_cores``, ``floor_arith_s``, ``floor_bw_s`` (seconds) and
    ``above_floor`` (median / the larger floor); all None where the size is
    unknown.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`rtafast_devtools.bench.run_suite` (``capability``, ``size``,
        ``backend``, ``device``, ``rtafast_median_s``, optional ``params``).

    Returns
    -------
    list of dict
        The same rows.
    """
    cache = {}
    for row in rows:
        fields = dict.fromkeys(
            (
                "size_x",
                "size_unit",
                "flops",
                "bytes",
                "peak_flops_per_s",
                "peak_bytes_per_s",
                "peak_source",
                "peak_cores",
                "floor_arith_s",
                "floor_bw_s",
                "above_floor",
            )
        )
        work, peaks = problem_work(row.get("capability"), problem_params(row)), None
        if work is not None:
            fields.update(size_x=work.size, size_unit=work.size_unit)
            fields.update(flops=work.flops, bytes=work.bytes)
            key = (row.get("backend", ""), row.get("device", ""))
            if key not in cache:
                try:
                    cache[key] = backend_peaks(*key)
                except Exception as error:  # noqa: BLE001 - no floor rather than no table
                    warnings.warn(f"no peak figures for {key[0]!r}: {error}", stacklevel=2)
                    cache[key] = None
            peaks = cache[key]
        if work is not None and peaks is not None:
            arith, bandwidth = floors(work, peaks)
            median = row.get("rtafast_median_s")
            fields.update(
                peak_flops_per_s=peaks.flops_per_s,
                peak_bytes_per_s=peaks.bytes_per_s,
                peak_source=peaks.source,
                peak_cores=peaks.cores,
                floor_arith_s=arith,
                floor_bw_s=bandwidth,
                above_floor=median / max(arith, bandwidth) if median else None,
            )
        row.update(fields)
    return rows
