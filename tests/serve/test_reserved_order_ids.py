"""A live strategy's order ids are its runner's: the order routes refuse them to users.

A strategy ``s1`` of account ``alpha`` places its orders with client order id
and idempotency key ``s1:<runner id>`` (``s1:o1``, ...). A user's order of
``alpha`` holding such an id first would be what the runner's own submit gets
back (or a conflict), so ``POST /orders``, ``POST /orders/batch`` and
``PUT /orders/{id}`` answer 409 ``reserved_id`` for it, whether the strategy
runs or was stopped. The app is the production one (:func:`create_trading_app`,
runners in process) over a journal in ``tmp_path``.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from strategy_support import BarOnlyStrategy, NoParameters, installed_plugins
from test_strategy_routes import SERVICE, STRATEGIES, Server, TestClient, auth

from tradepulse.execution import ExecutionService, Journal, ServiceConfig
from tradepulse.execution.journal import MEMORY
from tradepulse.serve import ApiKeyStore, InProcessBackend, create_app
from tradepulse.serve.strategy_orders import strategy_of_key
from tradepulse.strategy import Bar, StrategyContext

ORDERS = "/api/v1/orders"
BARS = "/api/v1/market/bars"
#: A user's order: unlike any order the strategies below place.
USER_ORDER = {"symbol": "SPX", "side": "sell", "quantity": "1", "order_type": "market"}
RESTING = {
    "symbol": "SPX",
    "side": "buy",
    "quantity": "1",
    "order_type": "limit",
    "limit_price": "50",
}


class Probe(BarOnlyStrategy):
    """Rest a buy of 5 at 90 (bar 0), raise it to 91 (bar 1), buy 2 at the market (bar 2)."""

    name = "reserved_probe"

    def handle_tick(self, ctx: StrategyContext[NoParameters], bar: Bar) -> None:
        """Place, replace, then buy at the market."""
        if ctx.bar_index == 0:
            ctx.buy(quantity=5.0, order_type="limit", limit_price=90.0)
        elif ctx.bar_index == 1 and ctx.open_orders:
            ctx.replace(ctx.open_orders[0], limit_price=91.0)
        elif ctx.bar_index == 2:
            ctx.buy(quantity=2.0)


@pytest.fixture(autouse=True)
def _plugin_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed_plugins(monkeypatch, Probe)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TestClient]:
    """The app with strategy ``s1`` of account ``alpha`` (the ``trader`` key's) running."""
    with Server(tmp_path, SERVICE) as client:
        created = client.post(
            STRATEGIES, json={"plugin": "sma_cross", "symbol": "SPX"}, headers=auth("trader")
        )
        assert created.status_code == 201, created.text
        assert created.json()["id"] == "s1"
        yield client


def submit(
    client: TestClient, name: str, body: dict[str, Any], key: str | None = None
) -> httpx.Response:
    headers = auth(name) if key is None else {**auth(name), "Idempotency-Key": key}
    return client.post(ORDERS, json=body, headers=headers)


def orders_of(client: TestClient, name: str) -> list[dict[str, Any]]:
    response = client.get(f"{ORDERS}?limit=10000", headers=auth(name))
    assert response.status_code == 200, response.text
    orders: list[dict[str, Any]] = response.json()["orders"]
    return orders


def assert_reserved(response: httpx.Response, key: str, strategy_id: str = "s1") -> None:
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "reserved_id"
    assert repr(key) in error["message"]
    assert f"live strategy {strategy_id!r}" in error["message"]


@pytest.mark.parametrize(
    ("key", "body"),
    [
        (None, {**USER_ORDER, "client_order_id": "s1:o1"}),
        ("s1:o1", USER_ORDER),
        ("s1:t5.1", {**USER_ORDER, "client_order_id": "desk-7"}),
        ("desk-7", {**USER_ORDER, "client_order_id": "s1:anything:at:all"}),
    ],
)
def test_a_strategys_id_is_refused_in_either_field_running_or_stopped(
    server: TestClient, key: str | None, body: dict[str, Any]
) -> None:
    reserved = key if key is not None and key.startswith("s1:") else body["client_order_id"]

    running = submit(server, "trader", body, key)
    stopped = server.delete(f"{STRATEGIES}/s1", headers=auth("trader"))
    after_stop = submit(server, "trader", body, key)

    assert_reserved(running, reserved)
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert_reserved(after_stop, reserved)
    assert orders_of(server, "trader") == []


def test_a_batch_with_a_reserved_key_is_refused_and_a_reserved_item_fails_alone(
    server: TestClient,
) -> None:
    body = {
        "orders": [
            {**RESTING, "client_order_id": "desk-1"},
            {**RESTING, "client_order_id": "s1:o2"},
            RESTING,
        ]
    }

    whole = server.post(
        f"{ORDERS}/batch", json=body, headers={**auth("trader"), "Idempotency-Key": "s1:batch"}
    )
    none_created = orders_of(server, "trader")
    headers = {**auth("trader"), "Idempotency-Key": "desk-batch"}
    first = server.post(f"{ORDERS}/batch", json=body, headers=headers)
    retry = server.post(f"{ORDERS}/batch", json=body, headers=headers)
    only_reserved = server.post(
        f"{ORDERS}/batch", json={"orders": [body["orders"][1]]}, headers=auth("trader")
    )

    assert_reserved(whole, "s1:batch")
    assert only_reserved.status_code == 200
    assert [item["status"] for item in only_reserved.json()["results"]] == [409]
    assert none_created == []
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [(item["index"], item["status"]) for item in results] == [(0, 201), (1, 409), (2, 201)]
    assert results[1]["order"] is None
    assert results[1]["error"]["code"] == "reserved_id"
    assert "'s1:o2'" in results[1]["error"]["message"]
    # Items 0 and 2 keep their keys desk-batch#0 and desk-batch#2: the retry replays them.
    again = retry.json()["results"]
    assert [item["status"] for item in again] == [200, 409, 200]
    assert [item["order"]["order_id"] for item in (again[0], again[2])] == [
        results[0]["order"]["order_id"],
        results[2]["order"]["order_id"],
    ]
    assert sorted(order["client_order_id"] or "" for order in orders_of(server, "trader")) == [
        "",
        "desk-1",
    ]


def test_a_replace_with_a_reserved_key_is_refused_and_changes_nothing(
    server: TestClient,
) -> None:
    placed = submit(server, "trader", {**RESTING, "client_order_id": "desk-1"})
    order_id = placed.json()["order_id"]
    path = f"{ORDERS}/{order_id}"

    refused = server.put(
        path, json={"limit_price": "51"}, headers={**auth("trader"), "Idempotency-Key": "s1:o4"}
    )
    unchanged = server.get(path, headers=auth("trader")).json()
    replaced = server.put(
        path, json={"limit_price": "51"}, headers={**auth("trader"), "Idempotency-Key": "desk-1-r"}
    )

    assert placed.status_code == 201
    assert_reserved(refused, "s1:o4")
    assert unchanged["status"] == "accepted"
    assert Decimal(unchanged["limit_price"]) == 50
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["replaces"] == order_id
    assert Decimal(replaced.json()["limit_price"]) == 51


def test_another_accounts_strategy_ids_are_free_here(server: TestClient) -> None:
    # s1 is alpha's; the other key trades in account beta, which has no strategy.
    by_id = submit(server, "other", {**USER_ORDER, "client_order_id": "s1:o1"})
    by_key = submit(server, "other", USER_ORDER, key="s1:o2")
    batch = server.post(
        f"{ORDERS}/batch",
        json={"orders": [{**RESTING, "client_order_id": "s1:o3"}]},
        headers={**auth("other"), "Idempotency-Key": "s1:o9"},
    )

    assert (by_id.status_code, by_key.status_code) == (201, 201)
    assert batch.status_code == 200
    assert [item["status"] for item in batch.json()["results"]] == [201]
    assert len(orders_of(server, "other")) == 3
    assert orders_of(server, "trader") == []


def test_a_strategy_tag_naming_a_live_strategy_is_refused(server: TestClient) -> None:
    tagged = submit(server, "trader", {**USER_ORDER, "strategy": "s1"})
    batch = server.post(
        f"{ORDERS}/batch",
        json={"orders": [{**RESTING, "strategy": "s1"}, {**RESTING, "strategy": "desk"}]},
        headers=auth("trader"),
    )
    elsewhere = submit(server, "other", {**USER_ORDER, "strategy": "s1"})

    assert tagged.status_code == 409, tagged.text
    assert tagged.json()["error"]["code"] == "reserved_id"
    assert "'s1'" in tagged.json()["error"]["message"]
    assert batch.status_code == 200, batch.text
    assert [item["status"] for item in batch.json()["results"]] == [409, 201]
    assert [order["strategy"] for order in orders_of(server, "trader")] == ["desk"]
    assert elsewhere.status_code == 201, elsewhere.text  # beta has no strategy s1


def test_a_new_strategy_never_takes_an_id_whose_prefix_the_account_already_used(
    server: TestClient,
) -> None:
    # "s2" is the next automatic id: a user's order took "s2:o1" first.
    assert submit(server, "trader", {**USER_ORDER, "client_order_id": "s2:o1"}).status_code == 201
    assert submit(server, "trader", USER_ORDER, key="mine:1").status_code == 201

    generated = server.post(
        STRATEGIES, json={"plugin": "sma_cross", "symbol": "SPX"}, headers=auth("trader")
    )
    chosen = server.post(
        STRATEGIES,
        json={"plugin": "sma_cross", "symbol": "SPX", "id": "mine"},
        headers=auth("trader"),
    )
    elsewhere = server.post(
        STRATEGIES, json={"plugin": "sma_cross", "symbol": "SPX"}, headers=auth("other")
    )

    assert generated.status_code == 201, generated.text
    assert generated.json()["id"] == "s3"
    assert chosen.status_code == 409, chosen.text
    assert "'mine:'" in chosen.json()["error"]["message"]
    # account beta never used "s2:": the next free id there is s4 (ids are global)
    assert elsewhere.status_code == 201, elsewhere.text
    assert elsewhere.json()["id"] == "s4"


@pytest.mark.parametrize(
    "tag",
    [
        "desk:1",  # no strategy desk
        "s2:o1",  # no strategy s2 (yet)
        "S1:o1",  # ids are case-sensitive
        "s1x:o1",
        ":s1:o1",  # nothing before the first ':'
        "x:s1:o1",  # s1 after the first ':'
        "s1",  # no ':' at all: no runner id looks like that
        "s1#0",
    ],
)
def test_an_id_naming_no_strategy_of_the_account_is_accepted(server: TestClient, tag: str) -> None:
    by_id = submit(server, "trader", {**USER_ORDER, "client_order_id": tag})
    by_key = submit(server, "trader", USER_ORDER, key=f"k-{tag}")

    assert by_id.status_code == 201, by_id.text
    assert by_id.json()["client_order_id"] == tag
    assert by_key.status_code == 201, by_key.text


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("s1:o1", "s1"),
        ("s1:t5.1:x", "s1"),
        ("gspc-trend:t1.2", "gspc-trend"),
        ("s1", None),
        (":o1", None),
        ("", None),
    ],
)
def test_the_strategy_of_a_key_is_its_part_before_the_first_colon(
    key: str, expected: str | None
) -> None:
    assert strategy_of_key(key) == expected


def test_without_strategies_nothing_is_reserved() -> None:
    service = ExecutionService(
        journal=Journal(MEMORY), config=ServiceConfig(), clock=itertools.count(1).__next__
    )
    keys = ApiKeyStore.from_env_value("desk:trade:desk-secret-1")
    app = create_app(InProcessBackend(service), keys=keys)

    async def scenario() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            headers = {"Authorization": "Bearer desk-secret-1", "Idempotency-Key": "s1:o2"}
            body = {**USER_ORDER, "symbol": "AAPL", "client_order_id": "s1:o1"}
            first = await client.post(ORDERS, json=body, headers=headers)
            retry = await client.post(ORDERS, json=body, headers=headers)
            return [first.status_code, retry.status_code]

    try:
        assert asyncio.run(scenario()) == [201, 200]
    finally:
        service.journal.close()


def test_the_strategy_places_and_replaces_its_own_ids_after_a_user_was_refused_them(
    tmp_path: Path,
) -> None:
    # The probe's orders are o1 (buy 5 at 90, decided on bar 1's close, sent at
    # bar 2's open), o2 (o1 raised to 91, sent at bar 3's open) and o3 (buy 2
    # at the market, sent at bar 4's open: it fills at 100). No bar dips below
    # 100, so o2 keeps working. A user's order holding one of those ids first
    # would make the runner's submit or replace of it a conflict.
    def bar(ts: int) -> dict[str, Any]:
        return {
            "symbol": "SPX",
            "ts": ts,
            "open": 100.0,
            "high": 100.0,
            "low": 100.0,
            "close": 100.0,
        }

    with Server(tmp_path, SERVICE) as client:
        created = client.post(
            STRATEGIES,
            json={"plugin": "reserved_probe", "symbol": "SPX", "id": "probe"},
            headers=auth("trader"),
        )
        refused = [
            submit(client, "trader", {**USER_ORDER, "client_order_id": f"probe:o{n}"})
            for n in (1, 2, 3)
        ] + [submit(client, "trader", USER_ORDER, key=f"probe:o{n}") for n in (1, 2, 3)]
        elsewhere = submit(client, "other", {**USER_ORDER, "client_order_id": "probe:o1"})
        fed = client.post(BARS, json=[bar(ts) for ts in (1, 2, 3, 4)], headers=auth("feed"))
        orders = orders_of(client, "trader")
        runner = client.get(f"{STRATEGIES}/probe", headers=auth("trader")).json()["runner"]

    assert created.status_code == 201, created.text
    for response, n in zip(refused, (1, 2, 3, 1, 2, 3), strict=True):
        assert_reserved(response, f"probe:o{n}", "probe")
    assert elsewhere.status_code == 201  # account beta: the id is free there
    assert fed.status_code == 200, fed.text
    # A replacement keeps the client order id of the order it replaces (its key is o2).
    assert [order["client_order_id"] for order in orders] == ["probe:o1", "probe:o1", "probe:o3"]
    assert {order["strategy"] for order in orders} == {"probe"}
    first, raised, market = orders
    assert (first["status"], Decimal(first["limit_price"])) == ("cancelled", 90)
    assert raised["replaces"] == first["order_id"]
    assert (raised["status"], Decimal(raised["limit_price"])) == ("accepted", 91)
    assert (Decimal(raised["quantity"]), Decimal(raised["filled_quantity"])) == (5, 0)
    assert (market["status"], Decimal(market["filled_quantity"])) == ("filled", 2)
    assert Decimal(market["average_fill_price"]) == 100
    assert (runner["position"], runner["open_orders"], runner["failure"]) == (2.0, ["o2"], None)
