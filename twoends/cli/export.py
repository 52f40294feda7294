"""``twoends export --onnx MODEL OUT.onnx`` / ``--tflite MODEL OUT.tflite``: a model with its two ends,
as a model file plus a sidecar."""

from __future__ import annotations

import click

from ._common import fail, stderr_console


@click.command()
@click.option("--onnx", "fmt", flag_value="onnx", default=True, help="Export to ONNX (PyTorch models; the default).")
@click.option("--tflite", "fmt", flag_value="tflite", help="Export to TFLite (TensorFlow and Keras models).")
@click.argument("model")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--opset", type=click.IntRange(min=7), default=None, help="ONNX opset (default: the exporter's).")
@click.option(
    "--exporter",
    type=click.Choice(["dynamo", "torchscript"]),
    default=None,
    help="ONNX: torch.onnx exporter, dynamo (torch.export, the supported one; default) or torchscript (older, faster).",
)
@click.option(
    "--representative",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="A folder of your own images to calibrate an integer model on. TFLite: implies --quantize uint8 "
    "unless --quantize says int8; ONNX: needed by --quantize int8.",
)
@click.option(
    "--quantize",
    type=click.Choice(["uint8", "int8"]),
    default=None,
    help="TFLite: full-integer ends of this type (needs --representative). ONNX: int8 (ONNX Runtime static "
    "quantization, opt-in: the numbers change, and the export measures by how much). Without it, float.",
)
@click.option(
    "--calibration",
    type=click.Choice(["minmax", "percentile", "entropy"]),
    default=None,
    help="ONNX --quantize int8: how activation ranges are taken from the representative images (default minmax).",
)
@click.option(
    "--check-images",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="A folder of images to check an integer model against the float one on (default: the representative images).",
)
@click.option(
    "--fold-batchnorm",
    is_flag=True,
    help="TFLite: fold the BatchNormalization layers of a Sequential Keras model into its weights first "
    "(exact; the converter cannot fold one that follows a ReLU, and it costs integer accuracy).",
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Class names to store in the sidecar instead of the model's own.",
)
@click.option("--no-check", is_flag=True, help="Skip running the exported file against the source model.")
def export(
    fmt,
    model,
    out,
    opset,
    exporter,
    representative,
    quantize,
    calibration,
    check_images,
    fold_batchnorm,
    labels,
    no_check,
) -> None:
    """Write MODEL (a twoends model name, e.g. efficientnet_lite0) to OUT.onnx or OUT.tflite.

    OUT.onnx.json (OUT.tflite.json) beside it holds the preprocessing, labels and
    activation, so `twoends predict -m onnx:OUT.onnx` (tflite:OUT.tflite) runs
    with the model's own two ends and without the framework it came from.
    """
    import twoends

    err = stderr_console()
    onnx_only = {"--opset": opset, "--exporter": exporter, "--calibration": calibration}
    tflite_only = {"--fold-batchnorm": fold_batchnorm or None}
    if fmt == "onnx" and quantize == "uint8":
        fail("--onnx quantizes to int8 only (uint8 activations, int8 weights): use --quantize int8")
    if fmt == "onnx" and (representative or check_images or calibration) and quantize is None:
        fail(
            "--representative, --check-images and --calibration go with --quantize int8; without it the ONNX export is float32"
        )
    wrong = [k for k, v in (tflite_only if fmt == "onnx" else onnx_only).items() if v is not None]
    if wrong:
        fail(
            f"{', '.join(wrong)} {'is' if len(wrong) == 1 else 'are'} not an option of --{fmt} export; "
            f"{'use --tflite' if fmt == 'onnx' else 'use --onnx'} for {'it' if len(wrong) == 1 else 'them'}"
        )
    try:
        if fmt == "tflite":
            from twoends.export import export_tflite

            quantize = quantize or ("uint8" if representative else None)
            result = export_tflite(
                model,
                out,
                quantize=quantize,
                representative=representative,
                check_images=check_images,
                fold_batchnorm=fold_batchnorm,
                labels=labels,
                check=not no_check,
            )
        else:
            from twoends.export import export_onnx

            result = export_onnx(
                model,
                out,
                opset=opset,
                exporter=exporter or "dynamo",
                labels=labels,
                check=not no_check,
                quantize=quantize,
                representative=representative,
                check_images=check_images,
                calibration=calibration or "minmax",
            )
    except twoends.TwoEndsError as exc:
        fail(str(exc))
    if fmt == "tflite":
        c = result.check
        checked = (
            "not checked"
            if c is None
            else f"top-1 agreement {c['top1_agreement']:.1%} with the source model on {c['images']} images"
            if "top1_agreement" in c
            else f"max |tflite - source| difference {c['max_abs_diff']:.2g}"
        )
        err.print(f"wrote {result.path} ({result.quantize or 'float'}, {checked})", highlight=False)
    else:
        checked = (
            "not checked"
            if result.max_abs_diff is None
            else f"max |onnx - torch| logit difference {result.max_abs_diff:.2g}"
        )
        err.print(f"wrote {result.path} (opset {result.opset}, {result.exporter} exporter, {checked})", highlight=False)
        q = result.quantization_check
        if q is not None:
            speed = q["inputs_per_s"]
            err.print(
                f"int8: top-1 agreement {q['top1_agreement']:.1%} with the float32 graph on {q['images']} images, "
                f"max |dp| {q['max_dp']:.3g}; {speed['int8']:g} inputs/s vs {speed['float32']:g} in float32 "
                f"({speed['int8'] / speed['float32']:.2f}x, batch 8, this machine)",
                highlight=False,
            )
    err.print(f"wrote {result.sidecar}", highlight=False)
    click.echo(str(result.path))
