"""The vectorised engine: fill convention, sizing, costs, no look-ahead, determinism.

Expected numbers come from the conventions in ``docs/backtesting.md`` written out
by hand (plain Python arithmetic, one fill at a time), from accounting identities
(a zero-cost fill conserves cash + marked position) or from the engine's own
compiled kernels run as plain Python (``py_func``).
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from tradepulse import metrics
from tradepulse.backtest import (
    FILL_COLUMNS,
    TRADE_COLUMNS,
    BacktestResult,
    prepare_vectorised,
    run_vectorised,
    vector,
)
from tradepulse.costs import (
    FixedCommission,
    FixedSlippage,
    NotionalCommission,
    PerUnitCommission,
    SpreadSlippage,
    SquareRootImpact,
    _kernels,
    combine_commissions,
    combine_slippage,
    plan_target_fills,
)
from tradepulse.errors import ConfigError

CASH = 10_000.0


def make_bars(
    open_: list[float] | NDArray[np.float64],
    close: list[float] | NDArray[np.float64],
    *,
    volume: float | NDArray[np.float64] = 1_000.0,
    step: timedelta = timedelta(days=1),
) -> pl.DataFrame:
    """Bars with the given opens and closes (high/low bracket them), daily from 2024."""
    opens = np.asarray(open_, dtype=np.float64)
    closes = np.asarray(close, dtype=np.float64)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    return pl.DataFrame(
        {
            "ts": pl.Series([start + i * step for i in range(opens.shape[0])]).cast(
                pl.Datetime("ns", "UTC")
            ),
            "open": opens,
            "high": np.maximum(opens, closes) * 1.01,
            "low": np.minimum(opens, closes) * 0.99,
            "close": closes,
            "volume": np.broadcast_to(np.asarray(volume, dtype=np.float64), opens.shape).copy(),
        }
    )


def random_bars(n: int, seed: int, *, vol: float = 0.01) -> pl.DataFrame:
    """A geometric random walk of ``n`` bars with gaps between close and next open."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * np.exp(rng.normal(0.0, vol / 4, n))
    volume = rng.integers(0, 5_000, n).astype(np.float64)
    return make_bars(open_, close, volume=volume)


# ------------------------------------------------------------------ hand-computed runs


def test_five_bar_run_matches_hand_computation() -> None:
    # Arrange: long on bar 0's close, flat on bar 2's, short on bar 3's (open at the end).
    opens = [100.0, 102.0, 101.0, 105.0, 104.0]
    closes = [101.0, 103.0, 104.0, 106.0, 103.0]
    bars = make_bars(opens, closes)
    fee = 0.001

    # Act
    result = run_vectorised(bars, [1.0, 1.0, 0.0, -1.0, -1.0], cash=CASH, commission=fee)

    # Assert: one fill at a time, as docs/backtesting.md states it.
    long_units = CASH / (102.0 * (1 + fee))  # bar 1's open
    cash1 = CASH - long_units * 102.0 - long_units * 102.0 * fee
    cash3 = cash1 + long_units * 105.0 - long_units * 105.0 * fee  # bar 3's open
    short_units = cash3 / (104.0 * (1 + fee))  # bar 4's open
    cash4 = cash3 + short_units * 104.0 - short_units * 104.0 * fee
    expected = [
        CASH,
        cash1 + long_units * 103.0,
        cash1 + long_units * 104.0,
        cash3,
        cash4 - short_units * 103.0,  # marked to the last close, no exit commission
    ]
    np.testing.assert_allclose(result.equity, expected, rtol=1e-13)
    np.testing.assert_allclose(result.position, [0, long_units, long_units, 0, -short_units])
    assert result.fills.get_column("bar").to_list() == [1, 3, 4]
    assert result.fills.get_column("side").cast(pl.String).to_list() == ["buy", "sell", "sell"]
    np.testing.assert_allclose(result.fills.get_column("price"), [102.0, 105.0, 104.0])
    trades = result.trades
    assert trades.columns == list(TRADE_COLUMNS)
    assert trades.get_column("entry_bar").to_list() == [1, 4]
    assert trades.get_column("exit_bar").to_list() == [3, 4]
    assert trades.get_column("is_open").to_list() == [False, True]
    assert trades.get_column("side").cast(pl.String).to_list() == ["long", "short"]
    np.testing.assert_allclose(
        trades.get_column("pnl"),
        [cash3 - CASH, short_units * 104.0 * (1 - fee) - short_units * 103.0],
        rtol=1e-12,
    )
    np.testing.assert_allclose(trades.get_column("exit_price"), [105.0, 103.0])
    assert result.metrics.trades == 2
    assert result.metrics.final_equity == result.equity[-1]
    assert result.metrics.exposure == pytest.approx(3 / 5)


def test_whole_sizing_buys_the_floor_of_the_fractional_units() -> None:
    bars = make_bars([100.0, 333.0, 340.0], [101.0, 335.0, 338.0])

    result = run_vectorised(bars, [1.0, 1.0, 1.0], commission=0.001, sizing="whole")

    units = math.floor(CASH / (333.0 * 1.001))
    assert result.position[-1] == units == 30
    assert result.cash[-1] == pytest.approx(CASH - units * 333.0 * 1.001)


def test_whole_sizing_skips_an_order_it_cannot_afford() -> None:
    bars = make_bars([100.0, 20_000.0, 20_000.0], [100.0, 20_000.0, 20_000.0])

    result = run_vectorised(bars, [1.0, 1.0, 1.0], sizing="whole")

    assert result.fills.height == 0
    assert result.metrics.trades == 0
    np.testing.assert_array_equal(result.equity, CASH)


@pytest.mark.parametrize("latency", [0, 1, 3])
def test_a_decision_fills_at_the_open_after_the_latency(latency: int) -> None:
    # Arrange: the target turns long on bar 2's close.
    bars = random_bars(10, seed=3)
    targets = np.zeros(10)
    targets[2:] = 1.0

    # Act
    result = run_vectorised(bars, targets, latency_bars=latency)

    # Assert
    fill_bar = 3 + latency
    assert result.fills.get_column("bar").to_list() == [fill_bar]
    assert result.fills.get_column("price")[0] == bars.get_column("open")[fill_bar]
    np.testing.assert_array_equal(result.equity[:fill_bar], CASH)


def test_latency_is_a_shift_of_the_targets() -> None:
    bars = random_bars(40, seed=11)
    targets = np.random.default_rng(1).choice([-1.0, -0.5, 0.0, 0.5, 1.0], 40)
    shifted = np.concatenate((np.zeros(2), targets[:-2]))

    late = run_vectorised(bars, targets, commission=0.002, latency_bars=2)
    early = run_vectorised(bars, shifted, commission=0.002)

    np.testing.assert_array_equal(late.equity, early.equity)
    assert late.fills.equals(early.fills)


def test_a_decision_on_the_last_bar_is_never_filled() -> None:
    bars = random_bars(5, seed=2)

    result = run_vectorised(bars, [0.0, 0.0, 0.0, 0.0, 1.0])

    assert result.fills.height == 0
    np.testing.assert_array_equal(result.equity, CASH)


def test_an_unchanged_target_is_not_rebalanced() -> None:
    bars = random_bars(30, seed=5)

    result = run_vectorised(bars, np.full(30, 0.5), commission=0.001)

    assert result.fills.height == 1
    held = result.position[1:]
    np.testing.assert_array_equal(held, held[0])


def test_a_reversal_is_two_fills_and_two_trades_at_one_open() -> None:
    bars = random_bars(6, seed=9)

    result = run_vectorised(bars, [1.0, 1.0, -1.0, -1.0, -1.0, -1.0], commission=0.001)

    fills = result.fills
    assert fills.get_column("bar").to_list() == [1, 3, 3]
    assert fills.get_column("side").cast(pl.String).to_list() == ["buy", "sell", "sell"]
    assert fills.get_column("trade").to_list() == [0, 0, 1]
    assert result.trades.get_column("side").cast(pl.String).to_list() == ["long", "short"]
    assert result.metrics.trades == 2
    # The short is sized on the cash the closing sale left.
    cash_after_close = fills.get_column("cash")[1]
    open_price = bars.get_column("open")[3]
    assert fills.get_column("quantity")[2] == pytest.approx(
        cash_after_close / (open_price * 1.001), rel=1e-14
    )


def test_fractional_targets_size_on_equity_after_costs() -> None:
    bars = random_bars(8, seed=4)
    fee = 0.001

    result = run_vectorised(bars, [0.5, 0.5, 1.0, 1.0, 0.25, 0.25, 0.25, 0.25], commission=fee)

    # After each fill the position is worth |target| of equity, both at the fill price.
    for fill, target in zip(result.fills.iter_rows(named=True), [0.5, 1.0, 0.25], strict=True):
        value = abs(fill["position"]) * fill["price"]
        equity = fill["cash"] + fill["position"] * fill["price"]
        assert value == pytest.approx(target * equity, rel=1e-12)
    assert result.metrics.trades == 1


def test_an_open_trade_is_marked_without_exit_commission() -> None:
    bars = make_bars([100.0, 100.0, 100.0], [100.0, 100.0, 110.0])

    result = run_vectorised(bars, [1.0, 1.0, 1.0], commission=0.01)

    trade = result.trades.row(0, named=True)
    units = CASH / (100.0 * 1.01)
    assert trade["is_open"]
    assert trade["exit_price"] == 110.0
    assert trade["commission"] == pytest.approx(units * 100.0 * 0.01)
    assert trade["pnl"] == pytest.approx(units * 10.0 - units * 100.0 * 0.01)
    assert result.metrics.final_equity == pytest.approx(CASH + trade["pnl"])


# --------------------------------------------------------------------------- costs


def test_costs_follow_the_models() -> None:
    # Arrange: every commission and slippage model at once, all-in long then flat.
    bars = make_bars([100.0, 100.0, 120.0, 120.0], [100.0, 110.0, 120.0, 120.0], volume=10_000.0)
    commission = [NotionalCommission(rate=0.001), PerUnitCommission(0.01), FixedCommission(2.0)]
    slippage = [SpreadSlippage(spread_bps=4.0), FixedSlippage(slippage_bps=1.0)]

    # Act
    result = run_vectorised(bars, [1.0, 0.0, 0.0, 0.0], commission=commission, slippage=slippage)

    # Assert
    buy, sell = result.fills.iter_rows(named=True)
    assert buy["price"] == pytest.approx(100.0 * (1 + 3e-4), rel=1e-15)
    assert sell["price"] == pytest.approx(120.0 * (1 - 3e-4), rel=1e-15)
    for fill in (buy, sell):
        expected = fill["quantity"] * fill["price"] * 0.001 + fill["quantity"] * 0.01 + 2.0
        assert fill["commission"] == pytest.approx(expected, rel=1e-14)
    assert buy["cash"] == pytest.approx(0.0, abs=1e-9)  # all-in: the buy spends everything
    proceeds = sell["quantity"] * sell["price"] - sell["commission"]
    assert result.metrics.final_equity == pytest.approx(proceeds, rel=1e-14)


def test_square_root_impact_depends_on_participation() -> None:
    bars = make_bars([100.0, 100.0, 100.0], [100.0, 100.0, 100.0], volume=500.0)

    result = run_vectorised(bars, [1.0, 1.0, 1.0], slippage=SquareRootImpact(impact_bps=50.0))

    fill = result.fills.row(0, named=True)
    participation = min(fill["quantity"] / 500.0, 1.0)
    assert fill["price"] == pytest.approx(100.0 * (1 + 50e-4 * math.sqrt(participation)))
    assert -1e-9 <= fill["cash"] <= 1e-6  # all-in, never overspent beyond rounding


def test_engine_fills_are_the_planned_fills() -> None:
    # plan_target_fills is the public form of the sizing the kernel does.
    bars = random_bars(60, seed=8)
    targets = np.random.default_rng(2).choice([-1.0, -0.3, 0.0, 0.6, 1.0], 60)
    commission = [NotionalCommission(0.002), FixedCommission(0.5)]
    slippage = [SpreadSlippage(3.0), SquareRootImpact(20.0)]

    result = run_vectorised(bars, targets, commission=commission, slippage=slippage)

    position, cash = 0.0, CASH
    fills = iter(result.fills.iter_rows(named=True))
    current = 0.0
    for decision, target in enumerate(targets[:-1]):
        if target == current:
            continue
        current = target
        bar = decision + 1
        plan = plan_target_fills(
            position=position,
            cash=cash,
            price=bars.get_column("open")[bar],
            volume=bars.get_column("volume")[bar],
            target=target,
            commission=combine_commissions(commission),
            slippage=combine_slippage(slippage),
        )
        for leg in (plan.closing, plan.opening):
            if leg == 0.0:
                continue
            fill = next(fills)
            assert fill["bar"] == bar
            assert math.copysign(fill["quantity"], leg) == pytest.approx(leg, rel=1e-12)
            position, cash = fill["position"], fill["cash"]
    assert next(fills, None) is None


# ---------------------------------------------------------------------- properties


target_values = st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0])


@settings(deadline=None, max_examples=40)
@given(
    seed=st.integers(0, 2**32 - 1),
    n=st.integers(2, 50),
    data=st.data(),
    sizing=st.sampled_from(["fractional", "whole"]),
    costly=st.booleans(),
    latency=st.integers(0, 3),
)
def test_no_look_ahead_a_prefix_run_equals_the_full_run(
    seed: int, n: int, data: st.DataObject, sizing: str, costly: bool, latency: int
) -> None:
    # Arrange
    bars = random_bars(n, seed)
    targets = np.array(data.draw(st.lists(target_values, min_size=n, max_size=n)))
    k = data.draw(st.integers(1, n))
    options = {
        "sizing": sizing,
        "latency_bars": latency,
        "commission": [NotionalCommission(0.001), FixedCommission(1.0)] if costly else 0.0,
        "slippage": [SpreadSlippage(2.0), SquareRootImpact(30.0)] if costly else None,
    }

    # Act
    full = run_vectorised(bars, targets, **options)  # type: ignore[arg-type]
    prefix = run_vectorised(bars.head(k), targets[:k], **options)  # type: ignore[arg-type]

    # Assert: bar for bar, bit for bit.
    np.testing.assert_array_equal(prefix.equity, full.equity[:k])
    np.testing.assert_array_equal(prefix.position, full.position[:k])
    assert prefix.fills.equals(full.fills.filter(pl.col("bar") < k))


@settings(deadline=None, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), data=st.data())
def test_zero_cost_fills_conserve_cash_plus_marked_position(
    seed: int, n: int, data: st.DataObject
) -> None:
    bars = random_bars(n, seed)
    targets = np.array(data.draw(st.lists(target_values, min_size=n, max_size=n)))

    result = run_vectorised(bars, targets)

    # Between two closes equity moves only with the price of what is held.
    opens = bars.get_column("open").to_numpy()
    closes = bars.get_column("close").to_numpy()
    position = result.position
    before = np.concatenate(([CASH], result.equity[:-1]))
    held_before = np.concatenate(([0.0], position[:-1]))
    closes_before = np.concatenate(([opens[0]], closes[:-1]))
    expected = before + held_before * (opens - closes_before) + position * (closes - opens)
    np.testing.assert_allclose(result.equity, expected, rtol=1e-12)
    np.testing.assert_allclose(result.equity, result.cash + position * closes, rtol=1e-12)
    # And each fill leaves cash + position (marked at its price) unchanged.
    fills = result.fills
    after = fills.get_column("cash") + fills.get_column("position") * fills.get_column("price")
    signed = fills.get_column("quantity") * np.where(
        fills.get_column("side").cast(pl.String) == "buy", 1.0, -1.0
    )
    previous = fills.get_column("position").to_numpy() - signed.to_numpy()
    cash_before = (
        fills.get_column("cash").to_numpy()
        + signed.to_numpy() * fills.get_column("price").to_numpy()
    )
    np.testing.assert_allclose(
        after.to_numpy(),
        cash_before + previous * fills.get_column("price").to_numpy(),
        rtol=1e-12,
    )


@settings(deadline=None, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 60), data=st.data())
def test_trade_pnl_adds_up_to_the_final_equity(seed: int, n: int, data: st.DataObject) -> None:
    bars = random_bars(n, seed)
    targets = np.array(data.draw(st.lists(target_values, min_size=n, max_size=n)))

    result = run_vectorised(bars, targets, commission=0.003, slippage=SpreadSlippage(5.0))

    total = float(result.trades.get_column("pnl").sum())
    assert CASH + total == pytest.approx(result.metrics.final_equity, rel=1e-11)
    assert result.metrics.trades == result.trades.height


def test_two_runs_are_identical() -> None:
    bars = random_bars(500, seed=21)
    targets = np.random.default_rng(3).choice([-1.0, 0.0, 1.0], 500)
    options = {"commission": 0.001, "slippage": [SpreadSlippage(), SquareRootImpact()]}

    first = run_vectorised(bars, targets, **options)  # type: ignore[arg-type]
    second = run_vectorised(bars, targets, **options)  # type: ignore[arg-type]

    np.testing.assert_array_equal(first.equity, second.equity)
    assert first.trades.equals(second.trades)
    assert first.fills.equals(second.fills)
    assert first.metrics.to_dict() == pytest.approx(
        second.metrics.to_dict(), rel=0.0, abs=0.0, nan_ok=True
    )


# -------------------------------------------------------------------------- results


def test_result_is_read_only_and_frames_have_their_columns() -> None:
    bars = random_bars(20, seed=6)

    result = run_vectorised(bars, np.ones(20))

    assert isinstance(result, BacktestResult)
    assert result.fills.columns == list(FILL_COLUMNS)
    with pytest.raises(ValueError, match="read-only"):
        result.equity[0] = 0.0
    frame = result.equity_frame()
    assert frame.columns == ["ts", "equity", "position", "cash"]
    assert frame.get_column("ts").equals(bars.get_column("ts"))
    assert result.metrics.bars == 20


def test_a_single_bar_is_a_flat_run() -> None:
    result = run_vectorised(random_bars(1, seed=1), [1.0])

    np.testing.assert_array_equal(result.equity, [CASH])
    assert result.metrics.trades == 0
    assert result.trades.height == 0


def test_timestamps_in_microseconds_are_accepted() -> None:
    bars = random_bars(5, seed=1).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))

    result = run_vectorised(bars, np.ones(5))

    assert result.equity_frame().get_column("ts").dtype == pl.Datetime("ns", "UTC")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"targets": np.ones(4)}, r"targets must hold one value per bar"),
        ({"targets": [1.0, np.nan, 0.0, 0.0, 0.0]}, r"targets\[1\] = nan"),
        ({"targets": [0.0, 0.0, 1.5, 0.0, 0.0]}, r"targets\[2\] = 1\.5"),
        ({"targets": ["a"] * 5}, r"targets must be an array of numbers"),
        ({"cash": 0.0}, r"cash must be finite and > 0; got 0\.0"),
        ({"cash": math.inf}, r"cash must be finite"),
        ({"sizing": "half"}, r"sizing must be one of fractional, whole; got 'half'"),
        ({"latency_bars": -1}, r"latency_bars must be >= 0; got -1"),
        ({"latency_bars": 1.5}, r"latency_bars must be an integer; got 1\.5"),
        ({"commission": -0.1}, r"commission\.rate must be finite, >= 0"),
        ({"commission": "0.1"}, r"commission must be a number or commission model"),
        ({"slippage": 3.0}, r"slippage must be slippage model"),
        ({"periods_per_year": 0.0}, r"periods_per_year must be finite and > 0"),
    ],
)
def test_bad_arguments_are_named(change: dict[str, object], message: str) -> None:
    bars = random_bars(5, seed=1)
    arguments: dict[str, object] = {"targets": np.zeros(5), **change}
    targets = arguments.pop("targets")

    with pytest.raises(ConfigError, match=message):
        run_vectorised(bars, targets, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bars", "message"),
    [
        (random_bars(3, 1).drop("volume"), r"bars must have a 'volume' column"),
        (random_bars(3, 1).drop("ts"), r"bars must have a 'ts' column"),
        (
            random_bars(3, 1).with_columns(pl.Series("close", [1.0, math.inf, 1.0])),
            r"close\[1\] = inf",
        ),
        (random_bars(3, 1).with_columns(pl.lit(-1.0).alias("close")), r"close\[0\] = -1\.0"),
        (random_bars(3, 1).with_columns(pl.lit("x").alias("open")), r"'open' must be numeric"),
        (
            random_bars(3, 1).with_columns(pl.Series("open", [1.0, None, 1.0])),
            r"'open' has 1 null",
        ),
        (random_bars(3, 1).with_columns(pl.col("ts").cast(pl.Int64)), r"'ts' must be a datetime"),
        (
            random_bars(3, 1).with_columns(pl.Series("symbol", ["A", "B", "A"])),
            r"bars must hold one symbol",
        ),
        (random_bars(3, 1).head(0), r"at least one bar"),
    ],
)
def test_bad_bars_are_named(bars: pl.DataFrame, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        run_vectorised(bars, np.zeros(bars.height))


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("open", 0.0, r"open\[2\] = 0\.0: must be finite and > 0 \(a fill bar\)"),
        ("open", math.nan, r"open\[2\] = nan"),
        ("volume", -1.0, r"volume\[2\] = -1\.0: must be finite and >= 0"),
        ("volume", math.inf, r"volume\[2\] = inf"),
    ],
)
def test_bad_open_or_volume_on_a_fill_bar_is_named(column: str, value: float, message: str) -> None:
    bars = random_bars(5, 1)
    values = bars.get_column(column).to_numpy().copy()
    values[2] = value
    bars = bars.with_columns(pl.Series(column, values))

    # Not on a fill bar: never used, so not an error.
    run_vectorised(bars, [1.0, 1.0, 1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match=message):
        run_vectorised(bars, [0.0, 1.0, 1.0, 1.0, 1.0])


def test_bars_must_be_a_polars_frame() -> None:
    with pytest.raises(ConfigError, match="bars must be a polars DataFrame"):
        run_vectorised({"open": [1.0]}, [0.0])  # type: ignore[arg-type]


# ------------------------------------------------------------- kernels as Python


def compiled_kernels(module: types.ModuleType) -> list[str]:
    """Names of the module's globals that are numba dispatchers."""
    return sorted(name for name, value in vars(module).items() if hasattr(value, "py_func"))


@contextmanager
def interpreted(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Replace every compiled kernel the engine uses by its Python source."""
    with monkeypatch.context() as patch:
        for module in (vector, _kernels, metrics):
            for name in compiled_kernels(module):
                patch.setattr(module, name, getattr(module, name).py_func)
        yield


def test_every_kernel_is_found() -> None:
    assert compiled_kernels(vector) == [
        "_apply_fill",
        "_count_invalid",
        "_mark",
        "_simulate",
        "_target_changes",
    ]
    assert compiled_kernels(_kernels) == [
        "_excess_value",
        "_solve_with_impact",
        "adjust_quantity",
        "commission",
        "execution_price",
        "target_legs",
    ]
    assert compiled_kernels(metrics) == ["_drawdown", "_equity_statistics", "_return_sums"]


@pytest.mark.parametrize(
    "options",
    [
        {"commission": 0.001},
        {"commission": 0.001, "sizing": "whole", "latency_bars": 2},
        {
            "commission": [NotionalCommission(0.001), PerUnitCommission(0.01), FixedCommission()],
            "slippage": [SpreadSlippage(), FixedSlippage(), SquareRootImpact(80.0)],
        },
        {"slippage": SquareRootImpact(200.0), "sizing": "whole"},
    ],
    ids=["notional", "whole-latency", "all-costs", "impact-whole"],
)
def test_kernels_match_their_python_source(
    monkeypatch: pytest.MonkeyPatch, options: dict[str, object]
) -> None:
    # Arrange: few bars, every kind of target change, zero-volume bars included.
    bars = random_bars(80, seed=17)
    bars = bars.with_columns(pl.Series("volume", np.where(np.arange(80) % 7 == 0, 0.0, 900.0)))
    targets = np.random.default_rng(5).choice([-1.0, -0.4, 0.0, 0.3, 0.8, 1.0], 80)
    targets[:3] = 0.0

    # Act: compiled first (nothing compiles while the globals are patched).
    compiled = run_vectorised(bars, targets, **options)  # type: ignore[arg-type]
    with interpreted(monkeypatch):
        python = run_vectorised(bars, targets, **options)  # type: ignore[arg-type]

    # Assert
    np.testing.assert_array_equal(python.equity, compiled.equity)
    assert python.fills.equals(compiled.fills)
    assert python.trades.equals(compiled.trades)
    assert python.metrics.to_dict() == pytest.approx(
        compiled.metrics.to_dict(), rel=0.0, abs=0.0, nan_ok=True
    )
    assert compiled.fills.height > 20


@pytest.mark.parametrize(
    ("column", "message"),
    [("open", r"open\[1\] = -1\.0"), ("volume", r"volume\[1\] = -1\.0")],
)
def test_interpreted_kernels_report_bad_values(
    monkeypatch: pytest.MonkeyPatch, column: str, message: str
) -> None:
    bars = random_bars(4, seed=1).with_columns(pl.Series(column, [1.0, -1.0, 1.0, 1.0]))
    with interpreted(monkeypatch), pytest.raises(ConfigError, match=message):
        run_vectorised(bars, [1.0, 1.0, 1.0, 1.0])


def test_interpreted_kernels_handle_a_single_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    with interpreted(monkeypatch):
        result = run_vectorised(random_bars(1, seed=1), [1.0])

    np.testing.assert_array_equal(result.equity, [CASH])


# ------------------------------------------------------------------ prepared runs


def test_a_prepared_run_backtests_many_target_series_independently() -> None:
    bars = random_bars(400, seed=11)
    rng = np.random.default_rng(5)
    series = [np.clip(rng.normal(0.0, 0.7, 400), -1.0, 1.0).round(1) for _ in range(4)]
    costs = {"cash": 25_000.0, "commission": 0.002, "latency_bars": 1}
    prepared = prepare_vectorised(bars, **costs)  # type: ignore[arg-type]
    assert prepared.bars == 400
    # Reusing one prepared run (in any order, twice) equals a fresh run per series.
    for targets in [*series, *reversed(series)]:
        reused = prepared.run(targets)
        fresh = run_vectorised(bars.clone(), targets.copy(), **costs)  # type: ignore[arg-type]
        assert np.array_equal(reused.equity, fresh.equity)
        assert reused.metrics == fresh.metrics
        assert reused.trades.equals(fresh.trades)
    assert not prepared.run(series[0]).equity.flags.writeable


def test_prepare_checks_the_bars_once_and_run_checks_the_targets() -> None:
    bars = random_bars(20, seed=3)
    broken = bars.with_columns(pl.Series("close", [1.0] * 19 + [float("nan")]))
    with pytest.raises(ConfigError, match=r"close\[19\] = nan"):
        prepare_vectorised(broken)
    prepared = prepare_vectorised(bars)
    with pytest.raises(ConfigError, match=r"targets\[2\] = 1.5"):
        prepared.run(np.array([0.0, 0.0, 1.5] + [0.0] * 17))
    with pytest.raises(ConfigError, match=r"shape \(20,\)"):
        prepared.run(np.zeros(19))
