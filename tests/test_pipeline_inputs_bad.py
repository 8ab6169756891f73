"""The pipeline's input, bad input: one :class:`InputError` line naming the problem.

Missing, unreadable and truncated files, missing HDUs, columns and IRFs, IRFs not covering
the selection, overlapping observations, DataStore runs without files. The small DL3 files
are written into ``tmp_path`` by the helpers of ``tests/pipeline_input_helpers.py``; the
DataStore test uses the H.E.S.S. data (skipped without ``../shared/data``).
"""

import shutil

import pytest
from astropy.io import fits

from rtafast.pipeline.inputs import InputError, open_observations
from tests.pipeline_input_helpers import (
    analytic_irf_hdus,
    file_config,
    make_config,
    random_events,
    write_events_file,
    write_irf_file,
)


@pytest.fixture(scope="module")
def irf_hdus():
    """The analytic CTA-like IRFs as FITS HDUs, by gammapy name."""
    return analytic_irf_hdus()


@pytest.fixture(scope="module")
def irf_file(tmp_path_factory, irf_hdus):
    return write_irf_file(tmp_path_factory.mktemp("irf") / "irf.fits", irf_hdus)


# -- a DataStore: runs asked for without their files ----------------------------------------


def test_datastore_obs_id_without_files_is_an_error(hess_dir):
    config = make_config(f"input.datastore={hess_dir}", "input.obs_ids=[33787, 20136]")
    with pytest.raises(InputError, match=r"observation 20136: file\(s\) not found: .*020136"):
        open_observations(config)
    config = make_config(f"input.datastore={hess_dir}", "input.obs_ids=[1]")
    with pytest.raises(InputError, match="observation 1 is not in"):
        open_observations(config)


# -- bad input: one line naming the problem -------------------------------------------------


def _truncated(path, name, fraction):
    data = path.read_bytes()
    out = path.with_name(name)
    out.write_bytes(data[: int(len(data) * fraction)])
    return out


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, events_file, irf_hdus):
    """name -> (event file, irf file or None, overrides)."""
    tmp_path = tmp_path_factory.mktemp("bad")
    good = events_file
    with_irfs = write_events_file(
        tmp_path / "with_irfs.fits", random_events(), extra_hdus=irf_hdus.values()
    )
    gz = tmp_path / "with_irfs.fits.gz"
    fits.open(with_irfs).writeto(gz)
    no_psf = tmp_path / "irf_no_psf.fits"
    hdus = [h for name, h in irf_hdus.items() if name != "psf"]
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(no_psf)
    not_fits = tmp_path / "notes.fits"
    not_fits.write_text("these are not FITS data\n")
    no_events = tmp_path / "no_events.fits"
    fits.HDUList([fits.PrimaryHDU(), *list(fits.open(good))[2:]]).writeto(no_events)
    return {
        "missing file": (tmp_path / "absent.fits", None, ()),
        "not FITS": (not_fits, None, ()),
        "truncated gz": (_truncated(gz, "cut.fits.gz", 0.6), None, ()),
        "truncated FITS": (_truncated(with_irfs, "cut_data.fits", 0.6), None, ()),
        "truncated header": (_truncated(with_irfs, "cut_header.fits", 0.01), None, ()),
        "no EVENTS HDU": (no_events, None, ()),
        "missing column": (
            write_events_file(tmp_path / "no_energy.fits", random_events(), drop=("ENERGY",)),
            None,
            (),
        ),
        "no GTI": (
            write_events_file(tmp_path / "no_gti.fits", random_events(), drop=("GTI",)),
            None,
            (),
        ),
        "no IRFs": (good, None, ()),
        "IRF without PSF": (good, no_psf, ()),
        "IRF file missing": (good, tmp_path / "caldb.fits", ()),
        "IRF energies": (
            with_irfs,
            None,
            ("selection.energy_min=300 TeV", "selection.energy_max=1 PeV"),
        ),
        "centre beyond IRF offsets": (with_irfs, None, ("target.ra=100.0", "target.dec=22.0")),
    }


BAD_INPUT_MESSAGES = {
    "missing file": r"absent\.fits: event file not found",
    "not FITS": r"notes\.fits: unreadable or truncated FITS file",
    "truncated gz": r"cut\.fits\.gz: unreadable or truncated FITS file \(EOFError",
    "truncated FITS": r"cut_data\.fits: (unreadable or )?truncated",
    "truncated header": r"cut_header\.fits: (unreadable or )?truncated",
    "no EVENTS HDU": r"no_events\.fits: no EVENTS HDU \(HDUs: PRIMARY, GTI\)",
    "missing column": r"no_energy\.fits: HDU EVENTS lacks column\(s\) ENERGY \(has: TIME, RA, DEC",
    "no GTI": r"no_gti\.fits: no GTI HDU",
    "no IRFs": r"obs1\.fits: IRF HDU\(s\) missing: AEFF, EDISP, PSF, BKG",
    "IRF without PSF": r"obs1\.fits: IRF HDU\(s\) missing: PSF$",
    "IRF file missing": r"caldb\.fits: IRF file not found",
    "IRF energies": r"with_irfs\.fits: the IRF's effective area covers 0\.03\u2013200 TeV, "
    r"which does not overlap the selection's energy range 300\u20131e\+03 TeV",
    "centre beyond IRF offsets": r"with_irfs\.fits: the map centre is 15\.\d\d deg from the "
    r"pointing, beyond the IRF's offset range \(up to 5\.00 deg\)",
}


@pytest.mark.filterwarnings("ignore:File may have been truncated")
@pytest.mark.parametrize("kind", list(BAD_INPUT_MESSAGES))
def test_bad_input_is_one_line_naming_the_problem(bad_files, kind):
    path, irf, overrides = bad_files[kind]
    settings = [f"input.events=['{path}']", *overrides]
    if irf is not None:
        settings.append(f"input.irf_file={irf}")
    with pytest.raises(InputError, match=BAD_INPUT_MESSAGES[kind]) as error:
        open_observations(make_config(*settings))
    assert "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_overlapping_observations_are_an_error(events_file, irf_file, tmp_path):
    copy = shutil.copy(events_file, tmp_path / "copy.fits")
    with pytest.raises(InputError, match=r"copy\.fits starts at .* before .*obs1\.fits ends"):
        open_observations(file_config([events_file, copy], irf_file))
