"""Rebuild ended orders that the execution service no longer keeps in memory, from its journal.

Private. An order's journal events (:meth:`Journal.order_entries`: its
``order`` or ``replace`` event, its fills, a ``cancel``, an ``order_update``,
the ``replace`` that replaced it) say everything its view shows; this module
replays them onto a fresh :class:`~tradepulse.domain.OrderRecord` through the
same state machine the matching engine drives, so a rebuilt order equals the
one the service evicted, field for field: status, filled and remaining
quantity, average fill price, reason, links, stamps, fills and the request
fingerprint that idempotent retries are checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable

from tradepulse.domain.orders import OrderRecord
from tradepulse.execution import _service_codec as codec
from tradepulse.execution._service_state import (
    BEFORE_ANY_BAR,
    CANCEL_DETAIL,
    UNBOUND_REASONS,
    OrderState,
)
from tradepulse.execution.journal import Journal, JournalEntry, JournalError
from tradepulse.execution.service_views import Reason

__all__ = ["bound_keys", "rebuild_orders"]


def bound_keys(entries: Iterable[JournalEntry], *, prefix: str = "") -> dict[str, str]:
    """Return the keys starting with ``prefix`` that order events bind, to their order ids.

    ``entries`` are ``order`` / ``replace`` events in sequence order. As the
    service binds them: an order binds its idempotency key and (a submission)
    its client order id, unless a throttle refused it; the first order to
    bind a key keeps it. The result is in binding order.
    """
    owners: dict[str, str] = {}
    for entry in entries:
        payload = entry.payload
        if payload.get("reason") in UNBOUND_REASONS:
            continue
        keys = [payload.get("idempotency_key")]
        if entry.kind == "order":
            keys.append(payload["request"].get("client_order_id"))
        for key in keys:
            if isinstance(key, str) and key.startswith(prefix):
                owners.setdefault(key, str(payload["order_id"]))
    return owners


def rebuild_orders(
    journal: Journal, order_ids: Collection[str], *, engine_times: bool = True
) -> dict[str, OrderState]:
    """Return the orders ``order_ids`` as their journal events leave them, by id.

    Ids the journal does not know are left out. ``engine_times`` also restores
    the record's engine stamps (the symbol's last bar when the order last
    changed, one indexed lookup per change); without it they are
    :data:`BEFORE_ANY_BAR`, which is enough for a view.

    Raises:
        JournalError: an event cannot be read or does not fit the order's history.
    """
    wanted = set(order_ids)
    states: dict[str, OrderState] = {}

    def bar_ts(symbol: str, entry: JournalEntry) -> int:
        """Return the engine time of ``entry``: the symbol's last bar before it."""
        if not engine_times:
            return BEFORE_ANY_BAR
        found = journal.last_bar_ts(symbol, before=entry.sequence)
        return BEFORE_ANY_BAR if found is None else found

    for entry in journal.order_entries(wanted):
        payload = entry.payload
        try:
            if entry.kind in ("order", "replace"):
                order_id = payload["order_id"]
                if order_id in wanted:
                    states[order_id] = _created(entry, bar_ts)
                replaced = states.get(payload.get("replaces") or "")
                if replaced is not None and payload["status"] == "accepted":
                    replaced.record.cancel(
                        ts_ns=bar_ts(replaced.record.order.symbol, entry),
                        reason=f"replaced by {order_id!r}",
                    )
                    replaced.reason = Reason.REPLACED.value
                    replaced.reason_detail = f"replaced by {order_id}"
                    replaced.replaced_by, replaced.updated_ns = order_id, entry.ts_ns
                continue
            state = states.get(payload["order_id"])
            if state is None:
                continue
            symbol = state.record.order.symbol
            if entry.kind == "fill":
                fill = codec.decode_fill(payload, strategy=state.strategy)
                state.record.fill(quantity=fill.quantity, price=fill.price, ts_ns=fill.ts_ns)
                state.fills.append(fill)
            elif entry.kind == "cancel":
                state.record.cancel(ts_ns=bar_ts(symbol, entry), reason=CANCEL_DETAIL)
                state.reason, state.reason_detail = Reason.CANCEL_REQUESTED.value, CANCEL_DETAIL
            else:  # order_update: a venue end (IOC, FOK, DAY) or the kill switch
                detail = str(payload["reason_detail"])
                end = state.record.expire if payload["status"] == "expired" else state.record.cancel
                end(ts_ns=bar_ts(symbol, entry), reason=detail)
                state.reason, state.reason_detail = payload["reason"], detail
            state.updated_ns = entry.ts_ns
        except (ArithmeticError, LookupError, TypeError, ValueError) as error:
            # OrderError is a ValueError; a malformed decimal raises decimal.InvalidOperation.
            raise JournalError(
                f"journal {journal.path}, event {entry.sequence} ({entry.kind}) cannot be "
                f"read back: {error}",
                sequence=entry.sequence,
            ) from None
    return states


def _created(entry: JournalEntry, bar_ts: Callable[[str, JournalEntry], int]) -> OrderState:
    """Return the order an ``order`` or ``replace`` event created (accepted or rejected)."""
    payload = entry.payload
    request = codec.decode_request(payload["request"])
    order = codec.order_of(request, payload["order_id"])
    if entry.kind == "order":
        fingerprint = codec.fingerprint_of(request, payload["strategy"])
    else:
        changes = payload["changes"]
        fingerprint = codec.replace_fingerprint(
            payload["replaces"],
            codec.decimal_from(changes["quantity"]),
            codec.decimal_from(changes["limit_price"]),
            codec.decimal_from(changes["stop_price"]),
        )
    ts = bar_ts(order.symbol, entry)
    state = OrderState(
        order_id=order.client_order_id,
        account=payload["account"],
        strategy=payload["strategy"],
        client_order_id=request.client_order_id,
        fingerprint=fingerprint,
        record=OrderRecord(order, submitted_ts_ns=ts),
        ts_ns=entry.ts_ns,
        replaces=payload.get("replaces"),
    )
    if payload["status"] == "rejected":
        state.record.reject(ts_ns=ts, reason=str(payload["reason_detail"]))
        state.reason, state.reason_detail = payload["reason"], payload["reason_detail"]
    else:
        state.record.accept(ts_ns=ts)
    return state
