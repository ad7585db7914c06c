"""The replay feed: a data file's bars one at a time, from a position, at a pace."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tradepulse.errors import BarContractError, ConfigError, DataError
from tradepulse.live import FeedBar, ReplayFeed, iter_bars
from tradepulse.strategy import Bar


class FakeTime:
    """A clock that only moves when slept on (or told to); records the sleeps."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _stamp(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def test_the_feed_yields_every_row_of_the_file_with_its_position(sample_dir: Path) -> None:
    feed = ReplayFeed(sample_dir / "sp500_daily.csv")

    items = list(feed)

    assert len(items) == len(feed) == 5031
    assert [item.position for item in items[:3]] == [0, 1, 2]
    # The first and last rows of the CSV, read independently of the loader.
    lines = (sample_dir / "sp500_daily.csv").read_text().splitlines()
    for item, line in ((items[0], lines[1]), (items[-1], lines[-1])):
        day, *numbers = line.split(",")
        assert item.bar == Bar(_stamp(day), *(float(number) for number in numbers))
    assert feed.position == 5031
    assert feed.symbol is None


def test_a_feed_starts_at_a_position_and_gives_the_bars_before_it(sp500: pl.DataFrame) -> None:
    feed = ReplayFeed(sp500, start=5000)

    items = list(feed)

    assert [item.position for item in items] == list(range(5000, 5031))
    assert len(feed) == 31
    assert feed.history().equals(sp500.head(5000))
    assert feed.frame.equals(sp500)
    assert items[0].bar == next(iter_bars(sp500, start=5000))
    assert list(ReplayFeed(sp500, start=5031)) == []


def test_speed_paces_bars_on_an_absolute_schedule(sp500: pl.DataFrame) -> None:
    fake = FakeTime()
    feed = ReplayFeed(sp500.head(5), speed=4.0, clock=fake.clock, sleep=fake.sleep)

    for item in feed:
        if item.position == 1:
            fake.now += 0.6  # a slow consumer: the next bar is already late

    # Bar k is due k / 4 s after the first: 0.25 s; (0.6 spent) none for bar 2
    # (due at 0.5); bar 3 due at 0.75 (now 0.85): none; bar 4 due at 1.0: 0.15 s.
    assert fake.sleeps == pytest.approx([0.25, 0.15])
    assert feed.speed == 4.0


def test_without_a_speed_the_feed_never_sleeps(sp500: pl.DataFrame) -> None:
    fake = FakeTime()

    assert len(list(ReplayFeed(sp500.head(20), clock=fake.clock, sleep=fake.sleep))) == 20
    assert fake.sleeps == []


def test_a_feed_replays_from_its_start_each_time(sp500: pl.DataFrame) -> None:
    feed = ReplayFeed(sp500.head(4), start=1)

    first = [item.position for item in feed]
    second = [item.position for item in feed]

    assert first == second == [1, 2, 3]
    assert isinstance(next(iter(feed)), FeedBar)
    assert "ReplayFeed(4 bars" in repr(feed)


@pytest.mark.parametrize("speed", [0, -1.0, math.nan, math.inf, True, "fast"])
def test_a_bad_speed_is_named(sp500: pl.DataFrame, speed: object) -> None:
    with pytest.raises(ConfigError, match="speed must be a positive number"):
        ReplayFeed(sp500, speed=speed)  # type: ignore[arg-type]


@pytest.mark.parametrize("start", [-1, 5032, True, 1.5])
def test_a_bad_start_is_named(sp500: pl.DataFrame, start: object) -> None:
    with pytest.raises(ConfigError, match="start must be a row of the data, 0 to 5031"):
        ReplayFeed(sp500, start=start)  # type: ignore[arg-type]


def test_bad_sources_are_refused(tmp_path: Path, sp500: pl.DataFrame) -> None:
    broken = sp500.head(3).with_columns(pl.Series("low", [1e9, 1e9, 1e9]))
    two = pl.concat(
        [
            sp500.head(2).with_columns(pl.lit("A").alias("symbol")),
            sp500.slice(2, 2).with_columns(pl.lit("B").alias("symbol")),
        ]
    )

    with pytest.raises(ConfigError, match="file path or a polars DataFrame"):
        ReplayFeed(42)  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"missing\.csv"):
        ReplayFeed(tmp_path / "missing.csv")
    with pytest.raises(BarContractError):
        ReplayFeed(broken)
    with pytest.raises(ConfigError, match="one symbol; the bars hold 2: A, B"):
        ReplayFeed(two)
    with pytest.raises(ConfigError, match="polars DataFrame"):
        list(iter_bars("bars"))  # type: ignore[arg-type]


def test_a_frame_with_one_symbol_names_it(sp500: pl.DataFrame) -> None:
    feed = ReplayFeed(sp500.head(3).with_columns(pl.lit("SPX").alias("symbol")))

    assert feed.symbol == "SPX"
