"""``twoends export --onnx MODEL OUT.onnx``: a model with its two ends, as ONNX plus a sidecar."""

from __future__ import annotations

import click

from ._common import fail, stderr_console


@click.command()
@click.option("--onnx", "to_onnx", is_flag=True, default=True, show_default=True,
              help="Export to ONNX (the one format for now).")
@click.argument("model")
@click.argument("out", type=click.Path(dir_okay=False, writable=True))
@click.option("--opset", type=click.IntRange(min=7), default=None, help="ONNX opset (default: the exporter's).")
@click.option("--exporter", type=click.Choice(["dynamo", "torchscript"]), default="dynamo", show_default=True,
              help="torch.onnx exporter: dynamo (torch.export, the supported one) or torchscript (older, faster).")
@click.option("--labels", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Class names to store in the sidecar instead of the model's own.")
@click.option("--no-check", is_flag=True, help="Skip running the exported graph against PyTorch.")
def export(to_onnx, model, out, opset, exporter, labels, no_check) -> None:
    """Write MODEL (a twoends model name, e.g. efficientnet_lite0) to OUT.onnx.

    The graph gets a dynamic batch axis; OUT.onnx.json beside it holds the
    preprocessing, labels and activation, so `twoends predict -m onnx:OUT.onnx`
    runs with the model's own two ends and without PyTorch.
    """
    import twoends
    from twoends.export import export_onnx

    err = stderr_console()
    try:
        result = export_onnx(model, out, opset=opset, exporter=exporter, labels=labels, check=not no_check)
    except twoends.TwoEndsError as exc:
        fail(str(exc))
    checked = "not checked" if result.max_abs_diff is None else f"max |onnx - torch| logit difference {result.max_abs_diff:.2g}"
    err.print(f"wrote {result.path} (opset {result.opset}, {result.exporter} exporter, {checked})", highlight=False)
    err.print(f"wrote {result.sidecar}", highlight=False)
    click.echo(str(result.path))
