"""`accounting openapi`: write openapi.yaml from the code, or check that it is up to date.

Also runs as `python -m app.api.openapi_cli` (the same options).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from app.api.docs import spec_yaml


def generated() -> str:
    """The OpenAPI document as the code describes it; needs no database."""
    from app.factory import create_app

    return spec_yaml(create_app({"DATABASE_URL": "sqlite://"}))


@click.command("openapi")
@click.option(
    "--output",
    "-o",
    default="openapi.yaml",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the document; '-' for standard output.",
)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if the file is out of date.")
def openapi(output: Path, check: bool) -> None:
    """Generate the OpenAPI document from the endpoints' schemas."""
    text = generated()
    if str(output) == "-":
        click.echo(text, nl=False)
        return
    if check:
        current = output.read_text(encoding="utf-8") if output.exists() else ""
        if current != text:
            click.echo(f"{output} is out of date: run `accounting openapi`", err=True)
            sys.exit(1)
        click.echo(f"{output} is up to date", err=True)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"wrote {output}", err=True)


if __name__ == "__main__":
    openapi()
