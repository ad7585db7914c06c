"""The servers under test, each a child process, and the CPU their process trees spend.

- ``serve``: the real ``tradepulse serve`` command with the shipped
  ``serve/config.yaml`` and the command's Serve settings;
- ``serve-default``: the same with Ray's own defaults for those settings;
- ``uvicorn``: the same FastAPI app over the same execution service served by
  plain uvicorn (``bench_serve.py --uvicorn-server``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import psutil
import yaml

from serve_bench.common import HOST, api_keys_env, free_port
from serve_bench.load import admin_call, run

__all__ = [
    "RAY_DEFAULTS",
    "JournalPlace",
    "Server",
    "cpu_by_role",
    "cpu_delta",
    "machine_busy_seconds",
    "run_uvicorn_server",
]

REPO: Final = Path(__file__).resolve().parents[2]
#: The benchmark's entry point, which is also the uvicorn comparison server.
BENCH_SCRIPT: Final = Path(__file__).resolve().parents[1] / "bench_serve.py"
START_TIMEOUT_S: Final = 180.0

#: Ray's own defaults for the settings `tradepulse serve` changes (the "before" figures).
RAY_DEFAULTS: Final = {
    "RAY_SERVE_ENABLE_HA_PROXY": "0",
    "RAY_SERVE_ENABLE_DIRECT_INGRESS": "0",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "0",
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "1",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "1",
    "RAY_SERVE_USE_GRPC_BY_DEFAULT": "0",
}


def _role(process: psutil.Process) -> str:
    try:
        line = " ".join(process.cmdline())
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "gone"
    for marker, role in (
        ("ProxyActor", "proxy"),
        ("HAProxy", "proxy"),
        ("haproxy", "haproxy"),
        ("TradingApi", "replica"),
        ("StrategyRunners", "runners"),
        ("ServeReplica", "other-replica"),
        ("ServeController", "controller"),
        ("raylet", "raylet"),
        ("gcs_server", "gcs"),
    ):
        if marker in line or marker in name:
            return role
    if "tradepulse" in line or "bench_serve" in line:
        return "server"
    return "ray-other"


def machine_busy_seconds() -> float:
    """Return the CPU seconds all cores have spent busy since boot (``/proc/stat``)."""
    with open("/proc/stat", encoding="ascii") as stat:
        fields = [int(value) for value in stat.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def cpu_by_role(root: int) -> dict[int, tuple[str, float]]:
    """Return pid -> (role, CPU seconds) for ``root`` and all its descendants."""
    try:
        top = psutil.Process(root)
        processes = [top, *top.children(recursive=True)]
    except psutil.NoSuchProcess:
        return {}
    found = {}
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = process.cpu_times()
            found[process.pid] = (_role(process), times.user + times.system)
    return found


def cpu_delta(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """Return CPU seconds spent per role between two snapshots."""
    spent: dict[str, float] = {}
    for pid, (role, total) in after.items():
        base = before.get(pid, (role, 0.0))[1]
        spent[role] = spent.get(role, 0.0) + max(0.0, total - base)
    return spent


@dataclass(frozen=True)
class JournalPlace:
    """Where a server keeps its journal and how it syncs."""

    place: str  # "disk" or "tmpfs"
    sync: str  # "full" or "normal"

    @property
    def label(self) -> str:
        """Return e.g. ``disk/full``."""
        return f"{self.place}/{self.sync}"


class Server:
    """A server child process running the API on ``127.0.0.1:port``."""

    def __init__(
        self, target: str, journal: JournalPlace, *, workdir: Path, disk_dir: Path
    ) -> None:
        self.target = target
        self.journal = journal
        self.port = free_port()
        self.workdir = workdir
        base = Path("/dev/shm") if journal.place == "tmpfs" else disk_dir
        self.journal_dir = Path(tempfile.mkdtemp(prefix="tp-bench-journal-", dir=base))
        self.process: subprocess.Popen[str] | None = None
        self.lines: list[str] = []

    def command(self) -> list[str]:
        """Return the server's command line."""
        journal = str(self.journal_dir / "journal.sqlite")
        service = str(self.workdir / "service.yaml")
        if self.target == "uvicorn":
            args = {
                "journal": journal,
                "journal_sync": self.journal.sync,
                "service_config": service,
            }
            return [
                sys.executable,
                str(BENCH_SCRIPT),
                "--uvicorn-server",
                json.dumps(args),
                "--port",
                str(self.port),
            ]
        # The shipped config, with this run's journal mode and service.
        config = yaml.safe_load((REPO / "serve" / "config.yaml").read_text(encoding="utf-8"))
        (application,) = config["applications"]
        application["args"].update(journal_sync=self.journal.sync, service_config=service)
        if self.target == "serve-default":
            application.pop("runtime_env", None)
        path = self.workdir / f"{self.target}-{self.journal.sync}.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return [
            sys.executable,
            "-m",
            "tradepulse",
            "serve",
            "--config",
            str(path),
            "--port",
            str(self.port),
            "--journal",
            journal,
        ]

    def start(self, extra_env: dict[str, str]) -> None:
        """Start the server and wait until it answers ``/ready``.

        Raises:
            RuntimeError: the server exited or did not come up in time.
        """
        env = {**os.environ, "TRADEPULSE_API_KEYS": api_keys_env()}
        env.pop("RAY_ADDRESS", None)
        if self.target == "serve-default":
            env.update(RAY_DEFAULTS)
        env.update(extra_env)
        self.process = subprocess.Popen(
            self.command(),
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        stdout = self.process.stdout
        assert stdout is not None
        threading.Thread(target=lambda: self.lines.extend(stdout), daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.target} exited:\n" + "".join(self.lines)[-3000:])
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                if run(admin_call(self.port, "GET", "/api/v1/ready", None)) == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"{self.target} did not come up:\n" + "".join(self.lines)[-3000:])

    def stop(self) -> None:
        """Stop the server (SIGTERM: SIGINT may be ignored in a background job) and wait."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.journal_dir, ignore_errors=True)


def run_uvicorn_server(args_json: str, port: int) -> None:
    """Serve the TradingApi FastAPI app with plain uvicorn (the comparison server)."""
    import uvicorn

    from tradepulse.serve.deployment import create_trading_app, resolve_args

    resolved = resolve_args(json.loads(args_json))
    trading = create_trading_app(resolved.model_dump(mode="json"))
    uvicorn.run(trading.app, host=HOST, port=port, log_level="warning", access_log=False)
