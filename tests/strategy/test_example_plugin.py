"""The example plugin package: pip-installed, discovered, and run on the shipped data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from strategy_fakes import drive_event_form
from typer.testing import CliRunner

from tradepulse.data import load_bars
from tradepulse.strategy import (
    STRATEGY_API_VERSION,
    discover_strategies,
    load_strategy,
    param_specs,
    validate_signals,
)

runner = CliRunner()


@pytest.fixture(scope="module")
def sp500(sample_dir: Path) -> pl.DataFrame:
    return load_bars(sample_dir / "sp500_daily.csv")


def test_installed_plugin_is_discovered_without_code_changes(example_plugin: str) -> None:
    strategy = load_strategy(example_plugin)

    assert strategy.__module__ == "tradepulse_example_plugin.momentum"
    assert strategy.api_version == STRATEGY_API_VERSION
    assert discover_strategies()[example_plugin] is strategy
    assert list(param_specs(strategy.params_type)) == ["lookback", "threshold", "direction"]


@pytest.mark.parametrize("direction", ["long", "long_short"])
def test_plugin_signals_run_on_real_data_and_match_its_event_form(
    example_plugin: str, sp500: pl.DataFrame, direction: str
) -> None:
    strategy_type = load_strategy(example_plugin)
    params = strategy_type.params_type.from_mapping({"lookback": "20", "direction": direction})
    close = sp500["close"].to_numpy()
    # Independent reference: 20-bar momentum is the sign of close[t] - close[t-20].
    expected = np.zeros_like(close)
    expected[20:] = np.where(close[20:] > close[:-20], 1.0, 0.0)
    if direction == "long_short":
        expected[20:] = np.where(close[20:] < close[:-20], -1.0, expected[20:])

    targets = validate_signals(
        strategy_type().signals(sp500, params), length=sp500.height, strategy=example_plugin
    )
    event = drive_event_form(strategy_type(), sp500, params)

    np.testing.assert_array_equal(targets, expected)
    np.testing.assert_array_equal(event.targets, targets)
    assert len(event.orders) == int(np.count_nonzero(np.diff(np.concatenate([[0.0], targets]))))
    assert len(event.orders) > 100


def test_plugin_signals_do_not_look_ahead(example_plugin: str, sp500: pl.DataFrame) -> None:
    strategy_type = load_strategy(example_plugin)
    params = strategy_type.params_type()
    full = strategy_type().signals(sp500, params)

    for k in (1, 20, 21, 1000, 4000):
        np.testing.assert_array_equal(strategy_type().signals(sp500.head(k), params), full[:k])


def test_strategies_command_lists_the_plugin(example_plugin: str) -> None:
    from tradepulse.cli.strategies import strategies_command

    app = typer.Typer()
    app.command()(strategies_command)

    result = runner.invoke(app, ["--json"])

    assert result.exit_code == 0, result.output
    listed = {entry["name"]: entry for entry in json.loads(result.stdout)["strategies"]}
    entry = listed[example_plugin]
    assert re.sub(r"[-_.]+", "-", entry["distribution"]).lower() == "tradepulse-example-plugin"
    assert entry["entry_point"] == "tradepulse_example_plugin.momentum:Momentum"
    assert entry["forms"] == ["event", "vectorised"]


@pytest.mark.parametrize("engine", ["vector", "event"])
def test_plugin_runs_through_tradepulse_backtest(
    example_plugin: str, sample_dir: Path, engine: str
) -> None:
    from tradepulse.backtest.runner import run_backtest
    from tradepulse.cli import app

    path = sample_dir / "sp500_daily.csv"
    bars = load_bars(path)
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            str(path),
            "--strategy",
            example_plugin,
            "--param",
            "lookback=20",
            "--engine",
            engine,
            "--commission",
            "0.001",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert (payload["strategy"], payload["engine"], payload["params"]["lookback"]) == (
        example_plugin,
        engine,
        20,
    )
    # Independent count of trades: long while close[t] > close[t-20].
    close = bars["close"].to_numpy()
    target = np.zeros_like(close)
    target[20:] = close[20:] > close[:-20]
    entries = int(np.count_nonzero((target[1:-1] == 1.0) & (target[:-2] == 0.0)))
    entries += int(target[0] == 1.0)
    assert payload["trades"] == entries > 50
    expected = run_backtest(bars, example_plugin, {"lookback": 20}, engine=engine, commission=0.001)
    assert payload["final_equity"] == pytest.approx(expected.metrics.final_equity, rel=1e-12)
