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
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.resolver import Resolver

from .library_messages import YAML_PROBLEMS, japanese
from .problems import Pos, Problem
from .slips import scan

try:  # libyaml, when the wheel is installed
    from ruamel.yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]

    _resolved: dict[tuple[str, object], object] = {}

    class _Composer(_CParser, Resolver):  # type: ignore[misc]
        def __init__(self, text: str) -> None:
            _CParser.__init__(self, text)
            Resolver.__init__(self)

        def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
            # A registry repeats the same keys and values thousands of times; resolving a
            # scalar's implicit tag depends only on its text (no path resolvers are set).
            if kind is not ScalarNode:
                return Resolver.resolve(self, kind, value, implicit)
            key = (value, implicit)
            tag = _resolved.get(key)
            if tag is None:
                tag = Resolver.resolve(self, kind, value, implicit)
                if len(_resolved) < 100_000:
                    _resolved[key] = tag
            return tag

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
_SEQ, _MAP, _MERGE = f"{_TAG}seq", f"{_TAG}map", f"{_TAG}merge"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}

Loc = tuple[str | int, ...]


@dataclass
class Document:
    """Plain data (dict, list, str, int, float, bool, None) and the node tree it came from.

    Positions are looked up in the node tree only when a finding needs one, which keeps
    loading a valid registry free of per-value bookkeeping.
    """

    path: str
    data: Any
    root: Node | None = field(default=None, repr=False)

    def _walk(self, loc: Loc) -> tuple[Node | None, Node | None]:
        """The (key node, value node) deepest along `loc` that exist."""
        key: Node | None = None
        node = self.root
        for part in loc:
            if isinstance(node, MappingNode):
                match = next(
                    (
                        kv
                        for kv in node.value
                        if isinstance(kv[0], ScalarNode) and kv[0].value == part
                    ),
                    None,
                )
                if match is None:
                    break
                key, node = match
            elif (
                isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value)
            ):
                key, node = None, node.value[part]
            else:
                break
        return key, node

    def _pos(self, node: Node | None) -> Pos:
        if node is None:
            return Pos(self.path)
        return Pos(self.path, node.start_mark.line + 1, node.start_mark.column + 1)

    def at(self, *loc: str | int) -> Pos:
        """Where the value at `loc` stands, or its nearest enclosing value."""
        return self._pos(self._walk(loc)[1])

    def key_at(self, *loc: str | int) -> Pos:
        """Where the key of the mapping entry at `loc` stands (the value's place if none)."""
        key, node = self._walk(loc)
        return self._pos(key or node)


def _tag(node: Node) -> str:
    """The node's resolved tag. Reading `node.tag` re-resolves it on every access, a third
    of the load time on a large registry; libyaml's nodes carry the resolved tag as is."""
    ctag = node.ctag
    if ctag.handle is None and isinstance(ctag.suffix, str):
        return ctag.suffix
    return str(node.tag)


class _Stop(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


MAX_INT_DIGITS = 30
"""Digits of a number a file may write: every number of the registry is small; a long one
is a slip (a pasted id), and Python refuses to read 4,300 digits or more."""


def _too_large(shown: str, size: int) -> Problem:
    return Problem(
        Pos(shown),
        "file-too-large",
        f"ファイルが大きすぎます（{size:,} バイト、上限 {MAX_FILE_BYTES:,} バイト）",
    )


def read(path: Path, shown: str) -> tuple[Document | None, list[Problem]]:
    """Read and compose `path`; `shown` is how the path is printed in messages."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # said before reading it: a huge file is not read at all
            return None, [_too_large(shown, size)]
        raw = path.read_bytes()
    except OSError as exc:
        return None, [Problem(Pos(shown), "unreadable", f"ファイルを読めません: {exc.strerror}")]
    return parse(raw, shown)


def parse(raw: bytes, shown: str) -> tuple[Document | None, list[Problem]]:
    if len(raw) > MAX_FILE_BYTES:  # contents given in memory (load.Overrides): never stat'ed
        return None, [_too_large(shown, len(raw))]
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

    slips = _tab_problems(text, shown) + scan(text, shown)
    if slips:  # each is named where it stands; YAML would point at the line after
        return None, sorted(slips, key=lambda p: p.pos)

    try:
        node = _compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        english = " ".join(part for part in (exc.problem, exc.context) if part)
        what = japanese(YAML_PROBLEMS, english, "書き方を確かめてください")
        return None, [
            Problem(Pos(shown, line, col), "yaml-syntax", f"YAML の書き方に誤りがあります: {what}")
        ]
    except ReaderError as exc:  # a control character (NUL, ESC…): named where it stands
        code = exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1])
        # its first place (where the reader stopped; libyaml counts `position` in bytes)
        at = max(text.find(chr(code)), 0)
        line, col = text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
        return None, [
            Problem(
                Pos(shown, line, col),
                "control-character",
                f"使えない制御文字（U+{code:04X}）があります。消してください",
            )
        ]
    except YAMLError as exc:
        what = japanese(YAML_PROBLEMS, str(exc), "書き方を確かめてください")
        return None, [Problem(Pos(shown), "yaml-syntax", f"YAML として読めません: {what}")]
    if node is None:
        return None, [Problem(Pos(shown), "empty-file", "ファイルが空です")]

    doc = Document(shown, None, node)
    builder = _Builder(doc)
    try:
        doc.data = builder.build(node, 0)
    except _Stop as stop:
        return None, [stop.problem]
    return doc, builder.problems


def _tab_problems(text: str, shown: str) -> list[Problem]:
    problems: list[Problem] = []
    if "\t" not in text:
        return problems
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

    def build(self, node: Node, depth: int) -> Any:
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
        if isinstance(node, MappingNode):
            return self._mapping(node, depth)
        if isinstance(node, SequenceNode):
            if _tag(node) != _SEQ:
                raise _Stop(self._tag_problem(node))
            return [self.build(item, depth + 1) for item in node.value]
        assert isinstance(node, ScalarNode)
        return self._scalar(node)

    def _tag_problem(self, node: Node) -> Problem:
        return Problem(
            self._pos(node),
            "yaml-tag",
            f"YAML タグ {_tag(node).replace(_TAG, '!!')} は使えません（文字列・数値・日付・一覧・対応表だけが書けます）",
        )

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        if _tag(node) != _MAP:
            raise _Stop(self._tag_problem(node))
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or _tag(key_node) == _MERGE:
                raise _Stop(
                    Problem(
                        self._pos(key_node),
                        "yaml-key",
                        "キーには単純な文字列を書いてください（<< や複合キーは使えません）",
                    )
                )
            key = str(key_node.value)
            if key in out:
                first = next(k for k, _ in node.value if k.value == key)
                self.problems.append(
                    Problem(
                        self._pos(key_node),
                        "duplicate-key",
                        f"キー '{key}' が重複しています（最初は {first.start_mark.line + 1} 行目）",
                    )
                )
                continue
            out[key] = self.build(value_node, depth + 1)
        return out

    def _scalar(self, node: ScalarNode) -> Any:
        tag, value = _tag(node), node.value
        if tag not in _SCALAR_TAGS:
            raise _Stop(self._tag_problem(node))
        kind = tag.removeprefix(_TAG)
        if kind == "null":
            return None
        if kind == "bool":
            return value.lower() == "true"
        if kind == "int":
            digits = len(value.replace("_", ""))
            if digits > MAX_INT_DIGITS:  # int() refuses 4,300 and more with a ValueError
                raise _Stop(
                    Problem(
                        self._pos(node),
                        "number-too-long",
                        f"数が長すぎます（{digits:,} 桁、{MAX_INT_DIGITS} 桁まで）",
                    )
                )
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
