"""Content-keyed caches: IRF maps per observation and geometry, PSF kernels, rescaling.

Everything proportional to a time is kept per unit and scaled by one mechanism,
:mod:`rtafast.cache.scaling`: by the live time / on-time the caller carries (the maker,
a stream window), or by a factor found from the IRF arrays for a gammapy dataset of
unknown origin (:mod:`rtafast.cache.irf_match`).
"""
