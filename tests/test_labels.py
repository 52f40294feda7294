import json

import pytest

from twoends import LabelError, LabelMap


def test_from_list_text_json_and_id2label(tmp_path):
    names = ["cat", "dog", "bird"]
    txt = tmp_path / "labels.txt"
    txt.write_text("cat\ndog\nbird\n\n")
    js = tmp_path / "labels.json"
    js.write_text(json.dumps(names))
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"id2label": {"0": "cat", "1": "dog", "2": "bird"}, "num_labels": 3}))
    for src in (names, txt, str(js), cfg, {2: "bird", 0: "cat", 1: "dog"}):
        assert LabelMap.from_any(src) == names
    assert LabelMap.from_any(names).index("dog") == 1


def test_errors_say_what_to_do(tmp_path):
    with pytest.raises(LabelError, match="not found"):
        LabelMap.from_file(tmp_path / "nope.txt")
    with pytest.raises(LabelError, match="missing"):
        LabelMap.from_any({0: "a", 2: "c"})
    with pytest.raises(LabelError, match="label2id"):
        LabelMap.from_any({"cat": 0, "dog": 1})
    bad = tmp_path / "gap.txt"
    bad.write_text("a\n\nb\n")
    with pytest.raises(LabelError, match="line 2"):
        LabelMap.from_file(bad)
    with pytest.raises(LabelError, match="empty"):
        LabelMap([])


def test_check_explains_off_by_one():
    lm = LabelMap([f"c{i}" for i in range(1000)])
    assert lm.check(1000) is lm
    with pytest.raises(
        LabelError, match="model has 1001 outputs, labels .* have 1000 names: is there a background class"
    ):
        lm.check(1001)
    with pytest.raises(LabelError, match="Drop it"):
        lm.check(999)


def test_duplicates_are_reported_and_ambiguous():
    lm = LabelMap(["crane", "cat", "crane"])
    assert lm.duplicates == {"crane": 2}
    with pytest.raises(LabelError, match="ambiguous"):
        lm.index("crane")
    with pytest.raises(LabelError, match="unknown"):
        lm.index("zebra")
