"""The Ray layer: connect to a cluster and run research tasks on it.

Only this package (and the Serve layer) imports Ray. :func:`connect` joins a
cluster or starts one in-process; :class:`RayExecutor` implements
:class:`tradepulse.executor.Executor` on it; :func:`executor_for` does both,
for the CLI's ``--address`` / ``--dashboard`` options.
"""

from __future__ import annotations

from tradepulse.cluster.connect import ClusterInfo, cluster_info, connect, shutdown
from tradepulse.cluster.executor import RayExecutor, TaskFailedError, executor_for

__all__ = [
    "ClusterInfo",
    "RayExecutor",
    "TaskFailedError",
    "cluster_info",
    "connect",
    "executor_for",
    "shutdown",
]
