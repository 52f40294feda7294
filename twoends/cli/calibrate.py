"""``twoends calibrate``: fit a calibration on labelled images, report it on a held-out split, write the file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import click

from ..encoding import json_safe
from ..errors import TwoEndsError
from ._common import check_model_options, check_output_file, fail, load_classifier, model_options, stderr_console
from .evaluate import ROWS, default_plot, load_data, progress_bar, report_failures, rich_text


@click.command()
@click.argument("data", type=click.Path(exists=True))
@model_options
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    required=True,
    help="The calibration file to write (JSON).",
)
@click.option(
    "--method",
    type=click.Choice(["temperature", "vector", "none"]),
    default="temperature",
    show_default=True,
    help="temperature: fitted and applied. vector: per-class scaling fitted and reported only "
    "(the temperature is what is applied). none: no rescaling.",
)
@click.option(
    "--conformal",
    "alpha",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Also fit conformal prediction sets with miscoverage ALPHA (e.g. 0.1: sets hold the true class >= 90% of the time).",
)
@click.option(
    "--score", type=click.Choice(["lac", "aps", "raps"]), default="lac", show_default=True, help="Conformal score."
)
@click.option(
    "--multilabel-thresholds",
    "objective",
    default=None,
    metavar="f1|precision:P",
    help="Multi-label (sigmoid) models: per-class thresholds maximising F1, or the lowest reaching precision P.",
)
@click.option(
    "--ood",
    "ood",
    is_flag=True,
    help="Also fit an out-of-distribution threshold on DATA (in-distribution): rows over it are 'none of the above'.",
)
@click.option(
    "--ood-tpr",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.95,
    show_default=True,
    help="The fraction of in-distribution images the OOD threshold keeps.",
)
@click.option(
    "--group-level",
    is_flag=True,
    help="With --groups (disjoint): fit the temperature and conformal sets on the groups, not the classes.",
)
@click.option(
    "--split",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.5,
    show_default=True,
    help="Fraction of the images used to fit; the rest is used only to report.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random split.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Reliability diagram of the held-out split after calibration (default: next to -o FILE).",
)
@click.option("--no-plot", is_flag=True, help="Write no plot.")
@click.option("--bins", "n_bins", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--progress/--no-progress", default=None, help="Progress bar on stderr (default: on a terminal).")
def calibrate(
    data,
    output,
    method,
    alpha,
    score,
    objective,
    ood,
    ood_tpr,
    group_level,
    split,
    seed,
    plot,
    no_plot,
    n_bins,
    fmt,
    batch_size,
    progress,
    **model_kwargs,
) -> None:
    """Fit a calibration for a model on DATA (a folder per class, or a CSV/JSONL of path,label) and write it to -o FILE.

    The images are split at random (--split, --seed): one part fits, the
    other reports ECE, NLL and accuracy before and after (and the coverage
    and mean size of conformal sets). Apply the file with
    `twoends predict --calibration FILE` or twoends.load(..., calibration=FILE).
    """
    from ..calibrate.evaluate import collect_logits
    from ..calibrate.fit import fit_calibration

    if model_kwargs.get("calibration"):
        fail("calibrate fits a new calibration on the raw model: drop --calibration")
    if group_level and not model_kwargs.get("groups"):
        fail("--group-level needs the groups: add --groups FILE")
    check_model_options(model_kwargs)  # and -o: exit 2 before the model loads, not after the fit
    check_output_file(output, append=False)
    clf = load_classifier(batch_size=batch_size, **model_kwargs)
    labelled = load_data(data, clf, multilabel=objective is not None and clf.activation == "sigmoid")
    err = stderr_console()
    err.print(f"[dim]calibrating {clf.name} on {labelled.describe()}[/dim]", highlight=False)
    try:
        with progress_bar(err, len(labelled), "predicting", progress) as advance:
            logits, targets, failed, scores = collect_logits(clf, labelled, on_progress=advance, return_ood=True)
        with warnings.catch_warnings(record=True) as caught:  # e.g. a temperature at the edge of its range
            warnings.simplefilter("always")
            fitted = fit_calibration(
                logits,
                targets,
                clf.labels,
                model=clf.name,
                activation=clf.activation,
                method=method,
                conformal=alpha,
                score=score,
                thresholds=objective,
                split=split,
                seed=seed,
                n_bins=n_bins,
                data={
                    "path": str(Path(data).resolve()),
                    "layout": labelled.layout,
                    "n": len(labelled),
                    "n_used": int(len(logits)),
                    "n_failed": len(failed),
                },
                groups=clf.settled.head.groups,
                level="groups" if group_level else "classes",
                ood_tpr=ood_tpr if ood else None,
                ood_method=clf.settled.head.ood_method,
                ood_scores=scores,
            )
    except TwoEndsError as exc:
        fail(str(exc))
    for w in caught:
        err.print(f"[yellow]warning:[/yellow] {w.message}", highlight=False)
    cal = fitted.calibration
    plot_path = None
    if not no_plot and fitted.after is not None:
        plot_path = fitted.plot(plot or default_plot(output, "reliability.png"))
    written = cal.save(output)
    out = {
        "calibration": str(written),
        "plot": str(plot_path) if plot_path else None,
        "model": clf.name,
        "method": cal.method,
        "temperature": cal.temperature,
        **cal.metrics,
    }
    click.echo(
        json.dumps(json_safe(out), indent=2) if fmt == "json" else render(cal, labelled.source), nl=fmt == "json"
    )
    report_failures(err, failed, len(labelled))
    err.print(
        f"calibration written to {written}" + (f"; reliability diagram to {plot_path}" if plot_path else ""),
        highlight=False,
    )


def render(cal, source: str) -> str:
    from rich.table import Table

    m, split = cal.metrics, cal.metrics["split"]
    fitted_on = ", ".join(f"{k} {split[k]}" for k in ("temperature", "conformal", "thresholds") if split.get(k))
    lines = [
        f"split (seed {split['seed']}): {split['fit']} images to fit ({fitted_on or 'nothing fitted'}), "
        f"{split['report']} held out to report; metrics below are on the held-out images only",
    ]
    if cal.thresholds is None:
        lines.append(
            f"temperature T = {cal.temperature:.4f}" + (" (not fitted: --method none)" if cal.method == "none" else "")
        )
    table = Table(title=f"{cal.model} on {source}: held-out split (n={split['report']})", title_justify="left")
    table.add_column("metric")
    columns = ["before", "after"] + (["vector_scaling"] if "vector_scaling" in m else [])
    for c in columns:
        table.add_column(
            {"before": "before", "after": "after", "vector_scaling": "vector scaling (not applied)"}[c], justify="right"
        )
    keys = (
        ROWS
        if cal.thresholds is None
        else (("micro_f1", "micro F1"), ("macro_f1", "macro F1"), ("precision", "precision"), ("recall", "recall"))
    )
    for key, name in keys:
        if m["before"].get(key) is not None:
            table.add_row(name, *(_fmt(m[c].get(key)) for c in columns))
    text = "\n".join(lines) + "\n" + rich_text(table)
    if m.get("level") == "groups":
        text = "fitted on the groups " + ", ".join(cal.groups.names) + " (metrics on groups)\n" + text
    if "ood" in m:
        o = m["ood"]
        text += (
            f"out-of-distribution threshold ({o['method']}): {o['threshold']:.4f}, keeps {o['tpr']:.0%} of the "
            f"fit split; on the held-out split it keeps {o['held_out_kept']:.2%} of {o['n_held_out']} images\n"
        )
    if "conformal" in m:
        c = m["conformal"]
        text += (
            f"conformal sets ({c['score']}, alpha={c['alpha']}): coverage {c['coverage']:.4f} on the held-out "
            f"split (guarantee: >= {1 - c['alpha']:.2f} on average), mean set size {c['mean_set_size']:.2f}\n"
        )
    for label, note in m.get("notes", {}).items():
        text += f"note: {label}: {note}\n"
    return text


def _fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"
