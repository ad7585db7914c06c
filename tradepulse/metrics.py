"""Performance metrics of a backtest: returns, risk, drawdown, trading activity.

Pure core (numpy, numba). Every metric is computed from the per-bar equity
marked at each bar's close and the cash the run started with, so the first bar's
return is ``equity[0] / initial_cash - 1`` and a run of ``n`` bars has ``n``
returns ``r_t = equity[t] / equity[t-1] - 1``.

Annualisation (`periods_per_year`) comes from the bar frequency: the median
spacing ``d`` of the timestamps (over at most 10,001 spacings taken at evenly
spaced positions across the run, so it costs the same for any length):

==========================  ======================================  ====================
median spacing ``d``        periods per year                        examples
==========================  ======================================  ====================
``d < 1 day`` (intraday)    ``252 * 6.5 h / d`` (252 sessions of    1 min: 98,280;
                            6.5 hours, the US equity session)        1 h: 1,638
``1 day <= d < 7 days``     ``252 * 1 day / d`` (trading days)      1 day: 252
``d >= 7 days``             ``365.25 days / d`` (calendar)          1 week: 52.18
==========================  ======================================  ====================

Markets that trade around the clock (crypto) should pass ``periods_per_year``
explicitly (``365 * 1440`` for 1-minute bars). Fewer than two bars: 252.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Final

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import ConfigError

__all__ = [
    "DAYS_PER_YEAR",
    "SESSION_SECONDS",
    "TRADING_DAYS_PER_YEAR",
    "Metrics",
    "cagr",
    "calmar",
    "compute_metrics",
    "exposure",
    "final_equity",
    "max_drawdown",
    "periods_per_year",
    "sharpe",
    "sortino",
    "total_return",
    "turnover",
    "win_rate",
]

#: Trading days per year, the annualisation of daily bars.
TRADING_DAYS_PER_YEAR: Final = 252.0
#: Length of one trading session in seconds (6.5 hours, the US equity session).
SESSION_SECONDS: Final = 23_400.0
#: Calendar days per year, the annualisation of weekly and coarser bars.
DAYS_PER_YEAR: Final = 365.25
_NS_PER_SECOND: Final = 1_000_000_000
_NS_PER_DAY: Final = 86_400 * _NS_PER_SECOND
#: Spacings sampled for the median (evenly across the run), so long runs cost the same.
_SPACING_SAMPLES: Final = 10_001


@dataclass(frozen=True, slots=True)
class Metrics:
    """Summary of a backtest. Fractions are plain ratios (0.1 = 10%).

    ``final_equity`` in quote currency; ``total_return``, ``cagr`` (compound
    annual growth) and ``max_drawdown`` (largest fall from a running peak,
    positive) are fractions; ``sharpe`` and ``sortino`` are annualised ratios
    with a zero risk-free rate; ``calmar = cagr / max_drawdown``; ``trades`` counts
    every trade opened (one still open at the end included); ``win_rate`` is the
    fraction of those with positive net P&L; ``turnover`` is the traded notional
    divided by the mean equity (one all-in round trip is about 2); ``exposure`` the
    fraction of bars that close with a position; ``periods_per_year`` the
    annualisation used; ``bars`` the number of bars. Undefined values are NaN.
    """

    final_equity: float
    total_return: float
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: float
    calmar: float
    trades: int
    win_rate: float
    turnover: float
    exposure: float
    periods_per_year: float
    bars: int

    def to_dict(self) -> dict[str, float | int]:
        """Return the metrics as a ``{name: value}`` dictionary in field order."""
        return asdict(self)


# ------------------------------------------------------------------------------ kernels


@numba.njit(cache=True, error_model="numpy")  # equity 0 (ruin): inf/NaN, not an exception
def _return_sums(equity, initial, shift):  # type: ignore[no-untyped-def]  # see below
    """Sums of ``r - shift``, ``(r - shift) ** 2`` and ``min(r, 0) ** 2`` over the bar returns.

    Four interleaved accumulators (fixed order, so the result is deterministic)
    break the chain of dependent additions; without them the loop runs at the
    latency of one addition per bar.
    """
    count = equity.shape[0]
    change = equity[0] / initial - 1.0
    offset = change - shift
    low = min(change, 0.0)
    total0, squares0, downside0 = offset, offset * offset, low * low
    total1 = total2 = total3 = 0.0
    squares1 = squares2 = squares3 = 0.0
    downside1 = downside2 = downside3 = 0.0
    index = 1
    while index + 4 <= count:
        change0 = equity[index] / equity[index - 1] - 1.0
        change1 = equity[index + 1] / equity[index] - 1.0
        change2 = equity[index + 2] / equity[index + 1] - 1.0
        change3 = equity[index + 3] / equity[index + 2] - 1.0
        offset0 = change0 - shift
        offset1 = change1 - shift
        offset2 = change2 - shift
        offset3 = change3 - shift
        total0 += offset0
        total1 += offset1
        total2 += offset2
        total3 += offset3
        squares0 += offset0 * offset0
        squares1 += offset1 * offset1
        squares2 += offset2 * offset2
        squares3 += offset3 * offset3
        low0 = min(change0, 0.0)
        low1 = min(change1, 0.0)
        low2 = min(change2, 0.0)
        low3 = min(change3, 0.0)
        downside0 += low0 * low0
        downside1 += low1 * low1
        downside2 += low2 * low2
        downside3 += low3 * low3
        index += 4
    while index < count:
        change = equity[index] / equity[index - 1] - 1.0
        offset = change - shift
        low = min(change, 0.0)
        total0 += offset
        squares0 += offset * offset
        downside0 += low * low
        index += 1
    return (
        (total0 + total1) + (total2 + total3),
        (squares0 + squares1) + (squares2 + squares3),
        (downside0 + downside1) + (downside2 + downside3),
    )


@numba.njit(cache=True)
def _drawdown(equity, initial):  # type: ignore[no-untyped-def]  # typed wrappers below
    """Largest ``1 - equity / running peak`` (the peak starts at ``initial``).

    Between two new peaks the peak is constant, and ``1 - value / peak`` falls as
    ``value`` rises (rounding is monotonic too), so only the lowest value of each
    stretch needs the division: the result is exactly that of evaluating every
    bar, with one division per new peak instead of one per bar.
    """
    peak = initial
    trough = initial
    worst = 0.0
    for index in range(equity.shape[0]):
        value = equity[index]
        if value > peak:
            if trough < peak:
                worst = max(worst, 1.0 - trough / peak)
            peak = value
            trough = value
        trough = min(trough, value)  # a select, not a branch: falls are unpredictable
    if trough < peak:
        worst = max(worst, 1.0 - trough / peak)
    return worst


@numba.njit(cache=True)
def _equity_statistics(equity, initial):  # type: ignore[no-untyped-def]  # typed wrappers below
    """Statistics of the bar returns, and the maximum drawdown.

    Returns the mean, the sample standard deviation (NaN for one bar) and the
    downside deviation ``sqrt(mean(min(r, 0) ** 2))`` of the returns, and the
    largest ``1 - equity / running peak``. The variance is accumulated around
    the first return (shifted data), which keeps a one-pass sum of squares
    accurate and makes constant returns vary by exactly 0.
    """
    count = equity.shape[0]
    shift = equity[0] / initial - 1.0
    total, squares, downside = _return_sums(equity, initial, shift)
    mean = shift + total / count
    deviation = math.nan
    if count > 1:
        deviation = math.sqrt(max(squares - total * total / count, 0.0) / (count - 1))
    return mean, deviation, math.sqrt(downside / count), _drawdown(equity, initial)


# ------------------------------------------------------------------------------ helpers


def _as_equity(equity: ArrayLike, initial_cash: float) -> tuple[NDArray[np.float64], float]:
    array = np.ascontiguousarray(equity, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] == 0:
        raise ConfigError(f"equity must be a non-empty 1-D series; got shape {array.shape}")
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(array.sum())
    if not math.isfinite(total):  # a finite sum has finite terms: the cheap check first
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ConfigError(
                f"equity must be finite; got equity[{bad[0]}] = {float(array[bad[0]])!r}"
            )
    cash = float(initial_cash)
    if not math.isfinite(cash) or cash <= 0.0:
        raise ConfigError(f"initial_cash must be finite and > 0; got {initial_cash!r}")
    return array, cash


def _check_periods(periods: float) -> float:
    value = float(periods)
    if not math.isfinite(value) or value <= 0.0:
        raise ConfigError(f"periods_per_year must be finite and > 0; got {periods!r}")
    return value


def _growth(multiple: float, exponent: float) -> float:
    """Return ``multiple ** exponent - 1``; -1 when ``multiple <= 0`` (all lost)."""
    if multiple <= 0.0:
        return -1.0
    return float(multiple**exponent - 1.0)


def _ratio(numerator: float, denominator: float) -> float:
    """Return ``numerator / denominator``, NaN when the denominator is 0 or NaN."""
    if denominator == 0.0 or math.isnan(denominator):
        return math.nan
    return numerator / denominator


# ------------------------------------------------------------------------------ metrics


def periods_per_year(ts: ArrayLike) -> float:
    """Return the number of bars per year implied by the median spacing of ``ts``.

    ``ts`` holds timestamps (``datetime64`` or integer nanoseconds), strictly
    increasing. See the module docstring for the rule; fewer than two bars give 252.

    Raises:
        ConfigError: ``ts`` is not 1-D or its median spacing is not positive.
    """
    return _infer_periods(ts)


def _infer_periods(ts: ArrayLike) -> float:
    stamps = np.asarray(ts)
    if stamps.dtype.kind == "M":
        stamps = stamps.astype("datetime64[ns]").view(np.int64)
    stamps = np.asarray(stamps, dtype=np.int64)
    if stamps.ndim != 1:
        raise ConfigError(f"ts must be 1-D; got shape {stamps.shape}")
    if stamps.shape[0] < 2:
        return TRADING_DAYS_PER_YEAR
    spacing_count = stamps.shape[0] - 1
    if spacing_count > _SPACING_SAMPLES:
        where = np.linspace(0, spacing_count - 1, _SPACING_SAMPLES).astype(np.int64)
        spacings = stamps[where + 1] - stamps[where]
    else:
        spacings = np.diff(stamps)
    spacing = float(np.median(spacings))
    if not spacing > 0.0:
        raise ConfigError(f"ts must be increasing; got a median spacing of {spacing:g} ns")
    if spacing < _NS_PER_DAY:
        return TRADING_DAYS_PER_YEAR * SESSION_SECONDS * _NS_PER_SECOND / spacing
    if spacing < 7 * _NS_PER_DAY:
        return TRADING_DAYS_PER_YEAR * _NS_PER_DAY / spacing
    return DAYS_PER_YEAR * _NS_PER_DAY / spacing


def final_equity(equity: ArrayLike) -> float:
    """Return the last bar's equity (quote currency).

    Raises:
        ConfigError: ``equity`` is empty or not finite.
    """
    array, _ = _as_equity(equity, 1.0)
    return float(array[-1])


def total_return(equity: ArrayLike, initial_cash: float) -> float:
    """Return ``equity[-1] / initial_cash - 1`` (a fraction).

    Raises:
        ConfigError: ``equity`` is empty or not finite, or ``initial_cash`` <= 0.
    """
    array, cash = _as_equity(equity, initial_cash)
    return float(array[-1] / cash - 1.0)


def cagr(equity: ArrayLike, initial_cash: float, *, periods_per_year: float) -> float:
    """Return the compound annual growth rate ``(equity[-1] / initial_cash) ** (P / n) - 1``.

    ``n`` is the number of bars and ``P`` the periods per year, so the run lasts
    ``n / P`` years. A final equity <= 0 gives -1 (everything lost).

    Raises:
        ConfigError: bad ``equity``, ``initial_cash`` or ``periods_per_year``.
    """
    array, cash = _as_equity(equity, initial_cash)
    periods = _check_periods(periods_per_year)
    return _growth(float(array[-1]) / cash, periods / array.shape[0])


def sharpe(equity: ArrayLike, initial_cash: float, *, periods_per_year: float) -> float:
    """Return the annualised Sharpe ratio ``mean(r) / std(r) * sqrt(P)`` of the bar returns.

    ``std`` is the sample standard deviation (``ddof=1``); the risk-free rate is 0.
    NaN with fewer than two bars or when the returns do not vary.

    Raises:
        ConfigError: bad ``equity``, ``initial_cash`` or ``periods_per_year``.
    """
    array, cash = _as_equity(equity, initial_cash)
    periods = _check_periods(periods_per_year)
    mean, deviation, _, _ = _equity_statistics(array, cash)
    return _ratio(float(mean), float(deviation)) * math.sqrt(periods)


def sortino(equity: ArrayLike, initial_cash: float, *, periods_per_year: float) -> float:
    """Return the annualised Sortino ratio ``mean(r) / dd * sqrt(P)`` of the bar returns.

    ``dd = sqrt(mean(min(r, 0) ** 2))`` over all bars (target return 0). NaN when
    no bar loses.

    Raises:
        ConfigError: bad ``equity``, ``initial_cash`` or ``periods_per_year``.
    """
    array, cash = _as_equity(equity, initial_cash)
    periods = _check_periods(periods_per_year)
    mean, _, downside, _ = _equity_statistics(array, cash)
    return _ratio(float(mean), float(downside)) * math.sqrt(periods)


def max_drawdown(equity: ArrayLike, initial_cash: float) -> float:
    """Return the largest fall from a running peak, ``max(1 - equity / peak)`` (>= 0).

    The running peak starts at ``initial_cash``.

    Raises:
        ConfigError: ``equity`` is empty or not finite, or ``initial_cash`` <= 0.
    """
    array, cash = _as_equity(equity, initial_cash)
    return float(_equity_statistics(array, cash)[3])


def calmar(equity: ArrayLike, initial_cash: float, *, periods_per_year: float) -> float:
    """Return ``cagr / max_drawdown``; NaN without a drawdown.

    Raises:
        ConfigError: bad ``equity``, ``initial_cash`` or ``periods_per_year``.
    """
    growth = cagr(equity, initial_cash, periods_per_year=periods_per_year)
    return _ratio(growth, max_drawdown(equity, initial_cash))


def win_rate(trade_pnl: ArrayLike) -> float:
    """Return the fraction of trades with a net P&L > 0; NaN without trades.

    Raises:
        ConfigError: ``trade_pnl`` is not a 1-D series of finite numbers.
    """
    pnl = np.asarray(trade_pnl, dtype=np.float64)
    if pnl.ndim != 1 or not np.all(np.isfinite(pnl)):
        raise ConfigError("trade_pnl must be a 1-D series of finite numbers")
    if pnl.shape[0] == 0:
        return math.nan
    return float(np.count_nonzero(pnl > 0.0) / pnl.shape[0])


def turnover(traded_notional: ArrayLike, equity: ArrayLike) -> float:
    """Return the summed ``|traded notional|`` of the fills divided by the mean equity.

    Raises:
        ConfigError: ``equity`` is empty or not finite, or ``traded_notional`` is
            not finite.
    """
    array, _ = _as_equity(equity, 1.0)
    notional = np.asarray(traded_notional, dtype=np.float64)
    if not np.all(np.isfinite(notional)):
        raise ConfigError("traded_notional must be finite")
    return _ratio(float(np.abs(notional).sum()), float(array.mean()))


def exposure(position: ArrayLike) -> float:
    """Return the fraction of bars whose closing position is non-zero.

    Raises:
        ConfigError: ``position`` is empty or not 1-D.
    """
    held = np.asarray(position, dtype=np.float64)
    if held.ndim != 1 or held.shape[0] == 0:
        raise ConfigError(f"position must be a non-empty 1-D series; got shape {held.shape}")
    return float(np.count_nonzero(held) / held.shape[0])


def compute_metrics(
    equity: ArrayLike,
    *,
    initial_cash: float,
    ts: ArrayLike,
    trade_pnl: ArrayLike,
    traded_notional: ArrayLike,
    exposure: float,
    periods_per_year: float | None = None,
) -> Metrics:
    """Return every metric of a run at once (see `Metrics`), in one pass over the bars.

    ``equity`` is per bar (marked at the close), ``ts`` the bar timestamps,
    ``trade_pnl`` the net P&L of every trade opened (open ones marked to the last
    close), ``traded_notional`` the ``quantity * price`` of every fill and
    ``exposure`` the fraction of bars that close with a position (`exposure`).
    ``periods_per_year`` overrides the annualisation derived from ``ts``.

    Raises:
        ConfigError: an input is malformed (the message names it), or ``ts`` and
            ``equity`` differ in length.
    """
    array, cash = _as_equity(equity, initial_cash)
    stamps = np.asarray(ts)
    if stamps.shape != array.shape:
        raise ConfigError(f"ts must have the shape of equity {array.shape}; got {stamps.shape}")
    held = float(exposure)
    if not 0.0 <= held <= 1.0:
        raise ConfigError(f"exposure must be a fraction in [0, 1]; got {exposure!r}")
    periods = _check_periods(
        _infer_periods(stamps) if periods_per_year is None else periods_per_year
    )
    mean, deviation, downside, drawdown = _equity_statistics(array, cash)
    growth = _growth(float(array[-1]) / cash, periods / array.shape[0])
    notional = np.asarray(traded_notional, dtype=np.float64)
    if not np.all(np.isfinite(notional)):
        raise ConfigError("traded_notional must be finite")
    pnl = np.asarray(trade_pnl, dtype=np.float64)
    return Metrics(
        final_equity=float(array[-1]),
        total_return=float(array[-1] / cash - 1.0),
        cagr=growth,
        sharpe=_ratio(float(mean), float(deviation)) * math.sqrt(periods),
        sortino=_ratio(float(mean), float(downside)) * math.sqrt(periods),
        max_drawdown=float(drawdown),
        calmar=_ratio(growth, float(drawdown)),
        trades=int(pnl.shape[0]),
        win_rate=win_rate(pnl),
        turnover=_ratio(float(np.abs(notional).sum()), float(array.mean())),
        exposure=held,
        periods_per_year=periods,
        bars=int(array.shape[0]),
    )
