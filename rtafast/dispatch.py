"""Which path each drop-in call took: rtafast's kernels or gammapy's own code.

Every public drop-in (``Fit.run``, ``TSMapEstimator.run``, ``ExcessMapEstimator.run``,
``MapDatasetMaker.run``) calls :func:`record` once per call, with ``"fast"`` when
rtafast's kernels did the work and ``"gammapy"`` with a reason code when it handed
the call to gammapy. The counts answer "did the drop-in pass gammapy's tests by
delegating?" (the conformance suite reports them per module) and are cheap enough to
keep on in production (a dictionary increment per call).

Examples
--------
>>> from rtafast import dispatch
>>> dispatch.reset()
>>> dispatch.record("Fit.run", "gammapy", "non-linear-parameter")
>>> dispatch.counts()
{('Fit.run', 'gammapy', 'non-linear-parameter'): 1}
"""

import logging
from collections import Counter

__all__ = ["FAST", "GAMMAPY", "record", "counts", "reset"]

log = logging.getLogger(__name__)

#: Path names.
FAST = "fast"
GAMMAPY = "gammapy"

_counts = Counter()


def record(entry, path, reason=None, detail=None):
    """Count one call of a drop-in.

    Parameters
    ----------
    entry : str
        The drop-in method, e.g. ``"TSMapEstimator.run"``.
    path : {"fast", "gammapy"}
        Where the work ran.
    reason : str, optional
        Short code of why the call was delegated (``path == "gammapy"``), e.g.
        ``"non-linear-parameter"``.
    detail : str, optional
        Human-readable explanation, logged at INFO level for delegated calls.
    """
    if path not in (FAST, GAMMAPY):
        raise ValueError(f"path must be {FAST!r} or {GAMMAPY!r}, got {path!r}")
    if path == GAMMAPY:
        if not reason:
            raise ValueError(f"a delegated call of {entry} needs a reason")
        log.info(
            "rtafast %s delegates to gammapy (%s)%s", entry, reason, f": {detail}" if detail else ""
        )
    _counts[(entry, path, reason if path == GAMMAPY else None)] += 1


def counts():
    """Counts so far: ``{(entry, path, reason): n}`` (``reason`` None on the fast path)."""
    return dict(_counts)


def reset():
    """Set every count back to zero."""
    _counts.clear()
