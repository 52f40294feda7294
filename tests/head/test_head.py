"""The Head: activation decisions, labels, bad values, the Prediction it builds."""

import json
from importlib import resources

import jsonschema
import numpy as np
import pytest
import scipy.special as ss

from twoends import ConfigError, Head, LabelError, Prediction

SCHEMA = json.loads((resources.files("twoends") / "data" / "prediction.schema.json").read_text())


def test_softmax_head_builds_full_predictions():
    x = np.array([[2.0, 1.0, 0.1], [1.0, 3.0, 0.2]])
    batch = Head(["a", "b", "c"], top_k=2)(x, inputs=["one", "two"])
    assert batch.labels == ["a", "b"]
    p = batch[1]
    assert p.input == "two" and p.index == 1 and p.activation == "softmax"
    np.testing.assert_allclose(p.probabilities, ss.softmax(x[1]))
    np.testing.assert_allclose(p.log_probabilities, ss.log_softmax(x[1]))
    np.testing.assert_array_equal(p.logits, x[1])
    assert p.top() == [("b", pytest.approx(0.8360, abs=1e-4)), ("a", pytest.approx(0.1131, abs=1e-4))]
    assert p.top_k[0].logit == 3.0
    assert p.entropy == pytest.approx(ss.entr(ss.softmax(x[1])).sum())
    assert p.margin == pytest.approx(0.8360 - 0.1131, abs=1e-4)
    for d in batch.to_dicts(include_vectors=True):
        jsonschema.validate(d, SCHEMA)
        json.dumps(d, allow_nan=False)


def test_single_logit_is_binary_sigmoid_never_softmax():
    z = np.array([[2.0], [-1.0]])
    batch = Head(["dog"])(z)
    assert batch[0].activation == "sigmoid"
    assert batch[0].label == "dog" and batch[0].probability == pytest.approx(ss.expit(2.0))
    assert batch[1].label == "not dog" and batch[1].probability == pytest.approx(1 - ss.expit(-1.0))
    np.testing.assert_allclose(batch.probabilities.sum(-1), 1.0)
    with pytest.raises(ConfigError, match="always 1.0"):
        Head(["dog"], activation="softmax")(z)


def test_two_names_for_one_logit_are_negative_then_positive():
    batch = Head(["cat", "dog"])(np.array([[3.0]]))
    assert batch[0].label == "dog"


def test_multilabel_sigmoid_with_thresholds():
    x = np.array([[2.0, -1.0, 0.3, -3.0]])
    batch = Head(list("abcd"), activation="sigmoid", thresholds=[0.5, 0.2, 0.6, 0.01])(x)
    p = batch[0]
    np.testing.assert_allclose(p.probabilities, ss.expit(x[0]))
    assert p.positive_labels == ("a", "b", "d")  # b: 0.27 >= 0.2; c: 0.57 < 0.6; d: 0.047 >= 0.01
    assert p.probabilities.sum() != pytest.approx(1.0)
    expected_h = sum(ss.entr(q) + ss.entr(1 - q) for q in ss.expit(x[0]))
    assert p.entropy == pytest.approx(expected_h)


def test_temperature_is_applied_and_recorded():
    x = np.array([[2.0, 1.0, 0.1]])
    p = Head(["a", "b", "c"], temperature=2.0)(x)[0]
    np.testing.assert_allclose(p.probabilities, ss.softmax(x[0] / 2))
    np.testing.assert_array_equal(p.logits, x[0])  # logits stay raw
    assert p.temperature == 2.0 and p.to_dict()["temperature"] == 2.0


def test_probabilities_are_not_softmaxed_twice():
    probs = ss.softmax(np.array([[2.0, 1.0, 0.1]]), axis=-1)
    p = Head(["a", "b", "c"], outputs="probabilities")(probs)[0]
    np.testing.assert_allclose(p.probabilities, probs[0])


def test_nan_and_inf_rows_become_error_rows_and_the_rest_survive():
    x = np.array(
        [[1.0, np.nan, 0.0], [1.0, 2.0, 3.0], [np.inf, 0.0, 0.0], [-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 2.0]]
    )
    batch = Head(["a", "b", "c"])(x, inputs=list("vwxyz"))
    assert [p.ok for p in batch] == [False, True, False, False, True]
    assert "NaN at 1 of 3" in batch[0].error["message"]
    assert "+inf" in batch[2].error["message"]
    assert "masked" in batch[3].error["message"]
    assert batch[0].label is None and batch[0].probability is None
    assert batch[1].label == "c"
    assert batch[4].probabilities[1] == 0.0
    for d in batch.to_dicts(include_vectors=True):
        jsonschema.validate(d, SCHEMA)
        json.dumps(d, allow_nan=False)


def test_labels_must_match_outputs():
    with pytest.raises(LabelError, match="1001 outputs.*1000 names.*background"):
        Head([str(i) for i in range(1000)])(np.zeros((1, 1001)))
    with pytest.raises(LabelError, match="3 outputs.*4 names"):
        Head(list("abcd"))(np.zeros((1, 3)))


def test_no_labels_gives_index_names():
    assert Head()(np.array([[0.0, 5.0]]))[0].label == "1"


def test_class_axis_and_shapes():
    x = np.array([[2.0, 1.0], [1.0, 3.0], [0.1, 0.2]])  # classes on axis 0
    batch = Head(["a", "b", "c"], axis=0)(x)
    np.testing.assert_allclose(batch.probabilities, ss.softmax(x.T, axis=-1))
    one = Head(["a", "b", "c"])(np.array([2.0, 1.0, 0.1]))
    assert len(one) == 1 and one[0].label == "a"
    with pytest.raises(ConfigError, match=r"\[batch, classes\]"):
        Head()(np.zeros((2, 3, 4)))


def test_top_k_clamped_to_classes():
    p = Head(["a", "b"], top_k=10)(np.array([[1.0, 2.0]]))[0]
    assert len(p.top_k) == 2


def test_prediction_sets_hook():
    sets = lambda probs: [np.flatnonzero(row >= 0.2) for row in probs]  # noqa: E731
    p = Head(["a", "b", "c"], prediction_sets=sets, calibration="cal.json")(np.array([[2.0, 1.5, -3.0]]))[0]
    assert p.prediction_set == ("a", "b") and p.calibration == "cal.json"


def test_torch_batch_stays_in_torch_until_the_edge():
    torch = pytest.importorskip("torch")
    x = torch.tensor([[2.0, 1.0, 0.1]], dtype=torch.bfloat16)
    p = Head(["a", "b", "c"])(x)[0]
    assert p.label == "a" and isinstance(p.probabilities, np.ndarray)
    assert p.probability == pytest.approx(0.659, abs=1e-2)


def test_failed_prediction_schema():
    d = Prediction.failed("x.jpg", ValueError("bad")).to_dict()
    jsonschema.validate(d, SCHEMA)
    assert d["error"] == {"type": "ValueError", "message": "bad"}
