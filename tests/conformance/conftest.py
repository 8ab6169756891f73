"""The conformance suite: gammapy 2.1's own test modules with rtafast swapped in.

Sets ``GAMMAPY_DATA`` to the shared data (before gammapy's modules are loaded: their
``requires_data`` marks read it at import), skips the tests listed in
:data:`contract.MISSING_DATA` while their file is absent, runs those of
:data:`contract.KNOWN_FAILURES` as strict expected failures, and counts, per module, the
drop-in calls that ran rtafast's kernels and those delegated to gammapy (by reason).
A delegation whose reason is not in :data:`contract.DELEGATIONS` fails its test.
Set ``RTAFAST_CONFORMANCE_REPORT=path.json`` to write the counts to a file.
"""

import json
import os
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib
import pytest
from contract import DELEGATIONS, GAMMAPY_MODULES, KNOWN_FAILURES, MISSING_DATA

from rtafast import dispatch
from rtafast_devtools.reference_data import DataNotFoundError, find_data_dir

matplotlib.use("agg")

if "GAMMAPY_DATA" not in os.environ:
    try:
        os.environ["GAMMAPY_DATA"] = str(find_data_dir("tests"))
    except DataNotFoundError:
        pass  # gammapy's requires_data() marks then skip with "Missing data: gammapy-data"

_calls = defaultdict(Counter)  # test file -> {(entry, path, reason): n}
_outcomes = defaultdict(Counter)  # test file -> {"passed": n, ...}


def pytest_collection_modifyitems(config, items):
    data = os.environ.get("GAMMAPY_DATA")
    for item in items:
        if Path(item.path).name not in GAMMAPY_MODULES:
            continue
        missing = MISSING_DATA.get(item.originalname)
        if missing and data and not (Path(data) / missing[0]).exists():
            reason = (
                f"fails with gammapy itself: $GAMMAPY_DATA/{missing[0]} not here ({missing[1]})"
            )
            item.add_marker(pytest.mark.skip(reason=reason))
        known = KNOWN_FAILURES.get(item.originalname)
        if known:
            item.add_marker(pytest.mark.xfail(strict=True, reason=f"known failure: {known}"))


@pytest.fixture(autouse=True)
def _count_dispatch(request):
    """Attribute the drop-in calls of each test to its module; refuse unlisted delegations."""
    before = Counter(dispatch.counts())
    yield
    new = Counter(dispatch.counts())
    new.subtract(before)
    new = +new
    _calls[Path(request.node.path).name].update(new)
    unlisted = {reason for (_, path, reason) in new if path == "gammapy"} - set(DELEGATIONS)
    if unlisted:
        pytest.fail(f"delegated to gammapy for reasons not listed in contract.py: {unlisted}")


def pytest_runtest_logreport(report):
    name = Path(report.fspath).name
    if name not in GAMMAPY_MODULES:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = report.outcome
        if hasattr(report, "wasxfail"):
            outcome = "xpassed" if report.passed else "xfailed"
        _outcomes[name][outcome] += 1


def _summary():
    rows = {}
    for name, module in GAMMAPY_MODULES.items():
        calls = _calls.get(name, Counter())
        fast = sum(n for (_, path, _), n in calls.items() if path == "fast")
        delegated = Counter()
        for (entry, path, reason), n in calls.items():
            if path == "gammapy":
                delegated[f"{entry}: {reason}"] += n
        rows[module] = {
            "outcomes": dict(_outcomes.get(name, {})),
            "fast_calls": fast,
            "delegated_calls": dict(delegated),
        }
    return rows


def pytest_terminal_summary(terminalreporter):
    if not _outcomes:
        return
    rows = _summary()
    write = terminalreporter.write_line
    terminalreporter.section("rtafast conformance: drop-in calls per gammapy test module")
    for module, row in rows.items():
        outcomes = ", ".join(f"{n} {k}" for k, n in sorted(row["outcomes"].items()))
        delegated = sum(row["delegated_calls"].values())
        write(f"{module}: {outcomes}; fast path {row['fast_calls']}, delegated {delegated}")
        for what, n in sorted(row["delegated_calls"].items()):
            write(f"    delegated {n}x  {what}  ({DELEGATIONS.get(what.split(': ')[-1], '?')})")
    target = os.environ.get("RTAFAST_CONFORMANCE_REPORT")
    if target:
        Path(target).write_text(json.dumps(rows, indent=2))
