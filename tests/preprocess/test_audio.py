"""Audio decoding and the AudioPlan on real clips (espeak-ng speech, tones) in every container and rate."""

from __future__ import annotations

import io

import numpy as np
import pytest

from tests import audio  # noqa: E402
from twoends.errors import AudioTooLongError, ConfigError, DecodeError, InputError  # noqa: E402
from twoends.preprocess.audio import AudioClip, decode_audio  # noqa: E402
from twoends.preprocess.audio_spec import AudioPlan, AudioSpec  # noqa: E402
from twoends.preprocess.protocol import Limits  # noqa: E402

RATES = (8000, 16000, 44100, 48000)
CONTAINERS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".mp4")
LOSSLESS = (".wav", ".flac")


@pytest.fixture(scope="module")
def voice(tmp_path_factory) -> np.ndarray:
    return audio.speech(rate=16000, tmp=tmp_path_factory.mktemp("espeak"))


def _aligned_corr(a: np.ndarray, b: np.ndarray, max_lag: int = 2000) -> float:
    """Best normalised correlation of b against a over delays up to max_lag (codecs shift a clip a little)."""
    from scipy.signal import correlate

    n = min(len(a), len(b)) - max_lag
    x = a[:n].astype(np.float64)
    c = correlate(b[: n + max_lag].astype(np.float64), x, mode="valid", method="fft")  # c[lag] = <b[lag:lag+n], x>
    cs = np.concatenate([[0.0], np.cumsum(b[: n + max_lag].astype(np.float64) ** 2)])
    energy = cs[n:] - cs[: len(cs) - n]  # energy[lag] = sum(b[lag:lag+n] ** 2)
    return float(np.max(c / np.sqrt(np.dot(x, x) * energy + 1e-30)))


@pytest.mark.parametrize("suffix", CONTAINERS)
@pytest.mark.parametrize("rate", RATES)
def test_every_container_and_rate_decodes_to_the_same_clip_at_the_model_rate(tmp_path, voice, suffix, rate):
    import soxr

    source = soxr.resample(voice, 16000, rate).astype(np.float32) if rate != 16000 else voice
    path = audio.write(tmp_path / f"clip{suffix}", audio.stereo(source), rate)
    plan = AudioPlan(AudioSpec(sample_rate=16000))
    clip = decode_audio(str(path))
    assert clip.channels == 2 and clip.rate == (48000 if suffix == ".opus" else rate)
    x = plan.decode(str(path))
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / 16000 - len(voice) / 16000) < 0.1  # the same length, codec padding aside
    want = 0.9 * voice  # the mean of the two channels
    if suffix in LOSSLESS and rate == 16000:
        np.testing.assert_allclose(x, want, atol=2 / 32768)  # PCM_16 rounding only
    else:
        assert _aligned_corr(want, x) > (0.99 if suffix in LOSSLESS else 0.9)


@pytest.mark.parametrize(
    "name, subtype, rate, channels",
    [
        ("pcm24.wav", "PCM_24", 22050, 1),
        ("float.wav", "FLOAT", 32000, 2),
        ("u8.wav", "PCM_U8", 11025, 1),
        ("six.wav", "PCM_16", 48000, 6),
        ("clip.aiff", "PCM_16", 44100, 2),
        ("clip.webm", None, 48000, 2),
        ("clip.aac", None, 24000, 1),
    ],
)
def test_other_encodings_rates_and_layouts(tmp_path, voice, name, subtype, rate, channels):
    import soundfile as sf
    import soxr

    x = soxr.resample(voice, 16000, rate).astype(np.float32)
    multi = np.stack([x * (1 - 0.1 * c) for c in range(channels)], axis=1)
    path = tmp_path / name
    if subtype is None:
        audio.write(path, multi, rate)
    else:
        sf.write(path, multi, rate, subtype=subtype)
    clip = decode_audio(str(path))
    assert clip.channels == channels and clip.rate == rate
    got = AudioPlan(AudioSpec()).decode(str(path))
    want = voice * np.mean([1 - 0.1 * c for c in range(channels)])
    assert _aligned_corr(want, got) > 0.9 and abs(len(got) - len(voice)) < 0.1 * 16000


def test_bytes_file_objects_and_arrays_give_the_same_samples(tmp_path, voice):
    path = audio.write(tmp_path / "v.flac", voice, 16000)
    plan = AudioPlan(AudioSpec())
    from_path = plan.decode(str(path))
    np.testing.assert_array_equal(plan.decode(path.read_bytes()), from_path)
    with open(path, "rb") as f:
        np.testing.assert_array_equal(plan.decode(f), from_path)
    np.testing.assert_array_equal(plan.decode(io.BytesIO(path.read_bytes())), from_path)
    pcm = np.round(voice * 32767).astype(np.int16)
    np.testing.assert_allclose(plan.decode((pcm, 16000)), pcm / 32768, atol=1e-7)  # int16 scaled to [-1, 1]
    np.testing.assert_array_equal(plan.decode(AudioClip(voice, 16000)), voice)
    np.testing.assert_allclose(plan.decode((np.stack([voice, voice], 1), 16000)), voice, atol=1e-7)
    np.testing.assert_array_equal(plan.decode((voice, 16000.0)), voice)  # a float rate that is a whole number
    assert plan.is_single((voice, 16000.0))
    with pytest.raises(InputError, match="whole number of Hz"):
        plan.decode((voice, 22050.5))


def test_a_bare_array_is_refused_because_its_rate_is_unknown(voice):
    with pytest.raises(InputError, match=r"AudioClip\(x, rate\)"):
        AudioPlan(AudioSpec()).decode(voice)
    with pytest.raises(InputError, match=r"\(channels, frames\)"):
        decode_audio((np.zeros((2, 16000), np.float32), 16000))


def test_empty_corrupt_and_non_audio_files_say_what_was_expected(tmp_path, voice):
    plan = AudioPlan(AudioSpec())
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a sound")
    good = audio.write(tmp_path / "v.wav", voice, 16000).read_bytes()
    (tmp_path / "cut.mp3").write_bytes(audio.write(tmp_path / "v.mp3", voice, 16000).read_bytes()[:300])
    (tmp_path / "garbage.wav").write_bytes(good[:44] + bytes(range(256)) * 4)  # a header, then noise bytes
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "photo.png")
    for name, pattern in (("empty.wav", "empty"), ("notes.txt", "expected WAV"), ("photo.png", "audio")):
        with pytest.raises(DecodeError, match=pattern):
            plan.decode(str(tmp_path / name))
    for name in ("cut.mp3", "garbage.wav"):  # one error row or a short clip: never a crash
        try:
            assert plan.decode(str(tmp_path / name)).shape[0] > 0
        except DecodeError as e:
            assert "expected" in str(e)
    with pytest.raises(DecodeError, match="no such file"):
        plan.decode(str(tmp_path / "missing.wav"))


def test_the_duration_limit_holds_before_decoding(tmp_path, monkeypatch, voice):
    long = audio.write(tmp_path / "long.wav", np.tile(voice, 3), 16000)
    plan = AudioPlan(AudioSpec(), Limits(max_seconds=5))
    import soundfile as sf

    monkeypatch.setattr(sf, "read", lambda *a, **k: pytest.fail("decoded a clip over the limit"))
    with pytest.raises(AudioTooLongError, match="over the limit of 5 s"):
        plan.decode(str(long))
    m4a = audio.write(tmp_path / "long.m4a", np.tile(voice, 3), 16000)
    with pytest.raises(AudioTooLongError, match="max_seconds"):
        plan.decode(str(m4a))
    with pytest.raises(AudioTooLongError):
        plan.decode((np.zeros(16000 * 6, np.float32), 16000))
    with pytest.raises(ConfigError):
        Limits(max_seconds=0)


def test_a_folder_yields_its_audio_files_sorted_and_a_glob_too(tmp_path, voice):
    sub = tmp_path / "sub"
    sub.mkdir()
    for name in ("b.wav", "a.flac", "c.mp3", "notes.txt", ".hidden.wav"):
        (tmp_path / name).write_bytes(b"x")
    (sub / "d.m4a").write_bytes(b"x")
    plan = AudioPlan(AudioSpec())
    ids = [item.id for item in plan.items(str(tmp_path))]
    assert ids == [str(tmp_path / n) for n in ("a.flac", "b.wav", "c.mp3")] + [str(sub / "d.m4a")]
    assert not plan.is_single(str(tmp_path)) and plan.is_single(str(tmp_path / "a.flac"))
    assert [i.id for i in plan.items(str(tmp_path / "*.wav"))] == [str(tmp_path / "b.wav")]
    assert plan.is_single((voice, 16000)) and plan.is_single(AudioClip(voice, 16000))
    many = list(plan.items([(voice, 16000), b"bytes", 3]))
    assert [i.id for i in many] == ["<audio #0>", "<bytes #1>", "<input #2>"]


def test_windows_follow_the_spec_and_cover_the_clip():
    x = np.arange(1, 2001, dtype=np.float32)
    plan = AudioPlan(AudioSpec(sample_rate=1000, window=512, context=64, pad=True))
    w = plan.apply(x)
    assert w.inputs.shape == (4, 576)  # ceil(2000 / 512) windows of context + window
    np.testing.assert_array_equal(w.inputs[0, :64], 0)
    np.testing.assert_array_equal(w.inputs[1], x[448:1024])
    np.testing.assert_array_equal(w.inputs[3, 64 : 64 + 464], x[1536:])
    np.testing.assert_array_equal(w.inputs[3, 64 + 464 :], 0)  # the last window zero-padded
    np.testing.assert_allclose(w.starts, [0, 0.512, 1.024, 1.536])
    np.testing.assert_allclose(w.ends, [0.512, 1.024, 1.536, 2.0])
    over = AudioPlan(AudioSpec(sample_rate=1000, window=1000, hop=500)).apply(x)
    assert len(over) == 3 and over.inputs.shape == (3, 1000)  # 0-1, 0.5-1.5, 1-2 s
    np.testing.assert_allclose(over.ends, [0.5, 1.0, 2.0])  # each window's own part, no overlaps
    whole = AudioPlan(AudioSpec(sample_rate=1000)).apply(x)
    assert len(whole) == 1 and whole.inputs.shape == (1, 2000)


def test_silero_framing_is_the_packages_own(voice):
    pytest.importorskip("silero_vad")
    from silero_vad.sequence_vad import frame_blocks

    ours = AudioPlan(AudioSpec(window=512, hop=512, context=64, pad=True)).apply(voice).inputs
    theirs = np.concatenate(list(frame_blocks(voice, 512, 64, 10_000)))
    np.testing.assert_array_equal(ours, theirs)


def test_zero_mean_unit_var_is_wav2vec2s(voice):
    transformers = pytest.importorskip("transformers")
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True)
    want = fe(voice, sampling_rate=16000, return_tensors="np")["input_values"][0]
    got = AudioPlan(AudioSpec(normalize="zero_mean_unit_var")).apply(voice).inputs[0]
    np.testing.assert_array_equal(got, want)


def test_audio_spec_round_trips_and_refuses_bad_values():
    spec = AudioSpec(sample_rate=8000, window=4000, hop=2000, normalize="zero_mean_unit_var")
    assert AudioSpec.from_json(spec.to_json()) == spec
    assert spec.replace(hop=1000).hop == 1000
    for bad in (
        {"sample_rate": 0},
        {"hop": 10},
        {"window": 10, "hop": 20},
        {"mixdown": "left"},
        {"normalize": "peak"},
        {"merge_gap": -1},
        {"rate": 16000},
    ):
        with pytest.raises(ConfigError):
            AudioSpec.from_dict(bad)
