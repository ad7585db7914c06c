"""What every part of the serve benchmark shares: accounts, API keys, the order, the service."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Final

import psutil

__all__ = [
    "ACCOUNTS",
    "ADMIN_SECRET",
    "BATCH_SIZE",
    "HOST",
    "LOCUST_USERS",
    "MAX_CONNECTIONS",
    "ORDER",
    "ORDER_BODY",
    "P99_TARGET_MS",
    "SEED",
    "SERVICE_CONFIG",
    "api_keys_env",
    "file_system",
    "free_port",
    "trade_secret",
]

HOST: Final = "127.0.0.1"
ACCOUNTS: Final = 16
BATCH_SIZE: Final = 20
P99_TARGET_MS: Final = 25.0
LOCUST_USERS: Final = 16
MAX_CONNECTIONS: Final = 256
SEED: Final = 20240601

ORDER: Final = {
    "symbol": "SPX",
    "side": "buy",
    "quantity": "1",
    "order_type": "limit",
    "limit_price": "1.00",
}
ORDER_BODY: Final = json.dumps(ORDER, separators=(",", ":")).encode()
#: The service behind every server: no throttles or open-order cap to hit.
SERVICE_CONFIG: Final = """\
initial_cash: "1000000000"
max_open_orders: null
orders_per_second_account: null
orders_per_second_strategy: null
instruments:
  SPX: {price_increment: "0.01", quantity_increment: "1", cash_increment: "0.01"}
"""
ADMIN_SECRET: Final = "bench-admin-secret"


def trade_secret(index: int) -> str:
    """Return the bench secret of trading account ``index``."""
    return f"bench-trader-{index:02d}-secret"


def api_keys_env() -> str:
    """Return ``TRADEPULSE_API_KEYS`` for the bench accounts and the admin key."""
    keys = [f"acct{index:02d}:trade:{trade_secret(index)}" for index in range(ACCOUNTS)]
    return ",".join([*keys, f"admin:admin:{ADMIN_SECRET}"])


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def file_system(path: Path) -> str:
    """Return the type of the file system holding ``path`` (``ext4``, ``tmpfs``, ...)."""
    best = None
    for partition in psutil.disk_partitions(all=True):
        mount = Path(partition.mountpoint)
        if path.is_relative_to(mount) and (best is None or len(str(mount)) > len(best[0])):
            best = (str(mount), partition.fstype)
    return "?" if best is None else best[1]
