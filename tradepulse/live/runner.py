"""The live strategy runner: one strategy instance fed bar by bar, trading on a venue.

:class:`StrategyRunner` hosts a strategy exactly as the event-driven backtest
does (:func:`~tradepulse.backtest.run_event` with ``fast_fills=False``): the same
host and context classes, the same step per bar. For each bar it

1. sizes the target orders due on the bar at its open and sends their market
   legs (:meth:`StrategyRunner.prepare_bar`);
2. lets the venue match the bar (:meth:`Venue.process_bar
   <tradepulse.execution.Venue.process_bar>`);
3. books its fills, then calls ``handle_tick`` on the bar's close
   (:meth:`StrategyRunner.complete_bar`).

:meth:`StrategyRunner.on_bar` does all three; a driver that feeds several
runners trading on one shared venue calls ``prepare_bar`` on each, matches the
bar once, then ``complete_bar`` on each with the bar's fills (each runner books
only its own). Replaying a file through a runner therefore places the orders
the backtest of that file places, with the same ids, prices, fills and equity.

Differences from the backtest, all deliberate:

- **Indicators** are recomputed on the bars seen so far, over a bounded
  history (:mod:`tradepulse.live.history`): bit for bit the backtest's values
  while the history holds every bar seen.
- **Ids.** The strategy and :meth:`StrategyRunner.orders` keep the backtest's
  order ids (``t1`` requests, ``t1.1`` legs, ``o2`` explicit orders); at the
  venue they carry the runner id (``<runner_id>:t1.1``), so runners sharing a
  venue never collide and a restarted runner regenerates the same ids.
- **Resume.** A runner that dies is replaced by a new one with the same id,
  strategy, parameters and frictions, which :meth:`StrategyRunner.resume`\\ s
  from the bars the first one saw: it replays them on a private paper venue,
  sends the real venue only what it lacks (an order the dead runner placed is
  recognised by its id, never placed twice), checks that the venue holds
  exactly the replayed orders (:class:`~tradepulse.live.ResumeError` if not)
  and carries on from the next bar.
"""

from __future__ import annotations

import functools
import math
import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal, NoReturn

import numpy as np
import polars as pl
from numpy.typing import NDArray

from tradepulse.backtest.event import (
    EventContext,
    _backtest_result,
    _EventHost,
    _frictions,
    _matching_engine,
    _where,
)
from tradepulse.backtest.runner import resolve_params, resolve_strategy
from tradepulse.backtest.vector import DEFAULT_CASH, BacktestResult, _check_number
from tradepulse.costs.commission import CommissionModel
from tradepulse.costs.sizing import Sizing
from tradepulse.costs.slippage import SlippageModel
from tradepulse.domain.orders import Fill
from tradepulse.errors import ConfigError, DataError, TradePulseError
from tradepulse.execution.liquidity import DepthModel
from tradepulse.execution.matching import BarLike, MatchingEngine
from tradepulse.execution.risk import PreTradeRisk, RiskLimits
from tradepulse.execution.venue import Venue
from tradepulse.live.history import DEFAULT_HISTORY, BarHistory, LiveIndicators
from tradepulse.live.replay import iter_bars
from tradepulse.live.venues import CatchUpVenue, PrefixedVenue, reconcile
from tradepulse.strategy.api import Bar, Strategy, StrategyError
from tradepulse.strategy.params import Params

__all__ = [
    "RUNNER_ID_PATTERN",
    "RunnerError",
    "RunnerState",
    "RunnerStatus",
    "RunnerStep",
    "StrategyRunner",
]

#: What a runner id may look like: it prefixes the runner's order ids at the venue.
RUNNER_ID_PATTERN: Final = r"[A-Za-z0-9_-]{1,32}"
_RUNNER_ID: Final = re.compile(RUNNER_ID_PATTERN)

#: A runner's life: ``new`` (no bar yet), ``running``, ``finalized`` or ``failed``.
RunnerStatus = Literal["new", "running", "finalized", "failed"]


class RunnerError(TradePulseError):
    """A runner cannot take the call: it is finalized or failed, or a bar is half done."""


@dataclass(frozen=True, slots=True)
class RunnerStep:
    """What one bar did to a runner.

    ``bar_index`` is the bar's 0-based position since the runner's start,
    ``ts`` its stamp (UTC nanoseconds); ``fills`` are the runner's fills on the
    bar (venue order ids); ``orders`` the (runner) ids of the orders it placed
    during the step (target legs at the open, then orders from ``handle_tick``);
    ``position`` (units), ``cash`` and ``equity`` (quote currency, marked at the
    close) are as after the step.
    """

    bar_index: int
    ts: int
    fills: tuple[Fill, ...]
    orders: tuple[str, ...]
    position: float
    cash: float
    equity: float


@dataclass(frozen=True, slots=True)
class RunnerState:
    """A runner at a glance (what an API reports).

    ``bars`` is the number of bars processed and ``last_ts`` the last one's
    stamp (``None`` before the first); ``open_orders`` the runner ids of its
    orders still working at the venue; ``failure`` why it failed, if it did.
    """

    runner_id: str
    strategy: str
    symbol: str
    status: RunnerStatus
    bars: int
    last_ts: int | None
    position: float
    cash: float
    equity: float
    open_orders: tuple[str, ...]
    failure: str | None


def _checked_bar(bar: BarLike, index: int, last_ts: int | None) -> Bar:
    """Return ``bar`` as a :class:`Bar` after checking the bar contract and its time.

    Raises:
        DataError: a field is not a number, a price or the volume breaks the
            contract, or ``ts`` does not follow ``last_ts``.
    """
    try:
        ts = bar.ts
        if isinstance(ts, bool) or not isinstance(ts, int | np.integer):
            raise TypeError(f"ts must be an integer (UTC nanoseconds); got {ts!r}")
        checked = Bar(
            int(ts),
            float(bar.open),
            float(bar.high),
            float(bar.low),
            float(bar.close),
            float(bar.volume),
        )
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(
            f"bar {index} is not a bar (ts, open, high, low, close, volume): {exc}"
        ) from None
    _, open_, high, low, close, volume = checked
    if not (
        0.0 < low <= open_ <= high
        and low <= close <= high
        and high < math.inf
        and 0.0 <= volume < math.inf
    ):
        raise DataError(
            f"bar {index} breaks the bar contract (0 < low <= open, close <= high, finite, "
            f"volume >= 0): open={open_!r}, high={high!r}, low={low!r}, close={close!r}, "
            f"volume={volume!r}"
        )
    if last_ts is not None and checked.ts <= last_ts:
        raise DataError(
            f"bar {index}: ts {checked.ts} does not follow the previous bar's ts {last_ts} "
            "(timestamps must strictly increase)"
        )
    return checked


class StrategyRunner:
    """Run ``strategy`` with ``params`` live, one bar at a time, on ``venue``.

    ``strategy`` is a plugin name, a :class:`~tradepulse.strategy.Strategy`
    subclass or a fresh instance; ``params`` its parameters (a mapping, an
    instance of its parameter class, or ``None`` for the defaults). ``venue``
    trades one instrument (a :class:`~tradepulse.execution.MatchingEngine`
    from :func:`~tradepulse.live.paper_venue`, or an adapter to the execution
    service); ``runner_id`` (letters, digits, ``_`` and ``-``, at most 32)
    prefixes the runner's order ids there. ``cash``, ``commission``,
    ``slippage``, ``sizing``, ``latency_bars``, ``max_participation``,
    ``depth`` and ``risk`` mean what they mean for
    :func:`~tradepulse.backtest.run_event` and must describe the venue
    (target orders are sized with ``commission`` and ``slippage``; a resuming
    runner replays on a paper venue built from all of them). ``history`` is
    the number of bars the indicators are computed over (see
    :mod:`tradepulse.live.history`).

    The strategy's ``initialize`` runs before the first bar (or resume).

    Raises:
        ConfigError: an argument is invalid.
        UnknownStrategyError: no plugin has that name.
        ParameterError: a parameter is invalid.
    """

    def __init__(
        self,
        strategy: str | type[Strategy] | Strategy,
        params: Params | Mapping[str, object] | None = None,
        *,
        venue: Venue,
        runner_id: str = "live",
        cash: float = DEFAULT_CASH,
        commission: float | CommissionModel | Iterable[CommissionModel] | None = 0.0,
        slippage: SlippageModel | Iterable[SlippageModel] | None = None,
        sizing: Sizing = "fractional",
        latency_bars: int = 0,
        max_participation: float | None = None,
        depth: DepthModel | None = None,
        risk: RiskLimits | None = None,
        history: int = DEFAULT_HISTORY,
    ) -> None:
        instance = resolve_strategy(strategy)
        typed = resolve_params(instance, params)
        if not isinstance(venue, Venue):
            raise ConfigError(f"venue must implement the Venue protocol; got {venue!r}")
        if not isinstance(runner_id, str) or not _RUNNER_ID.fullmatch(runner_id):
            raise ConfigError(
                f"runner_id must be 1 to 32 letters, digits, '_' or '-'; got {runner_id!r}"
            )
        if risk is not None and not isinstance(risk, RiskLimits):
            raise ConfigError(f"risk must be RiskLimits or None; got {risk!r}")
        initial_cash, fees, friction, latency = _frictions(
            cash=cash,
            commission=commission,
            slippage=slippage,
            sizing=sizing,
            latency_bars=latency_bars,
            periods_per_year=None,
        )
        instrument = venue.instrument
        # The paper venue a resume replays on; built once now to check its arguments.
        self._paper_venue = functools.partial(
            _matching_engine,
            instrument,
            fees=fees,
            friction=friction,
            latency_bars=latency,
            max_participation=max_participation,
            depth=depth,
        )
        self._paper_venue()
        self._strategy = instance
        self._params = typed
        self._runner_id = runner_id
        self._initial_cash = initial_cash
        self._venue = PrefixedVenue(venue, f"{runner_id}:")
        self._host = _EventHost(
            instrument=instrument,
            engine=self._venue,
            commission=fees,
            slippage=friction,
            sizing=sizing,
            latency_bars=latency,
            risk=None if risk is None else PreTradeRisk(risk, commission=fees),
            initial_cash=initial_cash,
            fast_fills=False,
        )
        self._history = BarHistory(history)
        self._indicators = LiveIndicators(instance, typed, self._history)
        self._ctx = EventContext(self._host, typed, self._indicators)
        self._host.ctx = self._ctx
        self._ts = array("q")
        self._close = array("d")
        self._status: RunnerStatus = "new"
        self._failure: str | None = None
        self._current: Bar | None = None  # the bar between prepare_bar and complete_bar

    def __repr__(self) -> str:
        return (
            f"StrategyRunner({self._runner_id!r}, strategy={self._strategy.name!r}, "
            f"params={self._params!r}, status={self._status!r}, bars={len(self._ts)})"
        )

    # ----------------------------------------------------------------- properties

    @property
    def runner_id(self) -> str:
        """Return the runner's id (the prefix of its order ids at the venue)."""
        return self._runner_id

    @property
    def strategy(self) -> Strategy:
        """Return the hosted strategy instance."""
        return self._strategy

    @property
    def params(self) -> Params:
        """Return the strategy's validated parameters."""
        return self._params

    @property
    def venue(self) -> Venue:
        """Return the venue the runner trades on (as given)."""
        inner = self._venue.inner
        return inner.real if isinstance(inner, CatchUpVenue) else inner

    @property
    def bars(self) -> int:
        """Return the number of bars processed: the feed position to continue from."""
        return len(self._ts)

    @property
    def next_target_bar(self) -> int | None:
        """Return the index of the bar at whose open the next target request is sized.

        None when no target request is pending. The next bar's index is
        :attr:`bars`: a value ``<= bars`` means its :meth:`prepare_bar` sends
        the target's legs.
        """
        pending = self._host.pending
        return pending[0].due if pending else None

    def venue_order_id(self, order_id: str) -> str:
        """Return the venue's client order id of the runner's order ``order_id``."""
        return self._venue.venue_id(order_id)

    # ----------------------------------------------------------------- the step

    def _fail(self, step: str, index: int, bar: Bar | None, exc: Exception) -> NoReturn:
        """Mark the runner failed and raise ``exc`` worded as `run_event` words it."""
        name = self._strategy.name
        where = _where(step, index, bar)
        self._status = "failed"
        if isinstance(exc, StrategyError):
            error = StrategyError(f"strategy {name!r} at {where}: {exc}")
        elif isinstance(exc, TradePulseError):
            self._failure = f"at {where}: {exc}"
            raise exc
        else:
            error = StrategyError(
                f"strategy {name!r} raised {type(exc).__name__} at {where}: {exc}"
            )
        self._failure = str(error)
        raise error from exc

    def _check_usable(self, *, mid_bar: bool) -> None:
        if self._status in ("failed", "finalized"):
            detail = f": {self._failure}" if self._failure else ""
            raise RunnerError(
                f"runner {self._runner_id!r} is {self._status}{detail}; start a new runner "
                "(and resume it) to continue"
            )
        if mid_bar and self._current is None:
            raise RunnerError(f"runner {self._runner_id!r}: complete_bar() needs prepare_bar()")
        if not mid_bar and self._current is not None:
            raise RunnerError(
                f"runner {self._runner_id!r}: bar {len(self._ts)} is half done; call complete_bar()"
            )

    def _start(self) -> None:
        self._status = "running"
        try:
            self._strategy.initialize(self._ctx)
        except Exception as exc:
            self._fail("initialize", -1, None, exc)

    def prepare_bar(self, bar: BarLike) -> Bar:
        """Start ``bar``: send the legs of the target orders due on it (sized at its open).

        Return the checked bar, for the venue to match.

        Raises:
            DataError: ``bar`` breaks the bar contract or does not follow the last bar.
            RunnerError: the runner is finalized or failed, or a bar is half done.
            StrategyError: the strategy failed (the runner is then failed).
        """
        self._check_usable(mid_bar=False)
        index = len(self._ts)
        checked = _checked_bar(bar, index, self._ts[-1] if self._ts else None)
        self._venue.created.clear()
        if self._status == "new":
            self._start()  # orders placed in initialize count as the first bar's
        self._history.append(checked)
        self._indicators.invalidate()
        host = self._host
        try:
            if host.pending and host.pending[0].due <= index:
                host.release_targets(index, checked)
        except Exception as exc:
            self._fail("bar", index, checked, exc)
        self._current = checked
        return checked

    def complete_bar(self, fills: Iterable[Fill]) -> RunnerStep:
        """Book the runner's ``fills`` of the prepared bar, then run ``handle_tick`` on it.

        ``fills`` are the venue's fills on the bar; those of other runners are ignored.

        Raises:
            RunnerError: no bar is prepared, or the runner is finalized or failed.
            StrategyError: the strategy failed (the runner is then failed).
        """
        self._check_usable(mid_bar=True)
        bar = self._current
        assert bar is not None  # checked above
        index = len(self._ts)
        venue = self._venue
        host = self._host
        ctx = self._ctx
        own = tuple(fill for fill in fills if venue.owns(fill.client_order_id))
        try:
            if own:
                host.book(index, own)
            ctx._index = index
            ctx._bar = bar
            self._strategy.handle_tick(ctx, bar)
        except Exception as exc:
            self._fail("bar", index, bar, exc)
        self._current = None
        self._ts.append(bar.ts)
        self._close.append(bar.close)
        ledger = host.ledger
        return RunnerStep(
            bar_index=index,
            ts=bar.ts,
            fills=own,
            orders=tuple(venue.created),
            position=ledger.position,
            cash=ledger.cash,
            equity=ledger.cash + ledger.position * bar.close,
        )

    def on_bar(self, bar: BarLike) -> RunnerStep:
        """Process ``bar``: release due targets, let the venue match it, book, ``handle_tick``.

        Raises:
            DataError: ``bar`` breaks the bar contract or does not follow the last bar.
            RunnerError: the runner is finalized or failed, or a bar is half done.
            StrategyError: the strategy failed (the runner is then failed).
            TradePulseError: the venue refused a request (the runner is then failed).
        """
        checked = self.prepare_bar(bar)
        try:
            matched = self._venue.process_bar(checked)
        except Exception as exc:
            self._fail("bar", len(self._ts), checked, exc)
        return self.complete_bar(matched.fills)

    def finalize(self) -> None:
        """Run the strategy's ``finalize``; the runner takes no more bars.

        Raises:
            RunnerError: the runner is already finalized or failed, or a bar is half done.
            StrategyError: the strategy's ``finalize`` failed.
        """
        self._check_usable(mid_bar=False)
        if self._status == "new":
            self._start()
        try:
            self._strategy.finalize(self._ctx)
        except Exception as exc:
            self._fail("finalize", len(self._ts) - 1, None, exc)
        self._status = "finalized"

    # ----------------------------------------------------------------- resume

    def resume(self, bars: pl.DataFrame | Iterable[BarLike]) -> RunnerState:
        """Rebuild the state of an earlier runner with this id from the bars it saw.

        Call it on a new runner, before any bar, with the same strategy,
        parameters and frictions as the earlier one and the bars it was fed
        (a frame or bars in order; more bars than it finished is fine: the
        venue gets what it lacks). The bars are replayed on a private paper
        venue built from the runner's frictions; a request reaches the real
        venue only if the venue lacks it (see
        :class:`~tradepulse.live.venues.CatchUpVenue`). Afterwards the venue
        must hold exactly the replayed orders of this runner. Return the state.

        Raises:
            RunnerError: the runner has already started.
            ResumeError: the venue's orders differ from the replay's (the
                runner is then failed).
            DataError: a bar breaks the bar contract or is out of order.
            StrategyError: the strategy failed during the replay.
        """
        if self._status != "new":
            raise RunnerError(
                f"runner {self._runner_id!r}: resume() must come before the first bar"
            )
        venue = self._venue
        real = venue.inner
        shadow: MatchingEngine = self._paper_venue()
        venue.inner = CatchUpVenue(shadow, real)
        try:
            self._start()
            source = iter_bars(bars) if isinstance(bars, pl.DataFrame) else bars
            for bar in source:
                self.on_bar(bar)
            reconcile(shadow, real, venue.prefix)
        except TradePulseError as exc:
            self._failure = self._failure or str(exc)
            self._status = "failed"
            raise
        finally:
            venue.inner = real
        return self.state()

    # ----------------------------------------------------------------- reports

    def orders(self) -> pl.DataFrame:
        """Return the runner's order log, as `run_event`'s ``BacktestResult.orders``.

        Ids are the runner's (the backtest's); :meth:`venue_order_id` maps them
        to the venue's.
        """
        return self._order_frame(np.array(self._ts, dtype=np.int64))

    def _order_frame(self, ts: NDArray[np.int64]) -> pl.DataFrame:
        frame = self._host.order_frame(ts)
        # The venue words a replacement's reason with its id ("replaced by 'r1:o8'").
        quoted = f"'{self._venue.prefix}"
        return frame.with_columns(pl.col("reason").str.replace_all(quoted, "'", literal=True))

    def result(self, *, periods_per_year: float | None = None) -> BacktestResult:
        """Return the run so far as a backtest result (equity per bar, trades, fills, orders).

        A trade still open is marked to the last close, as at the end of a backtest.

        Raises:
            RunnerError: no bar has been processed.
            ConfigError: ``periods_per_year`` is invalid.
        """
        if not self._ts:
            raise RunnerError(f"runner {self._runner_id!r} has processed no bar yet")
        if periods_per_year is not None:
            _check_number("periods_per_year", periods_per_year, low=0.0)
        ts = np.array(self._ts, dtype=np.int64)
        close = np.array(self._close, dtype=np.float64)
        return _backtest_result(
            self._host.ledger.copy(),
            self._order_frame(ts),
            ts,
            close,
            initial_cash=self._initial_cash,
            periods_per_year=periods_per_year,
        )

    def state(self) -> RunnerState:
        """Return the runner's current state."""
        ledger = self._host.ledger
        cut = len(self._venue.prefix)
        last_ts = self._ts[-1] if self._ts else None
        equity = ledger.cash + ledger.position * self._close[-1] if self._close else ledger.cash
        return RunnerState(
            runner_id=self._runner_id,
            strategy=self._strategy.name,
            symbol=self._venue.instrument.symbol,
            status=self._status,
            bars=len(self._ts),
            last_ts=last_ts,
            position=ledger.position,
            cash=ledger.cash,
            equity=equity,
            open_orders=tuple(record.client_order_id[cut:] for record in self._venue.open_orders),
            failure=self._failure,
        )
