"""Builders for the execution-service tests: a hand-driven clock, bars, requests, snapshots."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tradepulse.domain import OrderType, Side, TimeInForce
from tradepulse.execution import (
    NS_PER_DAY,
    ExecutionService,
    Journal,
    OrderRequest,
    ServiceConfig,
)
from tradepulse.strategy.api import Bar

SYMBOL = "ACME"
#: Cent ticks, whole-unit lots, cent cash: hand-made expectations stay readable.
CENT_GRID: dict[str, Any] = {
    "price_increment": "0.01",
    "quantity_increment": "1",
    "cash_increment": "0.01",
}
#: Bars are stamped at noon UTC of day ``n`` (one bar per UTC date).
NOON = NS_PER_DAY // 2
SECOND = 1_000_000_000


class FakeClock:
    """A clock that moves only when told (UTC nanoseconds); each read also ticks 1 ns."""

    def __init__(self, start: int = 1_700_000_000 * SECOND) -> None:
        self.now = start

    def __call__(self) -> int:
        self.now += 1
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self.now += round(seconds * SECOND)


def config(**overrides: Any) -> ServiceConfig:
    """Return a config on the cent grid for ``SYMBOL`` (reject unknown symbols), with overrides."""
    data: dict[str, Any] = {
        "instruments": {SYMBOL: CENT_GRID, "OTHER": CENT_GRID},
        "default_instrument": None,
    }
    data.update(overrides)
    return ServiceConfig.from_mapping(data)


def bar(
    day: int,
    open_: float,
    high: float,
    low: float,
    close: float | None = None,
    volume: float = 1_000_000.0,
) -> Bar:
    """Return the bar of UTC day ``day`` (stamped at noon); ``close`` defaults to ``open_``."""
    return Bar(day * NS_PER_DAY + NOON, open_, high, low, open_ if close is None else close, volume)


def request(
    side: Side,
    quantity: int | str,
    *,
    order_type: OrderType = OrderType.MARKET,
    limit: str | None = None,
    stop: str | None = None,
    tif: TimeInForce = TimeInForce.GTC,
    symbol: str = SYMBOL,
    client_order_id: str | None = None,
) -> OrderRequest:
    """Return an order request with decimal fields built from exact literals."""
    return OrderRequest(
        symbol=symbol,
        side=side,
        quantity=Decimal(quantity),
        order_type=order_type,
        limit_price=None if limit is None else Decimal(limit),
        stop_price=None if stop is None else Decimal(stop),
        time_in_force=tif,
        client_order_id=client_order_id,
    )


def buy(quantity: int | str, **kwargs: Any) -> OrderRequest:
    """Return a buy request (see :func:`request`)."""
    return request(Side.BUY, quantity, **kwargs)


def sell(quantity: int | str, **kwargs: Any) -> OrderRequest:
    """Return a sell request (see :func:`request`)."""
    return request(Side.SELL, quantity, **kwargs)


def snapshot(service: ExecutionService) -> dict[str, Any]:
    """Return everything the service's public API shows, for equality checks."""
    accounts = service.accounts()
    return {
        "accounts": accounts,
        "global_kill": service.kill_switch_engaged(),
        "per_account": {
            name: {
                "orders": service.orders(account=name),
                "fills": service.fills(account=name),
                "positions": service.positions(account=name),
                "account": service.account(name),
                "kill": service.kill_switch_engaged(name),
            }
            for name in accounts
        },
        "market": {
            symbol: (service.last_bar_ts(symbol), service.last_price(symbol))
            for symbol in (SYMBOL, "OTHER")
        },
    }


def reopen(journal: Journal, service_config: ServiceConfig, clock: FakeClock) -> ExecutionService:
    """Return a new service rebuilt from ``journal``."""
    return ExecutionService(journal=journal, config=service_config, clock=clock)
