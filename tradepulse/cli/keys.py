"""``tradepulse keys``: create API keys for the live service (secrets shown once, hashes stored)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from tradepulse.cli._common import error_console, reported_errors
from tradepulse.errors import ConfigError

__all__ = ["keys_app"]

keys_app = typer.Typer(
    help="API keys of the live service (`tradepulse serve`).",
    no_args_is_help=True,
)


@keys_app.command("new")
def new_key_command(
    key_id: Annotated[str, typer.Argument(help="Key id (letters, digits, ._-).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="read, trade or admin (repeat for several; default read)."),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    account: Annotated[
        str | None, typer.Option("--account", help="Account the key acts for (default: its id).")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Key file (YAML) to append the entry to; created if missing."),
    ] = None,
) -> None:
    """Create a key: print its secret once and store only its SHA-256 hash.

    Without --file the key-file entry is printed as YAML; with it, the entry is
    appended to that file (refusing an id already there).
    """
    with reported_errors():
        from tradepulse.serve.auth import ApiKeyStore, generate_key

        generated = generate_key(key_id, scope or ["read"], account=account)
        entry = dict(generated.entry)
        if file is not None:
            entries: list[dict[str, Any]] = []
            if file.exists():
                ApiKeyStore.from_file(file)  # the file must be valid before we add to it
                loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or []
                entries = list(loaded["keys"] if isinstance(loaded, dict) else loaded)
                if any(existing.get("id") == key_id for existing in entries):
                    raise ConfigError(f"key file {file} already has a key {key_id!r}")
            entries.append(entry)
            ApiKeyStore.from_entries(entries, source=str(file))  # still valid with the new key
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_text(yaml.safe_dump(entries, sort_keys=False), encoding="utf-8")
            error_console.print(f"added key {key_id!r} to {file}")
        else:
            typer.echo(yaml.safe_dump([entry], sort_keys=False), nl=False)
        error_console.print(
            f"secret of {key_id!r} (shown once; send it as 'Authorization: Bearer <secret>'):"
        )
        typer.echo(generated.secret, err=True)
