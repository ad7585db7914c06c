"""The live strategy runner: one bar at a time, its state, its errors, its indicator history.

Named ``test_live_runner`` (not ``test_runner``): tests/stress has a
``test_runner.py`` and test modules share one namespace.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import polars as pl
import pytest
from _strategies import CASH, NoParams, Scripted, ohlcv
from live_helpers import EXACT, CloseReader, NoParameters, venue_for

from tradepulse.backtest import BacktestResult
from tradepulse.domain import Instrument, Order, OrderError, Side
from tradepulse.errors import ConfigError, DataError
from tradepulse.execution import MatchingEngine, RiskLimits
from tradepulse.execution.venue import Venue
from tradepulse.live import (
    BarHistory,
    LiveIndicators,
    RunnerError,
    StrategyRunner,
    iter_bars,
    paper_venue,
)
from tradepulse.strategy import Bar, StrategyError, UnknownStrategyError

ROWS = [(100, 101, 99, 100), (102, 103, 101, 102.5), (103, 104, 102, 103), (101, 102, 100, 101)]


def _bars(rows: list[tuple[float, ...]] = ROWS) -> list[Bar]:
    return list(iter_bars(ohlcv(rows)))


def _runner(strategy: Any, **options: Any) -> StrategyRunner:
    options.setdefault("venue", paper_venue(EXACT))
    options.setdefault("cash", CASH)
    return StrategyRunner(strategy, NoParams(), runner_id="r1", **options)


# ------------------------------------------------------------------ one bar at a time


def test_a_market_order_placed_on_a_close_fills_at_the_next_open() -> None:
    bars = _bars()
    runner = _runner(Scripted({0: lambda ctx: ctx.buy(quantity=2.0)}))

    first = runner.on_bar(bars[0])
    second = runner.on_bar(bars[1])

    assert first.bar_index == 0
    assert first.orders == ("o1",)
    assert first.fills == ()
    assert (first.position, first.cash, first.equity) == (0.0, CASH, CASH)
    assert second.ts == bars[1].ts
    assert [(fill.client_order_id, fill.quantity, fill.price) for fill in second.fills] == [
        ("r1:o1", Decimal(2), Decimal(102))
    ]
    # Bought 2 at the open 102, marked at the close 102.5.
    assert (second.position, second.cash) == (2.0, CASH - 204.0)
    assert second.equity == CASH - 204.0 + 2 * 102.5
    assert runner.bars == 2


def test_orders_placed_in_initialize_count_as_the_first_bars() -> None:
    runner = _runner(Scripted(on_initialize=lambda ctx: ctx.buy(quantity=1.0)))

    first = runner.on_bar(_bars()[0])

    assert first.orders == ("o1",)
    assert [fill.client_order_id for fill in first.fills] == ["r1:o1"]  # at bar 0's open


def test_state_reports_position_cash_equity_and_working_orders() -> None:
    bars = _bars()
    runner = _runner(
        Scripted(
            {
                0: lambda ctx: ctx.buy(quantity=1.0),
                1: lambda ctx: ctx.buy(quantity=1.0, order_type="limit", limit_price=50.0),
            }
        )
    )
    empty = runner.state()

    runner.on_bar(bars[0])
    runner.on_bar(bars[1])
    state = runner.state()

    assert (empty.status, empty.bars, empty.last_ts, empty.equity) == ("new", 0, None, CASH)
    assert state.runner_id == "r1"
    assert state.strategy == "scripted"
    assert state.symbol == "ASSET"
    assert state.status == "running"
    assert (state.bars, state.last_ts) == (2, bars[1].ts)
    assert (state.position, state.cash) == (1.0, CASH - 102.0)
    assert state.equity == CASH - 102.0 + 102.5
    assert state.open_orders == ("o2",)
    assert state.failure is None


def test_the_strategy_sees_the_runners_ids_and_the_venue_the_prefixed_ones() -> None:
    venue = paper_venue(EXACT)
    strategy = Scripted({0: lambda ctx: ctx.buy(quantity=1.0, order_type="limit", limit_price=1.0)})
    runner = _runner(strategy, venue=venue)

    runner.on_bar(_bars()[0])

    assert strategy.returned == {0: "o1"}
    assert list(venue.orders) == ["r1:o1"]
    assert runner.venue_order_id("o1") == "r1:o1"
    assert runner.venue is venue
    assert runner.orders()["order_id"].to_list() == ["o1"]


def test_result_is_the_run_so_far_and_the_runner_keeps_going() -> None:
    bars = _bars()
    runner = _runner(Scripted({0: lambda ctx: ctx.buy(quantity=1.0)}))
    for bar in bars[:3]:
        runner.on_bar(bar)

    partial = runner.result()
    runner.on_bar(bars[3])
    full = runner.result(periods_per_year=252)

    assert isinstance(partial, BacktestResult)
    # Bought 1 at 102 (bar 1's open): equity marks 1 unit at each close.
    np.testing.assert_array_equal(partial.equity, [CASH, CASH - 102 + 102.5, CASH - 102 + 103])
    assert partial.trades["is_open"].to_list() == [True]
    assert full.equity[-1] == CASH - 102 + 101
    assert full.trades.height == 1  # the open trade marked at the end is not booked twice
    assert full.orders is not None
    assert full.orders["status"].to_list() == ["filled"]


def test_finalize_runs_the_hook_and_ends_the_run() -> None:
    strategy = Scripted()
    runner = _runner(strategy)
    runner.on_bar(_bars()[0])

    runner.finalize()

    assert strategy.finalized
    assert runner.state().status == "finalized"
    with pytest.raises(RunnerError, match="is finalized"):
        runner.on_bar(_bars()[1])
    with pytest.raises(RunnerError, match="is finalized"):
        runner.finalize()


def test_finalize_before_any_bar_still_initializes() -> None:
    strategy = Scripted()
    runner = _runner(strategy)

    runner.finalize()

    assert strategy.finalized
    assert strategy.seen == []


def test_two_phase_step_needs_its_order() -> None:
    runner = _runner(Scripted())
    bar = _bars()[0]

    with pytest.raises(RunnerError, match="needs prepare_bar"):
        runner.complete_bar(())
    runner.prepare_bar(bar)
    with pytest.raises(RunnerError, match="half done"):
        runner.prepare_bar(bar)
    step = runner.complete_bar(())

    assert step.bar_index == 0


def test_fills_of_other_runners_are_ignored() -> None:
    venue = paper_venue(EXACT)
    bars = _bars()
    mine = _runner(Scripted({0: lambda ctx: ctx.buy(quantity=1.0)}), venue=venue)
    other = StrategyRunner(
        Scripted({0: lambda ctx: ctx.buy(quantity=5.0)}), NoParams(), venue=venue, runner_id="r2"
    )
    for bar in bars[:2]:
        mine.prepare_bar(bar)
        other.prepare_bar(bar)
        fills = venue.process_bar(bar).fills
        mine_step = mine.complete_bar(fills)
        other_step = other.complete_bar(fills)

    assert len(fills) == 2
    assert [fill.client_order_id for fill in mine_step.fills] == ["r1:o1"]
    assert [fill.client_order_id for fill in other_step.fills] == ["r2:o1"]
    assert (mine.state().position, other.state().position) == (1.0, 5.0)


# ------------------------------------------------------------------ bad bars and failures


@pytest.mark.parametrize(
    ("bar", "message"),
    [
        (Bar(2, 100.0, 99.0, 98.0, 99.0, 1.0), "breaks the bar contract"),
        (Bar(2, 100.0, 101.0, 99.0, 100.0, math.nan), "breaks the bar contract"),
        (Bar(2, 100.0, math.inf, 99.0, 100.0, 1.0), "breaks the bar contract"),
        (Bar(1, 100.0, 101.0, 99.0, 100.0, 1.0), "does not follow"),
        (Bar(2.5, 100.0, 101.0, 99.0, 100.0, 1.0), "ts must be an integer"),  # type: ignore[arg-type]
        (Bar(2, "x", 101.0, 99.0, 100.0, 1.0), "is not a bar"),  # type: ignore[arg-type]
        ((2, 100.0, 101.0, 99.0, 100.0, 1.0), "is not a bar"),
    ],
)
def test_a_bad_bar_is_refused_and_the_runner_goes_on(bar: Any, message: str) -> None:
    runner = _runner(Scripted())
    runner.on_bar(Bar(1, 100.0, 101.0, 99.0, 100.0, 1.0))

    with pytest.raises(DataError, match=message):
        runner.on_bar(bar)
    runner.on_bar(Bar(3, 100.0, 101.0, 99.0, 100.0, 1.0))

    assert runner.bars == 2


def test_numpy_integers_and_other_bar_likes_are_accepted() -> None:
    class Row:
        ts = np.int64(5)
        open = 1.0
        high = 2.0
        low = 0.5
        close = 1.5
        volume = np.float64(3.0)

    step = _runner(Scripted()).on_bar(Row())

    assert step.ts == 5


def test_a_strategy_error_names_the_bar_and_fails_the_runner() -> None:
    def boom(ctx: Any) -> None:
        raise ZeroDivisionError("division by zero")

    runner = _runner(Scripted({1: boom}))
    bars = _bars()
    runner.on_bar(bars[0])

    with pytest.raises(StrategyError, match=r"raised ZeroDivisionError at bar 1 \(ts 2024-01-02"):
        runner.on_bar(bars[1])
    state = runner.state()

    assert state.status == "failed"
    assert state.failure is not None
    assert "ZeroDivisionError" in state.failure
    with pytest.raises(RunnerError, match=r"is failed.*ZeroDivisionError"):
        runner.on_bar(bars[2])


def test_misuse_of_the_context_is_worded_like_the_backtest() -> None:
    runner = _runner(Scripted({0: lambda ctx: ctx.indicator("nope")}))

    with pytest.raises(StrategyError, match=r"'scripted' at bar 0 .*unknown indicator 'nope'"):
        runner.on_bar(_bars()[0])


def test_an_error_inside_indicators_is_not_mistaken_for_an_unknown_name() -> None:
    class Broken(CloseReader):
        def indicators(self, bars: pl.DataFrame, params: NoParameters) -> Any:
            raise KeyError("close")

    runner = StrategyRunner(Broken(), NoParameters(), venue=paper_venue(EXACT))

    with pytest.raises(StrategyError, match=r"at bar 0 .*indicators\(\) raised KeyError"):
        runner.on_bar(_bars()[0])


def test_errors_in_initialize_and_finalize_are_named() -> None:
    def boom(ctx: Any) -> None:
        raise ValueError("bad start")

    class BadFinalize(Scripted):
        def finalize(self, ctx: Any) -> None:
            raise StrategyError("bad end")

    with pytest.raises(StrategyError, match="raised ValueError at initialize: bad start"):
        _runner(Scripted(on_initialize=boom)).on_bar(_bars()[0])
    runner = _runner(BadFinalize())
    runner.on_bar(_bars()[0])
    with pytest.raises(StrategyError, match="at finalize: bad end"):
        runner.finalize()


def test_a_venue_refusal_passes_through_and_fails_the_runner() -> None:
    venue = paper_venue(EXACT)
    # Another runner once used the id "r1" on this venue (without resuming from it).
    venue.submit(
        Order(client_order_id="r1:o1", symbol="ASSET", side=Side.BUY, quantity=Decimal(1)),
        ts_ns=0,
    )
    runner = _runner(Scripted({0: lambda ctx: ctx.buy(quantity=1.0)}), venue=venue)

    with pytest.raises(OrderError, match="duplicate client_order_id 'r1:o1'"):
        runner.on_bar(_bars()[0])

    assert runner.state().status == "failed"
    assert "duplicate" in (runner.state().failure or "")


def test_result_needs_a_bar_and_a_valid_annualisation() -> None:
    runner = _runner(Scripted())

    with pytest.raises(RunnerError, match="no bar"):
        runner.result()
    runner.on_bar(_bars()[0])
    with pytest.raises(ConfigError, match="periods_per_year"):
        runner.result(periods_per_year=-1.0)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"runner_id": "has space"}, ConfigError, "runner_id"),
        ({"runner_id": "x" * 33}, ConfigError, "runner_id"),
        ({"venue": object()}, ConfigError, "Venue protocol"),
        ({"risk": {"max_position": 1}}, ConfigError, "risk must be RiskLimits"),
        ({"cash": -1.0}, ConfigError, "cash"),
        ({"latency_bars": -1}, ConfigError, "latency_bars"),
        ({"sizing": "half"}, ConfigError, "sizing"),
        ({"max_participation": 2.0}, ConfigError, "max_participation"),
        ({"history": 1}, ConfigError, "history"),
        ({"history": True}, ConfigError, "history"),
    ],
)
def test_bad_arguments_are_named(options: dict[str, Any], error: type, message: str) -> None:
    arguments: dict[str, Any] = {"venue": paper_venue(EXACT), "runner_id": "r1", **options}

    with pytest.raises(error, match=message):
        StrategyRunner(Scripted(), NoParams(), **arguments)


def test_a_plugin_name_and_a_parameter_mapping_are_resolved() -> None:
    runner = StrategyRunner("sma_cross", {"fast": "5"}, venue=paper_venue(EXACT))

    assert runner.strategy.name == "sma_cross"
    assert runner.params.fast == 5  # type: ignore[attr-defined]
    assert runner.runner_id == "live"
    assert "sma_cross" in repr(runner)
    with pytest.raises(UnknownStrategyError, match="no_such"):
        StrategyRunner("no_such", None, venue=paper_venue(EXACT))


def test_risk_limits_reject_before_the_venue() -> None:
    venue = paper_venue(EXACT)
    runner = _runner(
        Scripted({0: lambda ctx: ctx.buy(quantity=5.0)}),
        venue=venue,
        risk=RiskLimits(max_order_quantity=Decimal(2)),
    )

    step = runner.on_bar(_bars()[0])

    assert step.orders == ("o1",)
    assert venue.order("r1:o1").status.value == "rejected"
    assert "max_order_quantity" in (venue.order("r1:o1").reason or "")


# ------------------------------------------------------------------ indicators over a history


def test_indicators_read_the_bars_seen_and_nan_beyond_the_history() -> None:
    rows = [(c, c + 1, c - 1, c) for c in (10.0, 11.0, 12.0, 13.0, 14.0, 15.0)]
    strategy = CloseReader(depth=3)
    runner = StrategyRunner(strategy, NoParameters(), venue=paper_venue(EXACT), history=3)

    for bar in _bars(rows):
        runner.on_bar(bar)

    nan = math.nan
    expected = [
        [10.0, nan, nan, nan],
        [11.0, 10.0, nan, nan],
        [12.0, 11.0, 10.0, nan],
        [13.0, 12.0, 11.0, nan],  # bar 0 has left the 3-bar history
        [14.0, 13.0, 12.0, nan],
        [15.0, 14.0, 13.0, nan],
    ]
    np.testing.assert_array_equal(np.array(strategy.reads), np.array(expected))
    assert strategy.calls == 6  # once per bar, however many reads


def test_indicators_are_not_computed_on_bars_where_none_is_read() -> None:
    strategy = CloseReader(read=False)
    runner = StrategyRunner(strategy, NoParameters(), venue=paper_venue(EXACT))

    for bar in _bars():
        runner.on_bar(bar)

    assert strategy.calls == 0


def test_bar_history_keeps_the_last_bars_and_never_changes_a_frame_handed_out() -> None:
    history = BarHistory(3)
    bars = [Bar(i, 10.0 + i, 11.0 + i, 9.0 + i, 10.5 + i, float(i)) for i in range(10)]
    frames = []
    for bar in bars:
        history.append(bar)
        frames.append(history.frame().clone())
        frames.append(history.frame())

    for seen, (copy, view) in enumerate(zip(frames[::2], frames[1::2], strict=True), start=1):
        kept = bars[max(0, seen - 3) : seen]
        assert view.equals(copy)
        assert view["open"].to_list() == [bar.open for bar in kept]
        assert view["ts"].dt.epoch("ns").to_list() == [bar.ts for bar in kept]
    assert history.frame().schema == pl.Schema(
        {
            "ts": pl.Datetime("ns", "UTC"),
            "open": pl.Float64,
            "high": pl.Float64,
            "low": pl.Float64,
            "close": pl.Float64,
            "volume": pl.Float64,
        }
    )
    assert (history.capacity, history.seen, history.first_index) == (3, 10, 7)


def test_live_indicators_is_a_mapping_of_sequences_indexed_from_the_start() -> None:
    history = BarHistory(4)
    indicators = LiveIndicators(CloseReader(), NoParameters(), history)
    for index in range(6):
        history.append(Bar(index, 1.0, 2.0, 0.5, float(index + 1), 1.0))
    indicators.invalidate()

    close = indicators["close"]

    assert list(indicators) == ["close"]
    assert len(indicators) == 1
    assert len(close) == 6
    assert close[5] == 6.0
    assert close[-1] == 6.0
    assert math.isnan(close[1])  # older than the history
    assert list(close[3:6]) == [4.0, 5.0, 6.0]
    np.testing.assert_array_equal(indicators.column("close"), [3.0, 4.0, 5.0, 6.0])
    with pytest.raises(IndexError):
        close[-7]


# ------------------------------------------------------------------ venues


def test_the_matching_engine_is_a_venue_and_paper_venue_checks_its_arguments() -> None:
    instrument = Instrument(symbol="X", price_increment=Decimal("0.01"))

    assert isinstance(paper_venue(instrument), MatchingEngine)
    assert isinstance(paper_venue(instrument), Venue)
    with pytest.raises(ConfigError, match="instrument"):
        paper_venue("X")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="latency_bars"):
        paper_venue(instrument, latency_bars=-1)


def test_venue_for_matches_the_frictions() -> None:
    venue = venue_for({"commission": 0.001, "latency_bars": 2, "sizing": "whole"})

    assert "latency=FixedLatency(bars=2" in repr(venue)
