"""Random operation sequences for execution-service property tests (hypothesis strategies).

An operation is a tuple: ``("submit", account, symbol, side, quantity index,
order type, price offset, time in force, strategy, idempotency key, client
order id)``, ``("bar", symbol, move)``, ``("cancel", index)``, ``("replace",
index, price delta, quantity, idempotency key)``, ``("kill", account, engaged)``,
``("wait", seconds)`` or ``("restart",)`` (which the test itself carries out).
Keys and client order ids come from small pools, so retries, conflicts and
throttled requests happen.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st
from service_helpers import CENT_GRID, SYMBOL, FakeClock, bar

from tradepulse.domain import OrderError, OrderType, Side, TimeInForce
from tradepulse.execution import ExecutionService, OrderConflictError, OrderRequest

D = Decimal
OTHER = "OTHER"
#: OTHER trades in thousandths of a unit: quantities with mixed exponents (1.5, 0.250, 2).
MILLI_GRID: dict[str, Any] = {**CENT_GRID, "quantity_increment": "0.001"}
QUANTITIES = {
    SYMBOL: ["1", "2", "3", "5", "8", "12", "0.5"],  # 0.5 is off the whole-unit grid
    OTHER: ["1.5", "0.250", "2", "2.000", "3.75", "0.001", "7"],
}
ACCOUNTS = ("a", "b")

_SUBMIT = st.tuples(
    st.just("submit"),
    st.sampled_from(ACCOUNTS),
    st.sampled_from([SYMBOL, OTHER]),
    st.sampled_from(list(Side)),
    st.integers(0, len(QUANTITIES[SYMBOL]) - 1),
    st.sampled_from([OrderType.MARKET, OrderType.LIMIT, OrderType.LIMIT, OrderType.STOP]),
    st.integers(-4, 4),
    st.sampled_from([TimeInForce.GTC, TimeInForce.GTC, TimeInForce.DAY, TimeInForce.IOC]),
    st.sampled_from([None, None, "s1", "s2"]),
    st.sampled_from([None, None, "k1", "k2", "s1:k3"]),
    st.sampled_from([None, None, None, "c1", "s1:c2"]),
)
#: One strategy per operation kind.
BRANCHES: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "submit": _SUBMIT,
    "bar": st.tuples(st.just("bar"), st.sampled_from([SYMBOL, OTHER]), st.integers(-4, 4)),
    "cancel": st.tuples(st.just("cancel"), st.integers(0, 40)),
    "replace": st.tuples(
        st.just("replace"),
        st.integers(0, 40),
        st.integers(-2, 2),
        st.sampled_from([None, "1", "4", "0.750", "9"]),
        st.sampled_from([None, None, "r1", "s1:r2"]),
    ),
    "kill": st.tuples(
        st.just("kill"), st.sampled_from([None, "a"]), st.sampled_from([True, False, False, False])
    ),
    "wait": st.tuples(st.just("wait"), st.sampled_from([0.2, 2.0])),
    "restart": st.tuples(st.just("restart")),
}


def operation_mix(**weights: int) -> st.SearchStrategy[tuple[Any, ...]]:
    """Return operations drawn with these relative ``weights`` by kind (others: never)."""
    kinds = [kind for kind, weight in weights.items() for _ in range(weight)]
    return st.sampled_from(kinds).flatmap(BRANCHES.__getitem__)


#: Mostly orders and bars; now and then a cancel, replace, kill switch, pause or restart.
OPERATION = operation_mix(submit=8, bar=4, cancel=1, replace=2, kill=1, wait=1, restart=1)


def new_market() -> dict[str, list[int]]:
    """Return the market state operations move: symbol -> [last close, day]."""
    return {SYMBOL: [100, 0], OTHER: [50, 0]}


def apply_operation(
    service: ExecutionService,
    operation: tuple[Any, ...],
    market: dict[str, list[int]],
    clock: FakeClock,
) -> object:
    """Apply ``operation``; return what the service answered (or the error's type and text)."""
    kind = operation[0]
    try:
        if kind == "submit":
            _, account, symbol, side, index, order_type, offset, tif, strategy, key, tag = operation
            price = D(market[symbol][0] + offset)
            return service.submit(
                OrderRequest(
                    symbol=symbol,
                    side=side,
                    quantity=D(QUANTITIES[symbol][index]),
                    order_type=order_type,
                    limit_price=price if order_type is OrderType.LIMIT else None,
                    stop_price=price if order_type is OrderType.STOP else None,
                    time_in_force=tif,
                    client_order_id=tag,
                ),
                account=account,
                strategy=strategy,
                idempotency_key=key,
            )
        if kind == "bar":
            symbol, move = operation[1], operation[2]
            open_ = market[symbol][0]
            close = max(5, open_ + move)
            market[symbol] = [close, market[symbol][1] + 1]
            high, low = max(open_, close) + 1, min(open_, close) - 1
            return service.on_bar(symbol, bar(market[symbol][1], open_, high, low, close, 30))
        if kind in ("cancel", "replace"):
            everything = [order for name in ACCOUNTS for order in service.orders(account=name)]
            if not everything:
                return None
            target = everything[operation[1] % len(everything)]
            if kind == "cancel":
                return service.cancel(target.order_id, account=target.account)
            _, _, delta, quantity, key = operation
            return service.replace(
                target.order_id,
                account=target.account,
                quantity=None if quantity is None else D(quantity),
                limit_price=None if target.limit_price is None else target.limit_price + delta,
                stop_price=None if target.stop_price is None else target.stop_price + delta,
                idempotency_key=key,
            )
        if kind == "kill":
            return service.set_kill_switch(operation[2], account=operation[1], reason="p")
        if kind == "wait":
            clock.advance(operation[1])
            return None
    except (OrderConflictError, OrderError) as error:
        return type(error).__name__, str(error)
    raise AssertionError(f"unexpected operation {operation!r}")
