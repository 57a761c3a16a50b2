"""The field reference for staff (Markdown), written from the same schemas the editor
reads (jsonschema.py), so the two never say different things."""

from __future__ import annotations

import json
from typing import Any

from .jsonschema import FILES, Schema, schema_of

HEADER = """\
# 登録情報の項目一覧

`haishin schema --markdown` が作ったファイルです。直接は編集しないでください
（説明を変えるときは daemon/haishin/registry/fields.py を直して作り直します）。

各ファイルに書ける項目と、その意味です。ここにない項目を書くと `haishin check` が
「不明な項目」として知らせます。「必須」の項目は省略できません。
ファイルをまたがる決まり（チャネルの department が departments.yaml にあること、
slug とファイル名が同じことなど）は `haishin check` が確かめます。
"""

_TYPES = {"string": "文字列", "integer": "整数", "number": "数値", "boolean": "true / false"}


def _ref(node: Schema) -> str:
    return str(node["$ref"]).removeprefix("#/$defs/")


def _range(node: Schema) -> str:
    """A number's allowed range, in words a clerk reads without symbols."""
    parts = []
    if "minimum" in node:
        parts.append(f"{node['minimum']} 以上")
    if "exclusiveMinimum" in node:
        least = node["exclusiveMinimum"]
        whole = node.get("type") == "integer"
        parts.append(f"{least + 1} 以上" if whole else f"{least} より大きい")
    if "maximum" in node:
        parts.append(f"{node['maximum']} 以下")
    return f"（{'、'.join(parts)}）" if parts else ""


def _type(node: Schema, defs: dict[str, Schema]) -> str:
    if "$ref" in node:
        target = defs[_ref(node)]
        return _type(target, defs) if "enum" in target else f"{target['title']}（下の表）"
    if "enum" in node:
        return " / ".join(f"`{v}`" for v in node["enum"])
    if "anyOf" in node:
        kinds = [_type(n, defs) for n in node["anyOf"] if n.get("type") != "null"]
        return " または ".join(dict.fromkeys(kinds))  # IPv4 or IPv6 reads as one
    kind = node.get("type")
    if kind == "array":
        least = f"（{node['minItems']} つ以上）" if "minItems" in node else ""
        return f"{_type(node['items'], defs)} のリスト{least}"
    if kind == "object":
        keys = node.get("propertyNames")
        per = f"{defs[_ref(keys)]['title']}" if keys else "名前"
        return f"{per}ごとに {_type(node['additionalProperties'], defs)}"
    if node.get("format") == "date":
        return "日付（YYYY-MM-DD）"
    if "pattern" in node:
        return "日時（YYYY-MM-DD hh:mm:ss+09:00）"
    if node.get("format", "").startswith("ipv"):
        return "IP アドレスまたはネットワーク"
    least = "（空は不可）" if node.get("minLength") else ""
    return _TYPES[str(kind)] + least + _range(node)


def _default(node: Schema) -> str:
    if "default" not in node:
        return ""
    value: Any = node["default"]
    if value is None or value in ("", {}, []):
        return "なし"
    if isinstance(value, dict):
        return "（既定の設定）"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{json.dumps(value, ensure_ascii=False)}`" if isinstance(value, list) else f"`{value}`"


def _table(node: Schema, defs: dict[str, Schema]) -> list[str]:
    required = set(node.get("required", ()))
    lines = ["| 項目 | 必須 | 型 | 既定値 | 説明 |", "| --- | --- | --- | --- | --- |"]
    for name, prop in node["properties"].items():
        about = prop["description"]  # the title and what more there is to say
        must = "必須" if name in required else ""
        lines.append(f"| `{name}` | {must} | {_type(prop, defs)} | {_default(prop)} | {about} |")
    return lines


def _objects(schema: Schema) -> list[Schema]:
    """The file's objects in the order a reader meets them: the file, then each nested
    object after the table that first names it."""
    defs: dict[str, Schema] = schema.get("$defs", {})
    seen: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                name = _ref(node)
                if name not in seen and "properties" in defs[name]:
                    seen.append(name)
                    walk(defs[name])
            for key, value in node.items():
                if key not in ("$defs", "default"):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: v for k, v in schema.items() if k != "$defs"})
    return [schema, *(defs[name] for name in seen)]


def markdown() -> str:
    """The whole reference."""
    out = [HEADER]
    for file in FILES:
        schema = schema_of(file.model)
        defs = schema.get("$defs", {})
        out.append(f"## {file.pattern}（{schema['title']}）\n")
        out.append(f"{schema['description']}。エディタ用のスキーマ: `schemas/{file.name}`\n")
        for i, node in enumerate(_objects(schema)):
            if i:
                out.append(f"### {node['title']}\n")
                if "description" in node:
                    out.append(f"{node['description']}\n")
            out.append("\n".join(_table(node, defs)) + "\n")
    return "\n".join(out)
