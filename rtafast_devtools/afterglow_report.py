"""The afterglow study's table (Markdown) and plot (PNG), from :func:`.afterglow_study.study`."""

from pathlib import Path

import numpy as np

__all__ = ["method_rows", "write_plot", "write_report"]

LABELS = {
    "cumulative": "cumulative Li & Ma (on/off TS)",
    "sliding": "sliding Li & Ma",
    "lima_time": "time-dependent Li & Ma",
    "cusum": "CuSum",
    "lift": "decay likelihood (LiFT-like)",
}


def _times(result, key, method):
    return np.asarray(result[key][method], dtype=float)


def method_rows(result, key="detection_time"):
    """Per method: detected, median time to detection (s since T0), and against the
    cumulative method on the GRBs both detect: median and mean time gained (s)."""
    reference = _times(result, key, "cumulative")
    rows = []
    for method in result[key]:
        times = _times(result, key, method)
        found = np.isfinite(times)
        both = found & np.isfinite(reference)
        gain = reference[both] - times[both]
        rows.append({
            "method": method, "detected": int(found.sum()), "n": times.size,
            "median_time": float(np.median(times[found])) if found.any() else np.nan,
            "median_gain": float(np.median(gain)) if both.any() else np.nan,
            "mean_gain": float(np.mean(gain)) if both.any() else np.nan,
        })
    return rows


def _table(result, key, thresholds):
    lines = ["| method | threshold | detected | median time to detection (s after T0) | "
             "time gained on cumulative, median / mean (s) |", "|---|---|---|---|---|"]
    for row in method_rows(result, key):
        lines.append(
            f"| {LABELS[row['method']]} | {thresholds[row['method']]:.2f} | "
            f"{row['detected']} / {row['n']} | {row['median_time']:.0f} | "
            f"{row['median_gain']:.0f} / {row['mean_gain']:.0f} |"
        )
    return "\n".join(lines)


def write_plot(results, path):
    """Detection efficiency against the afterglow's flux at its onset, and the
    cumulative distribution of the detection times, per method and scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, axes = plt.subplots(len(results), 2, figsize=(11, 4 * len(results)), squeeze=False)
    for (name, result), (left, right) in zip(results.items(), axes, strict=True):
        amplitude = np.asarray(result["grbs"]["amplitude"])
        bins = np.logspace(*np.log10([amplitude.min(), amplitude.max()]), 11)
        centres = np.sqrt(bins[1:] * bins[:-1])
        which = np.digitize(amplitude, bins[1:-1])
        for method in result["detection_time"]:
            found = np.isfinite(_times(result, "detection_time", method))
            efficiency = [found[which == b].mean() for b in range(centres.size)]
            left.plot(centres, efficiency, marker="o", label=LABELS[method])
            times = np.sort(_times(result, "detection_time", method)[found])
            right.step(times, np.arange(1, times.size + 1) / found.size, where="post",
                       label=LABELS[method])
        left.set(xscale="log", xlabel="flux at the onset, dN/dE(1 TeV) (cm-2 s-1 TeV-1)",
                 ylabel="detected fraction", title=f"{name}: efficiency at p = "
                 f"{result['probability']:g} per observation")
        right.set(xscale="log", xlabel="time of detection (s after T0)",
                  ylabel="fraction of all GRBs detected by then", title=f"{name}: time")
        for axis in (left, right):
            axis.xaxis.set_minor_formatter(NullFormatter())
        left.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(results, setups, out, header=""):
    """``timedomain-study-tables.md`` (``header``, then the tables) and
    ``img/timedomain-study.png`` in ``out``; returns the tables' text."""
    out = Path(out)
    (out / "img").mkdir(exist_ok=True)
    write_plot(results, out / "img" / "timedomain-study.png")
    parts = []
    for name, result in results.items():
        setup = setups[name]
        parts.append(f"### {name}: observation {setup.edges[0]:.0f}-{setup.edges[-1]:.0f} s "
                     f"after T0\n")
        parts.append(f"At the false-alarm probability {result['probability']:g} per "
                     f"observation (pinned by {result['n_background']} background-only "
                     "observations; realised: "
                     + ", ".join(f"{m} {p:.2g}" for m, p in
                                 result["realised_probability"].items()) + "):\n")
        parts.append(_table(result, "detection_time", result["thresholds"]) + "\n")
        parts.append("At the 5σ-equivalent probability 2.9e-7 per observation "
                     "(thresholds **extrapolated** from the background tail, not pinned):\n")
        parts.append(_table(result, "detection_time_5sigma",
                            result["thresholds_5sigma_extrapolated"]) + "\n")
    text = "\n".join(parts)
    (out / "timedomain-study-tables.md").write_text(header + text, encoding="utf-8")
    return text
