"""Test-only strategies and bar builders for the event-driven engine's tests.

- :class:`Scripted` runs a callable on chosen bars' closes and records what the
  context showed on every bar (hand-made scenarios);
- :class:`TargetFollower` orders the target read from an indicator on every bar
  (the event form of an arbitrary ``signals()`` array, for parity and properties);
- :class:`OrderPlan` places a planned set of explicit orders priced off the
  current close (random order flow for the property tests).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest.event import EventContext
from tradepulse.strategy.api import Bar, OrderTypeName, Strategy, StrategyContext, TimeInForceName
from tradepulse.strategy.params import Params

__all__ = [
    "CASH",
    "NoParams",
    "OrderPlan",
    "PlannedOrder",
    "Scripted",
    "Snapshot",
    "TargetFollower",
    "ohlcv",
]

CASH = 10_000.0
_START = datetime(2024, 1, 1, tzinfo=UTC)


def ohlcv(
    rows: Sequence[tuple[float, ...]],
    *,
    step: timedelta = timedelta(days=1),
    volume: float = 1_000.0,
) -> pl.DataFrame:
    """Bars from ``(open, high, low, close[, volume])`` rows, stamped ``step`` apart from 2024."""
    columns: dict[str, list[float]] = {name: [] for name in ("open", "high", "low", "close")}
    volumes = []
    for row in rows:
        for name, value in zip(("open", "high", "low", "close"), row[:4], strict=True):
            columns[name].append(float(value))
        volumes.append(float(row[4]) if len(row) > 4 else volume)
    return pl.DataFrame(
        {
            "ts": pl.Series([_START + i * step for i in range(len(rows))]).cast(
                pl.Datetime("ns", "UTC")
            ),
            **columns,
            "volume": volumes,
        }
    )


@dataclass(frozen=True, slots=True)
class NoParams(Params):
    """No parameters."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the context showed on one bar, before the strategy acted on it."""

    bar_index: int
    position: float
    cash: float
    equity: float
    open_orders: tuple[str, ...]


Action = Callable[[EventContext], object]


class Scripted(Strategy[NoParams]):
    """Run ``script[bar_index](ctx)`` on each scripted bar; record every bar's context.

    ``returned[bar_index]`` keeps what the action returned (order ids);
    ``lines`` are the indicator arrays (cut to the bars the host gives).
    """

    name = "scripted"
    api_version = "1.0"
    params_type = NoParams

    def __init__(
        self,
        script: Mapping[int, Action] | None = None,
        *,
        lines: Mapping[str, NDArray[np.float64]] | None = None,
        on_initialize: Action | None = None,
    ) -> None:
        self.script = dict(script or {})
        self.lines = dict(lines or {})
        self.on_initialize = on_initialize
        self.returned: dict[int, object] = {}
        self.seen: list[Snapshot] = []
        self.finalized = False

    def indicators(self, bars: pl.DataFrame, params: NoParams) -> Mapping[str, NDArray[np.float64]]:
        """Return the given lines, cut to the bars' length."""
        return {name: values[: bars.height] for name, values in self.lines.items()}

    def initialize(self, ctx: StrategyContext[NoParams]) -> None:
        """Reset the records; run ``on_initialize``."""
        self.returned = {}
        self.seen = []
        self.finalized = False
        if self.on_initialize is not None:
            assert isinstance(ctx, EventContext)
            self.on_initialize(ctx)

    def handle_tick(self, ctx: StrategyContext[NoParams], bar: Bar) -> None:
        """Record the context, then run the bar's action if any."""
        assert isinstance(ctx, EventContext)
        self.seen.append(
            Snapshot(ctx.bar_index, ctx.position, ctx.cash, ctx.equity, ctx.open_orders)
        )
        action = self.script.get(ctx.bar_index)
        if action is not None:
            self.returned[ctx.bar_index] = action(ctx)

    def finalize(self, ctx: StrategyContext[NoParams]) -> None:
        """Note that the run finished."""
        self.finalized = True


class TargetFollower(Strategy[NoParams]):
    """Order ``targets[t]`` on every bar's close, read through ``ctx.indicator``.

    The host trades only changes, so this is the event form of ``signals() == targets``.
    """

    name = "target_follower"
    api_version = "1.0"
    params_type = NoParams

    def __init__(self, targets: NDArray[np.float64]) -> None:
        self.targets = np.asarray(targets, dtype=np.float64)

    def indicators(self, bars: pl.DataFrame, params: NoParams) -> Mapping[str, NDArray[np.float64]]:
        """Return ``target``: the targets of the bars given."""
        return {"target": self.targets[: bars.height]}

    def handle_tick(self, ctx: StrategyContext[NoParams], bar: Bar) -> None:
        """Ask for the bar's target (the host ignores an unchanged one)."""
        ctx.order_target_percent(percent=ctx.indicator("target"))

    def signals(self, bars: pl.DataFrame, params: NoParams) -> NDArray[np.float64]:
        """Return the targets of the bars given."""
        return self.targets[: bars.height].copy()


@dataclass(frozen=True, slots=True)
class PlannedOrder:
    """An explicit order placed on bar ``bar``'s close, priced off that close.

    ``limit_offset`` / ``stop_offset`` are fractions of the close (the limit is
    ``close * (1 + limit_offset)``); a plan may also cancel or replace an
    earlier planned order (``cancel_after`` / ``replace_after`` bars later).
    """

    bar: int
    buy: bool
    quantity: float
    order_type: OrderTypeName = "market"
    time_in_force: TimeInForceName = "gtc"
    limit_offset: float = 0.0
    stop_offset: float = 0.0
    cancel_after: int | None = None
    replace_after: int | None = None


class OrderPlan(Strategy[NoParams]):
    """Place the planned orders (explicit orders only); cancel or replace some later.

    Decisions use the current bar's close and the ``momentum`` indicator (close
    minus the previous close), so the strategy reads only the past. ``ids``
    maps a planned order's index to its current order id.
    """

    name = "order_plan"
    api_version = "1.0"
    params_type = NoParams

    def __init__(self, plan: Sequence[PlannedOrder]) -> None:
        self.plan = tuple(plan)
        self.ids: dict[int, str] = {}

    def indicators(self, bars: pl.DataFrame, params: NoParams) -> Mapping[str, NDArray[np.float64]]:
        """Return ``momentum``: close minus the previous close (NaN on the first bar)."""
        close = bars.get_column("close").to_numpy().astype(np.float64)
        momentum = np.full(close.shape[0], np.nan)
        momentum[1:] = close[1:] - close[:-1]
        return {"momentum": momentum}

    def initialize(self, ctx: StrategyContext[NoParams]) -> None:
        """Forget the ids of an earlier run."""
        self.ids = {}

    def handle_tick(self, ctx: StrategyContext[NoParams], bar: Bar) -> None:
        """Place, cancel and replace what the plan says for this bar."""
        assert isinstance(ctx, EventContext)
        index = ctx.bar_index
        close = bar.close
        # A causal tweak: on a falling bar, limits are placed a little lower.
        shade = 0.999 if ctx.indicator("momentum") < 0 else 1.0
        open_now = set(ctx.open_orders)
        for number, planned in enumerate(self.plan):
            if planned.bar == index:
                limit = None
                stop = None
                if planned.order_type in ("limit", "stop_limit"):
                    limit = round(close * (1.0 + planned.limit_offset) * shade, 4)
                if planned.order_type in ("stop", "stop_limit"):
                    stop = round(close * (1.0 + planned.stop_offset), 4)
                place = ctx.buy if planned.buy else ctx.sell
                self.ids[number] = place(
                    quantity=planned.quantity,
                    order_type=planned.order_type,
                    limit_price=limit,
                    stop_price=stop,
                    time_in_force=planned.time_in_force,
                )
            order_id = self.ids.get(number)
            if order_id is None or order_id not in open_now:
                continue
            if planned.cancel_after is not None and index == planned.bar + planned.cancel_after:
                ctx.cancel(order_id)
            elif (
                planned.replace_after is not None
                and index == planned.bar + planned.replace_after
                and planned.order_type == "limit"
            ):
                self.ids[number] = ctx.replace(order_id, limit_price=round(close, 4))
