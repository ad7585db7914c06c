"""Order, fill, position, account and kill-switch routes (mounted under ``/api/v1``).

Every route acts for the account of the request's API key. Rejected orders
are not errors: ``POST /orders`` answers 201 with the order in status
``rejected`` and a machine-readable ``reason``.

With live strategies (``has_strategy`` given), a client order id or
idempotency key ``<strategy id>:...`` of a strategy of the key's account is
its runner's: the routes refuse it (409 ``reserved_id``, see
:func:`~tradepulse.serve.strategy_orders.check_unreserved`), and a strategy's
order may be cancelled but not replaced (409 ``strategy_order``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from tradepulse.domain.orders import OrderStatus
from tradepulse.execution.service_views import OrderRequest
from tradepulse.serve.auth import ApiKey, Scope, current_key, requires
from tradepulse.serve.backend import (
    BatchItemResult,
    ExecutionBackend,
    SubmitItem,
    classify_error,
)
from tradepulse.serve.models import (
    TOO_LARGE_RESPONSE,
    AccountOut,
    BatchItemOut,
    BatchOrdersIn,
    BatchOrdersOut,
    ErrorInfo,
    ErrorOut,
    FillList,
    FillOut,
    KillSwitchIn,
    KillSwitchOut,
    KillSwitchState,
    OrderIn,
    OrderList,
    OrderOut,
    PositionList,
    PositionOut,
    ReplaceIn,
)
from tradepulse.serve.strategy_orders import (
    HasStrategy,
    ReservedIdError,
    check_replaceable,
    check_unreserved,
    check_untagged,
)

__all__ = ["DEFAULT_ORDER_LIMIT", "MAX_ORDER_LIMIT", "order_request", "orders_router"]

#: Orders returned by ``GET /orders`` unless ``limit`` says otherwise.
DEFAULT_ORDER_LIMIT: Final = 1000
#: Largest ``limit`` of ``GET /orders``.
MAX_ORDER_LIMIT: Final = 10_000
_ID_PATTERN: Final = r"^[!-~]{1,128}$"
# The service takes keys of up to 128 characters; a batch appends "#<index>" (up to "#99").
_IDEMPOTENCY_PATTERN: Final = r"^[!-~]{1,125}$"
_CREATED: Final = 201
_REPLAYED: Final = 200

_Key = Annotated[ApiKey, Depends(current_key)]
_IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        pattern=_IDEMPOTENCY_PATTERN,
        description=(
            "Makes a retry safe: the same key (and body) returns the original order. "
            "For a batch, item i uses '<key>#<i>'."
        ),
    ),
]
_OrderId = Annotated[str, Path(pattern=_ID_PATTERN, description="The order's id.")]
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ErrorOut, "description": "No such order in the key's account"}
}
_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {
        "model": ErrorOut,
        "description": "The order is terminal, or the idempotency key was used for another body",
    }
}
_RESERVED: Final = (
    "the client order id or Idempotency-Key is '<strategy id>:...' of a live strategy "
    "of the key's account (code reserved_id)"
)
_SUBMIT_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {
        "model": ErrorOut,
        "description": f"The idempotency key was used for another body, or {_RESERVED}",
    }
}
_BATCH_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {
        "model": ErrorOut,
        "description": (
            "The Idempotency-Key is '<strategy id>:...' of a live strategy of the key's "
            "account (code reserved_id; a reserved client_order_id fails its item only)"
        ),
    }
}
_REPLACE_CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {
        "model": ErrorOut,
        "description": (
            "The order is terminal, or the idempotency key was used for another body, or the "
            "order is a live strategy's (code strategy_order: cancel it or stop the strategy), "
            "or the Idempotency-Key is '<strategy id>:...' of a live strategy of the key's "
            "account (code reserved_id)"
        ),
    }
}


def order_request(order: OrderIn) -> OrderRequest:
    """Return the execution service's request for a validated ``OrderIn``.

    Raises:
        OrderError: the service's own checks refuse it (answered 422).
    """
    return OrderRequest(
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity,
        order_type=order.order_type,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        client_order_id=order.client_order_id,
    )


def orders_router(
    backend: ExecutionBackend, *, has_strategy: HasStrategy | None = None
) -> APIRouter:
    """Return the routes of the execution service over ``backend``.

    ``has_strategy(account, strategy_id)`` says which live strategies an
    account has: their runners' order ids (``<strategy id>:...``) are refused
    to users (409 ``reserved_id``). None: no strategies, nothing reserved.
    """
    router = APIRouter(tags=["orders"])

    def check_key(account: str, field_name: str, key: str | None) -> None:
        check_unreserved(has_strategy, account=account, field_name=field_name, key=key)

    def check_order(account: str, order: OrderIn) -> None:
        check_key(account, "client_order_id", order.client_order_id)
        check_untagged(has_strategy, account=account, tag=order.strategy)

    @router.post(
        "/orders",
        status_code=_CREATED,
        response_model=OrderOut,
        openapi_extra=requires(Scope.TRADE),
        responses={
            _REPLAYED: {
                "model": OrderOut,
                "description": "An idempotent replay: the original order, nothing new created",
            },
            **_SUBMIT_CONFLICT,
            **TOO_LARGE_RESPONSE,
        },
    )
    async def submit_order(
        order: OrderIn,
        request: Request,
        response: Response,
        key: _Key,
        idempotency_key: _IdempotencyKey = None,
    ) -> OrderOut:
        """Submit an order (201; a risk rejection is a 201 with status ``rejected``).

        A retry with the same ``Idempotency-Key`` (or ``client_order_id``)
        answers 200 with the original order. Either one of the form
        ``<strategy id>:...``, for a live strategy of the account, is a 409
        ``reserved_id``: the strategy's orders use those ids; so is a
        ``strategy`` tag naming one (its orders match in their own share of
        the market).
        """
        check_key(key.account, "Idempotency-Key", idempotency_key)
        check_order(key.account, order)
        outcome = await backend.submit(
            order_request(order),
            account=key.account,
            strategy=order.strategy,
            idempotency_key=idempotency_key,
        )
        response.status_code = _CREATED if outcome.created else _REPLAYED
        order_id = str(outcome.order.order_id)
        response.headers["Location"] = f"{request.url.path}/{quote(order_id, safe='')}"
        return OrderOut.model_validate(outcome.order)

    @router.post(
        "/orders/batch",
        response_model=BatchOrdersOut,
        openapi_extra=requires(Scope.TRADE),
        responses={**_BATCH_CONFLICT, **TOO_LARGE_RESPONSE},
    )
    async def submit_orders(
        batch: BatchOrdersIn, key: _Key, idempotency_key: _IdempotencyKey = None
    ) -> BatchOrdersOut:
        """Submit several orders in one round trip; one result per order, in order.

        Each result's ``status`` is what ``POST /orders`` would have answered
        (201, 200 for a replay, 409, 422, ...); the request itself answers 200,
        or 409 ``reserved_id`` when the ``Idempotency-Key`` is a live
        strategy's (``<strategy id>:...``).
        """
        check_key(key.account, "Idempotency-Key", idempotency_key)
        refused: dict[int, BatchItemResult] = {}
        items = []
        for index, order in enumerate(batch.orders):
            try:
                check_order(key.account, order)
            except ReservedIdError as error:
                refused[index] = BatchItemResult(failure=classify_error(error))
                continue
            items.append(
                SubmitItem(
                    order_request(order),
                    strategy=order.strategy,
                    idempotency_key=(
                        None if idempotency_key is None else f"{idempotency_key}#{index}"
                    ),
                )
            )
        submitted = await backend.submit_batch(items, account=key.account) if items else []
        if len(submitted) != len(items):
            raise RuntimeError(f"backend answered {len(submitted)} results for {len(items)} orders")
        answered = iter(submitted)
        results = [
            refused[index] if index in refused else next(answered)
            for index in range(len(batch.orders))
        ]
        answers = []
        for index, result in enumerate(results):
            if result.outcome is not None:
                answers.append(
                    BatchItemOut(
                        index=index,
                        status=_CREATED if result.outcome.created else _REPLAYED,
                        order=OrderOut.model_validate(result.outcome.order),
                    )
                )
            elif result.failure is not None:
                failure = result.failure
                answers.append(
                    BatchItemOut(
                        index=index,
                        status=failure.status,
                        error=ErrorInfo(code=failure.code, message=failure.message),
                    )
                )
            else:
                raise RuntimeError(f"backend answered neither outcome nor failure for {index}")
        return BatchOrdersOut(results=answers)

    @router.get("/orders", response_model=OrderList, openapi_extra=requires(Scope.READ))
    async def list_orders(
        key: _Key,
        status: Annotated[OrderStatus | None, Query(description="Only this status.")] = None,
        open_only: Annotated[
            bool, Query(alias="open", description="Only orders that can still fill.")
        ] = False,
        limit: Annotated[int, Query(ge=1, le=MAX_ORDER_LIMIT)] = DEFAULT_ORDER_LIMIT,
    ) -> OrderList:
        """List the account's orders."""
        views = await backend.orders(
            account=key.account, status=status, open_only=open_only, limit=limit
        )
        return OrderList(orders=[OrderOut.model_validate(view) for view in views])

    @router.get(
        "/orders/{order_id}",
        response_model=OrderOut,
        openapi_extra=requires(Scope.READ),
        responses=_NOT_FOUND,
    )
    async def get_order(order_id: _OrderId, key: _Key) -> OrderOut:
        """Return one order."""
        return OrderOut.model_validate(await backend.order(order_id, account=key.account))

    @router.delete(
        "/orders/{order_id}",
        response_model=OrderOut,
        openapi_extra=requires(Scope.TRADE),
        responses={**_NOT_FOUND, **_CONFLICT},
    )
    async def cancel_order(order_id: _OrderId, key: _Key) -> OrderOut:
        """Cancel an open order; answer the cancelled order (409 if it is terminal)."""
        return OrderOut.model_validate(await backend.cancel(order_id, account=key.account))

    @router.put(
        "/orders/{order_id}",
        response_model=OrderOut,
        openapi_extra=requires(Scope.TRADE),
        responses={**_NOT_FOUND, **_REPLACE_CONFLICT, **TOO_LARGE_RESPONSE},
    )
    async def replace_order(
        order_id: _OrderId,
        change: ReplaceIn,
        key: _Key,
        idempotency_key: _IdempotencyKey = None,
    ) -> OrderOut:
        """Cancel/replace an open order; answer the new order (``replaces`` links the old).

        A live strategy's order is its runner's to replace (409
        ``strategy_order``), and an ``Idempotency-Key`` ``<strategy id>:...`` of
        a live strategy of the account is its runner's (409 ``reserved_id``).
        """
        check_key(key.account, "Idempotency-Key", idempotency_key)
        check_replaceable(await backend.order(order_id, account=key.account))
        view = await backend.replace(
            order_id,
            account=key.account,
            quantity=change.quantity,
            limit_price=change.limit_price,
            stop_price=change.stop_price,
            idempotency_key=idempotency_key,
        )
        return OrderOut.model_validate(view)

    @router.get("/fills", response_model=FillList, openapi_extra=requires(Scope.READ))
    async def list_fills(
        key: _Key,
        order_id: Annotated[
            str | None, Query(pattern=_ID_PATTERN, description="Only this order's fills.")
        ] = None,
    ) -> FillList:
        """List the account's fills."""
        views = await backend.fills(account=key.account, order_id=order_id)
        return FillList(fills=[FillOut.model_validate(view) for view in views])

    @router.get("/positions", response_model=PositionList, openapi_extra=requires(Scope.READ))
    async def list_positions(key: _Key) -> PositionList:
        """List the account's positions."""
        views = await backend.positions(account=key.account)
        return PositionList(positions=[PositionOut.model_validate(view) for view in views])

    @router.get("/account", response_model=AccountOut, openapi_extra=requires(Scope.READ))
    async def get_account(key: _Key) -> AccountOut:
        """Return the account: cash, equity, PnL, exposure, open orders, kill switch."""
        return AccountOut.model_validate(await backend.account(key.account))

    @router.get("/kill-switch", response_model=KillSwitchState, openapi_extra=requires(Scope.READ))
    async def get_kill_switch(key: _Key) -> KillSwitchState:
        """Say whether new orders of the key's account are blocked."""
        return KillSwitchState(
            account=key.account,
            engaged=await backend.kill_switch_engaged(key.account),
            all_accounts_engaged=await backend.kill_switch_engaged(None),
        )

    @router.post(
        "/kill-switch",
        response_model=KillSwitchOut,
        openapi_extra=requires(Scope.ADMIN),
        responses=TOO_LARGE_RESPONSE,
    )
    async def set_kill_switch(change: KillSwitchIn, key: _Key) -> KillSwitchOut:
        """Engage (block new orders, cancel open ones) or release the kill switch (admin)."""
        account = None if change.all_accounts else key.account
        reason = change.reason or f"kill switch set by API key {key.key_id}"
        cancelled = await backend.set_kill_switch(change.engaged, account=account, reason=reason)
        return KillSwitchOut(
            engaged=await backend.kill_switch_engaged(account),
            account=account,
            all_accounts_engaged=await backend.kill_switch_engaged(None),
            cancelled=[OrderOut.model_validate(view) for view in cancelled],
        )

    return router
