"""Time limits, overload and per-request heads, with a plain NumPy backend the test controls.

The app runs in-process under uvicorn on 127.0.0.1 (a free port); the
backend's forward pass waits on an event, so "the model is slow" is a state
the test sets, not a sleep. Its logits are a fixed function of the input:
fine for plumbing, never a claim about predictions.
"""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from tests.serve.helpers import Running  # noqa: E402
from twoends import Classifier, Head, ImageSpec  # noqa: E402
from twoends.backends.base import Backend, ModelInfo  # noqa: E402
from twoends.serve import create_app, rehead  # noqa: E402

SPEC = ImageSpec(input_size=(8, 8), resize_size=8)
LABELS = ["red", "green", "blue", "grey"]


class GatedBackend(Backend):
    """Logits from the mean colour of the input; forward waits until ``gate`` is set."""

    def __init__(self, outputs: str = "logits", n: int = 4):
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # set when a batch is in forward (waiting at the gate)
        self.info = ModelInfo(
            name="gated",
            spec=SPEC,
            labels=LABELS[:n] if n > 1 else ["positive"],
            activation="auto",
            outputs=outputs,
            num_outputs=n,
        )
        self.n = n

    def forward(self, batch):
        self.entered.set()
        assert self.gate.wait(20), "the test never opened the gate"
        means = np.asarray(batch, dtype=np.float64).mean(axis=(2, 3))  # [B, 3]
        logits = np.concatenate([means * 3.0, means.mean(axis=1, keepdims=True)], axis=1)[:, : self.n]
        if self.info.outputs == "probabilities":
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return logits.astype(np.float32)


@pytest.fixture()
def backend():
    b = GatedBackend()
    yield b
    b.gate.set()  # never leave a worker thread blocked


def _jpeg(color=(200, 30, 30)) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 24), color).save(buf, "JPEG")
    return buf.getvalue()


def test_a_slow_answer_is_a_504_and_the_server_recovers(backend):
    app = create_app(Classifier(backend), timeout_s=0.5, warmup=False)
    with Running(app) as client:
        backend.gate.clear()
        r = client.post_file("/v1/predict", "red.jpg", _jpeg())
        assert r.status == 504
        assert r.json()["error"]["type"] == "Timeout" and "--timeout-s" in r.json()["error"]["message"]
        backend.gate.set()
        ok = client.post_file("/v1/predict", "red.jpg", _jpeg())
        assert ok.status == 200 and ok.json()["label"] == "red"


def test_overload_is_a_503_at_once(backend):
    app = create_app(Classifier(backend), timeout_s=20, max_batch_size=1, max_queue=2, warmup=False)
    with Running(app) as client, ThreadPoolExecutor(3) as pool:
        backend.gate.clear()
        backend.entered.clear()
        # one in the model first: sent together, a loaded machine may queue all three before the
        # batcher takes the first, and the third is then rightly refused (the queue holds two)
        held = [pool.submit(client.post_file, "/v1/predict", "0.jpg", _jpeg())]
        assert backend.entered.wait(10), "the first request never reached the model"
        held += [pool.submit(client.post_file, "/v1/predict", f"{i}.jpg", _jpeg()) for i in (1, 2)]
        deadline = time.monotonic() + 10
        while app.state.service.batcher.depth < 2:  # one in the model, two waiting
            assert time.monotonic() < deadline, "the requests never queued"
            time.sleep(0.02)
        r = client.post_file("/v1/predict", "one-too-many.jpg", _jpeg())
        assert r.status == 503 and r.headers["retry-after"] == "1"
        assert r.json()["error"]["type"] == "Overloaded" and "limit is 2" in r.json()["error"]["message"]
        backend.gate.set()
        assert [f.result().status for f in held] == [200, 200, 200]


def test_a_stalled_body_is_a_408(backend):
    app = create_app(Classifier(backend), timeout_s=0.5, warmup=False)
    with Running(app) as client:
        with socket.create_connection(("127.0.0.1", client.port), timeout=20) as s:
            s.sendall(
                b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                b"Content-Length: 1000\r\n\r\n" + b"\xff\xd8" * 5
            )  # and then nothing
            reply = s.recv(65536)
        assert reply.startswith(b"HTTP/1.1 408") and b"BodyTimeout" in reply
        assert client.post_file("/v1/predict", "ok.jpg", _jpeg()).status == 200


def test_the_page_and_docs_are_served_by_the_app(backend):
    with Running(create_app(Classifier(backend), warmup=True)) as client:
        assert client.get("/v2/health/ready").json() == {"ready": True}
        assert b"temperature" in client.get("/").body
        assert client.get("/docs").status == 200


# --- per-request temperature and top-k: a fresh Head on the stored logits -------------------


def _assert_same(got: dict, want: dict) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if key == "top_k":
            assert [(c["index"], c["label"]) for c in got[key]] == [(c["index"], c["label"]) for c in value]
            np.testing.assert_allclose(
                [c["probability"] for c in got[key]], [c["probability"] for c in value], rtol=1e-6
            )
        elif key in ("logits", "probabilities"):
            np.testing.assert_allclose(got[key], value, rtol=1e-6, atol=1e-7)
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-7), key
        else:
            assert got[key] == value, key


def _reference(backend, photos, temperature, top_k):
    """What a classifier built with these settings predicts (the tested Head path)."""
    return Classifier(backend, temperature=temperature, top_k=top_k).predict(photos)


@pytest.mark.parametrize("outputs,n", [("logits", 4), ("probabilities", 4), ("logits", 1)])
def test_rehead_equals_a_classifier_built_with_those_settings(outputs, n, sample_photos):
    backend = GatedBackend(outputs=outputs, n=n)
    photos = [sample_photos[name] for name in sorted(sample_photos)]
    clf = Classifier(backend)
    base = clf.predict(photos)
    for temperature, top_k in [(2.0, 2), (0.3, 4), (1.0, 1)]:
        got = rehead(clf, base, temperature=temperature, top_k=top_k)
        want = _reference(backend, photos, temperature, top_k)
        for g, w in zip(got, want):
            _assert_same(g.to_dict(include_vectors=True), w.to_dict(include_vectors=True))
            assert g.temperature == temperature
    # the shared head is untouched
    assert clf.head.temperature == 1.0 and clf.head.top_k == 5


def test_rehead_keeps_error_rows_and_the_head_settings(sample_photos):
    backend = GatedBackend()
    clf = Classifier(backend, labels=["r", "g", "b", "k"])
    preds = clf.predict([sample_photos["chelsea"], b"not an image", sample_photos["coffee"]])
    assert [p.ok for p in preds] == [True, False, True]
    got = rehead(clf, preds, temperature=3.0)
    assert got[1] is preds[1]
    assert {c.label for p in (got[0], got[2]) for c in p.top_k} <= {"r", "g", "b", "k"}
    assert isinstance(clf.head, Head) and clf.head.temperature == 1.0
