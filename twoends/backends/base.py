"""The narrow contract between twoends and a framework.

A backend turns a batch into logits and tells what it knows about its model:
its preprocessing spec, its labels and its activation. Putting the model in
evaluation mode and turning gradient tracking off is the backend's job, done
once when it is built, never forgotten.

Framework names appear only in modules of this package.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class ModelInfo:
    """What a backend knows about its model besides the forward pass.

    ``spec`` is the bundled preprocessing (an ``ImageSpec`` or ``TextSpec``), or None.
    ``labels`` is a sequence of class names (or None if the model ships none).
    ``activation`` is "softmax", "sigmoid", "auto" (decided from the number of
    outputs) or None (unknown: the classifier decides).
    ``outputs`` is "logits" or "probabilities" (a model whose last layer is a softmax).
    """

    name: str = "model"
    spec: Any = None
    labels: Sequence[str] | None = None
    activation: str | None = None
    outputs: str = "logits"
    num_outputs: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class Backend(abc.ABC):
    """One framework's adapter. Subclasses keep to this small surface."""

    #: what the backend knows about its model
    info: ModelInfo
    #: the device the model runs on, as a plain string ("cpu", "cuda:0", ...)
    device: str = "cpu"
    #: True when ``forward`` keeps to one core (a small sequential model): decoding may run beside it
    single_threaded: bool = False

    @abc.abstractmethod
    def forward(self, batch: Any) -> Any:
        """Run the model on a preprocessed batch and return raw outputs [B, C].

        ``batch`` is a NumPy array laid out as the model's spec says (or a
        framework array the user passed in, which stays on its device).
        The result is an array of the backend's own library; the head works
        on it without converting.
        """

    def collate(self, inputs: Sequence[Any]) -> Any:
        """Stack prepared model inputs into one batch.

        NumPy inputs are stacked with NumPy; a backend whose users may pass its
        framework's tensors overrides this to stack them without leaving the device.
        """
        from ..preprocess.protocol import stack_inputs

        return stack_inputs(inputs)

    def plan_batches(self, batch_size: int) -> None:  # noqa: B027 - a hook: most backends need nothing
        """Told once, by the Classifier, the batch size it will send (a compiled model fixes its shape to it)."""

    def inputs_per_call(self, batch_size: int) -> int:
        """How many inputs the Classifier hands to one collate/forward call for batches of ``batch_size``.
        A text backend takes several batches' worth, to sort them by length (backends/text_batches.py)."""
        return batch_size

    def describe(self) -> str:
        return f"{type(self).__name__}({self.info.name}, device={self.device})"
