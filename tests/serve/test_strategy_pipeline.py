"""The strategies' bar pipeline at the ingress: commands applied, refusals acknowledged, faults.

Two hand-written runner clients stand in for the Serve deployment:
:class:`ScriptedRunners` answers commands chosen by the test (to reach every
way a command can end at the service), and :class:`FlakyRunners` wraps the
real in-process runners and fails chosen calls, as a lost replica does: the
client resends the failed request, and the orders must still be the
backtest's.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from test_strategy_routes import (
    LIMITS,
    SERVICE,
    STRATEGIES,
    Server,
    auth,
    backtest_orders,
    bar_bodies,
    strategy_orders,
)

from tradepulse.data import load_bars
from tradepulse.domain.orders import Order, OrderStatus, OrderType, Side
from tradepulse.execution import ExecutionService, Journal, ServiceConfig
from tradepulse.live.host import HostReply, HostRequest, HostStep, LocalRunners
from tradepulse.live.outbox import Command
from tradepulse.live.registry import StrategyRegistry
from tradepulse.serve import InProcessBackend
from tradepulse.serve.strategies import RunnerUnavailableError, StrategyPipeline
from tradepulse.strategy import Bar

REPO = Path(__file__).resolve().parents[2]


class FlakyRunners(LocalRunners):
    """In-process runners whose calls number ``fail`` (1-based) raise, as a lost replica's do."""

    def __init__(self, fail: set[int]) -> None:
        super().__init__()
        self.fail = fail
        self.calls = 0
        self.failed = 0

    async def step(self, request: HostRequest) -> HostReply:
        self.calls += 1
        if self.calls in self.fail:
            self.failed += 1
            self.pool.drop(request.spec.strategy_id)  # the replica died with its state
            raise RunnerUnavailableError(f"call {self.calls} lost")
        return await super().step(request)


@pytest.mark.parametrize("fail_every", [3, 7])
def test_lost_runner_calls_are_made_good_by_resending(tmp_path: Path, fail_every: int) -> None:
    bars = load_bars(REPO / "golden" / "data" / "sp500_daily.csv").head(240)
    bodies = bar_bodies(bars)
    flaky = FlakyRunners(fail=set(range(fail_every, 10_000, fail_every)))
    server = Server(tmp_path, SERVICE, runners=flaky)
    server_client = server.__enter__()
    try:
        for key, plugin in (("trader", "sma_cross"), ("other", "rsi_reversion")):
            server_client.post(
                STRATEGIES, json={"plugin": plugin, "symbol": "SPX"}, headers=auth(key)
            )
        refused = 0
        for start in range(0, len(bodies), 30):
            for _ in range(20):  # resend until the pipeline takes it, as a feed client does
                response = server_client.post(
                    "/api/v1/market/bars", json=bodies[start : start + 30], headers=auth("feed")
                )
                if response.status_code == 200:
                    break
                assert response.status_code == 503, response.text
                assert response.headers["Retry-After"] == "1"
                refused += 1
            else:
                pytest.fail("a batch was never taken")
        sma = strategy_orders(server_client, "s1")
        rsi = strategy_orders(server_client, "s2", key="other")
    finally:
        server.__exit__(None, None, None)

    assert flaky.failed > 5
    assert refused > 0
    assert sma == backtest_orders(bars, "sma_cross", {}, risk=LIMITS)
    assert rsi == backtest_orders(bars, "rsi_reversion", {}, risk=LIMITS)


# ------------------------------------------------------------------ commands, one by one


class ScriptedRunners:
    """Answer each ``run`` with the commands the test scripted for its bars (by bar ts)."""

    def __init__(self, script: dict[int, tuple[tuple[Command, ...], tuple[Command, ...]]]) -> None:
        self.script = script
        self.requests: list[HostRequest] = []

    async def step(self, request: HostRequest) -> HostReply:
        self.requests.append(request)
        steps = tuple(
            HostStep(bar.ts, *self.script.get(bar.ts, ((), ())), completed=True)
            for bar in request.bars
        )
        return HostReply(
            strategy_id=request.spec.strategy_id, status="ok", steps=steps, open_next=False
        )


def _limit(order_id: str, price: str, quantity: str = "2") -> Order:
    return Order(
        client_order_id=order_id,
        symbol="SPX",
        side=Side.BUY,
        quantity=Decimal(quantity),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(price),
    )


def _bar(ts: int, price: float) -> Bar:
    return Bar(ts, price, price, price, price, 1e6)


def test_every_way_a_command_can_end_at_the_service() -> None:
    config = ServiceConfig.from_mapping({"risk": {"margin_rate": None, "max_order_quantity": "5"}})
    service = ExecutionService(journal=Journal(), config=config, clock=itertools.count(1).__next__)
    replaced = _limit("s1:o2", "90")
    script = {
        1: (
            (),
            (
                Command("submit", "s1:o1", _limit("s1:o1", "90")),
                Command("submit", "s1:o2", _limit("s1:o2", "80")),
                Command("submit", "s1:o3", _limit("s1:o3", "80", quantity="9")),  # refused
                Command("submit", "s1:o4", _limit("s1:o4", "100")),  # fills on bar 2
            ),
        ),
        2: (
            (),
            (
                Command("replace", "s1:o1", _limit("s1:o5", "91"), limit_price=Decimal(91)),
                Command(
                    "replace",
                    "s1:o2",
                    replace(replaced, client_order_id="s1:o6", quantity=Decimal(8)),
                    quantity=Decimal(8),
                ),  # refused: cancels s1:o2 too
                Command("replace", "s1:o9", _limit("s1:o7", "1")),  # unknown at the service
                Command("cancel", "s1:o4"),  # already filled: done
                Command("cancel", "s1:o8"),  # never placed: nothing to do
                Command("submit", "s1:o3", _limit("s1:o3", "80", quantity="9")),  # resent
            ),
        ),
        3: ((), ()),
    }
    runners = ScriptedRunners(script)
    pipeline = StrategyPipeline(
        backend=InProcessBackend(service),
        ledger=service,
        registry=StrategyRegistry(),
        runners=runners,
    )

    async def scenario() -> None:
        await pipeline.create(account="alpha", plugin="sma_cross", params={}, symbol="SPX")
        for ts in (1, 2, 3):
            await pipeline.apply_bars([("SPX", _bar(ts, 95.0))])

    asyncio.run(scenario())

    by_key = service.keyed_orders(account="alpha", prefix="s1:")
    status = {key: view.status for key, view in by_key.items()}
    assert status == {
        "s1:o1": OrderStatus.CANCELLED,  # replaced by s1:o5
        "s1:o2": OrderStatus.CANCELLED,  # its refused replacement cancelled it too
        "s1:o3": OrderStatus.REJECTED,
        "s1:o4": OrderStatus.FILLED,
        "s1:o5": OrderStatus.ACCEPTED,
        "s1:o6": OrderStatus.REJECTED,
    }
    assert by_key["s1:o5"].limit_price == Decimal(91)
    assert len(service.orders(account="alpha")) == 6  # the resent submit created nothing
    acks = {
        request.bars[0].ts: {ack.client_order_id for ack in request.acks}
        for request in runners.requests
    }
    assert acks == {1: set(), 2: {"s1:o3"}, 3: {"s1:o6", "s1:o7", "s1:o3"}}


def test_a_runner_that_cannot_be_reached_for_the_run_applies_nothing() -> None:
    class Down:
        async def step(self, request: HostRequest) -> HostReply:
            raise RunnerUnavailableError("no replica")

    service = ExecutionService(
        journal=Journal(), config=ServiceConfig(), clock=itertools.count(1).__next__
    )
    pipeline = StrategyPipeline(
        backend=InProcessBackend(service),
        ledger=service,
        registry=StrategyRegistry(),
        runners=Down(),
    )

    async def scenario() -> Any:
        await pipeline.create(account="alpha", plugin="sma_cross", params={}, symbol="SPX")
        await pipeline.apply_bars([("SPX", _bar(1, 10.0)), ("NDX", _bar(1, 10.0))])

    with pytest.raises(RunnerUnavailableError, match="no replica"):
        asyncio.run(scenario())
    assert service.last_bar_ts("SPX") is None
    assert service.last_bar_ts("NDX") is None
    assert "active=1" in repr(pipeline)


def test_a_runner_that_never_rebuilds_is_unavailable() -> None:
    class Amnesiac:
        async def step(self, request: HostRequest) -> HostReply:
            return HostReply(strategy_id=request.spec.strategy_id, status="needs_history")

    service = ExecutionService(
        journal=Journal(), config=ServiceConfig(), clock=itertools.count(1).__next__
    )
    pipeline = StrategyPipeline(
        backend=InProcessBackend(service),
        ledger=service,
        registry=StrategyRegistry(),
        runners=Amnesiac(),
    )

    async def scenario() -> Any:
        status, _ = await pipeline.create(
            account="alpha", plugin="sma_cross", params={}, symbol="SPX"
        )
        return await pipeline.strategy("alpha", status.record.strategy_id)

    with pytest.raises(RunnerUnavailableError, match="did not rebuild"):
        asyncio.run(scenario())


def test_runner_autoscaling_bounds_must_be_ordered() -> None:
    from tradepulse.errors import ConfigError
    from tradepulse.serve.settings import parse_app_args

    with pytest.raises(
        ConfigError, match=r"runners: .*min_replicas \(3\) exceeds max_replicas \(2\)"
    ):
        parse_app_args({"runners": {"min_replicas": 3, "max_replicas": 2}})
    assert (
        parse_app_args({"runners": {"min_replicas": 2, "max_replicas": 2}}).runners.min_replicas
        == 2
    )
