"""gammapy 2.1's own test module ``test_reflected`` (makers) with rtafast swapped in."""

from _loader import load_gammapy_tests

globals().update(load_gammapy_tests("gammapy.makers.background.tests.test_reflected"))
