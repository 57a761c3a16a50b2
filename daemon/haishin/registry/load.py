"""Load config/ into a `Registry`: every file read, every schema problem collected.

Files that fail their schema are left out of the registry (and reported), so that the
cross-file rules can still run on the rest and one `haishin check` reports everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from pydantic import BaseModel, ValidationError

from .model import Application, Channel, Department, Departments, Outage, Service
from .problems import Pos, Problem
from .schema_messages import problems_from
from .yamlsource import Document, parse, read

M = TypeVar("M", bound=BaseModel)

SERVICE_FILE = "service.yaml"
DEPARTMENTS_FILE = "departments.yaml"
CHANNELS_DIR = "channels"
APPLICATIONS_DIR = "applications"
OUTAGES_DIR = "outages"


@dataclass(frozen=True)
class Located(Generic[M]):
    """A model and the document it came from, so rules can point at its lines."""

    value: M
    doc: Document


@dataclass
class Registry:
    root: Path
    service: Located[Service] | None = None
    departments: dict[str, Department] = field(default_factory=dict)
    departments_doc: Document | None = None
    channels: dict[str, Located[Channel]] = field(default_factory=dict)
    applications: dict[str, Located[Application]] = field(default_factory=dict)
    outages: dict[str, Located[Outage]] = field(default_factory=dict)
    broken: dict[str, dict[str, object]] = field(default_factory=dict)
    """Per folder, the files that failed to load, by id (file name), with what could be
    read of them: rules that miss them say the file has errors, not that it is missing."""

    _by_channel: dict[str, list[Located[Application]]] | None = field(
        default=None, repr=False, compare=False
    )

    def applications_of(self, slug: str) -> list[Located[Application]]:
        """The channel's applications in the order they were made (indexed once)."""
        if self._by_channel is None:
            index: dict[str, list[Located[Application]]] = {}
            for located in self.applications.values():
                index.setdefault(located.value.channel, []).append(located)
            for apps in index.values():
                apps.sort(key=lambda a: (a.value.applied, a.value.number))
            self._by_channel = index
        return self._by_channel.get(slug, [])

    def history_is_partial(self, slug: str) -> bool:
        """Did an application of this channel (or one whose channel cannot be read) fail
        to load? Then the order of its approvals cannot be judged."""
        for data in self.broken.get(APPLICATIONS_DIR, {}).values():
            channel = data.get("channel") if isinstance(data, dict) else None
            if not isinstance(channel, str) or channel == slug:
                return True
        return False

    def department_pos(self, dept_id: str, *loc: str) -> Pos:
        assert self.departments_doc is not None
        return self.departments_doc.at("departments", dept_id, *loc)


def _shown(root: Path, path: Path) -> str:
    """The path as a clerk reads it in the PR: relative to where `check` was run."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:  # outside the working directory: the full path reads better
        return str(absolute)


def _validate(doc: Document, model: type[M], problems: list[Problem]) -> M | None:
    if not isinstance(doc.data, dict):
        problems.append(
            Problem(doc.at(), "type", "ファイル全体を対応表（キー: 値 の形）で書いてください")
        )
        return None
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        problems.extend(problems_from(exc, doc, model))
        return None


Overrides = Mapping[Path, bytes]
"""Contents to read instead of some files (absolute paths): an edit checked before it is
written."""


def _document(
    root: Path, path: Path, problems: list[Problem], overrides: Overrides
) -> Document | None:
    replaced = overrides.get(path.absolute())
    if replaced is not None:
        doc, found = parse(replaced, _shown(root, path))
    else:
        doc, found = read(path, _shown(root, path))
    problems.extend(found)
    return doc


def _read_model(
    root: Path, path: Path, model: type[M], problems: list[Problem], overrides: Overrides
) -> Located[M] | None:
    doc = _document(root, path, problems, overrides)
    if doc is None:
        return None
    value = _validate(doc, model, problems)
    return Located(value, doc) if value is not None else None


def _folder(
    root: Path,
    name: str,
    model: type[M],
    id_field: str,
    problems: list[Problem],
    overrides: Overrides,
    broken: dict[str, object],
) -> dict[str, Located[M]]:
    folder = root / name
    out: dict[str, Located[M]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix != ".yaml":
            if path.suffix in (".yml", ".YAML", ".YML"):
                problems.append(
                    Problem(
                        Pos(_shown(root, path)),
                        "file-name",
                        "拡張子は .yaml にしてください（.yml は読み込まれません）",
                    )
                )
            continue
        doc = _document(root, path, problems, overrides)
        value = _validate(doc, model, problems) if doc is not None else None
        if doc is None or value is None:
            broken[path.stem] = doc.data if doc is not None else None
            continue
        item = Located(value, doc)
        key = str(getattr(item.value, id_field))
        if key != path.stem:
            problems.append(
                Problem(
                    item.doc.at(id_field),
                    "file-name",
                    f"'{id_field}' ({key}) とファイル名 ({path.stem}) を同じにしてください",
                )
            )
            broken[path.stem] = doc.data
            continue
        out[key] = item
    return out


def load(root: Path, overrides: Overrides | None = None) -> tuple[Registry, list[Problem]]:
    """Read everything under `root`; never raises for bad content."""
    problems: list[Problem] = []
    overrides = overrides or {}
    reg = Registry(root)
    if not root.is_dir():
        return reg, [Problem(Pos(str(root)), "no-config", "設定フォルダが見つかりません")]

    service_path = root / SERVICE_FILE
    if service_path.exists():
        reg.service = _read_model(root, service_path, Service, problems, overrides)
    else:
        problems.append(
            Problem(Pos(_shown(root, service_path)), "missing-file", "service.yaml がありません")
        )

    dept_path = root / DEPARTMENTS_FILE
    if dept_path.exists():
        located = _read_model(root, dept_path, Departments, problems, overrides)
        if located is not None:
            reg.departments = dict(located.value.departments)
            reg.departments_doc = located.doc
    else:
        problems.append(
            Problem(Pos(_shown(root, dept_path)), "missing-file", "departments.yaml がありません")
        )

    for name in (CHANNELS_DIR, APPLICATIONS_DIR, OUTAGES_DIR):
        reg.broken[name] = {}
    reg.channels = _folder(
        root, CHANNELS_DIR, Channel, "slug", problems, overrides, reg.broken[CHANNELS_DIR]
    )
    reg.applications = _folder(
        root,
        APPLICATIONS_DIR,
        Application,
        "number",
        problems,
        overrides,
        reg.broken[APPLICATIONS_DIR],
    )
    reg.outages = _folder(
        root, OUTAGES_DIR, Outage, "id", problems, overrides, reg.broken[OUTAGES_DIR]
    )
    return reg, problems
