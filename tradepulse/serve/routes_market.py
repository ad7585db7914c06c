"""Market-data routes: ``POST /market/bars`` feeds bars to the paper exchange (and strategies).

Bars are applied in request order: the execution service matches working
orders against each bar first, then the strategy runners (when configured)
see it, so an order decided on a bar's close fills on a later bar. The paper
market is shared: a bar moves prices, fills and marks for every account, so
the route needs the ``admin`` scope (a feed's key), not ``trade``. With a
:class:`~tradepulse.serve.backend.BarPipeline` (live strategies) the pipeline
applies the bars, running the strategies' steps around each bar (see
:mod:`tradepulse.serve.strategies`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.exceptions import RequestValidationError
from pydantic import Discriminator, Field, Tag

from tradepulse.serve.auth import Scope, requires
from tradepulse.serve.backend import BarPipeline, ExecutionBackend, MarketDataSink
from tradepulse.serve.models import (
    MAX_BARS_PER_REQUEST,
    TOO_LARGE_RESPONSE,
    BarIn,
    BarsOut,
    FillOut,
)
from tradepulse.strategy.api import Bar

__all__ = ["market_router"]


def _shape(value: object) -> str:
    return "bars" if isinstance(value, list) else "bar"


# A callable discriminator: errors name the shape sent ("body.bar.ts", "body.bars.3.ts").
_Bars = Annotated[
    Annotated[BarIn, Tag("bar")]
    | Annotated[list[BarIn], Field(min_length=1, max_length=MAX_BARS_PER_REQUEST), Tag("bars")],
    Discriminator(_shape),
    Body(description=f"One bar, or a list of up to {MAX_BARS_PER_REQUEST} bars in time order."),
]


def _check_order(bars: list[BarIn]) -> None:
    """Raise a 422 unless ``ts`` strictly increases per symbol within the request."""
    last: dict[str, int] = {}
    problems = []
    for index, bar in enumerate(bars):
        previous = last.get(bar.symbol)
        if previous is not None and bar.ts <= previous:
            problems.append(
                {
                    "type": "value_error",
                    "loc": ("body", "bars", index, "ts"),
                    "msg": f"ts must increase per symbol: {bar.ts} <= {previous} ({bar.symbol})",
                    "input": bar.ts,
                }
            )
        last[bar.symbol] = bar.ts
    if problems:
        raise RequestValidationError(problems)


def market_router(
    backend: ExecutionBackend,
    *,
    strategies: MarketDataSink | None,
    pipeline: BarPipeline | None = None,
) -> APIRouter:
    """Return the market-data routes over ``backend`` (or ``pipeline``), feeding ``strategies``."""
    router = APIRouter(tags=["market data"])

    @router.post(
        "/market/bars",
        response_model=BarsOut,
        openapi_extra=requires(Scope.ADMIN),
        responses=TOO_LARGE_RESPONSE,
    )
    async def post_bars(bars: _Bars) -> BarsOut:
        """Apply bars (``ts`` strictly increasing per symbol); answer the fills they caused.

        The bars move the paper market of every account: admin scope.
        """
        listed = bars if isinstance(bars, list) else [bars]
        _check_order(listed)
        pairs = [
            (bar.symbol, Bar(bar.ts, bar.open, bar.high, bar.low, bar.close, bar.volume))
            for bar in listed
        ]
        if pipeline is None:
            fills = await backend.on_bars(pairs)
        else:
            fills = await pipeline.apply_bars(pairs)
        if strategies is not None:
            await strategies.on_bars(pairs)
        return BarsOut(bars=len(pairs), fills=[FillOut.model_validate(fill) for fill in fills])

    return router
