"""Runtimes: a PyTorch model's forward pass run by the fastest runtime that gives PyTorch's numbers.

``runtime="torch"`` runs the module as it is. ``"onnxruntime"`` and ``"openvino"``
run its graph, exported once to ONNX and cached (``runtimes/cache.py``), after it
passed a check against PyTorch on real inputs (``runtimes/check.py``: every
probability within 1e-4 in float32). ``"auto"`` (the default) takes the fastest of
the three as measured at export, among those that passed; a model whose export
or check fails keeps PyTorch, with a note that says why (and is not exported again).
``precision="bf16"`` with ``auto`` takes OpenVINO's bfloat16 where the CPU has it
(opt-in: the check records its agreement), else PyTorch's autocast.

Two steps, both called by the composition root (``api.py``), one place each:

- ``cached_backend`` before a named model is built: with an export in the cache,
  the model runs from it and PyTorch is never imported (a start-up without torch);
- ``convert`` after a backend was built: a PyTorch backend becomes the chosen runtime's.

``auto`` considers the graph runtimes only on the CPU (no GPU visible, device
"auto" or "cpu") and without ``compile``/``dtype``, which are PyTorch's own options.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time
from typing import Any

from ..errors import ConfigError, ModelError
from ..options import RunOptions
from . import cache
from .check import GRAPH_RUNTIMES, TOLERANCE, installed

__all__ = ["cached_backend", "convert", "choose", "weights_hash"]


def _gpu_visible() -> bool:
    """A GPU PyTorch would pick for device "auto", seen without importing torch."""
    return os.path.exists("/dev/nvidiactl") or (sys.platform == "darwin" and os.uname().machine == "arm64")


def wants_graph(run: RunOptions) -> bool:
    if run.runtime in GRAPH_RUNTIMES:
        return True
    if run.runtime != "auto" or run.compile or run.dtype is not None or run.precision == "fp16":
        return False
    device = str(run.device).lower()
    return device == "cpu" or (device == "auto" and not _gpu_visible())


def choose(run: RunOptions, check: dict) -> tuple[str, str]:
    """(runtime, why) for these run options, from an export's check record."""
    found = check.get("runtimes", {})
    if run.runtime in GRAPH_RUNTIMES:
        if run.runtime == "onnxruntime" and run.precision != "fp32":
            raise ConfigError(
                f"runtime 'onnxruntime' runs float32 only, got precision={run.precision!r}: "
                "use runtime='openvino' (bf16 on CPUs that have it) or runtime='torch'"
            )
        key = run.runtime if run.precision == "fp32" else f"{run.runtime}-{run.precision}"
        got = found.get(key)
        if got is None:
            return "torch", f"{key} was not checked for this export (is it installed?); PyTorch kept"
        if not got.get("ok"):
            return "torch", f"{key} refused: {_result(got)} (more than {TOLERANCE:g}); PyTorch kept"
        return run.runtime, f"{key} as asked: {_result(got)}"
    if run.precision == "bf16":
        got = found.get("openvino-bf16", {})
        if got.get("ok") and installed("openvino"):
            return "openvino", f"auto, bf16: OpenVINO bfloat16 ({_result(got)}; opt-in precision)"
        return "torch", "auto, bf16: OpenVINO bfloat16 is not available here; PyTorch autocast"
    passed = {k: v for k, v in found.items() if k in GRAPH_RUNTIMES and v.get("ok") and installed(k)}
    torch_speed = found.get("torch", {}).get("inputs_per_s", 0.0)
    if not passed:
        return "torch", "auto: no graph runtime matched PyTorch within the tolerance; PyTorch kept"
    best = _fastest(passed)
    if passed[best].get("inputs_per_s", 0.0) <= torch_speed:
        return (
            "torch",
            f"auto: PyTorch was the fastest at export ({torch_speed:g} vs {best} "
            f"{passed[best].get('inputs_per_s')} inputs/s)",
        )
    why = (
        f"auto: the fastest that matched PyTorch ({passed[best].get('inputs_per_s'):g} inputs/s vs "
        f"PyTorch {torch_speed:g} at export; {_result(passed[best])})"
    )
    top = max(passed, key=lambda k: passed[k].get("inputs_per_s", 0.0))
    if top != best:
        why += (
            f"; {top} ({passed[top]['inputs_per_s']:g} inputs/s) is within {SAME_SPEED:.0%} but starts in "
            f"{passed[top]['start_seconds']:.2f} s, {best} in {passed[best]['start_seconds']:.2f} s"
        )
    return best, why


#: runtimes whose measured speeds differ by less than this are taken as equally fast (the
#: timing's own spread on a quiet machine is a few percent), and the one that starts sooner wins
SAME_SPEED = 0.10


def _fastest(passed: dict[str, dict]) -> str:
    """The fastest runtime; among those within SAME_SPEED of it, the one that starts soonest.

    Measured here (EfficientNet-Lite0, 2 cores): ONNX Runtime and OpenVINO forward at the same
    rate, but OpenVINO's import and compile add 0.2 s to every process, and its threads share
    the cores with decoding less well: 300 photos took 2.66 s with it and 2.37 s with ONNX Runtime.
    """
    speed = {k: v.get("inputs_per_s", 0.0) for k, v in passed.items()}
    top = max(speed, key=lambda k: speed[k])
    close = [k for k in passed if speed[k] >= (1 - SAME_SPEED) * speed[top]]
    if any("start_seconds" not in passed[k] for k in close):  # a record from before starts were timed
        return top
    return min(close, key=lambda k: (passed[k]["start_seconds"], -speed[k]))


def _result(got: dict) -> str:
    if "max_dp" not in got:
        return got.get("error", "not measured")
    return f"max |dp| {got['max_dp']:.2g}, top-1 agreement {got['top1_agreement']:.0%}"


# --------------------------------------------------------------------------- before building: the cache


def cached_backend(name: str, run: RunOptions, *, spec: Any, options: dict) -> Any:
    """The runtime backend of a named model from its cached export, without importing PyTorch; None
    when there is none to use (then the model is built, and ``convert`` exports it)."""
    if spec is not None or not wants_graph(run):
        return None
    from ..models import fingerprint

    found = fingerprint(name, options)
    if found is None:
        return None
    entry = cache.find(cache.cache_key(*found))
    if entry is None or entry.refused:
        return None
    runtime, why = choose(run, entry.check)
    if runtime == "torch":
        return None
    return _graph_backend(runtime, entry, run, why, info=None, source=None)


# --------------------------------------------------------------------------- after building: convert


def convert(
    backend: Any,
    plan: Any,
    run: RunOptions,
    *,
    spec_key: Any = None,
    name: str | None = None,
    fingerprint: tuple[str, str] | None = None,
) -> Any:
    """``backend`` run by the runtime ``run`` asks for (see the module docstring); others unchanged."""
    if not _is_torch(backend):
        if run.runtime in GRAPH_RUNTIMES and getattr(backend, "runtime", None) != run.runtime:
            raise ConfigError(
                f"runtime={run.runtime!r} converts PyTorch models; {backend.describe()} is not one. For a model "
                "file use its prefix instead ('onnx:model.onnx' for ONNX Runtime, 'openvino:model.onnx' for OpenVINO)"
            )
        return backend
    if not wants_graph(run):
        return backend
    model, weights = fingerprint or (name or backend.info.name, weights_hash(backend))
    key = cache.cache_key(model, weights, spec_key)
    entry = cache.find(key) or _export(backend, plan, key)
    if entry.refused:
        return _keep_torch(backend, run, f"not exported: {entry.refused}")
    runtime, why = choose(run, entry.check)
    if runtime == "torch":
        return _keep_torch(backend, run, why, entry)
    return _graph_backend(runtime, entry, run, why, info=backend.info, source=backend)


def _is_torch(backend: Any) -> bool:
    if "torch" not in sys.modules:
        return False
    from ..backends.torch import TorchBackend

    return isinstance(backend, TorchBackend)


def weights_hash(backend: Any) -> str:
    """sha256 of the module's class and its state dict (names, dtypes, shapes, bytes)."""
    import torch

    module = backend.module
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for key, t in module.state_dict().items():
        t = t.detach().to("cpu").contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _export(backend: Any, plan: Any, key: dict) -> cache.Entry:
    model = key["model"]
    say(
        f"exporting {model} to ONNX once for the faster runtimes, and checking it against PyTorch "
        f"(cached in {cache.cache_dir()})..."
    )
    started = time.perf_counter()

    def write(folder):
        from .check import export_and_check

        try:
            record = export_and_check(
                backend,
                plan,
                folder,
                lambda rt, path, precision: _open(
                    rt, path, RunOptions(device="cpu", precision=precision, runtime=rt), backend.info, backend
                ),
            )
        except (ModelError, ImportError) as e:
            cache.write_refusal(folder, str(e)[:2000])
            return
        finally:
            backend.module.to(backend._device)  # the exporter moved it to the CPU
        _write_sidecar(folder, backend, key, record)

    entry = cache.store(key, write)
    if entry.refused:
        say(f"{model} could not be exported ({entry.refused[:300]}); it runs with PyTorch")
    else:
        found = ", ".join(f"{k} {_result(v)}" for k, v in entry.check["runtimes"].items() if k != "torch")
        say(f"exported {model} in {time.perf_counter() - started:.0f} s ({found})")
    return entry


def _write_sidecar(folder: Any, backend: Any, key: dict, record: dict) -> None:
    from ..preprocess.spec import ImageSpec
    from ..sidecar import write_sidecar

    info = backend.info
    spec = info.spec.to_dict() if isinstance(info.spec, ImageSpec) else None  # an HF processor: in memory only
    write_sidecar(
        folder / cache.SIDECAR,
        {
            "model": info.name,
            "spec": spec,
            "labels": list(info.labels) if info.labels else None,
            "activation": info.activation,
            "outputs": info.outputs,
            "input_name": "input",
            "output_name": "logits",
            "opset": key["opset"],
            "exporter": record["exporter"],
            "source": backend.describe(),
            "twoends_version": key["twoends_version"],
            "check": record,
            "notes": list(info.notes),
            "cache_key": key,
        },
    )


def _keep_torch(backend: Any, run: RunOptions, why: str, entry: Any = None) -> Any:
    backend.runtime_report = {
        "asked": run.runtime,
        "runtime": "torch",
        "why": why,
        "check": entry.check if entry is not None else None,
    }
    backend.info = dataclasses.replace(backend.info, notes=(*backend.info.notes, f"runtime: torch ({why})"))
    return backend


def _graph_backend(runtime: str, entry: Any, run: RunOptions, why: str, *, info: Any, source: Any) -> Any:
    rt_run = RunOptions(device=run.device, precision=run.precision, runtime=runtime)
    backend = _open(runtime, entry.graph, rt_run, info, source)
    backend.runtime_report = {
        "asked": run.runtime,
        "runtime": runtime,
        "why": why,
        "check": entry.check,
        "cache": str(entry.folder),
    }
    backend.info = dataclasses.replace(backend.info, notes=(*backend.info.notes, f"runtime: {runtime} ({why})"))
    return backend


def _open(runtime: str, path: Any, run: RunOptions, info: Any, source: Any) -> Any:
    """The runtime's backend for a graph: an image graph (its sidecar gives the two ends when ``info``
    is None), or a text graph fed by the source backend's tokenizer."""
    module = __import__(
        f"twoends.backends.{'onnx' if runtime == 'onnxruntime' else 'openvino'}", fromlist=["from_path", "graph_runner"]
    )
    if runtime == "openvino":  # its compiled models live beside the exports
        blobs = cache.cache_dir() / "openvino"
        try:
            blobs.mkdir(parents=True, exist_ok=True)
            module.keep_compiled_models(str(blobs))
        except OSError:  # a read-only cache only means compiling each time
            pass
    if source is not None and hasattr(source, "tokenizer"):
        from ..backends.text_batches import TextGraphBackend

        run_graph, names, device = module.graph_runner(path, run=run)
        return TextGraphBackend(
            run_graph,
            names,
            source.tokenizer,
            info=info,
            max_length=source.max_length,
            runtime=runtime,
            device=device,
            what=f"precision {run.precision}",
        )
    backend = module.from_path(path, run=run)
    if info is not None:  # the torch backend's own info (e.g. an HF processor spec no sidecar can hold)
        backend.info = dataclasses.replace(info, notes=(*info.notes, *backend.info.notes[-1:]))
    return backend


def say(message: str) -> None:
    """A one-off message on stderr (exporting takes a while: the user is told once, and how long)."""
    print(f"twoends: {message}", file=sys.stderr, flush=True)
