"""The strategy API: one strategy, three hosts (vectorised backtest, event backtest, live).

A strategy is a :class:`Strategy` subclass with a typed, frozen parameter
dataclass (:class:`tradepulse.strategy.params.Params`). The hosts drive it the
same way:

1. ``strategy = StrategyClass()`` (no arguments; the instance holds run state only);
2. ``arrays = strategy.indicators(bars, params)``: every indicator the strategy
   reads, computed once over the bars the host has (for a backtest, all of them).
   Each array is causal (its value at bar t uses bars <= t only);
3. event form: ``initialize(ctx)``, then ``handle_tick(ctx, bar)`` once per bar in
   time order, then ``finalize(ctx)``. The context exposes the indicator arrays
   only up to the current bar (:meth:`StrategyContext.indicator`), so a strategy
   cannot read bar t+1;
4. vectorised form (optional, for sweeps): ``signals(bars, params)`` returns the
   target position of every bar at once; ``signals_many(bars, params_list)``
   does so for many parameter sets (override it to share indicators).

Signal conventions (both forms):

- A decision is taken on bar t's **close** and fills at bar t+1's **open** (plus
  any modelled latency). The host does the shift; a strategy never shifts its
  own targets.
- A target position is a signed fraction of equity: ``+1`` all-in long, ``-1``
  all-in short, ``0`` flat. The host trades only when the target changes; an
  unchanged target holds the units bought (no daily rebalancing). The event
  form therefore calls :meth:`StrategyContext.order_target_percent` exactly on
  the bars where the vectorised target changes.
- Before a strategy's indicators have warmed up (NaN) its target is 0.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, NamedTuple, Protocol

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.errors import TradePulseError

__all__ = [
    "STRATEGY_API_VERSION",
    "Bar",
    "OrderId",
    "OrderTypeName",
    "Strategy",
    "StrategyContext",
    "StrategyError",
    "TimeInForceName",
    "validate_signals",
]

#: The strategy-API version this TradePulse implements ("MAJOR.MINOR"). A plugin
#: declares the version it was written for in ``Strategy.api_version``; the loader
#: accepts the same major version with a minor version <= ours.
STRATEGY_API_VERSION = "1.0"

#: Identifier of an order placed through a :class:`StrategyContext`.
OrderId = str

#: Order types a strategy may request.
OrderTypeName = Literal["market", "limit", "stop", "stop_limit"]

#: Times in force a strategy may request: good till cancelled, immediate or
#: cancel, fill or kill, day.
TimeInForceName = Literal["gtc", "ioc", "fok", "day"]

if TYPE_CHECKING:
    # typing_extensions' TypeVar understands defaults (PEP 696), so a bare
    # ``Strategy`` or ``StrategyContext`` means ``...[Any]`` under mypy --strict.
    # Python 3.11's TypeVar has no ``default``; at run time it is not needed.
    from typing_extensions import TypeVar

    P = TypeVar("P", default=Any)
    P_co = TypeVar("P_co", covariant=True, default=Any)
else:
    from typing import TypeVar

    P = TypeVar("P")
    P_co = TypeVar("P_co", covariant=True)

_NS_PER_SECOND = 1_000_000_000


class StrategyError(TradePulseError):
    """A strategy or strategy plugin cannot be loaded or misbehaved."""


class Bar(NamedTuple):
    """One OHLCV bar as the event form sees it.

    ``ts`` is the bar's timestamp in integer nanoseconds since the Unix epoch,
    UTC (the ``ts`` column of the bar contract); prices are in quote currency,
    ``volume`` in units of the instrument. A named tuple keeps construction cheap
    on the event engine's hot path.
    """

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float

    @property
    def timestamp(self) -> datetime:
        """Return ``ts`` as a timezone-aware UTC datetime (microsecond precision)."""
        seconds, nanoseconds = divmod(self.ts, _NS_PER_SECOND)
        return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=nanoseconds // 1000)


class StrategyContext(Protocol[P_co]):
    """What ``handle_tick`` sees: parameters, indicators so far, portfolio, orders.

    The event backtester and the live runner implement this protocol. Order
    methods take keyword arguments only. Quantities are in units of the
    instrument (positive; :meth:`buy` and :meth:`sell` give the side), prices in
    quote currency.
    """

    @property
    def params(self) -> P_co:
        """Return the strategy's validated parameters."""
        ...

    @property
    def bar_index(self) -> int:
        """Return the 0-based index of the current bar."""
        ...

    @property
    def position(self) -> float:
        """Return the current position in signed units (negative = short)."""
        ...

    @property
    def cash(self) -> float:
        """Return the cash balance in quote currency."""
        ...

    @property
    def equity(self) -> float:
        """Return cash plus positions marked at the current close, in quote currency."""
        ...

    def indicator(self, name: str, ago: int = 0) -> float:
        """Return indicator ``name`` at bar ``bar_index - ago`` (NaN before the first bar).

        ``name`` is a key of the mapping :meth:`Strategy.indicators` returned.
        There is no way to read a later bar.

        Raises:
            StrategyError: ``name`` is unknown or ``ago`` is negative.
        """
        ...

    def order_target_percent(self, *, percent: float) -> OrderId | None:
        """Trade (market order) so the position becomes ``percent`` of equity.

        ``percent`` is a signed fraction: ``1.0`` all-in long, ``-1.0`` all-in
        short, ``0.0`` flat. Return the order id, or ``None`` when nothing needs
        trading.
        """
        ...

    def buy(
        self,
        *,
        quantity: float,
        order_type: OrderTypeName = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForceName = "gtc",
    ) -> OrderId:
        """Submit a buy order for ``quantity`` units and return its id."""
        ...

    def sell(
        self,
        *,
        quantity: float,
        order_type: OrderTypeName = "market",
        limit_price: float | None = None,
        stop_price: float | None = None,
        time_in_force: TimeInForceName = "gtc",
    ) -> OrderId:
        """Submit a sell order for ``quantity`` units and return its id."""
        ...

    def cancel(self, order_id: OrderId) -> None:
        """Request cancellation of the open order ``order_id``."""
        ...


class Strategy(ABC, Generic[P]):
    """Base class of every strategy (built-in or plugin).

    A subclass sets three class attributes: ``name`` (the entry-point name,
    lowercase), ``api_version`` (the :data:`STRATEGY_API_VERSION` it was written
    for; deliberately not inherited from here, so the loader can tell which
    version a plugin targets) and ``params_type`` (its frozen
    :class:`~tradepulse.strategy.params.Params` dataclass). It implements
    :meth:`handle_tick` and, optionally, :meth:`signals`; where both exist they
    must give the same decisions.
    """

    name: ClassVar[str]
    api_version: ClassVar[str]
    params_type: type[P]

    def indicators(self, bars: pl.DataFrame, params: P) -> Mapping[str, NDArray[np.float64]]:
        """Return every indicator the event form reads, one float64 array per name.

        Each array has one value per bar of ``bars`` and is causal: its value at
        bar t depends on bars <= t only (NaN during warm-up). The default has none.
        """
        return {}

    def initialize(self, ctx: StrategyContext[P]) -> None:
        """Reset run state before the first bar (the default does nothing)."""

    @abstractmethod
    def handle_tick(self, ctx: StrategyContext[P], bar: Bar) -> None:
        """Decide on ``bar``'s close; orders placed here fill from the next bar on."""

    def finalize(self, ctx: StrategyContext[P]) -> None:
        """Clean up after the last bar (the default does nothing)."""

    def signals(self, bars: pl.DataFrame, params: P) -> NDArray[np.float64]:
        """Return the target position of every bar, decided on that bar's close.

        The result is a float64 array with one signed fraction of equity per bar
        (``+1`` all-in long, ``-1`` all-in short, ``0`` flat; ``0`` during
        warm-up). The host fills a change at the next bar's open: never shift it
        here. Strategies without a vectorised form leave this undefined.

        Raises:
            NotImplementedError: the strategy has no vectorised form.
        """
        raise NotImplementedError(f"strategy {self.name!r} has no vectorised signals() form")

    def signals_many(
        self, bars: pl.DataFrame, params_list: Sequence[P]
    ) -> Iterator[tuple[int, NDArray[np.float64]]]:
        """Yield ``(position, targets)`` for every parameter set of ``params_list``.

        ``targets`` is what :meth:`signals` returns for ``params_list[position]``;
        every position is yielded exactly once, in any order. Sweeps call this
        with a batch of parameter sets; override it to share indicators between
        them (the default calls :meth:`signals` once per set); yield lazily and
        drop an indicator once no remaining set needs it, so memory stays small.

        Raises:
            NotImplementedError: the strategy has no vectorised form.
        """
        for position, params in enumerate(params_list):
            yield position, self.signals(bars, params)

    @property
    def has_signals(self) -> bool:
        """Return whether the strategy implements the vectorised :meth:`signals` form."""
        return type(self).signals is not Strategy.signals


def validate_signals(targets: object, *, length: int, strategy: str) -> NDArray[np.float64]:
    """Return ``targets`` as a 1-D float64 array after checking a ``signals()`` result.

    ``length`` is the number of bars; ``strategy`` names the strategy in errors.

    Raises:
        StrategyError: ``targets`` is not a 1-D numeric array of ``length``
            finite values.
    """
    if not isinstance(targets, np.ndarray):
        raise StrategyError(
            f"strategy {strategy!r}: signals() must return a numpy array, "
            f"got {type(targets).__name__}"
        )
    if targets.ndim != 1 or targets.shape[0] != length:
        raise StrategyError(
            f"strategy {strategy!r}: signals() must return one value per bar "
            f"(shape ({length},)), got shape {targets.shape}"
        )
    if targets.dtype.kind not in "biuf":
        raise StrategyError(
            f"strategy {strategy!r}: signals() must return numbers, got dtype {targets.dtype}"
        )
    result = targets.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(result))
    if bad.size:
        first = int(bad[0])
        raise StrategyError(
            f"strategy {strategy!r}: signals() returned a non-finite target "
            f"{float(result[first])!r} at bar {first} (use 0 during warm-up)"
        )
    return result
