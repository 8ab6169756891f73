"""The input's vocabulary: the error, the bunch and the counts of :mod:`rtafast.pipeline.inputs`.

:class:`InputError` is the one-line error of a file or observation that cannot be analysed;
:class:`Bunch` is the selected events of one time interval of one observation;
:class:`InputStats` counts what the input did with every file and event. ``REQUIRED_COLUMNS``
and ``REQUIRED_IRFS`` name what every observation must have. All are re-exported by
:mod:`rtafast.pipeline.inputs`, their public home.
"""

import logging
from dataclasses import dataclass, field, fields

import astropy.units as u
from astropy.time import Time
from gammapy.data import EventList, Observation

__all__ = ["Bunch", "InputError", "InputStats", "REQUIRED_COLUMNS", "REQUIRED_IRFS"]

#: The input's one logger, named after its public module (as before the split).
log = logging.getLogger("rtafast.pipeline.inputs")

#: Columns every EVENTS HDU must have.
REQUIRED_COLUMNS = ("TIME", "RA", "DEC", "ENERGY")
#: IRF components every observation must have (gammapy names), with their HDU names.
REQUIRED_IRFS = {"aeff": "AEFF", "edisp": "EDISP", "psf": "PSF", "bkg": "BKG"}


class InputError(ValueError):
    """An input file or observation that cannot be analysed (one line naming the problem)."""


@dataclass(frozen=True)
class Bunch:
    """The selected events of one time interval of one observation.

    Attributes
    ----------
    events : `~gammapy.data.EventList`
        Events in ``[start, stop)``, sorted by time, energy- and ROI-selected (may be empty).
    observation : `~gammapy.data.Observation`
        The observation they belong to (IRFs, pointing, dead time), in memory.
    start, stop : `~astropy.time.Time`
        The bunch's interval (TT).
    runid : int
        Observation id.
    last_event_time : `~astropy.time.Time` or None
        Time of the bunch's last event (None when empty): the start of its time-to-alert.
    """

    events: EventList
    observation: Observation
    start: Time
    stop: Time
    runid: int
    last_event_time: Time | None

    @property
    def duration(self):
        """``stop - start`` as a Quantity (s)."""
        return (self.stop - self.start).to(u.s)


@dataclass
class InputStats:
    """What the input did with every file and event (counted, reported, never silent).

    Event accounting, summed over observations::

        n_events_read = n_duplicates + n_outside_selection + n_events_selected
        n_events_selected = n_events_in_bunches + n_outside_gti + n_outside_time_range

    Attributes
    ----------
    n_files : int
        Files (or DataStore runs) read successfully.
    n_observations : int
        Observations cut into bunches.
    n_skipped : int
        Files or runs skipped (watch mode: unreadable files; a DataStore without
        ``obs_ids``: runs whose files are absent), each reason in ``skipped``.
    n_events_read : int
        Rows of the EVENTS HDUs.
    n_unsorted : int
        Events listed after a later event (fixed by sorting).
    n_duplicates : int
        Exact duplicate rows dropped.
    n_outside_selection : int
        Events outside the energy range or the ROI.
    n_events_selected : int
        Events passing the energy and ROI selection.
    n_outside_gti : int
        Selected events outside every GTI interval of their observation.
    n_outside_time_range : int
        Selected events in a GTI but outside the analysis time range (before
        trigger + start delay, ``time_start``, or after ``time_stop``).
    n_events_in_bunches : int
        Events handed out in bunches.
    n_bunches, n_empty_bunches : int
        Bunches yielded, and those without events (still yielded: live time grows).
    read_seconds : float
        Wall time spent reading and preparing observations, s.
    skipped : list of str
        One line per skipped file or run.
    """

    n_files: int = 0
    n_observations: int = 0
    n_skipped: int = 0
    n_events_read: int = 0
    n_unsorted: int = 0
    n_duplicates: int = 0
    n_outside_selection: int = 0
    n_events_selected: int = 0
    n_outside_gti: int = 0
    n_outside_time_range: int = 0
    n_events_in_bunches: int = 0
    n_bunches: int = 0
    n_empty_bunches: int = 0
    read_seconds: float = 0.0
    skipped: list = field(default_factory=list)

    def skip(self, reason):
        """Count one skipped file or run and log its reason (one warning line)."""
        self.n_skipped += 1
        self.skipped.append(str(reason))
        log.warning("skipped: %s", reason)

    def as_dict(self):
        """The counts as a plain dict (for JSON outputs)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def summary(self):
        """One line: files, observations, events and bunches."""
        return (
            f"input: {self.n_files} file(s), {self.n_observations} observation(s), "
            f"{self.n_skipped} skipped; events: {self.n_events_read} read, "
            f"{self.n_duplicates} duplicate(s) dropped, {self.n_unsorted} out of order, "
            f"{self.n_events_selected} selected, {self.n_events_in_bunches} in bunches, "
            f"{self.n_outside_gti} outside GTIs, {self.n_outside_time_range} outside the "
            f"time range; {self.n_bunches} bunch(es), {self.n_empty_bunches} empty; "
            f"read {self.read_seconds:.2f} s"
        )
