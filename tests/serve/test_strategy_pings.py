"""Liveness pings of strategy runners at the ingress: heartbeats without bars, rebuilds, the lock.

The pipeline runs over the in-process runners (:class:`LocalRunners`) and a
real execution service; a fake wall clock stamps the two signals
(``tradepulse_strategy_heartbeat_timestamp_seconds``: the runner answered;
``tradepulse_strategy_last_bar_timestamp_seconds``: it completed a bar), and
the pings are driven by calling :meth:`StrategyPipeline.ping` (or a loop with
a millisecond interval).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tradepulse.data import load_bars
from tradepulse.domain import Instrument
from tradepulse.errors import ConfigError
from tradepulse.execution import ExecutionService, Journal, ServiceConfig
from tradepulse.live import iter_bars
from tradepulse.live.host import History, HostReply, HostRequest, LocalRunners, RunnerSpec
from tradepulse.live.registry import StrategyRegistry
from tradepulse.serve import InProcessBackend
from tradepulse.serve.deployment import create_trading_app
from tradepulse.serve.metrics import TradingMetrics
from tradepulse.serve.strategies import RunnerUnavailableError, StrategyPipeline
from tradepulse.strategy import Bar

REPO = Path(__file__).resolve().parents[2]
INSTRUMENT = {"price_increment": "0.01", "quantity_increment": "0.0001", "cash_increment": "0.01"}
CONFIG = {
    "commission_rate": "0.0005",
    "instruments": {"SPX": INSTRUMENT},
    "default_instrument": "reject",
    "risk": {"margin_rate": None, "max_order_quantity": "79"},
}
HEARTBEAT = "tradepulse_strategy_heartbeat_timestamp_seconds"
LAST_BAR = "tradepulse_strategy_last_bar_timestamp_seconds"


@pytest.fixture(scope="module")
def spx() -> list[Bar]:
    return list(iter_bars(load_bars(REPO / "golden" / "data" / "sp500_daily.csv").head(200)))


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Recording(LocalRunners):
    """In-process runners that note each request's phase, and fail pings while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.phases: list[str] = []
        self.down = False
        self.gate: asyncio.Event | None = None  # when set up, runs wait for it

    async def step(self, request: HostRequest) -> HostReply:
        self.phases.append(request.phase)
        if request.phase == "ping" and self.down:
            raise RunnerUnavailableError("no replica")
        if request.phase == "run" and self.gate is not None:
            await self.gate.wait()
        return await super().step(request)


class Setup:
    """A pipeline over a real service, in-process runners, metrics on a fake clock."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.metrics = TradingMetrics(wall_clock=self.clock)
        self.service = ExecutionService(
            journal=Journal(),
            config=ServiceConfig.from_mapping(CONFIG),
            clock=itertools.count(1).__next__,
        )
        self.runners = Recording()
        self.pipeline = StrategyPipeline(
            backend=InProcessBackend(self.service),
            ledger=self.service,
            registry=StrategyRegistry(),
            runners=self.runners,
            heartbeat=self.metrics.heartbeat,
            stopped=self.metrics.strategy_stopped,
            bar=self.metrics.strategy_bar,
            wall_clock=self.clock,
        )

    def gauge(self, name: str, strategy: str = "s1") -> float | None:
        return self.metrics.registry.get_sample_value(name, {"strategy": strategy})

    async def create(self, plugin: str = "sma_cross") -> str:
        status, _ = await self.pipeline.create(
            account="alpha", plugin=plugin, params={}, symbol="SPX"
        )
        return status.record.strategy_id

    async def feed(self, bars: list[Bar]) -> None:
        for start in range(0, len(bars), 25):
            await self.pipeline.apply_bars([("SPX", bar) for bar in bars[start : start + 25]])

    def orders(self) -> list[tuple[str | None, str, str]]:
        return [
            (view.client_order_id, str(view.status), str(view.filled_quantity))
            for view in self.service.orders(account="alpha")
        ]


@pytest.fixture
def setup() -> Setup:
    return Setup()


def test_pings_keep_the_heartbeat_fresh_while_no_bar_comes(setup: Setup, spx: list[Bar]) -> None:
    async def scenario() -> tuple[Any, ...]:
        await setup.create()
        await setup.feed(spx[:30])  # at t = 1000
        after_bars = (setup.gauge(HEARTBEAT), setup.gauge(LAST_BAR))
        setup.clock.now = 1900.0  # 15 minutes, no bar
        answers = await setup.pipeline.ping()
        status = await setup.pipeline.strategy("alpha", "s1")
        return after_bars, answers, status

    after_bars, answers, status = asyncio.run(scenario())

    assert after_bars == (1000.0, 1000.0)
    assert answers == {"s1": True}
    assert setup.gauge(HEARTBEAT) == 1900.0  # alive
    assert setup.gauge(LAST_BAR) == 1000.0  # market data is 15 minutes old
    assert status.heartbeat == 1900.0
    assert setup.runners.phases.count("ping") == 1


def test_the_status_last_bar_moves_with_bars_only(setup: Setup, spx: list[Bar]) -> None:
    async def scenario() -> tuple[Any, ...]:
        await setup.create()
        before = await setup.pipeline.strategy("alpha", "s1")
        setup.clock.now = 1200.0
        await setup.feed(spx[:30])
        after_bars = await setup.pipeline.strategy("alpha", "s1")
        setup.clock.now = 1900.0
        await setup.pipeline.ping()
        after_ping = await setup.pipeline.strategy("alpha", "s1")
        metric = setup.gauge(LAST_BAR)
        stopped = await setup.pipeline.stop("alpha", "s1")
        return before, after_bars, after_ping, metric, stopped

    before, after_bars, after_ping, metric, stopped = asyncio.run(scenario())

    assert before.last_bar is None
    assert (after_bars.last_bar, after_bars.heartbeat) == (1200.0, 1200.0)
    assert (after_ping.last_bar, after_ping.heartbeat) == (1200.0, 1900.0)
    assert metric == after_ping.last_bar  # the API shows the metric's value
    assert stopped.last_bar == 1200.0


def test_a_ping_rebuilds_a_lost_runner_so_the_next_bar_needs_no_rebuild(spx: list[Bar]) -> None:
    undisturbed, disturbed = Setup(), Setup()

    async def scenario() -> list[str]:
        for one in (undisturbed, disturbed):
            await one.create()
            await one.feed(spx[:120])
        disturbed.runners.pool.drop("s1")  # its replica died between bars
        await disturbed.pipeline.ping()
        phases_after_ping = len(disturbed.runners.phases)
        for one in (undisturbed, disturbed):
            await one.feed(spx[120:])
        return disturbed.runners.phases[phases_after_ping:]

    after_ping = asyncio.run(scenario())

    host = disturbed.runners.pool.host("s1")
    assert host is not None
    assert host.rebuilds == 1  # by the ping (a ping, then the ping again with its history)
    assert disturbed.runners.phases.count("ping") == 2
    assert after_ping == ["run"] * 4  # one run per batch of 25 bars: no needs_history round
    assert disturbed.orders() == undisturbed.orders()
    assert len(undisturbed.orders()) >= 2  # the strategy traded on both sides of the ping


def test_a_ping_waits_for_the_bar_walk_it_arrives_in(setup: Setup, spx: list[Bar]) -> None:
    async def scenario() -> list[str]:
        await setup.create()
        await setup.feed(spx[:5])
        setup.runners.gate = asyncio.Event()
        setup.runners.phases.clear()
        walk = asyncio.create_task(setup.pipeline.apply_bars([("SPX", bar) for bar in spx[5:10]]))
        while "run" not in setup.runners.phases:
            await asyncio.sleep(0)
        ping = asyncio.create_task(setup.pipeline.ping())
        for _ in range(20):
            await asyncio.sleep(0)
        before_release = list(setup.runners.phases)
        setup.runners.gate.set()
        await walk
        await ping
        assert "ping" not in before_release
        return setup.runners.phases

    phases = asyncio.run(scenario())

    assert phases[0] == "run"
    assert phases[-1] == "ping"
    assert phases.count("ping") == 1


def test_a_runner_that_does_not_answer_keeps_its_heartbeat_and_is_logged_once(
    setup: Setup, spx: list[Bar], caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> list[dict[str, bool]]:
        await setup.create()
        await setup.feed(spx[:3])
        setup.runners.down = True
        answers = []
        for now in (1015.0, 1030.0, 1045.0):
            setup.clock.now = now
            answers.append(await setup.pipeline.ping())
        setup.runners.down = False
        setup.clock.now = 1060.0
        answers.append(await setup.pipeline.ping())
        return answers

    with caplog.at_level(logging.INFO, logger="tradepulse.serve.strategy_walk"):
        answers = asyncio.run(scenario())

    assert answers == [{"s1": False}] * 3 + [{"s1": True}]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "does not answer pings" in warnings[0].getMessage()
    assert any("answers pings again" in r.getMessage() for r in caplog.records)
    assert setup.gauge(HEARTBEAT) == 1060.0
    assert setup.gauge(LAST_BAR) == 1000.0


def test_the_ping_loop_pings_every_interval_until_stopped(setup: Setup) -> None:
    async def scenario() -> tuple[int, bool, bool]:
        await setup.create()
        setup.pipeline.start_pings(0.002)
        running = setup.pipeline.pinging
        with pytest.raises(ConfigError, match="pinged already"):
            setup.pipeline.start_pings(0.002)
        while setup.runners.phases.count("ping") < 3:
            await asyncio.sleep(0.002)
        await setup.pipeline.stop_pings()
        count = setup.runners.phases.count("ping")
        await asyncio.sleep(0.01)
        assert setup.runners.phases.count("ping") == count  # stopped
        await setup.pipeline.stop_pings()  # again: nothing to do
        setup.pipeline.start_pings(0)  # off
        return count, running, setup.pipeline.pinging

    count, running, off = asyncio.run(scenario())

    assert count >= 3
    assert running
    assert not off


@pytest.mark.parametrize("interval", [-1.0, float("nan"), "15", True])
def test_a_bad_ping_interval_is_refused(setup: Setup, interval: object) -> None:
    async def scenario() -> None:
        setup.pipeline.start_pings(interval)  # type: ignore[arg-type]

    with pytest.raises(ConfigError, match="ping interval"):
        asyncio.run(scenario())


def test_the_apps_lifespan_runs_the_pings(tmp_path: Path) -> None:
    args = {"journal": str(tmp_path / "journal.sqlite"), "runners": {"ping_seconds": 0.005}}
    trading = create_trading_app(args)
    pipeline = trading.strategies
    assert pipeline is not None
    try:
        assert not pipeline.pinging
        with TestClient(trading.app, base_url="http://127.0.0.1"):
            assert pipeline.pinging
        assert not pipeline.pinging
    finally:
        trading.service.journal.close()
        pipeline.registry.close()


def test_pings_can_be_turned_off_and_are_bounded() -> None:
    from tradepulse.serve.settings import parse_app_args

    assert parse_app_args({}).runners.ping_seconds == 15.0
    assert parse_app_args({"runners": {"ping_seconds": 0}}).runners.ping_seconds == 0
    with pytest.raises(ConfigError, match="ping_seconds"):
        parse_app_args({"runners": {"ping_seconds": -1}})


class _FlakyHandle:
    """A stand-in for the runner deployment's handle whose first ``fail`` calls are cancelled."""

    def __init__(self, fail: int) -> None:
        self.fail = fail
        self.calls: list[str] = []
        self.pool = LocalRunners()

    def options(self, **_: Any) -> _FlakyHandle:
        return self

    @property
    def step(self) -> _FlakyHandle:
        return self

    async def remote(self, request: HostRequest) -> HostReply:
        from ray.serve.exceptions import RequestCancelledError

        self.calls.append(request.phase)
        if len(self.calls) <= self.fail:
            raise RequestCancelledError("lost")
        return await self.pool.step(request)


def test_serve_runners_try_a_ping_once_and_retry_everything_else() -> None:
    from tradepulse.serve.runners import ServeRunners

    from_ping = _FlakyHandle(fail=1)
    runners = ServeRunners(from_ping, retry_seconds=5.0)  # type: ignore[arg-type]
    spec = RunnerSpec(
        strategy_id="s1",
        plugin="sma_cross",
        params={},
        symbol="SPX",
        instrument=Instrument(symbol="SPX"),
        cash=100_000.0,
    )
    ping = HostRequest(spec=spec, phase="ping")

    with pytest.raises(RunnerUnavailableError, match="did not answer the ping"):
        asyncio.run(runners.step(ping))
    rebuilt = asyncio.run(runners.step(HostRequest(spec=spec, phase="ping", history=History(()))))
    assert rebuilt.status == "ok"
    assert from_ping.calls == ["ping", "ping"]  # one attempt each

    from_state = _FlakyHandle(fail=1)
    state = asyncio.run(
        ServeRunners(from_state, retry_seconds=5.0).step(  # type: ignore[arg-type]
            HostRequest(spec=spec, phase="state", history=History(()))
        )
    )
    assert state.status == "ok"
    assert from_state.calls == ["state", "state"]  # retried after the lost call
