"""Locust load: traders submitting orders to the TradePulse API (``POST /api/v1/orders``).

Start the API first (``tradepulse serve --config serve/config.yaml`` with a key
that has the ``trade`` scope, e.g. ``TRADEPULSE_API_KEYS=desk:trade:s3cret``),
then, headless with CSV output::

    TRADEPULSE_BENCH_KEY=s3cret .venv/bin/locust -f benchmarks/locustfile.py \\
        --headless --host http://127.0.0.1:8000 -u 16 -r 16 -t 30s --csv reports/locust

Environment:

- ``TRADEPULSE_BENCH_KEY`` (required): the API key's secret, sent as
  ``Authorization: Bearer <secret>``; several secrets separated by commas
  spread the users over several accounts;
- ``TRADEPULSE_BENCH_BATCH``: orders per request; above 1 the users call
  ``POST /api/v1/orders/batch`` instead (default 1);
- ``TRADEPULSE_BENCH_WAIT``: seconds each user waits between requests
  (default 0: closed loop, as fast as answers come back).

Each order is a one-unit buy limit far below the market (it rests, nothing
fills) with its own ``Idempotency-Key``. A response other than 201 (200 per
batch) counts as a failure. Locust's own CPU use is large on a 2-core machine
(16 users took 0.3-0.8 ms of CPU per request here, a third to half of what
the server spends), so it measures the server with less CPU than it has:
``benchmarks/bench_serve.py`` runs this file once per server for reference and
takes its figures from a leaner asyncio client (``docs/live-performance.md``).
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from typing import Any, Final

from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser

ORDER: Final = {
    "symbol": "SPX",
    "side": "buy",
    "quantity": "1",
    "order_type": "limit",
    "limit_price": "1.00",
}
_SECRETS: Final = [
    part.strip() for part in os.environ.get("TRADEPULSE_BENCH_KEY", "").split(",") if part.strip()
]
_BATCH: Final = int(os.environ.get("TRADEPULSE_BENCH_BATCH", "1"))
_WAIT: Final = float(os.environ.get("TRADEPULSE_BENCH_WAIT", "0"))
_USERS: Final = itertools.count()


@events.init.add_listener
def _check_environment(environment: Any, **kwargs: Any) -> None:
    if not _SECRETS:
        raise SystemExit("set TRADEPULSE_BENCH_KEY to an API key secret with the trade scope")
    if _BATCH < 1:
        raise SystemExit(f"TRADEPULSE_BENCH_BATCH must be >= 1; got {_BATCH}")


class Trader(FastHttpUser):  # type: ignore[misc]  # locust ships no type information
    """One trading client: submits orders (or batches of orders) back to back."""

    wait_time = constant(_WAIT)

    def on_start(self) -> None:
        """Pick this user's account key and a unique prefix for its idempotency keys."""
        secret = _SECRETS[next(_USERS) % len(_SECRETS)]
        self.headers = {
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
        }
        self.prefix = uuid.uuid4().hex[:12]
        self.sent = itertools.count()
        if _BATCH > 1:
            self.body = json.dumps({"orders": [ORDER] * _BATCH})
        else:
            self.body = json.dumps(ORDER)

    @task
    def submit(self) -> None:
        """Submit one order (201) or one batch (200, every item 201)."""
        headers = {**self.headers, "Idempotency-Key": f"{self.prefix}-{next(self.sent)}"}
        path, name = (
            ("/api/v1/orders/batch", f"POST /orders/batch ({_BATCH})")
            if _BATCH > 1
            else ("/api/v1/orders", "POST /orders")
        )
        with self.client.post(
            path, data=self.body, headers=headers, name=name, catch_response=True
        ) as response:
            if _BATCH == 1:
                if response.status_code != 201:
                    response.failure(f"status {response.status_code}")
            elif response.status_code != 200:
                response.failure(f"status {response.status_code}")
            elif any(item["status"] != 201 for item in response.json()["results"]):
                response.failure("an order of the batch was not created")
