"""The FastAPI application: ``/api/v1`` routes, versioning, authentication and error bodies.

:func:`create_app` assembles the app around an
:class:`~tradepulse.serve.backend.ExecutionBackend`. Three pure ASGI
middlewares run before any route, outermost first:

1. **versioning**: every response (errors included) carries
   ``X-TradePulse-Version``; a request whose ``X-TradePulse-Version`` is
   malformed or names another major version gets 400;
2. **authentication**: ``Authorization: Bearer <secret>`` is checked against
   the :class:`~tradepulse.serve.auth.ApiKeyStore` *before the body is read*,
   so a request without a valid key gets 401 and one lacking the scope 403,
   whatever its body. The scope comes from the matched route's
   ``x-required-scope`` (see :func:`~tradepulse.serve.auth.requires`), else
   ``read`` for GET/HEAD/OPTIONS and ``trade`` for everything else;
3. **body limit**: a ``Content-Length`` above ``max_body_bytes`` gets 413
   before any byte is read, and a streamed body is cut off (413) as soon as it
   passes the limit.

Every error body has the shape ``{"error": {"code", "message", "details"}}``.
An exception the code did not mean to raise is answered 500 (and re-raised,
so servers log it and test clients fail).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tradepulse import __version__
from tradepulse.errors import ConfigError, TradePulseError
from tradepulse.serve.auth import (
    API_KEY_SCOPE_KEY,
    PUBLIC,
    REQUIRED_SCOPE_EXTENSION,
    ApiKeyStore,
    parse_bearer,
    requires,
)
from tradepulse.serve.auth import Scope as KeyScope
from tradepulse.serve.backend import (
    BarPipeline,
    ExecutionBackend,
    MarketDataSink,
    classify_error,
)
from tradepulse.serve.models import (
    RETRY_AFTER_SECONDS,
    UNAVAILABLE_RESPONSE,
    ErrorDetail,
    ErrorInfo,
    ErrorOut,
    HealthOut,
    ReadyOut,
)
from tradepulse.serve.routes_market import market_router
from tradepulse.serve.routes_orders import orders_router
from tradepulse.serve.strategy_orders import HasStrategy

__all__ = [
    "API_PREFIX",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_READY_TIMEOUT_SECONDS",
    "VERSION_HEADER",
    "create_app",
    "error_response",
    "parse_version",
]

_log = logging.getLogger(__name__)

#: Every route lives under this prefix.
API_PREFIX: Final = "/api/v1"
#: The header carrying the package version, both ways.
VERSION_HEADER: Final = "X-TradePulse-Version"
#: Largest accepted request body, bytes (64 KiB).
DEFAULT_MAX_BODY_BYTES: Final = 64 * 1024
#: How long ``/ready`` waits for the backend, seconds.
DEFAULT_READY_TIMEOUT_SECONDS: Final = 2.0

_VERSION: Final = re.compile(
    r"v?(\d{1,6})(?:\.(\d{1,6})){0,2}(?:[-+.]?[0-9A-Za-z][0-9A-Za-z.+-]*)?"
)
_MAX_VERSION_TEXT: Final = 64
# What FastAPI says for a body json.loads fails on other than by a syntax error.
_FASTAPI_PARSE_FAILURE: Final = "There was an error parsing the body"
# The prefix pydantic gives the message of a ValueError raised by a validator.
_PYDANTIC_VALUE_ERROR: Final = "Value error, "
_MUTATING: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_UNAVAILABLE: Final = 503
_STATUS_CODES: Final[Mapping[int, str]] = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    500: "internal_error",
    503: "service_unavailable",
}
_ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    status: {"model": ErrorOut, "description": description}
    for status, description in (
        (400, "Malformed request or unsupported API version"),
        (401, "Missing or invalid API key"),
        (403, "The API key lacks the scope"),
        (422, "Invalid body, query or path (field errors in details)"),
    )
}
# The core routes all reach the execution service; extra routers declare their own 503s.
_CORE_ERROR_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    **_ERROR_RESPONSES,
    _UNAVAILABLE: UNAVAILABLE_RESPONSE,
}


def parse_version(text: str) -> int:
    """Return the major version of ``text`` (``"0.1.0"``, ``"2"``, ``"v1.2"``, ``"0.1.0rc1"``).

    Raises:
        ValueError: ``text`` is not a version.
    """
    match = _VERSION.fullmatch(text.strip()) if len(text) <= _MAX_VERSION_TEXT else None
    if match is None:
        raise ValueError(f"not a version: {text[:_MAX_VERSION_TEXT]!r}")
    return int(match.group(1))


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Iterable[ErrorDetail] = (),
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """Return the JSON error body every failure uses (``code`` defaults from ``status``).

    A 503 carries ``Retry-After`` (:data:`RETRY_AFTER_SECONDS`) unless
    ``headers`` set it.
    """
    if status == _UNAVAILABLE and not any(
        name.lower() == "retry-after" for name in (headers or {})
    ):
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_SECONDS)}
    body = ErrorOut(
        error=ErrorInfo(
            code=code or _STATUS_CODES.get(status, f"http_{status}"),
            message=message,
            details=list(details),
        )
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=status, headers=headers)


class _VersionMiddleware:
    """Stamp ``X-TradePulse-Version`` on every response; refuse another major version."""

    def __init__(self, app: ASGIApp, *, version: str) -> None:
        self.app = app
        self.version = version
        self.major = parse_version(version)
        self._header = (VERSION_HEADER.lower().encode("latin-1"), version.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == self._header[0] for name, _ in headers):
                    headers.append(self._header)
                message = {**message, "headers": headers}
            await send(message)

        problem = self._check(scope)
        if problem is not None:
            await error_response(400, problem[1], code=problem[0])(scope, receive, stamped)
            return
        await self.app(scope, receive, stamped)

    def _check(self, scope: Scope) -> tuple[str, str] | None:
        wanted = self._header[0]
        for name, raw in scope.get("headers", ()):
            if name.lower() != wanted:
                continue
            sent = raw.decode("latin-1")
            served = (
                f"this server serves API major version {self.major} (TradePulse {self.version})"
            )
            try:
                major = parse_version(sent)
            except ValueError:
                return (
                    "invalid_version",
                    f"{VERSION_HEADER} must be a version such as {self.version!r}; "
                    f"got {sent[:_MAX_VERSION_TEXT]!r}; {served}",
                )
            if major != self.major:
                return "unsupported_version", f"{served}; you sent {sent}"
        return None


@dataclass(frozen=True, slots=True)
class _RouteScope:
    """The scope one route declared: its path pattern, methods and scope (None: public)."""

    pattern: re.Pattern[str]
    methods: frozenset[str]
    scope: KeyScope | None


def _route_path(scope: Scope) -> str:
    """Return the path the router matches: the request's, less the root path (as Starlette does)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root) :] if root and path.startswith(root) else path


def _method_table(
    routers: Iterable[APIRouter], *, prefix: str
) -> list[tuple[re.Pattern[str], frozenset[str]]]:
    """Return each route's path pattern (matched like Starlette matches it) and methods."""
    return [
        (compile_path(prefix + route.path)[0], frozenset(route.methods or ()))
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
    ]


def _scope_table(routers: Iterable[APIRouter], *, prefix: str) -> list[_RouteScope]:
    """Return the declared scopes of ``routers``' routes, matched like Starlette matches them."""
    table = []
    for router in routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                continue
            declared = (route.openapi_extra or {}).get(REQUIRED_SCOPE_EXTENSION)
            if declared is None:
                continue
            pattern, _, _ = compile_path(prefix + route.path)
            table.append(
                _RouteScope(
                    pattern,
                    frozenset(route.methods or ()),
                    None if declared == PUBLIC else KeyScope(declared),
                )
            )
    return table


class _AuthMiddleware:
    """Authenticate the bearer key and check the route's scope before the body is read."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: ApiKeyStore,
        table: Sequence[_RouteScope],
        public: frozenset[str],
    ) -> None:
        self.app = app
        self.keys = keys
        self.table = tuple(table)
        self.public = public

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = self._required(scope)
        if needed is None:
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, raw in scope.get("headers", ()):
            if name.lower() == b"authorization":
                authorization = raw.decode("latin-1")
                break
        key = self.keys.authenticate(parse_bearer(authorization))
        if key is None:
            response = error_response(
                401,
                "a valid API key is required: send 'Authorization: Bearer <secret>'",
                headers={"WWW-Authenticate": 'Bearer realm="tradepulse"'},
            )
            await response(scope, receive, send)
            return
        if not key.allows(needed):
            response = error_response(
                403,
                f"API key {key.key_id!r} lacks the {needed} scope "
                f"(it has: {', '.join(sorted(key.scopes))})",
                headers={
                    "WWW-Authenticate": (
                        f'Bearer realm="tradepulse", error="insufficient_scope", scope="{needed}"'
                    )
                },
            )
            await response(scope, receive, send)
            return
        scope[API_KEY_SCOPE_KEY] = key
        await self.app(scope, receive, send)

    def _required(self, scope: Scope) -> KeyScope | None:
        """Return the scope the request needs, or None for a public route."""
        path = _route_path(scope)
        method = str(scope.get("method", ""))
        if path in self.public and method in ("GET", "HEAD"):
            return None
        for route in self.table:
            if method in route.methods and route.pattern.fullmatch(path):
                return route.scope
        return KeyScope.TRADE if method in _MUTATING else KeyScope.READ


class _BodyLimitMiddleware:
    """Answer 413 for a body above ``max_bytes``, by ``Content-Length`` or while streaming."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, raw in scope.get("headers", ()):
            if name.lower() == b"content-length":
                if not raw.isdigit() or len(raw) > 18:
                    await error_response(400, "Content-Length must be a number of bytes")(
                        scope, receive, send
                    )
                    return
                if int(raw) > self.max_bytes:
                    await self._too_large(scope, receive, send)
                    return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise HTTPException(413, self._message)
            return message

        await self.app(scope, limited, send)

    @property
    def _message(self) -> str:
        return f"the request body is larger than {self.max_bytes} bytes"

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, self._message, headers={"Connection": "close"})(
            scope, receive, send
        )


def _field_name(location: Sequence[object]) -> str:
    return ".".join(str(part) for part in location)


def _body_not_json(request: Request) -> str | None:
    """Say how a request's non-empty body is not declared JSON; None when it is, or is empty."""
    headers = request.headers
    if headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers:
        return None
    content_type = headers.get("content-type")
    if content_type is None:
        return "no Content-Type was sent"
    kind, _, subtype = content_type.partition(";")[0].strip().lower().partition("/")
    if kind == "application" and (subtype == "json" or subtype.endswith("+json")):
        return None  # what FastAPI parses as JSON
    return f"the Content-Type was {content_type[:_MAX_VERSION_TEXT]!r}"


async def _validation_failed(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)  # registered for this type only
    problems = error.errors()
    if any(tuple(problem.get("loc", ()))[:1] == ("body",) for problem in problems):
        # FastAPI hands a body it was not told is JSON to validation as bytes.
        why = _body_not_json(request)
        if why is not None:
            return error_response(
                415, f"the body must be JSON sent with 'Content-Type: application/json'; {why}"
            )
    details = [
        ErrorDetail(
            field=_field_name(problem.get("loc", ())),
            message=str(problem.get("msg", "invalid")).removeprefix(_PYDANTIC_VALUE_ERROR),
            type=str(problem.get("type", "value_error")),
        )
        for problem in problems
    ]
    names = ", ".join(detail.field or "?" for detail in details[:5])
    more = f" and {len(details) - 5} more" if len(details) > 5 else ""
    return error_response(
        422, f"invalid request: {names}{more}", code="validation_error", details=details
    )


def _http_handler(
    routes: Sequence[tuple[re.Pattern[str], frozenset[str]]],
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """Return the handler of Starlette's and FastAPI's HTTP errors, given every route's methods."""

    async def http_failed(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)  # registered for this type only
        message = error.detail if isinstance(error.detail, str) else str(error.detail)
        headers = error.headers
        if error.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        elif error.status_code == 405 and message == "Method Not Allowed":
            # Starlette's Allow names the methods of the first route of the path only.
            path = _route_path(request.scope)
            matching = [methods for pattern, methods in routes if pattern.fullmatch(path)]
            allowed = ", ".join(sorted(frozenset[str]().union(*matching)))
            message = f"{request.method} is not allowed on {request.url.path}"
            if allowed:
                message += f" (allowed: {allowed})"
                headers = {**(headers or {}), "Allow": allowed}
        elif error.status_code == 400 and message == _FASTAPI_PARSE_FAILURE:
            message = f"the body cannot be read as JSON: {_parse_problem(error.__cause__)}"
        return error_response(error.status_code, message, headers=headers)

    return http_failed


def _parse_problem(cause: BaseException | None) -> str:
    """Say why FastAPI could not parse a body (it reports every such failure alike)."""
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    if isinstance(cause, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(cause, ValueError):  # the only other one json.loads raises: a huge integer
        return "it holds a number with too many digits"
    return "it is malformed"


async def _service_failed(request: Request, error: Exception) -> Response:
    failure = classify_error(error)
    if failure is None:  # pragma: no cover - registered for TradePulseError, which classifies
        raise error
    if failure.status >= 500:
        _log.warning("%s %s: %s", request.method, request.url.path, failure.message)
    return error_response(failure.status, failure.message, code=failure.code)


def _crashed_handler(version: str) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def crashed(request: Request, error: Exception) -> Response:
        # The server logs the traceback: ServerErrorMiddleware re-raises after this answer.
        _log.error("unhandled %s in %s %s", type(error).__name__, request.method, request.url.path)
        # ServerErrorMiddleware sits outside the version middleware: stamp it here.
        return error_response(
            500,
            "internal error (logged on the server)",
            headers={VERSION_HEADER: version},
        )

    return crashed


def _install_openapi(app: FastAPI) -> None:
    """Document the bearer scheme and each operation's scope in the OpenAPI document."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                openapi_version=app.openapi_version,
                description=app.description,
                routes=app.routes,
            )
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["apiKey"] = {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key secret; its scopes: read < trade < admin.",
            }
            for path_item in schema.get("paths", {}).values():
                for method, operation in path_item.items():
                    scope = operation.get(REQUIRED_SCOPE_EXTENSION)
                    if scope is None:
                        scope = "trade" if method.upper() in _MUTATING else "read"
                        operation[REQUIRED_SCOPE_EXTENSION] = scope
                    if scope != PUBLIC:
                        operation["security"] = [{"apiKey": [scope]}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override


def create_app(
    backend: ExecutionBackend,
    *,
    keys: ApiKeyStore,
    version: str = __version__,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    strategies_backend: MarketDataSink | None = None,
    routers: Sequence[APIRouter] = (),
    ready_timeout_seconds: float = DEFAULT_READY_TIMEOUT_SECONDS,
    bar_pipeline: BarPipeline | None = None,
    has_strategy: HasStrategy | None = None,
) -> FastAPI:
    """Return the TradePulse HTTP API over ``backend``, guarded by ``keys``.

    ``strategies_backend`` (when given) receives every bar of
    ``POST /market/bars`` after the execution backend has matched it;
    ``bar_pipeline`` (when given) applies those bars instead of the backend
    (live strategies trade around each bar); ``has_strategy(account,
    strategy_id)`` (given with the strategies' pipeline:
    :meth:`~tradepulse.serve.strategies.StrategyPipeline.has_strategy`) says
    which strategies an account has, whose runners' order ids
    (``<strategy id>:...``) the order routes refuse to users (409
    ``reserved_id``; None: nothing is reserved).
    ``routers`` are extra routers (the strategy routes) mounted under
    :data:`API_PREFIX`; they get the same versioning, authentication and error
    handling (declare a route's scope with :func:`~tradepulse.serve.auth.requires`,
    and its 503 with :data:`~tradepulse.serve.models.UNAVAILABLE_RESPONSE`: every
    503 carries ``Retry-After``).

    Raises:
        ConfigError: ``version`` is not a version, or ``max_body_bytes`` or
            ``ready_timeout_seconds`` is not positive.
    """
    try:
        parse_version(version)
    except ValueError as error:
        raise ConfigError(f"version: {error}") from None
    if (
        isinstance(max_body_bytes, bool)
        or not isinstance(max_body_bytes, int)
        or max_body_bytes <= 0
    ):
        raise ConfigError(f"max_body_bytes must be a positive integer, got {max_body_bytes!r}")
    if not ready_timeout_seconds > 0:
        raise ConfigError(f"ready_timeout_seconds must be > 0, got {ready_timeout_seconds!r}")

    openapi_url = f"{API_PREFIX}/openapi.json"
    docs_url = f"{API_PREFIX}/docs"
    app = FastAPI(
        title="TradePulse API",
        version=version,
        description=(
            "Paper trading on TradePulse's execution service. Authenticate with "
            "`Authorization: Bearer <secret>`; every response carries `X-TradePulse-Version`."
        ),
        openapi_url=openapi_url,
        docs_url=docs_url,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )

    probes = APIRouter(tags=["probes"])

    @probes.get("/health", response_model=HealthOut, openapi_extra=requires(PUBLIC))
    async def health() -> HealthOut:
        """Liveness: answer without touching the backend."""
        return HealthOut(version=version, api=API_PREFIX.rsplit("/", 1)[-1])

    @probes.get(
        "/ready",
        response_model=ReadyOut,
        openapi_extra=requires(PUBLIC),
        responses={
            _UNAVAILABLE: {**UNAVAILABLE_RESPONSE, "description": "The backend does not answer"}
        },
    )
    async def ready() -> Response | ReadyOut:
        """Readiness: the execution backend answers within the timeout."""
        try:
            await asyncio.wait_for(backend.ping(), timeout=ready_timeout_seconds)
        except Exception as error:  # any failure of the probe means "not ready"
            _log.warning("readiness probe failed: %r", error)
            why = (
                f"no answer within {ready_timeout_seconds:g} s"
                if isinstance(error, TimeoutError)
                else repr(error)
            )
            return error_response(
                503, f"the execution backend does not answer: {why}", code="not_ready"
            )
        return ReadyOut()

    app.include_router(probes, prefix=API_PREFIX)
    core = [
        orders_router(backend, has_strategy=has_strategy),
        market_router(backend, strategies=strategies_backend, pipeline=bar_pipeline),
    ]
    guarded = [*core, *routers]
    for router in guarded:
        responses = _CORE_ERROR_RESPONSES if router in core else _ERROR_RESPONSES
        app.include_router(router, prefix=API_PREFIX, responses=responses)

    app.add_exception_handler(RequestValidationError, _validation_failed)
    app.add_exception_handler(
        HTTPException, _http_handler(_method_table([probes, *guarded], prefix=API_PREFIX))
    )
    app.add_exception_handler(TradePulseError, _service_failed)
    app.add_exception_handler(Exception, _crashed_handler(version))
    # Added innermost first: versioning wraps authentication wraps the body limit.
    app.add_middleware(_BodyLimitMiddleware, max_bytes=max_body_bytes)
    app.add_middleware(
        _AuthMiddleware,
        keys=keys,
        table=_scope_table([probes, *guarded], prefix=API_PREFIX),
        public=frozenset({openapi_url, docs_url}),
    )
    app.add_middleware(_VersionMiddleware, version=version)
    _install_openapi(app)
    return app
