"""The bundled silero_vad on real speech (espeak-ng), noise, tones and silence, in every container and rate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests import audio  # noqa: E402

pytest.importorskip("silero_vad")
pytest.importorskip("soundfile")

import twoends  # noqa: E402

RATE = 16000
AT = 2.0  # where the speech is placed inside the noise, seconds


@pytest.fixture(scope="module")
def vad():
    return twoends.load("silero_vad")


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> np.ndarray:
    return audio.speech(rate=RATE, tmp=tmp_path_factory.mktemp("espeak"))


@pytest.fixture(scope="module")
def speech_in_noise(voice) -> np.ndarray:
    return audio.place(voice, audio.noise(len(voice) / RATE + 2 * AT, level=0.01), AT, RATE)


def _span(pred) -> tuple[float, float]:
    speech = [s for s in pred.segments if s.label == "speech"]
    return speech[0].start, speech[-1].end


def test_window_probabilities_equal_the_packages_streaming_model(vad, speech_in_noise):
    import torch
    from silero_vad import load_silero_vad

    stream = load_silero_vad(onnx=True)  # the package's own OnnxWrapper: one 512-sample window per call
    x = speech_in_noise[: 512 * 200]
    want = np.array([float(stream(torch.from_numpy(x[i : i + 512]), RATE)) for i in range(0, len(x), 512)])
    windows = vad.plan.apply(vad.plan.decode((x, RATE)))
    logits = vad.backend.forward(vad.backend.collate([windows]))[:, 0]
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), want, atol=1e-5)


def test_speech_is_speech_and_noise_tone_silence_are_not(vad, voice):
    clips = {
        "speech": voice,
        "noise": audio.noise(4),
        "loud noise": audio.noise(4, level=0.2, seed=1),
        "tone": audio.tone(4),
        "low tone": audio.tone(4, freq=150),
        "silence": audio.silence(4),
    }
    preds = dict(zip(clips, vad.predict([(x, RATE) for x in clips.values()])))
    assert preds["speech"].label == "speech" and preds["speech"].probability > 0.9
    for name in clips.keys() - {"speech"}:
        assert preds[name].label == "not speech", (name, preds[name].probability)
        assert preds[name].segments == ()


def test_speech_inside_noise_is_found_where_it_was_put(vad, voice, speech_in_noise):
    start, end = audio.voiced_span(voice, RATE)
    pred = vad.predict((speech_in_noise, RATE))
    assert pred.label == "speech"
    found = _span(pred)
    assert abs(found[0] - (AT + start)) <= 0.2 and abs(found[1] - (AT + end)) <= 0.2, (found, AT + start, AT + end)


@pytest.mark.parametrize("suffix", [".wav", ".flac", ".mp3", ".ogg", ".m4a"])
def test_the_same_clip_gives_the_same_answer_at_every_rate_and_container(vad, voice, speech_in_noise, suffix, tmp_path):
    import soxr

    start, end = audio.voiced_span(voice, RATE)
    paths = []
    for rate in (8000, 16000, 44100, 48000):
        x = soxr.resample(speech_in_noise, RATE, rate).astype(np.float32) if rate != RATE else speech_in_noise
        paths.append(audio.write(tmp_path / f"mono{rate}{suffix}", x, rate))
        paths.append(audio.write(tmp_path / f"stereo{rate}{suffix}", audio.stereo(x), rate))
    preds = vad.predict(str(tmp_path))  # a folder of clips
    assert [p.input for p in preds] == sorted(str(p) for p in paths)
    for p in preds:
        assert p.ok and p.label == "speech", p
        found = _span(p)
        assert abs(found[0] - (AT + start)) <= 0.2 and abs(found[1] - (AT + end)) <= 0.2, (p.input, found)


def test_a_silent_file_and_a_bad_file_are_one_row_each(vad, tmp_path):
    good = audio.write(tmp_path / "a.wav", audio.silence(1.0), RATE)
    (tmp_path / "b.wav").write_bytes(b"RIFF nonsense")
    preds = vad.predict([str(good), str(tmp_path / "b.wav"), str(tmp_path / "c.wav")])
    assert [p.ok for p in preds] == [True, False, False]
    assert preds[0].label == "not speech" and preds[0].segments == ()
    assert preds[1].error["type"] == "DecodeError" and preds[2].error["type"] == "DecodeError"


def test_every_row_fits_the_one_schema(vad, voice):
    import jsonschema

    schema = json.loads((Path(twoends.__file__).parent / "data" / "prediction.schema.json").read_text())
    pred = vad.predict((voice, RATE))
    row = json.loads(json.dumps(pred.to_dict(include_vectors=True)))
    jsonschema.validate(row, schema)
    assert row["segments"] and set(row["segments"][0]) == {"start", "end", "label", "probability"}
    assert vad.describe()["spec"]["window"] == 512 and vad.plan.kind == "audio"
