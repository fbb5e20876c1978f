"""Scenario validation: strict YAML reading, the JSON Schema, and error messages.

Every message names the file, the host and the field, in the form
``lab/scenarios/x.yml: host EXCH02: registry['HKLM\\...']['Name'].type: ...``:
schema fields print as ``.name``, map keys (registry keys, value names,
paths, services) as ``['key']`` and list items as ``[i]``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).resolve().parent / "scenario.schema.json"


class ScenarioError(ValueError):
    """A scenario (or template, or state dump) that cannot be loaded; the message names file, host and field."""


# --------------------------------------------------------------------------- reading

class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (PyYAML silently keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue  # keys a << merge brings in may be overridden; only literal repeats are errors
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path | str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.load(fh, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from exc


# --------------------------------------------------------------------------- validation

@functools.cache
def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


@functools.cache
def _validator(definition: str | None) -> jsonschema.Draft202012Validator:
    """A validator for the whole document, or for one of its $defs."""
    schema = _schema()
    if definition is not None:
        schema = {"$defs": schema["$defs"], "$ref": f"#/$defs/{definition}"}
    return jsonschema.Draft202012Validator(schema)


def _schema_node(node: Any) -> dict:
    """Follow $refs to the definition that lists the properties (siblings only add requirements)."""
    while isinstance(node, dict) and "$ref" in node:
        node = _schema()["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node if isinstance(node, dict) else {}


def _describe(path: list, node: dict) -> str:
    """registry['HKLM\\\\X']['Name'].type: schema fields as .name, map keys as ['key'], list items as [i]."""
    out = ""
    for part in path:
        node = _schema_node(node)
        if isinstance(part, int):
            out += f"[{part}]"
            node = node.get("items", {})
        elif part in node.get("properties", {}):
            out += ("." if out else "") + part
            node = node["properties"][part]
        else:
            out += f"[{part!r}]"
            node = node.get("additionalProperties", {})
    return out


def error_lines(data: Any, definition: str | None, where: str) -> list[str]:
    """One line per schema violation: where, then the host (if any), the field and the message."""
    errors = sorted(_validator(definition).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    root = _schema() if definition is None else {"$ref": f"#/$defs/{definition}"}
    lines = []
    for error in errors:
        path, prefix, node = list(error.absolute_path), where, root
        if definition is None and len(path) >= 2 and path[0] == "hosts":
            prefix, path, node = f"{where}: host {path[1]}", path[2:], {"$ref": "#/$defs/hostLayer"}
        field = _describe(path, node)
        lines.append(f"{prefix}: {field}: {error.message}" if field else f"{prefix}: {error.message}")
    return lines


def raise_if_any(lines: list[str], limit: int = 20) -> None:
    if lines:
        more = [f"... and {len(lines) - limit} more"] if len(lines) > limit else []
        raise ScenarioError("\n".join(lines[:limit] + more))


def validate(data: Any, definition: str | None, where: str) -> None:
    raise_if_any(error_lines(data, definition, where))


def validate_document(data: Any, source: str) -> None:
    """The top level, then each host's fields, each distinct field value once.

    Hosts repeat the same registry, services and metabase blocks, and
    jsonschema costs several milliseconds per host; checking each distinct
    block once keeps a 1000-host state dump loading in about a second. An
    error in a block two hosts share is reported for the first of them.
    """
    hosts = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, dict):
        return validate(data, None, source)
    lines = error_lines({**data, "hosts": {name: {} for name in hosts}}, None, source)
    seen: set[tuple[str, str]] = set()
    for name, layer in hosts.items():
        if not isinstance(layer, dict):
            lines += error_lines(layer, "hostLayer", f"{source}: host {name}")
            continue
        for field, value in layer.items():
            fingerprint = (str(field), json.dumps(value, sort_keys=True, default=repr))
            if fingerprint not in seen:
                seen.add(fingerprint)
                lines += error_lines({field: value}, "hostLayer", f"{source}: host {name}")
    raise_if_any(lines)
