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
one ending at ``t - 1`` by a rank-one update: the sample at window position ``j``
becomes ``y_{j+1} + K[j + 1] * (x[t] - x[t - N])``, and the new sample is one dot
product. The line removed by detrending contributes ``slope * H(ramp)`` (the
transform of a constant is zero), so the transform of the detrended window costs
O(N) per bar instead of O(N log N) or O(N^2). Windows are processed in groups of
consecutive bars whose inner loops run across the group, so they vectorise while
every window's sums still run in its own fixed order.

Each transformed value is defined canonically: a direct dot product when its sample
enters (or, for the first ``N`` samples, over the first window), then the same updates
in bar order, at most ``N - 1`` of them. So rounding never drifts along the series,
and the value at bar ``t`` does not depend on how the series is split into the blocks
that run in parallel, nor on how long the series is: a prefix gives the same values,
bit for bit.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numba
import numpy as np
from numpy.typing import ArrayLike, NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators._common import as_int, as_prices, numba_kernel

__all__ = ["DEGENERATE_TOLERANCE", "kuramoto_cross", "kuramoto_order"]

#: A window whose detrended log prices all lie within this distance of zero (a
#: relative deviation from the fitted geometric trend below 1e-12, far below any
#: real price move yet far above the rounding noise of the fit) has no phases: R is NaN.
DEGENERATE_TOLERANCE = 1e-12

# Bars handled by one parallel task, and windows handled together inside it. Only
# speed depends on them, never the values.
_BLOCK = 16384
_GROUP = 16


# Strict IEEE arithmetic, cached. error_model="numpy" lets division by zero give inf/NaN
# instead of raising, which keeps the inner loops branch-free (and vectorisable); no
# kernel here returns a value computed from such a division.
_kernel = numba_kernel(error_model="numpy")
_parallel_kernel = numba_kernel(parallel=True, error_model="numpy")


# --------------------------------------------------------------------------- kernels


@_kernel
def _window_sums(
    x: NDArray[np.float64],
    first: int,
    lanes: int,
    kernel_rev: NDArray[np.float64],
    ramp: NDArray[np.float64],
    direct: NDArray[np.float64],
    ref: NDArray[np.float64],
    sum_u: NDArray[np.float64],
    sum_ramp_u: NDArray[np.float64],
) -> None:
    """Sums over the windows ``x[first + g .. first + g + N - 1]``, ``g < lanes``.

    ``direct[g]``: the Hilbert transform of the raw window at its last sample,
    ``sum_j kernel_rev[j] * x_j``; ``ref[g]``: the window's first value;
    ``sum_u[g]`` and ``sum_ramp_u[g]``: sums of ``u_j = x_j - ref`` and
    ``ramp[j] * u_j``. Every sum runs over ``j`` in order, whatever ``g`` and ``lanes``.
    """
    n = ramp.shape[0]
    for g in range(lanes):
        direct[g] = 0.0
        ref[g] = x[first + g]
        sum_u[g] = 0.0
        sum_ramp_u[g] = 0.0
    for j in range(n):
        k = kernel_rev[j]
        r = ramp[j]
        # Slices rather than offset indexing: numba vectorises these loops far better.
        values = x[first + j : first + j + lanes]
        for g in range(lanes):
            v = values[g]
            direct[g] += k * v
            u = v - ref[g]
            sum_u[g] += u
            sum_ramp_u[g] += r * u


@_kernel
def _order_block(
    x: NDArray[np.float64],
    t0: int,
    t1: int,
    kernel: NDArray[np.float64],
    kernel_rev: NDArray[np.float64],
    ramp: NDArray[np.float64],
    ramp_sumsq: float,
    ramp_transform: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Fill ``out[t0:t1]`` with R of the windows ``x[t-N+1 .. t]``."""
    n = kernel.shape[0]
    first = n - 1
    # transformed[j, g]: transform of the raw window ending at bar g0 + g, at its
    # position j. Column 0 carries over from the previous group.
    transformed = np.zeros((n, _GROUP + 1))
    step = np.zeros(_GROUP + 1)
    direct = np.empty(_GROUP + 1)
    ref = np.empty(_GROUP + 1)
    sum_u = np.empty(_GROUP + 1)
    sum_ramp_u = np.empty(_GROUP + 1)
    mean = np.empty(_GROUP)
    slope = np.empty(_GROUP)
    largest = np.empty(_GROUP)
    cos_sum = np.empty(_GROUP)
    sin_sum = np.empty(_GROUP)
    # Start N - 1 bars early so that every sample of window t0 entered inside this
    # block and carries its canonical value (see the module docstring).
    start = max(first, t0 - n + 1)
    if start == first:
        for s in range(n):
            acc = 0.0
            for j in range(n):
                acc += kernel[(s - j + n) % n] * x[j]
            transformed[s, 0] = acc
    else:
        acc = 0.0
        for j in range(n):
            acc += kernel_rev[j] * x[start - n + 1 + j]
        transformed[n - 1, 0] = acc
    for g0 in range(start, t1, _GROUP):
        width = min(_GROUP, t1 - g0)
        # Windows g0 + 1 .. g0 + fresh get their transforms from column 0; the
        # column after the last window of the group seeds the next group.
        fresh = width if g0 + width < t1 else width - 1
        lanes = max(width, fresh + 1)
        base = g0 - n + 1
        _window_sums(x, base, lanes, kernel_rev, ramp, direct, ref, sum_u, sum_ramp_u)
        for g in range(1, fresh + 1):
            step[g] = x[g0 + g] - x[g0 + g - n]
            transformed[n - 1, g] = direct[g]
        for j in range(n - 2, -1, -1):
            k = kernel[j + 1]
            target = transformed[j, 1 : fresh + 1]
            source = transformed[j + 1, :fresh]
            steps = step[1 : fresh + 1]
            for g in range(fresh):
                target[g] = source[g] + k * steps[g]
        if g0 + width > t0:
            for g in range(width):
                mean[g] = sum_u[g] / n
                slope[g] = sum_ramp_u[g] / ramp_sumsq
                largest[g] = 0.0
                cos_sum[g] = 0.0
                sin_sum[g] = 0.0
            for j in range(n):
                r = ramp[j]
                h = ramp_transform[j]
                values = x[base + j : base + j + width]
                row = transformed[j]
                for g in range(width):
                    re = ((values[g] - ref[g]) - mean[g]) - slope[g] * r
                    im = row[g] - slope[g] * h
                    size = abs(re)
                    largest[g] = size if size > largest[g] else largest[g]
                    m2 = re * re + im * im
                    inv = 1.0 / math.sqrt(m2)
                    # A zero sample has phase 0, as numpy.angle(0) has it.
                    nonzero = m2 > 0.0
                    cos_sum[g] += re * inv if nonzero else 1.0
                    sin_sum[g] += im * inv if nonzero else 0.0
            for g in range(width):
                t = g0 + g
                if t < t0:
                    continue
                if largest[g] > DEGENERATE_TOLERANCE:
                    c = cos_sum[g]
                    s = sin_sum[g]
                    out[t] = min(math.sqrt(c * c + s * s) / n, 1.0)
                else:
                    out[t] = np.nan
        if fresh == width:
            for j in range(n):
                transformed[j, 0] = transformed[j, width]


@_parallel_kernel
def _order_kernel(
    x: NDArray[np.float64],
    kernel: NDArray[np.float64],
    ramp: NDArray[np.float64],
    ramp_sumsq: float,
    ramp_transform: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Fill ``out[t]`` (t >= N - 1) with R of the window ``x[t-N+1 .. t]``, in parallel blocks."""
    total = x.shape[0]
    n = kernel.shape[0]
    kernel_rev = kernel[::-1].copy()
    first = n - 1
    blocks = (total - first + _BLOCK - 1) // _BLOCK
    for block in numba.prange(blocks):
        t0 = first + block * _BLOCK
        t1 = min(t0 + _BLOCK, total)
        # A separate function: numba vectorises loops inside a prange body badly.
        _order_block(x, t0, t1, kernel, kernel_rev, ramp, ramp_sumsq, ramp_transform, out)


@_kernel
def _cross_block(
    x: NDArray[np.float64],
    t0: int,
    t1: int,
    kernel_rev: NDArray[np.float64],
    ramp: NDArray[np.float64],
    ramp_sumsq: float,
    ramp_transform: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Fill ``out[t0:t1]`` with R across the columns of ``x`` of their last-sample phases."""
    assets = x.shape[1]
    n = ramp.shape[0]
    last_ramp = ramp[n - 1]
    last_transform = ramp_transform[n - 1]
    lo = t0 - n + 1
    column = np.empty(t1 - lo)
    cos_sum = np.zeros(t1 - t0)
    sin_sum = np.zeros(t1 - t0)
    degenerate = np.zeros(t1 - t0, dtype=np.bool_)
    direct = np.empty(_GROUP)
    ref = np.empty(_GROUP)
    sum_u = np.empty(_GROUP)
    sum_ramp_u = np.empty(_GROUP)
    for a in range(assets):
        for i in range(lo, t1):
            column[i - lo] = x[i, a]
        for g0 in range(t0, t1, _GROUP):
            width = min(_GROUP, t1 - g0)
            base = g0 - n + 1 - lo
            _window_sums(column, base, width, kernel_rev, ramp, direct, ref, sum_u, sum_ramp_u)
            for g in range(width):
                i = g0 + g - t0
                mean = sum_u[g] / n
                slope = sum_ramp_u[g] / ramp_sumsq
                re = ((column[base + g + n - 1] - ref[g]) - mean) - slope * last_ramp
                # A last residual above the tolerance already proves the window is not
                # degenerate; only otherwise are the other residuals scanned.
                if not abs(re) > DEGENERATE_TOLERANCE:
                    largest = 0.0
                    for j in range(n):
                        v = ((column[base + g + j] - ref[g]) - mean) - slope * ramp[j]
                        largest = max(largest, abs(v))
                    if not largest > DEGENERATE_TOLERANCE:
                        degenerate[i] = True
                        continue
                im = direct[g] - slope * last_transform
                m2 = re * re + im * im
                if m2 > 0.0:
                    inv = 1.0 / math.sqrt(m2)
                    cos_sum[i] += re * inv
                    sin_sum[i] += im * inv
                else:
                    cos_sum[i] += 1.0
    for i in range(t1 - t0):
        if degenerate[i]:
            out[t0 + i] = np.nan
        else:
            c = cos_sum[i]
            s = sin_sum[i]
            out[t0 + i] = min(math.sqrt(c * c + s * s) / assets, 1.0)


@_parallel_kernel
def _cross_kernel(
    x: NDArray[np.float64],
    kernel: NDArray[np.float64],
    ramp: NDArray[np.float64],
    ramp_sumsq: float,
    ramp_transform: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """Fill ``out[t]`` (t >= N - 1) with the cross-asset R, in parallel blocks."""
    total = x.shape[0]
    n = kernel.shape[0]
    kernel_rev = kernel[::-1].copy()
    first = n - 1
    blocks = (total - first + _BLOCK - 1) // _BLOCK
    for block in numba.prange(blocks):
        t0 = first + block * _BLOCK
        t1 = min(t0 + _BLOCK, total)
        _cross_block(x, t0, t1, kernel_rev, ramp, ramp_sumsq, ramp_transform, out)


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
    prices = as_prices(close)
    n = as_int(window, name="window", minimum=3)
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
    prices = as_prices(closes, name="closes", ndim=2)
    if prices.shape[1] < 2:
        raise IndicatorError(f"closes must have at least 2 assets (columns), got {prices.shape}")
    n = as_int(window, name="window", minimum=3)
    out = np.full(prices.shape[0], np.nan)
    if prices.shape[0] >= n:
        kernel, ramp, ramp_sumsq, ramp_transform = _operators(n)
        _cross_kernel(_log_relative(prices), kernel, ramp, ramp_sumsq, ramp_transform, out)
    return out
