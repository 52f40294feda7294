"""Fixtures for the server tests: real photos, and one real ``twoends serve`` process per session.

The server (the default model) listens on 127.0.0.1 on a free port, HTTP and
gRPC (``--grpc-port``), and is stopped at the end of the session.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tests.serve.helpers import ROOT, SERVER_ARGS, Client, free_port, start_server, stop_server


@pytest.fixture(scope="session")
def sample_photos(tmp_path_factory) -> dict[str, Path]:
    """The real photos (skimage + matplotlib) as JPEG files, written by scripts/sample_photos.py."""
    spec = importlib.util.spec_from_file_location("sample_photos", ROOT / "scripts" / "sample_photos.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    written, skipped = module.write_samples(tmp_path_factory.mktemp("serve-photos"))
    assert not skipped, skipped
    return {p.stem: p for p in written}


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """A running ``twoends serve`` (default model) and a Client for it; stopped after the session."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    port, grpc_port = free_port(), free_port()
    log_path = tmp_path_factory.mktemp("serve-log") / "server.log"
    proc = start_server([*SERVER_ARGS, "--grpc-port", str(grpc_port)], port, log_path)
    client = Client(port)
    client.proc, client.log_path, client.grpc_port = proc, log_path, grpc_port
    yield client
    stop_server(proc)


@pytest.fixture(scope="session")
def cli_predictions(sample_photos) -> dict[str, dict]:
    """``twoends predict`` on every sample photo (top 5, JSON): the numbers every client must get."""
    import json
    import subprocess
    import sys

    paths = [str(p) for p in sample_photos.values()]
    run = subprocess.run(
        [sys.executable, "-m", "twoends", "predict", *paths, "--format", "json", "--top-k", "5"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return {Path(row["input"]).stem: row for row in json.loads(run.stdout)}
