"""The Ray path on audio: a folder of clips gives the local rows, segments included, in the one schema."""

import importlib.util

import pytest

import twoends
from tests import audio

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
tr = pytest.importorskip("twoends.distributed.ray")
if importlib.util.find_spec("silero_vad") is None or importlib.util.find_spec("soundfile") is None:
    pytest.skip("the audio model needs silero-vad and soundfile", allow_module_level=True)

pytestmark = pytest.mark.slow  # Ray start-up and per-actor model loading


def test_a_folder_of_clips_on_ray_gives_the_local_rows(tmp_path):
    voice = audio.speech(rate=16000, tmp=tmp_path)
    clips = tmp_path / "clips"
    clips.mkdir()
    audio.write(clips / "a.flac", audio.place(voice, audio.noise(7), 1.0, 16000), 16000)
    audio.write(clips / "b.mp3", audio.tone(2.0, 44100), 44100)
    (clips / "c.wav").write_bytes(b"RIFF broken")
    (clips / "photo.jpg").write_bytes(b"not audio: not an input of an audio model")
    inputs = [str(clips), (clips / "a.flac").read_bytes()]
    local = twoends.load("silero_vad").predict(inputs)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        remote = list(tr.predict_paths(inputs, "silero_vad", batch_size=2, concurrency=1, kind="audio"))
    finally:
        ray.shutdown()
    assert [p.to_dict() for p in remote] == [p.to_dict() for p in local]
    assert [p.input.rsplit("/", 1)[-1] for p in remote] == ["a.flac", "b.mp3", "c.wav", "<bytes #3>"]
    assert remote[0].label == "speech" and remote[0].segments and not remote[2].ok
