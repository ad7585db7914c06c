"""API keys with scopes: loading, hashing and constant-time authentication.

A key has an id, a set of scopes (``read``, ``trade``, ``admin``; ``admin``
implies ``trade``, which implies ``read``), the account its requests act for
(default: the key id) and the SHA-256 hash of its secret. Secrets are never
kept in memory: :class:`ApiKeyStore` holds hashes only and compares a
presented secret's hash against *every* key with :func:`hmac.compare_digest`,
so the time taken does not depend on which key (if any) matched.

Keys come from a key file (YAML or JSON: a list of ``{id, scopes,
secret_sha256, account?}`` mappings, or a mapping with such a list under
``keys``) and, for local development, from the environment variable
``TRADEPULSE_API_KEYS="id:scope[+scope]:secret,..."``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from starlette.requests import Request

from tradepulse.errors import ConfigError
from tradepulse.yamlfile import StrictLoader

__all__ = [
    "API_KEYS_ENV",
    "API_KEY_SCOPE_KEY",
    "MIN_SECRET_LENGTH",
    "PUBLIC",
    "REQUIRED_SCOPE_EXTENSION",
    "ApiKey",
    "ApiKeyStore",
    "GeneratedKey",
    "Scope",
    "current_key",
    "generate_key",
    "hash_secret",
    "parse_bearer",
    "requires",
]

#: Environment variable with development keys: ``id:scope[+scope]:secret,...``.
API_KEYS_ENV: Final = "TRADEPULSE_API_KEYS"
#: ASGI scope entry where the authentication middleware leaves the request's :class:`ApiKey`.
API_KEY_SCOPE_KEY: Final = "tradepulse.api_key"
#: OpenAPI operation extension naming the scope a route needs (``public`` for none).
REQUIRED_SCOPE_EXTENSION: Final = "x-required-scope"
#: The value of :data:`REQUIRED_SCOPE_EXTENSION` for routes open to everyone (probes).
PUBLIC: Final = "public"
#: Shortest secret accepted from the environment, in characters.
MIN_SECRET_LENGTH: Final = 8
# Key ids and accounts: 1 to 64 characters, letters, digits and ._- (they appear in logs).
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_HEX: Final = re.compile(r"[0-9a-f]{64}")
_KEY_FIELDS: Final = frozenset({"id", "scopes", "secret_sha256", "account"})
# Bytes of randomness in a generated secret (256 bits).
_SECRET_BYTES: Final = 32
# Longest bearer token looked at; anything longer cannot be a key and is not hashed.
_MAX_SECRET_LENGTH: Final = 512


class Scope(StrEnum):
    """What a key may do: ``read`` < ``trade`` < ``admin`` (each implies the ones before)."""

    READ = "read"
    TRADE = "trade"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Return 0 for read, 1 for trade, 2 for admin."""
        return _RANK[self]


_RANK: Final = {Scope.READ: 0, Scope.TRADE: 1, Scope.ADMIN: 2}


def hash_secret(secret: str) -> str:
    """Return the SHA-256 hash of ``secret`` (UTF-8) as 64 lowercase hex digits.

    This is the ``secret_sha256`` of a key file entry.
    """
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One API key: its id, scopes, account and secret hash (never the secret).

    Raises:
        ConfigError: the id or account is not 1 to 64 letters, digits or ``._-``,
            the scopes are empty, or the hash is not 64 lowercase hex digits.
    """

    key_id: str
    scopes: frozenset[Scope]
    secret_sha256: str = field(repr=False)
    account: str = ""

    def __post_init__(self) -> None:
        for name in ("key_id", "account"):
            value = getattr(self, name)
            if name == "account" and value == "":
                object.__setattr__(self, "account", self.key_id)
                continue
            if not isinstance(value, str) or not _NAME.fullmatch(value):
                raise ConfigError(
                    f"API key {name} must be 1 to 64 letters, digits or ._- "
                    f"(starting with a letter or digit), got {value!r}"
                )
        if not self.scopes or not all(isinstance(scope, Scope) for scope in self.scopes):
            raise ConfigError(f"API key {self.key_id!r} needs at least one scope")
        if not isinstance(self.secret_sha256, str) or not _SHA256_HEX.fullmatch(self.secret_sha256):
            raise ConfigError(
                f"API key {self.key_id!r}: secret_sha256 must be 64 lowercase hex digits"
            )

    @property
    def highest_scope(self) -> Scope:
        """Return the most powerful scope the key holds."""
        return max(self.scopes, key=lambda scope: scope.rank)

    def allows(self, needed: Scope) -> bool:
        """Return whether the key grants ``needed`` (directly or through a higher scope)."""
        return self.highest_scope.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class GeneratedKey:
    """A fresh key: the ``secret`` to hand to the client once, and its key-file ``entry``."""

    secret: str = field(repr=False)
    entry: Mapping[str, Any]


def generate_key(
    key_id: str, scopes: Iterable[Scope | str], *, account: str | None = None
) -> GeneratedKey:
    """Create a random secret (256 bits, URL-safe) and the key-file entry for it.

    Raises:
        ConfigError: ``key_id``, ``account`` or a scope is invalid.
    """
    parsed = _parse_scopes(list(scopes), where=f"key {key_id!r}")
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    key = ApiKey(key_id, parsed, hash_secret(secret), account or "")
    entry: dict[str, Any] = {
        "id": key.key_id,
        "scopes": sorted(scope.value for scope in key.scopes),
        "secret_sha256": key.secret_sha256,
    }
    if key.account != key.key_id:
        entry["account"] = key.account
    return GeneratedKey(secret, entry)


def parse_bearer(authorization: str | None) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header value, or None.

    The scheme is case-insensitive; anything else (no header, another scheme,
    an empty or over-long token, spaces inside the token) gives None.
    """
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_SECRET_LENGTH:
        return None
    if any(character.isspace() for character in token):
        return None
    return token


def _parse_scopes(raw: Sequence[object] | str, *, where: str) -> frozenset[Scope]:
    items = raw.split("+") if isinstance(raw, str) else list(raw)
    if not items:
        raise ConfigError(f"{where}: scopes must not be empty")
    scopes = set()
    known = [scope.value for scope in Scope]
    for item in items:
        if not isinstance(item, str) or item not in known:
            raise ConfigError(f"{where}: unknown scope {item!r} (known: {', '.join(known)})")
        scopes.add(Scope(item))
    return frozenset(scopes)


class ApiKeyStore:
    """The configured API keys, looked up by secret in constant time.

    Raises:
        ConfigError: two keys share an id or a secret.
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        collected = tuple(keys)
        ids: set[str] = set()
        hashes: set[str] = set()
        for key in collected:
            if key.key_id in ids:
                raise ConfigError(f"API key id {key.key_id!r} is configured twice")
            if key.secret_sha256 in hashes:
                raise ConfigError(f"API key {key.key_id!r} reuses another key's secret")
            ids.add(key.key_id)
            hashes.add(key.secret_sha256)
        self._keys = tuple(
            (bytes.fromhex(key.secret_sha256), key)
            for key in sorted(collected, key=lambda k: k.key_id)
        )

    def __repr__(self) -> str:
        return f"ApiKeyStore({list(self.key_ids)!r})"

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[ApiKey]:
        return (key for _, key in self._keys)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Return the configured key ids, sorted."""
        return tuple(key.key_id for _, key in self._keys)

    def authenticate(self, secret: str | None) -> ApiKey | None:
        """Return the key whose secret is ``secret``, or None.

        The presented secret is hashed once and compared with every key's hash
        by :func:`hmac.compare_digest`, without stopping at a match.
        """
        if not secret or len(secret) > _MAX_SECRET_LENGTH:
            return None
        digest = hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()
        found: ApiKey | None = None
        for stored, key in self._keys:
            if hmac.compare_digest(digest, stored):
                found = key
        return found

    def merged(self, other: ApiKeyStore) -> ApiKeyStore:
        """Return a store with the keys of both.

        Raises:
            ConfigError: an id or a secret appears in both.
        """
        return ApiKeyStore([*self, *other])

    @classmethod
    def from_entries(cls, entries: object, *, source: str = "key file") -> ApiKeyStore:
        """Build a store from key-file entries (a list of mappings, or ``{"keys": [...]}``).

        Raises:
            ConfigError: the structure or an entry is invalid (the message names
                the entry and the field, never a secret).
        """
        if isinstance(entries, Mapping):
            if set(entries) != {"keys"}:
                raise ConfigError(f"{source}: expected a list of keys or a mapping with 'keys'")
            entries = entries["keys"]
        if not isinstance(entries, list):
            raise ConfigError(f"{source}: expected a list of keys, got {type(entries).__name__}")
        keys = []
        for index, entry in enumerate(entries):
            where = f"{source}: key #{index + 1}"
            if not isinstance(entry, Mapping):
                raise ConfigError(f"{where}: expected a mapping, got {type(entry).__name__}")
            unknown = sorted(str(name) for name in set(entry) - _KEY_FIELDS)
            if unknown:
                raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
            missing = sorted({"id", "scopes", "secret_sha256"} - set(entry))
            if missing:
                raise ConfigError(f"{where}: missing field(s) {', '.join(missing)}")
            scopes = entry["scopes"]
            if not isinstance(scopes, str | list):
                raise ConfigError(f"{where}: scopes must be a list or 'a+b', got {scopes!r}")
            account = entry.get("account")
            if account is not None and not isinstance(account, str):
                raise ConfigError(f"{where}: account must be a string, got {account!r}")
            try:
                keys.append(
                    ApiKey(
                        entry["id"],
                        _parse_scopes(scopes, where=where),
                        entry["secret_sha256"],
                        account or "",
                    )
                )
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
        try:
            return cls(keys)
        except ConfigError as error:
            raise ConfigError(f"{source}: {error}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> ApiKeyStore:
        """Load a key file: JSON when it ends in ``.json``, YAML (strict) otherwise.

        Raises:
            ConfigError: the file is missing, unparsable or has an invalid entry.
        """
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot read API key file {path}: {error.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"API key file {path} is not UTF-8 text") from None
        try:
            if path.suffix.lower() == ".json":
                data: object = json.loads(text)
            else:
                data = yaml.load(text, Loader=StrictLoader)  # a SafeLoader: no Python tags
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
            problem = error.problem or error.context or "invalid YAML"
            raise ConfigError(f"API key file {path}:{where} invalid YAML: {problem}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"API key file {path}: invalid YAML: {error}") from None
        except ValueError as error:
            raise ConfigError(f"API key file {path}: invalid JSON: {error}") from None
        return cls.from_entries(data, source=str(path))

    @classmethod
    def from_env_value(cls, value: str) -> ApiKeyStore:
        """Parse ``id:scope[+scope]:secret,...`` (the format of ``TRADEPULSE_API_KEYS``).

        Each key acts for the account named like its id. Empty items (a trailing
        comma) are ignored.

        Raises:
            ConfigError: an item lacks a part, has an unknown scope or a secret
                shorter than :data:`MIN_SECRET_LENGTH` (the message names the
                item by its id, never the secret).
        """
        keys = []
        for index, item in enumerate(value.split(",")):
            item = item.strip()
            if not item:
                continue
            parts = item.split(":", 2)
            key_id = parts[0] if parts else ""
            where = f"{API_KEYS_ENV} item #{index + 1} ({key_id!r})"
            if len(parts) != 3:
                raise ConfigError(f"{where}: expected id:scope[+scope]:secret")
            _, scopes, secret = parts
            if len(secret) < MIN_SECRET_LENGTH or any(c.isspace() for c in secret):
                raise ConfigError(
                    f"{where}: the secret must be at least {MIN_SECRET_LENGTH} characters "
                    "without spaces"
                )
            try:
                keys.append(ApiKey(key_id, _parse_scopes(scopes, where=where), hash_secret(secret)))
            except ConfigError as error:
                raise ConfigError(f"{where}: {error}") from None
        return cls(keys)

    @classmethod
    def load(
        cls, path: str | Path | None = None, *, environ: Mapping[str, str] | None = None
    ) -> ApiKeyStore:
        """Return the keys of the key file ``path`` (if given) plus ``TRADEPULSE_API_KEYS``.

        ``environ`` defaults to :data:`os.environ`.

        Raises:
            ConfigError: the file or the variable is invalid, or they share an id
                or a secret.
        """
        environ = os.environ if environ is None else environ
        store = cls(()) if path is None else cls.from_file(path)
        value = environ.get(API_KEYS_ENV, "")
        if value.strip():
            store = store.merged(cls.from_env_value(value))
        return store


def requires(scope: Scope | Literal["public"]) -> dict[str, Any]:
    """Return the ``openapi_extra`` that declares the scope a route needs.

    The authentication middleware reads it before the body is parsed; a route
    without it needs ``read`` for GET/HEAD/OPTIONS and ``trade`` otherwise.
    """
    return {REQUIRED_SCOPE_EXTENSION: str(scope)}


async def current_key(request: Request) -> ApiKey:
    """Return the :class:`ApiKey` the middleware authenticated (a FastAPI dependency).

    A coroutine although it never waits: FastAPI runs a plain function
    dependency in a worker thread, a hop that cost ~0.15 ms per request.

    Raises:
        RuntimeError: the route was reached without authentication (a wiring bug).
    """
    key = request.scope.get(API_KEY_SCOPE_KEY)
    if not isinstance(key, ApiKey):
        raise RuntimeError(f"{request.url.path} was reached without an authenticated API key")
    return key
