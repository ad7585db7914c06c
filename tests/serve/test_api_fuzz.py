"""Fuzzed requests generated from the app's OpenAPI document: no input produces a 5xx.

For every operation, hypothesis builds requests whose path, query and body are
drawn from the operation's own JSON schemas (valid-shaped, hypothesis-jsonschema;
sent to the real execution service), and requests with junk bodies (random
bytes, deep nesting, huge or non-finite numbers, wrong types); each with no key,
a bad key or a key of each scope. The test client re-raises any exception the
app does not handle, so a crash fails the test even before the status check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from serve_fakes import BAD_SECRET, SECRETS, FakeService, TestClient, make_client, real_service

from tradepulse.serve import InProcessBackend, create_app
from tradepulse.serve.auth import ApiKeyStore

_DOCUMENT = create_app(InProcessBackend(FakeService()), keys=ApiKeyStore(())).openapi()
OPERATIONS = [
    pytest.param(method.upper(), path, operation, id=f"{method.upper()} {path}")
    for path, item in _DOCUMENT["paths"].items()
    for method, operation in item.items()
]
EXAMPLES = 25
_FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _nested(depth: int, dicts: bool) -> bytes:
    return (b'{"a":' * depth + b"1" + b"}" * depth) if dicts else (b"[" * depth + b"]" * depth)


JUNK = st.one_of(
    st.binary(max_size=300),
    st.builds(_nested, st.integers(1, 40_000), st.booleans()),
    st.integers(1, 6000).map(lambda digits: b"1" * digits),
    st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-0", b"null", b"", b"{}"]),
    st.sampled_from(["quantity", "limit_price", "open", "ts", "engaged", "orders"]).flatmap(
        lambda field: st.sampled_from(["NaN", "1e400", "9" * 5000, "-1", "[[[]]]", '"x"']).map(
            lambda value: f'{{"symbol": "AAPL", "side": "buy", "{field}": {value}}}'.encode()
        )
    ),
    json_values.map(lambda value: json.dumps(value).encode()),
)


def _with_components(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` with the document's components, so its ``$ref``s resolve."""
    return {**schema, "components": _DOCUMENT["components"]}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    reference = schema.get("$ref")
    if reference is None:
        return schema
    name = reference.removeprefix("#/components/schemas/")
    return {
        **_DOCUMENT["components"]["schemas"][name],
        **{k: v for k, v in schema.items() if k != "$ref"},
    }


def _shaped(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Return values matching ``schema``.

    Objects and arrays are composed here and every other schema is left to
    hypothesis-jsonschema: its own object strategy (0.23.1) calls
    ``many.more()``, which hypothesis 6.170 no longer has.
    """
    schema = _resolve(schema)
    for keyword in ("anyOf", "oneOf"):
        if keyword in schema:
            return st.one_of([_shaped(member) for member in schema[keyword]])
    if schema.get("type") == "object":
        properties = {name: _shaped(sub) for name, sub in schema.get("properties", {}).items()}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {name: value for name, value in properties.items() if name in required},
            optional={name: value for name, value in properties.items() if name not in required},
        )
    if schema.get("type") == "array":
        low = schema.get("minItems", 0)
        return st.lists(_shaped(schema["items"]), min_size=low, max_size=max(low, 4))
    return from_schema(_with_components(schema))


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _parameters(operation: dict[str, Any], where: str) -> st.SearchStrategy[dict[str, str]]:
    """Draw values for the operation's ``where`` parameters from their schemas (or junk)."""
    drawn: dict[str, st.SearchStrategy[str | None]] = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] != where:
            continue
        from_document = _shaped(parameter["schema"]).map(_text)
        junk = st.text(max_size=40)
        value = from_document | junk if where == "path" else st.none() | from_document | junk
        drawn[parameter["name"]] = value
    return st.fixed_dictionaries(drawn).map(
        lambda values: {name: value for name, value in values.items() if value is not None}
    )


def _body_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    return content.get("application/json", {}).get("schema")


KEYS = st.sampled_from(["none", "bad", *SECRETS])
# Schema-shaped requests mostly carry a key that may act, so they reach the service.
ABLE_KEYS = st.sampled_from(["admin", "trader", "admin", "trader", "other", "reader", "none"])


def _headers(key: str, extra: dict[str, str]) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if key == "bad":
        headers["Authorization"] = f"Bearer {BAD_SECRET}"
    elif key != "none":
        headers["Authorization"] = f"Bearer {SECRETS[key]}"
    return headers


OPTIONAL_HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Idempotency-Key": st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
        "X-TradePulse-Version": st.sampled_from(["0.1.0", "0", "0.1", "v0.7", "1.0.0", "junk"]),
    },
)


@pytest.fixture(scope="module")
def fuzz_client() -> Iterator[TestClient]:
    """One app over the fake service for junk (which never reaches a service)."""
    with make_client(FakeService()) as client:
        yield client


@pytest.fixture(scope="module")
def real_client() -> Iterator[TestClient]:
    """One app over the real execution service (in-memory journal) for schema-shaped requests."""
    with make_client(InProcessBackend(real_service())) as client:
        yield client


def _check(response: Any) -> None:
    assert response.status_code < 500, response.text
    assert response.headers["X-TradePulse-Version"] == "0.1.0"
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


def _send(
    client: TestClient,
    method: str,
    path: str,
    *,
    path_values: dict[str, str],
    query: dict[str, str],
    headers: dict[str, str],
    content: bytes | None,
) -> Any:
    for name, value in path_values.items():
        path = path.replace(f"{{{name}}}", quote(value, safe="") or "x")
    return client.request(method, path, params=query, headers=headers, content=content)


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_schema_shaped_requests_never_fail_the_server(
    real_client: TestClient, method: str, path: str, operation: dict[str, Any]
) -> None:
    body_schema = _body_schema(operation)
    bodies = (
        st.just(None)
        if body_schema is None
        else _shaped(body_schema).map(lambda value: json.dumps(value).encode())
    )

    @_FUZZ
    @given(
        path_values=_parameters(operation, "path"),
        query=_parameters(operation, "query"),
        key=ABLE_KEYS,
        extra=OPTIONAL_HEADERS,
        content=bodies,
    )
    def run(
        path_values: dict[str, str],
        query: dict[str, str],
        key: str,
        extra: dict[str, str],
        content: bytes | None,
    ) -> None:
        response = _send(
            real_client,
            method,
            path,
            path_values=path_values,
            query=query,
            headers=_headers(key, extra),
            content=content,
        )
        _check(response)

    run()


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS)
def test_junk_requests_never_fail_the_server(
    fuzz_client: TestClient, method: str, path: str, operation: dict[str, Any]
) -> None:
    @_FUZZ
    @given(path_values=_parameters(operation, "path"), key=KEYS, content=JUNK)
    def run(path_values: dict[str, str], key: str, content: bytes) -> None:
        response = _send(
            fuzz_client,
            method,
            path,
            path_values=path_values,
            query={},
            headers=_headers(key, {}),
            content=content,
        )
        _check(response)
        if key in ("none", "bad") and operation["x-required-scope"] != "public":
            assert response.status_code == 401

    run()


def test_the_fuzz_covers_every_route() -> None:
    covered = {(param.values[0], param.values[1]) for param in OPERATIONS}

    assert ("POST", "/api/v1/orders") in covered
    assert ("PUT", "/api/v1/orders/{order_id}") in covered
    assert ("POST", "/api/v1/market/bars") in covered
    assert len(covered) == 14
