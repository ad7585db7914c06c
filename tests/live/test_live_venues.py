"""The venues a runner sees: its own ids at a shared venue, and the catch-up of a resume."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from _strategies import CASH, NoParams, TargetFollower
from live_helpers import EXACT, assert_same_run, replay, venue_for

from tradepulse.domain import Order, OrderType, Side
from tradepulse.domain.orders import OrderStatus
from tradepulse.execution import RiskLimits
from tradepulse.execution.venue import Venue
from tradepulse.live import (
    CatchUpVenue,
    ForwardingVenue,
    PrefixedVenue,
    ResumeError,
    StrategyRunner,
    iter_bars,
    reconcile,
)
from tradepulse.live.venues import paper_venue
from tradepulse.strategy import Bar

BAR = Bar(10, 100.0, 101.0, 99.0, 100.0, 1_000.0)


def _order(client_order_id: str, quantity: int = 1, limit: int | None = None) -> Order:
    return Order(
        client_order_id=client_order_id,
        symbol="ASSET",
        side=Side.BUY,
        quantity=Decimal(quantity),
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        limit_price=None if limit is None else Decimal(limit),
    )


def test_a_forwarding_venue_is_its_inner_venue_except_that_it_skips_no_bar() -> None:
    engine = paper_venue(EXACT)
    reference = paper_venue(EXACT)
    venue = ForwardingVenue(engine)
    for target in (venue, reference):
        target.submit(_order("o1", limit=50), ts_ns=0)
        target.submit(_order("o2"), ts_ns=0)
        target.reject(_order("o3"), ts_ns=0, reason="risk")
        target.replace("o1", new_client_order_id="o4", ts_ns=0, limit_price=Decimal(49))
        target.process_bar(BAR)
    venue.skip_to(bar_index=5, ts_ns=20)  # a live runner hands every bar: nothing moves

    assert isinstance(venue, Venue)
    assert venue.inner is engine
    assert {key: (r.status, r.filled_quantity) for key, r in venue.orders.items()} == {
        key: (r.status, r.filled_quantity) for key, r in reference.orders.items()
    }
    assert [record.client_order_id for record in venue.open_orders] == ["o4"]
    assert venue.has_working_orders
    assert (venue.bar_index, venue.last_ts_ns, venue.instrument) == (0, 10, EXACT)
    venue.cancel("o4", ts_ns=10)
    assert engine.order("o4").status is OrderStatus.CANCELLED
    assert not venue.has_working_orders


def test_a_prefixed_venue_shows_one_runners_orders_under_its_own_ids() -> None:
    engine = paper_venue(EXACT)
    mine = PrefixedVenue(engine, "a:")
    theirs = PrefixedVenue(engine, "b:")

    mine.submit(_order("o1", limit=50), ts_ns=0)
    theirs.submit(_order("o1", limit=50), ts_ns=0)
    mine.replace("o1", new_client_order_id="o2", ts_ns=0, limit_price=Decimal(49))
    theirs.reject(_order("o2"), ts_ns=0, reason="risk")
    mine.process_bar(BAR)

    assert list(engine.orders) == ["a:o1", "b:o1", "a:o2", "b:o2"]
    assert list(mine.orders) == ["o1", "o2"]
    assert [record.client_order_id for record in mine.open_orders] == ["a:o2"]
    assert mine.has_working_orders
    assert mine.order("o2").order.limit_price == Decimal(49)
    assert (mine.created, theirs.created) == (["o1", "o2"], ["o1", "o2"])
    assert (mine.bar_index, mine.last_ts_ns, mine.instrument) == (0, 10, EXACT)
    mine.cancel("o2", ts_ns=10)
    assert not mine.has_working_orders
    assert theirs.has_working_orders
    mine.skip_to(bar_index=5, ts_ns=50)  # a runner never skips bars: nothing happens
    assert engine.bar_index == 0
    assert isinstance(mine, Venue)


def test_an_empty_prefix_passes_ids_through() -> None:
    engine = paper_venue(EXACT)
    plain = PrefixedVenue(engine, "")

    order = _order("o1")
    plain.submit(order, ts_ns=0)

    assert engine.order("o1").order is order
    assert plain.owns("anything")


def test_a_catch_up_answers_from_the_shadow_and_sends_the_real_venue_what_it_lacks() -> None:
    shadow = paper_venue(EXACT)
    real = paper_venue(EXACT)
    real.submit(_order("x:o1", limit=50), ts_ns=0)
    catch = CatchUpVenue(shadow, real)

    catch.submit(_order("x:o1", limit=50), ts_ns=0)  # the dead runner sent it: recognised
    catch.submit(_order("x:o2"), ts_ns=0)  # never sent: sent now
    catch.reject(_order("x:o3"), ts_ns=0, reason="risk")
    catch.process_bar(BAR)

    assert list(real.orders) == ["x:o1", "x:o2", "x:o3"]
    assert list(catch.orders) == list(shadow.orders)
    assert (catch.instrument, catch.bar_index, catch.last_ts_ns) == (EXACT, 0, 10)
    assert catch.has_working_orders
    assert [record.client_order_id for record in catch.open_orders] == ["x:o1"]
    assert catch.order("x:o2").status.value == "filled"
    assert real.order("x:o2").status.value == "filled"
    reconcile(shadow, real, "x:")
    catch.skip_to(bar_index=3, ts_ns=40)
    assert shadow.bar_index == 0
    assert isinstance(catch, Venue)


def test_a_catch_up_refuses_an_order_the_real_venue_missed_long_ago() -> None:
    shadow = paper_venue(EXACT)
    real = paper_venue(EXACT)
    real.process_bar(BAR)
    catch = CatchUpVenue(shadow, real)

    with pytest.raises(ResumeError, match=r"lacks order 'x:o1'.*up to ts 10"):
        catch.submit(_order("x:o1"), ts_ns=5)


def test_reconcile_names_the_first_difference() -> None:
    shadow = paper_venue(EXACT)
    shadow.submit(_order("x:o1", limit=50), ts_ns=0)
    other_id = paper_venue(EXACT)
    other_id.submit(_order("x:o9", limit=50), ts_ns=0)
    other_state = paper_venue(EXACT)
    other_state.submit(_order("x:o1", limit=50), ts_ns=0)
    other_state.cancel("x:o1", ts_ns=0)
    extra = paper_venue(EXACT)
    extra.submit(_order("x:o1", limit=50), ts_ns=0)
    extra.submit(_order("x:o2", limit=50), ts_ns=0)
    extra.submit(_order("y:o5", limit=50), ts_ns=0)  # another runner's: ignored

    with pytest.raises(ResumeError, match="has 'x:o9' where the replay placed 'x:o1'"):
        reconcile(shadow, other_id, "x:")
    with pytest.raises(ResumeError, match=r"'x:o1' differs: the venue has it cancelled"):
        reconcile(shadow, other_state, "x:")
    with pytest.raises(ResumeError, match=r"1 order\(s\) the replay did not place, from 'x:o2'"):
        reconcile(shadow, extra, "x:")


def test_a_runner_with_risk_limits_resumes_its_rejections(sp500: pl.DataFrame) -> None:
    bars = sp500.head(80)
    targets = [1.0 if (index // 10) % 2 == 0 else -0.5 for index in range(bars.height)]
    frictions = {
        "cash": CASH,
        "risk": RiskLimits(max_position=Decimal(5), margin_rate=Decimal("0.5")),
        "sizing": "whole",
    }
    reference, _ = replay(TargetFollower(targets), NoParams(), bars, frictions)
    assert (reference.orders()["status"] == "rejected").any()
    venue = venue_for(frictions)
    first = StrategyRunner(TargetFollower(targets), NoParams(), venue=venue, **frictions)
    for bar in iter_bars(bars.head(45)):
        first.on_bar(bar)

    second = StrategyRunner(TargetFollower(targets), NoParams(), venue=venue, **frictions)
    second.resume(bars.head(45))
    for bar in iter_bars(bars.slice(45)):
        second.on_bar(bar)

    assert_same_run(second.result(), reference.result())
