"""`haishin schema`: the committed editor schemas (config/schemas/), the field reference
(config/FIELDS.md) and the editor's mapping (.vscode/settings.json) are what the command
writes from the models today, so none of them can drift from `haishin check`."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from haishin.cli import cli
from haishin.registry.jsonschema import FILES

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "config" / "schemas"
FIELDS_MD = ROOT / "config" / "FIELDS.md"


def test_the_committed_schemas_are_what_the_command_writes(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["schema", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()}
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMAS.iterdir()}
    assert sorted(written) == sorted(f.name for f in FILES)
    # regenerate with: haishin schema --output config/schemas --markdown config/FIELDS.md
    assert committed == written


def test_the_committed_field_reference_is_what_the_command_writes(tmp_path: Path) -> None:
    out = tmp_path / "FIELDS.md"
    result = CliRunner().invoke(cli, ["schema", "--markdown", str(out)])
    assert result.exit_code == 0, result.output
    assert FIELDS_MD.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_the_editor_maps_each_schema_to_the_files_the_loader_reads() -> None:
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert settings["yaml.schemas"] == {
        f"./config/schemas/{f.name}": f"config/{f.pattern}" for f in FILES
    }
    for f in FILES:
        assert list((ROOT / "config").glob(f.pattern)), f.pattern


def test_without_a_destination_it_says_what_to_give() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 2
    assert "--output か --markdown を指定してください" in result.output
