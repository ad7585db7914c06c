"""``sma_cross``: trade the strict cross of a fast and a slow simple moving average.

Rules, decided on each bar's close (filled by the host at the next bar's open):

- enter long when the fast SMA crosses strictly above the slow one:
  ``fast[t-1] < slow[t-1]`` and ``fast[t] > slow[t]``;
- on the opposite strict cross (``fast[t-1] > slow[t-1]`` and ``fast[t] < slow[t]``)
  go flat (``direction="long"``) or reverse to all-in short
  (``direction="long_short"``);
- an up-cross in long_short reverses the short to long.

Touching (``fast == slow``) is not a cross, so a move through equality over two
bars is not a cross either. The target stays 0 until the first cross (being
above when the averages warm up is not an entry), as in backtesting.py's
``crossover``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.indicators.classic import sma
from tradepulse.strategy.api import Bar, Strategy, StrategyContext
from tradepulse.strategy.builtins._common import next_target, price_column
from tradepulse.strategy.params import ParameterError, Params, param

__all__ = ["SmaCross", "SmaCrossParams"]


@numba.njit(cache=True)
def _cross_targets_kernel(fast, slow, long_short, out):  # type: ignore[no-untyped-def]
    # cross_above/cross_below folded by follow_events in one pass, starting flat:
    # an up-cross goes long (and reverses a short); a down-cross goes short when
    # long_short, else flattens a long. NaN compares false, so warm-up never crosses.
    state = 0.0
    n = out.shape[0]
    if n == 0:
        return
    was_below = fast[0] < slow[0]
    was_above = fast[0] > slow[0]
    out[0] = state
    for t in range(1, n):
        below = fast[t] < slow[t]
        above = fast[t] > slow[t]
        if was_below and above:
            state = 1.0
        elif was_above and below:
            if long_short:
                state = -1.0
            elif state > 0.0:
                state = 0.0
        out[t] = state
        was_below = below
        was_above = above


def _cross_targets(
    fast: NDArray[np.float64], slow: NDArray[np.float64], *, long_short: bool
) -> NDArray[np.float64]:
    """Return the target of every bar from the strict crosses of ``fast`` and ``slow``."""
    out = np.empty(fast.shape[0], dtype=np.float64)
    _cross_targets_kernel(
        np.ascontiguousarray(fast, dtype=np.float64),
        np.ascontiguousarray(slow, dtype=np.float64),
        long_short,
        out,
    )
    return out


@dataclass(frozen=True, slots=True)
class SmaCrossParams(Params):
    """Parameters of :class:`SmaCross` (periods in bars)."""

    fast: int = param(10, low=1, high=500, step=1, description="Fast SMA period (bars).")
    slow: int = param(30, low=2, high=1000, step=1, description="Slow SMA period (bars).")
    direction: Literal["long", "long_short"] = param(
        "long", description="long: flat on the down-cross; long_short: reverse to short."
    )

    def check(self) -> None:
        """Require ``fast < slow``.

        Raises:
            ParameterError: ``fast >= slow``.
        """
        if self.fast >= self.slow:
            raise ParameterError("fast", self.fast, f"must be < slow ({self.slow})")


class SmaCross(Strategy[SmaCrossParams]):
    """Long (or long/short) on strict crosses of a fast and a slow SMA of the close."""

    name = "sma_cross"
    api_version = "1.0"
    params_type = SmaCrossParams

    def __init__(self) -> None:
        self._target = 0.0
        self._long_short = False

    def indicators(
        self, bars: pl.DataFrame, params: SmaCrossParams
    ) -> Mapping[str, NDArray[np.float64]]:
        """Return ``fast`` and ``slow``: the SMAs of the close (NaN during warm-up)."""
        close = price_column(bars)
        return {"fast": sma(close, params.fast), "slow": sma(close, params.slow)}

    def initialize(self, ctx: StrategyContext[SmaCrossParams]) -> None:
        """Start flat."""
        self._target = 0.0
        self._long_short = ctx.params.direction == "long_short"

    def handle_tick(self, ctx: StrategyContext[SmaCrossParams], bar: Bar) -> None:
        """Order a new target on a strict cross of the averages."""
        fast = ctx.indicator("fast")
        slow = ctx.indicator("slow")
        fast_before = ctx.indicator("fast", 1)
        slow_before = ctx.indicator("slow", 1)
        up = fast_before < slow_before and fast > slow
        down = fast_before > slow_before and fast < slow
        if not (up or down):
            return
        target = next_target(
            self._target,
            long_entry=up,
            long_exit=down,
            short_entry=down and self._long_short,
            short_exit=up and self._long_short,
        )
        if target != self._target:
            self._target = target
            ctx.order_target_percent(percent=target)

    def signals(self, bars: pl.DataFrame, params: SmaCrossParams) -> NDArray[np.float64]:
        """Return the target of every bar (see the module docstring for the rules)."""
        close = price_column(bars)
        return _cross_targets(
            sma(close, params.fast),
            sma(close, params.slow),
            long_short=params.direction == "long_short",
        )

    def signals_many(
        self, bars: pl.DataFrame, params_list: Sequence[SmaCrossParams]
    ) -> Iterator[tuple[int, NDArray[np.float64]]]:
        """Yield ``(position, targets)`` per parameter set, computing each SMA window once.

        Same targets as :meth:`signals`, bit for bit. The sets are visited
        grouped by the parameter with more distinct values, and an average is
        dropped after its last use, so at most about as many averages as the
        other parameter has distinct values are alive at once.
        """
        close = price_column(bars)
        uses: Counter[int] = Counter()
        for params in params_list:
            uses[params.fast] += 1
            uses[params.slow] += 1
        fast_first = len({p.fast for p in params_list}) > len({p.slow for p in params_list})
        order = sorted(
            range(len(params_list)),
            key=lambda i: (
                (params_list[i].fast, params_list[i].slow)
                if fast_first
                else (params_list[i].slow, params_list[i].fast)
            ),
        )
        averages: dict[int, NDArray[np.float64]] = {}
        for position in order:
            params = params_list[position]
            for window in (params.fast, params.slow):
                if window not in averages:
                    averages[window] = sma(close, window)
            targets = _cross_targets(
                averages[params.fast],
                averages[params.slow],
                long_short=params.direction == "long_short",
            )
            for window in (params.fast, params.slow):
                uses[window] -= 1
                if uses[window] == 0:
                    del averages[window]
            yield position, targets
