"""The IRFs of the simulated GRB observations and the DL3 files they are written to.

:func:`find_prod5_irf` finds a CTAO prod5 IRF file in the shared data (``$RTAFAST_DATA``
or ``../shared/data``: ``cta-caldb/``); ``_resolve_irf`` turns the ``irf`` choice of
:func:`rtafast.simulate_grb.simulate_grb_observations` (``"auto"``, a prod5 site,
``"analytic"`` or a GADF file) into gammapy's IRF dict; ``_irf_hdus`` makes the IRF HDUs
written with each observation and ``_write_observation`` writes an observation's events,
GTI and those HDUs atomically as one DL3 file.
"""

import os
import tempfile
from pathlib import Path

__all__ = [
    "PROD5_IRF_FILES",
    "find_prod5_irf",
]

#: The CTAO prod5 v0.1 IRFs of the shared data (20 deg zenith, average azimuth, 50 h).
PROD5_IRF_FILES = {
    "south": "Prod5-South-20deg-AverageAz-14MSTs37SSTs.180000s-v0.1.fits.gz",
    "north": "Prod5-North-20deg-AverageAz-4LSTs09MSTs.180000s-v0.1.fits.gz",
}
_DATA_ENV_VARIABLE = "RTAFAST_DATA"
_IRF_CHOICES = ("auto", "prod5-south", "prod5-north", "analytic")


def _data_dir_candidates():
    """Shared-data folders to look in: ``$RTAFAST_DATA`` alone when set, else ``../shared/data``."""
    value = os.environ.get(_DATA_ENV_VARIABLE, "").strip()
    if value:
        return [Path(value).expanduser()]
    project_root = Path(__file__).resolve().parent.parent
    candidates = [project_root.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    return list(dict.fromkeys(candidates))


def find_prod5_irf(site="south"):
    """Path of the prod5 IRF file of ``site`` in the shared data, or None when absent.

    Looks in ``$RTAFAST_DATA/cta-caldb`` when ``$RTAFAST_DATA`` is set (only there),
    else in ``../shared/data/cta-caldb`` relative to the project and to the working
    directory (the rule of the tests' data finder).

    Parameters
    ----------
    site : {"south", "north"}
        Array site.

    Returns
    -------
    path : `~pathlib.Path` or None
    """
    if site not in PROD5_IRF_FILES:
        raise ValueError(f"site must be one of {sorted(PROD5_IRF_FILES)}, got {site!r}")
    for folder in _data_dir_candidates():
        path = folder / "cta-caldb" / PROD5_IRF_FILES[site]
        if path.is_file():
            return path
    return None


def _resolve_irf(irf):
    """``(irf dict, name, path or None, site)`` of an ``irf`` choice or a GADF file path."""
    from gammapy.irf import load_irf_dict_from_file

    from .simulate import analytic_cta_irfs

    choice = str(irf)
    if choice in ("auto", "prod5-south", "prod5-north"):
        site = "north" if choice == "prod5-north" else "south"
        path = find_prod5_irf(site)
        if path is None and choice != "auto":
            raise ValueError(
                f"irf={choice!r}: {PROD5_IRF_FILES[site]} not found in the shared data "
                f"(cta-caldb/ under ${_DATA_ENV_VARIABLE} or ../shared/data)"
            )
        if path is not None:
            return load_irf_dict_from_file(path), f"prod5-{site}", path, site
        choice = "analytic"
    if choice == "analytic":
        irfs = analytic_cta_irfs()
        irfs["aeff"].meta.update(TELESCOP="CTA", INSTRUME="analytic CTA-like")
        return irfs, "analytic", None, "south"
    path = Path(choice).expanduser()
    if not path.is_file():
        raise ValueError(f"irf must be one of {_IRF_CHOICES} or an IRF file, got {irf!r}")
    return load_irf_dict_from_file(path), path.name, path, "south"


def _irf_hdus(irfs, irf_path):
    """The IRF HDUs to write with each observation.

    From a file: its RESPONSE HDUs as distributed (big-endian already: astropy byte-swaps
    gammapy's little-endian tables row by row, ~1 s for prod5's energy dispersion). Else
    gammapy's DL3 tables; gammapy 2.1 writes a parametric PSF without its HDUCLAS
    keywords (``Observation.read`` would then skip it): they are set from gammapy's own
    DL3 specification.
    """
    from astropy.io import fits
    from gammapy.irf.io import IRF_DL3_HDU_SPECIFICATION

    if irf_path is not None:
        with fits.open(irf_path) as hdus:
            return [
                hdu.copy()
                for hdu in hdus[1:]
                if str(hdu.header.get("HDUCLAS1", "")).upper() == "RESPONSE"
            ]
    result = []
    for irf in irfs.values():
        hdu = irf.to_table_hdu(format="gadf-dl3")
        spec = IRF_DL3_HDU_SPECIFICATION.get(getattr(irf, "tag", None), {})
        for key, value in spec.get("mandatory_keywords", {}).items():
            hdu.header.setdefault(key, value)
        result.append(hdu)
    return result


def _write_observation(observation, irf_hdus, path):
    """Write ``observation``'s events and GTI, then ``irf_hdus``, atomically to ``path``.

    ``TIMESYS`` is written upper case (``TT``), as in the FITS standard and the H.E.S.S. files.
    """
    from astropy.io import fits

    path = Path(path)
    handle, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        observation.write(tmp_name, overwrite=True, include_irfs=False, format="gadf")
        with fits.open(tmp_name, mode="update") as hdus:
            for name in ("EVENTS", "GTI"):  # gammapy writes the scale's name: "tt"
                hdus[name].header["TIMESYS"] = hdus[name].header["TIMESYS"].upper()
            for hdu in irf_hdus:
                hdus.append(hdu.copy())
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
