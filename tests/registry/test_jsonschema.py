"""The editor's JSON Schemas (registry/jsonschema.py) checked by a real validator: the
sample registry passes them, and a broken file fails them where `haishin check` refuses
it, so what the editor underlines is what the review will report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from ruamel.yaml import YAML

from haishin.registry.jsonschema import FILES, TIMESTAMP, SchemaFile, schema_of

from .conftest import SAMPLE, Reg

JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _editor_yaml() -> YAML:
    """YAML read as the editor's language server reads it: times stay the text written
    (JSON has no date type), everything else as the loader sees it."""
    yaml = YAML(typ="safe", pure=True)
    yaml.constructor.add_constructor(
        "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
    )
    return yaml


def _errors(pattern_file: Path, schema: dict[str, Any]) -> list[tuple[str, str]]:
    data = _editor_yaml().load(pattern_file.read_text(encoding="utf-8"))
    found = Draft202012Validator(schema).iter_errors(data)
    return sorted((e.json_path, e.validator) for e in found)  # type: ignore[misc]


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_the_schema_is_valid_draft_2020_12(file: SchemaFile) -> None:
    schema = schema_of(file.model)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_every_sample_file_passes_its_schema(file: SchemaFile) -> None:
    schema = schema_of(file.model)
    paths = sorted(SAMPLE.glob(file.pattern))
    assert paths, file.pattern
    for path in paths:
        assert _errors(path, schema) == [], path


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_every_title_and_description_is_japanese(file: SchemaFile) -> None:
    """pydantic's English titles ("Max Size Kb") and the models' docstrings are replaced."""
    texts: list[str] = []

    def walk(node: Any, in_names: bool = False) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if not in_names and key in ("title", "description"):
                    texts.append(value)
                elif key != "default":
                    walk(value, key in ("properties", "$defs"))
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema_of(file.model))
    assert texts
    assert [t for t in texts if not JAPANESE.search(t)] == []


def test_unknown_keys_are_refused_at_every_level() -> None:
    """The loader forbids unknown keys in every model (model.Strict): so does the schema."""
    schema = schema_of(FILES[0].model)
    objects = [schema, *(d for d in schema["$defs"].values() if "properties" in d)]
    assert all(o["additionalProperties"] is False for o in objects)


def test_times_as_the_sample_writes_them() -> None:
    pattern = re.compile(TIMESTAMP)
    for written in ("2026-12-13 01:00:00+09:00", "2026-12-13T01:00:00Z", "2026-12-13 01:00"):
        assert pattern.match(written), written
    for wrong in ("2026-12-13", "令和8年12月13日 1:00", "2026/12/13 01:00"):
        assert not pattern.match(wrong), wrong


BROKEN = {
    # an unknown key (a misspelling): the schema's additionalProperties, check's unknown-key
    "unknown-key": (
        "channels/gomi-recycle.yaml",
        "archive: public",
        "archiv: public",
        [("$", "additionalProperties")],
        "unknown-key",
    ),
    # a wrong type: a word where a number belongs
    "wrong-type": (
        "service.yaml",
        "max_size_kb: 300",
        "max_size_kb: たくさん",
        [("$.policy.max_size_kb", "type")],
        "type",
    ),
    # a value outside its list
    "unknown-value": (
        "outages/R8-12-maintenance.yaml",
        "kind: planned",
        "kind: scheduled",
        [("$.kind", "enum")],
        "unknown-value",
    ),
    # a time not written as YAML's date and time (the editor's hint is the Japanese one)
    "wrong-time": (
        "outages/R8-12-maintenance.yaml",
        "start: 2026-12-13 01:00:00+09:00",
        "start: 2026/12/13 01:00",
        [("$.start", "pattern")],
        "type",
    ),
    # a value below its range
    "out-of-range": (
        "service.yaml",
        "window_minutes: 60",
        "window_minutes: 0",
        [("$.bounces.sender_alarm.window_minutes", "exclusiveMinimum")],
        "out-of-range",
    ),
    # a required key left out: check points at the file's top, the schema at its root
    "missing": (
        "applications/R8-0004.yaml",
        "applied: 2026-11-18\n",
        "",
        [("$", "required")],
        "missing",
    ),
}


def _schema_for(rel: str) -> dict[str, Any]:
    return schema_of(next(f.model for f in FILES if Path(rel).match(f.pattern)))


@pytest.mark.parametrize("case", BROKEN, ids=str)
def test_a_broken_file_fails_the_schema_and_check_alike(reg: Reg, case: str) -> None:
    rel, old, new, errors, key = BROKEN[case]
    text = reg.path(rel).read_text(encoding="utf-8")
    line = text[: text.index(old)].count("\n") + 1
    reg.edit(rel, old, new)
    assert _errors(reg.path(rel), _schema_for(rel)) == errors
    found = [f for f in reg.findings() if f.startswith(f"config/{rel}:")]
    assert len(found) == 1 and found[0].endswith(f"[{key}]"), found
    if new:  # at the line of the slip
        assert found[0].startswith(f"config/{rel}:{line}:"), found


@pytest.mark.parametrize("file", FILES, ids=lambda f: f.name)
def test_every_key_says_what_it_means_where_the_editor_completes_it(file: SchemaFile) -> None:
    """Completion lists show a key's description, not its title: it starts with the title."""
    schema = schema_of(file.model)
    objects = [schema, *(d for d in schema.get("$defs", {}).values() if "properties" in d)]
    for node in objects:
        for name, prop in node["properties"].items():
            assert prop["description"].startswith(prop["title"]), name
