"""What the commands share: the model options and loading a classifier with them."""

from __future__ import annotations

import functools
import os
import sys

import click

DEFAULT_MODEL = "efficientnet_lite0"


def model_options(fn):
    """--model, --device, --labels, --temperature, --workers, --max-pixels, --max-seconds for any command that runs a model."""

    @click.option(
        "-m", "--model", default=DEFAULT_MODEL, show_default=True, help="A model name (see `twoends models`)."
    )
    @click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
    @click.option(
        "--labels",
        "labels",
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="Class names (.txt one per line, or .json) instead of the model's own.",
    )
    @click.option(
        "--temperature", type=float, default=None, help="Divide logits by T before the activation (default 1)."
    )
    @click.option(
        "--workers", type=click.IntRange(min=1), default=None, help="Decoding threads (default: one per core)."
    )
    @click.option(
        "--precision",
        type=click.Choice(["fp32", "bf16", "fp16"]),
        default="fp32",
        show_default=True,
        help="bf16: autocast on CPUs with AVX-512 BF16/AMX and on GPUs (faster; see bench/RESULTS.md for agreement).",
    )
    @click.option(
        "--compile/--no-compile",
        "compile_model",
        default=False,
        show_default=True,
        help="torch.compile the model (compiles on the first batch, tens of seconds; then faster: for big jobs).",
    )
    @click.option(
        "--runtime",
        type=click.Choice(["auto", "torch", "onnxruntime", "openvino"]),
        default=None,
        help="What runs a PyTorch model: auto (default, or TWOENDS_RUNTIME) takes the fastest that gives "
        "PyTorch's numbers (its graph exported once, cached, checked on real inputs).",
    )
    @click.option(
        "--calibration",
        type=click.Path(dir_okay=False),
        default=None,
        help="A calibration file from `twoends calibrate`: its temperature and conformal sets are applied.",
    )
    @click.option(
        "--max-pixels",
        type=click.IntRange(min=1),
        default=None,
        help="Refuse images with more pixels (default 89,478,485).",
    )
    @click.option(
        "--groups",
        type=click.Path(dir_okay=False),
        default=None,
        help='Label groups (JSON {"cat": [281, 282, ...], "dog": ["beagle", ...]}): each row gets their probabilities.',
    )
    @click.option(
        "--ood-method",
        type=click.Choice(["energy", "max_logit", "max_probability"]),
        default=None,
        help="Out-of-distribution score of every row (default energy; max_probability for models that return probabilities).",
    )
    @click.option(
        "--member-calibration",
        "member_calibration",
        multiple=True,
        metavar="NAME=FILE",
        help="Ensembles (--model A+B): a member's own calibration file (repeatable).",
    )
    @click.option(
        "--combine",
        type=click.Choice(["probabilities", "logits"]),
        default=None,
        help="Ensembles: average the members' probabilities (default) or their logits.",
    )
    @click.option(
        "--weights", default=None, metavar="W1,W2,...", help="Ensembles: one weight per member (default equal)."
    )
    @click.option(
        "--max-seconds",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Refuse audio clips longer than this (default 600).",
    )
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


def stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    from rich.markup import escape

    # soft_wrap: the message stays one line (greppable, and a path in it stays whole); escape: a message's
    # own brackets (pip install "twoends[serve]") are text, not rich markup
    stderr_console().print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(code)


def check_model_options(model_kwargs: dict) -> None:
    """Check the model options that need no model (temperature, labels, calibration file) and exit 2
    with the fix when one is wrong; a calibration file is loaded here, once, and handed on."""
    import twoends
    from twoends.head.arrays import check_temperature

    try:
        if model_kwargs.get("temperature") is not None:
            check_temperature(model_kwargs["temperature"])
        if model_kwargs.get("labels") is not None:
            from twoends.labels import LabelMap

            LabelMap.from_any(model_kwargs["labels"])
        if model_kwargs.get("calibration") is not None:
            if model_kwargs.get("temperature") is not None:
                fail("--calibration sets the temperature itself: drop --temperature (or the calibration file)")
            from twoends.calibrate.calibration import load_calibration

            model_kwargs["calibration"] = load_calibration(model_kwargs["calibration"])
    except twoends.TwoEndsError as exc:
        fail(str(exc))


def check_output_file(path: str, *, append: bool) -> None:
    """-o FILE can be written (checked without truncating it): exit 2 now, not after the model loaded."""
    import stat

    if os.path.isdir(path):
        fail(f"-o {path} is a folder; expected a file name, e.g. -o {os.path.join(path, 'predictions.jsonl')}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        fail(f"cannot write -o {path}: the folder {folder} does not exist; create it first")
    existed = os.path.lexists(path)
    if existed and not os.path.exists(path):
        fail(f"cannot write -o {path}: it is a broken link or a symlink loop")
    if existed and stat.S_ISFIFO(os.stat(path).st_mode):
        fail(f"-o {path} is a FIFO (named pipe); expected a file (or leave -o out to write to stdout)")
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        fail(f"cannot write -o {path}: {e.strerror or e}; check the folder's permissions and free space")
    if not existed:
        os.unlink(path)  # made only to test it: a run that stops before writing leaves nothing behind


def load_classifier(
    *,
    model,
    device,
    labels,
    temperature,
    workers,
    max_pixels,
    max_seconds=None,
    precision="fp32",
    calibration=None,
    compile_model=False,
    groups=None,
    ood_method=None,
    member_calibration=(),
    combine=None,
    weights=None,
    runtime=None,
    **options,
):
    """twoends.load with the command-line options; a TwoEndsError becomes a clean message and exit 2.

    ``--model A+B`` is an ensemble of A and B (``twoends.ensemble``): each member is
    loaded with the run options and its own ``--member-calibration NAME=FILE``; the
    head options (temperature, calibration, groups, top-k) are the ensemble's.
    A command is a whole process running one model: it keeps freed memory for reuse and
    shortens OpenMP's spinning (twoends.process; before torch is imported).
    """
    from twoends.process import tune_process

    given = {"labels": labels, "temperature": temperature, "calibration": calibration}
    check_model_options(given)  # every command: a wrong option is exit 2 before the model loads
    calibration = given["calibration"]
    tune_process()
    import twoends

    extra = {"max_pixels": max_pixels} if max_pixels else {}
    names = model.split("+") if "+" in model else [model]
    member_extra = {**extra, "max_seconds": max_seconds} if max_seconds else extra
    try:
        run = twoends.RunOptions.of(None, device=device, precision=precision, compile=compile_model, runtime=runtime)
        if len(names) == 1:
            if member_calibration or combine or weights:
                fail("--member-calibration, --combine and --weights are for ensembles: --model A+B")
            return twoends.load(
                model,
                run=run,
                labels=labels,
                temperature=temperature,
                workers=workers,
                calibration=calibration,
                groups=groups,
                ood_method=ood_method,
                **member_extra,
                **options,
            )
        if labels:
            fail("--labels applies to one model; an ensemble's members keep their own labels (aligned by name)")
        own = _member_calibrations(member_calibration, names)
        members = [twoends.load(n, run=run, workers=workers, calibration=own.get(n), **member_extra) for n in names]
        return twoends.ensemble(
            members,
            _weights(weights),
            combine or "probabilities",
            temperature=temperature,
            calibration=calibration,
            groups=groups,
            ood_method=ood_method,
            workers=workers,
            **extra,
            **options,
        )
    except twoends.TwoEndsError as exc:
        fail(str(exc))


def _member_calibrations(given, names) -> dict:
    out = {}
    for entry in given:
        name, sep, path = entry.partition("=")
        if not sep or not path:
            fail(f"--member-calibration takes NAME=FILE (e.g. {names[0]}=calibration.json), got {entry!r}")
        if name not in names:
            fail(f"--member-calibration {entry!r}: {name!r} is not a member of this ensemble ({', '.join(names)})")
        out[name] = path
    return out


def _weights(text):
    if text is None:
        return None
    try:
        return [float(w) for w in text.split(",")]
    except ValueError:
        fail(f"--weights takes numbers separated by commas (e.g. 2,1), got {text!r}")
