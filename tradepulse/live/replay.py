"""A replay feed: the bars of a data file (or frame), one at a time, at a chosen speed.

``ReplayFeed("golden/data/sp500_daily.csv", speed=50)`` loads the file with
:func:`tradepulse.data.load_bars` (so it is checked against the bar contract)
and yields :class:`FeedBar` items, ``(position, bar)``, from ``start`` on:
``position`` is the bar's 0-based row in the file, the feed position a runner
resumes from. ``speed`` is in bars per second (``None``: as fast as the
consumer takes them); the schedule is absolute (bar ``k`` after ``start`` is due
``k / speed`` seconds after the first), so a slow consumer catches up instead of
drifting. Demos and tests drive :class:`~tradepulse.live.StrategyRunner` with it.
"""

from __future__ import annotations

import math
import os
import time
from array import array
from collections.abc import Callable, Iterator
from typing import Final, NamedTuple

import polars as pl

from tradepulse.backtest.vector import _column, _timestamps
from tradepulse.data.loaders import load_bars
from tradepulse.data.schema import SYMBOL_COLUMN, validate_bars
from tradepulse.errors import ConfigError
from tradepulse.strategy.api import Bar

__all__ = ["FeedBar", "ReplayFeed", "iter_bars"]

_PRICES: Final = ("open", "high", "low", "close", "volume")


class FeedBar(NamedTuple):
    """One bar of a feed and its 0-based position in the feed's data."""

    position: int
    bar: Bar


def iter_bars(frame: pl.DataFrame, *, start: int = 0) -> Iterator[Bar]:
    """Yield the rows of a bar frame from row ``start`` on as :class:`~tradepulse.strategy.Bar`.

    Raises:
        ConfigError: a bar column is missing, not numeric, or has nulls.
    """
    if not isinstance(frame, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(frame).__name__}")
    part = frame.slice(start) if start else frame
    if part.height == 0:
        return
    columns = (
        array("q", _timestamps(part).tobytes()),
        *(array("d", _column(part, name).tobytes()) for name in _PRICES),
    )
    for row in zip(*columns, strict=True):
        yield Bar._make(row)


class ReplayFeed:
    """Yield the bars of ``source`` (a data file or a bar frame) from row ``start`` on.

    A path is read with :func:`~tradepulse.data.load_bars`; a frame is checked
    with :func:`~tradepulse.data.validate_bars`. The bars must hold one symbol.
    ``speed`` is the pace in bars per second (``None``: no waiting). ``clock``
    and ``sleep`` (seconds) are :func:`time.monotonic` and :func:`time.sleep`
    unless a test substitutes them. Each iteration replays from ``start``.

    Raises:
        DataError: the file cannot be read or the bars break the bar contract.
        ConfigError: ``speed`` is not a positive finite number or ``None``,
            ``start`` is not a row of the data (or its end), or the bars hold
            several symbols.
    """

    __slots__ = ("_clock", "_frame", "_position", "_sleep", "_speed", "_start", "_symbol")

    def __init__(
        self,
        source: str | os.PathLike[str] | pl.DataFrame,
        *,
        speed: float | None = None,
        start: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if isinstance(source, pl.DataFrame):
            frame = validate_bars(source, source="replay frame")
        elif isinstance(source, str | os.PathLike):
            frame = load_bars(source)
        else:
            raise ConfigError(
                f"source must be a file path or a polars DataFrame; got {type(source).__name__}"
            )
        if speed is not None and (
            isinstance(speed, bool)
            or not isinstance(speed, int | float)
            or not (math.isfinite(speed) and speed > 0)
        ):
            raise ConfigError(
                f"speed must be a positive number of bars per second or None; got {speed!r}"
            )
        if isinstance(start, bool) or not isinstance(start, int) or not 0 <= start <= frame.height:
            raise ConfigError(
                f"start must be a row of the data, 0 to {frame.height}; got {start!r}"
            )
        symbol: str | None = None
        if SYMBOL_COLUMN in frame.columns:
            symbols = frame.get_column(SYMBOL_COLUMN).unique().to_list()
            if len(symbols) > 1:
                raise ConfigError(
                    f"a replay feed carries one symbol; the bars hold {len(symbols)}: "
                    f"{', '.join(sorted(map(str, symbols)))}"
                )
            symbol = str(symbols[0]) if symbols else None
        self._frame = frame
        self._symbol = symbol
        self._speed = None if speed is None else float(speed)
        self._start = start
        self._position = start
        self._clock = clock
        self._sleep = sleep

    def __repr__(self) -> str:
        return (
            f"ReplayFeed({self._frame.height} bars, symbol={self._symbol!r}, "
            f"speed={self._speed!r}, start={self._start})"
        )

    def __len__(self) -> int:
        """Return the number of bars the feed yields (from ``start`` to the end)."""
        return self._frame.height - self._start

    @property
    def frame(self) -> pl.DataFrame:
        """Return all the bars of the data (checked), including those before ``start``."""
        return self._frame

    @property
    def symbol(self) -> str | None:
        """Return the bars' symbol (``None`` when they have no ``symbol`` column)."""
        return self._symbol

    @property
    def speed(self) -> float | None:
        """Return the pace in bars per second (``None``: as fast as possible)."""
        return self._speed

    @property
    def position(self) -> int:
        """Return the position of the next bar to yield (the data's length at the end)."""
        return self._position

    def history(self) -> pl.DataFrame:
        """Return the bars before ``start``: what a runner resuming at ``start`` replays."""
        return self._frame.head(self._start)

    def __iter__(self) -> Iterator[FeedBar]:
        """Yield ``FeedBar(position, bar)`` from ``start`` on, paced by ``speed``."""
        self._position = self._start
        first: float | None = None
        for offset, bar in enumerate(iter_bars(self._frame, start=self._start)):
            if self._speed is not None:
                now = self._clock()
                if first is None:
                    first = now
                wait = first + offset / self._speed - now
                if wait > 0:
                    self._sleep(wait)
            position = self._start + offset
            self._position = position + 1
            yield FeedBar(position, bar)
