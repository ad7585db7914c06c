"""``momentum``: hold the direction of the trailing return.

Rules, decided on each bar's close (TradePulse fills at the next bar's open):
with ``roc[t] = close[t] / close[t - lookback] - 1``,

- target +1 (all-in long) while ``roc[t] > threshold``;
- with ``direction="long_short"``, target -1 while ``roc[t] < -threshold``;
- target 0 otherwise, and for the first ``lookback`` bars (warm-up).

Only the public strategy API of ``tradepulse.strategy`` is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.strategy import Bar, Params, Strategy, StrategyContext, param

__all__ = ["Momentum", "MomentumParams"]


@dataclass(frozen=True, slots=True)
class MomentumParams(Params):
    """Parameters of :class:`Momentum`."""

    lookback: int = param(20, low=1, high=500, step=1, description="Return lookback (bars).")
    threshold: float = param(
        0.0, low=0.0, high=0.5, step=0.01, description="Minimum |return| to hold a position."
    )
    direction: Literal["long", "long_short"] = param(
        "long", description="long: flat on weak or negative momentum; long_short: also short."
    )


class Momentum(Strategy[MomentumParams]):
    """Time-series momentum: long while the trailing return beats a threshold."""

    name = "momentum"
    api_version = "1.0"
    params_type = MomentumParams

    def __init__(self) -> None:
        self._target = 0.0

    def indicators(
        self, bars: pl.DataFrame, params: MomentumParams
    ) -> Mapping[str, NDArray[np.float64]]:
        """Return ``roc``: the ``lookback``-bar return of the close (NaN during warm-up)."""
        close = bars.get_column("close").to_numpy().astype(np.float64)
        roc = np.full(close.shape[0], np.nan)
        lag = params.lookback
        if close.shape[0] > lag:
            roc[lag:] = close[lag:] / close[:-lag] - 1.0
        return {"roc": roc}

    def initialize(self, ctx: StrategyContext[MomentumParams]) -> None:
        """Start flat."""
        self._target = 0.0

    def handle_tick(self, ctx: StrategyContext[MomentumParams], bar: Bar) -> None:
        """Order a new target when the momentum regime changes."""
        roc = ctx.indicator("roc")
        params = ctx.params
        target = 0.0
        if roc > params.threshold:
            target = 1.0
        elif params.direction == "long_short" and roc < -params.threshold:
            target = -1.0
        if target != self._target:
            self._target = target
            ctx.order_target_percent(percent=target)

    def signals(self, bars: pl.DataFrame, params: MomentumParams) -> NDArray[np.float64]:
        """Return the target of every bar (see the module docstring)."""
        roc = self.indicators(bars, params)["roc"]
        target = np.where(roc > params.threshold, 1.0, 0.0)
        if params.direction == "long_short":
            target = np.where(roc < -params.threshold, -1.0, target)
        return target
