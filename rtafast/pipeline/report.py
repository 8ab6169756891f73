"""What ``rtafast run`` and ``rtafast demo`` print at the end: alerts, skips, latency."""

__all__ = ["alert_lines", "print_report"]


def alert_lines(alerts, truth=None):
    """One line per alert: id, type, window, position and error radius, significance,
    flux and time to alert; with ``truth`` (a `~astropy.coordinates.SkyCoord`) also the
    distance to the true position in units of the 95 % radius."""
    from astropy.coordinates import SkyCoord

    lines = []
    for alert in alerts:
        start, stop = (round(value, 1) + 0.0 for value in (alert.window_start, alert.window_stop))
        text = (
            f"  {alert.alert_id} ({alert.alert_type}): window {start:g} to {stop:g} s after T0, "
            f"RA {alert.ra:.3f} Dec {alert.dec:+.3f} deg, "
            f"r68 {alert.r68:.3f} / r95 {alert.r95:.3f} deg, sqrt(TS) {alert.sqrt_ts:.1f}, "
            f"flux {alert.flux:.2e} +- {alert.flux_err:.1e} cm-2 s-1, "
            f"time to alert {alert.time_to_alert * 1e3:.1f} ms"
        )
        if truth is not None:
            separation = SkyCoord(alert.ra, alert.dec, unit="deg").separation(truth).deg
            inside = "inside" if separation <= alert.r95 else "OUTSIDE"
            text += f"; {separation:.3f} deg from the truth ({inside} r95)"
        lines.append(text)
    return lines


def print_report(summary, pipeline, profile=False, truth=None, say=print):
    """Print a run's alerts, its input counts and skips, and (``profile``) the latency
    table, and where the outputs are."""
    say(
        f"{summary.n_bunches} bunches, {summary.n_windows} windows, "
        f"{summary.n_candidates} candidates, {len(summary.alerts)} alert(s) "
        f"[backend {summary.backend}, {summary.wall_s:.1f} s]"
    )
    stats = summary.input_stats
    if stats is not None and hasattr(stats, "summary"):
        say(stats.summary())
    if summary.n_bunches_outside_map:
        say(f"{summary.n_bunches_outside_map} bunch(es) had no event inside the map")
    if summary.alerts:
        say("alerts:")
        for line in alert_lines(summary.alerts, truth):
            say(line)
    else:
        say("no alert")
    if profile:
        say(pipeline.latency.table())
    say(f"outputs in {pipeline.outputs.path}")
