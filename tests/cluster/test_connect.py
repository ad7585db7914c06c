"""connect(): argument checks, reusing the running cluster, and the own-process suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import ray

from tradepulse.cluster import ClusterInfo, cluster_info, connect, shutdown
from tradepulse.errors import ConfigError

HERE = Path(__file__).resolve().parent
OWN_PROCESS_FILE = HERE / "ray_own_process.py"
#: The child starts two Ray instances of its own (two nodes; a local cluster with its dashboard).
CHILD_TIMEOUT_S = 300.0


@pytest.mark.parametrize(
    "address", ["nohost", "head:abc", "head:0", ":6379", "head:70000", "ray://head"]
)
def test_a_malformed_address_is_refused(address: str) -> None:
    with pytest.raises(ConfigError, match=f"host:port or ray://host:port.*got '{address}'"):
        connect(address)


def test_num_cpus_is_for_local_clusters_only() -> None:
    with pytest.raises(ConfigError, match=r"num_cpus=2 only applies to a local cluster"):
        connect("head:6379", num_cpus=2)
    with pytest.raises(ConfigError, match="num_cpus must be >= 1; got 0"):
        connect(num_cpus=0)
    with pytest.raises(ConfigError, match="timeout_s must be > 0; got 0"):
        connect(timeout_s=0)


def test_connect_reuses_the_cluster_this_process_runs(ray_session: ClusterInfo) -> None:
    info = connect()
    again = connect("127.0.0.1:1", dashboard=True)  # Ray is up: reused, not joined

    assert info == again == cluster_info() == ray_session
    assert info.started_locally  # this process started it (the session fixture)
    assert (info.nodes, info.cpus, info.dashboard_url) == (1, 2.0, None)
    assert info.address == ray.get_runtime_context().gcs_address
    assert info.log_dir is not None
    assert Path(info.log_dir).is_dir()

    shutdown()  # connect() did not start it, so it keeps running

    assert ray.is_initialized()


def test_the_own_process_suite_passes() -> None:
    # Connecting without Ray, two nodes and the dashboard need Ray instances of
    # their own, which cannot share this session's: run them in a child pytest.
    env = {**os.environ, "TRADEPULSE_RAY_OWN_PROCESS": "1"}
    env.pop("RAY_ADDRESS", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(OWN_PROCESS_FILE),
        "-q",
        "-p",
        "no:cacheprovider",
    ]

    # A new session: the child and every process its Ray instances start share
    # a process group that is not this session's, so a timeout ends them all.
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=HERE.parents[1],
        start_new_session=True,
    )
    try:
        stdout, stderr = child.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        stdout, stderr = child.communicate()
        pytest.fail(f"timed out after {CHILD_TIMEOUT_S:g} s\n{stdout[-4000:]}{stderr[-2000:]}")

    summary = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    assert child.returncode == 0, stdout[-4000:] + stderr[-2000:]
    assert "4 passed" in summary
    assert "skipped" not in summary
