"""``tradepulse golden check``: every suite as executor tasks, the stress goldens, the report."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml
from numpy.typing import NDArray
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.errors import DataError
from tradepulse.executor import TaskStats
from tradepulse.golden import (
    CaseCheck,
    Drift,
    DriftChart,
    RegressionRun,
    golden_backtest_cases,
    golden_stress_cases,
    load_stored_stress_case,
    run_golden_checks,
    update_stress_goldens,
)
from tradepulse.golden.regression import _largest
from tradepulse.reports import write_regression_report

CASH = 10_000.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
runner = CliRunner()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _scenario_files(repo_root: Path) -> list[Path]:
    return sorted((repo_root / "backtest" / "configs" / "stress").glob("*.yaml"))


def _expected_case_count(repo_root: Path) -> int:
    """Cases of a full check, counted from the shipped files rather than the code."""
    data_files = len(json.loads((repo_root / "golden/data/metadata.json").read_text())["files"])
    backtest_runs = sum(
        len(entry["checked_engines"])
        for entry in json.loads((repo_root / "golden/backtests/metadata.json").read_text())[
            "cases"
        ].values()
    )
    return data_files + backtest_runs + len(_scenario_files(repo_root)) * 2


def _images(page: str) -> list[bytes]:
    import base64

    return [
        base64.b64decode(match)
        for match in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    ]


# ------------------------------------------------------------------------------ the stress goldens


@pytest.fixture(scope="module")
def stress_table(repo_root: Path) -> pl.DataFrame:
    return pl.read_csv(repo_root / "golden" / "stress" / "sma_cross-sp500_daily.csv")


def test_stress_goldens_cover_every_shipped_scenario_with_two_seeds(
    repo_root: Path, stress_table: pl.DataFrame
) -> None:
    names = [path.stem for path in _scenario_files(repo_root)]

    pairs = list(zip(stress_table["scenario"], stress_table["seed"], strict=True))

    assert pairs == [(name, seed) for name in names for seed in (0, 1)]
    assert (stress_table["kind"] == stress_table["scenario"]).all()
    assert set(stress_table["engine"]) == {"vector", "event"}
    drought = stress_table.filter(pl.col("scenario") == "liquidity_drought")
    assert set(drought["engine"]) == {"event"}  # the participation cap needs the event engine


def test_stress_metadata_records_provenance(repo_root: Path) -> None:
    folder = repo_root / "golden" / "stress"
    metadata = json.loads((folder / "metadata.json").read_text())
    shipped = json.loads((repo_root / "golden" / "data" / "metadata.json").read_text())

    (entry,) = metadata["cases"].values()

    assert entry["strategy"] == "sma_cross"
    assert entry["params"] == {"fast": 10, "slow": 30, "direction": "long"}
    assert entry["seeds"] == [0, 1]
    data = repo_root / entry["data"]
    assert entry["data_sha256"] == _sha256(data) == shipped["files"][data.name]["sha256"]
    assert set(entry["scenarios"]) == {path.stem for path in _scenario_files(repo_root)}
    for name, scenario in entry["scenarios"].items():
        # Both copies of a scenario file (backtest/configs and the package's) are the one pinned.
        assert scenario["sha256"] == _sha256(repo_root / scenario["file"])
        assert scenario["sha256"] == _sha256(repo_root / "backtest/configs/stress" / f"{name}.yaml")
        assert scenario["kind"] == name
    for name, described in entry["files"].items():
        assert _sha256(folder / name) == described["sha256"]
        assert pl.read_csv(folder / name).height == described["rows"] == 12
    assert {"numpy", "polars", "numba", "tradepulse"} <= set(entry["library_versions"])
    assert metadata["comparison"]["rtol"] == 1e-9


def test_stress_rows_obey_their_scenario_files(
    repo_root: Path, sample_dir: Path, stress_table: pl.DataFrame
) -> None:
    bars = pl.read_csv(sample_dir / "sp500_daily.csv")
    for row in stress_table.iter_rows(named=True):
        spec = yaml.safe_load(
            (repo_root / "backtest/configs/stress" / f"{row['scenario']}.yaml").read_text()
        )
        limits = spec["thresholds"]
        within = row["max_drawdown"] <= limits["max_drawdown"] and (
            row["total_return"] >= limits["loss_limit"]
        )
        removed = spec["transform"]["bars"] if row["scenario"] == "trading_halt" else 0

        assert row["passed"] is within, row
        assert bool(row["reason"]) is not within, row
        assert row["bars"] == bars.height - removed
        assert row["start_ts"] == f"{bars['ts'][row['start']]}T00:00:00Z"
        assert row["final_equity"] == pytest.approx(CASH * (1 + row["total_return"]), rel=1e-12)


def _sma(values: NDArray[np.float64], period: int) -> NDArray[np.float64]:
    out = np.full(values.shape[0], np.nan)
    out[period - 1 :] = np.convolve(values, np.ones(period) / period, mode="valid")
    return out


def _long_sma_cross_equity(opens: NDArray[np.float64], close: NDArray[np.float64]) -> float:
    """Final equity of long-only, all-in SMA(10)/SMA(30) crossing, filled at the next open."""
    fast, slow = _sma(close, 10), _sma(close, 30)
    up = set((np.flatnonzero((fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])) + 1).tolist())
    down = set((np.flatnonzero((fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])) + 1).tolist())
    equity, quantity = CASH, 0.0
    for bar in sorted(up | down):
        if bar + 1 >= close.shape[0]:
            break
        if bar in up and quantity == 0.0:
            quantity = equity / opens[bar + 1]
        elif bar in down and quantity > 0.0:
            equity, quantity = quantity * opens[bar + 1], 0.0
    return quantity * close[-1] if quantity > 0.0 else equity


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("scenario", ["gap_open", "flash_crash"])
def test_stress_goldens_match_a_backtest_of_bars_stressed_here(
    scenario: str, seed: int, repo_root: Path, sample_dir: Path, stress_table: pl.DataFrame
) -> None:
    # The stressed prices follow the scenario file's documented rule, computed here.
    bars = pl.read_csv(sample_dir / "sp500_daily.csv")
    opens, close = bars["open"].to_numpy(), bars["close"].to_numpy()
    count = bars.height
    spec = yaml.safe_load((repo_root / f"backtest/configs/stress/{scenario}.yaml").read_text())
    transform = spec["transform"]
    if scenario == "gap_open":
        start = int(np.random.default_rng(seed).integers(1, count - 1, endpoint=True))
        factor = np.ones(count)
        factor[start:] = (1 + transform["gap"]) * close[start - 1] / opens[start]
        open_factor = close_factor = factor
    else:
        fall, rise = transform["bars"], transform["recovery_bars"]
        last = count - fall - rise
        start = int(np.random.default_rng(seed).integers(1, last, endpoint=True))
        trough = np.log(1 - transform["drop"])
        final = np.log(1 - transform["drop"] * (1 - transform["recovery"]))
        log_factor = np.zeros(count)
        log_factor[start : start + fall] = trough * np.arange(1, fall + 1) / fall
        climb = np.arange(1, rise + 1) / rise
        log_factor[start + fall : start + fall + rise] = (1 - climb) * trough + climb * final
        log_factor[start + fall + rise :] = final
        close_factor = np.exp(log_factor)
        open_factor = np.concatenate(([1.0], close_factor[:-1]))

    row = stress_table.filter((pl.col("scenario") == scenario) & (pl.col("seed") == seed))

    assert row["start"][0] == start
    assert row["final_equity"][0] == pytest.approx(
        _long_sma_cross_equity(opens * open_factor, close * close_factor), rel=1e-9
    )


@pytest.fixture
def stress_root(tmp_path: Path, repo_root: Path) -> Path:
    root = tmp_path / "golden"
    root.mkdir()
    (root / "data").symlink_to(repo_root / "golden" / "data")
    return root


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_stress_update_is_deterministic_and_reproduces_the_committed_files(
    stress_root: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(stress_root.parent)  # golden_root() is ./golden first
    (stress_root / "stress").mkdir()
    (stress_root / "stress" / "gone-case.csv").write_text("scenario\n")

    first = runner.invoke(app, ["golden", "update", "--suite", "stress"])
    assert first.exit_code == 0, first.output
    snapshot = _snapshot(stress_root / "stress")
    update_stress_goldens(stress_root)

    assert _snapshot(stress_root / "stress") == snapshot
    committed = repo_root / "golden" / "stress"
    assert sorted(snapshot) == sorted(path.name for path in committed.iterdir())
    for name in snapshot:
        if name.endswith(".csv"):
            assert snapshot[name] == (committed / name).read_bytes(), name
    ours = json.loads(snapshot["metadata.json"])
    theirs = json.loads((committed / "metadata.json").read_text())
    for metadata in (ours, theirs):
        for entry in metadata["cases"].values():
            del entry["generated"], entry["library_versions"]
    assert ours == theirs
    assert not (stress_root / "indicators").exists()


def test_a_missing_stress_row_or_file_is_an_error(stress_root: Path, repo_root: Path) -> None:
    shutil.copytree(repo_root / "golden" / "stress", stress_root / "stress")
    case = golden_stress_cases()[0]
    stored = load_stored_stress_case(case, root=stress_root)

    with pytest.raises(DataError, match="0 rows for scenario 'flash_crash' seed 7"):
        stored.row("flash_crash", 7)
    (stress_root / "stress" / f"{case.name}.csv").unlink()
    with pytest.raises(DataError, match="missing"):
        load_stored_stress_case(case, root=stress_root)


# ------------------------------------------------------------------------------ the check


def test_local_check_passes_and_reports_every_case(tmp_path: Path, repo_root: Path) -> None:
    out = tmp_path / "regressions"
    (out).mkdir()
    (out / "drift-old-case.png").write_bytes(b"stale")

    result = runner.invoke(app, ["golden", "check", "--local", "--report-dir", str(out)])

    assert result.exit_code == 0, result.output
    total = _expected_case_count(repo_root)
    markdown = (out / "index.md").read_text()
    page = (out / "index.html").read_text()
    assert f"PASSED: all {total} cases match their goldens" in markdown
    assert markdown.count("| pass |") == total
    assert "DRIFT" not in markdown
    assert "LocalExecutor()" in markdown
    assert "task CPU time" in markdown
    assert "peak worker memory" in markdown
    for case in golden_backtest_cases():
        assert f"| backtests | {case.name} | vector | pass |" in markdown
    assert "| stress | sma_cross-sp500_daily/regime_flip/seed1 | vector | pass |" in markdown
    assert "| indicators | nasdaq_daily | — | pass |" in markdown
    assert "![largest relative difference per case](overview.png)" in markdown
    assert sorted(path.name for path in out.iterdir()) == ["index.html", "index.md", "overview.png"]
    (image,) = _images(page)
    assert image == (out / "overview.png").read_bytes()
    assert image.startswith(PNG_MAGIC)
    assert "golden stress: all match; 12 runs" in result.output
    assert "report: " in result.output


def test_ray_check_passes_on_the_session_cluster(
    ray_session: object, tmp_path: Path, repo_root: Path
) -> None:
    out = tmp_path / "regressions"

    result = runner.invoke(app, ["golden", "check", "--report-dir", str(out)])

    assert result.exit_code == 0, result.output
    markdown = (out / "index.md").read_text()
    assert f"PASSED: all {_expected_case_count(repo_root)} cases" in markdown
    assert "RayExecutor(" in markdown
    assert "RayExecutor(" in result.output


def test_ray_tasks_run_in_workers_and_agree_with_local(ray_session: object) -> None:
    from tradepulse.cluster import RayExecutor

    on_ray = run_golden_checks(suites=["stress"], executor=RayExecutor())
    local = run_golden_checks(suites=["stress"])

    assert on_ray.passed
    assert {stats.pid for stats in on_ray.stats}.isdisjoint({os.getpid()})
    assert [(c.case, c.engine, c.drifts, c.values) for c in on_ray.checks] == [
        (c.case, c.engine, c.drifts, c.values) for c in local.checks
    ]


@pytest.fixture
def drifted_copy(tmp_path: Path, repo_root: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``golden/`` copy in tmp_path with one drift per suite (and changes within tolerance)."""
    root = tmp_path / "golden"
    root.mkdir()
    (root / "data").symlink_to(repo_root / "golden" / "data")
    for suite in ("indicators", "backtests", "stress"):
        shutil.copytree(repo_root / "golden" / suite, root / suite)
    equity = root / "backtests" / "sma_cross-sp500_daily" / "equity.csv"
    _rewrite(equity, "equity", {2000: 1 + 1e-7, 2001: 1 + 1e-7, 3000: 1 + 1e-10})
    _rewrite(root / "indicators" / "nasdaq_daily.csv", "rsi_14", {4000: 1 + 1e-6})
    _rewrite(root / "stress" / "sma_cross-sp500_daily.csv", "sharpe", {7: 1.01})
    # Only what the drifts need: one backtest case, one data file's indicators.
    chosen = [case for case in golden_backtest_cases() if case.name == "sma_cross-sp500_daily"]
    monkeypatch.setattr("tradepulse.golden.regression.golden_backtest_cases", lambda: chosen)
    monkeypatch.setattr("tradepulse.golden.regression.SAMPLE_FILES", {"NASDAQ": "nasdaq_daily.csv"})
    monkeypatch.chdir(tmp_path)
    return root


def _rewrite(path: Path, column: str, factors: dict[int, float]) -> None:
    frame = pl.read_csv(path, infer_schema_length=0)
    values = frame[column].to_list()
    for row, factor in factors.items():
        values[row] = repr(float(values[row]) * factor)
    frame.with_columns(pl.Series(column, values)).write_csv(path)


def test_perturbed_goldens_are_reported_with_case_column_and_bar(drifted_copy: Path) -> None:
    result = runner.invoke(app, ["golden", "check", "--local", "--engine", "vector"])

    assert result.exit_code == 1
    out = drifted_copy.parent / "reports" / "regressions"
    markdown = (out / "index.md").read_text()
    # 1 indicator file + 1 backtest run + 12 stress runs, 3 of them drifted.
    assert "FAILED: 3 of 14 cases drifted" in markdown
    assert "| backtests | sma_cross-sp500_daily | vector | DRIFT |" in markdown
    assert "bar 2000 (equity 'equity')" in markdown
    assert "| equity | equity | 2 | bar 2000 |" in markdown  # bar 3000 is within rtol
    assert "bar 4000 (indicators 'rsi_14')" in markdown
    assert "| metrics | sharpe | — | — |" in markdown
    # Row 7 of the stress file is regime_flip, seed 1.
    assert "| stress | sma_cross-sp500_daily/regime_flip/seed1 | vector | DRIFT |" in markdown
    charts = sorted(path.name for path in out.glob("drift-*.png"))
    assert charts == [
        "drift-backtests-sma_cross-sp500_daily-vector.png",
        "drift-indicators-nasdaq_daily.png",
        "drift-stress-sma_cross-sp500_daily_regime_flip_seed1-vector.png",
    ]
    for name in charts:
        assert f"]({name})" in markdown
    images = _images((out / "index.html").read_text())
    assert len(images) == 4
    assert all(image.startswith(PNG_MAGIC) for image in images)
    assert (out / charts[0]).read_bytes() in images
    assert "sma_cross-sp500_daily [vector] equity 'equity' differs in 2 bars" in result.output
    assert "first at bar 2000" in result.output
    assert "nasdaq_daily indicators 'rsi_14' differs in 1 bars (first at bar 4000" in result.output
    assert "golden stress: 1 of 12 runs drifted" in result.output


def test_perturbed_goldens_give_numbers_for_the_report(drifted_copy: Path) -> None:
    run = run_golden_checks(engines=["vector"], root=drifted_copy)

    failed = {check.suite: check for check in run.failed}
    equity = failed["backtests"].drifts[0]
    assert (equity.part, equity.column, equity.first_row, equity.mismatches) == (
        "equity",
        "equity",
        2000,
        2,
    )
    # The golden was scaled by 1 + 1e-7, so the current value is off by 1e-7 / (1 + 1e-7).
    assert failed["backtests"].max_rel_diff == pytest.approx(1e-7, rel=1e-6)
    chart = failed["backtests"].chart
    assert chart is not None
    assert chart.kind == "series"
    assert chart.drifting.tolist() == [2000, 2001]
    stress = failed["stress"]
    assert [drift.column for drift in stress.drifts] == ["sharpe"]
    assert stress.drifts[0].first_row is None
    assert stress.max_rel_diff == pytest.approx(0.01 / 1.01, rel=1e-9)
    assert stress.chart is not None
    assert stress.chart.kind == "values"
    assert failed["indicators"].drifts[0].location == "bar 4000"
    assert len(run.stats) == len(run.checks) == 14
    assert run.cpu_s > 0
    assert run.peak_rss_mb > 0


def test_cli_option_errors(tmp_path: Path) -> None:
    both = runner.invoke(app, ["golden", "check", "--local", "--address", "127.0.0.1:6379"])
    suite = runner.invoke(app, ["golden", "check", "--local", "--suite", "prices"])

    assert both.exit_code == 2
    assert "--local and --address exclude each other" in both.output
    assert suite.exit_code == 2
    assert "--suite must be one of indicators, backtests, stress; got 'prices'" in suite.output


def test_a_missing_stress_golden_fails_in_one_line_before_any_task(
    stress_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(stress_root.parent)

    result = runner.invoke(app, ["golden", "check", "--local", "--suite", "stress"])

    assert result.exit_code == 1
    assert "golden/stress/metadata.json is missing" in result.output
    assert "tradepulse golden update" in result.output
    assert "Traceback" not in result.output
    assert not (stress_root.parent / "reports").exists()


# ------------------------------------------------------------------------------ pieces


def test_largest_differences_skip_nan_and_zero_goldens() -> None:
    expected = np.array([1.0, 2.0, np.nan, 0.0, 4.0])
    actual = np.array([1.5, 2.0, 3.0, 0.25, 4.0, 9.0])  # a longer current series

    count, largest_abs, largest_rel = _largest([(expected, actual)])

    # Compared: rows 0, 1, 3, 4 (row 2 has NaN, row 5 no golden); |diff| 0.5, 0, 0.25, 0.
    assert count == 4
    assert largest_abs == 0.5
    assert largest_rel == 0.5  # 0.5 / 1.0; row 3's golden is zero: no relative difference


def test_drift_text_names_case_engine_column_and_bar() -> None:
    drift = Drift("backtests", "c", "event", "trades", "pnl", 3, 5, "1.0", "2.0", 1.0, 1.0)
    label = Drift("indicators", "sp500_daily", "", "indicators", "phase", 2, 9, "a", "b")
    metric = Drift("stress", "c/x/seed0", "vector", "metrics", "sharpe", 1, None, "1", "2")

    assert str(drift) == (
        "c [event] trades 'pnl' differs in 3 trades (first at trade 5: expected 1.0, got 2.0; "
        "max |diff| 1, max rel 1)"
    )
    assert str(label) == (
        "sp500_daily indicators 'phase' differs in 2 bars (first at bar 9: expected a, got b)"
    )
    assert str(metric) == "c/x/seed0 [vector] metrics 'sharpe' differs (expected 1, got 2)"
    assert metric.location == ""


def _check(case: str, drifts: tuple[Drift, ...] = (), chart: DriftChart | None = None) -> CaseCheck:
    return CaseCheck("backtests", case, "vector", drifts, 3, 0.0, 0.0, chart)


def test_report_of_a_hand_made_run(tmp_path: Path) -> None:
    golden = np.array([1.0, 2.0, 3.0, 4.0])
    current = np.array([1.0, 2.0, 3.5, 4.0])
    chart = DriftChart(
        "series", "t", "equity", "bar", golden, current, np.array([2]), (), 1e-9, 1e-12
    )
    drift = Drift("backtests", "a|b", "vector", "equity", "equity", 1, 2, "3.0", "3.5", 0.5, 1 / 6)
    values = DriftChart(
        "values",
        "m",
        "metrics",
        "metric",
        np.array([1.0, 0.0]),
        np.array([1.5, 0.0]),
        np.array([0]),
        ("sharpe", "trades"),
        1e-9,
        1e-12,
    )
    metric = Drift("backtests", "m", "vector", "metrics", "sharpe", 1, None, "1.0", "1.5")
    stats = TaskStats(cpu_s=0.5, wall_s=1.0, peak_rss_mb=100.0, pid=1, node="n")
    run = RegressionRun(
        suites=("backtests",),
        checks=(_check("ok"), _check("a|b", (drift,), chart), _check("m", (metric,), values)),
        stats=(stats, stats, stats),
        elapsed_s=2.0,
        load_s=0.5,
        executor="FakeExecutor()",
    )

    report = write_regression_report(run, tmp_path / "out")

    markdown = report.markdown_path.read_text()
    assert "FAILED: 2 of 3 cases drifted" in markdown
    assert "| backtests | a\\|b | vector | DRIFT | 3 |" in markdown  # the pipe is escaped
    assert "| task CPU time (sum) | 1.50 s |" in markdown
    assert "| tasks | 3 on 1 worker process(es) |" in markdown
    assert [path.name for path in report.png_paths] == [
        "overview.png",
        "drift-backtests-a_b-vector.png",
        "drift-backtests-m-vector.png",
    ]
    assert len(_images(report.html_path.read_text())) == 3
