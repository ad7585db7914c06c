"""The service's own cancels of a strategy's orders reach its runner (runners in process).

A user's ``DELETE /orders/{id}`` or the kill switch cancels a strategy's
working orders at the execution service; the runner's shadow must cancel them
at the same point in the bar sequence, or it fills what the service no longer
has and the strategy's positions drift from the service's.

:class:`Rester` (a plugin registered for these tests) rests two limit buys
(5 at 90 % and 3 at 95 % of the close) whenever it is flat with nothing
working, and sells what it holds at the market once nothing works. On the
bars below the buys rest at 90 and 95 while the low stays at 100, the dip of
bar 4 (low 85) fills whatever works at its limit, and bar 5 opens at 92, so
every expected order, fill and cash balance is worked out by hand in the
tests. The service action happens between two ``POST /market/bars`` (one
bar each), in the middle of one request's walk (a concurrent request), or
with the runner dropped (a lost replica: it rebuilds from the service's
history) or the ingress restarted (a runner that survives it): every way must
end in the same state.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from strategy_support import BarOnlyStrategy, NoParameters, installed_plugins
from test_strategy_routes import (
    INSTRUMENT,
    SERVICE,
    STRATEGIES,
    Server,
    auth,
    bar_bodies,
    post_bars,
    strategy_orders,
)

from tradepulse.data import load_bars
from tradepulse.domain import Instrument
from tradepulse.execution import ExecutionService, Journal, ServiceConfig
from tradepulse.execution.service_views import FillView
from tradepulse.live import StrategyRunner, iter_bars, paper_venue
from tradepulse.live.host import LocalRunners, RunnerPool
from tradepulse.live.outbox import ENDED_BEFORE_REPLACE, REJECTED_PREFIX
from tradepulse.live.registry import StrategyRegistry
from tradepulse.serve import InProcessBackend
from tradepulse.serve.strategies import StrategyPipeline
from tradepulse.strategy import Bar, StrategyContext

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "alpha"
CASH = Decimal(100_000)
CONFIG = {
    "commission_rate": "0.0005",
    "instruments": {"SPX": INSTRUMENT},
    "default_instrument": "reject",
    "risk": {"margin_rate": None},
}


class Rester(BarOnlyStrategy):
    """Rest two limit buys when flat with nothing working; sell the position once nothing works."""

    name = "rester"

    def handle_tick(self, ctx: StrategyContext[NoParameters], bar: Bar) -> None:
        """Buy below the close when flat, sell at the market when holding (nothing working)."""
        if ctx.open_orders:
            return
        if ctx.position > 0:
            ctx.sell(quantity=ctx.position)
            return
        ctx.buy(quantity=5.0, order_type="limit", limit_price=round(bar.close * 0.90, 2))
        ctx.buy(quantity=3.0, order_type="limit", limit_price=round(bar.close * 0.95, 2))


class Replacer(BarOnlyStrategy):
    """Rest a buy of 5 at 90 on bar 0, raise it to 91 on bar 2; buy 2 at the market on bar 3."""

    name = "replacer"

    def handle_tick(self, ctx: StrategyContext[NoParameters], bar: Bar) -> None:
        """Place, replace, then buy at the market if nothing works any more."""
        index = ctx.bar_index
        if index == 0:
            ctx.buy(quantity=5.0, order_type="limit", limit_price=90.0)
        elif index == 2 and ctx.open_orders:
            ctx.replace(ctx.open_orders[0], limit_price=91.0)
        elif index == 3 and not ctx.open_orders:
            ctx.buy(quantity=2.0)


@pytest.fixture(autouse=True)
def _plugins_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed_plugins(monkeypatch, Rester, Replacer)


def _bar(ts: int, open_: float, low: float, close: float) -> Bar:
    return Bar(ts, open_, max(open_, close), low, close, 1e6)


BARS = (
    _bar(1, 100.0, 100.0, 100.0),
    _bar(2, 100.0, 100.0, 100.0),
    _bar(3, 100.0, 100.0, 100.0),
    _bar(4, 100.0, 85.0, 88.0),  # the dip: a working buy at 90 or 95 fills at its limit
    _bar(5, 92.0, 92.0, 92.0),
    _bar(6, 92.0, 92.0, 92.0),
)

Hook = Callable[["Rig"], None]


class HookedBackend(InProcessBackend):
    """The in-process backend, running a hook right before or after the service matches a bar."""

    def __init__(self, service: ExecutionService, rig: Rig) -> None:
        super().__init__(service)
        self.rig = rig

    async def on_bars(self, bars: Sequence[tuple[str, Bar]]) -> list[FillView]:
        for _, bar in bars:
            self.rig.fire("before", bar.ts)
        fills = await super().on_bars(bars)
        for _, bar in bars:
            self.rig.fire("after", bar.ts)
        return fills


class Rig:
    """An execution service on a journal file, a pipeline over it, runners in process."""

    def __init__(self, folder: Path, hooks: Mapping[tuple[str, int], Hook] | None = None) -> None:
        self.folder = folder
        self.hooks = dict(hooks or {})
        self.pool = RunnerPool()
        self.runners = LocalRunners(self.pool)
        self._open()

    def _open(self) -> None:
        self.journal = Journal(self.folder / "journal.sqlite", synchronous="normal")
        self.service = ExecutionService(
            journal=self.journal,
            config=ServiceConfig.from_mapping(CONFIG),
            clock=itertools.count(1).__next__,
        )
        self.registry = StrategyRegistry(self.folder / "strategies.sqlite")
        self.pipeline = StrategyPipeline(
            backend=HookedBackend(self.service, self),
            ledger=self.service,
            registry=self.registry,
            runners=self.runners,
        )

    def restart(self) -> None:
        """Start a new ingress on the same journal and registry; the runners live on."""
        self.journal.close()
        self.registry.close()
        self._open()

    def fire(self, when: str, ts: int) -> None:
        hook = self.hooks.get((when, ts))
        if hook is not None:
            hook(self)

    def cancel(self, runner_id: str) -> None:
        """Cancel the strategy's order ``runner_id`` at the service, as a user's DELETE does."""
        key = f"s1:{runner_id}"
        order = self.service.keyed_orders(account=ACCOUNT, prefix=key)[key]
        self.service.cancel(order.order_id, account=ACCOUNT)

    def kill(self, engaged: bool) -> None:
        self.service.set_kill_switch(engaged, account=ACCOUNT, reason="desk")

    def close(self) -> None:
        self.journal.close()
        self.registry.close()


@dataclass(frozen=True)
class Outcome:
    """What the service and the runner hold for the strategy at the end."""

    orders: list[tuple[object, ...]]
    position: Decimal
    cash: Decimal
    runner: tuple[float, float, tuple[str, ...], int]
    rebuilds: int
    shadow: dict[str, tuple[str, str | None]]


def _play(
    rig: Rig,
    batches: Sequence[Sequence[Bar]],
    between: Mapping[int, Callable[[Rig], None]],
    plugin: str = "rester",
) -> Outcome:
    """Feed ``batches`` (one request each), running ``between[i]`` after batch ``i``."""

    async def scenario() -> None:
        await rig.pipeline.create(account=ACCOUNT, plugin=plugin, params={}, symbol="SPX")
        for number, batch in enumerate(batches):
            await rig.pipeline.apply_bars([("SPX", bar) for bar in batch])
            action = between.get(number)
            if action is not None:
                action(rig)

    try:
        asyncio.run(scenario())
        service = rig.service
        orders = [
            (
                view.client_order_id.removeprefix("s1:") if view.client_order_id else None,
                view.side.value,
                view.status.value,
                view.reason,
                view.filled_quantity,
                view.average_fill_price,
            )
            for view in service.orders(account=ACCOUNT)
        ]
        positions = {view.symbol: view.quantity for view in service.positions(account=ACCOUNT)}
        host = rig.pool.host("s1")
        assert host is not None
        assert host.runner is not None
        state = host.runner.state()
        return Outcome(
            orders=orders,
            position=positions.get("SPX", Decimal(0)),
            cash=service.account(ACCOUNT).cash,
            runner=(state.position, state.cash, state.open_orders, state.bars),
            rebuilds=host.rebuilds,
            shadow={
                order_id: (record.status.value, record.reason)
                for order_id, record in host.runner.venue.orders.items()
            },
        )
    finally:
        rig.close()


def _one_bar_each() -> list[list[Bar]]:
    return [[bar] for bar in BARS]


def _drop(rig: Rig) -> None:
    rig.pool.drop("s1")


def _then(*actions: Callable[[Rig], None]) -> Callable[[Rig], None]:
    def both(rig: Rig) -> None:
        for action in actions:
            action(rig)

    return both


def _cancel_o1(rig: Rig) -> None:
    rig.cancel("o1")


# The user cancels o1 (the buy at 90) after bar 3: o2 (3 at 95) fills on the dip, the
# strategy sells those 3 at bar 5's open (92), then rests two new buys at 92's 90 % and 95 %.
USER_CANCEL = [
    ("o1", "buy", "cancelled", "cancel_requested", Decimal(0), None),
    ("o2", "buy", "filled", None, Decimal(3), Decimal(95)),
    ("o3", "sell", "filled", None, Decimal(3), Decimal(92)),
    ("o4", "buy", "accepted", None, Decimal(0), None),
    ("o5", "buy", "accepted", None, Decimal(0), None),
]
# Commissions (5 bps, to the cent): 285 * 0.0005 = 0.1425 -> 0.14; 276 * 0.0005 = 0.138 -> 0.14.
USER_CANCEL_CASH = CASH - 285 - Decimal("0.14") + 276 - Decimal("0.14")


@pytest.mark.parametrize(
    "way",
    ["between_requests", "mid_walk_before_the_bar", "mid_walk_after_the_bar", "runner_lost"],
)
def test_a_users_cancel_reaches_the_runner_and_nothing_fills_it(tmp_path: Path, way: str) -> None:
    hooks: dict[tuple[str, int], Hook] = {}
    between: dict[int, Callable[[Rig], None]] = {}
    batches: list[list[Bar]] = _one_bar_each()
    if way == "between_requests":
        between[2] = _cancel_o1  # after bar 3
    elif way == "mid_walk_before_the_bar":
        batches = [list(BARS)]
        hooks[("before", 4)] = _cancel_o1  # bar 4's open is applied, its match not yet
    elif way == "mid_walk_after_the_bar":
        batches = [list(BARS)]
        hooks[("after", 3)] = _cancel_o1  # before bar 3's close reaches the runner
    else:
        between[2] = _then(_cancel_o1, _drop)
        between[4] = _drop

    outcome = _play(Rig(tmp_path, hooks), batches, between)

    assert outcome.orders == USER_CANCEL
    assert (outcome.position, outcome.cash) == (0, USER_CANCEL_CASH)
    position, cash, open_orders, bars = outcome.runner
    assert (position, open_orders, bars) == (0.0, ("o4", "o5"), 6)
    assert cash == pytest.approx(float(USER_CANCEL_CASH), abs=1e-9)
    # A walk whose run turned void rebuilds the runner it has (its second build);
    # a dropped runner is built afresh from the history (once, since the last drop).
    assert outcome.rebuilds == (2 if way.startswith("mid_walk") else 1)


# The kill switch is engaged after bar 2 (o1 and o2 cancelled) and released after
# bar 3: the buys the strategy rests again at bar 3's close are refused, those of
# bar 4's close (at 88's 90 % and 95 %) work; the dip fills nothing.
KILL_SWITCH = [
    ("o1", "buy", "cancelled", "kill_switch", Decimal(0), None),
    ("o2", "buy", "cancelled", "kill_switch", Decimal(0), None),
    ("o3", "buy", "rejected", "kill_switch", Decimal(0), None),
    ("o4", "buy", "rejected", "kill_switch", Decimal(0), None),
    ("o5", "buy", "accepted", None, Decimal(0), None),
    ("o6", "buy", "accepted", None, Decimal(0), None),
]


def _engage(rig: Rig) -> None:
    rig.kill(True)


def _release(rig: Rig) -> None:
    rig.kill(False)


@pytest.mark.parametrize("way", ["between_requests", "mid_walk", "runner_lost"])
def test_a_kill_switch_engaged_and_released_leaves_runner_and_service_agreeing(
    tmp_path: Path, way: str
) -> None:
    hooks: dict[tuple[str, int], Hook] = {}
    between: dict[int, Callable[[Rig], None]] = {}
    batches: list[list[Bar]] = _one_bar_each()
    if way == "between_requests":
        between.update({1: _engage, 2: _release})
    elif way == "mid_walk":
        batches = [list(BARS[:5]), [BARS[5]]]
        hooks.update({("after", 2): _engage, ("before", 4): _release})
    else:
        between.update({1: _then(_engage, _drop), 2: _then(_release, _drop), 4: _drop})

    outcome = _play(Rig(tmp_path, hooks), batches, between)

    assert outcome.orders == KILL_SWITCH
    ids = [row[0] for row in outcome.orders]
    assert len(ids) == len(set(ids))  # no order twice
    assert (outcome.position, outcome.cash) == (0, CASH)
    assert outcome.runner == (0.0, float(CASH), ("o5", "o6"), 6)


def test_a_cancel_before_an_ingress_restart_reaches_the_runner_that_survived(
    tmp_path: Path,
) -> None:
    # The runner keeps its state across the restart; the new ingress reads the
    # strategy's orders from the service and tells it of the cancel.
    outcome = _play(
        Rig(tmp_path), _one_bar_each(), {2: _then(_cancel_o1, lambda rig: rig.restart())}
    )

    assert outcome.orders == USER_CANCEL
    assert outcome.runner[:3] == (0.0, pytest.approx(float(USER_CANCEL_CASH)), ("o4", "o5"))
    assert outcome.rebuilds == 1  # informed, not rebuilt


@pytest.mark.parametrize("way", ["mid_walk", "runner_lost"])
def test_a_replace_that_loses_the_race_with_a_cancel_is_refused_after_a_rebuild_too(
    tmp_path: Path, way: str
) -> None:
    # The user cancels o1 right after the service matched bar 3, before the
    # runner's replace of o1 (from bar 3's close) reaches the service: the
    # replace is refused, and the strategy, with nothing working, buys 2 at
    # bar 5's open (100). A rebuilt runner must refuse the replace too (the
    # service journals the cancel, not the refusal).
    flat = [_bar(ts, 100.0, 100.0, 100.0) for ts in range(1, 7)]
    batches = [flat] if way == "mid_walk" else [flat[:4], flat[4:]]
    between = {0: _drop} if way == "runner_lost" else {}

    outcome = _play(Rig(tmp_path, {("after", 3): _cancel_o1}), batches, between, "replacer")

    assert outcome.orders == [
        ("o1", "buy", "cancelled", "cancel_requested", Decimal(0), None),
        ("o3", "buy", "filled", None, Decimal(2), Decimal(100)),
    ]
    commission = Decimal("0.10")  # 200 * 0.0005
    assert (outcome.position, outcome.cash) == (2, CASH - 200 - commission)
    position, cash, open_orders, bars = outcome.runner
    assert (position, open_orders, bars) == (2.0, (), 6)
    assert cash == pytest.approx(float(CASH - 200 - commission), abs=1e-9)
    assert outcome.shadow["s1:o2"] == (
        "cancelled",
        REJECTED_PREFIX + ENDED_BEFORE_REPLACE + "s1:o1",
    )


# ------------------------------------------------------------------ through the API


def test_deleted_legs_stop_on_the_runner_too_and_a_replace_is_refused(tmp_path: Path) -> None:
    # A participation cap of ~1 unit per bar keeps the target legs working for
    # many bars; the user deletes them after bar 40. The reference is a plain
    # runner on a paper venue with the same frictions whose working orders are
    # cancelled after bar 40.
    bars = load_bars(REPO / "golden" / "data" / "sp500_daily.csv").head(70)
    cap = 1e-9
    service = SERVICE.replace(', max_order_quantity: "79"', "") + "max_participation: 0.000000001\n"
    bodies = bar_bodies(bars)
    params = {"fast": 3, "slow": 8}
    with Server(tmp_path, service) as client:
        client.post(
            STRATEGIES,
            json={"plugin": "sma_cross", "symbol": "SPX", "params": params},
            headers=auth("trader"),
        )
        post_bars(client, bodies[:40], batch=40)
        working = client.get("/api/v1/orders?open=true", headers=auth("reader")).json()["orders"]
        replaced = client.put(
            f"/api/v1/orders/{working[0]['order_id']}",
            json={"quantity": "1"},
            headers=auth("trader"),
        )
        deleted = [
            client.delete(f"/api/v1/orders/{order['order_id']}", headers=auth("trader"))
            for order in working
        ]
        post_bars(client, bodies[40:], batch=10)
        orders = strategy_orders(client, "s1")
        runner = client.get(f"{STRATEGIES}/s1", headers=auth("reader")).json()["runner"]
        held = client.get("/api/v1/positions", headers=auth("reader")).json()["positions"]

    instrument = Instrument(symbol="SPX", **{k: Decimal(v) for k, v in INSTRUMENT.items()})
    venue = paper_venue(instrument, commission=0.0005, max_participation=cap)
    reference = StrategyRunner(
        "sma_cross",
        params,
        venue=venue,
        runner_id="s1",
        cash=100_000.0,
        commission=0.0005,
        max_participation=cap,
    )
    listed = list(iter_bars(bars))
    for bar in listed[:40]:
        reference.on_bar(bar)
    for record in venue.open_orders:
        venue.cancel(record.client_order_id, ts_ns=listed[39].ts)
    for bar in listed[40:]:
        reference.on_bar(bar)
    expected = [
        (
            order_id.removeprefix("s1:"),
            record.order.side.value,
            record.order.order_type.value,
            record.order.quantity,
            record.status.value,
            record.filled_quantity,
            record.average_fill_price,
        )
        for order_id, record in venue.orders.items()
    ]

    assert working, "legs still working under the participation cap"
    assert replaced.status_code == 409
    assert replaced.json()["error"]["code"] == "strategy_order"
    assert [response.status_code for response in deleted] == [200] * len(working)
    assert orders == expected
    assert {row[4] for row in expected} >= {"cancelled", "partially_filled"}
    position = reference.state().position
    assert runner["position"] == position
    assert runner["open_orders"] == list(reference.state().open_orders)
    assert [Decimal(item["quantity"]) for item in held] == [Decimal(repr(position))]
