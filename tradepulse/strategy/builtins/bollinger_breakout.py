"""``bollinger_breakout``: follow a close that breaks out of its Bollinger bands.

Rules, decided on each bar's close (filled by the host at the next bar's open),
with the bands of a ``period``-bar SMA ± ``num_std`` population standard
deviations of the close (TA-Lib compatible):

- enter long when the close crosses strictly above the upper band:
  ``close[t-1] < upper[t-1]`` and ``close[t] > upper[t]``;
- exit the long when the close crosses strictly below the middle band;
- with ``direction="long_short"``: enter short when the close crosses strictly
  below the lower band, exit the short when it crosses strictly above the
  middle band.

An entry wins over an exit on the same bar (a close falling from above the
middle band through the lower band reverses a long to short). Targets are 0
until the bands have warmed up (``period - 1`` bars) and a breakout occurs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.indicators.classic import bollinger_bands
from tradepulse.strategy.api import Bar, Strategy, StrategyContext
from tradepulse.strategy.builtins._common import (
    cross_above,
    cross_below,
    follow_events,
    next_target,
    price_column,
)
from tradepulse.strategy.params import Params, param

__all__ = ["BollingerBreakout", "BollingerBreakoutParams"]


@dataclass(frozen=True, slots=True)
class BollingerBreakoutParams(Params):
    """Parameters of :class:`BollingerBreakout` (period in bars, width in standard deviations)."""

    period: int = param(20, low=2, high=500, step=1, description="Band SMA period (bars).")
    num_std: float = param(
        2.0, low=0.5, high=5.0, step=0.5, description="Band width (standard deviations)."
    )
    direction: Literal["long", "long_short"] = param(
        "long", description="long: breakouts up only; long_short: also short breakdowns."
    )


class BollingerBreakout(Strategy[BollingerBreakoutParams]):
    """Breakout: long above the upper band until the close falls below the middle band."""

    name = "bollinger_breakout"
    api_version = "1.0"
    params_type = BollingerBreakoutParams

    def __init__(self) -> None:
        self._target = 0.0
        self._long_short = False

    def indicators(
        self, bars: pl.DataFrame, params: BollingerBreakoutParams
    ) -> Mapping[str, NDArray[np.float64]]:
        """Return ``close`` and the ``upper``, ``middle`` and ``lower`` bands (price units)."""
        close = price_column(bars)
        bands = bollinger_bands(close, period=params.period, num_std=params.num_std)
        return {"close": close, "upper": bands.upper, "middle": bands.middle, "lower": bands.lower}

    def initialize(self, ctx: StrategyContext[BollingerBreakoutParams]) -> None:
        """Start flat."""
        self._target = 0.0
        self._long_short = ctx.params.direction == "long_short"

    def handle_tick(self, ctx: StrategyContext[BollingerBreakoutParams], bar: Bar) -> None:
        """Order a new target on a band breakout or a cross of the middle band."""
        close, close_before = ctx.indicator("close"), ctx.indicator("close", 1)
        upper, upper_before = ctx.indicator("upper"), ctx.indicator("upper", 1)
        middle, middle_before = ctx.indicator("middle"), ctx.indicator("middle", 1)
        long_entry = close_before < upper_before and close > upper
        long_exit = close_before > middle_before and close < middle
        short_entry = short_exit = False
        if self._long_short:
            lower, lower_before = ctx.indicator("lower"), ctx.indicator("lower", 1)
            short_entry = close_before > lower_before and close < lower
            short_exit = close_before < middle_before and close > middle
        target = next_target(
            self._target,
            long_entry=long_entry,
            long_exit=long_exit,
            short_entry=short_entry,
            short_exit=short_exit,
        )
        if target != self._target:
            self._target = target
            ctx.order_target_percent(percent=target)

    def signals(self, bars: pl.DataFrame, params: BollingerBreakoutParams) -> NDArray[np.float64]:
        """Return the target of every bar (see the module docstring for the rules)."""
        lines = self.indicators(bars, params)
        close, middle = lines["close"], lines["middle"]
        long_entry = cross_above(close, lines["upper"])
        long_exit = cross_below(close, middle)
        if params.direction == "long_short":
            return follow_events(
                long_entry=long_entry,
                long_exit=long_exit,
                short_entry=cross_below(close, lines["lower"]),
                short_exit=cross_above(close, middle),
            )
        return follow_events(long_entry=long_entry, long_exit=long_exit)
