"""``tradepulse serve``: the live paper-trading API on Ray Serve, on this machine or a cluster."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, Final

import typer

from tradepulse.cli._common import AddressOption, error_console, reported_errors

__all__ = ["serve_command"]

#: The builder whose arguments the command checks before starting Ray.
_OUR_BUILDER: Final = "tradepulse.serve.deployment:build_app"


def _check_arguments(config: Any) -> None:
    """Resolve our applications' arguments now: a bad key or path fails before Ray starts."""
    from tradepulse.serve.deployment import resolve_args

    for app in config.applications:
        if app.import_path == _OUR_BUILDER:
            resolve_args(app.args)


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def serve_command(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="Serve config (e.g. serve/config.yaml); default: the built-in application "
            "on 127.0.0.1:8000 with the default execution service.",
        ),
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", help="HTTP port (default: the config's, else 8000).")
    ] = None,
    host: Annotated[
        str | None,
        typer.Option("--host", help="Interface to listen on (default: the config's, 127.0.0.1)."),
    ] = None,
    journal: Annotated[
        Path | None, typer.Option("--journal", help="Order journal (SQLite) path.")
    ] = None,
    api_keys: Annotated[
        Path | None,
        typer.Option("--api-keys", help="API key file (YAML/JSON: id, scopes, secret_sha256)."),
    ] = None,
    dev_key: Annotated[
        bool,
        typer.Option(
            "--dev-key",
            help="Create a throw-away admin key for this run and print its secret "
            "(local development only).",
        ),
    ] = False,
    address: AddressOption = None,
) -> None:
    """Run the paper-trading API (Ray Serve) until Ctrl-C.

    Starts a local Ray cluster in this process unless --address (or RAY_ADDRESS)
    names one, deploys the application and prints its URL. API keys come from
    --api-keys, TRADEPULSE_API_KEYS="id:scope[+scope]:secret,..." or --dev-key.
    """
    with reported_errors():
        from tradepulse.serve.auth import generate_key
        from tradepulse.serve.runtime import load_serve_config

        overrides: dict[str, Any] = {}
        if journal is not None:
            overrides["journal"] = str(journal)
        if api_keys is not None:
            overrides["api_keys_file"] = str(api_keys)
        secret = None
        if dev_key:
            generated = generate_key("dev", ["admin"])
            secret = generated.secret
            overrides["api_keys"] = [dict(generated.entry)]
        serve_config = load_serve_config(config, port=port, host=host, args=overrides)
        _check_arguments(serve_config)

        from tradepulse.cluster import connect, shutdown
        from tradepulse.cluster.connect import ADDRESS_ENV
        from tradepulse.serve.runtime import (
            serve_environment,
            start_application,
            stop_application,
        )

        if not (address or os.environ.get(ADDRESS_ENV)):
            # A local cluster: its processes inherit these (HAProxy ingress, ...).
            # A joined cluster keeps the settings it was started with.
            os.environ.update(serve_environment())
        info = connect(address)
        try:
            running = start_application(serve_config)
            error_console.print(
                f"TradePulse API at {running.url}/api/v1 (OpenAPI docs at "
                f"{running.url}/api/v1/docs) on Ray {info.address}; Ctrl-C to stop"
            )
            if secret is not None:
                error_console.print(
                    f"development key 'dev' (admin), valid for this run only: {secret}",
                    highlight=False,
                )
            _wait_for_stop()
            error_console.print("stopping")
            stop_application()
        finally:
            shutdown()
