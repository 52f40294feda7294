"""``twoends evaluate``: accuracy and calibration of a model on labelled images, with a reliability plot."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from ..encoding import json_safe
from ..errors import TwoEndsError
from ._common import check_model_options, check_output_file, fail, load_classifier, model_options, stderr_console


@click.command()
@click.argument("data", type=click.Path(exists=True))
@model_options
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the metrics to FILE instead of stdout.",
)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Reliability diagram PNG (default: next to -o FILE, else reliability.png here).",
)
@click.option("--no-plot", is_flag=True, help="Write no plot.")
@click.option(
    "--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True, help="Confidence bins for ECE/MCE."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on a terminal).")
@click.option(
    "--ood-data",
    type=click.Path(exists=True),
    default=None,
    help="Out-of-distribution images (a folder): report how well the OOD score tells them from DATA "
    "(AUROC, FPR at 95% TPR).",
)
def evaluate(data, fmt, output, plot, no_plot, n_bins, batch_size, progress, ood_data, **model_kwargs) -> None:
    """Measure a model on DATA: a folder per class (DATA/<class name>/*.jpg), or a CSV/JSONL of path,label.

    Reports top-1/top-5 accuracy, NLL, Brier score, ECE (equal-width and
    equal-mass bins) and MCE, and writes a reliability diagram. Images that
    cannot be read are counted and listed; they do not stop the run.
    """
    from ..calibrate.evaluate import evaluate as run_evaluate
    from ..calibrate.reliability import plot_reliability

    check_model_options(model_kwargs)  # and -o: exit 2 before the model loads, not after the whole run
    if output:
        check_output_file(output, append=False)
    clf = load_classifier(batch_size=batch_size, **model_kwargs)
    labelled = load_data(data, clf)
    err = stderr_console()
    err.print(f"[dim]evaluating {clf.name} on {labelled.describe()}[/dim]", highlight=False)
    try:
        total = len(labelled) + (_count(ood_data) if ood_data else 0)
        with progress_bar(err, total, "evaluating", progress) as advance:
            result = run_evaluate(clf, labelled, n_bins=n_bins, on_progress=advance, ood_data=ood_data)
    except TwoEndsError as exc:
        fail(str(exc))
    plot_path = None if no_plot else Path(plot or default_plot(output, "reliability.png"))
    if plot_path is not None:
        title = f"{clf.name} on {Path(data).name}" + (
            f" (calibration {clf.settled.head.calibration})" if clf.settled.head.calibration else ""
        )
        plot_reliability(result.report.bins, plot_path, title=title)
    summary = {
        "model": clf.name,
        "data": labelled.source,
        **result.to_dict(),
        "plot": str(plot_path) if plot_path else None,
    }
    write(render(summary, fmt), output)
    report_failures(err, result.failed, total)
    if plot_path is not None:
        err.print(f"reliability diagram written to {plot_path}", highlight=False)


def _count(path) -> int:
    from ..preprocess import iter_items

    return sum(1 for _ in iter_items(path))


def load_data(data, clf, *, multilabel: bool = False):
    """The labelled data matched to the classifier's class names (a clean exit 2 on a bad data set)."""
    from ..calibrate.data import load_labelled

    labels = clf.labels
    if labels is None:
        fail(f"model {clf.name!r} does not say its classes: pass --labels FILE so class names can be matched")
    try:
        return load_labelled(data, labels, multilabel=multilabel)
    except TwoEndsError as exc:
        fail(str(exc))


def default_plot(output, name: str) -> Path:
    """Next to the output file (its name + .reliability.png), else ``name`` in the current folder."""
    if output:
        out = Path(output)
        return out.with_name(out.stem + ".reliability.png")
    return Path(name)


ROWS = (
    ("accuracy", "top-1 accuracy"),
    ("top5", "top-5 accuracy"),
    ("nll", "NLL (nats)"),
    ("brier", "Brier score"),
    ("ece", "ECE (equal-width)"),
    ("ece_mass", "ECE (equal-mass)"),
    ("mce", "MCE (equal-width)"),
)


def render(summary: dict, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(json_safe(summary), indent=2, allow_nan=False, default=str) + "\n"
    from rich.table import Table

    table = Table(title=f"{summary['model']} on {summary['data']}", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, name in ROWS:
        if summary.get(key) is not None:
            table.add_row(name, f"{summary[key]:.4f}")
    table.add_row("images evaluated", f"{summary['n_evaluated']} of {summary['n_inputs']}")
    ood = summary.get("ood")
    if ood:
        table.add_row("OOD: AUROC", f"{ood['auroc']:.4f}")
        table.add_row("OOD: FPR at 95% TPR", f"{ood['fpr_at_95_tpr']:.4f}")
        if "threshold" in ood:
            table.add_row("OOD threshold keeps (in / out)", f"{ood['in_kept']:.1%} / {1 - ood['out_flagged']:.1%}")
        table.add_row("OOD images", f"{ood['n_out']} ({ood['data']})")
    if summary.get("calibration"):
        table.add_row("calibration", f"{summary['calibration']} (T={summary['temperature']:.4g})")
    elif summary.get("temperature", 1.0) != 1.0:
        table.add_row("temperature", f"{summary['temperature']:.4g}")
    text = rich_text(table)
    if ood:
        text += f"OOD score: {ood['score']}\n"
    return text


def rich_text(renderable) -> str:
    from rich.console import Console

    console = Console(record=True, file=_Null(), width=100)
    console.print(renderable)
    return console.export_text()


class _Null:
    def write(self, _):
        pass

    def flush(self):
        pass


def write(text: str, output) -> None:
    """To FILE (written whole, at the end) or stdout."""
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def report_failures(err, failed: list, total: int) -> None:
    if not failed:
        return
    err.print(
        f"[red]{len(failed)} of {total} images could not be predicted and are left out of the metrics:[/red]",
        highlight=False,
    )
    for name, message in failed[:10]:
        err.print(f"  {name}: {message}", highlight=False)
    if len(failed) > 10:
        err.print(f"  ... and {len(failed) - 10} more", highlight=False)


@contextmanager
def progress_bar(console, total: int, what: str, show):
    """A rich progress bar on stderr (by default on a terminal only); yields ``advance(n)``."""
    if not (show if show is not None else console.is_terminal):
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(what, total=total)
        yield lambda n=1: bar.advance(task, n)
