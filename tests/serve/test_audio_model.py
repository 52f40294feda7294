"""An audio model behind the server: a clip as a multipart upload, a raw body, or OIP BYTES; segments in the answer.

The bundled silero_vad on espeak-ng speech placed in noise; served in-process on 127.0.0.1.
"""

from __future__ import annotations

import base64
import importlib.util

import numpy as np
import pytest

pytest.importorskip("fastapi")
if importlib.util.find_spec("silero_vad") is None or importlib.util.find_spec("soundfile") is None:
    pytest.skip("the audio model needs silero-vad and soundfile", allow_module_level=True)

from tests import audio  # noqa: E402
from tests.serve.helpers import Running  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clips")
    voice = audio.speech(rate=22050, tmp=tmp)
    speech = audio.write(tmp / "speech.ogg", audio.place(voice, audio.noise(7, 22050), 1.0, 22050), 22050)
    tone = audio.write(tmp / "tone.wav", audio.tone(2, 8000), 8000)
    return {"speech": speech.read_bytes(), "tone": tone.read_bytes()}


@pytest.fixture(scope="module")
def client():
    import twoends
    from twoends.serve import create_app

    with Running(create_app(twoends.load("silero_vad"), max_batch_size=4)) as c:
        yield c


def test_an_uploaded_clip_gets_its_label_and_segments(client, clips):
    r = client.post_file("/v1/predict", "speech.ogg", clips["speech"], content_type="audio/ogg")
    assert r.status == 200, r
    pred = r.json()
    assert pred["label"] == "speech" and pred["input"] == "speech.ogg"
    assert pred["segments"] and abs(pred["segments"][0]["start"] - 1.0) <= 0.2
    raw = client.request("POST", "/v1/predict", clips["tone"], {"Content-Type": "audio/wav"})
    assert raw.status == 200 and raw.json()["label"] == "not speech" and raw.json()["segments"] == []
    assert client.get("/v1/model").json()["takes"] == "audio"


def test_clips_on_the_open_inference_protocol(client, clips):
    data = [base64.b64encode(clips[k]).decode() for k in ("speech", "tone")]
    meta = client.get("/v2/models/silero_vad").json()
    assert meta["inputs"] == [{"name": "audio", "datatype": "BYTES", "shape": [-1]}]
    r = client.post_json(
        "/v2/models/silero_vad/infer", {"inputs": [{"name": "audio", "shape": [2], "datatype": "BYTES", "data": data}]}
    )
    assert r.status == 200, r
    probs = np.array(next(o for o in r.json()["outputs"] if o["name"] == "probabilities")["data"]).reshape(2, 2)
    assert list(probs.argmax(axis=1)) == [1, 0]  # [not speech, speech]


def test_bad_clips_and_text_are_refused_with_the_fix(client):
    r = client.post_file("/v1/predict", "x.wav", b"RIFF nonsense", content_type="audio/wav")
    assert r.status == 400 and r.json()["error"]["type"] == "DecodeError"
    r = client.post_json("/v1/predict", {"text": "hello"})
    assert r.status == 400 and "upload the audio file" in r.json()["error"]["message"]
