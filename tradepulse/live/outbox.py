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

The service may also end an order it accepted without the runner asking: a
user cancels it (``DELETE /orders/{id}``) or the kill switch does. That comes
back as a :class:`ServiceCancel` stamped with the last bar the service had
matched at the time (``after_ts``): the order worked through that bar and no
later one, so the host cancels it on the shadow
(:meth:`RecordingVenue.mirror_cancel`) right before the shadow matches the next
bar, and the shadow never fills what the service no longer has. (Expiries and
the ends of immediate-or-cancel orders need nothing: the shadow's matching
engine ends them on the same bar as the service's.)

Two requests are not recorded: an order the shadow itself rejects (the service
would refuse it too) and a host-side risk refusal (:meth:`RecordingVenue.reject`):
nothing is sent for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Literal

from tradepulse.domain.orders import Order, OrderStatus, OrderUpdate
from tradepulse.execution.latency import LatencyModel
from tradepulse.execution.matching import MatchingEngine
from tradepulse.live.venues import ForwardingVenue

__all__ = [
    "CANCELLED_PREFIX",
    "ENDED_BEFORE_REPLACE",
    "REJECTED_PREFIX",
    "Ack",
    "Command",
    "CommandKind",
    "RecordingVenue",
    "ServiceCancel",
    "shadow_time",
]

#: What a submit, cancel or replace command asks of the service.
CommandKind = Literal["submit", "cancel", "replace"]
#: How a shadow order the service refused is cancelled (the reason follows).
REJECTED_PREFIX: Final = "rejected by the execution service: "
#: How a shadow order the service cancelled on its own is cancelled (the reason follows).
CANCELLED_PREFIX: Final = "cancelled at the execution service: "
#: Why the service refused a replace: it had cancelled the order replaced (its id follows).
ENDED_BEFORE_REPLACE: Final = "the execution service had cancelled the order replaced: "
# The shadow's request time before its first bar (acknowledgements, initialize).
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


@dataclass(frozen=True, slots=True)
class ServiceCancel:
    """The service cancelled the order ``client_order_id`` on its own, after bar ``after_ts``.

    On its own: the runner did not ask (a user's cancel, the kill switch).
    ``after_ts`` is the stamp of the symbol's last bar the service had matched
    when it cancelled the order (None: it had matched none), so the order
    worked through that bar and no later one; ``reason`` is the service's.
    """

    client_order_id: str
    after_ts: int | None
    reason: str


def shadow_time(after_ts: int | None) -> int:
    """Return the shadow's clock for "after bar ``after_ts``" (None: before any bar)."""
    return _BEFORE_ANY_BAR if after_ts is None else after_ts


class RecordingVenue(ForwardingVenue[MatchingEngine]):
    """A :class:`~tradepulse.execution.venue.Venue` over ``shadow`` that records commands.

    Every member reads or changes ``shadow`` as the matching engine does; a
    submit, cancel or replace the shadow carried out is also appended to the
    commands :meth:`take` hands out.
    """

    __slots__ = ("_commands",)

    def __init__(self, shadow: MatchingEngine) -> None:
        super().__init__(shadow)
        self._commands: list[Command] = []

    def __repr__(self) -> str:
        return f"RecordingVenue({self.inner!r}, pending={len(self._commands)})"

    @property
    def shadow(self) -> MatchingEngine:
        """Return the shadow venue (the runner's private paper exchange)."""
        return self.inner

    @property
    def pending(self) -> tuple[Command, ...]:
        """Return the commands recorded since the last :meth:`take`."""
        return tuple(self._commands)

    # ----------------------------------------------------------------- requests

    def submit(
        self, order: Order, *, ts_ns: int, latency: LatencyModel | None = None
    ) -> OrderUpdate:
        """Submit ``order`` on the shadow; record it unless the shadow rejected it."""
        update = self.inner.submit(order, ts_ns=ts_ns, latency=latency)
        if update.status is not OrderStatus.REJECTED:
            self._commands.append(Command("submit", order.client_order_id, order))
        return update

    def cancel(
        self, client_order_id: str, *, ts_ns: int, reason: str = "cancelled on request"
    ) -> OrderUpdate:
        """Cancel ``client_order_id`` on the shadow and record the cancel."""
        update = self.inner.cancel(client_order_id, ts_ns=ts_ns, reason=reason)
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
        shadow = self.inner
        update = shadow.replace(
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
                shadow.order(new_client_order_id).order,
                quantity=quantity,
                limit_price=limit_price,
                stop_price=stop_price,
            )
        )
        return update

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
        return [
            ack.client_order_id
            for ack in acks
            if self._end(ack.client_order_id, REJECTED_PREFIX + ack.reason)
        ]

    def mirror_cancel(self, cancel: ServiceCancel) -> bool:
        """Cancel on the shadow an order the service cancelled on its own; return if it worked.

        Nothing is recorded (the service has it cancelled already). An order
        the shadow does not know or no longer works is left alone (False).
        """
        return self._end(cancel.client_order_id, CANCELLED_PREFIX + cancel.reason)

    def _end(self, client_order_id: str, reason: str) -> bool:
        """Cancel ``client_order_id`` on the shadow, unrecorded, if it works there."""
        shadow = self.inner
        record = shadow.orders.get(client_order_id)
        if record is None or not record.is_open:
            return False
        shadow.cancel(client_order_id, ts_ns=shadow_time(shadow.last_ts_ns), reason=reason)
        return True
