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
@click.option("-n", "--count", type=click.IntRange(min=1), default=64, show_default=True, help="Inputs per measurement (photos are cycled).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def bench(photos, batch_size, count, fmt, **model_kwargs) -> None:
    """Time each step of the pipeline on PHOTOS (default: the sample photos of scikit-image)."""
    from ..preprocess import decode_image, iter_items
    from ..process import tune_process

    clf = load_classifier(batch_size=batch_size, **model_kwargs)
    payloads = [item.payload for item in iter_items(list(photos))] if photos else _sample_arrays()
    if not payloads:
        fail("no photos to time: pass image files or folders")
    payloads = [payloads[i % len(payloads)] for i in range(count)]

    def stage(fn, items):
        t = time.perf_counter()
        out = [fn(x) for x in items]
        return out, time.perf_counter() - t

    list(clf.predict_iter(payloads[:batch_size]))  # warm-up: kernels, caches, first-call allocations
    images, t_decode = stage(lambda p: decode_image(p, max_pixels=clf.max_pixels, draft_size=clf.plan.draft_size), payloads)
    inputs, t_pre = stage(clf.plan, images)
    batches = [inputs[i : i + batch_size] for i in range(0, len(inputs), batch_size)]
    t_fwd = t_post = 0.0
    for b in batches:
        t = time.perf_counter()
        logits = clf.backend.forward(clf.backend.collate(b))
        _ = logits.sum().item() if hasattr(logits, "sum") else logits  # wait for asynchronous devices
        t_fwd += time.perf_counter() - t
        t = time.perf_counter()
        clf.head(logits)
        t_post += time.perf_counter() - t
    t = time.perf_counter()
    for _ in clf.predict_iter(payloads):
        pass
    t_e2e = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = {"decode": t_decode, "preprocess": t_pre, "forward": t_fwd, "postprocess": t_post}
    report = {
        "model": clf.name,
        "backend": clf.backend.describe(),
        "inputs": count,
        "batch_size": batch_size,
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

    table = Table(title=f"{report['model']} - {report['backend']}, batch {report['batch_size']}, {report['inputs']} inputs")
    table.add_column("step")
    table.add_column("ms / input", justify="right")
    table.add_column("share", justify="right")
    for step, ms in report["ms_per_input"].items():
        table.add_row(step, f"{ms:.2f}", f"{report['share'][step]:.0%}")
    console = Console()
    console.print(table)
    console.print(
        f"throughput: {report['pipelined_images_per_s']:.1f} images/s pipelined "
        f"({report['sequential_images_per_s']:.1f} if the steps ran one after another); "
        f"peak memory {report['peak_rss_mb']:.0f} MB"
    )
    console.print(f"[dim]process settings: allocator {report['process']['allocator']}, "
                  f"OpenMP {report['process']['openmp']}[/dim]", highlight=False)


def _sample_arrays() -> list:
    try:
        from skimage import data
    except ImportError:
        print("scikit-image is not installed: pass photos to time", file=sys.stderr)
        return []
    return [getattr(data, n)() for n in ("chelsea", "coffee", "astronaut", "rocket")]
