"""``twoends serve``: a model behind HTTP, with dynamic batching and a web page."""

from __future__ import annotations

import click

from ._common import fail, load_classifier, model_options, stderr_console


@click.command()
@model_options
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every interface)."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--top-k", "top_k", type=click.IntRange(min=1), default=5, show_default=True, help="Default classes per answer."
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(min=1),
    default=8,
    show_default=True,
    help="Most inputs per forward pass; 1 turns batching off.",
)
@click.option(
    "--max-delay-ms",
    type=click.FloatRange(min=0),
    default=5.0,
    show_default=True,
    help="Longest an input waits for others to share its batch.",
)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    help="Largest request body accepted.",
)
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Answer 504 when a request takes longer.",
)
@click.option(
    "--max-queue",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Inputs allowed to wait; past it, answer 503 at once.",
)
@click.option(
    "--max-inputs",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Most inputs in one request (checked from its shape before decoding; 413 past it).",
)
@click.option(
    "--max-json-elements",
    type=click.IntRange(min=1),
    default=250_000,
    show_default=True,
    help="Most numbers/strings in one JSON body (checked before parsing; 413 past it: send binary tensors).",
)
@click.option(
    "--header-timeout-s",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Drop a connection whose request head has not arrived in this time.",
)
@click.option(
    "--keep-alive-s",
    type=click.FloatRange(min=1),
    default=5.0,
    show_default=True,
    help="Drop an idle keep-alive connection after this time.",
)
@click.option(
    "--grpc-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Also serve the Open Inference Protocol over gRPC on this port (same host, batcher and limits).",
)
@click.option("--access-log/--no-access-log", default=True, show_default=True, help="Log one line per request.")
def serve(
    host,
    port,
    top_k,
    max_batch_size,
    max_delay_ms,
    max_body_mb,
    timeout_s,
    max_queue,
    max_inputs,
    max_json_elements,
    header_timeout_s,
    keep_alive_s,
    grpc_port,
    access_log,
    **model_kwargs,
) -> None:
    """Serve a model over HTTP until interrupted (Ctrl-C).

    \b
    GET  /                         a web page: drop an image, see the top-k
    POST /v1/predict               one image (multipart 'file', raw body, or JSON base64) -> Prediction
    POST /v2/models/NAME/infer     the Open Inference Protocol v2 (Triton's and KServe's clients)
    GET  /v2/health/ready          readiness; /v2/health/live, /v2/models/NAME[/config]
    --grpc-port PORT               the same protocol over gRPC
    GET  /metrics                  Prometheus metrics
    GET  /docs                     the OpenAPI documentation
    """
    try:
        import uvicorn

        from ..serve import ServeConfig, create_app
        from ..serve.http import uvicorn_config

        if grpc_port is not None:
            import grpc  # noqa: F401
    except ImportError as exc:
        from ..extras import missing

        fail(str(missing("twoends serve", exc.name or "fastapi")))
    clf = load_classifier(top_k=top_k, batch_size=max_batch_size, **model_kwargs)
    try:
        config = ServeConfig(
            max_batch_size=max_batch_size,
            max_delay_ms=max_delay_ms,
            max_body_mb=max_body_mb,
            timeout_s=timeout_s,
            max_queue=max_queue,
            max_inputs=max_inputs,
            max_json_elements=max_json_elements,
            header_timeout_s=header_timeout_s,
            keep_alive_s=keep_alive_s,
        )
    except ValueError as exc:
        fail(str(exc))
    app = create_app(clf, config, grpc_port=grpc_port, grpc_host=host)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    also = f", gRPC on {shown}:{grpc_port}" if grpc_port is not None else ""
    stderr_console().print(
        f"[bold]twoends[/bold] serving {clf.name} on http://{shown}:{port}{also}  (docs: /docs)", highlight=False
    )
    # one process, one event loop (HTTP and gRPC): the model runs in one worker thread, decoding in a pool
    server = uvicorn.Server(uvicorn_config(app, host, port, config, access_log=access_log, log_level="info"))
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn has stopped gracefully, then re-raised the Ctrl-C / SIGINT it caught: a clean exit
