"""Tests of the Kuramoto order parameter against a per-window scipy reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
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
from tradepulse.indicators import kuramoto
from tradepulse.indicators.kuramoto import kuramoto_cross, kuramoto_order


def _detrended(log_window: NDArray) -> NDArray:
    index = np.arange(log_window.shape[0], dtype=np.float64)
    coefficients = np.polyfit(index, log_window, 1)
    return log_window - np.polyval(coefficients, index)


def _reference_order(close: NDArray, window: int, bars: range | None = None) -> NDArray:
    """R from scipy.signal.hilbert applied to each detrended window, one at a time."""
    x = np.log(close)
    out = np.full(x.shape[0], np.nan)
    for t in bars if bars is not None else range(window - 1, x.shape[0]):
        analytic = scipy.signal.hilbert(_detrended(x[t - window + 1 : t + 1]))
        out[t] = np.abs(np.mean(np.exp(1j * np.angle(analytic))))
    return out


def _reference_cross(closes: NDArray, window: int) -> NDArray:
    x = np.log(closes)
    out = np.full(x.shape[0], np.nan)
    for t in range(window - 1, x.shape[0]):
        phases = [
            np.angle(scipy.signal.hilbert(_detrended(x[t - window + 1 : t + 1, a]))[-1])
            for a in range(x.shape[1])
        ]
        out[t] = np.abs(np.mean(np.exp(1j * np.array(phases))))
    return out


# --------------------------------------------------------------------------- reference


@pytest.mark.parametrize("window", [200, 201, 8, 33, 64])
def test_order_matches_scipy_hilbert_per_window(window: int) -> None:
    close = random_walk(1200, seed=window)

    result = kuramoto_order(close, window)

    expected = _reference_order(close, window)
    assert np.isnan(result[: window - 1]).all()
    np.testing.assert_allclose(result[window - 1 :], expected[window - 1 :], rtol=0, atol=1e-9)


def test_order_matches_reference_across_parallel_blocks() -> None:
    window = 50
    boundary = window - 1 + kuramoto._BLOCK
    close = random_walk(boundary + 3 * window, seed=11, vol=5e-3)
    bars = range(boundary - 3, boundary + 2 * window)

    result = kuramoto_order(close, window)

    expected = _reference_order(close, window, bars)
    np.testing.assert_allclose(
        result[bars.start : bars.stop], expected[bars.start : bars.stop], rtol=0, atol=1e-9
    )


def test_order_prefix_split_inside_a_later_block_is_bit_exact() -> None:
    window = 40
    close = random_walk(2 * kuramoto._BLOCK + 500, seed=12)
    cut = kuramoto._BLOCK + window + 123

    full = kuramoto_order(close, window)
    prefix = kuramoto_order(close[:cut], window)

    np.testing.assert_array_equal(prefix, full[:cut])


@pytest.mark.parametrize("window", [200, 17])
def test_cross_matches_scipy_hilbert_last_sample(window: int) -> None:
    closes = random_walk(700, seed=3, assets=3)

    result = kuramoto_cross(closes, window)

    expected = _reference_cross(closes, window)
    assert np.isnan(result[: window - 1]).all()
    np.testing.assert_allclose(result[window - 1 :], expected[window - 1 :], rtol=0, atol=1e-9)


# --------------------------------------------------------------------------- semantics


def test_order_on_random_walk_is_not_saturated() -> None:
    # The original computed R on raw prices, which gives R close to 1 everywhere.
    close = random_walk(5000, seed=4)

    result = kuramoto_order(close)

    assert np.nanmax(result) < 0.99
    assert np.nanmean(result) < 0.9


@pytest.mark.parametrize(
    "close",
    [
        np.full(300, 42.0),
        100.0 * 1.001 ** np.arange(300),
        np.exp(np.linspace(0.0, 3.0, 300)),
    ],
    ids=["constant", "geometric", "log-linear"],
)
def test_order_is_nan_where_detrended_window_vanishes(close: NDArray) -> None:
    assert np.isnan(kuramoto_order(close, 50)).all()


def test_degenerate_tolerance_separates_noise_from_moves() -> None:
    t = np.arange(300, dtype=np.float64)
    trend = 1e-3 * t
    wiggle = np.sin(0.3 * t)

    tiny = kuramoto_order(np.exp(trend + 1e-15 * wiggle), 50)
    small = kuramoto_order(np.exp(trend + 1e-9 * wiggle), 50)

    assert kuramoto.DEGENERATE_TOLERANCE == 1e-12
    assert np.isnan(tiny).all()
    assert np.isfinite(small[49:]).all()


def test_cross_is_nan_when_one_asset_window_vanishes() -> None:
    closes = random_walk(300, seed=5, assets=3)
    closes[:, 1] = 7.0

    assert np.isnan(kuramoto_cross(closes, 50)).all()


def test_cross_of_identical_assets_is_one() -> None:
    column = random_walk(400, seed=6)
    closes = np.column_stack([column, 3.0 * column, 0.5 * column])

    result = kuramoto_cross(closes, 64)

    np.testing.assert_allclose(result[63:], 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("length", [0, 1, 199])
def test_order_of_series_shorter_than_window_is_all_nan(length: int) -> None:
    result = kuramoto_order(random_walk(length, seed=7))

    assert result.shape == (length,)
    assert result.dtype == np.float64
    assert np.isnan(result).all()


def test_order_accepts_integer_lists() -> None:
    close = [100, 101, 103, 102, 105, 104, 101, 99, 100, 102]

    result = kuramoto_order(close, 5)

    np.testing.assert_allclose(
        result[4:], _reference_order(np.array(close, float), 5)[4:], atol=1e-9
    )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("close", "window", "message"),
    [
        (np.ones((10, 2)), 5, "close must be 1-D"),
        (np.array([1.0, np.nan, 2.0]), 2 + 1, r"close\[1\] = nan"),
        (np.array([1.0, -2.0, 2.0]), 3, r"close\[1\] = -2.0"),
        (np.array([1.0, 0.0, 2.0]), 3, r"close\[1\] = 0.0"),
        (np.array([1.0, np.inf]), 3, r"close\[1\] = inf"),
        (np.array(["a", "b"]), 3, "real numbers"),
        (np.ones(10), 2, "window must be >= 3, got 2"),
        (np.ones(10), 5.0, "window must be an integer"),
        (np.ones(10), True, "window must be an integer"),
    ],
)
def test_order_rejects_bad_input(close: NDArray, window: int, message: str) -> None:
    with pytest.raises(IndicatorError, match=message):
        kuramoto_order(close, window)


@pytest.mark.parametrize(
    ("closes", "message"),
    [
        (np.ones(10), "closes must be 2-D"),
        (np.ones((10, 1)), "at least 2 assets"),
        (np.array([[1.0, 2.0], [3.0, -1.0]]), r"closes\[1, 1\] = -1.0"),
    ],
)
def test_cross_rejects_bad_input(closes: NDArray, message: str) -> None:
    with pytest.raises(IndicatorError, match=message):
        kuramoto_cross(closes, 5)


# --------------------------------------------------------------------------- properties

_series = walk_specs(max_window=48, max_extra=120)


@settings(deadline=None, max_examples=30)
@given(spec=_series, data=st.data())
def test_order_prefix_values_equal_full_series_values(spec: WalkSpec, data: st.DataObject) -> None:
    assert_prefix_stable(kuramoto_order, spec, data)


@settings(deadline=None, max_examples=30)
@given(spec=_series, data=st.data())
def test_order_is_causal(spec: WalkSpec, data: st.DataObject) -> None:
    assert_causal(kuramoto_order, spec, data)


@settings(deadline=None, max_examples=30)
@given(spec=_series, power=st.integers(-20, 20), factor=st.floats(1e-6, 1e6))
def test_order_depends_only_on_relative_moves(spec: WalkSpec, power: int, factor: float) -> None:
    assert_scale_free(kuramoto_order, spec, power, factor)


@settings(deadline=None, max_examples=30)
@given(spec=_series)
def test_order_lies_in_unit_interval(spec: WalkSpec) -> None:
    seed, window, extra, vol = spec

    result = kuramoto_order(random_walk(window + extra, seed, vol), window)

    assert np.isnan(result[: window - 1]).all()
    assert_in_unit_interval(result[window - 1 :])


@settings(deadline=None, max_examples=20)
@given(spec=_series, assets=st.integers(2, 4), data=st.data())
def test_cross_is_causal_prefix_stable_and_scale_free(
    spec: WalkSpec, assets: int, data: st.DataObject
) -> None:
    seed, window, extra, vol = spec
    closes = random_walk(window + extra, seed, vol, assets)
    t = data.draw(st.integers(0, closes.shape[0] - 1))
    changed = closes.copy()
    changed[t + 1 :] *= 1.5

    full = kuramoto_cross(closes, window)

    np.testing.assert_array_equal(kuramoto_cross(changed, window)[: t + 1], full[: t + 1])
    np.testing.assert_array_equal(kuramoto_cross(closes[: t + 1], window), full[: t + 1])
    np.testing.assert_array_equal(kuramoto_cross(closes * 0.125, window), full)
    values = full[window - 1 :]
    assert ((values >= 0.0) & (values <= 1.0)).all()
