"""JSON Schemas of the registry's files, for the staff's editor (issue 15 item 2).

Generated from the pydantic models (model.py), so the editor completes and checks the
same keys `haishin check` reads; the English titles pydantic makes are replaced by the
Japanese of fields.py. The schema is a helper, not the authority: rules that span files
(a channel's department exists, a slug equals its file name) and a few within a file
(the per-network cap below the overall one) stay with `haishin check`.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from pydantic import BaseModel

from . import model as m
from .fields import ENUMS, FIELDS, MODELS, Doc
from .load import APPLICATIONS_DIR, CHANNELS_DIR, DEPARTMENTS_FILE, OUTAGES_DIR, SERVICE_FILE

DRAFT = "https://json-schema.org/draft/2020-12/schema"

Schema = dict[str, Any]


class SchemaFile(NamedTuple):
    name: str
    """The schema's file name."""
    pattern: str
    """Which registry files it describes, relative to the registry folder."""
    model: type[BaseModel]
    """What the loader validates each such file against, the whole file at once."""


FILES = (
    SchemaFile("service.schema.json", SERVICE_FILE, m.Service),
    SchemaFile("departments.schema.json", DEPARTMENTS_FILE, m.Departments),
    SchemaFile("channel.schema.json", f"{CHANNELS_DIR}/*.yaml", m.Channel),
    SchemaFile("application.schema.json", f"{APPLICATIONS_DIR}/*.yaml", m.Application),
    SchemaFile("outage.schema.json", f"{OUTAGES_DIR}/*.yaml", m.Outage),
)

TIMESTAMP = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)? ?([Zz]|[+-]\d{2}(:?\d{2})?)?$"
"""A date and time as YAML writes it (`2026-12-13 01:00:00+09:00`, the offset optional:
model.py reads a time without one as Japan time). JSON Schema's `date-time` format wants
RFC 3339's `T` and an offset, so an editor would flag the way the sample writes times."""

TIMESTAMP_HINT = "日時は 2026-12-13 01:00:00+09:00 の形で書いてください（+09:00 を省くと日本時間）"
"""What the editor says when a time does not match (`patternErrorMessage`, a keyword of
VS Code's JSON language service that yaml-language-server reads; validators ignore it)."""

_BY_NAME: dict[str, type] = {cls.__name__: cls for cls in (*MODELS, *ENUMS)}


def _set_doc(node: Schema, doc: Doc) -> None:
    node["title"] = doc.title
    if doc.description:
        node["description"] = doc.description
    else:
        node.pop("description", None)


def _times(node: Any) -> None:
    """Every `date-time` string below `node` as the pattern YAML's times match."""
    if isinstance(node, dict):
        if node.get("format") == "date-time":
            del node["format"]
            node["pattern"] = TIMESTAMP
            node["patternErrorMessage"] = TIMESTAMP_HINT
        for value in node.values():
            _times(value)
    elif isinstance(node, list):
        for value in node:
            _times(value)


def _japanese(node: Schema) -> None:
    """One definition (or the root) titled and described from fields.py. A model or
    field missing there is a KeyError: the table must explain every key staff can write."""
    cls = _BY_NAME[node["title"]]
    if cls in ENUMS:
        _set_doc(node, ENUMS[cls])
        return
    assert issubclass(cls, BaseModel)
    _set_doc(node, MODELS[cls])
    fields = FIELDS[cls]
    for name, prop in node["properties"].items():
        # the editor's completion list shows a key's description, not its title: the
        # description starts with the title, so staff see what an English key means
        title, more = fields[name]
        _set_doc(prop, Doc(title, f"{title}。{more}" if more else title))
    if set(fields) != set(node["properties"]):
        raise KeyError(f"fields.py describes {sorted(set(fields) - set(node['properties']))}")


def _ordered(node: Any) -> Any:
    """Title and description first in every schema, so a reader of the file (and its diff)
    meets the Japanese before the constraints. Maps of names (properties, $defs) and
    defaults keep their own order."""
    if isinstance(node, list):
        return [_ordered(v) for v in node]
    if not isinstance(node, dict):
        return node
    first = [k for k in ("$schema", "title", "description") if k in node]
    out = {}
    for key in (*first, *(k for k in node if k not in first)):
        value = node[key]
        if key in ("properties", "$defs"):
            out[key] = {name: _ordered(sub) for name, sub in value.items()}
        elif key == "default":
            out[key] = value
        else:
            out[key] = _ordered(value)
    return out


def schema_of(model: type[BaseModel]) -> Schema:
    """The JSON Schema (draft 2020-12) of one file read as `model`."""
    raw = model.model_json_schema(mode="validation")
    defs: dict[str, Schema] = raw.pop("$defs", {})
    for node in (raw, *defs.values()):
        _japanese(node)
    _times(raw)
    _times(defs)
    out: Schema = {"$schema": DRAFT, **raw}
    if defs:
        out["$defs"] = dict(sorted(defs.items()))
    ordered: Schema = _ordered(out)
    return ordered


def render(schema: Schema) -> str:
    """The file's text: stable, readable in a diff, Japanese kept as written."""
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"


def schemas() -> dict[str, str]:
    """Every schema file's name and text."""
    return {f.name: render(schema_of(f.model)) for f in FILES}
