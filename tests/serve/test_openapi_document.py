"""serve/openapi/v1.json and docs/api-reference.md are the live app's, regenerated on change."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tradepulse import __version__
from tradepulse.cli import app
from tradepulse.serve.openapi import dump_document, openapi_document, render_reference

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "serve" / "openapi" / "v1.json"
REFERENCE = REPO / "docs" / "api-reference.md"
HINT = "regenerate with `tradepulse api openapi && tradepulse api reference` and review the diff"


def test_the_committed_openapi_document_is_the_apps() -> None:
    document = openapi_document()
    assert COMMITTED.read_text(encoding="utf-8") == dump_document(document), HINT
    assert document["info"]["version"] == __version__
    assert all(path.startswith("/api/v1/") for path in document["paths"])


def test_the_reference_is_generated_from_the_document() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    reference = REFERENCE.read_text(encoding="utf-8")
    assert reference == render_reference(document), HINT
    for path, operations in document["paths"].items():
        for method in operations:
            assert f"### `{method.upper()} {path}`" in reference
    for schema in document["components"]["schemas"]:
        assert f"### {schema}\n" in reference


def test_every_mutating_operation_needs_trade_or_admin() -> None:
    document = json.loads(COMMITTED.read_text(encoding="utf-8"))
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            scope = operation["x-required-scope"]
            if method in ("post", "put", "patch", "delete"):
                assert scope in ("trade", "admin"), (method, path)
                assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_cli_writes_both_files(tmp_path: Path) -> None:
    runner = CliRunner()
    document, reference = tmp_path / "v1.json", tmp_path / "reference.md"
    assert runner.invoke(app, ["api", "openapi", "--out", str(document)]).exit_code == 0
    assert runner.invoke(app, ["api", "reference", "--out", str(reference)]).exit_code == 0
    assert document.read_text() == COMMITTED.read_text()
    assert reference.read_text() == REFERENCE.read_text()
