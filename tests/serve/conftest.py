"""Fixtures for the server tests: real photos, and one real ``twoends serve`` process per session.

The server (the default model) listens on 127.0.0.1 on a free port and is
stopped at the end of the session.
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
    port = free_port()
    log_path = tmp_path_factory.mktemp("serve-log") / "server.log"
    proc = start_server(SERVER_ARGS, port, log_path)
    client = Client(port)
    client.proc, client.log_path = proc, log_path
    yield client
    stop_server(proc)
