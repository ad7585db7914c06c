"""Strategy routes: run plugin strategies live (``/strategies``, mounted under ``/api/v1``).

``POST /strategies`` starts a strategy (plugin name, parameters, symbol) for
the account of the request's key; it trades from the next bar of its symbol
that ``POST /market/bars`` receives, through the execution service, with the
orders ``run_event`` would place on the same bars. ``GET`` lists and shows
them with their runner's state; ``DELETE`` stops one and cancels its working
orders. A strategy's orders are ordinary orders of the account: a user may
cancel one (``DELETE /orders/{id}``; the kill switch cancels them too) and the
runner follows, but not replace one (``PUT /orders/{id}`` answers 409
``strategy_order``). See :mod:`tradepulse.serve.strategies` for how bars,
runners and the service meet.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from starlette.responses import Response

from tradepulse.live.runner import RUNNER_ID_PATTERN
from tradepulse.serve.auth import ApiKey, Scope, current_key, requires
from tradepulse.serve.models import TOO_LARGE_RESPONSE, UNAVAILABLE_RESPONSE, Amount, ErrorOut
from tradepulse.serve.strategies import StrategyDefinitionError, StrategyPipeline, StrategyStatus

__all__ = [
    "MAX_PARAMETERS",
    "RunnerStateOut",
    "StrategyIn",
    "StrategyList",
    "StrategyOut",
    "strategies_router",
]

#: Most parameters one strategy definition may carry.
MAX_PARAMETERS: Final = 64
_CREATED: Final = 201
_EXISTING: Final = 200
_STRATEGY_ID: Final = rf"^{RUNNER_ID_PATTERN}$"
_PLUGIN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_SYMBOL: Final = r"^[A-Za-z0-9^][A-Za-z0-9._:/^=+-]{0,31}$"

_Key = Annotated[ApiKey, Depends(current_key)]
_StrategyId = Annotated[str, Path(pattern=_STRATEGY_ID, description="The strategy's id.")]
_ParamValue = (
    StrictBool
    | StrictInt
    | Annotated[StrictFloat, Field(allow_inf_nan=False)]
    | Annotated[str, Field(max_length=256)]
)
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorOut, "description": "No such strategy in the key's account"}
}
_UNAVAILABLE: Final[dict[int | str, dict[str, Any]]] = {
    503: {**UNAVAILABLE_RESPONSE, "description": "The strategy's runner cannot be reached"}
}
_SERVICE_UNAVAILABLE: Final[dict[int | str, dict[str, Any]]] = {
    503: {
        **UNAVAILABLE_RESPONSE,
        "description": "The service or the strategy's runner is unavailable; nothing was applied",
    }
}


class StrategyIn(BaseModel):
    """A strategy to run live (``POST /strategies``).

    ``plugin`` names an installed strategy (``tradepulse strategies`` lists
    them) and ``params`` its parameters (defaults for the rest). ``id``
    (optional) makes the request idempotent: a retry with the same id and
    definition answers the existing strategy. ``cash`` is what the strategy
    sizes its targets from (default: the account's initial cash).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    plugin: str = Field(pattern=_PLUGIN, examples=["sma_cross"])
    params: dict[Annotated[str, Field(max_length=64)], _ParamValue] = Field(
        default_factory=dict, max_length=MAX_PARAMETERS, examples=[{"fast": 10, "slow": 30}]
    )
    symbol: str = Field(pattern=_SYMBOL, examples=["SPX"])
    id: str | None = Field(default=None, pattern=_STRATEGY_ID)
    cash: Amount | None = None


class RunnerStateOut(BaseModel):
    """A runner as of its last bar: ``position`` units, ``cash`` / ``equity`` quote currency.

    ``open_orders`` are the runner's ids of its working orders (the service's
    client order ids are ``<strategy id>:<runner id>``); ``failure`` says why a
    failed strategy stopped.
    """

    status: Literal["new", "running", "finalized", "failed"]
    bars: int
    last_ts: int | None
    position: float
    cash: float
    equity: float
    open_orders: list[str]
    failure: str | None


class StrategyOut(BaseModel):
    """A live strategy: its definition, status and its runner's state.

    ``first_ts`` is the stamp of the first bar it saw; ``last_heartbeat`` the
    Unix time (seconds) its runner last answered the ingress (a liveness ping
    or a completed bar; null until then); ``last_bar`` the Unix time
    (seconds) its runner last completed a bar (null before the first);
    ``cancelled`` the orders a ``DELETE`` cancelled.
    """

    id: str
    account: str
    plugin: str
    params: dict[str, Any]
    symbol: str
    cash: float | None
    status: Literal["active", "stopped"]
    created_ns: int
    first_ts: int | None
    stopped_ns: int | None
    runner: RunnerStateOut | None
    last_heartbeat: float | None
    last_bar: float | None
    cancelled: list[str] = Field(default_factory=list)


class StrategyList(BaseModel):
    """The strategies of the key's account, oldest first."""

    strategies: list[StrategyOut]


def _out(status: StrategyStatus) -> StrategyOut:
    record, state = status.record, status.state
    runner = None
    if state is not None:
        runner = RunnerStateOut(
            status=state.status,
            bars=state.bars,
            last_ts=state.last_ts,
            position=state.position,
            cash=state.cash,
            equity=state.equity,
            open_orders=list(state.open_orders),
            failure=state.failure,
        )
    return StrategyOut(
        id=record.strategy_id,
        account=record.account,
        plugin=record.plugin,
        params=dict(record.params),
        symbol=record.symbol,
        cash=record.cash,
        status="active" if record.active else "stopped",
        created_ns=record.created_ns,
        first_ts=record.first_ts,
        stopped_ns=record.stopped_ns,
        runner=runner,
        last_heartbeat=status.heartbeat,
        last_bar=status.last_bar,
        cancelled=list(status.cancelled),
    )


def strategies_router(pipeline: StrategyPipeline) -> APIRouter:
    """Return the strategy routes over ``pipeline``."""
    router = APIRouter(tags=["strategies"])

    @router.post(
        "/strategies",
        status_code=_CREATED,
        response_model=StrategyOut,
        openapi_extra=requires(Scope.TRADE),
        responses={
            _EXISTING: {
                "model": StrategyOut,
                "description": "A retry with an existing id and definition: that strategy",
            },
            409: {"model": ErrorOut, "description": "The id belongs to another strategy"},
            **TOO_LARGE_RESPONSE,
            **_SERVICE_UNAVAILABLE,
        },
    )
    async def create_strategy(definition: StrategyIn, response: Response, key: _Key) -> StrategyOut:
        """Run a plugin strategy live on a symbol, for the key's account (201).

        It trades from the next bar of the symbol, placing the orders the
        event-driven backtest would; 422 names an unknown plugin or a bad
        parameter (``body.params.<name>``).
        """
        try:
            status, created = await pipeline.create(
                account=key.account,
                plugin=definition.plugin,
                params=definition.params,
                symbol=definition.symbol,
                cash=definition.cash,
                strategy_id=definition.id,
            )
        except StrategyDefinitionError as error:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body", *error.field.split(".")),
                        "msg": str(error),
                        "input": None,
                    }
                ]
            ) from None
        response.status_code = _CREATED if created else _EXISTING
        return _out(status)

    @router.get("/strategies", response_model=StrategyList, openapi_extra=requires(Scope.READ))
    async def list_strategies(key: _Key) -> StrategyList:
        """List the account's strategies (stopped ones too) with their runners' last state."""
        return StrategyList(strategies=[_out(item) for item in pipeline.strategies(key.account)])

    @router.get(
        "/strategies/{strategy_id}",
        response_model=StrategyOut,
        openapi_extra=requires(Scope.READ),
        responses={**_NOT_FOUND, **_UNAVAILABLE},
    )
    async def get_strategy(strategy_id: _StrategyId, key: _Key) -> StrategyOut:
        """Return one strategy: definition, status and runner state (position, equity, orders)."""
        return _out(await pipeline.strategy(key.account, strategy_id))

    @router.delete(
        "/strategies/{strategy_id}",
        response_model=StrategyOut,
        openapi_extra=requires(Scope.TRADE),
        responses={**_NOT_FOUND, **_SERVICE_UNAVAILABLE},
    )
    async def delete_strategy(strategy_id: _StrategyId, key: _Key) -> StrategyOut:
        """Stop a strategy: it takes no more bars and its working orders are cancelled."""
        return _out(await pipeline.stop(key.account, strategy_id))

    return router
