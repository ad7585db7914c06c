"""Runner hosts (no Ray): a recording shadow venue, requests in, commands out, rebuilds.

A hand-written stand-in for the execution service (:class:`EngineService`: one
matching engine that applies the hosts' commands, as the HTTP ingress applies
them to the real service) lets these tests check what matters end to end: the
service ends up with exactly the orders ``run_event`` places, whichever way the
host is driven (bar by bar, in runs, rebuilt from a history after losing its
state), and a refusal by the service leaves the runner and the service agreeing
on every fill.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import replace
from decimal import Decimal

import polars as pl
import pytest
from _strategies import OrderPlan, PlannedOrder, Scripted
from hypothesis import given, settings
from hypothesis import strategies as st

from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.domain import Instrument
from tradepulse.domain.orders import Order, OrderStatus, Side
from tradepulse.errors import ConfigError
from tradepulse.execution import MatchingEngine
from tradepulse.live import iter_bars, paper_venue
from tradepulse.live.host import (
    History,
    HostReply,
    HostRequest,
    LocalRunners,
    RunnerHost,
    RunnerPool,
    RunnerSpec,
)
from tradepulse.live.outbox import REJECTED_PREFIX, Ack, Command, RecordingVenue
from tradepulse.strategy import Bar

INSTRUMENT = Instrument(
    symbol="SPX",
    price_increment=Decimal("0.01"),
    quantity_increment=Decimal("0.0001"),
    cash_increment=Decimal("0.01"),
)
CASH = 100_000.0
RATE = 0.0005


def spec(plugin: object = "sma_cross", strategy_id: str = "s1", **changes: object) -> RunnerSpec:
    base = RunnerSpec(
        strategy_id=strategy_id,
        plugin=plugin,  # type: ignore[arg-type]  # a name or a test Strategy class
        params={},
        symbol="SPX",
        instrument=INSTRUMENT,
        cash=CASH,
        commission_rate=RATE,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class EngineService:
    """The execution service reduced to one matching engine, fed commands as the ingress does.

    Orders whose id is in ``refuse`` are recorded rejected and acknowledged.
    """

    def __init__(self, refuse: Iterable[str] = ()) -> None:
        self.engine: MatchingEngine = paper_venue(INSTRUMENT, commission=RATE)
        self.refuse = set(refuse)
        self.fills: list[tuple[str, Side, Decimal]] = []

    @property
    def ts(self) -> int:
        last = self.engine.last_ts_ns
        return -1 if last is None else last

    def apply(self, commands: Sequence[Command]) -> list[Ack]:
        acks = []
        engine = self.engine
        for command in commands:
            order = command.order
            if command.kind == "submit":
                assert order is not None
                if order.client_order_id in engine.orders:
                    continue  # sent again: the service deduplicates
                if order.client_order_id in self.refuse:
                    engine.reject(order, ts_ns=self.ts, reason="refused")
                    acks.append(Ack(order.client_order_id, "refused"))
                else:
                    engine.submit(order, ts_ns=self.ts)
            elif command.kind == "cancel":
                if engine.order(command.client_order_id).is_open:
                    engine.cancel(command.client_order_id, ts_ns=self.ts)
            else:
                assert order is not None
                if order.client_order_id in engine.orders:
                    continue
                engine.replace(
                    command.client_order_id,
                    new_client_order_id=order.client_order_id,
                    ts_ns=self.ts,
                    quantity=command.quantity,
                    limit_price=command.limit_price,
                    stop_price=command.stop_price,
                )
        return acks

    def match(self, bar: Bar) -> None:
        for fill in self.engine.process_bar(bar).fills:
            self.fills.append((fill.client_order_id, fill.side, fill.quantity))


class Ingress:
    """Drive hosts bar by bar (open when asked, the service's match, close), as the ingress does."""

    def __init__(self, runners: RunnerPool, the_spec: RunnerSpec, service: EngineService) -> None:
        self.runners = runners
        self.spec = the_spec
        self.service = service
        self.acks: list[Ack] = []
        self.open_next = True
        self.previous: int | None = None
        self.bars: list[Bar] = []
        self.replies: list[HostReply] = []

    def history(self) -> History:
        rejected = {
            order_id: "refused"
            for order_id, record in self.service.engine.orders.items()
            if record.status is OrderStatus.REJECTED
        }
        return History(tuple(self.bars), rejected)

    def call(self, phase: str, bar: Bar | None = None, bars: tuple[Bar, ...] = ()) -> HostReply:
        request = HostRequest(
            spec=self.spec,
            phase=phase,  # type: ignore[arg-type]
            bar=bar,
            bars=bars,
            previous_ts=self.previous,
            acks=tuple(self.acks),
        )
        reply = self.runners.handle(request)
        if reply.status == "needs_history":
            reply = self.runners.handle(replace(request, history=self.history()))
        assert reply.status == "ok"
        self.acks = []
        self.replies.append(reply)
        return reply

    def feed(self, bar: Bar, *, always_open: bool = False) -> None:
        if self.open_next or always_open:
            self.acks += self.service.apply(self.call("open", bar).commands)
        self.service.match(bar)
        self.bars.append(bar)
        reply = self.call("close", bar)
        self.previous = bar.ts
        self.acks += self.service.apply(reply.commands)
        self.open_next = reply.open_next

    def run(self, bars: Sequence[Bar]) -> None:
        """Feed ``bars`` with one ``run`` call, walking its steps (no refusals expected)."""
        reply = self.call("run", bars=tuple(bars))
        self.service.apply(reply.commands)
        for bar, step in zip(bars, reply.steps, strict=True):
            assert step.ts == bar.ts
            assert self.service.apply(step.open) == []
            self.service.match(bar)
            self.bars.append(bar)
            assert self.service.apply(step.close) == []
        self.previous = bars[-1].ts
        self.open_next = reply.open_next


def reference_orders(
    bars: pl.DataFrame, strategy: object, **frictions: object
) -> list[tuple[object, ...]]:
    instance = resolve_strategy(strategy)  # type: ignore[arg-type]
    result = run_event(
        bars,
        instance,
        resolve_params(instance, None),
        fast_fills=False,
        cash=CASH,
        commission=RATE,
        instrument=INSTRUMENT,
        **frictions,  # type: ignore[arg-type]
    )
    assert result.orders is not None
    return [
        (row["order_id"], row["side"], row["status"], Decimal(repr(row["filled_quantity"])))
        for row in result.orders.iter_rows(named=True)
    ]


def service_orders(service: EngineService, prefix: str = "s1:") -> list[tuple[object, ...]]:
    return [
        (order_id.removeprefix(prefix), r.order.side.value, r.status.value, r.filled_quantity)
        for order_id, r in service.engine.orders.items()
    ]


@pytest.fixture(scope="module")
def bars(sp500: pl.DataFrame) -> pl.DataFrame:
    return sp500.head(300)


@pytest.fixture(scope="module")
def bar_list(bars: pl.DataFrame) -> list[Bar]:
    return list(iter_bars(bars))


# ------------------------------------------------------------------ the recording venue


def _order(order_id: str, quantity: str = "2", side: Side = Side.BUY) -> Order:
    return Order(client_order_id=order_id, symbol="SPX", side=side, quantity=Decimal(quantity))


def test_the_recording_venue_records_what_changed_the_shadow_and_hands_it_out_once() -> None:
    venue = RecordingVenue(paper_venue(INSTRUMENT))
    venue.submit(_order("r:o1"), ts_ns=0)
    venue.submit(_order("r:o2", quantity="0.00001"), ts_ns=0)  # off the lot grid: refused
    venue.reject(_order("r:o3"), ts_ns=0, reason="host risk")  # never sent
    venue.cancel("r:o1", ts_ns=0)
    venue.submit(_order("r:o4"), ts_ns=0)
    venue.replace("r:o4", new_client_order_id="r:o5", ts_ns=0, quantity=Decimal(3))

    commands = venue.take()

    assert [(c.kind, c.client_order_id, c.new_order_id) for c in commands] == [
        ("submit", "r:o1", "r:o1"),
        ("cancel", "r:o1", None),
        ("submit", "r:o4", "r:o4"),
        ("replace", "r:o4", "r:o5"),
    ]
    replacement = commands[-1]
    assert replacement.order is not None
    assert (replacement.quantity, replacement.order.quantity) == (Decimal(3), Decimal(3))
    assert venue.take() == ()
    assert venue.pending == ()
    assert venue.order("r:o2").status is OrderStatus.REJECTED
    assert [record.order.client_order_id for record in venue.open_orders] == ["r:o5"]
    assert venue.has_working_orders
    assert "pending=0" in repr(venue)


def test_an_ack_cancels_the_refused_order_on_the_shadow_and_nothing_else() -> None:
    venue = RecordingVenue(paper_venue(INSTRUMENT))
    venue.submit(_order("r:o1"), ts_ns=0)
    venue.submit(_order("r:o2"), ts_ns=0)
    venue.submit(_order("r:o3"), ts_ns=0)
    venue.cancel("r:o3", ts_ns=0)

    cancelled = venue.acknowledge(
        [Ack("r:o1", "max_order_quantity: 2 > 1"), Ack("r:o3", "late"), Ack("r:nope", "unknown")]
    )
    fills = venue.process_bar(Bar(10, 100.0, 101.0, 99.0, 100.0, 1e6)).fills

    assert cancelled == ["r:o1"]
    assert venue.order("r:o1").status is OrderStatus.CANCELLED
    assert venue.order("r:o1").reason == REJECTED_PREFIX + "max_order_quantity: 2 > 1"
    assert [fill.client_order_id for fill in fills] == ["r:o2"]  # the refused one never fills
    assert (venue.bar_index, venue.last_ts_ns) == (0, 10)


# ------------------------------------------------------------------ hosts


@pytest.mark.parametrize("name", ["sma_cross", "rsi_reversion"])
def test_a_host_driven_bar_by_bar_gives_the_service_the_backtests_orders(
    bars: pl.DataFrame, bar_list: list[Bar], name: str
) -> None:
    service = EngineService()
    ingress = Ingress(RunnerPool(), spec(name), service)

    for bar in bar_list:
        ingress.feed(bar)

    expected = reference_orders(bars, name)
    assert len(expected) >= 2
    assert service_orders(service) == expected
    last = ingress.replies[-1]
    assert last.state is not None
    assert (last.state.bars, last.state.last_ts, last.completed_ts) == (
        len(bar_list),
        bar_list[-1].ts,
        bar_list[-1].ts,
    )
    # Only bars where a target was due (or the first) needed an open call.
    opens = sum(1 for reply in ingress.replies if reply.completed_bar is False)
    assert opens < len(bar_list) // 4


def test_the_open_hint_never_skips_an_open_that_sends_orders(bar_list: list[Bar]) -> None:
    service = EngineService()
    ingress = Ingress(RunnerPool(), spec("sma_cross", params={"fast": 3, "slow": 8}), service)
    needed = 0
    for bar in bar_list[:150]:
        hinted = ingress.open_next
        ingress.acks += service.apply(ingress.call("open", bar).commands)
        legs = ingress.replies[-1].commands
        needed += bool(legs)
        assert hinted or not legs, f"bar {bar.ts}: orders at the open, but no open was asked for"
        service.match(bar)
        reply = ingress.call("close", bar)
        ingress.previous = bar.ts
        ingress.acks += service.apply(reply.commands)
        ingress.open_next = reply.open_next
    assert needed > 5


def test_runs_of_bars_equal_bar_by_bar(bars: pl.DataFrame, bar_list: list[Bar]) -> None:
    service = EngineService()
    ingress = Ingress(RunnerPool(), spec(), service)

    for start in range(0, len(bar_list), 70):
        ingress.run(bar_list[start : start + 70])

    assert service_orders(service) == reference_orders(bars, "sma_cross")
    assert all(len(reply.steps) <= 70 for reply in ingress.replies)


class _Plan(OrderPlan):
    """Explicit limit, stop and market orders, cancels and replaces (a no-argument class)."""

    def __init__(self) -> None:
        super().__init__(
            [
                PlannedOrder(
                    bar=3, buy=True, quantity=5.0, order_type="limit", limit_offset=-0.005
                ),
                PlannedOrder(bar=5, buy=True, quantity=3.0, order_type="stop", stop_offset=0.005),
                PlannedOrder(
                    bar=15,
                    buy=True,
                    quantity=4.0,
                    order_type="limit",
                    limit_offset=-0.03,
                    cancel_after=3,
                ),
                PlannedOrder(
                    bar=20,
                    buy=True,
                    quantity=4.0,
                    order_type="limit",
                    limit_offset=-0.03,
                    replace_after=2,
                ),
                *(
                    PlannedOrder(bar=bar, buy=bar % 20 < 10, quantity=7.0, order_type="limit")
                    for bar in range(30, 120, 9)
                ),
            ]
        )


def test_explicit_orders_cancels_and_replaces_reach_the_service(bar_list: list[Bar]) -> None:
    bars = pl.DataFrame(
        {
            "ts": pl.Series([bar.ts for bar in bar_list[:120]]).cast(pl.Datetime("ns", "UTC")),
            **{
                name: [getattr(bar, name) for bar in bar_list[:120]]
                for name in ("open", "high", "low", "close", "volume")
            },
        }
    )
    service = EngineService()
    ingress = Ingress(RunnerPool(), spec(_Plan), service)

    for bar in bar_list[:120]:
        ingress.feed(bar)

    expected = reference_orders(bars, _Plan)
    kinds = {command.kind for reply in ingress.replies for command in reply.commands}
    assert kinds == {"submit", "cancel", "replace"}
    assert service_orders(service) == expected


def test_a_host_that_lost_its_state_rebuilds_and_sends_nothing_twice(
    bars: pl.DataFrame, bar_list: list[Bar]
) -> None:
    service = EngineService()
    pool = RunnerPool()
    ingress = Ingress(pool, spec(), service)

    for index, bar in enumerate(bar_list):
        if index % 60 == 30:
            pool.drop("s1")  # a lost replica: the next call rebuilds from the history
        ingress.feed(bar)

    host = pool.host("s1")
    assert host is not None
    assert host.rebuilds == 1  # the last incarnation was rebuilt once
    assert service_orders(service) == reference_orders(bars, "sma_cross")


def test_retries_answer_the_same_commands(bar_list: list[Bar]) -> None:
    service = EngineService()
    ingress = Ingress(RunnerPool(), spec("sma_cross", params={"fast": 3, "slow": 8}), service)
    bars = iter(bar_list[1:])
    ingress.feed(bar_list[0])
    while not ingress.open_next:  # until a target is due at the next bar's open
        ingress.feed(next(bars))
    bar = next(bars)

    first = ingress.call("open", bar)
    again = ingress.call("open", bar)
    service.match(bar)
    closed = ingress.call("close", bar)
    closed_again = ingress.call("close", bar)
    resent = ingress.runners.handle(
        HostRequest(spec=ingress.spec, phase="state", previous_ts=bar.ts, resend=True)
    )

    assert first.commands, "the due target's legs"
    assert first.commands == again.commands
    assert first.prepared_ts == bar.ts
    assert closed.commands == closed_again.commands
    assert closed.completed_bar
    assert not closed_again.completed_bar
    assert resent.commands == closed.commands


def test_a_host_out_of_step_with_the_service_asks_for_a_history(bar_list: list[Bar]) -> None:
    pool = RunnerPool()
    ingress = Ingress(pool, spec(), EngineService())
    for bar in bar_list[:5]:
        ingress.feed(bar)
    the_spec = ingress.spec
    skipped = bar_list[6]

    ahead = pool.handle(
        HostRequest(spec=the_spec, phase="close", bar=skipped, previous_ts=bar_list[5].ts)
    )
    unsynced = pool.handle(HostRequest(spec=the_spec, phase="state", previous_ts=bar_list[4].ts))
    stale_prepare = RunnerPool()
    stale_prepare.handle(
        HostRequest(spec=the_spec, phase="open", bar=bar_list[0], history=History(()))
    )
    other_bar = stale_prepare.handle(HostRequest(spec=the_spec, phase="open", bar=bar_list[1]))

    assert ahead.status == "needs_history"
    assert ahead.state is None
    assert unsynced.status == "needs_history"  # the runner was dropped by the call before
    assert other_bar.status == "needs_history"


def test_a_refused_order_is_cancelled_on_the_shadow_so_runner_and_service_agree(
    bar_list: list[Bar],
) -> None:
    first_run = EngineService()
    probe = Ingress(RunnerPool(), spec(), first_run)
    for bar in bar_list:
        probe.feed(bar)
    buys = [oid for oid, r in first_run.engine.orders.items() if r.order.side is Side.BUY]
    refused = {buys[1], buys[3]}
    service = EngineService(refuse=refused)
    pool = RunnerPool()
    ingress = Ingress(pool, spec(), service)

    for index, bar in enumerate(bar_list):
        if index == 200:
            pool.drop("s1")  # the rebuild must reproduce the refusals where they happened
        ingress.feed(bar)

    host = pool.host("s1")
    assert host is not None
    assert host.runner is not None
    shadow = host.runner.venue.orders
    for order_id in refused:
        assert shadow[order_id].status is OrderStatus.CANCELLED
        assert shadow[order_id].reason.startswith(REJECTED_PREFIX)
        assert service.engine.order(order_id).status is OrderStatus.REJECTED
    held = sum(
        (quantity if side is Side.BUY else -quantity for _, side, quantity in service.fills),
        Decimal(0),
    )
    state = ingress.replies[-1].state
    assert state is not None
    assert Decimal(repr(state.position)) == held
    filled = {oid: r.filled_quantity for oid, r in shadow.items() if r.filled_quantity}
    assert filled == {
        oid: r.filled_quantity for oid, r in service.engine.orders.items() if r.filled_quantity
    }


def test_a_failing_strategy_reports_it_and_sends_nothing_more(bar_list: list[Bar]) -> None:
    class Boom(Scripted):
        def __init__(self) -> None:
            super().__init__({3: lambda ctx: 1 / 0, 1: lambda ctx: ctx.buy(quantity=1.0)})

    service = EngineService()
    ingress = Ingress(RunnerPool(), spec(Boom), service)
    for bar in bar_list[:8]:
        ingress.feed(bar)

    state = ingress.replies[-1].state
    assert state is not None
    assert state.status == "failed"
    assert "ZeroDivisionError" in (state.failure or "")
    assert list(service.engine.orders) == ["s1:o1"]
    assert all(not reply.commands for reply in ingress.replies[-6:])


class _Opener(Scripted):
    """Buy one unit in ``initialize`` (an order at the first bar's open)."""

    def __init__(self) -> None:
        super().__init__(on_initialize=lambda ctx: ctx.buy(quantity=1.0))


def test_orders_due_at_an_open_that_was_skipped_fail_the_strategy(bar_list: list[Bar]) -> None:
    pool = RunnerPool()
    the_spec = spec(_Opener)
    pool.handle(HostRequest(spec=the_spec, phase="state", history=History(())))

    reply = pool.handle(HostRequest(spec=the_spec, phase="close", bar=bar_list[0]))

    assert reply.state is not None
    assert reply.state.status == "failed"
    assert "were not sent before" in (reply.state.failure or "")
    assert reply.commands == ()


def test_stop_forgets_the_runner_and_the_pool_keeps_a_bounded_number(bar_list: list[Bar]) -> None:
    pool = RunnerPool(max_hosts=2)
    for number in (1, 2, 3):
        pool.handle(
            HostRequest(spec=spec(strategy_id=f"s{number}"), phase="state", history=History(()))
        )
    stopped = pool.handle(HostRequest(spec=spec(strategy_id="s3"), phase="stop"))

    assert len(pool) == 1  # s1 evicted (least recently used), s3 stopped
    assert pool.host("s2") is not None
    assert stopped.state is None
    assert "1 hosts" in repr(pool)


def test_local_runners_answer_in_process() -> None:
    runners = LocalRunners()
    reply = asyncio.run(runners.step(HostRequest(spec=spec(), phase="state", history=History(()))))
    assert reply.status == "ok"
    assert reply.state is not None
    assert reply.state.status == "new"
    assert "LocalRunners" in repr(runners)


def test_bad_specs_and_requests_are_refused() -> None:
    with pytest.raises(ConfigError, match="RunnerSpec"):
        RunnerHost("sma_cross")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fast"):
        RunnerHost(spec(params={"fast": -3}))
    with pytest.raises(ConfigError, match="max_hosts"):
        RunnerPool(max_hosts=0)
    host = RunnerHost(spec(), history=History(()))
    with pytest.raises(ConfigError, match="HostRequest"):
        host.handle("open")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a Bar"):
        host.handle(HostRequest(spec=spec(), phase="open"))
    assert "synced=True" in repr(host)


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(1, 119), max_size=4, unique=True))
def test_any_split_into_runs_gives_the_same_orders(cuts: list[int], bar_list: list[Bar]) -> None:
    bars = bar_list[:120]
    reference = EngineService()
    whole = Ingress(RunnerPool(), spec(params={"fast": 3, "slow": 8}), reference)
    whole.run(bars)
    service = EngineService()
    split = Ingress(RunnerPool(), spec(params={"fast": 3, "slow": 8}), service)

    edges = [0, *sorted(cuts), len(bars)]
    for start, end in itertools.pairwise(edges):
        split.run(bars[start:end])

    assert service_orders(service) == service_orders(reference)
    assert len(reference.engine.orders) > 4


def test_a_run_stops_at_a_failure_and_a_rebuild_stops_there_too(bar_list: list[Bar]) -> None:
    class Boom(Scripted):
        def __init__(self) -> None:
            super().__init__({5: lambda ctx: 1 / 0})

    pool = RunnerPool()
    the_spec = spec(Boom)
    pool.handle(HostRequest(spec=the_spec, phase="state", history=History(())))

    run = pool.handle(HostRequest(spec=the_spec, phase="run", bars=tuple(bar_list[:10])))
    rebuilt = RunnerHost(the_spec, history=History(tuple(bar_list[:10])))
    later = pool.handle(
        HostRequest(spec=the_spec, phase="run", bars=tuple(bar_list[10:12]), previous_ts=0)
    )

    assert [step.completed for step in run.steps] == [True] * 5 + [False]
    assert run.state is not None
    assert run.state.status == "failed"
    assert rebuilt.runner is not None
    assert rebuilt.runner.bars == 5  # replayed up to the failure, no further
    assert later.steps == ()  # a failed strategy takes no more bars


def test_a_redefined_strategy_or_a_run_out_of_step_starts_over(bar_list: list[Bar]) -> None:
    pool = RunnerPool()
    first = spec()
    pool.handle(HostRequest(spec=first, phase="run", bars=(bar_list[0],), history=History(())))
    host = pool.host("s1")
    assert host is not None
    assert host.spec == first

    ahead = pool.handle(
        HostRequest(spec=first, phase="run", bars=(bar_list[2],), previous_ts=bar_list[1].ts)
    )
    redefined = pool.handle(
        HostRequest(spec=spec(params={"fast": 4}), phase="state", previous_ts=bar_list[0].ts)
    )

    assert ahead.status == "needs_history"
    assert redefined.status == "needs_history"
    assert host.spec == spec(params={"fast": 4})


def test_a_strategy_failing_in_initialize_fails_at_its_first_open(bar_list: list[Bar]) -> None:
    class Broken(Scripted):
        def __init__(self) -> None:
            super().__init__(on_initialize=lambda ctx: {}["missing"])

    host = RunnerHost(spec(Broken), history=History(()))

    reply = host.handle(HostRequest(spec=spec(Broken), phase="run", bars=tuple(bar_list[:3])))

    assert [step.completed for step in reply.steps] == [False]
    assert reply.state is not None
    assert reply.state.status == "failed"
    assert "KeyError" in (reply.state.failure or "")


def test_a_run_may_start_at_the_bar_whose_open_was_answered(bar_list: list[Bar]) -> None:
    pool = RunnerPool()
    ingress = Ingress(pool, spec(_Opener), EngineService())  # orders at the first open
    opened = ingress.call("open", bar_list[0])

    run = ingress.call("run", bars=tuple(bar_list[:3]))

    host = pool.host("s1")
    assert host is not None
    assert opened.commands
    assert run.steps[0].open == opened.commands  # the same legs (the service deduplicates)
    assert host.rebuilds == 1  # only the first build: the run did not start over


# ------------------------------------------------------------------ pings


def test_a_ping_answers_the_sync_status_and_leaves_the_shadow_alone(bar_list: list[Bar]) -> None:
    pool = RunnerPool()
    ingress = Ingress(pool, spec(), EngineService())
    for bar in bar_list[:40]:
        ingress.feed(bar)
    host = pool.host("s1")
    assert host is not None
    assert host.runner is not None
    before, rebuilds = host.runner.state(), host.rebuilds

    synced = pool.handle(HostRequest(spec=ingress.spec, phase="ping", previous_ts=bar_list[39].ts))

    assert synced.status == "ok"
    assert synced.commands == ()
    assert synced.completed_ts == bar_list[39].ts
    assert synced.state == before  # no bar was taken, nothing changed on the shadow
    assert host.runner.state() == before
    assert host.rebuilds == rebuilds
    # The service is a bar further than the runner: it must rebuild.
    behind = pool.handle(HostRequest(spec=ingress.spec, phase="ping", previous_ts=bar_list[40].ts))
    assert behind.status == "needs_history"
    assert not host.synced


def test_a_ping_finds_a_lost_runner_and_its_history_rebuilds_it_before_the_next_bar(
    bars: pl.DataFrame, bar_list: list[Bar]
) -> None:
    service = EngineService()
    pool = RunnerPool()
    ingress = Ingress(pool, spec(), service)
    for bar in bar_list[:150]:
        ingress.feed(bar)
    pool.drop("s1")  # the replica died between bars

    ping = HostRequest(spec=ingress.spec, phase="ping", previous_ts=bar_list[149].ts)
    lost = pool.handle(ping)
    rebuilt = pool.handle(replace(ping, history=ingress.history()))
    host = pool.host("s1")
    assert host is not None
    for bar in bar_list[150:]:
        ingress.feed(bar)

    assert lost.status == "needs_history"
    assert lost.state is None
    assert rebuilt.status == "ok"
    assert rebuilt.commands == ()  # a ping answers no commands, not even the repeated ones
    assert rebuilt.completed_ts == bar_list[149].ts
    assert pool.host("s1") is host  # the bars after the ping needed no other rebuild
    assert host.rebuilds == 1  # built by the ping's history, never again
    assert service_orders(service) == reference_orders(bars, "sma_cross")


def test_a_failed_strategy_answers_pings(bar_list: list[Bar]) -> None:
    class Boom(Scripted):
        def __init__(self) -> None:
            super().__init__({3: lambda ctx: 1 / 0})

    pool = RunnerPool()
    ingress = Ingress(pool, spec(Boom), EngineService())
    for bar in bar_list[:8]:
        ingress.feed(bar)

    reply = pool.handle(HostRequest(spec=ingress.spec, phase="ping", previous_ts=bar_list[7].ts))

    assert reply.status == "ok"  # it takes no more bars, but its runner is there
    assert reply.state is not None
    assert reply.state.status == "failed"
