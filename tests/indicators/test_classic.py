"""Tests of tradepulse.indicators.classic against TA-Lib, closed forms and invariants."""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import numba
import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.typing import NDArray

from tradepulse.errors import IndicatorError
from tradepulse.indicators import classic
from tradepulse.indicators.classic import (
    MACD,
    BollingerBands,
    atr,
    bollinger_bands,
    ema,
    macd,
    rsi,
    sma,
)

REPO = Path(__file__).resolve().parents[2]
DAILY_FILES = ["sp500_daily.csv", "nasdaq_daily.csv"]
RTOL = 1e-9

Array = NDArray[np.float64]
Outputs = tuple[Array, ...]
Params = tuple[Any, ...]


class Bars(NamedTuple):
    high: Array
    low: Array
    close: Array

    def scaled(self, factor: float) -> Bars:
        return Bars(self.high * factor, self.low * factor, self.close * factor)

    def prefix(self, length: int) -> Bars:
        return Bars(self.high[:length], self.low[:length], self.close[:length])


@dataclasses.dataclass(frozen=True)
class Indicator:
    """One indicator: ours and TA-Lib's, parameters to try, documented warm-up."""

    name: str
    ours: Callable[[Bars, Params], Outputs]
    talib: Callable[[Bars, Params], Outputs]
    params: st.SearchStrategy[Params]
    daily_params: list[Params]
    lookback: Callable[[Params], int]
    scales_with_price: bool  # False: invariant under a change of price scale


def _bands(result: BollingerBands) -> Outputs:
    return result.upper, result.middle, result.lower


def _macd_outputs(result: MACD) -> Outputs:
    return result.line, result.signal, result.histogram


_MACD_PARAMS = st.integers(2, 20).flatmap(
    lambda fast: st.tuples(st.just(fast), st.integers(fast + 1, fast + 25), st.integers(1, 12))
)

INDICATORS = [
    Indicator(
        "sma",
        lambda b, p: (sma(b.close, p[0]),),
        lambda b, p: (talib.SMA(b.close, p[0]),),
        st.tuples(st.integers(1, 40)),
        [(1,), (2,), (20,), (200,)],
        lambda p: p[0] - 1,
        scales_with_price=True,
    ),
    Indicator(
        "ema",
        lambda b, p: (ema(b.close, p[0]),),
        lambda b, p: (talib.EMA(b.close, p[0]),),
        st.tuples(st.integers(1, 40)),
        [(1,), (2,), (20,), (200,)],
        lambda p: p[0] - 1,
        scales_with_price=True,
    ),
    Indicator(
        "rsi",
        lambda b, p: (rsi(b.close, p[0]),),
        lambda b, p: (talib.RSI(b.close, p[0]),),
        st.tuples(st.integers(2, 40)),
        [(2,), (14,), (50,)],
        lambda p: p[0],
        scales_with_price=False,
    ),
    Indicator(
        "atr",
        lambda b, p: (atr(b.high, b.low, b.close, period=p[0]),),
        lambda b, p: (talib.ATR(b.high, b.low, b.close, p[0]),),
        st.tuples(st.integers(1, 40)),
        [(1,), (14,), (50,)],
        lambda p: p[0],
        scales_with_price=True,
    ),
    Indicator(
        "bollinger_bands",
        lambda b, p: _bands(bollinger_bands(b.close, period=p[0], num_std=p[1])),
        lambda b, p: talib.BBANDS(b.close, p[0], p[1], p[1], 0),
        st.tuples(st.integers(2, 40), st.sampled_from([0.5, 1.0, 2.0, 2.5])),
        [(2, 2.0), (20, 2.0), (20, 1.5), (50, 3.0)],
        lambda p: p[0] - 1,
        scales_with_price=True,
    ),
    Indicator(
        "macd",
        lambda b, p: _macd_outputs(macd(b.close, fast=p[0], slow=p[1], signal=p[2])),
        lambda b, p: talib.MACD(b.close, p[0], p[1], p[2]),
        _MACD_PARAMS,
        [(12, 26, 9), (2, 3, 1), (5, 35, 5)],
        lambda p: p[1] + p[2] - 2,
        scales_with_price=True,
    ),
]
INDICATOR_IDS = [indicator.name for indicator in INDICATORS]


def assert_matches_talib(ours: Outputs, theirs: Outputs) -> None:
    """NaN exactly where TA-Lib has NaN; elsewhere equal within RTOL (relative)."""
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert mine.dtype == np.float64
        assert mine.shape == reference.shape
        np.testing.assert_array_equal(np.isnan(mine), np.isnan(reference))
        np.testing.assert_allclose(mine, reference, rtol=RTOL, atol=0.0, equal_nan=True)


# ------------------------------------------------------------------------ data


def _load_daily(name: str) -> Bars:
    frame = pl.read_csv(REPO / "golden" / "data" / name)
    columns = [
        np.array(frame[column].to_numpy(), dtype=np.float64) for column in ("high", "low", "close")
    ]
    return Bars(*columns)


@pytest.fixture(scope="module", params=DAILY_FILES)
def daily(request: pytest.FixtureRequest) -> Bars:
    return _load_daily(request.param)


@st.composite
def bar_series(draw: st.DrawFn, max_size: int = 150) -> Bars:
    """Arbitrary positive bars: low <= close <= high per bar (any values, ties, flats)."""
    rows = draw(
        hnp.arrays(
            np.float64,
            st.tuples(st.integers(0, max_size), st.just(3)),
            elements=st.floats(0.01, 1e4, allow_subnormal=False),
        )
    )
    rows = np.sort(rows, axis=1)
    return Bars(*(np.ascontiguousarray(rows[:, column]) for column in (2, 0, 1)))


@st.composite
def walks(draw: st.DrawFn) -> Bars:
    """Well-conditioned random walks: every move and every high-low range >= 0.1%."""
    size = draw(st.integers(1, 150))
    magnitudes = draw(hnp.arrays(np.float64, size, elements=st.floats(0.001, 0.05)))
    rises = draw(hnp.arrays(np.bool_, size))
    moves = np.where(rises, magnitudes, -magnitudes)
    start = draw(st.floats(1.0, 1000.0))
    close = start * np.cumprod(1.0 + moves)
    spreads = draw(hnp.arrays(np.float64, (2, size), elements=st.floats(0.001, 0.02)))
    return Bars(close * (1.0 + spreads[0]), close * (1.0 - spreads[1]), close)


# ------------------------------------------------------------------------ TA-Lib agreement


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
def test_matches_talib_on_real_daily_data(indicator: Indicator, daily: Bars) -> None:
    for params in indicator.daily_params:
        # Arrange: the daily S&P 500 / NASDAQ bars (fixture) and a parameter set.
        # Act
        ours = indicator.ours(daily, params)
        theirs = indicator.talib(daily, params)
        # Assert
        assert_matches_talib(ours, theirs)


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
@settings(deadline=None, max_examples=60)
@given(data=st.data())
def test_matches_talib_on_random_series(indicator: Indicator, data: st.DataObject) -> None:
    bars = data.draw(bar_series(), label="bars")
    params = data.draw(indicator.params, label="params")

    ours = indicator.ours(bars, params)

    assert_matches_talib(ours, indicator.talib(bars, params))


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
def test_warm_up_is_the_documented_lookback(indicator: Indicator, daily: Bars) -> None:
    for params in indicator.daily_params:
        lookback = indicator.lookback(params)

        outputs = indicator.ours(daily, params)

        for output in outputs:
            assert np.isnan(output[:lookback]).all()
            assert not np.isnan(output[lookback:]).any()


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
def test_series_no_longer_than_the_warm_up_is_all_nan(indicator: Indicator) -> None:
    params = indicator.daily_params[1]
    lookback = indicator.lookback(params)
    close = np.linspace(10.0, 20.0, lookback + 1)
    bars = Bars(close + 1.0, close - 1.0, close)

    short = indicator.ours(bars.prefix(lookback), params)
    just_enough = indicator.ours(bars, params)

    for output in short:
        assert output.shape == (lookback,)
        assert np.isnan(output).all()
    for output in just_enough:
        assert np.isnan(output[:-1]).all()
        assert np.isfinite(output[-1])


# ------------------------------------------------------------------------ invariants


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_prefix_gives_the_same_values_bit_for_bit(
    indicator: Indicator, data: st.DataObject
) -> None:
    bars = data.draw(bar_series(), label="bars")
    params = data.draw(indicator.params, label="params")
    length = data.draw(st.integers(0, bars.close.shape[0]), label="length")

    full = indicator.ours(bars, params)
    prefix = indicator.ours(bars.prefix(length), params)

    for whole, part in zip(full, prefix, strict=True):
        np.testing.assert_array_equal(part, whole[:length], strict=True)


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_power_of_two_price_scale_is_exact(indicator: Indicator, data: st.DataObject) -> None:
    # Multiplying by a power of two is exact in binary floating point and commutes
    # with every operation the kernels use, so equivariance must hold bit for bit.
    bars = data.draw(bar_series(), label="bars")
    params = data.draw(indicator.params, label="params")
    factor = data.draw(st.sampled_from([0.125, 0.5, 2.0, 1024.0]), label="factor")

    scaled = indicator.ours(bars.scaled(factor), params)
    original = indicator.ours(bars, params)

    for after, before in zip(scaled, original, strict=True):
        expected = before * factor if indicator.scales_with_price else before
        np.testing.assert_array_equal(after, expected)


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
@settings(deadline=None, max_examples=40)
@given(data=st.data())
def test_price_scale_equivariance(indicator: Indicator, data: st.DataObject) -> None:
    bars = data.draw(walks(), label="bars")
    params = data.draw(indicator.params, label="params")
    factor = data.draw(st.sampled_from([0.1, 1.0 / 3.0, 3.0, 10.0, 7.7]), label="factor")
    # The MACD outputs are differences of price averages and cross zero: their
    # rounding error is relative to the price level, not to their own size.
    price_level = factor * float(np.max(bars.high, initial=0.0))
    atol = RTOL * price_level if indicator.name == "macd" else 0.0
    if indicator.name == "bollinger_bands":
        # TA-Lib's running variance cancels catastrophically when the window is
        # (nearly) flat: sigma then carries an absolute error of order
        # sqrt(machine epsilon) x price, which scaling the prices does not scale.
        atol = 1e-7 * price_level

    scaled = indicator.ours(bars.scaled(factor), params)
    original = indicator.ours(bars, params)

    for after, before in zip(scaled, original, strict=True):
        expected = before * factor if indicator.scales_with_price else before
        np.testing.assert_allclose(after, expected, rtol=RTOL, atol=atol, equal_nan=True)


_KERNELS = [
    "_sma_kernel",
    "_ema_kernel",
    "_rsi_kernel",
    "_atr_kernel",
    "_bbands_kernel",
    "_macd_kernel",
    "_shifted_sums",
    "_true_range",
    "_fill_nan",
    "_first_nonfinite",
]


@pytest.mark.parametrize("indicator", INDICATORS, ids=INDICATOR_IDS)
def test_compiled_kernels_match_their_python_source(
    indicator: Indicator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The interpreted kernels (with an exact rational fma) are the specification the
    # compiled ones must reproduce bit for bit: no fast-math, no stray contraction.
    rng = np.random.default_rng(7)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 400)))
    close[100:180] = close[100]  # a flat stretch: zero variance, RSI with no moves
    close[250] *= 1.5  # a jump that forces a re-centred Bollinger variance
    bars = Bars(close * 1.01, close * 0.99, close)
    broken = Bars(bars.high, bars.low, _with(close, 300, np.nan))
    cases = [
        (params, bars.prefix(length))
        for params in indicator.daily_params[:2]
        for length in (indicator.lookback(params), close.shape[0])
    ]
    compiled = [indicator.ours(case_bars, params) for params, case_bars in cases]
    with pytest.raises(IndicatorError) as compiled_error:
        indicator.ours(broken, indicator.daily_params[0])
    for name in _KERNELS:
        monkeypatch.setattr(classic, name, getattr(classic, name).py_func)

    interpreted = [indicator.ours(case_bars, params) for params, case_bars in cases]
    with pytest.raises(IndicatorError) as interpreted_error:
        indicator.ours(broken, indicator.daily_params[0])

    for fast_outputs, slow_outputs in zip(compiled, interpreted, strict=True):
        for fast, slow in zip(fast_outputs, slow_outputs, strict=True):
            np.testing.assert_array_equal(fast, slow, strict=True)
    assert str(interpreted_error.value) == str(compiled_error.value)


_FMA = numba.njit(lambda a, b, c: classic._fused_multiply_add(a, b, c))


def test_compiled_fma_rounds_once() -> None:
    # (1 + 2**-30) * (1 - 2**-30) - 1 is -2**-60 exactly; a separate multiply
    # rounds the product to 1.0 and loses it.
    a, b, c = 1.0 + 2.0**-30, 1.0 - 2.0**-30, -1.0

    result = _FMA(a, b, c)

    assert result == -(2.0**-60)
    assert classic._fused_multiply_add(a, b, c) == result


@settings(deadline=None, max_examples=200)
@given(
    st.floats(-1e100, 1e100),
    st.floats(-1e100, 1e100),
    st.floats(-1e100, 1e100),
)
def test_compiled_fma_is_correctly_rounded(a: float, b: float, c: float) -> None:
    exact = Fraction(a) * Fraction(b) + Fraction(c)

    result = _FMA(a, b, c)

    assert result == float(exact)


# ------------------------------------------------------------------------ inputs


def test_accepts_array_likes_without_touching_the_input() -> None:
    close = 100.0 + np.sin(np.arange(60.0))
    reference = ema(close, 10)
    read_only = close.copy()
    read_only.flags.writeable = False
    strided = np.repeat(close, 2)[::2]

    from_list = ema(close.tolist(), 10)
    from_read_only = ema(read_only, 10)
    from_strided = ema(strided, 10)
    from_integers = sma(np.arange(30), 5)

    np.testing.assert_array_equal(from_list, reference)
    np.testing.assert_array_equal(from_read_only, reference)
    np.testing.assert_array_equal(from_strided, reference)
    np.testing.assert_array_equal(from_integers, talib.SMA(np.arange(30.0), 5))
    np.testing.assert_array_equal(read_only, close)


def test_results_are_frozen() -> None:
    close = np.linspace(1.0, 2.0, 50)
    bands = bollinger_bands(close)
    lines = macd(close)

    with pytest.raises(dataclasses.FrozenInstanceError):
        bands.upper = bands.lower  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        lines.signal = lines.line  # type: ignore[misc]


CLOSE = np.linspace(10.0, 20.0, 40)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sma(CLOSE, 0), "period must be >= 1, got 0"),
        (lambda: ema(CLOSE, -3), "period must be >= 1, got -3"),
        (lambda: rsi(CLOSE, 1), "period must be >= 2, got 1"),
        (lambda: atr(CLOSE, CLOSE, CLOSE, period=0), "period must be >= 1, got 0"),
        (lambda: bollinger_bands(CLOSE, period=1), "period must be >= 2, got 1"),
        (lambda: macd(CLOSE, fast=1, slow=26), "fast must be >= 2, got 1"),
        (lambda: macd(CLOSE, fast=12, slow=12), "fast must be < slow, got fast = 12, slow = 12"),
        (lambda: macd(CLOSE, fast=26, slow=12), "fast must be < slow, got fast = 26, slow = 12"),
        (lambda: macd(CLOSE, signal=0), "signal must be >= 1, got 0"),
        (lambda: sma(CLOSE, 2.5), "period must be an integer, got 2.5"),
        (lambda: rsi(CLOSE, True), "period must be an integer, got True"),
        (lambda: macd(CLOSE, slow="26"), "slow must be an integer, got '26'"),
        (
            lambda: bollinger_bands(CLOSE, num_std=0.0),
            "num_std must be a finite number > 0, got 0.0",
        ),
        (lambda: bollinger_bands(CLOSE, num_std=-2), "num_std must be a finite number > 0, got -2"),
        (lambda: bollinger_bands(CLOSE, num_std=float("nan")), "got nan"),
        (lambda: bollinger_bands(CLOSE, num_std=float("inf")), "got inf"),
        (lambda: bollinger_bands(CLOSE, num_std=True), "got True"),
        (lambda: bollinger_bands(CLOSE, num_std="2"), "got '2'"),
    ],
)
def test_rejects_bad_parameters(call: Callable[[], object], message: str) -> None:
    with pytest.raises(IndicatorError, match=message):
        call()


def _with(values: Array, index: int, value: float) -> Array:
    changed = values.copy()
    changed[index] = value
    return changed


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sma(_with(CLOSE, 7, np.nan), 5), r"values must be finite, got values\[7\] = nan"),
        (lambda: ema(_with(CLOSE, 0, np.inf), 5), r"values\[0\] = inf"),
        (lambda: ema(_with(CLOSE, 39, np.nan), 1), r"values\[39\] = nan"),
        (lambda: rsi(_with(CLOSE, 39, -np.inf), 14), r"close\[39\] = -inf"),
        (lambda: rsi(_with(CLOSE, 2, np.nan)[:5], 14), r"close\[2\] = nan"),
        (lambda: bollinger_bands(_with(CLOSE, 30, np.nan)), r"close\[30\] = nan"),
        (lambda: macd(_with(CLOSE, 3, np.inf), fast=2, slow=5, signal=3), r"close\[3\] = inf"),
        (lambda: macd(_with(CLOSE, 35, np.nan)), r"close\[35\] = nan"),
        (lambda: atr(CLOSE, _with(CLOSE, 5, np.inf), CLOSE, period=3), r"low\[5\] = inf"),
        # Values TA-Lib never reads are checked too: high[0], low[0], the last close.
        (lambda: atr(_with(CLOSE, 0, np.nan), CLOSE, CLOSE, period=3), r"high\[0\] = nan"),
        (lambda: atr(CLOSE, _with(CLOSE, 0, np.nan), CLOSE, period=3), r"low\[0\] = nan"),
        (lambda: atr(CLOSE, CLOSE, _with(CLOSE, 39, np.nan), period=3), r"close\[39\] = nan"),
        (lambda: atr(CLOSE[:3], CLOSE[:3], _with(CLOSE, 1, np.nan)[:3]), r"close\[1\] = nan"),
    ],
)
def test_rejects_non_finite_values_naming_the_first(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(IndicatorError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: sma(np.ones((4, 5)), 2), r"values must be 1-D, got shape \(4, 5\)"),
        (lambda: rsi(np.float64(3.0)), r"close must be 1-D, got shape \(\)"),
        (lambda: ema(["a", "b"], 2), "values must hold real numbers, got dtype <U1"),
        (lambda: ema(np.ones(5, dtype=complex), 2), "got dtype complex128"),
        (lambda: sma([1.0, None, 2.0], 2), "got dtype object"),
        (lambda: sma([[1.0], [1.0, 2.0]], 2), "values must be a 1-D array of real numbers"),
        (
            lambda: atr(CLOSE, CLOSE[:-1], CLOSE),
            "equal lengths, got len\\(high\\) = 40, len\\(low\\) = 39, len\\(close\\) = 40",
        ),
    ],
)
def test_rejects_malformed_series(call: Callable[[], object], message: str) -> None:
    with pytest.raises(IndicatorError, match=message):
        call()


def test_huge_finite_values_are_accepted() -> None:
    # high - low overflows to inf here: the kernel's cheap finiteness probe fires, the
    # exact check finds every value finite, and the result is TA-Lib's.
    high = np.full(6, 1e308)
    low = np.full(6, -1e308)
    close = np.zeros(6)

    result = atr(high, low, close, period=2)

    np.testing.assert_array_equal(result, talib.ATR(high, low, close, 2))
    assert np.isinf(result[2:]).all()


def test_empty_series_give_empty_results() -> None:
    empty = np.array([], dtype=np.float64)

    results = [sma(empty), ema(empty), rsi(empty), atr(empty, empty, empty)]
    results += list(_bands(bollinger_bands(empty))) + list(_macd_outputs(macd(empty)))

    for result in results:
        assert result.shape == (0,)
        assert result.dtype == np.float64


# ------------------------------------------------------------------------ module


def test_exports() -> None:
    assert classic.__all__ == [
        "MACD",
        "BollingerBands",
        "atr",
        "bollinger_bands",
        "ema",
        "macd",
        "rsi",
        "sma",
    ]


def test_package_never_imports_talib() -> None:
    imported: list[str] = []
    for path in sorted((REPO / "tradepulse").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                imported += [f"{path}: {alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None:
                imported.append(f"{path}: {node.module}")

    assert [entry for entry in imported if entry.split(": ")[1].split(".")[0] == "talib"] == []
