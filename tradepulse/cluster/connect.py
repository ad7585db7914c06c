"""Join a Ray cluster, or start one in this process: the embedded default.

:func:`connect` joins the cluster at ``address`` (or ``RAY_ADDRESS``); without
one it starts a local Ray instance inside this process. It is quiet by
default: Ray's INFO and WARNING messages and the workers' stdout/stderr stay
out of the console and go to the session logs
(``/tmp/ray/session_latest/logs`` on each node; :attr:`ClusterInfo.log_dir`).
If Ray is already initialised in this process, :func:`connect` reuses it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from dataclasses import dataclass
from typing import Any

import ray

from tradepulse.errors import ConfigError

__all__ = [
    "ADDRESS_ENV",
    "AUTH_MODE_ENV",
    "CONNECT_TIMEOUT_S",
    "DASHBOARD_HOST",
    "ClusterInfo",
    "cluster_cpus",
    "cluster_info",
    "connect",
    "shutdown",
]

#: The environment variable naming the cluster to join (Ray's own convention).
ADDRESS_ENV = "RAY_ADDRESS"
#: Ray's switch for token authentication (``token`` or ``disabled``).
AUTH_MODE_ENV = "RAY_AUTH_MODE"
#: How long :func:`connect` waits for a TCP connection to the cluster's address, seconds.
CONNECT_TIMEOUT_S = 5.0
#: The dashboard listens on this interface only.
DASHBOARD_HOST = "127.0.0.1"

_LOCALHOST_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """The Ray cluster this process is connected to.

    ``address``: the cluster's GCS address (``host:port``; what ``--address``
    or ``RAY_ADDRESS`` would name to join it); ``started_locally``: this
    process started the cluster (it stops with :func:`shutdown` or at exit);
    ``dashboard_url``: the dashboard's URL, ``None`` without a dashboard;
    ``nodes``: live nodes; ``cpus``: CPUs in the whole cluster; ``log_dir``:
    the Ray session's log folder on this machine (``None`` when unknown).
    """

    address: str
    started_locally: bool
    dashboard_url: str | None
    nodes: int
    cpus: float
    log_dir: str | None = None


class _State:
    """What :func:`connect` started (so :func:`shutdown` stops only that)."""

    owned = False


def _global_node() -> Any:
    # Ray 2.60 keeps this process's node (head or connect-only) here; the
    # public API has no equivalent for "did this process start the cluster".
    return getattr(ray._private.worker, "_global_node", None)


def _dashboard_url(raw: object) -> str | None:
    if not isinstance(raw, str) or not raw:
        return None
    return raw if "://" in raw else f"http://{raw}"


def cluster_info() -> ClusterInfo:
    """Return what this process is connected to.

    Raises:
        ConfigError: Ray is not initialised in this process (call :func:`connect`).
    """
    if not ray.is_initialized():
        raise ConfigError("Ray is not initialised in this process; call connect() first")
    node = _global_node()
    entries: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]  # unannotated in Ray
    nodes = len([entry for entry in entries if entry.get("Alive")])
    cpus = cluster_cpus()
    log_dir = None
    dashboard = None
    started = False
    if node is not None:
        started = bool(node.is_head())
        dashboard = _dashboard_url(node.webui_url)
        log_dir = str(node.get_logs_dir_path())
    return ClusterInfo(
        address=str(ray.get_runtime_context().gcs_address),
        started_locally=started,
        dashboard_url=dashboard,
        nodes=nodes,
        cpus=cpus,
        log_dir=log_dir,
    )


def cluster_cpus() -> float:
    """Return the CPUs of the whole connected cluster (0 while it has no worker nodes)."""
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]  # unannotated in Ray
    return float(resources.get("CPU", 0.0))


def _split_address(address: str) -> tuple[str, int]:
    """Return ``(host, port)`` of ``host:port`` or ``ray://host:port``."""
    rest = address.removeprefix("ray://")
    host, sep, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(
            f"cluster address must be host:port or ray://host:port (or 'auto'/'local'); "
            f"got {address!r}"
        )
    return host, int(port_text)


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fail fast when nothing listens at ``address`` (Ray itself would retry for minutes)."""
    host, port = _split_address(address)
    candidates = [host]
    if host in _LOCALHOST_NAMES:
        # Ray rewrites 127.0.0.1 to this machine's interface address, where a
        # cluster started elsewhere on this machine may be listening instead.
        with contextlib.suppress(Exception):  # no usable interface: try `host` only
            candidates.append(str(ray.util.get_node_ip_address()))  # type: ignore[no-untyped-call]  # unannotated in Ray
    problems = []
    for candidate in candidates:
        try:
            with socket.create_connection((candidate, port), timeout=timeout_s):
                return
        except OSError as error:
            problems.append(f"{candidate}:{port}: {error.strerror or error}")
    raise ConfigError(
        f"cannot reach a Ray cluster at {address!r} within {timeout_s:g} s "
        f"({'; '.join(problems)}); check --address / {ADDRESS_ENV} and that the cluster is up"
    )


def connect(
    address: str | None = None,
    *,
    dashboard: bool = False,
    num_cpus: int | None = None,
    quiet: bool = True,
    timeout_s: float = CONNECT_TIMEOUT_S,
) -> ClusterInfo:
    """Join the Ray cluster at ``address`` (or ``RAY_ADDRESS``), else start one here.

    Args:
        address: ``host:port`` of a running cluster's head (``ray://host:port``
            for Ray Client; ``"auto"`` finds a cluster started with ``ray start``
            on this machine; ``"local"`` forces a new local cluster). ``None``
            reads ``RAY_ADDRESS``; when that is unset too, a local cluster is
            started inside this process.
        dashboard: Start the Ray dashboard with a local cluster (listening on
            127.0.0.1) and print its URL to stderr. Joining a cluster, its
            existing dashboard (if any) is reported.
        num_cpus: CPUs of a local cluster (default: all of this machine's);
            not allowed when joining a cluster.
        quiet: Keep Ray's INFO/WARNING messages and the workers' stdout/stderr
            off the console (they stay in the session logs). Errors Ray reports
            about dead workers are still printed.
        timeout_s: Seconds to wait for a TCP connection to ``address``.

    Returns:
        The cluster this process is now connected to. If Ray was already
        initialised in this process it is reused (``address``, ``num_cpus`` and
        ``dashboard`` are then ignored).

    Raises:
        ConfigError: ``address`` is malformed or unreachable, ``num_cpus`` is
            invalid or given with an address, or Ray refused to connect.
    """
    if num_cpus is not None and num_cpus < 1:
        raise ConfigError(f"num_cpus must be >= 1; got {num_cpus}")
    if timeout_s <= 0:
        raise ConfigError(f"timeout_s must be > 0; got {timeout_s}")
    target = address if address else os.environ.get(ADDRESS_ENV) or "local"
    joining = target != "local"
    if joining and num_cpus is not None:
        raise ConfigError(
            f"num_cpus={num_cpus} only applies to a local cluster; "
            f"the cluster at {target!r} has its own CPUs"
        )
    if joining and target != "auto":
        _split_address(target)  # a malformed address fails even when Ray is up
    if ray.is_initialized():
        return cluster_info()
    if joining and target != "auto":
        _check_reachable(target, timeout_s)
    options: dict[str, Any] = {
        "log_to_driver": not quiet,
        "logging_level": logging.ERROR if quiet else logging.INFO,
    }
    if not joining:
        options.update(
            num_cpus=num_cpus,
            include_dashboard=dashboard,
            dashboard_host=DASHBOARD_HOST,
        )
    try:
        ray.init(address=target, **options)
    except Exception as error:  # Ray raises many types here; all mean "cannot connect"
        where = f"the Ray cluster at {target!r}" if joining else "a local Ray cluster"
        hint = ""
        if joining and os.environ.get(AUTH_MODE_ENV, "").lower() != "token":
            # Ray sends no token to an explicitly named cluster unless told to.
            hint = (
                f"; if the cluster uses token authentication (Ray's default), export "
                f"{AUTH_MODE_ENV}=token with its token in RAY_AUTH_TOKEN or ~/.ray/auth_token"
            )
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(
            f"cannot connect to {where}: {type(error).__name__}: {first_line}{hint}"
        ) from error
    _State.owned = True
    info = cluster_info()
    if dashboard:
        if info.dashboard_url is None:
            print("Ray dashboard: not available", file=sys.stderr)
        else:
            print(f"Ray dashboard: {info.dashboard_url}", file=sys.stderr)
    return info


def shutdown() -> None:
    """Disconnect from (and, if it started there, stop) the cluster :func:`connect` set up.

    Does nothing when Ray is not initialised, or when something other than
    :func:`connect` initialised it (a reused session is left running).
    """
    if _State.owned and ray.is_initialized():
        ray.shutdown()
    _State.owned = False
