"""Built-in strategies: rules, event/vectorised parity and no look-ahead."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from strategy_fakes import drive_event_form, drive_live, make_bars, random_closes

from tradepulse.data import load_bars
from tradepulse.errors import DataError
from tradepulse.strategy import Params, Strategy
from tradepulse.strategy.builtins import (
    BollingerBreakout,
    BollingerBreakoutParams,
    GeometryPhase,
    GeometryPhaseParams,
    RsiReversion,
    RsiReversionParams,
    SmaCross,
    SmaCrossParams,
)
from tradepulse.strategy.builtins._common import (
    _follow_kernel,
    cross_above,
    cross_below,
    follow_events,
    next_target,
    price_column,
)

# Each built-in with the parameter sets the parity and look-ahead tests run.
CASES: list[tuple[type[Strategy], Params]] = [
    (SmaCross, SmaCrossParams()),
    (SmaCross, SmaCrossParams(fast=5, slow=20, direction="long_short")),
    (RsiReversion, RsiReversionParams()),
    (RsiReversion, RsiReversionParams(period=7, lower=35.0, upper=60.0, direction="long_short")),
    (BollingerBreakout, BollingerBreakoutParams()),
    (BollingerBreakout, BollingerBreakoutParams(period=10, num_std=1.0, direction="long_short")),
    (GeometryPhase, GeometryPhaseParams()),
]
# Short windows so hypothesis examples stay cheap.
SMALL_CASES: list[tuple[type[Strategy], Params]] = [
    (SmaCross, SmaCrossParams(fast=2, slow=5, direction="long_short")),
    (SmaCross, SmaCrossParams(fast=3, slow=8)),
    (RsiReversion, RsiReversionParams(period=3, lower=40.0, upper=60.0, direction="long_short")),
    (BollingerBreakout, BollingerBreakoutParams(period=5, num_std=1.0, direction="long_short")),
    (GeometryPhase, GeometryPhaseParams(window=20, entry=0.02, exit=-0.02)),
]


def case_id(case: tuple[type[Strategy], Params]) -> str:
    strategy, params = case
    return f"{strategy.name}-{'-'.join(str(v) for v in params.to_dict().values())}"


@pytest.fixture(scope="module")
def real_bars(sample_dir: Path) -> dict[str, pl.DataFrame]:
    return {name: load_bars(sample_dir / f"{name}_daily.csv") for name in ("sp500", "nasdaq")}


def changes(targets: NDArray[np.float64]) -> list[tuple[int, float]]:
    """Return (bar, new target) wherever the target differs from the bar before (from 0)."""
    before = np.concatenate([[0.0], targets[:-1]])
    return [(int(i), float(targets[i])) for i in np.flatnonzero(targets != before)]


def entries(targets: NDArray[np.float64]) -> int:
    return sum(1 for _, target in changes(targets) if target != 0.0)


# --- the cross and the state machine -------------------------------------------------


def test_cross_is_strict_on_both_bars() -> None:
    a = np.array([1.0, 3.0, 2.0, 2.0, 3.0, 1.0, np.nan, 3.0])
    b = np.full(8, 2.0)

    # 1->3 crosses up (bar 1); 3->2 touches, 2->2 stays, 2->3 leaves equality: no cross;
    # 3->1 crosses down (bar 5); NaN on either side is never a cross.
    assert np.flatnonzero(cross_above(a, b)).tolist() == [1]
    assert np.flatnonzero(cross_below(a, b)).tolist() == [5]
    assert np.flatnonzero(cross_above(a, 2.0)).tolist() == [1]
    assert not cross_above(np.array([5.0]), 1.0).any()


def test_next_target_entries_win_and_exits_flatten_their_side() -> None:
    none = {"long_entry": False, "long_exit": False, "short_entry": False, "short_exit": False}

    assert next_target(0.0, **none) == 0.0
    assert next_target(-1.0, **{**none, "long_entry": True, "short_exit": True}) == 1.0
    assert next_target(1.0, **{**none, "short_entry": True, "long_exit": True}) == -1.0
    assert next_target(1.0, **{**none, "long_exit": True}) == 0.0
    assert next_target(-1.0, **{**none, "long_exit": True}) == -1.0
    assert next_target(-1.0, **{**none, "short_exit": True}) == 0.0
    assert next_target(1.0, **{**none, "short_exit": True}) == 1.0


@settings(deadline=None, max_examples=60)
@given(st.lists(st.tuples(*[st.booleans()] * 4), min_size=0, max_size=60))
def test_follow_events_applies_next_target_bar_by_bar(
    events: list[tuple[bool, bool, bool, bool]],
) -> None:
    columns = [np.array([e[k] for e in events], dtype=np.bool_) for k in range(4)]
    expected, state = [], 0.0
    for long_entry, long_exit, short_entry, short_exit in events:
        state = next_target(
            state,
            long_entry=long_entry,
            long_exit=long_exit,
            short_entry=short_entry,
            short_exit=short_exit,
        )
        expected.append(state)
    python_out = np.empty(len(events))

    result = follow_events(
        long_entry=columns[0], long_exit=columns[1], short_entry=columns[2], short_exit=columns[3]
    )
    _follow_kernel.py_func(*columns, python_out)

    assert result.tolist() == expected
    assert python_out.tolist() == expected


def test_follow_events_without_short_events_is_long_only() -> None:
    long_entry = np.array([False, True, False, False, True])
    long_exit = np.array([True, False, False, True, False])

    assert follow_events(long_entry=long_entry, long_exit=long_exit).tolist() == [
        0.0,
        1.0,
        1.0,
        0.0,
        1.0,
    ]


def test_price_column_names_a_missing_column() -> None:
    with pytest.raises(DataError, match="bars have no 'close' column"):
        price_column(pl.DataFrame({"price": [1.0]}))


# --- sma_cross semantics on hand-made series -----------------------------------------

# With fast=1 and slow=2, fast - slow = (close[t] - close[t-1]) / 2: its sign is the sign
# of the bar's change (halves of small integers are exact in binary, so no rounding).
# closes:          10   9   10  10  11  10   9  9.5
# sign of change:   .   -   +   0   +   -   -   +
# strict up-cross at bar 2 (- then +) and bar 7; bar 4 follows a 0 (touch): no cross;
# strict down-cross at bar 5 (+ then -).
HAND_CLOSE = np.array([10.0, 9.0, 10.0, 10.0, 11.0, 10.0, 9.0, 9.5])


@pytest.mark.parametrize(
    ("direction", "expected"),
    [
        ("long", [0, 0, 1, 1, 1, 0, 0, 1]),
        ("long_short", [0, 0, 1, 1, 1, -1, -1, 1]),
    ],
)
def test_sma_cross_enters_and_exits_on_strict_crosses_only(
    direction: str, expected: list[int]
) -> None:
    params = SmaCrossParams.from_mapping({"fast": "1", "slow": "2", "direction": direction})
    bars = make_bars(HAND_CLOSE)

    vectorised = SmaCross().signals(bars, params)
    event = drive_event_form(SmaCross(), bars, params)

    assert vectorised.tolist() == expected
    assert event.targets.tolist() == expected
    assert event.orders == changes(vectorised)


def test_sma_cross_does_not_enter_when_already_above_at_warm_up() -> None:
    bars = make_bars(np.arange(1.0, 41.0))  # fast > slow from the first defined bar

    assert not SmaCross().signals(bars, SmaCrossParams()).any()


# --- independent references (TA-Lib indicators, plain-Python rules) ------------------


def reference_targets(
    up: NDArray[np.bool_], down: NDArray[np.bool_], *, reverse: bool
) -> NDArray[np.float64]:
    """Long on `up`, flat (or short when `reverse`) on `down`; written as a plain loop."""
    out, state = np.zeros(up.shape[0]), 0.0
    for t in range(up.shape[0]):
        if up[t]:
            state = 1.0
        elif down[t] and (reverse or state > 0):
            state = -1.0 if reverse else 0.0
        out[t] = state
    return out


def python_cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.bool_]:
    return np.array([t > 0 and a[t - 1] < b[t - 1] and a[t] > b[t] for t in range(a.shape[0])])


@pytest.mark.parametrize("direction", ["long", "long_short"])
@pytest.mark.parametrize("dataset", ["sp500", "nasdaq"])
def test_sma_cross_matches_a_talib_reference(
    real_bars: dict[str, pl.DataFrame], dataset: str, direction: str
) -> None:
    close = real_bars[dataset]["close"].to_numpy()
    fast, slow = talib.SMA(close, 10), talib.SMA(close, 30)
    expected = reference_targets(
        python_cross(fast, slow), python_cross(slow, fast), reverse=direction == "long_short"
    )

    result = SmaCross().signals(real_bars[dataset], SmaCrossParams(direction=direction))

    np.testing.assert_array_equal(result, expected)
    assert entries(result) > 50


def test_rsi_reversion_matches_a_talib_reference(real_bars: dict[str, pl.DataFrame]) -> None:
    close = real_bars["sp500"]["close"].to_numpy()
    value = talib.RSI(close, 14)
    lower, upper = np.full_like(value, 30.0), np.full_like(value, 70.0)
    oversold, overbought = python_cross(lower, value), python_cross(value, upper)
    expected = np.zeros_like(close)
    state = 0.0
    for t in range(close.shape[0]):
        if oversold[t]:
            state = 1.0
        elif overbought[t]:
            state = 0.0
        expected[t] = state

    result = RsiReversion().signals(real_bars["sp500"], RsiReversionParams())

    np.testing.assert_array_equal(result, expected)
    assert entries(result) > 5


def test_bollinger_breakout_matches_a_talib_reference(
    real_bars: dict[str, pl.DataFrame],
) -> None:
    close = real_bars["nasdaq"]["close"].to_numpy()
    upper, middle, _ = talib.BBANDS(close, 20, 2.0, 2.0)
    expected = reference_targets(
        python_cross(close, upper), python_cross(middle, close), reverse=False
    )

    result = BollingerBreakout().signals(real_bars["nasdaq"], BollingerBreakoutParams())

    np.testing.assert_array_equal(result, expected)
    assert entries(result) > 20


# --- geometry_phase ------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["sp500", "nasdaq"])
def test_geometry_phase_trades_on_the_shipped_data(
    real_bars: dict[str, pl.DataFrame], dataset: str
) -> None:
    bars = real_bars[dataset]

    targets = GeometryPhase().signals(bars, GeometryPhaseParams())

    assert entries(targets) >= 5
    assert set(np.unique(targets).tolist()) == {0.0, 1.0}
    assert not targets[:199].any()  # warm-up: the 200-bar window is not full yet


def test_geometry_phase_exits_when_the_phase_turns_post_emergent() -> None:
    strategy = GeometryPhase()
    bars = make_bars(random_closes(3, 40))
    params = GeometryPhaseParams(window=20)
    score = np.array([np.nan, 0.0, 0.1, 0.1, 0.1, 0.0, 0.1, 0.1] + [0.1] * 32)
    phase = np.full(40, 4.0)  # neutral
    phase[4] = 3.0  # post_emergent: exit although the score stays high
    phase[6] = 3.0  # post_emergent on an up-cross: no entry
    strategy.indicators = lambda bars, params: {"score": score, "phase": phase}  # type: ignore[method-assign]

    targets = strategy.signals(bars, params)
    event = drive_event_form(strategy, bars, params)

    assert targets[:8].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    assert event.targets.tolist() == targets.tolist()


# --- both forms decide alike, and nothing sees the future -------------------------------


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("dataset", ["sp500", "nasdaq"])
def test_event_form_orders_exactly_when_the_vectorised_target_changes(
    real_bars: dict[str, pl.DataFrame], dataset: str, case: tuple[type[Strategy], Params]
) -> None:
    strategy_type, params = case
    bars = real_bars[dataset]

    vectorised = strategy_type().signals(bars, params)
    event = drive_event_form(strategy_type(), bars, params)

    np.testing.assert_array_equal(event.targets, vectorised)
    assert event.orders == changes(vectorised)
    assert entries(vectorised) > 0


def test_a_strategy_instance_can_run_twice(real_bars: dict[str, pl.DataFrame]) -> None:
    strategy, params = SmaCross(), SmaCrossParams(direction="long_short")
    bars = real_bars["sp500"].head(500)

    first = drive_event_form(strategy, bars, params)
    second = drive_event_form(strategy, bars, params)

    assert first.orders == second.orders


@settings(deadline=None, max_examples=12)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(30, 160),
    cut=st.floats(0.0, 1.0),
    decimals=st.sampled_from([None, 0, 1]),
)
@pytest.mark.parametrize("case", SMALL_CASES, ids=case_id)
def test_signals_on_a_prefix_equal_the_prefix_of_the_signals(
    case: tuple[type[Strategy], Params], seed: int, n: int, cut: float, decimals: int | None
) -> None:
    strategy_type, params = case
    bars = make_bars(random_closes(seed, n, decimals=decimals))
    k = 1 + int(cut * (n - 1))

    full = strategy_type().signals(bars, params)
    prefix = strategy_type().signals(bars.head(k), params)

    np.testing.assert_array_equal(prefix, full[:k])


@pytest.mark.parametrize("case", SMALL_CASES, ids=case_id)
def test_event_form_fed_bar_by_bar_decides_as_with_all_bars(
    case: tuple[type[Strategy], Params],
) -> None:
    # A live host only has the bars so far; recomputing the indicators at every bar
    # must not change a single decision.
    strategy_type, params = case
    bars = make_bars(random_closes(11, 90, decimals=1))

    live = drive_live(strategy_type(), bars, params)
    full = drive_event_form(strategy_type(), bars, params)

    assert live.orders == full.orders
    assert len(full.orders) > 0


def test_targets_are_zero_before_warm_up(real_bars: dict[str, pl.DataFrame]) -> None:
    bars = real_bars["sp500"]
    warm_up: dict[str, tuple[Strategy, Any, int]] = {
        "sma_cross": (SmaCross(), SmaCrossParams(), 30),  # slow SMA defined from bar 29
        "rsi_reversion": (RsiReversion(), RsiReversionParams(), 15),  # RSI from bar 14
        "bollinger_breakout": (BollingerBreakout(), BollingerBreakoutParams(), 20),
    }

    for strategy, params, bars_needed in warm_up.values():
        assert not strategy.signals(bars, params)[:bars_needed].any()
