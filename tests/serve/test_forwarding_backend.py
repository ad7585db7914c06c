"""ForwardingBackend passes every call of the ExecutionBackend protocol to its inner backend."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from serve_fakes import FakeService, auth, make_client, market_order

from tradepulse.serve.backend import ExecutionBackend, ForwardingBackend, InProcessBackend

# Every coroutine the protocol declares (ping, submit, ..., kill_switch_engaged).
PROTOCOL_METHODS = sorted(
    name
    for name, member in vars(ExecutionBackend).items()
    if not name.startswith("_") and inspect.iscoroutinefunction(member)
)


class Recorder:
    """An inner backend that records each call and answers a token naming it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, str]]:
        async def call(*args: object, **kwargs: object) -> str:
            self.calls.append((name, args, kwargs))
            return f"answer of {name}"

        return call


def _arguments(name: str) -> tuple[tuple[object, ...], dict[str, object]]:
    """Return a distinct value for each parameter of ``name``, passed as its callers pass it."""
    positional: list[object] = []
    keywords: dict[str, object] = {}
    signature = inspect.signature(getattr(ExecutionBackend, name))
    for parameter in list(signature.parameters.values())[1:]:  # skip self
        value = f"{name}.{parameter.name}"
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            keywords[parameter.name] = value
        else:
            positional.append(value)
    return tuple(positional), keywords


def test_the_protocol_has_the_methods_the_api_uses() -> None:
    assert {"submit", "submit_batch", "replace", "on_bars", "kill_switch_engaged"} <= set(
        PROTOCOL_METHODS
    )
    assert len(PROTOCOL_METHODS) == 14


@pytest.mark.parametrize("name", PROTOCOL_METHODS)
def test_every_call_reaches_the_inner_backend_with_its_arguments(name: str) -> None:
    inner = Recorder()
    backend = ForwardingBackend(inner)  # type: ignore[arg-type]  # a duck-typed recorder
    args, kwargs = _arguments(name)

    answer = asyncio.run(getattr(backend, name)(*args, **kwargs))

    assert inner.calls == [(name, args, kwargs)]
    assert answer == (None if name == "ping" else f"answer of {name}")


def test_a_subclass_overrides_one_call_and_the_app_works_through_it() -> None:
    class Tagging(ForwardingBackend):
        async def submit(self, request, **options):  # type: ignore[no-untyped-def]
            return await super().submit(request, **{**options, "strategy": "tagged"})

    service = FakeService()
    backend = Tagging(InProcessBackend(service))
    with make_client(backend) as client:
        created = client.post("/api/v1/orders", json=market_order(), headers=auth("trader"))
        listed = client.get("/api/v1/orders", headers=auth("reader"))

    assert created.status_code == 201
    assert created.json()["strategy"] == "tagged"
    assert [order["strategy"] for order in listed.json()["orders"]] == ["tagged"]
    assert repr(backend) == f"Tagging({backend.inner!r})"
