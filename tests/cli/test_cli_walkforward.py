"""``tradepulse walkforward``: JSON, files, table, grid syntax and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.backtest import walk_forward
from tradepulse.cli import app
from tradepulse.cli.walkforward import parse_grid_range, parse_value_list
from tradepulse.data import load_bars
from tradepulse.errors import ConfigError

runner = CliRunner()

ARGUMENTS = ["--strategy", "sma_cross", "--train", "1000", "--test", "1000"]
GRID = ["--grid", "fast=5:15:5", "--values", "slow=20,50"]


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not valid JSON: {constant}")

    payload: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return payload


@pytest.fixture(scope="module")
def sp500_path(sample_dir: Path) -> Path:
    return sample_dir / "sp500_daily.csv"


@pytest.fixture(scope="module")
def sp500(sp500_path: Path) -> pl.DataFrame:
    return load_bars(sp500_path)


def _invoke(*arguments: str) -> Any:
    return runner.invoke(app, ["walkforward", "--local", *arguments])


def test_json_matches_the_python_api(sp500_path: Path, sp500: pl.DataFrame) -> None:
    result = _invoke(str(sp500_path), *ARGUMENTS, *GRID, "--commission", "0.001", "--json")

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    expected = walk_forward(
        sp500,
        "sma_cross",
        train_bars=1000,
        test_bars=1000,
        grid={"fast": [5, 10, 15], "slow": [20, 50]},
        commission=0.001,
    )
    assert payload["strategy"] == "sma_cross"
    assert payload["objective"] == "sharpe"
    assert payload["anchored"] is False
    assert payload["grid"] == {"fast": [5, 10, 15], "slow": [20, 50]}
    assert payload["combinations"] == 6
    assert payload["skipped"] == 0
    # 5031 bars, train 1000, test 1000: tests start at 1000, 2000, 3000, 4000, 5000.
    assert len(payload["folds"]) == 5
    assert payload["evaluations"] == 30
    assert payload["elapsed_s"] >= 0.0
    assert payload["frictions"]["commission_rate"] == 0.001
    first = payload["folds"][0]
    assert first["train_start"] == "1999-01-04T00:00:00Z"
    assert first["test_start"] == sp500["ts"][1000].isoformat().replace("+00:00", "Z")
    for fold, params in zip(payload["folds"], expected.params, strict=True):
        assert params is not None
        assert fold["params"] == params.to_dict()
    for key, value in expected.oos.metrics.to_dict().items():
        if isinstance(value, float) and not math.isfinite(value):
            assert payload["oos"][key] is None
        else:
            assert payload["oos"][key] == value, key
    rows = expected.folds.to_dicts()
    for fold, row in zip(payload["folds"], rows, strict=True):
        for key in ("train_objective", "oos_return", "oos_sharpe", "oos_max_drawdown"):
            assert fold[key] == (None if math.isnan(row[key]) else row[key])
        assert fold["oos_trades"] == row["oos_trades"]


def test_flat_folds_give_null_params_and_ratios(sp500_path: Path) -> None:
    # One fold (300 + 4731 = 5031 bars); the slow SMA needs 1000 bars, so nothing
    # trades in the train window: Sharpe NaN, no winner, flat out of sample.
    result = _invoke(
        str(sp500_path),
        "--strategy",
        "sma_cross",
        "--train",
        "300",
        "--test",
        "4731",
        "--values",
        "fast=499",
        "--values",
        "slow=1000",
        "--json",
    )

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert len(payload["folds"]) == 1
    assert payload["folds"][0]["params"] is None
    assert payload["folds"][0]["train_objective"] is None
    assert payload["folds"][0]["oos_sharpe"] is None
    assert payload["oos"]["sharpe"] is None
    assert payload["oos"]["final_equity"] == 10_000.0


def test_equity_and_folds_files(tmp_path: Path, sp500_path: Path, sp500: pl.DataFrame) -> None:
    equity = tmp_path / "out" / "equity.parquet"
    folds = tmp_path / "folds.csv"

    result = _invoke(
        str(sp500_path),
        *ARGUMENTS,
        *GRID,
        "--anchored",
        "--equity",
        str(equity),
        "--folds",
        str(folds),
        "--json",
    )

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert payload["anchored"] is True
    written = pl.read_parquet(equity)
    assert written.columns == ["ts", "equity", "position", "cash"]
    assert written.height == sp500.height - 1000
    assert written["equity"][-1] == payload["oos"]["final_equity"]
    table = pl.read_csv(folds)
    assert table.height == 5
    assert table["train_start"].str.starts_with("1999-01-04T00:00:00").all()
    assert table["fast"].to_list() == [fold["params"]["fast"] for fold in payload["folds"]]
    assert f"equity: {equity}" in result.stderr


def test_table_output(sp500_path: Path) -> None:
    result = _invoke(str(sp500_path), *ARGUMENTS, *GRID, "--objective", "max_drawdown")

    assert result.exit_code == 0, result.output
    for text in ("walk-forward", "in-sample max_drawdown", "out-of-sample", "final_equity"):
        assert text in result.stdout
    # Every fold row in full (the table is never squeezed into ellipses).
    assert "2002-12-26 → 2006-12-13" in result.stdout
    assert "…" not in result.stdout
    assert "5 folds x 6 combinations (0 skipped by constraints)" in result.stdout


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--train", "1"], 1, "train_bars must be >= 2 bars; got 1"),
        (["--train", "5000"], 1, "5000 + 1000 = 6000 bars for one fold; got 5031"),
        (["--strategy", "nope"], 1, "unknown strategy 'nope'"),
        (["--objective", "profit"], 1, "objective must be one of"),
        (["--grid", "fast=5:20"], 1, "--grid must look like name=start:stop:step"),
        (["--grid", "fast=5:x:1"], 1, "start, stop and step must be numbers"),
        (["--grid", "fast=20:5:5"], 1, "start must be <= stop"),
        (["--grid", "fast=5:20:0"], 1, "step must be > 0"),
        (["--grid", "fast=0:4:2"], 1, "parameter 'fast' must be >= 1"),
        (["--values", "speed=1,2"], 1, "unknown parameter 'speed'"),
        (["--values", "fast=5,,6"], 1, "empty value"),
        (["--values", "fast=5", "--grid", "fast=5:6:1"], 1, "'fast' is given twice"),
        (["--values", "fast=5", "--param", "fast=6"], 1, "both in the grid and fixed"),
        (["--param", "fast"], 1, "must look like name=value"),
        ([], 1, "default grid of strategy 'sma_cross' has 999,000 combinations"),
        (["--sizing", "half"], 2, "--sizing must be one of"),
        (["--equity", "equity.txt"], 2, "--equity must end in .csv or .parquet"),
        (["--folds", "folds.json"], 2, "--folds must end in .csv or .parquet"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_bad_inputs_give_one_line_errors(
    arguments: list[str], code: int, message: str, sp500_path: Path
) -> None:
    # A repeated option takes its last value; the small grid unless the case sets one.
    sets_grid = any(argument in ("--grid", "--values") for argument in arguments)
    grid = [] if sets_grid or not arguments else GRID
    result = _invoke(str(sp500_path), *ARGUMENTS, *grid, *arguments)

    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_missing_data_file_is_one_line(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "nope.csv"), *ARGUMENTS, *GRID)

    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such file"


@pytest.mark.parametrize(
    ("text", "name", "values"),
    [
        ("fast=5:20:5", "fast", [5, 10, 15, 20]),
        ("fast=5:19:5", "fast", [5, 10, 15]),
        (" slow = 7:7:1", "slow", [7]),
        ("entry=0.1:0.3:0.1", "entry", [0.1, 0.2, 0.3]),
        ("num_std=1:2:0.5", "num_std", [1.0, 1.5, 2.0]),
        ("x=-1:1:1", "x", [-1, 0, 1]),
    ],
)
def test_grid_ranges_include_stop(text: str, name: str, values: list[float]) -> None:
    key, parsed = parse_grid_range(text)

    assert key == name
    assert parsed == values
    assert [type(value) for value in parsed] == [type(value) for value in values]


def test_value_lists_keep_text() -> None:
    assert parse_value_list("direction=long, long_short") == ("direction", ["long", "long_short"])
    with pytest.raises(ConfigError, match="name=a,b,c"):
        parse_value_list("=1,2")
    with pytest.raises(ConfigError, match="finite"):
        parse_grid_range("x=0:inf:1")


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["walkforward", "--help"], env={"COLUMNS": "200"})

    assert result.exit_code == 0
    for option in ("--train", "--test", "--anchored", "--grid", "--values", "--objective"):
        assert option in result.stdout


def test_float_grid_reaches_the_strategy(sp500_path: Path) -> None:
    result = _invoke(
        str(sp500_path),
        "--strategy",
        "bollinger_breakout",
        "--train",
        "2000",
        "--test",
        "2000",
        "--grid",
        "num_std=1.5:2.5:0.5",
        "--values",
        "period=20",
        "--json",
    )

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert payload["grid"]["num_std"] == [1.5, 2.0, 2.5]
    assert np.isin([fold["params"]["num_std"] for fold in payload["folds"]], [1.5, 2.0, 2.5]).all()
