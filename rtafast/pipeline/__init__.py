"""The real-time science alert pipeline: a stream of events in, alerts out.

``rtafast run CONFIG -o OUTDIR`` (:mod:`rtafast.pipeline.run`) replays event files (or
watches a directory) as bunches, accumulates windows with :mod:`rtafast.stream`, detects
and localises candidates on each window, fits their flux, measures their on/off
photometry and writes results, alerts and a latency profile. Modules, one job each:
``config`` (the YAML, validated), ``geometry``, ``inputs`` (bunches), ``detect`` and
``localise``, ``measure`` (flux fit, photometry), ``alerts``, ``gcn``, ``voevent``,
``outputs`` (files, written atomically), ``latency``, ``run``.
"""
