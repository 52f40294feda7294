"""HF audio classifiers equal transformers.pipeline("audio-classification") to 1e-5, on real speech.

The models are built from small configs with random weights (fine for equality of
numbers, never for claims about predictions); the clips are espeak-ng speech.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests import audio  # noqa: E402

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("soxr")

import twoends  # noqa: E402
from twoends.preprocess.audio import AudioClip  # noqa: E402

RATE = 16000
LABELS = {0: "yes", 1: "no", 2: "up", 3: "down"}
SMALL = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=37,
    num_labels=4,
    id2label=LABELS,
    label2id={v: k for k, v in LABELS.items()},
)
CONV = dict(
    conv_dim=(32, 32, 32),
    conv_stride=(5, 4, 4),
    conv_kernel=(10, 4, 4),
    num_feat_extract_layers=3,
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
)


def _wav2vec2(norm: str = "group"):
    torch.manual_seed(0)
    cfg = transformers.Wav2Vec2Config(**SMALL, **CONV, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer")
    fe = transformers.Wav2Vec2FeatureExtractor(do_normalize=True, return_attention_mask=norm == "layer")
    return transformers.Wav2Vec2ForSequenceClassification(cfg).eval(), fe


def _hubert():
    torch.manual_seed(1)
    return (
        transformers.HubertForSequenceClassification(transformers.HubertConfig(**SMALL, **CONV)).eval(),
        transformers.Wav2Vec2FeatureExtractor(do_normalize=False),
    )


def _wavlm():
    torch.manual_seed(2)
    return (
        transformers.WavLMForSequenceClassification(transformers.WavLMConfig(**SMALL, **CONV)).eval(),
        transformers.Wav2Vec2FeatureExtractor(do_normalize=True),
    )


def _ast():
    torch.manual_seed(3)
    cfg = transformers.ASTConfig(**SMALL, max_length=128, num_mel_bins=128)
    return transformers.ASTForAudioClassification(cfg).eval(), transformers.ASTFeatureExtractor(max_length=128)


def _whisper():
    torch.manual_seed(4)
    cfg = transformers.WhisperConfig(
        d_model=32,
        encoder_layers=2,
        encoder_attention_heads=2,
        decoder_layers=1,
        decoder_attention_heads=2,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        classifier_proj_size=16,
        num_labels=4,
        id2label=LABELS,
        label2id={v: k for k, v in LABELS.items()},
    )
    return transformers.WhisperForAudioClassification(cfg).eval(), transformers.WhisperFeatureExtractor()


MODELS = {
    "wav2vec2": _wav2vec2,
    "wav2vec2-layer": lambda: _wav2vec2("layer"),
    "hubert": _hubert,
    "wavlm": _wavlm,
    "ast": _ast,
    "whisper": _whisper,
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[np.ndarray]:
    voice = audio.speech(rate=RATE, tmp=tmp_path_factory.mktemp("espeak"))
    return [voice[: int(s * RATE)] for s in (0.45, 0.9, 1.25)] + [
        audio.place(voice[:8000], audio.noise(1.1), 0.3, RATE)
    ]


def _pipeline_scores(pipe, x) -> dict[str, float]:
    return {r["label"]: r["score"] for r in pipe(x.copy(), top_k=4)}


@pytest.mark.parametrize("name", list(MODELS))
def test_equal_to_the_pipeline_on_clips_of_several_lengths(name, clips):
    model, fe = MODELS[name]()
    pipe = transformers.pipeline("audio-classification", model=model, feature_extractor=fe, device="cpu")
    clf = twoends.wrap(model, processor=fe, top_k=4, batch_size=4)
    preds = clf.predict([AudioClip(x, RATE) for x in clips])  # one batch, four lengths
    for x, pred in zip(clips, preds, strict=True):
        assert pred.ok, pred
        want = _pipeline_scores(pipe, x)
        got = {s.label: s.probability for s in pred.top_k}
        assert got.keys() == want.keys()
        for label in want:
            assert got[label] == pytest.approx(want[label], abs=1e-5)
        assert pred.label == max(want, key=want.get)
        with torch.no_grad():  # logits kept: the model's own, from the extractor's features
            enc = fe(x, sampling_rate=RATE, return_tensors="pt")
            np.testing.assert_allclose(pred.logits, model(**enc).logits[0].numpy(), atol=1e-5)
        assert len(pred.segments) == 1 and pred.segments[0].end == pytest.approx(len(x) / RATE)


def test_other_rates_are_resampled_to_the_extractors(clips):
    import soxr

    model, fe = _wav2vec2()
    clf = twoends.wrap(model, processor=fe)
    x = clips[2]
    at16 = clf.predict(AudioClip(x, RATE))
    at48 = clf.predict(AudioClip(soxr.resample(x, RATE, 48000).astype(np.float32), 48000))
    np.testing.assert_allclose(at48.probabilities, at16.probabilities, atol=2e-3)


def test_a_clip_longer_than_asts_window_is_windowed_not_truncated(clips):
    model, fe = _ast()
    pipe = transformers.pipeline("audio-classification", model=model, feature_extractor=fe, device="cpu")
    clf = twoends.wrap(model, processor=fe, top_k=4)
    window = clf.spec.audio.window
    assert window == 400 + 127 * 160  # 128 frames of 25 ms every 10 ms
    x = np.concatenate(clips)  # ~3.7 s: the pipeline reads only the first 1.3 s
    pred = clf.predict(AudioClip(x, RATE))
    parts = [x[i : i + window] for i in range(0, len(x), window)]
    want = np.mean([[_pipeline_scores(pipe, p)[LABELS[c]] for c in range(4)] for p in parts], axis=0)
    np.testing.assert_allclose(pred.probabilities, want, atol=1e-5)
    assert pred.segments[0].start == 0 and pred.segments[-1].end == pytest.approx(len(x) / RATE)
