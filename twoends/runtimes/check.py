"""Export a PyTorch model's graph once, and prove each runtime against PyTorch on real inputs.

The proof (Design rule 11: speed never changes numbers silently): the exported
graph is run by every installed runtime on a batch of *real* inputs - four photos
that ship with scikit-image and their mirror images for an image model, sentences
of mixed length from the Python standard library's docstrings for a text model -
and compared with PyTorch in float32 on the same batch. The batch has 8 inputs, not
the 2 the graph was traced with, which also proves the batch axis is dynamic. A
runtime passes when no probability differs by more than ``TOLERANCE`` (softmax
and sigmoid both checked: the activation may still change at settling). Each
runtime is also timed on that batch (inputs/s, warm, the best of 5 interleaved rounds)
and on its start (import and session), and ``auto`` takes the fastest that passed
(``runtimes.choose``: of two within 10% of each other, the one that starts sooner). OpenVINO's bfloat16 is measured too, with its
agreement (it is opt-in: ``precision="bf16"``), never chosen for float32.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ModelError

__all__ = ["TOLERANCE", "GRAPH_RUNTIMES", "installed", "real_batch", "export_and_check"]

TOLERANCE = 1e-4  # largest |p_runtime - p_torch| accepted for float32 (Design rule 11)
GRAPH_RUNTIMES = ("onnxruntime", "openvino")
_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
_DOC_MODULES = ("json", "textwrap", "functools", "itertools", "pathlib", "shutil", "string", "heapq")


def installed(runtime: str) -> bool:
    return importlib.util.find_spec(runtime) is not None


def real_batch(plan: Any) -> tuple[list[Any], str]:
    """Eight real inputs prepared by ``plan`` (the model's own input end), and what they are."""
    from twoends.preprocess.protocol import apply_deferred
    from twoends.preprocess.sources import Item

    if plan.kind == "image":
        from skimage import data  # a run dependency: its photos ship inside the package

        photos = [getattr(data, name)() for name in _PHOTOS]
        photos += [np.ascontiguousarray(p[:, ::-1]) for p in photos]
        what = "4 photos from scikit-image and their mirror images"
        items = [Item(f"<photo #{i}>", p) for i, p in enumerate(photos)]
    elif plan.kind == "text":
        import importlib

        docs = [(importlib.import_module(m).__doc__ or "").strip() for m in _DOC_MODULES]
        texts = [" ".join(d.split()[: 6 + 9 * i]) for i, d in enumerate(docs) if d]
        what = f"{len(texts)} sentences of mixed length from the standard library's docstrings"
        items = [Item(f"<text #{i}>", t) for i, t in enumerate(texts)]
    else:
        raise ModelError(f"no real inputs to check a {plan.kind} model with (photos for images, sentences for texts)")
    return apply_deferred(plan, [plan.prepare(item) for item in items]), what


def _probabilities(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = z.astype(np.float64).reshape(len(z), -1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True), 1 / (1 + np.exp(-z))


def compare(got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    (ps, pg), (ws, wg) = _probabilities(got), _probabilities(want)
    return {
        "max_dp": float(max(np.abs(ps - ws).max(), np.abs(pg - wg).max())),
        "max_dlogit": float(np.abs(got.astype(np.float64) - want).max()),
        "top1_agreement": float(np.mean(got.argmax(1) == want.argmax(1))),
    }


def inputs_per_s(fns: dict[str, Callable[[], Any]], n: int, rounds: int = 5) -> dict[str, float]:
    """Inputs per second of each ``fns[key]()`` (one batch of ``n`` inputs), timed in turn, round after round,
    keeping each one's fastest round. On a shared machine a runtime timed alone in a busy moment looked
    slower than it is and ``auto`` picked another (the export records had torch at 1.9 images/s); the
    fastest of interleaved rounds is what each can do, compared under the same conditions."""
    for fn in fns.values():
        fn()  # warm: kernels, caches, first-call allocations
    best = {key: float("inf") for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[key] = min(best[key], time.perf_counter() - t)
    return {key: n / max(t, 1e-9) for key, t in best.items()}


@contextlib.contextmanager
def float32(backend: Any):
    """The torch reference in float32 whatever precision the backend was asked for."""
    saved = getattr(backend, "_autocast", None)
    backend._autocast = None
    try:
        yield
    finally:
        backend._autocast = saved


def export_and_check(backend: Any, plan: Any, folder: Path, open_graph: Callable[..., Any]) -> dict:
    """Write ``folder/model.onnx`` from ``backend`` (a TorchBackend) and return its check record.

    ``open_graph(runtime, path, precision)`` builds a runtime's backend for the written graph.
    Raises ModelError (export failed, or no real inputs for this kind of model).
    """
    from twoends.backends.onnx_export import export_any

    values, what = real_batch(plan)
    batch = backend.collate(values)
    with float32(backend):
        want = np.asarray(_numpy(backend.forward(batch)), dtype=np.float64)
    graph = folder / "model.onnx"
    t = time.perf_counter()
    exporter, failed = export_any(backend, graph, values)
    record: dict[str, Any] = {
        "against": f"PyTorch float32 on {what}",
        "batch": len(values),
        "tolerance": TOLERANCE,
        "exporter": exporter,
        "exporters_failed": failed,
        "export_seconds": round(time.perf_counter() - t, 1),
        "runtimes": {"torch": {}},
    }
    timers: dict[str, Callable[[], Any]] = {}
    for runtime in GRAPH_RUNTIMES:
        if not installed(runtime):
            continue
        for precision in ("fp32", "bf16") if runtime == "openvino" else ("fp32",):
            key = runtime if precision == "fp32" else f"{runtime}-{precision}"
            try:
                rt = open_graph(runtime, graph, precision)
            except Exception as exc:  # e.g. no bf16 on this CPU: recorded, not fatal
                record["runtimes"][key] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                continue
            rb = rt.collate(values)
            try:
                got = np.asarray(rt.forward(rb))
                if got.shape != want.shape:  # e.g. a trace that baked the traced batch in
                    raise ModelError(f"outputs shaped {got.shape}, PyTorch's {want.shape}")
            except Exception as exc:  # the graph runs, but not as the model does: refused
                record["runtimes"][key] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
                continue
            found = compare(got, want)
            timers[key] = functools.partial(rt.forward, rb)  # timed below, with the others
            found["ok"] = precision != "fp32" or found["max_dp"] <= TOLERANCE
            record["runtimes"][key] = found

    def torch_float32():
        with float32(backend):
            return backend.forward(batch)

    for key, rate in inputs_per_s({"torch": torch_float32, **timers}, len(values)).items():
        record["runtimes"][key]["inputs_per_s"] = round(rate, 1)
    for key, seconds in start_seconds(graph, list(timers)).items():
        record["runtimes"][key]["start_seconds"] = round(seconds, 3)
    return record


_START = """
import sys, time
import numpy
from twoends.options import RunOptions
module, path, runtime, precision = sys.argv[1:]
t = time.perf_counter()
__import__("twoends.backends." + module, fromlist=["graph_runner"]).graph_runner(
    path, run=RunOptions(runtime=runtime, precision=precision))
print(time.perf_counter() - t)
"""


def start_seconds(graph: Path, keys: list[str], rounds: int = 2) -> dict[str, float]:
    """What each runtime costs a fresh process before its first input: importing it and building
    its session (or compiling the model), timed in a new Python process each time, in turn,
    keeping each one's fastest. Timed in this process instead, whichever runtime came first
    paid for imports the others then shared. A runtime whose start cannot be timed is left out."""
    best: dict[str, float] = {}
    for _ in range(rounds):
        for key in keys:
            runtime, _, precision = key.partition("-")
            module = "onnx" if runtime == "onnxruntime" else runtime
            try:
                done = subprocess.run(
                    [sys.executable, "-c", _START, module, str(graph), runtime, precision or "fp32"],
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
                seconds = float(done.stdout.split()[-1])
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                continue
            best[key] = min(best.get(key, seconds), seconds)
    return best


def _numpy(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
