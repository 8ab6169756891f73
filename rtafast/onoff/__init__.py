"""On/off photometry: on and off region counts straight from event lists (per bunch),
alpha, excess and Li & Ma significance."""

__all__ = []
