"""The venue protocol: what a strategy host needs from the place its orders go.

The event-driven backtester and the live strategy runner drive one strategy's
orders through a *venue*: they submit, reject (a pre-trade risk refusal is
recorded at the venue too), cancel and replace orders by client order id, read
order records back, and hand the venue each bar to match. :class:`Venue` is that
subset of :class:`~tradepulse.execution.MatchingEngine`, which satisfies it as it
is; an adapter in front of a shared execution service (one matching engine per
account and symbol, journaled) satisfies it for live trading.

Semantics every venue keeps (the matching engine's, see
:mod:`tradepulse.execution.matching`): requests carry the host's clock
``ts_ns`` (UTC nanoseconds) and never precede the last processed bar; an order
submitted after bar ``t`` may fill from bar ``t + 1`` on (later with latency);
client order ids are unique for the venue's lifetime, and a second submission
of a known id raises :class:`~tradepulse.domain.OrderError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Protocol, runtime_checkable

from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import Order, OrderRecord, OrderUpdate
from tradepulse.execution.latency import LatencyModel
from tradepulse.execution.matching import BarLike, MatchResult

__all__ = ["Venue"]


@runtime_checkable
class Venue(Protocol):
    """Accept, match and report one instrument's orders (see the module docstring).

    :class:`~tradepulse.execution.MatchingEngine` is the reference
    implementation; every member means what it means there.
    """

    @property
    def instrument(self) -> Instrument:
        """Return the instrument traded here (its grid quantises prices and quantities)."""
        ...

    @property
    def bar_index(self) -> int:
        """Return the index of the last bar processed (-1 before the first)."""
        ...

    @property
    def last_ts_ns(self) -> int | None:
        """Return the stamp of the last bar processed (None before the first)."""
        ...

    @property
    def orders(self) -> Mapping[str, OrderRecord]:
        """Return every order record by client order id, in submission order."""
        ...

    @property
    def open_orders(self) -> tuple[OrderRecord, ...]:
        """Return the working orders in arrival order."""
        ...

    @property
    def has_working_orders(self) -> bool:
        """Return whether any order is working."""
        ...

    def order(self, client_order_id: str) -> OrderRecord:
        """Return the record of ``client_order_id``.

        Raises:
            OrderError: no order has that id.
        """
        ...

    def submit(
        self, order: Order, *, ts_ns: int, latency: LatencyModel | None = None
    ) -> OrderUpdate:
        """Submit ``order`` at ``ts_ns`` and return its first update (ACCEPTED, NEW or REJECTED).

        ``latency`` schedules this order instead of the venue's own model.

        Raises:
            OrderError: the id was used before, or ``ts_ns`` precedes the last bar.
        """
        ...

    def reject(self, order: Order, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Record ``order`` as REJECTED with ``reason`` (a host-side risk refusal).

        Raises:
            OrderError: the id was used before, or ``reason`` is empty.
        """
        ...

    def cancel(
        self, client_order_id: str, *, ts_ns: int, reason: str = "cancelled on request"
    ) -> OrderUpdate:
        """Cancel the working order ``client_order_id``; fills so far stand.

        Raises:
            OrderError: no order has that id.
            OrderStateError: the order is no longer working.
        """
        ...

    def replace(
        self,
        client_order_id: str,
        *,
        new_client_order_id: str,
        ts_ns: int,
        quantity: Decimal | None = None,
        limit_price: Decimal | None = None,
        stop_price: Decimal | None = None,
    ) -> OrderUpdate:
        """Cancel ``client_order_id`` and submit a changed copy as ``new_client_order_id``.

        Raises:
            OrderError: an id is unknown or already used, or a new field is invalid.
            OrderStateError: the order is no longer working.
        """
        ...

    def skip_to(self, *, bar_index: int, ts_ns: int) -> None:
        """Stand after bar ``bar_index`` (stamped ``ts_ns``) without processing idle bars.

        Raises:
            OrderError: orders are working, or the position does not move forward.
        """
        ...

    def process_bar(self, bar: BarLike) -> MatchResult:
        """Match the working orders against ``bar`` and return its fills and status changes.

        Raises:
            DataError: ``bar.ts`` does not increase, or the bar breaks the contract.
        """
        ...
