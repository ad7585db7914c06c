"""Two live strategies of one account on one symbol each get their shadow's share of a bar.

A strategy's runner trades on a shadow matching engine that holds only that
strategy's orders, with the service's participation cap, and assumes the
service fills its orders exactly as the shadow does. The execution service
therefore matches each strategy's orders (and the account's untagged, manual
orders) in an engine of their own: every tag gets the cap's share of a bar.

Before that change the service ran one engine per account and symbol, whose
cap all its orders shared. In the scenario below (cap 0.25 on 100-unit bars:
25 units a bar) that engine filled, on bar 1, s1's 25 units and nothing of
s2's or the manual order (arrival order, budget spent), while s2's shadow
booked 25: s2's runner held 25 where the service's fills for s2 summed to 0,
and the account's position (25) was not the runners' sum plus the manual 20
(70). Running this test with the engines keyed by account and symbol only
fails at bar 1 for that reason.

The app is the production one (:func:`create_trading_app` through
``test_strategy_routes.Server``) with the runners in process.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from strategy_support import installed_plugins
from test_strategy_routes import BARS, SERVICE, STRATEGIES, Server, auth

from tradepulse.strategy import Bar, Params, Strategy, StrategyContext
from tradepulse.strategy.params import param

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

ORDERS = "/api/v1/orders"
DAY = 86_400 * 10**9
START = 19_700 * DAY


@dataclass(frozen=True, slots=True)
class AccumulateParams(Params):
    """How many units to buy."""

    quantity: float = param(40.0, low=1.0, high=1000.0, step=1.0, description="Units to buy.")


class Accumulator(Strategy[AccumulateParams]):
    """Buy ``quantity`` at the market on bar 0; sell the position at the market on bar 4."""

    name = "accumulator"
    api_version = "1.0"
    params_type = AccumulateParams

    def handle_tick(self, ctx: StrategyContext[AccumulateParams], bar: Bar) -> None:
        """Buy on bar 0, sell everything on bar 4."""
        if ctx.bar_index == 0:
            ctx.buy(quantity=ctx.params.quantity)
        elif ctx.bar_index == 4 and ctx.position > 0:
            ctx.sell(quantity=ctx.position)


@pytest.fixture(autouse=True)
def _plugins_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    installed_plugins(monkeypatch, Accumulator)


def _bar(index: int) -> dict[str, Any]:
    return {
        "symbol": "SPX",
        "ts": START + index * DAY,
        "open": 100.0 + index,
        "high": 101.0 + index,
        "low": 99.0 + index,
        "close": 100.0 + index,
        "volume": 100.0,
    }


def _snapshot(client: TestClient, ids: list[str]) -> dict[str, Decimal]:
    """Return each runner's position, each strategy's fills at the service, the account's."""
    fills = client.get("/api/v1/fills", headers=auth("reader")).json()["fills"]
    seen: dict[str, Decimal] = {}
    for strategy_id in ids:
        runner = client.get(f"{STRATEGIES}/{strategy_id}", headers=auth("reader")).json()
        seen[f"runner {strategy_id}"] = Decimal(repr(runner["runner"]["position"]))
    for tag in [*ids, None]:
        seen[f"fills {tag}"] = sum(
            (
                Decimal(fill["quantity"]) * (1 if fill["side"] == "buy" else -1)
                for fill in fills
                if fill["strategy"] == tag
            ),
            Decimal(0),
        )
    held = client.get("/api/v1/positions", headers=auth("reader")).json()["positions"]
    seen["account"] = sum((Decimal(item["quantity"]) for item in held), Decimal(0))
    return seen


# After each bar: s1 (40 units) and s2 (30) buy at bar 1's open, 25 a bar each
# (25 % of 100); they sell at bar 5's open, again 25 a bar. The manual buy of
# 20 (after bar 0) fills whole on bar 1 from its own budget.
S1 = [0, 25, 40, 40, 40, 15, 0]
S2 = [0, 25, 30, 30, 30, 5, 0]
MANUAL = [0, 20, 20, 20, 20, 20, 20]


@pytest.mark.parametrize("batch", [1, 7], ids=["bar_by_bar", "one_request"])
def test_each_runner_holds_what_the_service_filled_for_it(tmp_path: Path, batch: int) -> None:
    service = SERVICE + "max_participation: 0.25\n"
    with Server(tmp_path, service) as client:
        ids = []
        for quantity in (40, 30):
            created = client.post(
                STRATEGIES,
                json={"plugin": "accumulator", "symbol": "SPX", "params": {"quantity": quantity}},
                headers=auth("trader"),
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
        assert client.post(BARS, json=[_bar(0)], headers=auth("feed")).status_code == 200
        manual = client.post(
            ORDERS, json={"symbol": "SPX", "side": "buy", "quantity": "20"}, headers=auth("trader")
        )
        assert manual.status_code == 201, manual.text
        seen = []
        for start in range(1, 7, batch):
            bodies = [_bar(index) for index in range(start, min(start + batch, 7))]
            response = client.post(BARS, json=bodies, headers=auth("feed"))
            assert response.status_code == 200, response.text
            seen.append((bodies[-1]["ts"], _snapshot(client, ids)))

    for ts, snapshot in seen:
        index = (ts - START) // DAY
        s1, s2 = ids
        assert snapshot == {
            f"runner {s1}": S1[index],
            f"runner {s2}": S2[index],
            f"fills {s1}": S1[index],
            f"fills {s2}": S2[index],
            "fills None": MANUAL[index],
            "account": S1[index] + S2[index] + MANUAL[index],
        }, f"after bar {index}"
