"""When did the current HTTP request arrive: the clock the acknowledgement latency starts from.

:class:`RequestClockMiddleware` stamps each HTTP request on arrival, and
:func:`request_received` returns that stamp to whatever runs inside the
request (:class:`~tradepulse.serve.metrics.MeteredBackend`), so the latency it
observes covers authentication, parsing and validation, not just the backend
call. Re-exported by :mod:`tradepulse.serve.metrics`.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["RequestClockMiddleware", "request_received"]

# The clock's reading when the current HTTP request arrived (set by RequestClockMiddleware).
_REQUEST_RECEIVED: Final[contextvars.ContextVar[float | None]] = contextvars.ContextVar(
    "tradepulse_request_received", default=None
)


def request_received() -> float | None:
    """Return the clock reading of the current request's arrival, or None outside a stamped one."""
    return _REQUEST_RECEIVED.get()


class RequestClockMiddleware:
    """Stamp each HTTP request's arrival: where its acknowledgement latency starts.

    Add it outermost (``app.add_middleware(RequestClockMiddleware, clock=metrics.clock)``
    after :func:`~tradepulse.serve.api.create_app`): the acknowledgement
    latency then covers authentication, parsing and validation too. Without
    it, latency is measured from the backend call.
    """

    def __init__(self, app: ASGIApp, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self.app = app
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = _REQUEST_RECEIVED.set(self.clock())
        try:
            await self.app(scope, receive, send)
        finally:
            _REQUEST_RECEIVED.reset(token)
