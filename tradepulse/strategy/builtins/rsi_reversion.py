"""``rsi_reversion``: buy oversold, sell overbought, on strict crosses of RSI levels.

Rules, decided on each bar's close (filled by the host at the next bar's open),
with ``r`` the Wilder RSI of the close (TA-Lib compatible, percent):

- enter long when RSI crosses strictly below ``lower``:
  ``r[t-1] > lower`` and ``r[t] < lower`` (the market turned oversold);
- exit the long when RSI crosses strictly above ``upper``:
  ``r[t-1] < upper`` and ``r[t] > upper`` (overbought: the reversion is done);
- with ``direction="long_short"`` the exit reverses to all-in short, and the
  next cross below ``lower`` reverses back to long.

Targets are 0 until the RSI has warmed up (``period`` bars) and a cross occurs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.indicators.classic import rsi
from tradepulse.strategy.api import Bar, Strategy, StrategyContext
from tradepulse.strategy.builtins._common import (
    cross_above,
    cross_below,
    follow_events,
    next_target,
    price_column,
)
from tradepulse.strategy.params import ParameterError, Params, param

__all__ = ["RsiReversion", "RsiReversionParams"]


@dataclass(frozen=True, slots=True)
class RsiReversionParams(Params):
    """Parameters of :class:`RsiReversion` (period in bars, levels in RSI percent)."""

    period: int = param(14, low=2, high=200, step=1, description="RSI period (bars).")
    lower: float = param(
        30.0, low=1.0, high=99.0, step=1.0, description="Enter long on a cross below (RSI %)."
    )
    upper: float = param(
        70.0, low=1.0, high=99.0, step=1.0, description="Exit long on a cross above (RSI %)."
    )
    direction: Literal["long", "long_short"] = param(
        "long", description="long: flat on the upper cross; long_short: reverse to short."
    )

    def check(self) -> None:
        """Require ``lower < upper``.

        Raises:
            ParameterError: ``lower >= upper``.
        """
        if self.lower >= self.upper:
            raise ParameterError("lower", self.lower, f"must be < upper ({self.upper})")


class RsiReversion(Strategy[RsiReversionParams]):
    """Mean reversion: long when RSI drops through ``lower``, out when it rises above ``upper``."""

    name = "rsi_reversion"
    api_version = "1.0"
    params_type = RsiReversionParams

    def __init__(self) -> None:
        self._target = 0.0
        self._long_short = False
        self._lower = 30.0
        self._upper = 70.0

    def indicators(
        self, bars: pl.DataFrame, params: RsiReversionParams
    ) -> Mapping[str, NDArray[np.float64]]:
        """Return ``rsi``: the RSI of the close in percent (NaN for the first ``period`` bars)."""
        return {"rsi": rsi(price_column(bars), params.period)}

    def initialize(self, ctx: StrategyContext[RsiReversionParams]) -> None:
        """Start flat."""
        params = ctx.params
        self._target = 0.0
        self._long_short = params.direction == "long_short"
        self._lower = params.lower
        self._upper = params.upper

    def handle_tick(self, ctx: StrategyContext[RsiReversionParams], bar: Bar) -> None:
        """Order a new target when the RSI crosses ``lower`` or ``upper``."""
        now = ctx.indicator("rsi")
        before = ctx.indicator("rsi", 1)
        oversold = before > self._lower and now < self._lower
        overbought = before < self._upper and now > self._upper
        target = next_target(
            self._target,
            long_entry=oversold,
            long_exit=overbought,
            short_entry=overbought and self._long_short,
            short_exit=oversold and self._long_short,
        )
        if target != self._target:
            self._target = target
            ctx.order_target_percent(percent=target)

    def signals(self, bars: pl.DataFrame, params: RsiReversionParams) -> NDArray[np.float64]:
        """Return the target of every bar (see the module docstring for the rules)."""
        value = self.indicators(bars, params)["rsi"]
        oversold = cross_below(value, params.lower)
        overbought = cross_above(value, params.upper)
        if params.direction == "long_short":
            return follow_events(
                long_entry=oversold,
                long_exit=overbought,
                short_entry=overbought,
                short_exit=oversold,
            )
        return follow_events(long_entry=oversold, long_exit=overbought)
