"""Ray Data: the same classifier, the same rows, on as many machines as the cluster has.

::

    import ray, twoends.distributed.ray as tr

    ds = tr.predict_dataset("photos/", "efficientnet_lite0", batch_size=8, concurrency=4)
    ds.write_parquet("out/")                       # the columns of `twoends predict -o x.parquet`

    for pred in tr.predict_paths(["a.jpg", "b.jpg"]):   # Predictions, in input order
        print(pred.to_dict())

How it runs: ``map_batches`` with a callable class, so every actor loads the
model once (``twoends.load`` in ``__init__``) and then decodes, preprocesses and
predicts batch after batch with ``Classifier.prepare`` + ``predict_batch`` - the
same code as the local runner, so a bad file is an error row, never a failed job.

The schema: each output row holds exactly the fields of ``Prediction.to_dict()``
as typed Arrow columns - ``top_k`` a list of structs, ``error`` a struct - the
same columns as the Parquet writer (both ``twoends.encoding.to_arrow``). Typed
columns (not JSON strings) so that ``ds.filter``, ``groupby("label")`` and
``write_parquet`` work on real types. The only difference from JSON is the
spelling of infinite logits (the one convention of ``twoends.encoding``): Arrow
holds real floats, JSON the strings ``"-inf"``/``"inf"``; ``to_prediction(row)``
turns a row back into a ``Prediction`` whose ``to_dict()`` is identical to the local one.

Order: ``predict_dataset`` leaves the order to Ray unless ``preserve_order=True``
(Ray then keeps block order, at some cost in throughput); ``predict_paths`` always
preserves it, so ``twoends predict --engine ray`` writes rows in input order and
``--resume`` works as it does locally.

Paths are read by the actors, so on a cluster they must be readable on every node
(a shared or network file system). For object stores, read the bytes with Ray
(``ray.data.read_binary_files(uri, include_paths=True)``) and pass that dataset.
"""

from __future__ import annotations

import io
import math
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Iterator

from .. import errors
from ..encoding import arrow_schema, from_row, to_arrow
from ..errors import ConfigError, InputError
from ..prediction import Prediction
from ..preprocess import Item, iter_items
from ..runner import Prepared

try:
    import pyarrow as pa
    import ray
    import ray.data
    import ray.exceptions
except ImportError:  # tests/test_extras.py hides Ray to see this message
    from ..extras import missing

    raise missing("the Ray engine", "ray", alternative="or run without Ray: --engine local") from None

__all__ = ["predict_dataset", "predict_paths", "to_prediction", "output_schema", "INPUT_SCHEMA"]

DEFAULT_MODEL = "efficientnet_lite0"

# What predict_dataset builds from paths, folders, globs and bytes: one row per input.
# ``error`` carries an input already known to be bad on the driver (an unreadable folder),
# so it still becomes its own error row, in its place.
_ERROR = pa.struct([("type", pa.string()), ("message", pa.string())])
KINDS = ("image", "audio")  # what a folder or glob yields on the driver (the model's kind of input)
INPUT_SCHEMA = pa.schema([("input", pa.string()), ("path", pa.string()), ("bytes", pa.binary()), ("error", _ERROR)])

# at most this many blocks for inputs listed on the driver: enough to spread over a cluster,
# few enough that per-block overhead stays small for a million paths
_MAX_BLOCKS = 200


def output_schema(include_vectors: bool = False) -> "pa.Schema":
    """The Arrow schema of the output rows: the fields of ``Prediction.to_dict()``, typed."""
    return arrow_schema(include_vectors)


def predict_dataset(
    data: Any,
    model: str | Callable[[], Any] = DEFAULT_MODEL,
    *,
    batch_size: int = 8,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus_per_actor: float = 1,
    num_gpus_per_actor: float = 0,
    include_vectors: bool = False,
    preserve_order: bool = False,
    kind: str = "image",
    **load_options: Any,
) -> "ray.data.Dataset":
    """A lazy Ray Dataset of predictions, one row per input (see the module docstring).

    data: paths, folders, globs, bytes or a list of them (expanded on the driver with
      ``twoends.preprocess.iter_items``, as locally), or a ``ray.data.Dataset`` with a
      ``bytes`` and/or a ``path`` column (``bytes`` is decoded when present, else the file
      at ``path`` is read); rows are named by an ``input`` column, else by ``path``.
    model: a name for ``twoends.load`` (with ``load_options``: ``top_k``, ``temperature``,
      ``labels``, ``device``, ...), or a picklable function that returns a Classifier
      (for ``twoends.wrap``-ed models); called once in each actor.
    concurrency: the number of actors (an int), or ``(min, max)`` to autoscale; default:
      from one up to as many as the cluster's CPUs allow.
    num_cpus_per_actor: CPUs reserved per actor; also its decoding threads.
    kind: "image", or "audio" for an audio model: which files a folder or glob yields on the driver.
    """
    _check_batch_size(batch_size)
    if kind not in KINDS:
        raise ConfigError(f"kind must be one of {list(KINDS)} (the model's kind of input), got {kind!r}")
    ds = data if isinstance(data, ray.data.Dataset) else _input_dataset(data, batch_size, kind)
    if isinstance(data, ray.data.Dataset):
        _check_columns(data)
    out = ds.map_batches(
        _Predictor,
        fn_constructor_kwargs={
            "model": model,
            "load_options": load_options,
            "include_vectors": include_vectors,
            "threads": max(1, int(num_cpus_per_actor)),
        },
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=_compute(concurrency),
        num_cpus=num_cpus_per_actor,
        num_gpus=num_gpus_per_actor or None,
        udf_modifying_row_count=False,  # one row in, one row out
    )
    # the Dataset carries its own copy of the context: this run only, not the user's global one
    out.context.execution_options.preserve_order = preserve_order
    return out


def predict_paths(
    inputs: Any,
    model: str | Callable[[], Any] = DEFAULT_MODEL,
    *,
    address: str | None = None,
    batch_size: int = 8,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus_per_actor: float = 1,
    num_gpus_per_actor: float = 0,
    include_vectors: bool = False,
    kind: str = "image",
    **load_options: Any,
) -> Iterator[Prediction]:
    """Predictions for ``inputs``, one per input, in input order, computed on Ray.

    Joins the running Ray when ``ray.init`` was already called (``address`` is then not
    used), else ``address`` (or the ``RAY_ADDRESS`` environment variable), else starts a
    local Ray for this call and shuts it down when the iterator ends. Rows stream back as
    blocks finish. A model the actors cannot load raises its twoends error (``ModelError``).
    """
    started = not ray.is_initialized()
    if started:
        # worker output would otherwise be copied onto the driver's stdout, where the rows go
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    try:
        ds = predict_dataset(
            inputs,
            model,
            batch_size=batch_size,
            concurrency=concurrency,
            num_cpus_per_actor=num_cpus_per_actor,
            num_gpus_per_actor=num_gpus_per_actor,
            include_vectors=include_vectors,
            preserve_order=True,
            kind=kind,
            **load_options,
        )
        ds.context.enable_progress_bars = False  # the caller (e.g. the CLI) shows its own progress
        try:
            for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                for row in table.to_pylist():
                    yield to_prediction(row)
        except ray.exceptions.RayError as exc:
            cause = _twoends_error(exc)
            if cause is None:
                raise
            raise cause from exc
    finally:
        if started:
            ray.shutdown()


def to_prediction(row: dict) -> Prediction:
    """The ``Prediction`` of one output row; its ``to_dict()`` equals the local one's.

    ``log_probabilities`` is not a column, so it is None here; ``logits`` and
    ``probabilities`` are there when the dataset was made with ``include_vectors=True``.
    """
    return from_row(row)


# --- inside the actors -----------------------------------------------------------------


class _Predictor:
    """One per actor: loads the model once, then turns input batches into prediction rows."""

    def __init__(self, model: Any, load_options: dict, include_vectors: bool, threads: int):
        from ..process import tune_process

        tune_process()  # an actor is a process of twoends' own, running one model
        self.clf = _load(model, load_options)
        self.schema = output_schema(include_vectors)
        self.include_vectors = include_vectors
        # decoding releases the GIL: an actor given several CPUs decodes on all of them
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="twoends-ray") if threads > 1 else None

    def __call__(self, batch: "pa.Table") -> "pa.Table":
        items = list(_items(batch))
        prepared = list(self.pool.map(self._prepare, items) if self.pool else map(self._prepare, items))
        rows = [to_arrow(p, self.include_vectors) for p in self.clf.predict_batch(prepared)]
        return pa.Table.from_pylist(rows, schema=self.schema)

    def _prepare(self, entry: tuple[Item, dict | None]) -> Prepared:
        item, known = entry
        return self.clf.prepare(item) if known is None else Prepared(item.id, error=_known_error(known))


def _load(model: Any, load_options: dict) -> Any:
    from ..classifier import Classifier

    if isinstance(model, str):
        from ..api import load

        return load(model, **load_options)
    if not callable(model):
        raise ConfigError(
            f"model must be a model name or a function that returns a Classifier, got {type(model).__name__}"
        )
    if load_options:
        raise ConfigError(
            f"load options {sorted(load_options)} go with a model name; a model function builds its own Classifier: "
            "pass them inside it"
        )
    clf = model()
    if not isinstance(clf, Classifier):
        raise ConfigError(
            f"the model function must return a twoends Classifier, got {type(clf).__name__}; use twoends.load or twoends.wrap"
        )
    return clf


def _items(batch: "pa.Table") -> Iterator[tuple[Item, dict | None]]:
    """(Item, known error or None) per row: bytes when present, else the path."""
    names = batch.column_names
    column = {
        n: batch.column(n).to_pylist() if n in names else [None] * batch.num_rows
        for n in ("input", "path", "bytes", "error")
    }
    for input_id, path, data, known in zip(column["input"], column["path"], column["bytes"], column["error"]):
        name = input_id if input_id is not None else path
        payload = data if data is not None else path
        if data is not None and path is not None:  # file bytes read by Ray: errors name the file, as locally
            payload = io.BytesIO(data)
            payload.name = path
        if payload is None and known is None:
            known = {
                "type": "InputError",
                "message": f"row {name!r} has neither bytes nor a path: expected one of them",
            }
        yield Item(name, payload), known


def _twoends_error(exc: Exception) -> Exception | None:
    """The twoends error an actor died of (an unknown model, a bad option), if that is what it was.

    Ray reports an actor that failed in ``__init__`` as ``ActorDiedError`` with the
    traceback in its text; the last twoends error line in it is what the user must fix.
    """
    found = re.findall(r"twoends\.errors\.(\w+): (.+)", str(exc))
    if not found:
        return None
    name, message = found[-1]
    cls = getattr(errors, name, None)
    cls = cls if isinstance(cls, type) and issubclass(cls, errors.TwoEndsError) else errors.ModelError
    return cls(f"{message} (raised in a Ray actor)")


def _known_error(known: dict) -> Exception:
    # rebuild the driver's error with its own class, so the row reads as it would locally
    cls = getattr(errors, known["type"], None)
    cls = cls if isinstance(cls, type) and issubclass(cls, InputError) else InputError
    return cls(known["message"])


# --- on the driver ---------------------------------------------------------------------


def _input_dataset(data: Any, batch_size: int, kind: str = "image") -> "ray.data.Dataset":
    if kind == "audio":
        from ..preprocess.audio_spec import iter_clips as expand
    else:
        expand = iter_items
    rows = [_input_row(item) for item in expand(data)]
    if not rows:
        raise ConfigError(f"no inputs: expected {kind} files, folders of them, glob patterns or bytes")
    table = pa.Table.from_pylist(rows, schema=INPUT_SCHEMA)
    per_block = max(batch_size, math.ceil(len(rows) / _MAX_BLOCKS))
    blocks = [table.slice(start, per_block) for start in range(0, len(rows), per_block)]
    return ray.data.from_arrow(blocks)


def _input_row(item: Item) -> dict:
    row = {"input": item.id, "path": None, "bytes": None, "error": None}
    payload = item.payload
    if isinstance(payload, str):
        row["path"] = payload
    elif isinstance(payload, (bytes, bytearray, memoryview)):
        row["bytes"] = bytes(payload)
    elif isinstance(payload, InputError):
        row["error"] = {"type": type(payload).__name__, "message": str(payload)}
    else:  # PIL images, arrays, audio clips, open files, tensors: nothing a remote actor can be sent as-is
        row["error"] = {
            "type": "InputError",
            "message": (
                f"the Ray engine takes paths, folders, globs and bytes, got a {type(payload).__name__}: "
                "save it as a file (an image, an audio clip) or pass its encoded bytes, or predict it locally "
                "with Classifier.predict"
            ),
        }
    return row


def _check_columns(ds: "ray.data.Dataset") -> None:
    schema = ds.schema()
    names = set(schema.names) if schema is not None else set()
    if not names & {"bytes", "path"}:
        raise ConfigError(
            f"a Ray dataset to predict needs a 'bytes' or a 'path' column, got columns {sorted(names)}; "
            "read files with ray.data.read_binary_files(paths, include_paths=True)"
        )
    if "bytes" in names and not names & {"input", "path"}:
        raise ConfigError(
            "a dataset of bytes needs an 'input' or 'path' column to name each row in the output; "
            "read files with ray.data.read_binary_files(paths, include_paths=True)"
        )


def _compute(concurrency: int | tuple[int, int] | None) -> "ray.data.ActorPoolStrategy":
    if concurrency is None:
        return ray.data.ActorPoolStrategy(min_size=1, max_size=None)
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        return ray.data.ActorPoolStrategy(size=concurrency)
    if (
        isinstance(concurrency, tuple)
        and len(concurrency) == 2
        and all(isinstance(n, int) and n >= 1 for n in concurrency)
    ):
        low, high = concurrency
        if low <= high:
            return ray.data.ActorPoolStrategy(min_size=low, max_size=high)
    raise ConfigError(
        f"concurrency must be a number of actors >= 1 or a (min, max) pair with min <= max, got {concurrency!r}"
    )


def _check_batch_size(batch_size: Any) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size must be a whole number >= 1, got {batch_size!r}")
