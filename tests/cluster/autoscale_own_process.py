"""Autoscaling with Ray's fake multi-node provider: a sweep scales out, idle workers go.

Not collected by default (the name does not start with ``test_``), and skipped
unless ``TRADEPULSE_RAY_OWN_PROCESS=1``: ``test_autoscaling.py`` runs it in a
child pytest (by hand:
``TRADEPULSE_RAY_OWN_PROCESS=1 pytest tests/cluster/autoscale_own_process.py``).

The cluster is ``cluster/fake-multinode.yaml`` (a head without CPUs, up to two
one-CPU worker nodes, 6 s idle timeout), started the way
``ray.cluster_utils.AutoscalingCluster`` starts one (``ray start --head
--autoscaling-config=...`` with ``RAY_FAKE_CLUSTER=1``), but not with that
class: it reads the provider's ``example.yaml``, which the wheel lacks, and its
``start()``/``shutdown()`` run ``ray stop --force``, which ends every Ray
process of the user on the machine (the parent test session's included).
Here the head is ``ray start --block``, a child of this process, on ports it
picked and in a temp dir of its own, and teardown ends exactly the processes
of that tree (worker nodes included: this process adopts orphans on Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil  # Ray ships its own copy; the dev dependencies (locust) install it too
import pytest
import ray
import yaml

from tradepulse.cluster import cluster_info, executor_for, shutdown
from tradepulse.cluster.connect import cluster_cpus
from tradepulse.data import synthesize_bars
from tradepulse.executor import LocalExecutor
from tradepulse.sweep import grid_range, run_sweep

OWN_PROCESS_ENV = "TRADEPULSE_RAY_OWN_PROCESS"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = REPO_ROOT / "cluster" / "fake-multinode.yaml"
WORKER_TYPE = "cpu"
#: Seconds allowed for the head to start, and for the idle workers to be removed.
START_TIMEOUT_S = 90.0
SCALE_IN_TIMEOUT_S = 90.0
#: Linux prctl option: orphaned descendants are re-parented to this process.
_PR_SET_CHILD_SUBREAPER = 36

# sma_cross over fast 5..100 step 5 (20 values) x slow 20..300 step 5 (57
# values), fast < slow: fast 5, 10 and 15 pair with every slow (3 x 57); fast
# f in 20..100 pairs with the slow values above it, (300 - f) / 5 of them:
# 56 + 55 + ... + 40 = 17 x 48. 5-10 s of work for one CPU on 400k bars: the
# second worker node (up ~5 s after the first is busy) joins well before the end.
GRID = {"fast": grid_range(5, 100, 5), "slow": grid_range(20, 300, 5)}
COMBOS = 3 * 57 + 17 * 48
SKIPPED = 20 * 57 - COMBOS
BARS = 400_000
BATCH_SIZE = 8

pytestmark = pytest.mark.skipif(
    os.environ.get(OWN_PROCESS_ENV) != "1",
    reason=f"starts its own Ray cluster: runs in its own process ({OWN_PROCESS_ENV}=1)",
)


@dataclass(frozen=True)
class FakeCluster:
    """A running fake multi-node cluster: its GCS address, config and head process."""

    address: str
    config: dict[str, Any]
    head: subprocess.Popen[bytes]
    temp_dir: Path

    def log_tail(self, name: str = "monitor.log", lines: int = 40) -> str:
        """Return the last lines of a head log (for failure messages)."""
        logs = sorted(self.temp_dir.glob(f"session_*/logs/{name}"))
        if not logs:
            return f"(no {name})"
        text = logs[-1].read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def _unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _adopt_orphans() -> None:
    # A worker node is started by the autoscaler's monitor process; should the
    # monitor die first, its raylet would otherwise be re-parented to init and
    # escape the tree that teardown ends.
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _descendants(pid: int) -> set[psutil.Process]:
    try:
        return set(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return set()


def _stop(head: subprocess.Popen[bytes]) -> list[str]:
    """End the head (``ray start --block``) and every process of its tree.

    Returns the pids still running afterwards (none, unless unkillable).
    """
    tree = _descendants(head.pid)
    head.terminate()  # `ray start --block` stops the processes it started on SIGTERM
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        head.kill()
        head.wait(timeout=30)
    # Worker nodes still up (the monitor started them; we adopted them when it
    # ended): their raylets linger for many seconds once the GCS is gone.
    tree |= _descendants(os.getpid())
    alive = [process for process in tree if _running(process)]
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(alive, timeout=2)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(list(tree), timeout=10)  # and reap what we adopted
    return sorted(str(process.pid) for process in tree if _running(process))


def _start(config: dict[str, Any], temp_dir: Path, port: int) -> subprocess.Popen[bytes]:
    """Start the head with the autoscaler, as AutoscalingCluster.start() does (no ray stop)."""
    config_path = temp_dir / "autoscaling.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    head_cpus = config["available_node_types"][config["head_node_type"]]["resources"]["CPU"]
    ray_cli = Path(sys.executable).with_name("ray")
    command = [
        str(ray_cli if ray_cli.exists() else shutil.which("ray") or "ray"),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        f"--num-cpus={head_cpus}",
        f"--autoscaling-config={config_path}",
        f"--temp-dir={temp_dir}",
        # Every port with a fixed default gets a free one: another Ray on this
        # machine (the parent test session's) may hold the defaults.
        f"--ray-client-server-port={_unused_port()}",
        f"--dashboard-port={_unused_port()}",
        f"--dashboard-agent-listen-port={_unused_port()}",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ]
    env = {
        **os.environ,
        "RAY_FAKE_CLUSTER": "1",
        "AUTOSCALER_UPDATE_INTERVAL_S": "1",
        # The same authentication as this driver (Ray reads RAY_AUTH_MODE at
        # import; unset, `ray start` would turn tokens on if ~/.ray has one).
        "RAY_AUTH_MODE": os.environ.get("RAY_AUTH_MODE") or "disabled",
    }
    log = (temp_dir / "ray-start.log").open("wb")
    with log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


@pytest.fixture
def fake_cluster() -> Iterator[FakeCluster]:
    """Start cluster/fake-multinode.yaml on free ports; end every process of it afterwards."""
    _adopt_orphans()
    config: dict[str, Any] = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    port = _unused_port()
    # Worker nodes join the head's GCS here (the provider's default is port 6379).
    address = f"{ray.util.get_node_ip_address()}:{port}"
    config["provider"]["gcs_address"] = address
    # Short: Ray's socket paths under it must stay below the 107-byte limit.
    temp_dir = Path(
        tempfile.mkdtemp(prefix="tp-fake-", dir="/tmp" if Path("/tmp").is_dir() else None)
    )
    head = _start(config, temp_dir, port)
    cluster = FakeCluster(address=address, config=config, head=head, temp_dir=temp_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        # `ray start` writes the address file once every head process runs.
        while not (temp_dir / "ray_current_cluster").exists():
            if head.poll() is not None or time.monotonic() > deadline:
                output = (temp_dir / "ray-start.log").read_text(errors="replace")
                pytest.fail(f"the head did not start (exit code {head.poll()}):\n{output}")
            time.sleep(0.2)
        yield cluster
    finally:
        shutdown()
        leftover = _stop(head)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert leftover == [], f"processes of the fake cluster survived: {leftover}"


def _worker_nodes() -> int:
    """Return the live nodes other than the head."""
    entries: list[dict[str, Any]] = ray.nodes()
    return sum(1 for entry in entries if entry["Alive"]) - 1


def test_a_sweep_scales_the_cluster_out_and_idle_workers_are_removed(
    fake_cluster: FakeCluster,
) -> None:
    max_workers = fake_cluster.config["available_node_types"][WORKER_TYPE]["max_workers"]
    executor = executor_for(fake_cluster.address)  # what `--address` does
    info = cluster_info()
    # Only the head, and it has no CPUs: every task needs a worker node.
    assert (info.nodes, info.cpus, info.started_locally) == (1, 0.0, False)

    bars = synthesize_bars(bars=BARS, seed=11)
    workers_seen: list[int] = []
    result = run_sweep(
        bars,
        "sma_cross",
        GRID,
        commission=0.001,
        executor=executor,
        batch_size=BATCH_SIZE,
        progress=lambda done, total: workers_seen.append(_worker_nodes()),
    )
    rows = result.results()

    # The first report comes before any task: no worker yet. The autoscaler
    # then added workers up to the node type's maximum while the sweep ran.
    assert workers_seen[0] == 0
    assert max(workers_seen) == max_workers, (workers_seen, fake_cluster.log_tail())
    assert (result.combos, result.skipped, rows.height) == (COMBOS, SKIPPED, COMBOS)
    assert result.cost.tasks == result.batches == -(-COMBOS // BATCH_SIZE)

    # The same sweep in this process (while the workers sit idle): the same rows.
    local = run_sweep(
        bars, "sma_cross", GRID, commission=0.001, executor=LocalExecutor(), batch_size=BATCH_SIZE
    )
    assert rows.equals(local.results())

    # Idle for idle_timeout_minutes: the autoscaler removes every worker node.
    deadline = time.monotonic() + SCALE_IN_TIMEOUT_S
    while (_worker_nodes(), cluster_cpus()) != (0, 0.0):
        assert time.monotonic() < deadline, ("no scale-in", fake_cluster.log_tail())
        time.sleep(0.5)
    assert cluster_info().nodes == 1
