"""What :func:`rtafast.trials.report.report` renders: the figures (matplotlib, Agg backend)
and the Markdown tables of ``summary.md`` (:func:`markdown`).

Each ``*_figure`` function draws one PNG and returns its path: the fixed-position TS of
background-only trials (:func:`null_ts_figure`), the blind search's highest significance
per map (:func:`blind_figure`) and the detection efficiency (:func:`efficiency_figure`).
The figures are built on :class:`matplotlib.figure.Figure` with an Agg canvas, so no
pyplot state or display is touched.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
from scipy import stats

from .report_stats import bounded_ts, global_pvalue, survival

__all__ = ["blind_figure", "efficiency_figure", "markdown", "null_ts_figure"]

#: One-sided Gaussian p-values of 3 and 5 σ (TS 9 and 25).
_SIGMA_LINES = ((3.0, float(stats.norm.sf(3.0))), (5.0, float(stats.norm.sf(5.0))))
_POINTS = 120

#: The parameters and return value that every ``*_figure`` function shares, appended to
#: its docstring by :func:`_png_doc`.
_PNG_SECTIONS = """\
path : str or Path
    PNG to write.
title : str
    Figure title.

Returns
-------
path : Path
    The PNG written.
"""


def _png_doc(function):
    """Complete the docstring of a ``*_figure`` function with :data:`_PNG_SECTIONS`."""
    if function.__doc__ is not None:  # None under ``python -OO``
        function.__doc__ = inspect.cleandoc(function.__doc__) + "\n" + _PNG_SECTIONS
    return function


def _new_figure(n_panels, title):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.5 * n_panels, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, n_panels)
    figure.suptitle(title)
    return figure, np.atleast_1d(axes)


def _save(figure, path):
    path = Path(path)
    figure.savefig(path, dpi=100)
    return path


def _sigma_lines(axes):
    for sigma, p in _SIGMA_LINES:
        axes.axhline(
            p,
            color="red",
            linestyle=":",
            linewidth=1,
            label=f"{sigma:g}σ (p = {p:.3g}, TS = {sigma**2:g})",
        )


def _finish_log_axes(axes, ylim, xlabel, ylabel):
    """Log y axis with limits ``ylim`` (bottom, top; None: automatic), labels and legend."""
    axes.set_yscale("log")
    axes.set_ylim(*ylim)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend(fontsize=8)


def _finish_survival(axes, n, top, xlabel, ylabel):
    """The 3σ / 5σ lines, then a log y axis from below the smallest p (1 / ``n`` trials or
    5σ) up to ``top``."""
    _sigma_lines(axes)
    _finish_log_axes(axes, (min(0.3 / n, 0.3 * _SIGMA_LINES[-1][1]), top), xlabel, ylabel)


def _two_panel_figure(title, path, histogram, tail, *data):
    """A histogram panel and a survival panel, drawn by ``histogram(axes, *data)`` and
    ``tail(axes, *data)``, saved to ``path``."""
    figure, axes = _new_figure(2, title)
    histogram(axes[0], *data)
    tail(axes[1], *data)
    return _save(figure, path)


def _measured_points(axes, x, k, p, low, high, label):
    """Survival points with asymmetric errors; points with no count are left out."""
    shown = k > 0
    axes.errorbar(
        x[shown],
        p[shown],
        yerr=(p[shown] - low[shown], high[shown] - p[shown]),
        fmt=".",
        markersize=4,
        capsize=0,
        label=label,
    )


# --- fixed-position TS ---------------------------------------------------------------------
def _ts_histogram(axes, bounded):
    """Histogram of the bounded TS with the expected counts of ½δ(0) + ½χ²₁ per bin."""
    n, top = bounded.size, float(bounded.max())
    edges = np.linspace(0.0, top, 41)
    axes.hist(
        bounded,
        bins=edges,
        histtype="stepfilled",
        alpha=0.5,
        label=f"{n} trials ({np.count_nonzero(bounded == 0)} at TS = 0)",
    )
    expected = 0.5 * n * np.diff(stats.chi2.cdf(edges, 1))
    expected[0] += 0.5 * n
    axes.stairs(expected, edges, color="black", label="½δ(0) + ½χ²₁ (expected counts)")
    _finish_log_axes(axes, (0.3, None), "TS (norm bounded at 0)", "trials per bin")


def _ts_survival(axes, bounded):
    """Measured P(TS >= t) against ½ P_χ²₁(TS >= t), log y, with the 3σ / 5σ lines."""
    t = np.linspace(0.0, float(bounded.max()), _POINTS + 1)[1:]
    k, n, p, low, high = survival(bounded, t)
    _measured_points(axes, t, k, p, low, high, "measured (68 % Clopper–Pearson)")
    axes.plot(t, 0.5 * stats.chi2.sf(t, 1), color="black", label="½ χ²₁ survival")
    _finish_survival(axes, n, 1.0, "TS threshold t", "P(TS ≥ t)")


@_png_doc
def null_ts_figure(ts, norm, path, title):
    """Histogram and survival function of the bounded fixed-position TS.

    Parameters
    ----------
    ts, norm : array_like
        Per trial the TS and the fitted norm (finite values; the TS is bounded with
        :func:`~rtafast.trials.report_stats.bounded_ts`; at least one positive TS).
    """
    return _two_panel_figure(title, path, _ts_histogram, _ts_survival, bounded_ts(ts, norm))


# --- blind search --------------------------------------------------------------------------
def _blind_histogram(axes, maxima, n_eff):
    edges = np.linspace(float(maxima.min()), float(maxima.max()), 41)
    axes.hist(maxima, bins=edges, histtype="stepfilled", alpha=0.5, label=f"{maxima.size} trials")
    if n_eff:
        cdf = np.exp(n_eff * np.log1p(-stats.norm.sf(edges)))
        axes.stairs(
            maxima.size * np.diff(cdf),
            edges,
            color="black",
            label=f"best of N_eff = {n_eff:.3g} independent N(0, 1)",
        )
    _finish_log_axes(axes, (0.3, None), "highest significance of the map (σ)", "trials per bin")


def _blind_survival(axes, maxima, n_eff):
    s = np.linspace(max(0.0, float(maxima.min())), float(maxima.max()), _POINTS)
    k, n, p, low, high = survival(maxima, s)
    _measured_points(axes, s, k, p, low, high, "measured P(max ≥ s) (68 % C–P)")
    axes.plot(s, stats.norm.sf(s), color="gray", label="local p of one pixel, Q(s)")
    if n_eff:
        axes.plot(
            s,
            global_pvalue(s, n_eff),
            color="black",
            label=f"1 − (1 − Q(s))^N_eff, N_eff = {n_eff:.3g}",
        )
    _finish_survival(axes, n, 1.5, "significance threshold s (σ)", "probability")


@_png_doc
def blind_figure(maxima, n_eff, path, title):
    """Histogram and survival function of the blind search's highest significance.

    Parameters
    ----------
    maxima : array_like
        Per trial the highest signed sqrt(TS) of the map, σ (finite, at least one).
    n_eff : float or None
        The fitted effective trials factor (None: no model curve).
    """
    maxima = np.asarray(maxima, dtype=np.float64)
    return _two_panel_figure(title, path, _blind_histogram, _blind_survival, maxima, n_eff)


# --- source trials -------------------------------------------------------------------------
def _efficiency_points(axes, bins, key, label, marker):
    centre = np.array([b["flux_centre"] for b in bins])
    rows = [b[key] for b in bins]
    fraction = np.array([r["fraction"] for r in rows])
    low = np.array([r["low"] for r in rows])
    high = np.array([r["high"] for r in rows])
    xerr = (centre - [b["flux_low"] for b in bins], [b["flux_high"] for b in bins] - centre)
    axes.errorbar(
        centre,
        fraction,
        xerr=xerr,
        yerr=(fraction - low, high - fraction),
        fmt=marker,
        markersize=5,
        capsize=2,
        label=label,
    )


@_png_doc
def efficiency_figure(efficiency, path, title):
    """Detection efficiency against injected flux.

    Parameters
    ----------
    efficiency : dict
        :func:`~rtafast.trials.report_stats.detection_efficiency`'s result (non-empty
        ``bins``).
    """
    bins = efficiency["bins"]
    threshold = efficiency["threshold_sigma"]
    figure, (axes,) = _new_figure(1, title)
    _efficiency_points(axes, bins, "fixed", f"fixed position, sqrt(TS) ≥ {threshold:g}", "o")
    if "blind" in bins[0]:
        _efficiency_points(axes, bins, "blind", f"blind search, max ≥ {threshold:g}σ", "s")
    axes.set_xscale("log")
    axes.set_ylim(-0.03, 1.03)
    axes.set_xlabel("injected flux (cm⁻² s⁻¹)")
    axes.set_ylabel("fraction detected (68 % Clopper–Pearson)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _save(figure, path)


# --- summary.md ----------------------------------------------------------------------------
def _g(value, digits=3):
    return "-" if value is None else f"{value:.{digits}g}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def _fraction_cell(f):
    return f"{f['k']}/{f['n']} = {_g(f['fraction'])} [{_g(f['low'])}, {_g(f['high'])}]"


def _null_lines(null):
    f, ks_ts, ks_s = null["fraction_positive"], null["ks_ts_chi2_1"], null["ks_sqrt_ts_normal"]
    ks = [f"D {_g(k['statistic'])}, p {_g(k['pvalue'])}" if k else "-" for k in (ks_ts, ks_s)]
    lines = ["Fixed-position TS of background-only trials (norm bounded at 0: ½δ(0) + ½χ²₁):", ""]
    lines += _table(
        (
            "n",
            "norm > 0 (expected 0.5)",
            "pull",
            "KS TS>0 vs χ²₁",
            "KS sqrt(TS) vs N(0,1)",
            "not converged",
        ),
        [(null["n"], _fraction_cell(f), _g(f["pull"]), *ks, null["n_not_converged"])],
    )
    rows = [
        (r["sqrt_ts"], r["k"], _g(r["p"]), f"[{_g(r['low'])}, {_g(r['high'])}]", _g(r["expected"]))
        for r in null["pvalue_table"]
    ]
    if rows:
        lines += _table(("sqrt(TS) ≥", "k", "k/n", "68 % C–P", "expected Q(s)"), rows)
    return lines


def _blind_lines(blind):
    fit = blind["trials_factor"]
    how = fit.get("reason") or fit["method"]
    lines = [
        f"Blind search, highest significance per map ({blind['n']} trials, largest "
        f"{_g(blind['max'])}σ): N_eff = {_g(fit['n_eff'])} ({how}); "
        "local threshold for 5σ global: "
        f"{_g(blind['local_sigma_for_5sigma_global'])}σ; the alert threshold "
        f"{_g(blind['alert_threshold_sigma'])}σ is "
        f"{_g(blind['global_sigma_of_alert_threshold'])}σ global.",
        "",
    ]
    rows = [
        (
            r["sqrt_ts"],
            r["k"],
            _g(r["p"]),
            f"[{_g(r['low'])}, {_g(r['high'])}]",
            _g(r["p_local"]),
            _g(r["p_global_fit"]),
        )
        for r in blind["table"]
    ]
    if rows:
        lines += _table(("max ≥ s", "k", "k/n", "68 % C–P", "p local", "p global (fit)"), rows)
    return lines


def _efficiency_lines(efficiency):
    lines = [
        f"Detection efficiency (sqrt(TS) ≥ {efficiency['threshold_sigma']:g}σ; k/n [68 % C–P]):",
        "",
    ]
    rows = [
        (
            f"{_g(b['flux_low'])} – {_g(b['flux_high'])}",
            _fraction_cell(b["fixed"]),
            _fraction_cell(b["blind"]) if "blind" in b else "-",
        )
        for b in efficiency["bins"]
    ]
    return lines + _table(("injected flux (cm⁻² s⁻¹)", "fixed position", "blind search"), rows)


def _containment_lines(containment):
    band = containment["band"]
    lines = [
        f"Localisation containment ({containment['n_with_candidate']} of "
        f"{containment['n_trials']} trials with a candidate; offset ≤ radius):",
        "",
    ]
    rows = [
        (name, *(_fraction_cell(block[r]) for r in ("r68", "r95", "r997")))
        for name, block in (
            ("all candidates", containment["overall"]),
            (f"sqrt(TS) {band['sqrt_ts_min']:g}–{band['sqrt_ts_max']:g}", band),
        )
    ]
    return lines + _table(("selection", "r68 (0.68)", "r95 (0.95)", "r997 (0.997)"), rows)


def _throughput_lines(throughput):
    rows = [
        (
            f"{e['exposure_s']:g} s",
            e["trials"],
            _g(e["cpu_s"]),
            _g(e["wall_s"]),
            _g(e["trials_per_core_s"]),
        )
        for e in throughput["per_exposure"]
    ]
    t = throughput["total"]
    rows.append(("all", t["trials"], _g(t["cpu_s"]), _g(t["wall_s"]), _g(t["trials_per_core_s"])))
    return ["## Throughput", ""] + _table(
        ("exposure", "trials", "CPU (s)", "wall, summed (s)", "trials per core-second"), rows
    )


def markdown(summary):
    """The text of ``summary.md``: per exposure a section of tables, then throughput.

    Parameters
    ----------
    summary : dict
        :func:`rtafast.trials.report.report`'s summary (NaN already None).

    Returns
    -------
    text : str
        Markdown: tables of the sections computed, a line per section skipped, the
        figures of the exposure as images.
    """
    lines = [
        f"# Trials report: {summary['hypothesis']} hypothesis",
        "",
        f"{summary['n_rows']} trials in {summary['n_files']} batch files; blind search: "
        f"{summary['blind']}; alert threshold {summary['alert_threshold_sigma']:g}σ.",
        "",
    ]
    writers = (
        ("null_ts", _null_lines),
        ("blind_search", _blind_lines),
        ("efficiency", _efficiency_lines),
        ("containment", _containment_lines),
    )
    for entry in summary["exposures"]:
        lines += [f"## Exposure {entry['exposure_s']:g} s ({entry['n_trials']} trials)", ""]
        for key, writer in writers:
            if entry[key] is not None:
                lines += writer(entry[key])
        lines += [f"- skipped {key}: {why}" for key, why in entry["skipped"].items()]
        lines += [f"![{name}]({name})" for name in entry["plots"]] + [""]
    return "\n".join(lines + _throughput_lines(summary["throughput"]))
