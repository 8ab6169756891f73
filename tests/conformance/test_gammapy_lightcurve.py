"""gammapy 2.1's own test module ``test_lightcurve`` (estimators) with rtafast swapped in."""

from _loader import load_gammapy_tests

globals().update(load_gammapy_tests("gammapy.estimators.points.tests.test_lightcurve"))
