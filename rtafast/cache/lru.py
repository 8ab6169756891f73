"""The least-recently-used cache behind rtafast's content-keyed caches."""

from collections import OrderedDict

__all__ = ["LRUCache"]


class LRUCache:
    """Least-recently-used mapping with hit and miss counts.

    Subclasses build the key of what they cache (from content, not identity) and call
    :meth:`get_or_compute`, or :meth:`lookup` and :meth:`store`.

    Parameters
    ----------
    maxsize : int
        Number of entries kept; the least recently used one goes first.
    """

    def __init__(self, maxsize):
        self.maxsize = maxsize
        self._entries = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self):
        return len(self._entries)

    def items(self):
        """``(key, entry)`` pairs, least recently used first (does not count as use)."""
        return list(self._entries.items())

    def clear(self):
        """Forget every entry (the hit and miss counts stay)."""
        self._entries.clear()

    def lookup(self, key):
        """The entry of ``key`` (now the most recently used), or None; counts a hit or miss."""
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self.hits += 1
        self._entries.move_to_end(key)
        return entry

    def store(self, key, entry):
        """Keep ``entry`` under ``key``, dropping the least recently used beyond ``maxsize``."""
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.maxsize:
            self._entries.popitem(last=False)

    def get_or_compute(self, key, compute):
        """The entry of ``key``, or ``compute()`` stored under it."""
        entry = self.lookup(key)
        if entry is None:
            entry = compute()
            self.store(key, entry)
        return entry
