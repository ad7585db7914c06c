"""Kill a strategy runner, start a new one, resume: nothing lost, nothing doubled (issue 5, §6).

A kill drops the runner object: between two bars, or in the middle of one (the
venue wrapper raises inside a submit, cancel, replace or bar match, before or
after the venue did it). The new runner gets the same id, strategy, parameters
and frictions and the bars the dead one was fed; after :meth:`resume` it is fed
the rest. Its order log, fills and equity must equal those of a runner that was
never killed, and the venue must hold exactly the orders of that run: no order
lost, none placed twice.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import polars as pl
import pytest
from _strategies import CASH, NoParams, OrderPlan, PlannedOrder
from live_helpers import KilledError, KillingVenue, assert_same_run, replay, venue_for
from polars.testing import assert_frame_equal

from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.execution import MatchingEngine
from tradepulse.live import ResumeError, RunnerError, StrategyRunner, iter_bars
from tradepulse.strategy import Bar, Strategy, StrategyError

SMA: Mapping[str, Any] = {"fast": 5, "slow": 20, "direction": "long_short"}
#: Latency keeps target orders pending across a kill.
FRICTIONS: Mapping[str, Any] = {"cash": CASH, "commission": 0.001, "latency_bars": 1}
PLAN = (
    PlannedOrder(bar=2, buy=True, quantity=5.0, order_type="limit", limit_offset=-0.01),
    PlannedOrder(
        bar=4, buy=True, quantity=3.0, order_type="limit", limit_offset=-0.2, cancel_after=5
    ),
    PlannedOrder(
        bar=6, buy=False, quantity=2.0, order_type="limit", limit_offset=0.03, replace_after=4
    ),
    PlannedOrder(bar=8, buy=False, quantity=4.0, order_type="stop", stop_offset=-0.01),
    *(PlannedOrder(bar=bar, buy=bar % 2 == 0, quantity=2.0) for bar in range(12, 60, 3)),
)


def _strategy(kind: str) -> tuple[Strategy, Any]:
    if kind == "sma":
        strategy = resolve_strategy("sma_cross")
        return strategy, resolve_params(strategy, SMA)
    return OrderPlan(PLAN), NoParams()


def _uninterrupted(kind: str, bars: pl.DataFrame) -> tuple[StrategyRunner, MatchingEngine]:
    strategy, params = _strategy(kind)
    return replay(strategy, params, bars, FRICTIONS)


def _new_runner(kind: str, venue: Any) -> StrategyRunner:
    strategy, params = _strategy(kind)
    return StrategyRunner(strategy, params, venue=venue, runner_id="r1", **FRICTIONS)


def _assert_like_uninterrupted(
    runner: StrategyRunner, venue: MatchingEngine, reference: StrategyRunner, ref_venue: Any
) -> None:
    assert_same_run(runner.result(), reference.result())
    # The venue holds the uninterrupted run's orders, once each, in the same states.
    assert list(venue.orders) == list(ref_venue.orders)
    for key, record in ref_venue.orders.items():
        held = venue.orders[key]
        assert (held.status, held.filled_quantity, held.filled_notional) == (
            record.status,
            record.filled_quantity,
            record.filled_notional,
        )


@pytest.mark.parametrize("kind", ["sma", "plan"])
@pytest.mark.parametrize("killed_after", [0, 1, 37, 59])
def test_a_runner_killed_between_bars_resumes_where_it_stopped(
    sp500: pl.DataFrame, kind: str, killed_after: int
) -> None:
    bars = sp500.head(120 if kind == "sma" else 60)
    reference, ref_venue = _uninterrupted(kind, bars)
    venue = venue_for(FRICTIONS)
    first = _new_runner(kind, venue)
    feed = list(iter_bars(bars))
    for bar in feed[:killed_after]:
        first.on_bar(bar)
    del first

    second = _new_runner(kind, venue)
    state = second.resume(bars.head(killed_after))
    for bar in feed[killed_after:]:
        second.on_bar(bar)

    assert (state.bars, state.status) == (killed_after, "running")
    _assert_like_uninterrupted(second, venue, reference, ref_venue)


def _feed_until_killed(runner: StrategyRunner, feed: list[Bar]) -> tuple[int, str]:
    """Feed ``runner`` until it dies; return how many bars it was fed and why it died."""
    for fed, bar in enumerate(feed, start=1):
        try:
            runner.on_bar(bar)
        except StrategyError as exc:
            return fed, str(exc)
    raise AssertionError("the runner was never killed")


KILLS = [
    ("sma", "submit", 3, False),
    ("sma", "submit", 3, True),
    ("sma", "submit", 8, True),
    ("sma", "process_bar", 40, False),
    ("sma", "process_bar", 40, True),
    ("plan", "submit", 2, True),
    ("plan", "cancel", 1, False),
    ("plan", "cancel", 1, True),
    ("plan", "replace", 1, False),
    ("plan", "replace", 1, True),
    ("plan", "process_bar", 9, True),
]


@pytest.mark.parametrize(("kind", "method", "call", "after"), KILLS)
def test_a_runner_killed_in_the_middle_of_a_bar_resumes_without_doubling(
    sp500: pl.DataFrame, kind: str, method: str, call: int, after: bool
) -> None:
    bars = sp500.head(120 if kind == "sma" else 60)
    reference, ref_venue = _uninterrupted(kind, bars)
    venue = venue_for(FRICTIONS)
    first = _new_runner(kind, KillingVenue(venue, method=method, call=call, after=after))
    feed = list(iter_bars(bars))
    fed, death = _feed_until_killed(first, feed)
    assert "KilledError" in death
    assert fed < len(feed)
    del first

    second = _new_runner(kind, venue)
    second.resume(bars.head(fed))  # every bar the dead runner was fed, the last half done
    for bar in feed[fed:]:
        second.on_bar(bar)

    _assert_like_uninterrupted(second, venue, reference, ref_venue)


def test_resuming_on_an_empty_venue_is_running_from_the_start(sp500: pl.DataFrame) -> None:
    bars = sp500.head(120)
    reference, ref_venue = _uninterrupted("sma", bars)
    venue = venue_for(FRICTIONS)
    runner = _new_runner("sma", venue)

    runner.resume(iter_bars(bars.head(70)))
    for bar in iter_bars(bars.slice(70)):
        runner.on_bar(bar)

    _assert_like_uninterrupted(runner, venue, reference, ref_venue)


def test_two_runners_sharing_a_venue_each_trade_as_alone(sp500: pl.DataFrame) -> None:
    bars = sp500.head(300)
    venue = venue_for(FRICTIONS)
    fast = StrategyRunner("sma_cross", SMA, venue=venue, runner_id="fast", **FRICTIONS)
    slow = StrategyRunner("rsi_reversion", None, venue=venue, runner_id="slow", **FRICTIONS)

    for bar in iter_bars(bars):
        for runner in (fast, slow):
            runner.prepare_bar(bar)
        fills = venue.process_bar(bar).fills
        for runner in (fast, slow):
            runner.complete_bar(fills)

    for runner, name, params in ((fast, "sma_cross", SMA), (slow, "rsi_reversion", {})):
        strategy = resolve_strategy(name)
        alone = run_event(
            bars, strategy, resolve_params(strategy, params), fast_fills=False, **FRICTIONS
        )
        assert alone.orders is not None
        assert alone.orders.height > 0
        assert_same_run(runner.result(), alone)
    assert len(venue.orders) == fast.orders().height + slow.orders().height


# ------------------------------------------------------------------ what resume refuses


def _killed_sma(bars: pl.DataFrame, count: int) -> MatchingEngine:
    venue = venue_for(FRICTIONS)
    first = _new_runner("sma", venue)
    for bar in iter_bars(bars.head(count)):
        first.on_bar(bar)
    return venue


def test_resume_with_other_parameters_is_refused(sp500: pl.DataFrame) -> None:
    bars = sp500.head(120)
    venue = _killed_sma(bars, 100)
    runner = StrategyRunner(
        "sma_cross", {**SMA, "fast": 6}, venue=venue, runner_id="r1", **FRICTIONS
    )

    with pytest.raises(ResumeError, match=r"differ|different|lacks"):
        runner.resume(bars.head(100))

    assert runner.state().status == "failed"
    with pytest.raises(RunnerError, match="is failed"):
        runner.on_bar(next(iter_bars(bars.slice(100))))


def test_resume_with_other_cash_finds_a_different_order_under_an_id(sp500: pl.DataFrame) -> None:
    bars = sp500.head(120)
    venue = _killed_sma(bars, 100)
    runner = StrategyRunner(
        "sma_cross", SMA, venue=venue, runner_id="r1", **{**FRICTIONS, "cash": 2 * CASH}
    )

    with pytest.raises(ResumeError, match=r"holds a different order under id 'r1:t1\.\d'"):
        runner.resume(bars.head(100))


def test_resume_with_fewer_bars_than_the_venue_saw_is_refused(sp500: pl.DataFrame) -> None:
    bars = sp500.head(120)
    venue = _killed_sma(bars, 100)
    runner = _new_runner("sma", venue)

    with pytest.raises(ResumeError, match=r"did not place|differs"):
        runner.resume(bars.head(60))


def test_a_cancel_or_replace_the_venue_should_have_had_is_refused(sp500: pl.DataFrame) -> None:
    bars = sp500.head(30)
    resting = PlannedOrder(bar=2, buy=True, quantity=1.0, order_type="limit", limit_offset=-0.2)
    for changed in (
        dataclasses.replace(resting, cancel_after=3),
        dataclasses.replace(resting, replace_after=3),
    ):
        venue = venue_for(FRICTIONS)
        replay(OrderPlan([resting]), NoParams(), bars, FRICTIONS, venue=venue)
        runner = StrategyRunner(
            OrderPlan([changed]), NoParams(), venue=venue, runner_id="r1", **FRICTIONS
        )

        with pytest.raises(ResumeError, match=r"still works at the venue|lacks order"):
            runner.resume(bars)


def test_resume_comes_before_the_first_bar(sp500: pl.DataFrame) -> None:
    runner = _new_runner("sma", venue_for(FRICTIONS))
    runner.on_bar(next(iter_bars(sp500)))

    with pytest.raises(RunnerError, match="before the first bar"):
        runner.resume(sp500.head(1))


def test_orders_of_a_resumed_runner_equal_the_backtests(sp500: pl.DataFrame) -> None:
    bars = sp500.head(120)
    strategy, params = _strategy("sma")
    backtest = run_event(bars, strategy, params, fast_fills=False, **FRICTIONS)
    venue = _killed_sma(bars, 50)
    runner = _new_runner("sma", venue)

    runner.resume(bars.head(50))
    for bar in iter_bars(bars.slice(50)):
        runner.on_bar(bar)

    assert backtest.orders is not None
    assert_frame_equal(runner.orders(), backtest.orders)


def test_killed_error_is_not_a_tradepulse_error() -> None:
    # The kill must look like a crash, not like a refusal the runner understands.
    assert not issubclass(KilledError, StrategyError)
