"""Ray tests that need a Ray instance of their own: run in a separate pytest process.

Not collected by default (the name does not start with ``test_``), and skipped
unless ``TRADEPULSE_RAY_OWN_PROCESS=1``: ``test_connect.py`` runs it in a child
pytest (by hand: ``TRADEPULSE_RAY_OWN_PROCESS=1 pytest tests/cluster/ray_own_process.py``).
It covers what the session's cluster cannot: connecting while Ray is not
running, a two-node cluster (``ray.cluster_utils.Cluster``) and a local cluster
with the dashboard.
"""

from __future__ import annotations

import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import cluster_tasks
import pytest
import ray
from ray.cluster_utils import Cluster

from tradepulse.cluster import RayExecutor, cluster_info, connect, shutdown
from tradepulse.errors import ConfigError

OWN_PROCESS_ENV = "TRADEPULSE_RAY_OWN_PROCESS"

pytestmark = pytest.mark.skipif(
    os.environ.get(OWN_PROCESS_ENV) != "1",
    reason=f"starts its own Ray instances: runs in its own process ({OWN_PROCESS_ENV}=1)",
)


@pytest.fixture(autouse=True)
def _workers_import_the_task_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Ray processes started here inherit PYTHONPATH, so workers find cluster_tasks.
    here = str(Path(__file__).resolve().parent)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([here, os.environ.get("PYTHONPATH", "")]))
    yield
    shutdown()
    assert not ray.is_initialized(), "a test left Ray running"


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_cluster_info_needs_a_connection() -> None:
    with pytest.raises(ConfigError, match=r"call connect\(\) first"):
        cluster_info()


def test_an_unreachable_address_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    address = f"127.0.0.1:{_unused_port()}"
    start = time.monotonic()

    with pytest.raises(ConfigError, match=f"cannot reach a Ray cluster at '{address}'"):
        connect(address, timeout_s=2.0)
    monkeypatch.setenv("RAY_ADDRESS", address)
    with pytest.raises(ConfigError, match=f"'{address}'.*RAY_ADDRESS"):
        connect()

    assert time.monotonic() - start < 10.0  # Ray alone would retry for minutes
    assert not ray.is_initialized()


def test_tasks_spread_over_two_nodes() -> None:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()

        info = connect(cluster.address)
        outcomes = list(
            RayExecutor(spread=True).imap_unordered(
                cluster_tasks.node_id, list(range(8)), shared=0.2
            )
        )
        alive = {entry["NodeID"] for entry in ray.nodes() if entry["Alive"]}
    finally:
        shutdown()
        cluster.shutdown()

    assert (info.nodes, info.cpus, info.started_locally) == (2, 2.0, False)
    assert sorted(outcome.index for outcome in outcomes) == list(range(8))
    assert {outcome.value for outcome in outcomes} == alive
    assert len(alive) == 2
    # One worker process per node at least: the cost was measured in both.
    assert len({outcome.stats.pid for outcome in outcomes}) >= 2


def test_a_local_cluster_is_quiet_and_serves_its_dashboard_on_localhost(
    capfd: pytest.CaptureFixture[str],
) -> None:
    info = connect(num_cpus=1, dashboard=True)
    try:
        assert info.started_locally
        assert (info.nodes, info.cpus) == (1, 1.0)
        assert info.dashboard_url is not None
        assert info.dashboard_url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(info.dashboard_url, timeout=30) as response:
            assert response.status == 200
        # A task's print goes to the worker's log file, not to this console.
        marker = f"tradepulse-quiet-check-{os.getpid()}"
        assert RayExecutor().map(cluster_tasks.printing, [7], shared=marker) == [7]
        assert info.log_dir is not None
        deadline = time.monotonic() + 10.0
        logged = False
        while not logged and time.monotonic() < deadline:
            logged = any(
                marker in path.read_text(errors="replace")
                for path in Path(info.log_dir).glob("worker-*.out")
            )
            time.sleep(0.1)
        assert logged, "the task's output is not in the session logs"
        time.sleep(1.0)  # Ray's log monitor would have forwarded it by now
    finally:
        shutdown()

    captured = capfd.readouterr()
    assert f"Ray dashboard: {info.dashboard_url}" in captured.err
    assert marker not in captured.out + captured.err
    assert "Started a local Ray instance" not in captured.out + captured.err
    assert not ray.is_initialized()
