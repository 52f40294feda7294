"""What the commands share: the model options and loading a classifier with them."""

from __future__ import annotations

import functools
import sys

import click

DEFAULT_MODEL = "efficientnet_lite0"


def model_options(fn):
    """--model, --device, --labels, --temperature, --workers, --max-pixels, --max-seconds for any command that runs a model."""

    @click.option("-m", "--model", default=DEFAULT_MODEL, show_default=True, help="A model name (see `twoends models`).")
    @click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
    @click.option("--labels", "labels", type=click.Path(exists=True, dir_okay=False), default=None,
                  help="Class names (.txt one per line, or .json) instead of the model's own.")
    @click.option("--temperature", type=float, default=None, help="Divide logits by T before the activation (default 1).")
    @click.option("--workers", type=click.IntRange(min=1), default=None, help="Decoding threads (default: one per core).")
    @click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
                  help="bf16: autocast on CPUs with AVX-512 BF16/AMX and on GPUs (faster; see bench/RESULTS.md for agreement).")
    @click.option("--compile/--no-compile", "compile_model", default=False, show_default=True,
                  help="torch.compile the model (compiles on the first batch, tens of seconds; then faster: for big jobs).")
    @click.option("--calibration", type=click.Path(dir_okay=False), default=None,
                  help="A calibration file from `twoends calibrate`: its temperature and conformal sets are applied.")
    @click.option("--max-pixels", type=click.IntRange(min=1), default=None, help="Refuse images with more pixels (default 89,478,485).")
    @click.option("--max-seconds", type=click.FloatRange(min=0, min_open=True), default=None,
                  help="Refuse audio clips longer than this (default 600).")
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    # soft_wrap: the message stays one line (greppable, and a path in it stays whole)
    stderr_console().print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def load_classifier(*, model, device, labels, temperature, workers, max_pixels, max_seconds=None, precision="fp32",
                    calibration=None, compile_model=False, **options):
    """twoends.load with the command-line options; a TwoEndsError becomes a clean message and exit 2.

    A command is a whole process running one model: it keeps freed memory for reuse and
    shortens OpenMP's spinning (twoends.process; before torch is imported).
    """
    from twoends.process import tune_process

    tune_process()
    import twoends

    extra = {"max_pixels": max_pixels} if max_pixels else {}
    if max_seconds:
        extra["max_seconds"] = max_seconds
    try:
        run = twoends.RunOptions(device=device, precision=precision, compile=compile_model)
        return twoends.load(model, run=run, labels=labels, temperature=temperature, workers=workers,
                            calibration=calibration, **extra, **options)
    except twoends.TwoEndsError as exc:
        fail(str(exc))
