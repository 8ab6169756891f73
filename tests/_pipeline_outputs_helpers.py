"""Helpers shared by the pipeline output tests (test_pipeline_outputs*.py): a fixed
trigger and wall clock, a candidate's fields as the runner passes them, and the alert
book and alerts behind the test modules' fixtures."""

from astropy.time import Time

from rtafast.pipeline.alerts import AlertBook

__all__ = ["EMITTED", "T0", "candidate", "clock", "first_and_update", "make_book"]

T0 = Time("2026-01-01T00:00:00", scale="tt")
EMITTED = Time("2026-01-01T00:01:00", scale="utc")


def clock():
    return EMITTED


def candidate(**changes):
    """A candidate's fields as the runner passes them (a results row plus trigger)."""
    fields = dict(
        runid=33787, window=0, window_start=0.0, window_stop=10.0, texp=9.5, candidate=1,
        sqrt_ts=6.0, ts=36.0, flux=2.0e-11, flux_err=3.0e-12, flux_ul=2.6e-11,
        ra=329.717, dec=-30.226, r68=0.02, r95=0.04, oncounts=60, offcounts=110,
        alpha=0.1, excess=49.0, sigma=8.1, offset=0.5, delay=10.0, backend="numba",
        window_kind="cumulative", trigger_time=T0,
    )
    fields.update(changes)
    return fields


def make_book():
    """The alert book of the tests: a fixed target, false-alarm rate, energy range and
    wall clock (:func:`clock`)."""
    return AlertBook(target_name="PKS 2155-304", far=2.3e-5, energy_range=(1.0, 10.0),
                     clock=clock)


def first_and_update(book):
    """An initial alert and its update, from two candidates considered by ``book``."""
    first = book.consider(candidate())
    update = book.consider(candidate(sqrt_ts=7.5, ts=56.25, window=1, window_stop=20.0))
    return first, update
