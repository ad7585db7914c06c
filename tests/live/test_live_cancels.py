"""The service's own cancels reach a runner's shadow at the same point as at the service.

A :class:`~tradepulse.live.outbox.ServiceCancel` says the service cancelled an
order (a user's cancel, the kill switch) after the bar stamped ``after_ts``:
the service matched that bar with the order working and no later one. These
tests drive a :class:`~tradepulse.live.host.RunnerHost` with hand-made bars
whose fills are known in advance (a limit buy at 90 rests while the low stays
at 100 and fills at 90 on a bar dipping to 85), so every expected position is
derived by hand: the shadow cancels the order right before matching the first
bar after ``after_ts``, a cancel that arrives too late makes the host rebuild,
and a rebuild from a :class:`~tradepulse.live.host.History` ends where the host
that got the cancel in time did.
"""

from __future__ import annotations

from decimal import Decimal

from _strategies import Scripted

from tradepulse.domain import Instrument
from tradepulse.domain.orders import Order, OrderStatus, OrderType, Side
from tradepulse.live import StrategyRunner, paper_venue
from tradepulse.live.host import History, HostReply, HostRequest, RunnerHost, RunnerSpec
from tradepulse.live.outbox import CANCELLED_PREFIX, RecordingVenue, ServiceCancel
from tradepulse.strategy import Bar

INSTRUMENT = Instrument(
    symbol="SPX",
    price_increment=Decimal("0.01"),
    quantity_increment=Decimal("0.0001"),
    cash_increment=Decimal("0.01"),
)
VOLUME = 1e6


def _spec(plugin: type[Scripted], **changes: float) -> RunnerSpec:
    return RunnerSpec(
        strategy_id="s1",
        plugin=plugin,
        params={},
        symbol="SPX",
        instrument=INSTRUMENT,
        cash=100_000.0,
        **changes,  # type: ignore[arg-type]  # max_participation
    )


def _flat(ts: int) -> Bar:
    return Bar(ts, 100.0, 100.0, 100.0, 100.0, VOLUME)


def _dip(ts: int) -> Bar:
    return Bar(ts, 100.0, 100.0, 85.0, 88.0, VOLUME)


class _Rest(Scripted):
    """Place a limit buy of 5 at 90 on the first bar's close (it rests until a dip)."""

    def __init__(self) -> None:
        super().__init__(
            {0: lambda ctx: ctx.buy(quantity=5.0, order_type="limit", limit_price=90.0)}
        )


class _RestThenCancel(Scripted):
    """Place the resting buy on the first bar, cancel it itself on the second."""

    def __init__(self) -> None:
        super().__init__(
            {
                0: lambda ctx: ctx.buy(quantity=5.0, order_type="limit", limit_price=90.0),
                1: lambda ctx: ctx.cancel("o1"),
            }
        )


def _run(
    host: RunnerHost, bars: list[Bar], previous: int | None, *cancels: ServiceCancel
) -> HostReply:
    return host.handle(
        HostRequest(
            spec=host.spec, phase="run", bars=tuple(bars), previous_ts=previous, cancels=cancels
        )
    )


def _user_cancel(after_ts: int | None) -> ServiceCancel:
    return ServiceCancel("s1:o1", after_ts, "cancel_requested: cancelled on request")


def _shadow(host: RunnerHost) -> dict[str, tuple[object, ...]]:
    assert host.runner is not None
    return {
        order_id: (record.status, record.filled_quantity, record.reason)
        for order_id, record in host.runner.venue.orders.items()
    }


def test_a_service_cancel_is_mirrored_before_the_shadow_matches_the_next_bar() -> None:
    control = RunnerHost(_spec(_Rest), history=History(()))
    host = RunnerHost(_spec(_Rest), history=History(()))
    for runner_host in (control, host):
        first = _run(runner_host, [_flat(1), _flat(2)], None)
        assert first.state is not None
        assert first.state.open_orders == ("o1",)

    filled = _run(control, [_dip(3)], 2)  # the dip fills the limit: 5 at 90
    cancelled = _run(host, [_dip(3), _dip(4)], 2, _user_cancel(2))

    assert filled.state is not None
    assert (filled.state.position, filled.state.cash) == (5.0, 100_000.0 - 5 * 90.0)
    assert cancelled.state is not None
    assert (cancelled.state.position, cancelled.state.cash) == (0.0, 100_000.0)
    assert cancelled.state.open_orders == ()
    assert all(not step.open and not step.close for step in cancelled.steps)  # nothing to send
    status, quantity, reason = _shadow(host)["s1:o1"]
    assert (status, quantity) == (OrderStatus.CANCELLED, Decimal(0))
    assert reason == CANCELLED_PREFIX + "cancel_requested: cancelled on request"


def test_a_cancel_after_a_bar_waits_for_the_bar_after_it() -> None:
    # A cap of 2 units a bar (2e-6 of 1e6): a dip fills 2 of the 5. The service
    # matched bar 3 with the order working (2 filled), then cancelled the rest.
    host = RunnerHost(_spec(_Rest, max_participation=2e-6), history=History(()))
    _run(host, [_flat(1), _flat(2)], None)

    reply = host.handle(
        HostRequest(
            spec=host.spec, phase="close", bar=_dip(3), previous_ts=2, cancels=(_user_cancel(3),)
        )
    )
    later = _run(host, [_dip(4), _dip(5)], 3)

    assert reply.state is not None
    assert (reply.state.position, reply.state.open_orders) == (2.0, ("o1",))  # still working
    assert later.state is not None
    assert later.state.position == 2.0  # the dips after bar 3 fill nothing more
    assert later.state.cash == 100_000.0 - 2 * 90.0
    assert _shadow(host)["s1:o1"][:2] == (OrderStatus.CANCELLED, Decimal(2))


def test_a_late_cancel_rebuilds_the_runner_where_the_service_cancelled() -> None:
    timely = RunnerHost(_spec(_Rest, max_participation=2e-6), history=History(()))
    late = RunnerHost(_spec(_Rest, max_participation=2e-6), history=History(()))
    bars = [_flat(1), _flat(2), _dip(3), _dip(4)]
    _run(timely, bars[:2], None)
    _run(timely, bars[2:], 2, _user_cancel(2))
    _run(late, bars, None)  # the shadow filled 4 the service never filled

    asked = _run(late, [_dip(5)], 4, _user_cancel(2))
    history = History(tuple(bars), cancelled=(_user_cancel(2),))
    rebuilt = late.handle(
        HostRequest(
            spec=late.spec,
            phase="run",
            bars=(_dip(5),),
            previous_ts=4,
            cancels=(_user_cancel(2),),
            history=history,
        )
    )
    again = _run(timely, [_dip(5)], 4)

    assert asked.status == "needs_history"
    assert rebuilt.status == "ok"
    assert rebuilt.state == again.state
    assert rebuilt.state is not None
    assert (rebuilt.state.position, rebuilt.state.cash) == (0.0, 100_000.0)
    assert _shadow(late) == _shadow(timely)
    assert late.runner is not None
    assert timely.runner is not None
    assert late.runner.orders().equals(timely.runner.orders())


def test_a_rebuild_places_a_cancel_between_a_partial_fill_and_the_next_bar() -> None:
    bars = [_flat(1), _flat(2), _dip(3), _dip(4), _dip(5)]
    live = RunnerHost(_spec(_Rest, max_participation=2e-6), history=History(()))
    _run(live, bars[:3], None)
    _run(live, bars[3:], 3, _user_cancel(3))

    rebuilt = RunnerHost(
        _spec(_Rest, max_participation=2e-6),
        history=History(tuple(bars), cancelled=(_user_cancel(3),)),
    )

    assert rebuilt.runner is not None
    assert live.runner is not None
    assert rebuilt.runner.state() == live.runner.state()
    assert rebuilt.runner.state().position == 2.0  # filled on bar 3 only
    assert _shadow(rebuilt) == _shadow(live)


def test_the_services_record_of_the_runners_own_cancel_changes_nothing() -> None:
    host = RunnerHost(_spec(_RestThenCancel), history=History(()))
    _run(host, [_flat(1), _flat(2), _flat(3)], None)  # o1 placed on bar 1, cancelled on bar 2
    before = _shadow(host)

    # A restarted ingress reports every cancel it reads, the runner's own too
    # (the service applied the cancel command after bar 2).
    reply = _run(host, [_dip(4)], 3, _user_cancel(2))

    assert reply.status == "ok"
    assert _shadow(host) == before
    assert before["s1:o1"][0] is OrderStatus.CANCELLED
    assert before["s1:o1"][2] == "cancelled on request"  # the runner's own reason
    assert host.rebuilds == 1  # the first build only


def test_mirroring_a_cancel_sends_nothing_and_skips_orders_already_ended() -> None:
    venue = RecordingVenue(paper_venue(INSTRUMENT))
    for number in (1, 2):
        venue.submit(
            Order(
                client_order_id=f"r:o{number}",
                symbol="SPX",
                side=Side.BUY,
                quantity=Decimal(1),
                order_type=OrderType.LIMIT,
                limit_price=Decimal(90),
            ),
            ts_ns=0,
        )
    venue.cancel("r:o2", ts_ns=0)
    venue.take()

    done = [
        venue.mirror_cancel(ServiceCancel(order_id, None, "kill_switch: engaged"))
        for order_id in ("r:o1", "r:o2", "r:nope")
    ]

    assert done == [True, False, False]
    assert venue.take() == ()
    assert venue.order("r:o1").reason == CANCELLED_PREFIX + "kill_switch: engaged"
    assert venue.order("r:o2").reason == "cancelled on request"


def test_the_runner_says_at_which_bar_its_next_target_is_sized() -> None:
    class Target(Scripted):
        def __init__(self) -> None:
            super().__init__({1: lambda ctx: ctx.order_target_percent(percent=0.5)})

    runner = StrategyRunner(Target, venue=paper_venue(INSTRUMENT), runner_id="r1")
    due = []
    for ts in range(1, 5):
        runner.on_bar(_flat(ts))
        due.append(runner.next_target_bar)

    # Requested on bar 1's close, sized at bar 2's open (index 2), then none.
    assert due == [None, 2, None, None]
    assert runner.state().position > 0
