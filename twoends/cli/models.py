"""``twoends models``: what can be loaded by name."""

from __future__ import annotations

import json

import click


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def models(fmt: str) -> None:
    """List the models and model families that `--model` accepts."""
    from rich.console import Console
    from rich.table import Table

    from ..models import available

    rows = available()
    if fmt == "json":
        click.echo(json.dumps([r._asdict() for r in rows], indent=2))
        return
    table = Table(header_style="bold")
    table.add_column("name")
    table.add_column("installed")
    table.add_column("description", overflow="fold")
    for r in rows:
        table.add_row(r.name, "[green]yes[/green]" if r.installed else "[red]no[/red]", r.description)
    Console().print(table)
