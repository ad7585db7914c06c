"""``tradepulse backtest`` and the backtest part of ``tradepulse demo``."""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.backtest import load_friction_config
from tradepulse.backtest.runner import ENGINES, run_backtest
from tradepulse.cli import app
from tradepulse.cli import backtest as backtest_cli
from tradepulse.cli.demo import demo_backtest, demo_frictions
from tradepulse.costs import SIZINGS
from tradepulse.data import load_bars, write_bars
from tradepulse.errors import ConfigError
from tradepulse.metrics import Metrics

runner = CliRunner()

METRIC_KEYS = list(Metrics.__dataclass_fields__)
SMA_PARAMS = {"fast": 10, "slow": 30, "direction": "long_short"}


def _strict_json(text: str) -> dict[str, Any]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"not valid JSON: {constant}")

    payload: dict[str, Any] = json.loads(text, parse_constant=refuse)
    return payload


def _assert_same_metrics(payload: dict[str, Any], metrics: Metrics) -> None:
    for key, expected in metrics.to_dict().items():
        value = payload[key]
        if isinstance(expected, float) and not math.isfinite(expected):
            assert value is None, key
        else:
            assert value == pytest.approx(expected, rel=1e-12, abs=1e-12), key


@pytest.fixture(scope="module")
def sp500_path(sample_dir: Path) -> Path:
    return sample_dir / "sp500_daily.csv"


@pytest.fixture(scope="module")
def sp500(sp500_path: Path) -> pl.DataFrame:
    return load_bars(sp500_path)


def _invoke(*args: str) -> Any:
    return runner.invoke(app, ["backtest", *args])


@pytest.mark.parametrize("engine", ENGINES)
def test_json_numbers_equal_run_backtest(
    engine: str, sp500_path: Path, sp500: pl.DataFrame
) -> None:
    expected = run_backtest(
        sp500,
        "sma_cross",
        SMA_PARAMS,
        engine=engine,  # type: ignore[arg-type]  # one of ENGINES
        cash=25_000,
        commission=0.001,
        sizing="whole",
    )

    result = _invoke(
        str(sp500_path),
        "--strategy",
        "sma_cross",
        "--param",
        "fast=10",
        "--param",
        "slow=30",
        "--param",
        "direction=long_short",
        "--engine",
        engine,
        "--cash",
        "25000",
        "--commission",
        "0.001",
        "--sizing",
        "whole",
        "--json",
    )

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    _assert_same_metrics(payload, expected.metrics)
    assert payload["strategy"] == "sma_cross"
    assert payload["engine"] == engine
    assert payload["params"] == SMA_PARAMS
    assert payload["bars"] == sp500.height == 5031
    assert payload["trades"] == expected.trades.height > 50
    assert payload["frictions"]["commission_rate"] == 0.001
    assert payload["frictions"]["sizing"] == "whole"
    assert set(METRIC_KEYS) <= set(payload)


@pytest.mark.parametrize("engine", ENGINES)
def test_command_line_values_override_the_config(
    engine: str, tmp_path: Path, sp500_path: Path, sp500: pl.DataFrame
) -> None:
    config_path = tmp_path / "market.yaml"
    config_path.write_text(
        "name: test_market\n"
        "commission:\n  rate: 0.002\n  per_fill: 1.0\n"
        "spread_bps: 2.0\nslippage_bps: 1.0\nlatency_bars: 1\nsizing: whole\n",
        encoding="utf-8",
    )
    config = load_friction_config(config_path)
    from_config = run_backtest(sp500, "sma_cross", engine=engine, config=config)  # type: ignore[arg-type]
    overridden = run_backtest(
        sp500,
        "sma_cross",
        engine=engine,  # type: ignore[arg-type]
        config=config,
        commission=0.0005,
        sizing="fractional",
        latency_bars=0,
    )

    plain = _invoke(
        str(sp500_path), "--strategy", "sma_cross", "--engine", engine,
        "--config", str(config_path), "--json",
    )  # fmt: skip
    override = _invoke(
        str(sp500_path), "--strategy", "sma_cross", "--engine", engine,
        "--config", str(config_path), "--commission", "0.0005",
        "--sizing", "fractional", "--latency-bars", "0", "--json",
    )  # fmt: skip

    assert plain.exit_code == 0, plain.output
    assert override.exit_code == 0, override.output
    plain_payload = _strict_json(plain.stdout)
    override_payload = _strict_json(override.stdout)
    _assert_same_metrics(plain_payload, from_config.metrics)
    _assert_same_metrics(override_payload, overridden.metrics)
    # The overrides changed the run (otherwise this test could not tell them apart).
    assert plain_payload["final_equity"] != override_payload["final_equity"]
    assert plain_payload["frictions"] == {
        "config": "test_market",
        "cash": 10_000.0,
        "commission_rate": 0.002,
        "commission_per_unit": 0.0,
        "commission_per_fill": 1.0,
        "spread_bps": 2.0,
        "slippage_bps": 1.0,
        "impact_bps": 0.0,
        "sizing": "whole",
        "latency_bars": 1,
        "periods_per_year": None,
    }
    assert override_payload["frictions"] == {
        **plain_payload["frictions"],
        "commission_rate": 0.0005,
        "commission_per_fill": 0.0,  # --commission replaces every commission term
        "sizing": "fractional",
        "latency_bars": 0,
    }


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_equity_and_trades_files_round_trip(
    suffix: str, tmp_path: Path, sp500_path: Path, sp500: pl.DataFrame
) -> None:
    equity_path = tmp_path / "out" / f"equity{suffix}"
    trades_path = tmp_path / "out" / f"trades{suffix}"
    expected = run_backtest(sp500, "sma_cross", SMA_PARAMS, commission=0.001)

    result = _invoke(
        str(sp500_path), "--strategy", "sma_cross", "--param", "direction=long_short",
        "--commission", "0.001", "--equity", str(equity_path), "--trades", str(trades_path),
        "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    if suffix == ".csv":
        equity = pl.read_csv(equity_path, try_parse_dates=True)
        trades = pl.read_csv(trades_path, try_parse_dates=True)
    else:
        equity = pl.read_parquet(equity_path)
        trades = pl.read_parquet(trades_path)
    assert equity.columns == ["ts", "equity", "position", "cash"]
    assert equity.height == sp500.height
    assert (equity["ts"].cast(pl.Datetime("ns", "UTC")) == sp500["ts"]).all()
    # Independent identity: equity is cash plus the position marked at the close.
    marked = equity["cash"].to_numpy() + equity["position"].to_numpy() * sp500["close"].to_numpy()
    np.testing.assert_allclose(equity["equity"].to_numpy(), marked, rtol=1e-12)
    np.testing.assert_array_equal(equity["equity"].to_numpy(), expected.equity)
    assert equity["equity"][-1] == payload["final_equity"]
    assert trades.columns == list(expected.trades.columns)
    assert trades.height == payload["trades"] == expected.trades.height
    assert (
        trades["side"].cast(pl.String).to_list()
        == expected.trades["side"].cast(pl.String).to_list()
    )
    np.testing.assert_array_equal(trades["pnl"].to_numpy(), expected.trades["pnl"].to_numpy())
    np.testing.assert_array_equal(
        trades["entry_ts"].cast(pl.Datetime("ns", "UTC")).to_numpy(),
        expected.trades["entry_ts"].to_numpy(),
    )
    # json.loads refuses anything after the object: the file notes go to stderr.
    assert f"equity: {equity_path}" in result.stderr


def test_report_writes_html_with_inline_charts(
    tmp_path: Path, sp500_path: Path, sp500: pl.DataFrame
) -> None:
    report = tmp_path / "reports" / "sma.html"

    result = _invoke(
        str(sp500_path), "--strategy", "sma_cross", "--param", "fast=20", "--param", "slow=50",
        "--report", str(report),
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    pngs = sorted(report.parent.glob("sma_*.png"))
    assert [path.name for path in pngs] == ["sma_drawdown.png", "sma_equity.png", "sma_trades.png"]
    inline = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert sorted(base64.b64decode(item) for item in inline) == sorted(
        path.read_bytes() for path in pngs
    )
    assert "<script" not in page
    assert str(report) in result.output
    expected = run_backtest(sp500, "sma_cross", {"fast": 20, "slow": 50})
    assert f"{expected.metrics.final_equity:,.2f}" in page
    assert "final_equity" in result.stdout  # the metrics table is printed too


def test_table_output_shows_the_metrics(sp500_path: Path, sp500: pl.DataFrame) -> None:
    expected = run_backtest(sp500, "rsi_reversion")

    result = _invoke(str(sp500_path), "--strategy", "rsi_reversion")

    assert result.exit_code == 0, result.output
    for key in METRIC_KEYS:
        assert key in result.stdout
    assert f"{expected.metrics.final_equity:,.2f}" in result.stdout
    assert f"{expected.metrics.trades}" in result.stdout


def test_zero_trades_give_null_ratios_and_a_report(tmp_path: Path, sp500: pl.DataFrame) -> None:
    short = tmp_path / "short.csv"
    write_bars(sp500.head(25), short)  # shorter than the slow SMA: no cross, no trade
    report = tmp_path / "none.html"

    result = _invoke(str(short), "--strategy", "sma_cross", "--json", "--report", str(report))

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert payload["trades"] == 0
    assert payload["final_equity"] == 10_000.0
    assert payload["total_return"] == 0.0
    assert payload["sharpe"] is None  # no variation: undefined
    assert payload["win_rate"] is None  # no trades: undefined
    assert "no trades" in report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def two_symbols(tmp_path_factory: pytest.TempPathFactory, sample_dir: Path) -> Path:
    bars = load_bars([sample_dir / "sp500_daily.csv", sample_dir / "nasdaq_daily.csv"])
    path = tmp_path_factory.mktemp("multi") / "two.parquet"
    write_bars(bars, path)
    return path


def test_symbol_picks_one_instrument_of_a_multi_symbol_file(
    two_symbols: Path, sample_dir: Path
) -> None:
    nasdaq = load_bars(sample_dir / "nasdaq_daily.csv")
    expected = run_backtest(nasdaq, "sma_cross", commission=0.001)

    result = _invoke(
        str(two_symbols), "--strategy", "sma_cross", "--symbol", "nasdaq_daily",
        "--commission", "0.001", "--json",
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    payload = _strict_json(result.stdout)
    assert payload["bars"] == nasdaq.height
    _assert_same_metrics(payload, expected.metrics)


def _config_with(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.mark.parametrize(
    ("arguments", "code", "message"),
    [
        (["--strategy", "nope"], 1, "unknown strategy 'nope'"),
        (["--strategy", "sma_cross", "--param", "fast=abc"], 1, "parameter 'fast'"),
        (["--strategy", "sma_cross", "--param", "speed=3"], 1, "parameter 'speed' is unknown"),
        (["--strategy", "sma_cross", "--param", "fast"], 1, "must look like name=value"),
        (["--strategy", "sma_cross", "--param", "fast=40"], 1, "parameter 'fast' must be <"),
        (["--strategy", "sma_cross", "--config", "CONFIG:name: x\ncomision: {}\n"], 1, "comision"),
        (["--strategy", "sma_cross", "--config", "CONFIG:name: x\nsizing: half\n"], 1, "sizing"),
        (["--strategy", "sma_cross", "--config", "MISSING"], 1, "cannot read friction config"),
        (["--strategy", "sma_cross", "--commission", "-0.1"], 1, "-0.1"),
        (["--strategy", "sma_cross", "--cash", "0"], 1, "cash"),
        (["--strategy", "sma_cross", "--latency-bars", "-1"], 1, "latency_bars"),
        (["--strategy", "sma_cross", "--engine", "gpu"], 2, "--engine must be one of"),
        (["--strategy", "sma_cross", "--sizing", "half"], 2, "--sizing must be one of"),
        (["--strategy", "sma_cross", "--symbol", "SPX"], 1, "has no symbol column"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_bad_inputs_give_one_line_errors(
    arguments: list[str], code: int, message: str, tmp_path: Path, sp500_path: Path
) -> None:
    resolved = []
    for argument in arguments:
        if argument.startswith("CONFIG:"):
            argument = _config_with(tmp_path, argument.removeprefix("CONFIG:"))
        elif argument == "MISSING":
            argument = str(tmp_path / "missing.yaml")
        resolved.append(argument)

    result = _invoke(str(sp500_path), *resolved)

    assert result.exit_code == code
    assert "Traceback" not in result.output
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr


def test_missing_data_file_is_one_line(tmp_path: Path) -> None:
    result = _invoke(str(tmp_path / "nope.csv"), "--strategy", "sma_cross")

    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.csv'}: no such file"


@pytest.mark.parametrize(
    ("option", "name"),
    [("--equity", "equity.txt"), ("--trades", "trades.json"), ("--report", "report.pdf")],
)
def test_bad_output_extension_fails_before_the_backtest(
    option: str, name: str, tmp_path: Path
) -> None:
    # The data file does not exist either: the extension must be checked first.
    result = _invoke(
        str(tmp_path / "absent.csv"), "--strategy", "sma_cross", option, str(tmp_path / name)
    )

    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"{option} must end in" in result.stderr
    assert name in result.stderr
    assert not (tmp_path / name).exists()


def test_several_symbols_without_symbol_option_is_an_error(two_symbols: Path) -> None:
    result = _invoke(str(two_symbols), "--strategy", "sma_cross")

    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "2 symbols (sp500_daily, nasdaq_daily)" in result.stderr
    assert "--symbol" in result.stderr


def test_unknown_symbol_lists_the_file_symbols(two_symbols: Path) -> None:
    result = _invoke(str(two_symbols), "--strategy", "sma_cross", "--symbol", "DAX")

    assert result.exit_code == 1
    assert "'DAX' is not in" in result.stderr
    assert "sp500_daily, nasdaq_daily" in result.stderr


def test_option_checks_match_the_engine_names() -> None:
    # The CLI spells these out so `--help` needs no numba import; keep them equal.
    assert backtest_cli._ENGINES == ENGINES
    assert backtest_cli._SIZINGS == SIZINGS


def test_write_table_rejects_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"must end in \.csv or \.parquet"):
        backtest_cli.write_table(pl.DataFrame({"a": [1]}), tmp_path / "a.xlsx")


def test_help_lists_the_options() -> None:
    result = runner.invoke(app, ["backtest", "--help"])

    assert result.exit_code == 0
    for option in ("--strategy", "--param", "--config", "--engine", "--json", "--report"):
        assert option in result.output


# ------------------------------------------------------------------------------ demo


def test_demo_frictions_equal_the_shipped_equities_config(repo_root: Path) -> None:
    shipped = load_friction_config(repo_root / "backtest" / "configs" / "equities.yaml")

    assert replace(shipped, description=demo_frictions().description) == demo_frictions()


def test_demo_backtest_writes_the_sma_cross_report(tmp_path: Path, sample_dir: Path) -> None:
    spx = load_bars(sample_dir / "sp500_daily.csv", symbol="SPX")
    shipped = load_friction_config(sample_dir.parents[1] / "backtest" / "configs" / "equities.yaml")
    expected = run_backtest(spx, "sma_cross", config=shipped)

    report = demo_backtest(spx, out_dir=tmp_path)

    assert report.html_path == tmp_path / "backtest_sma_cross.html"
    assert [path.name for path in report.png_paths] == [
        "backtest_sma_cross_equity.png",
        "backtest_sma_cross_drawdown.png",
        "backtest_sma_cross_trades.png",
    ]
    page = report.html_path.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3
    assert f"{expected.metrics.final_equity:,.2f}" in page
    assert "equities" in page
