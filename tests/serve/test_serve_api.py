"""The HTTP API over a fake execution service: routes, versioning, idempotency, bad input."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

import pytest
from fastapi import APIRouter
from serve_fakes import (
    FakeService,
    TestClient,
    auth,
    bar,
    ids,
    make_client,
    make_keys,
    market_order,
    real_service,
)

from tradepulse.domain.orders import OrderError, OrderStateError, Side
from tradepulse.errors import ConfigError, DataError, TradePulseError
from tradepulse.execution.service_views import (
    OrderConflictError,
    OrderNotFoundError,
    OrderRequest,
)
from tradepulse.serve import (
    InProcessBackend,
    Scope,
    ServiceFailure,
    classify_error,
    create_app,
    parse_version,
    requires,
)
from tradepulse.serve.api import error_response
from tradepulse.serve.models import parse_amount, parse_timestamp_ns
from tradepulse.strategy.api import Bar

ORDERS = "/api/v1/orders"
VERSION = "X-TradePulse-Version"


def _error(response: Any) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [detail["field"] for detail in _error(response)["details"]]


# ------------------------------------------------------------------ probes and versioning


def test_health_answers_with_the_version(client: TestClient) -> None:
    response = client.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "version": "0.1.0", "api": "v1"}
    assert response.headers[VERSION] == "0.1.0"


class _Unreachable(InProcessBackend):
    async def ping(self) -> None:
        raise ConnectionError("replica is gone")


class _Stuck(InProcessBackend):
    async def ping(self) -> None:
        await asyncio.sleep(10)


@pytest.mark.parametrize("backend_type", [_Unreachable, _Stuck])
def test_ready_is_503_when_the_backend_does_not_answer(backend_type: type) -> None:
    with make_client(backend_type(FakeService()), ready_timeout_seconds=0.05) as client:
        response = client.get("/api/v1/ready")

    assert response.status_code == 503
    assert _error(response)["code"] == "not_ready"
    assert response.headers["Retry-After"] == "1"
    assert response.headers[VERSION] == "0.1.0"
    why = "no answer within 0.05 s" if backend_type is _Stuck else "replica is gone"
    assert why in _error(response)["message"]


def test_ready_is_200_when_the_backend_answers(client: TestClient) -> None:
    assert client.get("/api/v1/ready").json() == {"status": "ready"}


def _failing_requests(client: TestClient) -> Iterator[tuple[int, Any]]:
    yield 200, client.get("/api/v1/health")
    yield 201, client.post(ORDERS, json=market_order(), headers=auth("trader"))
    yield 400, client.get("/api/v1/health", headers={VERSION: "7.0.0"})
    yield 401, client.get(ORDERS)
    yield 403, client.post(ORDERS, json=market_order(), headers=auth("reader"))
    yield 404, client.get(f"{ORDERS}/ord-999999", headers=auth("reader"))
    yield 405, client.patch(ORDERS, headers=auth("trader"))
    yield (
        409,
        client.post(
            ORDERS, json=market_order(client_order_id="c1", quantity="2"), headers=auth("trader")
        ),
    )
    yield 413, client.post(ORDERS, content=b"x" * 70_000, headers=auth("trader"))
    yield 422, client.post(ORDERS, json={}, headers=auth("trader"))


def test_every_response_carries_the_version_header(client: TestClient) -> None:
    client.post(ORDERS, json=market_order(client_order_id="c1"), headers=auth("trader"))

    seen = []
    for expected, response in _failing_requests(client):
        seen.append(response.status_code)
        assert response.headers[VERSION] == "0.1.0", expected
        if expected >= 400:
            assert _error(response)["message"]

    assert seen == [200, 201, 400, 401, 403, 404, 405, 409, 413, 422]


@pytest.mark.parametrize("sent", ["0", "0.1", "0.1.0", "0.9.3", "v0.2", "0.1.0rc1", "0.1.0-dev"])
def test_same_major_version_is_accepted(client: TestClient, sent: str) -> None:
    assert client.get("/api/v1/health", headers={VERSION: sent}).status_code == 200


def test_another_major_version_gets_400_naming_what_is_served(client: TestClient) -> None:
    # No key either: the version is checked first.
    response = client.get(ORDERS, headers={VERSION: "2.0"})

    error = _error(response)
    assert response.status_code == 400
    assert error["code"] == "unsupported_version"
    assert error["message"] == (
        "this server serves API major version 0 (TradePulse 0.1.0); you sent 2.0"
    )


@pytest.mark.parametrize("sent", ["", "latest", "1..2", "x1.0", "0.1.0 beta", "9" * 80])
def test_malformed_version_header_gets_400(client: TestClient, sent: str) -> None:
    response = client.get("/api/v1/health", headers={VERSION: sent})

    assert response.status_code == 400
    assert _error(response)["code"] == "invalid_version"
    assert "serves API major version 0" in _error(response)["message"]


def test_served_version_is_configurable() -> None:
    with make_client(FakeService(), version="2.3.1") as client:
        ok = client.get("/api/v1/health", headers={VERSION: "2.0"})
        old = client.get("/api/v1/health", headers={VERSION: "0.1.0"})

    assert ok.headers[VERSION] == "2.3.1"
    assert old.status_code == 400
    assert "major version 2 (TradePulse 2.3.1); you sent 0.1.0" in _error(old)["message"]


@pytest.mark.parametrize(("text", "major"), [("0.1.0", 0), ("12", 12), ("v3.4", 3)])
def test_parse_version(text: str, major: int) -> None:
    assert parse_version(text) == major


@pytest.mark.parametrize(
    "options",
    [{"version": "not-a-version"}, {"max_body_bytes": 0}, {"ready_timeout_seconds": 0}],
)
def test_create_app_refuses_bad_settings(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        create_app(InProcessBackend(FakeService()), keys=make_keys(), **options)


# ------------------------------------------------------------------ orders


def test_submit_answers_201_with_the_order_and_its_location(client: TestClient) -> None:
    response = client.post(
        ORDERS,
        json=market_order(quantity=0.1, client_order_id="abc-1", strategy="momentum"),
        headers=auth("trader"),
    )

    body = response.json()
    assert response.status_code == 201
    assert response.headers["Location"] == f"{ORDERS}/{body['order_id']}"
    assert body["quantity"] == "0.1"  # the float's shortest decimal, as a string
    assert (body["status"], body["account"], body["strategy"]) == ("accepted", "alpha", "momentum")
    assert body["client_order_id"] == "abc-1"


def test_idempotency_key_replay_returns_the_original_order(
    client: TestClient, service: FakeService
) -> None:
    headers = {**auth("trader"), "Idempotency-Key": "retry-7"}

    first = client.post(ORDERS, json=market_order(), headers=headers)
    second = client.post(ORDERS, json=market_order(), headers=headers)
    conflicting = client.post(ORDERS, json=market_order(quantity="11"), headers=headers)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert len(service.orders_by_id) == 1
    assert conflicting.status_code == 409
    assert _error(conflicting)["code"] == "conflict"


def test_client_order_id_replay_returns_the_original_order(client: TestClient) -> None:
    body = market_order(client_order_id="my-id-1")

    first = client.post(ORDERS, json=body, headers=auth("trader"))
    second = client.post(ORDERS, json=body, headers=auth("trader"))

    assert second.status_code == 200
    assert second.json()["order_id"] == first.json()["order_id"]


def test_a_risk_rejection_is_a_201_with_status_and_reason(client: TestClient) -> None:
    response = client.post(ORDERS, json=market_order(quantity="5000"), headers=auth("trader"))

    assert response.status_code == 201
    assert (response.json()["status"], response.json()["reason"]) == (
        "rejected",
        "max_order_quantity",
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": "-1"}, "body.quantity"),
        ({"quantity": 0}, "body.quantity"),
        ({"quantity": "NaN"}, "body.quantity"),
        ({"quantity": "Infinity"}, "body.quantity"),
        ({"quantity": "1e16"}, "body.quantity"),
        ({"quantity": 10**20}, "body.quantity"),
        ({"quantity": 1e300}, "body.quantity"),
        ({"quantity": "1234567890.123456789"}, "body.quantity"),  # 19 significant digits
        ({"quantity": "0.0000000000001"}, "body.quantity"),  # 13 decimal places
        ({"quantity": "1 000"}, "body.quantity"),
        ({"quantity": True}, "body.quantity"),
        ({"quantity": [1]}, "body.quantity"),
        ({"quantity": "9" * 70}, "body.quantity"),
        ({"side": "BUY"}, "body.side"),
        ({"side": None}, "body.side"),
        ({"symbol": ""}, "body.symbol"),
        ({"symbol": "A B"}, "body.symbol"),
        ({"time_in_force": "forever"}, "body.time_in_force"),
        ({"order_type": "limit"}, "body.limit_price"),
        ({"order_type": "stop"}, "body.stop_price"),
        ({"limit_price": "10"}, "body.limit_price"),
        ({"client_order_id": "x" * 65}, "body.client_order_id"),
        ({"client_order_id": "has space"}, "body.client_order_id"),
        ({"colour": "red"}, "body.colour"),
    ],
)
def test_bad_order_fields_are_422_naming_the_field(
    client: TestClient, service: FakeService, changes: dict[str, Any], field: str
) -> None:
    response = client.post(ORDERS, json=market_order(**changes), headers=auth("trader"))

    assert field in _fields(response)
    assert _error(response)["code"] == "validation_error"
    assert service.orders_by_id == {}


def test_missing_fields_are_all_listed(client: TestClient) -> None:
    response = client.post(ORDERS, json={"symbol": "AAPL"}, headers=auth("trader"))

    assert sorted(_fields(response)) == ["body.quantity", "body.side"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10", Decimal(10)),
        (10, Decimal(10)),
        (0.1, Decimal("0.1")),
        ("1e3", Decimal(1000)),
        ("0.000000000001", Decimal("1e-12")),
        ("123456789012345.678", Decimal("123456789012345.678")),  # 18 significant digits
        ("1000000000000000", Decimal(10) ** 15),
        ("12.5000000000000000000", Decimal("12.5")),  # trailing zeros are not significant
    ],
)
def test_amounts_accept_numbers_and_decimal_strings(text: object, expected: Decimal) -> None:
    assert parse_amount(text) == expected


def test_amounts_print_positionally(client: TestClient) -> None:
    body = client.post(ORDERS, json=market_order(quantity="1e3"), headers=auth("trader")).json()

    assert body["quantity"] == "1000"


@pytest.mark.parametrize(
    "literal",
    [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"1" * 5000, b"-0", b"1e-400"],
)
def test_non_finite_and_extreme_json_numbers_never_reach_the_service(
    client: TestClient, service: FakeService, literal: bytes
) -> None:
    content = b'{"symbol": "AAPL", "side": "buy", "quantity": ' + literal + b"}"

    response = client.post(
        ORDERS, content=content, headers={**auth("trader"), "Content-Type": "application/json"}
    )

    assert response.status_code in (400, 422), response.text
    assert service.orders_by_id == {}


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b'{"quantity": ' + b"1" * 5000 + b"}", "holds a number with too many digits"),
        (b"[" * 20_000 + b"]" * 20_000, "is nested too deeply"),
        (b'{"symbol": "\xff"}', "is not UTF-8 text"),
    ],
)
def test_a_body_json_cannot_read_is_a_400_saying_why(
    client: TestClient, content: bytes, why: str
) -> None:
    response = client.post(
        ORDERS, content=content, headers={**auth("trader"), "Content-Type": "application/json"}
    )

    assert response.status_code == 400, response.text
    assert _error(response)["message"] == f"the body cannot be read as JSON: it {why}"


@pytest.mark.parametrize(
    ("content_type", "said"),
    [
        (None, "no Content-Type was sent"),
        ("application/x-www-form-urlencoded", "'application/x-www-form-urlencoded'"),
        ("text/plain; charset=utf-8", "'text/plain; charset=utf-8'"),
    ],
)
def test_a_body_not_sent_as_json_is_a_415_saying_so(
    client: TestClient, service: FakeService, content_type: str | None, said: str
) -> None:
    headers = auth("trader") | ({} if content_type is None else {"Content-Type": content_type})

    response = client.post(ORDERS, content=json.dumps(market_order()), headers=headers)

    assert response.status_code == 415, response.text
    assert _error(response)["code"] == "unsupported_media_type"
    assert "Content-Type: application/json" in _error(response)["message"]
    assert said in _error(response)["message"]
    assert service.orders_by_id == {}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/x+json"])
def test_json_media_types_with_parameters_or_suffixes_are_json(
    client: TestClient, content_type: str
) -> None:
    response = client.post(
        ORDERS,
        content=json.dumps(market_order()),
        headers=auth("trader") | {"Content-Type": content_type},
    )

    assert response.status_code == 201, response.text


def test_a_json_body_of_the_wrong_shape_stays_a_422(client: TestClient) -> None:
    response = client.post(ORDERS, json=[market_order()], headers=auth("trader"))

    assert response.status_code == 422
    assert _fields(response) == ["body"]


def test_field_errors_carry_the_validators_words_only(client: TestClient) -> None:
    response = client.post(ORDERS, json=market_order(quantity="0"), headers=auth("trader"))

    assert _error(response)["details"][0]["message"] == "must be greater than 0"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PATCH", "/api/v1/orders/ord-000001", "DELETE, GET, PUT"),
        ("OPTIONS", ORDERS, "GET, POST"),
        ("PUT", "/api/v1/kill-switch", "GET, POST"),
    ],
)
def test_a_wrong_method_is_a_405_naming_every_method_of_the_path(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, path, headers=auth("admin"))

    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert _error(response)["message"] == f"{method} is not allowed on {path} (allowed: {allowed})"


@pytest.mark.parametrize("depth", [50, 900, 5000, 30_000])
@pytest.mark.parametrize(("opening", "closing"), [(b"[", b"]"), (b'{"a":', b"}")])
def test_deeply_nested_json_is_a_client_error(
    client: TestClient, depth: int, opening: bytes, closing: bytes
) -> None:
    content = opening * depth + b"1" + closing * depth

    response = client.post(
        ORDERS, content=content, headers={**auth("trader"), "Content-Type": "application/json"}
    )

    expected = {413} if len(content) > 64 * 1024 else {400, 422}
    assert response.status_code in expected
    assert _error(response)["code"]


def test_get_and_list_orders_with_filters(client: TestClient) -> None:
    accepted = client.post(ORDERS, json=market_order(), headers=auth("trader")).json()
    rejected = client.post(ORDERS, json=market_order(quantity="5000"), headers=auth("trader"))

    one = client.get(f"{ORDERS}/{accepted['order_id']}", headers=auth("reader"))
    every = client.get(ORDERS, headers=auth("reader")).json()["orders"]
    open_only = client.get(ORDERS, params={"open": "true"}, headers=auth("reader"))
    by_status = client.get(ORDERS, params={"status": "rejected"}, headers=auth("reader"))
    limited = client.get(ORDERS, params={"limit": 1}, headers=auth("reader"))

    assert one.json() == accepted
    assert ids(every) == [accepted["order_id"], rejected.json()["order_id"]]
    assert ids(open_only.json()["orders"]) == [accepted["order_id"]]
    assert ids(by_status.json()["orders"]) == [rejected.json()["order_id"]]
    assert len(limited.json()["orders"]) == 1


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "sleeping"}, "query.status"),
        ({"limit": 0}, "query.limit"),
        ({"limit": 10**12}, "query.limit"),
        ({"open": "maybe"}, "query.open"),
    ],
)
def test_bad_query_parameters_are_422(
    client: TestClient, params: dict[str, Any], field: str
) -> None:
    assert _fields(client.get(ORDERS, params=params, headers=auth("reader"))) == [field]


def test_unknown_order_is_404(client: TestClient) -> None:
    response = client.get(f"{ORDERS}/ord-424242", headers=auth("reader"))

    assert response.status_code == 404
    assert _error(response) == {
        "code": "not_found",
        "message": "no order 'ord-424242' in account 'alpha'",
        "details": [],
    }


def test_cancel_then_cancel_again_is_409(client: TestClient) -> None:
    order_id = client.post(ORDERS, json=market_order(), headers=auth("trader")).json()["order_id"]

    first = client.delete(f"{ORDERS}/{order_id}", headers=auth("trader"))
    second = client.delete(f"{ORDERS}/{order_id}", headers=auth("trader"))

    assert first.status_code == 200
    assert (first.json()["status"], first.json()["reason"]) == ("cancelled", "cancel_requested")
    assert second.status_code == 409
    assert _error(second)["code"] == "conflict"


def test_replace_answers_the_new_order_linked_to_the_old(client: TestClient) -> None:
    old = client.post(
        ORDERS, json=market_order(order_type="limit", limit_price="95.5"), headers=auth("trader")
    ).json()

    new = client.put(
        f"{ORDERS}/{old['order_id']}", json={"limit_price": "96"}, headers=auth("trader")
    )
    old_after = client.get(f"{ORDERS}/{old['order_id']}", headers=auth("reader")).json()

    assert new.status_code == 200
    assert (new.json()["replaces"], new.json()["limit_price"]) == (old["order_id"], "96")
    assert (old_after["status"], old_after["replaced_by"]) == ("cancelled", new.json()["order_id"])


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "body"), ({"quantity": "-3"}, "body.quantity"), ({"side": "sell"}, "body.side")],
)
def test_bad_replace_bodies_are_422(client: TestClient, body: dict[str, Any], field: str) -> None:
    assert field in _fields(client.put(f"{ORDERS}/ord-1", json=body, headers=auth("trader")))


def test_bad_order_id_in_the_path_is_422(client: TestClient) -> None:
    response = client.get(f"{ORDERS}/{'x' * 200}", headers=auth("reader"))

    assert _fields(response) == ["path.order_id"]


# ------------------------------------------------------------------ batch


def test_batch_answers_one_result_per_order(client: TestClient, service: FakeService) -> None:
    client.post(ORDERS, json=market_order(client_order_id="taken"), headers=auth("trader"))
    batch = {
        "orders": [
            market_order(),
            market_order(quantity="5000"),
            market_order(client_order_id="taken", quantity="3"),
            market_order(client_order_id="taken"),
        ]
    }

    response = client.post(f"{ORDERS}/batch", json=batch, headers=auth("trader"))

    results = response.json()["results"]
    assert response.status_code == 200
    assert [result["status"] for result in results] == [201, 201, 409, 200]
    assert [result["index"] for result in results] == [0, 1, 2, 3]
    assert results[1]["order"]["status"] == "rejected"
    assert results[2]["order"] is None
    assert results[2]["error"]["code"] == "conflict"
    assert len(service.orders_by_id) == 3


def test_batch_with_an_idempotency_key_replays_every_item(client: TestClient) -> None:
    headers = {**auth("trader"), "Idempotency-Key": "batch-1"}
    batch = {"orders": [market_order(), market_order(side="sell")]}

    first = client.post(f"{ORDERS}/batch", json=batch, headers=headers).json()["results"]
    again = client.post(f"{ORDERS}/batch", json=batch, headers=headers).json()["results"]

    assert [r["status"] for r in first] == [201, 201]
    assert [r["status"] for r in again] == [200, 200]
    assert ids([r["order"] for r in again]) == ids([r["order"] for r in first])


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        ({"orders": []}, "body.orders"),
        ({"orders": [market_order()] * 101}, "body.orders"),
        ({"orders": [market_order(), market_order(side="up")]}, "body.orders.1.side"),
        ([market_order()], "body"),
    ],
)
def test_bad_batches_are_422_and_submit_nothing(
    client: TestClient, service: FakeService, batch: object, field: str
) -> None:
    response = client.post(f"{ORDERS}/batch", json=batch, headers=auth("trader"))

    assert field in _fields(response)
    assert service.orders_by_id == {}


# ------------------------------------------------------------------ bars, fills, positions


def test_bars_fill_orders_and_update_positions_and_account(client: TestClient) -> None:
    order = client.post(ORDERS, json=market_order(), headers=auth("trader")).json()

    bars = client.post(
        "/api/v1/market/bars",
        json=[bar("2024-01-02T14:30:00Z", price=100.0), bar("2024-01-02T14:31:00Z", price=102.0)],
        headers=auth("admin"),
    )
    fills = client.get("/api/v1/fills", headers=auth("reader")).json()["fills"]
    only = client.get(
        "/api/v1/fills", params={"order_id": "ord-000999"}, headers=auth("reader")
    ).json()["fills"]
    positions = client.get("/api/v1/positions", headers=auth("reader")).json()["positions"]
    account = client.get("/api/v1/account", headers=auth("reader")).json()

    # 10 units bought at the first bar's open (100); marked at the last close (102).
    assert bars.status_code == 200
    assert bars.json()["bars"] == 2
    assert [fill["order_id"] for fill in bars.json()["fills"]] == [order["order_id"]]
    assert fills == bars.json()["fills"]
    assert (fills[0]["quantity"], Decimal(fills[0]["price"])) == ("10", Decimal(100))
    assert fills[0]["ts_ns"] == 1_704_205_800 * 10**9  # 2024-01-02T14:30:00Z
    assert only == []
    assert Decimal(positions[0]["quantity"]) == 10
    assert Decimal(positions[0]["market_value"]) == 1020
    assert Decimal(positions[0]["unrealized_pnl"]) == 20
    assert Decimal(account["cash"]) == 99_000
    assert Decimal(account["equity"]) == 100_020
    assert (account["open_orders"], account["kill_switch"]) == (0, False)


def test_a_single_bar_object_is_accepted(client: TestClient, service: FakeService) -> None:
    response = client.post("/api/v1/market/bars", json=bar(5), headers=auth("admin"))

    assert response.json() == {"bars": 1, "fills": []}
    assert service.bars == [("AAPL", Bar(5, 100.0, 101.0, 99.0, 100.0, 1000.0))]


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1970-01-01T00:00:01Z", 10**9),
        ("2024-01-02", 1_704_153_600 * 10**9),
        ("2024-01-02T14:30:00.123456789Z", 1_704_205_800 * 10**9 + 123_456_789),
        ("2024-01-02T16:30:00+02:00", 1_704_205_800 * 10**9),
        ("2024-01-02 09:30-0500", 1_704_205_800 * 10**9),
        (17, 17),
    ],
)
def test_bar_timestamps(text: object, ns: int) -> None:
    assert parse_timestamp_ns(text) == ns


@pytest.mark.parametrize(
    ("bars", "field"),
    [
        (bar("2024-01-02T14:30:00"), "body.bar.ts"),  # naive
        (bar("2024-02-30"), "body.bar.ts"),
        (bar(-1), "body.bar.ts"),
        (bar(2**63), "body.bar.ts"),
        (bar(1.5), "body.bar.ts"),
        (bar("1969-12-31T23:59:59Z"), "body.bar.ts"),
        ({**bar(1), "high": 99.5}, "body.bar"),
        ({**bar(1), "low": 100.5}, "body.bar"),
        ({**bar(1), "open": float("nan")}, "body.bar.open"),
        ({**bar(1), "open": 0}, "body.bar.open"),
        ({**bar(1), "close": "100"}, "body.bar.close"),
        ({**bar(1), "volume": -1}, "body.bar.volume"),
        ({**bar(1), "close": 10**30}, "body.bar.close"),
        ([bar(2), bar(1, symbol="MSFT"), bar(1)], "body.bars.2.ts"),
        ([bar(3), bar(3)], "body.bars.1.ts"),
        (
            [
                {"symbol": "A", "ts": i, "open": 1, "high": 1, "low": 1, "close": 1}
                for i in range(1001)
            ],
            "body.bars",
        ),
        ([], "body.bars"),
    ],
)
def test_bad_bars_are_422(
    client: TestClient, service: FakeService, bars: object, field: str
) -> None:
    content = json.dumps(bars, allow_nan=True, separators=(",", ":")).encode()

    response = client.post(
        "/api/v1/market/bars",
        content=content,
        headers={**auth("admin"), "Content-Type": "application/json"},
    )

    assert any(name.startswith(field) for name in _fields(response)), _fields(response)
    assert service.bars == []


class _Recorder:
    def __init__(self, service: FakeService) -> None:
        self.service = service
        self.seen: list[tuple[str, Bar, int]] = []

    async def on_bars(self, bars: Sequence[tuple[str, Bar]]) -> None:
        self.seen.extend((symbol, item, len(self.service.bars)) for symbol, item in bars)


def test_strategies_see_bars_after_the_execution_service() -> None:
    service = FakeService()
    recorder = _Recorder(service)
    with make_client(service, strategies_backend=recorder) as client:
        client.post(
            "/api/v1/market/bars", json=[bar(1), bar(2, symbol="MSFT")], headers=auth("admin")
        )

    assert [(symbol, item.ts) for symbol, item, _ in recorder.seen] == [("AAPL", 1), ("MSFT", 2)]
    assert all(applied == 2 for _, _, applied in recorder.seen)


# ------------------------------------------------------------------ kill switch


def test_kill_switch_cancels_open_orders_and_blocks_new_ones(
    client: TestClient, service: FakeService
) -> None:
    order = client.post(ORDERS, json=market_order(), headers=auth("trader")).json()

    engaged = client.post(
        "/api/v1/kill-switch", json={"engaged": True, "reason": "drill"}, headers=auth("admin")
    )
    state = client.get("/api/v1/kill-switch", headers=auth("reader")).json()
    blocked = client.post(ORDERS, json=market_order(), headers=auth("trader")).json()
    released = client.post("/api/v1/kill-switch", json={"engaged": False}, headers=auth("admin"))

    assert engaged.status_code == 200
    assert engaged.json()["engaged"] is True
    assert engaged.json()["account"] == "alpha"
    assert ids(engaged.json()["cancelled"]) == [order["order_id"]]
    assert state == {"account": "alpha", "engaged": True, "all_accounts_engaged": False}
    assert (blocked["status"], blocked["reason"]) == ("rejected", "kill_switch")
    assert released.json() == {
        "engaged": False,
        "account": "alpha",
        "all_accounts_engaged": False,
        "cancelled": [],
    }
    assert service.kill_reasons == ["drill", "kill switch set by API key admin"]


def test_releasing_one_account_under_the_global_switch_says_what_still_blocks(
    client: TestClient,
) -> None:
    admin = auth("admin")
    client.post("/api/v1/kill-switch", json={"engaged": True, "all_accounts": True}, headers=admin)

    released = client.post("/api/v1/kill-switch", json={"engaged": False}, headers=admin).json()
    lifted = client.post(
        "/api/v1/kill-switch", json={"engaged": False, "all_accounts": True}, headers=admin
    ).json()

    # The account's own switch is off, but the global one still blocks its orders.
    assert (released["engaged"], released["all_accounts_engaged"]) == (True, True)
    assert (lifted["engaged"], lifted["account"], lifted["all_accounts_engaged"]) == (
        False,
        None,
        False,
    )


def test_kill_switch_for_every_account(client: TestClient) -> None:
    other = client.post(ORDERS, json=market_order(), headers=auth("other")).json()

    response = client.post(
        "/api/v1/kill-switch", json={"engaged": True, "all_accounts": True}, headers=auth("admin")
    )
    state = client.get("/api/v1/kill-switch", headers=auth("other")).json()

    assert response.json()["account"] is None
    assert ids(response.json()["cancelled"]) == [other["order_id"]]
    assert state == {"account": "beta", "engaged": True, "all_accounts_engaged": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"engaged": "yes"}, "body.engaged"),
        ({"engaged": 1}, "body.engaged"),
        ({}, "body.engaged"),
        ({"engaged": True, "reason": "r" * 201}, "body.reason"),
        ({"engaged": True, "reason": "tab\there"}, "body.reason"),
        ({"engaged": True, "all_accounts": "true"}, "body.all_accounts"),
    ],
)
def test_bad_kill_switch_bodies_are_422(
    client: TestClient, body: dict[str, Any], field: str
) -> None:
    response = client.post("/api/v1/kill-switch", json=body, headers=auth("admin"))

    assert _fields(response) == [field]


# ------------------------------------------------------------------ body limits (ASGI level)


def _call(
    app: Any,
    *,
    method: str,
    headers: list[tuple[bytes, bytes]],
    chunks: Iterator[bytes],
    path: str = ORDERS,
    root_path: str = "",
) -> tuple[int, dict[bytes, bytes], bytes, int]:
    """Drive ``app`` directly; return (status, response headers, body, receive calls)."""
    sent: list[dict[str, Any]] = []
    calls = 0

    async def receive() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    start = next(message for message in sent if message["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body, calls


def _trader_headers(*extra: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    token = auth("trader")["Authorization"].encode()
    return [(b"authorization", token), (b"content-type", b"application/json"), *extra]


def _endless() -> Iterator[bytes]:
    while True:
        yield b" " * 1024


def test_content_length_above_the_limit_is_413_before_reading_the_body() -> None:
    app = create_app(
        InProcessBackend(FakeService()),
        keys=make_keys(),
        max_body_bytes=4096,
    )

    status, headers, body, calls = _call(
        app,
        method="POST",
        headers=_trader_headers((b"content-length", b"10000000")),
        chunks=_endless(),
    )

    assert status == 413
    assert calls == 0
    assert headers[b"x-tradepulse-version"] == b"0.1.0"
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_a_streamed_body_is_cut_off_at_the_limit() -> None:
    app = create_app(
        InProcessBackend(FakeService()),
        keys=make_keys(),
        max_body_bytes=4096,
    )

    status, _, body, calls = _call(app, method="POST", headers=_trader_headers(), chunks=_endless())

    assert status == 413
    assert calls == 5  # 4 KiB fit; the fifth 1 KiB chunk crosses the limit
    assert json.loads(body)["error"]["code"] == "payload_too_large"


def test_without_a_key_a_huge_body_is_never_read() -> None:
    app = create_app(InProcessBackend(FakeService()), keys=make_keys())

    status, _, _, calls = _call(
        app, method="POST", headers=[(b"content-length", b"99999999")], chunks=_endless()
    )

    assert (status, calls) == (401, 0)


@pytest.mark.parametrize("length", [b"abc", b"-1", b"1" * 30])
def test_malformed_content_length_is_400(length: bytes) -> None:
    app = create_app(InProcessBackend(FakeService()), keys=make_keys())

    status, _, _, calls = _call(
        app, method="POST", headers=_trader_headers((b"content-length", length)), chunks=_endless()
    )

    assert (status, calls) == (400, 0)


def test_streamed_body_within_the_limit_works(client: TestClient) -> None:
    chunks = iter([json.dumps(market_order()).encode()])

    response = client.post(
        ORDERS, content=chunks, headers={**auth("trader"), "Content-Type": "application/json"}
    )

    assert response.status_code == 201


# ------------------------------------------------------------------ errors and extension


class _Exploding(InProcessBackend):
    def __init__(self, error: BaseException) -> None:
        super().__init__(FakeService())
        self.error = error

    async def order(self, order_id: str, *, account: str) -> Any:
        raise self.error


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (OrderNotFoundError("gone"), 404, "not_found"),
        (OrderConflictError("done"), 409, "conflict"),
        (OrderStateError("filled"), 409, "conflict"),
        (OrderError("bad order"), 422, "invalid_request"),
        (ConfigError("bad value"), 422, "invalid_request"),
        (DataError("journal write failed"), 503, "service_unavailable"),
    ],
)
def test_service_errors_map_to_statuses(error: TradePulseError, status: int, code: str) -> None:
    with make_client(_Exploding(error)) as client:
        response = client.get(f"{ORDERS}/ord-1", headers=auth("reader"))

    assert response.status_code == status
    assert _error(response) == {"code": code, "message": str(error), "details": []}
    assert response.headers.get("Retry-After") == ("1" if status == 503 else None)
    assert classify_error(error) == ServiceFailure(status, code, str(error))


def test_classify_error_leaves_bugs_alone() -> None:
    assert classify_error(KeyError("x")) is None


def test_an_unexpected_exception_is_a_500_with_the_version_and_still_raises() -> None:
    with make_client(_Exploding(KeyError("bug"))) as client, pytest.raises(KeyError):
        client.get(f"{ORDERS}/ord-1", headers=auth("reader"))
    with make_client(_Exploding(KeyError("bug")), raise_server_exceptions=False) as client:
        response = client.get(f"{ORDERS}/ord-1", headers=auth("reader"))

    assert response.status_code == 500
    assert response.headers[VERSION] == "0.1.0"
    assert _error(response)["code"] == "internal_error"
    assert "bug" not in response.text


def test_extension_routers_get_auth_versioning_and_errors() -> None:
    router = APIRouter()

    @router.get("/strategies")
    async def list_strategies() -> dict[str, list[str]]:
        return {"strategies": []}

    @router.post("/strategies/reset", openapi_extra=requires(Scope.ADMIN))
    async def reset(body: dict[str, int]) -> dict[str, int]:
        return body

    with make_client(FakeService(), routers=[router]) as client:
        anonymous = client.get("/api/v1/strategies")
        listed = client.get("/api/v1/strategies", headers=auth("reader"))
        trader_junk = client.post(
            "/api/v1/strategies/reset", content=b"\x00junk", headers=auth("trader")
        )
        admin = client.post("/api/v1/strategies/reset", json={"a": 1}, headers=auth("admin"))

    assert anonymous.status_code == 401
    assert listed.json() == {"strategies": []}
    assert listed.headers[VERSION] == "0.1.0"
    assert trader_junk.status_code == 403
    assert admin.json() == {"a": 1}


def test_offloaded_backend_answers_the_same(service: FakeService) -> None:
    with make_client(InProcessBackend(service, offload=True)) as client:
        created = client.post(ORDERS, json=market_order(), headers=auth("trader"))
        listed = client.get(ORDERS, headers=auth("reader"))

    assert created.status_code == 201
    assert ids(listed.json()["orders"]) == [created.json()["order_id"]]


def test_openapi_declares_the_scope_and_security_of_every_operation(client: TestClient) -> None:
    document = client.get("/api/v1/openapi.json").json()

    scopes = {
        (method.upper(), path): operation["x-required-scope"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    secured = [
        operation
        for item in document["paths"].values()
        for operation in item.values()
        if operation["x-required-scope"] != "public"
    ]

    assert scopes[("POST", "/api/v1/kill-switch")] == "admin"
    assert scopes[("GET", "/api/v1/health")] == "public"
    assert {scope for (method, _), scope in scopes.items() if method != "GET"} == {
        "trade",
        "admin",
    }
    assert all(op["security"] == [{"apiKey": [op["x-required-scope"]]}] for op in secured)
    assert document["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_openapi_declares_415_on_body_routes_and_503_with_retry_after_on_guarded_ones(
    client: TestClient,
) -> None:
    document = client.get("/api/v1/openapi.json").json()
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    with_body = {name for name, operation in operations.items() if "requestBody" in operation}
    guarded = {
        name for name, operation in operations.items() if operation["x-required-scope"] != "public"
    }

    assert ("POST", "/api/v1/orders") in with_body
    assert ("PUT", "/api/v1/orders/{order_id}") in with_body
    assert ("GET", "/api/v1/orders") in guarded - with_body
    declared_415 = {name for name, op in operations.items() if "415" in op["responses"]}
    declared_503 = {name for name, op in operations.items() if "503" in op["responses"]}
    assert declared_415 == with_body
    assert declared_503 == guarded | {("GET", "/api/v1/ready")}
    for name in declared_503:
        retry = operations[name]["responses"]["503"]["headers"]["Retry-After"]
        assert retry["schema"] == {"type": "integer"}, name


def test_a_503_keeps_a_retry_after_it_was_given() -> None:
    given = error_response(503, "busy", headers={"retry-after": "7"})
    plain = error_response(503, "busy")
    other = error_response(409, "taken")

    assert given.headers["Retry-After"] == "7"
    assert plain.headers["Retry-After"] == "1"
    assert "Retry-After" not in other.headers


def test_round_trip_over_the_real_execution_service() -> None:
    # A limit buy of 10 at 100; the next bar opens at 100 (low 99): it fills 10 at 100.
    with make_client(InProcessBackend(real_service())) as client:
        order = client.post(
            ORDERS, json=market_order(order_type="limit", limit_price="100"), headers=auth("trader")
        )
        bars = client.post("/api/v1/market/bars", json=bar(10**9), headers=auth("admin"))
        account = client.get("/api/v1/account", headers=auth("reader")).json()
        replay = client.post("/api/v1/market/bars", json=bar(10**9), headers=auth("admin"))
        cancel = client.delete(f"{ORDERS}/{order.json()['order_id']}", headers=auth("trader"))
        missing = client.get(f"{ORDERS}/ord-999999", headers=auth("reader"))

    assert (order.status_code, order.json()["status"]) == (201, "accepted")
    assert [(f["quantity"], Decimal(f["price"])) for f in bars.json()["fills"]] == [("10", 100)]
    assert Decimal(account["cash"]) + Decimal(account["commission"]) == 99_000
    assert replay.json() == {"bars": 1, "fills": []}  # an old bar is ignored
    assert cancel.status_code == 409  # already filled
    assert missing.status_code == 404


def test_scopes_hold_under_a_root_path() -> None:
    # Behind a proxy prefix (Serve's route_prefix), the kill switch still needs admin.
    app = create_app(InProcessBackend(FakeService()), keys=make_keys())
    body = iter([b'{"engaged": true}'])

    status, _, _, _ = _call(
        app,
        method="POST",
        headers=_trader_headers(),
        chunks=body,
        path="/api/v1/kill-switch",
        root_path="/trading",
    )

    assert status == 403


class _Miscounting(InProcessBackend):
    async def submit_batch(self, items: Sequence[Any], *, account: str) -> list[Any]:
        return []


def test_a_backend_losing_batch_results_is_a_bug_not_a_client_error() -> None:
    with (
        make_client(_Miscounting(FakeService())) as client,
        pytest.raises(RuntimeError, match="0 results for 1 orders"),
    ):
        client.post(f"{ORDERS}/batch", json={"orders": [market_order()]}, headers=auth("trader"))


def test_in_process_backend_single_bar_and_repr(service: FakeService) -> None:
    backend = InProcessBackend(service)
    service.submit(OrderRequest(symbol="AAPL", side=Side.BUY, quantity=Decimal(2)), account="alpha")

    fills = asyncio.run(backend.on_bar("AAPL", Bar(1, 10.0, 11.0, 9.0, 10.5, 100.0)))

    assert [(fill.quantity, fill.price) for fill in fills] == [(Decimal(2), Decimal(10))]
    assert backend.service is service
    assert "offload=False" in repr(backend)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (Decimal("NaN"), "finite"),
        (Decimal("-2"), "greater than 0"),
        (None, "decimal number"),
        ("abc", "decimal number"),
    ],
)
def test_parse_amount_errors(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_amount(value)


def test_bad_order_type_is_reported_once(client: TestClient) -> None:
    response = client.post(
        ORDERS, json=market_order(order_type="iceberg", limit_price="5"), headers=auth("trader")
    )

    assert _fields(response) == ["body.order_type"]


def test_float_bar_prices_above_the_bound_are_422(client: TestClient) -> None:
    response = client.post(
        "/api/v1/market/bars", json={**bar(1), "high": 1e16}, headers=auth("admin")
    )

    assert _fields(response) == ["body.bar.high"]
