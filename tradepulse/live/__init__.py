"""Live strategy hosting (pure core, no Ray or HTTP): runners, venues, a replay feed.

``StrategyRunner("sma_cross", {"fast": 10, "slow": 30}, venue=paper_venue(instrument))``
hosts a plugin strategy live: ``runner.on_bar(bar)`` per bar places exactly the
orders :func:`~tradepulse.backtest.run_event` places for the same bars (with
``fast_fills=False``), on any :class:`~tradepulse.execution.venue.Venue`.
``ReplayFeed(path, speed=...)`` replays a data file bar by bar. A runner that
died is replaced by a new one that :meth:`~StrategyRunner.resume`\\ s from the
bars the first one saw, without placing any order twice. A
:class:`RunnerHost` keeps a runner away from the execution service, trading on
a shadow venue: it answers commands for the service and takes back the
service's refusals (:class:`Ack`) and its own cancels of the runner's orders
(:class:`ServiceCancel`). The Serve layer wraps these in deployments; see
:mod:`tradepulse.live.runner` and :mod:`tradepulse.live.host` for the conventions.
"""

from __future__ import annotations

from tradepulse.live.history import DEFAULT_HISTORY, BarHistory, LiveIndicators
from tradepulse.live.host import (
    History,
    HostReply,
    HostRequest,
    HostStep,
    LocalRunners,
    RunnerClient,
    RunnerHost,
    RunnerPool,
    RunnerSpec,
)
from tradepulse.live.outbox import Ack, Command, RecordingVenue, ServiceCancel
from tradepulse.live.registry import (
    StrategyConflictError,
    StrategyRecord,
    StrategyRegistry,
    registry_path,
)
from tradepulse.live.replay import FeedBar, ReplayFeed, iter_bars
from tradepulse.live.runner import (
    RUNNER_ID_PATTERN,
    RunnerError,
    RunnerState,
    RunnerStatus,
    RunnerStep,
    StrategyRunner,
)
from tradepulse.live.venues import (
    CatchUpVenue,
    ForwardingVenue,
    PrefixedVenue,
    ResumeError,
    paper_venue,
    reconcile,
)

__all__ = [
    "DEFAULT_HISTORY",
    "RUNNER_ID_PATTERN",
    "Ack",
    "BarHistory",
    "CatchUpVenue",
    "Command",
    "FeedBar",
    "ForwardingVenue",
    "History",
    "HostReply",
    "HostRequest",
    "HostStep",
    "LiveIndicators",
    "LocalRunners",
    "PrefixedVenue",
    "RecordingVenue",
    "ReplayFeed",
    "ResumeError",
    "RunnerClient",
    "RunnerError",
    "RunnerHost",
    "RunnerPool",
    "RunnerSpec",
    "RunnerState",
    "RunnerStatus",
    "RunnerStep",
    "ServiceCancel",
    "StrategyConflictError",
    "StrategyRecord",
    "StrategyRegistry",
    "StrategyRunner",
    "iter_bars",
    "paper_venue",
    "reconcile",
    "registry_path",
]
