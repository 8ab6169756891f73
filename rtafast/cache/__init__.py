"""Content-keyed caches: IRF maps per observation and geometry, PSF kernels, rescaling."""
