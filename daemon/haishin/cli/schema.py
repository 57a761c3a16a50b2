"""`haishin schema`: the editor's JSON Schemas and the staff's field reference (issue 15
item 2), written from the models so they cannot say otherwise than `haishin check`."""

from __future__ import annotations

from pathlib import Path

import click

from ..registry.fieldref import markdown as field_reference
from ..registry.jsonschema import schemas


@click.command()
@click.option(
    "--output",
    "output_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="folder to write the *.schema.json files into (created if missing)",
)
@click.option(
    "--markdown",
    "markdown_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="file to write the field reference (Markdown) into",
)
def schema(output_dir: Path | None, markdown_file: Path | None) -> None:
    """Write the registry files' JSON Schemas (for the editor) and the field reference."""
    if output_dir is None and markdown_file is None:
        raise click.UsageError("--output か --markdown を指定してください")
    if output_dir is not None:
        output_dir.mkdir(parents=True, exist_ok=True)
        for name, text in schemas().items():
            (output_dir / name).write_text(text, encoding="utf-8")
            click.echo(f"書き出しました: {output_dir / name}")
    if markdown_file is not None:
        markdown_file.write_text(field_reference(), encoding="utf-8")
        click.echo(f"書き出しました: {markdown_file}")
