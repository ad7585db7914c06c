"""Tests of the rolling generalised Hurst exponent."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from _helpers import (
    WalkSpec,
    assert_causal,
    assert_in_unit_interval,
    assert_prefix_stable,
    assert_scale_free,
    random_walk,
    walk_specs,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators import hurst
from tradepulse.indicators.hurst import hurst_exponent, hurst_lags


def _fractional_gaussian_noise(n: int, hurst_index: float, seed: int) -> NDArray:
    """Exact fractional Gaussian noise by circulant embedding (Davies and Harte, 1987).

    The autocovariance of unit fGn is
    ``g(k) = (|k + 1|**2H - 2 |k|**2H + |k - 1|**2H) / 2``; embedded in a circulant
    matrix of size 2n, whose eigenvalues are non-negative for every H in (0, 1), it
    yields samples with exactly that covariance.
    """
    k = np.arange(n + 1, dtype=np.float64)
    two_h = 2.0 * hurst_index
    g = 0.5 * (np.abs(k + 1) ** two_h - 2.0 * k**two_h + np.abs(k - 1) ** two_h)
    eigenvalues = np.fft.fft(np.concatenate([g, g[-2:0:-1]])).real
    assert eigenvalues.min() > -1e-9  # the embedding is valid (test set-up, not input)
    m = 2 * n
    rng = np.random.default_rng(seed)
    z = rng.normal(size=m) + 1j * rng.normal(size=m)
    return np.fft.fft(np.sqrt(np.clip(eigenvalues, 0.0, None) / m) * z).real[:n]


def _fbm_prices(n: int, hurst_index: float, seed: int) -> NDArray:
    return 100.0 * np.exp(1e-3 * np.cumsum(_fractional_gaussian_noise(n, hurst_index, seed)))


def _reference_hurst(close: NDArray, window: int, lags: tuple[int, ...]) -> NDArray:
    """numpy per window: std of lagged log-price differences, polyfit on log-log."""
    x = np.log(close)
    tau = np.array(lags, dtype=np.float64)
    out = np.full(x.shape[0], np.nan)
    for t in range(window - 1, x.shape[0]):
        w = x[t - window + 1 : t + 1]
        sigma = [np.std(w[lag:] - w[:-lag]) for lag in lags]
        out[t] = np.clip(np.polyfit(np.log(tau), np.log(sigma), 1)[0], 0.0, 1.0)
    return out


# --------------------------------------------------------------------------- reference


@pytest.mark.parametrize(("window", "max_lag"), [(200, None), (64, None), (100, 50), (16, 4)])
def test_hurst_matches_numpy_per_window(window: int, max_lag: int | None) -> None:
    close = random_walk(900, seed=window)

    result = hurst_exponent(close, window, max_lag=max_lag)

    expected = _reference_hurst(close, window, hurst_lags(window, max_lag=max_lag))
    assert np.isnan(result[: window - 1]).all()
    np.testing.assert_allclose(result[window - 1 :], expected[window - 1 :], rtol=0, atol=1e-9)


def test_hurst_across_parallel_blocks_matches_reference_near_the_boundary() -> None:
    window = 40
    close = random_walk(hurst._BLOCK + 4 * window, seed=9)
    boundary = window - 1 + hurst._BLOCK

    result = hurst_exponent(close, window)

    tail = close[boundary - 2 * window :]
    expected = _reference_hurst(tail, window, hurst_lags(window))
    np.testing.assert_allclose(
        result[boundary - window - 1 :], expected[window - 1 :], rtol=0, atol=1e-9
    )


@pytest.mark.parametrize(
    ("window", "max_lag", "lags"),
    [
        (200, None, (1, 2, 4, 8, 16)),
        (64, None, (1, 2, 4, 8)),
        (16, None, (1, 2)),
        (4, None, (1, 2)),
        (200, 100, (1, 2, 4, 8, 16, 32, 64)),
        (200, 64, (1, 2, 4, 8, 16, 32, 64)),
    ],
)
def test_lags_are_powers_of_two_up_to_max_lag(
    window: int, max_lag: int | None, lags: tuple[int, ...]
) -> None:
    assert hurst_lags(window, max_lag=max_lag) == lags


# --------------------------------------------------------------------------- synthetic series


def test_random_walk_has_hurst_near_one_half() -> None:
    result = hurst_exponent(random_walk(20_000, seed=10))

    assert abs(np.nanmean(result) - 0.5) < 0.05


def test_persistent_fbm_has_hurst_above_six_tenths() -> None:
    result = hurst_exponent(_fbm_prices(8192, 0.75, seed=11))

    assert np.nanmean(result) > 0.6


def test_anti_persistent_fbm_has_hurst_below_four_tenths() -> None:
    result = hurst_exponent(_fbm_prices(8192, 0.25, seed=12))

    assert np.nanmean(result) < 0.4


def test_ornstein_uhlenbeck_log_prices_are_anti_persistent() -> None:
    # Strong mean reversion: x_t = 0.5 x_{t-1} + noise (AR(1), i.e. discretised OU).
    rng = np.random.default_rng(13)
    noise = rng.normal(0.0, 1e-3, 10_000)
    x = np.zeros_like(noise)
    for t in range(1, noise.shape[0]):
        x[t] = 0.5 * x[t - 1] + noise[t]

    result = hurst_exponent(100.0 * np.exp(x))

    assert np.nanmean(result) < 0.4


def test_alternating_prices_are_clipped_to_zero() -> None:
    # Log prices flip between two levels (plus noise much smaller than the flip), so
    # sigma(1) is large and sigma(2), sigma(4), ... are small: the raw slope is negative.
    rng = np.random.default_rng(14)
    flips = np.where(np.arange(400) % 2 == 0, 1.0, -1.0) * 1e-2
    close = 100.0 * np.exp(flips + rng.normal(0.0, 1e-5, 400))

    result = hurst_exponent(close, 64)

    np.testing.assert_array_equal(result[63:], 0.0)


def test_constant_prices_give_nan() -> None:
    assert np.isnan(hurst_exponent(np.full(300, 5.0))).all()


@pytest.mark.parametrize("length", [0, 1, 199])
def test_series_shorter_than_window_is_all_nan(length: int) -> None:
    result = hurst_exponent(random_walk(length, seed=15))

    assert result.shape == (length,)
    assert np.isnan(result).all()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("close", "kwargs", "message"),
    [
        (np.ones((4, 2)), {}, "close must be 1-D"),
        (np.array([1.0, np.inf]), {}, r"close\[1\] = inf"),
        (np.array([0.0, 1.0]), {}, r"close\[0\] = 0.0"),
        (np.ones(10), {"window": 3}, "window must be >= 4, got 3"),
        (np.ones(10), {"window": "200"}, "window must be an integer"),
        (np.ones(10), {"window": 200, "max_lag": 1}, "max_lag must be >= 2, got 1"),
        (np.ones(10), {"window": 200, "max_lag": 101}, r"max_lag must be <= window // 2 = 100"),
        (np.ones(10), {"window": 200, "max_lag": 8.0}, "max_lag must be an integer"),
    ],
)
def test_bad_input_is_rejected(close: NDArray, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(IndicatorError, match=message):
        hurst_exponent(close, **kwargs)


# --------------------------------------------------------------------------- properties

_series = walk_specs(max_window=64, max_extra=150)


@settings(deadline=None, max_examples=40)
@given(spec=_series, data=st.data())
def test_prefix_values_equal_full_series_values(spec: WalkSpec, data: st.DataObject) -> None:
    assert_prefix_stable(hurst_exponent, spec, data)


@settings(deadline=None, max_examples=40)
@given(spec=_series, data=st.data())
def test_values_are_causal(spec: WalkSpec, data: st.DataObject) -> None:
    assert_causal(hurst_exponent, spec, data)


@settings(deadline=None, max_examples=40)
@given(spec=_series, power=st.integers(-30, 30), factor=st.floats(1e-6, 1e6))
def test_values_depend_only_on_relative_moves(spec: WalkSpec, power: int, factor: float) -> None:
    assert_scale_free(hurst_exponent, spec, power, factor)


@settings(deadline=None, max_examples=40)
@given(spec=_series)
def test_values_lie_in_unit_interval(spec: WalkSpec) -> None:
    seed, window, extra, vol = spec

    result = hurst_exponent(random_walk(window + extra, seed, vol), window)

    assert_in_unit_interval(result[window - 1 :])
