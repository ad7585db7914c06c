"""``tradepulse serve``: configuration errors before Ray starts, and a real run end to end."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.errors import ConfigError
from tradepulse.serve.runtime import load_serve_config

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ config (no Ray)


def test_the_shipped_serve_config_listens_on_localhost_and_names_our_builder() -> None:
    config = load_serve_config(REPO / "serve" / "config.yaml")
    assert config.http_options.host == "127.0.0.1"
    assert config.http_options.port == 8000
    (application,) = config.applications
    assert application.import_path == "tradepulse.serve.deployment:build_app"
    assert application.args["service_config"] == "serve/service.yaml"


def test_overrides_replace_the_port_and_merge_args() -> None:
    config = load_serve_config(
        REPO / "serve" / "config.yaml", port=8123, args={"journal": "/tmp/x.sqlite"}
    )
    assert config.http_options.port == 8123
    assert config.applications[0].args["journal"] == "/tmp/x.sqlite"
    assert config.applications[0].args["journal_sync"] == "full"  # kept
    default = load_serve_config(None)
    assert default.http_options.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("applications: []\n", "no applications"),
        ("- 1\n", "expected a mapping"),
        ("applications: [{import_path: 3}]\n", "Serve config"),
        ("http_options: {port: 8000}\nhttp_options: {port: 1}\n", "duplicate key"),
    ],
)
def test_a_bad_serve_config_is_one_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_serve_config(path)


def test_serve_without_api_keys_fails_before_starting_ray(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TRADEPULSE_API_KEYS", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["serve", "--port", "8999"])
    assert result.exit_code == 1
    assert "no API keys configured" in result.output
    assert "Traceback" not in result.output


def test_serve_with_a_bad_key_file_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TRADEPULSE_API_KEYS", raising=False)
    keys = tmp_path / "keys.yaml"
    keys.write_text("- id: x\n  scopes: [root]\n  secret_sha256: abc\n")
    result = CliRunner().invoke(app, ["serve", "--api-keys", str(keys)])
    assert result.exit_code == 1
    assert str(keys) in result.output


# ------------------------------------------------------------------ a real run: docs/live.md

LIVE_DOCS = REPO / "docs" / "live.md"
SH_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _quick_start() -> tuple[dict[str, str], list[str], list[str]]:
    """Return docs/live.md's exported variables, server command and client commands."""
    server, client = SH_BLOCK.findall(LIVE_DOCS.read_text(encoding="utf-8"))
    env: dict[str, str] = {}
    command: list[str] = []
    for line in server.strip().splitlines():
        words = shlex.split(line)
        if words[0] == "export":
            env.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
        else:
            command = words
    assert command[:2] == ["tradepulse", "serve"]
    return env, command, client.strip().splitlines()


class _Server:
    """`tradepulse serve` in a child process, its output collected."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tradepulse", *command[1:]],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        stream = self.process.stdout
        assert stream is not None
        self.reader = threading.Thread(target=lambda: self.lines.extend(stream), daemon=True)
        self.reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 120
        # Up when the command says so (after Serve reports the application ready).
        while not any("Ctrl-C to stop" in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("tradepulse serve did not come up:\n" + self.output[-3000:])
            time.sleep(0.2)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.reader.join(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.process.returncode


def _curl(line: str, port: int) -> dict[str, Any]:
    completed = subprocess.run(
        ["bash", "-c", line.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert completed.returncode == 0, (line, completed.stderr)
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


def test_the_live_quick_start_runs_as_written_and_survives_a_restart(tmp_path: Path) -> None:
    exported, command, client = _quick_start()
    port = _free_port()
    journal = tmp_path / "journal.sqlite"
    # The documented command, on a free port and a journal of the test's own.
    command = [*command, "--port", str(port), "--journal", str(journal)]
    env = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}
    env.update(exported)

    server = _Server(command, env)
    try:
        server.wait_ready()
        answers = [_curl(line, port) for line in client]
    finally:
        status = server.stop()
    assert status == 0, server.output[-3000:]
    assert "stopping" in server.output
    assert f"http://127.0.0.1:{port}/api/v1" in server.output

    first_bar, order, second_bar, filled, positions, account = answers
    assert first_bar["fills"] == []
    assert order["status"] == "accepted"
    assert [fill["order_id"] for fill in second_bar["fills"]] == [order["order_id"]]
    # Hand-derived from docs/live.md and serve/service.yaml: 10 units at the second
    # bar's open 4725.07, commission 5 bps rounded to the cent, marked at 4704.81.
    (fill,) = second_bar["fills"]
    assert (fill["price"], fill["quantity"], fill["commission"]) == ("4725.07", "10", "23.63")
    assert [o["order_id"] for o in filled["orders"]] == [order["order_id"]]
    (position,) = positions["positions"]
    assert (position["symbol"], position["quantity"], position["unrealized_pnl"]) == (
        "SPX",
        "10",
        "-202.60",
    )
    assert Decimal(account["cash"]) == Decimal("100000") - Decimal("47250.70") - Decimal("23.63")
    assert Decimal(account["equity"]) == Decimal(account["cash"]) + Decimal("47048.10")

    # Restarted on the same journal, the service has every order, fill and position.
    server = _Server(command, env)
    try:
        server.wait_ready()
        again = [_curl(line, port) for line in client[3:]]
    finally:
        assert server.stop() == 0, server.output[-3000:]
    assert again == [filled, positions, account]
