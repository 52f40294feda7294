"""`twoends predict` and `twoends doctor` on a folder of audio clips, as a user runs them."""

import json

import jsonschema
import numpy as np
import pytest
from click.testing import CliRunner

from tests import audio
from twoends.cli import main

pytest.importorskip("silero_vad")
pytest.importorskip("soundfile")


def test_a_folder_of_clips_gives_one_row_each_with_its_segments(tmp_path):
    from importlib import resources

    schema = json.loads((resources.files("twoends") / "data" / "prediction.schema.json").read_text())
    voice = audio.speech(rate=22050, tmp=tmp_path)
    clips = tmp_path / "clips"
    (clips / "sub").mkdir(parents=True)
    audio.write(clips / "a_speech.flac", audio.stereo(audio.place(voice, audio.noise(8, 22050), 1.0, 22050)), 22050)
    audio.write(clips / "b_tone.mp3", audio.tone(2.0, 44100), 44100)
    audio.write(clips / "sub" / "c_noise.m4a", audio.noise(2.0, 8000), 8000)
    (clips / "d_broken.wav").write_bytes(b"RIFF\x00\x00")
    (clips / "notes.txt").write_text("not audio: not an input")
    r = CliRunner().invoke(main, ["predict", "--model", "silero_vad", str(clips), "--format", "jsonl"])
    assert r.exit_code == 1, r.output  # one input failed
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    for row in rows:
        jsonschema.validate(row, schema)
    assert [row["input"].rsplit("/", 1)[-1] for row in rows] == [
        "a_speech.flac",
        "b_tone.mp3",
        "d_broken.wav",
        "c_noise.m4a",
    ]
    speech, tone, broken, noise = rows
    assert speech["label"] == "speech" and speech["segments"][0]["start"] == pytest.approx(1.0, abs=0.2)
    assert tone["label"] == noise["label"] == "not speech" and tone["segments"] == noise["segments"] == []
    assert broken["error"]["type"] == "DecodeError" and "expected" in broken["error"]["message"]
    assert np.isclose(speech["probability"], max(s["probability"] for s in speech["segments"]), atol=0.1)

    table = CliRunner().invoke(
        main, ["predict", "--model", "silero_vad", str(clips / "a_speech.flac"), "--format", "table"]
    )
    assert table.exit_code == 0 and "segments" in table.stdout and "speech" in table.stdout
    doctor = CliRunner().invoke(
        main, ["doctor", "--model", "silero_vad", str(clips / "a_speech.flac"), "--format", "json"]
    )
    assert doctor.exit_code == 0 and json.loads(doctor.stdout)["ok"] is True
    short = CliRunner().invoke(
        main,
        ["predict", "--model", "silero_vad", str(clips / "a_speech.flac"), "--max-seconds", "2", "--format", "jsonl"],
    )
    assert short.exit_code == 1 and json.loads(short.stdout)["error"]["type"] == "AudioTooLongError"
