"""``tradepulse keys new``: a secret printed once, only its hash stored."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from tradepulse.cli import app
from tradepulse.serve.auth import ApiKeyStore, Scope


def _secret(output: str) -> str:
    lines = output.strip().splitlines()
    return lines[-1].strip()


def test_new_key_appends_an_entry_the_server_accepts(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    runner = CliRunner()
    first = runner.invoke(app, ["keys", "new", "desk", "--scope", "trade", "--file", str(keys)])
    second = runner.invoke(
        app, ["keys", "new", "ops", "--scope", "admin", "--account", "desk", "--file", str(keys)]
    )
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    desk_secret, ops_secret = _secret(first.output), _secret(second.output)
    stored = keys.read_text()
    assert desk_secret not in stored
    assert ops_secret not in stored
    store = ApiKeyStore.from_file(keys)
    desk = store.authenticate(desk_secret)
    ops = store.authenticate(ops_secret)
    assert desk is not None
    assert ops is not None
    assert (desk.key_id, desk.scopes, desk.account) == ("desk", frozenset({Scope.TRADE}), "desk")
    assert (ops.key_id, ops.account) == ("ops", "desk")
    assert ops.allows(Scope.ADMIN)


def test_new_key_refuses_a_duplicate_id_and_a_bad_scope(tmp_path: Path) -> None:
    keys = tmp_path / "keys.yaml"
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "new", "desk", "--file", str(keys)]).exit_code == 0
    before = keys.read_text()
    again = runner.invoke(app, ["keys", "new", "desk", "--file", str(keys)])
    assert again.exit_code == 1
    assert "already has a key 'desk'" in again.output
    assert keys.read_text() == before
    bad = runner.invoke(app, ["keys", "new", "x", "--scope", "root"])
    assert bad.exit_code == 1
    assert "Traceback" not in bad.output


def test_without_a_file_the_entry_is_printed(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["keys", "new", "reader"])
    assert result.exit_code == 0
    entry = yaml.safe_load(result.output.split("secret of")[0])
    assert entry[0]["id"] == "reader"
    assert entry[0]["scopes"] == ["read"]
    assert len(entry[0]["secret_sha256"]) == 64
