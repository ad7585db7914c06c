"""``Strategy.signals_many``: the default loop, and sma_cross's shared averages (bit for bit)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tradepulse.data import synthesize_bars
from tradepulse.indicators import classic
from tradepulse.strategy import Bar, Params, Strategy, StrategyContext, param
from tradepulse.strategy.builtins import sma_cross
from tradepulse.strategy.builtins.sma_cross import SmaCross, SmaCrossParams


@dataclass(frozen=True, slots=True)
class ScaleParams(Params):
    level: float = param(0.5, low=-1.0, high=1.0)


class Scaled(Strategy[ScaleParams]):
    """Target ``level`` from bar 1 on: enough to tell parameter sets apart."""

    name = "scaled"
    api_version = "1.0"
    params_type = ScaleParams

    def handle_tick(self, ctx: StrategyContext[ScaleParams], bar: Bar) -> None:
        """Unused here."""

    def signals(self, bars: pl.DataFrame, params: ScaleParams) -> NDArray[np.float64]:
        targets = np.full(bars.height, params.level)
        targets[0] = 0.0
        return targets


class EventOnly(Strategy[ScaleParams]):
    name = "event_only"
    api_version = "1.0"
    params_type = ScaleParams

    def handle_tick(self, ctx: StrategyContext[ScaleParams], bar: Bar) -> None:
        """Unused here."""


@pytest.fixture(scope="module")
def bars() -> pl.DataFrame:
    return synthesize_bars(bars=3_000, seed=11)


def test_default_yields_every_position_once_in_order(bars: pl.DataFrame) -> None:
    params = [ScaleParams(level=level) for level in (0.25, -1.0, 0.25)]

    yielded = list(Scaled().signals_many(bars, params))

    assert [position for position, _ in yielded] == [0, 1, 2]
    for (_, targets), item in zip(yielded, params, strict=True):
        assert targets[0] == 0.0
        assert np.all(targets[1:] == item.level)
    assert list(Scaled().signals_many(bars, [])) == []


def test_default_without_signals_raises(bars: pl.DataFrame) -> None:
    with pytest.raises(NotImplementedError, match="event_only"):
        list(EventOnly().signals_many(bars, [ScaleParams()]))


windows = st.integers(min_value=1, max_value=60)


@st.composite
def sma_params(draw: st.DrawFn) -> SmaCrossParams:
    fast = draw(st.integers(min_value=1, max_value=59))
    slow = draw(st.integers(min_value=fast + 1, max_value=60))
    direction = draw(st.sampled_from(["long", "long_short"]))
    return SmaCrossParams(fast=fast, slow=slow, direction=direction)


@settings(max_examples=40)
@given(params=st.lists(sma_params(), min_size=0, max_size=25))
def test_sma_cross_matches_signals_bit_for_bit(
    bars: pl.DataFrame, params: list[SmaCrossParams]
) -> None:
    strategy = SmaCross()

    yielded = list(strategy.signals_many(bars, params))

    assert sorted(position for position, _ in yielded) == list(range(len(params)))
    for position, targets in yielded:
        assert np.array_equal(targets, strategy.signals(bars, params[position]))


def test_sma_cross_computes_each_window_once(
    bars: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def counting_sma(values: NDArray[np.float64], window: int) -> NDArray[np.float64]:
        calls.append(window)
        return classic.sma(values, window)

    monkeypatch.setattr(sma_cross, "sma", counting_sma)
    params = [
        SmaCrossParams(fast=fast, slow=slow, direction=direction)
        for fast in (5, 10, 20)
        for slow in (20, 30, 40, 50)
        for direction in ("long", "long_short")
        if fast < slow
    ]

    yielded = list(SmaCross().signals_many(bars, params))

    # 20 is both a fast and a slow window: one average serves both roles.
    assert sorted(calls) == [5, 10, 20, 30, 40, 50]
    assert len(yielded) == len(params) == 22


def test_sma_cross_keeps_few_averages_alive(
    bars: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    alive: list[int] = []
    live: set[int] = set()

    class Tracked(np.ndarray):  # type: ignore[type-arg]
        """An average that reports when it is freed."""

        window: int

        def __del__(self) -> None:
            live.discard(self.window)

    def tracked_sma(values: NDArray[np.float64], window: int) -> NDArray[np.float64]:
        average = classic.sma(values, window).view(Tracked)
        average.window = window
        live.add(window)
        alive.append(len(live))
        return average

    monkeypatch.setattr(sma_cross, "sma", tracked_sma)
    # 2 fast x 30 slow windows: visiting slow-major keeps about 2 fast + 1 slow alive.
    params = [SmaCrossParams(fast=fast, slow=slow) for fast in (3, 4) for slow in range(10, 40)]

    for _ in SmaCross().signals_many(bars, params):
        pass

    assert max(alive) <= 4
