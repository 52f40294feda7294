"""What the doctor (``twoends.diagnose``) needs to know about a ``torch.nn.Module``.

The doctor looks at the module the user hands in *as it is*: it must see a
forgotten ``.eval()`` rather than fix it. So, unlike ``TorchBackend``, nothing
here changes the module for good: every forward pass runs without gradients,
restores each submodule's training flag and every buffer (a batch-norm layer in
training mode updates its running statistics on every call), and forks the
random generators so that dropout does not move the user's random stream.

Importing this module imports torch: only the doctor's probe dispatch imports
it, and only for a model that is already a torch module.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

__all__ = ["TorchProbe"]

_NOISY = (
    torch.nn.modules.dropout._DropoutNd,
    torch.nn.modules.batchnorm._BatchNorm,
)
_LAST_ACTIVATIONS = {
    torch.nn.Softmax: "softmax",
    torch.nn.LogSoftmax: "log_softmax",
    torch.nn.Sigmoid: "sigmoid",
}


class TorchProbe:
    """Read-only questions about one module; every answer leaves the module as it was."""

    framework = "torch"

    def __init__(self, module: torch.nn.Module):
        self.module = module

    # -- what can be read without running it ---------------------------------

    def training_flag(self) -> bool:
        return bool(self.module.training)

    def active_noisy_layers(self) -> list[str]:
        """Names of dropout and batch-norm layers that are in training mode now."""
        return [
            f"{name or '(root)'} ({type(m).__name__})"
            for name, m in self.module.named_modules()
            if m.training and isinstance(m, _NOISY)
        ]

    def last_activation(self) -> str | None:
        """'softmax' / 'log_softmax' / 'sigmoid' when the last registered layer is one of those.

        Only registered layers are visible; a functional softmax in ``forward`` is
        caught from the outputs instead.
        """
        leaves = [m for m in self.module.modules() if not any(True for _ in m.children())]
        if not leaves:
            return None
        return next((v for k, v in _LAST_ACTIVATIONS.items() if isinstance(leaves[-1], k)), None)

    # -- running it, without side effects ------------------------------------

    def forward(self, batch: Any, *, mode: str = "as_is", seed: int | None = None) -> np.ndarray:
        """Raw outputs as float64 NumPy, in the module's current mode ("as_is") or in "eval".

        ``seed`` seeds the (forked) random generators for this pass: two passes with
        different seeds draw different dropout masks, as two real calls would.
        """
        x = self._tensor(batch)
        with self._untouched():
            if seed is not None:
                torch.manual_seed(seed)
            if mode == "eval":
                self.module.eval()
            with torch.no_grad():
                out = self.module(x)
        return _outputs_to_numpy(out)

    def _tensor(self, batch: Any) -> torch.Tensor:
        x = batch if isinstance(batch, torch.Tensor) else torch.from_numpy(np.array(batch))
        param = next((p for p in self.module.parameters() if p.is_floating_point()), None)
        if param is not None:
            x = x.to(param.device)
            if x.is_floating_point() and x.dtype != param.dtype:
                x = x.to(param.dtype)
        return x

    @contextmanager
    def _untouched(self) -> Iterator[None]:
        flags = [(m, m.training) for m in self.module.modules()]
        buffers = {name: b.detach().clone() for name, b in self.module.named_buffers()}
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        try:
            with torch.random.fork_rng(devices=devices):
                yield
        finally:
            for m, flag in flags:
                m.training = flag
            with torch.no_grad():
                for name, b in self.module.named_buffers():
                    if name in buffers:
                        b.copy_(buffers[name])


def _outputs_to_numpy(out: Any) -> np.ndarray:
    if not isinstance(out, torch.Tensor):
        from .torch import _extract_logits  # the backend's one rule for tuples, dicts, .logits

        out = _extract_logits(out)
    return out.detach().to("cpu", torch.float64).numpy()
