"""gammapy 2.1's own test module ``test_excess`` (estimators) with rtafast swapped in."""

from _loader import load_gammapy_tests

globals().update(load_gammapy_tests("gammapy.estimators.map.tests.test_excess"))
