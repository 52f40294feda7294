"""Loading by name, as a newcomer types it: suggestions, no hub, hostile weights files.

No network is used: the hub endpoint is pointed at a local port where nothing listens
(HF_ENDPOINT, read by huggingface_hub at import, so those runs are subprocesses).
"""

from __future__ import annotations

import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import twoends

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name,suggestion",
    [
        ("resnet50", "torchvision:resnet50"),
        ("google/vit-base-patch16-224", "hf:google/vit-base-patch16-224"),
        ("model.onnx", "onnx:model.onnx"),
        ("my_model.keras", "keras:my_model.keras"),
        ("resnet50.a1_in1k", "timm:resnet50.a1_in1k"),
    ],
)
def test_a_name_without_its_prefix_suggests_the_prefixed_name(name, suggestion):
    if suggestion.startswith("torchvision:"):
        pytest.importorskip("torchvision")
    if suggestion.startswith("timm:"):
        pytest.importorskip("timm")
    with pytest.raises(twoends.ModelError) as info:
        twoends.load(name)
    assert f"Did you mean '{suggestion}'" in str(info.value)


def test_the_cli_suggests_too_with_exit_2(tmp_path):
    from click.testing import CliRunner

    from tests.photos import write_photos
    from twoends.cli import main

    photo = write_photos(tmp_path)["coffee"]
    r = CliRunner().invoke(main, ["predict", str(photo), "-m", "lite0.onnx"])
    assert r.exit_code == 2 and "onnx:lite0.onnx" in r.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once it is closed: connections are refused


def _run(code: str, **env) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), "HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", **env}
    full.pop("HF_HUB_OFFLINE", None)
    full.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300)


OFFLINE_LOAD = """
import json, twoends
from huggingface_hub import constants
from twoends.backends.hub_access import offline_when_unreachable
with offline_when_unreachable() as why:
    inside = constants.HF_HUB_OFFLINE
out = {"why": why, "inside": inside, "after": constants.HF_HUB_OFFLINE}
try:
    twoends.load(NAME)
except twoends.ModelError as e:
    out["error"] = str(e)
print(json.dumps(out))
"""


@pytest.mark.parametrize(
    "name,module", [("hf:org/not-cached-model", "transformers"), ("timm:resnet18.a1_in1k", "timm")]
)
def test_an_unreachable_hub_switches_to_the_cache_at_once_and_says_hf_hub_offline(name, module, tmp_path):
    pytest.importorskip(module)
    r = _run(OFFLINE_LOAD.replace("NAME", repr(name)), HF_HOME=str(tmp_path / "hf"))
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # offline mode was set for the load (so no retries), and only for it
    assert "cannot connect" in out["why"] and out["inside"] is True and out["after"] is False
    assert "HF_HUB_OFFLINE" in out["error"] and "The hub was not used" in out["error"]
    assert "Retrying" not in r.stderr  # the hub library never retried a request


def test_with_hf_hub_offline_set_nothing_is_probed(tmp_path):
    pytest.importorskip("transformers")
    r = _run(
        OFFLINE_LOAD.replace("NAME", repr("hf:org/not-cached-model")), HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf")
    )
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["why"] == "HF_HUB_OFFLINE is set" and "HF_HUB_OFFLINE" in out["error"]


class _Exploit:
    """A pickle that runs code when loaded: what a malicious pytorch_model.bin holds."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_pytorch_model_bin_is_refused_as_a_model_error(tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTConfig(
        image_size=32,
        patch_size=16,
        num_hidden_layers=1,
        hidden_size=32,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=3,
        architectures=["ViTForImageClassification"],
    )
    folder = tmp_path / "hf_model"
    folder.mkdir()
    config.save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    marker = tmp_path / "pwned"
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"vit.embeddings.cls_token": _Exploit(marker)}, f)
    with pytest.raises(twoends.ModelError, match="safetensors"):
        twoends.load(f"hf:{folder}")
    assert not marker.exists()  # the payload never ran
