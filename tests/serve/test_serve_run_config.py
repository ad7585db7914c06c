"""``serve run serve/config.yaml``: Ray's own CLI brings the API up as the config documents.

The command runs as ``serve/config.yaml`` tells a user to run it: from the
repository's root (here a copy of its layout: ``serve/config.yaml`` on a free
port, ``serve/service.yaml``, and ``var/`` for the journal, so nothing is
written into the clone), with the cluster-wide Serve settings and the API keys
exported. ``serve run`` then starts a Ray cluster of its own, which is kept
apart from this session's: ``RAY_TMPDIR`` is a new folder, so Ray finds no
cluster to join there, and every process of the run is in a new session.
Teardown is ``serve run``'s own (SIGINT, as Ctrl-C); whatever of its tree
survives is ended here, by pid, never with ``ray stop``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import httpx
import psutil  # Ray ships its own copy; the dev dependencies (locust) install it too
import pytest
import yaml

from tradepulse.serve import runtime
from tradepulse.serve.runtime import APPLICATION_ENVIRONMENT, CLUSTER_ENVIRONMENT

REPO = Path(__file__).resolve().parents[2]
SERVE_CLI = Path(sys.executable).with_name("serve")
SECRET = "serve-run-test-secret"
#: Ray, Serve and both deployments come up in ~20 s on 2 idle cores.
START_TIMEOUT_S = 90.0
#: Serve drains the ingress replica (1 s), stops the deployments, then Ray.
STOP_TIMEOUT_S = 45.0
# A background job's SIGINT may be ignored, and an ignored signal stays ignored
# across exec: restore Ctrl-C's default before becoming `serve run`.
_WITH_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


@dataclass
class ServeRun:
    """A running ``serve run``: its process, where it runs, and every process seen in its tree."""

    process: subprocess.Popen[bytes]
    root: Path
    port: int
    log: Path
    seen: dict[int, psutil.Process] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the API's base URL."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def output(self) -> str:
        """Return the end of the command's output (for failure messages)."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-4000:]

    def record_tree(self) -> list[psutil.Process]:
        """Remember (and return) the processes now in the run's tree."""
        try:
            tree = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return []
        for child in tree:
            self.seen.setdefault(child.pid, child)
        return tree

    def wait_healthy(self) -> None:
        """Wait until ``/health`` answers 200."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve run exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            self.record_tree()
            time.sleep(0.5)
        pytest.fail(f"serve run did not come up in {START_TIMEOUT_S:g} s:\n{self.output()}")

    def end(self) -> list[str]:
        """End every process of the run still alive (by pid); return those that were."""
        self.record_tree()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        survivors = [process for process in self.seen.values() if _alive(process)]
        for process in survivors:
            with contextlib.suppress(psutil.Error):
                process.kill()
        psutil.wait_procs(survivors, timeout=10)
        return [f"{process.pid} {process.name()}" for process in survivors]


def _layout(root: Path, port: int) -> None:
    """Copy the repository root's layout for ``serve run``: the config on ``port``."""
    (root / "serve").mkdir(parents=True)
    config = yaml.safe_load((REPO / "serve" / "config.yaml").read_text(encoding="utf-8"))
    config["http_options"]["port"] = port
    (root / "serve" / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    (root / "serve" / "service.yaml").symlink_to(REPO / "serve" / "service.yaml")


@pytest.fixture
def serve_run(tmp_path: Path) -> Iterator[ServeRun]:
    """Start ``serve run serve/config.yaml`` from a copy of the root's layout."""
    port = _free_port()
    root = tmp_path / "root"
    _layout(root, port)
    # Short: Ray's socket paths under it must stay below the 107-byte limit.
    ray_tmp = Path(tempfile.mkdtemp(prefix="tp-sr-", dir="/tmp" if Path("/tmp").is_dir() else None))
    env = {name: value for name, value in os.environ.items() if name != "RAY_ADDRESS"}
    env.update(CLUSTER_ENVIRONMENT)  # what serve/config.yaml says to export
    if not runtime._haproxy_available():
        env["RAY_SERVE_ENABLE_HA_PROXY"] = "0"
    env.update(
        {
            # HAProxy's side listeners, by default on fixed ports of every interface.
            "RAY_SERVE_HAPROXY_STATS_PORT": str(_free_port()),
            "RAY_SERVE_HAPROXY_METRICS_PORT": str(_free_port()),
            "RAY_TMPDIR": str(ray_tmp),
            "TRADEPULSE_API_KEYS": f"desk:trade+read:{SECRET}",
        }
    )
    for name in APPLICATION_ENVIRONMENT:
        env.pop(name, None)  # the config's runtime_env must bring these
    log = tmp_path / "serve-run.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", _WITH_SIGINT, str(SERVE_CLI), "run", "serve/config.yaml"],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    run = ServeRun(process=process, root=root, port=port, log=log)
    try:
        yield run
    finally:
        run.end()
        shutil.rmtree(ray_tmp, ignore_errors=True)


def _replica_environment(tree: list[psutil.Process]) -> dict[str, str]:
    """Return the environment of the TradingApi replica's process."""
    for process in tree:
        with contextlib.suppress(psutil.Error):
            if "ServeReplica:tradepulse:TradingApi" in " ".join(process.cmdline()):
                return process.environ()
    raise AssertionError("no TradingApi replica among the run's processes")


def test_serve_run_of_the_shipped_config_serves_orders_and_stops_cleanly(
    serve_run: ServeRun,
) -> None:
    started = time.monotonic()
    serve_run.wait_healthy()
    up_after = time.monotonic() - started
    tree = serve_run.record_tree()
    names = {process.name() for process in tree if _alive(process)}
    replica_env = _replica_environment(tree)
    auth = {"Authorization": f"Bearer {SECRET}"}
    order = {
        "symbol": "SPX",
        "side": "buy",
        "quantity": "2",
        "order_type": "limit",
        "limit_price": "10.00",
    }

    with httpx.Client(base_url=serve_run.url, timeout=10) as client:
        health = client.get("/health")
        anonymous = client.post("/orders", json=order)
        created = client.post("/orders", json=order, headers={**auth, "Idempotency-Key": "k1"})
        retried = client.post("/orders", json=order, headers={**auth, "Idempotency-Key": "k1"})
        order_id = created.json()["order_id"]
        fetched = client.get(f"/orders/{order_id}", headers=auth)
        account = client.get("/account", headers=auth)

    stopping = time.monotonic()
    serve_run.process.send_signal(signal.SIGINT)
    try:
        status = serve_run.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"serve run ignored SIGINT for {STOP_TIMEOUT_S:g} s:\n{serve_run.output()}")
    stopped_after = time.monotonic() - stopping
    deadline = time.monotonic() + 15  # Ray's own processes end a moment after the driver
    while any(_alive(p) for p in serve_run.seen.values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    survivors = serve_run.end()

    assert health.status_code == 200, serve_run.output()
    assert health.json()["status"] == "ok"
    assert anonymous.status_code == 401  # the keys of TRADEPULSE_API_KEYS are in force
    assert created.status_code == 201, created.text
    assert (created.json()["status"], created.json()["account"]) == ("accepted", "desk")
    assert retried.json()["order_id"] == order_id  # the retry returns the original order
    assert fetched.status_code == 200
    assert fetched.json()["order_id"] == order_id
    assert (fetched.json()["quantity"], fetched.json()["limit_price"]) == ("2", "10.00")
    # The relative service_config resolved against the root serve run ran in.
    service = yaml.safe_load((REPO / "serve" / "service.yaml").read_text(encoding="utf-8"))
    assert Decimal(account.json()["cash"]) == Decimal(service["initial_cash"])
    assert (serve_run.root / "var" / "tradepulse" / "journal.sqlite").is_file()
    # The exported settings reached Ray, the config's runtime_env the replica.
    if CLUSTER_ENVIRONMENT["RAY_SERVE_ENABLE_HA_PROXY"] == "1" and runtime._haproxy_available():
        assert "haproxy" in names
    for name, value in APPLICATION_ENVIRONMENT.items():
        assert replica_env.get(name) == value
    assert status == 0, serve_run.output()
    assert survivors == [], "processes of serve run's cluster outlived it"
    print(f"serve run: up in {up_after:.1f} s, stopped in {stopped_after:.1f} s")
