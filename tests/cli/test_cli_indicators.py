"""``tradepulse indicators``, ``analyze``, ``demo`` and ``golden`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.indicators import indicator_columns

runner = CliRunner()


def test_indicators_writes_named_columns(tmp_path: Path, sample_dir: Path) -> None:
    out = tmp_path / "ind.parquet"

    result = runner.invoke(
        app, ["indicators", str(sample_dir / "sp500_daily.csv"), "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    frame = pl.read_parquet(out)
    assert frame.columns == ["ts", *indicator_columns()]
    for name in [
        "sma_20",
        "rsi_14",
        "bb_upper_20_2",
        "macd_signal_12_26_9",
        "kuramoto_r_200",
        "ricci_200",
        "phase",
    ]:
        assert name in frame.columns
    assert frame.height == 5031
    assert frame["phase"].drop_nulls().len() > 4000


def test_indicators_window_option_renames_columns(tmp_path: Path, sample_dir: Path) -> None:
    out = tmp_path / "ind.csv"

    result = runner.invoke(
        app,
        [
            "indicators",
            str(sample_dir / "nasdaq_daily.csv"),
            "--out",
            str(out),
            "--window",
            "50",
            "--ricci-stride",
            "5",
        ],
    )

    assert result.exit_code == 0, result.output
    assert "kuramoto_r_50" in pl.read_csv(out).columns


def test_indicators_rejects_unknown_output_suffix(tmp_path: Path, sample_dir: Path) -> None:
    result = runner.invoke(
        app, ["indicators", str(sample_dir / "sp500_daily.csv"), "--out", str(tmp_path / "x.txt")]
    )

    assert result.exit_code == 2
    assert "--out must end in .parquet or .csv" in result.output


def test_analyze_json_gives_latest_values_and_phase(sample_dir: Path) -> None:
    result = runner.invoke(
        app,
        [
            "analyze",
            str(sample_dir / "sp500_daily.csv"),
            str(sample_dir / "nasdaq_daily.csv"),
            "--json",
        ],
    )

    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["window"] == 200
    assert len(payload["latest"]) == 2
    for row in payload["latest"]:
        assert row["ts"].startswith("2018-12-31")
        assert 0.0 <= row["kuramoto_r_200"] <= 1.0
        assert row["phase"] in {"proto", "precognitive", "emergent", "post_emergent", "neutral"}
        assert 0.0 <= row["kuramoto_cross_200"] <= 1.0


def test_analyze_table_output(sample_dir: Path) -> None:
    result = runner.invoke(app, ["analyze", str(sample_dir / "sp500_daily.csv")])

    assert result.exit_code == 0, result.output
    assert "phase" in result.output
    assert "rsi_14" in result.output


@pytest.mark.parametrize("command", ["indicators", "analyze"])
def test_commands_reject_invalid_data_without_traceback(tmp_path: Path, command: str) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "ts,open,high,low,close,volume\n2020-01-01,1,2,0.5,1.5,10\n2020-01-02,1,0.5,2,1,10\n"
    )
    args = [command, str(bad)] + (
        ["--out", str(tmp_path / "o.parquet")] if command == "indicators" else []
    )

    result = runner.invoke(app, args)

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "row 1" in result.output


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyze", str(tmp_path / "nope.csv")])

    assert result.exit_code == 1
    assert "no such file" in result.output


@pytest.mark.usefixtures("ray_session")
def test_demo_writes_report(tmp_path: Path) -> None:
    import polars as pl

    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])

    assert result.exit_code == 0, result.output
    html = (tmp_path / "indicators.html").read_text()
    assert "data:image/png;base64," in html
    assert (tmp_path / "indicators_SPX.png").stat().st_size > 10_000
    assert (tmp_path / "indicators_NASDAQ.png").stat().st_size > 10_000
    assert "SPX" in result.output
    assert "NASDAQ" in result.output
    # The sweep on the session's Ray cluster: every valid combination once.
    fast, slow = range(5, 55, 5), range(20, 210, 10)
    valid = sum(1 for f in fast for s in slow if f < s) * 2  # two directions
    rows = pl.read_parquet(tmp_path / "sweep_sma_cross" / "part-*.parquet")
    assert rows.height == rows.get_column("combo_id").n_unique() == valid
    assert f"top 10 of {valid} sma_cross combinations" in " ".join(result.output.split())
    best = rows.sort("sharpe", descending=True, nulls_last=True).row(0, named=True)
    assert f"fast={best['fast']}, slow={best['slow']}, direction={best['direction']}" in (
        result.output
    )
    assert "stress gate: " in result.output
    assert (tmp_path / "backtest_sma_cross.html").stat().st_size > 10_000


def test_golden_check_passes(tmp_path: Path) -> None:
    # In this process (--local); tests/golden runs every suite, on Ray too.
    result = runner.invoke(
        app,
        ["golden", "check", "--local", "--suite", "indicators", "--report-dir", str(tmp_path)],
    )

    assert result.exit_code == 0, result.output


def test_version_and_help() -> None:
    assert runner.invoke(app, ["--version"]).output.startswith("tradepulse ")
    for command in (
        ["--help"],
        ["indicators", "--help"],
        ["analyze", "--help"],
        ["demo", "--help"],
        ["golden", "--help"],
    ):
        assert runner.invoke(app, command).exit_code == 0
