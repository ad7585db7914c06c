"""Classic technical indicators that reproduce TA-Lib's output bit for bit.

Every function takes price series (any 1-D array-like of finite real numbers,
converted to float64) and returns float64 arrays of the same length. The leading
values for which TA-Lib has no output (its lookback) are NaN; a series shorter
than the warm-up gives an all-NaN result, as TA-Lib does.

The kernels repeat the arithmetic of the TA-Lib C library (0.8.1, as bundled with
the ``ta-lib`` 0.8.2 wheel) operation for operation: the same seeding, the same
running sums in the same order, fused multiply-adds where TA-Lib's EMA, MACD and
ATR recursions use them, the same cancellation-free variance for the Bollinger
bands. Against that library the results are identical, not merely close. TA-Lib's
default settings are assumed: classic (non-Metastock) compatibility and no extra
unstable period.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numba
import numba.extending
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators._common import as_int, as_series, numba_kernel

__all__ = [
    "MACD",
    "BollingerBands",
    "atr",
    "bollinger_bands",
    "ema",
    "macd",
    "rsi",
    "sma",
]

# TA-Lib's Bollinger deviation (shifted-data running sums): re-centre the shift on the
# window mean when the variance falls below this fraction of the mean square...
_RESEED_VARIANCE_FRACTION = 1e-6
# ...or when the squared deviation leaving the window exceeds this multiple of the sum...
_RESEED_SQUARE_MULTIPLE = 1e6
# ...or at the latest every this many periods; after a re-centring, a variance below
# this fraction of the mean square is taken as exactly zero.
_RESEED_PERIODS = 32
_VARIANCE_FLOOR_FRACTION = 1e-12


# Cached on disk, strict IEEE arithmetic.
_kernel = numba_kernel()


# --------------------------------------------------------------------------- kernels


def _fused_multiply_add(a: float, b: float, c: float) -> float:
    """Return ``a * b + c`` rounded once, as C's ``fma`` (interpreted fallback, exact)."""
    if not (math.isfinite(a) and math.isfinite(b) and math.isfinite(c)):
        return a * b + c  # NaN or infinite, as fma's result
    return float(Fraction(a) * Fraction(b) + Fraction(c))


def _llvm_fma_typer(typingctx: Any, a: Any, b: Any, c: Any) -> Any:
    if not all(isinstance(arg, numba.types.Float) for arg in (a, b, c)):
        return None
    signature = numba.types.float64(numba.types.float64, numba.types.float64, numba.types.float64)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        return builder.fma(*args)

    return signature, codegen


_llvm_fma: Any = numba.extending.intrinsic(_llvm_fma_typer)


def _fused_multiply_add_overload(a: Any, b: Any, c: Any) -> Any:
    # numba wants the implementation's signature (annotations included) to match.
    def implementation(a: Any, b: Any, c: Any) -> Any:
        return _llvm_fma(a, b, c)

    return implementation


# Compiled code calls LLVM's fma intrinsic (one vfmadd where the CPU has FMA, a correctly
# rounded libm call otherwise); interpreted code uses the exact rational fallback above.
numba.extending.overload(_fused_multiply_add)(_fused_multiply_add_overload)


@_kernel
def _first_nonfinite(x: NDArray[np.float64]) -> int:
    """Return the index of the first NaN or infinite element of ``x``, or -1."""
    bad = False
    # Branch-free scan that LLVM vectorises: v - v is 0 for finite v, NaN otherwise.
    for i in range(x.shape[0]):
        v = x[i]
        bad |= (v - v) != 0.0
    if bad:
        for i in range(x.shape[0]):
            if not np.isfinite(x[i]):
                return i
    return -1


@_kernel
def _fill_nan(out: NDArray[np.float64], count: int) -> None:
    for i in range(min(count, out.shape[0])):
        out[i] = np.nan


# Each kernel below writes its output in place and returns whether every input value
# was finite. The check rides along the kernel's own pass over the data: v * 0.0 is 0
# for finite v and NaN otherwise, so a sum of such probes stays 0 exactly when all
# values are finite (a false alarm, from a difference overflowing, is sorted out by
# _first_nonfinite before anything is raised).


@_kernel
def _sma_kernel(x: NDArray[np.float64], period: int, out: NDArray[np.float64]) -> bool:
    # TA_SMA: add the new value, emit total / period, then drop the oldest value.
    n = x.shape[0]
    lookback = period - 1
    _fill_nan(out, lookback)
    if n <= lookback:
        return _first_nonfinite(x) < 0
    probe = 0.0
    total = 0.0
    for i in range(lookback):
        value = x[i]
        probe += value * 0.0
        total += value
    for i in range(lookback, n):
        value = x[i]
        probe += value * 0.0
        total += value
        out[i] = total / period
        total -= x[i - lookback]
    return probe == 0.0


@_kernel
def _ema_kernel(x: NDArray[np.float64], period: int, out: NDArray[np.float64]) -> bool:
    # TA_EMA: seeded with the SMA of the first `period` values (summed from 0.0 in
    # order), then prev = fma(x - prev, k, prev) with k = 2 / (period + 1). Period 1
    # copies the input.
    n = x.shape[0]
    lookback = period - 1
    _fill_nan(out, lookback)
    if n <= lookback:
        return _first_nonfinite(x) < 0
    probe = 0.0
    if period == 1:
        for i in range(n):
            value = x[i]
            probe += value * 0.0
            out[i] = value
        return probe == 0.0
    k = 2.0 / (period + 1)
    total = 0.0
    for i in range(period):
        value = x[i]
        probe += value * 0.0
        total += value
    prev = total / period
    out[lookback] = prev
    for i in range(period, n):
        value = x[i]
        probe += value * 0.0
        prev = _fused_multiply_add(value - prev, k, prev)
        out[i] = prev
    return probe == 0.0


@_kernel
def _rsi_kernel(x: NDArray[np.float64], period: int, out: NDArray[np.float64]) -> bool:
    # TA_RSI: gain and loss summed over the first `period` changes and scaled by
    # 1 / period, then Wilder's avg = (avg * (period - 1) + change) * (1 / period).
    # The index is 100 * gain / (gain + loss), and 0 where gain + loss is 0.
    n = x.shape[0]
    _fill_nan(out, period)
    if n <= period:
        return _first_nonfinite(x) < 0
    inverse = 1.0 / period
    keep = float(period - 1)
    prev_value = x[0]
    probe: float = prev_value * 0.0
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        value = x[i]
        probe += value * 0.0
        change = value - prev_value
        prev_value = value
        up = change if change > 0.0 else 0.0
        gain += up
        loss += up - change
    loss *= inverse
    gain *= inverse
    both = gain + loss
    out[period] = 100.0 * (gain / both) if both > 0.0 else 0.0
    for i in range(period + 1, n):
        value = x[i]
        probe += value * 0.0
        change = value - prev_value
        prev_value = value
        up = change if change > 0.0 else 0.0
        gain = gain * keep + up
        loss = loss * keep + (up - change)
        gain *= inverse
        loss *= inverse
        both = gain + loss
        out[i] = 100.0 * (gain / both) if both > 0.0 else 0.0
    return probe == 0.0


@_kernel
def _true_range(high: float, low: float, previous_close: float) -> float:
    # TA_TRANGE: the largest of high - low, |close[i-1] - high|, |close[i-1] - low|,
    # written as selects so LLVM emits branch-free max instructions, as gcc does.
    greatest = high - low
    to_high = abs(previous_close - high)
    greatest = to_high if to_high > greatest else greatest
    to_low = abs(previous_close - low)
    return to_low if to_low > greatest else greatest


@_kernel
def _atr_kernel(
    high: NDArray[np.float64],
    low: NDArray[np.float64],
    close: NDArray[np.float64],
    period: int,
    out: NDArray[np.float64],
) -> bool:
    # TA_ATR: the first ATR (index `period`) is the mean of TR[1..period]; then
    # atr = fma(atr, beta, alpha * TR) with beta = (period - 1) / period, alpha = 1 - beta.
    n = close.shape[0]
    _fill_nan(out, period)
    if n <= period:
        return (
            _first_nonfinite(high) < 0
            and _first_nonfinite(low) < 0
            and (_first_nonfinite(close) < 0)
        )
    # The true ranges never read high[0], low[0] or the last close.
    probe: float = (high[0] - low[0]) * 0.0 + close[n - 1] * 0.0
    beta = float(period - 1) / float(period)
    alpha = 1.0 - beta
    total = 0.0
    previous_close = close[0]
    for i in range(1, period + 1):
        bar_high = high[i]
        bar_low = low[i]
        # NaN or infinite in any of the three makes one of these differences so.
        probe += (bar_high - bar_low) * 0.0 + (previous_close - bar_high) * 0.0
        total += _true_range(bar_high, bar_low, previous_close)
        previous_close = close[i]
    prev = total / period
    out[period] = prev
    for i in range(period + 1, n):
        bar_high = high[i]
        bar_low = low[i]
        probe += (bar_high - bar_low) * 0.0 + (previous_close - bar_high) * 0.0
        true_range = _true_range(bar_high, bar_low, previous_close)
        prev = _fused_multiply_add(prev, beta, alpha * true_range)
        out[i] = prev
        previous_close = close[i]
    return probe == 0.0


@_kernel
def _shifted_sums(
    x: NDArray[np.float64], start: int, stop: int, shift: float
) -> tuple[float, float]:
    # Sums of (x - shift) and (x - shift)**2 over x[start:stop], in order from 0.0.
    total1 = 0.0
    total2 = 0.0
    for j in range(start, stop):
        deviation = x[j] - shift
        total1 += deviation
        total2 += deviation * deviation
    return total1, total2


@_kernel
def _bbands_kernel(
    x: NDArray[np.float64],
    period: int,
    num_std: float,
    upper: NDArray[np.float64],
    middle: NDArray[np.float64],
    lower: NDArray[np.float64],
) -> bool:
    # TA_BBANDS, SMA path: the middle band is TA_SMA's running mean; the deviation is
    # the population variance of the window from running sums of x - shift. The shift
    # starts at x[0] and is re-centred on the window mean (and the sums recomputed)
    # whenever cancellation threatens, or at the latest every 32 periods.
    n = x.shape[0]
    lookback = period - 1
    _fill_nan(upper, lookback)
    _fill_nan(middle, lookback)
    _fill_nan(lower, lookback)
    if n <= lookback:
        return _first_nonfinite(x) < 0
    inverse = 1.0 / period
    reseed_every = _RESEED_PERIODS * period
    probe = 0.0
    shift = x[0]
    total = 0.0
    for i in range(lookback):
        value = x[i]
        probe += value * 0.0
        total += value
    total1, total2 = _shifted_sums(x, 0, lookback, shift)
    bars_left = reseed_every
    for i in range(lookback, n):
        trailing = i - lookback
        value = x[i]
        probe += value * 0.0
        total += value
        deviation = value - shift
        total1 += deviation
        total2 += deviation * deviation
        mean1 = inverse * total1
        variance = inverse * total2 - mean1 * mean1
        mean = total / period
        old = x[trailing]
        total -= old
        old_deviation = old - shift
        old_square = old_deviation * old_deviation
        total2 -= old_square
        reseed = (
            variance < (total2 * inverse) * _RESEED_VARIANCE_FRACTION
            or old_square > total2 * _RESEED_SQUARE_MULTIPLE
        )
        if not reseed:
            bars_left -= 1
            reseed = bars_left == 0
        if reseed:
            bars_left = reseed_every
            window_sum = 0.0
            for j in range(trailing, i + 1):
                window_sum += x[j]
            shift = inverse * window_sum
            total1, total2 = _shifted_sums(x, trailing, i + 1, shift)
            mean1 = inverse * total1
            variance = inverse * total2 - mean1 * mean1
            if variance < (inverse * total2) * _VARIANCE_FLOOR_FRACTION:
                variance = 0.0
            old_deviation = x[trailing] - shift
            total2 -= old_deviation * old_deviation
        total1 -= old_deviation
        width = (math.sqrt(variance) if variance != 0.0 else 0.0) * num_std
        middle[i] = mean
        upper[i] = width + mean
        lower[i] = mean - width
    return probe == 0.0


@_kernel
def _macd_kernel(
    x: NDArray[np.float64],
    fast: int,
    slow: int,
    signal: int,
    line: NDArray[np.float64],
    signal_line: NDArray[np.float64],
    histogram: NDArray[np.float64],
) -> bool:
    # TA_MACD: both EMAs emit their first value at index slow - 1; the fast one is
    # seeded with the SMA of the `fast` values ending there (x[slow-fast .. slow-1]),
    # the slow one with the SMA of x[0 .. slow-1]. The signal EMA runs on the MACD
    # line from index slow - 1, seeded with the SMA of its first `signal` values (a
    # signal period of 1 copies the line); all three outputs start at index
    # (slow - 1) + (signal - 1). Every EMA step is fma(x - prev, k, prev).
    n = x.shape[0]
    lookback = slow + signal - 2
    _fill_nan(line, lookback)
    _fill_nan(signal_line, lookback)
    _fill_nan(histogram, lookback)
    if n <= lookback:
        return _first_nonfinite(x) < 0
    k_fast = 2.0 / (fast + 1)
    k_slow = 2.0 / (slow + 1)
    k_signal = 2.0 / (signal + 1)
    probe = 0.0
    slow_total = 0.0
    for i in range(slow):
        value = x[i]
        probe += value * 0.0
        slow_total += value
    slow_ema = slow_total / slow
    fast_total = 0.0
    for i in range(slow - fast, slow):
        fast_total += x[i]
    fast_ema = fast_total / fast
    value = fast_ema - slow_ema
    signal_total = 0.0
    signal_total += value
    for i in range(slow, lookback + 1):
        price = x[i]
        probe += price * 0.0
        fast_ema = _fused_multiply_add(price - fast_ema, k_fast, fast_ema)
        slow_ema = _fused_multiply_add(price - slow_ema, k_slow, slow_ema)
        value = fast_ema - slow_ema
        signal_total += value
    signal_ema = signal_total / signal
    line[lookback] = value
    signal_line[lookback] = signal_ema
    histogram[lookback] = value - signal_ema
    for i in range(lookback + 1, n):
        price = x[i]
        probe += price * 0.0
        fast_ema = _fused_multiply_add(price - fast_ema, k_fast, fast_ema)
        slow_ema = _fused_multiply_add(price - slow_ema, k_slow, slow_ema)
        value = fast_ema - slow_ema
        if signal == 1:
            signal_ema = value
        else:
            signal_ema = _fused_multiply_add(value - signal_ema, k_signal, signal_ema)
        line[i] = value
        signal_line[i] = signal_ema
        histogram[i] = value - signal_ema
    return probe == 0.0


# --------------------------------------------------------------------------- validation


def _same_length(**series: NDArray[np.float64]) -> None:
    lengths = {name: array.shape[0] for name, array in series.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"len({name}) = {length}" for name, length in lengths.items())
        raise IndicatorError(f"input series must have equal lengths, got {shown}")


def _check_finite(**series: NDArray[np.float64]) -> None:
    """Raise the IndicatorError naming the first non-finite input value, if any."""
    for name, array in series.items():
        index = int(_first_nonfinite(array))
        if index >= 0:
            raise IndicatorError(
                f"{name} must be finite, got {name}[{index}] = {float(array[index])!r}"
            )


def _run_single(
    kernel: Callable[[NDArray[np.float64], int, NDArray[np.float64]], bool],
    values: ArrayLike,
    *,
    name: str,
    period: int,
    minimum: int,
) -> NDArray[np.float64]:
    """Check ``period`` and ``values``, then return ``kernel``'s output over ``values``."""
    period = as_int(period, name="period", minimum=minimum)
    x = as_series(values, name=name)
    out = np.empty(x.shape[0], dtype=np.float64)
    if not kernel(x, period, out):
        _check_finite(**{name: x})
    return out


# --------------------------------------------------------------------------- public API


@dataclass(frozen=True, slots=True, eq=False)
class BollingerBands:
    """Bollinger bands: ``middle`` (SMA) and ``middle`` ± ``num_std`` deviations."""

    upper: NDArray[np.float64]
    middle: NDArray[np.float64]
    lower: NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class MACD:
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram (line - signal)."""

    line: NDArray[np.float64]
    signal: NDArray[np.float64]
    histogram: NDArray[np.float64]


def sma(values: ArrayLike, period: int = 20) -> NDArray[np.float64]:
    """Compute the simple moving average of ``values`` over ``period`` bars (TA-Lib ``SMA``).

    The result is in the units of ``values``. Warm-up: the first ``period - 1``
    values are NaN.

    Raises:
        IndicatorError: ``period`` is not an integer >= 1, or ``values`` is not a
            1-D series of finite real numbers.
    """
    return _run_single(_sma_kernel, values, name="values", period=period, minimum=1)


def ema(values: ArrayLike, period: int = 20) -> NDArray[np.float64]:
    """Compute the exponential moving average of ``values`` (TA-Lib ``EMA``).

    The smoothing factor is ``2 / (period + 1)``; the average is seeded with the
    SMA of the first ``period`` values. The result is in the units of ``values``.
    Warm-up: the first ``period - 1`` values are NaN.

    Raises:
        IndicatorError: ``period`` is not an integer >= 1, or ``values`` is not a
            1-D series of finite real numbers.
    """
    return _run_single(_ema_kernel, values, name="values", period=period, minimum=1)


def rsi(close: ArrayLike, period: int = 14) -> NDArray[np.float64]:
    """Compute Wilder's relative strength index of ``close`` (TA-Lib ``RSI``).

    Average gain and loss are seeded with the mean of the first ``period``
    changes, then smoothed with Wilder's factor ``1 / period``. The result is in
    percent, 0 to 100 (0 where both averages are zero, as in TA-Lib). Warm-up:
    the first ``period`` values are NaN.

    Raises:
        IndicatorError: ``period`` is not an integer >= 2, or ``close`` is not a
            1-D series of finite real numbers.
    """
    return _run_single(_rsi_kernel, close, name="close", period=period, minimum=2)


def atr(
    high: ArrayLike, low: ArrayLike, close: ArrayLike, *, period: int = 14
) -> NDArray[np.float64]:
    """Compute Wilder's average true range (TA-Lib ``ATR``).

    The first true range is at index 1 (it needs the previous close); the first
    ATR, at index ``period``, is the mean of the true ranges at 1..``period``;
    later values are smoothed with Wilder's factor ``1 / period``. The result is
    in price units. Warm-up: the first ``period`` values are NaN.

    Raises:
        IndicatorError: ``period`` is not an integer >= 1, or the three series
            are not 1-D series of finite real numbers of equal length.
    """
    period = as_int(period, name="period", minimum=1)
    h = as_series(high, name="high")
    lo = as_series(low, name="low")
    c = as_series(close, name="close")
    _same_length(high=h, low=lo, close=c)
    out = np.empty(c.shape[0], dtype=np.float64)
    if not _atr_kernel(h, lo, c, period, out):
        _check_finite(high=h, low=lo, close=c)
    return out


def bollinger_bands(close: ArrayLike, *, period: int = 20, num_std: float = 2.0) -> BollingerBands:
    """Compute Bollinger bands of ``close`` (TA-Lib ``BBANDS`` with an SMA middle band).

    The middle band is the ``period``-bar SMA; the outer bands are the middle
    band ± ``num_std`` population standard deviations of the same window. All
    three are in price units. Warm-up: the first ``period - 1`` values of each
    band are NaN.

    Raises:
        IndicatorError: ``period`` is not an integer >= 2, ``num_std`` is not a
            finite number > 0, or ``close`` is not a 1-D series of finite real
            numbers.
    """
    period = as_int(period, name="period", minimum=2)
    if (
        isinstance(num_std, bool)
        or not isinstance(num_std, int | float | np.integer | np.floating)
        or not math.isfinite(num_std)
        or num_std <= 0
    ):
        raise IndicatorError(f"num_std must be a finite number > 0, got {num_std!r}")
    x = as_series(close, name="close")
    n = x.shape[0]
    upper = np.empty(n, dtype=np.float64)
    middle = np.empty(n, dtype=np.float64)
    lower = np.empty(n, dtype=np.float64)
    if not _bbands_kernel(x, period, float(num_std), upper, middle, lower):
        _check_finite(close=x)
    return BollingerBands(upper=upper, middle=middle, lower=lower)


def macd(close: ArrayLike, *, fast: int = 12, slow: int = 26, signal: int = 9) -> MACD:
    """Compute the moving average convergence/divergence of ``close`` (TA-Lib ``MACD``).

    The line is EMA(``fast``) - EMA(``slow``) in price units, the signal is the
    ``signal``-bar EMA of the line and the histogram is line - signal. As in
    TA-Lib, both EMAs start at index ``slow - 1``, the fast one seeded with the
    SMA of the ``fast`` closes ending there. Warm-up: the first
    ``slow + signal - 2`` values of all three outputs are NaN.

    Raises:
        IndicatorError: ``fast`` is not an integer >= 2, ``slow`` not an integer
            > ``fast``, ``signal`` not an integer >= 1, or ``close`` is not a 1-D
            series of finite real numbers.
    """
    fast = as_int(fast, name="fast", minimum=2)
    slow = as_int(slow, name="slow", minimum=2)
    signal = as_int(signal, name="signal", minimum=1)
    if fast >= slow:
        raise IndicatorError(f"fast must be < slow, got fast = {fast}, slow = {slow}")
    x = as_series(close, name="close")
    n = x.shape[0]
    line = np.empty(n, dtype=np.float64)
    signal_line = np.empty(n, dtype=np.float64)
    histogram = np.empty(n, dtype=np.float64)
    if not _macd_kernel(x, fast, slow, signal, line, signal_line, histogram):
        _check_finite(close=x)
    return MACD(line=line, signal=signal_line, histogram=histogram)
