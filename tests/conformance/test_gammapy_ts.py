"""gammapy 2.1's own ``gammapy.estimators.map.tests.test_ts`` with rtafast's drop-ins swapped in."""

from _loader import load_gammapy_tests

globals().update(load_gammapy_tests("gammapy.estimators.map.tests.test_ts"))
