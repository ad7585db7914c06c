"""The API's OpenAPI document and the Markdown reference generated from it.

:func:`openapi_document` builds the production application (the very app the
Serve replica runs, over an in-memory journal) and returns its OpenAPI
document; ``serve/openapi/v1.json`` is that document, committed, and a test
fails when the two differ. :func:`render_reference` turns the document into
``docs/api-reference.md``. ``tradepulse api openapi`` / ``tradepulse api
reference`` write both.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["dump_document", "openapi_document", "render_reference"]

_METHOD_ORDER: Final = ("get", "post", "put", "patch", "delete")


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document of the live application (as the Serve replica builds it)."""
    from tradepulse.serve.deployment import create_trading_app

    trading = create_trading_app({"journal": ":memory:"})
    try:
        document: dict[str, Any] = trading.app.openapi()
    finally:
        trading.service.journal.close()
    return document


def dump_document(document: Mapping[str, Any]) -> str:
    """Return ``document`` as the committed file holds it (the app's order, 2-space indent)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _reference(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return (
            f"[`{schema['$ref'].rsplit('/', 1)[-1]}`](#{schema['$ref'].rsplit('/', 1)[-1].lower()})"
        )
    options = schema.get("anyOf", schema.get("oneOf"))
    if options is not None:
        return " or ".join(_reference(option) for option in options)
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_reference(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if kind is None:
        return "any"
    text = str(kind)
    if "format" in schema:
        text += f" ({schema['format']})"
    return text


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def _operation(path: str, method: str, operation: Mapping[str, Any]) -> list[str]:
    lines = [f"### `{method.upper()} {path}`", ""]
    summary = operation.get("description") or operation.get("summary") or ""
    if summary:
        lines += [summary.strip(), ""]
    lines += [f"Scope: **{operation.get('x-required-scope', 'read')}**", ""]
    parameters = operation.get("parameters", [])
    if parameters:
        lines += [
            "| parameter | in | type | required | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for parameter in parameters:
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | "
                f"{_reference(parameter.get('schema', {}))} | "
                f"{'yes' if parameter.get('required') else 'no'} | "
                f"{_cell(parameter.get('description', ''))} |"
            )
        lines.append("")
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        lines += [f"Body: {_reference(body.get('schema', {}))}", ""]
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status in sorted(operation.get("responses", {})):
        response = operation["responses"][status]
        content: Mapping[str, Any] = response.get("content", {})
        schema: Mapping[str, Any] = {}
        for media in content.values():
            schema = media.get("schema", {})
            break
        lines.append(
            f"| {status} | {_cell(response.get('description', ''))} | "
            f"{_reference(schema) if schema else ''} |"
        )
    lines.append("")
    return lines


def _schema(name: str, schema: Mapping[str, Any]) -> list[str]:
    lines = [f"### {name}", ""]
    if schema.get("description"):
        lines += [schema["description"].strip(), ""]
    if "enum" in schema:
        lines += ["One of " + ", ".join(f"`{value}`" for value in schema["enum"]) + ".", ""]
        return lines
    properties = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", []))
        lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
        for field, spec in properties.items():
            lines.append(
                f"| `{field}` | {_reference(spec)} | {'yes' if field in required else 'no'} | "
                f"{_cell(spec.get('description', ''))} |"
            )
        lines.append("")
    return lines


def render_reference(document: Mapping[str, Any]) -> str:
    """Return the Markdown API reference of ``document`` (every operation and schema)."""
    info = document.get("info", {})
    lines = [
        f"# {info.get('title', 'API')} reference (v{info.get('version', '?')})",
        "",
        "Generated from the OpenAPI document (`serve/openapi/v1.json`) by "
        "`tradepulse api reference`; do not edit by hand. The rules every route "
        "follows (keys, versions, errors) are in [api.md](api.md).",
        "",
        "## Operations",
        "",
    ]
    for path, operations in document.get("paths", {}).items():
        for method in _METHOD_ORDER:
            if method in operations:
                lines += _operation(path, method, operations[method])
    lines += ["## Schemas", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += _schema(name, schema)
    return "\n".join(lines).rstrip() + "\n"
