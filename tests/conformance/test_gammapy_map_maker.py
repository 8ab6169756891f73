"""gammapy 2.1's own ``gammapy.makers.tests.test_map`` with rtafast's drop-ins swapped in."""

from _loader import load_gammapy_tests

globals().update(load_gammapy_tests("gammapy.makers.tests.test_map"))
