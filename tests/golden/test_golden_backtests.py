"""Golden backtests: the files are right, both engines reproduce them, drift is reported."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from numpy.typing import NDArray
from typer.testing import CliRunner

from tradepulse.backtest.runner import Engine
from tradepulse.cli import app
from tradepulse.errors import ConfigError, DataError
from tradepulse.golden import (
    BacktestCase,
    check_backtest_goldens,
    check_case,
    compare,
    golden_backtest_cases,
    load_stored_case,
    run_case,
    update_backtest_goldens,
)
from tradepulse.golden.backtests import BACKTEST_RELATIVE_TOLERANCE, ComputedCase, StoredCase

CASH = 10_000.0
RATE = 0.001
ADVERSE = 1e-4 + 1e-4  # half of a 2 bps spread plus 1 bp of slippage
IMPACT = 100e-4  # square-root impact at full participation


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _case(name: str) -> BacktestCase:
    return next(case for case in golden_backtest_cases() if case.name == name)


def _golden(repo_root: Path) -> Path:
    return repo_root / "golden" / "backtests"


def _bars(repo_root: Path, name: str) -> pl.DataFrame:
    return pl.read_csv(repo_root / "golden" / "data" / name)


def _trades(repo_root: Path, case: str) -> pl.DataFrame:
    return pl.read_csv(_golden(repo_root) / case / "trades.csv")


def _sma(values: NDArray[np.float64], period: int) -> NDArray[np.float64]:
    out = np.full(values.shape[0], np.nan)
    out[period - 1 :] = np.convolve(values, np.ones(period) / period, mode="valid")
    return out


def _crosses(close: NDArray[np.float64]) -> tuple[list[int], list[int]]:
    """Bars of the strict up- and down-crosses of SMA(10) and SMA(30), computed here."""
    fast, slow = _sma(close, 10), _sma(close, 30)
    up = (fast[:-1] < slow[:-1]) & (fast[1:] > slow[1:])
    down = (fast[:-1] > slow[:-1]) & (fast[1:] < slow[1:])
    return (np.flatnonzero(up) + 1).tolist(), (np.flatnonzero(down) + 1).tolist()


@pytest.fixture
def golden_copy(tmp_path: Path, repo_root: Path) -> Path:
    """A ``golden/`` root in tmp_path: the shipped data linked, the backtest goldens copied."""
    root = tmp_path / "golden"
    root.mkdir()
    (root / "data").symlink_to(repo_root / "golden" / "data")
    shutil.copytree(_golden(repo_root), root / "backtests")
    return root


# ------------------------------------------------------------------------------ the files


def test_cases_cover_every_builtin_on_both_files_plus_a_costly_run() -> None:
    cases = golden_backtest_cases()

    names = [case.name for case in cases]
    assert len(names) == len(set(names)) == 10
    for data in ("sp500_daily", "nasdaq_daily"):
        for strategy in ("sma_cross", "rsi_reversion", "bollinger_breakout", "geometry_phase"):
            assert f"{strategy}-{data}" in names
    costly = _case("sma_cross_long_short_costs-sp500_daily")
    assert costly.sizing == "whole"
    assert costly.latency_bars == 1
    assert costly.commission
    assert len(costly.slippage) == 3
    assert all(case.engines == ("vector", "event") for case in cases)


def test_metadata_records_provenance(repo_root: Path) -> None:
    golden = _golden(repo_root)
    metadata = json.loads((golden / "metadata.json").read_text())
    shipped = json.loads((repo_root / "golden" / "data" / "metadata.json").read_text())

    assert metadata["comparison"]["rtol"] == BACKTEST_RELATIVE_TOLERANCE
    assert set(metadata["cases"]) == {case.name for case in golden_backtest_cases()}
    for case in golden_backtest_cases():
        entry = metadata["cases"][case.name]
        data = repo_root / entry["data"]
        assert entry["data_sha256"] == _sha256(data) == shipped["files"][data.name]["sha256"]
        assert entry["strategy"] == case.strategy
        assert entry["engine"] == "vector"
        assert entry["frictions"]["sizing"] == case.sizing
        assert {"numpy", "polars", "numba"} <= set(entry["library_versions"])
        assert datetime.fromisoformat(entry["generated"]).tzinfo is not None
        for name, described in entry["files"].items():
            path = golden / case.name / name
            assert _sha256(path) == described["sha256"], path
        assert entry["files"]["equity.csv"]["rows"] == shipped["files"][data.name]["rows"]


def test_costly_case_metadata_names_its_models(repo_root: Path) -> None:
    metadata = json.loads((_golden(repo_root) / "metadata.json").read_text())

    entry = metadata["cases"]["sma_cross_long_short_costs-nasdaq_daily"]

    assert entry["params"] == {"fast": 10, "slow": 30, "direction": "long_short"}
    assert entry["frictions"] == {
        "commission": [{"model": "NotionalCommission", "rate": 0.001}],
        "slippage": [
            {"model": "SpreadSlippage", "spread_bps": 2.0},
            {"model": "FixedSlippage", "slippage_bps": 1.0},
            {"model": "SquareRootImpact", "impact_bps": 100.0},
        ],
        "sizing": "whole",
        "latency_bars": 1,
    }


@pytest.mark.parametrize("case", [case.name for case in golden_backtest_cases()])
def test_goldens_add_up(case: str, repo_root: Path) -> None:
    # Every trade here has one entry and one exit fill, so its P&L is the price
    # move times the quantity less its commission, and the P&L adds up to the
    # final equity; the metrics agree with the equity and trade files.
    folder = _golden(repo_root) / case
    equity = pl.read_csv(folder / "equity.csv")
    trades = pl.read_csv(folder / "trades.csv")
    metrics = json.loads((folder / "metrics.json").read_text())
    sign = np.where(trades["side"].to_numpy() == "long", 1.0, -1.0)
    move = (trades["exit_price"] - trades["entry_price"]).to_numpy() * sign

    expected_pnl = trades["quantity"].to_numpy() * move - trades["commission"].to_numpy()

    np.testing.assert_allclose(trades["pnl"].to_numpy(), expected_pnl, rtol=1e-9, atol=1e-9)
    assert equity["equity"][0] == CASH
    assert equity["equity"][-1] == metrics["final_equity"]
    assert math.isclose(CASH + trades["pnl"].sum(), metrics["final_equity"], rel_tol=1e-9)
    assert math.isclose(metrics["total_return"], metrics["final_equity"] / CASH - 1, rel_tol=1e-9)
    assert trades.height == metrics["trades"] > 0
    assert equity.height == metrics["bars"]
    assert equity["bar"].to_list() == list(range(equity.height))
    assert trades["is_open"].sum() <= 1
    assert math.isclose(metrics["win_rate"], (trades["pnl"] > 0).mean(), rel_tol=1e-12)


@pytest.mark.parametrize("data", ["sp500_daily", "nasdaq_daily"])
def test_sma_cross_golden_follows_crosses_computed_here(data: str, repo_root: Path) -> None:
    bars = _bars(repo_root, f"{data}.csv")
    close, opens = bars["close"].to_numpy(), bars["open"].to_numpy()
    up, down = _crosses(close)
    entries, exits, position = [], [], False
    for bar in sorted(up + down):
        if bar + 1 >= bars.height:
            break
        if bar in up and not position:
            entries.append(bar + 1)
            position = True
        elif bar in down and position:
            exits.append(bar + 1)
            position = False

    trades = _trades(repo_root, f"sma_cross-{data}")

    assert trades["entry_bar"].to_list() == entries
    assert trades["exit_bar"].to_list()[: len(exits)] == exits
    # The trade's entry price is an average over its fills: equal up to rounding.
    np.testing.assert_allclose(trades["entry_price"].to_numpy(), opens[entries], rtol=1e-14)
    assert trades["quantity"][0] == pytest.approx(CASH / opens[entries[0]], rel=1e-14)
    first = pl.read_csv(_golden(repo_root) / f"sma_cross-{data}" / "equity.csv")["equity"]
    held = slice(entries[0], exits[0])
    np.testing.assert_allclose(
        first.to_numpy()[held], trades["quantity"][0] * close[held], rtol=1e-12
    )


@pytest.mark.parametrize("data", ["sp500_daily", "nasdaq_daily"])
def test_costly_golden_pays_latency_spread_slippage_impact_and_commission(
    data: str, repo_root: Path
) -> None:
    bars = _bars(repo_root, f"{data}.csv")
    up, down = _crosses(bars["close"].to_numpy())
    # Decided on bar t's close, one bar of latency: filled at t + 2's open.
    fills = [bar + 2 for bar in sorted(up + down) if bar + 2 < bars.height]
    opens, volume = bars["open"].to_numpy(), bars["volume"].to_numpy()

    trades = _trades(repo_root, f"sma_cross_long_short_costs-{data}")

    entry = trades["entry_bar"].to_numpy()
    quantity = trades["quantity"].to_numpy()
    assert entry.tolist() == fills
    assert trades["exit_bar"].to_list()[:-1] == fills[1:]
    assert trades["side"].to_list()[0] == ("long" if min(up) < min(down) else "short")
    np.testing.assert_array_equal(quantity, np.floor(quantity))
    sign = np.where(trades["side"].to_numpy() == "long", 1.0, -1.0)
    adverse = ADVERSE + IMPACT * np.sqrt(quantity / volume[entry])
    np.testing.assert_allclose(
        trades["entry_price"].to_numpy(), opens[entry] * (1 + sign * adverse), rtol=1e-12
    )
    assert quantity[0] == math.floor(CASH / (trades["entry_price"][0] * (1 + RATE)))
    closed = ~trades["is_open"].to_numpy()
    traded = trades["entry_price"].to_numpy() + np.where(closed, trades["exit_price"], 0.0)
    np.testing.assert_allclose(trades["commission"].to_numpy(), RATE * quantity * traded)


# ------------------------------------------------------------------------------ the check


@pytest.mark.parametrize("engine", ["vector", "event"])
def test_committed_goldens_are_reproduced(engine: Engine) -> None:
    results = check_backtest_goldens(engines=[engine])

    assert len(results) == len(golden_backtest_cases())
    assert {result.engine for result in results} == {engine}
    failures = [str(drift) for result in results for drift in result.drifts]
    assert failures == [], "\n".join(failures)


def _rewrite(path: Path, column: str, row: int, change: object) -> None:
    frame = pl.read_csv(path, infer_schema_length=0)
    values = frame[column].to_list()
    values[row] = str(change(values[row]) if callable(change) else change)
    frame.with_columns(pl.Series(column, values)).write_csv(path)


def test_a_perturbed_equity_bar_is_reported(golden_copy: Path) -> None:
    case = _case("sma_cross-sp500_daily")
    path = golden_copy / "backtests" / case.name / "equity.csv"
    _rewrite(path, "equity", 2000, lambda v: repr(float(v) * (1 + 1e-7)))
    _rewrite(path, "equity", 3000, lambda v: repr(float(v) * (1 + 1e-10)))  # within rtol

    result = check_case(case, "vector", root=golden_copy)

    assert not result.passed
    (drift,) = result.drifts
    assert (drift.case, drift.engine, drift.part, drift.column) == (
        case.name,
        "vector",
        "equity",
        "equity",
    )
    assert (drift.first_row, drift.mismatches) == (2000, 1)
    assert drift.max_rel_diff == pytest.approx(1e-7, rel=1e-3)
    assert "sma_cross-sp500_daily [vector] equity 'equity'" in str(drift)
    assert "bar 2000" in str(drift)


def test_perturbed_trades_and_metrics_are_reported(golden_copy: Path) -> None:
    case = _case("rsi_reversion-nasdaq_daily")
    folder = golden_copy / "backtests" / case.name
    _rewrite(folder / "trades.csv", "exit_bar", 5, lambda v: int(v) + 1)
    _rewrite(folder / "trades.csv", "side", 7, "short")
    _rewrite(folder / "trades.csv", "pnl", 3, lambda v: repr(float(v) + 0.01))
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["trades"] += 1
    metrics["sharpe"] *= 1.001
    (folder / "metrics.json").write_text(json.dumps(metrics))

    result = check_case(case, "vector", root=golden_copy)

    found = {(d.part, d.column): d for d in result.drifts}
    assert set(found) == {
        ("trades", "exit_bar"),
        ("trades", "side"),
        ("trades", "pnl"),
        ("metrics", "trades"),
        ("metrics", "sharpe"),
    }
    assert found["trades", "exit_bar"].first_row == 5
    assert found["trades", "side"].expected == "short"
    assert found["trades", "pnl"].first_row == 3
    assert found["trades", "pnl"].max_abs_diff == pytest.approx(0.01, rel=1e-6)
    assert found["metrics", "trades"].max_abs_diff == 1
    assert found["metrics", "sharpe"].max_rel_diff == pytest.approx(1e-3 / 1.001, rel=1e-6)
    assert "trade 5" in str(found["trades", "exit_bar"])


def test_a_stale_definition_is_reported(golden_copy: Path) -> None:
    case = _case("bollinger_breakout-sp500_daily")
    metadata_path = golden_copy / "backtests" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["cases"][case.name]["params"]["period"] = 21
    metadata["cases"][case.name]["data_sha256"] = "0" * 64
    metadata_path.write_text(json.dumps(metadata))

    result = check_case(case, "vector", root=golden_copy)

    assert [(d.part, d.column) for d in result.drifts] == [
        ("metadata", "params"),
        ("metadata", "data_sha256"),
    ]


def _frames(equity: list[float], pnl: list[float]) -> tuple[pl.DataFrame, pl.DataFrame]:
    n = len(equity)
    ts = [f"2000-01-{day + 1:02d}T00:00:00Z" for day in range(n)]
    frame = pl.DataFrame({"bar": list(range(n)), "ts": ts, "equity": equity})
    trades = pl.DataFrame(
        {
            "entry_bar": [0] * len(pnl),
            "exit_bar": [1] * len(pnl),
            "entry_ts": [ts[0]] * len(pnl),
            "exit_ts": [ts[1]] * len(pnl),
            "side": ["long"] * len(pnl),
            "quantity": [1.0] * len(pnl),
            "entry_price": [1.0] * len(pnl),
            "exit_price": [1.0] * len(pnl),
            "pnl": pnl,
            "return": [0.0] * len(pnl),
            "commission": [0.0] * len(pnl),
            "is_open": ["false"] * len(pnl),
        }
    )
    return frame, trades


def test_compare_tolerances_nan_and_row_counts() -> None:
    case = _case("sma_cross-sp500_daily")
    equity, trades = _frames([100.0, 100.0, 100.0], [0.0, 1e-13, 5.0])
    metrics: dict[str, float | int] = {"sharpe": float("nan"), "trades": 3, "cagr": 0.1}
    stored = StoredCase(case.name, {}, equity, trades, metrics)
    # 0.5e-9 relative is within tolerance, 2e-9 is not; 1e-13 next to 0 is within atol.
    got_equity, got_trades = _frames(
        [100.0 * (1 + 0.5e-9), 100.0 * (1 + 2e-9), 100.0], [0.0, 0.0, 5.0]
    )
    result = compare(
        case,
        ComputedCase(case.name, "event", {}, got_equity, got_trades, dict(metrics), 0.0),
        stored,
    )

    drifts = {(d.part, d.column): d for d in result.drifts}
    assert set(drifts) == {("equity", "equity")}
    assert drifts["equity", "equity"].first_row == 1
    assert drifts["equity", "equity"].engine == "event"

    shorter = ComputedCase(case.name, "vector", {}, got_equity.head(2), trades, metrics, 0.0)
    rows = [d for d in compare(case, shorter, stored).drifts if d.column == "<rows>"]
    assert [(d.part, d.expected, d.actual) for d in rows] == [("equity", "3", "2")]


def test_run_case_refuses_an_engine_the_case_does_not_check() -> None:
    case = _case("sma_cross-sp500_daily")

    with pytest.raises(ConfigError, match="checked on"):
        run_case(case, "other")  # type: ignore[arg-type]  # deliberately wrong
    with pytest.raises(ConfigError, match="engine must be one of"):
        check_backtest_goldens(engines=["other"])  # type: ignore[list-item]  # deliberately wrong


# ------------------------------------------------------------------------------ bad files


def test_a_missing_golden_file_names_the_file_and_the_fix(golden_copy: Path) -> None:
    case = _case("sma_cross-sp500_daily")
    missing = golden_copy / "backtests" / case.name / "trades.csv"
    missing.unlink()

    with pytest.raises(DataError) as raised:
        load_stored_case(case, root=golden_copy)

    assert str(missing) in str(raised.value)
    assert "missing" in str(raised.value)
    assert "tradepulse golden update" in str(raised.value)
    assert "make golden-update" in str(raised.value)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("metrics.json", "{", "not valid JSON"),
        ("metrics.json", '{"sharpe": "high"}', "not a number"),
        ("equity.csv", "bar,ts\n0,x\n", "'equity' missing"),
        ("equity.csv", "bar,ts,equity\n0,x,abc\n", "non-float"),
        ("trades.csv", "", "unreadable"),
    ],
)
def test_a_corrupted_golden_file_names_the_file_and_the_fix(
    golden_copy: Path, name: str, content: str, reason: str
) -> None:
    case = _case("sma_cross-sp500_daily")
    path = golden_copy / "backtests" / case.name / name
    path.write_text(content)

    with pytest.raises(DataError) as raised:
        load_stored_case(case, root=golden_copy)

    message = str(raised.value)
    assert str(path) in message
    assert "corrupted" in message
    assert reason in message
    assert "tradepulse golden update" in message


def test_corrupted_or_incomplete_metadata_is_an_error(golden_copy: Path) -> None:
    case = _case("sma_cross-sp500_daily")
    metadata_path = golden_copy / "backtests" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    del metadata["cases"][case.name]
    metadata_path.write_text(json.dumps(metadata))

    with pytest.raises(DataError, match=f"no entry for case '{case.name}'"):
        load_stored_case(case, root=golden_copy)
    metadata_path.write_text("[]")
    with pytest.raises(DataError, match="corrupted"):
        load_stored_case(case, root=golden_copy)
    metadata_path.unlink()
    with pytest.raises(DataError, match="missing"):
        load_stored_case(case, root=golden_copy)


# ------------------------------------------------------------------------------ update


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture
def few_cases(monkeypatch: pytest.MonkeyPatch) -> list[BacktestCase]:
    """Limit the golden cases to three (one slow geometry case), so CLI runs stay quick."""
    chosen = [
        _case(name)
        for name in (
            "sma_cross-sp500_daily",
            "geometry_phase-sp500_daily",
            "sma_cross_long_short_costs-sp500_daily",
        )
    ]
    monkeypatch.setattr("tradepulse.golden.backtests.golden_backtest_cases", lambda: chosen)
    monkeypatch.setattr("tradepulse.golden.golden_backtest_cases", lambda: chosen)
    monkeypatch.setattr("tradepulse.golden.regression.golden_backtest_cases", lambda: chosen)
    return chosen


def test_update_is_deterministic_and_round_trips(
    tmp_path: Path,
    repo_root: Path,
    monkeypatch: pytest.MonkeyPatch,
    few_cases: list[BacktestCase],
) -> None:
    (tmp_path / "golden").mkdir()
    (tmp_path / "golden" / "data").symlink_to(repo_root / "golden" / "data")
    monkeypatch.chdir(tmp_path)  # golden_root() is ./golden first
    root = tmp_path / "golden"
    (root / "backtests" / "gone-case").mkdir(parents=True)
    (root / "backtests" / "gone-case" / "metrics.json").write_text("{}")

    first = CliRunner().invoke(app, ["golden", "update", "--suite", "backtests"])
    assert first.exit_code == 0, first.output
    snapshot = _snapshot(root / "backtests")
    second = update_backtest_goldens(root)

    assert _snapshot(root / "backtests") == snapshot
    assert len(second) == 3 * len(few_cases) + 1
    assert sorted(p.name for p in (root / "backtests").iterdir()) == sorted(
        ["metadata.json", *(case.name for case in few_cases)]
    )
    assert not (root / "indicators").exists()
    results = check_backtest_goldens(root, engines=["vector"])
    assert [result.case for result in results] == [case.name for case in few_cases]
    assert all(result.passed for result in results)


def test_update_keeps_the_generation_time_of_unchanged_cases(golden_copy: Path) -> None:
    metadata_path = golden_copy / "backtests" / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    kept, changed = _case("sma_cross-sp500_daily"), _case("sma_cross-nasdaq_daily")
    metadata["cases"][kept.name]["generated"] = "2000-01-01T00:00:00Z"
    metadata["cases"][changed.name]["generated"] = "2000-01-01T00:00:00Z"
    metadata["cases"][changed.name]["params"]["fast"] = 11
    metadata_path.write_text(json.dumps(metadata))
    untouched = metadata["cases"]["geometry_phase-sp500_daily"]

    update_backtest_goldens(golden_copy, cases=[kept, changed])

    after = json.loads(metadata_path.read_text())["cases"]
    assert after[kept.name]["generated"] == "2000-01-01T00:00:00Z"
    assert after[changed.name]["generated"] > "2000-01-01T00:00:00Z"
    assert after[changed.name]["params"]["fast"] == 10
    assert after["geometry_phase-sp500_daily"] == untouched
    assert list(after) == [case.name for case in golden_backtest_cases()]


def test_update_replaces_corrupted_metadata(golden_copy: Path) -> None:
    metadata_path = golden_copy / "backtests" / "metadata.json"
    metadata_path.write_text("not json")
    case = _case("sma_cross-sp500_daily")

    update_backtest_goldens(golden_copy, cases=[case])

    assert check_case(case, "vector", root=golden_copy).passed


# ------------------------------------------------------------------------------ CLI


def test_cli_check_reports_drift_and_bad_options(
    golden_copy: Path, monkeypatch: pytest.MonkeyPatch, few_cases: list[BacktestCase]
) -> None:
    monkeypatch.chdir(golden_copy.parent)
    path = golden_copy / "backtests" / "sma_cross-sp500_daily" / "equity.csv"
    _rewrite(path, "equity", 4000, lambda v: repr(float(v) + 1.0))
    runner = CliRunner()

    drifted = runner.invoke(
        app, ["golden", "check", "--local", "--suite", "backtests", "--engine", "vector"]
    )
    bad_suite = runner.invoke(app, ["golden", "check", "--local", "--suite", "prices"])
    bad_engine = runner.invoke(app, ["golden", "check", "--local", "--engine", "gpu"])

    assert drifted.exit_code == 1
    assert "sma_cross-sp500_daily [vector] equity 'equity'" in drifted.output
    assert "bar 4000" in drifted.output
    assert f"1 of {len(few_cases)} runs drifted" in drifted.output
    assert bad_suite.exit_code == 2
    assert "--suite must be one of indicators, backtests, stress; got 'prices'" in bad_suite.output
    assert bad_engine.exit_code == 2
    assert "got 'gpu'" in bad_engine.output


def test_cli_check_reports_a_missing_golden_file_in_one_line(
    golden_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(golden_copy.parent)
    shutil.rmtree(golden_copy / "backtests" / "sma_cross-sp500_daily")

    result = CliRunner().invoke(app, ["golden", "check", "--local", "--suite", "backtests"])

    assert result.exit_code == 1
    assert "sma_cross-sp500_daily" in result.output
    assert "tradepulse golden update" in result.output
    assert "Traceback" not in result.output
