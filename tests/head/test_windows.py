"""One Prediction per windowed input: the documented aggregation, checked against plain NumPy."""

from __future__ import annotations

import numpy as np
import pytest

from twoends.head import Head
from twoends.head.windows import combine_windows


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _times(n, step=1.0):
    return np.arange(n) * step, np.arange(1, n + 1) * step


def test_softmax_clips_are_the_mean_of_their_windows_probabilities():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 3)) * 3
    head = Head(["a", "b", "c"], temperature=2.0)
    (t0, t1), (u0, u1) = _times(3), _times(2)
    one, two = combine_windows(head, z, [3, 2], [t0, u0], [t1, u1], [0.0, 0.0], ["x", "y"])
    want = _softmax(z[:3] / 2.0).mean(axis=0)
    np.testing.assert_allclose(one.probabilities, want, rtol=1e-12)
    np.testing.assert_allclose(_softmax(one.logits[None])[0], want, rtol=1e-12)  # logits = log of the mean
    assert one.label == "abc"[int(want.argmax())] and one.temperature == 2.0 and one.input == "x"
    np.testing.assert_allclose(two.probabilities, _softmax(z[3:] / 2.0).mean(axis=0), rtol=1e-12)


def test_a_clip_of_one_window_keeps_the_models_logits():
    z = np.array([[0.3, -1.2, 2.0]])
    (p,) = combine_windows(Head(["a", "b", "c"]), z, [1], [np.array([0.0])], [np.array([1.5])], [0.0], ["x"])
    direct = Head(["a", "b", "c"])(z)[0]
    np.testing.assert_array_equal(p.logits, direct.logits)
    assert p.label == "c" and [s.to_dict() for s in p.segments] == [
        {"start": 0.0, "end": 1.5, "label": "c", "probability": direct.probability}
    ]


def test_sigmoid_clips_take_the_max_over_windows_and_segments_are_the_positive_spans():
    z = np.array([[-3.0, 1.0], [2.0, 1.5], [2.5, -2.0], [-4.0, -1.0], [1.0, -3.0]])
    head = Head(["dog", "car"], activation="sigmoid")
    t0, t1 = _times(5, 0.5)
    (p,) = combine_windows(head, z, [5], [t0], [t1], [0.0], ["clip"])
    np.testing.assert_allclose(p.logits, z.max(axis=0))
    np.testing.assert_allclose(p.probabilities, 1 / (1 + np.exp(-z.max(axis=0))))
    assert p.positive_labels == ("dog", "car")
    spans = [(s.label, s.start, s.end) for s in p.segments]
    assert spans == [("car", 0.0, 1.0), ("dog", 0.5, 1.5), ("dog", 2.0, 2.5)]
    dog = [s for s in p.segments if s.label == "dog"][0]
    assert dog.probability == pytest.approx(np.mean(1 / (1 + np.exp(-z[1:3, 0]))))


def test_one_logit_detectors_list_only_their_class_and_join_short_gaps():
    z = np.array([[-5.0], [3.0], [4.0], [-3.0], [2.0], [-6.0], [-6.0], [-6.0], [5.0]])
    t0, t1 = _times(9, 0.032)
    head = Head(["speech"])
    (p,) = combine_windows(head, z, [9], [t0], [t1], [0.04], ["vad"])
    assert p.label == "speech" and p.activation == "sigmoid"
    assert p.probability == pytest.approx(1 / (1 + np.exp(-5.0)))
    spans = [(s.label, round(s.start, 3), round(s.end, 3)) for s in p.segments]
    assert spans == [("speech", 0.032, 0.16), ("speech", 0.256, 0.288)]  # the one-window gap joined, not the three


def test_a_window_with_nan_makes_its_clip_an_error_row_and_only_that_clip():
    z = np.array([[0.1, 0.2], [np.nan, 0.0], [1.0, 0.0]])
    head = Head(["a", "b"])
    bad, good = combine_windows(
        head,
        z,
        [2, 1],
        [np.array([0.0, 1.0]), np.array([0.0])],
        [np.array([1.0, 2.0]), np.array([1.0])],
        [0.0, 0.0],
        ["x", "y"],
    )
    assert bad.error["type"] == "OutputError" and "window 1 (1.00 s) of 2" in bad.error["message"]
    assert good.ok and good.label == "a"
