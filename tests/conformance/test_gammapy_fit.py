"""gammapy 2.1's own ``gammapy.modeling.tests.test_fit`` with rtafast's drop-ins swapped in."""

from _loader import load_gammapy_tests

globals().update(load_gammapy_tests("gammapy.modeling.tests.test_fit"))
