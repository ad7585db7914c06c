"""Resampling bars: checked against a hand computation and a plain-Python reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from tradepulse.data.resample import duration_ns, parse_every, resample_bars
from tradepulse.data.schema import TS_DTYPE, validate_bars
from tradepulse.data.synth import synthesize_bars
from tradepulse.errors import BarContractError, DataError


def _reference(frame: pl.DataFrame, every: timedelta) -> pl.DataFrame:
    """Resample with a plain loop: bucket = floor(ts / every) * every since the epoch."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    buckets: dict[tuple[str, datetime], dict[str, float]] = {}
    has_symbol = "symbol" in frame.columns
    for row in frame.iter_rows(named=True):
        start = epoch + ((row["ts"] - epoch) // every) * every
        key = (row["symbol"] if has_symbol else "", start)
        bucket = buckets.get(key)
        if bucket is None:
            buckets[key] = {name: row[name] for name in ("open", "high", "low", "close", "volume")}
        else:
            bucket["high"] = max(bucket["high"], row["high"])
            bucket["low"] = min(bucket["low"], row["low"])
            bucket["close"] = row["close"]
            bucket["volume"] += row["volume"]
    rows = [
        {"ts": start, **({"symbol": symbol} if has_symbol else {}), **values}
        for (symbol, start), values in sorted(buckets.items())
    ]
    return pl.DataFrame(rows).with_columns(pl.col("ts").cast(TS_DTYPE))


def test_hand_computed_example() -> None:
    # Arrange: five 1-minute bars from 09:58; 5-minute buckets start at 09:55 and 10:00.
    start = datetime(2024, 1, 2, 9, 58, tzinfo=UTC)
    frame = pl.DataFrame(
        {
            "ts": pl.Series([start + timedelta(minutes=i) for i in range(5)]).cast(TS_DTYPE),
            "open": [10.0, 10.2, 10.1, 10.4, 10.3],
            "high": [10.3, 10.4, 10.5, 10.6, 10.4],
            "low": [9.9, 10.0, 10.1, 10.2, 10.0],
            "close": [10.2, 10.1, 10.4, 10.3, 10.1],
            "volume": [5.0, 7.0, 1.0, 2.0, 3.0],
        }
    )

    result = resample_bars(frame, every="5m")

    assert result.to_dicts() == [
        {
            "ts": datetime(2024, 1, 2, 9, 55, tzinfo=UTC),
            "open": 10.0,
            "high": 10.4,
            "low": 9.9,
            "close": 10.1,
            "volume": 12.0,
        },
        {
            "ts": datetime(2024, 1, 2, 10, 0, tzinfo=UTC),
            "open": 10.1,
            "high": 10.6,
            "low": 10.0,
            "close": 10.1,
            "volume": 6.0,
        },
    ]


@pytest.mark.parametrize(
    ("every", "length"),
    [
        ("5m", timedelta(minutes=5)),
        ("7min", timedelta(minutes=7)),
        ("1h30m", timedelta(minutes=90)),
    ],
)
def test_matches_the_reference_loop(every: str, length: timedelta) -> None:
    frame = synthesize_bars(bars=2_000, seed=4, start="2024-01-02T09:58:00Z")

    result = resample_bars(frame, every=every)

    expected = _reference(frame, length)
    assert result.columns == expected.columns
    assert result.equals(expected)


def test_each_symbol_is_resampled_separately() -> None:
    first = synthesize_bars(bars=500, seed=1, symbol="AAA")
    second = synthesize_bars(bars=300, seed=2, symbol="BBB", start="2024-01-02T00:03:00Z")
    interleaved = pl.concat([first, second]).sort("ts", maintain_order=True)

    result = resample_bars(interleaved, every="15m")

    assert result.equals(_reference(interleaved, timedelta(minutes=15)))
    assert result["symbol"].unique(maintain_order=True).to_list() == ["AAA", "BBB"]


def test_empty_buckets_are_skipped_and_extra_columns_dropped() -> None:
    frame = synthesize_bars(bars=10, seed=3, freq="1h", with_regime=True)
    sparse = frame.filter(pl.int_range(pl.len()).is_in([0, 1, 7]))

    result = resample_bars(sparse, every="2h")

    assert result["ts"].dt.hour().to_list() == [0, 6]
    assert "regime" not in result.columns
    validate_bars(result)


def test_calendar_months_start_on_the_first() -> None:
    frame = synthesize_bars(bars=90, seed=9, freq="1d", start="2024-01-15")

    result = resample_bars(frame, every="1mo")

    assert result["ts"].to_list() == [
        datetime(2024, month, 1, tzinfo=UTC) for month in (1, 2, 3, 4)
    ]
    assert result["volume"].sum() == pytest.approx(frame["volume"].sum())


@pytest.mark.parametrize("every", ["", "5", "5x", "m5", "-5m", "0m", "5 m", "1.5h"])
def test_bad_every_is_rejected(every: str) -> None:
    frame = synthesize_bars(bars=3, seed=1)

    with pytest.raises(DataError, match=r"every must be a (positive )?duration.*got"):
        resample_bars(frame, every=every)


def test_invalid_bars_are_rejected() -> None:
    frame = synthesize_bars(bars=3, seed=1).with_columns(volume=pl.lit(-1.0))

    with pytest.raises(BarContractError):
        resample_bars(frame, every="5m")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("5min", "5m"), ("5m", "5m"), ("1h30min", "1h30m"), (" 1MO ", "1mo"), ("250ms", "250ms")],
)
def test_parse_every_gives_polars_durations(text: str, expected: str) -> None:
    assert parse_every(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", timedelta(seconds=1)),
        ("1min", timedelta(minutes=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("1w", timedelta(weeks=1)),
        ("1500us", timedelta(microseconds=1500)),
    ],
)
def test_duration_ns_matches_timedelta(text: str, expected: timedelta) -> None:
    assert duration_ns(text) == expected // timedelta(microseconds=1) * 1_000


def test_duration_ns_rejects_calendar_units() -> None:
    with pytest.raises(DataError, match="freq must be a fixed duration"):
        duration_ns("1y")
