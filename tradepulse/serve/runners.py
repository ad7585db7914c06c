"""Strategy runners on Ray Serve: an autoscaling, multiplexed deployment and its client.

:class:`StrategyRunners` hosts strategies' :class:`~tradepulse.live.host.RunnerHost` s.
A strategy lives on one replica: requests carry the strategy id as Serve's
*multiplexed model id*, so Serve routes them to the replica that holds it, and
the replica's multiplexed loader builds a host on first use (or after the
replica restarted, or evicted the strategy past
:data:`MAX_STRATEGIES_PER_REPLICA`). A host built that way has no state yet: it
answers ``needs_history``, and the ingress sends the request again with the
bars the service processed for the strategy, the service's refusals of its
orders and its own cancels of them (a user's cancel, the kill switch; each
with the bar after which it took effect), from which the host rebuilds the
runner exactly (the loader rebuilds at once when the request already carries
them). Commands a rebuilt runner repeats are harmless: the service
deduplicates them by client order id. Between rebuilds, each request carries
the service's refusals and cancels found since the previous one, which the
host applies to its shadow before it matches the next bar.

:class:`ServeRunners` is the ingress's :class:`~tradepulse.live.host.RunnerClient`
over the deployment's handle. A call that fails because the replica died or is
not reachable is retried (with backoff, up to ``retry_seconds``) while Serve
replaces the replica. A liveness ping (phase ``ping``) is tried once: it holds
the pipeline's lock, so bars must not wait for it, and the next ping comes
soon (its rebuild, when the replica answers ``needs_history``, is retried as
usual).

Replicas hold no state of their own worth keeping and take no CPU reservation
(``num_cpus: 0``): the deployment autoscales on ongoing requests between the
application args' ``runners.min_replicas`` and ``runners.max_replicas``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Any, Final

from ray import serve
from ray.exceptions import ActorUnavailableError, RayActorError
from ray.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    ReplicaUnavailableError,
    RequestCancelledError,
)
from ray.serve.handle import DeploymentHandle

from tradepulse.errors import ConfigError
from tradepulse.live.host import HostReply, HostRequest, RunnerHost
from tradepulse.serve.settings import RunnerArgs
from tradepulse.serve.strategies import RunnerUnavailableError

__all__ = [
    "DEFAULT_RETRY_SECONDS",
    "MAX_STRATEGIES_PER_REPLICA",
    "STRATEGY_RUNNERS",
    "ServeRunners",
    "StrategyRunners",
    "runner_deployment_options",
]

#: The runner deployment's name.
STRATEGY_RUNNERS: Final = "StrategyRunners"
#: Strategies one replica holds before the least recently used is dropped (it
#: is rebuilt from the service's journal when it trades again).
MAX_STRATEGIES_PER_REPLICA: Final = 64
#: How long the ingress retries a call whose replica died or is unreachable, seconds.
DEFAULT_RETRY_SECONDS: Final = 60.0
# Failures of the transport, not of the request: the replica died, is being
# replaced or is overloaded. Anything else (a bug in a host) is not retried.
_RETRYABLE: Final = (
    RayActorError,
    ActorUnavailableError,
    ReplicaUnavailableError,
    DeploymentUnavailableError,
    BackPressureError,
    RequestCancelledError,
)
_FIRST_DELAY_SECONDS: Final = 0.1
_MAX_DELAY_SECONDS: Final = 1.0
# The request being served, for the multiplexed loader (which only gets the id).
_REQUEST: Final[contextvars.ContextVar[HostRequest | None]] = contextvars.ContextVar(
    "tradepulse_runner_request", default=None
)

_log = logging.getLogger(__name__)


# Module functions, not the variable, in the deployment's code: Serve pickles the
# deployment class by value, and a ContextVar cannot be pickled.
def _current_request() -> HostRequest | None:
    """Return the request being served."""
    return _REQUEST.get()


def _serving(request: HostRequest) -> contextvars.Token[HostRequest | None]:
    """Make ``request`` the one being served; return the token that undoes it."""
    return _REQUEST.set(request)


def _served(token: contextvars.Token[HostRequest | None]) -> None:
    """Undo :func:`_serving`."""
    _REQUEST.reset(token)


def runner_deployment_options(args: RunnerArgs) -> dict[str, Any]:
    """Return the Serve options of :class:`StrategyRunners` for the ``runners`` args."""
    return {
        "autoscaling_config": {
            "min_replicas": args.min_replicas,
            "max_replicas": args.max_replicas,
            "target_ongoing_requests": args.target_ongoing_requests,
        },
    }


@serve.deployment(
    name=STRATEGY_RUNNERS,
    ray_actor_options={"num_cpus": 0},
    max_ongoing_requests=32,
    health_check_period_s=2.0,
    health_check_timeout_s=10.0,
    graceful_shutdown_timeout_s=5.0,
)
class StrategyRunners:
    """Replicas hosting live strategies, one strategy per multiplexed model id."""

    @serve.multiplexed(max_num_models_per_replica=MAX_STRATEGIES_PER_REPLICA)  # type: ignore[untyped-decorator]  # Ray's decorator is untyped
    async def _host(self, strategy_id: str) -> RunnerHost:
        """Build the host of ``strategy_id`` from the request's spec (and history, if sent)."""
        request = _current_request()
        if request is None or request.spec.strategy_id != strategy_id:
            raise ConfigError(f"no request for strategy {strategy_id!r} to build its runner from")
        # A rebuild replays every bar: off the replica's event loop (health checks).
        return await asyncio.to_thread(RunnerHost, request.spec, history=request.history)

    async def step(self, request: HostRequest) -> HostReply:
        """Answer ``request`` with its strategy's host (see :mod:`tradepulse.live.host`).

        The host works in a thread, so a long step (a rebuild replays every bar
        the strategy saw) never stalls the replica's event loop; one strategy's
        requests come one at a time from the ingress.
        """
        token = _serving(request)
        try:
            host: RunnerHost = await self._host(request.spec.strategy_id)
        finally:
            _served(token)
        return await asyncio.to_thread(host.handle, request)


class ServeRunners:
    """The ingress's client of :class:`StrategyRunners`, retrying calls a lost replica dropped.

    Raises:
        ConfigError: ``retry_seconds`` is not positive.
    """

    def __init__(
        self, handle: DeploymentHandle[Any], *, retry_seconds: float = DEFAULT_RETRY_SECONDS
    ) -> None:
        if not retry_seconds > 0:
            raise ConfigError(f"retry_seconds must be > 0; got {retry_seconds!r}")
        self._handle = handle
        self._retry_seconds = retry_seconds
        self._handles: dict[str, DeploymentHandle[Any]] = {}

    def __repr__(self) -> str:
        return f"ServeRunners({STRATEGY_RUNNERS}, retry_seconds={self._retry_seconds})"

    def _for(self, strategy_id: str) -> DeploymentHandle[Any]:
        handle = self._handles.get(strategy_id)
        if handle is None:
            handle = self._handle.options(multiplexed_model_id=strategy_id)
            self._handles[strategy_id] = handle
        return handle

    async def step(self, request: HostRequest) -> HostReply:
        """Send ``request`` to the replica holding its strategy; retry while replicas are replaced.

        A ping without a history is tried once.

        Raises:
            RunnerUnavailableError: no replica answered within ``retry_seconds``
                (or the ping's one attempt failed).
        """
        strategy_id = request.spec.strategy_id
        once = request.phase == "ping" and request.history is None
        deadline = time.monotonic() + self._retry_seconds
        delay = _FIRST_DELAY_SECONDS
        attempt = 0
        while True:
            attempt += 1
            try:
                reply: HostReply = await self._for(strategy_id).step.remote(request)
            except _RETRYABLE as error:
                if once:
                    raise RunnerUnavailableError(
                        f"strategy {strategy_id!r}: its runner replica did not answer the ping "
                        f"({type(error).__name__})"
                    ) from error
                if time.monotonic() + delay > deadline:
                    raise RunnerUnavailableError(
                        f"strategy {strategy_id!r}: no runner replica answered in "
                        f"{self._retry_seconds:g} s ({attempt} attempts; last: "
                        f"{type(error).__name__})"
                    ) from error
                _log.warning(
                    "strategy %s: runner call failed (%s), retrying in %.1f s",
                    strategy_id,
                    type(error).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, _MAX_DELAY_SECONDS)
                continue
            return reply
