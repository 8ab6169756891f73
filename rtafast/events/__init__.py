"""Events in: selection (GTIs, energy, cone) and binning into counts cubes."""

from .binning import GeomBinning, fill_counts
from .selection import select_events

__all__ = ["GeomBinning", "fill_counts", "select_events"]
