"""Kuramoto order parameter of detrended log prices: causal, exact and fast.

Phases come from the analytic signal of each trailing window, built exactly as
``scipy.signal.hilbert`` builds it (FFT of length ``window``), after removing the
least-squares line from the window's log prices. Only bars ``<= t`` enter the value
at bar ``t``, and only relative price moves matter: multiplying every price by
``c > 0`` leaves the values unchanged (bit for bit when ``c`` is a power of two).

How it is fast. Let ``K`` be the impulse response of the Hilbert transform of length
``N`` (the imaginary part of ``hilbert`` applied to a unit impulse); the transform of
a window is the circular convolution ``y_m = sum_j K[(m - j) mod N] x_j``. Because
the circular index depends only on the difference of the *absolute* bar numbers of
output and input sample, the transform of the window ending at ``t`` follows from the
one ending at ``t - 1`` by a rank-one update: every retained sample ``s`` gains
``K[(s - t) mod N] * (x[t] - x[t - N])``, and the new sample is computed directly as
one dot product. The line removed by detrending contributes ``slope * H(ramp)`` (the
transform of a constant is zero), so the transform of the detrended window costs
O(N) per bar instead of O(N log N) or O(N^2).

Each transformed value is defined canonically: a direct dot product when its sample
enters (or, for the first ``N`` samples, over the first window), then the same updates
in bar order, at most ``N - 1`` of them. So rounding never drifts along the series,
and the value at bar ``t`` does not depend on how the series is split into the blocks
that run in parallel, nor on how long the series is: a prefix gives the same values,
bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar, cast

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError

__all__ = ["DEGENERATE_TOLERANCE", "kuramoto_cross", "kuramoto_order"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: A window whose detrended log prices all lie within this distance of zero (a
#: relative deviation from the fitted geometric trend below 1e-12, far below any
#: real price move yet far above the rounding noise of the fit) has no phases: R is NaN.
DEGENERATE_TOLERANCE = 1e-12

# Windows handled by one parallel task. Only speed depends on it, never the values.
_BLOCK = 16384


def _kernel(func: _F) -> _F:
    """Compile ``func`` with numba (cached on disk, strict IEEE arithmetic), keeping its type."""
    return cast(_F, numba.njit(cache=True, fastmath=False)(func))


def _parallel_kernel(func: _F) -> _F:
    """Like :func:`_kernel`, with ``prange`` loops run in parallel."""
    return cast(_F, numba.njit(cache=True, fastmath=False, parallel=True)(func))


# --------------------------------------------------------------------------- kernels


@_kernel
def _direct(kernel_rev: NDArray[np.float64], x: NDArray[np.float64], start: int) -> float:
    """Return ``sum_j kernel_rev[j] * x[start + j]`` in a fixed summation order.

    Four interleaved partial sums (combined in a fixed order) break the dependency
    chain of a single running sum; the order never depends on the data or the caller.
    """
    n = kernel_rev.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    j = 0
    while j + 4 <= n:
        s0 += kernel_rev[j] * x[start + j]
        s1 += kernel_rev[j + 1] * x[start + j + 1]
        s2 += kernel_rev[j + 2] * x[start + j + 2]
        s3 += kernel_rev[j + 3] * x[start + j + 3]
        j += 4
    while j < n:
        s0 += kernel_rev[j] * x[start + j]
        j += 1
    return (s0 + s1) + (s2 + s3)


@_kernel
def _fit_line(
    x: NDArray[np.float64],
    start: int,
    ramp: NDArray[np.float64],
    ramp_sumsq: float,
    out_u: NDArray[np.float64],
) -> tuple[float, float]:
    """Write ``x[start:start+N] - x[start]`` to ``out_u``; return its mean and slope.

    ``ramp`` is the centred index ``j - (N - 1) / 2``, so the least-squares slope is
    ``sum(ramp * u) / sum(ramp**2)`` and the intercept at the centre is ``mean(u)``.
    Subtracting the first value first keeps the sums small and accurate.
    """
    n = ramp.shape[0]
    ref = x[start]
    a0 = 0.0
    a1 = 0.0
    b0 = 0.0
    b1 = 0.0
    j = 0
    while j + 2 <= n:
        u0 = x[start + j] - ref
        u1 = x[start + j + 1] - ref
        out_u[j] = u0
        out_u[j + 1] = u1
        a0 += u0
        a1 += u1
        b0 += ramp[j] * u0
        b1 += ramp[j + 1] * u1
        j += 2
    while j < n:
        u0 = x[start + j] - ref
        out_u[j] = u0
        a0 += u0
        b0 += ramp[j] * u0
        j += 1
    return (a0 + a1) / n, (b0 + b1) / ramp_sumsq


@_kernel
def _order_of_window(
    u: NDArray[np.float64],
    transformed: NDArray[np.float64],
    first_slot: int,
    mean: float,
    slope: float,
    ramp: NDArray[np.float64],
    ramp_transform: NDArray[np.float64],
    r: NDArray[np.float64],
    y: NDArray[np.float64],
) -> float:
    """Return R of one window from its offsets ``u`` and ring-buffered transform.

    ``transformed[(first_slot + j) % N]`` holds the Hilbert transform of the raw log
    prices at window position ``j``; the detrended signal is ``u - mean - slope*ramp``
    and its transform ``transformed - slope * ramp_transform``.
    """
    n: int = u.shape[0]
    head = n - first_slot
    for j in range(head):
        y[j] = transformed[first_slot + j] - slope * ramp_transform[j]
    for j in range(head, n):
        y[j] = transformed[j - head] - slope * ramp_transform[j]
    largest = 0.0
    for j in range(n):
        v = (u[j] - mean) - slope * ramp[j]
        r[j] = v
        largest = max(largest, abs(v))
    if not largest > DEGENERATE_TOLERANCE:
        return np.nan
    # Unit phasors z / |z|; np.angle(0) is 0, so a zero sample counts as phase 0.
    for j in range(n):
        m2 = r[j] * r[j] + y[j] * y[j]
        if m2 > 0.0:
            inv = 1.0 / math.sqrt(m2)
            r[j] = r[j] * inv
            y[j] = y[j] * inv
        else:
            r[j] = 1.0
            y[j] = 0.0
    c0 = 0.0
    c1 = 0.0
    c2 = 0.0
    c3 = 0.0
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    j = 0
    while j + 4 <= n:
        c0 += r[j]
        c1 += r[j + 1]
        c2 += r[j + 2]
        c3 += r[j + 3]
        s0 += y[j]
        s1 += y[j + 1]
        s2 += y[j + 2]
        s3 += y[j + 3]
        j += 4
    while j < n:
        c0 += r[j]
        s0 += y[j]
        j += 1
    c: float = (c0 + c1) + (c2 + c3)
    s: float = (s0 + s1) + (s2 + s3)
    return min(math.sqrt(c * c + s * s) / n, 1.0)


@_parallel_kernel
def _order_kernel(
    x: NDArray[np.float64],
    kernel: NDArray[np.float64],
    ramp: NDArray[np.float64],
    ramp_sumsq: float,
    ramp_transform: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Fill ``out[t]`` (t >= N - 1) with R of the window ``x[t-N+1 .. t]``."""
    total = x.shape[0]
    n = kernel.shape[0]
    kernel_rev = kernel[::-1].copy()
    first = n - 1
    count = total - first
    blocks = (count + _BLOCK - 1) // _BLOCK
    for block in numba.prange(blocks):
        t0 = first + block * _BLOCK
        t1 = min(t0 + _BLOCK, total)
        ring = np.zeros(n)
        u = np.empty(n)
        r = np.empty(n)
        y = np.empty(n)
        # Start N - 1 bars early so that every sample of window t0 entered the ring
        # inside this block and carries its canonical value (see the module docstring).
        start = t0 - n + 1
        if start <= first:
            start = first
            for s in range(n):
                acc = 0.0
                for j in range(n):
                    acc += kernel[(s - j + n) % n] * x[j]
                ring[s] = acc
        else:
            ring[start % n] = _direct(kernel_rev, x, start - n + 1)
        for t in range(start, t1):
            if t > start:
                q = t % n
                d = x[t] - x[t - n]
                for p in range(q + 1, n):
                    ring[p] += kernel[p - q] * d
                for p in range(q):
                    ring[p] += kernel[p - q + n] * d
                ring[q] = _direct(kernel_rev, x, t - n + 1)
            if t >= t0:
                mean, slope = _fit_line(x, t - n + 1, ramp, ramp_sumsq, u)
                out[t] = _order_of_window(
                    u, ring, (t + 1) % n, mean, slope, ramp, ramp_transform, r, y
                )


@_parallel_kernel
def _cross_kernel(
    x: NDArray[np.float64],
    kernel: NDArray[np.float64],
    ramp: NDArray[np.float64],
    ramp_sumsq: float,
    ramp_transform: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Fill ``out[t]`` with R across the columns of ``x`` of their last-sample phases."""
    total = x.shape[0]
    assets = x.shape[1]
    n = kernel.shape[0]
    kernel_rev = kernel[::-1].copy()
    first = n - 1
    count = total - first
    blocks = (count + _BLOCK - 1) // _BLOCK
    last = ramp[n - 1]
    last_transform = ramp_transform[n - 1]
    for block in numba.prange(blocks):
        t0 = first + block * _BLOCK
        t1 = min(t0 + _BLOCK, total)
        lo = t0 - n + 1
        u = np.empty(n)
        column = np.empty(t1 - lo)
        c = np.zeros(t1 - t0)
        s = np.zeros(t1 - t0)
        bad = np.zeros(t1 - t0, dtype=np.bool_)
        for a in range(assets):
            for i in range(lo, t1):
                column[i - lo] = x[i, a]
            for t in range(t0, t1):
                mean, slope = _fit_line(column, t - n + 1 - lo, ramp, ramp_sumsq, u)
                largest = 0.0
                for j in range(n):
                    largest = max(largest, abs((u[j] - mean) - slope * ramp[j]))
                if not largest > DEGENERATE_TOLERANCE:
                    bad[t - t0] = True
                    continue
                re = (u[n - 1] - mean) - slope * last
                im = _direct(kernel_rev, column, t - n + 1 - lo) - slope * last_transform
                m2 = re * re + im * im
                if m2 > 0.0:
                    inv = 1.0 / math.sqrt(m2)
                    c[t - t0] += re * inv
                    s[t - t0] += im * inv
                else:
                    c[t - t0] += 1.0
        for i in range(t1 - t0):
            if bad[i]:
                out[t0 + i] = np.nan
            else:
                out[t0 + i] = min(math.sqrt(c[i] * c[i] + s[i] * s[i]) / assets, 1.0)


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=16)
def _operators(
    window: int,
) -> tuple[NDArray[np.float64], NDArray[np.float64], float, NDArray[np.float64]]:
    """Return the Hilbert kernel, the centred ramp, its sum of squares and its transform."""
    mask = np.zeros(window // 2 + 1, dtype=np.complex128)
    # scipy.signal.hilbert doubles the positive frequencies and zeroes the negative
    # ones; its imaginary part keeps -1j on 0 < k < N/2 and nothing at DC or Nyquist.
    mask[1 : (window - 1) // 2 + 1] = -1j
    kernel = np.fft.irfft(mask, n=window)
    ramp = np.arange(window, dtype=np.float64) - (window - 1) / 2.0
    index = (np.arange(window)[:, None] - np.arange(window)[None, :]) % window
    ramp_transform = kernel[index] @ ramp
    for array in (kernel, ramp, ramp_transform):
        array.setflags(write=False)
    return kernel, ramp, float(ramp @ ramp), ramp_transform


def _window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise IndicatorError(f"window must be an integer, got {window!r}")
    if window < 3:
        raise IndicatorError(f"window must be >= 3, got {window!r}")
    return int(window)


def _prices(close: ArrayLike, name: str, ndim: int) -> NDArray[np.float64]:
    """Return ``close`` as a C-contiguous float64 array of finite positive prices."""
    try:
        array = np.asarray(close)
    except (TypeError, ValueError) as exc:
        raise IndicatorError(f"{name} must be an array of real numbers: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise IndicatorError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim != ndim:
        raise IndicatorError(f"{name} must be {ndim}-D, got shape {array.shape}")
    prices = np.ascontiguousarray(array, dtype=np.float64)
    bad = np.flatnonzero(~(np.isfinite(prices) & (prices > 0.0)).ravel())
    if bad.size:
        where = np.unravel_index(int(bad[0]), prices.shape)
        index = ", ".join(str(int(i)) for i in where)
        raise IndicatorError(
            f"{name} must be finite and > 0, got {name}[{index}] = {float(prices[where])!r}"
        )
    return prices


def _log_relative(prices: NDArray[np.float64]) -> NDArray[np.float64]:
    """Return ``log(prices / prices[0])`` (per column); exact under power-of-two scaling."""
    return np.ascontiguousarray(np.log(prices / prices[:1]))


# --------------------------------------------------------------------------- public API


def kuramoto_order(close: ArrayLike, window: int = 200) -> NDArray[np.float64]:
    """Return the Kuramoto order parameter R of each trailing window of ``close``.

    For every bar ``t >= window - 1``, take the log prices of bars
    ``t - window + 1 .. t``, remove their least-squares line (which also removes the
    mean), form the analytic signal ``z_j`` exactly as ``scipy.signal.hilbert`` does
    with ``N = window``, and return ``R_t = |mean_j z_j / |z_j||``, a dimensionless
    number in ``[0, 1]`` (1: one common phase; near 0: phases spread round the circle).
    A sample with ``z_j == 0`` counts as phase 0, as ``numpy.angle`` has it.

    The first ``window - 1`` values are NaN (warm-up), and so is every bar whose
    detrended window is identically zero within :data:`DEGENERATE_TOLERANCE`
    (constant prices or an exact geometric trend), where phases are undefined.

    Raises:
        IndicatorError: ``close`` is not 1-D or holds a value that is not finite and
            positive, or ``window`` is not an integer >= 3.
    """
    prices = _prices(close, "close", 1)
    n = _window(window)
    out = np.full(prices.shape[0], np.nan)
    if prices.shape[0] >= n:
        kernel, ramp, ramp_sumsq, ramp_transform = _operators(n)
        _order_kernel(_log_relative(prices), kernel, ramp, ramp_sumsq, ramp_transform, out)
    return out


def kuramoto_cross(closes: ArrayLike, window: int = 200) -> NDArray[np.float64]:
    """Return the cross-asset Kuramoto order parameter of a ``(bars, assets)`` price matrix.

    Each asset's instantaneous phase at bar ``t`` is the angle of the *last* sample of
    the analytic signal of its own trailing window (log prices of bars
    ``t - window + 1 .. t``, least-squares line removed, ``scipy.signal.hilbert`` with
    ``N = window``), so it uses only bars ``<= t``; ``R_t = |mean_a exp(i theta_a,t)|``
    in ``[0, 1]``. Caveat: the last sample sits at the edge of the window, where the
    FFT-based transform sees the wrap-around to the window's first sample, so the
    phase is noisier than mid-window phases; it is still causal and it is the same
    edge effect for every asset.

    The first ``window - 1`` values are NaN (warm-up), and so is every bar at which
    some asset's detrended window is identically zero (see :func:`kuramoto_order`).

    Raises:
        IndicatorError: ``closes`` is not 2-D with at least two columns or holds a value
            that is not finite and positive, or ``window`` is not an integer >= 3.
    """
    prices = _prices(closes, "closes", 2)
    if prices.shape[1] < 2:
        raise IndicatorError(f"closes must have at least 2 assets (columns), got {prices.shape}")
    n = _window(window)
    out = np.full(prices.shape[0], np.nan)
    if prices.shape[0] >= n:
        kernel, ramp, ramp_sumsq, ramp_transform = _operators(n)
        _cross_kernel(_log_relative(prices), kernel, ramp, ramp_sumsq, ramp_transform, out)
    return out
