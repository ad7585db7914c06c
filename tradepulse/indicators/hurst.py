"""Generalised Hurst exponent (q = 2) of trailing windows of log prices.

Estimator. In the window of ``window`` log prices ending at bar ``t``, for lags
``tau = 1, 2, 4, ...`` up to ``max_lag``, let ``sigma(tau)`` be the standard deviation
(population, ``ddof = 0``) of the ``window - tau`` increments ``x_s - x_{s - tau}``
with both ends inside the window. For a self-similar process
``sigma(tau) ~ tau**H``, so ``H`` is the least-squares slope of ``log sigma(tau)`` on
``log tau``, clipped to ``[0, 1]``. ``H = 0.5``: random walk; ``H > 0.5``: persistent
(trending); ``H < 0.5``: anti-persistent (mean-reverting).

Small-sample bias. With 200 prices the overlapping increments of the larger lags
are few and strongly dependent (only ``window / tau`` of them are disjoint), and the
centring by the window's own mean drift removes part of the long-lag variance, so
``sigma`` of the larger lags is biased low and so is the estimate. Measured at
``window = 200`` with the default lags: a Gaussian random walk reads 0.475 on average
(standard deviation about 0.06 from window to window), fractional Brownian motion
with H = 0.75 about 0.69 and with H = 0.25 about 0.24. Compare values estimated with
the same ``window`` and ``max_lag``, not with the textbook 0.5.

Each value is recomputed from its own window (no running sums), so values are exact,
causal and independent of the series' length (a prefix gives the same values, bit
for bit). Increments are computed as ``log(close[s] / close[s - tau])``, so
multiplying every price by a power of two leaves every value unchanged, bit for bit.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators._common import as_int, as_prices, numba_kernel

__all__ = ["hurst_exponent", "hurst_lags"]

# Windows handled together: the inner loops run across consecutive windows, which
# LLVM vectorises while each window's sums still run in the order of its increments.
_BLOCK = 1024


# Strict IEEE arithmetic, cached.
_kernel = numba_kernel()
_parallel_kernel = numba_kernel(parallel=True)


@_kernel
def _moments(
    increments: NDArray[np.float64],
    tau: int,
    window: int,
    mean: NDArray[np.float64],
    acc: NDArray[np.float64],
) -> None:
    """Set ``mean[i]`` and ``acc[i]`` over ``increments[i + tau .. i + window - 1]``.

    ``acc`` is the sum of squared deviations from the mean. The loops run across the
    windows ``i`` (so they vectorise) while each window's sums run in increment order;
    four increments per pass over ``i`` and slices instead of offset indexing keep the
    accumulators in registers (several times faster, same operations in the same order).
    """
    width = mean.shape[0]
    pairs = window - tau
    mean[:] = 0.0
    j = tau
    while j + 4 <= window:
        s0 = increments[j : j + width]
        s1 = increments[j + 1 : j + 1 + width]
        s2 = increments[j + 2 : j + 2 + width]
        s3 = increments[j + 3 : j + 3 + width]
        for i in range(width):
            m = mean[i]
            m += s0[i]
            m += s1[i]
            m += s2[i]
            m += s3[i]
            mean[i] = m
        j += 4
    while j < window:
        s0 = increments[j : j + width]
        for i in range(width):
            mean[i] += s0[i]
        j += 1
    for i in range(width):
        mean[i] /= pairs
    acc[:] = 0.0
    j = tau
    while j + 4 <= window:
        s0 = increments[j : j + width]
        s1 = increments[j + 1 : j + 1 + width]
        s2 = increments[j + 2 : j + 2 + width]
        s3 = increments[j + 3 : j + 3 + width]
        for i in range(width):
            c = mean[i]
            a = acc[i]
            e = s0[i] - c
            a += e * e
            e = s1[i] - c
            a += e * e
            e = s2[i] - c
            a += e * e
            e = s3[i] - c
            a += e * e
            acc[i] = a
        j += 4
    while j < window:
        s0 = increments[j : j + width]
        for i in range(width):
            e = s0[i] - mean[i]
            acc[i] += e * e
        j += 1


@_kernel
def _hurst_block(
    close: NDArray[np.float64],
    window: int,
    lags: NDArray[np.int64],
    weights: NDArray[np.float64],
    t0: int,
    t1: int,
    out: NDArray[np.float64],
) -> None:
    """Fill ``out[t0:t1]`` with the Hurst exponent of prices ``t - window + 1 .. t``."""
    width = t1 - t0
    lo = t0 - window + 1
    increments = np.empty(t1 - lo)
    mean = np.empty(width)
    acc = np.empty(width)
    slope = np.zeros(width)
    flat = np.zeros(width, dtype=np.bool_)
    for k in range(lags.shape[0]):
        tau = lags[k]
        pairs = window - tau
        # increments[s - lo] = log(close[s] / close[s - tau]) for s >= lo + tau.
        for s in range(lo + tau, t1):
            increments[s - lo] = math.log(close[s] / close[s - tau])
        _moments(increments, tau, window, mean, acc)
        for i in range(width):
            variance = acc[i] / pairs
            if variance > 0.0:
                slope[i] += weights[k] * (0.5 * math.log(variance))
            else:
                flat[i] = True
    for i in range(width):
        out[t0 + i] = np.nan if flat[i] else min(max(slope[i], 0.0), 1.0)


@_parallel_kernel
def _hurst_kernel(
    close: NDArray[np.float64], window: int, lags: NDArray[np.int64], out: NDArray[np.float64]
) -> None:
    """Fill ``out[t]`` (t >= window - 1) with the Hurst exponent of prices t-window+1 .. t."""
    total = close.shape[0]
    first = window - 1
    n_lags = lags.shape[0]
    # Least-squares slope on log(tau): weights (u_k - mean u) / sum (u_k - mean u)^2.
    log_lags = np.empty(n_lags)
    for k in range(n_lags):
        log_lags[k] = math.log(lags[k])
    centre = 0.0
    for k in range(n_lags):
        centre += log_lags[k]
    centre /= n_lags
    spread = 0.0
    for k in range(n_lags):
        spread += (log_lags[k] - centre) ** 2
    weights = np.empty(n_lags)
    for k in range(n_lags):
        weights[k] = (log_lags[k] - centre) / spread
    blocks = (total - first + _BLOCK - 1) // _BLOCK
    for block in numba.prange(blocks):
        t0 = first + block * _BLOCK
        # A separate function: numba vectorises loops inside a prange body badly.
        _hurst_block(close, window, lags, weights, t0, min(t0 + _BLOCK, total), out)


def hurst_lags(window: int = 200, *, max_lag: int | None = None) -> tuple[int, ...]:
    """Return the lags (bars) used by :func:`hurst_exponent`: powers of two up to ``max_lag``.

    ``max_lag`` defaults to ``max(2, window // 8)`` (so 1, 2, 4, 8, 16 for 200) and
    must lie in ``[2, window // 2]`` so that two lags are fitted and every lag has at
    least ``window / 2`` increments.

    Raises:
        IndicatorError: ``window`` is not an integer >= 4, or ``max_lag`` is not an
            integer in ``[2, window // 2]``.
    """
    n = as_int(window, name="window", minimum=4)
    if max_lag is None:
        top = max(2, n // 8)
    else:
        top = as_int(max_lag, name="max_lag", minimum=2)
        if top > n // 2:
            raise IndicatorError(f"max_lag must be <= window // 2 = {n // 2}, got {max_lag!r}")
    return tuple(1 << k for k in range(top.bit_length()))


def hurst_exponent(
    close: ArrayLike, window: int = 200, *, max_lag: int | None = None
) -> NDArray[np.float64]:
    """Return the generalised (q = 2) Hurst exponent of each trailing window of ``close``.

    At bar ``t``, over the log prices of bars ``t - window + 1 .. t``: for lags
    ``tau`` in :func:`hurst_lags` (1, 2, 4, ... up to ``max_lag``, default
    ``window // 8``), ``sigma(tau)`` is the standard deviation (``ddof = 0``) of the
    increments ``log(close[s] / close[s - tau])`` with both bars in the window; the
    value is the least-squares slope of ``log sigma`` on ``log tau``, clipped to
    ``[0, 1]`` (dimensionless; see the module docstring for its small-sample bias).

    The first ``window - 1`` values are NaN (warm-up), and so is any bar where some
    ``sigma(tau)`` is 0 (e.g. constant prices).

    Raises:
        IndicatorError: ``close`` is not 1-D or holds a value that is not finite and
            positive, or ``window`` / ``max_lag`` are invalid (see :func:`hurst_lags`).
    """
    prices = as_prices(close)
    lags = np.array(hurst_lags(window, max_lag=max_lag), dtype=np.int64)
    n = int(window)
    out = np.full(prices.shape[0], np.nan)
    if prices.shape[0] >= n:
        _hurst_kernel(prices, n, lags, out)
    return out
