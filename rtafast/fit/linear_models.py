"""Which free parameters of gammapy models are linear norms, and of which component.

A parameter qualifies for rtafast's fast path when the predicted counts of its
model component are proportional to it and it is the only free parameter of that
component: the spectral ``amplitude``/``norm``/``const`` of the spectral models
listed in :data:`LINEAR_SPECTRAL_PARAMETERS`, for a :class:`~gammapy.modeling.models.SkyModel`
(sources) or a :class:`~gammapy.modeling.models.FoVBackgroundModel` (background norm).
"""

from dataclasses import dataclass, field

from gammapy.modeling.models import (
    BrokenPowerLawSpectralModel,
    ConstantSpectralModel,
    ExpCutoffPowerLaw3FGLSpectralModel,
    ExpCutoffPowerLawNormSpectralModel,
    ExpCutoffPowerLawSpectralModel,
    FoVBackgroundModel,
    GaussianSpectralModel,
    LogParabola2SpectralModel,
    LogParabolaNormSpectralModel,
    LogParabolaSpectralModel,
    PowerLaw2SpectralModel,
    PowerLawNormSpectralModel,
    PowerLawSpectralModel,
    SkyModel,
    SmoothBrokenPowerLawSpectralModel,
    SuperExpCutoffPowerLaw3FGLSpectralModel,
    SuperExpCutoffPowerLaw4FGLDR3SpectralModel,
    SuperExpCutoffPowerLaw4FGLSpectralModel,
)

__all__ = [
    "LINEAR_SPECTRAL_PARAMETERS",
    "LinearComponent",
    "LinearPlan",
    "NonLinearParameterError",
    "plan_linear_fit",
]

#: Spectral model class -> name of the parameter the model is proportional to.
LINEAR_SPECTRAL_PARAMETERS = {
    PowerLawSpectralModel: "amplitude",
    PowerLaw2SpectralModel: "amplitude",
    BrokenPowerLawSpectralModel: "amplitude",
    SmoothBrokenPowerLawSpectralModel: "amplitude",
    ExpCutoffPowerLawSpectralModel: "amplitude",
    ExpCutoffPowerLaw3FGLSpectralModel: "amplitude",
    SuperExpCutoffPowerLaw3FGLSpectralModel: "amplitude",
    SuperExpCutoffPowerLaw4FGLSpectralModel: "amplitude",
    SuperExpCutoffPowerLaw4FGLDR3SpectralModel: "amplitude",
    LogParabolaSpectralModel: "amplitude",
    LogParabola2SpectralModel: "amplitude",
    GaussianSpectralModel: "amplitude",
    ConstantSpectralModel: "const",
    PowerLawNormSpectralModel: "norm",
    LogParabolaNormSpectralModel: "norm",
    ExpCutoffPowerLawNormSpectralModel: "norm",
}


class NonLinearParameterError(ValueError):
    """A free parameter is not a linear norm, so the fast path cannot fit it."""


@dataclass
class LinearComponent:
    """One model component whose predicted counts are proportional to a free parameter."""

    model: object
    is_background: bool


@dataclass
class LinearPlan:
    """The free parameters (in gammapy's unique order) and the components they scale."""

    parameters: list
    components: list = field(default_factory=list)  # list of list of LinearComponent
    fixed_sky_models: list = field(default_factory=list)
    free_background_models: list = field(default_factory=list)

    @property
    def source_names(self):
        """Name of the sky model each free parameter scales (None for background norms)."""
        names = []
        for comps in self.components:
            sky = [c.model.name for c in comps if not c.is_background]
            names.append(sky[0] if len(sky) == 1 else None)
        return names


def _linear_parameter(model):
    """Return the linear norm parameter of a SkyModel/FoVBackgroundModel, or None."""
    spectral = getattr(model, "spectral_model", None)
    name = LINEAR_SPECTRAL_PARAMETERS.get(type(spectral))
    return getattr(spectral, name) if name else None


def _describe(parameter, models):
    for model in models:
        for par in model.parameters:
            if par is parameter:
                return f"parameter {parameter.name!r} of model {model.name!r}"
    return f"parameter {parameter.name!r}"


def plan_linear_fit(datasets):
    """Check that every free parameter is a linear norm and map it to its components.

    Parameters
    ----------
    datasets : `~gammapy.datasets.Datasets`

    Returns
    -------
    LinearPlan

    Raises
    ------
    ValueError
        If there is no free parameter.
    NonLinearParameterError
        Naming the first free parameter that is not a linear norm, and why.
    """
    models = list(datasets.models)
    free = list(datasets.parameters.free_unique_parameters)
    if not free:
        raise ValueError("No free parameters for fitting: thaw at least one parameter")
    plan = LinearPlan(parameters=free, components=[[] for _ in free])
    for model in models:
        free_in_model = [p for p in model.parameters if not p.frozen]
        linear = _linear_parameter(model)
        is_background = isinstance(model, FoVBackgroundModel)
        supported = isinstance(model, (SkyModel, FoVBackgroundModel))
        if not free_in_model:
            if isinstance(model, SkyModel):
                plan.fixed_sky_models.append(model)
            elif not supported:
                raise NonLinearParameterError(
                    f"model {model.name!r} of type {type(model).__name__} is not supported "
                    "by rtafast's fast path"
                )
            continue
        if not supported:
            raise NonLinearParameterError(
                f"{_describe(free_in_model[0], [model])} belongs to a "
                f"{type(model).__name__}, which rtafast's fast path does not fit"
            )
        for par in free_in_model:
            if par is not linear:
                spectral = getattr(model, "spectral_model", None)
                linear_name = LINEAR_SPECTRAL_PARAMETERS.get(type(spectral))
                hint = (
                    f"only the {linear_name!r} of its {type(spectral).__name__} is linear"
                    if linear_name
                    else f"its {type(spectral).__name__} has no supported linear norm"
                )
                raise NonLinearParameterError(
                    f"{_describe(par, [model])} is free but is not a linear norm ({hint}); "
                    "freeze it, or let rtafast.Fit delegate to gammapy"
                )
            if par.prior is not None:
                raise NonLinearParameterError(
                    f"{_describe(par, [model])} has a prior, which the fast path does not include"
                )
        index = next(i for i, p in enumerate(free) if p is linear)
        plan.components[index].append(LinearComponent(model, is_background))
        if is_background:
            plan.free_background_models.append(model)
    return plan
