"""The vectorised backtest engine: target positions in, fills, equity and metrics out.

A strategy's vectorised form gives one target per bar, a signed fraction of equity
decided on that bar's close (+1 all-in long, -1 all-in short, 0 flat). A compiled
kernel walks the bars once: the target decided on bar t's close is traded at bar
``t + 1 + latency_bars``'s open, and only when it differs from the target already
in force (an unchanged target keeps the units held; equity is never re-levered).
Moving to a target takes at most two fills at that open (see
:mod:`tradepulse.costs.sizing`): closing a position on the other side, then
opening or adjusting one on the target's side. Equity is marked at every close.
Conventions in full: ``docs/backtesting.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Final

import numba
import numpy as np
import polars as pl
from numpy.typing import ArrayLike, NDArray

from tradepulse.costs import _kernels
from tradepulse.costs.commission import CommissionModel, CommissionTerms, combine_commissions
from tradepulse.costs.sizing import Sizing, check_sizing
from tradepulse.costs.slippage import SlippageModel, SlippageTerms, combine_slippage
from tradepulse.errors import ConfigError
from tradepulse.metrics import Metrics, compute_metrics

__all__ = [
    "DEFAULT_CASH",
    "FILL_COLUMNS",
    "FILL_SIDE",
    "TRADE_COLUMNS",
    "TRADE_SIDE",
    "BacktestResult",
    "VectorisedRun",
    "prepare_vectorised",
    "run_vectorised",
]

#: Default starting cash, in quote currency.
DEFAULT_CASH: Final = 10_000.0
#: Columns of `BacktestResult.trades`, in order.
TRADE_COLUMNS: Final = (
    "entry_bar",
    "exit_bar",
    "entry_ts",
    "exit_ts",
    "side",
    "quantity",
    "entry_price",
    "exit_price",
    "pnl",
    "return",
    "commission",
    "is_open",
)
#: Columns of `BacktestResult.fills`, in order.
FILL_COLUMNS: Final = (
    "bar",
    "ts",
    "side",
    "quantity",
    "price",
    "commission",
    "trade",
    "position",
    "cash",
)

#: dtype of the ``side`` column of `BacktestResult.trades`.
TRADE_SIDE: Final = pl.Enum(["long", "short"])
#: dtype of the ``side`` column of `BacktestResult.fills`.
FILL_SIDE: Final = pl.Enum(["buy", "sell"])

_TS_DTYPE: Final = pl.Datetime("ns", "UTC")

# Columns of the kernel's fill records.
_F_BAR, _F_SIDE, _F_QUANTITY, _F_PRICE, _F_COMMISSION, _F_TRADE, _F_POSITION, _F_CASH = range(8)
_FILL_FIELDS: Final = 8
# Columns of the kernel's trade records.
(
    _T_ENTRY_BAR,
    _T_EXIT_BAR,
    _T_SIDE,
    _T_QUANTITY,
    _T_ENTRY_UNITS,
    _T_ENTRY_NOTIONAL,
    _T_EXIT_UNITS,
    _T_EXIT_NOTIONAL,
    _T_PNL,
    _T_COMMISSION,
    _T_OPEN,
) = range(11)
_TRADE_FIELDS: Final = 11


# ------------------------------------------------------------------------------ kernels


@numba.njit(cache=True)
def _count_invalid(values, low, high, strict):  # type: ignore[no-untyped-def]
    """Number of ``values`` outside ``(low, high)`` (``strict``) or ``[low, high]``; NaN counts.

    Branch-free, so the loop vectorises; `_check_series` then finds the culprit.
    """
    bad = 0
    if strict:
        for index in range(values.shape[0]):
            value = values[index]
            bad += not ((value > low) & (value < high))
    else:
        for index in range(values.shape[0]):
            value = values[index]
            bad += not ((value >= low) & (value <= high))
    return bad


@numba.njit(cache=True, inline="always")
def _apply_fill(  # type: ignore[no-untyped-def]
    bar,
    quantity,
    price,
    volume,
    cash,
    position,
    open_trade,
    trade_count,
    fill_count,
    fills,
    trades,
    rate,
    per_unit,
    per_fill,
    half_spread,
    slippage,
    impact,
):
    """Execute one market fill of ``quantity`` units and book it; return the new state."""
    side = 1.0 if quantity > 0.0 else -1.0
    size = abs(quantity)
    fill_price = _kernels.execution_price(price, side, size, volume, half_spread, slippage, impact)
    fee = _kernels.commission(quantity, fill_price, rate, per_unit, per_fill)
    cash = cash - quantity * fill_price - fee
    # Index the 2-D records directly: row views cost reference counting per fill.
    if position == 0.0:
        open_trade = trade_count
        trade_count += 1
        for field in range(_TRADE_FIELDS):
            trades[field, open_trade] = 0.0
        trades[_T_ENTRY_BAR, open_trade] = bar
        trades[_T_SIDE, open_trade] = side
        trades[_T_OPEN, open_trade] = 1.0
    if side == trades[_T_SIDE, open_trade]:
        trades[_T_ENTRY_UNITS, open_trade] += size
        trades[_T_ENTRY_NOTIONAL, open_trade] += size * fill_price
    else:
        trades[_T_EXIT_UNITS, open_trade] += size
        trades[_T_EXIT_NOTIONAL, open_trade] += size * fill_price
    trades[_T_PNL, open_trade] += -quantity * fill_price - fee
    trades[_T_COMMISSION, open_trade] += fee
    position = position + quantity
    if abs(position) > trades[_T_QUANTITY, open_trade]:
        trades[_T_QUANTITY, open_trade] = abs(position)
    fills[_F_BAR, fill_count] = bar
    fills[_F_SIDE, fill_count] = side
    fills[_F_QUANTITY, fill_count] = size
    fills[_F_PRICE, fill_count] = fill_price
    fills[_F_COMMISSION, fill_count] = fee
    fills[_F_TRADE, fill_count] = open_trade
    fills[_F_POSITION, fill_count] = position
    fills[_F_CASH, fill_count] = cash
    fill_count += 1
    if position == 0.0:
        trades[_T_EXIT_BAR, open_trade] = bar
        trades[_T_OPEN, open_trade] = 0.0
        open_trade = -1
    return cash, position, open_trade, trade_count, fill_count


@numba.njit(cache=True)
def _target_changes(targets, decisions):  # type: ignore[no-untyped-def]
    """Indices ``d < decisions`` where ``targets[d]`` differs from the one before (0 before 0).

    Both passes are branch-free (the first vectorises; the second writes every
    index and advances only past changes), so mispredictions cost nothing.
    """
    if decisions <= 0:
        return np.empty(0, dtype=np.int64)
    count = 1 if targets[0] != 0.0 else 0
    for index in range(1, decisions):
        count += targets[index] != targets[index - 1]
    changes = np.empty(count + 1, dtype=np.int64)
    changes[0] = 0
    found = 1 if targets[0] != 0.0 else 0
    for index in range(1, decisions):
        changes[found] = index
        found += targets[index] != targets[index - 1]
    return changes[:count]


@numba.njit(cache=True)
def _mark(equity, close, start, stop, cash, position):  # type: ignore[no-untyped-def]
    """Mark ``equity[start:stop]`` at the closes.

    Unsigned indices spare numba's negative-index wraparound, so LLVM vectorises
    the loop (several times faster than signed indices or slices here).
    """
    for bar in range(numba.uint64(start), numba.uint64(stop)):
        equity[bar] = cash + position * close[bar]


@numba.njit(cache=True)
def _simulate(  # type: ignore[no-untyped-def]  # numba kernel; typed wrapper below
    open_,
    close,
    volume,
    targets,
    latency,
    initial_cash,
    rate,
    per_unit,
    per_fill,
    half_spread,
    slippage,
    impact,
    whole,
):
    """Fill at the open of every bar where the target in force changes; mark every close.

    Only the bars where the target changes are visited one by one; between them
    the position and cash are constant, so equity is marked segment by segment.
    Returns the equity per bar, the fill and trade records, the number of bars
    that close with a position, and the first fill bar whose open (code 1) or
    volume (code 2) is invalid (-1, 0 when none is).
    """
    count = open_.shape[0]
    changes = _target_changes(targets, count - 1 - latency)
    # Field-major records: each column of the result tables is contiguous, so
    # nothing is transposed afterwards (each field is written as a stream).
    fills = np.empty((_FILL_FIELDS, 2 * changes.shape[0]))
    trades = np.empty((_TRADE_FIELDS, changes.shape[0]))
    equity = np.empty(count)
    cash = initial_cash
    position = 0.0
    open_trade = -1
    trade_count = 0
    fill_count = 0
    in_market = 0
    marked = 0
    # Gather the fill bars' prices and volumes first: independent loads overlap
    # their cache misses, which the long dependent chain of the fill loop cannot.
    fill_open = np.empty(changes.shape[0])
    fill_volume = np.empty(changes.shape[0])
    wanted = np.empty(changes.shape[0])
    for step in range(changes.shape[0]):
        bar = changes[step] + 1 + latency
        fill_open[step] = open_[bar]
        fill_volume[step] = volume[bar]
        wanted[step] = targets[changes[step]]
        # Opens and volumes are only used here: check them where they are used.
        if not (open_[bar] > 0.0 and open_[bar] < math.inf):
            return equity, fills[:, :0], trades[:, :0], 0, bar, 1
        if not (volume[bar] >= 0.0 and volume[bar] < math.inf):
            return equity, fills[:, :0], trades[:, :0], 0, bar, 2
    for step in range(changes.shape[0]):
        bar = changes[step] + 1 + latency
        _mark(equity, close, marked, bar, cash, position)
        if position != 0.0:
            in_market += bar - marked
        marked = bar
        target = wanted[step]
        price = fill_open[step]
        available = fill_volume[step]
        if position != 0.0 and (target == 0.0 or (target > 0.0) != (position > 0.0)):
            # Close a position on the other side first (as _kernels.target_legs).
            cash, position, open_trade, trade_count, fill_count = _apply_fill(
                bar,
                -position,
                price,
                available,
                cash,
                position,
                open_trade,
                trade_count,
                fill_count,
                fills,
                trades,
                rate,
                per_unit,
                per_fill,
                half_spread,
                slippage,
                impact,
            )
        if target != 0.0:
            opening = _kernels.adjust_quantity(
                position,
                cash,
                price,
                available,
                target,
                rate,
                per_unit,
                per_fill,
                half_spread,
                slippage,
                impact,
                whole,
            )
            if opening != 0.0:
                cash, position, open_trade, trade_count, fill_count = _apply_fill(
                    bar,
                    opening,
                    price,
                    available,
                    cash,
                    position,
                    open_trade,
                    trade_count,
                    fill_count,
                    fills,
                    trades,
                    rate,
                    per_unit,
                    per_fill,
                    half_spread,
                    slippage,
                    impact,
                )
    _mark(equity, close, marked, count, cash, position)
    if position != 0.0:
        in_market += count - marked
    if open_trade >= 0:
        # Still open: marked to the last close, no exit commission.
        last = close[count - 1]
        trades[_T_EXIT_BAR, open_trade] = count - 1
        trades[_T_EXIT_UNITS, open_trade] += abs(position)
        trades[_T_EXIT_NOTIONAL, open_trade] += abs(position) * last
        trades[_T_PNL, open_trade] += position * last
    return equity, fills[:, :fill_count], trades[:, :trade_count], in_market, -1, 0


# ------------------------------------------------------------------------------ results


class BacktestResult:
    """What a backtest produced (both engines return one).

    ``ts`` (integer nanoseconds, UTC) and ``equity`` (cash plus the position
    marked at the bar's close, quote currency) hold one read-only value per bar;
    `position` and `cash` are derived from the fills on access. ``trades``
    (columns `TRADE_COLUMNS`) has one row per trade opened: entry/exit bar and
    timestamp, side ``long``/``short``, the largest absolute quantity held,
    average entry and exit fill prices, net P&L (quote currency), return (P&L /
    entry notional) and commission paid; a trade still open at the end is marked
    to the last close (its exit) and has ``is_open``. ``fills`` (columns
    `FILL_COLUMNS`) has one row per fill: bar, timestamp, side ``buy``/``sell``,
    quantity (units, > 0), execution price, commission, the index of its trade in
    ``trades``, and the position and cash right after it. ``trades`` and
    ``fills`` are built from the engine's records on first access (a sweep that
    reads only ``metrics`` never pays for them). ``orders`` is the event
    engine's order log (one row per order, with its final status and reason;
    ``None`` for the vectorised engine, which has no orders; a factory passed
    to the constructor builds it on first access). ``metrics``
    summarises the run; ``initial_cash`` is the starting cash.
    """

    __slots__ = (
        "_fill_records",
        "_fills",
        "_orders",
        "_orders_factory",
        "_trade_records",
        "_trades",
        "equity",
        "initial_cash",
        "metrics",
        "ts",
    )

    def __init__(
        self,
        *,
        ts: NDArray[np.int64],
        equity: NDArray[np.float64],
        fill_records: NDArray[np.float64],
        trade_records: NDArray[np.float64],
        metrics: Metrics,
        initial_cash: float,
        orders: pl.DataFrame | Callable[[], pl.DataFrame] | None = None,
    ) -> None:
        self.ts = ts
        self.equity = equity
        self._fill_records = fill_records
        self._trade_records = trade_records
        self._fills: pl.DataFrame | None = None
        self._trades: pl.DataFrame | None = None
        self.metrics = metrics
        self.initial_cash = initial_cash
        self._orders = orders if isinstance(orders, pl.DataFrame) else None
        self._orders_factory = None if isinstance(orders, pl.DataFrame) else orders

    def __repr__(self) -> str:
        return (
            f"BacktestResult(bars={self.ts.shape[0]}, trades={self._trade_records.shape[1]}, "
            f"fills={self._fill_records.shape[1]}, "
            f"final_equity={self.metrics.final_equity!r})"
        )

    @property
    def trades(self) -> pl.DataFrame:
        """One row per trade opened (columns `TRADE_COLUMNS`; built on first access)."""
        if self._trades is None:
            self._trades = _trade_frame(self._trade_records, self.ts)
        return self._trades

    @property
    def orders(self) -> pl.DataFrame | None:
        """The event engine's order log (``None`` for the vectorised engine; built on access)."""
        if self._orders is None and self._orders_factory is not None:
            self._orders = self._orders_factory()
            self._orders_factory = None
        return self._orders

    @property
    def fills(self) -> pl.DataFrame:
        """One row per fill (columns `FILL_COLUMNS`; built on first access)."""
        if self._fills is None:
            self._fills = _fill_frame(self._fill_records, self.ts)
        return self._fills

    def _after_fills(self, field: int, start: float) -> NDArray[np.float64]:
        """Per bar, record ``field`` of the bar's last fill so far (``start`` before any)."""
        records = self._fill_records
        values = np.concatenate(([start], records[field]))
        latest = np.searchsorted(records[_F_BAR], np.arange(self.ts.shape[0]), side="right")
        result: NDArray[np.float64] = values[latest]
        return result

    @property
    def position(self) -> NDArray[np.float64]:
        """Signed units held at each bar's close (computed from the fills on access)."""
        return self._after_fills(_F_POSITION, 0.0)

    @property
    def cash(self) -> NDArray[np.float64]:
        """Cash, in quote currency, at each bar's close (computed from the fills on access)."""
        return self._after_fills(_F_CASH, self.initial_cash)

    def equity_frame(self) -> pl.DataFrame:
        """Return ``ts, equity, position, cash`` per bar as a polars frame."""
        return pl.DataFrame(
            {
                "ts": pl.Series("ts", self.ts).cast(_TS_DTYPE),
                "equity": self.equity,
                "position": self.position,
                "cash": self.cash,
            }
        )


def _labels(codes: NDArray[np.float64], labels: pl.Enum) -> pl.Series:
    """Map +1/-1 codes to the first/second category of ``labels`` (cheaper than strings)."""
    categories = pl.Series(labels.categories, dtype=labels)
    return categories.gather(pl.Series((codes < 0.0).astype(np.uint32)))


def _trade_frame(records: NDArray[np.float64], ts: NDArray[np.int64]) -> pl.DataFrame:
    entry_bar = records[_T_ENTRY_BAR].astype(np.int64)
    exit_bar = records[_T_EXIT_BAR].astype(np.int64)
    entry_notional = records[_T_ENTRY_NOTIONAL]
    pnl = records[_T_PNL]
    return pl.DataFrame(
        {
            "entry_bar": entry_bar,
            "exit_bar": exit_bar,
            "entry_ts": pl.Series(ts[entry_bar]).cast(_TS_DTYPE),
            "exit_ts": pl.Series(ts[exit_bar]).cast(_TS_DTYPE),
            "side": _labels(records[_T_SIDE], TRADE_SIDE),
            "quantity": records[_T_QUANTITY],
            "entry_price": entry_notional / records[_T_ENTRY_UNITS],
            "exit_price": records[_T_EXIT_NOTIONAL] / records[_T_EXIT_UNITS],
            "pnl": pnl,
            "return": pnl / entry_notional,
            "commission": records[_T_COMMISSION],
            "is_open": records[_T_OPEN] > 0.0,
        }
    )


def _fill_frame(records: NDArray[np.float64], ts: NDArray[np.int64]) -> pl.DataFrame:
    bar = records[_F_BAR].astype(np.int64)
    return pl.DataFrame(
        {
            "bar": bar,
            "ts": pl.Series(ts[bar]).cast(_TS_DTYPE),
            "side": _labels(records[_F_SIDE], FILL_SIDE),
            "quantity": records[_F_QUANTITY],
            "price": records[_F_PRICE],
            "commission": records[_F_COMMISSION],
            "trade": records[_F_TRADE].astype(np.int64),
            "position": records[_F_POSITION],
            "cash": records[_F_CASH],
        }
    )


def _column(bars: pl.DataFrame, name: str) -> NDArray[np.float64]:
    if name not in bars.columns:
        raise ConfigError(f"bars must have a {name!r} column; got columns {bars.columns}")
    series = bars.get_column(name)
    if not series.dtype.is_numeric():
        raise ConfigError(f"bars column {name!r} must be numeric; got {series.dtype}")
    if series.null_count():
        raise ConfigError(f"bars column {name!r} has {series.null_count()} null value(s)")
    return np.ascontiguousarray(series.to_numpy(), dtype=np.float64)


def _timestamps(bars: pl.DataFrame) -> NDArray[np.int64]:
    if "ts" not in bars.columns:
        raise ConfigError(f"bars must have a 'ts' column; got columns {bars.columns}")
    series = bars.get_column("ts")
    if not isinstance(series.dtype, pl.Datetime):
        raise ConfigError(f"bars column 'ts' must be a datetime; got {series.dtype}")
    if series.null_count():
        raise ConfigError(f"bars column 'ts' has {series.null_count()} null value(s)")
    if series.dtype.time_unit != "ns":
        series = series.cast(pl.Datetime("ns", series.dtype.time_zone))
    stamps: NDArray[np.int64] = np.ascontiguousarray(series.to_numpy().view(np.int64))
    return stamps


def _check_number(name: str, value: float, *, low: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{name} must be a number; got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > low):
        raise ConfigError(f"{name} must be finite and > {low:g}; got {value!r}")
    return number


def _check_series(
    name: str, values: NDArray[np.float64], low: float, high: float, *, strict: bool
) -> None:
    """Raise naming the first value outside the range (``strict``: open interval)."""
    if _count_invalid(values, low, high, strict):
        inside = (values > low) & (values < high) if strict else (values >= low) & (values <= high)
        index = int(np.argmin(inside))
        bounds = f"({low:g}, {high:g})" if strict else f"[{low:g}, {high:g}]"
        raise ConfigError(
            f"{name}[{index}] = {float(values[index])!r}: must be finite and in {bounds}"
        )


def run_vectorised(
    bars: pl.DataFrame,
    targets: ArrayLike,
    *,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = 0.0,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing = "fractional",
    latency_bars: int = 0,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Backtest one instrument's ``bars`` against per-bar target positions.

    ``targets[t]`` is the position wanted after bar t's close, a signed fraction of
    equity in [-1, 1] (+1 all-in long, -1 all-in short, 0 flat). It is traded at
    the open of bar ``t + 1 + latency_bars`` and only when it differs from the
    target in force, so an unchanged target keeps the units held; targets whose
    fill bar lies beyond the data are never traded. ``cash`` is the starting cash
    (quote currency). ``commission`` is a fraction of traded notional (``0.001`` =
    10 bps), a commission model, several models or ``None``; ``slippage`` one or
    several execution-price models or ``None``. ``sizing`` ``"fractional"`` buys
    ``cash / (price * (1 + fee))`` units when going all-in from flat,
    ``"whole"`` the floor of that (see :mod:`tradepulse.costs.sizing`). A
    reversal is two fills and two trades. A position still open at the end is
    marked to the last close, without an exit commission, and counted in
    ``trades``. ``periods_per_year`` overrides the annualisation derived from
    ``ts`` (see :mod:`tradepulse.metrics`).

    ``bars`` needs ``ts`` (datetime), ``open``, ``close`` and ``volume``; it is
    expected to satisfy the bar contract (``validate_bars``). Only what the run
    uses is checked here: every close finite and > 0, and the open (> 0) and
    volume (>= 0) of every fill bar. No value is NaN in the result: there is no
    warm-up.

    Raises:
        ConfigError: a bars column is missing or invalid, ``bars`` holds several
            symbols, ``targets`` is not one finite value in [-1, 1] per bar, or a
            parameter is invalid (the message names it and its value).
    """
    return prepare_vectorised(
        bars,
        cash=cash,
        commission=commission,
        slippage=slippage,
        sizing=sizing,
        latency_bars=latency_bars,
        periods_per_year=periods_per_year,
    ).run(targets)


def prepare_vectorised(
    bars: pl.DataFrame,
    *,
    cash: float = DEFAULT_CASH,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = 0.0,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    sizing: Sizing = "fractional",
    latency_bars: int = 0,
    periods_per_year: float | None = None,
) -> VectorisedRun:
    """Check ``bars`` and the frictions once for many target series (see `run_vectorised`).

    ``prepare_vectorised(bars, ...).run(targets)`` is ``run_vectorised(bars,
    targets, ...)``, which calls it; a parameter sweep prepares once per batch
    and skips re-reading and re-checking the bars for every combination.

    Raises:
        ConfigError: as `run_vectorised`, for everything but ``targets``.
    """
    if not isinstance(bars, pl.DataFrame):
        raise ConfigError(f"bars must be a polars DataFrame; got {type(bars).__name__}")
    if bars.height == 0:
        raise ConfigError("bars must hold at least one bar; got an empty frame")
    if "symbol" in bars.columns and bars.get_column("symbol").n_unique() > 1:
        raise ConfigError("bars must hold one symbol; backtest each symbol separately")
    initial_cash = _check_number("cash", cash, low=0.0)
    if isinstance(latency_bars, bool) or not isinstance(latency_bars, int | np.integer):
        raise ConfigError(f"latency_bars must be an integer; got {latency_bars!r}")
    if latency_bars < 0:
        raise ConfigError(f"latency_bars must be >= 0; got {latency_bars!r}")
    whole = check_sizing(sizing)
    fees = combine_commissions(commission)
    friction = combine_slippage(slippage)
    if periods_per_year is not None:
        _check_number("periods_per_year", periods_per_year, low=0.0)
    ts = _timestamps(bars)
    open_ = _column(bars, "open")
    close = _column(bars, "close")
    volume = _column(bars, "volume")
    _check_series("close", close, 0.0, math.inf, strict=True)
    ts.setflags(write=False)
    return VectorisedRun(
        ts=ts,
        open_=open_,
        close=close,
        volume=volume,
        initial_cash=initial_cash,
        fees=fees,
        friction=friction,
        whole=whole,
        latency_bars=int(latency_bars),
        periods_per_year=periods_per_year,
    )


class VectorisedRun:
    """Bars and frictions checked once; `run` backtests one target series on them.

    Built by `prepare_vectorised`. Holds the bar columns as read-only arrays;
    every `run` returns a new `BacktestResult` (results share the ``ts`` array).
    """

    __slots__ = (
        "_close",
        "_fees",
        "_friction",
        "_initial_cash",
        "_latency_bars",
        "_open",
        "_periods_per_year",
        "_ts",
        "_volume",
        "_whole",
    )

    def __init__(
        self,
        *,
        ts: NDArray[np.int64],
        open_: NDArray[np.float64],
        close: NDArray[np.float64],
        volume: NDArray[np.float64],
        initial_cash: float,
        fees: CommissionTerms,
        friction: SlippageTerms,
        whole: bool,
        latency_bars: int,
        periods_per_year: float | None,
    ) -> None:
        self._ts = ts
        self._open = open_
        self._close = close
        self._volume = volume
        self._initial_cash = initial_cash
        self._fees = fees
        self._friction = friction
        self._whole = whole
        self._latency_bars = latency_bars
        self._periods_per_year = periods_per_year

    @property
    def bars(self) -> int:
        """Return the number of bars."""
        return int(self._close.shape[0])

    def run(self, targets: ArrayLike) -> BacktestResult:
        """Backtest ``targets`` (one value in [-1, 1] per bar) on the prepared bars.

        Raises:
            ConfigError: ``targets`` is not one finite value in [-1, 1] per bar,
                or a fill bar's open or volume is invalid.
        """
        height = self.bars
        try:
            wanted = np.ascontiguousarray(targets, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"targets must be an array of numbers: {exc}") from exc
        if wanted.shape != (height,):
            raise ConfigError(
                f"targets must hold one value per bar (shape ({height},)); got {wanted.shape}"
            )
        _check_series("targets", wanted, -1.0, 1.0, strict=False)
        open_, close, volume = self._open, self._close, self._volume
        fees, friction = self._fees, self._friction
        initial_cash = self._initial_cash
        equity, fill_records, trade_records, in_market, bad_bar, bad_code = _simulate(
            open_,
            close,
            volume,
            wanted,
            self._latency_bars,
            initial_cash,
            fees.rate,
            fees.per_unit,
            fees.per_fill,
            friction.half_spread,
            friction.slippage,
            friction.impact,
            self._whole,
        )
        if bad_bar >= 0:
            name, rule = (
                ("open", "finite and > 0") if bad_code == 1 else ("volume", "finite and >= 0")
            )
            value = float((open_ if bad_code == 1 else volume)[bad_bar])
            raise ConfigError(f"{name}[{bad_bar}] = {value!r}: must be {rule} (a fill bar)")
        metrics = compute_metrics(
            equity,
            initial_cash=initial_cash,
            ts=self._ts,
            trade_pnl=trade_records[_T_PNL],
            traded_notional=fill_records[_F_QUANTITY] * fill_records[_F_PRICE],
            exposure=int(in_market) / height,
            periods_per_year=self._periods_per_year,
        )
        equity.setflags(write=False)
        return BacktestResult(
            ts=self._ts,
            equity=equity,
            fill_records=fill_records,
            trade_records=trade_records,
            metrics=metrics,
            initial_cash=initial_cash,
        )
