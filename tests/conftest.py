"""Fixtures shared by several test modules (the root conftest.py has the backends and data)."""

import astropy.units as u
import pytest
from astropy.time import Time

#: Start (and reference time) of the simulated observation.
T0 = Time("2026-01-01T00:00:00", scale="tt")


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
