"""The Prometheus scrape route: ``GET /metrics`` (``read`` scope, mounted under ``/api/v1``).

Re-exported by :mod:`tradepulse.serve.metrics`, which defines the metrics it
serves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter
from starlette.responses import Response

from tradepulse.errors import ConfigError
from tradepulse.serve.auth import Scope, requires

if TYPE_CHECKING:  # tradepulse.serve.metrics re-exports this module: no import at run time
    from tradepulse.serve.metrics import TradingMetrics

__all__ = ["metrics_router"]

# The metrics' logger, whichever of their modules logs.
_log = logging.getLogger("tradepulse.serve.metrics")


def metrics_router(
    metrics: TradingMetrics,
    *,
    refresh: Callable[[], Awaitable[object]] | None = None,
    refresh_timeout_seconds: float = 2.0,
) -> APIRouter:
    """Return ``GET /metrics`` (``read`` scope): ``metrics`` in Prometheus text format.

    ``refresh`` (say, :meth:`~tradepulse.serve.metrics.MeteredBackend.refresh`)
    runs before each scrape so the gauges are current; if it fails or takes
    longer than ``refresh_timeout_seconds``, the last values are served.

    Raises:
        ConfigError: ``refresh_timeout_seconds`` is not positive.
    """
    if not refresh_timeout_seconds > 0:
        raise ConfigError(f"refresh_timeout_seconds must be > 0, got {refresh_timeout_seconds!r}")
    router = APIRouter(tags=["observability"])

    @router.get(
        "/metrics",
        response_class=Response,
        openapi_extra=requires(Scope.READ),
        responses={
            200: {
                "description": "Prometheus text exposition format 0.0.4",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def get_metrics() -> Response:
        """Return the service's Prometheus metrics (orders, fills, latency, positions, PnL)."""
        if refresh is not None:
            try:
                await asyncio.wait_for(refresh(), timeout=refresh_timeout_seconds)
            except Exception as error:  # a scrape serves the last values rather than fail
                _log.warning("metrics: refresh before the scrape failed: %r", error)
        body, content_type = metrics.render()
        return Response(content=body, media_type=content_type)

    return router
