"""Constants of the TS scan shared by every backend: output rows and brentq's settings."""

__all__ = ["OUTPUT_NAMES", "N_OUTPUTS", "RATIO_INIT", "BRENTQ_XTOL", "BRENTQ_RTOL_MIN"]

#: Rows of the output array ``(N_OUTPUTS, npix)`` of every backend's ``ts_scan``, in order.
OUTPUT_NAMES = (
    "norm",
    "norm_err",
    "ts",
    "stat",
    "stat_null",
    "niter",
    "success",
    "npred",
    "npred_excess",
    "norm_errn",
    "norm_errp",
    "norm_ul",
)
N_OUTPUTS = len(OUTPUT_NAMES)
#: Initial value of the minimum of ``b / m`` (gammapy's ``1e14``; a norm, dimensionless).
RATIO_INIT = 1e14
#: brentq's absolute tolerance on the norm (scipy's default, which gammapy keeps).
BRENTQ_XTOL = 2e-12
#: Smallest ``rtol`` scipy's brentq accepts (``4 eps``; below it raises ValueError).
BRENTQ_RTOL_MIN = 4.0 * 2.220446049250313e-16
