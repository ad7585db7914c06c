"""TradePulse's HTTP layer: the versioned, key-guarded FastAPI app over the execution service.

:func:`create_app` builds the ``/api/v1`` application around an
:class:`ExecutionBackend` (:class:`InProcessBackend` for a service in this
process). Importing this package does not import Ray: the Ray Serve layer
lives in :mod:`tradepulse.serve.deployment` (the deployments and the typed
application builder ``serve/config.yaml`` names) and
:mod:`tradepulse.serve.runtime` (``tradepulse serve``), imported explicitly.
"""

from __future__ import annotations

from tradepulse.serve.api import (
    API_PREFIX,
    DEFAULT_MAX_BODY_BYTES,
    VERSION_HEADER,
    create_app,
    parse_version,
)
from tradepulse.serve.auth import (
    API_KEYS_ENV,
    ApiKey,
    ApiKeyStore,
    GeneratedKey,
    Scope,
    generate_key,
    hash_secret,
    requires,
)
from tradepulse.serve.backend import (
    BatchItemResult,
    ExecutionBackend,
    InProcessBackend,
    MarketDataSink,
    ServiceFailure,
    SubmitItem,
    classify_error,
)

__all__ = [
    "API_KEYS_ENV",
    "API_PREFIX",
    "DEFAULT_MAX_BODY_BYTES",
    "VERSION_HEADER",
    "ApiKey",
    "ApiKeyStore",
    "BatchItemResult",
    "ExecutionBackend",
    "GeneratedKey",
    "InProcessBackend",
    "MarketDataSink",
    "Scope",
    "ServiceFailure",
    "SubmitItem",
    "classify_error",
    "create_app",
    "generate_key",
    "hash_secret",
    "parse_version",
    "requires",
]
