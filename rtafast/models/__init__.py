"""Models gammapy lacks: the power-law decay of GRB afterglows.

Importing this package registers :class:`PowerLawDecayTemporalModel` in gammapy's
``TEMPORAL_MODEL_REGISTRY`` (tags ``PowerLawDecayTemporalModel`` and
``powerlaw-decay``), so gammapy's model YAML (``Models.to_yaml``/``Models.from_yaml``)
reads and writes it once ``rtafast.models`` is imported.
"""

from gammapy.modeling.models import TEMPORAL_MODEL_REGISTRY

from .temporal import PowerLawDecayTemporalModel, decay_weights

__all__ = ["PowerLawDecayTemporalModel", "decay_weights"]

if PowerLawDecayTemporalModel not in TEMPORAL_MODEL_REGISTRY:
    TEMPORAL_MODEL_REGISTRY.append(PowerLawDecayTemporalModel)
