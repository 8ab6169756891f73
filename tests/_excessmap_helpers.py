"""The comparison shared by the excess-map tests (tests/test_excessmap*.py).

Both modules run rtafast's ``ExcessMapEstimator`` and gammapy's on the same dataset and
compare every output map with :func:`assert_same_maps`; both make an on/off version of
the H.E.S.S. Crab stack with :func:`poisson_on_off`.
"""

import numpy as np
from gammapy.datasets import MapDatasetOnOff
from gammapy.maps import Map


def assert_same_maps(result, reference, exact=False, rtol=1e-6):
    """Same quantities, meta, reference model, and per map the same geometry, unit, dtype.

    The values are the same bit for bit (``exact``), or have the same NaN pattern and agree
    within ``rtol`` (no absolute tolerance).
    """
    assert result.available_quantities == reference.available_quantities
    assert result.meta == reference.meta
    model, reference_model = result.reference_model, reference.reference_model
    assert model.spectral_model.to_dict() == reference_model.spectral_model.to_dict()
    for name in reference.available_quantities:
        expected = reference[name]
        actual = result[name]
        assert actual.geom == expected.geom, name
        assert actual.unit == expected.unit, name
        assert actual.data.dtype == expected.data.dtype, name
        if exact:
            np.testing.assert_array_equal(actual.data, expected.data, err_msg=name)
        else:
            np.testing.assert_array_equal(np.isnan(actual.data), np.isnan(expected.data), name)
            np.testing.assert_allclose(actual.data, expected.data, rtol=rtol, atol=0, err_msg=name)


def poisson_on_off(dataset, name=None):
    """A ``MapDatasetOnOff`` of ``dataset``: acceptance 1 on, 5 off; off counts drawn
    (seed 3) from 5 times its background."""
    off = np.random.default_rng(3).poisson(5 * dataset.background.data)
    counts_off = Map.from_geom(dataset.counts.geom, data=off.astype(np.float32))
    return MapDatasetOnOff.from_map_dataset(
        dataset, acceptance=1, acceptance_off=5, counts_off=counts_off, name=name
    )
