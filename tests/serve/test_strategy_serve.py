"""Strategies on Ray Serve (issue 5, sections 2 and 6): parity with the backtest, a killed runner.

The live application runs on the session's Ray cluster exactly as ``serve/config.yaml``
builds it (the ingress with the execution service, and the autoscaling,
multiplexed ``StrategyRunners`` deployment), on a free 127.0.0.1 port with a
journal in a temporary folder. Bars of the shipped S&P 500 file go in through
``POST /api/v1/market/bars`` as a feed client sends them, and the orders the
service holds for each strategy must be ``run_event``'s (``fast_fills=False``,
same instrument and commission, no margin limit), field by field.

600 bars: a live runner recomputes its indicators over the bars it has seen at
every bar and a rebuilt one replays them all, so a replay costs quadratic time
in its length; 600 bars (2.4 years, tens of trades per strategy) keep the file
under ~30 s while covering warm-up, entries, exits and a rebuild mid-way.

The service checks margin against the previous close while the runner sizes a
target at the bar's open (as the backtest does), so with a margin limit a
fully invested target can be refused at the service and not in the backtest:
the service config here has ``margin_rate: null`` (documented in docs/live.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from strategy_support import bar_bodies, serve_app

from tradepulse.backtest.event import run_event
from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.cluster import ClusterInfo
from tradepulse.data import load_bars
from tradepulse.domain import Instrument
from tradepulse.serve.auth import hash_secret

REPO = Path(__file__).resolve().parents[2]
APP = "strategies-on-serve"
SECRET = "desk-secret-123456"
HEADERS = {"Authorization": f"Bearer {SECRET}"}
INCREMENTS = {"price_increment": "0.01", "quantity_increment": "0.0001", "cash_increment": "0.01"}
SERVICE = f"""
commission_rate: "0.0005"
instruments: {{SPX: {INCREMENTS}, ES: {INCREMENTS}}}
risk: {{margin_rate: null}}
"""
BARS = 600
BATCH = 50


@pytest.fixture(scope="module")
def sp500() -> pl.DataFrame:
    return load_bars(REPO / "golden" / "data" / "sp500_daily.csv").head(BARS)


@pytest.fixture(scope="module")
def api(ray_session: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Run the live application on Serve; yield its /api/v1 base URL."""
    from tradepulse.serve.settings import AppArgs

    folder = tmp_path_factory.mktemp("live")
    (folder / "service.yaml").write_text(SERVICE)
    args = AppArgs(
        journal=str(folder / "journal.sqlite"),
        journal_sync="normal",
        service_config=str(folder / "service.yaml"),
        # admin: the desk also feeds the bars (POST /market/bars needs admin).
        api_keys=({"id": "desk", "scopes": ["admin"], "secret_sha256": hash_secret(SECRET)},),
    )
    with serve_app(args, name=APP) as url:
        yield url


def _post_bars(client: httpx.Client, bodies: list[dict[str, Any]]) -> None:
    response = client.post("/market/bars", json=bodies)
    assert response.status_code == 200, response.text


Run = tuple[list[tuple[object, ...]], list[tuple[object, ...]]]


def _service_run(client: httpx.Client, strategy_id: str) -> Run:
    """Return the strategy's orders and fills as the service holds them."""
    orders = client.get("/orders", params={"limit": 10000}).json()["orders"]
    fills = client.get("/fills").json()["fills"]
    return (
        [
            (
                order["client_order_id"].removeprefix(f"{strategy_id}:"),
                order["side"],
                order["order_type"],
                Decimal(order["quantity"]),
                None if order["limit_price"] is None else Decimal(order["limit_price"]),
                order["status"],
                Decimal(order["filled_quantity"]),
                None
                if order["average_fill_price"] is None
                else Decimal(order["average_fill_price"]),
            )
            for order in orders
            if order["strategy"] == strategy_id
        ],
        [
            (fill["ts_ns"], fill["side"], Decimal(fill["quantity"]), Decimal(fill["price"]))
            for fill in fills
            if fill["strategy"] == strategy_id
        ],
    )


def _number(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(repr(value))


def _backtest_run(bars: pl.DataFrame, plugin: str, params: dict[str, Any], symbol: str) -> Run:
    """Return ``run_event``'s orders and fills on ``bars`` with the service's terms."""
    strategy = resolve_strategy(plugin)
    result = run_event(
        bars,
        strategy,
        resolve_params(strategy, params),
        fast_fills=False,
        cash=100_000.0,
        commission=0.0005,
        instrument=Instrument(symbol=symbol, **{k: Decimal(v) for k, v in INCREMENTS.items()}),
    )
    assert result.orders is not None
    ts = pl.col("ts").dt.epoch("ns")
    return (
        [
            (
                row["order_id"],
                row["side"],
                row["order_type"],
                _number(row["quantity"]),
                _number(row["limit_price"]),
                row["status"],
                _number(row["filled_quantity"]),
                _number(row["average_price"]),
            )
            for row in result.orders.iter_rows(named=True)
        ],
        [
            (row["ts_ns"], row["side"], _number(row["quantity"]), _number(row["price"]))
            for row in result.fills.with_columns(ts_ns=ts).iter_rows(named=True)
        ],
    )


def test_a_replayed_file_gives_the_backtests_orders_through_serve(
    api: str, sp500: pl.DataFrame
) -> None:
    with httpx.Client(base_url=api, headers=HEADERS, timeout=180) as client:
        created = [
            client.post("/strategies", json={"plugin": plugin, "symbol": "SPX"})
            for plugin in ("sma_cross", "rsi_reversion")
        ]
        assert [response.status_code for response in created] == [201, 201]
        bodies = bar_bodies(sp500, "SPX")
        started = time.perf_counter()
        for start in range(0, len(bodies), BATCH):
            _post_bars(client, bodies[start : start + BATCH])
        elapsed = time.perf_counter() - started
        results = {
            response.json()["plugin"]: (response.json()["id"], response.json()["params"])
            for response in created
        }
        states = [client.get(f"/strategies/{sid}").json() for sid, _ in results.values()]
        for plugin, (strategy_id, params) in results.items():
            expected = _backtest_run(sp500, plugin, params, "SPX")
            assert len(expected[0]) >= 2, plugin
            assert _service_run(client, strategy_id) == expected, plugin

    assert [state["runner"]["bars"] for state in states] == [BARS, BARS]
    assert all(state["runner"]["status"] == "running" for state in states)
    print(f"{BARS} bars, 2 strategies, through Serve in {elapsed:.1f} s")


def _runner_replicas() -> list[str]:
    import ray

    return sorted(
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if "StrategyRunners" in actor["name"]
    )


def test_a_killed_runner_replica_resumes_from_the_journal(api: str, sp500: pl.DataFrame) -> None:
    import ray

    params = {"fast": 5, "slow": 20}
    bodies = bar_bodies(sp500, "ES")
    with httpx.Client(base_url=api, headers=HEADERS, timeout=180) as client:
        created = client.post(
            "/strategies", json={"plugin": "sma_cross", "symbol": "ES", "params": params}
        )
        strategy_id = created.json()["id"]
        for start in range(0, 300, BATCH):
            _post_bars(client, bodies[start : start + BATCH])
        before = _runner_replicas()
        for name in before:  # every replica, so the strategy cannot be on a survivor
            ray.kill(ray.get_actor(name, namespace="serve"), no_restart=True)
        for start in range(300, len(bodies), BATCH):
            _post_bars(client, bodies[start : start + BATCH])
        after = _runner_replicas()
        run = _service_run(client, strategy_id)
        state = client.get(f"/strategies/{strategy_id}").json()["runner"]
        ids = [
            o["client_order_id"]
            for o in client.get("/orders", params={"limit": 10000}).json()["orders"]
        ]

    assert before
    assert not set(before) & set(after)  # new replicas took over
    assert run == _backtest_run(sp500, "sma_cross", params, "ES")
    assert len(ids) == len(set(ids))  # no order twice
    assert (state["bars"], state["status"]) == (BARS, "running")
