"""API keys: hashing, loading, constant-time lookup, scopes, and the HTTP auth matrix."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import inspect
import json
from pathlib import Path
from typing import Any

import pytest
from serve_fakes import (
    BAD_SECRET,
    SECRETS,
    FakeService,
    TestClient,
    auth,
    market_order,
)
from starlette.requests import Request

from tradepulse.errors import ConfigError
from tradepulse.serve import API_KEYS_ENV, ApiKey, ApiKeyStore, Scope, generate_key, hash_secret
from tradepulse.serve import auth as auth_module
from tradepulse.serve.auth import current_key, parse_bearer

# SHA-256("abc"), the FIPS 180-2 test vector.
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def _entry(key_id: str, secret: str, scopes: Any = ("read",), **extra: Any) -> dict[str, Any]:
    return {"id": key_id, "scopes": list(scopes), "secret_sha256": hash_secret(secret), **extra}


# ------------------------------------------------------------------ hashing, keys


def test_hash_secret_is_sha256_hex() -> None:
    assert hash_secret("abc") == ABC_SHA256


@pytest.mark.parametrize(
    ("held", "needed", "allowed"),
    [
        (Scope.READ, Scope.READ, True),
        (Scope.READ, Scope.TRADE, False),
        (Scope.READ, Scope.ADMIN, False),
        (Scope.TRADE, Scope.READ, True),
        (Scope.TRADE, Scope.TRADE, True),
        (Scope.TRADE, Scope.ADMIN, False),
        (Scope.ADMIN, Scope.READ, True),
        (Scope.ADMIN, Scope.TRADE, True),
        (Scope.ADMIN, Scope.ADMIN, True),
    ],
)
def test_admin_implies_trade_implies_read(held: Scope, needed: Scope, allowed: bool) -> None:
    key = ApiKey("k1", frozenset({held}), hash_secret("secret-k1"))

    assert key.allows(needed) is allowed


def test_key_account_defaults_to_its_id_and_repr_hides_the_hash() -> None:
    key = ApiKey("desk-1", frozenset({Scope.READ}), ABC_SHA256)

    assert key.account == "desk-1"
    assert ABC_SHA256 not in repr(key)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        (("", frozenset({Scope.READ}), ABC_SHA256), "key_id"),
        (("a b", frozenset({Scope.READ}), ABC_SHA256), "key_id"),
        (("k", frozenset(), ABC_SHA256), "at least one scope"),
        (("k", frozenset({Scope.READ}), "ABC"), "64 lowercase hex"),
        (("k", frozenset({Scope.READ}), ABC_SHA256.upper()), "64 lowercase hex"),
        (("k", frozenset({Scope.READ}), ABC_SHA256, "bad account!"), "account"),
    ],
)
def test_invalid_keys_are_refused(arguments: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ApiKey(*arguments)


# ------------------------------------------------------------------ the store


def test_authenticate_finds_the_key_of_a_secret_and_nothing_else() -> None:
    store = ApiKeyStore.from_entries(
        [_entry("a", "secret-aaaa"), _entry("b", "secret-bbbb", ["trade"], account="desk")]
    )

    found = store.authenticate("secret-bbbb")

    assert found is not None
    assert (found.key_id, found.account, found.scopes) == ("b", "desk", frozenset({Scope.TRADE}))
    assert store.authenticate("secret-cccc") is None
    assert store.authenticate("") is None
    assert store.authenticate(None) is None
    assert store.authenticate("x" * 10_000) is None


@pytest.mark.parametrize("secret", ["secret-k03", "no-such-secret"])
def test_authenticate_compares_against_every_key(
    secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange: count compare_digest calls; a match must not stop the scan early.
    store = ApiKeyStore.from_entries([_entry(f"k{i:02d}", f"secret-k{i:02d}") for i in range(1, 9)])
    calls: list[tuple[bytes, bytes]] = []
    original = hmac.compare_digest

    def counting(left: bytes, right: bytes) -> bool:
        calls.append((left, right))
        return original(left, right)

    monkeypatch.setattr(auth_module.hmac, "compare_digest", counting)

    # Act
    store.authenticate(secret)

    # Assert: one comparison per key, each of the presented secret's digest.
    assert len(calls) == 8
    assert {left for left, _ in calls} == {hashlib.sha256(secret.encode()).digest()}


def test_store_refuses_duplicate_ids_and_shared_secrets() -> None:
    with pytest.raises(ConfigError, match="'a' is configured twice"):
        ApiKeyStore.from_entries([_entry("a", "secret-1111"), _entry("a", "secret-2222")])
    with pytest.raises(ConfigError, match="reuses another key's secret"):
        ApiKeyStore.from_entries([_entry("a", "secret-1111"), _entry("b", "secret-1111")])


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"users": []}, "mapping with 'keys'"),
        ("text", "expected a list"),
        (["not a mapping"], "key #1: expected a mapping"),
        ([{"id": "a", "scopes": ["read"]}], "missing field"),
        ([{**_entry("a", "secret-1111"), "colour": "red"}], "unknown field"),
        ([_entry("a", "secret-1111", ["root"])], "unknown scope 'root'"),
        ([_entry("a", "secret-1111", [])], "must not be empty"),
        ([{**_entry("a", "secret-1111"), "scopes": 7}], "scopes must be"),
        ([{**_entry("a", "secret-1111"), "account": 3}], "account must be a string"),
        ([{**_entry("a", "secret-1111"), "secret_sha256": "00"}], "64 lowercase hex"),
    ],
)
def test_key_file_errors_name_the_entry(document: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        ApiKeyStore.from_entries(document)


def test_key_file_yaml_and_json(tmp_path: Path) -> None:
    # Arrange: the same keys as YAML (scopes as "a+b") and as JSON ({"keys": [...]}).
    yaml_file = tmp_path / "keys.yaml"
    yaml_file.write_text(
        "- id: ops\n"
        "  scopes: trade+admin\n"
        f"  secret_sha256: {hash_secret('ops-secret-1')}\n"
        "  account: desk-7\n",
        encoding="utf-8",
    )
    json_file = tmp_path / "keys.json"
    json_file.write_text(json.dumps({"keys": [_entry("viewer", "viewer-secret")]}), "utf-8")

    # Act
    from_yaml = ApiKeyStore.from_file(yaml_file)
    from_json = ApiKeyStore.from_file(json_file)

    # Assert
    ops = from_yaml.authenticate("ops-secret-1")
    assert ops is not None
    assert ops.account == "desk-7"
    assert ops.allows(Scope.ADMIN)
    assert from_json.key_ids == ("viewer",)


@pytest.mark.parametrize(
    ("name", "text", "fragment"),
    [
        ("keys.yaml", "- id: a\n  id: b\n", "duplicate key 'id'"),
        ("keys.yaml", "- [unclosed\n", "line 2, column 1: invalid YAML"),
        ("keys.json", "{not json", "invalid JSON"),
        ("keys.yaml", "- !!python/object:os.system {}\n", "invalid YAML: could not determine"),
    ],
)
def test_unparsable_key_files_are_config_errors(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=fragment):
        ApiKeyStore.from_file(path)


def test_missing_or_binary_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        ApiKeyStore.from_file(tmp_path / "absent.yaml")
    binary = tmp_path / "keys.yaml"
    binary.write_bytes(b"\xff\xfe\x00junk")
    with pytest.raises(ConfigError, match="not UTF-8"):
        ApiKeyStore.from_file(binary)


def test_env_keys_parse_scopes_and_keep_colons_in_secrets() -> None:
    store = ApiKeyStore.from_env_value("dev:read+trade:s3cret:with:colons, ops:admin:opsopsops,")

    dev = store.authenticate("s3cret:with:colons")
    ops = store.authenticate("opsopsops")

    assert dev is not None
    assert dev.scopes == frozenset({Scope.READ, Scope.TRADE})
    assert dev.account == "dev"
    assert ops is not None
    assert ops.allows(Scope.ADMIN)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("dev:read", "expected id:scope"),
        ("dev:sudo:long-enough-secret", "unknown scope 'sudo'"),
        ("dev:read:short", "at least 8 characters"),
        ("dev:read:has a space", "at least 8 characters"),
        ("bad id:read:long-enough-secret", "key_id"),
    ],
)
def test_env_key_errors_never_echo_the_secret(value: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment) as caught:
        ApiKeyStore.from_env_value(value)

    secret = value.split(":", 2)[-1]
    assert API_KEYS_ENV in str(caught.value)
    if len(value.split(":")) == 3:
        assert secret not in str(caught.value)


def test_load_merges_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([_entry("filed", "filed-secret")]), encoding="utf-8")

    store = ApiKeyStore.load(path, environ={API_KEYS_ENV: "dev:trade:dev-secret-1"})
    only_env = ApiKeyStore.load(environ={API_KEYS_ENV: "dev:trade:dev-secret-1"})
    empty = ApiKeyStore.load(environ={})

    assert store.key_ids == ("dev", "filed")
    assert only_env.key_ids == ("dev",)
    assert len(empty) == 0
    with pytest.raises(ConfigError, match="configured twice"):
        ApiKeyStore.load(path, environ={API_KEYS_ENV: "filed:trade:other-secret"})


def test_generate_key_entry_authenticates_its_secret() -> None:
    generated = generate_key("bot-1", ["trade"], account="desk-2")

    store = ApiKeyStore.from_entries([dict(generated.entry)])
    key = store.authenticate(generated.secret)

    assert key is not None
    assert (key.key_id, key.account) == ("bot-1", "desk-2")
    assert len(generated.secret) >= 43  # 32 random bytes, URL-safe base64
    assert generated.secret not in repr(generated)
    assert generate_key("bot-2", [Scope.READ]).entry.keys() == {"id", "scopes", "secret_sha256"}
    with pytest.raises(ConfigError, match="unknown scope"):
        generate_key("bot-3", ["everything"])


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc  ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("Bearer a b", None),
        (None, None),
        ("Bearer " + "x" * 600, None),
    ],
)
def test_parse_bearer(header: str | None, token: str | None) -> None:
    assert parse_bearer(header) == token


# ------------------------------------------------------------------ the HTTP matrix

JUNK_BODIES = {
    "truncated-json": (b'{"symbol": ', 422),
    "binary": (b"\xff\xfe\xfd\x00\x01", 400),
    "wrong-shape": (b'{"unexpected": [1, 2, {"deep": null}]}', 422),
}
KEYS = ["none", "bad", "reader", "trader", "admin"]


def _headers(key: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if key == "bad":
        headers["Authorization"] = f"Bearer {BAD_SECRET}"
    elif key != "none":
        headers.update(auth(key))
    return headers


def _mutating_routes(client: TestClient) -> dict[str, tuple[str, str, object, int]]:
    """Return name -> (method, path, valid body, success status) for every mutating route."""
    created = client.post(
        "/api/v1/orders",
        json=market_order(order_type="limit", limit_price="90"),
        headers=auth("admin"),
    )
    order_id = created.json()["order_id"]
    return {
        "submit": ("POST", "/api/v1/orders", market_order(), 201),
        "batch": ("POST", "/api/v1/orders/batch", {"orders": [market_order()]}, 200),
        "replace": ("PUT", f"/api/v1/orders/{order_id}", {"quantity": "5"}, 200),
        "cancel": ("DELETE", f"/api/v1/orders/{order_id}", None, 200),
        "kill-switch": ("POST", "/api/v1/kill-switch", {"engaged": False}, 200),
        "bars": (
            "POST",
            "/api/v1/market/bars",
            {"symbol": "MSFT", "ts": 1, "open": 1, "high": 1, "low": 1, "close": 1},
            200,
        ),
    }


def _expected(route: str, key: str, success: int, junk: int | None) -> int:
    if key in ("none", "bad"):
        return 401
    # Bars move the shared paper market of every account: admin, like the kill switch.
    needed = Scope.ADMIN if route in ("kill-switch", "bars") else Scope.TRADE
    held = {"reader": Scope.READ, "trader": Scope.TRADE, "admin": Scope.ADMIN}[key]
    if held.rank < needed.rank:
        return 403
    if junk is not None and route != "cancel":  # DELETE reads no body
        return junk
    return success


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("body", ["valid", *JUNK_BODIES])
@pytest.mark.parametrize("route", ["submit", "batch", "replace", "cancel", "kill-switch", "bars"])
def test_mutating_routes_check_the_key_before_the_body(
    client: TestClient, service: FakeService, route: str, body: str, key: str
) -> None:
    # Arrange
    method, path, valid, success = _mutating_routes(client)[route]
    before = len(service.orders_by_id), len(service.bars)
    content, junk_status = (
        (b"" if valid is None else json.dumps(valid).encode(), None)
        if body == "valid"
        else JUNK_BODIES[body]
    )

    # Act
    response = client.request(method, path, content=content, headers=_headers(key))

    # Assert
    expected = _expected(route, key, success, junk_status)
    assert response.status_code == expected, response.text
    assert response.headers["X-TradePulse-Version"]
    assert set(response.json()) == ({"error"} if expected >= 400 else set(response.json()))
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    if expected == 403:
        assert 'error="insufficient_scope"' in response.headers["WWW-Authenticate"]
    if expected in (401, 403):
        assert (len(service.orders_by_id), len(service.bars)) == before


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/orders",
        "/api/v1/orders/ord-000001",
        "/api/v1/fills",
        "/api/v1/positions",
        "/api/v1/account",
        "/api/v1/kill-switch",
    ],
)
def test_read_routes_need_a_read_key(client: TestClient, path: str, key: str) -> None:
    client.post("/api/v1/orders", json=market_order(), headers=auth("trader"))

    response = client.get(path, headers=_headers(key))

    assert response.status_code == (401 if key in ("none", "bad") else 200), response.text


@pytest.mark.parametrize("path", ["/api/v1/health", "/api/v1/ready", "/api/v1/openapi.json"])
def test_probes_and_the_openapi_document_are_public(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


def test_unknown_routes_need_a_key_before_saying_404(client: TestClient) -> None:
    assert client.get("/api/v1/secret-admin-thing").status_code == 401
    assert client.get("/api/v1/secret-admin-thing", headers=auth("reader")).status_code == 404
    assert client.post("/api/v1/health", headers=auth("reader")).status_code == 403
    assert client.post("/api/v1/health", headers=auth("trader")).status_code == 405


def test_each_key_acts_for_its_own_account(client: TestClient) -> None:
    mine = client.post("/api/v1/orders", json=market_order(), headers=auth("trader")).json()

    theirs = client.get(f"/api/v1/orders/{mine['order_id']}", headers=auth("other"))
    listed = client.get("/api/v1/orders", headers=auth("other")).json()["orders"]

    assert mine["account"] == "alpha"
    assert theirs.status_code == 404
    assert listed == []
    assert set(SECRETS) == {"reader", "trader", "admin", "other"}


def test_store_repr_lists_ids_only() -> None:
    store = ApiKeyStore.from_entries([_entry("a", "secret-aaaa")])

    assert repr(store) == "ApiKeyStore(['a'])"
    assert [key.key_id for key in store] == ["a"]


def test_current_key_refuses_an_unauthenticated_route() -> None:
    request = Request({"type": "http", "path": "/x", "headers": [], "query_string": b""})

    with pytest.raises(RuntimeError, match="without an authenticated API key"):
        asyncio.run(current_key(request))


def test_current_key_is_a_coroutine_so_fastapi_runs_it_on_the_event_loop() -> None:
    # A plain function dependency would run in FastAPI's thread pool, once per request.
    assert inspect.iscoroutinefunction(current_key)
