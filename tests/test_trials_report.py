"""``rtafast.trials.report``: the report of a trials run, on synthetic output directories
whose values are drawn from the exact null distributions (reference numbers from scipy)."""

import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import stats

from rtafast.trials import report_stats
from rtafast.trials.report import report
from rtafast.trials.schema import BATCH_DIR, MANIFEST_NAME, SCHEMA, batch_file_name

K_PIXELS = 50  # independent pixels of the synthetic blind search


# --- synthetic output directories ----------------------------------------------------------
def _rows(n, exposure, batch, sqrt_ts, blind_max=None, flux=0.0):
    """All schema columns for ``n`` trials with the given signed sqrt(TS)."""
    nan = np.full(n, np.nan)
    blind_max = nan if blind_max is None else blind_max
    ts = np.square(sqrt_ts)
    return {
        "trial": np.arange(n, dtype=np.int64) + batch * n,
        "batch": np.full(n, batch, dtype=np.int32),
        "seed": np.full(n, 1000 + batch, dtype=np.int64),
        "exposure_s": np.full(n, exposure),
        "injected_flux": np.broadcast_to(np.asarray(flux, dtype=np.float64), (n,)).copy(),
        "ts": ts,
        "sqrt_ts": sqrt_ts,
        "norm": 0.1 * sqrt_ts,
        "flux": 1e-12 * sqrt_ts,
        "flux_err": np.full(n, 1e-12),
        "n_counts": np.full(n, 100.0),
        "converged": np.ones(n, dtype=bool),
        "blind_sqrt_ts": blind_max,
        "blind_ts": blind_max * np.abs(blind_max),
        "blind_ra": nan,
        "blind_dec": nan,
        "blind_offset": nan,
        "blind_r68": nan,
        "blind_r95": nan,
        "blind_r997": nan,
        "n_candidates": np.full(n, -1, dtype=np.int32),
    }


def _write_outdir(outdir, batches, hypothesis="background", blind=True, threshold=5):
    """Manifest and batch files; ``batches``: list of (exposure index, batch, columns)."""
    (outdir / BATCH_DIR).mkdir(parents=True)
    exposures = sorted({float(cols["exposure_s"][0]) for _, _, cols in batches})
    listed = []
    for e, b, cols in batches:
        name = batch_file_name(e, b)
        pq.write_table(pa.Table.from_pydict(cols, schema=SCHEMA), outdir / BATCH_DIR / name)
        n = len(cols["trial"])
        listed.append(
            {
                "file": f"{BATCH_DIR}/{name}",
                "exposure_index": e,
                "batch": b,
                "n": n,
                "wall_s": 0.01 * n,
                "cpu_s": 0.02 * n,
            }
        )
    manifest = {
        "config": f"alert:\n  threshold: {threshold}\n",
        "hypothesis": hypothesis,
        "exposures_s": exposures,
        "batch_size": 1000,
        "seed": 1,
        "blind": blind,
        "n": 3000,
        "flux_scale": 1e-11,
        "target": [83.6, 22.0],
        "rtafast_version": "test",
        "batches": listed,
    }
    (outdir / MANIFEST_NAME).write_text(json.dumps(manifest), encoding="utf-8")
    return outdir


def _null_batches(rng, sizes_by_exposure):
    batches = []
    for e, (exposure, sizes) in enumerate(sizes_by_exposure.items()):
        for b, n in enumerate(sizes):
            blind_max = rng.standard_normal((n, K_PIXELS)).max(axis=1)
            batches.append((e, b, _rows(n, exposure, b, rng.standard_normal(n), blind_max)))
    return batches


@pytest.fixture(scope="module")
def null_run(tmp_path_factory):
    """A background run, blind: 3000 trials at 10 s (two batches), 1000 at 100 s."""
    rng = np.random.default_rng(20240611)
    batches = _null_batches(rng, {10.0: (1500, 1500), 100.0: (1000,)})
    outdir = _write_outdir(tmp_path_factory.mktemp("null"), batches)
    # a batch being written (store.py writes through a temporary name): not read
    (outdir / BATCH_DIR / f".tmp-x1-{batch_file_name(0, 2)}").write_bytes(b"partial")
    lines = []
    summary = report(outdir, say=lines.append)
    data = {
        name: np.concatenate([c[name] for e, _, c in batches if e == 0])
        for name in ("ts", "sqrt_ts", "norm", "blind_sqrt_ts")
    }
    return outdir, summary, lines, data


# --- fixed-position TS ---------------------------------------------------------------------
def test_null_ts_against_chernoff(null_run):
    _, summary, _, data = null_run
    null = summary["exposures"][0]["null_ts"]
    positive = data["norm"] > 0
    reference_ts = stats.kstest(data["ts"][positive], stats.chi2(1).cdf)
    reference_sqrt = stats.kstest(data["sqrt_ts"], stats.norm.cdf)
    assert null["n"] == 3000
    assert null["ks_ts_chi2_1"]["pvalue"] == pytest.approx(reference_ts.pvalue)
    assert null["ks_sqrt_ts_normal"]["statistic"] == pytest.approx(reference_sqrt.statistic)
    assert null["ks_ts_chi2_1"]["pvalue"] > 1e-3
    assert null["ks_sqrt_ts_normal"]["pvalue"] > 1e-3
    fraction = null["fraction_positive"]
    assert fraction["k"] == np.count_nonzero(positive)
    assert abs(fraction["fraction"] - 0.5) < 3 * fraction["err"]


def test_wrong_ts_scale_fails_ks():
    rng = np.random.default_rng(7)
    s = rng.standard_normal(3000)
    ts = 1.5 * s**2
    null = report_stats.null_ts_summary(ts, np.sign(s) * np.sqrt(ts), s)
    assert null["ks_ts_chi2_1"]["pvalue"] < 1e-6
    assert null["ks_sqrt_ts_normal"]["pvalue"] < 1e-6


def test_pvalue_table_counts_and_intervals(null_run):
    _, summary, _, data = null_run
    table = summary["exposures"][0]["null_ts"]["pvalue_table"]
    top = data["sqrt_ts"].max()
    assert [row["sqrt_ts"] for row in table] == list(np.arange(1.0, top, 0.5))
    for row in table:
        k = np.count_nonzero(data["sqrt_ts"] >= row["sqrt_ts"])
        interval = stats.binomtest(k, 3000).proportion_ci(report_stats.CL_1SIGMA, "exact")
        assert (row["k"], row["n"]) == (k, 3000)
        assert row["expected"] == pytest.approx(stats.norm.sf(row["sqrt_ts"]))
        assert row["low"] == pytest.approx(interval.low, abs=1e-9)
        assert row["high"] == pytest.approx(interval.high, abs=1e-9)


def test_bounded_ts_zero_for_non_positive_norm():
    bounded = report_stats.bounded_ts([4.0, 9.0, -1e-9, 2.0], [1.0, -1.0, 0.5, 0.0])
    assert bounded.tolist() == [4.0, 0.0, 0.0, 0.0]


# --- blind search --------------------------------------------------------------------------
def test_trials_factor_recovered(null_run):
    _, summary, _, _ = null_run
    blind = summary["exposures"][0]["blind_search"]
    n_eff = blind["trials_factor"]["n_eff"]
    assert n_eff == pytest.approx(K_PIXELS, rel=0.2)
    p_global = stats.norm.sf(5.0)
    expected = stats.norm.isf(1 - (1 - p_global) ** (1 / n_eff))
    assert blind["local_sigma_for_5sigma_global"] == pytest.approx(expected, rel=1e-6)
    alert = 1 - (1 - stats.norm.sf(5.0)) ** n_eff
    assert blind["global_sigma_of_alert_threshold"] == pytest.approx(stats.norm.isf(alert))


def test_trials_factor_needs_counts():
    fit = report_stats.fit_trials_factor([0.5, 1.0, 1.5])
    assert fit["n_eff"] is None and "fewer than 2 thresholds" in fit["reason"]


# --- source trials -------------------------------------------------------------------------
def test_efficiency_hand_made():
    flux = np.array([1.0, 1.5, 1.9, 2.0, 3.0, 3.9, 4.0, 7.0, 0.0, 9.0])
    sqrt_ts = np.array([1.0, 6.0, np.nan, 5.0, 4.9, 8.0, 5.0, 5.1, 9.0, 9.0])
    blind = np.array([6.0, 1.0, 7.0, 4.0, 5.0, 5.0, 2.0, 6.0, 9.0, 9.0])
    edges = [1.0, 2.0, 4.0, 8.0]  # flux 0 left out, 9 outside the edges
    eff = report_stats.detection_efficiency(flux, sqrt_ts, 5.0, blind, edges=edges)
    expected = [(3, 1, 2), (3, 2, 2), (2, 2, 1)]  # per bin: n, fixed k, blind k
    assert len(eff["bins"]) == 3
    for entry, (n, k_fixed, k_blind) in zip(eff["bins"], expected, strict=True):
        assert (entry["fixed"]["n"], entry["fixed"]["k"], entry["blind"]["k"]) == (
            n,
            k_fixed,
            k_blind,
        )
        interval = stats.binomtest(k_fixed, n).proportion_ci(report_stats.CL_1SIGMA, "exact")
        assert entry["fixed"]["low"] == pytest.approx(interval.low, abs=1e-9)
        assert entry["fixed"]["high"] == pytest.approx(interval.high, abs=1e-9)
        assert entry["fixed"]["fraction"] == k_fixed / n
    assert eff["bins"][0]["flux_centre"] == pytest.approx(math.sqrt(2.0))


def test_containment_hand_made():
    offset = np.array([0.01, 0.05, 0.2, np.nan, 0.02, 0.09])
    r68 = np.array([0.02, 0.04, 0.1, 0.1, 0.01, 0.1])
    r95 = np.array([0.03, 0.06, 0.15, 0.2, 0.015, 0.2])
    r997 = np.array([0.04, 0.08, 0.25, 0.3, 0.03, 0.3])
    sqrt_ts = np.array([6.0, 7.0, 12.0, 6.0, 4.0, 9.9])
    result = report_stats.containment(offset, r68, r95, r997, sqrt_ts)
    assert (result["n_trials"], result["n_with_candidate"]) == (6, 5)
    overall, band = result["overall"], result["band"]
    assert [overall[r]["k"] for r in ("r68", "r95", "r997")] == [2, 3, 5]
    assert overall["r68"]["n"] == 5 and overall["r997"]["expected"] == 0.997
    assert [band[r]["k"] for r in ("r68", "r95", "r997")] == [2, 3, 3]
    assert band["r68"]["n"] == 3
    expected = stats.binomtest(2, 3).proportion_ci(report_stats.CL_1SIGMA, "exact")
    assert band["r68"]["low"] == pytest.approx(expected.low, abs=1e-9)


def _source_rows(rng, n, flux):
    sqrt_ts = rng.normal(3.0, 2.0, n)
    blind_max = sqrt_ts + 0.5
    rows = _rows(n, 30.0, 0, sqrt_ts, blind_max, flux=flux)
    rows["blind_offset"] = np.abs(rng.normal(0.0, 0.05, n))
    rows["blind_r68"] = np.full(n, 0.05 * math.sqrt(-2 * math.log(1 - 0.68)))
    rows["blind_r95"] = np.full(n, 0.05 * math.sqrt(-2 * math.log(1 - 0.95)))
    rows["blind_r997"] = np.full(n, 0.05 * math.sqrt(-2 * math.log(1 - 0.997)))
    return rows


def test_source_run_efficiency_and_containment(tmp_path):
    rng = np.random.default_rng(3)
    flux = np.geomspace(1e-12, 1e-10, 400)
    rows = _source_rows(rng, 400, flux)
    outdir = _write_outdir(tmp_path / "src", [(0, 0, rows)], hypothesis="source", threshold=4)
    lines = []
    summary = report(outdir, say=lines.append)
    entry = summary["exposures"][0]
    assert summary["alert_threshold_sigma"] == 4.0
    bins = entry["efficiency"]["bins"]
    assert len(bins) == 10 and sum(b["fixed"]["n"] for b in bins) == 400
    assert sum(b["fixed"]["k"] for b in bins) == np.count_nonzero(rows["sqrt_ts"] >= 4)
    assert sum(b["blind"]["k"] for b in bins) == np.count_nonzero(rows["blind_sqrt_ts"] >= 4)
    overall = entry["containment"]["overall"]
    assert overall["r68"]["k"] == np.count_nonzero(rows["blind_offset"] <= rows["blind_r68"])
    assert entry["null_ts"] is None and entry["blind_search"] is None
    assert set(entry["skipped"]) == {"null_ts", "blind_search"}
    assert any("skipped" in line for line in lines)
    assert "e00-efficiency.png" in entry["plots"]
    text = (outdir / "report" / "summary.md").read_text(encoding="utf-8")
    assert "Detection efficiency" in text and "Localisation containment" in text


# --- outputs -------------------------------------------------------------------------------
def test_files_written(null_run):
    outdir, summary, lines, _ = null_run
    folder = outdir / "report"
    on_disk = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary
    assert {
        "hypothesis",
        "blind",
        "alert_threshold_sigma",
        "exposures",
        "throughput",
        "files",
        "n_rows",
        "n_files",
    } <= set(on_disk)
    assert summary["n_rows"] == 4000 and summary["n_files"] == 3
    assert [e["exposure_s"] for e in summary["exposures"]] == [10.0, 100.0]
    for name in summary["files"]:
        assert (folder / name).stat().st_size > 0
    assert {"e00-null-ts.png", "e00-blind.png", "e01-null-ts.png"} <= set(summary["files"])
    assert (folder / "e00-null-ts.png").read_bytes()[:4] == b"\x89PNG"
    text = (folder / "summary.md").read_text(encoding="utf-8")
    assert "| sqrt(TS) ≥ |" in text and "## Exposure 100 s" in text
    assert lines[-1].startswith("report written to")


def test_throughput(null_run):
    _, summary, _, _ = null_run
    total = summary["throughput"]["total"]
    assert total["trials"] == 4000
    assert total["trials_per_core_s"] == pytest.approx(4000 / (0.02 * 4000))
    assert [e["trials"] for e in summary["throughput"]["per_exposure"]] == [3000, 1000]


def test_blind_off_is_skipped(tmp_path):
    rng = np.random.default_rng(5)
    rows = _rows(200, 10.0, 0, rng.standard_normal(200))
    outdir = _write_outdir(tmp_path / "noblind", [(0, 0, rows)], blind=False)
    summary = report(outdir, say=lambda line: None)
    entry = summary["exposures"][0]
    assert entry["blind_search"] is None
    assert entry["skipped"]["blind_search"] == "the run has blind: false"
    assert set(entry["skipped"]) == {"blind_search", "efficiency", "containment"}
    assert entry["plots"] == ["e00-null-ts.png"]


# --- errors --------------------------------------------------------------------------------
def test_missing_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match=MANIFEST_NAME):
        report(tmp_path, say=lambda line: None)


def test_no_batch_files(tmp_path):
    outdir = _write_outdir(tmp_path / "empty", [])
    with pytest.raises(FileNotFoundError, match="no batch file"):
        report(outdir, say=lambda line: None)


def test_batch_lacking_a_column(tmp_path):
    rng = np.random.default_rng(1)
    outdir = _write_outdir(tmp_path / "bad", [(0, 0, _rows(10, 10.0, 0, rng.standard_normal(10)))])
    path = outdir / BATCH_DIR / batch_file_name(0, 0)
    pq.write_table(pq.read_table(path).drop_columns(["norm"]), path)
    with pytest.raises(ValueError, match=r"e00-b000000\.parquet.*lacks column\(s\) norm"):
        report(outdir, say=lambda line: None)


def test_unreadable_batch(tmp_path):
    rng = np.random.default_rng(1)
    outdir = _write_outdir(tmp_path / "junk", [(0, 0, _rows(10, 10.0, 0, rng.standard_normal(10)))])
    (outdir / BATCH_DIR / batch_file_name(0, 1)).write_bytes(b"not parquet")
    with pytest.raises(ValueError, match=r"e00-b000001\.parquet: unreadable batch file"):
        report(outdir, say=lambda line: None)
