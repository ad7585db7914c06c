"""The backtest report: charts, the HTML page and the numbers it shows."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tradepulse.backtest import BacktestResult, run_vectorised
from tradepulse.errors import ConfigError
from tradepulse.metrics import Metrics
from tradepulse.reports import BacktestReport, format_metric, metric_rows, write_backtest_report
from tradepulse.reports.backtest_report import compute_drawdown

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
OPEN = [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]
CLOSE = [10.5, 11.5, 12.5, 13.5, 14.5, 15.5]
# Decided on each close, filled at the next open: long at bar 1's open (11), flat at
# bar 3's open (13), short at bar 4's open (14), still short at the end.
TARGETS = [1.0, 1.0, 0.0, -1.0, -1.0, -1.0]


def _bars(symbol: str | None = "XYZ", *, count: int = len(OPEN)) -> pl.DataFrame:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    columns: dict[str, object] = {
        "ts": pl.Series([start + timedelta(days=day) for day in range(count)]).cast(
            pl.Datetime("ns", "UTC")
        )
    }
    if symbol is not None:
        columns["symbol"] = [symbol] * count
    opens, closes = OPEN[:count], CLOSE[:count]
    columns |= {
        "open": opens,
        "high": [max(o, c) + 0.5 for o, c in zip(opens, closes, strict=True)],
        "low": [min(o, c) - 0.5 for o, c in zip(opens, closes, strict=True)],
        "close": closes,
        "volume": [1_000.0] * count,
    }
    return pl.DataFrame(columns)


@pytest.fixture
def bars() -> pl.DataFrame:
    return _bars()


@pytest.fixture
def result(bars: pl.DataFrame) -> BacktestResult:
    return run_vectorised(bars, TARGETS, cash=10_000.0)


def _write(
    result: BacktestResult, bars: pl.DataFrame, path: Path, **kwargs: object
) -> BacktestReport:
    arguments: dict[str, object] = {
        "strategy": "hand_made",
        "params": {"fast": 2, "direction": "long_short"},
        "engine": "vector",
        "frictions": {"commission_rate": 0.0, "sizing": "fractional"},
    }
    arguments.update(kwargs)
    return write_backtest_report(result, bars, path, **arguments)  # type: ignore[arg-type]


def test_drawdown_matches_hand_computation(result: BacktestResult) -> None:
    # Long 10000/11 units from 11 to 13, then short E3/14 units from 14 (E3 = 10000*13/11).
    e3 = 10_000.0 * 13.0 / 11.0
    expected_equity = [10_000.0, 10_000 * 11.5 / 11, 10_000 * 12.5 / 11, e3]
    expected_equity += [e3 * (1 - 0.5 / 14), e3 * (1 - 1.5 / 14)]
    np.testing.assert_allclose(result.equity, expected_equity, rtol=1e-12)

    drawdown = compute_drawdown(np.asarray(result.equity), result.initial_cash)

    np.testing.assert_allclose(drawdown, [0, 0, 0, 0, 0.5 / 14, 1.5 / 14], atol=1e-12)
    assert drawdown.max() == pytest.approx(result.metrics.max_drawdown, rel=1e-12)


def test_drawdown_peak_starts_at_the_starting_cash() -> None:
    drawdown = compute_drawdown(np.array([90.0, 95.0, 120.0, 60.0]), 100.0)

    np.testing.assert_allclose(drawdown, [0.1, 0.05, 0.0, 0.5])


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("final_equity", 12345.678, "12,345.68"),
        ("total_return", 0.1234, "12.34%"),
        ("max_drawdown", 0.5, "50.00%"),
        ("sharpe", 1.23456, "1.235"),
        ("trades", 7, "7"),
        ("periods_per_year", 252.0, "252"),
        ("sortino", float("nan"), "—"),
        ("calmar", float("inf"), "—"),
    ],
)
def test_format_metric(name: str, value: float, text: str) -> None:
    assert format_metric(name, value) == text


def test_metric_rows_follow_the_metrics_fields(result: BacktestResult) -> None:
    rows = metric_rows(result.metrics)

    assert [name for name, _ in rows] == list(Metrics.__dataclass_fields__)
    assert dict(rows)["trades"] == "2"


def test_report_embeds_every_chart_and_lists_the_run(
    tmp_path: Path, bars: pl.DataFrame, result: BacktestResult
) -> None:
    report = _write(result, bars, tmp_path / "sub" / "run.html")

    assert report.html_path == tmp_path / "sub" / "run.html"
    assert [path.name for path in report.png_paths] == [
        "run_equity.png",
        "run_drawdown.png",
        "run_trades.png",
    ]
    page = report.html_path.read_text(encoding="utf-8")
    inline = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert [base64.b64decode(item) for item in inline] == [
        path.read_bytes() for path in report.png_paths
    ]
    assert all(path.read_bytes().startswith(PNG_MAGIC) for path in report.png_paths)
    assert "hand_made on XYZ (vector engine)" in page
    assert "2024-01-01 00:00 → 2024-01-06 00:00 UTC, 6 bars" in page
    assert "<th>direction</th><td>long_short</td>" in page
    assert "<th>sizing</th><td>fractional</td>" in page
    assert "<th>trades</th><td>2</td>" in page
    # Trade table: entries and exits at the hand-derived fill prices.
    rows = re.findall(r"<tr><td>2024.*?</tr>", page)
    assert len(rows) == 2
    assert "<td>long</td>" in rows[0]
    assert "<td>11</td>" in rows[0]  # entry: bar 1's open
    assert "<td>13</td>" in rows[0]  # exit: bar 3's open
    assert "<td>short</td>" in rows[1]
    assert "<td>14</td>" in rows[1]
    assert "<td>15.5</td>" in rows[1]  # still open: marked to the last close
    assert "<td>True</td>" in rows[1]
    assert "all 2 trades" in page


def test_trade_table_shows_only_the_first_rows(
    tmp_path: Path, bars: pl.DataFrame, result: BacktestResult
) -> None:
    page = _write(result, bars, tmp_path / "r.html", trade_rows=1).html_path.read_text()

    assert "first 1 of 2 trades" in page
    assert len(re.findall(r"<tr><td>2024", page)) == 1


def test_report_text_is_escaped(tmp_path: Path, bars: pl.DataFrame, result: BacktestResult) -> None:
    page = _write(result, bars, tmp_path / "r.html", params={"label": "<b>&"}).html_path.read_text()

    assert "&lt;b&gt;&amp;" in page
    assert "<b>&" not in page


def test_zero_trades_are_reported_as_such(tmp_path: Path, bars: pl.DataFrame) -> None:
    flat = run_vectorised(bars, np.zeros(bars.height))

    report = _write(flat, bars, tmp_path / "flat.html", frictions=None)

    page = report.html_path.read_text(encoding="utf-8")
    assert "<p>no trades</p>" in page
    assert "<p>none given</p>" in page
    assert page.count("data:image/png;base64,") == 3
    assert "<th>sharpe</th><td>—</td>" in page


def test_report_is_deterministic(
    tmp_path: Path, bars: pl.DataFrame, result: BacktestResult
) -> None:
    first = _write(result, bars, tmp_path / "a" / "r.html")
    second = _write(result, bars, tmp_path / "b" / "r.html")

    assert first.html_path.read_bytes() == second.html_path.read_bytes()


def test_bars_without_symbol_column(tmp_path: Path) -> None:
    bars = _bars(symbol=None)
    result = run_vectorised(bars, TARGETS)

    page = _write(result, bars, tmp_path / "r.html").html_path.read_text()

    assert "hand_made (vector engine)" in page


def test_several_symbols_are_refused(tmp_path: Path) -> None:
    one = _bars("AAA")
    both = pl.concat([one, _bars("BBB")])
    result = run_vectorised(one, TARGETS)

    with pytest.raises(ConfigError, match=r"several \(AAA, BBB\)"):
        _write(result, both, tmp_path / "r.html")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["r.htm", "r.png", "r"])
def test_path_must_be_html(
    name: str, tmp_path: Path, bars: pl.DataFrame, result: BacktestResult
) -> None:
    with pytest.raises(ConfigError, match=r"must end in \.html"):
        _write(result, bars, tmp_path / name)


def test_bars_must_be_those_of_the_result(
    tmp_path: Path, bars: pl.DataFrame, result: BacktestResult
) -> None:
    with pytest.raises(ConfigError, match="5 bars, the result has 6"):
        _write(result, bars.head(5), tmp_path / "r.html")
    shifted = bars.with_columns(pl.col("ts") + pl.duration(hours=1))
    with pytest.raises(ConfigError, match="timestamps differ"):
        _write(result, shifted, tmp_path / "r.html")
    with pytest.raises(ConfigError, match="'close' column"):
        _write(result, bars.drop("close"), tmp_path / "r.html")


@pytest.mark.parametrize("rows", [-1, 1.5, True])
def test_trade_rows_must_be_a_count(
    rows: object, tmp_path: Path, bars: pl.DataFrame, result: BacktestResult
) -> None:
    with pytest.raises(ConfigError, match="trade_rows"):
        _write(result, bars, tmp_path / "r.html", trade_rows=rows)
