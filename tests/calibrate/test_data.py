"""Labelled data sources: a folder per class, CSV and JSONL, matched to the model's labels by name."""

import json

import numpy as np
import pytest
from PIL import Image

from twoends.calibrate.data import load_labelled
from twoends.errors import ConfigError, LabelError

LABELS = ["tabby", "tiger cat", "espresso", "crane", "missile", "crane"]  # "crane" twice, as in ImageNet


def _image(path, value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), value, np.uint8)).save(path)
    return path


def test_folder_per_class_maps_names_not_folder_order(tmp_path):
    # alphabetical folder order (espresso, missile, tabby) is not the model's order: names decide
    _image(tmp_path / "tabby" / "a.png")
    _image(tmp_path / "tabby" / "deeper" / "b.png")  # images below a class folder belong to it
    _image(tmp_path / "espresso" / "c.jpg")
    _image(tmp_path / "missile" / "d.png")
    (tmp_path / "tabby" / "notes.txt").write_text("not an image")
    data = load_labelled(tmp_path, LABELS)
    names = [p.rsplit("/", 1)[-1] for p in data.paths]
    assert sorted(zip(names, data.targets)) == [("a.png", 0), ("b.png", 0), ("c.jpg", 2), ("d.png", 4)]
    assert data.layout == "folder" and len(data) == 4 and data.target_array().dtype == np.int64
    assert data.class_counts() == {0: 2, 2: 1, 4: 1}
    assert "4 images in 3 classes" in data.describe()
    assert [data.targets[i] for i in (3, 0)] == list(data.subset([3, 0]).targets)


def test_unknown_folder_names_are_listed_with_close_matches(tmp_path):
    for name in ("Tabby", "expresso", "n01440764", "tabby"):
        _image(tmp_path / name / "x.png")
    with pytest.raises(LabelError) as e:
        load_labelled(tmp_path, LABELS)
    msg = str(e.value)
    assert "3 class name(s)" in msg
    assert "'Tabby' x1 (did you mean 'tabby'?)" in msg and "'expresso' x1 (did you mean 'espresso'?)" in msg
    assert "'n01440764' x1" in msg and "spelled exactly as the model's labels" in msg


def test_empty_folder_class_without_images_and_loose_images_are_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no class folders"):
        load_labelled(tmp_path / "empty", LABELS)
    root = tmp_path / "data"
    _image(root / "tabby" / "a.png")
    (root / "espresso").mkdir()
    (root / "espresso" / "readme.txt").write_text("no images here")
    with pytest.raises(ConfigError, match="class folder\\(s\\) with no images.*'espresso'"):
        load_labelled(root, LABELS)
    loose = tmp_path / "loose"
    _image(loose / "tabby" / "a.png")
    _image(loose / "b.png")
    with pytest.raises(ConfigError, match="directly inside it.*'b.png'"):
        load_labelled(loose, LABELS)
    with pytest.raises(ConfigError, match="not found"):
        load_labelled(tmp_path / "nowhere", LABELS)


def test_ambiguous_name_asks_for_an_index(tmp_path):
    _image(tmp_path / "crane" / "a.png")
    with pytest.raises(LabelError, match=r"'crane': \[3, 5\].*class index"):
        load_labelled(tmp_path, LABELS)


def test_csv_relative_paths_names_and_indices(tmp_path):
    _image(tmp_path / "imgs" / "a.png")
    _image(tmp_path / "imgs" / "b.png")
    other = _image(tmp_path / "elsewhere" / "c.png")
    table = tmp_path / "sets" / "val.csv"
    table.parent.mkdir()
    table.write_text(f"path,label,source\n../imgs/a.png,espresso,x\n../imgs/b.png,5,y\n{other},tiger cat,z\n")
    data = load_labelled(table, LABELS)
    assert data.targets == (2, 5, 1)  # "5" is no name here, so it is the index of the second crane
    assert data.paths[0] == str(table.parent / "../imgs/a.png") and data.paths[2] == str(other)
    assert data.layout == "csv"


def test_a_name_that_looks_like_an_index_is_a_name(tmp_path):
    table = tmp_path / "val.csv"
    table.write_text("path,label\na.png,1\nb.png,0\n")
    # classes named "0", "1", "2" in reverse order: "1" is the name "1", output 1 - not a coincidence
    data = load_labelled(table, ["2", "1", "0"])
    assert data.targets == (1, 2)


def test_csv_errors(tmp_path):
    bad_header = tmp_path / "a.csv"
    bad_header.write_text("file,class\nx.png,tabby\n")
    with pytest.raises(ConfigError, match="header row with 'path' and 'label'"):
        load_labelled(bad_header, LABELS)
    empty_label = tmp_path / "b.csv"
    empty_label.write_text("path,label\nx.png,\n")
    with pytest.raises(ConfigError, match="line 2.*empty 'label'"):
        load_labelled(empty_label, LABELS)
    out_of_range = tmp_path / "c.csv"
    out_of_range.write_text("path,label\nx.png,17\ny.png,dog\n")
    with pytest.raises(LabelError, match=r"'17' x1.*'dog' x1.*or class indices 0\.\.5"):
        load_labelled(out_of_range, LABELS)
    folder_row = tmp_path / "d.csv"
    (tmp_path / "sub").mkdir()
    folder_row.write_text("path,label\nsub,tabby\n")
    with pytest.raises(ConfigError, match="is a folder"):
        load_labelled(folder_row, LABELS)
    no_rows = tmp_path / "e.csv"
    no_rows.write_text("path,label\n")
    with pytest.raises(ConfigError, match="lists no images"):
        load_labelled(no_rows, LABELS)
    with pytest.raises(ConfigError, match="a folder per class, a .csv or a .jsonl"):
        load_labelled(_image(tmp_path / "one.png"), LABELS)


def test_jsonl_with_integer_labels_and_missing_files_kept(tmp_path):
    table = tmp_path / "val.jsonl"
    rows = [{"path": "a.png", "label": 4}, {"path": "missing.png", "label": "tabby"}]
    table.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    data = load_labelled(table, LABELS)
    # a missing file stays: it becomes one error row when predicted, never a silent gap
    assert data.targets == (4, 0) and data.paths[1] == str(tmp_path / "missing.png")
    table.write_text('{"path": "a.png"}\n')
    with pytest.raises(ConfigError, match="line 1: expected an object with 'path' and 'label'"):
        load_labelled(table, LABELS)
    table.write_text('{"path": "a.png", "label": ["tabby", "espresso"]}\n')
    with pytest.raises(ConfigError, match="multi-label"):
        load_labelled(table, LABELS)


def test_multilabel_jsonl_and_csv(tmp_path):
    table = tmp_path / "val.jsonl"
    table.write_text('{"path": "a.png", "label": ["espresso", 0]}\n{"path": "b.png", "label": []}\n')
    data = load_labelled(table, LABELS, multilabel=True)
    assert data.targets == ((0, 2), ())
    np.testing.assert_array_equal(data.target_array(), [[1, 0, 1, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    csv_table = tmp_path / "val.csv"
    csv_table.write_text("path,label\na.png,tabby; missile\nb.png,\n")
    assert load_labelled(csv_table, LABELS, multilabel=True).targets == ((0, 4), ())
    _image(tmp_path / "tabby" / "x.png")
    with pytest.raises(ConfigError, match="one label per image"):
        load_labelled(tmp_path, LABELS, multilabel=True)
