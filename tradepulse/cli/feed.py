"""``tradepulse feed replay``: replay a data file into the live API's market data at a chosen speed.

The bars of a data file go to ``POST /api/v1/market/bars`` of a running
``tradepulse serve`` in requests of up to ``--batch`` bars, paced at
``--speed`` bars per second (as fast as the server answers without it); the
strategies running there trade on them. The API key comes from
``TRADEPULSE_API_KEY`` and needs the ``admin`` scope: bars move the paper
market of every account. A replay that stops (an error, Ctrl-C) says the
feed position to resume from with ``--start``; the server ignores bars it
already has, so resending a few is harmless.
"""

from __future__ import annotations

import itertools
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from tradepulse.cli._common import error_console, fail, progress_bar, reported_errors
from tradepulse.errors import ConfigError

__all__ = ["API_KEY_ENV", "feed_app"]

#: Environment variable holding the API key secret the feed sends.
API_KEY_ENV: Final = "TRADEPULSE_API_KEY"
#: Most bars per request the server takes (``MAX_BARS_PER_REQUEST``).
_MAX_BATCH: Final = 1000
_MARKET_BARS: Final = "/api/v1/market/bars"
_TIMEOUT_SECONDS: Final = 300.0

feed_app = typer.Typer(help="Market-data feeds for the live API.", no_args_is_help=True)


class _FeedError(Exception):
    """A request failed; ``message`` says why in one line."""


def _problem(status: int, body: bytes) -> str:
    """Return the server's error message (and first field errors) for an error response."""
    try:
        error = json.loads(body)["error"]
        message = str(error["message"])
        fields = [
            f"{detail.get('field')}: {detail.get('message')}"
            for detail in error.get("details", [])[:3]
        ]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
    hint = {
        401: f" (is {API_KEY_ENV} one of the server's keys?)",
        403: " (the feed needs a key with the admin scope)",
    }.get(status, "")
    detail = f" [{'; '.join(fields)}]" if fields else ""
    return f"HTTP {status}: {message}{detail}{hint}"


def _post(url: str, secret: str, bars: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """POST ``bars`` to ``url``; return the answer.

    Raises:
        _FeedError: the server is unreachable or answered an error.
    """
    request = urllib.request.Request(
        url,
        data=json.dumps(list(bars)).encode("utf-8"),
        method="POST",
        headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as error:
        raise _FeedError(_problem(error.code, error.read())) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise _FeedError(f"cannot reach {url}: {reason}") from None


@feed_app.command("replay")
def replay_command(
    data: Annotated[Path, typer.Argument(help="Bars file (CSV or Parquet, one symbol).")],
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol of the bars (default: the file's symbol column)."),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option("--speed", help="Bars per second (default: as fast as the server answers)."),
    ] = None,
    url: Annotated[
        str, typer.Option("--url", help="The live API's base URL.")
    ] = "http://127.0.0.1:8000",
    batch: Annotated[
        int, typer.Option("--batch", help=f"Most bars per request (1 to {_MAX_BATCH}).")
    ] = 100,
    start: Annotated[
        int, typer.Option("--start", help="Feed position (row) to start from, to resume.")
    ] = 0,
    count: Annotated[
        int | None, typer.Option("--count", help="Replay at most this many bars.")
    ] = None,
) -> None:
    """Replay a data file into POST /api/v1/market/bars at --speed bars per second.

    The key (admin scope) comes from TRADEPULSE_API_KEY. Bars are sent as they
    come due, up to --batch per request; on an error the command names the
    position to resume from with --start.
    """
    with reported_errors():
        from tradepulse.live.replay import ReplayFeed

        secret = os.environ.get(API_KEY_ENV, "").strip()
        if not secret:
            fail(f"set {API_KEY_ENV} to the secret of an API key with the admin scope")
        if not 1 <= batch <= _MAX_BATCH:
            raise ConfigError(f"--batch must be 1 to {_MAX_BATCH}; got {batch}")
        if count is not None and count < 1:
            raise ConfigError(f"--count must be at least 1; got {count}")
        if not data.exists():
            fail(f"{data}: no such file")
        pending: list[dict[str, Any]] = []
        state = {"sent": 0, "fills": 0, "position": start}

        def flush() -> None:
            if not pending:
                return
            answer = _post(url.rstrip("/") + _MARKET_BARS, secret, pending)
            state["sent"] += len(pending)
            state["position"] += len(pending)
            state["fills"] += len(answer.get("fills", []))
            progress.update(task, advance=len(pending))
            pending.clear()

        def wait(seconds: float) -> None:
            flush()  # send what is due before waiting for the next bar
            time.sleep(seconds)

        feed = ReplayFeed(data, speed=speed, start=start, sleep=wait)
        name = symbol or feed.symbol
        if name is None:
            raise ConfigError(f"{data} has no symbol column: give the bars' symbol with --symbol")
        if symbol is not None and feed.symbol is not None and feed.symbol != symbol:
            raise ConfigError(f"{data} holds {feed.symbol!r} bars, not {symbol!r}")
        total = len(feed) if count is None else min(count, len(feed))
        try:
            with progress_bar(f"replaying {name}", total) as progress:
                task = progress.tasks[0].id
                for _, bar in itertools.islice(feed, total):
                    pending.append(
                        {
                            "symbol": name,
                            "ts": bar.ts,
                            "open": bar.open,
                            "high": bar.high,
                            "low": bar.low,
                            "close": bar.close,
                            "volume": bar.volume,
                        }
                    )
                    if len(pending) >= batch:
                        flush()
                flush()
        except _FeedError as error:
            fail(f"{error}; {state['sent']} bars sent, resume with --start {state['position']}")
        except KeyboardInterrupt:
            fail(f"interrupted; {state['sent']} bars sent, resume with --start {state['position']}")
        error_console.print(
            f"replayed {state['sent']} {name} bars (positions {start} to "
            f"{state['position'] - 1}) to {url}: {state['fills']} fills"
        )
