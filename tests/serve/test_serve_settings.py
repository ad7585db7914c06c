"""The live application's arguments, service config files and Serve config loading (no Ray)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tradepulse.errors import ConfigError
from tradepulse.serve.auth import ApiKeyStore, hash_secret
from tradepulse.serve.settings import (
    AppArgs,
    key_entries,
    load_keys,
    load_service_config,
    parse_app_args,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_shipped_service_config_loads_with_its_limits() -> None:
    config = load_service_config(REPO / "serve" / "service.yaml")
    assert config.initial_cash == Decimal("100000")
    assert config.commission_rate == Decimal("0.0005")
    assert config.instruments["SPX"].price_increment == Decimal("0.01")
    assert config.risk.max_order_notional == Decimal("1000000")
    assert config.max_open_orders == 500
    assert config.max_participation == 0.25


def test_no_service_config_means_the_defaults() -> None:
    assert load_service_config(None).initial_cash == Decimal("100000")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("initial_cash: 1\nbogus: 2\n", "bogus"),
        ("risk: {max_order_quantity: -5}\n", "max_order_quantity"),
        ("- a\n- b\n", "expected a mapping"),
        ("a: [1,\n", "not valid YAML"),
        ("initial_cash: 1\ninitial_cash: 2\n", "duplicate key"),
    ],
)
def test_a_bad_service_config_names_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "service.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_service_config(path)
    assert str(path) in str(error.value)


def test_a_missing_service_config_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_service_config(tmp_path / "absent.yaml")


def test_app_args_refuse_unknown_and_invalid_values() -> None:
    assert parse_app_args(None) == AppArgs()
    with pytest.raises(ConfigError, match="jurnal"):
        parse_app_args({"jurnal": "x"})
    with pytest.raises(ConfigError, match="journal_sync"):
        parse_app_args({"journal_sync": "sometimes"})
    with pytest.raises(ConfigError, match=r"runners\.max_replicas"):
        parse_app_args({"runners": {"max_replicas": 0}})


def test_keys_from_a_file_the_environment_and_inline_entries_merge(tmp_path: Path) -> None:
    key_file = tmp_path / "keys.yaml"
    key_file.write_text(
        f"- id: ops\n  scopes: [admin]\n  secret_sha256: {hash_secret('ops-secret')}\n"
    )
    inline = {"id": "bot", "scopes": ["trade"], "secret_sha256": hash_secret("bot-secret")}
    args = parse_app_args({"api_keys_file": str(key_file), "api_keys": [inline]})
    store = load_keys(args, environ={"TRADEPULSE_API_KEYS": "alice:read:alice-secret"})
    assert sorted(store.key_ids) == ["alice", "bot", "ops"]
    assert store.authenticate("bot-secret") is not None
    # Entries carry hashes only, and rebuild the same keys.
    entries = key_entries(store)
    assert all("secret" not in entry for entry in entries)
    rebuilt = ApiKeyStore.from_entries(list(entries))
    for secret in ("ops-secret", "bot-secret", "alice-secret"):
        original = store.authenticate(secret)
        again = rebuilt.authenticate(secret)
        assert original is not None
        assert again is not None
        assert (again.key_id, again.scopes, again.account) == (
            original.key_id,
            original.scopes,
            original.account,
        )
