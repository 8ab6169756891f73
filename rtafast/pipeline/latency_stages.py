"""The vocabulary of the latency profile: pipeline stages, their RTA-SCI names, checks.

The stages timed in each window (:data:`STAGES`), RTA-SCI's timing names and the stages
they sum (:data:`RTASCI_STAGES`, :data:`STAGE_TO_RTASCI`), the percentiles reported
(:data:`PERCENTILES`), and the checks of a stage name and of a number of seconds shared by
the recording (:mod:`rtafast.pipeline.latency`) and the reports
(:mod:`rtafast.pipeline.latency_report`).
"""

from __future__ import annotations

import math

__all__ = [
    "STAGES",
    "RTASCI_STAGES",
    "STAGE_TO_RTASCI",
    "PERCENTILES",
]

#: Pipeline stages timed in each window, in pipeline order.
#: ``lima_time``, ``cusum`` and ``lift`` time the target's time-aware statistics
#: (``detection.method`` a time-aware method; 0 otherwise).
STAGES = ("read", "select", "accumulate", "detect", "localise", "fit", "photometry",
          "lima_time", "cusum", "lift", "write")

#: RTA-SCI's timing names and the rtafast records they sum. ``"setup"`` is the run's
#: one-off setup (:meth:`LatencyProfile.setup`), ``"total"`` the window's wall time
#: (stages plus untimed code between them). RTA-SCI has no stage for writing results:
#: ``write`` only counts in ``"total"``. RTA-SCI's ``Imports`` are not measured here.
RTASCI_STAGES: dict[str, tuple[str, ...]] = {
    "setup": ("setup",),
    "data reduction": ("read", "select", "accumulate"),
    "blind search": ("detect",),
    "statistics": ("photometry", "lima_time", "cusum", "lift"),
    "modelling": ("localise",),
    "fitting": ("fit",),
    "total": ("total",),
}

#: The RTA-SCI name of each stage (``None``: no RTA-SCI counterpart).
STAGE_TO_RTASCI: dict[str, str | None] = {
    stage: next((name for name, parts in RTASCI_STAGES.items() if stage in parts), None)
    for stage in STAGES
}

#: Percentiles reported for every timing (numpy's default ``"linear"`` method).
PERCENTILES = (50, 95, 99)

_STAGE_SLOT = {name: slot for slot, name in enumerate(STAGES)}


def _seconds(value, what: str) -> float:
    """``value`` as a float number of seconds, finite and >= 0, else ValueError naming ``what``."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds >= 0.0):
        raise ValueError(f"{what}: expected a finite number of seconds >= 0, got {value!r}")
    return seconds


def _slot(stage: str) -> int:
    try:
        return _STAGE_SLOT[stage]
    except (KeyError, TypeError):
        raise ValueError(
            f"latency stage {stage!r}: unknown stage (allowed: {', '.join(STAGES)})"
        ) from None
