"""``tradepulse serve``: configuration errors before Ray starts, and a real run end to end."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.errors import ConfigError
from tradepulse.serve.runtime import load_serve_config

REPO = Path(__file__).resolve().parents[2]
SECRET = "e2e-trader-secret"


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


# ------------------------------------------------------------------ a real run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _call(
    url: str, *, method: str = "GET", body: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {SECRET}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tradepulse_serve_runs_a_paper_trading_api_until_interrupted(tmp_path: Path) -> None:
    port = _free_port()
    journal = tmp_path / "journal.sqlite"
    env = {**os.environ, "TRADEPULSE_API_KEYS": f"desk:trade:{SECRET}"}
    env.pop("RAY_ADDRESS", None)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tradepulse",
            "serve",
            "--config",
            str(REPO / "serve" / "config.yaml"),
            "--port",
            str(port),
            "--journal",
            str(journal),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/api/v1"
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or ()), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        # Up when the command says so (after Serve reports the application ready).
        while not any("Ctrl-C to stop" in line for line in lines):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("tradepulse serve did not come up:\n" + "".join(lines)[-3000:])
            time.sleep(0.2)
        status, health = _call(f"{base}/health")
        assert status == 200
        assert health["version"]
        bar = {"symbol": "SPX", "open": 100, "high": 101, "low": 99, "close": 100.5}
        status, _ = _call(
            f"{base}/market/bars",
            method="POST",
            body={**bar, "ts": "2024-01-02T00:00:00Z", "volume": 100_000},
        )
        assert status == 200
        status, order = _call(
            f"{base}/orders", method="POST", body={"symbol": "SPX", "side": "buy", "quantity": "3"}
        )
        assert status == 201
        assert order["status"] == "accepted", order
        status, _ = _call(
            f"{base}/market/bars",
            method="POST",
            body={**bar, "ts": "2024-01-03T00:00:00Z", "open": 100.25, "volume": 100_000},
        )
        assert status == 200
        status, filled = _call(f"{base}/orders/{order['order_id']}")
        assert filled["status"] == "filled"
        assert filled["average_fill_price"] == "100.25"  # the next bar's open, on the tick grid
        status, positions = _call(f"{base}/positions")
        assert [(p["symbol"], p["quantity"]) for p in positions["positions"]] == [("SPX", "3")]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=10)
        process.stdout.close()
    output = "".join(lines)
    assert process.returncode == 0, output[-3000:]
    assert "stopping" in output
    assert f"http://127.0.0.1:{port}/api/v1" in output
    assert journal.exists()
