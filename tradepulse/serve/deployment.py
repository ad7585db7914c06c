"""The live application on Ray Serve: deployments and the typed application builder.

``serve/config.yaml`` names :func:`build_app` as its ``import_path``; Serve
validates the application's ``args`` against :class:`~tradepulse.serve.settings.AppArgs`
(the builder's annotation) and calls it. ``tradepulse serve`` does the same in
process (:func:`tradepulse.serve.runtime.start_application`).

:class:`TradingApi` is the ingress: the FastAPI app of :mod:`tradepulse.serve.api`
with the :class:`~tradepulse.execution.ExecutionService` *in the same
replica*. An order therefore costs one hop (Serve's proxy to this replica),
not two, and the deployment runs exactly one replica: the service's journal
has one writer (a second replica would find the journal locked and fail to
start). If the replica dies, Serve starts a new one, which rebuilds every
order, fill and idempotency key from the journal before it takes traffic.

This module deliberately has no ``from __future__ import annotations``: Serve
reads the builder's parameter annotation at run time to find its pydantic
model.
"""

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle

from tradepulse.errors import ConfigError
from tradepulse.execution.journal import Journal
from tradepulse.execution.service import ExecutionService
from tradepulse.live.host import LocalRunners, RunnerClient
from tradepulse.live.registry import StrategyRegistry, registry_path
from tradepulse.serve.api import create_app
from tradepulse.serve.auth import ApiKeyStore
from tradepulse.serve.backend import InProcessBackend
from tradepulse.serve.metrics import (
    MeteredBackend,
    RequestClockMiddleware,
    TradingMetrics,
    metrics_router,
)
from tradepulse.serve.routes_strategies import strategies_router
from tradepulse.serve.runners import ServeRunners, StrategyRunners, runner_deployment_options
from tradepulse.serve.settings import (
    AppArgs,
    key_entries,
    load_keys,
    load_service_config,
    parse_app_args,
)
from tradepulse.serve.strategies import StrategyPipeline

__all__ = [
    "TRADING_API",
    "TradingApi",
    "TradingApp",
    "build_app",
    "create_trading_app",
    "resolve_args",
]

#: The ingress deployment's name.
TRADING_API: Final = "TradingApi"
# Requests one replica takes at once: orders are microseconds of work each, and
# queueing them in the replica is cheaper than in the proxy.
_MAX_ONGOING_REQUESTS: Final = 256
# Calls between two gc.freeze() of the service's long-lived state (InProcessBackend).
_FREEZE_GC_EVERY: Final = 5000

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TradingApp:
    """The live API: its FastAPI ``app``, the execution ``service`` and the ``strategies``."""

    app: FastAPI
    service: ExecutionService
    strategies: StrategyPipeline | None = None


def create_trading_app(
    args: AppArgs | Mapping[str, Any], *, runners: RunnerClient | None = None
) -> TradingApp:
    """Open the journal, rebuild the service from it and return the API over it.

    ``args`` are resolved application arguments (see :func:`resolve_args`);
    ``runners`` hosts the live strategies' runners (default: in this process;
    :class:`TradingApi` uses the :class:`~tradepulse.serve.runners.StrategyRunners`
    deployment). The strategy registry is the file next to the journal
    (:func:`~tradepulse.live.registry.registry_path`).
    :class:`TradingApi` runs this in its replica; ``benchmarks/bench_serve.py``
    serves the same app with plain uvicorn for comparison.

    Raises:
        ConfigError: an argument or the service config is invalid, or the
            journal cannot be opened (another writer holds it, ...).
        JournalError: replaying the journal does not reproduce its events.
    """
    parsed = parse_app_args(args)
    config = load_service_config(parsed.service_config)
    journal = Journal.open(parsed.journal, synchronous=parsed.journal_sync)
    try:
        service = ExecutionService(journal=journal, config=config)
    except BaseException:
        journal.close()
        raise
    keys = ApiKeyStore.from_entries(list(parsed.api_keys), source="api_keys")
    # The metrics live in this process with the service: with the single
    # replica, a scrape of /api/v1/metrics sees every order.
    metrics = TradingMetrics()
    # Group commit: the calls that arrive while a journal commit is being written
    # share the next one (one sync for many orders), and each caller is answered
    # after the commit that holds its call. Freezing the long-lived objects keeps
    # full GC passes off the order history (p99 at 400 orders/s: 44-73 -> 12-25 ms).
    # Measurements: docs/live-performance.md.
    backend = MeteredBackend(
        InProcessBackend(service, group_commit=True, freeze_gc_every=_FREEZE_GC_EVERY), metrics
    )
    pipeline = StrategyPipeline(
        backend=backend,
        ledger=service,
        registry=StrategyRegistry(registry_path(parsed.journal)),
        runners=LocalRunners() if runners is None else runners,
        heartbeat=metrics.heartbeat,
        stopped=metrics.strategy_stopped,
        bar=metrics.strategy_bar,
    )
    app = create_app(
        backend,
        keys=keys,
        max_body_bytes=parsed.max_body_bytes,
        routers=[metrics_router(metrics, refresh=backend.refresh), strategies_router(pipeline)],
        bar_pipeline=pipeline,
        has_strategy=pipeline.has_strategy,
    )
    app.add_middleware(RequestClockMiddleware, clock=metrics.clock)
    app.router.lifespan_context = _pinging(pipeline, parsed.runners.ping_seconds)
    _log.info(
        "TradePulse API ready: journal %s (%d events replayed), %d API key(s)",
        journal.path,
        journal.last_sequence,
        len(keys),
    )
    return TradingApp(app=app, service=service, strategies=pipeline)


def _pinging(
    pipeline: StrategyPipeline, interval: float
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Return the app's lifespan: the runners' liveness pings while it serves (0: none)."""

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        pipeline.start_pings(interval)
        try:
            yield
        finally:
            await pipeline.stop_pings()

    return lifespan


@serve.deployment(
    name=TRADING_API,
    num_replicas=1,  # the journal's single writer
    max_ongoing_requests=_MAX_ONGOING_REQUESTS,
    ray_actor_options={"num_cpus": 0},
    health_check_period_s=2.0,
    health_check_timeout_s=10.0,
    graceful_shutdown_timeout_s=5.0,
)
@serve.ingress()
class TradingApi:
    """The HTTP API and the execution service it fronts, in one replica.

    ``args`` are :class:`AppArgs` as a mapping, with the API keys already
    resolved into hashed entries by :func:`build_app` (secrets never travel);
    ``runners`` is the handle of the strategy runners' deployment (None: runners
    in this replica).
    """

    def __init__(self, args: dict[str, Any], runners: DeploymentHandle[Any] | None = None) -> None:
        trading = create_trading_app(
            args, runners=None if runners is None else ServeRunners(runners)
        )
        self._service = trading.service
        self._app = trading.app

    def __serve_build_asgi_app__(self) -> FastAPI:
        """Return the FastAPI app (Serve calls this after ``__init__``)."""
        return self._app

    def check_health(self) -> None:
        """Serve's health check: fail once the journal is closed (Serve then replaces the replica).

        Raises:
            RuntimeError: the journal is closed.
        """
        if self._service.journal.closed:
            raise RuntimeError(f"journal {self._service.journal.path} is closed")


def resolve_args(args: AppArgs | dict[str, Any] | None) -> AppArgs:
    """Return ``args`` validated, with every API key source folded into hashed entries.

    Relative ``journal`` and ``service_config`` paths are made absolute here.

    Raises:
        ConfigError: an argument, the service config or a key source is invalid,
            or no API key is configured at all.
    """
    parsed = parse_app_args(args)
    load_service_config(parsed.service_config)  # fail here, not in a replica
    keys = load_keys(parsed)
    if len(keys) == 0:
        raise ConfigError(
            "no API keys configured: set TRADEPULSE_API_KEYS='id:scope[+scope]:secret' "
            "(scopes read, trade, admin), or api_keys_file in the application args"
        )
    # Relative paths mean "from where the application was built", not from a
    # replica's working directory.
    service_config = parsed.service_config
    if service_config is not None:
        service_config = str(Path(service_config).resolve())
    journal = (
        parsed.journal if parsed.journal == ":memory:" else str(Path(parsed.journal).resolve())
    )
    return parsed.model_copy(
        update={
            "api_keys": key_entries(keys),
            "api_keys_file": None,
            "journal": journal,
            "service_config": service_config,
        }
    )


def build_app(args: AppArgs) -> Application:
    """Build the live application from its arguments (Serve's typed application builder).

    Raises:
        ConfigError: see :func:`resolve_args`.
    """
    resolved = resolve_args(args)
    runners = StrategyRunners.options(  # type: ignore[attr-defined]
        **runner_deployment_options(resolved.runners)
    ).bind()
    application: Application = TradingApi.bind(  # type: ignore[attr-defined]
        resolved.model_dump(mode="json"), runners
    )
    return application
