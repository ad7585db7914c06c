"""``tradepulse api``: write the live API's OpenAPI document and its Markdown reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tradepulse.cli._common import error_console, reported_errors

__all__ = ["api_app"]

api_app = typer.Typer(help="The live API's OpenAPI document and reference.", no_args_is_help=True)


@api_app.command("openapi")
def openapi_command(
    out: Annotated[Path, typer.Option("--out", help="Where to write the document.")] = Path(
        "serve/openapi/v1.json"
    ),
) -> None:
    """Write the OpenAPI document of the live API (what serve/openapi/v1.json holds)."""
    with reported_errors():
        from tradepulse.serve.openapi import dump_document, openapi_document

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(dump_document(openapi_document()), encoding="utf-8")
        error_console.print(f"wrote {out}")


@api_app.command("reference")
def reference_command(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the Markdown reference.")
    ] = Path("docs/api-reference.md"),
) -> None:
    """Write the Markdown API reference generated from the OpenAPI document."""
    with reported_errors():
        from tradepulse.serve.openapi import openapi_document, render_reference

        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_reference(openapi_document()), encoding="utf-8")
        error_console.print(f"wrote {out}")
