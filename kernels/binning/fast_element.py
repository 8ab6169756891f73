"""Branch-free float32 element math of event binning, for vectorised CPU loops.

A screening twin of :func:`rtafast_kernels.binning.element.event_bin`: the same
bins for every event it decides, computed in float32 with no libm call, so that
LLVM vectorises the event loop (16 float32 lanes per AVX-512 register). Events
within :data:`F_TOL` (a band wide enough to hold float32's rounding, see
``fast_params``) of a bin edge, or outside the domain of the polynomials below,
get the code :data:`RECHECK`: the kernel bins them with the exact float64 element
math (a percent of the events or so).

* sky: the event's offsets ``a = lon - lon0``, ``b = lat - lat0`` from the map
  reference ``(lon0, lat0)`` in the event frame are small (|a|, |b| <=
  :data:`MAX_OFFSET` rad), so ``sin`` and ``cos - 1`` are short Taylor polynomials.
  The unit vector is written as the reference's plus a small difference ``d``
  (computed from small quantities only, so float32 keeps its relative precision),
  and the reference maps to the projection's centre exactly: native vector =
  centre + ``ROT @ d``. TAN divides; CAR's native longitude and latitude,
  ``atan(ny/nx)`` and ``asin(nz)``, are odd series up to :data:`SERIES_MAX`.
* energy: ``ln E`` from the float's exponent and mantissa bits (read through an
  integer view of the energy column) and an ``atanh`` series; energy axes with
  bins uniform in their scale (``MapAxis.from_energy_bounds``, log or linear).

Parameters are packed in one tuple of float32 (``F_*`` offsets, :data:`FAST_SIZE`):
a tuple, not an array, because numba inlines these functions into the event
loop, and an array argument would bring reference counting into the loop and stop
its vectorisation. Every constant is a float32: a Python float would promote the
arithmetic to float64.
"""

import math

import numpy as np

__all__ = [
    "FAST_SIZE",
    "RECHECK",
    "MAX_OFFSET",
    "SERIES_MAX",
    "lon_offset",
    "fast_pixels",
    "fast_event_bin",
]

# offsets in the packed parameters
F_LON0 = 0  # map reference in the event frame, deg (float32 values: offsets are exact)
F_LAT0 = 1
F_SIN_LAT0 = 2
F_COS_LAT0 = 3
F_ROT = 4  # 9 values, row-major: native = centre + ROT @ d
F_CRPIX = 13  # 2 values
F_LIN = 15  # 4 values
F_NX = 19
F_NY = 20
F_NE = 21
F_TOL = 22  # band around spatial bin edges, pixels
F_ETOL = 23  # band around energy bin edges, bins
F_PROJ = 24  # 0 TAN, 1 CAR (element.PROJ_*)
F_LOG = 25  # 1 log-scale energy axis, 0 linear
F_E0 = 26  # first scaled edge
F_EINV = 27  # 1 / (scaled bin width)
F_BITS_SHIFT = 28  # exponent position in the energy's integer view (23 or 52)
F_BITS_BIAS = 29  # exponent bias (127 or 1023)
F_BITS_SCALE = 30  # 2**-23 or 2**-52 (the mantissa mask is 2**shift - 1)
F_EMIN = 31  # below this energy (axis unit) the exact math decides (zero, denormals)
F_FAR_CODE = 32  # CAR events beyond the series: OUTSIDE (map within it) or RECHECK
F_CENTRE = 33  # 3 values: native vector of (lon0, lat0) minus the projection centre
FAST_SIZE = 36

#: Code of the events left to the exact element math.
RECHECK = -4
#: Largest offset from the map reference handled by the polynomials, rad.
MAX_OFFSET = 0.25
#: Largest argument of the CAR series (native offsets up to ~11.3 deg).
SERIES_MAX = 0.2

_f = np.float32
_ZERO, _HALF, _ONE, _TWO = _f(0.0), _f(0.5), _f(1.0), _f(2.0)
_D2R = _f(math.pi / 180.0)
_R2D = _f(180.0 / math.pi)
_LN2 = _f(math.log(2.0))
_SQRT2 = _f(math.sqrt(2.0))
_MAX_OFFSET, _SERIES_MAX, _INF = _f(MAX_OFFSET), _f(SERIES_MAX), _f(np.inf)
_S3, _S5, _S7 = _f(-1.0 / 6.0), _f(1.0 / 120.0), _f(-1.0 / 5040.0)
_C2, _C4, _C6, _C8 = _f(-0.5), _f(1.0 / 24.0), _f(-1.0 / 720.0), _f(1.0 / 40320.0)
_L3, _L5, _L7 = _f(1.0 / 3.0), _f(1.0 / 5.0), _f(1.0 / 7.0)
#: Odd series ``x * sum c_k x^(2k)``, k <= 4 (|x| <= 0.2: truncation < 2e-9 rad, below
#: float32's own rounding of the result at these offsets).
ATAN_SERIES = tuple(_f((-1.0) ** k / (2 * k + 1)) for k in range(5))
ASIN_SERIES = tuple(_f(math.comb(2 * k, k) / (4.0**k * (2 * k + 1))) for k in range(5))


def sin_cosm1_small(a):
    """``(sin a, cos a - 1)`` for |a| <= 0.25 rad, float32 (Taylor, error < 1e-11)."""
    a2 = a * a
    s = a * (_ONE + a2 * (_S3 + a2 * (_S5 + a2 * _S7)))
    cm1 = a2 * (_C2 + a2 * (_C4 + a2 * (_C6 + a2 * _C8)))
    return s, cm1


def odd_series(x, coefficients):
    """``x * sum_k c_k x^(2k)`` by Horner's rule (coefficients from ``c_0``)."""
    x2 = x * x
    acc = _ZERO
    for k in range(len(coefficients) - 1, -1, -1):
        acc = acc * x2 + coefficients[k]
    return x * acc


def log_from_bits(bits, q):
    """Natural log (float32) of a positive normal float given its integer view ``bits``."""
    shift = int(q[F_BITS_SHIFT])
    exponent = (bits >> shift) - int(q[F_BITS_BIAS])
    mantissa = _ONE + _f(bits & ((1 << shift) - 1)) * q[F_BITS_SCALE]  # in [1, 2)
    big = mantissa > _SQRT2
    mantissa = mantissa * _HALF if big else mantissa
    exponent = exponent + 1 if big else exponent
    s = (mantissa - _ONE) / (mantissa + _ONE)  # |s| <= 0.172
    s2 = s * s
    series = _ONE + s2 * (_L3 + s2 * (_L5 + s2 * _L7))  # truncation < 3e-8
    return _f(exponent) * _LN2 + _TWO * s * series


def lon_offset(lon, lon0):
    """``lon - lon0`` wrapped into [-180, 180) deg, as a float32 (NaN beyond 720 deg).

    Computed in float64 and rounded once, so that the rounding error is relative to
    the offset (a float32 subtraction would round at the ulp of ~360 deg for events
    across RA = 0 from the reference). ``lon`` and ``lon0`` are float64.
    """
    d = lon - lon0
    wrapped = d - 360.0 * np.floor(d * (1.0 / 360.0) + 0.5)
    return np.float32(wrapped if abs(d) <= 720.0 else np.nan)


def _near_edge(pix, tolerance):
    shifted = pix + _HALF
    return abs(shifted - np.floor(shifted) - _HALF) > _HALF - tolerance


def fast_pixels(dlon_deg, dlat_deg, energy, energy_bits, q):
    """Fractional pixel coordinates ``(px, py, pe)`` of one event, float32.

    Also returns ``usable``: False where the polynomials do not apply (the event
    is too far from the reference, or NaN/inf/non-positive energy), and ``far``:
    True for CAR events beyond the series' domain. Parameters as
    :func:`fast_event_bin`.
    """
    a = dlon_deg * _D2R
    b = dlat_deg * _D2R
    sin_a, cosm1_a = sin_cosm1_small(a)
    sin_b, cosm1_b = sin_cosm1_small(b)
    sin0, cos0 = q[F_SIN_LAT0], q[F_COS_LAT0]
    dcos_lat = cos0 * cosm1_b - sin0 * sin_b  # cos(lat) - cos(lat0)
    dsin_lat = sin0 * cosm1_b + cos0 * sin_b  # sin(lat) - sin(lat0)
    cos_lat = cos0 + dcos_lat
    dx = dcos_lat + cos_lat * cosm1_a  # unit vector minus the reference's
    dy = cos_lat * sin_a
    dz = dsin_lat
    mx = q[F_CENTRE + 0] + q[F_ROT + 0] * dx + q[F_ROT + 1] * dy + q[F_ROT + 2] * dz
    my = q[F_CENTRE + 1] + q[F_ROT + 3] * dx + q[F_ROT + 4] * dy + q[F_ROT + 5] * dz
    mz = q[F_CENTRE + 2] + q[F_ROT + 6] * dx + q[F_ROT + 7] * dy + q[F_ROT + 8] * dz
    tan = q[F_PROJ] == _ZERO
    # TAN: the reference is the native pole (0, 0, 1); CAR: native (0, 0), i.e. (1, 0, 0)
    depth = _ONE + (mz if tan else mx)
    inv_depth = _ONE / depth
    ratio = my * inv_depth
    if tan:
        x = _R2D * ratio
        y = -_R2D * mx * inv_depth
        far = False
    else:  # native longitude atan(ny / nx), latitude asin(nz): series, no sqrt
        x = _R2D * odd_series(ratio, ATAN_SERIES)
        y = _R2D * odd_series(mz, ASIN_SERIES)
        far = (abs(ratio) > _SERIES_MAX) | (abs(mz) > _SERIES_MAX)
    px = q[F_CRPIX] + q[F_LIN + 0] * x + q[F_LIN + 1] * y
    py = q[F_CRPIX + 1] + q[F_LIN + 2] * x + q[F_LIN + 3] * y
    value = log_from_bits(energy_bits, q) if q[F_LOG] == _ONE else energy
    pe = (value - q[F_E0]) * q[F_EINV] - _HALF
    usable = (abs(a) <= _MAX_OFFSET) & (abs(b) <= _MAX_OFFSET)
    usable = usable & (energy >= q[F_EMIN]) & (energy < _INF)
    return px, py, pe, usable, far


def fast_event_bin(dlon_deg, dlat_deg, energy, energy_bits, q):
    """Flat bin of one event, a negative code (as ``event_bin``), or :data:`RECHECK`.

    Parameters
    ----------
    dlon_deg, dlat_deg : float32
        Event longitude and latitude minus the reference's (``q[F_LON0]``,
        ``q[F_LAT0]``) in the event frame, deg; the longitude offset from
        :func:`lon_offset`.
    energy : float32
        Event energy in the axis unit.
    energy_bits : int
        The energy's bits as an integer (int32 view of float32, int64 of float64).
    q : tuple of float32
        Packed parameters.
    """
    px, py, pe, usable, far = fast_pixels(dlon_deg, dlat_deg, energy, energy_bits, q)
    tol = q[F_TOL]
    near = _near_edge(px, tol) | _near_edge(py, tol) | _near_edge(pe, q[F_ETOL])
    ix = int(np.floor(px + _HALF))
    iy = int(np.floor(py + _HALF))
    ie = int(np.floor(pe + _HALF))
    inside = (ix >= 0) & (iy >= 0) & (ie >= 0)
    inside = inside & (ix < int(q[F_NX])) & (iy < int(q[F_NY])) & (ie < int(q[F_NE]))
    flat = (ie * int(q[F_NY]) + iy) * int(q[F_NX]) + ix
    code = flat if inside else -1  # OUTSIDE
    code = RECHECK if near else code
    code = int(q[F_FAR_CODE]) if far else code
    code = code if usable else RECHECK  # incl. NaN/inf, energy <= 0
    return code
