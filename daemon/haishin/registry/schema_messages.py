"""Turn pydantic's validation errors into positioned, Japanese findings."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError

from .library_messages import EMAIL_PROBLEMS, PYDANTIC_PROBLEMS, japanese
from .problems import Problem
from .slips import ValueSlip, in_value, visible
from .yamlsource import Document

_TYPE_WORDS = {
    "string_type": "文字列",
    "int_type": "整数",
    "int_parsing": "整数",
    "int_from_float": "整数",
    "bool_type": "true か false",
    "bool_parsing": "true か false",
    "list_type": "一覧（- で始まる行）",
    "dict_type": "対応表（キー: 値）",
    "model_type": "対応表（キー: 値）",
    "model_attributes_type": "対応表（キー: 値）",
    "date_type": "日付（例: 2026-04-01）",
    "date_parsing": "日付（例: 2026-04-01）",
    "date_from_datetime_parsing": "日付（例: 2026-04-01）",
    "date_from_datetime_inexact": "日付（例: 2026-04-01）",
    "datetime_type": "日時（例: 2026-12-01 09:00:00+09:00）",
    "datetime_parsing": "日時（例: 2026-12-01 09:00:00+09:00）",
    "datetime_from_date_parsing": "日時（例: 2026-12-01 09:00:00+09:00）",
    "float_type": "数値",
    "float_parsing": "数値",
}


def _unwrap(annotation: Any) -> Any:
    """The model class reachable through Optional, list[...] and dict[..., ...]."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            if arg is not type(None):
                return _unwrap(arg)
    if origin in (list, dict):
        return _unwrap(typing.get_args(annotation)[-1])
    return annotation


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            if isinstance(part, str) and part in current.model_fields:
                current = _unwrap(current.model_fields[part].annotation)
            # list indexes and dict keys keep the element model
        else:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _name(loc: tuple[str | int, ...]) -> str:
    return ".".join(str(p) for p in loc if p != "[key]") or "(ファイル全体)"


def problems_from(exc: ValidationError, doc: Document, model: type[BaseModel]) -> list[Problem]:
    out = []
    for err in exc.errors(include_url=False):
        loc = _without_union_tags(doc, tuple(err["loc"]))
        kind = err["type"]
        ctx = err.get("ctx") or {}
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
            pos = doc.key_at(*loc)
            expected = ctx.get("expected", "")
            out.append(
                Problem(
                    pos, "unknown-value", f"キー '{loc[-1]}' は使えません（使えるのは {expected}）"
                )
            )
            continue
        if kind == "missing":
            out.append(
                Problem(doc.at(*loc[:-1]), "missing", f"必須の項目 '{_name(loc)}' がありません")
            )
        elif kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            known = list(parent.model_fields) if parent else []
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
            hint = (
                f"。もしかして '{close[0]}' ですか"
                if close
                else (f"。書ける項目: {', '.join(repr(k) for k in known)}" if known else "")
            )
            out.append(
                Problem(doc.key_at(*loc), "unknown-key", f"不明な項目 '{_name(loc)}' です{hint}")
            )
        elif kind in ("literal_error", "enum"):
            out.append(
                Problem(
                    doc.at(*loc),
                    "unknown-value",
                    f"'{_name(loc)}' の値 '{err['input']}' は使えません"
                    f"（使えるのは {ctx.get('expected', '')}）",
                )
            )
        elif kind == "email":
            reason = japanese(EMAIL_PROBLEMS, str(ctx.get("reason", "")), "形式が正しくありません")
            out.append(
                Problem(
                    doc.at(*loc),
                    "email",
                    f"'{_name(loc)}' のメールアドレス「{visible(str(ctx.get('address', '')))}」は"
                    f"使えません: {reason}",
                )
            )
        elif kind in ("too_short", "string_too_short"):
            out.append(Problem(doc.at(*loc), "empty-value", f"'{_name(loc)}' が空です"))
        elif kind in _RANGE_ERRORS:
            out.append(
                Problem(
                    doc.at(*loc),
                    "out-of-range",
                    f"'{_name(loc)}' は{_range(model, loc, kind, ctx)}で書いてください"
                    f"（書かれている値: 「{_show(err.get('input'))}」）",
                )
            )
        elif kind in _TYPE_WORDS and (slip := _slip(loc, err.get("input"))) is not None:
            out.append(Problem(doc.at(*loc), slip.key, slip.message))
        elif kind in _TYPE_WORDS:
            out.append(
                Problem(
                    doc.at(*loc),
                    "type",
                    f"'{_name(loc)}' は{_TYPE_WORDS[kind]}で書いてください"
                    f"（書かれている値: 「{_show(err.get('input'))}」）",
                )
            )
        else:
            what = japanese(PYDANTIC_PROBLEMS, err["msg"], "値が正しくありません")
            out.append(Problem(doc.at(*loc), kind, f"'{_name(loc)}': {what}"))
    # one value failing every member of a union (IPv4Network | IPv6Network) is one finding
    return list({(p.pos, p.message): p for p in reversed(out)}.values())[::-1]


def _without_union_tags(doc: Document, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """`loc` without the union members pydantic names in it ('lax-or-strict[…]', a model's
    name): what is left are the keys and indexes the clerk wrote, and a missing field."""
    kept: list[str | int] = []
    data = doc.data
    for i, part in enumerate(loc):
        indexed = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if indexed or (isinstance(data, dict) and part in data):
            data = data[part]
        elif part != "[key]" and ((isinstance(part, str) and "[" in part) or i < len(loc) - 1):
            continue
        kept.append(part)
    return tuple(kept)


def _slip(loc: tuple[str | int, ...], value: Any) -> ValueSlip | None:
    """全角数字 or 和暦 where a number or date was expected, in a value the pre-scan could
    not see alone (flow style: `{count: ３}`)."""
    return in_value(_name(loc), value) if isinstance(value, str) else None


_RANGE_ERRORS = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")
_BOUNDS = {
    annotated_types.Gt: "gt",
    annotated_types.Ge: "ge",
    annotated_types.Lt: "lt",
    annotated_types.Le: "le",
}


def _range(model: type[BaseModel], loc: tuple[str | int, ...], kind: str, ctx: Any) -> str:
    """Both ends of the field's range in words: ' 1 以上 24 以下の整数', ' 0 より大きい数'.

    pydantic names only the bound that was crossed; staff fixing a value need both."""
    bounds = {k: v for k, v in ctx.items() if k in ("gt", "ge", "lt", "le")}
    number = "数"
    parent = _model_at(model, loc[:-1])
    field = parent.model_fields.get(str(loc[-1])) if parent else None
    if field is not None:
        for meta in field.metadata:
            name = _BOUNDS.get(type(meta))
            if name:
                bounds[name] = getattr(meta, name)
        if _unwrap(field.annotation) is int:
            number = "整数"
    words = []
    if number == "整数" and "gt" in bounds:
        bounds["ge"] = bounds.pop("gt") + 1
    if number == "整数" and "lt" in bounds:
        bounds["le"] = bounds.pop("lt") - 1
    for name, word in (("ge", "以上"), ("gt", "より大きい"), ("le", "以下"), ("lt", "未満")):
        if name in bounds:
            words.append(f"{bounds[name]} {word}")
    return f" {' '.join(words)}の{number}"


def _show(value: Any) -> str:
    text = visible(repr(value) if not isinstance(value, str) else value)
    return text if len(text) <= 40 else text[:37] + "..."
