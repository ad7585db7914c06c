"""Domain types of the execution core: instruments, orders, fills, positions, portfolio.

Pure and exact: quantities, prices and cash are :class:`decimal.Decimal`
(:mod:`tradepulse.domain.arithmetic` states the float-conversion policy).
"""

from __future__ import annotations

from tradepulse.domain.arithmetic import (
    DEFAULT_CASH_INCREMENT,
    DEFAULT_PRICE_INCREMENT,
    DEFAULT_QUANTITY_INCREMENT,
    LEDGER_CONTEXT,
)
from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import (
    ORDER_TRANSITIONS,
    Fill,
    Liquidity,
    Order,
    OrderError,
    OrderRecord,
    OrderStateError,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Side,
    TimeInForce,
    check_transition,
)
from tradepulse.domain.portfolio import Lot, Portfolio, Position, rebuild_position

__all__ = [
    "DEFAULT_CASH_INCREMENT",
    "DEFAULT_PRICE_INCREMENT",
    "DEFAULT_QUANTITY_INCREMENT",
    "LEDGER_CONTEXT",
    "ORDER_TRANSITIONS",
    "Fill",
    "Instrument",
    "Liquidity",
    "Lot",
    "Order",
    "OrderError",
    "OrderRecord",
    "OrderStateError",
    "OrderStatus",
    "OrderType",
    "OrderUpdate",
    "Portfolio",
    "Position",
    "Side",
    "TimeInForce",
    "check_transition",
    "rebuild_position",
]
