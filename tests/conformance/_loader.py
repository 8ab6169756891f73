"""Load one of gammapy's own test modules with rtafast's drop-ins swapped in.

A gammapy user switches to rtafast by changing an import line. This loader does the
same to gammapy's test modules: while the module's source runs, rtafast's classes
stand in gammapy's namespaces (``gammapy.estimators.TSMapEstimator`` is rtafast's,
...), so the module's ``from gammapy.estimators import TSMapEstimator`` binds
rtafast's class; gammapy's namespaces are given back right after, so nothing else
in the process (rtafast's delegations, the other test files) sees the swap.

The source is gammapy's installed file, compiled under its own path (tracebacks
point into it), with the relaxations of :mod:`contract` applied: each names one
exact source line, which must occur as often as listed, and is replaced by ``pass``
(line numbers unchanged).
"""

import contextlib
import importlib
import types
from pathlib import Path

from contract import RELAXATIONS

import rtafast
from rtafast.makers import MapDatasetMaker
from rtafast.makers.reflected import ReflectedRegionsBackgroundMaker
from rtafast.makers.regions import ReflectedRegionsFinder, WobbleRegionsFinder
from rtafast.makers.ring import AdaptiveRingBackgroundMaker, RingBackgroundMaker

__all__ = ["SWAPS", "load_gammapy_tests", "swapped"]

#: gammapy namespace -> {name: rtafast's drop-in}.
SWAPS = {
    "gammapy.estimators": {
        "TSMapEstimator": rtafast.TSMapEstimator,
        "ExcessMapEstimator": rtafast.ExcessMapEstimator,
        "LightCurveEstimator": rtafast.LightCurveEstimator,
    },
    "gammapy.modeling": {"Fit": rtafast.Fit},
    "gammapy.makers": {
        "MapDatasetMaker": MapDatasetMaker,
        "RingBackgroundMaker": RingBackgroundMaker,
        "AdaptiveRingBackgroundMaker": AdaptiveRingBackgroundMaker,
        "ReflectedRegionsBackgroundMaker": ReflectedRegionsBackgroundMaker,
        "ReflectedRegionsFinder": ReflectedRegionsFinder,
        "WobbleRegionsFinder": WobbleRegionsFinder,
    },
}


@contextlib.contextmanager
def swapped(swaps=None):
    """Put rtafast's drop-ins into gammapy's namespaces, and give them back after."""
    swaps = SWAPS if swaps is None else swaps
    saved = []
    try:
        for namespace, names in swaps.items():
            module = importlib.import_module(namespace)
            for name, replacement in names.items():
                saved.append((module, name, getattr(module, name)))
                setattr(module, name, replacement)
        yield
    finally:
        for module, name, original in reversed(saved):
            setattr(module, name, original)


def _relaxed_source(module_name, path):
    """gammapy's source with this module's listed relaxations applied."""
    lines = path.read_text().splitlines(keepends=True)
    for relaxation in RELAXATIONS:
        if relaxation.module != module_name:
            continue
        hits = [i for i, line in enumerate(lines) if line.strip() == relaxation.line]
        if len(hits) != relaxation.count:
            raise RuntimeError(
                f"relaxation of {module_name} matches {len(hits)} lines (listed: "
                f"{relaxation.count}): {relaxation.line!r}; gammapy's test module changed, "
                "review contract.py"
            )
        for hit in hits:
            line = lines[hit]
            indent = line[: len(line) - len(line.lstrip())]
            lines[hit] = f"{indent}pass  # relaxed by rtafast: {relaxation.reason[:60]}\n"
    return "".join(lines)


def load_gammapy_tests(module_name):
    """Import gammapy's test module ``module_name`` with rtafast swapped in.

    Parameters
    ----------
    module_name : str
        e.g. ``"gammapy.estimators.map.tests.test_ts"``.

    Returns
    -------
    dict
        The module's namespace (test functions, fixtures, helpers), to be copied
        into a test file's globals so that pytest collects them there.
    """
    spec = importlib.util.find_spec(module_name)
    path = Path(spec.origin)
    module = types.ModuleType(f"rtafast_conformance.{module_name}")
    module.__file__ = str(path)
    module.__package__ = module_name.rpartition(".")[0]
    code = compile(_relaxed_source(module_name, path), str(path), "exec")
    with swapped():
        exec(code, module.__dict__)
    for namespace, names in SWAPS.items():
        for name, replacement in names.items():
            bound = module.__dict__.get(name)
            if bound is not None and bound is not replacement:
                raise RuntimeError(f"{module_name}.{name} is not rtafast's ({namespace})")
    return {k: v for k, v in module.__dict__.items() if not k.startswith("__")}
