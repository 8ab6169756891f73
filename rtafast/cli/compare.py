"""``rtafast compare``: a simulated point source fitted with gammapy and with rtafast."""

import logging
import time

__all__ = ["run_compare"]


def run_compare(args):
    """Fit a simulated point source with gammapy and rtafast; print both and the speed-up."""
    import statistics

    from gammapy.modeling import Fit as GammapyFit

    import rtafast
    from rtafast.simulate import DEMO_POSITION, point_source_models, simulate_dataset

    backend = rtafast.resolve_backend(args.backend)  # fail early on a bad name
    from rtafast_kernels.jit import COMPILE_LOGGER

    logging.getLogger(COMPILE_LOGGER).setLevel(logging.INFO)  # say when kernels compile
    print(f"Simulating a {args.livetime} observation of a point source (CTA-like analytic IRF)...")
    dataset = simulate_dataset(
        livetime=args.livetime, amplitude=args.amplitude, random_state=args.seed
    )
    true_value = dataset.models["source"].spectral_model.amplitude.value
    print(f"  {dataset.counts.data.sum():.0f} counts in {dataset.counts.data.size} bins")

    fitters = (
        ("gammapy Fit", lambda: GammapyFit(optimize_opts={"tol": 1e-5})),
        (f"rtafast Fit ({backend.name})", lambda: rtafast.Fit(array_backend=backend)),
    )
    rows = []
    for label, make_fitter in fitters:
        times = []
        for _ in range(1 + args.repeat):
            # fresh models each time, as for a new candidate: gammapy rebuilds its evaluator
            dataset.models = point_source_models(dataset, DEMO_POSITION)
            start = time.perf_counter()
            result = make_fitter().run(dataset)
            times.append(time.perf_counter() - start)
        amplitude = dataset.models["source"].spectral_model.amplitude
        rows.append(
            (
                label,
                amplitude.value,
                amplitude.error,
                result.total_stat,
                times[0],
                statistics.median(times[1:]) if args.repeat else float("nan"),
                getattr(result, "ts", {}).get("source"),
            )
        )
    print(
        f"\n{'fit':<22} {'amplitude':>12} {'error':>10} {'total_stat':>12} "
        f"{'first':>9} {'median':>9}"
    )
    for label, value, error, stat, first, median, _ in rows:
        print(
            f"{label:<22} {value:12.5e} {error:10.3e} {stat:12.4f} "
            f"{first * 1e3:6.1f} ms "
            + (f"{median * 1e3:6.1f} ms" if args.repeat else f"{'-':>9}")
        )
    speedup = (
        f"speed-up (median of {args.repeat} repeats): {rows[0][5] / rows[1][5]:.1f}x"
        if args.repeat
        else "no repeats (--repeat 0): first calls only"
    )
    print(
        f"\ntrue amplitude {true_value:.3e} cm-2 s-1 TeV-1; rtafast TS = {rows[-1][-1]:.1f}; "
        f"{speedup}"
    )
    print(
        "The first rtafast call includes numba's JIT compilation and the PSF kernel, which\n"
        "later fits reuse; see docs/benchmarks.md for the benchmark suite."
    )
    return 0
