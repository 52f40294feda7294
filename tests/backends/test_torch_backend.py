"""TorchBackend: eval mode once, inference mode, device choice, output shapes of every kind."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from twoends.backends.base import Backend, ModelInfo  # noqa: E402
from twoends.backends.torch import (  # noqa: E402
    TorchBackend,
    _extract_logits,
    available_devices,
    info_from_module,
    resolve_device,
)
from twoends.errors import ConfigError, ModelError  # noqa: E402


def small_net(num_classes: int = 5, dropout: float = 0.5) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(dropout),
        nn.Linear(4, num_classes),
    )


def batch(n: int = 2, size: int = 8) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((n, 3, size, size)).astype(np.float32)


def cpu_backend(module: nn.Module, **kw) -> TorchBackend:
    return TorchBackend(module, info=kw.pop("info", None), device="cpu", **kw)


# ------------------------------------------------------------------- eval / inference


def test_is_a_backend_and_sets_eval_mode_once():
    net = small_net()
    assert net.training
    b = cpu_backend(net)
    assert isinstance(b, Backend)
    assert not any(m.training for m in net.modules())
    assert b.module is net  # the backend owns the module, no copy


def test_output_is_an_inference_tensor_without_grad():
    b = cpu_backend(small_net())
    out = b.forward(batch())
    assert isinstance(out, torch.Tensor)
    assert out.shape == (2, 5)
    assert not out.requires_grad
    assert out.grad_fn is None
    assert torch.is_inference(out)


def test_numpy_input_is_not_copied(monkeypatch):
    seen = {}
    real = torch.from_numpy

    def spy(a):
        t = real(a)
        seen["ptr"] = t.data_ptr()
        return t

    monkeypatch.setattr(torch, "from_numpy", spy)
    x = batch()
    cpu_backend(small_net()).forward(x)
    assert seen["ptr"] == x.__array_interface__["data"][0]


def test_dropout_model_gives_identical_outputs_on_two_calls():
    b = cpu_backend(small_net(dropout=0.9))
    x = batch()
    a, c = b.forward(x), b.forward(x)
    assert torch.equal(a, c)


def test_train_mode_is_corrected_with_one_warning():
    net = small_net(dropout=0.9)
    b = cpu_backend(net)
    x = batch()
    reference = b.forward(x)
    net.train()
    with pytest.warns(RuntimeWarning, match="training mode"):
        out = b.forward(x)
    assert not net.training
    assert torch.equal(out, reference)
    net.train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: the second time is silent
        b.forward(x)
    assert not net.training


def test_a_submodule_put_back_in_train_mode_is_caught():
    net = small_net(dropout=0.9)
    b = cpu_backend(net)
    net[5].train()  # only the dropout layer
    with pytest.warns(RuntimeWarning):
        b.forward(batch())
    assert not net[5].training


def test_tensor_input_passes_through():
    b = cpu_backend(small_net())
    x = torch.from_numpy(batch())
    assert torch.equal(b.forward(x), b.forward(x.numpy()))


def test_float64_input_is_cast_to_the_model_dtype():
    b = cpu_backend(small_net())
    x = batch()
    assert torch.allclose(b.forward(x.astype(np.float64)), b.forward(x))


def test_read_only_array_is_accepted_without_warning():
    x = batch()
    x.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cpu_backend(small_net()).forward(x)


def test_rejects_what_is_not_an_array_or_module():
    with pytest.raises(ModelError, match="nn.Module"):
        TorchBackend(object(), device="cpu")
    with pytest.raises(ModelError, match="NumPy array or a torch tensor"):
        cpu_backend(small_net()).forward([[1.0, 2.0]])


# ------------------------------------------------------------------- devices


def test_auto_device_prefers_cuda_then_mps_then_cpu():
    dev = resolve_device("auto")
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        assert dev.type == "mps"
    else:
        assert dev.type == "cpu"
    assert available_devices()[-1] == "cpu"


def test_cpu_device_and_describe():
    b = TorchBackend(small_net(), device="CPU")
    b2 = TorchBackend(small_net(), device=torch.device("cpu"))
    assert b.device == b2.device == "cpu"
    assert "device=cpu" in b.describe()


@pytest.mark.parametrize("device", ["tpu", "gpu0", "", "cuda:x"])
def test_unknown_device_names_the_available_ones(device):
    with pytest.raises(ConfigError, match="cpu"):
        TorchBackend(small_net(), device=device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_cuda_is_a_config_error():
    with pytest.raises(ConfigError, match="CUDA is not available.*available devices: auto, .*cpu"):
        TorchBackend(small_net(), device="cuda")
    with pytest.raises(ConfigError):
        TorchBackend(small_net(), device="cuda:1")


def test_unavailable_mps_is_a_config_error():
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        pytest.skip("MPS is available here")
    with pytest.raises(ConfigError, match="MPS is not available"):
        TorchBackend(small_net(), device="mps")


def test_cuda_index_past_the_last_device_is_a_config_error():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    with pytest.raises(ConfigError, match="does not exist"):
        TorchBackend(small_net(), device=f"cuda:{torch.cuda.device_count()}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_from_numpy_and_from_a_cpu_tensor():
    b = TorchBackend(small_net(), device="cuda")
    x = batch()
    out = b.forward(x)
    assert out.device.type == "cuda" and torch.is_inference(out)
    pinned = torch.from_numpy(x).pin_memory()
    assert torch.allclose(b.forward(pinned), out)
    ref = cpu_backend(small_net()).forward(x)
    assert torch.allclose(out.cpu(), ref, atol=1e-5)


def test_unknown_dtype_is_a_config_error():
    with pytest.raises(ConfigError, match="dtype"):
        TorchBackend(small_net(), device="cpu", dtype="int8")
    with pytest.raises(ConfigError, match="floating"):
        TorchBackend(small_net(), device="cpu", dtype=torch.int32)


def test_channels_last_and_dtype_hooks_keep_results():
    x = batch()
    ref = cpu_backend(small_net()).forward(x)
    fast = cpu_backend(small_net(), channels_last=True, dtype="float64").forward(x)
    assert fast.dtype == torch.float64
    assert torch.allclose(fast.float(), ref, atol=1e-5)


# ------------------------------------------------------------------- output kinds


class Wrapped(nn.Module):
    """A model whose forward returns something other than a bare tensor."""

    def __init__(self, kind: str):
        super().__init__()
        self.net = small_net()
        self.kind = kind

    def forward(self, x):
        y = self.net(x)
        if self.kind == "tuple":
            return (y, torch.zeros(1))  # e.g. Inception aux logits after the main ones
        if self.kind == "list":
            return [y]
        if self.kind == "dict":
            return {"features": torch.zeros(1), "logits": y}
        if self.kind == "single-dict":
            return {"out": y}
        if self.kind == "hf":
            return SimpleNamespace(logits=y, hidden_states=None)
        raise AssertionError(self.kind)


@pytest.mark.parametrize("kind", ["tuple", "list", "dict", "single-dict", "hf"])
def test_logits_are_taken_from_tuple_dict_and_logits_outputs(kind):
    x = batch()
    ref = cpu_backend(small_net()).forward(x)
    out = cpu_backend(Wrapped(kind)).forward(x)
    assert isinstance(out, torch.Tensor)
    assert torch.equal(out, ref)


def test_ambiguous_or_odd_outputs_are_model_errors():
    with pytest.raises(ModelError, match="no 'logits'"):
        _extract_logits({"a": torch.zeros(1), "b": torch.zeros(1)})
    with pytest.raises(ModelError, match="returned str"):
        _extract_logits("nope")


# ------------------------------------------------------------------- info


def test_num_outputs_is_read_from_the_last_linear():
    info = info_from_module(small_net(num_classes=7))
    assert info.num_outputs == 7
    assert info.name == "Sequential"


def test_num_outputs_prefers_num_classes_and_hf_config():
    net = small_net(num_classes=7)
    net.num_classes = 9
    assert info_from_module(net).num_outputs == 9

    net = small_net(num_classes=3)
    net.config = SimpleNamespace(num_labels=3, id2label={0: "a", 2: "c", 1: "b"})
    info = info_from_module(net, name="hf")
    assert info.num_outputs == 3
    assert list(info.labels) == ["a", "b", "c"]


def test_num_outputs_is_learnt_from_the_first_forward():
    net = nn.Sequential(nn.Conv2d(3, 6, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())  # no Linear
    b = cpu_backend(net)
    assert b.info.num_outputs is None
    b.forward(batch())
    assert b.info.num_outputs == 6


def test_given_info_is_kept():
    info = ModelInfo(name="mine", activation="sigmoid", num_outputs=5)
    b = TorchBackend(small_net(), info=info, device="cpu")
    assert b.info is info
    b.forward(batch())
    assert b.info.activation == "sigmoid"
