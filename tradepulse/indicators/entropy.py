"""Shannon entropy of trailing log-return distributions, and its change.

Each value is recomputed from its own window (no running sums), so it is exact,
causal and independent of the series' length: a prefix gives the same values, bit
for bit. Returns are ``log(close[t] / close[t - 1])``, so multiplying every price by
a power of two leaves every value unchanged, bit for bit (by any ``c > 0`` up to the
rounding of the ratios).

The histogram is ``numpy.histogram(returns, bins)`` to the last count: ``bins``
equal-width bins whose edges are ``numpy.linspace(min, max, bins + 1)``; bin ``k``
holds ``edges[k] <= r < edges[k + 1]`` and the last bin also holds the maximum.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.indicators._common import as_int, as_prices, numba_kernel

__all__ = ["entropy_change", "shannon_entropy", "sturges_bins"]

# Windows handled by one parallel task. Only speed depends on it, never the values.
_BLOCK = 8192


# Strict IEEE arithmetic, cached.
_kernel = numba_kernel()
_parallel_kernel = numba_kernel(parallel=True)


@_kernel
def _entropy_block(
    returns: NDArray[np.float64],
    window: int,
    bins: int,
    table: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Set ``out[i]`` to the entropy of ``returns[i .. i + window - 1]`` for every ``i``."""
    width = out.shape[0]
    # Smallest and largest return of every window, with the loops running across
    # windows (vectorised); min and max are exact, so the order is immaterial anyway.
    low = returns[:width].copy()
    high = returns[:width].copy()
    for j in range(1, window):
        values = returns[j : j + width]
        for i in range(width):
            v = values[i]
            low[i] = v if v < low[i] else low[i]
            high[i] = v if v > high[i] else high[i]
    ceiling = math.log(bins)
    last = bins - 1
    index = np.empty(window, dtype=np.int64)
    # Four interleaved histograms: consecutive returns often share a bin, and one
    # histogram would serialise on that bin's counter.
    counts = np.zeros((4, bins), dtype=np.int64)
    for i in range(width):
        lo = low[i]
        hi = high[i]
        if lo == hi:
            out[i] = 0.0
            continue
        # numpy.linspace: edge k is k * step + lo, and the last edge is hi.
        span = hi - lo
        step = span / bins
        scale = bins / span
        values = returns[i : i + window]
        for j in range(window):
            v = values[j]
            k = min(int((v - lo) * scale), last)
            # The estimate is within one bin; settle it against the exact edges.
            below = v < k * step + lo
            above = k < last and v >= (k + 1) * step + lo
            index[j] = k - 1 if below else (k + 1 if above else k)
        counts[:, :] = 0
        for j in range(window):
            counts[j & 3, index[j]] += 1
        h = 0.0
        for k in range(bins):
            h += table[counts[0, k] + counts[1, k] + counts[2, k] + counts[3, k]]
        out[i] = min(max(h, 0.0), ceiling)


@_parallel_kernel
def _entropy_kernel(
    close: NDArray[np.float64], window: int, bins: int, out: NDArray[np.float64]
) -> None:
    """Fill ``out[t]`` (t >= window) with the entropy of returns of bars t-window+1 .. t."""
    total = close.shape[0]
    # -(c / W) * log(c / W) for every possible bin count c: no logarithm per window.
    table = np.zeros(window + 1)
    for c in range(1, window + 1):
        p = c / window
        table[c] = -p * math.log(p)
    blocks = (total - window + _BLOCK - 1) // _BLOCK
    for block in numba.prange(blocks):
        t0 = window + block * _BLOCK
        t1 = min(t0 + _BLOCK, total)
        # Returns of bars t0 - window + 1 .. t1 - 1; window t starts at t - t0.
        lo = t0 - window + 1
        returns = np.empty(t1 - lo)
        for i in range(lo, t1):
            returns[i - lo] = math.log(close[i] / close[i - 1])
        # A separate function: numba vectorises loops inside a prange body badly.
        _entropy_block(returns, window, bins, table, out[t0:t1])


def sturges_bins(window: int) -> int:
    """Return Sturges' bin count ``ceil(log2(window)) + 1`` (9 for a window of 200).

    Raises:
        IndicatorError: ``window`` is not an integer >= 2.
    """
    n = as_int(window, name="window", minimum=2)
    # (n - 1).bit_length() is ceil(log2(n)) exactly, with no floating-point edge cases.
    return (n - 1).bit_length() + 1


def _entropy(close: ArrayLike, window: int, bins: int | None) -> NDArray[np.float64]:
    prices = as_prices(close)
    n = as_int(window, name="window", minimum=2)
    k = sturges_bins(n) if bins is None else as_int(bins, name="bins", minimum=2)
    out = np.full(prices.shape[0], np.nan)
    if prices.shape[0] > n:
        _entropy_kernel(prices, n, k, out)
    return out


# --------------------------------------------------------------------------- public API


def shannon_entropy(
    close: ArrayLike, window: int = 200, *, bins: int | None = None
) -> NDArray[np.float64]:
    """Return the Shannon entropy (nats) of the last ``window`` log returns at each bar.

    At bar ``t`` the returns ``log(close[s] / close[s - 1])`` for
    ``s = t - window + 1 .. t`` are put in ``bins`` equal-width bins spanning their
    minimum and maximum (exactly as ``numpy.histogram(returns, bins)``), and the value
    is ``-sum p_k log p_k`` with ``p_k`` the bin frequencies: 0 when every return is
    equal, at most ``log(bins)``. ``bins`` defaults to Sturges' rule
    ``ceil(log2(window)) + 1`` (9 for a window of 200).

    The first ``window`` values are NaN (warm-up: ``window`` returns need
    ``window + 1`` prices).

    Raises:
        IndicatorError: ``close`` is not 1-D or holds a value that is not finite and
            positive, ``window`` is not an integer >= 2, or ``bins`` is not an
            integer >= 2.
    """
    return _entropy(close, window, bins)


def entropy_change(
    close: ArrayLike, window: int = 200, *, bins: int | None = None
) -> NDArray[np.float64]:
    """Return the change in Shannon entropy (nats) between consecutive return windows.

    ``dH_t = H_t - H_{t - window}``, with ``H`` as :func:`shannon_entropy`: the
    entropy of the last ``window`` returns minus that of the ``window`` returns just
    before them (the two windows do not overlap). Positive values mean the return
    distribution became more disordered.

    The first ``2 * window`` values are NaN (warm-up).

    Raises:
        IndicatorError: as :func:`shannon_entropy`.
    """
    entropy = _entropy(close, window, bins)
    n = int(window)
    out = np.full(entropy.shape[0], np.nan)
    out[n:] = entropy[n:] - entropy[:-n]
    return out
