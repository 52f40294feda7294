"""Each audio check fires on its injected mistake with real audio, and stays silent on the correct pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import audio  # noqa: E402

sf = pytest.importorskip("soundfile")
soxr = pytest.importorskip("soxr")

import twoends  # noqa: E402
from twoends.preprocess.audio_spec import AudioSpec  # noqa: E402

MODEL_RATE = 16000
SPEC = AudioSpec(sample_rate=MODEL_RATE)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Real clips on disk: espeak-ng speech in noise, mono and stereo, at 8, 16 and 48 kHz."""
    tmp = tmp_path_factory.mktemp("clips")
    voice = audio.speech(rate=48000, tmp=tmp)
    clip48 = audio.place(voice, audio.noise(len(voice) / 48000 + 1, 48000, level=0.005), 0.5, 48000)
    out = {}
    for rate in (8000, 16000, 48000):
        x = soxr.resample(clip48, 48000, rate).astype(np.float32) if rate != 48000 else clip48
        out[f"mono{rate}"] = audio.write(tmp / f"mono{rate}.wav", x, rate)
        out[f"stereo{rate}"] = audio.write(tmp / f"stereo{rate}.flac", audio.stereo(x), rate)
    out["clean48000"] = audio.write(tmp / "clean48000.wav", voice, 48000)  # espeak-ng's 22 kHz speech, no noise
    return out


def correct(path: Path) -> np.ndarray:
    """The right way: float samples, mono by the mean of the channels, resampled from the file's own rate."""
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return soxr.resample(x, rate, MODEL_RATE).astype(np.float32) if rate != MODEL_RATE else x


def findings_for(rows, paths, **kw):
    return twoends.check(batch=rows, inputs=[str(p) for p in paths], spec=SPEC, **kw)


def test_the_correct_pipeline_is_silent(files):
    paths = list(files.values())
    found = findings_for([correct(p) for p in paths], paths)
    assert [f for f in found if f.check in twoends.diagnose.audio.AUDIO_CHECKS and f.severity != "info"] == []
    assert set(found.ran) >= {"sample-rate", "int16-scale", "stereo-as-mono", "clipping", "truncation"}
    # 8 kHz recordings resampled up hold nothing above 4 kHz: said as a note, not as a mistake
    assert all(f.severity == "info" for f in found.of("sample-rate"))


def test_the_correct_pipeline_through_a_classifier_is_silent(files):
    vad = twoends.load("silero_vad")
    found = twoends.check(vad, [str(p) for p in files.values()])
    assert not found.failed and [f.check for f in found if f.severity != "info"] == []


@pytest.mark.parametrize("rate", [8000, 48000])
def test_a_file_fed_at_its_own_rate_is_a_sample_rate_error(files, rate):
    path = files[f"mono{rate}"]
    raw, _ = sf.read(path, dtype="float32")  # the mistake: no resampling
    (f,) = findings_for([raw], [path]).of("sample-rate")
    assert f.severity == "error" and f"{rate} Hz" in f.seen and "resample" in f.fix


def test_the_spectrum_alone_sees_48k_audio_fed_to_a_16k_model(files):
    # only where the source leaves the top of its band empty (here: speech made at 22 kHz); a full-band
    # recording fed at the wrong rate is seen by its length against the file's (the test above)
    raw, _ = sf.read(files["clean48000"], dtype="float32")
    found = twoends.check(batch=[raw], spec=SPEC)  # no files to compare with: the spectrum only
    (f,) = found.of("sample-rate")
    assert f.severity == "warning" and "empty" in f.seen
    assert twoends.check(batch=[correct(files["mono16000"])], spec=SPEC).of("sample-rate") == []


def test_unscaled_int16_is_found(files):
    path = files["mono16000"]
    pcm, _ = sf.read(path, dtype="int16")
    (f,) = findings_for([pcm.astype(np.float32)], [path]).of("int16-scale")  # the mistake: no / 32768
    assert f.severity == "error" and "32768" in f.fix


def test_stereo_read_as_mono_is_found(files):
    path = files["stereo16000"]
    x, _ = sf.read(path, dtype="float32")
    (f,) = findings_for([x.reshape(-1)], [path]).of("stereo-as-mono")  # the mistake: interleaved L R L R
    assert f.severity == "error" and "2 channels" in f.seen


def test_clipping_is_found(files):
    path = files["mono16000"]
    loud = np.clip(correct(path) * 12, -1, 1)  # the mistake: gain, then a hard cut
    (f,) = findings_for([loud], [path]).of("clipping")
    assert f.severity == "warning"


def test_a_clip_cut_to_the_models_window_is_found(files):
    path = files["mono16000"]
    window = AudioSpec(sample_rate=MODEL_RATE, window=MODEL_RATE * 2)
    found = twoends.check(batch=[correct(path)[: window.window]], inputs=[str(path)], spec=window)
    (f,) = found.of("truncation")
    assert f.severity == "error" and "(its window)" in f.seen


def test_a_clipped_recording_is_found_through_a_classifier(files, tmp_path):
    x = np.clip(correct(files["mono16000"]) * 12, -1, 1)
    path = audio.write(tmp_path / "loud.wav", x, MODEL_RATE)
    found = twoends.check(twoends.load("silero_vad"), [str(path)])
    assert [f.check for f in found] == ["clipping"]
