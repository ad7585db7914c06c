"""Fakes and helpers of the HTTP-layer tests: a hand-written execution service, keys, bodies.

``FakeService`` implements the synchronous service methods the HTTP layer
uses, with the real view dataclasses, so the API is tested without the
paper exchange: orders are accepted (or rejected above ``max_quantity`` or
under a kill switch), market orders fill completely at the next bar's open,
limit orders when the bar's range touches the limit.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from starlette.exceptions import StarletteDeprecationWarning

from tradepulse.domain.orders import Liquidity, OrderStatus, OrderType, Side
from tradepulse.execution.journal import MEMORY, Journal
from tradepulse.execution.service import ExecutionService
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.execution.service_views import (
    AccountView,
    FillView,
    OrderConflictError,
    OrderNotFoundError,
    OrderRequest,
    OrderView,
    PositionView,
    Reason,
    SubmitOutcome,
)
from tradepulse.serve import (
    ApiKey,
    ApiKeyStore,
    ExecutionBackend,
    InProcessBackend,
    Scope,
    create_app,
    hash_secret,
)
from tradepulse.strategy.api import Bar

with warnings.catch_warnings():
    # Starlette 1.x asks for the httpx2 fork; httpx (a dev dependency) still works.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

INITIAL_CASH = Decimal(100_000)
SECRETS = {
    "reader": "reader-secret-0001",
    "trader": "trader-secret-0002",
    "admin": "admin-secret-00003",
    "other": "other-trader-00004",
}
BAD_SECRET = "not-a-configured-secret"


class FakeService:
    """A small, deterministic stand-in for ``ExecutionService`` (same method signatures)."""

    def __init__(self, *, max_quantity: Decimal = Decimal(1000)) -> None:
        self.max_quantity = max_quantity
        self.reset()

    def reset(self) -> None:
        """Forget every order, fill, bar and switch (a fresh service, same object)."""
        self.orders_by_id: dict[str, OrderView] = {}
        self.fill_list: list[FillView] = []
        self.keys: dict[tuple[str, str], tuple[object, str]] = {}
        self.killed: set[str | None] = set()
        self.last_close: dict[str, Decimal] = {}
        self.bars: list[tuple[str, Bar]] = []
        self.clock = 0
        self.kill_reasons: list[str] = []

    def _now(self) -> int:
        self.clock += 1
        return self.clock

    def _own(self, order_id: str, account: str) -> OrderView:
        view = self.orders_by_id.get(order_id)
        if view is None or view.account != account:
            raise OrderNotFoundError(f"no order {order_id!r} in account {account!r}")
        return view

    def _create(self, request: OrderRequest, *, account: str, strategy: str | None) -> OrderView:
        now = self._now()
        reason: Reason | None = None
        if account in self.killed or None in self.killed:
            reason = Reason.KILL_SWITCH
        elif request.quantity > self.max_quantity:
            reason = Reason.MAX_ORDER_QUANTITY
        view = OrderView(
            order_id=f"ord-{len(self.orders_by_id) + 1:06d}",
            client_order_id=request.client_order_id,
            account=account,
            strategy=strategy,
            symbol=request.symbol,
            side=request.side,
            order_type=request.order_type,
            quantity=request.quantity,
            limit_price=request.limit_price,
            stop_price=request.stop_price,
            time_in_force=request.time_in_force,
            status=OrderStatus.ACCEPTED if reason is None else OrderStatus.REJECTED,
            filled_quantity=Decimal(0),
            remaining_quantity=request.quantity if reason is None else Decimal(0),
            average_fill_price=None,
            reason=reason,
            reason_detail=None if reason is None else f"{reason} ({request.quantity})",
            replaces=None,
            replaced_by=None,
            created_ns=now,
            updated_ns=now,
        )
        self.orders_by_id[view.order_id] = view
        return view

    def submit(
        self,
        request: OrderRequest,
        *,
        account: str,
        strategy: str | None = None,
        idempotency_key: str | None = None,
    ) -> SubmitOutcome:
        key = idempotency_key or request.client_order_id
        if key is not None and (account, key) in self.keys:
            fingerprint, order_id = self.keys[(account, key)]
            if fingerprint != (request, strategy):
                raise OrderConflictError(f"idempotency key {key!r} was used for another order")
            return SubmitOutcome(order=self.orders_by_id[order_id], created=False)
        view = self._create(request, account=account, strategy=strategy)
        if key is not None:
            self.keys[(account, key)] = ((request, strategy), view.order_id)
        return SubmitOutcome(order=view, created=True)

    def _end(self, view: OrderView, reason: Reason, **changes: Any) -> OrderView:
        ended = dataclasses.replace(
            view,
            status=OrderStatus.CANCELLED,
            reason=reason,
            remaining_quantity=Decimal(0),
            updated_ns=self._now(),
            **changes,
        )
        self.orders_by_id[view.order_id] = ended
        return ended

    def cancel(self, order_id: str, *, account: str) -> OrderView:
        view = self._own(order_id, account)
        if view.status.is_terminal:
            raise OrderConflictError(f"order {order_id!r} is {view.status}")
        return self._end(view, Reason.CANCEL_REQUESTED)

    def replace(
        self,
        order_id: str,
        *,
        account: str,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
        idempotency_key: str | None = None,
    ) -> OrderView:
        if idempotency_key is not None and (account, idempotency_key) in self.keys:
            return self.orders_by_id[self.keys[(account, idempotency_key)][1]]
        old = self._own(order_id, account)
        if old.status.is_terminal:
            raise OrderConflictError(f"order {order_id!r} is {old.status}")
        request = OrderRequest(
            symbol=old.symbol,
            side=old.side,
            quantity=quantity or old.quantity,
            order_type=old.order_type,
            limit_price=limit_price or old.limit_price,
            stop_price=stop_price or old.stop_price,
            time_in_force=old.time_in_force,
        )
        new = self._create(request, account=account, strategy=old.strategy)
        new = dataclasses.replace(new, replaces=old.order_id)
        self.orders_by_id[new.order_id] = new
        self._end(old, Reason.REPLACED, replaced_by=new.order_id)
        if idempotency_key is not None:
            self.keys[(account, idempotency_key)] = ((order_id,), new.order_id)
        return new

    def order(self, order_id: str, *, account: str) -> OrderView:
        return self._own(order_id, account)

    def orders(
        self,
        *,
        account: str,
        status: OrderStatus | None = None,
        open_only: bool = False,
        limit: int | None = None,
    ) -> list[OrderView]:
        found = [
            view
            for view in self.orders_by_id.values()
            if view.account == account
            and (status is None or view.status == status)
            and not (open_only and view.status.is_terminal)
        ]
        return found if limit is None else found[-limit:]

    def fills(self, *, account: str, order_id: str | None = None) -> list[FillView]:
        return [
            fill
            for fill in self.fill_list
            if fill.account == account and (order_id is None or fill.order_id == order_id)
        ]

    def _fill_price(self, view: OrderView, bar: Bar) -> Decimal | None:
        open_price = Decimal(repr(bar.open))
        if view.order_type is OrderType.MARKET:
            return open_price
        if view.order_type is OrderType.LIMIT and view.limit_price is not None:
            if view.side is Side.BUY and Decimal(repr(bar.low)) <= view.limit_price:
                return min(open_price, view.limit_price)
            if view.side is Side.SELL and Decimal(repr(bar.high)) >= view.limit_price:
                return max(open_price, view.limit_price)
        return None

    def on_bar(self, symbol: str, bar: Bar) -> list[FillView]:
        self.bars.append((symbol, bar))
        fills = []
        for view in list(self.orders_by_id.values()):
            if view.symbol != symbol or view.status.is_terminal:
                continue
            price = self._fill_price(view, bar)
            if price is None:
                continue
            fill = FillView(
                fill_id=f"fill-{len(self.fill_list) + 1:06d}",
                order_id=view.order_id,
                account=view.account,
                strategy=view.strategy,
                symbol=symbol,
                side=view.side,
                quantity=view.remaining_quantity,
                price=price,
                commission=Decimal(0),
                liquidity=Liquidity.TAKER,
                ts_ns=bar.ts,
            )
            self.fill_list.append(fill)
            fills.append(fill)
            self.orders_by_id[view.order_id] = dataclasses.replace(
                view,
                status=OrderStatus.FILLED,
                filled_quantity=view.quantity,
                remaining_quantity=Decimal(0),
                average_fill_price=price,
                updated_ns=self._now(),
            )
        self.last_close[symbol] = Decimal(repr(bar.close))
        return fills

    def positions(self, *, account: str) -> list[PositionView]:
        quantities: dict[str, Decimal] = {}
        costs: dict[str, Decimal] = {}
        for fill in self.fills(account=account):
            signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
            quantities[fill.symbol] = quantities.get(fill.symbol, Decimal(0)) + signed
            costs[fill.symbol] = costs.get(fill.symbol, Decimal(0)) + signed * fill.price
        views = []
        for symbol, quantity in sorted(quantities.items()):
            last = self.last_close.get(symbol)
            average = costs[symbol] / quantity if quantity else None
            value = quantity * last if last is not None else Decimal(0)
            views.append(
                PositionView(
                    account=account,
                    symbol=symbol,
                    quantity=quantity,
                    average_price=average,
                    last_price=last,
                    market_value=value,
                    unrealized_pnl=value - costs[symbol],
                    realized_pnl=Decimal(0),
                    commission=Decimal(0),
                )
            )
        return views

    def account(self, account: str) -> AccountView:
        positions = self.positions(account=account)
        spent = sum(
            (
                (fill.quantity if fill.side is Side.BUY else -fill.quantity) * fill.price
                for fill in self.fills(account=account)
            ),
            Decimal(0),
        )
        value = sum((position.market_value for position in positions), Decimal(0))
        return AccountView(
            account=account,
            initial_cash=INITIAL_CASH,
            cash=INITIAL_CASH - spent,
            equity=INITIAL_CASH - spent + value,
            realized_pnl=Decimal(0),
            unrealized_pnl=sum((p.unrealized_pnl for p in positions), Decimal(0)),
            commission=Decimal(0),
            gross_exposure=sum((abs(p.market_value) for p in positions), Decimal(0)),
            open_orders=len(self.orders(account=account, open_only=True)),
            kill_switch=self.kill_switch_engaged(account),
        )

    def set_kill_switch(
        self, engaged: bool, *, account: str | None = None, reason: str = ""
    ) -> list[OrderView]:
        self.kill_reasons.append(reason)
        if not engaged:
            self.killed.discard(account)
            return []
        self.killed.add(account)
        return [
            self._end(view, Reason.KILL_SWITCH)
            for view in list(self.orders_by_id.values())
            if not view.status.is_terminal and (account is None or view.account == account)
        ]

    def kill_switch_engaged(self, account: str | None = None) -> bool:
        return None in self.killed or account in self.killed


def auth(name: str) -> dict[str, str]:
    """Return the Authorization header of the named test key."""
    return {"Authorization": f"Bearer {SECRETS.get(name, BAD_SECRET)}"}


def make_keys() -> ApiKeyStore:
    """Return reader (read), trader (trade, account 'alpha'), admin and other (account 'beta')."""
    return ApiKeyStore(
        [
            ApiKey("reader", frozenset({Scope.READ}), hash_secret(SECRETS["reader"]), "alpha"),
            ApiKey("trader", frozenset({Scope.TRADE}), hash_secret(SECRETS["trader"]), "alpha"),
            ApiKey("admin", frozenset({Scope.ADMIN}), hash_secret(SECRETS["admin"]), "alpha"),
            ApiKey("other", frozenset({Scope.TRADE}), hash_secret(SECRETS["other"]), "beta"),
        ]
    )


@contextmanager
def make_client(backend: ExecutionBackend | FakeService, **options: Any) -> Iterator[TestClient]:
    """Yield a test client of the app over ``backend`` (a fake service is wrapped in-process).

    Exceptions the app does not handle raise in the test (``raise_server_exceptions``).
    """
    if isinstance(backend, FakeService):
        backend = InProcessBackend(backend)
    options.setdefault("keys", make_keys())
    raise_server_exceptions = options.pop("raise_server_exceptions", True)
    app = create_app(backend, **options)
    with TestClient(
        app, base_url="http://127.0.0.1", raise_server_exceptions=raise_server_exceptions
    ) as test_client:
        yield test_client


def real_service() -> ExecutionService:
    """Return the real execution service over an in-memory journal, with a counting clock."""
    ticks = itertools.count(1)
    return ExecutionService(
        journal=Journal(MEMORY), config=ServiceConfig(), clock=lambda: next(ticks)
    )


def market_order(**changes: object) -> dict[str, object]:
    """Return a valid market-order body (with ``changes`` applied)."""
    body: dict[str, object] = {"symbol": "AAPL", "side": "buy", "quantity": "10"}
    body.update(changes)
    return body


def bar(ts: int | str, *, symbol: str = "AAPL", price: float = 100.0) -> dict[str, object]:
    """Return a valid bar body opening at ``price`` with a 1% range."""
    return {
        "symbol": symbol,
        "ts": ts,
        "open": price,
        "high": price * 1.01,
        "low": price * 0.99,
        "close": price,
        "volume": 1000,
    }


def ids(results: Sequence[dict[str, Any]]) -> list[str]:
    """Return the order ids of a list of order bodies."""
    return [str(result["order_id"]) for result in results]
