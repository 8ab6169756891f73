"""Fixtures shared by several test modules (the root conftest.py has the backends and data)."""

import astropy.units as u
import pytest
from astropy.time import Time

#: Start (and reference time) of the simulated observation.
T0 = Time("2026-01-01T00:00:00", scale="tt")


def host_counts(accumulator):
    """A ``BunchAccumulator``'s counts cube as a NumPy array (it lives on the backend)."""
    return accumulator.backend.to_numpy(accumulator.counts_cube)


@pytest.fixture(scope="module")
def simulated_observation():
    """A one-hour observation near the Crab with the package's analytic CTA-like IRFs."""
    from astropy.coordinates import SkyCoord
    from gammapy.data import FixedPointingInfo, Observation

    from rtafast.simulate import analytic_cta_irfs

    return Observation.create(
        pointing=FixedPointingInfo(fixed_icrs=SkyCoord(83.6, 22.5, unit="deg")),
        livetime=1 * u.h,
        irfs=analytic_cta_irfs(),
        tstart=T0,
        reference_time=T0,
    )


# -- the alert book (tests/test_pipeline_outputs*.py) -------------------------------------
@pytest.fixture
def book():
    from tests._pipeline_outputs_helpers import make_book

    return make_book()


@pytest.fixture
def initial_and_update(book):
    from tests._pipeline_outputs_helpers import first_and_update

    return first_and_update(book)


# -- the pipeline's input (tests/test_pipeline_inputs*.py) ---------------------------------
@pytest.fixture(scope="module")
def events_file(tmp_path_factory):
    """400 events in 0-100 s; GTI [0, 50) and [60, 100): a gap of 10 s."""
    from tests.pipeline_input_helpers import write_gapped_events_file

    return write_gapped_events_file(tmp_path_factory.mktemp("events") / "obs1.fits")


@pytest.fixture(scope="module")
def hess_dir():
    from tests.pipeline_input_helpers import hess_data_dir

    return hess_data_dir()


# -- stream windows (tests/test_pipeline_measure*.py) --------------------------------------
@pytest.fixture(scope="module")
def crab_window(hess_datastore):
    from tests.pipeline_measure_helpers import _crab_window

    return _crab_window(hess_datastore.obs(23523))


@pytest.fixture(scope="module")
def simulated_window():
    from tests.pipeline_measure_helpers import _simulated_window

    return _simulated_window()


@pytest.fixture(scope="module")
def two_pointing_window():
    from tests.pipeline_measure_helpers import _two_pointing_window

    return _two_pointing_window()


@pytest.fixture(params=[pytest.param("crab_window", marks=pytest.mark.data), "simulated_window"])
def window_and_source(request):
    """A window (each of the two fixtures above) and its source's position (deg)."""
    from tests.pipeline_measure_helpers import _window_and_source

    return _window_and_source(request)
