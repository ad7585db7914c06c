"""What the live application is built from: typed arguments and the files they name.

:class:`AppArgs` are the Serve application's arguments (the ``args:`` of an
application in ``serve/config.yaml``, validated by pydantic, unknown keys
refused). :func:`load_service_config` reads an execution-service YAML file
(``serve/service.yaml``) into a :class:`~tradepulse.execution.ServiceConfig`;
:func:`load_keys` gathers the API keys (key file, ``TRADEPULSE_API_KEYS`` and
keys given inline as hashes) into the entries a replica rebuilds its
:class:`~tradepulse.serve.auth.ApiKeyStore` from: secrets never travel, only
their SHA-256 hashes.

Nothing here imports Ray, so the CLI checks a configuration before it starts a
cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tradepulse.errors import ConfigError
from tradepulse.execution.service_config import ServiceConfig
from tradepulse.serve.auth import ApiKeyStore
from tradepulse.yamlfile import StrictLoader

__all__ = [
    "DEFAULT_JOURNAL",
    "AppArgs",
    "RunnerArgs",
    "key_entries",
    "load_keys",
    "load_service_config",
    "parse_app_args",
]

#: The journal's default path (relative paths resolve against the working directory).
DEFAULT_JOURNAL: Final = "var/tradepulse/journal.sqlite"


class RunnerArgs(BaseModel):
    """Autoscaling of the strategy-runner deployment, and how often the ingress pings runners.

    ``ping_seconds``: the interval of the liveness pings (strategy heartbeats
    between bars; a lost runner is rebuilt at the next ping); 0 turns them off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_replicas: int = Field(default=1, ge=0, le=64)
    max_replicas: int = Field(default=2, ge=1, le=64)
    target_ongoing_requests: float = Field(default=4.0, gt=0)
    ping_seconds: float = Field(default=15.0, ge=0, le=3600)

    @model_validator(mode="after")
    def _ordered(self) -> RunnerArgs:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"min_replicas ({self.min_replicas}) exceeds max_replicas ({self.max_replicas})"
            )
        return self


class AppArgs(BaseModel):
    """The live application's arguments (``args:`` in ``serve/config.yaml``).

    - ``journal``: the order journal (SQLite, WAL); one writer owns it.
    - ``journal_sync``: ``full`` (every commit synced to disk) or ``normal``.
    - ``service_config``: an execution-service YAML file (limits, instruments,
      throttles); ``None`` runs on the defaults.
    - ``api_keys_file``: a key file (see :mod:`tradepulse.serve.auth`); keys in
      ``TRADEPULSE_API_KEYS`` are added.
    - ``api_keys``: key entries given inline (``id``, ``scopes``,
      ``secret_sha256``, optional ``account``), e.g. a development key.
    - ``max_body_bytes``: the largest request body accepted.
    - ``runners``: the strategy runners' autoscaling.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    journal: str = DEFAULT_JOURNAL
    journal_sync: Literal["full", "normal"] = "full"
    service_config: str | None = None
    api_keys_file: str | None = None
    api_keys: tuple[dict[str, Any], ...] = ()
    max_body_bytes: int = Field(default=64 * 1024, gt=0, le=16 * 1024 * 1024)
    runners: RunnerArgs = RunnerArgs()


def parse_app_args(args: AppArgs | Mapping[str, Any] | None) -> AppArgs:
    """Return ``args`` as :class:`AppArgs`.

    Raises:
        ConfigError: an argument is unknown or invalid (every problem named).
    """
    if isinstance(args, AppArgs):
        return args
    try:
        return AppArgs.model_validate(dict(args or {}))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'args'}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"invalid application args: {problems}") from None


def load_service_config(path: str | os.PathLike[str] | None) -> ServiceConfig:
    """Return the execution-service configuration in the YAML file ``path`` (defaults for None).

    Raises:
        ConfigError: the file is missing or not YAML, or a key is unknown or
            invalid (the message names the file and the key).
    """
    if path is None:
        return ServiceConfig()
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"service config {file}: cannot read: {error.strerror}") from None
    try:
        data = yaml.load(text, Loader=StrictLoader)  # a SafeLoader: no Python tags
    except yaml.YAMLError as error:
        raise ConfigError(f"service config {file}: not valid YAML: {error}") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"service config {file}: expected a mapping at the top level")
    try:
        return ServiceConfig.from_mapping(data)
    except ConfigError as error:
        raise ConfigError(f"service config {file}: {error}") from None


def key_entries(store: ApiKeyStore) -> tuple[dict[str, Any], ...]:
    """Return ``store``'s keys as key-file entries (hashes only; see `ApiKeyStore.from_entries`)."""
    return tuple(
        {
            "id": key.key_id,
            "scopes": sorted(str(scope) for scope in key.scopes),
            "secret_sha256": key.secret_sha256,
            "account": key.account,
        }
        for key in store
    )


def load_keys(args: AppArgs, *, environ: Mapping[str, str] | None = None) -> ApiKeyStore:
    """Return the API keys of ``args``: key file, ``TRADEPULSE_API_KEYS`` and inline entries.

    Raises:
        ConfigError: a source is invalid, or two sources share a key id or secret.
    """
    store = ApiKeyStore.load(args.api_keys_file, environ=environ)
    if args.api_keys:
        store = store.merged(ApiKeyStore.from_entries(list(args.api_keys), source="api_keys"))
    return store
