"""Kill the execution replica while orders stream in: nothing acknowledged is lost or doubled.

The application runs on the session's Ray cluster (``ray_session``) behind
Serve's HTTP proxy on a free 127.0.0.1 port, with its journal in ``tmp_path``.
A client thread submits market orders, each with its own ``Idempotency-Key``
(also its ``client_order_id``), retrying the same key on connection errors,
timeouts and 5xx until the order is acknowledged; every tenth order it posts a
bar, so orders fill as the stream goes. Meanwhile the test kills the
``TradingApi`` replica actor; Serve starts a new one, which rebuilds the
service from the journal. Afterwards every acknowledged order exists exactly
once, with the id it was acknowledged with, and the fills seen before the kill
survived with the positions and cash they imply.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import httpx
import pytest

from tradepulse.execution.journal import Journal
from tradepulse.serve.auth import generate_key

if TYPE_CHECKING:
    from tradepulse.cluster import ClusterInfo

APP: Final = "tradepulse-faults"
ORDERS: Final = 120
KILL_AFTER: Final = 40  # acknowledged orders before the kill
BAR_EVERY: Final = 10
REQUEST_TIMEOUT_S: Final = 5.0
DEADLINE_S: Final = 45.0
INITIAL_CASH: Final = Decimal(100_000)  # ServiceConfig's default
DAY_NS: Final = 86_400 * 10**9
START_NS: Final = 1_704_153_600 * 10**9  # 2024-01-02T00:00:00Z


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bar(index: int) -> dict[str, Any]:
    """Return bar ``index``: one a day, opening at 100 + index / 4 (exact in decimal)."""
    open_ = 100 + index / 4
    return {
        "symbol": "SPX",
        "ts": START_NS + index * DAY_NS,
        "open": open_,
        "high": open_ + 1,
        "low": open_ - 1,
        "close": open_ + 0.5,
        "volume": 1_000_000,
    }


def _replica_names() -> set[str]:
    import ray

    return {
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(f"SERVE_REPLICA::{APP}#TradingApi#")
    }


class Stream:
    """A client that submits orders until each is acknowledged, retrying the same key."""

    def __init__(self, base: str, secret: str) -> None:
        self.client = httpx.Client(
            base_url=base,
            headers={"Authorization": f"Bearer {secret}"},
            timeout=REQUEST_TIMEOUT_S,
        )
        self.acknowledged: dict[str, str] = {}  # key -> order id
        self.replayed = 0  # acknowledgements that were 200 (the order existed already)
        self.retries = 0
        self.bars = 1
        self.failure: BaseException | None = None
        self.deadline = time.monotonic() + DEADLINE_S

    def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None
    ) -> Any:
        """Send until the server answers 2xx; retry on errors, timeouts and 5xx."""
        headers = {} if key is None else {"Idempotency-Key": key}
        while True:
            if time.monotonic() > self.deadline:
                raise TimeoutError(f"{method} {path} not acknowledged within {DEADLINE_S} s")
            try:
                response = self.client.request(method, path, json=body, headers=headers)
            except httpx.TransportError:  # refused, reset, timed out: the replica is down
                self.retries += 1
                time.sleep(0.05)
                continue
            if response.status_code >= 500:
                self.retries += 1
                time.sleep(0.05)
                continue
            if response.status_code >= 300:
                raise AssertionError(f"{method} {path}: {response.status_code} {response.text}")
            if response.status_code == 200 and path == "/orders":
                self.replayed += 1
            return response.json()

    def post_bar(self) -> None:
        """Post the next bar (a bar that was applied already is ignored on a retry)."""
        self.call("POST", "/market/bars", _bar(self.bars))
        self.bars += 1

    def run(self) -> None:
        """Submit ``ORDERS`` market buys of one unit, a bar after every tenth."""
        try:
            for index in range(ORDERS):
                key = f"fault-{index:04d}"
                body = {"symbol": "SPX", "side": "buy", "quantity": "1", "client_order_id": key}
                order = self.call("POST", "/orders", body, key)
                assert order["client_order_id"] == key, order
                self.acknowledged[key] = order["order_id"]
                if index % BAR_EVERY == BAR_EVERY - 1:
                    self.post_bar()
        except BaseException as error:  # reported by the test thread
            self.failure = error


@pytest.fixture
def trading_app(ray_session: ClusterInfo, tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """Run the app on Serve (127.0.0.1, a free port); yield (API base URL, secret, journal)."""
    from ray import serve

    from tradepulse.serve.deployment import build_app

    port = _free_port()
    journal = tmp_path / "journal.sqlite"
    key = generate_key("desk", ["admin"])  # the stream also posts bars, which need admin
    args = {
        "journal": str(journal),
        "journal_sync": "normal",
        "api_keys": [dict(key.entry)],
    }
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    try:
        serve.run(build_app(args), name=APP, route_prefix="/")  # type: ignore[arg-type]
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer on {base}: was Serve already running?")
            time.sleep(0.2)
        yield base, key.secret, journal
    finally:
        serve.delete(APP)
        serve.shutdown()  # type: ignore[no-untyped-call]


def test_killing_the_execution_replica_loses_and_doubles_no_acknowledged_order(
    trading_app: tuple[str, str, Path],
) -> None:
    base, secret, journal_path = trading_app
    stream = Stream(base, secret)
    try:
        _stream_through_a_kill(stream, journal_path)
    finally:
        stream.client.close()


def _stream_through_a_kill(stream: Stream, journal_path: Path) -> None:
    import ray

    stream.call("POST", "/market/bars", _bar(0))  # a price for the market orders
    (victim,) = _replica_names()
    worker = threading.Thread(target=stream.run, daemon=True)
    worker.start()
    while len(stream.acknowledged) < KILL_AFTER and worker.is_alive():
        time.sleep(0.01)
    fills_before = stream.call("GET", "/fills")["fills"]
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    worker.join(timeout=DEADLINE_S + 5)
    assert not worker.is_alive(), "the order stream did not finish"
    if stream.failure is not None:
        raise stream.failure
    stream.post_bar()  # fills the orders still open

    replicas = _replica_names()
    assert replicas
    assert victim not in replicas  # Serve replaced the killed replica
    orders = stream.call("GET", "/orders?limit=10000")["orders"]
    keys = Counter(order["client_order_id"] for order in orders)
    assert len(stream.acknowledged) == ORDERS
    assert keys == Counter(list(stream.acknowledged))  # each key once: none lost or doubled
    assert {o["client_order_id"]: o["order_id"] for o in orders} == stream.acknowledged
    assert {order["status"] for order in orders} == {"filled"}

    fills = stream.call("GET", "/fills")["fills"]
    assert fills_before
    assert all(fill in fills for fill in fills_before)  # journaled fills survived the kill
    assert sorted(fill["order_id"] for fill in fills) == sorted(stream.acknowledged.values())
    bought = sum((Decimal(fill["price"]) for fill in fills), Decimal(0))  # one unit each
    (position,) = stream.call("GET", "/positions")["positions"]
    assert Decimal(position["quantity"]) == ORDERS
    account = stream.call("GET", "/account")
    assert Decimal(account["cash"]) == INITIAL_CASH - bought  # no commission by default

    with Journal.open(journal_path, read_only=True) as journal:
        events = list(journal.entries())
    sessions = [index for index, event in enumerate(events) if event.kind == "session"]
    assert len(sessions) == 2  # the first replica and its replacement
    assert events[sessions[1]].payload["replayed_events"] > KILL_AFTER
    kinds = [event.kind for event in events]
    assert kinds.count("order") == ORDERS
    assert kinds[sessions[1] :].count("order") > 0  # the stream went on across the kill
