"""Venues seen by a live runner: its own ids at a shared venue, a paper venue, catch-up.

- :class:`ForwardingVenue` passes every read and request on to an inner venue;
  the adapters below (and the runner host's recording shadow,
  :class:`~tradepulse.live.outbox.RecordingVenue`) subclass it and override
  only what they change.
- :func:`paper_venue` builds the matching engine the event-driven backtest
  matches on, for the same frictions: the live paper exchange of one instrument.
- :class:`PrefixedVenue` gives one runner's orders ids unique at a venue that
  many runners share: the strategy and the runner's order log keep the
  backtest's ids (``t1.1``, ``o2``), the venue sees ``<runner id>:t1.1``.
- :class:`CatchUpVenue` is what a resuming runner trades on while it replays the
  bars its earlier incarnation saw: a private paper venue (the *shadow*) answers
  every request, so the strategy sees the orders as they were then, and each
  request reaches the real venue only if the venue does not have it yet and is
  not past the request's time (an order resent after a crash is recognised by
  its deterministic id, never placed twice). :func:`reconcile` then checks that
  the real venue holds exactly the replayed orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Generic, TypeVar

from tradepulse.backtest.event import _matching_engine
from tradepulse.costs.commission import CommissionModel, combine_commissions
from tradepulse.costs.slippage import SlippageModel, combine_slippage
from tradepulse.domain.instrument import Instrument
from tradepulse.domain.orders import Order, OrderRecord, OrderUpdate
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.execution.latency import LatencyModel
from tradepulse.execution.liquidity import DepthModel
from tradepulse.execution.matching import BarLike, MatchingEngine, MatchResult
from tradepulse.execution.venue import Venue

__all__ = [
    "CatchUpVenue",
    "ForwardingVenue",
    "PrefixedVenue",
    "ResumeError",
    "paper_venue",
    "reconcile",
]

_V = TypeVar("_V", bound=Venue)


class ResumeError(TradePulseError):
    """A resuming runner's replay does not match what its venue holds."""


def paper_venue(
    instrument: Instrument,
    *,
    commission: float | CommissionModel | Iterable[CommissionModel] | None = 0.0,
    slippage: SlippageModel | Iterable[SlippageModel] | None = None,
    latency_bars: int = 0,
    max_participation: float | None = None,
    depth: DepthModel | None = None,
) -> MatchingEngine:
    """Return a matching engine for ``instrument`` matching as `run_event`'s does.

    The arguments mean what they mean for :func:`~tradepulse.backtest.run_event`;
    give a :class:`~tradepulse.live.StrategyRunner` trading here the same ones.

    Raises:
        ConfigError: an argument is invalid.
    """
    if not isinstance(instrument, Instrument):
        raise ConfigError(f"instrument must be an Instrument; got {instrument!r}")
    if isinstance(latency_bars, bool) or not isinstance(latency_bars, int) or latency_bars < 0:
        raise ConfigError(f"latency_bars must be an integer >= 0; got {latency_bars!r}")
    return _matching_engine(
        instrument,
        fees=combine_commissions(commission),
        friction=combine_slippage(slippage),
        latency_bars=latency_bars,
        max_participation=max_participation,
        depth=depth,
    )


class ForwardingVenue(Generic[_V]):
    """A :class:`~tradepulse.execution.venue.Venue` that passes everything on to ``inner``.

    Every read and request means what it means at ``inner``; subclasses
    override what they change. :meth:`skip_to` does nothing: a live runner
    hands its venue every bar, so none is skipped.
    """

    __slots__ = ("inner",)

    def __init__(self, inner: _V) -> None:
        self.inner = inner

    @property
    def instrument(self) -> Instrument:
        """Return the instrument traded."""
        return self.inner.instrument

    @property
    def bar_index(self) -> int:
        """Return the inner venue's last processed bar index."""
        return self.inner.bar_index

    @property
    def last_ts_ns(self) -> int | None:
        """Return the inner venue's last processed bar stamp."""
        return self.inner.last_ts_ns

    @property
    def orders(self) -> Mapping[str, OrderRecord]:
        """Return the inner venue's order records."""
        return self.inner.orders

    @property
    def open_orders(self) -> tuple[OrderRecord, ...]:
        """Return the inner venue's working orders."""
        return self.inner.open_orders

    @property
    def has_working_orders(self) -> bool:
        """Return whether an order works at the inner venue."""
        return self.inner.has_working_orders

    def order(self, client_order_id: str) -> OrderRecord:
        """Return the inner venue's record of ``client_order_id``."""
        return self.inner.order(client_order_id)

    def submit(
        self, order: Order, *, ts_ns: int, latency: LatencyModel | None = None
    ) -> OrderUpdate:
        """Submit ``order`` at the inner venue."""
        return self.inner.submit(order, ts_ns=ts_ns, latency=latency)

    def reject(self, order: Order, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Record ``order`` as rejected at the inner venue."""
        return self.inner.reject(order, ts_ns=ts_ns, reason=reason)

    def cancel(
        self, client_order_id: str, *, ts_ns: int, reason: str = "cancelled on request"
    ) -> OrderUpdate:
        """Cancel ``client_order_id`` at the inner venue."""
        return self.inner.cancel(client_order_id, ts_ns=ts_ns, reason=reason)

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
        """Replace ``client_order_id`` by ``new_client_order_id`` at the inner venue."""
        return self.inner.replace(
            client_order_id,
            new_client_order_id=new_client_order_id,
            ts_ns=ts_ns,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
        )

    def skip_to(self, *, bar_index: int, ts_ns: int) -> None:
        """Do nothing: a live runner hands its venue every bar, so none is skipped."""

    def process_bar(self, bar: BarLike) -> MatchResult:
        """Match ``bar`` at the inner venue."""
        return self.inner.process_bar(bar)


class PrefixedVenue(ForwardingVenue[Venue]):
    """One runner's view of a venue: ids without ``prefix`` here, with it at ``inner``.

    Reads show only this runner's orders. ``created`` collects the (local) ids
    of orders placed since it was last cleared. ``inner`` may be swapped (a
    resuming runner trades on a :class:`CatchUpVenue` first). The venue's
    bars are every runner's: :meth:`process_bar` matches them all (the runner
    keeps its own fills).
    """

    __slots__ = ("created", "prefix")

    def __init__(self, inner: Venue, prefix: str) -> None:
        super().__init__(inner)
        self.prefix = prefix
        self.created: list[str] = []

    def owns(self, client_order_id: str) -> bool:
        """Return whether venue order id ``client_order_id`` is one of this runner's."""
        return client_order_id.startswith(self.prefix)

    def venue_id(self, client_order_id: str) -> str:
        """Return the venue's id of this runner's order ``client_order_id``."""
        return self.prefix + client_order_id

    @property
    def orders(self) -> Mapping[str, OrderRecord]:
        """Return this runner's order records by local id, in submission order."""
        cut = len(self.prefix)
        return {
            venue_id[cut:]: record
            for venue_id, record in self.inner.orders.items()
            if venue_id.startswith(self.prefix)
        }

    @property
    def open_orders(self) -> tuple[OrderRecord, ...]:
        """Return this runner's working orders in arrival order."""
        prefix = self.prefix
        return tuple(
            record for record in self.inner.open_orders if record.client_order_id.startswith(prefix)
        )

    @property
    def has_working_orders(self) -> bool:
        """Return whether any of this runner's orders is working."""
        return bool(self.open_orders)

    def order(self, client_order_id: str) -> OrderRecord:
        """Return the record of this runner's order ``client_order_id``."""
        return self.inner.order(self.prefix + client_order_id)

    def _outbound(self, order: Order) -> Order:
        if not self.prefix:
            return order
        return Order(
            client_order_id=self.prefix + order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            quantity=order.quantity,
            order_type=order.order_type,
            limit_price=order.limit_price,
            stop_price=order.stop_price,
            time_in_force=order.time_in_force,
        )

    def submit(
        self, order: Order, *, ts_ns: int, latency: LatencyModel | None = None
    ) -> OrderUpdate:
        """Submit ``order`` under its venue id."""
        update = self.inner.submit(self._outbound(order), ts_ns=ts_ns, latency=latency)
        self.created.append(order.client_order_id)
        return update

    def reject(self, order: Order, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Record ``order`` as rejected under its venue id."""
        update = self.inner.reject(self._outbound(order), ts_ns=ts_ns, reason=reason)
        self.created.append(order.client_order_id)
        return update

    def cancel(
        self, client_order_id: str, *, ts_ns: int, reason: str = "cancelled on request"
    ) -> OrderUpdate:
        """Cancel this runner's order ``client_order_id``."""
        return self.inner.cancel(self.prefix + client_order_id, ts_ns=ts_ns, reason=reason)

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
        """Replace this runner's order ``client_order_id`` by ``new_client_order_id``."""
        update = self.inner.replace(
            self.prefix + client_order_id,
            new_client_order_id=self.prefix + new_client_order_id,
            ts_ns=ts_ns,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
        )
        self.created.append(new_client_order_id)
        return update


class CatchUpVenue(ForwardingVenue[MatchingEngine]):
    """Replay on ``shadow`` (which answers every request); bring ``real`` up to date.

    Reads are the shadow's (the replay's). A request reaches ``real`` only when
    ``real`` lacks it and is not past its time (``real`` has not processed a
    bar stamped after the request): then it is one the earlier incarnation
    never sent (it died first). A request ``real`` already holds is recognised
    by its id and must match; one that ``real`` lacks although it is past its
    time cannot be made good.

    Raises:
        ResumeError: (from the requests) ``real`` holds a different order under
            an id, or lacks an order, cancel or replace it should have by now.
    """

    __slots__ = ("real",)

    def __init__(self, shadow: MatchingEngine, real: Venue) -> None:
        super().__init__(shadow)
        self.real = real

    @property
    def shadow(self) -> MatchingEngine:
        """Return the private paper venue the replay trades on."""
        return self.inner

    def _past(self, ts_ns: int) -> bool:
        last = self.real.last_ts_ns
        return last is not None and last > ts_ns

    def _placed(self, order: Order, ts_ns: int) -> bool:
        """Return whether ``real`` already holds ``order`` (checking it is the same)."""
        held = self.real.orders.get(order.client_order_id)
        if held is not None:
            if held.order != order:
                raise ResumeError(
                    f"the venue holds a different order under id {order.client_order_id!r}: "
                    f"{held.order} (the replay placed {order})"
                )
            return True
        if self._past(ts_ns):
            raise ResumeError(
                f"the venue lacks order {order.client_order_id!r} that the replay placed at "
                f"ts {ts_ns}, and it has processed bars up to ts {self.real.last_ts_ns} since"
            )
        return False

    def submit(
        self, order: Order, *, ts_ns: int, latency: LatencyModel | None = None
    ) -> OrderUpdate:
        """Submit on the shadow; on ``real`` too unless it has the order."""
        update = self.shadow.submit(order, ts_ns=ts_ns, latency=latency)
        if not self._placed(order, ts_ns):
            self.real.submit(order, ts_ns=ts_ns, latency=latency)
        return update

    def reject(self, order: Order, *, ts_ns: int, reason: str) -> OrderUpdate:
        """Reject on the shadow; on ``real`` too unless it has the order."""
        update = self.shadow.reject(order, ts_ns=ts_ns, reason=reason)
        if not self._placed(order, ts_ns):
            self.real.reject(order, ts_ns=ts_ns, reason=reason)
        return update

    def cancel(
        self, client_order_id: str, *, ts_ns: int, reason: str = "cancelled on request"
    ) -> OrderUpdate:
        """Cancel on the shadow; on ``real`` too if the order still works there."""
        update = self.shadow.cancel(client_order_id, ts_ns=ts_ns, reason=reason)
        if self.real.order(client_order_id).is_open:
            if self._past(ts_ns):
                raise ResumeError(
                    f"order {client_order_id!r} still works at the venue, but the replay "
                    f"cancelled it at ts {ts_ns}, before the venue's last bar "
                    f"(ts {self.real.last_ts_ns})"
                )
            self.real.cancel(client_order_id, ts_ns=ts_ns, reason=reason)
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
        """Replace on the shadow; on ``real`` too unless it has the replacement."""
        update = self.shadow.replace(
            client_order_id,
            new_client_order_id=new_client_order_id,
            ts_ns=ts_ns,
            quantity=quantity,
            limit_price=limit_price,
            stop_price=stop_price,
        )
        if not self._placed(self.shadow.order(new_client_order_id).order, ts_ns):
            self.real.replace(
                client_order_id,
                new_client_order_id=new_client_order_id,
                ts_ns=ts_ns,
                quantity=quantity,
                limit_price=limit_price,
                stop_price=stop_price,
            )
        return update

    def process_bar(self, bar: BarLike) -> MatchResult:
        """Match ``bar`` on the shadow, and on ``real`` if it has not processed it yet."""
        result = self.shadow.process_bar(bar)
        last = self.real.last_ts_ns
        if last is None or last < bar.ts:
            self.real.process_bar(bar)
        return result


def _describe(record: OrderRecord) -> str:
    return (
        f"{record.status.value}, filled {record.filled_quantity} of {record.order.quantity}"
        f" (notional {record.filled_notional})"
    )


def reconcile(shadow: MatchingEngine, real: Venue, prefix: str) -> None:
    """Check that ``real`` holds exactly ``shadow``'s orders among ids starting with ``prefix``.

    Same ids in the same order, and for each the same order, status, filled
    quantity and filled notional.

    Raises:
        ResumeError: naming the first order that differs.
    """
    replayed = list(shadow.orders.items())
    held = [(key, record) for key, record in real.orders.items() if key.startswith(prefix)]
    for (replay_id, replay), (held_id, record) in zip(replayed, held, strict=False):
        if replay_id != held_id:
            raise ResumeError(
                f"the venue's orders differ from the replay's: the venue has {held_id!r} "
                f"where the replay placed {replay_id!r}"
            )
        if (
            record.order != replay.order
            or record.status is not replay.status
            or record.filled_quantity != replay.filled_quantity
            or record.filled_notional != replay.filled_notional
        ):
            raise ResumeError(
                f"order {held_id!r} differs: the venue has it {_describe(record)}, the replay "
                f"{_describe(replay)} (was the venue fed bars the runner was not given?)"
            )
    if len(held) > len(replayed):
        extra = held[len(replayed)][0]
        raise ResumeError(
            f"the venue holds {len(held) - len(replayed)} order(s) the replay did not place, "
            f"from {extra!r} on (resume with every bar the earlier runner saw)"
        )
    if len(held) < len(replayed):  # pragma: no cover - the catch-up places every replayed order
        missing = replayed[len(held)][0]
        raise ResumeError(f"the venue lacks order {missing!r} that the replay placed")
