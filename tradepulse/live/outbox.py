"""A runner's outbox: trade on a private *shadow* venue and record what to send for real.

A live runner hosted away from the execution service (in another process, on
another node) never calls the service. It trades on its own paper venue, the
*shadow*: a matching engine with the service's instrument grid and commission,
so the strategy sees its orders accepted, filled and cancelled exactly as the
service will do it. :class:`RecordingVenue` wraps the shadow and records every
request that changed it as a :class:`Command` (submit, cancel or replace, with
the venue's, i.e. runner-prefixed, client order ids); whoever owns the service
takes the commands (:meth:`RecordingVenue.take`) and applies them there, in
order, before the service matches the next bar, as the shadow did.

The service may still refuse an order the shadow accepted (its risk limits,
throttles or kill switch know things the shadow does not): that comes back as
an :class:`Ack` and :meth:`RecordingVenue.acknowledge` cancels the order on the
shadow, so the strategy sees it gone before the next bar is matched.

Two requests are not recorded: an order the shadow itself rejects (the service
would refuse it too) and a host-side risk refusal (:meth:`RecordingVenue.reject`):
nothing is sent for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import Order, OrderRecord, OrderStatus, OrderUpdate
from tradepulse.execution.latency import LatencyModel
from tradepulse.execution.matching import BarLike, MatchingEngine, MatchResult

__all__ = ["REJECTED_PREFIX", "Ack", "Command", "CommandKind", "RecordingVenue"]

#: What a submit, cancel or replace command asks of the service.
CommandKind = Literal["submit", "cancel", "replace"]
#: How a shadow order the service refused is cancelled (the reason follows).
REJECTED_PREFIX: Final = "rejected by the execution service: "
# Request time of an acknowledgement before the shadow's first bar.
_BEFORE_ANY_BAR: Final = -1


@dataclass(frozen=True, slots=True)
class Command:
    """One request to apply to the execution service, as the shadow venue took it.

    - ``submit``: ``order`` is the order (``client_order_id`` its id);
    - ``cancel``: ``client_order_id`` is the order to cancel;
    - ``replace``: ``client_order_id`` is the order replaced, ``order`` the
      replacement as the shadow built it (its ``client_order_id`` the new id),
      and ``quantity`` / ``limit_price`` / ``stop_price`` the changes as asked
      (``None``: unchanged; a ``None`` quantity is the unfilled remainder).
    """

    kind: CommandKind
    client_order_id: str
    order: Order | None = None
    quantity: Decimal | None = None
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None

    @property
    def new_order_id(self) -> str | None:
        """Return the id of the order this command creates (None for a cancel)."""
        return None if self.order is None else self.order.client_order_id


@dataclass(frozen=True, slots=True)
class Ack:
    """The service refused the order ``client_order_id`` created by a command, for ``reason``."""

    client_order_id: str
    reason: str


class RecordingVenue:
    """A :class:`~tradepulse.execution.venue.Venue` over ``shadow`` that records commands.

    Every member reads or changes ``shadow`` as the matching engine does; a
    submit, cancel or replace the shadow carried out is also appended to the
    commands :meth:`take` hands out.
    """

    __slots__ = ("_commands", "shadow")

    def __init__(self, shadow: MatchingEngine) -> None:
        self.shadow = shadow
        self._commands: list[Command] = []

    def __repr__(self) -> str:
        return f"RecordingVenue({self.shadow!r}, pending={len(self._commands)})"

    # ----------------------------------------------------------------- reads

    @property
    def instrument(self) -> Instrument:
        """Return the instrument traded."""
        return self.shadow.instrument

    @property
    def bar_index(self) -> int:
        """Return the shadow's last processed bar index."""
        return self.shadow.bar_index

    @property
    def last_ts_ns(self) -> int | None:
        """Return the shadow's last processed bar stamp."""
        return self.shadow.last_ts_ns

    @property
    def orders(self) -> Mapping[str, OrderRecord]:
        """Return the shadow's order records."""
        return self.shadow.orders

    @property
    def open_orders(self) -> tuple[OrderRecord, ...]:
        """Return the shadow's working orders."""
        return self.shadow.open_orders

    @property
    def has_working_orders(self) -> bool:
        """Return whether an order works on the shadow."""
        return self.shadow.has_working_orders

    def order(self, client_order_id: str) -> OrderRecord:
        """Return the shadow's record of ``client_order_id``."""
        return self.shadow.order(client_order_id)

    @property
    def pending(self) -> tuple[Command, ...]:
        """Return the commands recorded since the last :meth:`take`."""
        return tuple(self._commands)

    # ----------------------------------------------------------------- requests

    def submit(
        self, order: Order, *, ts_ns: int, latency: LatencyModel | None = None
    ) -> OrderUpdate:
        """Submit ``order`` on the shadow; record it unless the shadow rejected it."""
        update = self.shadow.submit(order, ts_ns=ts_ns, latency=latency)
        if update.status is not OrderStatus.REJECTED:
            self._commands.append(Command("submit", order.client_order_id, order))
        return update

    def reject(self, order: Order, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Record ``order`` as rejected on the shadow (nothing is sent)."""
        return self.shadow.reject(order, ts_ns=ts_ns, reason=reason)

    def cancel(
        self, client_order_id: str, *, ts_ns: int, reason: str = "cancelled on request"
    ) -> OrderUpdate:
        """Cancel ``client_order_id`` on the shadow and record the cancel."""
        update = self.shadow.cancel(client_order_id, ts_ns=ts_ns, reason=reason)
        self._commands.append(Command("cancel", client_order_id))
        return update

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
        """Replace ``client_order_id`` on the shadow and record the replace."""
        update = self.shadow.replace(
            client_order_id,
            new_client_order_id=new_client_order_id,
            ts_ns=ts_ns,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
        )
        self._commands.append(
            Command(
                "replace",
                client_order_id,
                self.shadow.order(new_client_order_id).order,
                quantity=quantity,
                limit_price=limit_price,
                stop_price=stop_price,
            )
        )
        return update

    def skip_to(self, *, bar_index: int, ts_ns: int) -> None:
        """Do nothing: the host hands the shadow every bar."""

    def process_bar(self, bar: BarLike) -> MatchResult:
        """Match ``bar`` on the shadow."""
        return self.shadow.process_bar(bar)

    # ----------------------------------------------------------------- the outbox

    def take(self) -> tuple[Command, ...]:
        """Return the commands recorded since the last call, oldest first, and forget them."""
        taken = tuple(self._commands)
        self._commands.clear()
        return taken

    def acknowledge(self, acks: Iterable[Ack]) -> list[str]:
        """Cancel on the shadow the orders the service refused; return the ids cancelled.

        An ack for an order the shadow does not know or no longer works is
        ignored (it was acknowledged before, or ended on the shadow already).
        """
        cancelled = []
        shadow = self.shadow
        for ack in acks:
            record = shadow.orders.get(ack.client_order_id)
            if record is None or not record.is_open:
                continue
            last = shadow.last_ts_ns
            shadow.cancel(
                ack.client_order_id,
                ts_ns=_BEFORE_ANY_BAR if last is None else last,
                reason=REJECTED_PREFIX + ack.reason,
            )
            cancelled.append(ack.client_order_id)
        return cancelled
