"""Read one registry file into plain data that remembers where every value stands.

Registry files come from clerks' pull requests, so this module assumes nothing about
them: each of the classic ways a YAML file goes wrong (encoding, tabs, syntax, duplicate
keys, object-constructing tags, alias bombs, huge files) becomes a `Problem` with a
position, never an exception that reaches the user.

The composer is libyaml through ruamel.yaml.clib when present (about 40x faster than the
pure-Python one, which keeps `haishin check` on thousands of files under its 2 s budget);
both give the same nodes with marks. Writing back (approve/reject) uses ruamel's
round-trip mode elsewhere, since only it preserves comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import Resolver

from .problems import Pos, Problem

try:  # libyaml, when the wheel is installed
    from ruamel.yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]

    class _Composer(_CParser, Resolver):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            _CParser.__init__(self, text)
            Resolver.__init__(self)

    def _compose(text: str) -> Node | None:
        return _Composer(text).get_single_node()  # type: ignore[no-any-return]

except ImportError:  # pragma: no cover - exercised only where the C extension is absent
    from ruamel.yaml import YAML as _YAML

    _pure = _YAML(typ="safe", pure=True)

    def _compose(text: str) -> Node | None:
        return _pure.compose(text)  # type: ignore[no-any-return]


MAX_FILE_BYTES = 1024 * 1024
"""A channel file is a few hundred bytes; a megabyte is a mistake or an attack."""

MAX_NODES = 50_000
"""Values after alias expansion; a 'billion laughs' file reaches this in microseconds."""

MAX_DEPTH = 32

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}

Loc = tuple[str | int, ...]


@dataclass
class Document:
    """Plain data (dict, list, str, int, float, bool, None) plus the place of each value."""

    path: str
    data: Any
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)

    def at(self, *loc: str | int) -> Pos:
        """Where the value at `loc` stands, or its nearest enclosing value."""
        path = tuple(loc)
        while path:
            if path in self.values:
                line, col = self.values[path]
                return Pos(self.path, line + 1, col + 1)
            path = path[:-1]
        line, col = self.values.get((), (0, 0))
        return Pos(self.path, line + 1, col + 1)

    def key_at(self, *loc: str | int) -> Pos:
        """Where the key of the mapping entry at `loc` stands (the value's place if none)."""
        if loc in self.keys:
            line, col = self.keys[loc]
            return Pos(self.path, line + 1, col + 1)
        return self.at(*loc)


class _Stop(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def read(path: Path, shown: str) -> tuple[Document | None, list[Problem]]:
    """Read and compose `path`; `shown` is how the path is printed in messages."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [
                Problem(
                    Pos(shown),
                    "file-too-large",
                    f"ファイルが大きすぎます（{size:,} バイト、上限 {MAX_FILE_BYTES:,} バイト）",
                )
            ]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(Pos(shown), "unreadable", f"ファイルを読めません: {exc.strerror}")]
    return parse(raw, shown)


def parse(raw: bytes, shown: str) -> tuple[Document | None, list[Problem]]:
    if len(raw) > MAX_FILE_BYTES:
        return None, [
            Problem(
                Pos(shown),
                "file-too-large",
                f"ファイルが大きすぎます（{len(raw):,} バイト、上限 {MAX_FILE_BYTES:,} バイト）",
            )
        ]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, [
            Problem(
                Pos(shown, line, col),
                "encoding",
                "UTF-8 として読めない文字があります。UTF-8 で保存してください"
                "（Shift_JIS で保存されていませんか）",
            )
        ]
    text = text.removeprefix("\ufeff")
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        return None, [Problem(Pos(shown), "empty-file", "ファイルが空です")]

    tabs = _tab_problems(text, shown)
    if tabs:
        return None, tabs

    try:
        node = _compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        what = exc.problem or exc.context or "構文エラー"
        return None, [
            Problem(Pos(shown, line, col), "yaml-syntax", f"YAML の書き方に誤りがあります: {what}")
        ]
    except YAMLError as exc:
        return None, [Problem(Pos(shown), "yaml-syntax", f"YAML として読めません: {exc}")]
    if node is None:
        return None, [Problem(Pos(shown), "empty-file", "ファイルが空です")]

    doc = Document(shown, None)
    builder = _Builder(doc)
    try:
        doc.data = builder.build(node, (), 0)
    except _Stop as stop:
        return None, [stop.problem]
    return doc, builder.problems


def _tab_problems(text: str, shown: str) -> list[Problem]:
    problems = []
    for n, line in enumerate(text.splitlines(), start=1):
        indent = line[: len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            problems.append(
                Problem(
                    Pos(shown, n, indent.index("\t") + 1),
                    "tab-indent",
                    "字下げにタブ文字は使えません。半角スペースで字下げしてください",
                )
            )
    return problems


class _Builder:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.count = 0
        self.problems: list[Problem] = []
        self.top: Node | None = None  # the top-level value being built, to point at a bomb

    def _pos(self, node: Node) -> Pos:
        return Pos(self.doc.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(self, node: Node, loc: Loc, depth: int) -> Any:
        self.count += 1
        if depth == 1:
            self.top = node
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            raise _Stop(
                Problem(
                    self._pos(self.top or node),
                    "alias-bomb",
                    "エイリアスの展開が大きすぎる、または入れ子が深すぎます"
                    f"（値 {MAX_NODES:,} 個・深さ {MAX_DEPTH} まで）",
                )
            )
        self.doc.values.setdefault(loc, (node.start_mark.line, node.start_mark.column))
        if isinstance(node, MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, SequenceNode):
            if node.tag != f"{_TAG}seq":
                raise _Stop(self._tag_problem(node))
            return [self.build(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        return self._scalar(node)

    def _tag_problem(self, node: Node) -> Problem:
        return Problem(
            self._pos(node),
            "yaml-tag",
            f"YAML タグ {str(node.tag).replace(_TAG, '!!')} は使えません（文字列・数値・日付・一覧・対応表だけが書けます）",
        )

    def _mapping(self, node: MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        if node.tag != f"{_TAG}map":
            raise _Stop(self._tag_problem(node))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag == f"{_TAG}merge":
                raise _Stop(
                    Problem(
                        self._pos(key_node),
                        "yaml-key",
                        "キーには単純な文字列を書いてください（<< や複合キーは使えません）",
                    )
                )
            key = str(key_node.value)
            if key in out:
                first = self.doc.keys[(*loc, key)]
                self.problems.append(
                    Problem(
                        self._pos(key_node),
                        "duplicate-key",
                        f"キー '{key}' が重複しています（最初は {first[0] + 1} 行目）",
                    )
                )
                continue
            self.doc.keys[(*loc, key)] = (key_node.start_mark.line, key_node.start_mark.column)
            out[key] = self.build(value_node, (*loc, key), depth + 1)
        return out

    def _scalar(self, node: ScalarNode) -> Any:
        tag, value = node.tag, node.value
        if tag not in _SCALAR_TAGS:
            raise _Stop(self._tag_problem(node))
        kind = tag.removeprefix(_TAG)
        if kind == "null":
            return None
        if kind == "bool":
            return value.lower() == "true"
        if kind == "int":
            try:
                return int(value.replace("_", ""), 0)
            except ValueError:
                return int(value.replace("_", ""))
        if kind == "float":
            try:
                return float(value.replace("_", ""))
            except ValueError:
                return value
        # str, and timestamps: the model parses dates so that its messages explain them
        return value
