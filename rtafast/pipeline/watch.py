"""Real-time input: event files landing in a watched directory, cut into bunches as they land.

:func:`watch_bunches` polls ``input.watch`` for files matching ``input.watch_pattern``. A
file is taken once its size and modification time are the same at two consecutive polls
(a half-copied file is not read); files already there at the start are taken first, in
name order, and so are files landing together. Each is read and checked like a replay
input (:func:`rtafast.pipeline.inputs.read_observation`,
:func:`~rtafast.pipeline.inputs.check_observation`) and its bunches are yielded at once.
A bad file (unreadable, missing IRFs, earlier than the observations already processed)
is skipped: counted in :class:`~rtafast.pipeline.inputs.InputStats` with its reason, one
warning line, never fatal. The watch ends after ``input.watch_idle_timeout`` without a
new file, or when the ``stop`` event is set.
"""

import threading
import time
from pathlib import Path

import astropy.units as u

from .inputs import (
    BunchCutter,
    InputError,
    InputStats,
    check_observation,
    read_observation,
    roi_center,
)

__all__ = ["DirectoryPoller", "watch_bunches"]


class DirectoryPoller:
    """New files of a directory whose size and modification time have settled.

    Parameters
    ----------
    directory : str or `~pathlib.Path`
    pattern : str
        Glob pattern of the files to take (``"*.fits*"``).
    """

    def __init__(self, directory, pattern):
        self.directory = Path(directory).expanduser()
        self.pattern = pattern
        self._taken = set()
        self._last_seen = {}

    def poll(self):
        """Files settled since the previous poll (not taken before), in name order."""
        settled = []
        current = {}
        for path in sorted(self.directory.glob(self.pattern)):
            if path in self._taken or not path.is_file():
                continue
            try:
                status = path.stat()
            except FileNotFoundError:  # removed between glob and stat
                continue
            signature = (status.st_size, status.st_mtime_ns)
            current[path] = signature
            if status.st_size > 0 and self._last_seen.get(path) == signature:
                settled.append(path)
        self._last_seen = current
        self._taken.update(settled)
        return settled


def _check_directory(config):
    directory = Path(config.input.watch).expanduser()
    if not directory.is_dir():
        raise InputError(f"input.watch: {directory}: not a directory")
    return directory


def _observation_or_skip(path, config, cutter, stats):
    """The checked observation of a landed file, or None (skip counted and logged)."""
    try:
        observation = read_observation(path, config.input.irf_file)
        energy_range = (config.selection.energy_min, config.selection.energy_max)
        center = cutter.center if cutter.center is not None else roi_center(config, observation)
        check_observation(observation, energy_range, center, source=str(path))
        cutter.check_order(observation, source=str(path))
    except InputError as error:
        stats.skip(str(error))
        return None
    stats.n_files += 1
    return observation


def watch_bunches(config, stats=None, poll_interval=0.5, stop=None):
    """Watch a directory and yield the bunches of each event file as it lands.

    Parameters
    ----------
    config : `~rtafast.pipeline.config.PipelineConfig`
        Uses ``input.watch``, ``input.watch_pattern``, ``input.watch_idle_timeout``,
        ``input.irf_file``, and what :func:`~rtafast.pipeline.inputs.iter_bunches` uses.
    stats : InputStats, optional
        Filled as files land (skipped files counted there with their reasons).
    poll_interval : float
        Seconds between two looks at the directory.
    stop : `threading.Event`, optional
        Set it to end the watch (checked at every poll and between files).

    Yields
    ------
    `~rtafast.pipeline.inputs.Bunch`
        Bunches of each file in turn, as :func:`~rtafast.pipeline.inputs.iter_bunches`
        cuts them; the trigger (when null) and the map centre come from the first file.

    Raises
    ------
    InputError
        ``input.watch`` is not a directory.
    """
    stats = stats if stats is not None else InputStats()
    stop = stop if stop is not None else threading.Event()
    poller = DirectoryPoller(_check_directory(config), config.input.watch_pattern)
    idle_timeout = u.Quantity(config.input.watch_idle_timeout, "s").value
    cutter = BunchCutter(config, stats)
    last_file = time.monotonic()
    while not stop.is_set():
        for path in poller.poll():
            if stop.is_set():
                return
            observation = _observation_or_skip(path, config, cutter, stats)
            if observation is not None:
                yield from cutter.bunches(observation)
            last_file = time.monotonic()
        if time.monotonic() - last_file >= idle_timeout:
            return
        stop.wait(poll_interval)
