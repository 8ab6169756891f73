"""rtafast.estimators.ExcessMapEstimator equals gammapy 2.1's within 1e-6 relative."""

import astropy.units as u
import numpy as np
import pytest
from gammapy.estimators import ExcessMapEstimator as GammapyExcessMapEstimator

from rtafast.estimators import ExcessMapEstimator
from rtafast.estimators.convolution import convolve_images, tophat_kernel

pytestmark = pytest.mark.data

SELECTION = ["errn-errp", "ul", "sensitivity"]


def _assert_same(result, reference):
    assert result.available_quantities == reference.available_quantities
    for name in reference.available_quantities:
        expected = reference[name].data
        assert result[name].unit == reference[name].unit, name
        np.testing.assert_array_equal(np.isnan(result[name].data), np.isnan(expected), name)
        np.testing.assert_allclose(result[name].data, expected, rtol=1e-6, atol=0, err_msg=name)


@pytest.mark.parametrize("energy_edges", [None, [1, 3, 10] * u.TeV])
@pytest.mark.parametrize("fixture", ["hess_crab_stacked", "cta_1dc_gc"])
def test_excess_map_equals_gammapy(request, fixture, energy_edges):
    dataset = request.getfixturevalue(fixture)
    kwargs = dict(correlation_radius="0.1 deg", selection_optional=SELECTION)
    kwargs["energy_edges"] = energy_edges
    reference = GammapyExcessMapEstimator(**kwargs).run(dataset)
    result = ExcessMapEstimator(**kwargs).run(dataset)
    _assert_same(result, reference)
    assert np.nanmax(result["sqrt_ts"].data) > 5


def test_convolution_matches_scipy_direct():
    rng = np.random.default_rng(1)
    image = rng.poisson(2.0, size=(2, 30, 40)).astype(float)
    kernel = tophat_kernel(3.0)
    out = convolve_images(image, kernel)
    from scipy.signal import convolve

    direct = convolve(image[1], kernel, method="direct", mode="same")
    np.testing.assert_allclose(out[1], direct, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32 and out.shape == image.shape
