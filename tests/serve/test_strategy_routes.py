"""``/api/v1/strategies`` and the bar pipeline, in process (runners in this process, no Ray).

The app is the production one (:func:`create_trading_app` over a journal in
``tmp_path``) with the runners in process, so every test sees the real
execution service, journal, registry and metrics. Parity is checked against
``run_event`` on the shipped S&P 500 bars, with the service refusing some
orders (a maximum order quantity): the same limit given to the backtest must
give the same orders, the same refusals and the same fills.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.exceptions import StarletteDeprecationWarning
from strategy_support import bar_bodies

from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.data import load_bars
from tradepulse.execution import RiskLimits
from tradepulse.live import RunnerClient
from tradepulse.serve.auth import hash_secret
from tradepulse.serve.deployment import TradingApp, create_trading_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

REPO = Path(__file__).resolve().parents[2]
SECRETS = {
    "trader": "trader-secret-0002",
    "reader": "reader-secret-0001",
    "other": "other-00004",
    "feed": "feed-admin-00005",
}
KEYS = (
    {
        "id": "trader",
        "scopes": ["trade"],
        "secret_sha256": hash_secret(SECRETS["trader"]),
        "account": "alpha",
    },
    {
        "id": "reader",
        "scopes": ["read"],
        "secret_sha256": hash_secret(SECRETS["reader"]),
        "account": "alpha",
    },
    {
        "id": "other",
        "scopes": ["trade"],
        "secret_sha256": hash_secret(SECRETS["other"]),
        "account": "beta",
    },
    # POST /market/bars moves every account's market: it needs admin.
    {"id": "feed", "scopes": ["admin"], "secret_sha256": hash_secret(SECRETS["feed"])},
)
STRATEGIES = "/api/v1/strategies"
BARS = "/api/v1/market/bars"
#: The service's refusals of SERVICE, as the backtest's pre-trade limits.
LIMITS = RiskLimits(max_order_quantity=Decimal(79), margin_rate=None)
INSTRUMENT = {"price_increment": "0.01", "quantity_increment": "0.0001", "cash_increment": "0.01"}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRETS.get(name, 'not-a-key-at-all')}"}


class Server:
    """The app over a journal in a folder, restartable on the same journal."""

    def __init__(self, folder: Path, service: str, runners: RunnerClient | None = None) -> None:
        self.runners = runners
        self.config = folder / "service.yaml"
        self.config.write_text(service)
        self.args = {
            "journal": str(folder / "journal.sqlite"),
            "journal_sync": "normal",
            "service_config": str(self.config),
            "api_keys": KEYS,
        }
        self.trading: TradingApp | None = None
        self.client: TestClient | None = None

    def __enter__(self) -> TestClient:
        self.trading = create_trading_app(self.args, runners=self.runners)
        self.client = TestClient(self.trading.app, base_url="http://127.0.0.1").__enter__()
        return self.client

    def __exit__(self, *exc: object) -> None:
        assert self.client is not None
        assert self.trading is not None
        assert self.trading.strategies is not None
        self.client.__exit__(None, None, None)
        self.trading.service.journal.close()
        self.trading.strategies.registry.close()


SERVICE = f"""
commission_rate: "0.0005"
instruments: {{SPX: {INSTRUMENT}, NDX: {INSTRUMENT}}}
default_instrument: reject
risk: {{margin_rate: null, max_order_quantity: "79"}}
"""


@pytest.fixture(scope="module")
def sp500() -> pl.DataFrame:
    return load_bars(REPO / "golden" / "data" / "sp500_daily.csv").head(400)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TestClient]:
    with Server(tmp_path, SERVICE) as client:
        yield client


def post_bars(client: TestClient, bodies: Sequence[dict[str, Any]], batch: int = 50) -> int:
    fills = 0
    for start in range(0, len(bodies), batch):
        response = client.post(BARS, json=list(bodies[start : start + batch]), headers=auth("feed"))
        assert response.status_code == 200, response.text
        fills += len(response.json()["fills"])
    return fills


def strategy_orders(
    client: TestClient, strategy_id: str, key: str = "reader"
) -> list[tuple[object, ...]]:
    orders = client.get("/api/v1/orders?limit=10000", headers=auth(key)).json()["orders"]
    return [
        (
            order["client_order_id"].removeprefix(f"{strategy_id}:"),
            order["side"],
            order["order_type"],
            Decimal(order["quantity"]),
            order["status"],
            Decimal(order["filled_quantity"]),
            None if order["average_fill_price"] is None else Decimal(order["average_fill_price"]),
        )
        for order in orders
        if order["strategy"] == strategy_id
    ]


def backtest_orders(
    bars: pl.DataFrame, plugin: str, params: dict[str, Any], **extra: Any
) -> list[tuple[object, ...]]:
    strategy = resolve_strategy(plugin)
    from tradepulse.domain import Instrument

    result = run_event(
        bars,
        strategy,
        resolve_params(strategy, params),
        fast_fills=False,
        cash=100_000.0,
        commission=0.0005,
        instrument=Instrument(symbol="SPX", **{k: Decimal(v) for k, v in INSTRUMENT.items()}),
        **extra,
    )
    assert result.orders is not None
    return [
        (
            row["order_id"],
            row["side"],
            row["order_type"],
            Decimal(repr(row["quantity"])),
            row["status"],
            Decimal(repr(row["filled_quantity"])),
            None if row["average_price"] is None else Decimal(repr(row["average_price"])),
        )
        for row in result.orders.iter_rows(named=True)
    ]


# ------------------------------------------------------------------ definitions


def test_openapi_declares_where_503_and_415_can_come_from(server: TestClient) -> None:
    paths = server.get("/api/v1/openapi.json").json()["paths"]

    def statuses(method: str, path: str) -> set[str]:
        return set(paths[f"/api/v1{path}"][method]["responses"])

    one = "/strategies/{strategy_id}"
    # The routes that reach the runner or the service can be unavailable...
    for method, path in (("post", "/strategies"), ("get", one), ("delete", one)):
        assert "503" in statuses(method, path), (method, path)
        headers = paths[f"/api/v1{path}"][method]["responses"]["503"]["headers"]
        assert "Retry-After" in headers
    # ...the in-memory list and the metrics scrape never are.
    assert "503" not in statuses("get", "/strategies")
    assert "503" not in statuses("get", "/metrics")
    assert "415" in statuses("post", "/strategies")
    assert "415" not in statuses("delete", one)


def test_creating_needs_a_trade_key_whatever_the_body(server: TestClient) -> None:
    assert server.post(STRATEGIES, json={"plugin": "sma_cross", "symbol": "SPX"}).status_code == 401
    assert server.post(STRATEGIES, content=b"junk", headers=auth("reader")).status_code == 403
    assert server.delete(f"{STRATEGIES}/s1", headers=auth("reader")).status_code == 403
    assert server.get(STRATEGIES).status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"plugin": "no_such_strategy", "symbol": "SPX"}, "body.plugin"),
        ({"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": 0}}, "body.params.fast"),
        (
            {"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": 40, "slow": 30}},
            "body.params",
        ),
        ({"plugin": "sma_cross", "symbol": "SPX", "params": {"nope": 1}}, "body.params.nope"),
        ({"plugin": "sma_cross", "symbol": "UNKNOWN"}, "body.symbol"),
        ({"plugin": "sma_cross", "symbol": "SPX", "cash": "-5"}, "body.cash"),
        ({"plugin": "sma_cross", "symbol": "SPX", "id": "no spaces"}, "body.id"),
        ({"plugin": "sma_cross"}, "body.symbol"),
    ],
)
def test_a_bad_definition_is_a_422_naming_the_field(
    server: TestClient, body: dict[str, Any], field: str
) -> None:
    response = server.post(STRATEGIES, json=body, headers=auth("trader"))

    assert response.status_code == 422, response.text
    fields = [detail["field"] for detail in response.json()["error"]["details"]]
    assert any(name.startswith(field) for name in fields), fields
    assert server.get(STRATEGIES, headers=auth("reader")).json() == {"strategies": []}


def test_create_list_get_and_an_idempotent_retry(server: TestClient) -> None:
    body = {
        "plugin": "sma_cross",
        "symbol": "SPX",
        "params": {"fast": 5, "slow": 20},
        "id": "trend",
    }

    created = server.post(STRATEGIES, json=body, headers=auth("trader"))
    again = server.post(STRATEGIES, json=body, headers=auth("trader"))
    clash = server.post(STRATEGIES, json={**body, "params": {"fast": 6}}, headers=auth("trader"))
    generated = server.post(
        STRATEGIES, json={"plugin": "rsi_reversion", "symbol": "SPX"}, headers=auth("trader")
    )
    one = server.get(f"{STRATEGIES}/trend", headers=auth("reader"))
    mine = server.get(STRATEGIES, headers=auth("reader")).json()["strategies"]
    theirs = server.get(STRATEGIES, headers=auth("other")).json()["strategies"]
    hidden = server.get(f"{STRATEGIES}/trend", headers=auth("other"))

    assert (created.status_code, again.status_code, clash.status_code) == (201, 200, 409)
    assert created.json()["params"] == {
        "fast": 5,
        "slow": 20,
        "direction": "long",
    }  # defaults filled
    assert again.json()["created_ns"] == created.json()["created_ns"]
    assert generated.json()["id"] == "s2"
    assert one.status_code == 200
    assert one.json()["runner"]["status"] == "new"  # asked of the runner: no bar yet
    assert one.json()["runner"]["cash"] == 100_000.0
    assert [item["id"] for item in mine] == ["trend", "s2"]
    assert theirs == []
    assert hidden.status_code == 404


# ------------------------------------------------------------------ trading


def test_orders_equal_the_backtests_with_the_services_refusals(
    server: TestClient, sp500: pl.DataFrame
) -> None:
    # 79 units is about what 100,000 buys at 1,260: some targets' legs are
    # refused by the service's max_order_quantity, as by the backtest's risk check.
    sma = server.post(
        STRATEGIES, json={"plugin": "sma_cross", "symbol": "SPX"}, headers=auth("trader")
    )
    rsi = server.post(
        STRATEGIES, json={"plugin": "rsi_reversion", "symbol": "SPX"}, headers=auth("other")
    )

    post_bars(server, bar_bodies(sp500), batch=40)

    expected = backtest_orders(sp500, "sma_cross", {}, risk=LIMITS)
    got = strategy_orders(server, sma.json()["id"])
    assert {row[4] for row in expected} == {"filled", "rejected"}  # refusals happened
    assert got == expected
    rsi_expected = backtest_orders(sp500, "rsi_reversion", {}, risk=LIMITS)
    assert strategy_orders(server, rsi.json()["id"], key="other") == rsi_expected
    state = server.get(f"{STRATEGIES}/{sma.json()['id']}", headers=auth("reader")).json()
    assert state["runner"]["bars"] == sp500.height
    assert state["first_ts"] == bar_bodies(sp500)[0]["ts"]
    assert state["last_heartbeat"] is not None
    assert sma.json()["last_bar"] is None  # created before any bar
    assert state["last_bar"] is not None
    assert state["last_bar"] <= state["last_heartbeat"]
    assert rsi.json()["account"] == "beta"


def test_a_bar_sent_again_changes_nothing(server: TestClient, sp500: pl.DataFrame) -> None:
    server.post(
        STRATEGIES,
        json={"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": 3, "slow": 8}},
        headers=auth("trader"),
    )
    bodies = bar_bodies(sp500.head(120))
    post_bars(server, bodies[:80], batch=80)
    before = strategy_orders(server, "s1")

    post_bars(server, bodies[60:80], batch=20)  # a client retrying a batch it lost
    post_bars(server, bodies[80:], batch=40)

    after = strategy_orders(server, "s1")
    assert after[: len(before)] == before
    assert after == backtest_orders(
        sp500.head(120), "sma_cross", {"fast": 3, "slow": 8}, risk=LIMITS
    )


def test_strategies_and_their_runners_survive_a_restart(
    tmp_path: Path, sp500: pl.DataFrame
) -> None:
    service = SERVICE.replace(', max_order_quantity: "79"', "")
    bodies = bar_bodies(sp500.head(200))
    with Server(tmp_path, service) as client:
        client.post(
            STRATEGIES,
            json={"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": 3, "slow": 8}},
            headers=auth("trader"),
        )
        post_bars(client, bodies[:90])

    with Server(tmp_path, service) as client:  # a new ingress: the runner rebuilds from the journal
        listed = client.get(STRATEGIES, headers=auth("reader")).json()["strategies"]
        post_bars(client, bodies[90:])
        orders = strategy_orders(client, "s1")

    assert [item["id"] for item in listed] == ["s1"]
    assert orders == backtest_orders(sp500.head(200), "sma_cross", {"fast": 3, "slow": 8})


def test_delete_stops_the_strategy_and_cancels_its_working_orders(
    tmp_path: Path, sp500: pl.DataFrame
) -> None:
    # A participation cap of ~1 unit per bar leaves the target's legs working.
    service = SERVICE.replace(', max_order_quantity: "79"', "") + "max_participation: 0.000000001\n"
    bodies = bar_bodies(sp500.head(60))
    with Server(tmp_path, service) as client:
        client.post(
            STRATEGIES,
            json={"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": 3, "slow": 8}},
            headers=auth("trader"),
        )
        post_bars(client, bodies[:40])
        working = client.get("/api/v1/orders?open=true", headers=auth("reader")).json()["orders"]
        scrape = client.get("/api/v1/metrics", headers=auth("reader")).text

        stopped = client.delete(f"{STRATEGIES}/s1", headers=auth("trader"))
        again = client.delete(f"{STRATEGIES}/s1", headers=auth("trader"))
        orders_stopped = strategy_orders(client, "s1")
        post_bars(client, bodies[40:])
        after = client.get("/api/v1/orders?open=true", headers=auth("reader")).json()["orders"]
        listed = client.get(STRATEGIES, headers=auth("reader")).json()["strategies"]
        scrape_after = client.get("/api/v1/metrics", headers=auth("reader")).text
        orders_after = strategy_orders(client, "s1")
        missing = client.delete(f"{STRATEGIES}/s1", headers=auth("other"))

    assert working, "legs still working under the participation cap"
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert sorted(stopped.json()["cancelled"]) == sorted(o["order_id"] for o in working)
    assert again.json()["cancelled"] == []
    assert after == []
    assert listed[0]["status"] == "stopped"
    assert orders_after == orders_stopped  # no order after the stop
    heartbeat = 'tradepulse_strategy_heartbeat_timestamp_seconds{strategy="s1"}'
    assert heartbeat in scrape
    assert heartbeat not in scrape_after
    assert missing.status_code == 404


def test_bars_of_other_symbols_pass_by_the_strategies(server: TestClient) -> None:
    server.post(STRATEGIES, json={"plugin": "sma_cross", "symbol": "SPX"}, headers=auth("trader"))

    def body(symbol: str, ts: int) -> dict[str, Any]:
        return {"symbol": symbol, "ts": ts, "open": 10.0, "high": 10.0, "low": 10.0, "close": 10.0}

    response = server.post(
        BARS,
        json=[body("NDX", 1), body("SPX", 1), body("NDX", 2), body("NDX", 3), body("SPX", 2)],
        headers=auth("feed"),
    )
    state = server.get(f"{STRATEGIES}/s1", headers=auth("reader")).json()["runner"]

    assert response.status_code == 200
    assert response.json()["bars"] == 5
    assert (state["bars"], state["last_ts"]) == (2, 2)


# ------------------------------------------------------------------ fuzzing


_LEAF = (
    st.none() | st.booleans() | st.integers(-(10**30), 10**30) | st.floats() | st.text(max_size=12)
)
_STRATEGY_BODIES = st.fixed_dictionaries(
    {
        "plugin": st.sampled_from(["sma_cross", "rsi_reversion", "bollinger_breakout"])
        | st.text(max_size=70),
        "symbol": st.sampled_from(["SPX", "NDX"]) | st.text(max_size=40),
    },
    optional={
        "params": st.dictionaries(
            st.sampled_from(["fast", "slow", "direction", "period", "window"])
            | st.text(max_size=70),
            _LEAF | st.lists(_LEAF, max_size=2),
            max_size=4,
        ),
        "id": st.text(max_size=40),
        "cash": _LEAF,
        "extra": _LEAF,
    },
)
_BAR_BODIES = st.lists(
    st.fixed_dictionaries(
        {
            "symbol": st.sampled_from(["SPX", "NDX"]),
            "ts": st.integers(0, 2**63 - 1),
            "open": st.floats(min_value=5e-324, max_value=1e15),
            "high": st.just(1e15),
            "low": st.just(5e-324),
            "close": st.floats(min_value=5e-324, max_value=1e15),
        },
        optional={"volume": st.floats(min_value=0, max_value=1e18)},
    ),
    min_size=1,
    max_size=5,
)
_JUNK = st.binary(max_size=200) | st.sampled_from(
    [b"NaN", b"[]", b"{}", b'{"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": NaN}}']
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    body=_STRATEGY_BODIES | _JUNK,
    key=st.sampled_from(["trader", "reader", "other", "none"]),
    strategy_id=st.text(max_size=40),
    bars=_BAR_BODIES,
)
def test_no_strategy_request_fails_the_server(
    fuzz_server: TestClient, body: object, key: str, strategy_id: str, bars: list[dict[str, Any]]
) -> None:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {**auth(key), "Content-Type": "application/json"}
    path = f"{STRATEGIES}/{quote(strategy_id, safe='') or 'x'}"

    responses = [
        fuzz_server.post(STRATEGIES, content=content, headers=headers),
        fuzz_server.post(BARS, json=bars, headers=headers),
        fuzz_server.get(path, headers=headers),
        fuzz_server.get(STRATEGIES, headers=headers),
        fuzz_server.delete(path, headers=headers),
    ]

    for response in responses:
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert set(response.json()["error"]) == {"code", "message", "details"}


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app with a strategy trading SPX, shared by the fuzzed requests."""
    with Server(tmp_path_factory.mktemp("fuzz"), SERVICE) as client:
        client.post(
            STRATEGIES,
            json={"plugin": "sma_cross", "symbol": "SPX", "params": {"fast": 2, "slow": 3}},
            headers=auth("trader"),
        )
        yield client
