"""``twoends predict``: classify files, folders and globs with any model."""

from __future__ import annotations

import glob
import os
import sys
from contextlib import ExitStack
from functools import partial
from pathlib import Path

import click

from ..errors import TwoEndsError
from ..resume import completed_inputs, input_key
from ..writers import CSV_COLUMNS, FORMATS, ParquetWriter, format_for_path, make_writer
from ._common import check_model_options, check_output_file, fail, load_classifier, model_options, stderr_console


@click.command()
@click.argument("paths", nargs=-1, required=True)
@model_options
@click.option(
    "--top-k", "top_k", type=click.IntRange(min=1), default=5, show_default=True, help="Classes kept per input."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Output format. Default: a table on a terminal, JSON lines when piped, else by the extension of -o FILE "
    "(html: one page with thumbnails, sortable).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to FILE instead of stdout.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--include-vectors", is_flag=True, help="Also write the full logits and probabilities of every input.")
@click.option("--resume", is_flag=True, help="Skip inputs already in -o FILE (jsonl or csv) and append the rest.")
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr (default: on a terminal, for more than 5 inputs).",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="ray: predict on Ray Data, one model per actor; same rows, same order, --resume works.",
)
@click.option(
    "--ray-address",
    default=None,
    help="With --engine ray: the cluster to join (default: RAY_ADDRESS, else a local Ray).",
)
def predict(
    paths, top_k, fmt, output, batch_size, include_vectors, resume, progress, engine, ray_address, **model_kwargs
) -> None:
    """Classify PATHS (files, folders - searched recursively - or glob patterns): images, or audio clips
    for an audio model (a table shows each clip's segments; JSON rows carry them).

    Every input gets exactly one row: a prediction, or an error row that says
    what went wrong; the exit status is 1 when any input failed.
    """
    if ray_address and engine != "ray":
        fail("--ray-address is for --engine ray: add --engine ray, or drop --ray-address")
    # everything that can be checked without the model is checked first: a wrong option or
    # path is exit 2 in a moment, never a traceback after a model has loaded
    check_model_options(model_kwargs)
    fmt = (
        fmt
        or (format_for_path(output) if output else None)
        or ("table" if sys.stdout.isatty() and not output else "jsonl")
    )
    if output:
        check_output_file(output, append=resume)
    if fmt == "parquet":
        _need_pyarrow()
    done: set[str] = set()
    if resume:
        if not output:
            fail("--resume needs -o FILE: it skips the inputs already written there")
        columns = CSV_COLUMNS + (["logits", "probabilities"] if include_vectors else [])
        try:
            done = {input_key(i) for i in completed_inputs(output, fmt, columns)}
        except TwoEndsError as exc:
            fail(str(exc))
    if not any(_has_files(p) for p in paths):  # before the model: an empty folder is empty for any kind
        fail(
            f"no images found in {', '.join(paths)} (no files at all): expected image files (or audio/text files "
            "for such models), folders of them or glob patterns"
        )
    on_ray = _ray_engine() if engine == "ray" else None  # a missing Ray fails here, before any output is opened
    clf = load_classifier(
        top_k=top_k, batch_size=batch_size, **model_kwargs
    )  # also checks the options before Ray starts
    inputs, found, total = _inputs(clf, paths, done)
    if found == 0:
        kind = "images" if clf.plan.kind == "image" else f"{clf.plan.kind} files"
        fail(f"no {kind} found in {', '.join(paths)}: expected {kind}, folders of them or glob patterns")
    skipped = found - total
    err = stderr_console()
    if model_kwargs.get("compile_model") and not on_ray:
        err.print(
            "[dim]compiling the model on the first batch (tens of seconds on a small CPU)...[/dim]", highlight=False
        )
    if skipped:
        err.print(f"[dim]resuming: {skipped} inputs already in {output}, {total} to go[/dim]", highlight=False)
    show = progress if progress is not None else (err.is_terminal and total > 5)
    failed = 0
    with ExitStack() as stack:
        writer = _open_writer(stack, fmt, output, resume, top_k, include_vectors, clf.settled.describe())
        bar = _progress(err, total) if show else None
        if bar is not None:
            stack.enter_context(bar)
            task = bar.add_task("predicting", total=total)
        if on_ray:  # each actor loads the model with the same options; rows come back in input order
            model = partial(load_classifier, top_k=top_k, batch_size=batch_size, **model_kwargs)
            preds = on_ray(
                inputs,
                model,
                address=ray_address,
                batch_size=batch_size,
                include_vectors=include_vectors,
                kind=clf.plan.kind,
            )
        else:
            preds = clf.predict_iter(inputs)
        try:
            for pred in preds:
                failed += not pred.ok
                writer.write(pred)
                if bar is not None:
                    bar.advance(task)
            if bar is not None:
                bar.stop()
            writer.close()
        except OSError as e:  # a full disk, a removed folder: say so, and how to carry on
            again = " (run again with --resume to carry on)" if fmt in ("jsonl", "csv") and output else ""
            fail(f"writing {output or 'the output'} failed: {e.strerror or e}{again}")
    ok = total - failed
    msg = f"{total} input{'s' * (total != 1)}: {ok} predicted, {failed} failed"
    if skipped:
        msg += f" ({skipped} done before)"
    err.print(f"[red]{msg}[/red] (see the error rows)" if failed else f"[dim]{msg}[/dim]", highlight=False)
    sys.exit(1 if failed else 0)


def _inputs(clf, paths, done):
    """(what to predict, how many inputs were found, how many are left after --resume).

    A text model reads a file named on the command line as its text (the row's input is
    the path); an argument that is no file is the text itself. Image models take paths,
    folders and globs. Inputs from the command line are paths, and a path's item id is
    the path itself, so resuming can hand on the ids of the inputs not yet done.
    """
    if clf.plan.kind == "text":
        args = [Path(p) if os.path.isfile(p) else p for p in paths]
        keep = [a for a, item in zip(args, clf.plan.items(args), strict=True) if input_key(item.id) not in done]
        return keep, len(args), len(keep)
    found = total = 0
    items = clf.plan.items  # what a path, folder or glob yields for this model's kind of input
    for item in items(list(paths)):  # a cheap walk: names only, nothing decoded
        found += 1
        total += input_key(item.id) not in done
    inputs = (item.payload for item in items(list(paths)) if input_key(item.id) not in done) if done else list(paths)
    return inputs, found, total


def _has_files(path: str) -> bool:
    """False for a folder without a single file below it, or a glob that matches nothing (cheap: stops at one)."""
    if os.path.isdir(path):
        return any(files for _, _, files in os.walk(path, followlinks=False))
    if any(c in path for c in "*?["):
        return next(glob.iglob(path, recursive=True), None) is not None
    return True  # a file, or a missing one: its own error row (or, for a text model, the text itself)


def _need_pyarrow():
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        from ..extras import missing

        fail(str(missing("Parquet output", "pyarrow", alternative="or write .jsonl / .csv")))


def _ray_engine():
    try:
        from ..distributed.ray import predict_paths
    except TwoEndsError as exc:  # Ray is not installed: the message says how to get it
        fail(str(exc))
    return predict_paths


def _open_writer(stack, fmt, output, resume, top_k, include_vectors, settings):
    if fmt == "parquet":
        if not output:
            fail("Parquet is a binary format: write it to a file with -o out.parquet")
        try:
            return ParquetWriter(output, include_vectors)
        except TwoEndsError as exc:  # pyarrow missing: a usage error, before any input is read
            fail(str(exc))
    appending = resume and output and os.path.exists(output) and os.path.getsize(output) > 0
    mode = "a" if appending else "w"
    stream = stack.enter_context(open(output, mode, encoding="utf-8", newline="")) if output else sys.stdout
    return make_writer(
        fmt, stream, top_k=top_k, include_vectors=include_vectors, header=not appending, settings=settings
    )


def _progress(console, total):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
