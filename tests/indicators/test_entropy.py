"""Tests of the rolling Shannon entropy against numpy.histogram per window."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from _helpers import random_walk
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators import entropy
from tradepulse.indicators.entropy import entropy_change, shannon_entropy, sturges_bins


def _reference_entropy(close: NDArray, window: int, bins: int) -> NDArray:
    """-sum p log p of numpy.histogram(returns, bins), one window at a time."""
    returns = np.log(close[1:] / close[:-1])
    out = np.full(close.shape[0], np.nan)
    for t in range(window, close.shape[0]):
        counts, _ = np.histogram(returns[t - window : t], bins)
        p = counts[counts > 0] / window
        out[t] = float(-(p * np.log(p)).sum())
    return out


def _powers_of_two_prices(n: int, seed: int) -> NDArray:
    """Prices 2**m with integer m: returns are a few exact multiples of log 2.

    Many returns then fall exactly on bin edges, which exercises the edge rule.
    """
    steps = np.random.default_rng(seed).integers(-2, 3, n)
    return np.ldexp(1.0, np.cumsum(steps) + 20)


# --------------------------------------------------------------------------- reference


@pytest.mark.parametrize(("window", "bins"), [(200, None), (50, 5), (200, 30), (2, 2), (31, 7)])
def test_entropy_matches_numpy_histogram_per_window(window: int, bins: int | None) -> None:
    close = random_walk(900, seed=window)

    result = shannon_entropy(close, window, bins=bins)

    expected = _reference_entropy(close, window, bins or sturges_bins(window))
    assert np.isnan(result[:window]).all()
    np.testing.assert_allclose(result[window:], expected[window:], rtol=0, atol=1e-12)


@pytest.mark.parametrize(("window", "bins"), [(64, 4), (64, 5), (20, 2), (100, 8)])
def test_entropy_matches_numpy_when_returns_sit_on_bin_edges(window: int, bins: int) -> None:
    close = _powers_of_two_prices(700, seed=bins)

    result = shannon_entropy(close, window, bins=bins)

    expected = _reference_entropy(close, window, bins)
    np.testing.assert_allclose(result[window:], expected[window:], rtol=0, atol=1e-12)


def test_entropy_across_parallel_blocks_matches_reference_near_the_boundary() -> None:
    window = 30
    close = random_walk(entropy._BLOCK + 4 * window, seed=8)
    boundary = window + entropy._BLOCK

    result = shannon_entropy(close, window)

    tail = close[boundary - 2 * window :]
    expected = _reference_entropy(tail, window, sturges_bins(window))
    np.testing.assert_allclose(result[boundary - window :], expected[window:], atol=1e-12)


@pytest.mark.parametrize("window", [2, 3, 8, 9, 200, 256, 257, 1000])
def test_sturges_bins_matches_numpy_sturges_rule(window: int) -> None:
    edges = np.histogram_bin_edges(np.arange(window, dtype=np.float64), bins="sturges")

    assert sturges_bins(window) == edges.shape[0] - 1


def test_default_bins_for_window_200_is_nine() -> None:
    close = random_walk(400, seed=1)

    np.testing.assert_array_equal(shannon_entropy(close), shannon_entropy(close, 200, bins=9))


# --------------------------------------------------------------------------- semantics


def test_entropy_of_equal_returns_is_zero() -> None:
    close = np.ldexp(1.0, np.arange(300))  # every return is exactly log 2

    result = shannon_entropy(close, 50)

    np.testing.assert_array_equal(result[50:], 0.0)


def test_entropy_of_constant_prices_is_zero() -> None:
    np.testing.assert_array_equal(shannon_entropy(np.full(80, 3.0), 20)[20:], 0.0)


def test_entropy_of_evenly_spread_returns_reaches_log_bins() -> None:
    # Returns cycle through 8 distinct equally spaced values: each of 8 bins gets
    # window / 8 of them, the maximum-entropy histogram.
    steps = np.tile(np.arange(8) - 3.5, 50)
    close = np.exp(np.concatenate([[0.0], np.cumsum(steps * 1e-3)]))

    result = shannon_entropy(close, 64, bins=8)

    np.testing.assert_allclose(result[64:], math.log(8), rtol=0, atol=1e-12)


def test_entropy_change_is_difference_of_disjoint_windows() -> None:
    close = random_walk(1000, seed=2)
    window = 100

    result = entropy_change(close, window)

    h = _reference_entropy(close, window, sturges_bins(window))
    assert np.isnan(result[: 2 * window]).all()
    np.testing.assert_allclose(
        result[2 * window :], h[2 * window :] - h[window:-window], rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("length", [0, 1, 200, 201])
def test_short_series_give_nan(length: int) -> None:
    close = random_walk(length, seed=3)

    h = shannon_entropy(close)
    dh = entropy_change(close)

    assert h.shape == dh.shape == (length,)
    assert np.isnan(h[:200]).all()
    assert np.isnan(dh).all()
    assert np.isfinite(h[200:]).all()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("close", "kwargs", "message"),
    [
        (np.ones((4, 2)), {}, "close must be 1-D"),
        (np.array([1.0, np.nan]), {}, r"close\[1\] = nan"),
        (np.array([1.0, -1.0]), {}, r"close\[1\] = -1.0"),
        (np.ones(10), {"window": 1}, "window must be >= 2, got 1"),
        (np.ones(10), {"window": 2.5}, "window must be an integer"),
        (np.ones(10), {"window": 5, "bins": 1}, "bins must be >= 2, got 1"),
        (np.ones(10), {"window": 5, "bins": 3.0}, "bins must be an integer"),
    ],
)
def test_bad_input_is_rejected(close: NDArray, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(IndicatorError, match=message):
        shannon_entropy(close, **kwargs)
    with pytest.raises(IndicatorError, match=message):
        entropy_change(close, **kwargs)


# --------------------------------------------------------------------------- properties

_series = st.tuples(
    st.integers(0, 2**32 - 1),  # seed
    st.integers(2, 48),  # window
    st.integers(0, 150),  # bars beyond the warm-up
    st.floats(1e-4, 5e-2),  # per-bar volatility
    st.one_of(st.none(), st.integers(2, 12)),  # bins
)


@settings(deadline=None, max_examples=40)
@given(spec=_series, data=st.data())
def test_prefix_values_equal_full_series_values(
    spec: tuple[int, int, int, float, int | None], data: st.DataObject
) -> None:
    seed, window, extra, vol, bins = spec
    close = random_walk(window + extra, seed, vol)
    cut = data.draw(st.integers(0, close.shape[0]))

    full_h = shannon_entropy(close, window, bins=bins)
    full_dh = entropy_change(close, window, bins=bins)

    np.testing.assert_array_equal(shannon_entropy(close[:cut], window, bins=bins), full_h[:cut])
    np.testing.assert_array_equal(entropy_change(close[:cut], window, bins=bins), full_dh[:cut])


@settings(deadline=None, max_examples=40)
@given(spec=_series, data=st.data())
def test_values_are_causal(
    spec: tuple[int, int, int, float, int | None], data: st.DataObject
) -> None:
    seed, window, extra, vol, bins = spec
    close = random_walk(window + extra, seed, vol)
    t = data.draw(st.integers(0, close.shape[0] - 1))
    changed = close.copy()
    changed[t + 1 :] = np.random.default_rng(seed + 1).uniform(1.0, 9.0, close.shape[0] - t - 1)

    for indicator in (shannon_entropy, entropy_change):
        np.testing.assert_array_equal(
            indicator(changed, window, bins=bins)[: t + 1],
            indicator(close, window, bins=bins)[: t + 1],
        )


@settings(deadline=None, max_examples=40)
@given(spec=_series, power=st.integers(-30, 30))
def test_power_of_two_scaling_changes_nothing(
    spec: tuple[int, int, int, float, int | None], power: int
) -> None:
    seed, window, extra, vol, bins = spec
    close = random_walk(window + extra, seed, vol)

    for indicator in (shannon_entropy, entropy_change):
        np.testing.assert_array_equal(
            indicator(close * 2.0**power, window, bins=bins), indicator(close, window, bins=bins)
        )


@settings(deadline=None, max_examples=40)
@given(spec=_series)
def test_entropy_lies_between_zero_and_log_bins(
    spec: tuple[int, int, int, float, int | None],
) -> None:
    seed, window, extra, vol, bins = spec

    result = shannon_entropy(random_walk(window + extra, seed, vol), window, bins=bins)

    values = result[window:]
    assert np.isfinite(values).all()
    assert (values >= 0.0).all()
    assert (values <= math.log(bins or sturges_bins(window))).all()
