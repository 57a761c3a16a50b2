"""The staff's field reference (registry/fieldref.py): every key a file may hold is in it,
with whether it must be written, its type and range in words, and its meaning."""

from __future__ import annotations

import re

from haishin.registry.fieldref import markdown
from haishin.registry.jsonschema import FILES, schema_of


def _sections() -> dict[str, str]:
    parts = re.split(r"^## ", markdown(), flags=re.M)[1:]
    return {part.split("（", 1)[0]: part for part in parts}


def test_one_section_per_file_kind_naming_its_schema() -> None:
    sections = _sections()
    assert list(sections) == [f.pattern for f in FILES]
    for f in FILES:
        assert f"`schemas/{f.name}`" in sections[f.pattern]


def test_every_key_of_every_object_has_a_row() -> None:
    sections = _sections()
    for f in FILES:
        schema = schema_of(f.model)
        objects = [schema, *(d for d in schema.get("$defs", {}).values() if "properties" in d)]
        for node in objects:
            for name, prop in node["properties"].items():
                assert f"| `{name}` |" in sections[f.pattern], (f.pattern, name)
                assert prop["title"] in sections[f.pattern], (f.pattern, name)


def _row(section: str, key: str) -> list[str]:
    line = next(x for x in section.splitlines() if x.startswith(f"| `{key}` |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_required_types_ranges_and_defaults_in_words() -> None:
    sections = _sections()
    channel, service, outage = (
        sections["channels/*.yaml"],
        sections["service.yaml"],
        sections["outages/*.yaml"],
    )
    assert _row(channel, "slug")[1:4] == ["必須", "文字列（空は不可）", ""]
    assert _row(channel, "senders")[1:3] == ["必須", "文字列 のリスト（1 つ以上）"]
    assert _row(channel, "approval")[1:4] == [
        "",
        "`confirm` / `manager` / `authenticated`",
        "`confirm`",
    ]
    assert _row(channel, "registered")[2] == "日付（YYYY-MM-DD）"
    assert _row(service, "window_hours")[2:4] == ["整数（1 以上、24 以下）", "`1`"]
    assert _row(service, "threshold")[2] == "数値（0 より大きい）"
    assert _row(service, "forwarders")[2] == "IP アドレスまたはネットワーク のリスト"
    assert _row(outage, "start")[1:3] == ["必須", "日時（YYYY-MM-DD hh:mm:ss+09:00）"]
    assert _row(outage, "end")[1:4] == ["", "日時（YYYY-MM-DD hh:mm:ss+09:00）", "なし"]
