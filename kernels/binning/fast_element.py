"""Branch-free float32 element math of event binning, for vectorised CPU loops.

A screening twin of :func:`rtafast_kernels.binning.element.event_bin`: the same
bins for every event it decides, computed in float32 with no libm call, so that
LLVM vectorises the event loops (8 float32 lanes per AVX2 register, 16 with
AVX-512). Events within :data:`F_TOL` of a bin edge (the exact tolerance plus a band
wide enough to hold float32's rounding, see ``fast_params``), or outside the domain
of the polynomials below, get the code :data:`RECHECK`: the kernel bins them with
the exact float64 element math (a percent of the events or so); events within
:data:`F_TOL_SURE` (the exact tolerance minus that band, when positive) are
:data:`AMBIGUOUS` without it.

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

:func:`screen_code` is what the kernels' event loops run: float32 and int32 only
(LLVM vectorises them 8 wide with AVX2, where float32-to-int64 conversions and int64
products would keep them scalar), products and sums fused (:func:`muladd`), the
projection a compile-time constant of the loop (``tan``), the longitude offset taken
from a reference ``lon0`` whose images ``lon0 -+ 360`` are exact float32 values (so
the wrapped offset is one correctly rounded float32 subtraction), the bin index's
floor shared with the edge test.
:func:`fast_pixels` computes the pixel coordinates with a runtime projection and any
energy dtype (the float32 error bounds of tests/test_binning_fast.py).

Parameters are packed in one tuple of float32 (``F_*`` offsets, :data:`FAST_SIZE`):
a tuple, not an array, because numba inlines these functions into the event
loop, and an array argument would bring reference counting into the loop and stop
its vectorisation. Every constant is a float32: a Python float would promote the
arithmetic to float64.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = [
    "FAST_SIZE",
    "RECHECK",
    "AMBIGUOUS",
    "MAX_OFFSET",
    "SERIES_MAX",
    "lon_offset",
    "fast_pixels",
    "native_vector",
    "project",
    "screen_code",
    "near_map",
    "screen_native",
    "screen_project",
    "energy_pixel",
    "screen_bins",
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
F_TOL = 22  # band around spatial bin edges, pixels: the exact math decides within it
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
F_LON0_LO = 36  # lon0 - 360 and lon0 + 360, exact float32 values (lon0 is a multiple of 2^-14)
F_LON0_HI = 37
F_TOL_SURE = 38  # within this of a spatial edge (pixels) an event is ambiguous for sure
F_ETOL_SURE = 39  # the same for energy edges (bins); negative: never
F_SIDES = 40  # 12 values: 4 half-planes (na, nb, c) of the offsets (deg) holding the map
F_ELO = 52  # energies below this or above F_EHI (axis unit) are outside the axis for sure
F_EHI = 53
FAST_SIZE = 54

#: Code of the events left to the exact element math.
RECHECK = -4
#: Code of the events ambiguous for sure (``element.AMBIGUOUS``: gammapy's arithmetic
#: decides them): within the exact tolerance of an edge by more than float32's error.
AMBIGUOUS = -3
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
_HALF_TURN = _f(180.0)
_i32 = np.int32
_MANTISSA_MASK_32 = _i32((1 << 23) - 1)
_SHIFT_32, _BIAS_32 = _i32(23), _i32(127)
_SCALE_32 = _f(2.0**-23)
_OUTSIDE_32, _AMBIGUOUS_32, _RECHECK_32, _ZERO_32 = _i32(-1), _i32(-3), _i32(-4), _i32(0)
_S3, _S5, _S7 = _f(-1.0 / 6.0), _f(1.0 / 120.0), _f(-1.0 / 5040.0)
_C2, _C4, _C6, _C8 = _f(-0.5), _f(1.0 / 24.0), _f(-1.0 / 720.0), _f(1.0 / 40320.0)
_L3, _L5, _L7 = _f(1.0 / 3.0), _f(1.0 / 5.0), _f(1.0 / 7.0)
#: Odd series ``x * sum c_k x^(2k)``, k <= 4 (|x| <= 0.2: truncation < 2e-9 rad, below
#: float32's own rounding of the result at these offsets).
ATAN_SERIES = tuple(_f((-1.0) ** k / (2 * k + 1)) for k in range(5))
ASIN_SERIES = tuple(_f(math.comb(2 * k, k) / (4.0**k * (2 * k + 1))) for k in range(5))


@intrinsic
def muladd(typingctx, a, b, c):
    """``a * b + c``, fused into one FMA where the CPU has one (LLVM's ``fmuladd``).

    Compiled code only (numba). The screening only needs its rounding bounded, and a
    fused product-add rounds once instead of twice, at half the instructions.
    """
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        kind = context.get_value_type(signature.return_type)
        function_type = ir.FunctionType(kind, [kind, kind, kind])
        fused = builder.module.declare_intrinsic("llvm.fmuladd", [kind], function_type)
        return builder.call(fused, args)

    return a(a, b, c), codegen


def sin_cosm1_small(a):
    """``(sin a, cos a - 1)`` for |a| <= 0.25 rad, float32 (Taylor, error < 1e-11)."""
    a2 = a * a
    s = a * muladd(a2, muladd(a2, muladd(a2, _S7, _S5), _S3), _ONE)
    cm1 = a2 * muladd(a2, muladd(a2, muladd(a2, _C8, _C6), _C4), _C2)
    return s, cm1


def odd_series(x, coefficients):
    """``x * sum_k c_k x^(2k)`` by Horner's rule (coefficients from ``c_0``)."""
    x2 = x * x
    acc = _ZERO
    for k in range(len(coefficients) - 1, -1, -1):
        acc = muladd(acc, x2, coefficients[k])
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
    series = muladd(s2, muladd(s2, muladd(s2, _L7, _L5), _L3), _ONE)  # truncation < 3e-8
    return muladd(_f(exponent), _LN2, _TWO * s * series)


def lon_offset(lon, lon0):
    """``lon - lon0`` wrapped into [-180, 180) deg, as a float32 (NaN beyond 720 deg).

    Computed in float64 and rounded once, so that the rounding error is relative to
    the offset (a float32 subtraction would round at the ulp of ~360 deg for events
    across RA = 0 from the reference). ``lon`` and ``lon0`` are float64.
    """
    d = lon - lon0
    wrapped = d - 360.0 * np.floor(d * (1.0 / 360.0) + 0.5)
    return np.float32(wrapped if abs(d) <= 720.0 else np.nan)


def log_from_bits32(bits):
    """Natural log (float32) of a positive normal float32 given its int32 view ``bits``.

    :func:`log_from_bits` in int32 arithmetic only (every integer result cast back to
    int32: numba widens integer arithmetic to int64, which AVX2 does not vectorise).
    """
    exponent = _f(_i32(bits >> _SHIFT_32) - _BIAS_32)
    mantissa = _ONE + _f(_i32(bits & _MANTISSA_MASK_32)) * _SCALE_32  # in [1, 2)
    big = mantissa > _SQRT2
    mantissa = mantissa * _HALF if big else mantissa
    exponent = exponent + _ONE if big else exponent
    s = (mantissa - _ONE) / (mantissa + _ONE)  # |s| <= 0.172
    s2 = s * s
    series = muladd(s2, muladd(s2, muladd(s2, _L7, _L5), _L3), _ONE)  # truncation < 3e-8
    return muladd(exponent, _LN2, _TWO * s * series)


def native_vector(a, b, q):
    """Native unit vector of the offsets ``a``, ``b`` (rad) minus the projection centre.

    ``a``, ``b``: event longitude and latitude minus the reference's, in the event
    frame, float32 rad. The vector is the reference's plus a small difference
    (computed from small quantities only), rotated: ``centre + ROT @ d``.
    """
    sin_a, cosm1_a = sin_cosm1_small(a)
    sin_b, cosm1_b = sin_cosm1_small(b)
    sin0, cos0 = q[F_SIN_LAT0], q[F_COS_LAT0]
    dcos_lat = muladd(cos0, cosm1_b, -sin0 * sin_b)  # cos(lat) - cos(lat0)
    dsin_lat = muladd(sin0, cosm1_b, cos0 * sin_b)  # sin(lat) - sin(lat0)
    cos_lat = cos0 + dcos_lat
    dx = muladd(cos_lat, cosm1_a, dcos_lat)  # unit vector minus the reference's
    dy = cos_lat * sin_a
    dz = dsin_lat
    return (
        _rotated_row(q, 0, dx, dy, dz),
        _rotated_row(q, 1, dx, dy, dz),
        _rotated_row(q, 2, dx, dy, dz),
    )


def project(mx, my, mz, q, tan):
    """Fractional pixel coordinates ``(px, py, far)`` of a :func:`native_vector`.

    ``tan``: the projection (True TAN, False CAR; a constant in the kernels' loops).
    ``far``: CAR events beyond the series' domain.
    """
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
    px = muladd(q[F_LIN + 1], y, muladd(q[F_LIN + 0], x, q[F_CRPIX]))
    py = muladd(q[F_LIN + 3], y, muladd(q[F_LIN + 2], x, q[F_CRPIX + 1]))
    return px, py, far


def sky_pixels(a, b, q, tan):
    """Fractional pixel coordinates ``(px, py, far)`` of the offsets ``a``, ``b`` (rad)."""
    mx, my, mz = native_vector(a, b, q)
    return project(mx, my, mz, q, tan)


def _rotated_row(q, row, dx, dy, dz):
    """Row ``row`` of ``centre + ROT @ (dx, dy, dz)``."""
    r = F_ROT + 3 * row
    return muladd(q[r + 2], dz, muladd(q[r + 1], dy, muladd(q[r], dx, q[F_CENTRE + row])))


def fast_pixels(dlon_deg, dlat_deg, energy, energy_bits, q):
    """Fractional pixel coordinates ``(px, py, pe)`` of one event, float32.

    Also returns ``usable``: False where the polynomials do not apply (the event
    is too far from the reference, or NaN/inf/non-positive energy), and ``far``:
    True for CAR events beyond the series' domain. ``dlon_deg``, ``dlat_deg``: float32
    offsets from the reference (deg, the longitude's from :func:`lon_offset`); ``energy``
    float32 in the axis unit, ``energy_bits`` its bits as an integer; ``q`` packed
    parameters.
    """
    a = dlon_deg * _D2R
    b = dlat_deg * _D2R
    px, py, far = sky_pixels(a, b, q, q[F_PROJ] == _ZERO)
    value = log_from_bits(energy_bits, q) if q[F_LOG] == _ONE else energy
    pe = (value - q[F_E0]) * q[F_EINV] - _HALF
    usable = (abs(a) <= _MAX_OFFSET) & (abs(b) <= _MAX_OFFSET)
    usable = usable & (energy >= q[F_EMIN]) & (energy < _INF)
    return px, py, pe, usable, far


def _bin_of(pix, tolerance, sure):
    """``(floor(pix + 0.5), near, ambiguous)``: the bin of a fractional coordinate,
    float32, whether it lies within ``tolerance`` of the bin's edges, and within
    ``sure``."""
    shifted = pix + _HALF
    index = np.floor(shifted)
    centred = abs(shifted - index - _HALF)
    return index, centred > _HALF - tolerance, centred > _HALF - sure


def _offset(lon, q):
    """``lon - lon0`` wrapped into [-180, 180), float32 deg, one rounding (``lon0 -+ 360``
    are exact float32 values; ``lon`` within [-180, 540) of it)."""
    lon0 = q[F_LON0]
    turn = lon - lon0
    reference = q[F_LON0_LO] if turn < -_HALF_TURN else lon0
    reference = q[F_LON0_HI] if turn >= _HALF_TURN else reference
    return _f(lon - reference)


def screen_code(lon, lat, energy, bits, q, tan):
    """The screening code of one event as the kernels run it, in four stages.

    The kernels run each stage as a vectorised loop of its own over a chunk of events
    (:func:`screen_native`, :func:`screen_project`, :func:`energy_pixel`,
    :func:`screen_bins`): each loop keeps its constants in registers, where one loop
    of everything would spill them (AVX2's 16 registers).

    Parameters
    ----------
    lon, lat : float32 or float64
        Event longitude and latitude in the event frame, deg (the column's dtype: the
        offsets from the reference are rounded once, to float32).
    energy : float32
        Event energy in the axis unit (float64 columns rounded to float32: the
        screening bands hold that rounding; the recheck reads the column itself).
    bits : int32
        ``energy``'s bits (int32 view).
    q : tuple of float32
        Packed parameters (made for float32 energies).
    tan : bool
        The projection, a compile-time constant of the caller's loop (TAN or CAR).

    Returns
    -------
    int32
        The flat bin, ``OUTSIDE``, :data:`AMBIGUOUS` or :data:`RECHECK`.
    """
    mx, my, mz, status = screen_native(lon, lat, q)
    px, py, status = screen_project(mx, my, mz, status, q, tan)
    return screen_bins(px, py, status, energy_pixel(energy, bits, q), energy, q)


def near_map(lon, lat, energy, q):
    """Stage 0: 1 unless the event is outside the map for sure (int32).

    The map's image in the offsets ``(a, b)`` (deg) from the reference lies inside four
    half-planes ``na * a + nb * b <= c`` (``F_SIDES``, from ``screening_params``: the
    map's sides, pushed out to hold its whole boundary and margins), and energies
    outside ``[F_ELO, F_EHI]`` (the axis' ends with a margin) lie outside the axis; an
    event beyond one is outside, whatever its exact bin. Events with a coordinate or
    an energy the screening would not take (NaN, inf, zero...) are kept: the exact
    math says INVALID.
    """
    a = _offset(lon, q)
    b = _f(lat - q[F_LAT0])
    far = muladd(q[F_SIDES], a, q[F_SIDES + 1] * b) > q[F_SIDES + 2]
    far = far | (muladd(q[F_SIDES + 3], a, q[F_SIDES + 4] * b) > q[F_SIDES + 5])
    far = far | (muladd(q[F_SIDES + 6], a, q[F_SIDES + 7] * b) > q[F_SIDES + 8])
    far = far | (muladd(q[F_SIDES + 9], a, q[F_SIDES + 10] * b) > q[F_SIDES + 11])
    far = far | (energy < q[F_ELO]) | (energy > q[F_EHI])
    usable = (energy >= q[F_EMIN]) & (energy < _INF) & (abs(a) < _INF) & (abs(b) < _INF)
    return _ZERO_32 if far & usable else _i32(1)


def screen_native(lon, lat, q):
    """Stage 1: ``(mx, my, mz, status)``, the :func:`native_vector` of an event.

    ``status`` (float32): 0 usable, 2 beyond the polynomials' offsets (or NaN): the
    exact math decides.
    """
    a = _offset(lon, q) * _D2R
    b = _f(lat - q[F_LAT0]) * _D2R
    mx, my, mz = native_vector(a, b, q)
    usable = (abs(a) <= _MAX_OFFSET) & (abs(b) <= _MAX_OFFSET)
    return mx, my, mz, _ZERO if usable else _TWO


def screen_project(mx, my, mz, status, q, tan):
    """Stage 2: ``(px, py, status)``; ``status`` 1 where CAR's series do not reach."""
    px, py, far = project(mx, my, mz, q, tan)
    return px, py, status if status == _TWO else (_ONE if far else _ZERO)


def energy_pixel(energy, bits, q):
    """Stage 3: the fractional energy bin (float32 energy, its int32 ``bits``)."""
    pe = (log_from_bits32(bits) if q[F_LOG] == _ONE else energy) - q[F_E0]
    return muladd(pe, q[F_EINV], -_HALF)


def screen_bins(px, py, status, pe, energy, q):
    """Stage 4: the code (a flat bin, ``OUTSIDE``, :data:`AMBIGUOUS` or :data:`RECHECK`)."""
    usable = (status != _TWO) & (energy >= q[F_EMIN]) & (energy < _INF)
    fx, near_x, sure_x = _bin_of(px, q[F_TOL], q[F_TOL_SURE])
    fy, near_y, sure_y = _bin_of(py, q[F_TOL], q[F_TOL_SURE])
    fe, near_e, sure_e = _bin_of(pe, q[F_ETOL], q[F_ETOL_SURE])
    inside = (fx >= _ZERO) & (fy >= _ZERO) & (fe >= _ZERO)
    inside = inside & (fx < q[F_NX]) & (fy < q[F_NY]) & (fe < q[F_NE])
    # indices converted only where inside (a NaN or huge float has no int32)
    ix = _i32(fx if inside else _ZERO)
    iy = _i32(fy if inside else _ZERO)
    ie = _i32(fe if inside else _ZERO)
    flat = _i32(_i32(_i32(ie * _i32(q[F_NY])) + iy) * _i32(q[F_NX])) + ix
    code = _i32(flat) if inside else _OUTSIDE_32
    code = _RECHECK_32 if near_x | near_y | near_e else code
    code = _AMBIGUOUS_32 if sure_x | sure_y | sure_e else code
    code = _i32(q[F_FAR_CODE]) if status == _ONE else code
    return code if usable else _RECHECK_32  # incl. NaN/inf, energy <= 0
