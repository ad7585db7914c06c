"""``tradepulse data validate / synth / resample`` from the command line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.cli import data as data_cli
from tradepulse.data.loaders import load_bars

runner = CliRunner()

HEADER = "ts,open,high,low,close,volume\n"
GOOD_ROW = "2020-01-{day:02d},10,11,9,10.5,100\n"


def _good_csv(path: Path, rows: int = 3) -> Path:
    path.write_text(HEADER + "".join(GOOD_ROW.format(day=day) for day in range(1, rows + 1)))
    return path


@pytest.mark.parametrize("command", [[], ["validate"], ["synth"], ["resample"]])
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, ["data", *command, "--help"])

    assert result.exit_code == 0
    assert "Usage" in result.stdout


def test_validate_ok_prints_a_summary(sample_dir: Path) -> None:
    path = sample_dir / "sp500_daily.csv"

    result = runner.invoke(app, ["data", "validate", str(path)])

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"OK: {path} — 5031 rows, 1 symbol, 1999-01-04 → 2018-12-31"


def test_validate_intraday_summary_shows_times(tmp_path: Path) -> None:
    path = tmp_path / "intra.csv"
    path.write_text("ts,close\n2024-01-02T09:30:00Z,1\n2024-01-02T16:00:00Z,2\n")

    result = runner.invoke(app, ["data", "validate", str(path)])

    assert result.exit_code == 0, result.output
    assert "2 rows, 1 symbol, 2024-01-02T09:30:00Z → 2024-01-02T16:00:00Z" in result.stdout


def test_validate_lists_each_problem_and_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "2020-01-01,10,11,9,10.5,100\n2020-01-02,10,9.5,10,10,100\n2020-01-02,10,x,9,10,1\n"
    )

    result = runner.invoke(app, ["data", "validate", str(path)])

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"FAIL: {path}: 1 problem"
    assert lines[1] == "  row 2, column 'high', value 'x': must be a number"
    assert "Traceback" not in result.output


def test_validate_reports_contract_violations_by_row(tmp_path: Path) -> None:
    path = tmp_path / "hl.csv"
    path.write_text(HEADER + "2020-01-01,10,11,9,10.5,100\n2020-01-02,10,9.5,10,10,100\n")

    result = runner.invoke(app, ["data", "validate", str(path)])

    assert result.exit_code == 1
    assert "  row 1, column 'high', value 9.5: high must be >= low (low 10.0)" in result.stderr


def test_validate_caps_the_listing(tmp_path: Path) -> None:
    path = tmp_path / "many.csv"
    path.write_text("ts,close\n" + "".join(f"2020-01-{day:02d},-1\n" for day in range(1, 31)))

    result = runner.invoke(app, ["data", "validate", str(path)])

    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == f"FAIL: {path}: 120 problems"
    assert len(lines) == 1 + 20 + 1
    assert lines[-1] == "  ... and 100 more"


def test_validate_junk_file_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.csv"
    path.write_bytes(b"\x00\x01\x02binary")

    result = runner.invoke(app, ["data", "validate", str(path)])

    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"ERROR: {path}: binary content (NUL byte at offset 0), not a CSV text file"
    )


def test_validate_checks_every_path(tmp_path: Path) -> None:
    good = _good_csv(tmp_path / "good.csv")
    missing = tmp_path / "missing.csv"

    result = runner.invoke(app, ["data", "validate", str(missing), str(good)])

    assert result.exit_code == 1
    assert f"ERROR: {missing}: file not found" in result.stderr
    assert f"OK: {good} — 3 rows" in result.stdout


def test_validate_options_reach_the_loader(tmp_path: Path) -> None:
    path = tmp_path / "spy.csv"
    path.write_text("When,Adj Close\n1577923200000,5\n1577923260000,6\n")

    result = runner.invoke(
        app,
        [
            *("data", "validate", str(path), "--ts-col", "When", "--price-col", "Adj Close"),
            *("--ts-unit", "ms", "--timezone", "UTC"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "2020-01-02T00:00:00Z → 2020-01-02T00:01:00Z" in result.stdout


def test_validate_unexpected_exception_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> pl.DataFrame:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(data_cli, "load_bars", explode)
    path = _good_csv(tmp_path / "x.csv")

    result = runner.invoke(app, ["data", "validate", str(path)])

    assert result.exit_code == 1
    assert result.stderr.strip() == f"ERROR: {path}: unexpected RuntimeError: disk on fire"


def test_synth_writes_a_valid_deterministic_file(tmp_path: Path) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    arguments = ["data", "synth", "--bars", "1000", "--seed", "5", "--symbol", "SYN"]

    result = runner.invoke(app, [*arguments, "--out", str(first)])
    runner.invoke(app, [*arguments, "--out", str(second)])

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"Wrote 1,000 bars to {first} (1min, seed 5, ")
    assert first.read_bytes() == second.read_bytes()
    frame = load_bars(first)
    assert frame.height == 1000
    assert frame["symbol"].unique().to_list() == ["SYN"]


def test_synth_with_regime_and_daily_bars(tmp_path: Path) -> None:
    out = tmp_path / "daily.csv"

    result = runner.invoke(
        app,
        [
            *("data", "synth", "--bars", "30", "--seed", "1", "--freq", "1d", "--out", str(out)),
            *("--with-regime", "--start", "2020-01-01", "--start-price", "50"),
        ],
    )

    assert result.exit_code == 0, result.output
    assert "2020-01-01 → 2020-01-30" in result.stdout
    frame = pl.read_csv(out)
    assert frame.columns[-1] == "regime"
    assert frame["open"][0] == 50.0


def test_synth_bad_freq_is_a_clear_error(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"

    result = runner.invoke(
        app, ["data", "synth", "--bars", "5", "--seed", "1", "--freq", "1mo", "--out", str(out)]
    )

    assert result.exit_code == 1
    assert "ERROR: freq must be a fixed duration" in result.stderr
    assert not out.exists()


def test_synth_rejects_zero_bars_as_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["data", "synth", "--bars", "0", "--seed", "1", "--out", str(tmp_path / "x.csv")]
    )

    assert result.exit_code == 2


def test_resample_writes_coarser_bars(tmp_path: Path) -> None:
    source, out = tmp_path / "m1.parquet", tmp_path / "m5.csv"
    runner.invoke(app, ["data", "synth", "--bars", "600", "--seed", "2", "--out", str(source)])

    result = runner.invoke(
        app, ["data", "resample", str(source), "--every", "5m", "--out", str(out)]
    )

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"Wrote 120 bars (5m) from 600 to {out}"
    resampled = load_bars(out)
    original = load_bars(source)
    assert resampled["volume"].sum() == original["volume"].sum()
    assert resampled["open"][1] == original["open"][5]


def test_resample_bad_every_is_a_clear_error(tmp_path: Path) -> None:
    source = _good_csv(tmp_path / "d.csv")

    result = runner.invoke(
        app, ["data", "resample", str(source), "--every", "5x", "--out", str(tmp_path / "o.csv")]
    )

    assert result.exit_code == 1
    assert result.stderr.strip().startswith("ERROR: every must be a duration")
    assert "Traceback" not in result.output


def test_resample_invalid_input_lists_problems(tmp_path: Path) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(HEADER + "2020-01-01,10,11,9,10.5,-5\n")

    result = runner.invoke(
        app, ["data", "resample", str(source), "--every", "1d", "--out", str(tmp_path / "o.csv")]
    )

    assert result.exit_code == 1
    assert "row 0, column 'volume', value -5.0: volume must be >= 0" in result.stderr
