"""Checks a JSON value against a schema of Mailpit's swagger file: same field names, same JSON types.

Stricter than the spec on purpose: every property the schema names must be present (Mailpit always sends them all,
and clients index them without checking), and no property the schema does not name may appear.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SWAGGER = Path(__file__).resolve().parent / "data" / "mailpit-api-v1.swagger.json"


def load_swagger() -> dict[str, Any]:
    return json.loads(SWAGGER.read_text())


LEGACY = {"count", "Read"}  # MessagesSummary.count (server/apiv1/messages.go), Message.Read of older clients


class Shapes:
    def __init__(self) -> None:
        self.doc = load_swagger()

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            _, kind, name = schema["$ref"].split("/")
            schema = self.doc[kind][name]
            if kind == "responses":
                schema = schema.get("schema", {})
        return schema

    def definition(self, name: str) -> dict[str, Any]:
        return self.doc["definitions"][name]

    def response(self, path: str, method: str, status: str = "200") -> dict[str, Any]:
        r = self.doc["paths"][path][method]["responses"][status]
        return self.resolve(r if "$ref" in r else r.get("schema", {}))

    def check(self, value: Any, schema: dict[str, Any], where: str = "$") -> None:
        schema = self.resolve(schema)
        t = schema.get("type", "object" if "properties" in schema else None)
        if t == "string":
            assert isinstance(value, str), f"{where}: expected string, got {value!r}"
        elif t == "integer":
            assert isinstance(value, int) and not isinstance(value, bool), f"{where}: expected integer, got {value!r}"
        elif t == "number":
            assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: expected number"
        elif t == "boolean":
            assert isinstance(value, bool), f"{where}: expected boolean, got {value!r}"
        elif t == "array":
            assert isinstance(value, list), f"{where}: expected array, got {value!r}"
            for i, v in enumerate(value):
                self.check(v, schema.get("items", {}), f"{where}[{i}]")
        elif t == "object":
            assert isinstance(value, dict), f"{where}: expected object, got {value!r}"
            props = schema.get("properties")
            if props is not None:
                missing = set(props) - set(value)
                extra = set(value) - set(props) - LEGACY  # sent by Mailpit, left out of its spec
                assert not missing, f"{where}: missing fields {sorted(missing)}"
                assert not extra, f"{where}: fields not in Mailpit's spec {sorted(extra)}"
                for k, sub in props.items():
                    self.check(value[k], sub, f"{where}.{k}")
            extra_schema = schema.get("additionalProperties")
            if isinstance(extra_schema, dict):
                for k, v in value.items():
                    self.check(v, extra_schema, f"{where}.{k}")
