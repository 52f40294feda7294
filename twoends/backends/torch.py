"""PyTorch backend: any ``torch.nn.Module`` that maps a batch to class scores.

The backend owns the module it is given. It puts it in evaluation mode once,
moves it to the chosen device, and runs every forward pass under
``torch.inference_mode()``. Nothing is restored afterwards: the caller handed
the module over to run inference, and silently flipping it back to training
mode would bring back the very bug this backend exists to prevent.

Importing this module imports torch; only code that already holds a torch
module (or asked for a torch model by name) should import it.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any, Mapping

import numpy as np
import torch

from twoends.backends.base import Backend, ModelInfo
from twoends.backends.torch_devices import _device_name, available_devices, resolve_device
from twoends.errors import ConfigError, InputError, ModelError
from twoends.options import RunOptions

__all__ = ["TorchBackend", "available_devices", "resolve_device", "info_from_module"]


# --------------------------------------------------------------------------- module info


def info_from_module(module: torch.nn.Module, *, name: str | None = None) -> ModelInfo:
    """Read what can be read from a module without running it.

    ``num_outputs`` comes from, in order: ``module.num_classes``,
    ``module.config.num_labels`` (Hugging Face), or the ``out_features`` of the
    last ``nn.Linear`` registered in the module (a guess that holds for plain
    classifiers; it is None when there is no Linear layer — the backend then
    learns it from the first forward pass). Labels come from
    ``module.config.id2label`` when present. The activation is left unknown.
    """
    num_outputs: int | None = None
    labels: list[str] | None = None
    notes: list[str] = []

    num_classes = getattr(module, "num_classes", None)
    config = getattr(module, "config", None)
    if isinstance(num_classes, int) and not isinstance(num_classes, bool) and num_classes > 0:
        num_outputs = num_classes
        notes.append("num_outputs from module.num_classes")
    elif config is not None and isinstance(getattr(config, "num_labels", None), int):
        num_outputs = int(config.num_labels)
        notes.append("num_outputs from module.config.num_labels")
    else:
        last_linear = None
        for sub in module.modules():
            if isinstance(sub, torch.nn.Linear):
                last_linear = sub
        if last_linear is not None:
            num_outputs = int(last_linear.out_features)
            notes.append("num_outputs from the last nn.Linear's out_features")

    id2label = getattr(config, "id2label", None) if config is not None else None
    if isinstance(id2label, Mapping) and id2label:
        try:
            ordered = sorted((int(k), str(v)) for k, v in id2label.items())
        except (TypeError, ValueError):
            ordered = []
        if ordered and [k for k, _ in ordered] == list(range(len(ordered))):
            labels = [v for _, v in ordered]
            notes.append("labels from module.config.id2label")

    activation, outputs = None, "logits"
    last = _last_layer(module)
    if isinstance(last, (torch.nn.Softmax, torch.nn.Sigmoid)):
        # the model already returns probabilities: softmaxing them again flattens every answer
        activation = "softmax" if isinstance(last, torch.nn.Softmax) else "sigmoid"
        outputs = "probabilities"
        notes.append(f"outputs are probabilities: the last layer is nn.{type(last).__name__} (not applied again)")
    elif isinstance(last, torch.nn.LogSoftmax):
        notes.append("the last layer is nn.LogSoftmax: log-probabilities are logits (softmax gives them back)")

    return ModelInfo(
        name=name or type(module).__name__,
        labels=labels,
        activation=activation,
        outputs=outputs,
        num_outputs=num_outputs,
        notes=tuple(notes),
    )


def _last_layer(module: torch.nn.Module) -> torch.nn.Module | None:
    """The last registered leaf module (the order ``modules()`` lists them in: definition order).

    A functional softmax in ``forward`` is invisible here; the Classifier looks at the
    first batch's outputs for that case.
    """
    leaves = [m for m in module.modules() if next(m.children(), None) is None]
    return leaves[-1] if leaves else None


# --------------------------------------------------------------------------- outputs


def _extract_logits(output: Any) -> torch.Tensor:
    """The logits tensor out of whatever the module returned.

    - a tensor is the logits;
    - an object with a ``.logits`` attribute (Hugging Face ``ModelOutput``) gives ``.logits``;
    - a mapping gives its "logits" entry, else its only tensor value;
    - a tuple or list gives its first element (torchvision's Inception/GoogLeNet
      auxiliary outputs and HF ``return_dict=False`` put the logits first).
    """
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, Mapping):
        if isinstance(output.get("logits"), torch.Tensor):
            return output["logits"]
        tensors = [v for v in output.values() if isinstance(v, torch.Tensor)]
        if len(tensors) == 1:
            return tensors[0]
        raise ModelError(
            f"the model returned a dict with keys {sorted(map(str, output))} and no 'logits' "
            "entry; expected a tensor, a dict with 'logits', or an object with .logits. "
            "Wrap the model so that it returns the logits tensor."
        )
    if isinstance(output, (tuple, list)) and output:
        return _extract_logits(output[0])
    raise ModelError(
        f"the model returned {type(output).__name__}; expected a tensor of logits "
        "(or a tuple/dict/object holding one). Wrap the model so that it returns the logits."
    )


# --------------------------------------------------------------------------- backend


class TorchBackend(Backend):
    """Run a ``torch.nn.Module`` as a classifier's middle step.

    On construction the module is put in evaluation mode **once** and moved to
    the device; nothing is restored later. The backend owns the module: it
    restores nothing the user did not ask for. If the module is found back in
    training mode before a forward pass (someone called ``.train()``), it is
    put back in evaluation mode and a warning is issued once.

    ``forward(batch)`` accepts a NumPy array (wrapped with ``torch.from_numpy``,
    no copy, then moved to the device) or a torch tensor (moved to the model's
    device if it is elsewhere) and returns the logits **tensor**, on the
    model's device, created under ``torch.inference_mode()`` (no autograd
    graph, ``torch.is_inference(out)`` is true). When the module returns a
    tuple/list (first element), a dict ("logits" entry) or an object with
    ``.logits`` (Hugging Face), the logits are taken from it.

    ``info.num_outputs`` is learnt from the first forward pass when unknown.

    Speed, opt-in and measured (bench/RESULTS.md):

    * ``precision``: "fp32" (default), "bf16" (autocast to bfloat16: CPUs with
      AVX-512 BF16/AMX and recent GPUs run convolutions and matmuls much faster;
      weights stay float32, so switching back costs nothing) or "fp16" (autocast,
      CUDA only). The logits are computed in the autocast dtype and handed on as
      float32, so probabilities, entropy and margins are not rounded to 16 bits.
    * ``channels_last``: NHWC memory format for the module and the inputs, which
      oneDNN and cuDNN convolutions prefer. "auto" turns it on for modules with
      2-D convolutions (numerically the same computation, in another memory order).
    * ``dtype``: cast the module itself (and the inputs) to a floating dtype.
    * ``compile``: run the module through ``torch.compile`` (Inductor, with
      freezing: weights folded in as constants, batch-norm folded into the
      convolutions). It compiles on the first batch (tens of seconds on a small
      CPU, and it needs a C++ compiler) and then runs about 1.5x faster on this
      project's CPU (bench/RESULTS.md): for big jobs, not for one photo. The
      batch size is the Classifier's (``plan_batches``), else the first batch's;
      a shorter batch is padded up to it and a longer one run in pieces, so a
      stream or a server never recompiles. If
      compiling fails, the module runs as it is, with a warning that says why.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        info: ModelInfo | None = None,
        run: RunOptions | None = None,
        device: str | torch.device | None = None,
        channels_last: bool | str | None = None,
        dtype: torch.dtype | str | None = None,
        precision: str | None = None,
        compile: bool | None = None,
    ) -> None:
        if not isinstance(module, torch.nn.Module):
            raise ModelError(f"TorchBackend needs a torch.nn.Module, got {type(module).__name__}")
        # the fields given here (direct use) on top of the settled run options
        run = RunOptions.of(
            run,
            device=None if device is None else str(device),
            channels_last=channels_last,
            dtype=dtype,
            precision=precision,
            compile=compile,
        )
        self.run = run
        self._device = resolve_device(run.device)
        self.device = _device_name(self._device)
        self._dtype = _resolve_dtype(run.dtype)
        self._autocast = _resolve_precision(run.precision, self._device)
        self.precision = precision = run.precision
        channels_last, compile = run.channels_last, run.compile
        if channels_last == "auto":
            channels_last = any(isinstance(m, torch.nn.Conv2d) for m in module.modules())
        self._channels_last = bool(channels_last)
        self.info = info if info is not None else info_from_module(module)
        self._warned_train = False

        module.eval()
        module.to(self._device)
        if self._dtype is not None:
            module.to(dtype=self._dtype)
        if self._channels_last:
            module.to(memory_format=torch.channels_last)
        self.module = module
        self._param_dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), None)
        self._compiled: Any = _compile(module) if compile else None
        self._compiled_batch: int | None = None  # the Classifier's batch size (plan_batches), else the first batch's

    # -- the contract ---------------------------------------------------------

    def forward(self, batch: Any) -> torch.Tensor:
        self._ensure_eval()
        x = self._to_tensor(batch)
        with torch.inference_mode():
            output = self._call(x)
        logits = _extract_logits(output)
        if self._autocast is not None and logits.dtype == self._autocast:
            # autocast's last matmul returns 16-bit logits; a probability rounded to 8 bits of
            # mantissa (bf16) would show two close classes as tied and the entropy as 4.625
            logits = logits.float()
        if self.info.num_outputs is None and logits.ndim >= 2:
            self.info = dataclasses.replace(
                self.info,
                num_outputs=int(logits.shape[-1]),
                notes=(*self.info.notes, "num_outputs from the first forward pass"),
            )
        return logits

    def collate(self, inputs: Any) -> Any:
        """Stack a batch; tensors the user passed are stacked with torch, on their device."""
        if any(isinstance(x, torch.Tensor) for x in inputs):
            first = tuple(inputs[0].shape)
            bad = next((i for i, x in enumerate(inputs) if tuple(x.shape) != first), None)
            if bad is not None:
                raise InputError(
                    f"inputs of one batch must share a shape; input 0 is {first}, input {bad} is "
                    f"{tuple(inputs[bad].shape)}: preprocess them alike, or pass them in separate calls"
                )
            return torch.stack([x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x)) for x in inputs])
        return super().collate(inputs)

    def plan_batches(self, batch_size: int) -> None:
        # the server's first batch may hold one request: compile for the batches to come
        if self._compiled is not None and self._compiled_batch is None:
            self._compiled_batch = int(batch_size)

    def describe(self) -> str:
        extras = []
        if self._channels_last:
            extras.append("channels_last")
        if self._dtype is not None:
            extras.append(str(self._dtype).replace("torch.", ""))
        if self._autocast is not None:
            extras.append(f"autocast {self.precision}")
        if self._compiled is not None:
            extras.append("torch.compile")
        extra = (", " + ", ".join(extras)) if extras else ""
        return f"TorchBackend({self.info.name}, device={self.device}{extra})"

    # -- steps ----------------------------------------------------------------

    def _ensure_eval(self) -> None:
        if any(m.training for m in self.module.modules()):
            self.module.eval()
            if not self._warned_train:
                self._warned_train = True
                warnings.warn(
                    f"{self.info.name}: the module was put back in training mode "
                    "(.train() was called after it was handed to twoends); dropout and "
                    "batch-norm statistics would make predictions random and wrong. "
                    "It has been put back in evaluation mode.",
                    RuntimeWarning,
                    stacklevel=3,
                )

    def _to_tensor(self, batch: Any) -> torch.Tensor:
        if isinstance(batch, torch.Tensor):
            x = batch
        elif isinstance(batch, np.ndarray):
            if not batch.flags.writeable:
                # from_numpy shares memory and warns on read-only arrays; the
                # model never writes its input, but copy rather than lie.
                batch = np.array(batch)
            x = torch.from_numpy(np.ascontiguousarray(batch))  # no copy when contiguous
        else:
            raise ModelError(
                f"TorchBackend.forward expects a NumPy array or a torch tensor, got {type(batch).__name__}"
            )
        if x.device != self._device:
            non_blocking = self._device.type == "cuda" and x.device.type == "cpu" and x.is_pinned()
            x = x.to(self._device, non_blocking=non_blocking)
        # float64 NumPy input into a float32 model is a plain dtype mismatch error in
        # torch; cast floating inputs to the module's floating dtype instead.
        target = self._dtype or self._param_dtype
        if target is not None and x.is_floating_point() and x.dtype != target:
            x = x.to(target)
        if self._channels_last and x.ndim == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _call(self, x: torch.Tensor) -> Any:
        if self._compiled is not None and x.ndim >= 1 and x.shape[0] > 0:
            return self._call_compiled(x)
        return self._run(self.module, x)

    def _run(self, fn: Any, x: torch.Tensor) -> Any:
        if self._autocast is None:
            return fn(x)
        with torch.autocast(device_type=self._device.type, dtype=self._autocast):
            return fn(x)

    def _call_compiled(self, x: torch.Tensor) -> torch.Tensor:
        """The compiled module on a fixed batch size: pad a short batch, cut a long one."""
        n = int(x.shape[0])
        size = self._compiled_batch or n
        try:
            if n == size:
                out = _extract_logits(self._run(self._compiled, x))
            elif n < size:
                # made like the batches the module was compiled on (a normal tensor, not an
                # inference-mode one, with the same strides), or its guards would recompile
                with torch.inference_mode(x.is_inference()):
                    padded = torch.cat([x, x.new_zeros((size - n, *x.shape[1:]))])
                    if self._channels_last and x.ndim == 4:
                        padded = padded.contiguous(memory_format=torch.channels_last)
                out = _extract_logits(self._run(self._compiled, padded))[:n]
            else:
                return torch.cat([self._call_compiled(x[i : i + size]) for i in range(0, n, size)])
        except Exception as exc:
            # a failed compile (no C++ compiler, an unsupported op) must not cost the run:
            # if the plain module takes this batch, compiling was the problem
            out = _extract_logits(self._run(self.module, x))
            self._compiled = None
            warnings.warn(
                f"{self.info.name}: torch.compile failed ({type(exc).__name__}: {str(exc).strip()[:300]}); "
                "running the module without compiling. Check that a C++ compiler is installed, "
                "or leave compile off",
                RuntimeWarning,
                stacklevel=4,
            )
            return out
        self._compiled_batch = size
        return out


PRECISIONS = ("fp32", "bf16", "fp16")


def _compile(module: torch.nn.Module) -> Any:
    """``torch.compile`` for inference: Inductor with freezing, one static batch size."""
    if not hasattr(torch, "compile"):
        raise ConfigError(f"compile=True needs torch >= 2.0 (torch.compile); this is torch {torch.__version__}")
    import torch._inductor.config as inductor_config

    compiled = torch.compile(module, dynamic=False)

    def run(x: torch.Tensor) -> Any:
        # Freezing folds the weights in as constants (and batch norm into the convolutions),
        # valid because the backend owns the module and never trains it. It is Inductor's
        # global config, read when a graph compiles (the first call), so it is set around
        # each call, not for the process; torch.compile(options={"freezing": True}) did not
        # freeze here (bench/RESULTS.md: 140 vs 339 images/s).
        with inductor_config.patch(freezing=True):
            return compiled(x)

    return run


def _resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a precision name (None for plain float32)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp32":
        return None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(
            f"precision 'fp16' needs a CUDA device (float16 autocast on {device.type} is slow or unsupported); "
            "use 'bf16' on CPUs with AVX-512 BF16 / AMX"
        )
    return torch.bfloat16 if precision == "bf16" else torch.float16


def _resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        if dtype is not None and not dtype.is_floating_point:
            raise ConfigError(f"dtype must be a floating dtype, got {dtype}")
        return dtype
    names = {
        "float32": torch.float32,
        "float16": torch.float16,
        "bfloat16": torch.bfloat16,
        "fp32": torch.float32,
        "fp16": torch.float16,
        "bf16": torch.bfloat16,
        "half": torch.float16,
        "float": torch.float32,
        "float64": torch.float64,
    }
    key = str(dtype).strip().lower().replace("torch.", "")
    if key not in names:
        raise ConfigError(f"unknown dtype {dtype!r}: expected one of {', '.join(sorted(names))}")
    return names[key]


def wrap_module(module: torch.nn.Module, *, run: RunOptions | None = None, name: str | None = None) -> TorchBackend:
    """The backend for a plain ``torch.nn.Module`` handed to ``twoends.wrap``."""
    return TorchBackend(module, info=info_from_module(module, name=name), run=run)
