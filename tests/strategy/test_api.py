"""The strategy base class, the Bar value type and the signals() result check."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from strategy_fakes import FakeContext, make_bars
from strategy_plugin_fixtures import EmptyParams, Good

import tradepulse.strategy as strategy_package
from tradepulse.strategy import STRATEGY_API_VERSION, Bar, StrategyError, validate_signals
from tradepulse.strategy.builtins import SmaCross


def test_api_version_is_major_dot_minor() -> None:
    assert STRATEGY_API_VERSION == "1.0"


def test_exports_resolve_and_are_unique() -> None:
    exported = strategy_package.__all__

    assert len(exported) == len(set(exported))
    for name in exported:
        assert hasattr(strategy_package, name), name


def test_bar_timestamp_is_utc_with_microseconds() -> None:
    ts = int(datetime(2024, 3, 1, 14, 30, 5, 123456, tzinfo=UTC).timestamp()) * 10**9
    bar = Bar(ts + 123_456_789, 1.0, 2.0, 0.5, 1.5, 10.0)

    assert bar.timestamp == datetime(2024, 3, 1, 14, 30, 5, 123456, tzinfo=UTC)
    assert bar.close == 1.5
    assert bar._fields == ("ts", "open", "high", "low", "close", "volume")


def test_default_hooks_do_nothing_and_signals_is_optional() -> None:
    strategy = Good()
    ctx = FakeContext(EmptyParams(), {})
    bars = make_bars(np.array([1.0, 2.0]))

    strategy.initialize(ctx)
    strategy.handle_tick(ctx, Bar(0, 1.0, 1.0, 1.0, 1.0, 1.0))
    strategy.finalize(ctx)

    assert strategy.indicators(bars, EmptyParams()) == {}
    assert ctx.target_orders == []
    assert strategy.has_signals is False
    assert SmaCross().has_signals is True
    with pytest.raises(NotImplementedError, match="'good' has no vectorised signals"):
        strategy.signals(bars, EmptyParams())


def test_validate_signals_accepts_numbers_and_returns_float64() -> None:
    result = validate_signals(np.array([0, 1, -1], dtype=np.int8), length=3, strategy="s")

    assert result.dtype == np.float64
    assert result.tolist() == [0.0, 1.0, -1.0]


@pytest.mark.parametrize(
    ("targets", "fragment"),
    [
        ([0.0, 1.0, 0.0], "must return a numpy array, got list"),
        (np.zeros((3, 1)), r"shape \(3,\)\), got shape \(3, 1\)"),
        (np.zeros(2), r"got shape \(2,\)"),
        (np.array(["a", "b", "c"]), "must return numbers, got dtype <U1"),
        (np.array([0.0, np.nan, 1.0]), "non-finite target nan at bar 1"),
    ],
)
def test_validate_signals_names_the_strategy_and_problem(targets: object, fragment: str) -> None:
    with pytest.raises(StrategyError, match=fragment) as caught:
        validate_signals(targets, length=3, strategy="mine")

    assert "strategy 'mine'" in str(caught.value)


def test_fake_context_refuses_unknown_names_and_negative_ago() -> None:
    ctx = FakeContext(EmptyParams(), {"x": np.array([1.0, 2.0, 3.0])})
    ctx.bar_index = 1

    assert ctx.indicator("x") == 2.0
    assert ctx.indicator("x", 1) == 1.0
    assert np.isnan(ctx.indicator("x", 2))
    with pytest.raises(StrategyError):
        ctx.indicator("x", -1)
    with pytest.raises(StrategyError):
        ctx.indicator("y")
