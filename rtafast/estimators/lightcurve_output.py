"""gammapy's light-curve ``FluxPoints`` from the fast path's rows, built once.

gammapy builds a ``FluxPoints`` per time bin (``Table`` → ``FluxPoints.from_table``,
the per-dataset maps expanded to every dataset name) and stacks them along the
time axis (``FluxPoints.from_stack``): ~7 ms per time bin. Here the first bin's
``FluxPoints`` is built by gammapy's own code (its geometries, units, reference
model and meta are the result's), and every quantity's data of all bins is
stacked into the same maps ``from_stack`` would make.
"""

import numpy as np
from astropy.table import Table
from gammapy.data import GTI
from gammapy.estimators import FluxPoints
from gammapy.maps import LabelMapAxis, Map, TimeMapAxis

__all__ = ["DATASET_QUANTITIES", "light_curve_flux_points"]

#: Quantities with one value per dataset (gammapy's ``expand_map`` over all names).
DATASET_QUANTITIES = ("counts", "npred", "npred_excess")


def _quantity_data(rows, name, shape):
    """One time bin's data of ``name`` in the layout of gammapy's per-bin map."""
    # gammapy's NaN row (an energy bin outside the datasets) lacks stat_null and a few
    # others: astropy's Table masks them, over the first row's value, which
    # ``from_table`` keeps; so do we.
    fill = next((row[name] for row in rows if name in row), np.nan)
    values = [row.get(name, fill) for row in rows]
    return np.asarray(values).reshape(shape)


def _expanded(rows, name, shape, label_index):
    """A per-dataset quantity of one time bin, spread over every dataset label."""
    n_energy, n_labels = shape[0], shape[1]
    data = np.full((n_energy, n_labels) + tuple(shape[2:]), np.nan)
    for k, row in enumerate(rows):
        index = [label_index[label] for label in row["datasets"]]
        data[k, index] = np.asarray(row[name], dtype=float).reshape((len(index),) + shape[2:])
    return data


def light_curve_flux_points(bin_rows, intervals, bin_gti_intervals, dataset_names, meta, model):
    """The ``FluxPoints`` (format "lightcurve") gammapy's ``LightCurveEstimator.run`` returns.

    Parameters
    ----------
    bin_rows : list of list of dict
        Per valid time bin, gammapy's ``estimate_flux_point`` dict of each energy bin.
    intervals : list of (astropy.time.Time, astropy.time.Time)
        The valid time bins (gammapy's ``valid_intervals``).
    bin_gti_intervals : list of (astropy.time.Time, astropy.time.Time)
        Per dataset of every time bin, in order: its first GTI start and last GTI
        stop (the rows of each bin's ``Datasets.gti``, stacked).
    dataset_names : list of str
        Labels of the ``dataset`` axis.
    meta : dict
        ``FluxPointsEstimator``'s table meta (``n_sigma``, ``n_sigma_ul``, ``sed_type_init``).
    model : gammapy.modeling.models.SpectralModel
        The reference spectral model (gammapy's ``_get_reference_model``).

    Returns
    -------
    gammapy.estimators.FluxPoints
    """
    first = FluxPoints.from_table(
        table=Table(bin_rows[0], meta=meta),
        reference_model=model.copy(),
        format="gadf-sed",
    )
    time_axis = TimeMapAxis.from_gti(GTI.from_time_intervals(intervals))
    label_axis = LabelMapAxis(labels=dataset_names, name="dataset")
    label_index = {}
    for i, label in enumerate(label_axis.center):
        label_index.setdefault(str(label), i)
    data = {}
    for name in first.available_quantities:
        reference = first._data[name]
        geom = reference.geom
        if name in DATASET_QUANTITIES:
            geom = geom.replace_axis(axis=label_axis)
            shape = geom.data_shape
            stacked = [_expanded(rows, name, shape, label_index) for rows in bin_rows]
        else:
            shape = reference.data.shape
            stacked = [_quantity_data(rows, name, shape) for rows in bin_rows]
        cube = geom.to_cube(axes=[time_axis])
        values = np.stack(stacked).reshape(cube.data_shape)
        if reference.data.dtype == bool:
            values = values.astype(bool)
        data[name] = Map.from_geom(cube, data=values, unit=reference.unit)
    gti = GTI.from_time_intervals(bin_gti_intervals) if bin_gti_intervals else None
    return FluxPoints(
        data=data, reference_model=first.reference_model, meta=first.meta.copy(), gti=gti
    )
