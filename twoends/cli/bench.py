"""``twoends bench``: where the time goes - decode, preprocess, forward, postprocess - and throughput."""

from __future__ import annotations

import json
import resource
import sys
import time

import click

from ._common import fail, load_classifier, model_options


@click.command()
@click.argument("photos", nargs=-1)
@model_options
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option(
    "-n",
    "--count",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Inputs per measurement (photos are cycled).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def bench(photos, batch_size, count, fmt, **model_kwargs) -> None:
    """Time each step of the pipeline on PHOTOS (default: the sample photos of scikit-image).

    The steps are timed inside the real run (``predict_iter`` with a ``PhaseTimes``): the
    same threads, schedule and per-batch processors as ``twoends predict``. Decoding and
    preprocessing run in several threads, so their times are summed over threads.
    """
    from ..process import tune_process
    from ..timing import PHASES, PhaseTimes

    clf = load_classifier(batch_size=batch_size, **model_kwargs)
    payloads = [item.payload for item in clf.plan.items(list(photos))] if photos else _SAMPLES[clf.plan.kind]()
    if not payloads:
        fail("no inputs to time: pass files or folders")
    payloads = [payloads[i % len(payloads)] for i in range(count)]

    list(clf.predict_iter(payloads[:batch_size]))  # warm-up: kernels, caches, first-call allocations
    timings = PhaseTimes()
    t = time.perf_counter()
    failed = sum(not p.ok for p in clf.predict_iter(payloads, timings=timings))
    t_e2e = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = {name: timings.seconds[name] for name in PHASES}
    report = {
        "model": clf.name,
        "backend": clf.backend.describe(),
        # which runtime runs the forward pass and why (--runtime; twoends.runtimes)
        "runtime": (clf.describe().get("runtime") or {}).get("why", "torch (asked, or not a PyTorch model)"),
        "inputs": count,
        "failed": failed,
        "batch_size": batch_size,
        "workers": clf.workers,
        "ms_per_input": {k: 1000 * v / count for k, v in steps.items()},
        "share": {k: v / sum(steps.values()) for k, v in steps.items()},
        "sequential_images_per_s": count / sum(steps.values()),
        "pipelined_images_per_s": count / t_e2e,
        "peak_rss_mb": peak_mb,
        "process": tune_process(),  # what load_classifier set for this process (idempotent: reports only)
    }
    if fmt == "json":
        click.echo(json.dumps(report, indent=2))
        return
    _print(report)


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{report['model']} - {report['backend']}, batch {report['batch_size']}, {report['inputs']} inputs"
    )
    table.add_column("step")
    table.add_column("ms / input", justify="right")
    table.add_column("share", justify="right")
    for step, ms in report["ms_per_input"].items():
        table.add_row(step, f"{ms:.2f}", f"{report['share'][step]:.0%}")
    console = Console()
    console.print(table)
    console.print(
        f"throughput: {report['pipelined_images_per_s']:.1f} inputs/s end to end "
        f"({report['sequential_images_per_s']:.1f} if the steps ran one after another on one core; "
        f"decode and preprocess ran in {report['workers']} threads); "
        f"peak memory {report['peak_rss_mb']:.0f} MB"
    )
    console.print(f"[dim]runtime: {report['runtime']}[/dim]", highlight=False)
    console.print(
        f"[dim]process settings: allocator {report['process']['allocator']}, "
        f"OpenMP {report['process']['openmp']}[/dim]",
        highlight=False,
    )


def _sample_arrays() -> list:
    try:
        from skimage import data
    except ImportError:
        print("scikit-image is not installed: pass photos to time", file=sys.stderr)
        return []
    return [getattr(data, n)() for n in ("chelsea", "coffee", "astronaut", "rocket")]


def _sample_texts() -> list:
    # real sentences of mixed length: the first lines of some standard-library docstrings
    import collections  # noqa: E401
    import difflib
    import json as json_module
    import os
    import pathlib
    import textwrap

    modules = (collections, difflib, json_module, os, pathlib, textwrap)
    return [m.__doc__.strip().split("\n\n")[0] for m in modules if m.__doc__]


# what to time when no inputs are given, by the input plan's kind
_SAMPLES = {"image": _sample_arrays, "text": _sample_texts}
