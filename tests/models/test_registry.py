"""The model registry: names, prefixes, lazy builders, helpful errors."""

from __future__ import annotations

import pytest

import twoends
import twoends.models as models
from twoends.errors import ModelError


@pytest.fixture
def clean_registry(monkeypatch):
    """Register test entries without leaking them into other tests."""
    monkeypatch.setattr(models, "_NAMED", dict(models._NAMED))
    monkeypatch.setattr(models, "_PREFIXES", dict(models._PREFIXES))


def test_builtins_are_listed_with_installed_flags():
    rows = {r.name: r for r in models.available()}
    for n in ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"):
        assert n in rows
        assert isinstance(rows[n].installed, bool)
        assert "ImageNet" in rows[n].description
    assert len(models.available()[0]) == 3  # (name, description, installed)


def test_register_and_load_by_name_is_lazy(clean_registry):
    calls = []
    models.register("toy-model", lambda **kw: calls.append(kw) or "backend", "a toy")
    assert calls == []  # registering builds nothing
    assert models.load_backend("TOY_model", device="cpu") == "backend"  # case and -/_ insensitive
    assert calls == [{"run": twoends.RunOptions(device="cpu")}]  # run options reach builders as one value


def test_duplicate_names_need_replace(clean_registry):
    models.register("toy", lambda **kw: 1, "a toy")
    with pytest.raises(ModelError, match="already registered"):
        models.register("toy", lambda **kw: 2, "again")
    models.register("toy", lambda **kw: 2, "again", replace=True)
    assert models.load_backend("toy") == 2


def test_prefix_dispatch_passes_the_rest_of_the_name(clean_registry):
    models.register_prefix("zoo", lambda rest, **kw: ("zoo", rest, kw), "a zoo of models")
    assert models.load_backend("zoo:resnet50", device="cpu") == (
        "zoo",
        "resnet50",
        {"run": twoends.RunOptions(device="cpu")},
    )
    assert models.load_backend("ZOO:a:b.onnx") == (
        "zoo",
        "a:b.onnx",
        {"run": twoends.RunOptions()},
    )  # only the first ':' splits
    assert ("zoo:...", "a zoo of models", True) in models.available()
    with pytest.raises(ModelError, match="names no model"):
        models.load_backend("zoo:")


def test_requires_says_whether_installed(clean_registry):
    models.register("needs-nothing", lambda **kw: None, "x", requires=("json",))
    models.register("needs-missing", lambda **kw: None, "x", requires=("no_such_module_here_xyz",))
    rows = {r.name: r.installed for r in models.available()}
    assert rows["needs_nothing"] is True
    assert rows["needs_missing"] is False


def test_unknown_name_lists_what_is_available_and_suggests():
    with pytest.raises(ModelError) as err:
        models.load_backend("efficientnet_lite9")
    msg = str(err.value)
    assert "unknown model 'efficientnet_lite9'" in msg
    assert "Did you mean" in msg and "efficientnet_lite0" in msg
    assert "Available:" in msg and "twoends models" in msg


def test_unknown_prefix_suggests_a_close_one(clean_registry):
    models.register_prefix("torchvision", lambda rest, **kw: rest, "torchvision models", replace=True)
    with pytest.raises(ModelError, match=r"unknown model prefix 'torchvison:'.*Did you mean 'torchvision:'"):
        models.load_backend("torchvison:resnet50")


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_bad_names_are_model_errors(bad):
    with pytest.raises(ModelError):
        models.load_backend(bad)


def test_names_with_a_colon_must_use_register_prefix(clean_registry):
    with pytest.raises(ModelError, match="register_prefix"):
        models.register("a:b", lambda **kw: None, "x")


def test_imagenet_labels_are_the_standard_1000():
    labels = models.imagenet_labels()
    assert len(labels) == 1000 and len(set(labels)) == 1000
    assert (labels[0], labels[281], labels[282], labels[285], labels[967]) == (
        "tench",
        "tabby",
        "tiger cat",
        "Egyptian cat",
        "espresso",
    )
