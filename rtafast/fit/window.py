"""Flux-only fit arrays of a stream window: per-second templates, scaled, on the backend.

The predicted counts of a model are linear in the exposure (sky models) or in the
background map (background models); a stream window of one observation carries its
live time and on-time, and its observation's per-second maps. :func:`window_arrays`
computes the fixed prediction and each free norm's template once per pointing and
state of the models (frozen parameters' values; with gammapy's evaluators, on the
pointing's 1 s dataset, :func:`rtafast.fit.templates.model_arrays`), uploads them with
the bins of the fit mask to the window's backend and scales them by each window's
live time and on-time there: the window's counts are gathered on the backend, and
nothing but the fit's sums comes to the host (:mod:`rtafast.fit.device_problem`).
"""

from typing import NamedTuple

import numpy as np
from gammapy.datasets import Datasets, MapDataset

from ..cache.scaling import ScaledCache
from .templates import DatasetArrays, check_templates, fit_mask, model_arrays

__all__ = ["UnitTemplates", "models_key", "shared_maps_dataset", "unit_dataset", "window_arrays"]

#: The maps and masks that :func:`shared_maps_dataset` shares (besides the GTI and name).
_SHARED_MAPS = ("counts", "exposure", "background", "psf", "edisp", "mask_safe", "mask_fit")

#: Per-pointing templates of the window fits (few pointings and model states at a time).
_unit_templates = ScaledCache(maxsize=8)


class UnitTemplates(NamedTuple):
    """A pointing's fit arrays for one state of the models, per second, on a backend.

    ``index`` (int64, ``(N,)``): the flat bins of the fit mask; ``fixed_background``
    (per s of on-time) and ``fixed_signal`` (per s of live time), float64 ``(N,)``;
    ``templates_background`` and ``templates_signal``, float64 ``(K, N)``; ``datasets``:
    the 1 s dataset with the models (host), in a `gammapy.datasets.Datasets`.
    """

    index: object
    fixed_background: object
    fixed_signal: object
    templates_background: object
    templates_signal: object
    datasets: object

    def arrays(self, counts, livetime, ontime):
        """`DatasetArrays` of a window: its counts cube gathered on the fit mask, the
        fixed prediction and templates scaled (backend arrays)."""
        return DatasetArrays(
            counts=counts.reshape(-1)[self.index],
            fixed=self.fixed_background * ontime + self.fixed_signal * livetime,
            templates=self.templates_background * ontime + self.templates_signal * livetime,
        )


def models_key(models):
    """What the templates depend on in the models: the objects, and the values of their
    frozen parameters (free norms scale their templates; other free parameters are not
    on the fast path)."""
    return tuple(
        (
            id(model),
            model.name,
            tuple(
                (p.name, bool(p.frozen), float(p.value) if p.frozen else None)
                for p in model.parameters
            ),
        )
        for model in models
    )


def unit_dataset(window):
    """The window's pointing at 1 s of live time and on-time, with the window's models
    (maps shared with the pointing's ``stacked_unit``; no counts)."""
    dataset = shared_maps_dataset(window.pointing.stacked_unit)
    dataset.models = window.models
    return dataset


def shared_maps_dataset(unit):
    """A new `~gammapy.datasets.MapDataset` on the maps of ``unit`` (shared, not
    copied), without models: a dataset whose models can be set without touching
    ``unit``'s."""
    maps = {name: getattr(unit, name) for name in _SHARED_MAPS}
    return MapDataset(**maps, gti=unit.gti, name=unit.name)


def window_arrays(window, plan_for):
    """The fit arrays of a window of one observation, on its backend.

    Parameters
    ----------
    window : `rtafast.stream.StreamWindow`
        With models.
    plan_for : callable
        ``plan_for(datasets)``: the `rtafast.fit.linear_models.LinearPlan` of the 1 s
        datasets with the window's models (raises if the fit is not linear).

    Returns
    -------
    plan : `rtafast.fit.linear_models.LinearPlan`
    datasets : `gammapy.datasets.Datasets`
        The 1 s dataset with the models (the fit writes the models through it).
    arrays : `rtafast.fit.templates.DatasetArrays`
        Backend arrays.

    Raises
    ------
    ValueError
        As the dataset path: an empty fit mask, NaN background inside it, a free norm
        without counts predicted.
    """
    key = (window.pointing.token, window.backend.name, models_key(window.models))
    entry = _unit_templates.lookup(key)
    if entry is None:
        datasets = Datasets([unit_dataset(window)])
        entry = _compute(datasets, plan_for(datasets), window.backend)
        _unit_templates.store(key, entry)
    plan = plan_for(entry.datasets)
    arrays = entry.arrays(window.counts, window.livetime, window.ontime)
    return plan, entry.datasets, arrays


def _compute(datasets, plan, backend):
    dataset = datasets[0]
    mask = fit_mask(dataset)
    if not mask.any():
        raise ValueError(
            f"the fit mask (mask_safe & mask_fit) selects no bin in any dataset: {dataset.name!r}"
        )
    fixed_b, fixed_s, templates_b, templates_s = model_arrays(dataset, plan, mask)
    check_templates(templates_b + templates_s, plan)
    upload = backend.upload
    return UnitTemplates(
        index=upload(np.flatnonzero(mask), np.int64),
        fixed_background=upload(fixed_b, np.float64),
        fixed_signal=upload(fixed_s, np.float64),
        templates_background=upload(templates_b, np.float64),
        templates_signal=upload(templates_s, np.float64),
        datasets=datasets,
    )
