"""iter_items / is_single: what is one input, what is many, and the order they come in."""

from __future__ import annotations

import itertools
import os
import pathlib

import numpy as np
import pytest
from PIL import Image

from twoends.errors import DecodeError, InputError
from twoends.preprocess import Item, decode_image, is_single, iter_items


@pytest.fixture()
def tree(tmp_path: pathlib.Path) -> pathlib.Path:
    """root/{B.PNG, a.jpg, .hidden.jpg, notes.txt, sub/{deeper/d.jpeg, z.TIF}, .cache/e.jpg, empty/}."""
    files = [
        "a.jpg",
        "B.PNG",
        ".hidden.jpg",
        "notes.txt",
        "sub/z.TIF",
        "sub/deeper/d.jpeg",
        ".cache/e.jpg",
        "sub/readme.md",
    ]
    for name in files:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    return tmp_path


def _ids(x) -> list[str]:
    return [item.id for item in iter_items(x)]


def test_folder_is_recursive_sorted_filtered_and_skips_hidden(tree):
    expected = ["B.PNG", "a.jpg", "sub/deeper/d.jpeg", "sub/z.TIF"]
    assert _ids(tree) == [str(tree / name) for name in expected]
    assert _ids(str(tree)) == _ids(tree)
    assert all(item.payload == item.id and not item.ready for item in iter_items(tree))


def test_glob_patterns(tree):
    matches = _ids(str(tree / "**" / "*.jp*g"))
    assert sorted(matches) == [str(tree / "a.jpg"), str(tree / "sub/deeper/d.jpeg")]
    assert _ids(str(tree / "*.[jJ]pg")) == [str(tree / "a.jpg")]
    assert _ids(str(tree / "*")) == [str(tree / "B.PNG"), str(tree / "a.jpg")]  # not notes.txt, not folders
    assert _ids(str(tree / "nothing-*.jpg")) == []


def test_missing_path_is_one_item_that_fails_to_decode(tree):
    missing = str(tree / "missing.jpg")
    assert is_single(missing)
    items = list(iter_items(missing))
    assert items == [Item(missing, missing)]
    with pytest.raises(DecodeError, match="no such file"):
        decode_image(items[0].payload)


def test_list_mixing_kinds_numbers_anonymous_items_by_position(tree):
    pil = Image.new("RGB", (4, 4))
    array = np.zeros((4, 4, 3), np.uint8)
    ready = np.zeros((3, 8, 8), np.float32)
    items = list(iter_items([str(tree / "a.jpg"), b"\xff\xd8", pil, array, ready, tree / "sub"]))
    assert [i.id for i in items] == [
        str(tree / "a.jpg"),
        "<bytes #1>",
        "<image #2>",
        "<array #3>",
        "<input #4>",
        str(tree / "sub/deeper/d.jpeg"),
        str(tree / "sub/z.TIF"),
    ]
    assert [i.ready for i in items] == [False, False, False, False, True, False, False]
    assert items[4].payload is ready


def test_is_single():
    assert is_single(b"bytes") and is_single(bytearray(b"x")) and is_single(memoryview(b"x"))
    assert is_single(Image.new("RGB", (2, 2)))
    assert is_single(np.zeros((4, 4), np.uint8)) and is_single(np.zeros((4, 4, 3), np.uint8))
    assert is_single(np.zeros((3, 4, 4), np.float32))
    assert is_single("/no/such/file.jpg")
    assert not is_single(np.zeros((2, 4, 4, 3), np.uint8))
    assert not is_single(np.zeros((2, 3, 4, 4), np.float32))
    assert not is_single("/tmp") and not is_single("photos/*.jpg") and not is_single("x?.png")
    assert not is_single([b"x"]) and not is_single((b"x",)) and not is_single(iter([b"x"]))


def test_an_existing_file_with_glob_characters_is_single(tmp_path):
    path = tmp_path / "photo[1].jpg"
    path.write_bytes(b"x")
    assert is_single(str(path)) and _ids(str(path)) == [str(path)]


def test_four_d_arrays_are_batches_of_rows_without_copies():
    images = np.zeros((3, 8, 8, 3), np.uint8)
    items = list(iter_items(images))
    assert [i.id for i in items] == ["<array #0>", "<array #1>", "<array #2>"]
    assert not any(i.ready for i in items) and np.shares_memory(items[1].payload, images)
    ready = np.zeros((2, 3, 8, 8), np.float16)
    items = list(iter_items(ready))
    assert [i.ready for i in items] == [True, True] and items[0].payload.shape == (3, 8, 8)


def test_torch_tensors_are_ready_inputs_recognised_without_import():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    batch = torch.zeros(4, 3, 8, 8)
    assert not is_single(batch) and is_single(batch[0])
    items = list(iter_items(batch))
    assert len(items) == 4 and all(i.ready for i in items)
    assert items[2].payload.data_ptr() == batch[2].data_ptr()  # a view: same memory, same device
    (one,) = iter_items(torch.zeros(3, 8, 8, dtype=torch.bfloat16))
    assert one.ready
    (bad,) = iter_items(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(InputError, match="floating point"):
        decode_image(bad.payload)


def test_unknown_things_become_error_items_not_exceptions():
    items = list(iter_items([42, {"a": 1}]))
    assert [i.id for i in items] == ["<input #0>", "<input #1>"]
    for item in items:
        with pytest.raises(InputError, match="cannot use a"):
            decode_image(item.payload)
    (item,) = iter_items(3.5)
    assert isinstance(item.payload, InputError)
    assert is_single(3.5) and is_single({"a": 1}) and not is_single([42])


def test_generators_are_consumed_lazily():
    def endless():
        n = 0
        while True:
            yield bytes([n % 256])
            n += 1

    first = list(itertools.islice(iter_items(endless()), 3))
    assert [i.id for i in first] == ["<bytes #0>", "<bytes #1>", "<bytes #2>"]


def test_folder_walk_lists_only_the_folders_it_reaches(tmp_path, monkeypatch):
    for i in range(5):
        for j in range(3):
            path = tmp_path / f"d{i}" / f"e{j}" / "img.jpg"
            path.parent.mkdir(parents=True)
            path.write_bytes(b"x")
    listed = []
    real_scandir = os.scandir

    def spy(path):
        listed.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    first = next(iter_items(tmp_path))
    assert first.id == str(tmp_path / "d0" / "e0" / "img.jpg")
    assert len(listed) == 3  # root, d0, d0/e0 - not the 20 folders of the whole tree


def test_symlink_loops_are_walked_once(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.jpg").write_bytes(b"x")
    os.symlink(tmp_path, tmp_path / "a" / "loop")
    assert _ids(tmp_path) == [str(tmp_path / "a" / "x.jpg")]


def test_unreadable_folder_is_an_error_item(tree, monkeypatch):
    locked = tree / "sub"
    real_scandir = os.scandir

    def refuse(path):  # as chmod 000 would (chmod does not stop root, so simulate it)
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    items = list(iter_items(tree))
    assert [i.id for i in items] == [str(tree / "B.PNG"), str(tree / "a.jpg"), str(locked)]
    with pytest.raises(DecodeError, match="cannot read folder .*Permission denied"):
        decode_image(items[-1].payload)
