"""``twoends doctor``: find the silent mistakes at both ends of a model."""

from __future__ import annotations

import json
import sys

import click

from ._common import fail, load_classifier, model_options

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


@click.command()
@click.argument("photos", nargs=-1)
@model_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--check", "only", multiple=True, help="Run only this check (repeatable); see the list in the report.")
def doctor(photos, fmt, only, **model_kwargs) -> None:
    """Check a model's two ends on PHOTOS (default: the known-answer sample photos), or on audio clips
    for an audio model.

    Exit status: 0 when no check found an error, 1 when one did, 2 when the doctor could not run.
    """
    import twoends

    clf = load_classifier(**model_kwargs)
    try:
        findings = twoends.check(clf, list(photos) or None, checks=list(only) or None)
    except twoends.TwoEndsError as exc:
        fail(str(exc))
    if fmt == "json":
        click.echo(json.dumps({"model": clf.name, **findings.to_dict()}, indent=2))
    else:
        print_report(clf.name, findings)
    sys.exit(1 if findings.failed else 0)


def print_report(model: str, findings) -> None:
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console()
    console.print(Text(f"twoends doctor: {model}", style="bold"))
    for f in findings:
        body = Text()
        for key, value in (("seen", f.seen), ("why", f.why), ("fix", f.fix)):
            body.append(f"{key:>5}  ", style="bold")
            body.append(value + "\n")
        title = Text(f"{f.severity.upper()}  {f.check}: ", style=_STYLE[f.severity]).append(f.title, style="bold")
        body.rstrip()  # in place: Text.rstrip() returns None (the panels were printed empty)
        console.print(Panel(body, title=title, title_align="left", border_style=_STYLE[f.severity]))
    flagged = {f.check for f in findings}
    passed = [name for name in findings.ran if name not in flagged]
    if passed:
        console.print(Text("passed   ", style="green").append(", ".join(passed), style=""))
    for name, why in findings.skipped.items():
        console.print(Text("skipped  ", style="dim").append(f"{name}: {why}", style="dim"))
    counts = {s: sum(f.severity == s for f in findings) for s in ("error", "warning", "info")}
    verdict = "FAIL" if findings.failed else "OK"
    console.print(
        Text(
            f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['info']} note(s)",
            style="bold red" if findings.failed else "bold green",
        )
    )
