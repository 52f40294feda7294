"""Serve a classifier over HTTP and gRPC: the Open Inference Protocol v2, ``/v1/predict``, metrics and a web page.

Needs FastAPI and uvicorn, and grpcio for gRPC (``pip install "twoends[serve]"``);
``import twoends`` never imports this package, and this package imports grpc
only when gRPC is asked for (``create_app(..., grpc_port=...)``).

    from twoends.serve import create_app
    app = create_app(twoends.load("efficientnet_lite0"), max_batch_size=8, max_delay_ms=5)
"""

from .app import create_app
from .batcher import DynamicBatcher
from .service import ServeConfig, Service, rehead

__all__ = ["DynamicBatcher", "ServeConfig", "Service", "create_app", "rehead"]
