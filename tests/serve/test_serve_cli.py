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


def _quick_start() -> tuple[dict[str, str], list[str], list[str], list[str]]:
    """Return docs/live.md's exported variables, server command, client and strategy commands."""
    server, client, strategy = SH_BLOCK.findall(LIVE_DOCS.read_text(encoding="utf-8"))
    env: dict[str, str] = {}
    command: list[str] = []
    for line in server.strip().splitlines():
        words = shlex.split(line)
        if words[0] == "export":
            env.update(word.split("=", 1) for word in words[1:])  # type: ignore[misc]
        else:
            command = words
    assert command[:2] == ["tradepulse", "serve"]
    return env, command, client.strip().splitlines(), strategy.strip().splitlines()


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


def _feed(line: str, port: int) -> str:
    """Run a documented ``tradepulse feed`` line (this interpreter's tradepulse); return stderr."""
    assert " tradepulse feed replay " in f" {line} "
    line = line.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace(
        "tradepulse feed", f"{shlex.quote(sys.executable)} -m tradepulse feed", 1
    )
    completed = subprocess.run(
        ["bash", "-c", line], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert completed.returncode == 0, (line, completed.stderr)
    return completed.stderr


def _strategy_run(bars: int, params: dict[str, Any], cash: float) -> list[tuple[object, ...]]:
    """Return run_event's orders on the first ``bars`` S&P 500 bars with serve/service.yaml's terms.

    The strategy trades ``GSPC``, a symbol serve/service.yaml does not list: the
    default grid (0.0001 ticks and lots, 0.01 cash), 5 bps commission, at most
    25% of a bar's volume.
    """
    from tradepulse.backtest.event import run_event
    from tradepulse.backtest.runner import resolve_params, resolve_strategy
    from tradepulse.data import load_bars
    from tradepulse.domain import Instrument

    strategy = resolve_strategy("sma_cross")
    result = run_event(
        load_bars(REPO / "golden" / "data" / "sp500_daily.csv").head(bars),
        strategy,
        resolve_params(strategy, params),
        fast_fills=False,
        cash=cash,
        commission=0.0005,
        max_participation=0.25,
        instrument=Instrument(
            symbol="GSPC",
            price_increment=Decimal("0.0001"),
            quantity_increment=Decimal("0.0001"),
            cash_increment=Decimal("0.01"),
        ),
    )
    assert result.orders is not None
    return [
        (row["order_id"], row["side"], Decimal(repr(row["quantity"])), row["status"])
        for row in result.orders.iter_rows(named=True)
    ]


def test_the_live_quick_start_runs_as_written_and_survives_a_restart(tmp_path: Path) -> None:
    exported, command, client, strategy = _quick_start()
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
        # "Run a strategy": create, replay, look, list the filled orders, stop.
        created = _curl(strategy[0], port)
        replayed = _feed(strategy[1], port)
        state, filled_now, stopped = (_curl(line, port) for line in strategy[2:])
        after_strategy = [_curl(line, port) for line in client[3:]]
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

    # The strategy placed run_event's orders on the 300 bars it was fed, none refused.
    assert (created["id"], created["status"], created["symbol"]) == ("gspc-trend", "active", "GSPC")
    assert "replayed 300 GSPC bars" in replayed
    assert (state["runner"]["bars"], state["runner"]["status"]) == (300, "running")
    placed = [o for o in filled_now["orders"] if o["strategy"] == "gspc-trend"]
    expected = _strategy_run(300, created["params"], 40_000.0)
    assert len(expected) > 4
    assert all(row[3] == "filled" for row in expected)
    assert [
        (
            o["client_order_id"].removeprefix("gspc-trend:"),
            o["side"],
            Decimal(o["quantity"]),
            o["status"],
        )
        for o in placed
    ] == expected
    assert stopped["status"] == "stopped"

    # Restarted on the same journal, the service has every order, fill and position.
    server = _Server(command, env)
    try:
        server.wait_ready()
        again = [_curl(line, port) for line in client[3:]]
    finally:
        assert server.stop() == 0, server.output[-3000:]
    assert again == after_strategy
